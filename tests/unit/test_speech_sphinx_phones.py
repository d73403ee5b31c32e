"""The phone evidence pocketsphinx's doubtful decodes get (``ivr.speech.sphinx_phones``), on
hand-made phone decodes, and the model that weighs it."""

from __future__ import annotations

import pytest

from ivr.speech.sphinx_phones import PHONE_FEATURES, edit_distance, needs_phones, phone_evidence
from ivr.speech.sphinx_score import (
    CALIBRATION,
    FEATURES,
    PHONE_CALIBRATION,
    Decoded,
    Segment,
    features,
)

REPEAT = ["R", "IH", "P", "IY", "T"]


def heard(*phones: str, start: int = 0, each: int = 5) -> list[tuple[str, int, int]]:
    """Phones back to back from frame ``start``, ``each`` frames long."""
    return [(p, start + i * each, start + (i + 1) * each - 1) for i, p in enumerate(phones)]


def test_edit_distance_counts_substitutions_insertions_and_deletions() -> None:
    assert edit_distance(REPEAT, REPEAT) == 0
    assert edit_distance(REPEAT, ["R", "IY", "P", "IY", "T"]) == 1
    assert edit_distance(REPEAT, [*REPEAT, "S"]) == 1
    assert edit_distance([], REPEAT) == len(REPEAT)


def test_the_phrase_heard_where_it_was_decoded_leaves_no_doubt() -> None:
    assert phone_evidence(heard(*REPEAT), [(0, 24)], REPEAT) == (0.0, 0.0, 0.0)


def test_speech_left_outside_the_words_counts_against_the_phrase() -> None:
    # "reset my pin" decoded as "repeat": "my pin" heard after the word's frames
    said = heard(*REPEAT) + heard("M", "AY", "P", "IH", "N", start=30)
    whole, inside, outside = phone_evidence(said, [(0, 24)], REPEAT)
    assert inside == 0.0
    assert outside == pytest.approx(1.0)
    assert whole == pytest.approx(0.5)


def test_other_phones_inside_the_words_count_against_the_phrase() -> None:
    whole, inside, outside = phone_evidence(heard("P", "IY", "Z", "AH"), [(0, 19)], REPEAT)
    assert inside == whole == pytest.approx(4 / 5)
    assert outside == 0.0


def test_nothing_heard_and_nothing_expected_do_not_divide_by_zero() -> None:
    assert phone_evidence([], [], []) == (0.0, 0.0, 0.0)
    assert phone_evidence([], [(0, 9)], REPEAT) == (1.0, 1.0, 0.0)


def test_only_doubtful_confidences_are_worth_a_phone_decode() -> None:
    assert not needs_phones(0.0)
    assert needs_phones(0.12)
    assert needs_phones(0.81)
    assert not needs_phones(0.995)


def test_the_phone_model_weighs_the_scores_and_the_evidence() -> None:
    expected = len(FEATURES) + len(PHONE_FEATURES)
    assert len(PHONE_CALIBRATION.weights) == len(PHONE_CALIBRATION.mean) == expected
    segments = (Segment("<sil>", 30, -0.01), Segment("repeat", 50, -0.12, start=30))
    plain = Decoded("repeat", segments, 80, -0.2, 5, 0.05)
    assert len(features(plain) or ()) == len(FEATURES)
    assert plain.word_spans() == [(30, 79)]

    def sure(evidence: tuple[float, float, float]) -> float:
        decoded = Decoded("repeat", segments, 80, -0.2, 5, 0.05, evidence)
        return PHONE_CALIBRATION.confidence(decoded)

    # the fitted weight of the distance over the utterance is negative
    assert sure((0.9, 0.3, 0.0)) < sure((0.1, 0.3, 0.0))
    assert 0.0 <= CALIBRATION.confidence(plain) <= 1.0
