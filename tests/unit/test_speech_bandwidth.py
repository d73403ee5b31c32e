"""The band extender: streaming, deterministic, and it fills only the band above the line's."""

from __future__ import annotations

import numpy as np
import pytest

from ivr.speech.bandwidth import HOP, RATE_HZ, BandExtender, extend


def tone(hz: float, seconds: float = 0.5, level: float = 8000.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE_HZ)) / RATE_HZ
    return (level * np.sin(2 * np.pi * hz * t)).astype("<i2")


def band_energy(samples: np.ndarray, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(samples.size, 1.0 / RATE_HZ)
    return float(spectrum[(freqs >= low) & (freqs <= high)].sum())


def test_chunks_of_any_size_give_the_same_output_as_one_buffer() -> None:
    x = tone(3000.0)
    whole = np.frombuffer(extend(x.tobytes()), dtype="<i2")
    ext = BandExtender()
    parts = [ext.push(x[i : i + 37]) for i in range(0, x.size, 37)]
    chunked = np.concatenate([*parts, ext.flush()])
    assert np.array_equal(whole, chunked)
    assert whole.size == x.size + HOP  # delayed by one hop, nothing lost


def test_the_input_passes_through_and_the_upper_band_is_filled() -> None:
    x = tone(3000.0)  # inside the telephone band, where hiss shows
    y = np.frombuffer(extend(x.tobytes()), dtype="<i2")[HOP:].astype(np.float64)
    assert band_energy(x, 4000, 7600) < 1e-6 * band_energy(x, 0, 8000)
    filled = band_energy(y, 4000, 7600)
    assert 0.01 * band_energy(y, 2400, 3400) < filled < band_energy(y, 2400, 3400)
    # the telephone band is left as it was (the added noise starts above it)
    assert band_energy(y[: x.size], 0, 3500) == pytest.approx(band_energy(x, 0, 3500), rel=0.05)


def test_a_low_sound_gets_only_the_floor() -> None:
    low = np.frombuffer(extend(tone(300.0).tobytes()), dtype="<i2")
    high = np.frombuffer(extend(tone(3000.0).tobytes()), dtype="<i2")
    assert band_energy(low, 4000, 7600) < 0.01 * band_energy(high, 4000, 7600)


def test_same_seed_same_noise() -> None:
    x = tone(2800.0).tobytes()
    assert extend(x) == extend(x)
    assert extend(x, seed=1) != extend(x)
