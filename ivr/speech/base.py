"""The recogniser interface: small, so engines (Vosk, pocketsphinx) are short modules.

A :class:`SpeechEngine` is created once per process (it owns the loaded model, shared by all
calls); it makes one :class:`Recognizer` per utterance, restricted to a menu's choices.
Recognisers decode 8 kHz 16-bit mono PCM (telephone audio) and are blocking: the caller runs
them in a worker thread, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

SAMPLE_RATE_HZ = 8000
FRAME_BYTES = 320  # 20 ms of 8 kHz 16-bit mono


@dataclass(frozen=True, slots=True)
class SpeechChoice:
    """One menu option as speech: its key (``"1"``) and the phrases that choose it."""

    key: str
    phrases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Recognition:
    """What a recogniser made of one utterance.

    ``choice`` is the key of the matched option, or ``None`` when the speech was not one of
    the choices (a no-match). ``confidence`` is in 0..1.
    """

    text: str
    choice: str | None
    confidence: float
    engine: str


class Recognizer(Protocol):
    """Decodes one utterance, fed incrementally. Used from one thread at a time."""

    def accept(self, pcm: bytes) -> None:
        """Feed 8 kHz 16-bit little-endian mono PCM (any length, frame multiples preferred)."""

    def result(self) -> Recognition:
        """End of the utterance: the final result."""


class SpeechEngine(Protocol):
    """A loaded model for one or more languages; thread-safe factory of recognisers."""

    name: str

    def languages(self) -> frozenset[str]:
        """Languages this engine can recognise (``{"en"}``)."""

    def recognizer(self, choices: Sequence[SpeechChoice], language: str) -> Recognizer:
        """A recogniser restricted to these choices (a grammar), for one utterance."""
