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
- Out-of-grammar rejection: the grammar decode forces every sound onto a phrase (~15-25 % of
  out-of-grammar phrases came out as no choice). ``Recognition.confidence`` is a logistic model
  over the decode's own scores (:mod:`ivr.speech.sphinx_score`), fitted on the dev set by
  ``benchmarks/calibrate_pocketsphinx.py``; thresholds 0.46 / 0.83 chosen there. Bank menu,
  3 conditions x 3 voices, test set (held out): in-grammar 77 % accepted or confirmed right
  (62 % accepted; clean 64 %, white 87 %, pink 80 %), out-of-grammar 83 % rejected (clean 94 %,
  white 77 %, pink 77 %), 5 % accepted outright; dev: 85 % / 90 %. The grammar decode alone is
  right for 91-94 %; short words ("no", "agent") get low confidence. A phone-loop decode of the
  same audio scored ~0 per frame (scores are normalised by each frame's best senone) and added
  nothing; the shipped US English LM decode took ~730 ms and seldom heard the menu words; a
  ``<garbage>`` alternative cost ~35 points of in-grammar accuracy. One decode: ~30-40 ms mean,
  p95 60-100 ms per utterance on one core.
- Words missing from the dictionary under a British spelling ("instalments") are added with
  the American one's pronunciation (``spelling_variants``).
- Optional filler words around a phrase (``fillers=True``: "I want ... please") cut
  accuracy on bare words from ~96 % to ~74 %, so they are off by default.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ivr.errors import SpeechError
from ivr.speech import grammar
from ivr.speech.audio import MODEL_RATE_HZ, comfort_noise, resample
from ivr.speech.base import SAMPLE_RATE_HZ, Recognition, SpeechChoice, Thresholds
from ivr.speech.sphinx_score import CALIBRATION, Calibration, Decoded, Segment, log_score

_MAX_SEARCHES = 16  # grammars kept per decoder
# Calibrated on SETS[("en", "dev")] by benchmarks/calibrate_pocketsphinx.py.
DEFAULT_THRESHOLDS = Thresholds(reject_below=0.46, accept_at=0.83)
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
    ``fillers``: allow "I want ... please" around phrases.
    ``comfort_noise_dbfs``: white noise added before decoding (``None``: none).
    """

    name = "pocketsphinx"

    def __init__(
        self,
        hmm: str | None = None,
        *,
        thresholds: Thresholds = DEFAULT_THRESHOLDS,
        calibration: Calibration = CALIBRATION,
        fillers: bool = False,
        comfort_noise_dbfs: float | None = -55.0,
    ) -> None:
        self.hmm = hmm
        self.fillers = fillers
        self.thresholds = thresholds
        self.calibration = calibration
        self.comfort_noise_dbfs = comfort_noise_dbfs
        self._lock = threading.Lock()
        self._free: list[_Decoder] = []
        self.decoders_created = 0

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
        jsgf = grammar.jsgf(choices, language, garbage=(), fillers=self.fillers)
        return PocketsphinxRecognizer(self, list(choices), jsgf, input_rate_hz)

    def _checkout(self) -> _Decoder:
        with self._lock:
            if self._free:
                return self._free.pop()
            self.decoders_created += 1
        return _Decoder(self.hmm)

    def _checkin(self, decoder: _Decoder) -> None:
        with self._lock:
            self._free.append(decoder)


class _Decoder:
    """A pocketsphinx ``Decoder`` (16 kHz, no language model) and the grammars it holds."""

    def __init__(self, hmm: str | None) -> None:
        from pocketsphinx import Decoder

        options: dict[str, Any] = {"lm": None, "samprate": MODEL_RATE_HZ, "loglevel": "FATAL"}
        if hmm is not None:
            options["hmm"] = hmm
        try:
            self.decoder: Any = Decoder(**options)
        except RuntimeError as exc:
            raise SpeechError(
                f"cannot start pocketsphinx (model {hmm or 'built-in'}): {exc}"
            ) from None
        self.searches: dict[str, str] = {}  # grammar text -> search name
        self.counter = 0
        self._phones: dict[str, int] = {}

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
        d.start_utt()
        d.process_raw(pcm16k, False, True)
        d.end_utt()
        hyp = d.hyp()
        if hyp is None:
            return Decoded("", (), int(d.n_frames()), 0.0, 0)
        segments = tuple(
            Segment(str(s.word), s.end_frame - s.start_frame + 1, log_score(s.ascore))
            for s in (d.seg() or ())
        )
        phones = sum(self._phone_count(s.word) for s in segments if s.is_speech)
        return Decoded(str(hyp.hypstr), segments, int(d.n_frames()), float(hyp.prob), phones)


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

    def accept(self, pcm: bytes) -> None:
        """Feed PCM at the input rate (8 kHz unless told otherwise)."""
        self._chunks.append(pcm)

    def decode(self) -> Decoded:
        """Decode the utterance against the menu's grammar (what :meth:`result` scores)."""
        pcm = b"".join(self._chunks)
        pcm = resample(pcm[: len(pcm) - len(pcm) % 2], self.input_rate_hz, MODEL_RATE_HZ)
        if self.engine.comfort_noise_dbfs is not None and pcm:
            samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
            rng = np.random.default_rng(len(samples))  # reproducible for one input
            samples += comfort_noise(samples.size, rng, self.engine.comfort_noise_dbfs)
            pcm = np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()
        decoder = self.engine._checkout()
        try:
            decoder.use(self.jsgf, grammar.vocabulary(self.choices, "en"))
            return decoder.decode(pcm)
        finally:
            self.engine._checkin(decoder)

    def result(self) -> Recognition:
        """Decode the utterance: text, the matched choice (or ``None``), its confidence."""
        decoded = self.decode()
        found = grammar.match(decoded.text, self.choices, "en")
        confidence = self.engine.calibration.confidence(decoded) if found else 0.0
        return Recognition(
            text=decoded.text,
            choice=found.key if found else None,
            confidence=round(confidence, 3),
            engine=self.engine.name,
        )
