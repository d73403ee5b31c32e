"""Speech menus confirm a choice the recogniser was unsure of ("Did you say lost card?"),
reject on the menu's own thresholds, and record both the choice and the answer (issue 14)."""

from __future__ import annotations

import pytest
from support.flowkit import flow, run

from ivr.errors import FlowErrors
from ivr.flow.confirm_words import DEFAULT_PROMPTS

MENU = """
start: main
nodes:
  main:
    menu:
      prompt: "Say balance or lost card. Or press 1 or 2."
      input: [dtmf, speech]
      options:
        "1": {goto: balance, words: [balance, account balance]}
        "2": {goto: lost, words: [lost card, stolen card]}
      no_match: {prompt: "Sorry, I did not get that.", max: 1}
      otherwise: agent%s
  balance: {play: "Balance.", next: hangup}
  lost: {play: "Lost card.", next: hangup}
  agent: {play: "Agent.", next: hangup}
"""


def menu(extra: str = "") -> str:
    return MENU % "".join(f"\n      {line}" for line in extra.splitlines() if line)


def heard(transcript: list[str]) -> list[str]:
    return [line.removeprefix("play: ") for line in transcript if line.startswith("play")]


async def test_an_unsure_choice_is_confirmed_with_a_spoken_yes() -> None:
    record, channel = await run(flow(menu()), "unsure:lost card,say:yes")
    assert record.path == ["main", "lost"]
    assert [(i.kind, i.value) for i in record.inputs] == [
        ("speech", "lost card"),
        ("confirm", "yes"),
    ]
    assert "Did you say lost card? Say yes or no, or press 1 for yes and 2 for no." in heard(
        channel.transcript
    )


async def test_a_key_answers_the_confirmation_too() -> None:
    record, _ = await run(flow(menu()), "unsure:account balance,1")
    assert record.path == ["main", "balance"]
    assert record.inputs[-1].kind == "confirm" and record.inputs[-1].value == "1"


async def test_no_asks_the_menu_again_and_counts_as_a_no_match() -> None:
    record, channel = await run(flow(menu()), "unsure:lost card,say:no,say:balance")
    assert record.path == ["main", "balance"]
    assert [(i.kind, i.value) for i in record.inputs] == [
        ("speech", "lost card"),
        ("confirm", "no"),
        ("speech", "balance"),
    ]
    # the question names the option's first word, even when another phrase was said
    assert "Did you say lost card?" in " ".join(heard(channel.transcript))
    # a second "no" is one no-match too many (max 1): the menu gives up
    record, _ = await run(flow(menu()), "unsure:lost card,2,unsure:lost card,say:wrong")
    assert record.path == ["main", "agent"]


async def test_silence_or_nonsense_at_the_question_is_not_a_yes() -> None:
    record, _ = await run(flow(menu()), "unsure:lost card,wait,say:balance")
    assert record.path == ["main", "balance"]
    record, _ = await run(flow(menu()), "unsure:lost card,say:pizza,say:balance")
    assert record.path == ["main", "balance"]


async def test_a_sure_choice_is_not_confirmed_unless_the_menu_always_confirms() -> None:
    record, channel = await run(flow(menu()), "say:lost card")
    assert record.path == ["main", "lost"]
    assert not any("Did you say" in line for line in channel.transcript)
    record, _ = await run(flow(menu("confirm: always")), "say:lost card,say:right")
    assert record.path == ["main", "lost"]
    assert [i.kind for i in record.inputs] == ["speech", "confirm"]


async def test_never_confirm_takes_even_an_unsure_choice() -> None:
    record, channel = await run(flow(menu("confirm: never")), "unsure:lost card")
    assert record.path == ["main", "lost"]
    assert [i.kind for i in record.inputs] == ["speech"]
    assert not any("Did you say" in line for line in channel.transcript)


async def test_a_menu_has_its_own_question_in_each_language() -> None:
    extra = """confirm_prompt: {en: "You said {choice}, right?", zh: "是{choice}吗？"}"""  # noqa: RUF001
    f = flow(menu(extra))
    option = f.nodes["main"].options["2"]  # type: ignore[attr-defined]
    assert option.confirm_prompt.parts("en")[0].value == "You said lost card, right?"
    assert option.confirm_prompt.parts("zh")[0].value == "是lost card吗？"  # noqa: RUF001
    # every question is a prompt of the flow, so it is rendered ahead of time
    assert option.confirm_prompt in f.prompts()
    record, channel = await run(f, "unsure:lost card,say:correct")
    assert record.path == ["main", "lost"]
    assert "You said lost card, right?" in heard(channel.transcript)


def test_the_default_question_follows_the_menu_languages() -> None:
    extra = 'prompt: {en: "Say balance.", ko: "잔액이라고 말씀하세요."}'
    f = flow(menu().replace('prompt: "Say balance or lost card. Or press 1 or 2."', extra))
    question = f.nodes["main"].options["1"].confirm_prompt  # type: ignore[attr-defined]
    assert question.parts("ko")[0].value == DEFAULT_PROMPTS["ko"].replace("{choice}", "balance")
    assert question.parts("en")[0].value.startswith("Did you say balance?")


def test_thresholds_are_read_and_checked() -> None:
    node = flow(menu("min_confidence: 0.4\naccept_confidence: 0.8")).nodes["main"]
    got = (node.min_confidence, node.accept_confidence, node.confirm_mode)  # type: ignore[attr-defined]
    assert got == (0.4, 0.8, "auto")
    with pytest.raises(FlowErrors, match=r"min_confidence 0\.9 is above accept_confidence 0\.5"):
        flow(menu("min_confidence: 0.9\naccept_confidence: 0.5"))
    with pytest.raises(FlowErrors, match="'sometimes' is not one of 'auto', 'always', 'never'"):
        flow(menu("confirm: sometimes"))
    with pytest.raises(FlowErrors, match=r"1\.5 is greater than the maximum of 1"):
        flow(menu("min_confidence: 1.5"))
