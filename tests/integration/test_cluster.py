"""Several ivr nodes on one PostgreSQL database (issue 12): what holds today.

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

from ivr.flow.model import Flow
from ivr.outbound.campaigns import CallList, Campaigns, Settings
from ivr.outbound.dialer import Dialer
from ivr.outbound.jobs import Outbound
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
