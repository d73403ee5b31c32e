"""A queue's ``record:``: the consent prompt before ``Queue()``, ``MixMonitor`` on consent, the
refusal kept as an input event; and the option in the model, the loader and the schema."""

from __future__ import annotations

import pytest
from support.flowkit import flow, run

from ivr.errors import FlowErrors
from ivr.flow.model_values import Speech
from ivr.flow.queue_node import QueueNode
from ivr.runtime.call_recording import recording_name

RECORDED = """
    start: welcome
    languages: [en, zh]
    nodes:
      welcome:
        menu:
          prompt: "1 English, 2 Chinese."
          options:
            "1": {goto: agent, set: {language: en}}
            "2": {goto: agent, set: {language: zh}}
          otherwise: hangup
      agent:
        queue:
          name: cards
          record:
            consent: {en: "This call may be recorded. To refuse, press 9.",
                      zh: "本次通话可能会被录音。如不同意请按9。"}
          when_unavailable: hangup
          when_timeout: hangup
        next: again
      again:
        queue: {name: cards, record: {consent: "Recorded again?"}, when_unavailable: hangup,
                when_timeout: hangup}
        next: hangup
"""
DIR = "/var/lib/ivr/recordings"


def _lines(transcript: list[str], *starts: str) -> list[str]:
    return [line for line in transcript if line.startswith(starts)]


def test_the_loader_builds_the_option_with_its_defaults() -> None:
    f = flow(RECORDED)
    node = f.nodes["agent"]
    assert isinstance(node, QueueNode) and node.record is not None
    assert (node.record.refuse_key, node.record.wait_s) == ("9", 3.0)
    [zh] = node.record.consent.parts("zh")
    assert isinstance(zh, Speech) and zh.value == "本次通话可能会被录音。如不同意请按9。"
    assert node.record.consent in node.prompts()  # rendered with the flow's other prompts
    keyed = flow(RECORDED.replace('press 9."', 'press 7."')).nodes["again"]
    assert isinstance(keyed, QueueNode) and keyed.record is not None
    plain = flow(
        "start: q\nnodes:\n  q: {queue: {name: a, when_unavailable: hangup, "
        "when_timeout: hangup}}\n"
    ).nodes["q"]
    assert isinstance(plain, QueueNode) and plain.record is None


@pytest.mark.parametrize(
    "record",
    [
        "{refuse_key: '9'}",
        "{consent: Hi, refuse_key: '99'}",
        "{consent: Hi, wait_s: 60}",
        "{consent: Hi, beep: true}",
    ],
)
def test_the_schema_refuses_a_bad_option(record: str) -> None:
    text = (
        "start: q\nnodes:\n  q: {queue: {name: a, when_unavailable: hangup, "
        f"when_timeout: hangup, record: {record}}}}}\n"
    )
    with pytest.raises(FlowErrors):
        flow(text)


async def test_consent_given_starts_mixmonitor_just_before_queue_in_the_call_language() -> None:
    f = flow(RECORDED)
    record, channel = await run(f, "2, wait, hangup", recordings_dir=DIR)
    heard = _lines(channel.transcript, "play:", "exec", "queue", "caller")
    assert heard[-4:] == [
        "play: 本次通话可能会被录音。如不同意请按9。",
        "caller: (silence 3 s)",
        f"exec MixMonitor({DIR}/calls/t-1.wav,b)",
        "queue cards,c,,,300: caller hangs up",
    ]
    assert record.recording == "calls/t-1.wav"
    assert not [i for i in record.inputs if i.kind == "recording_refused"]


async def test_the_refuse_key_means_no_mixmonitor_and_an_input_event() -> None:
    f = flow(RECORDED)
    record, channel = await run(f, "1, 9, answer", recordings_dir=DIR)
    assert not _lines(channel.transcript, "exec MixMonitor")
    assert record.recording == ""
    refusals = [i for i in record.inputs if i.kind == "recording_refused"]
    assert [(i.node, i.value) for i in refusals] == [("agent", "9")]
    # the second queue of the call neither asks again nor records
    assert not _lines(channel.transcript, "play: Recorded again?")
    assert len(_lines(channel.transcript, "queue cards")) == 2


async def test_a_second_queue_of_a_recorded_call_keeps_the_one_recording() -> None:
    f = flow(RECORDED)
    record, channel = await run(f, "1, wait, answer, answer", recordings_dir=DIR)
    assert len(_lines(channel.transcript, "exec MixMonitor")) == 1
    assert not _lines(channel.transcript, "play: Recorded again?")
    assert record.recording == "calls/t-1.wav"


async def test_another_key_is_no_refusal() -> None:
    record, channel = await run(flow(RECORDED), "1, 5, hangup", recordings_dir=DIR)
    assert _lines(channel.transcript, "exec MixMonitor")
    assert record.recording == "calls/t-1.wav"
    assert not [i for i in record.inputs if i.kind == "recording_refused"]


@pytest.mark.parametrize("directory", ["", "relative/dir", "/rec,ordings", "/a b", "/x)"])
async def test_without_a_safe_absolute_directory_nothing_is_asked_or_recorded(
    directory: str,
) -> None:
    record, channel = await run(flow(RECORDED), "1, hangup", recordings_dir=directory)
    assert not _lines(channel.transcript, "exec MixMonitor", "play: This call")
    assert record.recording == ""


@pytest.mark.parametrize(
    ("call_id", "name"),
    [
        ("1733562000.42", "calls/1733562000.42.wav"),
        ("box-2-1733562000.42", "calls/box-2-1733562000.42.wav"),
        ("../../etc/passwd", "calls/_.._etc_passwd.wav"),
        ("..", "calls/call.wav"),
        ("a,b(c)|d e", "calls/a_b_c__d_e.wav"),
        ("x" * 200, f"calls/{'x' * 96}.wav"),
    ],
)
def test_the_file_name_is_the_call_id_made_safe(call_id: str, name: str) -> None:
    assert recording_name(call_id) == name
    assert "/" not in name.removeprefix("calls/") and not name.startswith("calls/.")
