"""Benchmark of ``ivr campaign start``: how long a large import holds SQLite's write lock.

While a list of N numbers (default 500,000) goes into a fresh database, a second process
writes a small row every few milliseconds, as ``ivr serve`` writes call records, with the
store's ``busy_timeout`` (5 s): its worst wait for the lock is the longest time a live call's
record would wait. Past 5 s, that write fails with "database is locked".

* baseline: the list in one transaction (the import before batching, inline below);
* batched: :meth:`ivr.outbound.campaigns.Campaigns.start` (transactions of about
  ``BATCH_S``, a pause of ``PAUSE_S`` between them).

Run: ``.venv/bin/python benchmarks/campaign_import_bench.py [--rows 500000]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from pathlib import Path

from ivr.outbound import campaigns as campaign
from ivr.outbound.campaigns import CallList, Campaigns, Settings
from ivr.outbound.jobs import dial_string
from ivr.store.records import RecordStore
from ivr.store.schema import immediate

SETTINGS = Settings(name="big", flow="offer", dial="PJSIP/{number}@trunk")
BUSY_TIMEOUT_S = 5.0  # as RecordStore's
PROBE_EVERY_S = 0.005


def call_list(n: int) -> CallList:
    return CallList(
        [
            {"number": f"55{i:08d}", "name": f"Customer {i}", "amount": str(i % 997)}
            for i in range(n)
        ],
        0,
        [],
    )


async def baseline(store: RecordStore, s: Settings, calls: CallList) -> int:
    """The import as it was: the campaign row and every number in one transaction."""
    channels = [dial_string(s.dial, row["number"]) for row in calls.rows]
    now = time.time()

    def write(conn: sqlite3.Connection) -> int:
        conn.execute(
            "INSERT INTO campaigns (name, flow, rate, max_concurrent, hours, timezone,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (s.name, s.flow, s.rate, s.max_concurrent, "", s.timezone, now),
        )
        added = 0
        for row, channel in zip(calls.rows, channels, strict=True):
            variables = {k: v for k, v in row.items() if k != "number"}
            key = f"campaign:{s.name}:{row['number'].lstrip('+')}"
            added += conn.execute(
                "INSERT OR IGNORE INTO outbound (kind, call_id, flow, target, number,"
                " channel, caller_id, due_at, max_attempts, retry_after_s, created_at,"
                " updated_at, variables) VALUES ('campaign', ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                " ?, ?, ?)",
                (
                    key,
                    s.flow,
                    s.name,
                    row["number"],
                    channel,
                    s.caller_id,
                    now,
                    s.attempts,
                    s.retry_after_s,
                    now,
                    now,
                    json.dumps(variables, ensure_ascii=False),
                ),
            ).rowcount
        return added

    return await store.transaction(write)


async def batched(store: RecordStore, s: Settings, calls: CallList) -> int:
    return await Campaigns(store).start(s, calls)


def probe(path: str, ready: Event, stop: Event, out: mp.Queue[tuple[list[float], int]]) -> None:
    """The other writer (a separate process, like ``ivr serve``): its waits for the lock."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_S)
    waits: list[float] = []
    locked = 0
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            with immediate(conn):
                conn.execute("INSERT INTO probe (at) VALUES (?)", (t0,))
        except sqlite3.OperationalError:  # database is locked: a call record lost
            locked += 1
        waits.append(time.perf_counter() - t0)
        ready.set()
        time.sleep(PROBE_EVERY_S)
    conn.close()
    out.put((waits, locked))


@dataclass(frozen=True)
class Result:
    name: str
    seconds: float
    added: int
    waits: list[float]
    locked: int

    def line(self, base: Result | None) -> str:
        worst = max(self.waits)
        p99 = statistics.quantiles(self.waits, n=100, method="inclusive")[98]
        ratio = f"   worst x{worst / max(base.waits):.3f} of baseline" if base else ""
        return (
            f"{self.name:<9} import {self.seconds:6.2f} s ({self.added:,} rows)   other "
            f"writer: {len(self.waits):5} writes, worst wait {worst * 1e3:7.1f} ms, "
            f"p99 {p99 * 1e3:6.1f} ms, {self.locked} 'database is locked'{ratio}"
        )


Importer = Callable[[RecordStore, Settings, CallList], Awaitable[int]]


async def run(name: str, importer: Importer, db: Path, calls: CallList) -> Result:
    store = await RecordStore.open(db)
    await store.transaction(lambda c: c.execute("CREATE TABLE probe (at REAL)"))
    ctx = mp.get_context("spawn")
    ready, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    other = ctx.Process(target=probe, args=(str(db), ready, stop, out))
    other.start()
    await asyncio.to_thread(ready.wait)
    try:
        t0 = time.perf_counter()
        added = await importer(store, SETTINGS, calls)
        seconds = time.perf_counter() - t0
    finally:
        stop.set()
        waits, locked = await asyncio.to_thread(out.get)
        other.join()
        await store.close()
    return Result(name, seconds, added, waits, locked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the databases")
    args = parser.parse_args()
    calls = call_list(args.rows)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        base = asyncio.run(run("baseline", baseline, Path(tmp) / "baseline.db", calls))
        new = asyncio.run(run("batched", batched, Path(tmp) / "batched.db", calls))
    print(
        f"{args.rows:,} numbers; other writer every {PROBE_EVERY_S * 1e3:.0f} ms, "
        f"busy_timeout {BUSY_TIMEOUT_S:.0f} s; batches of ~{campaign.BATCH_S * 1e3:.0f} ms, "
        f"pause {campaign.PAUSE_S * 1e3:.0f} ms"
    )
    print(base.line(None))
    print(new.line(base))
    print(f"import time x{new.seconds / base.seconds:.2f} of baseline")


if __name__ == "__main__":
    main()
