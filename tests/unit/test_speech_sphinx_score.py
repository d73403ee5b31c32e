"""pocketsphinx's confidence measures (``ivr.speech.sphinx_score``) on hand-made decodes: the
share of the audio's energy a decode left outside its words, and the features it feeds."""

from __future__ import annotations

import numpy as np
import pytest

from ivr.speech.sphinx_score import CALIBRATION, FEATURES, Decoded, Segment, energy_outside

FRAME = 160  # samples per decoder frame (10 ms at 16 kHz)


def frames(*levels: float) -> np.ndarray:
    """One frame per level, each a constant of that amplitude."""
    return np.concatenate([np.full(FRAME, level) for level in levels])


def test_speech_inside_the_words_leaves_only_the_silence_outside() -> None:
    audio = frames(0, 0, 3000, 3000, 3000, 0)
    assert energy_outside(audio, [(2, 4)]) < 1e-5


def test_speech_left_in_a_silence_is_counted() -> None:
    # "reset my pin" decoded as "repeat": the word took the first half of the speech
    audio = frames(0, 3000, 3000, 3000, 3000, 0)
    assert energy_outside(audio, [(1, 2)]) == pytest.approx(0.5, abs=1e-4)


def test_no_word_leaves_all_of_the_energy_outside() -> None:
    assert energy_outside(frames(100, 2000), []) == pytest.approx(1.0)


def test_a_partial_frame_and_spans_past_the_end_are_ignored() -> None:
    audio = np.concatenate([frames(1000, 1000), np.full(FRAME // 2, 30000.0)])
    assert energy_outside(audio, [(1, 9)]) == pytest.approx(0.5)
    assert energy_outside(np.zeros(FRAME - 1), [(0, 0)]) == 0.0


def test_the_calibration_weighs_every_feature() -> None:
    assert len(CALIBRATION.weights) == len(CALIBRATION.mean) == len(FEATURES)


def test_energy_outside_the_words_lowers_the_confidence() -> None:
    def decoded(outside: float) -> Decoded:
        segments = (Segment("<sil>", 30, -0.01), Segment("repeat", 50, -0.12))
        return Decoded("repeat", segments, 80, -0.2, 5, outside)

    # the fitted weight is negative: the same scores with half the speech left over
    assert CALIBRATION.confidence(decoded(0.5)) < CALIBRATION.confidence(decoded(0.01))
