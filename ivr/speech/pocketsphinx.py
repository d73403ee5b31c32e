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
- Out-of-grammar rejection: without help every sound is forced onto a phrase (~20 % of
  out-of-grammar words rejected, by :func:`ivr.speech.grammar.match` on partial paths). With
  ``reject_oog=True`` a ``<garbage>`` alternative of common words is added: ~70 % rejected, but
  in-grammar accuracy falls to ~60 %. The hypothesis posterior is a usable confidence:
  ``min_confidence=0.04`` rejected ~50 % of out-of-grammar words and kept 92/93 correct
  results. Garbage loops (``<garbage>+``) and phone loops make the
  FSG search 10-100x slower. So rejection is off by default.
- Optional filler words around a phrase (``fillers=True``: "I want ... please") cut
  accuracy on bare words from ~96 % to ~74 %, so they are off by default.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ivr.errors import SpeechError
from ivr.speech import grammar
from ivr.speech.audio import MODEL_RATE_HZ, comfort_noise, resample
from ivr.speech.base import SAMPLE_RATE_HZ, Recognition, SpeechChoice, Thresholds

GARBAGE_WORDS = 25  # size of the <garbage> alternative when rejecting out-of-grammar speech
_MAX_SEARCHES = 16  # grammars kept per decoder


class PocketsphinxEngine:
    """pocketsphinx with a JSGF grammar per utterance; thread-safe factory of recognisers.

    ``hmm``: an acoustic model directory (default: the wheel's US English model).
    ``min_confidence``: results with a lower posterior are rejected (``thresholds``).
    ``reject_oog``: add a garbage alternative to the grammar.
    ``fillers``: allow "I want ... please" around phrases.
    ``comfort_noise_dbfs``: white noise added before decoding (``None``: none).
    """

    name = "pocketsphinx"

    def __init__(
        self,
        hmm: str | None = None,
        *,
        reject_oog: bool = False,
        fillers: bool = False,
        min_confidence: float = 0.04,
        comfort_noise_dbfs: float | None = -55.0,
    ) -> None:
        self.hmm = hmm
        self.reject_oog = reject_oog
        self.fillers = fillers
        self.thresholds = Thresholds(min_confidence, min_confidence)
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
        garbage = grammar.GARBAGE_EN[:GARBAGE_WORDS] if self.reject_oog else ()
        jsgf = grammar.jsgf(choices, language, garbage=garbage, fillers=self.fillers)
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

    def use(self, jsgf: str) -> None:
        name = self.searches.get(jsgf)
        if name is None:
            if len(self.searches) >= _MAX_SEARCHES:
                old_text, old_name = next(iter(self.searches.items()))
                del self.searches[old_text]
                self.decoder.remove_search(old_name)
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

    def decode(self, pcm16k: bytes) -> tuple[str, float]:
        d = self.decoder
        d.start_utt()
        d.process_raw(pcm16k, False, True)
        d.end_utt()
        hyp = d.hyp()
        if hyp is None:
            return "", 0.0
        return str(hyp.hypstr), float(hyp.prob)


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

    def result(self) -> Recognition:
        """Decode the utterance: text, the matched choice (or ``None``), posterior."""
        pcm = b"".join(self._chunks)
        pcm = resample(pcm[: len(pcm) - len(pcm) % 2], self.input_rate_hz, MODEL_RATE_HZ)
        if self.engine.comfort_noise_dbfs is not None and pcm:
            samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
            rng = np.random.default_rng(len(samples))  # reproducible for one input
            samples += comfort_noise(samples.size, rng, self.engine.comfort_noise_dbfs)
            pcm = np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()
        decoder = self.engine._checkout()
        try:
            decoder.use(self.jsgf)
            text, prob = decoder.decode(pcm)
        finally:
            self.engine._checkin(decoder)
        found = grammar.match(text, self.choices, "en")
        return Recognition(
            text=text,
            choice=found.key if found else None,
            confidence=round(prob if found else 0.0, 3),
            engine=self.engine.name,
        )
