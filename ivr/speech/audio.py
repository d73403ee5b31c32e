"""Audio plumbing for the recognisers: streaming resampling (soxr) and WAV reading.

Telephone audio arrives as 8 kHz 16-bit mono PCM; both embedded models want 16 kHz. The
stdlib ``audioop`` is deprecated (gone in Python 3.13), so resampling uses ``soxr``.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ivr.errors import SpeechError

MODEL_RATE_HZ = 16000


class StreamResampler:
    """Resamples a stream of 16-bit mono PCM chunks (soxr's streaming resampler).

    ``push`` returns what is ready; ``flush`` returns the filter's tail at the end. With equal
    rates it passes the bytes through.
    """

    def __init__(self, in_rate_hz: int, out_rate_hz: int = MODEL_RATE_HZ) -> None:
        import soxr

        self.in_rate_hz = in_rate_hz
        self.out_rate_hz = out_rate_hz
        self._stream: Any = None
        if in_rate_hz != out_rate_hz:
            self._stream = soxr.ResampleStream(in_rate_hz, out_rate_hz, 1, dtype="int16")
        self._odd = b""

    def push(self, pcm: bytes, *, last: bool = False) -> bytes:
        """Resample ``pcm`` (any length; an odd trailing byte waits for the next chunk)."""
        pcm = self._odd + pcm
        cut = len(pcm) - len(pcm) % 2
        pcm, self._odd = pcm[:cut], pcm[cut:]
        if self._stream is None:
            return pcm
        samples = np.frombuffer(pcm, dtype="<i2")
        out = self._stream.resample_chunk(samples, last=last)
        return np.asarray(out, dtype="<i2").tobytes()

    def flush(self) -> bytes:
        """The end of the stream: whatever the filter still holds."""
        return self.push(b"", last=True)


def resample(pcm: bytes, in_rate_hz: int, out_rate_hz: int) -> bytes:
    """Resample a whole buffer of 16-bit mono PCM."""
    if in_rate_hz == out_rate_hz:
        return pcm
    import soxr

    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2")
    return np.asarray(soxr.resample(samples, in_rate_hz, out_rate_hz), dtype="<i2").tobytes()


def comfort_noise(n_samples: int, rng: np.random.Generator, dbfs: float) -> np.ndarray:
    """White noise at ``dbfs`` RMS, as float samples (added to digital silence)."""
    noise: np.ndarray = rng.standard_normal(n_samples) * (32768.0 * 10 ** (dbfs / 20))
    return noise


@dataclass(frozen=True, slots=True)
class Pcm:
    """Mono 16-bit little-endian PCM with its sample rate."""

    data: bytes
    rate_hz: int

    @property
    def seconds(self) -> float:
        return len(self.data) / 2 / self.rate_hz


def read_wav(path: str | Path) -> Pcm:
    """Read a WAV file as mono 16-bit PCM (stereo is mixed down; rate kept).

    Raises :class:`SpeechError` naming the file for a missing file, a non-WAV file, or a
    sample width other than 16 bits.
    """
    p = Path(path)
    try:
        with wave.open(str(p), "rb") as w:
            width, channels, rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
            frames = w.readframes(w.getnframes())
    except FileNotFoundError:
        raise SpeechError(f"{p}: no such file") from None
    except (wave.Error, EOFError) as exc:
        raise SpeechError(
            f"{p}: not a PCM WAV file ({exc or 'too short'}); convert it with "
            f"'sox {p.name} -r 8000 -c 1 -b 16 out.wav'"
        ) from None
    if width != 2:
        raise SpeechError(
            f"{p}: expected 16-bit samples, got {8 * width}-bit; convert it with "
            f"'sox {p.name} -b 16 out.wav'"
        )
    if channels > 1:
        mixed = np.frombuffer(frames, dtype="<i2").reshape(-1, channels).mean(axis=1)
        frames = mixed.astype("<i2").tobytes()
    return Pcm(frames, rate)
