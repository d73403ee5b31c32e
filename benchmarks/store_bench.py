"""Benchmark of the call-record store: ``RecordStore.finish`` from concurrent asyncio tasks.

Compares, on a fresh database file each:

* baseline: plain synchronous ``sqlite3`` upserts, one commit per row (same schema, WAL,
  ``synchronous=NORMAL``), run on the calling thread;
* the store without group commit (``max_batch=1``): one transaction per record, off the loop;
* the store with group commit (``max_batch`` as given, default 256);
* with ``--postgres``, the same two store runs on PostgreSQL (a throw-away server from
  Debian's package, as the tests start it: ``tests/support/postgres.py``; ``fsync=off`` there,
  as for the tests, so its figures are an upper bound).

Run: ``.venv/bin/python benchmarks/store_bench.py [-n 5000] [-c 100] [--max-batch 256]
[--postgres]``
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ivr.call.record import CallRecord, InputEvent
from ivr.store import codec, schema
from ivr.store.records import RecordStore


def make_records(n: int) -> list[CallRecord]:
    """``n`` realistic finished calls (a path of 6 nodes, 4 inputs, 3 variables)."""
    return [
        CallRecord(
            call_id=f"1700000000.{i}",
            flow="main",
            flow_version="v3",
            caller=f"+44207946{i:04d}",
            dnis="8000",
            started_at=1_700_000_000.0 + i,
            ended_at=1_700_000_060.0 + i,
            language="en",
            path=["welcome", "hours", "menu", "collect_account", "balance", "goodbye"],
            inputs=[
                InputEvent("menu", "speech", "balance", 4.2),
                InputEvent("collect_account", "dtmf", "***", 12.0),
                InputEvent("confirm", "confirm", "yes", 15.5),
                InputEvent("survey", "dtmf", "5", 50.0),
            ],
            outcome="self_service",
            end_node="goodbye",
            variables={"intent": "balance", "segment": "gold", "attempts": "1"},
        )
        for i in range(n)
    ]


def baseline(db: Path, rows: list[CallRecord]) -> tuple[float, list[float]]:
    """Synchronous inserts, one commit per row; returns (seconds, per-row latencies)."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    schema.migrate(conn, str(db))
    latencies: list[float] = []
    start = time.perf_counter()
    for record in rows:
        t0 = time.perf_counter()
        conn.execute("BEGIN")
        conn.execute(codec.UPSERT, codec.encode(record))
        conn.execute("COMMIT")
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    count = conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    conn.close()
    assert count == len(rows), f"baseline wrote {count} of {len(rows)}"
    return elapsed, latencies


async def store_run(
    db: Path | str,
    rows: list[CallRecord],
    concurrency: int,
    max_batch: int,
    password: str | None = None,
) -> tuple[float, list[float], float]:
    """``finish`` from ``concurrency`` tasks; returns (seconds, latencies, worst loop lag)."""
    store = await RecordStore.open(db, max_batch=max_batch, password=password)
    queue = iter(rows)
    latencies: list[float] = []
    lag = 0.0
    stop = asyncio.Event()

    async def worker() -> None:
        for record in queue:  # the shared iterator hands each record to one worker
            t0 = time.perf_counter()
            await store.finish(record)
            latencies.append(time.perf_counter() - t0)

    async def ticker() -> None:  # measures how late the loop wakes a 1 ms sleeper
        nonlocal lag
        while not stop.is_set():
            t0 = time.perf_counter()
            await asyncio.sleep(0.001)
            lag = max(lag, time.perf_counter() - t0 - 0.001)

    tick = asyncio.create_task(ticker())
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await store.close()
    elapsed = time.perf_counter() - start
    stop.set()
    await tick
    async with await RecordStore.open(db, password=password) as check:
        [(count,)] = await check.read("SELECT COUNT(*) FROM calls")
    assert count == len(rows), f"store wrote {count} of {len(rows)}"
    return elapsed, latencies, lag


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1]


def report(name: str, n: int, elapsed: float, latencies: list[float], base_rate: float) -> None:
    rate = n / elapsed
    print(
        f"{name:<28} {rate:>10,.0f} rec/s   p50 {quantile(latencies, 0.50) * 1e3:7.3f} ms"
        f"   p99 {quantile(latencies, 0.99) * 1e3:7.3f} ms   x{rate / base_rate:5.2f} baseline"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--records", type=int, default=5000)
    parser.add_argument("-c", "--concurrency", type=int, default=100, help="concurrent tasks")
    parser.add_argument("--max-batch", type=int, default=256)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the databases")
    parser.add_argument("--postgres", action="store_true", help="also on PostgreSQL")
    args = parser.parse_args()
    rows = make_records(args.records)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        base_s, base_lat = baseline(Path(tmp) / "baseline.db", rows)
        base_rate = args.records / base_s
        single = asyncio.run(store_run(Path(tmp) / "single.db", rows, args.concurrency, 1))
        grouped = asyncio.run(
            store_run(Path(tmp) / "grouped.db", rows, args.concurrency, args.max_batch)
        )
    print(f"{args.records} records, {args.concurrency} concurrent tasks, dir {tmp}")
    report("baseline sync, 1 commit/row", args.records, base_s, base_lat, base_rate)
    report("store max_batch=1", args.records, single[0], single[1], base_rate)
    report(f"store max_batch={args.max_batch}", args.records, grouped[0], grouped[1], base_rate)
    print(
        f"worst event-loop lag: max_batch=1 {single[2] * 1e3:.1f} ms, "
        f"max_batch={args.max_batch} {grouped[2] * 1e3:.1f} ms "
        "(the baseline blocks the loop for its whole run)"
    )
    if args.postgres:
        postgres_runs(args, rows, base_rate)


def postgres_runs(args: argparse.Namespace, rows: list[CallRecord], base_rate: float) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from support.postgres import PostgresServer

    server = PostgresServer()
    server.start()
    try:
        single = asyncio.run(
            store_run(server.create_database("single"), rows, args.concurrency, 1, server.password)
        )
        grouped = asyncio.run(
            store_run(
                server.create_database("grouped"),
                rows,
                args.concurrency,
                args.max_batch,
                server.password,
            )
        )
    finally:
        server.stop()
    report("PostgreSQL max_batch=1", args.records, single[0], single[1], base_rate)
    name = f"PostgreSQL max_batch={args.max_batch}"
    report(name, args.records, grouped[0], grouped[1], base_rate)
    print(
        f"worst event-loop lag on PostgreSQL: max_batch=1 {single[2] * 1e3:.1f} ms, "
        f"max_batch={args.max_batch} {grouped[2] * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    main()
