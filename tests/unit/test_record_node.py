"""``record`` nodes: the model and loader (defaults, errors), the step on a scripted channel
(keep, record again, cancel, an empty message, a hang-up while recording or confirming),
file names that never hold caller input, and ``RECORD FILE`` over AGI."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from support.flowkit import flow, run

from ivr.asterisk.agi import commands as c
from ivr.call.messages import LeftMessage, message_name
from ivr.errors import FlowErrors
from ivr.flow.record_node import RecordNode

VOICEMAIL = """
start: leave
nodes:
  leave:
    record:
      prompt: "Leave a message after the tone."
      confirm: "Press 1 to keep it, 2 to record it again, 3 to cancel."
      max_s: 60
      on_empty: nothing
    next: thanks
  thanks: {play: "Thank you.", next: hangup, served: true}
  nothing: {play: "No message was left.", next: hangup}
"""


@dataclass
class Messages:
    """A stand-in :class:`~ivr.call.messages.MessageSink` that keeps what it gets."""

    kept: list[LeftMessage] = field(default_factory=list)
    discarded: list[str] = field(default_factory=list)

    def path(self, name: str) -> str:
        return f"/rec/{name}"

    def keep(self, message: LeftMessage) -> None:
        self.kept.append(message)

    def discard(self, name: str) -> None:
        self.discarded.append(name)


def test_the_loader_builds_a_record_node_with_its_defaults() -> None:
    node = flow(VOICEMAIL).nodes["leave"]
    assert isinstance(node, RecordNode)
    assert (node.beep, node.max_s, node.silence_s, node.end_key, node.max_tries) == (
        True,
        60,
        3,
        "#",
        3,
    )
    assert (node.next, node.on_empty) == ("thanks", "nothing")
    assert node.confirm is not None
    assert [e.target for e in node.exits()] == ["thanks", "nothing"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("record: {prompt: Hi, on_empty: x}", "'next'"),
        ("record: {prompt: Hi}\n    next: x", "on_empty"),
        ("record: {prompt: Hi, on_empty: x, max_s: 0}\n    next: x", "4:46: node 'r': 0 is less"),
        ("record: {prompt: Hi, on_empty: nowhere}\n    next: x", "nowhere"),
        ("record: {prompt: Hi, on_empty: x, end_key: '##'}\n    next: x", "4:48: node 'r': '##'"),
    ],
)
def test_the_loader_says_what_is_wrong(body: str, message: str) -> None:
    text = f"start: r\nnodes:\n  r:\n    {body}\n  x: {{hangup: }}\n"
    with pytest.raises(FlowErrors) as caught:
        flow(text)
    assert message in str(caught.value)


async def test_a_kept_message_goes_to_the_sink_and_the_call_goes_on() -> None:
    sink = Messages()
    record, channel = await run(flow(VOICEMAIL), "talk:12,#,1", messages=sink)
    assert record.path == ["leave", "thanks"]
    assert record.outcome == "self_service"
    [message] = sink.kept
    assert message == LeftMessage("t-1", "test", "leave", "5551234", "t-1-leave-1", "en", 12.0)
    assert "record /rec/t-1-leave-1 (beep)" in channel.transcript
    assert [(e.kind, e.value) for e in record.inputs] == [("record", "12.0s key"), ("confirm", "1")]


async def test_silence_ends_the_message_and_without_confirm_it_is_kept() -> None:
    text = VOICEMAIL.replace(
        '      confirm: "Press 1 to keep it, 2 to record it again, 3 to cancel."\n', ""
    )
    sink = Messages()
    record, _ = await run(flow(text), "talk:4", messages=sink)
    assert record.path == ["leave", "thanks"]
    assert sink.kept[0].duration_s == 5.0  # with the second of silence Asterisk keeps


async def test_record_again_overwrites_the_same_file_and_keeps_the_second() -> None:
    sink = Messages()
    record, channel = await run(flow(VOICEMAIL), "talk:3,#,2,talk:8,#,1", messages=sink)
    assert record.path == ["leave", "thanks"]
    assert [m.duration_s for m in sink.kept] == [8.0]
    assert sum("record /rec/t-1-leave-1" in line for line in channel.transcript) == 2


async def test_the_last_try_is_kept_even_if_the_caller_asks_again() -> None:
    sink = Messages()
    tokens = "talk:3,#,2,talk:4,#,2,talk:5,#,2"
    record, _ = await run(flow(VOICEMAIL), tokens, messages=sink)
    assert record.path == ["leave", "thanks"]
    assert [m.duration_s for m in sink.kept] == [5.0]


async def test_cancel_discards_the_file_and_goes_to_on_empty() -> None:
    sink = Messages()
    record, _ = await run(flow(VOICEMAIL), "talk:6,#,3", messages=sink)
    assert record.path == ["leave", "nothing"]
    assert sink.kept == [] and sink.discarded == ["t-1-leave-1"]


@pytest.mark.parametrize("tokens", ["#", "wait"])
async def test_an_empty_message_goes_to_on_empty(tokens: str) -> None:
    sink = Messages()
    record, _ = await run(flow(VOICEMAIL), tokens, messages=sink)
    assert record.path == ["leave", "nothing"]
    assert sink.kept == [] and sink.discarded == ["t-1-leave-1"]


async def test_hanging_up_while_recording_still_leaves_the_record_and_the_message() -> None:
    sink = Messages()
    record, _ = await run(flow(VOICEMAIL), "talk:9,hangup", messages=sink)
    assert record.outcome == "abandoned" and record.end_node == "leave"
    [message] = sink.kept
    assert message.name == "t-1-leave-1"
    assert message.duration_s is None  # the sink measures the file


async def test_hanging_up_at_the_confirm_prompt_keeps_the_message() -> None:
    sink = Messages()
    record, _ = await run(flow(VOICEMAIL), "talk:9,#,hangup", messages=sink)
    assert record.end_node == "leave"
    assert [m.duration_s for m in sink.kept] == [9.0]


async def test_without_a_sink_the_call_goes_on_and_nothing_is_kept() -> None:
    record, _ = await run(flow(VOICEMAIL), "talk:9,#,1")
    assert record.path == ["leave", "thanks"]


async def test_a_second_visit_to_the_node_makes_a_new_file() -> None:
    sink = Messages()
    text = VOICEMAIL.replace("next: thanks", "next: leave").replace(
        '  thanks: {play: "Thank you.", next: hangup, served: true}\n', ""
    )
    record, _ = await run(flow(text), "talk:3,#,1,#", messages=sink)
    assert record.path == ["leave", "leave", "nothing"]
    assert [m.name for m in sink.kept] == ["t-1-leave-1"]
    assert sink.discarded == ["t-1-leave-2"]


def test_file_names_hold_no_caller_input_and_no_path() -> None:
    assert message_name("1733000000.42", "leave", 1) == "1733000000.42-leave-1"
    assert message_name("pbx1-1733.7", "leave", 2) == "pbx1-1733.7-leave-2"
    for evil in ("../../etc/passwd", "/abs", "a b\n", ".hidden", ""):
        name = message_name(evil, "leave", 1)
        assert "/" not in name and not name.startswith(".") and "\n" not in name and " " not in name


def test_record_file_command() -> None:
    assert c.record_file("/r/x-n-1", "#", 60000, beep=True, silence_s=3) == (
        "RECORD FILE /r/x-n-1 wav # 60000 0 BEEP s=3"
    )
    assert c.record_file("/r/x-n-1", "", 5000) == 'RECORD FILE /r/x-n-1 wav "" 5000 0'
