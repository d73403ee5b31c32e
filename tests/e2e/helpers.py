"""Helpers of the end-to-end tests: SIPp calls, the server's records, Asterisk's state, sounds."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
import wave
from collections.abc import Iterator
from contextlib import contextmanager

from serve import AGI_PORT, ROOT, IvrServe

from ivr.call.record import CallRecord
from ivr.flow.model_values import PromptSpec, Speech
from ivr.flow.prompts import tts_file
from ivr.lab import CallResult, CallSpec, Lab, LoadResult, sipp
from ivr.store.records import RecordStore

IN_MENU_S = 4.0  # main.yaml, after the 200 OK: the welcome (2 s) is over, the menu is playing


def spec(
    ext: str,
    digits: str = "",
    *,
    first_digit_after_s: float = IN_MENU_S,
    digit_gap_s: float = 1.0,
    hold_s: float = 30.0,
    expect_hangup: bool = True,
) -> CallSpec:
    return CallSpec(
        ext=ext,
        digits=tuple(digits),
        first_digit_after_s=first_digit_after_s,
        digit_gap_s=digit_gap_s,
        hold_s=hold_s,
        expect_hangup=expect_hangup,
    )


async def dial(lab: Lab, call: CallSpec) -> CallResult:
    """One SIPp call (blocking, in a thread); ``lab.call`` with the first digit's delay."""
    return await asyncio.to_thread(sipp.call, call, lab.paths.state / "sipp")


async def load(lab: Lab, call: CallSpec, calls: int, rate: float) -> LoadResult:
    return await asyncio.to_thread(
        sipp.load, call, lab.paths.state / "sipp", calls=calls, rate=rate, max_concurrent=calls
    )


class Records:
    """The server's SQLite store, read the way the project reads it (RecordStore)."""

    def __init__(self, server: IvrServe) -> None:
        self.path = server.db_path
        self.before: set[str] = set()

    async def all(self) -> list[CallRecord]:
        store = await RecordStore.open(self.path)
        try:
            return await store.recent(limit=10_000)
        finally:
            await store.close()

    async def snapshot(self) -> None:
        self.before = {r.call_id for r in await self.all()}

    async def new(self, count: int, timeout_s: float = 10) -> list[CallRecord]:
        """Exactly ``count`` finished records added since :meth:`snapshot`, oldest first."""
        deadline = time.monotonic() + timeout_s
        while True:
            fresh = [r for r in await self.all() if r.call_id not in self.before]
            if len(fresh) >= count and all(r.outcome is not None for r in fresh):
                assert len(fresh) == count, [(r.call_id, r.flow, r.outcome) for r in fresh]
                return sorted(fresh, key=lambda r: r.started_at)
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"expected {count} finished new record(s), got "
                    f"{[(r.call_id, r.outcome) for r in fresh]}"
                )
            await asyncio.sleep(0.1)

    async def one(self) -> CallRecord:
        [record] = await self.new(1)
        return record


def agi_connections() -> list[str]:
    """TCP connections on the FastAGI port other than the listener and TIME-WAIT leftovers."""
    out = subprocess.run(
        ["ss", "-Htan", f"( sport = :{AGI_PORT} or dport = :{AGI_PORT} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [
        line
        for line in out.splitlines()
        if line.split() and line.split()[0] not in ("LISTEN", "TIME-WAIT")
    ]


async def wait_until_idle(lab: Lab, timeout_s: float = 10) -> tuple[str, list[str]]:
    """Wait for 0 active calls in Asterisk and no open FastAGI socket; return the last view."""
    deadline = time.monotonic() + timeout_s
    while True:
        channels = lab.cli("core show channels count")
        sockets = agi_connections()
        if channels.startswith("0 active channels") and not sockets:
            return channels, sockets
        if time.monotonic() > deadline:
            return channels, sockets
        await asyncio.sleep(0.1)


def active_calls(cli_output: str) -> int:
    match = re.search(r"^(\d+) (?:of \d+ max )?active calls?", cli_output, re.M)
    assert match, cli_output
    return int(match.group(1))


def played(server: IvrServe, call_id: str, since: int = 0) -> list[str]:
    """The sound names the server streamed on one call, from its DEBUG log."""
    pattern = re.compile(rf"\[{re.escape(call_id)}\].* -> STREAM FILE (\S+)")
    return [
        m.group(1) for line in server.log_text(since).splitlines() if (m := pattern.search(line))
    ]


def sound(prompt: PromptSpec | None, language: str = "en") -> str:
    """The STREAM FILE name of a one-part text prompt."""
    assert prompt is not None
    [part] = prompt.parts_by_language[language]
    assert isinstance(part, Speech) and part.kind == "text", part
    return f"ivr/{tts_file(part.value, language)}"


def seconds(sound_name: str) -> float:
    """How long a rendered prompt plays (the WAV the server streamed)."""
    with wave.open(str(ROOT / "prompts" / f"{sound_name.removeprefix('ivr/')}.wav")) as wav:
        return wav.getnframes() / wav.getframerate()


MEMBERS = ("Local/1001@agents/n", "Local/1002@agents/n")  # queue default (queues.conf)


@contextmanager
def members(lab: Lab, *, pause: bool = False, add: tuple[str, ...] = ()) -> Iterator[None]:
    """Change queue ``default`` for one test (static members can only be paused); it is put
    back afterwards."""
    try:
        for member in MEMBERS:
            if pause:
                lab.cli(f"queue pause member {member} queue default")
        for member in add:
            lab.cli(f"queue add member {member} to default")
        yield
    finally:
        for member in add:
            lab.cli(f"queue remove member {member} from default")
        for member in MEMBERS:
            lab.cli(f"queue unpause member {member} queue default")
        lab.cli("queue reload members default")
