"""Outbound jobs (callbacks, surveys, campaign calls) and the dialer with a fake AMI: fair
selection, the rules a job was booked with, held jobs, restarts and durable bookings.

Instants are built from today's date (the next Monday after now), never pinned, and the
clock is injected into :class:`Outbound`.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

import pytest
from support.flowkit import flow
from support.stores import Db

from ivr.call.channel import CallInfo
from ivr.cli import main
from ivr.flow import model as m
from ivr.flow.numbers import NumberPolicy, effective
from ivr.flow.queue_node import QueueNode
from ivr.outbound.answer import run_job
from ivr.outbound.campaigns import Campaigns, Settings, read_list
from ivr.outbound.dialer import Dialer
from ivr.outbound.jobs import Outbound
from ivr.runtime.context import BookedBy
from ivr.runtime.interpreter import Services
from ivr.runtime.sim import ScriptedChannel
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


# the number policy with room for the many bookings to one number these tests make
POLICY = effective(NumberPolicy(per_caller_per_day=10_000, per_number_per_day=10_000), None)


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


async def book(
    outbound: Outbound, f: m.Flow, call_id: str, kind: str, number: str = "5550100"
) -> None:
    """Book the callback of node ``agent`` or the survey ``after_call`` of call ``call_id``."""
    by = BookedBy(call_id, f.name, number)
    if kind == "callback":
        node = f.nodes["agent"]
        assert isinstance(node, QueueNode)
        assert await outbound.book_callback(by, node, number, 0.0, POLICY) is None
    else:
        assert await outbound.book_survey(by, f.surveys["after_call"], POLICY) is None


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
        full = {"PRAGMA synchronous = FULL": True, "PRAGMA synchronous = NORMAL": False}.get(
            sql, full
        )
        if full and "outbound" in sql and not sql.startswith("SELECT"):
            synced.append(sql.split(" SET ")[0].split(" (")[0])
    setting = await store.transaction(lambda c: c.execute("PRAGMA synchronous").fetchone()[0])
    assert setting == 1  # NORMAL again, for the call records' group commits
    return synced


@pytest.mark.parametrize("kind", ["callback", "survey"])
async def test_a_booking_is_committed_with_synchronous_full(
    sqlite_store: RecordStore, kind: str
) -> None:
    store = sqlite_store
    # WAL with synchronous=NORMAL syncs at checkpoints only: power lost right after the
    # caller heard "we will call you back" could lose the booking. FULL syncs the commit.
    outbound = Outbound(store, clock=Clock(next_monday_utc(9, 30)))
    booking = book(outbound, flow(BANK, name="bank"), "c-1", kind)
    assert await synced_writes(store, booking) == ["INSERT INTO outbound"]


async def test_the_attempt_and_the_answer_are_synced_before_they_count(
    sqlite_store: RecordStore,
) -> None:
    store = sqlite_store
    # lost on a power cut, either would let the restarted server dial the customer again
    outbound = Outbound(store, clock=Clock(next_monday_utc(9, 30)))
    await book(outbound, flow(BANK, name="bank"), "c-1", "callback")
    [job] = await outbound.due()
    assert await synced_writes(store, outbound.start_attempt(job)) == ["UPDATE outbound"]
    assert await synced_writes(store, outbound.answered(job.id)) == ["UPDATE outbound"]


# The same flow after an edit: the callback and the outbound survey now call at any hour,
# five at once; or they no longer call out at all.
BANK_ANY_HOUR = BANK.replace(
    'max_concurrent: 1, hours: {mon-sun: "09:00-10:00"}', "max_concurrent: 5"
).replace(
    'max_concurrent: 1,\n                   hours: {mon-sun: "09:00-10:00"}', "max_concurrent: 5"
)
BANK_NO_OUTBOUND = """
    start: agent
    surveys:
      after_call:
        questions:
          - {id: satisfied, prompt: "How satisfied were you, 1 to 5?"}
    nodes:
      agent:
        queue: {name: cards, when_unavailable: busy, when_timeout: busy}
        survey: after_call
        next: hangup
      busy: {play: "All agents are busy.", next: hangup}
"""


async def book_two(store: RecordStore, kind: str) -> Outbound:
    """Two jobs of ``kind`` booked with the original flow at 08:00 (due at once)."""
    outbound = Outbound(store, clock=Clock(next_monday_utc(8)))
    for call_id in ("c-1", "c-2"):
        await book(outbound, flow(BANK, name="bank"), call_id, kind, number=f"555010{call_id[-1]}")
    return outbound


@pytest.mark.parametrize("edited", [BANK_ANY_HOUR, BANK_NO_OUTBOUND], ids=["any-hour", "removed"])
@pytest.mark.parametrize("kind", ["callback", "survey"])
async def test_a_job_keeps_the_calling_hours_and_limit_it_was_booked_with(
    store: RecordStore, kind: str, edited: str
) -> None:
    assert "09:00" not in BANK_ANY_HOUR and BANK_ANY_HOUR.count("max_concurrent: 5") == 2
    outbound = await book_two(store, kind)
    bank = flow(edited, name="bank")
    ami = FakeAmi()
    dialer = Dialer(outbound, ami, lambda: {"bank": bank})  # type: ignore[arg-type]
    outbound.clock = Clock(next_monday_utc(12))  # outside the hours the jobs were booked with
    await tick(dialer)
    assert ami.dialled == []
    outbound.clock = Clock(next_monday_utc(9, 30))
    await tick(dialer)
    await tick(dialer)
    assert ami.dialled == [
        "PJSIP/5550101@" + ("callback-line" if kind == "callback" else "survey-line")
    ]  # one at once, as booked


BANK_RENAMED = (
    BANK.replace("start: agent", "start: agents")
    .replace("      agent:\n", "      agents:\n")
    .replace("after_call", "after_the_call")
)


@pytest.mark.parametrize(
    ("flows", "reason"),
    [
        ({"other": BANK}, "flow bank is not loaded"),
        ({"bank": BANK_RENAMED}, "is not in flow bank"),
    ],
    ids=["flow-gone", "node-gone"],
)
@pytest.mark.parametrize("kind", ["callback", "survey"])
async def test_a_job_whose_flow_or_node_is_gone_is_held_with_the_reason(
    store: RecordStore, kind: str, flows: dict[str, str], reason: str
) -> None:
    assert "      agents:\n" in BANK_RENAMED and "after_call" not in BANK_RENAMED
    outbound = await book_two(store, kind)
    loaded = {name: flow(text, name=name) for name, text in flows.items()}
    ami = FakeAmi()
    dialer = Dialer(outbound, ami, lambda: loaded)  # type: ignore[arg-type]
    for hour in (12, 9):  # out of the booked hours, then in them
        outbound.clock = Clock(next_monday_utc(hour, 30))
        await tick(dialer)
    assert ami.dialled == []
    held = await outbound.jobs(status="held")
    assert [j.call_id for j in held] == ["c-1", "c-2"]
    assert all(reason in j.reason for j in held), held
    assert await outbound.jobs(status="pending") == []


def make_v3_database(path: Path, rows: list[tuple[str, str, str]]) -> None:
    """A database of schema version 3 with pending outbound ``(kind, call_id, target)`` rows
    of flow ``bank``, due long ago (no calling hours or limits on them yet)."""
    from ivr.store import schema

    with sqlite3.connect(path) as conn:
        for step in schema.MIGRATIONS[:3]:
            step(conn)
        conn.execute("PRAGMA user_version = 3")
        conn.executemany(
            "INSERT INTO outbound (kind, call_id, flow, target, number, channel, due_at,"
            " max_attempts, retry_after_s, created_at, updated_at) VALUES (?, ?, 'bank', ?,"
            " '5550100', 'PJSIP/5550100@line', 0, 3, 60, 0, 0)",
            rows,
        )
    conn.close()


@pytest.mark.parametrize(
    ("edited", "dialled_at_noon"),
    [(BANK, 0), (BANK_ANY_HOUR, 2)],
    ids=["hours-kept", "hours-changed"],
)
async def test_jobs_booked_before_v4_follow_the_flow_and_are_held_when_it_says_nothing(
    tmp_path: Path, edited: str, dialled_at_noon: int
) -> None:
    path = tmp_path / "v3.sqlite3"
    make_v3_database(path, [("callback", "c-1", "agent"), ("survey", "c-2", "after_call")])
    async with await RecordStore.open(path) as store:
        outbound = Outbound(store, clock=Clock(next_monday_utc(12)))
        jobs = await outbound.jobs()
        assert [(j.call_id, j.status, j.hours_json, j.max_concurrent) for j in jobs] == [
            ("c-1", "pending", None, None),
            ("c-2", "pending", None, None),
        ]
        ami = FakeAmi()
        bank = flow(edited, name="bank")
        await tick(Dialer(outbound, ami, lambda: {"bank": bank}))  # type: ignore[arg-type]
        assert len(ami.dialled) == dialled_at_noon  # the flow's rules, as before v4
        no_outbound = flow(BANK_NO_OUTBOUND, name="bank")
        await tick(Dialer(outbound, ami, lambda: {"bank": no_outbound}))  # type: ignore[arg-type]
        held = await outbound.jobs(status="held")
        assert len(ami.dialled) == dialled_at_noon
        assert len(held) == 2 - dialled_at_noon and all("unknown" in j.reason for j in held)


def test_held_jobs_are_listed_with_their_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "calls.sqlite3"

    async def hold_a_callback() -> None:
        async with await RecordStore.open(db) as store:
            outbound = await book_two(store, "callback")
            other = flow(BANK, name="other")
            await tick(Dialer(outbound, FakeAmi(), lambda: {"other": other}))  # type: ignore[arg-type]

    asyncio.run(hold_a_callback())
    assert main(["campaign", "jobs", "--status", "held", "--db", str(db)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and "reason" in lines[0], lines  # a header, then the two jobs
    assert all(
        w in lines[1] for w in ("callback", "held", "c-1", "***0101", "flow bank is not loaded")
    ), lines
    assert "5550101" not in lines[1]  # numbers masked, as in the ops console
    assert main(["campaign", "jobs", "--db", str(db), "--json"]) == 0
    [first, _] = json.loads(capsys.readouterr().out)
    assert (first["status"], first["reason"]) == (
        "held",
        "flow bank is not loaded (removed or renamed)",
    )


OFFER = """
    start: offer
    nodes:
      offer: {play: "A new card for you.", next: hangup}
"""


async def start_campaign(
    store: RecordStore, tmp_path: Path, name: str, numbers: list[str], at: float, **settings: object
) -> None:
    path = tmp_path / f"{name}.csv"
    path.write_text("number\n" + "".join(f"{n}\n" for n in numbers))
    await Campaigns(store, clock=Clock(at)).start(
        Settings(name=name, flow="offer", dial="PJSIP/{number}@trunk", **settings),  # type: ignore[arg-type]
        read_list(path),
    )


@pytest.mark.parametrize("stalled", ["paused", "out-of-hours"])
async def test_a_stalled_campaign_hides_no_callback_survey_or_other_campaign(
    store: RecordStore, tmp_path: Path, stalled: str
) -> None:
    at = next_monday_utc(9, 30)  # the callback and survey hours are 09:00-10:00
    hours = {"mon-sun": "14:00-15:00"} if stalled == "out-of-hours" else None
    await start_campaign(
        store, tmp_path, "big", [f"5551{i:03d}" for i in range(250)], at - 600, hours=hours
    )
    if stalled == "paused":
        await Campaigns(store).set_state("big", "paused")
    await start_campaign(store, tmp_path, "small", ["5559000"], at - 600)
    outbound = Outbound(store, clock=Clock(at - 300))  # booked after every campaign row
    bank = flow(BANK, name="bank")
    await book(outbound, bank, "c-1", "callback", number="5550101")
    await book(outbound, bank, "c-2", "survey", number="5550102")
    outbound.clock = Clock(at)
    ami = FakeAmi()
    flows = {"bank": bank, "offer": flow(OFFER, name="offer")}
    await tick(Dialer(outbound, ami, lambda: flows))  # type: ignore[arg-type]
    assert sorted(ami.dialled) == [
        "PJSIP/5550101@callback-line",
        "PJSIP/5550102@survey-line",
        "PJSIP/5559000@trunk",
    ]


@pytest.mark.parametrize("loaded", ["other", "renamed"])
async def test_a_campaign_whose_flow_is_gone_is_held_with_the_reason(
    store: RecordStore, tmp_path: Path, loaded: str
) -> None:
    # the answered call would get unknown_flow, and the job stay 'dialing' for ever
    at = next_monday_utc(10)
    await start_campaign(store, tmp_path, "spring", ["5550201", "5550202"], at - 60)
    flows = {"bank": flow(BANK, name="bank")}
    if loaded == "renamed":
        flows["offers"] = flow(OFFER, name="offers")
    outbound = Outbound(store, clock=Clock(at))
    ami = FakeAmi()
    await tick(Dialer(outbound, ami, lambda: flows))  # type: ignore[arg-type]
    assert ami.dialled == []
    held = await outbound.jobs(status="held")
    assert [j.number for j in held] == ["5550201", "5550202"]
    assert all(j.reason == "flow offer is not loaded (removed or renamed)" for j in held), held
    status = await Campaigns(store).status("spring")
    assert status["by_status"] == {"held": 2}


async def test_a_campaign_waits_while_no_flow_is_loaded_at_all(
    store: RecordStore, tmp_path: Path
) -> None:
    # a missing or broken flows_dir is not an edit: nothing is held, nothing is dialled
    at = next_monday_utc(10)
    await start_campaign(store, tmp_path, "spring", ["5550201"], at - 60)
    outbound = Outbound(store, clock=Clock(at))
    ami = FakeAmi()
    await tick(Dialer(outbound, ami, dict))  # type: ignore[arg-type]
    assert ami.dialled == [] and [j.status for j in await outbound.jobs()] == ["pending"]
    offer = flow(OFFER, name="offer")
    await tick(Dialer(outbound, ami, lambda: {"offer": offer}))  # type: ignore[arg-type]
    assert ami.dialled == ["PJSIP/5550201@trunk"]


async def test_an_answered_job_of_another_flow_is_closed_with_the_reason(
    store: RecordStore, tmp_path: Path
) -> None:
    # left 'answered', it counted against the campaign's max_concurrent until a restart
    at = next_monday_utc(10)
    await start_campaign(store, tmp_path, "spring", ["5550201"], at - 60)
    outbound = Outbound(store, clock=Clock(at))
    [job] = await outbound.due()
    assert await outbound.start_attempt(job)
    channel = ScriptedChannel(info=CallInfo(uniqueid="o-1", caller_id="5550201"))
    bank = flow(BANK, name="bank")  # the AGI request named flow bank
    assert (
        await run_job(str(job.id), bank, channel, Services(clock=outbound.clock), store, outbound)
        is None
    )
    assert channel.hung_up
    [job] = await outbound.jobs()
    assert (job.status, job.last_result) == ("failed", "wrong flow")
    assert job.reason == "the answered call asked for flow bank, not offer"
    assert await outbound.in_progress() == {}


async def test_an_answered_job_whose_flow_was_removed_while_it_rang_is_closed(
    store: RecordStore, tmp_path: Path
) -> None:
    at = next_monday_utc(10)
    await start_campaign(store, tmp_path, "spring", ["5550201"], at - 60)
    outbound = Outbound(store, clock=Clock(at))
    [job] = await outbound.due()
    assert await outbound.start_attempt(job)
    channel = ScriptedChannel(info=CallInfo(uniqueid="o-2", caller_id="5550201"))
    assert (
        await run_job(str(job.id), None, channel, Services(clock=outbound.clock), store, outbound)
        is None
    )
    assert channel.hung_up
    [job] = await outbound.jobs()
    assert (job.status, job.reason) == ("failed", "flow offer was removed while the call rang")
    assert await outbound.in_progress() == {}


async def test_a_big_campaign_is_held_a_batch_per_round(
    store: RecordStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one UPDATE of every row of a 500,000-number campaign held the write lock for seconds
    monkeypatch.setattr("ivr.outbound.jobs.BATCH_ROWS", 2)
    at = next_monday_utc(10)
    await start_campaign(store, tmp_path, "spring", [f"555020{i}" for i in range(5)], at - 60)
    outbound = Outbound(store, clock=Clock(at))
    dialer = Dialer(outbound, FakeAmi(), lambda: {"bank": flow(BANK, name="bank")})  # type: ignore[arg-type]
    held = []
    for _ in range(4):
        await tick(dialer)
        held.append(len(await outbound.jobs(status="held")))
    assert held == [2, 4, 5, 5]


async def due_at(store: RecordStore) -> set[float]:
    return {
        row[0]
        for row in await store.transaction(
            lambda c: c.execute("SELECT due_at FROM outbound").fetchall()
        )
    }


async def test_held_campaign_calls_are_released_due_from_now(
    store: RecordStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ivr.outbound.jobs.BATCH_ROWS", 2)  # a big campaign is released in batches
    at = next_monday_utc(10)
    await start_campaign(store, tmp_path, "spring", [f"555020{i}" for i in range(5)], at - 60)
    outbound = Outbound(store, clock=Clock(at))
    gone = Dialer(outbound, FakeAmi(), lambda: {"bank": flow(BANK, name="bank")})  # type: ignore[arg-type]
    for _ in range(3):
        await tick(gone)
    assert len(await outbound.jobs(status="held")) == 5
    outbound.clock = Clock(at + 3600)  # the flow is back an hour later
    assert await outbound.release_campaign("spring") == 5
    assert {(j.status, j.reason) for j in await outbound.jobs()} == {("pending", "")}
    assert await due_at(store) == {at + 3600}
    assert await outbound.release_campaign("spring") == 0
    ami = FakeAmi()
    offer = flow(OFFER, name="offer")
    await tick(Dialer(outbound, ami, lambda: {"offer": offer}))  # type: ignore[arg-type]
    assert ami.dialled == ["PJSIP/5550200@trunk"]  # one per second (rate 1)


async def test_a_held_callback_is_released_by_its_id(store: RecordStore) -> None:
    outbound = await book_two(store, "callback")
    other = flow(BANK, name="other")
    await tick(Dialer(outbound, FakeAmi(), lambda: {"other": other}))  # type: ignore[arg-type]
    first, second = await outbound.jobs(status="held")
    outbound.clock = Clock(next_monday_utc(9, 30))
    assert await outbound.release_jobs([first.id, 999]) == 1
    assert [(j.id, j.status) for j in await outbound.jobs()] == [
        (first.id, "pending"),
        (second.id, "held"),
    ]
    assert await outbound.release_jobs([first.id]) == 0  # pending: not held any more
    [job] = await outbound.due()
    assert job.id == first.id


async def test_an_idle_dialer_wakes_up_at_once_for_a_booking(store: RecordStore) -> None:
    outbound = Outbound(store)
    bank = flow(BANK_ANY_HOUR, name="bank")
    ami = FakeAmi()
    dialer = Dialer(outbound, ami, lambda: {"bank": bank}, poll_s=0.05, idle_poll_s=60)  # type: ignore[arg-type]
    dialer.start()
    try:
        await asyncio.sleep(0.3)  # its first round found nothing due: it now waits 60 s
        assert ami.dialled == []
        await book(outbound, bank, "1700000000.9", "callback")
        async with asyncio.timeout(5):  # not the 60 s of the idle poll
            while not ami.dialled:
                await asyncio.sleep(0.02)
        assert ami.dialled == ["PJSIP/5550100@callback-line"]
    finally:
        await dialer.close()


async def test_a_node_requeues_only_the_outbound_calls_it_was_placing(db: Db) -> None:
    """A restarting node takes back its own cut-off attempts; another node's are its own."""
    a, b = await db.open(node="host-a:4573"), await db.open(node="host-b:4573")
    try:
        clock = Clock(next_monday_utc(9, 30))
        on_a = Outbound(a, clock=clock)
        await book(on_a, flow(BANK, name="bank"), "c-1", "callback")
        [job] = await on_a.due()
        assert await on_a.start_attempt(job)  # node a is ringing the customer
        on_b = Outbound(b, clock=clock)
        assert await on_b.recover() == 0  # node b restarts: not its call
        assert [j.status for j in await on_b.jobs()] == ["dialing"]
        assert await on_a.recover() == 1  # node a restarts: its own, back in line
        assert [j.status for j in await on_a.jobs()] == ["pending"]
    finally:
        await a.close()
        await b.close()
