"""A larger Korean calibration set for the Vosk nearest-choice engine (issue 14).

The Korean ``dev`` split of :mod:`support.speech_sets` has 90 utterances (two voices, three
conditions), too few to fit a confidence curve with more than one feature or to pick
thresholds without chance deciding. This set adds ten more espeak-ng Korean voices (other
variants, 120-185 words per minute, pitches 35-65) saying the menu's phrases and sixteen
out-of-grammar phrases, under the same :data:`~support.speech_sets.CONDITIONS`.

It never overlaps the held-out ``test`` split: none of its voices (``ko+m3``, ``ko+f2``) and
none of its out-of-grammar phrases are used here, and the noise seed differs. (The in-grammar
phrases are the menu's own, as in every split.) ``benchmarks/calibrate_vosk.py`` fits and
chooses on ``dev`` plus this set, and only reports ``test``.
"""

from __future__ import annotations

from collections.abc import Iterator

from support.speech_audio import Voice
from support.speech_sets import KO_MENU, SETS, SpeechSet

VOICES = (
    Voice("ko+m1", 170, 40),
    Voice("ko+m2", 185, 50),
    Voice("ko+m4", 120, 45),
    Voice("ko+m5", 165, 55),
    Voice("ko+m6", 145, 35),
    Voice("ko+m7", 175, 50),
    Voice("ko+f1", 155, 60),
    Voice("ko+f4", 180, 65),
    Voice("ko+f5", 135, 55),
    Voice("ko", 175, 45),
)
IN_GRAMMAR = (
    ("잔액", "1"),
    ("카드 분실", "2"),
    ("분실", "2"),
    ("대출", "3"),
    ("네", "6"),
    ("아니오", "7"),
    ("다시", "8"),
    ("상담원", "0"),
)
OUT_OF_GRAMMAR = (
    "계좌 이체",  # account transfer
    "환전",  # currency exchange
    "카드 발급",  # issue a card
    "예금",  # deposit
    "이자",  # interest
    "아",  # ah
    "글쎄요",  # well...
    "주문 취소",  # cancel the order
    "배송 조회",  # track a delivery
    "고객 센터",  # customer centre
    "잠깐만요",  # just a moment
    "뭐라고요",  # what did you say
    "안녕하세요",  # hello
    "감사합니다",  # thank you
    "음",  # um
    "피자 배달",  # pizza delivery
)
SEED = 3  # dev is 1, test is 2

CALIBRATION = SpeechSet("ko", KO_MENU, IN_GRAMMAR, OUT_OF_GRAMMAR, VOICES, SEED)


def calibration_sets() -> tuple[SpeechSet, ...]:
    """What Korean thresholds and the confidence curve are fitted on: dev, then this set."""
    return SETS[("ko", "dev")], CALIBRATION


def held_out_overlap() -> Iterator[str]:
    """Anything this set shares with the held-out test split (nothing, by construction)."""
    test = SETS[("ko", "test")]
    names = {v.name for v in test.voices}
    yield from (f"voice {v}" for v in VOICES if v.name in names)
    yield from (f"phrase {p}" for p in OUT_OF_GRAMMAR if p in test.out_of_grammar)
    if test.seed == SEED:
        yield "noise seed"
