"""The store failing never costs a call or a record: a database locked past the busy timeout,
a full disk, a read-only file, PostgreSQL restarted. Refused records go to an fsync'd journal
(or memory, when the journal cannot take them either) and are replayed when the database is
back or at the next open. The disk tests mount small tmpfs file systems (root, as the lab tests)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from support.postgres import PostgresServer

from ivr.call.record import CallRecord
from ivr.store.journal import Journal
from ivr.store.records import RecordStore

FAST = {"busy_timeout_ms": 100, "retry_s": 0.05}


def record(n: int, **changes: object) -> CallRecord:
    now = time.time()
    base = CallRecord(
        call_id=f"{now:.0f}.{n}",
        flow="main",
        flow_version="v1",
        caller="5551234",
        dnis="100",
        started_at=now,
        path=["welcome"],
    )
    return replace(base, **changes)


def finished(rec: CallRecord) -> CallRecord:
    return replace(
        rec, outcome="self_service", ended_at=rec.started_at + 5, path=[*rec.path, "goodbye"]
    )


def stored_ids(db: Path) -> dict[str, str | None]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT call_id, outcome FROM calls").fetchall())


async def wait_for(predicate: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@contextmanager
def write_lock(db: Path) -> Iterator[None]:
    """Another process-like writer holding the database's write lock (a big import)."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


@contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte; returns the filler file (delete it to free the disk)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for chunk in (65536, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * chunk)
    finally:
        os.close(fd)
    return filler


async def test_locked_database_journals_then_replays(tmp_path: Path) -> None:
    db = tmp_path / "calls.sqlite3"
    store = await RecordStore.open(db, **FAST)
    try:
        with write_lock(db):
            calls = [record(i) for i in range(20)]
            await asyncio.gather(*(store.begin(c) for c in calls))  # no error, no hang
            await asyncio.gather(*(store.finish(finished(c)) for c in calls))
            journal = Path(f"{db}.journal")
            assert journal.exists() and len(journal.read_text().splitlines()) == 40
            assert stored_ids(db) == {}
        await wait_for(lambda: not journal.exists())
        assert stored_ids(db) == {c.call_id: "self_service" for c in calls}
    finally:
        await store.close()


async def test_journal_left_by_a_stop_is_replayed_at_open(tmp_path: Path) -> None:
    db = tmp_path / "calls.sqlite3"
    store = await RecordStore.open(db, **FAST)
    calls = [record(i) for i in range(3)]
    with write_lock(db):
        for c in calls:
            await store.begin(c)
        await store.finish(finished(calls[0]))
        await store.close()  # still locked: the records stay in the journal
    assert stored_ids(db) == {}
    store = await RecordStore.open(db, **FAST)
    try:
        assert stored_ids(db) == {
            calls[0].call_id: "self_service",
            calls[1].call_id: None,
            calls[2].call_id: None,
        }
        assert not Path(f"{db}.journal").exists()
        assert await store.recover_unfinished(time.time()) == 2  # as after any crash
    finally:
        await store.close()


async def test_replay_twice_changes_nothing(tmp_path: Path) -> None:
    """A crash between the replay's commit and the journal's removal replays it again."""
    db = tmp_path / "calls.sqlite3"
    store = await RecordStore.open(db, **FAST)
    calls = [record(i) for i in range(2)]
    with write_lock(db):
        for c in calls:
            await store.begin(c)
            await store.finish(finished(c))
        await store.close()
    journal = Path(f"{db}.journal")
    saved = journal.read_bytes()
    await (await RecordStore.open(db)).close()  # replays
    assert not journal.exists()
    journal.write_bytes(saved)  # as if the removal never happened
    store = await RecordStore.open(db)
    try:
        assert stored_ids(db) == {c.call_id: "self_service" for c in calls}
    finally:
        await store.close()


async def test_full_disk_journals_elsewhere_then_replays(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "2m") as disk:
        db = disk / "calls.sqlite3"
        journal = tmp_path / "calls.journal"  # store.journal_path on another disk
        store = await RecordStore.open(db, journal_path=journal, **FAST)
        try:
            filler = fill(disk)
            calls = [record(i, variables={"pad": "x" * 4000}) for i in range(30)]
            for c in calls:
                await store.begin(c)
                await store.finish(finished(c))
            assert journal.exists()
            filler.unlink()
            await wait_for(lambda: not journal.exists())
            assert stored_ids(db) == {c.call_id: "self_service" for c in calls}
        finally:
            await store.close()


async def test_journal_on_the_full_disk_too_keeps_records_in_memory(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "2m") as disk:
        db = disk / "calls.sqlite3"
        store = await RecordStore.open(db, **FAST)  # the journal next to it, on the same disk
        try:
            filler = fill(disk)
            calls = [record(i, variables={"pad": "x" * 4000}) for i in range(30)]
            for c in calls:
                await store.begin(c)
                await store.finish(finished(c))
            await asyncio.sleep(0.3)  # retries fail meanwhile
            filler.unlink()
            await wait_for(lambda: len(stored_ids(db)) == 30)
            assert set(stored_ids(db).values()) == {"self_service"}
        finally:
            await store.close()


@pytest.fixture
def disk_dir() -> Iterator[Path]:
    """A directory on a disk file system: chattr needs one (a tmpfs /tmp has no flags)."""
    where = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="ivr-test-"))
    try:
        yield where
    finally:
        shutil.rmtree(where, ignore_errors=True)


async def test_read_only_database_file_journals_then_replays(disk_dir: Path) -> None:
    """The server (re)started while the file was read-only (chattr +i: root ignores modes):
    SQLite opens it read-only, and every write fails until the file is writable again."""
    db = disk_dir / "calls.sqlite3"
    await (await RecordStore.open(db)).close()
    subprocess.run(["chattr", "+i", str(db)], check=True)
    try:
        store = await RecordStore.open(db, **FAST)
        c = record(1)
        await store.begin(c)
        await store.finish(finished(c))
        journal = Path(f"{db}.journal")
        assert journal.exists() and stored_ids(db) == {}
    finally:
        subprocess.run(["chattr", "-i", str(db)], check=True)
    try:
        await wait_for(lambda: not journal.exists())
        assert stored_ids(db) == {c.call_id: "self_service"}
    finally:
        await store.close()


def test_a_journal_append_cut_short_by_a_full_disk_leaves_no_torn_line(tmp_path: Path) -> None:
    """Half a line left by a full disk would swallow the next append's first entry."""
    with tmpfs(tmp_path / "small", "1m") as disk:
        journal = Journal(disk / "calls.journal")
        journal.append([("begin", ("c1", "x"))])
        filler = fill(disk)
        os.truncate(filler, filler.stat().st_size - 4096)  # one page left: room for a part
        with pytest.raises(OSError):
            journal.append([("finish", ("c2", "y" * 20_000))])
        filler.unlink()
        journal.append([("finish", ("c3", "z"))])
        assert journal.read() == [("begin", ("c1", "x")), ("finish", ("c3", "z"))]


async def test_postgresql_restarted_during_a_burst_loses_no_record(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """The server goes away mid-burst (a restart, a standby promoted): writes it refuses go
    to the journal, the store connects again and replays them; every call has its record."""
    url = postgres.create_database("restarted")
    journal = tmp_path / "records.journal"
    store = await RecordStore.open(url, password=postgres.password, journal_path=journal, **FAST)
    try:
        calls = [record(n) for n in range(400)]

        async def call(rec: CallRecord, after_s: float) -> None:
            await asyncio.sleep(after_s)
            await store.begin(rec)
            await store.finish(finished(rec))

        burst = asyncio.gather(*(call(rec, n * 0.005) for n, rec in enumerate(calls)))
        await asyncio.sleep(0.5)  # a fair part of the burst is in
        await asyncio.to_thread(postgres.restart)  # connections cut; back ~0.3 s later
        await asyncio.wait_for(burst, 30)
        ids = {r.call_id for r in calls}

        async def all_stored() -> bool:
            rows = await store.read("SELECT call_id, outcome FROM calls")
            return {row[0] for row in rows if row[1] == "self_service"} == ids

        deadline = time.monotonic() + 15
        while not await all_stored():
            assert time.monotonic() < deadline, "records missing after PostgreSQL came back"
            await asyncio.sleep(0.1)
    finally:
        await store.close()
    assert not journal.exists() or journal.read_text() == ""  # nothing left waiting
