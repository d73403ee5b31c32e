"""Cluster figures (issue 12): call records and duplicate originates with one and two ivr nodes.

Call records on SQLite and on PostgreSQL, with one node and with two; duplicate originates
with two diallers on one PostgreSQL database.

1. Records: each node is its own process (this script run with ``--worker records``) holding
   one :class:`~ivr.store.records.RecordStore` with its own ``node`` id, as ``ivr serve``
   opens it. Each caller writes calls one after the other as the server does: ``begin``
   (awaited), ``--checkpoints`` checkpoints ``--step-ms`` apart (queued, not awaited),
   ``finish`` (awaited). A round is ``--calls`` calls by ``--concurrency`` callers, both
   split between the nodes, all nodes starting at once on a fresh database: a SQLite file
   (two processes on one file for two nodes) or a PostgreSQL database. The configurations
   take ``--rounds`` turns (after an uncounted warm-up on each engine). Reports calls
   recorded per second over all nodes (first start to last finish; the rounds' median), the
   p50/p99 latency of the awaited writes (``begin`` and ``finish``), the ratio to one node on
   SQLite, and the calls whose final row is not in the database (``missing``: must be 0).
   The commit window is 0 by default, so the engine, not the window, sets the pace (with
   the server's 100 ms window, every awaited write waits about that long).
2. Diallers: ``--jobs`` due campaign jobs, two nodes (``--worker dial``) each running the real
   :class:`~ivr.outbound.dialer.Dialer` loop against a fake manager whose Originates all
   succeed (the call then rings: the job stays ``dialing``). Reports the Originates sent,
   duplicates (a number dialled twice: must be 0), jobs never dialled and the time taken.
3. Time to resume a call after its node is killed is not measured here (see
   :func:`resume_after_node_kill`).

PostgreSQL is a throw-away server from Debian's package (``tests/support/postgres.py``, as the
tests start it: ``fsync=off``, so its figures are an upper bound); it is stopped and every
temporary directory removed on exit, Ctrl-C or SIGTERM included. Exits 1 when a record is
missing or a job was dialled twice or not at all.

Run (from the repository root, as root: PostgreSQL runs as the ``postgres`` user)::

    .venv/bin/python benchmarks/cluster_load.py            # 8,000 calls each, 1,000 jobs
    .venv/bin/python benchmarks/cluster_load.py --quick    # smoke run, ~15 s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
from support.fake_ami import CountingManager  # noqa: E402
from support.postgres import PostgresServer  # noqa: E402

from ivr.call.record import CallRecord, InputEvent  # noqa: E402
from ivr.config import StoreSettings  # noqa: E402
from ivr.flow.loader import parse_flow  # noqa: E402
from ivr.outbound.campaigns import CallList, Campaigns, Settings  # noqa: E402
from ivr.outbound.dialer import Dialer  # noqa: E402
from ivr.outbound.jobs import Outbound  # noqa: E402
from ivr.store.nodes import NodeStore  # noqa: E402
from ivr.store.records import RecordStore  # noqa: E402

PASSWORD_ENV = "IVR_STORE_PASSWORD"  # how the workers get PostgreSQL's password, as ivr serve
NODES = ("node-a", "node-b")
SERVER_WINDOW_MS = 1000 * StoreSettings().commit_window_s
STEPS = ["welcome", "language", "menu", "collect_account", "balance", "survey", "goodbye"]
OFFER = "start: offer\nnodes:\n  offer: {play: 'A new card for you.', next: hangup}\n"


# --------------------------------------------------------------------------- worker side
async def record_calls(args: argparse.Namespace, store: RecordStore) -> dict[str, Any]:
    """One node's share of the records run: ``args.calls`` calls by ``args.concurrency``
    callers; the awaited writes' latencies and when the first began and the last finished."""
    latencies: list[float] = []
    numbers = iter(range(args.calls))
    step_s = args.step_ms / 1000

    async def caller() -> None:
        for i in numbers:  # the shared iterator hands each call to one caller
            record = CallRecord(
                call_id=f"{args.node}.{i}", flow="bank", flow_version="v1",
                caller=f"+4420794{i:05d}", dnis="8000", started_at=1_700_000_000.0 + i,
                language="en", variables={"segment": "gold"},
            )  # fmt: skip
            t0 = time.perf_counter()
            await store.begin(record)
            latencies.append(time.perf_counter() - t0)
            for n, step in enumerate(STEPS[: args.checkpoints]):
                await asyncio.sleep(step_s)
                record.path.append(step)
                record.inputs.append(InputEvent(step, "dtmf", str(n), 2.0 * n))
                store.checkpoint(record)
            await asyncio.sleep(step_s)
            record.path.append("goodbye")
            record.outcome, record.end_node = "self_service", "goodbye"
            record.ended_at = record.started_at + 60
            t0 = time.perf_counter()
            await store.finish(record)
            latencies.append(time.perf_counter() - t0)

    start = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process on the machine
    await asyncio.gather(*(caller() for _ in range(args.concurrency)))
    return {"start": start, "end": time.monotonic(), "latencies": latencies}


async def dial_jobs(args: argparse.Namespace, store: RecordStore) -> dict[str, Any]:
    """One node's dialler loop until no job is due and every attempt it claimed was sent."""
    manager, outbound = CountingManager(), Outbound(store)
    offer = parse_flow(OFFER, file="offer.yaml", name="offer")
    # both nodes poll at one pace: with the default idle_poll_s (1 s) a node whose first round
    # lost the claim race slept a second while the other dialled every job
    dialer = Dialer(outbound, manager, lambda: {"offer": offer}, poll_s=0.01, idle_poll_s=0.01)  # type: ignore[arg-type]
    start = time.monotonic()
    dialer.start()
    try:
        async with asyncio.timeout(args.max_s):
            while True:
                await asyncio.sleep(0.01)
                if await outbound.any_due():
                    continue
                mine = await store.read(
                    "SELECT COUNT(*) FROM outbound WHERE node = ?", (args.node,)
                )
                if mine[0][0] == len(manager.dialled):  # its Originates under way were sent
                    break
    finally:
        await dialer.close()
    return {"start": start, "end": time.monotonic(), "dialled": manager.dialled}


async def worker(args: argparse.Namespace) -> None:
    """A node: open the store, say ``ready``, wait for ``go`` on stdin, run, write the JSON."""
    store = await RecordStore.open(
        args.target, password=os.environ.get(PASSWORD_ENV), node=args.node,
        journal_path=f"{args.out}.journal", commit_window_s=args.commit_window_ms / 1000,
    )  # fmt: skip
    try:
        if args.worker == "dial":  # alive for the other node's reconciler
            now = time.time()
            await NodeStore(store).beat("bench", started_at=now, calls=0, now=now)
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        run = record_calls if args.worker == "records" else dial_jobs
        result = await run(args, store)
    finally:
        await store.close()
    Path(args.out).write_text(json.dumps(result))


# --------------------------------------------------------------------------- driver side
def run_workers(argvs: list[list[str]], env: dict[str, str]) -> None:
    """Start one worker per ``argvs`` entry, wait until all are ready, start them at once,
    and wait until all have exited; any still running on the way out is killed."""
    procs: list[subprocess.Popen[str]] = []
    try:
        pipe = subprocess.PIPE
        for argv in argvs:
            command = [sys.executable, __file__, *argv]
            procs.append(subprocess.Popen(command, stdin=pipe, stdout=pipe, text=True, env=env))
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a node failed to start (exit {proc.wait()})")
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in procs:
            if proc.wait(timeout=600) != 0:
                raise RuntimeError(f"a node failed (exit {proc.returncode})")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def run_nodes(kind: str, target: str, shares: list[int], tmp: Path, env: dict[str, str],
              args: argparse.Namespace) -> list[dict[str, Any]]:  # fmt: skip
    """Run one worker of ``kind`` per share (its node's ``--calls``) on ``target``."""
    run = Path(tempfile.mkdtemp(prefix=kind, dir=tmp))  # no journal left over by an earlier run
    outs = [run / f"{node}.json" for node in NODES[: len(shares)]]
    argvs = [
        ["--worker", kind, "--node", node, "--target", target, "--out", str(out),
         "--calls", str(share), "--concurrency", str(args.concurrency // len(shares)),
         "--checkpoints", str(args.checkpoints), "--step-ms", str(args.step_ms),
         "--commit-window-ms", str(args.commit_window_ms), "--max-s", str(args.max_s)]
        for node, share, out in zip(NODES, shares, outs, strict=False)
    ]  # fmt: skip
    run_workers(argvs, env)
    return [json.loads(out.read_text()) for out in outs]


async def prepare(target: str, password: str | None, jobs: int = 0) -> None:
    """Create the schema once (not twice at once from two nodes), and the due jobs."""
    async with await RecordStore.open(target, password=password) as store:
        if jobs:
            numbers = CallList([{"number": f"55{i:08d}"} for i in range(jobs)], 0, [])
            offer = Settings(
                name="spring", flow="offer", dial="PJSIP/{number}@trunk", rate=100_000.0,
                max_concurrent=jobs,
            )  # fmt: skip
            assert await Campaigns(store).start(offer, numbers) == jobs


async def finished_rows(target: str, password: str | None) -> int:
    async with await RecordStore.open(target, password=password) as store:
        [(count,)] = await store.read("SELECT COUNT(*) FROM calls WHERE outcome IS NOT NULL")
    return int(count)


@dataclass(frozen=True)
class Config:
    engine: str  # "sqlite" | "postgresql"
    nodes: int

    @property
    def name(self) -> str:
        return f"{self.engine}, {self.nodes} node{'s' * (self.nodes > 1)}"


CONFIGS = [Config(engine, nodes) for engine in ("sqlite", "postgresql") for nodes in (1, 2)]


@dataclass
class Figures:
    """One configuration's rounds: records/s of each, every awaited write's latency."""

    config: Config
    rates: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    missing: int = 0

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)

    def quantile_ms(self, q: int) -> float:
        return 1000 * statistics.quantiles(self.latencies, n=100, method="inclusive")[q - 1]


def records_run(figures: Figures, target: str, password: str | None, calls: int, tmp: Path,
                env: dict[str, str], args: argparse.Namespace) -> None:  # fmt: skip
    """One round of ``figures.config`` on the empty database ``target``: ``calls`` calls
    and ``args.concurrency`` callers split between its nodes, all starting at once."""
    asyncio.run(prepare(target, password))
    nodes = figures.config.nodes
    shares = [calls // nodes + (i < calls % nodes) for i in range(nodes)]
    results = run_nodes("records", target, shares, tmp, env, args)
    seconds = max(r["end"] for r in results) - min(r["start"] for r in results)
    figures.rates.append(calls / seconds)
    figures.latencies += [lat for r in results for lat in r["latencies"]]
    figures.missing += calls - asyncio.run(finished_rows(target, password))


def dial_run(target: str, password: str | None, tmp: Path, env: dict[str, str],
             args: argparse.Namespace) -> tuple[int, int]:  # fmt: skip
    """Two diallers over ``args.jobs`` due jobs; prints the line, returns (duplicates,
    undialled)."""
    asyncio.run(prepare(target, password, args.jobs))
    results = run_nodes("dial", target, [0, 0], tmp, env, args)
    placed = Counter(channel for r in results for channel in r["dialled"])
    duplicates = sum(n - 1 for n in placed.values())
    undialled = args.jobs - len(placed)
    seconds = max(r["end"] for r in results) - min(r["start"] for r in results)
    per_node = ", ".join(f"{n} {len(r['dialled'])}" for n, r in zip(NODES, results, strict=True))
    print(
        f"dial: 2 nodes on postgresql: jobs {args.jobs} originates {placed.total()} "
        f"duplicates {duplicates} undialled {undialled} time {seconds:.2f} s ({per_node})"
    )
    return duplicates, undialled


def resume_after_node_kill() -> str:
    """Time for a call to resume on another node after its node is killed mid-menu.

    Not measured here: it needs two ``ivr serve`` nodes behind ``hagi://``, the lab Asterisk
    and a SIP call, which the end-to-end tests have. Replace this line with that measurement
    (kill -9 the node serving the call, time until the other node answers it at its last
    checkpoint); never with an estimate."""
    return "resume: measured by tests/e2e (see README)"


def print_table(rows: list[Figures], args: argparse.Namespace) -> None:
    print(
        f"records: {args.calls} calls per round (begin + {args.checkpoints} checkpoints "
        f"{args.step_ms:g} ms apart + finish), {args.concurrency} at once split between the "
        f"nodes, commit window {args.commit_window_ms:g} ms, {args.rounds} round(s) taken in "
        "turn; records/s: the rounds' median; latency: every awaited begin and finish"
    )
    print(f"{'configuration':<22}{'records/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'vs sqlite 1':>13}{'missing':>9}   rounds")  # fmt: skip
    base = rows[0].rate
    for f in rows:
        rounds = "/".join(f"{r:.0f}" for r in f.rates)
        print(
            f"{f.config.name:<22}{f.rate:>10.0f}{f.quantile_ms(50):>9.2f}"
            f"{f.quantile_ms(99):>9.2f}{f'x{f.rate / base:.2f}':>13}{f.missing:>9}   {rounds}"
        )


def bench(args: argparse.Namespace) -> int:
    rows = [Figures(config) for config in CONFIGS]
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cluster-load-")))
        server = PostgresServer()
        stack.callback(server.stop)  # also when start fails half-way
        server.start()
        env = {**os.environ, PASSWORD_ENV: server.password}

        def database(engine: str, label: str) -> tuple[str, str | None]:
            if engine == "sqlite":
                return str(tmp / f"{label}.db"), None
            return server.create_database(label), server.password

        for config in (CONFIGS[0], CONFIGS[2]):  # one node on each engine, not counted
            target, password = database(config.engine, f"warmup_{config.engine}")
            records_run(Figures(config), target, password, args.warmup, tmp, env, args)
        for n in range(args.rounds):  # in turn: the machine's drift hits every configuration
            for figures in rows:
                config = figures.config
                target, password = database(config.engine, f"r{n}_{config.nodes}_nodes")
                records_run(figures, target, password, args.calls, tmp, env, args)
        print_table(rows, args)
        duplicates, undialled = dial_run(*database("postgresql", "dial"), tmp, env, args)
    print(resume_after_node_kill())
    return 1 if duplicates or undialled or any(f.missing for f in rows) else 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--calls", type=int, default=8000, help="calls per round of each configuration")
    p.add_argument(
        "--concurrency", type=int, default=200, help="calls at once, split between the nodes"
    )
    p.add_argument("--rounds", type=int, default=3, help="rounds of every configuration")
    p.add_argument("--warmup", type=int, default=1000, help="uncounted calls on each engine")
    p.add_argument("--checkpoints", type=int, default=3, help=f"per call (at most {len(STEPS)})")
    p.add_argument("--step-ms", type=float, default=2.0, help="time between a call's writes")
    p.add_argument(
        "--commit-window-ms", type=float, default=0.0,
        help="store.commit_window_s in ms (0: each write goes as soon as the writer is free, "
        f"so the engine sets the pace; the server's default, {SERVER_WINDOW_MS:g}, sets "
        "the latency instead)",
    )  # fmt: skip
    p.add_argument("--jobs", type=int, default=1000, help="due jobs for the two diallers")
    p.add_argument(
        "--quick", action="store_true", help="smoke run: 1 round of 800 calls, 1,000 jobs"
    )
    p.add_argument("--max-s", type=float, default=300.0, help="a dialler gives up after this")
    p.add_argument("--worker", choices=["records", "dial"], help=argparse.SUPPRESS)
    p.add_argument("--node", help=argparse.SUPPRESS)
    p.add_argument("--target", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        # 1,000 jobs even here: 200 took one node 0.3 s, done before the other's first round
        args.calls, args.rounds, args.warmup, args.jobs = 800, 1, 100, 1000
    if not 0 <= args.checkpoints <= len(STEPS):
        p.error(f"--checkpoints must be between 0 and {len(STEPS)}")
    return args


def _terminate(signum: int, frame: object) -> NoReturn:
    raise SystemExit(128 + signum)  # unwinds like Ctrl-C: PostgreSQL stops, temp dirs go


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        if args.worker is not None:
            asyncio.run(worker(args))
            return 0
        started = time.monotonic()
        status = bench(args)
    except KeyboardInterrupt:  # Ctrl-C: PostgreSQL is stopped and the temp dirs gone by now
        if args.worker is None:
            print("interrupted", file=sys.stderr)
        return 130
    print(f"total time {time.monotonic() - started:.1f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
