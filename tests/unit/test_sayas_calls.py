"""Say-as in a call: values said from the language's clips in one batch, never by ``SAY``;
a language without rules keeps Asterisk's ``SAY`` commands; ``CHANNEL(language)`` is set."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.flowkit import flow, run

from ivr.asterisk.agi.channel import AgiChannel
from ivr.asterisk.agi.replies import Reply, parse_reply_line
from ivr.call.channel import CallInfo, Prompt
from ivr.call.queue import QueueState
from ivr.engines.http import extract
from ivr.flow.library import load_library
from ivr.flow.model_values import PromptSpec, SayValue
from ivr.flow.prompts import parse_prompt
from ivr.flow.sayas import clip_file
from ivr.runtime.sim import ScriptedChannel, StubHttp
from ivr.runtime.speak import say_value, speak

ROOT = Path(__file__).resolve().parents[2]
BALANCE = "一千两百三十四元五角"  # 1234.50


def heard(channel: ScriptedChannel) -> list[str]:
    return [line.removeprefix("play: ") for line in channel.transcript if line.startswith("play")]


async def test_a_mandarin_caller_hears_the_balance_from_mandarin_clips() -> None:
    bank = load_library([str(ROOT / "flows")], None).flows["bank"]
    stub = StubHttp({"GET /accounts/12345678/balance": {"available": 1234.5}}, emit=lambda _: None)
    # 2: Mandarin; 1: balance; the account; 1: it is right; then silence: goodbye
    record, channel = await run(bank, "2,1,12345678#,1,wait", http=stub, extract=extract)
    assert record.path[-3:] == ["tell_balance", "anything_else", "goodbye"], record.error
    assert record.language == "zh"
    said = heard(channel)
    at = said.index("您的可用余额是")
    assert "".join(said[at + 1 : at + 11]) == BALANCE
    assert said[at + 11] == "返回主菜单请按9，结束通话请挂机。"  # noqa: RUF001
    # the account is read back from the Mandarin clips too, and nothing is said by Asterisk
    at = said.index("您输入的账号是")
    assert "".join(said[at + 1 : at + 9]) == "一二三四五六七八"
    assert not [line for line in channel.transcript if line.startswith("say ")]
    # the flow's language at the start, the caller's once they chose it: Asterisk's own
    # sounds (and the dialplan's fallback apology) follow
    assert channel.variables["CHANNEL(language)"] == "zh"


async def test_asterisk_is_told_the_language_when_the_channel_has_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    told: list[str] = []
    original = ScriptedChannel.set_variable

    async def set_variable(self: ScriptedChannel, name: str, value: str) -> None:
        if name == "CHANNEL(language)":
            told.append(value)
        await original(self, name, value)

    monkeypatch.setattr(ScriptedChannel, "set_variable", set_variable)
    bank = load_library([str(ROOT / "flows")], None).flows["bank"]
    # The channel came in in English (agi_language), the flow's language: nothing to tell
    # until the caller chooses Mandarin, then silence to the end.
    await run(bank, "2,wait,wait,wait")
    assert told == ["zh"]
    told.clear()
    # A channel that came in in another language is told the flow's at the start.
    await run(bank, "1,wait,wait,wait", language="zh")
    assert told == ["en"]


@dataclass
class Recorder:
    """A channel that records each play batch and presses ``key`` during it."""

    key: str = ""
    info: CallInfo = field(default_factory=lambda: CallInfo(uniqueid="t-rec"))
    batches: list[tuple[list[Prompt], str]] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)

    async def play(self, prompts: list[Prompt], escape_digits: str = "") -> str:
        self.batches.append((prompts, escape_digits))
        return self.key if self.key in escape_digits else ""

    async def set_variable(self, name: str, value: str) -> None:
        self.commands.append(f"set {name}={value}")

    async def say_number(self, number: int, escape_digits: str = "") -> str:
        self.commands.append(f"say number {number}")
        return ""

    async def say_digits(self, digits: str, escape_digits: str = "") -> str:
        self.commands.append(f"say digits {digits}")
        return ""


def prompt(text: str, language: str) -> PromptSpec:
    return parse_prompt({language: text}, language)


async def test_text_and_value_are_one_batch_and_a_key_stops_it() -> None:
    channel = Recorder(key="5")
    spec = prompt("您的余额是{amount:currency}，谢谢。", "zh")  # noqa: RUF001
    key = await speak(channel, [spec], {"amount": "10.05"}, "zh", "0123456789")  # type: ignore[arg-type]
    assert key == "5"
    [(batch, escape)] = channel.batches
    assert escape == "0123456789"
    assert [p.text for p in batch] == ["您的余额是", *"十元零五分", "谢谢。"]
    assert batch[1] == Prompt("tts", clip_file("十", "zh"), "十", "zh")
    assert channel.commands == []  # no SAY, no language change needed


async def test_one_value_is_one_batch_with_its_escape_digits() -> None:
    channel = Recorder(key="#")
    part = SayValue("n", "number")
    assert await say_value(channel, part, "110", "#", "zh-CN") == "#"  # type: ignore[arg-type]
    [(batch, escape)] = channel.batches
    assert ([p.text for p in batch], escape) == (list("一百一十"), "#")
    assert {p.file.rsplit("/", 1)[0] for p in batch} == {"say/zh-CN"}  # the call's language


async def test_a_language_without_rules_keeps_asterisks_say_commands() -> None:
    channel = Recorder()
    spec = prompt("Vous devez {amount:number} euros.", "fr")
    await speak(channel, [spec], {"amount": "42"}, "fr")  # type: ignore[arg-type]
    assert channel.commands == ["set CHANNEL(language)=fr", "say number 42"]
    assert [[p.text for p in batch] for batch, _ in channel.batches] == [["Vous devez"], ["euros."]]


async def test_a_value_that_cannot_be_said_is_left_out(caplog: pytest.LogCaptureFixture) -> None:
    channel = Recorder()
    spec = prompt("You owe {amount:currency} today.", "en")
    await speak(channel, [spec], {"amount": "Infinity"}, "en")  # type: ignore[arg-type]
    [(batch, _)] = channel.batches
    assert [p.text for p in batch] == ["You owe", "today."]
    assert "not saying {amount:currency}" in caplog.text


class Queues:
    def __init__(self, state: QueueState) -> None:
        self.now = state

    async def state(self, queue: str) -> QueueState | None:
        return self.now

    def watch(self, uniqueid: str) -> Watch:
        return Watch()


@dataclass
class Watch:
    agent: str = ""
    hold_s: float = 0.0
    talk_s: float = 0.0

    def close(self) -> None:
        pass


QUEUE = """
language: zh
start: agent
nodes:
  agent:
    queue: {name: default, when_unavailable: hangup, when_timeout: hangup}
    next: hangup
"""


async def test_the_queue_says_place_and_wait_from_the_clips() -> None:
    busy = QueueState(logged_in=1, available=0, callers=2, holdtime_s=0, talktime_s=100)
    record, channel = await run(flow(QUEUE), "hangup", queues=Queues(busy))
    assert record.queue is not None and record.queue.position == 3
    # 3rd in line, no agent free: 3 calls of 100 s end first (300 s, 五分钟)
    assert "".join(heard(channel)) == "您排在第三位。预计等待五分钟。"
    assert not [line for line in channel.transcript if line.startswith("say ")]
    assert channel.variables["CHANNEL(language)"] == "zh"


class Asterisk:
    """Answers every AGI command like an idle Asterisk."""

    async def __call__(self, command: str, timeout_s: float | None) -> Reply:
        return parse_reply_line("200 result=0 endpos=8000")


async def test_the_transport_keeps_spoken_values_out_of_its_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    spec = prompt("You entered {account:digits}.", "en")
    with caplog.at_level(logging.DEBUG):
        channel = AgiChannel(CallInfo(uniqueid="t-agi"), Asterisk(), sounds_prefix="ivr/")
        await speak(channel, [spec], {"account": "4711"}, "en")
    sent = [r.getMessage() for r in caplog.records if r.getMessage().startswith("-> ")]
    assert sent[0].startswith("-> STREAM FILE ivr/tts/en/")  # the text: shown
    assert sent[1:] == ["-> STREAM FILE ..."] * 4  # four, seven, one, one: not shown
