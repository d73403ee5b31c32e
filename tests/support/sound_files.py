"""Sound files for tests: prompts of a known length."""

from __future__ import annotations

import wave
from pathlib import Path


def write_wav(path: Path, seconds: float, rate: int = 8000) -> None:
    """A mono 16-bit PCM WAV of silence, as the TTS renders prompts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * round(seconds * rate))
