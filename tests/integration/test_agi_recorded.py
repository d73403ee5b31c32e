"""Real FastAGI transcripts, recorded from the lab's Asterisk 22, replayed through the sans-IO
:class:`~ivr.asterisk.agi.protocol.AgiConnection` (no lab, no sockets).

The fixtures ``tests/support/fixtures/agi/recorded_*.txt`` come from
``scripts/record_agi.py fixtures``
(a recording proxy between Asterisk and ``ivr serve``); re-record them after a change to the
flows or the AGI layer and review the diff.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr.app.calls import Calls
from ivr.app.server import App, Server
from ivr.asterisk.agi import commands
from ivr.asterisk.agi.environment import AgiEnvironment
from ivr.asterisk.agi.protocol import (
    NEED_DATA,
    AgiConnection,
    AgiState,
    ConnectionClosed,
    EnvironmentReceived,
    Event,
    HangupReceived,
    Reply,
)
from ivr.call.record import CallRecord
from ivr.config import AdminSettings, AgiSettings, Settings, SpeechSettings, StoreSettings
from ivr.flow.prompts import tts_file

FIXTURES = Path(__file__).resolve().parents[1] / "support" / "fixtures" / "agi"
RECORDED = sorted(FIXTURES.glob("recorded_*.txt"))


@dataclass
class Replayed:
    env: AgiEnvironment
    sent: list[str]  # commands the server sent, in order
    events: list[Event]  # everything after the environment, ConnectionClosed last
    wire: list[tuple[str, str]]  # the transcript: ("recv" | "send", line)

    def replies(self) -> list[Reply]:
        return [e for e in self.events if isinstance(e, Reply)]

    def reply_to(self, command: str) -> Reply:
        """The reply to the first ``command`` sent (by position: one reply per command)."""
        return self.replies()[self.sent.index(command)]


def load(path: Path) -> list[tuple[str, str]]:
    steps: list[tuple[str, str]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line or line.startswith("#"):
            continue
        tag, _, text = line.partition(" ")
        if tag not in ("<<", ">>"):
            raise ValueError(f"{path.name}:{n}: line must start with '<<' or '>>'")
        steps.append(("recv" if tag == "<<" else "send", text))
    return steps


def drain(conn: AgiConnection) -> list[Event]:
    events: list[Event] = []
    while (event := conn.next_event()) is not NEED_DATA:
        events.append(event)
        if isinstance(event, ConnectionClosed):
            break
    return events


def replay(path: Path, *, chunk: int = 0) -> Replayed:
    """Drive a connection through the transcript; ``chunk`` > 0 feeds that many bytes at a
    time (lines split anywhere), 0 feeds whole lines. Ends with EOF (the server's close)."""
    wire = load(path)
    conn = AgiConnection()
    sent: list[str] = []
    events: list[Event] = []

    def feed(data: bytes) -> None:
        step = chunk or len(data) or 1
        for i in range(0, len(data), step):
            conn.receive_data(data[i : i + step])
            events.extend(drain(conn))

    for direction, text in wire:
        if direction == "send":
            events.extend(drain(conn))
            assert conn.state is AgiState.IDLE, f"{path.name}: {text!r} sent while busy"
            assert conn.send_command(text) == text.encode() + b"\n"
            sent.append(text)
        else:
            feed(text.encode() + b"\n")
    events.extend(drain(conn))
    conn.receive_data(b"")
    events.extend(drain(conn))
    first = events.pop(0)
    assert isinstance(first, EnvironmentReceived), first
    assert conn.env == first.env
    return Replayed(first.env, sent, events, wire)


def test_recorded_fixtures_are_there() -> None:
    names = {p.name for p in RECORDED}
    assert {"recorded_main_menu_choice.txt", "recorded_main_caller_hangup.txt"} <= names


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.stem)
def test_env_block_as_asterisk_22_sends_it(path: Path) -> None:
    call = replay(path)
    env = call.env
    assert env.network == "yes"
    assert env.script in ("main", "bank")
    assert env.request == f"agi://127.0.0.1:4573/{env.script}"
    assert env.params == {} and env.args == ()
    assert env.version.startswith("22.")
    assert re.fullmatch(r"PJSIP/sipp-[0-9a-f]{8}", env.channel)
    assert env.type == "PJSIP"
    assert re.fullmatch(r"\d+\.\d+", env.uniqueid)
    assert (env.callerid, env.calleridname) == ("sipp", "ivr-lab")  # SIPp's From header
    assert env.dnid in ("100", "200")
    assert env.rdnis == ""  # Asterisk wrote "unknown"
    # the dialplan jumps to [ivr-run] s: the dialled number is only in agi_dnid
    assert (env.context, env.extension) == ("ivr-run", "s")
    assert env.accountcode == "" and env.language == "en"
    assert env.extra == {}, "Asterisk 22 sent agi_* keys the parser does not know"
    info = env.to_call_info()
    assert (info.dnis, info.caller_id, info.language) == (env.dnid, "sipp", "en")


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.stem)
def test_every_line_replays_and_the_server_closes(path: Path) -> None:
    call = replay(path)
    assert isinstance(call.events[-1], ConnectionClosed)
    assert len(call.replies()) == len(call.sent)  # one final reply per command
    assert call.sent[0] == commands.answer()
    assert call.reply_to("ANSWER").raw == "200 result=0"
    for reply in call.replies():
        assert reply.code == 200, reply.raw  # no 5xx from the real Asterisk on these calls
    for command in call.sent:
        if command.startswith("STREAM FILE"):
            # prompts as Asterisk sees them: sounds/ivr/tts/<lang>/<hash>
            assert re.fullmatch(
                r"STREAM FILE ivr/tts/(en|zh)/[0-9a-f]{16} "
                r'("")?(0123456789\*#|12345|12)?',
                command,
            ), command


@pytest.mark.parametrize("chunk", [1, 7, 64])
@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.stem)
def test_same_events_however_the_bytes_are_split(path: Path, chunk: int) -> None:
    whole = replay(path)
    split = replay(path, chunk=chunk)
    assert (split.env, split.sent, split.events) == (whole.env, whole.sent, whole.events)


def stream(text: str, escape: str = "") -> str:
    return commands.stream_file(f"ivr/{tts_file(text, 'en')}", escape)


# Not sent: the channel comes in in English (agi_language), the language of both flows.
LANGUAGE = commands.set_variable("CHANNEL(language)", "en")
MENU = (
    "For sales, press 1. For support, press 2. To hear your caller number, press 3. "
    "To hear this again, press star."
)


def test_main_menu_choice_by_barge_in() -> None:
    call = replay(FIXTURES / "recorded_main_menu_choice.txt")
    assert call.env.script == "main" and call.env.dnid == "100"
    assert call.sent == [
        commands.answer(),
        stream("Welcome to the I V R demo."),
        stream(MENU, "0123456789*#"),
        stream("Support is available on our web site."),
        stream("Goodbye."),
        commands.hangup(),
    ]
    welcome, menu = call.replies()[1:3]
    assert welcome.result == "0" and welcome.endpos and welcome.endpos > 8000  # played out
    assert chr(menu.result_int()) == "2"  # the key that interrupted the prompt (ASCII)
    assert menu.endpos and 0 < menu.endpos < 8000 * 9  # stopped before the 9 s prompt ended
    assert call.reply_to("HANGUP").raw == "200 result=1"
    assert not any(isinstance(e, HangupReceived) for e in call.events)  # we hung up


def test_caller_hangup_mid_prompt() -> None:
    call = replay(FIXTURES / "recorded_main_caller_hangup.txt")
    assert call.sent[:3] == [
        commands.answer(),
        stream("Welcome to the I V R demo."),
        stream(MENU, "0123456789*#"),
    ]
    menu = call.reply_to(call.sent[2])
    assert menu.result == "-1" and menu.endpos and menu.endpos > 0  # cut off mid-prompt
    kinds = [type(e).__name__ for e in call.events]
    assert kinds.count("HangupReceived") == 1
    hangup_at = kinds.index("HangupReceived")
    # the HANGUP line Asterisk sends, as it sends it, and nothing sent by us after it
    recv_hangup = call.wire.index(("recv", "HANGUP"))
    assert all(direction == "recv" for direction, _ in call.wire[recv_hangup:])
    # the server probed the -1 with NOOP (dead channels allow it), never another prompt
    assert call.sent[3:] == [commands.noop()]
    assert kinds[hangup_at:] in (
        ["HangupReceived", "Reply", "ConnectionClosed"],  # HANGUP before the NOOP's reply
        ["HangupReceived", "ConnectionClosed"],  # or after it
    )
    assert commands.hangup() not in call.sent  # the caller is gone: no HANGUP from us


def test_bank_language_agent_queue_then_survey() -> None:
    call = replay(FIXTURES / "recorded_bank_agent_survey.txt")
    assert call.env.script == "bank" and call.env.dnid == "200"
    assert LANGUAGE not in call.sent  # the caller chose English, which the channel had
    keys = [
        chr(reply.result_int())
        for cmd, reply in zip(call.sent, call.replies(), strict=True)
        if cmd.startswith("STREAM FILE") and not cmd.endswith('""')
    ]
    assert keys == ["1", "0", "5", "1"]  # language, agent, then the survey's two answers
    queue = commands.exec_application("Queue", "default,c,,,120")
    at = call.sent.index(queue)
    assert call.sent[at + 1] == commands.get_variable("QUEUESTATUS")
    # with option c the caller comes back after the agent hung up: QUEUESTATUS=CONTINUE
    assert call.reply_to(queue).raw == "200 result=0"
    assert call.reply_to("GET VARIABLE QUEUESTATUS").data == "CONTINUE"
    # the survey's prompts (STREAM FILE ... 12345 / 12) were ended by the caller's keys
    assert [c.rsplit(" ", 1)[1] for c in call.sent[at + 2 :] if c.startswith("STREAM")][1:3] == [
        "12345",
        "12",
    ]
    assert call.sent[-1] == commands.hangup() and call.reply_to("HANGUP").raw == "200 result=1"


# --------------------------------------------------------------------------- the real server
# The same recordings, played back as Asterisk against today's ``ivr serve`` (App over TCP):
# the server must send exactly the recorded commands and leave the recorded outcome.
ROOT = Path(__file__).resolve().parents[2]
BANK_OPEN_AT = datetime(2026, 11, 30, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()


@pytest.fixture
async def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Server]:
    async def no_rendering(self: App, flows: object) -> None:  # the fake never opens a sound
        return None

    monkeypatch.setattr(App, "render_prompts", no_rendering)
    original = Calls.services
    offset = BANK_OPEN_AT - time.time()  # as recorded: the bank open (a Monday, 10:00)
    monkeypatch.setattr(
        Calls,
        "services",
        lambda self, call_id="": dataclasses.replace(
            original(self, call_id), clock=lambda: time.time() + offset
        ),
    )
    settings = Settings(
        flows_dir=str(ROOT / "flows"),
        prompts_dir=str(tmp_path / "prompts"),
        agi=AgiSettings(port=0, sounds_prefix="ivr/"),
        store=StoreSettings(path=str(tmp_path / "calls.sqlite3")),
        speech=SpeechSettings(port=0),
        admin=AdminSettings(port=0),
    )
    app = await App(settings).start()
    try:
        yield app
    finally:
        await app.close()


async def play_asterisk_side(port: int, wire: list[tuple[str, str]]) -> list[str]:
    """Send the recorded Asterisk lines, read the server's; return what the server sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    got: list[str] = []
    try:
        async with asyncio.timeout(10):
            for direction, text in wire:
                if direction == "recv":  # Asterisk -> server
                    writer.write(text.encode() + b"\n")
                    await writer.drain()
                else:
                    line = (await reader.readline()).decode().rstrip("\n")
                    got.append(line)
                    assert line == text, f"server sent {line!r}, recorded {text!r}"
            assert await reader.read() == b"", "the server must close the socket itself"
    finally:
        writer.close()
    return got


async def stored(app: Server, call_id: str) -> CallRecord:
    for _ in range(100):
        record = await app.store.get(call_id)
        if record is not None and record.outcome is not None:
            return record
        await asyncio.sleep(0.02)
    raise AssertionError(f"no finished record for {call_id}")


@pytest.mark.parametrize(
    ("name", "outcome", "path"),
    [
        ("main_menu_choice", "self_service", ["welcome", "menu", "support", "goodbye"]),
        ("main_caller_hangup", "abandoned", ["welcome", "menu"]),
        (
            "bank_agent_survey",
            "transferred",
            ["welcome", "choose_language", "opening_hours", "main", "agent"],
        ),
    ],
)
async def test_server_still_says_what_it_said_to_asterisk(
    server: Server, name: str, outcome: str, path: list[str]
) -> None:
    fixture = FIXTURES / f"recorded_{name}.txt"
    if not fixture.exists():
        pytest.skip(f"{fixture.name} not recorded")
    wire = load(fixture)
    assert server.agi is not None
    sent = await play_asterisk_side(server.agi.port, wire)
    assert sent == [text for direction, text in wire if direction == "send"]
    record = await stored(server, replay(fixture).env.uniqueid)
    assert (record.outcome, record.path) == (outcome, path)
