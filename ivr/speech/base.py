"""The recogniser interface: small, so engines (Vosk, pocketsphinx) are short modules.

A :class:`SpeechEngine` is created once per process (it owns the loaded model, shared by all
calls); it makes one :class:`Recognizer` per utterance, restricted to a menu's choices.
Recognisers decode 8 kHz 16-bit mono PCM (telephone audio) and are blocking: the caller runs
them in a worker thread, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")

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

    ``choice`` is the key of the option the engine's best reading names, or ``None`` when
    nothing heard maps to a choice. ``confidence`` (0..1) is how sure the engine is that this
    choice was said, calibrated per engine so that one set of :class:`Thresholds` applies to
    every menu. Engines do not reject on confidence themselves: :func:`ivr.speech.decision.decide`
    turns a recognition into accept / confirm / reject.
    """

    text: str
    choice: str | None
    confidence: float
    engine: str


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Where a recognition's confidence is rejected, confirmed or accepted.

    Below ``reject_below`` the menu's no-match path runs; at or above ``accept_at`` the choice
    is taken; in between the caller is asked to confirm it ("Did you say lost card?").
    Each engine ships defaults calibrated on generated speech; a menu may override them.
    """

    reject_below: float
    accept_at: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.reject_below <= self.accept_at <= 1.0:
            raise ValueError(
                f"thresholds must satisfy 0 <= reject_below ({self.reject_below}) "
                f"<= accept_at ({self.accept_at}) <= 1"
            )


class Recognizer(Protocol):
    """Decodes one utterance, fed incrementally. Used from one thread at a time."""

    def accept(self, pcm: bytes) -> None:
        """Feed 8 kHz 16-bit little-endian mono PCM (any length, frame multiples preferred)."""

    def result(self) -> Recognition:
        """End of the utterance: the final result."""


class SpeechEngine(Protocol):
    """A loaded model for one or more languages; thread-safe factory of recognisers."""

    name: str
    thresholds: Thresholds  # calibrated defaults for this engine and model

    def languages(self) -> frozenset[str]:
        """Languages this engine can recognise (``{"en"}``)."""

    def recognizer(self, choices: Sequence[SpeechChoice], language: str) -> Recognizer:
        """A recogniser restricted to these choices (a grammar), for one utterance."""


@runtime_checkable
class PooledEngine(Protocol):
    """An engine whose decodes run in ``processes`` worker processes; ``close()`` stops them."""

    processes: int
    replaced: int  # pools replaced after a worker crashed or hung

    def call(self, fn: Callable[..., T], *args: Any, timeout_s: float = ...) -> T:
        """``fn(*args)`` in a worker (blocking)."""

    def close(self) -> None:
        """Stop the workers (blocking)."""
