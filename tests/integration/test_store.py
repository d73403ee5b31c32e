"""Tests of the SQLite call-record store (ivr.store.records)."""

from __future__ import annotations

import asyncio
import itertools
import re
import sqlite3
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from support.stores import Db

from ivr.call.record import CallRecord, InputEvent, QueueVisit, SurveyAnswer, SurveyResult
from ivr.errors import IvrError, StoreError
from ivr.store.nodes import NodeStore
from ivr.store.queries import RECOVERED_ERROR
from ivr.store.records import RecordStore
from ivr.store.schema import SCHEMA_VERSION
from ivr.store.sql import Connection

TIMEOUT_S = 10.0  # a store that loses a write would hang its awaiters: fail instead


def make_record(call_id: str = "1700000000.1", **changes: object) -> CallRecord:
    record = CallRecord(
        call_id=call_id,
        flow="main",
        flow_version="v3",
        caller="+4420794600 00",
        dnis="8000",
        started_at=1_700_000_000.25,
        ended_at=1_700_000_042.75,
        language="fr",
        path=["welcome", "menu", "balance", "goodbye"],
        inputs=[
            InputEvent(node="menu", kind="speech", value="solde é", at_s=3.5),
            InputEvent(node="pin", kind="dtmf", value="***", at_s=9.125),
            InputEvent(node="menu", kind="no_input", value="", at_s=20.0),
        ],
        outcome="self_service",
        end_node="goodbye",
        transfer_target=None,
        error=None,
        variables={"account_type": "gold", "intent": "balance"},
    )
    for name, value in changes.items():
        setattr(record, name, value)
    return record


async def test_round_trip_is_equal(store: RecordStore) -> None:
    record = make_record()
    await store.finish(record)
    assert await store.get(record.call_id) == record
    assert await store.get("nope") is None


async def test_round_trip_with_empty_lists_and_none(store: RecordStore) -> None:
    record = make_record(
        path=[],
        inputs=[],
        variables={},
        ended_at=None,
        outcome="abandoned",
        end_node=None,
        transfer_target="queue:sales",
        error="x",
    )
    await store.finish(record)
    assert await store.get(record.call_id) == record


async def test_duration_column_is_stored(store: RecordStore) -> None:
    await store.finish(make_record())
    [(duration,)] = await store.read("SELECT duration_s FROM calls")
    assert duration == pytest.approx(42.5)


async def test_begin_then_finish_replaces_the_row(store: RecordStore) -> None:
    start = make_record(ended_at=None, path=["welcome"], inputs=[], outcome=None, end_node=None)
    await store.begin(start)
    assert await store.get(start.call_id) == start
    final = make_record()
    await store.finish(final)
    assert await store.get(start.call_id) == final
    assert (await store.count_by_outcome())["self_service"] == 1


async def test_a_call_id_seen_before_gets_a_suffix_and_both_records_stay(
    store: RecordStore,
) -> None:
    earlier = make_record(outcome=None)
    await store.begin(earlier)
    await store.finish(replace(earlier, outcome="self_service", ended_at=earlier.started_at + 9))
    again = make_record(outcome=None, caller="5550000")  # the same uniqueid, another call
    await store.begin(again)
    assert again.call_id == "1700000000.1-2"
    store.checkpoint(replace(earlier, path=["overwritten?"]))  # never on a finished row
    await store.finish(replace(again, outcome="abandoned", ended_at=again.started_at + 1))
    first, second = await store.get("1700000000.1"), await store.get("1700000000.1-2")
    assert first is not None and second is not None
    assert (first.outcome, first.path) == ("self_service", earlier.path)
    assert (second.outcome, second.caller) == ("abandoned", "5550000")


async def test_a_duplicate_call_that_ends_before_its_begin_is_retried_keeps_its_record(
    store: RecordStore,
) -> None:
    """The flow runs while begin is written: a short call can end before the duplicate id
    is found and retried under the new one."""
    earlier = make_record(outcome=None)
    await store.begin(earlier)
    again = make_record(outcome=None, caller="5550000")
    begun = asyncio.create_task(store.begin(again))
    await asyncio.sleep(0)  # begin has taken its row; the flow goes on
    again.outcome, again.ended_at = "abandoned", again.started_at + 1
    await begun
    await store.finish(again)
    stored = await store.get("1700000000.1-2")
    assert stored is not None and (stored.outcome, stored.caller) == ("abandoned", "5550000")


async def test_finish_without_outcome_is_refused(store: RecordStore) -> None:
    with pytest.raises(ValueError, match="no outcome"):
        await store.finish(make_record(outcome=None))


async def test_invalid_outcome_is_rejected_by_the_schema(store: RecordStore) -> None:
    with pytest.raises(StoreError, match=r"(?i)check") as caught:
        await store.finish(make_record(outcome="hung_up"))  # type: ignore[arg-type]
    assert "4420794600" not in str(caught.value)  # the row's values stay out of the error
    # a failed write does not sink the other writes queued in the same batch
    records = [make_record(f"ok{i}") for i in range(20)]
    records.insert(10, make_record("bad", outcome="??"))  # type: ignore[arg-type]
    results = await asyncio.gather(*(store.finish(r) for r in records), return_exceptions=True)
    assert [type(r).__name__ for r in results].count("StoreError") == 1
    assert isinstance(results[10], StoreError)
    assert await store.get("bad") is None
    assert sum((await store.count_by_outcome()).values()) == 20


async def test_checkpoints_are_not_awaited_and_the_newest_queued_one_wins(db: Db) -> None:
    store = await db.open()
    written: list[str] = []
    real = store._writes._write_batch

    def spy(batch: list[tuple[str, Any]]) -> list[Exception | None]:
        written.extend(params[0] for _, params in batch)
        return real(batch)

    store._writes._write_batch = spy  # type: ignore[method-assign]
    await store.begin(make_record("a", path=[], outcome=None, ended_at=None, end_node=None))
    for i in range(1, 6):  # one queue slot, the newest wins; nothing handed to the writer yet
        store.checkpoint(
            make_record("a", path=["menu"] * i, outcome=None, ended_at=None, end_node="menu")
        )
    assert written == ["a"]
    await store.finish(make_record("b"))  # the checkpoint rides in the same batch
    assert written == ["a", "a", "b"]
    a = await store.get("a")
    assert a is not None and a.path == ["menu"] * 5 and a.outcome is None
    # alone, a checkpoint goes after checkpoint_delay_s
    store.checkpoint_delay_s = 0.05
    store.checkpoint(make_record("c", path=["menu"], outcome=None, ended_at=None))
    await asyncio.sleep(0.3)
    assert written == ["a", "a", "b", "c"]
    # and close() writes what is still queued
    store.checkpoint_delay_s = 60
    store.checkpoint(make_record("d", path=["menu"], outcome=None, ended_at=None))
    await store.close()
    assert written[-1] == "d"
    with pytest.raises(StoreError, match="closed"):
        store.checkpoint(make_record("a", outcome=None, ended_at=None))


@pytest.mark.parametrize(("window_s", "batches"), [(0.0, [1, 2]), (0.1, [3])])
async def test_a_commit_window_gathers_a_trickle_of_writes_into_one_transaction(
    db: Db, window_s: float, batches: list[int]
) -> None:
    store = await db.open(commit_window_s=window_s)
    sizes: list[int] = []
    real = store._writes._write_batch

    def spy(batch: list[tuple[str, Any]]) -> list[Exception | None]:
        sizes.append(len(batch))
        time.sleep(0.05)  # a transaction that takes a while, as on a busy disk
        return real(batch)

    store._writes._write_batch = spy  # type: ignore[method-assign]

    async def finish_later(call_id: str, after_s: float) -> None:
        await asyncio.sleep(after_s)
        await store.finish(make_record(call_id))

    # three calls ending 10 ms apart: without a window the first goes alone
    await asyncio.wait_for(
        asyncio.gather(*(finish_later(f"c{i}", i * 0.01) for i in range(3))), TIMEOUT_S
    )
    assert sizes == batches
    assert {r.call_id for r in await store.recent(limit=10)} == {"c0", "c1", "c2"}
    await store.close()


async def test_a_negative_commit_window_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="commit_window_s"):
        await RecordStore.open(tmp_path / "calls.db", commit_window_s=-1)


async def test_a_durable_transaction_waits_for_the_disk_and_the_others_do_not(db: Db) -> None:
    sql, lazy, synced = {
        "sqlite": ("PRAGMA synchronous", 1, 2),  # NORMAL, FULL
        "postgresql": ("SHOW synchronous_commit", "off", "on"),
    }[db.backend]
    async with await db.open() as store:

        def setting(c: Connection) -> object:
            return c.execute(sql).fetchone()[0]

        assert await store.transaction(setting) == lazy
        assert await store.transaction(setting, durable=True) == synced
        assert await store.transaction(setting) == lazy  # only that one transaction


async def test_unfinished_calls_are_recovered_after_reopening(db: Db) -> None:
    s = await db.open()
    await s.begin(make_record("crashed", path=[], outcome=None, ended_at=None, end_node=None))
    s.checkpoint(
        make_record("crashed", path=["welcome", "menu"], outcome=None, ended_at=None, end_node=None)
    )
    await s.finish(make_record("done"))
    # simulate a crash: drop the store without close(); the data is already committed
    s._db.executor.shutdown(wait=True)

    async with await db.open() as s2:
        assert await s2.recover_unfinished(now=1_700_000_100.25) == 1
        crashed = await s2.get("crashed")
        assert crashed is not None
        assert crashed.outcome == "error"
        assert crashed.end_node == "menu"
        assert crashed.error == RECOVERED_ERROR
        assert crashed.ended_at == 1_700_000_100.25
        assert crashed.duration_s == pytest.approx(100.0)
        assert await s2.get("done") == make_record("done")
        assert await s2.recover_unfinished(now=1_700_000_200.0) == 0


async def test_wal_mode_and_schema_version(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    async with await RecordStore.open(db):
        pass
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 1
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"calls_started_at", "calls_flow_started_at", "calls_outcome_started_at"} <= indexes
    async with await RecordStore.open(db) as s:  # reopening does not migrate again
        await s.finish(make_record())


async def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match=re.escape(str(db))):
        await RecordStore.open(db)


async def test_thousand_concurrent_finishes_all_land(store: RecordStore) -> None:
    records = [make_record(f"call-{i}", started_at=float(i)) for i in range(1000)]
    writes = asyncio.gather(*(asyncio.create_task(store.finish(r)) for r in records))
    await asyncio.wait_for(writes, TIMEOUT_S)
    counts = await store.count_by_outcome()
    assert counts["self_service"] == 1000
    assert sum(counts.values()) == 1000
    assert await store.get("call-999") == records[999]


async def test_event_loop_stays_responsive_while_writing(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    ticks: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.001)

    async with await RecordStore.open(db) as s:
        # another process holds the write lock for 0.3 s: the store's writes must wait for it
        # on the writer thread while the loop keeps running
        blocker = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        blocker.execute("BEGIN IMMEDIATE")
        release = threading.Timer(0.3, blocker.execute, ("COMMIT",))
        tick_task = asyncio.create_task(ticker())
        start = time.perf_counter()
        release.start()
        await asyncio.gather(*(s.finish(make_record(f"c{i}")) for i in range(2000)))
        elapsed = time.perf_counter() - start
        stop.set()
        await tick_task
        release.join()
        blocker.close()
        assert sum((await s.count_by_outcome()).values()) == 2000
    during = [t for t in ticks if t >= start]
    gaps = [b - a for a, b in itertools.pairwise(during)]
    assert elapsed >= 0.25, "the writes did not wait for the lock: the test proves nothing"
    assert len(during) >= 20, f"ticker starved: {len(during)} ticks in {elapsed:.3f}s"
    # a loop that waited for the lock itself would stall >= 0.3 s; GIL turns with the writer
    # thread on a busy 2-core machine reach ~0.1 s, which is not a blocked loop
    assert max(gaps) < 0.25, f"loop blocked for {max(gaps):.3f}s"


async def test_recent_filters(store: RecordStore) -> None:
    rows = [
        make_record("a", flow="main", started_at=100.0, outcome="self_service"),
        make_record("b", flow="main", started_at=200.0, outcome="transferred"),
        make_record("c", flow="billing", started_at=300.0, outcome="transferred"),
        make_record("d", flow="main", started_at=400.0, outcome="abandoned"),
    ]
    await asyncio.gather(*(store.finish(r) for r in rows))
    ids = lambda records: [r.call_id for r in records]  # noqa: E731
    assert ids(await store.recent()) == ["d", "c", "b", "a"]
    assert ids(await store.recent(limit=2)) == ["d", "c"]
    assert ids(await store.recent(flow="main")) == ["d", "b", "a"]
    assert ids(await store.recent(outcome="transferred")) == ["c", "b"]
    assert ids(await store.recent(since=200.0, until=400.0)) == ["c", "b"]
    assert ids(await store.recent(flow="main", outcome="transferred", since=150.0)) == ["b"]
    assert await store.recent(flow="nope") == []
    counts = await store.count_by_outcome(flow="main", since=150.0)
    assert counts == {
        "self_service": 0,
        "failed_in_ivr": 0,
        "transferred": 1,
        "abandoned": 1,
        "error": 0,
        None: 0,
    }
    with pytest.raises(ValueError):
        await store.recent(limit=0)


async def test_close_flushes_pending_writes(db: Db) -> None:
    s = await db.open(max_batch=7)
    tasks = [asyncio.create_task(s.finish(make_record(f"x{i}"))) for i in range(100)]
    await asyncio.sleep(0)  # let the tasks queue their writes, none awaited yet
    await asyncio.wait_for(s.close(), TIMEOUT_S)
    assert all(t.done() and t.exception() is None for t in tasks)
    async with await db.open() as again:
        assert (await again.count_by_outcome())["self_service"] == 100
    with pytest.raises(StoreError, match="closed"):
        await s.finish(make_record("late"))
    await s.close()  # idempotent


async def test_cancelled_write_lands(db: Db) -> None:
    s = await db.open()
    task = asyncio.create_task(s.finish(make_record("hangup")))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(s.close(), TIMEOUT_S)  # the store is not wedged by the cancel
    async with await db.open() as s:
        assert await s.get("hangup") == make_record("hangup")


async def test_bad_path_gives_store_error_naming_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    bad = blocker / "sub" / "calls.db"
    with pytest.raises(StoreError, match=re.escape(str(bad))) as info:
        await RecordStore.open(bad)
    assert isinstance(info.value, IvrError)
    as_dir = tmp_path / "a-directory"
    as_dir.mkdir()
    with pytest.raises(StoreError, match=re.escape(str(as_dir))) as info2:
        await RecordStore.open(as_dir)
    assert isinstance(info2.value.__cause__, sqlite3.Error)


async def test_open_creates_parent_directories(tmp_path: Path) -> None:
    db = tmp_path / "deep" / "er" / "calls.db"
    async with await RecordStore.open(db) as s:
        await s.finish(make_record())
    assert db.exists()


async def test_memory_database(tmp_path: Path) -> None:
    async with await RecordStore.open(":memory:") as s:
        await s.finish(make_record())
        assert await s.get(make_record().call_id) == make_record()


def queued_record(call_id: str = "1700000000.9") -> CallRecord:
    return make_record(
        call_id,
        outcome="transferred",
        queue=QueueVisit(
            "cards",
            "answered",
            wait_s=12.5,
            agent="Local/1001@agents",
            talk_s=40.0,
            position=2,
            expected_wait_s=15.0,
            agents_available=1,
        ),
        survey=SurveyResult(
            "after_call",
            "in_call",
            "completed",
            [SurveyAnswer("satisfied", "1-5", 5), SurveyAnswer("solved", "yes-no", 1)],
            satisfaction="satisfied",
            at=1700000100.0,
        ),
    )


async def test_queue_and_survey_round_trip(store: RecordStore) -> None:
    record = queued_record()
    await store.begin(make_record(record.call_id, outcome=None))
    await store.finish(record)
    assert await store.get(record.call_id) == record


async def test_a_survey_attaches_once_to_an_earlier_call(store: RecordStore) -> None:
    record = make_record("1700000000.8", outcome="transferred")
    await store.begin(make_record(record.call_id, outcome=None))
    await store.finish(record)
    survey = SurveyResult(
        "after_call",
        "outbound",
        "completed",
        [SurveyAnswer("satisfied", "1-5", 4)],
        satisfaction="satisfied",
    )
    assert await store.attach_survey(record.call_id, survey) is True
    assert await store.attach_survey(record.call_id, survey) is False  # one per call
    assert await store.attach_survey("no-such-call", survey) is False
    got = await store.get(record.call_id)
    assert got is not None and got.survey == survey


async def test_a_version_1_database_is_migrated_and_keeps_its_calls(tmp_path: Path) -> None:
    from ivr.store import schema

    path = tmp_path / "v1.sqlite3"
    conn = sqlite3.connect(path)
    schema.MIGRATIONS[0](conn)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO calls (call_id, flow, flow_version, started_at, outcome) "
        "VALUES ('1.1', 'main', 'v', 1.0, 'self_service')"
    )
    conn.commit()
    conn.close()
    async with await RecordStore.open(path) as store:
        old = await store.get("1.1")
        assert old is not None and old.queue is None and old.survey is None
        await store.begin(make_record("2.2", outcome=None))
        await store.finish(queued_record("2.2"))
        assert await store.get("2.2") == queued_record("2.2")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 9


async def test_version_9_keeps_the_calls_and_takes_the_failed_in_ivr_outcome(db: Db) -> None:
    """v9 rebuilt ``calls`` on SQLite (a CHECK cannot change in place) and altered it on
    PostgreSQL: both take the new outcome and still refuse an unknown one."""
    store = await db.open()
    try:
        await store.begin(make_record("f.1", outcome=None, ended_at=None, end_node=None))
        await store.finish(make_record("f.1", outcome="failed_in_ivr"))
        got = await store.get("f.1")
        assert got is not None and got.outcome == "failed_in_ivr"
        with pytest.raises(Exception, match=r"(?i)check"):
            await store.finish(make_record("f.1", outcome="bogus"))  # type: ignore[arg-type]
    finally:
        await store.close()


async def test_a_node_recovers_only_its_own_unfinished_calls(db: Db) -> None:
    """Two nodes share the database: one restarting must not end the other's live calls."""
    a, b = await db.open(node="host-a:4573"), await db.open(node="host-b:4573")
    legacy = await db.open()  # a row written before calls had a node
    try:
        for store, call_id in ((a, "on-a"), (b, "on-b"), (legacy, "old")):
            await store.begin(make_record(call_id, outcome=None, ended_at=None, end_node=None))
        assert (await a.get("on-a")).node == "host-a:4573"  # type: ignore[union-attr]
        assert await b.recover_unfinished(now=1_700_000_100.0) == 2  # its own, and the old
        on_a, on_b, old = [await a.get(c) for c in ("on-a", "on-b", "old")]
        assert on_a is not None and on_a.outcome is None  # still going on, on node a
        assert on_b is not None and on_b.outcome == "error"
        assert old is not None and old.outcome == "error"
    finally:
        for store in (a, b, legacy):
            await store.close()


async def test_each_node_beats_in_the_nodes_table(db: Db) -> None:
    a, b = await db.open(node="host-a:4573"), await db.open(node="host-b:4573")
    try:
        await NodeStore(a).beat("1.0", started_at=100.0, calls=3, now=110.0)
        await NodeStore(b).beat("1.1", started_at=105.0, calls=0, now=112.0)
        await NodeStore(a).beat(
            "1.0", started_at=100.0, calls=5, now=115.0
        )  # the same row, fresher
        nodes = await NodeStore(b).nodes()
        assert [(n.id, n.version, n.beat_at, n.calls) for n in nodes] == [
            ("host-a:4573", "1.0", 115.0, 5),
            ("host-b:4573", "1.1", 112.0, 0),
        ]
    finally:
        await a.close()
        await b.close()


async def test_a_refused_write_in_a_batch_sinks_no_other(store: RecordStore) -> None:
    """One batch holds a begin its id refuses and twenty finishes: on PostgreSQL the batch
    runs again with a savepoint per statement, and every write lands."""
    await store.finish(make_record("dup"))
    again = make_record("dup", outcome=None, ended_at=None)
    others = [make_record(f"o{i}") for i in range(20)]
    await asyncio.wait_for(
        asyncio.gather(store.begin(again), *(store.finish(r) for r in others)), TIMEOUT_S
    )
    assert again.call_id == "dup-2"
    assert await store.get("dup-2") == again
    for record in others:
        assert await store.get(record.call_id) == record
