"""Generated speech sets for calibrating and measuring out-of-grammar rejection (issue 14).

One English menu with nine choices, like the bank's main menu, and one Korean menu; for each,
phrases that are choices (in-grammar, including the filler words callers wrap around them) and
phrases that are not (out-of-grammar: other requests, chit-chat, hesitations).

Every list is split in two: ``dev`` is what thresholds are calibrated on, ``test`` is held out
and only measured (other phrases, other voices, other noise seeds), so a figure reported on
``test`` was never tuned to.
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.speech.base import SpeechChoice
from support.speech_audio import Voice

EN_MENU = (
    SpeechChoice("1", ("account balance", "balance")),
    SpeechChoice("2", ("lost card", "stolen card")),
    SpeechChoice("3", ("offers", "installments")),
    SpeechChoice("4", ("mortgage",)),
    SpeechChoice("5", ("opening hours",)),
    SpeechChoice("6", ("yes",)),
    SpeechChoice("7", ("no",)),
    SpeechChoice("8", ("repeat",)),
    SpeechChoice("0", ("speak to an agent", "agent", "operator")),
)

# (what is said, the choice key it must give)
EN_IN_DEV = (
    ("account balance", "1"),
    ("balance", "1"),
    ("lost card", "2"),
    ("stolen card", "2"),
    ("offers", "3"),
    ("mortgage", "4"),
    ("opening hours", "5"),
    ("yes", "6"),
    ("no", "7"),
    ("repeat", "8"),
    ("agent", "0"),
    ("operator", "0"),
)
EN_IN_TEST = (
    ("account balance", "1"),
    ("balance", "1"),
    ("lost card", "2"),
    ("stolen card", "2"),
    ("installments", "3"),
    ("offers", "3"),
    ("mortgage", "4"),
    ("opening hours", "5"),
    ("yes", "6"),
    ("no", "7"),
    ("repeat", "8"),
    ("speak to an agent", "0"),
    ("agent", "0"),
)
EN_OOG_DEV = (
    "transfer money to my brother",
    "pizza delivery please",
    "um",
    "what time is it",
    "I forgot my password",
    "hello",
    "can you hear me",
    "cancel my subscription",
    "the weather today",
    "change my address",
    "thank you",
    "I don't know",
    "car insurance",
    "open a savings account",
    "report fraud",
    "my name is John",
)
EN_OOG_TEST = (
    "send money abroad",
    "book a table for two",
    "uh",
    "where is the nearest branch",
    "reset my pin",
    "good morning",
    "is anybody there",
    "close my account",
    "it is raining",
    "update my phone number",
    "thanks a lot",
    "maybe later",
    "travel insurance",
    "credit limit",
    "complaint",
    "my daughter",
)

KO_MENU = (
    SpeechChoice("1", ("잔액",)),
    SpeechChoice("2", ("카드 분실", "분실")),
    SpeechChoice("3", ("대출",)),
    SpeechChoice("6", ("네",)),
    SpeechChoice("7", ("아니오",)),
    SpeechChoice("8", ("다시",)),
    SpeechChoice("0", ("상담원",)),
)
KO_IN_DEV = (
    ("잔액", "1"),
    ("카드 분실", "2"),
    ("대출", "3"),
    ("네", "6"),
    ("아니오", "7"),
    ("다시", "8"),
    ("상담원", "0"),
)
KO_IN_TEST = (
    ("잔액", "1"),
    ("분실", "2"),
    ("대출", "3"),
    ("네", "6"),
    ("아니오", "7"),
    ("다시", "8"),
    ("상담원", "0"),
)
KO_OOG_DEV = (
    "안녕하세요",
    "피자 배달",
    "날씨 어때요",
    "비밀번호",
    "감사합니다",
    "주소 변경",
    "음",
    "여보세요",
)
KO_OOG_TEST = (
    "송금",
    "영업 시간",
    "어",
    "지점 위치",
    "고맙습니다",
    "보험",
    "모르겠어요",
    "전화번호",
)

EN_DEV_VOICES = (
    Voice("en-us", 160, 50),
    Voice("en-gb", 140, 40),
    Voice("en-us+f3", 175, 60),
)
EN_TEST_VOICES = (
    Voice("en-gb-x-rp+m3", 150, 45),
    Voice("en-us+f2", 130, 55),
    Voice("en-029", 155, 50),
)
KO_DEV_VOICES = (Voice("ko", 150, 50), Voice("ko+f3", 130, 60))
KO_TEST_VOICES = (Voice("ko+m3", 160, 45), Voice("ko+f2", 140, 55))

# (snr_db or None for clean, noise kind): clean and 20 dB, as the targets say
CONDITIONS: tuple[tuple[float | None, str], ...] = (
    (None, "white"),
    (20.0, "white"),
    (20.0, "pink"),
)


@dataclass(frozen=True, slots=True)
class SpeechSet:
    """One language's menu and its phrases for one split (``dev`` or ``test``)."""

    language: str
    menu: tuple[SpeechChoice, ...]
    in_grammar: tuple[tuple[str, str], ...]
    out_of_grammar: tuple[str, ...]
    voices: tuple[Voice, ...]
    seed: int  # noise seeds differ between the splits


SETS = {
    ("en", "dev"): SpeechSet("en", EN_MENU, EN_IN_DEV, EN_OOG_DEV, EN_DEV_VOICES, 1),
    ("en", "test"): SpeechSet("en", EN_MENU, EN_IN_TEST, EN_OOG_TEST, EN_TEST_VOICES, 2),
    ("ko", "dev"): SpeechSet("ko", KO_MENU, KO_IN_DEV, KO_OOG_DEV, KO_DEV_VOICES, 1),
    ("ko", "test"): SpeechSet("ko", KO_MENU, KO_IN_TEST, KO_OOG_TEST, KO_TEST_VOICES, 2),
}
