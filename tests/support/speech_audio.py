"""Test audio for the recognisers: espeak-ng speech at telephone quality, with optional noise.

Nobody tunes the recognisers to one voice: tests and the benchmark vary the espeak-ng voice
(``en-us``, ``en-gb``, ``en-us+f3``...), the speed and the pitch, add white or pink noise at a
chosen signal-to-noise ratio, and band-limit the result to the telephone band (300-3400 Hz,
8 kHz 16-bit mono), which is what Asterisk hands to the AudioSocket server.

Speech is rendered with the ``espeak-ng`` command (``--stdout`` writes a 22.05 kHz WAV), which
is the same synthesiser pyttsx3 drives in :mod:`ivr.prompts.tts`, but allows voice variants
(``+f3``), speed and pitch per call without touching a shared engine.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
import wave
from dataclasses import dataclass

import numpy as np
import soxr

RATE_HZ = 8000


@dataclass(frozen=True, slots=True)
class Voice:
    """An espeak-ng voice variant: ``name`` as for ``espeak-ng -v``, words per minute, pitch."""

    name: str = "en-us"
    speed_wpm: int = 160
    pitch: int = 50

    def __str__(self) -> str:
        return f"{self.name}@{self.speed_wpm}wpm/p{self.pitch}"


ENGLISH_VOICES = (
    Voice("en-us", 160, 50),
    Voice("en-gb", 140, 40),
    Voice("en-us+f3", 175, 60),
    Voice("en-gb-x-rp+m3", 150, 45),
    Voice("en-us+f2", 130, 55),
)
KOREAN_VOICES = (Voice("ko", 150, 50), Voice("ko+f3", 130, 60))


def have_espeak() -> bool:
    """True when the ``espeak-ng`` command is installed."""
    return shutil.which("espeak-ng") is not None


@functools.lru_cache(maxsize=512)
def _espeak(text: str, voice: Voice) -> tuple[np.ndarray, int]:
    out = subprocess.run(
        [
            "espeak-ng",
            "-v",
            voice.name,
            "-s",
            str(voice.speed_wpm),
            "-p",
            str(voice.pitch),
            "--stdout",
            text,
        ],
        check=True,
        capture_output=True,
        timeout=30,
    ).stdout
    with wave.open(io.BytesIO(out), "rb") as w:
        rate = w.getframerate()
        data = w.readframes(w.getnframes())
    return np.frombuffer(data, dtype="<i2").astype(np.float64), rate


def _telephone_band(samples: np.ndarray, rate: int) -> np.ndarray:
    """300-3400 Hz band-pass (FFT mask with short cosine ramps), like a telephone line."""
    spectrum = np.fft.rfft(samples)
    freqs = np.fft.rfftfreq(samples.size, 1.0 / rate)
    gain = np.clip((freqs - 200.0) / 100.0, 0.0, 1.0) * np.clip((3600.0 - freqs) / 200.0, 0.0, 1.0)
    filtered: np.ndarray = np.fft.irfft(spectrum * gain, n=samples.size)
    return filtered


def _noise(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n)
    if kind == "white":
        return white
    if kind != "pink":
        raise ValueError(f"unknown noise kind {kind!r}; use 'white' or 'pink'")
    spectrum = np.fft.rfft(white)
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1] if n > 1 else 1.0
    pink: np.ndarray = np.fft.irfft(spectrum / np.sqrt(freqs), n=n)
    return pink


def speech(
    text: str,
    voice: Voice = ENGLISH_VOICES[0],
    *,
    snr_db: float | None = None,
    noise: str = "white",
    seed: int = 0,
    lead_s: float = 0.3,
    tail_s: float = 0.3,
) -> bytes:
    """``text`` spoken by ``voice`` as 8 kHz 16-bit mono PCM, telephone band-limited.

    ``snr_db`` adds ``noise`` ("white" or "pink") so the speech-to-noise power ratio (speech
    measured over its active part) is that many dB; the noise also covers the ``lead_s`` and
    ``tail_s`` of silence around the words. ``seed`` makes the noise reproducible.
    """
    raw, rate = _espeak(text, voice)
    samples = soxr.resample(raw, rate, RATE_HZ)
    pad = np.zeros(int(lead_s * RATE_HZ)), np.zeros(int(tail_s * RATE_HZ))
    samples = _telephone_band(np.concatenate([pad[0], samples, pad[1]]), RATE_HZ)
    if snr_db is not None:
        active = samples[np.abs(samples) > 0.05 * np.max(np.abs(samples))]
        speech_power = float(np.mean(active**2)) if active.size else 1.0
        rng = np.random.default_rng(seed)
        n = _telephone_band(_noise(samples.size, noise, rng), RATE_HZ)
        n *= np.sqrt(speech_power / (float(np.mean(n**2)) * 10 ** (snr_db / 10)))
        samples = samples + n
    return np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()


def silence(seconds: float = 1.0, *, noise_dbfs: float | None = None, seed: int = 0) -> bytes:
    """8 kHz PCM silence; with ``noise_dbfs`` (e.g. -60), low telephone-band white noise."""
    n = int(seconds * RATE_HZ)
    if noise_dbfs is None:
        return bytes(2 * n)
    rng = np.random.default_rng(seed)
    hiss = _telephone_band(rng.standard_normal(n), RATE_HZ)
    hiss *= 32768 * 10 ** (noise_dbfs / 20) / max(float(np.sqrt(np.mean(hiss**2))), 1e-9)
    return np.clip(np.round(hiss), -32768, 32767).astype("<i2").tobytes()


def write_wav(path: str, pcm: bytes, rate: int = RATE_HZ) -> None:
    """Write 16-bit mono PCM as a WAV file."""
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


def alaw_encode(pcm: bytes) -> bytes:
    """16-bit PCM to G.711 A-law (ITU-T G.711, what Asterisk sends over RTP as PCMA)."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.int32) >> 3  # 13-bit magnitude range
    sign = np.where(x >= 0, 0x80, 0x00)
    mag = np.minimum(np.where(x >= 0, x, -x - 1), 0xFFF)
    exponent = np.zeros_like(mag)
    for e in range(1, 8):
        exponent = np.where(mag >= (16 << e), e, exponent)
    mantissa = np.where(exponent == 0, mag >> 1, mag >> exponent) & 0x0F
    code = (sign | (exponent << 4) | mantissa) ^ 0x55
    return code.astype(np.uint8).tobytes()


def alaw_decode(alaw: bytes) -> bytes:
    """G.711 A-law back to 16-bit PCM (each code's segment midpoint)."""
    code = np.frombuffer(alaw, dtype=np.uint8).astype(np.int32) ^ 0x55
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    mag = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0)
    )
    return np.where(code & 0x80, mag, -mag).astype("<i2").tobytes()


def alaw_round_trip(pcm: bytes) -> bytes:
    """``pcm`` as the far end hears it through an A-law (PCMA) call leg."""
    return alaw_decode(alaw_encode(pcm))
