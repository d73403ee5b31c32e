"""Several ivr nodes on one database (issue 12): what holds today.

Each node is its own store connection, outbound policy and dialler, as two ``ivr serve``
processes would be; the manager is a fake that counts Originates.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from support.flowkit import flow
from support.postgres import PostgresServer
from support.stores import Db

from ivr.errors import AmiError
from ivr.flow.model import Flow
from ivr.outbound.campaigns import CallList, Campaigns, Settings
from ivr.outbound.dialer import Dialer, channel_id
from ivr.outbound.jobs import Outbound
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


@dataclass
class CountingAmi:
    """Every Originate succeeds at once (the call then rings: its job stays ``dialing``)."""

    up: bool = True
    dialled: list[str] = field(default_factory=list)

    async def originate(self, channel: str, **kw: object) -> dict[str, str]:
        self.dialled.append(channel)
        await asyncio.sleep(0)
        return {"Response": "Success", "Reason": "4"}


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
    amis = [CountingAmi(), CountingAmi()]
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
