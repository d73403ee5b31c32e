"""Grammar building and text -> choice matching (pure functions)."""

from __future__ import annotations

import pytest

from ivr.speech import grammar
from ivr.speech.base import SpeechChoice

MENU = [
    SpeechChoice("1", ("lost card", "stolen card")),
    SpeechChoice("2", ("sales",)),
    SpeechChoice("3", ("billing", "bill")),
    SpeechChoice("4", ("card",)),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Press 1, please!", "press one please"),
        ("  Lost   CARD. ", "lost card"),
        ("I'd like 42", "i'd like four two"),
    ],
)
def test_normalise_english(text: str, expected: str) -> None:
    assert grammar.normalise(text) == expected


def test_normalise_korean_keeps_hangul() -> None:
    assert grammar.normalise("상담원!", "ko") == "상담원"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("lost card", "1"),
        ("uh stolen card please", "1"),
        ("I want sales", "2"),
        ("bill", "3"),
        ("card", "4"),
        ("sales sales", "2"),
    ],
)
def test_match(text: str, key: str) -> None:
    found = grammar.match(text, MENU)
    assert found is not None and found.key == key


def test_longest_phrase_wins() -> None:
    found = grammar.match("lost card", MENU)
    assert found is not None and (found.key, found.phrase) == ("1", "lost card")


@pytest.mark.parametrize("text", ["", "weather forecast", "sales or billing", "weather sales"])
def test_no_match(text: str) -> None:
    assert grammar.match(text, MENU) is None


def test_digits_in_phrases_match_spoken_words() -> None:
    menu = [SpeechChoice("1", ("1",)), SpeechChoice("2", ("two",))]
    found = grammar.match("one", menu)
    assert found is not None and found.key == "1"


def test_jsgf_lists_each_phrase_once_and_garbage_excludes_menu_words() -> None:
    text = grammar.jsgf(MENU, garbage=("the", "card", "of"), fillers=False)
    assert "<choice> = ( lost card | stolen card | sales | billing | bill | card );" in text
    assert "<garbage> = ( the | of );" in text
    assert text.startswith("#JSGF V1.0;")


def test_jsgf_rivals_stand_for_the_whole_utterance_and_exclude_menu_words() -> None:
    text = grammar.jsgf(MENU, garbage=(), fillers=False, rivals=("uh", "sales"), rival_weight=1e-10)
    assert "<rival> = ( uh );" in text
    assert "public <utterance> = /1.0/ <choice> | /1e-10/ <rival>;" in text
    assert grammar.match("uh", MENU) is None  # a rival names no choice


def test_jsgf_needs_a_phrase() -> None:
    with pytest.raises(ValueError, match="at least one"):
        grammar.jsgf([SpeechChoice("1", ("!",))])


def test_vosk_phrases_with_and_without_unk() -> None:
    assert grammar.vosk_phrases(MENU)[-1] == "[unk]"
    assert "[unk]" not in grammar.vosk_phrases(MENU, unk=False)
    assert grammar.vosk_phrases([SpeechChoice("y", ("네",))], "ko", unk=False) == ["네"]
