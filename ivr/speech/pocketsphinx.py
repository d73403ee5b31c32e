"""pocketsphinx recogniser: the embedded US English default (its model ships in the wheel).

Measured on espeak-ng speech at 8 kHz (see ``benchmarks/stt_bench.py``):

- Creating a ``Decoder`` costs ~180 ms, switching its JSGF grammar < 1 ms; so decoders are
  pooled (one per concurrently open utterance, reused) and each utterance only sets its
  grammar.
- The model is wideband (16 kHz, filterbank to 6.8 kHz); telephone audio is upsampled with
  soxr. Digital silence and the empty 4-8 kHz band confuse its noise estimation: adding white
  noise at -55 dBFS (``comfort_noise_dbfs``) raised clean menu-word accuracy from ~70 % to
  ~96 %. Custom filterbanks (upperf 3500/3800) were far worse.
- Audio is buffered and decoded at :meth:`PocketsphinxRecognizer.result` in one pass
  (utterance-level CMN): more accurate than streaming, and the whole decode takes ~15 ms per
  second of speech.
- ``bestpath`` is off: the lattice rescoring after the FSG search often ended on a partial
  phrase ("offers" -> "stolen", "installments" -> "stolen"); without it the grammar decode is
  right for 98.1 % (dev) / 95.3 % (test) of in-grammar speech, against 93.5 % / 91.5 %.
- Each decode starts with a fresh front end (``reinit_feat``, 0.1 ms): a pooled decoder's
  noise estimate otherwise carried over from its earlier utterances (same audio, 0.77 or 0.83).
- Live calls: the utterance is cleaned first (:mod:`ivr.speech.cleanup`): isolated clicks in
  its silence are silenced and the silence around the speech is cut to 400 ms
  (``trim_margin_ms``). Utterances kept from calls through the real Asterisk
  (``speech.keep_utterances``) carried a 7 ms burst at -19 dBFS in the pre-roll or hangover
  (the lab's SIPp plays the caller WAV's header as audio; a real line clicks too), which took
  "support" from 0.80 to 0.08 and "sales" to 0.00; and the same word scored 0.28 to 0.90 with
  0.2 to 0.75 s of silence before it. Trimmed, the grammar decode is also right more often
  (test 95.7 % against 95.3 %).
- Out-of-grammar rejection: the grammar decode forces every sound onto a phrase.
  ``Recognition.confidence`` is a logistic model over the decode's own scores
  (:mod:`ivr.speech.sphinx_score`), fitted on the dev set by
  ``benchmarks/calibrate_pocketsphinx.py``; thresholds chosen there (the lowest rejecting
  >= 90 % of dev out-of-grammar speech; the lowest accepting <= 2 % outright). Round 2, 0.10 /
  0.73 (round 3 below: 0.12 / 0.79; round 4: 0.11 / 0.77; round 5: 0.12 / 0.81). Bank
  menu, 3 voices x 6 conditions (clean, 20 dB white and pink; each also through A-law with
  0.2-0.75 s of pre-roll, 0.7 s of hangover and, every other one, the live click), test set
  (held out): in-grammar 91.5 % accepted or confirmed right (74 % accepted; clean 90 %, white
  97 %, pink 87 %), out-of-grammar 83.0 % rejected (6 % accepted outright); dev 98.6 % /
  90.3 %. Fitting on the calibration set as well (2550 decodes) gave 81 % / 88 % on test and
  rejected a live "sales" (0.28), so the dev fit is shipped. Measured and not kept: the
  margin to the best other choice (a second decode without the chosen one: AUC 0.80 dev /
  0.65 test, no weight in the fit); a phone-loop decode with the phone LM (80 ms, AUC
  0.91/0.86) or a decode over a loop of 100 common words (200 ms, 0.93/0.86) as the
  reference, no better than the path score per frame (0.94/0.90); comfort noise at
  -45..-35 dBFS (lower accuracy); trimming to 150, 250, 300 or 500 ms (test 86-90 % in-grammar
  at 83-85 % rejection). One decode: 20-30 ms mean, p95 30-50 ms per utterance on one core.
- Rounds 3-4 (:mod:`ivr.speech.sphinx_score`): hesitations and spoken noise as **rivals**
  (:data:`RIVALS`), ``pip`` 2.0 (:data:`PHONE_INSERTION`), the energy outside the words.
  Round 5 (:mod:`ivr.speech.sphinx_phones`): a phone decode (~55 ms) for doubtful answers
  (~28 %); thresholds 0.12 / 0.81. The server decodes in worker processes
  (:mod:`ivr.speech.sphinx_pool`): a decode keeps the GIL.
- Words missing from the dictionary under a British spelling ("instalments") are added with
  the American one's pronunciation (``spelling_variants``).
- Optional filler words around a phrase (``fillers=True``: "I want ... please") cut
  accuracy on bare words from ~96 % to ~74 %, so they are off by default.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ivr.errors import SpeechError
from ivr.speech import grammar
from ivr.speech.audio import MODEL_RATE_HZ, comfort_noise, resample
from ivr.speech.base import SAMPLE_RATE_HZ, Recognition, SpeechChoice, Thresholds
from ivr.speech.cleanup import remove_clicks, trim_silence
from ivr.speech.sphinx_phones import PhoneDecoder, needs_phones, phone_evidence, phone_lm_path
from ivr.speech.sphinx_score import (
    CALIBRATION,
    LN_FLOOR,
    PHONE_CALIBRATION,
    Calibration,
    Decoded,
    Segment,
    energy_outside,
    log_score,
)

_MAX_SEARCHES = 16  # grammars kept per decoder
# A dictionary word for the model's trained spoken-noise filler (+SPN+): a rival to the
# choices that out-of-grammar speech may end on (no real word is spelt so).
SPOKEN_NOISE = "spokennoise"
# The rivals a menu's phrases compete with, and their weight against 1 for the choices
# (chosen on dev and the calibration set: lower lets "um" onto "no", higher takes choices).
RIVALS = (SPOKEN_NOISE, *grammar.HESITATIONS_EN)
RIVAL_WEIGHT = 1e-10
# Phone insertion probability (pocketsphinx's default 1.0): 2.0 kept every dev decode and
# made the calibration set's grammar decodes right more often (81.5 % -> 83.2 %).
PHONE_INSERTION = 2.0
# Calibrated on SETS[("en", "dev")] by benchmarks/calibrate_pocketsphinx.py.
DEFAULT_THRESHOLDS = Thresholds(reject_below=0.12, accept_at=0.81)
# British spellings the (American) dictionary lacks, tried in order: "instalments" is
# pronounced as "installments", "colour" as "color".
_SPELLINGS = (
    (r"instal(?!l)", "install"),
    (r"our\b", "or"),
    (r"our(?=s\b|ed\b|ing\b)", "or"),
    (r"is(e|es|ed|ing|ation)\b", r"iz\1"),
    (r"ys(e|es|ed|ing)\b", r"yz\1"),
    (r"tre(s?)\b", r"ter\1"),
    (r"ogue(s?)\b", r"og\1"),
    (r"ence(s?)\b", r"ense\1"),
    (r"ll(ed|ing|er)\b", r"l\1"),
    (r"mme(s?)\b", r"m\1"),
)


def spelling_variants(word: str) -> list[str]:
    """American spellings ``word`` may have in the dictionary.

    >>> spelling_variants("instalments"), spelling_variants("colour")
    (['installments'], ['color'])
    """
    out = []
    for pattern, repl in _SPELLINGS:
        variant = re.sub(pattern, repl, word)
        if variant != word and variant not in out:
            out.append(variant)
    return out


class PocketsphinxEngine:
    """pocketsphinx with a JSGF grammar per utterance; thread-safe factory of recognisers.

    ``hmm``: an acoustic model directory (default: the wheel's US English model).
    ``thresholds``: where menus reject / confirm / accept (default: calibrated on dev).
    ``calibration``: maps a decode's scores to a confidence (:mod:`ivr.speech.sphinx_score`).
    ``phone_calibration``: the same with a phone decode's evidence, sought when the first
    confidence is in doubt (:mod:`ivr.speech.sphinx_phones`; ``None``: never).
    ``fillers``: allow "I want ... please" around phrases.
    ``comfort_noise_dbfs``: white noise added before decoding (``None``: none).
    ``trim_margin_ms``: clicks removed and the silence around the speech cut to this
    (:mod:`ivr.speech.cleanup`; ``None``: the audio as given).
    ``rivals``: words the whole utterance may be instead of a choice (default: hesitations
    and the spoken-noise filler, :data:`RIVALS`; ``()``: every sound is forced onto a phrase);
    a decode that ends on one has no text and no choice.
    """

    name = "pocketsphinx"

    def __init__(
        self,
        hmm: str | None = None,
        *,
        thresholds: Thresholds = DEFAULT_THRESHOLDS,
        calibration: Calibration = CALIBRATION,
        phone_calibration: Calibration | None = PHONE_CALIBRATION,
        fillers: bool = False,
        comfort_noise_dbfs: float | None = -55.0,
        trim_margin_ms: int | None = 400,
        rivals: Sequence[str] = RIVALS,
    ) -> None:
        self.rivals = tuple(rivals)
        self.trim_margin_ms = trim_margin_ms
        self.hmm = hmm
        self.fillers = fillers
        self.thresholds = thresholds
        self.calibration = calibration
        self.phone_calibration = phone_calibration
        self.comfort_noise_dbfs = comfort_noise_dbfs
        self._lock = threading.Lock()
        self._free: list[_Decoder] = []
        self.decoders_created = 0
        # One phone decoder, made on first need: pocketsphinx holds the GIL while it decodes,
        # so more would only cost memory and their making (~90 ms each) on busy calls.
        self._phone_lock = threading.Lock()
        self._phone_decoder: PhoneDecoder | None = None

    def languages(self) -> frozenset[str]:
        """``{"en"}``: the embedded model is US English."""
        return frozenset({"en"})

    def recognizer(
        self,
        choices: Sequence[SpeechChoice],
        language: str,
        *,
        input_rate_hz: int = SAMPLE_RATE_HZ,
    ) -> PocketsphinxRecognizer:
        """A recogniser for one utterance restricted to ``choices`` (English only)."""
        if language not in self.languages():
            raise SpeechError(f"pocketsphinx recognises English only, not {language!r}")
        jsgf = grammar.jsgf(
            choices,
            language,
            garbage=(),
            fillers=self.fillers,
            rivals=self.rivals,
            rival_weight=RIVAL_WEIGHT,
        )
        return PocketsphinxRecognizer(self, list(choices), jsgf, input_rate_hz)

    def warm(self) -> None:
        """Build a grammar decoder and the phone decoder now (~180 + ~90 ms), not in an answer."""
        self._checkin(self._checkout())
        self._phones_heard(bytes(3200))

    def _checkout(self) -> _Decoder:
        with self._lock:
            if self._free:
                return self._free.pop()
            self.decoders_created += 1
        return _Decoder(self.hmm)

    def _checkin(self, decoder: _Decoder) -> None:
        with self._lock:
            self._free.append(decoder)

    def _phones_heard(self, pcm16k: bytes) -> list[tuple[str, int, int]]:
        with self._phone_lock:
            if self._phone_decoder is None:
                decoder = new_decoder(self.hmm, allphone=phone_lm_path())
                self._phone_decoder = PhoneDecoder(decoder)
            return self._phone_decoder.phones(pcm16k)


def new_decoder(hmm: str | None, **options: Any) -> Any:
    """A pocketsphinx ``Decoder`` at 16 kHz without a language model, quiet, with
    :data:`PHONE_INSERTION` and the model ``hmm`` (default: the wheel's), plus ``options``.

    ``bestpath`` is off: the lattice rescoring after the FSG search often ends on a partial
    phrase ("offers" -> "stolen"); without it the search's own best path is right far more often.
    """
    from pocketsphinx import Decoder

    settings: dict[str, Any] = {
        "lm": None,
        "samprate": MODEL_RATE_HZ,
        "loglevel": "FATAL",
        "bestpath": False,
        "pip": PHONE_INSERTION,
        **({} if hmm is None else {"hmm": hmm}),
        **options,
    }
    try:
        return Decoder(**settings)
    except RuntimeError as exc:
        raise SpeechError(f"cannot start pocketsphinx (model {hmm or 'built-in'}): {exc}") from None


class _Decoder:
    """A pocketsphinx ``Decoder`` (16 kHz, no language model) and the grammars it holds."""

    def __init__(self, hmm: str | None) -> None:
        self.decoder: Any = new_decoder(hmm)
        self.searches: dict[str, str] = {}  # grammar text -> search name
        self.counter = 0
        self._phones: dict[str, int] = {}
        try:
            self.decoder.add_word(SPOKEN_NOISE, "+SPN+", True)
        except RuntimeError:  # a model without the filler: the rival is a silence
            self.decoder.add_word(SPOKEN_NOISE, "SIL", True)

    def _know(self, words: Iterable[str]) -> None:
        """Add words the dictionary lacks under an American spelling it has."""
        d = self.decoder
        for word in words:
            if d.lookup_word(word) is not None:
                continue
            for variant in spelling_variants(word):
                phones = d.lookup_word(variant)
                if phones is not None:
                    d.add_word(word, phones, True)
                    break

    def use(self, jsgf: str, words: Iterable[str]) -> None:
        name = self.searches.get(jsgf)
        if name is None:
            if len(self.searches) >= _MAX_SEARCHES:
                old_text, old_name = next(iter(self.searches.items()))
                del self.searches[old_text]
                self.decoder.remove_search(old_name)
            self._know(words)
            self.counter += 1
            name = f"menu{self.counter}"
            try:
                self.decoder.add_jsgf_string(name, jsgf)
            except (RuntimeError, ValueError) as exc:
                raise SpeechError(
                    f"pocketsphinx rejected the grammar ({exc}); a menu word "
                    "may be missing from its dictionary"
                ) from None
            self.searches[jsgf] = name
        self.decoder.activate_search(name)

    def _phone_count(self, word: str) -> int:
        count = self._phones.get(word)
        if count is None:
            phones = self.decoder.lookup_word(word)
            count = self._phones[word] = len(phones.split()) if phones else 0
        return count

    def decode(self, pcm16k: bytes) -> Decoded:
        d = self.decoder
        # A fresh front end (0.1 ms): its noise estimate would otherwise carry over from the
        # utterances this pooled decoder heard before, and the same audio score differently.
        d.reinit_feat()
        d.start_utt()
        d.process_raw(pcm16k, False, True)
        d.end_utt()
        hyp = d.hyp()
        if hyp is None:
            return Decoded("", (), int(d.n_frames()), LN_FLOOR, 0)
        found = list(d.seg() or ())
        segments = tuple(
            Segment(
                str(s.word), s.end_frame - s.start_frame + 1, log_score(s.ascore), s.start_frame
            )
            for s in found
        )
        phones = sum(self._phone_count(s.word) for s in segments if s.is_speech)
        path = log_score(hyp.best_score)
        expected: list[str] = []  # for a phone decode ("card(2)": the first pronunciation)
        for s in segments:
            word = s.word.split("(")[0]
            if s.is_speech and word:
                expected += (d.lookup_word(word) or "").split()
        decoded = Decoded(str(hyp.hypstr), segments, int(d.n_frames()), path, phones)
        outside = energy_outside(np.frombuffer(pcm16k, dtype="<i2"), decoded.word_spans())
        return replace(decoded, outside_energy=outside, expected_phones=tuple(expected))


class PocketsphinxRecognizer:
    """One utterance: audio is collected by :meth:`accept`, decoded by :meth:`result`."""

    def __init__(
        self,
        engine: PocketsphinxEngine,
        choices: list[SpeechChoice],
        jsgf: str,
        input_rate_hz: int = SAMPLE_RATE_HZ,
    ) -> None:
        self.engine = engine
        self.choices = choices
        self.jsgf = jsgf
        self.input_rate_hz = input_rate_hz
        self._chunks: list[bytes] = []
        self._model_pcm: bytes | None = None  # as decoded: cleaned, upsampled, comfort noise

    def accept(self, pcm: bytes) -> None:
        """Feed PCM at the input rate (8 kHz unless told otherwise)."""
        self._chunks.append(pcm)
        self._model_pcm = None

    def _prepared(self) -> bytes:
        if self._model_pcm is None:
            self._model_pcm = self._prepare()
        return self._model_pcm

    def _prepare(self) -> bytes:
        rate = self.input_rate_hz
        pcm = b"".join(self._chunks)
        if self.engine.trim_margin_ms is not None:
            pcm = trim_silence(remove_clicks(pcm, rate), rate, margin_ms=self.engine.trim_margin_ms)
        pcm = resample(pcm[: len(pcm) - len(pcm) % 2], self.input_rate_hz, MODEL_RATE_HZ)
        if self.engine.comfort_noise_dbfs is not None and pcm:
            samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
            rng = np.random.default_rng(len(samples))  # reproducible for one input
            samples += comfort_noise(samples.size, rng, self.engine.comfort_noise_dbfs)
            pcm = np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()
        return pcm

    def decode(self) -> Decoded:
        """Decode the utterance against the menu's grammar (what :meth:`result` scores)."""
        decoder = self.engine._checkout()
        try:
            decoder.use(self.jsgf, grammar.vocabulary(self.choices, "en"))
            decoded = decoder.decode(self._prepared())
        finally:
            self.engine._checkin(decoder)
        if decoded.text and set(decoded.text.split()) <= set(self.engine.rivals):
            # A rival won: nothing the menu knows was said (hiss decodes as "uh").
            return replace(decoded, text="")
        return decoded

    def with_phones(self, decoded: Decoded) -> Decoded:
        """``decoded`` (this utterance's) with a phone decode's evidence (~55 ms)."""
        heard = self.engine._phones_heard(self._prepared())
        evidence = phone_evidence(heard, decoded.word_spans(), decoded.expected_phones)
        return replace(decoded, phone_evidence=evidence)

    def result(self) -> Recognition:
        """Decode the utterance: text, the matched choice (or ``None``), its confidence."""
        decoded = self.decode()
        found = grammar.match(decoded.text, self.choices, "en")
        confidence = self.engine.calibration.confidence(decoded) if found else 0.0
        second = self.engine.phone_calibration
        if found and second is not None and needs_phones(confidence):
            confidence = second.confidence(self.with_phones(decoded))
        return Recognition(
            text=decoded.text,
            choice=found.key if found else None,
            confidence=round(confidence, 3),
            engine=self.engine.name,
        )
