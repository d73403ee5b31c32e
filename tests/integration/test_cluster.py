"""Several ivr nodes on one database (issue 12): what holds today.

Each node is its own store connection, outbound policy and dialler, as two ``ivr serve``
processes would be; the manager is a fake that counts Originates. A campaign's rate and
max_concurrent hold for the nodes together, not for each.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from support.fake_ami import CountingManager
from support.flowkit import flow
from support.postgres import PostgresServer
from support.stores import Db

from ivr.errors import AmiError
from ivr.flow.model import Flow
from ivr.flow.numbers import NumberPolicy, effective
from ivr.flow.queue_node import QueueNode
from ivr.outbound.campaigns import CallList, Campaigns, Settings
from ivr.outbound.dialer import Dialer, channel_id
from ivr.outbound.jobs import Outbound
from ivr.runtime.context import BookedBy
from ivr.store.nodes import NodeStore
from ivr.store.records import RecordStore

JOBS = 1000
OFFER = flow(
    """
    start: offer
    nodes:
      offer: {play: "A new card for you.", next: hangup}
""",
    name="offer",
)


@pytest.fixture
async def nodes(postgres: PostgresServer) -> AsyncIterator[list[RecordStore]]:
    url = postgres.create_database("cluster")
    stores = [await RecordStore.open(url, password=postgres.password) for _ in range(2)]
    yield stores
    for store in stores:
        await store.close()


def offer_flows() -> dict[str, Flow]:
    return {"offer": OFFER}


async def test_two_diallers_place_every_due_job_exactly_once(nodes: list[RecordStore]) -> None:
    numbers = CallList([{"number": f"55{i:08d}"} for i in range(JOBS)], 0, [])
    campaign = Settings(
        name="spring", flow="offer", dial="PJSIP/{number}@trunk", rate=100_000.0,
        max_concurrent=JOBS,
    )  # fmt: skip
    assert await Campaigns(nodes[0]).start(campaign, numbers) == JOBS
    amis = [CountingManager(), CountingManager()]
    dialers = [
        Dialer(Outbound(store), ami, offer_flows, poll_s=0.01)  # type: ignore[arg-type]
        for store, ami in zip(nodes, amis, strict=True)
    ]

    async def run(dialer: Dialer) -> None:
        deadline = time.monotonic() + 60
        while sum(len(a.dialled) for a in amis) < JOBS and time.monotonic() < deadline:
            await dialer.tick()
            await asyncio.sleep(0)
        while dialer._dialing:  # the Originates under way finish
            await asyncio.sleep(0.01)

    await asyncio.gather(*(run(d) for d in dialers))
    placed = Counter(channel for ami in amis for channel in ami.dialled)
    assert len(placed) == JOBS  # every job
    assert max(placed.values()) == 1  # once, whichever node claimed it
    assert all(ami.dialled for ami in amis)  # and both nodes took part
    jobs = await Outbound(nodes[1]).jobs()
    assert Counter(j.status for j in jobs) == {"dialing": JOBS}
    assert {j.attempts for j in jobs} == {1}


@dataclass
class ChannelsAmi:
    """Asterisk as the reconciler asks it: which attempt channels are still up."""

    up: bool = True
    live: set[str] = field(default_factory=set)
    reachable: bool = True
    asked: list[str] = field(default_factory=list)

    async def channel_exists(self, channel: str) -> bool:
        if not self.reachable:
            raise AmiError("AMI is not connected (action Getvar)")
        self.asked.append(channel)
        return channel in self.live


async def test_a_live_node_takes_over_a_dead_nodes_attempts_once_their_calls_are_gone(
    db: Db,
) -> None:
    a, b = await db.open(node="host-a:4573"), await db.open(node="host-b:4573")
    try:
        numbers = CallList([{"number": f"555000{i}"} for i in range(4)], 0, [])
        spring = Settings(name="spring", flow="offer", dial="PJSIP/{number}@trunk")
        await Campaigns(a).start(spring, numbers)
        on_a = Outbound(a)
        jobs = await on_a.due()
        for job in jobs:
            assert await on_a.start_attempt(job)  # node a rings all four...
        ringing, up, answered, fresh = jobs
        assert await on_a.answered(answered.id)
        now = time.time()
        await NodeStore(a).beat("0.1.0", started_at=now - 600, calls=4, now=now - 120)  # ...dies
        await NodeStore(b).beat("0.1.0", started_at=now - 600, calls=0, now=now)
        on_b = Outbound(b)
        ami = ChannelsAmi(live={channel_id(up.id, 1)})  # that call still rings on Asterisk
        dialer = Dialer(on_b, ami, offer_flows, dead_after_s=30)  # type: ignore[arg-type]

        ami.reachable = False  # Asterisk cannot be asked: nothing is touched
        assert await dialer.reconcile() == 0
        ami.reachable = True
        assert await dialer.reconcile() == 3  # all of node a's but the one still up
        by_id = {j.id: j for j in await on_b.jobs()}
        for requeued in (ringing, fresh):
            assert (by_id[requeued.id].status, by_id[requeued.id].last_result) == (
                "pending",
                "node_lost",
            )
        assert by_id[up.id].status == "dialing"  # its call goes on
        assert (by_id[answered.id].status, by_id[answered.id].last_result) == (
            "done",
            "interrupted",
        )  # answered: never dialled again
        assert channel_id(ringing.id, 1) in ami.asked
        assert await dialer.reconcile() == 0  # taken over once
        await NodeStore(a).beat("0.1.0", started_at=now, calls=1, now=time.time())  # back
        assert await on_b.stranded(30) == []
    finally:
        await a.close()
        await b.close()


# -- a campaign's rate and max_concurrent hold for the nodes together


@dataclass
class Calls:
    """The calls of every node's fake manager: when each started (by the dialler's clock),
    which node placed it, and the most up at once."""

    started: list[tuple[float, str]] = field(default_factory=list)
    up: int = 0
    peak: int = 0
    peak_in_db: int = 0  # the most ringing or answered in the database at an Originate


@dataclass
class RingingAmi:
    """One node's manager: each call rings ``ring_s``, is answered and ends (the job done);
    with ``ring_s`` None it rings on (its job stays ``dialing``)."""

    outbound: Outbound
    calls: Calls
    ring_s: float | None = None
    up: bool = True

    async def originate(self, channel: str, **kw: object) -> dict[str, str]:
        node = self.outbound.table.records.node
        self.calls.started.append((self.outbound.clock(), node))
        [(in_db,)] = await self.outbound.table.records.read(
            "SELECT COUNT(*) FROM outbound WHERE status IN ('dialing', 'answered')"
        )
        self.calls.peak_in_db = max(self.calls.peak_in_db, int(in_db))
        if self.ring_s is None:
            return {"Response": "Success", "Reason": "4"}
        self.calls.up += 1
        self.calls.peak = max(self.calls.peak, self.calls.up)
        try:
            await asyncio.sleep(self.ring_s)
            job_id = int(str(kw["channel_id"]).split("-")[2])
            assert await self.outbound.answered(job_id) is not None
            await self.outbound.done(job_id, "answered")
        finally:
            self.calls.up -= 1
        return {"Response": "Success", "Reason": "4"}


@pytest.fixture
async def pair(db: Db) -> AsyncIterator[list[RecordStore]]:
    """Two nodes (their own store connections and node ids) on one database."""
    stores = [await db.open(node=f"host-{n}:4573") for n in "ab"]
    yield stores
    for store in stores:
        await store.close()


async def start_spring(store: RecordStore, jobs: int, rate: float, max_concurrent: int) -> None:
    numbers = CallList([{"number": f"55{i:08d}"} for i in range(jobs)], 0, [])
    spring = Settings(
        name="spring", flow="offer", dial="PJSIP/{number}@trunk", rate=rate,
        max_concurrent=max_concurrent,
    )  # fmt: skip
    assert await Campaigns(store).start(spring, numbers) == jobs


def diallers(
    stores: list[RecordStore], calls: Calls, poll_s: float, ring_s: float | None = None
) -> list[Dialer]:
    out = []
    for store in stores:
        outbound = Outbound(store)
        ami = RingingAmi(outbound, calls, ring_s)
        out.append(Dialer(outbound, ami, offer_flows, poll_s=poll_s))  # type: ignore[arg-type]
    return out


async def run_rounds(dialers: list[Dialer], until: Callable[[], bool], timeout_s: float) -> None:
    """Each node's rounds every ``poll_s`` (as ``Dialer._loop``) until ``until()``, then the
    Originates under way finish."""
    deadline = time.monotonic() + timeout_s

    async def run(dialer: Dialer) -> None:
        while not until() and time.monotonic() < deadline:
            await dialer.tick()
            await asyncio.sleep(dialer.poll_s)
        while dialer._dialing:
            await asyncio.sleep(0.01)

    await asyncio.gather(*(run(d) for d in dialers))


async def test_two_nodes_start_a_campaigns_calls_at_its_rate_together(
    pair: list[RecordStore],
) -> None:
    rate, poll_s, window_s = 10.0, 0.02, 2.0
    await start_spring(pair[0], jobs=100, rate=rate, max_concurrent=100)
    calls = Calls()
    nodes = diallers(pair, calls, poll_s)
    first = time.time()
    await run_rounds(nodes, lambda: time.time() - first >= window_s, 10)
    rows = await pair[1].read("SELECT updated_at FROM outbound WHERE status = 'dialing'")
    starts = sorted(float(at) for (at,) in rows)  # when each was started, by the dialler's clock
    assert len(starts) == len(calls.started)
    window = starts[-1] - starts[0]
    # one every 1/rate s, whichever node starts it; a round late by up to poll_s keeps its
    # place (one node alone does the same): at most rate x (window + poll_s) + 1
    assert len(starts) <= rate * (window + poll_s) + 1 + 1e-6, (len(starts), window)
    assert len(starts) >= rate * window_s * 0.7, (len(starts), window)  # and not fewer
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert sum(gaps) / len(gaps) >= 1 / rate * 0.95, gaps
    split = Counter(node for _, node in calls.started)
    print(f"{len(starts)} starts in {window:.2f} s (rate {rate}/s) by node: {dict(split)}")


async def test_two_nodes_keep_a_campaigns_max_concurrent_together(
    pair: list[RecordStore],
) -> None:
    jobs, limit = 40, 3
    await start_spring(pair[0], jobs=jobs, rate=1000.0, max_concurrent=limit)
    calls = Calls()
    nodes = diallers(pair, calls, poll_s=0.01, ring_s=0.05)
    await run_rounds(nodes, lambda: len(calls.started) >= jobs, 30)
    assert len(calls.started) == jobs
    assert {(j.status, j.attempts) for j in await Outbound(pair[1]).jobs()} == {("done", 1)}
    assert calls.peak <= limit, calls.peak  # never more at once, on both nodes together
    assert calls.peak_in_db <= limit, calls.peak_in_db
    assert {node for _, node in calls.started} == {"host-a:4573", "host-b:4573"}


@dataclass
class StoppedClock:
    """The dialler's clock, moved by hand."""

    now: float

    def __call__(self) -> float:
        return self.now


async def test_the_shared_pace_follows_the_diallers_clock_and_an_idle_time_earns_no_burst(
    pair: list[RecordStore],
) -> None:
    await start_spring(pair[0], jobs=20, rate=10.0, max_concurrent=20)
    clock = StoppedClock(time.time())
    calls = Calls()
    nodes = diallers(pair, calls, poll_s=0.05)
    for dialer in nodes:
        dialer.outbound.clock = clock
    rounds = 0

    def rounds_done(n: int) -> Callable[[], bool]:
        def done() -> bool:
            nonlocal rounds
            rounds += 1
            return rounds > n

        return done

    await run_rounds(nodes, rounds_done(20), 10)  # 0.5 s go by, not on the dialler's clock
    assert len(calls.started) == 1
    clock.now += 0.1  # the next slot
    rounds = 0
    await run_rounds(nodes, rounds_done(10), 10)
    assert len(calls.started) == 2
    clock.now += 600  # ten minutes without a call
    rounds = 0
    await run_rounds(nodes, rounds_done(20), 10)
    assert len(calls.started) == 3  # one call, not a burst of the slots it missed


CALLBACKS = flow(
    """
    start: agent
    nodes:
      agent:
        queue:
          name: cards
          callback: {prompt: "Press 1.", then: booked, dial: "PJSIP/{number}@callback-line",
                     max_concurrent: 2}
          when_unavailable: busy
          when_timeout: busy
        next: hangup
      booked: {play: "We will call you back.", next: hangup}
      busy: {play: "All agents are busy.", next: hangup}
""",
    name="bank",
)


async def test_two_nodes_keep_a_callback_offers_max_concurrent_together(
    pair: list[RecordStore],
) -> None:
    jobs, node = 30, CALLBACKS.nodes["agent"]
    assert isinstance(node, QueueNode)
    policy = effective(NumberPolicy(per_caller_per_day=jobs, per_number_per_day=jobs), None)
    booking = Outbound(pair[0])
    for i in range(jobs):
        number = f"5550{i:03d}"
        by = BookedBy(f"call-{i}", "bank", number)
        assert await booking.book_callback(by, node, number, 0.0, policy) is None
    calls = Calls()
    nodes = diallers(pair, calls, poll_s=0.01, ring_s=0.05)
    for dialer in nodes:
        dialer.flows = lambda: {"bank": CALLBACKS}
    await run_rounds(nodes, lambda: len(calls.started) >= jobs, 30)
    assert len(calls.started) == jobs
    assert {(j.status, j.attempts) for j in await Outbound(pair[1]).jobs()} == {("done", 1)}
    assert calls.peak <= 2 and calls.peak_in_db <= 2, calls  # the offer's, on both together
    assert {node for _, node in calls.started} == {"host-a:4573", "host-b:4573"}
