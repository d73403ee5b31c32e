"""ivr.speech.cleanup: isolated clicks silenced, the silence around speech trimmed to a margin,
everything else left bit for bit."""

from __future__ import annotations

import numpy as np

from ivr.speech.cleanup import remove_clicks, trim_silence

RATE = 8000
IDLE = 8  # A-law's idle code decoded: -72 dBFS


def quiet(seconds: float) -> np.ndarray:
    return np.full(int(seconds * RATE), IDLE, dtype=np.int32)


def vowel(seconds: float, amplitude: float = 8000.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return np.round(amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.int32)


def burst(samples: int = 58, amplitude: int = 16000) -> np.ndarray:
    return np.where(np.arange(samples) % 2, amplitude, -amplitude).astype(np.int32)


def pcm(*parts: np.ndarray) -> bytes:
    return np.concatenate(parts).astype("<i2").tobytes()


def samples(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2")


def test_a_click_alone_in_the_silence_is_silenced() -> None:
    # as on live calls: a 7 ms burst 300 ms before the word
    before = pcm(quiet(0.2), burst(), quiet(0.3), vowel(0.4), quiet(0.7))
    after = samples(remove_clicks(before))
    assert len(after) == len(samples(before))
    start = int(0.2 * RATE)
    assert not after[start : start + 58].any()  # the burst is gone
    assert np.array_equal(after[start + 80 :], samples(before)[start + 80 :])  # the rest stays


def test_a_click_in_the_hangover_after_the_word_is_silenced() -> None:
    before = pcm(quiet(0.5), vowel(0.4), quiet(0.6), burst(), quiet(0.2))
    after = samples(remove_clicks(before))
    assert np.abs(after[int(0.9 * RATE) :]).max() <= IDLE


def test_speech_and_a_plosive_next_to_it_are_left_alone() -> None:
    # a word-final "t": a short release 40 ms after the vowel is not a click
    word = pcm(quiet(0.5), vowel(0.3), quiet(0.04), burst(80), quiet(0.6))
    assert remove_clicks(word) == word
    assert remove_clicks(pcm(quiet(1.0))) == pcm(quiet(1.0))


def test_a_long_loud_sound_is_not_a_click() -> None:
    sound = pcm(quiet(0.5), burst(800), quiet(0.5))  # 100 ms
    assert remove_clicks(sound) == sound


def test_silence_is_trimmed_to_the_margin_on_each_side() -> None:
    lead, word, tail = quiet(1.0), vowel(0.4), quiet(0.9)
    trimmed = samples(trim_silence(pcm(lead, word, tail), margin_ms=400))
    assert len(trimmed) == int((0.4 + 0.4 + 0.4) * RATE)
    assert np.array_equal(trimmed[int(0.4 * RATE) : int(0.8 * RATE)], word)


def test_less_silence_than_the_margin_is_kept_as_it_is() -> None:
    short = pcm(quiet(0.2), vowel(0.4), quiet(0.1))
    assert trim_silence(short, margin_ms=400) == short
    assert trim_silence(pcm(quiet(1.0)), margin_ms=400) == pcm(quiet(1.0))  # nothing loud
