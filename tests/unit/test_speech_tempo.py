"""The streaming WSOLA time-stretch: length, pitch, streaming = whole buffer."""

from __future__ import annotations

import numpy as np
import pytest

from ivr.speech.tempo import Stretcher, stretch

RATE = 8000


def tone(hz: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return np.round(8000 * np.sin(2 * np.pi * hz * t)).astype("<i2")


def dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / RATE)[int(np.argmax(spectrum))])


@pytest.mark.parametrize("speed", [0.85, 1.0, 1.15])
def test_length_follows_the_speed_and_the_pitch_stays(speed: float) -> None:
    source = tone(220.0, 1.0)
    out = stretch(source, speed, RATE)
    # 1/speed as long, give or take the last piece (40 ms)
    assert abs(out.size - source.size / speed) <= 0.045 * RATE
    middle = out[out.size // 4 : 3 * out.size // 4]
    assert dominant_hz(middle) == pytest.approx(220.0, abs=4.0)
    # the overlap-add keeps the level (Hann windows at 50 % add up to one)
    level = np.sqrt(np.mean(middle.astype(np.float64) ** 2))
    assert level == pytest.approx(8000 / np.sqrt(2), rel=0.1)


def test_streaming_in_chunks_equals_the_whole_buffer() -> None:
    rng = np.random.default_rng(5)
    source = np.round(rng.standard_normal(9000) * 3000).astype("<i2")
    stretcher = Stretcher(0.85, RATE)
    parts = [stretcher.push(source[i : i + 160]) for i in range(0, source.size, 160)]
    parts.append(stretcher.flush())
    assert np.array_equal(np.concatenate(parts), stretch(source, 0.85, RATE))


def test_tiny_and_empty_streams() -> None:
    stretcher = Stretcher(1.15, RATE)
    assert stretcher.push(np.zeros(10, dtype="<i2")).size == 0  # not a piece's worth yet
    assert stretcher.flush().size > 0  # the end is padded out
    assert stretch(np.zeros(0, dtype="<i2"), 0.85, RATE).dtype == np.dtype("<i2")


def test_speed_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="speed"):
        Stretcher(3.0, RATE)
