"""Taking over a call another node was running (ivr.store.queries.take_over), on both engines:
the row changes hands once, the record and resume point come back, and the node that lost the
call can no longer write over it."""

from __future__ import annotations

from dataclasses import replace

from support.stores import Db

from ivr.call.record import CallRecord
from ivr.call.resume import ResumePoint
from ivr.store.records import RecordStore

POINT = ResumePoint(
    flow="cards",
    node="m",
    stack=(("main", "after"),),
    variables={"choice": "cards", "name": "Zoë"},
    language="zh",
    menus=("menu",),
    served=True,
)


def in_progress(call_id: str = "box1-1700000000.7", **changes: object) -> CallRecord:
    record = CallRecord(
        call_id=call_id,
        flow="main",
        flow_version="v1",
        caller="5551234",
        started_at=1_700_000_000,
        box="box1",
    )
    for name, value in changes.items():
        setattr(record, name, value)
    return record


async def saved(store: RecordStore) -> None:
    """Wait until the store's queued checkpoints are written: a later write rides behind them."""
    done = in_progress("flush", outcome="self_service", ended_at=1_700_000_001)
    await store.finish(done)


async def test_a_node_takes_over_a_call_at_its_last_checkpoint(db: Db) -> None:
    a, b = await db.open(node="a:4573"), await db.open(node="b:4573")
    try:
        record = in_progress()
        await a.begin(record)
        a.checkpoint(replace(record, path=["menu", "cards:m"], end_node="cards:m"), POINT)
        await saved(a)

        taken = await b.take_over(record.call_id)
        assert taken is not None
        assert (taken.from_node, taken.resume) == ("a:4573", POINT)
        assert taken.record.path == ["menu", "cards:m"] and taken.record.node == "b:4573"
        assert taken.record.box == "box1"  # the record keeps the box that carries the call
        assert await b.take_over("unknown-call") is None

        # node a's late writes (it was only cut off) no longer touch the call
        a.checkpoint(replace(record, path=["stale"]), POINT)
        await saved(a)
        await a.finish(replace(record, outcome="abandoned", ended_at=1_700_000_005))
        row = await b.get(record.call_id)
        assert row is not None and (row.outcome, row.path) == (None, ["menu", "cards:m"])

        finished = replace(taken.record, outcome="self_service", ended_at=1_700_000_009)
        finished.path.append("after")
        await b.finish(finished)
        row = await b.get(record.call_id)
        assert row is not None
        assert (row.outcome, row.node, row.path[-1]) == ("self_service", "b:4573", "after")
        assert await b.take_over(record.call_id) is None  # finished: nothing to resume
    finally:
        await a.close()
        await b.close()


async def test_a_call_without_a_checkpoint_comes_back_without_a_resume_point(db: Db) -> None:
    async with await db.open(node="a:4573") as a, await db.open(node="b:4573") as b:
        await a.begin(in_progress("no-menu-yet"))
        taken = await b.take_over("no-menu-yet")
        assert taken is not None and taken.resume is None
        # taken twice (b died too): the third node gets it from b
        async with await db.open(node="c:4573") as c:
            again = await c.take_over("no-menu-yet")
            assert again is not None and again.from_node == "b:4573"
