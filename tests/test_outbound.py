"""Outbound jobs (callbacks, surveys, campaign calls) and the dialer with a fake AMI: fair
selection, the rules a job was booked with, held jobs, restarts and durable bookings.

Instants are built from today's date (the next Monday after now), never pinned, and the
clock is injected into :class:`Outbound`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

import pytest
from flowkit import flow

from ivr.channel import CallInfo
from ivr.flow import model as m
from ivr.flow.interpreter import CallRun, Services
from ivr.outbound import Dialer, Outbound
from ivr.sim import ScriptedChannel
from ivr.store.records import RecordStore

BANK = """
    start: agent
    timezone: UTC
    surveys:
      after_call:
        questions:
          - {id: satisfied, prompt: "How satisfied were you, 1 to 5?"}
        outbound: {dial: "PJSIP/{number}@survey-line", delay_s: 0, max_concurrent: 1,
                   hours: {mon-sun: "09:00-10:00"}}
    nodes:
      agent:
        queue:
          name: cards
          callback: {prompt: "Press 1.", then: booked, dial: "PJSIP/{number}@callback-line",
                     max_concurrent: 1, hours: {mon-sun: "09:00-10:00"}}
          when_unavailable: busy
          when_timeout: busy
        survey: after_call
        next: hangup
      booked: {play: "We will call you back.", next: hangup}
      busy: {play: "All agents are busy.", next: hangup}
"""


def next_monday_utc(hour: int, minute: int = 0) -> float:
    """``hour:minute`` UTC on the first Monday after today (always in the future)."""
    today = datetime.now(UTC).date()
    monday = today + timedelta(days=7 - today.weekday())
    return datetime.combine(monday, dtime(hour, minute), tzinfo=UTC).timestamp()


@dataclass
class Clock:
    now: float

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeAmi:
    """Every Originate succeeds at once; the job then stays ``dialing`` (ringing)."""

    up: bool = True
    dialled: list[str] = field(default_factory=list)

    async def originate(self, channel: str, **kw: object) -> dict[str, str]:
        self.dialled.append(channel)
        return {"Response": "Success"}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[RecordStore]:
    s = await RecordStore.open(tmp_path / "calls.sqlite3")
    yield s
    await s.close()


async def book(outbound: Outbound, f: m.Flow, call_id: str, kind: str,
               number: str = "5550100") -> None:
    """Book the callback of node ``agent`` or the survey ``after_call`` of call ``call_id``."""
    channel = ScriptedChannel(info=CallInfo(uniqueid=call_id, caller_id=number))
    run = CallRun(f, channel, Services(clock=outbound.clock))
    if kind == "callback":
        node = f.nodes["agent"]
        assert isinstance(node, m.QueueNode)
        await outbound.book_callback(run, node, number, 0.0)
    else:
        await outbound.book_survey(run, f.surveys["after_call"])


async def tick(dialer: Dialer) -> None:
    """One dialer round, then wait until every Originate it started has returned."""
    await dialer.tick()
    while dialer._dialing:
        await asyncio.sleep(0.01)


async def test_recover_never_calls_an_answered_customer_again(store: RecordStore) -> None:
    clock = Clock(next_monday_utc(9, 30))
    outbound = Outbound(store, clock=clock)
    await book(outbound, flow(BANK, name="bank"), "c-1", "callback")
    [job] = await outbound.due()
    assert await outbound.start_attempt(job)
    assert await outbound.answered(job.id) is not None  # the callee is in the call
    await outbound.recover()  # ... when the server stopped
    clock.now += 86400
    assert await outbound.due() == []
    [job] = await outbound.jobs()
    assert job.status == "done"


async def synced_writes(store: RecordStore, action: Awaitable[object]) -> list[str]:
    """The outbound writes ``action`` committed with ``synchronous=FULL``, as SQL prefixes;
    and the connection is back to NORMAL afterwards."""
    statements: list[str] = []
    await store.transaction(lambda c: c.set_trace_callback(statements.append))
    await action
    await store.transaction(lambda c: c.set_trace_callback(None))
    synced, full = [], False
    for sql in statements:
        full = {"PRAGMA synchronous = FULL": True,
                "PRAGMA synchronous = NORMAL": False}.get(sql, full)
        if full and "outbound" in sql and not sql.startswith("SELECT"):
            synced.append(sql.split(" SET ")[0].split(" (")[0])
    setting = await store.transaction(lambda c: c.execute("PRAGMA synchronous").fetchone()[0])
    assert setting == 1  # NORMAL again, for the call records' group commits
    return synced


@pytest.mark.parametrize("kind", ["callback", "survey"])
async def test_a_booking_is_committed_with_synchronous_full(store: RecordStore,
                                                            kind: str) -> None:
    # WAL with synchronous=NORMAL syncs at checkpoints only: power lost right after the
    # caller heard "we will call you back" could lose the booking. FULL syncs the commit.
    outbound = Outbound(store, clock=Clock(next_monday_utc(9, 30)))
    booking = book(outbound, flow(BANK, name="bank"), "c-1", kind)
    assert await synced_writes(store, booking) == ["INSERT OR IGNORE INTO outbound"]


async def test_the_attempt_and_the_answer_are_synced_before_they_count(
        store: RecordStore) -> None:
    # lost on a power cut, either would let the restarted server dial the customer again
    outbound = Outbound(store, clock=Clock(next_monday_utc(9, 30)))
    await book(outbound, flow(BANK, name="bank"), "c-1", "callback")
    [job] = await outbound.due()
    assert await synced_writes(store, outbound.start_attempt(job)) == ["UPDATE outbound"]
    assert await synced_writes(store, outbound.answered(job.id)) == ["UPDATE outbound"]
