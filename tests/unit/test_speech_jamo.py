"""Hangul as sounds, how alike two readings sound, and the nearest menu choice."""

from __future__ import annotations

import pytest

from ivr.speech.base import SpeechChoice
from ivr.speech.jamo import (
    CONSONANT_WEIGHT,
    FINALS,
    INITIALS,
    MEDIALS,
    compose,
    decompose,
    distance,
    indel_cost,
    phonemes,
    similarity,
    substitution_cost,
)
from ivr.speech.nearest import CURVE, Evidence, Reading, nearest, posteriors

MENU = (
    SpeechChoice("1", ("잔액",)),
    SpeechChoice("2", ("카드 분실", "분실")),
    SpeechChoice("6", ("네",)),
    SpeechChoice("7", ("아니오",)),
    SpeechChoice("8", ("다시",)),
    SpeechChoice("0", ("상담원",)),
)


def test_every_syllable_decomposes_and_composes_back() -> None:
    assert (len(INITIALS), len(MEDIALS), len(FINALS)) == (19, 21, 28)
    for code in range(0xAC00, 0xD7A4):
        assert compose(*decompose(chr(code))) == chr(code)


def test_decompose_refuses_what_is_not_a_syllable() -> None:
    for char in ("a", "ㄱ", "1", " "):
        with pytest.raises(ValueError, match="not a Hangul syllable"):
            decompose(char)


@pytest.mark.parametrize(
    ("written", "said"),
    [
        ("잔액", "자낵"),  # a final moves onto a silent initial
        ("옷", "옫"),  # finals take one of seven sounds
        ("부엌", "부억"),
        ("닭", "닥"),  # a cluster keeps one consonant
        ("카드 분실", "카드분실"),  # word boundaries are no sound
    ],
)
def test_spelling_and_pronunciation_give_the_same_sounds(written: str, said: str) -> None:
    assert phonemes(written) == phonemes(said)


def test_final_ng_is_not_the_silent_initial() -> None:
    assert phonemes("강") == ("ㄱ", "ㅏ", "ŋ")
    assert phonemes("아") == ("ㅏ",)


def test_other_scripts_are_compared_by_character() -> None:
    assert phonemes("Lost card!") == tuple("lostcard")
    assert similarity("lost card", "lost card") == 1.0
    assert similarity("lost cart", "lost card") == pytest.approx(1 - 1 / 8)


def test_near_sounds_cost_less_than_unrelated_ones() -> None:
    assert substitution_cost("ㄱ", "ㄱ") == 0.0
    assert substitution_cost("ㄱ", "ㅋ") < substitution_cost("ㄱ", "ㄴ") == CONSONANT_WEIGHT
    assert substitution_cost("ㄱ", "ㅏ") == substitution_cost("ㅏ", "ㅜ") == 1.0
    assert indel_cost("ㅎ") < indel_cost("ㄱ") < indel_cost("ㅏ") == 1.0
    assert (
        substitution_cost("ㅐ", "ㅔ")
        < substitution_cost("ㅓ", "ㅗ")
        < substitution_cost("ㅏ", "ㅜ")
    )
    assert distance(phonemes("대출"), phonemes("태출")) < distance(
        phonemes("대출"), phonemes("매출")
    )


def test_distance_is_an_edit_distance() -> None:
    a, b = phonemes("상담원"), phonemes("상담")
    assert distance(a, a) == 0.0
    # ㅝ (a vowel, 1) and ㄴ (a consonant, CONSONANT_WEIGHT) left out
    assert distance(a, b) == distance(b, a) == pytest.approx(1.0 + CONSONANT_WEIGHT)
    assert distance((), a) == pytest.approx(sum(indel_cost(s) for s in a))


def test_similarity_is_scaled_by_the_longer_reading() -> None:
    assert similarity("네", "네") == 1.0
    assert similarity("", "네") == 0.0
    # a fragment of a long phrase is far from it, as long speech is from a short phrase
    assert similarity("상", "상담원") < 0.5
    assert similarity("네 감사합니다", "네") < 0.3


def readings(*texts: str) -> list[Reading]:
    """One decode's readings, sharing its posterior equally."""
    return [Reading(t, 1.0 / len(texts)) for t in texts]


def test_nearest_takes_the_choice_that_sounds_most_alike() -> None:
    found = nearest([readings("아니요"), readings("아 니 오", "아")], MENU, "ko")
    assert (found.key, found.phrase) == ("7", "아니오")
    ev = found.evidence
    assert ev.score > 0.8 and ev.margin > 0.3
    assert found.confidence > CURVE(Evidence(0.5, ev.agreement, 0.0, ev.length))


def test_nearest_averages_over_decodes() -> None:
    # one decode says 다시, the other 잔액: neither wins by much, so the margin is small,
    # and only half the readings agree on the winner
    split = nearest([readings("다시"), readings("잔액")], MENU, "ko")
    agreed = nearest([readings("다시"), readings("다시")], MENU, "ko")
    assert split.evidence.margin < 0.2 < agreed.evidence.margin
    assert split.evidence.agreement == 0.5 and agreed.evidence.agreement == 1.0
    assert split.confidence < agreed.confidence


def test_agreement_is_the_posterior_share_of_the_readings_that_pick_the_winner() -> None:
    weighted = [Reading("다시", 0.7), Reading("네", 0.2), Reading("다 시", 0.1)]
    found = nearest([weighted], MENU, "ko")
    assert found.key == "8" and found.evidence.agreement == 0.8


def test_posteriors_follow_the_decoder_scores() -> None:
    shares = posteriors([124.3, 124.3, 123.6, 110.0])
    assert sum(shares) == pytest.approx(1.0)
    assert shares[0] == shares[1] > shares[2] > shares[3] > 0.0
    assert posteriors([]) == []


def test_nothing_heard_is_no_choice() -> None:
    found = nearest([readings(""), []], MENU, "ko")
    assert found.key is None and found.confidence == 0.0


def test_nearest_in_english_uses_the_normalised_text() -> None:
    menu = [SpeechChoice("1", ("Lost card",)), SpeechChoice("2", ("balance",))]
    assert nearest([readings("lost cart")], menu, "en").key == "1"
    assert nearest([readings("BALANCE!")], menu, "en").score == 1.0


def test_confidence_grows_with_score_agreement_and_margin_and_falls_with_length() -> None:
    def conf(score: float, agreement: float = 0.5, margin: float = 0.1, length: float = 0.4):
        return CURVE(Evidence(score, agreement, margin, length))

    assert 0.0 < conf(0.3) < conf(0.6) < conf(0.9) < 1.0
    assert conf(0.6, agreement=0.2) < conf(0.6, agreement=0.9)
    assert conf(0.6, margin=0.0) < conf(0.6, margin=0.3)
    assert conf(0.6, length=1.0) < conf(0.6, length=0.2)
