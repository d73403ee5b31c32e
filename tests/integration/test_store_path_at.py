"""``calls.path_at``: when the call entered each node of its path, stored and read back on
both engines, through begin, checkpoint, finish, take-over and a journal written before v9."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from support.flowkit import flow
from support.stores import Db

from ivr.call.channel import CallInfo
from ivr.call.record import CallRecord
from ivr.runtime.interpreter import CallRun, Services
from ivr.runtime.sim import ScriptedChannel, SimClock, parse_tokens
from ivr.store.codec import COLUMNS, encode
from ivr.store.journal import Journal
from ivr.store.records import RecordStore


def make_record(call_id: str = "1700000000.7", **changes: object) -> CallRecord:
    base = CallRecord(
        call_id=call_id,
        flow="main",
        flow_version="v1",
        caller="5551234",
        started_at=1_700_000_000.5,
        path=["welcome", "menu"],
        path_at=[0.0, 1.25],
    )
    return replace(base, **changes)


async def test_path_at_round_trips_through_begin_checkpoint_and_finish(store: RecordStore) -> None:
    record = make_record()
    await store.begin(record)
    assert (await store.get(record.call_id)) == record
    store.checkpoint(replace(record, path=[*record.path, "menu"], path_at=[0.0, 1.25, 9.5]))
    await store.finish(make_record("other", outcome="abandoned"))  # the checkpoint rides along
    saved = await store.get(record.call_id)
    assert saved is not None and saved.path_at == [0.0, 1.25, 9.5]
    done = replace(
        record,
        path=["welcome", "menu", "menu", "sales"],
        path_at=[0.0, 1.25, 9.5, 12.125],
        outcome="self_service",
        ended_at=record.started_at + 15,
    )
    await store.finish(done)
    assert await store.get(record.call_id) == done
    [(text,)] = await store.read("SELECT path_at FROM calls WHERE call_id = ?", [done.call_id])
    assert json.loads(text) == [0.0, 1.25, 9.5, 12.125]  # a plain JSON list, aligned with path


async def test_a_row_written_without_path_at_reads_as_an_empty_list(store: RecordStore) -> None:
    """Rows from before v9 have the column's default."""
    await store.transaction(
        lambda conn: conn.execute(
            "INSERT INTO calls (call_id, flow, flow_version, started_at, path, outcome)"
            " VALUES ('old', 'main', 'v1', 1.0, '[\"welcome\"]', 'failed_in_ivr')"
        )
    )
    saved = await store.get("old")
    assert saved is not None and (saved.path, saved.path_at) == (["welcome"], [])
    assert saved.outcome == "failed_in_ivr"


async def test_a_taken_over_call_keeps_its_path_at(db: Db) -> None:
    a = await db.open(node="node-a")
    try:
        await a.begin(make_record())
    finally:
        await a.close()
    b = await db.open(node="node-b")
    try:
        taken = await b.take_over("1700000000.7")
        assert taken is not None and taken.record.path_at == [0.0, 1.25]
    finally:
        await b.close()


async def test_journaled_rows_from_before_path_at_are_replayed(db: Db, tmp_path: Path) -> None:
    """A journal left by an older version holds shorter rows: v8 (no path_at) and v5 (no
    node, box, recording either) are replayed with each added column's default."""
    v8 = make_record("v8", outcome="self_service", ended_at=1_700_000_010.0)
    v5 = make_record("v5", outcome="abandoned", ended_at=1_700_000_020.0)
    journal = Journal(tmp_path / "old.journal")
    journal.append([("finish", encode(v8)[: len(COLUMNS) - 1]), ("finish", encode(v5)[:-4])])
    store = await db.open(journal_path=tmp_path / "old.journal")
    try:
        got = {r.call_id: r for r in await store.recent(limit=10)}
    finally:
        await store.close()
    assert got["v8"] == replace(v8, path_at=[])
    assert got["v5"] == replace(v5, path_at=[])


async def test_a_call_run_stores_when_it_entered_each_node(store: RecordStore) -> None:
    f = flow("""
        start: welcome
        nodes:
          welcome: {play: "Hi.", next: menu}
          menu:
            menu:
              prompt: "1 for info."
              options: {"1": info}
              timeout_s: 4
              no_input: {max: 1}
              otherwise: info
          info: {play: "Info.", served: true, next: hangup}
    """)
    clock = SimClock(1_700_000_000.0)
    channel = ScriptedChannel(parse_tokens("wait,1"), info=CallInfo(uniqueid="u1"), clock=clock)
    services = Services(clock=clock, flows={f.name: f}, checkpoint=store.checkpoint)
    run = CallRun(f, channel, services)
    await store.begin(run.record)
    record = await run.run()
    await store.finish(record)
    saved = await store.get("u1")
    assert saved is not None and saved.outcome == "self_service"
    assert (saved.path, saved.path_at) == (["welcome", "menu", "info"], [0.0, 0.0, 4.5])
