"""Chaos figures: calls through the bank flow while the database, the disk, the peers and the
server itself fail. Every caller must end in the flow or in the dialplan fallback, and every
call that ran the flow must leave its record.

Phases, each against a fresh database (``--quick``: 100 calls at 20 at once, the lock 6 s,
still past the busy timeout, the disk full 3 s, 50 garbage peers):

(0) **no fault**: the same calls with nothing failing, the call lengths to compare with.

(a) **database locked**: ``--calls`` (2,000) FastAGI calls at ``--concurrency`` (100) while,
    from ``--fault-after-s`` on, another sqlite3 connection holds ``BEGIN IMMEDIATE`` for
    ``--lock-s`` (10 s): past its 5 s busy timeout the store journals.
(b) **disk full**: the database on a small tmpfs this script mounts (root), filled to the last
    byte for ``--disk-full-s`` (10 s), the journal on another disk (``store.journal_path``);
(b2) the same with the journal on the full disk too: records then wait in the server's memory.
(b3) opt-in (``--phases b3``): the journal on another disk that fills up too, half-way
    through the fault, while records are going to it. An append cut short by the full disk
    leaves a partial line; when the disk is back the next append's first entry lands on that
    line and is skipped at replay: one final record lost (every full-size run so far).
(c) **garbage peers**: the calls go on while other connections send random bytes (with and
    without EOF), half an ``agi_*`` block, an endless line, or connect and close; and one call
    in five is a non-UTF-8 caller (``agi_calleridname: Jos\\xe9`` in Latin-1; a GBK number and
    name). Each garbage connection must be closed by the server within ``GARBAGE_BOUND_S``.
(d) **SIGKILL + restart** (``--lab``): SIPp calls through the REAL Asterisk (``ivr.lab``,
    extension 100: ``flows/main.yaml``, the caller presses 2 and the server hangs up) into
    ``ivr serve`` on 4573; once a third of the calls have started the server is killed
    (SIGKILL) and started again ``--restart-after-s`` later on the same database.

Phases (a)-(c) run the real ``ivr serve`` (``tests/e2e/serve.py`` ``IvrServe``) on a free port
(never 4573), with the sample flows copied and the bank opened around the clock (so no figure
depends on the date), a balance API stub, and the scripted fake Asterisk
(``tests/support/fake_asterisk.py``) as the caller: one third each of balance then goodbye
(self-service), balance then an agent, and lost card then an agent (the fake's queue answers
``QUEUESTATUS=CONTINUE``; the in-call survey gets silence). Each prompt "plays" a random
0-``--prompt-ms`` ms, so a call lasts about a second and the calls outlast the faults.

How a fake call is counted (as the dialplan ``asterisk-conf/extensions.conf [ivr-run]`` would
treat it):

- **ran the flow**: the server set ``IVR_RESULT=done`` or sent ``HANGUP`` itself (the flows'
  ``next: hangup``) and closed the connection;
- **reached the fallback**: ``IVR_RESULT`` set to anything else (``error``, ``busy``...), the
  server closed without either, or refused the connection (Asterisk's ``AGISTATUS=FAILURE``);
- **neither**: the server kept the caller on the line past the fake's ``CALL_TIMEOUT_S``.

How a lab call (d) is counted: from Asterisk's own log, the only party that knows where each
caller went. ``asterisk-conf/asterisk.conf`` runs at ``verbose = 3`` and ``logger.conf`` writes
verbose(3) to ``messages.log``, so every dialplan step is logged with its channel:
``Executing [s@ivr-run:N] App("PJSIP/sipp-...", ...)``. For each SIPp channel that entered
``[ivr-run]`` after the run began:

- **fallback**: it executed ``Log(WARNING,IVR flow ... did not finish ...)``, the fallback's
  first step. (The WARNING line it writes names no channel, only the ``[C-...]`` call id, and
  ends at ``IVR_RESULT=``: the unescaped ``;`` in that ``Log()`` starts a comment in
  extensions.conf. The ``Executing`` line names the channel and carries ``AGISTATUS``.)
- **flow**: it executed the ``Hangup()`` right after the ``GotoIf`` (``IVR_RESULT=done``), or
  the ``AGI()`` step ended with the channel hung up (``AGI Script ... completed, returning 4``
  then ``Spawn extension (ivr-run, s, N) exited non-zero``, N the AGI priority; a killed
  server gives ``returning 0`` and the dialplan goes on to the fallback): the server's
  ``HANGUP``, since SIPp's scenario never hangs
  up first (it waits for Asterisk's BYE; a call it gave up on is a SIPp failure, reported and
  failing the run);
- **neither**: anything else (no fallback and no flow end), and offered calls that never
  reached ``[ivr-run]``.

Records lost (every phase): the calls that ran the flow (their uniqueid: the fake's, or for
the lab the one the server logged with ``call started ... channel=PJSIP/sipp-...``) without
a finished row in SQLite once the server caught up (``--catch-up-s``) and stopped, or whose
row is ``error`` (begun, but the final record never arrived: a restart marks such rows
``error``); a missing row gets one more server start (replay at open) before it counts.
Lab calls killed mid-flow also have rows marked ``error``: they went to the fallback and are
not counted as lost.

Run (root, from the repository root)::

    .venv/bin/python benchmarks/chaos.py --quick          # (0)-(c) small, ~35 s
    .venv/bin/python benchmarks/chaos.py                  # (0)-(c), 2,000 calls each, ~2.5 min
    .venv/bin/python benchmarks/chaos.py --lab            # and (d), ~4 min: port 4573 free,
                                                          # nobody else calling the lab
    .venv/bin/python benchmarks/chaos.py --phases none --lab      # (d) alone

Prints a table and exits 1 when a call ended without flow or fallback, a record was lost, a
garbage connection was not closed, or SIPp failed a call.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))  # serve.py
sys.path.insert(0, str(ROOT))
from serve import ACCOUNT, AGI_HOST, BalanceStub, IvrServe, port_accepts  # noqa: E402
from support.fake_asterisk import (  # noqa: E402
    FakeCallResult,
    FakeCallState,
    FakeCommand,
    build_env,
    env_block,
    run_fake_call,
)

if TYPE_CHECKING:
    from ivr.lab import Lab, LoadResult

HOST = AGI_HOST
LAB_PORT = 4573  # what the dialplan dials
CALL_TIMEOUT_S = 60.0  # a fake caller left on the line this long counts as "neither"
GARBAGE_BOUND_S = 15.0  # header_timeout_s (5 s) with room to spare
SCRIPTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("balance", ("1", "1", *ACCOUNT, "#", "1")),  # then silence: goodbye
    ("balance+agent", ("1", "1", *ACCOUNT, "#", "1", "9", "0")),
    ("lost card", ("1", "2")),
)
LATIN1_NAME = b"Jos\xe9".decode("utf-8", "surrogateescape")
GBK_NAME = "张三".encode("gbk").decode("utf-8", "surrogateescape")


# --------------------------------------------------------------------------- results
@dataclass
class Phase:
    """One row of the table."""

    name: str
    offered: int = 0
    flow: int = 0
    fallback: int = 0
    neither: int = 0
    lost: int = 0
    duration_s: float = 0.0
    p99_s: float = float("nan")  # call length, fake calls
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # anything else that fails the run

    @property
    def failed(self) -> bool:
        return bool(
            self.neither
            or self.lost
            or self.problems
            or self.flow + self.fallback + self.neither != self.offered
        )


def pct(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def classify(result: FakeCallResult | None) -> str:
    """ "flow", "fallback" or "neither" for one fake call (``None``: connection refused)."""
    if result is None:
        return "fallback"  # Asterisk: AGISTATUS=FAILURE, the dialplan falls back
    if result.timed_out or not result.closed_by_server:
        return "neither"
    status = result.variables.get("IVR_RESULT")
    if status == "done":
        return "flow"
    if status is not None:
        return "fallback"
    if result.names and result.names[-1] == "HANGUP":
        return "flow"  # the flow hung up itself
    return "fallback"  # closed without done: the dialplan falls back


# --------------------------------------------------------------------------- the server
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def always_open_flows(where: Path) -> Path:
    """The sample flows with the bank open around the clock (as
    tests/integration/test_app.py does)."""
    flows = where / "flows"
    shutil.copytree(ROOT / "flows", flows)
    bank = flows / "bank.yaml"
    text = bank.read_text(encoding="utf-8")
    start, end = text.index("      open:\n"), text.index("      when_open:")
    bank.write_text(
        text[:start] + '      open: {mon-sun: "00:00-24:00"}\n' + text[end:], encoding="utf-8"
    )
    return flows


class ChaosServe(IvrServe):
    """``IvrServe`` with the database and journal where a phase wants them, no AudioSocket
    port of its own (0), and SIGKILL."""

    def __init__(
        self,
        workdir: Path,
        *,
        db_path: Path | None = None,
        journal_path: Path | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(workdir, **kwargs)  # type: ignore[arg-type]
        if db_path is not None:
            self.db_path = db_path
        self.journal_path = journal_path

    def config(self) -> dict[str, object]:
        config = super().config()
        config["speech"] = {"host": HOST, "port": 0}
        config["flows_poll_s"] = 0
        if self.journal_path is not None:
            config["store"] = {"path": str(self.db_path), "journal_path": str(self.journal_path)}
        return config

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)

    def journal(self) -> Path:
        return self.journal_path or Path(f"{self.db_path}.journal")


def finished_rows(db: Path) -> dict[str, str]:
    """call_id -> outcome of the rows with an outcome (read-only; {} if unreadable)."""
    if not db.exists():
        return {}
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return dict(
                conn.execute(
                    "SELECT call_id, outcome FROM calls WHERE outcome IS NOT NULL"
                ).fetchall()
            )
        finally:
            conn.close()
    except sqlite3.Error:
        return {}


def journal_lines(path: Path) -> int:
    try:
        with path.open("rb") as fh:
            return sum(1 for _ in fh)
    except OSError:
        return 0


def settle_records(
    server: ChaosServe, wanted: set[str], catch_up_s: float, phase: Phase, name: str
) -> dict[str, str]:
    """Wait until every ``wanted`` call has a finished row (the server running), stop the
    server, and (once) start and stop it again if some are still missing; the final rows."""
    started = time.monotonic()
    while True:
        rows = finished_rows(server.db_path)
        missing = wanted - rows.keys()
        if not missing or time.monotonic() - started > catch_up_s:
            break
        time.sleep(0.25)
    if missing:
        phase.notes.append(f"{len(missing)} records not in after {catch_up_s:g} s")
    else:
        phase.notes.append(f"records in {time.monotonic() - started:.1f} s after the calls")
    code = server.stop()
    if code not in (0, None):
        phase.problems.append(f"ivr serve exited with {code} (log {server.log_path})")
    rows = finished_rows(server.db_path)
    if wanted - rows.keys():  # the journal is replayed at the next start
        again = ChaosServe(
            server.workdir,
            db_path=server.db_path,
            journal_path=server.journal_path,
            http_base_url=server.http_base_url,
            port=free_port(),
            flows_dir=server.flows_dir,
            log_level="INFO",
            name=f"{name}-replay",
        )
        again.start()
        again.stop()
        rows = finished_rows(server.db_path)
        phase.notes.append("restarted once to replay")
    left = journal_lines(server.journal())
    if left:
        phase.problems.append(f"{left} journal lines left at {server.journal()}")
    return rows


# --------------------------------------------------------------------------- fake calls
@dataclass
class CallLoad:
    calls: int
    concurrency: int
    prompt_ms: float
    rng: random.Random
    results: dict[str, str] = field(default_factory=dict)  # call id -> flow/fallback/neither
    lengths: list[float] = field(default_factory=list)
    scripts: Counter[str] = field(default_factory=Counter)
    details: list[str] = field(default_factory=list)
    done: int = 0


async def one_call(port: int, n: int, call_id: str, load: CallLoad, odd_bytes: bool) -> None:
    script_name, digits = SCRIPTS[n % len(SCRIPTS)]
    caller, name = "5551234", ""
    if odd_bytes and n % 5 == 3:
        name, script_name = LATIN1_NAME, script_name + " (Latin-1 name)"
    elif odd_bytes and n % 5 == 4:
        caller, name, script_name = GBK_NAME, GBK_NAME, script_name + " (GBK caller)"
    load.scripts[script_name] += 1
    prompt_s = load.prompt_ms / 1000

    def rule(cmd: FakeCommand, state: FakeCallState) -> list[str | float] | None:
        if cmd.name == "STREAM FILE" and prompt_s > 0 and not state.dead:
            return [load.rng.uniform(0, prompt_s), "200 result=0 endpos=8000"]
        return None

    started = time.monotonic()
    result: FakeCallResult | None
    try:
        result = await run_fake_call(
            HOST,
            port,
            script="bank",
            digits=digits,
            caller=caller,
            caller_name=name,
            uniqueid=call_id,
            rule=rule,
            variables={"QUEUESTATUS": "CONTINUE"},
            timeout_s=CALL_TIMEOUT_S,
        )
    except OSError as exc:
        result = None
        load.details.append(f"{call_id}: connection failed: {exc!r}")
    load.lengths.append(time.monotonic() - started)
    verdict = classify(result)
    load.results[call_id] = verdict
    if verdict != "flow" and len(load.details) < 20 and result is not None:
        load.details.append(
            f"{call_id} ({script_name}): {verdict}, IVR_RESULT="
            f"{result.variables.get('IVR_RESULT')}, last commands "
            f"{result.commands[-3:]}"
        )
    load.done += 1


async def run_calls(port: int, tag: str, load: CallLoad, *, odd_bytes: bool = False) -> None:
    gate = asyncio.Semaphore(load.concurrency)

    async def gated(n: int) -> None:
        async with gate:
            await one_call(port, n, f"chaos-{tag}-{n}", load, odd_bytes)

    await asyncio.gather(*(gated(n) for n in range(load.calls)))


def fill_phase(phase: Phase, load: CallLoad, rows: dict[str, str], elapsed: float) -> None:
    verdicts = Counter(load.results.values())
    phase.offered = load.calls
    phase.flow, phase.fallback = verdicts["flow"], verdicts["fallback"]
    phase.neither = verdicts["neither"] + (load.calls - len(load.results))
    ran = {cid for cid, v in load.results.items() if v == "flow"}
    missing = len(ran - rows.keys())
    errors = sum(1 for cid in ran if rows.get(cid) == "error")
    phase.lost = missing + errors
    phase.duration_s = elapsed
    phase.p99_s = pct(load.lengths, 99)
    if errors:
        phase.notes.append(
            f"lost: {errors} flow calls whose final record never arrived (the "
            f"row begun at the start was marked error at the restart)"
        )
    if phase.fallback or phase.neither:
        phase.problems.extend(load.details[:5])


# --------------------------------------------------------------------------- faults
@contextlib.asynccontextmanager
async def locked(db: Path) -> AsyncIterator[None]:
    """Another connection holding the database's write lock (BEGIN IMMEDIATE)."""
    conn = sqlite3.connect(db, isolation_level=None, timeout=30, check_same_thread=False)
    await asyncio.to_thread(conn.execute, "BEGIN IMMEDIATE")
    try:
        yield
    finally:
        await asyncio.to_thread(conn.execute, "ROLLBACK")
        conn.close()


def fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte; returns the filler file (delete it to free the disk)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for chunk in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * chunk)
    finally:
        os.close(fd)
    return filler


@contextlib.asynccontextmanager
async def disk_full(disk: Path) -> AsyncIterator[None]:
    filler = await asyncio.to_thread(fill, disk)
    try:
        yield
    finally:
        filler.unlink()


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    if os.geteuid() != 0:
        raise SystemExit("the disk-full phase mounts a tmpfs: run as root")
    where.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


async def sample_journal(path: Path, peak: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], journal_lines(path))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)


async def faulted_calls(
    server: ChaosServe,
    tag: str,
    args: argparse.Namespace,
    fault: Callable[[], contextlib.AbstractAsyncContextManager[None]],
    fault_s: float,
    phase: Phase,
    *,
    odd_bytes: bool = False,
    extra: Callable[[asyncio.Event], Coroutine[Any, Any, None]] | None = None,
) -> CallLoad:
    """The calls, with ``fault`` held for ``fault_s`` from ``args.fault_after_s`` on."""
    load = CallLoad(args.calls, args.concurrency, args.prompt_ms, random.Random(args.seed))
    peak = [0]
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_journal(server.journal(), peak, stop))
    side = asyncio.create_task(extra(stop)) if extra is not None else None
    started = time.monotonic()
    calls = asyncio.create_task(run_calls(server.port, tag, load, odd_bytes=odd_bytes))
    await asyncio.sleep(args.fault_after_s)
    before, at = load.done, time.monotonic()
    async with fault():
        await asyncio.sleep(fault_s)
        during = load.done - before
    held = time.monotonic() - at
    catch_up = asyncio.create_task(caught_up(server.db_path, load))
    await calls
    elapsed = time.monotonic() - started
    stop.set()
    await sampler
    if side is not None:
        await side
    phase.duration_s = elapsed
    try:
        after = await asyncio.wait_for(catch_up, args.catch_up_s)
        caught = f"every record so far in SQLite {after:.1f} s after the fault"
    except TimeoutError:
        caught = f"records not caught up {args.catch_up_s:g} s after the fault"
    if fault_s:
        phase.notes += [f"fault held {held:.1f} s, {during} calls ended in it", caught]
    if peak[0]:
        phase.notes.append(f"journal peak {peak[0]} lines")
    if during == 0 and fault_s:
        phase.problems.append("no call ran during the fault: raise --calls or --prompt-ms")
    return load


async def caught_up(db: Path, load: CallLoad) -> float:
    """Seconds from now until every call that ran the flow so far has a finished row."""
    started = time.monotonic()
    while True:
        ran = {c for c, v in list(load.results.items()) if v == "flow"}
        rows = await asyncio.to_thread(finished_rows, db)
        if ran <= rows.keys():
            return time.monotonic() - started
        await asyncio.sleep(0.1)


def phase_name(label: str, what: str) -> str:
    return f"({label}) {what}"


async def phase_baseline(
    args: argparse.Namespace, work: Path, stub: BalanceStub, flows: Path
) -> Phase:
    """The same calls with nothing failing: the call lengths to compare with."""
    return await phase_simple(
        args,
        work,
        stub,
        flows,
        "0",
        "no fault (baseline)",
        lambda server: contextlib.nullcontext(),
        0.0,
    )


async def phase_locked(
    args: argparse.Namespace, work: Path, stub: BalanceStub, flows: Path
) -> Phase:
    return await phase_simple(
        args,
        work,
        stub,
        flows,
        "a",
        f"database locked {args.lock_s:g} s",
        lambda server: locked(server.db_path),
        args.lock_s,
    )


async def phase_simple(
    args: argparse.Namespace,
    work: Path,
    stub: BalanceStub,
    flows: Path,
    label: str,
    title: str,
    fault: Callable[[ChaosServe], contextlib.AbstractAsyncContextManager[None]],
    fault_s: float,
) -> Phase:
    phase = Phase(phase_name(label, title))
    server = ChaosServe(
        work / label,
        http_base_url=stub.base_url,
        port=free_port(),
        flows_dir=flows,
        log_level="INFO",
        name=f"chaos-{label}",
    )
    server.start()
    try:
        load = await faulted_calls(server, label, args, lambda: fault(server), fault_s, phase)
        ran = {c for c, v in load.results.items() if v == "flow"}
        rows = await asyncio.to_thread(
            settle_records, server, ran, args.catch_up_s, phase, f"chaos-{label}"
        )
    finally:
        server.stop()
    fill_phase(phase, load, rows, phase.duration_s)
    return phase


async def phase_disk(
    args: argparse.Namespace, work: Path, stub: BalanceStub, flows: Path, *, journal: str
) -> Phase:
    """``journal``: "elsewhere" (another disk), "same" (the full disk), or "fills" (another
    disk that fills up too, half-way through the fault, while the journal is in use)."""
    label, where = {
        "elsewhere": ("b", "journal on another disk"),
        "same": ("b2", "journal on it too"),
        "fills": ("b3", "journal disk fills too"),
    }[journal]
    phase = Phase(phase_name(label, f"disk full {args.disk_full_s:g} s, {where}"))
    with contextlib.ExitStack() as mounts:
        disk = mounts.enter_context(tmpfs(work / label / "disk", args.tmpfs_size))
        journal_path: Path | None = work / label / "calls.journal"
        if journal == "fills":
            journal_disk = mounts.enter_context(tmpfs(work / label / "jdisk", args.tmpfs_size))
            journal_path = journal_disk / "calls.journal"
        elif journal == "same":
            journal_path = None
        server = ChaosServe(
            work / label,
            db_path=disk / "calls.sqlite3",
            journal_path=journal_path,
            http_base_url=stub.base_url,
            port=free_port(),
            flows_dir=flows,
            log_level="INFO",
            name=f"chaos-{label}",
        )

        @contextlib.asynccontextmanager
        async def fault() -> AsyncIterator[None]:
            async with disk_full(disk):
                if journal != "fills":
                    yield
                    return
                await asyncio.sleep(args.disk_full_s / 2)
                async with disk_full(journal_disk):
                    yield

        server.start()
        try:  # "fills": the first half of the fault is spent inside fault()
            load = await faulted_calls(
                server,
                label,
                args,
                fault,
                args.disk_full_s / (2 if journal == "fills" else 1),
                phase,
            )
            ran = {c for c, v in load.results.items() if v == "flow"}
            rows = await asyncio.to_thread(
                settle_records, server, ran, args.catch_up_s, phase, f"chaos-{label}"
            )
        finally:
            server.stop()
        if journal != "elsewhere":
            kept = server.log_text().count("kept in memory")
            phase.notes.append(f"journal refused: {'yes' if kept else 'no'}")
        skipped = server.log_text().count("unreadable journal line skipped")
        if skipped:
            phase.notes.append(f"{skipped} unreadable journal lines skipped at replay")
    fill_phase(phase, load, rows, phase.duration_s)
    return phase


# --------------------------------------------------------------------------- garbage peers
GARBAGE_KINDS = ("random", "random+EOF", "half env", "endless line", "connect+close")


async def garbage_peer(port: int, kind: str, rng: random.Random) -> float | None:
    """One hostile connection; seconds until the server closed it (0 for connect+close),
    None when it did not within :data:`GARBAGE_BOUND_S`."""
    reader, writer = await asyncio.open_connection(HOST, port)
    started = time.monotonic()
    try:
        if kind == "connect+close":
            return 0.0
        if kind in ("random", "random+EOF"):
            writer.write(rng.randbytes(rng.randint(1, 16384)))
        elif kind == "half env":
            block = env_block(build_env("bank", port=port, uniqueid=f"half-{rng.random()}"))
            writer.write(block[: rng.randint(1, len(block) - 2)])
        elif kind == "endless line":
            writer.write(b"agi_network: " + b"y" * 100_000)
        if kind == "random+EOF":
            writer.write_eof()
        await writer.drain()
        async with asyncio.timeout(GARBAGE_BOUND_S):
            while await reader.read(65536):
                pass
        return time.monotonic() - started
    except (ConnectionError, OSError):
        return time.monotonic() - started  # reset by the server: closed all the same
    except TimeoutError:
        return None
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def garbage_stream(
    port: int,
    peers: int,
    rng: random.Random,
    stop: asyncio.Event,
    out: dict[str, list[float | None]],
) -> None:
    """``peers`` hostile connections, 10 at a time, spread over the phase."""
    gate = asyncio.Semaphore(10)

    async def one(n: int) -> None:
        kind = GARBAGE_KINDS[n % len(GARBAGE_KINDS)]
        async with gate:
            try:
                took = await garbage_peer(port, kind, rng)
            except OSError:
                took = None  # could not even connect
            out.setdefault(kind, []).append(took)

    tasks = []
    for n in range(peers):
        tasks.append(asyncio.create_task(one(n)))
        if not stop.is_set():
            await asyncio.sleep(0.02)
    await asyncio.gather(*tasks)


async def phase_garbage(
    args: argparse.Namespace, work: Path, stub: BalanceStub, flows: Path
) -> Phase:
    phase = Phase(phase_name("c", "garbage + non-UTF-8 peers"))
    server = ChaosServe(
        work / "c",
        http_base_url=stub.base_url,
        port=free_port(),
        flows_dir=flows,
        log_level="INFO",
        name="chaos-c",
    )
    server.start()
    garbage: dict[str, list[float | None]] = {}
    rng = random.Random(args.seed + 1)
    try:
        load = await faulted_calls(
            server,
            "c",
            args,
            contextlib.nullcontext,
            0,
            phase,
            odd_bytes=True,
            extra=lambda stop: garbage_stream(server.port, args.garbage, rng, stop, garbage),
        )
        ran = {c for c, v in load.results.items() if v == "flow"}
        rows = await asyncio.to_thread(
            settle_records, server, ran, args.catch_up_s, phase, "chaos-c"
        )
    finally:
        server.stop()
    fill_phase(phase, load, rows, phase.duration_s)
    odd = sum(v for k, v in load.scripts.items() if "(" in k)
    odd_ran = sum(
        1
        for n in range(load.calls)
        if n % 5 in (3, 4) and load.results.get(f"chaos-c-{n}") == "flow"
    )
    total = sum(len(v) for v in garbage.values())
    open_left = sum(1 for v in garbage.values() for t in v if t is None)
    kinds = ", ".join(
        f"{k} {len(v)} (closed in <= {max((t for t in v if t is not None), default=0):.1f} s)"
        for k, v in sorted(garbage.items())
    )
    phase.notes.append(f"non-UTF-8 callers {odd_ran}/{odd} ran the flow")
    phase.notes.append(f"garbage peers {total}: {kinds}; left open by the server {open_left}")
    if open_left:
        phase.problems.append(
            f"{open_left} garbage connections not closed within {GARBAGE_BOUND_S:g} s"
        )
    return phase


# --------------------------------------------------------------------------- (d) the lab
_EXEC = re.compile(r'Executing \[(\S+)@([\w-]+):(\d+)\] (\w+)\("([^"]+)"')
_NONZERO = re.compile(r"Spawn extension \(([\w-]+), (\S+), (\d+)\) exited non-zero on '([^']+)'")
_WHY = re.compile(
    r'Executing \[s@ivr-run:\d+\] Log\("PJSIP/sipp[^"]*", "WARNING,IVR flow .*? '
    r"did not finish \((AGISTATUS=\w* IVR_RESULT=\w*)"
)
_STARTED = re.compile(r"\[([^\]\s]+)\] call started: script='[^']*' channel=(\S+)")


def classify_lab(log: str) -> tuple[dict[str, str], dict[str, str]]:
    """Asterisk's messages.log (from the run's start) -> ({channel: flow/fallback/neither},
    {channel: the AGI line it ended on}) for every SIPp channel that entered [ivr-run]."""
    agi_priority: dict[str, int] = {}
    fallback: set[str] = set()
    done: set[str] = set()
    hung_in_agi: set[str] = set()
    last_step: dict[str, str] = {}
    for line in log.splitlines():
        if (m := _EXEC.search(line)) is not None:
            _ext, context, prio, app, chan = m.groups()
            if not chan.startswith("PJSIP/sipp"):
                continue
            if context == "ivr-run":
                last_step[chan] = f"{app}@{prio}"
                if app == "AGI":
                    agi_priority.setdefault(chan, int(prio))
                elif app == "Log" and "did not finish" in line:
                    fallback.add(chan)
                elif app == "Hangup" and chan not in fallback:
                    done.add(chan)
        elif (m := _NONZERO.search(line)) is not None:
            context, _ext, prio, chan = m.groups()
            if context == "ivr-run" and agi_priority.get(chan) == int(prio):
                hung_in_agi.add(chan)
    verdicts = {}
    for chan in agi_priority:
        if chan in fallback:
            verdicts[chan] = "fallback"
        elif chan in done or chan in hung_in_agi:
            verdicts[chan] = "flow"
        else:
            verdicts[chan] = "neither"
    return verdicts, last_step


def wait_idle(lab: Lab, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if lab.cli("core show channels count").startswith("0 active channels"):
            return True
        time.sleep(1)
    return False


def phase_lab(args: argparse.Namespace, work: Path, stub: BalanceStub, flows: Path) -> Phase:
    from ivr.lab import CallSpec, Lab, sipp

    phase = Phase(phase_name("d", "SIGKILL + restart, real Asterisk"))
    lab = Lab()
    if not lab.status().running:
        print("lab: starting Asterisk", flush=True)
        lab.up()
    if port_accepts(HOST, LAB_PORT):
        raise SystemExit(f"something listens on {HOST}:{LAB_PORT}: the lab phase needs it")
    if not wait_idle(lab, 30):
        raise SystemExit("the lab has calls in progress: is someone else using it?")
    spec = CallSpec(
        ext="100",
        digits=("2",),
        first_digit_after_s=4.0,
        hold_s=args.lab_hold_s,
        expect_hangup=True,
    )
    make = lambda name: ChaosServe(  # noqa: E731
        work / "d",
        http_base_url=stub.base_url,
        port=LAB_PORT,
        flows_dir=flows,
        log_level="INFO",
        name=name,
        ami_secret=lab.ami_secret,
    )
    servers = [make("chaos-d")]
    servers[0].start()
    log_offset = lab.log_size()
    result: list[LoadResult] = []
    runner = threading.Thread(
        target=lambda: result.append(
            sipp.load(
                spec,
                lab.paths.state / "chaos",
                calls=args.lab_calls,
                rate=args.lab_rate,
                max_concurrent=args.concurrency,
            )
        ),
        daemon=True,
    )
    started = time.monotonic()
    runner.start()
    kill_after = max(1, args.lab_calls // 3)
    killed_at = None
    try:
        while runner.is_alive() and killed_at is None:
            if servers[0].log_text().count("call started") >= kill_after:
                in_progress = servers[0].log_text().count("call started") - servers[
                    0
                ].log_text().count("call ended")
                servers[0].kill()
                killed_at = time.monotonic() - started
                phase.notes.append(
                    f"SIGKILL at {killed_at:.0f} s (~{in_progress} calls in the server)"
                )
                time.sleep(args.restart_after_s)
                servers.append(make("chaos-d-restarted"))
                servers[-1].start()
                phase.notes.append(f"back after {time.monotonic() - started - killed_at:.1f} s")
            time.sleep(0.2)
        runner.join()
        if killed_at is None:
            phase.problems.append("SIPp ended before the kill: raise --lab-calls")
        if not wait_idle(lab, 60):
            phase.problems.append("Asterisk still had channels 60 s after SIPp ended")
    finally:
        servers[-1].stop()
    phase.duration_s = time.monotonic() - started
    load = result[0] if result else None
    with lab.log_path().open("rb") as fh:
        fh.seek(log_offset)
        log = fh.read().decode(errors="replace")
    verdicts, last_step = classify_lab(log)
    counts = Counter(verdicts.values())
    reasons = Counter(m.group(1) for m in _WHY.finditer(log))
    if reasons:
        phase.notes.append(
            "fallback: " + ", ".join(f"{n} x {why}" for why, n in reasons.most_common())
        )
    phase.offered = args.lab_calls
    phase.flow, phase.fallback = counts["flow"], counts["fallback"]
    phase.neither = args.lab_calls - phase.flow - phase.fallback
    if load is None:
        phase.problems.append("SIPp did not report")
    else:
        phase.notes.append(
            f"SIPp: {load.successful} ok, {load.failed} failed, "
            f"{load.max_concurrent} at most at once"
        )
        if not load.ok:
            phase.problems.append(f"SIPp: {load}")
    if len(verdicts) != args.lab_calls:
        phase.notes.append(f"{len(verdicts)} channels entered [ivr-run]")
    for chan, verdict in list(verdicts.items()):
        if verdict == "neither" and len(phase.problems) < 10:
            phase.problems.append(
                f"{chan}: neither flow nor fallback, last step {last_step.get(chan)}"
            )
    uniqueid: dict[str, str] = {}
    for server in servers:
        for m in _STARTED.finditer(server.log_text()):
            uniqueid[m.group(2)] = m.group(1)
    rows = finished_rows(servers[-1].db_path)
    ran = [c for c, v in verdicts.items() if v == "flow"]
    missing = sum(1 for c in ran if uniqueid.get(c) not in rows)
    wrong = sum(1 for c in ran if rows.get(uniqueid.get(c, "")) == "error")
    phase.lost = missing + wrong
    if wrong:
        phase.notes.append(
            f"lost: {wrong} flow calls recorded as error (killed after the "
            f"flow ended, before its final record was written)"
        )
    errors = sum(1 for o in rows.values() if o == "error")
    phase.notes.append(f"{errors} rows marked error (calls cut off by the kill)")
    return phase


# --------------------------------------------------------------------------- report
def print_table(phases: Sequence[Phase]) -> None:
    head = (
        f"{'phase':<44} {'offered':>7} {'flow':>6} {'fallback':>8} {'neither':>7} "
        f"{'lost':>5} {'seconds':>7} {'p99 call s':>10}"
    )
    print()
    print(head)
    print("-" * len(head))
    for p in phases:
        p99 = "-" if p.p99_s != p.p99_s else f"{p.p99_s:.2f}"
        print(
            f"{p.name:<44} {p.offered:>7} {p.flow:>6} {p.fallback:>8} {p.neither:>7} "
            f"{p.lost:>5} {p.duration_s:>7.1f} {p99:>10}"
        )
    print()
    for p in phases:
        print(f"{p.name}: {'; '.join(p.notes)}")
        for problem in p.problems:
            print(f"  PROBLEM {problem}")
    neither = sum(p.neither for p in phases)
    lost = sum(p.lost for p in phases)
    print(
        f"\ntotal: ended without flow or fallback {neither}, records lost {lost}, "
        f"phases failed {sum(p.failed for p in phases)}"
    )
    print(
        "columns: flow = ran the flow to its end; fallback = handed to the dialplan's "
        "fallback; neither = left without either; lost = flow calls without their final "
        "record in SQLite; p99 call s = fake caller's call length"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=100)
    p.add_argument(
        "--prompt-ms",
        type=float,
        default=150.0,
        help="each prompt 'plays' a random 0..N ms (fake calls)",
    )
    p.add_argument("--fault-after-s", type=float, default=2.0)
    p.add_argument("--lock-s", type=float, default=10.0)
    p.add_argument("--disk-full-s", type=float, default=10.0)
    p.add_argument("--tmpfs-size", default="64m")
    p.add_argument("--garbage", type=int, default=500, help="hostile connections in (c)")
    p.add_argument("--catch-up-s", type=float, default=60.0)
    p.add_argument(
        "--phases", default="0,a,b,b2,c", help="which of 0 (no fault), a, b, b2, c to run"
    )
    p.add_argument(
        "--lab",
        action="store_true",
        help="also (d): SIGKILL through the real Asterisk (root; port 4573 free)",
    )
    p.add_argument("--lab-calls", type=int, default=2000)
    p.add_argument("--lab-rate", type=float, default=20.0, help="SIPp calls/s offered")
    p.add_argument(
        "--lab-hold-s",
        type=float,
        default=420.0,
        help="how long a SIPp caller waits for Asterisk's BYE (the fallback queue)",
    )
    p.add_argument("--restart-after-s", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--quick", action="store_true", help="smoke run: 100 calls at 20 at once, faults of 3 s"
    )
    args = p.parse_args(argv)
    if args.quick:
        args.calls, args.concurrency, args.garbage = 100, 20, 50
        args.lock_s = 6.0  # past the store's 5 s busy timeout: the journal takes records
        args.disk_full_s = 3.0
        args.fault_after_s, args.tmpfs_size = 0.5, "16m"
        args.lab_calls, args.lab_rate = 100, 10.0
    return args


async def bench(args: argparse.Namespace) -> int:
    wanted = {x.strip() for x in args.phases.split(",") if x.strip()}
    phases: list[Phase] = []
    stub = BalanceStub()
    stub.start()
    print(f"command: benchmarks/chaos.py {' '.join(sys.argv[1:])}")
    print(
        f"calls per phase: {args.calls} at {args.concurrency} at once through flows/bank.yaml "
        f"(open around the clock), prompts 0-{args.prompt_ms:g} ms; {os.cpu_count()} CPUs"
    )
    try:
        with tempfile.TemporaryDirectory(prefix="ivr-chaos-") as tmp:
            work = Path(tmp)
            flows = always_open_flows(work)
            steps: list[tuple[str, Callable[[], Awaitable[Phase]]]] = [
                ("0", lambda: phase_baseline(args, work, stub, flows)),
                ("a", lambda: phase_locked(args, work, stub, flows)),
                ("b", lambda: phase_disk(args, work, stub, flows, journal="elsewhere")),
                ("b2", lambda: phase_disk(args, work, stub, flows, journal="same")),
                ("b3", lambda: phase_disk(args, work, stub, flows, journal="fills")),
                ("c", lambda: phase_garbage(args, work, stub, flows)),
            ]
            for key, step in steps:
                if key in wanted:
                    phase = await step()
                    print(
                        f"{phase.name}: {phase.flow}/{phase.offered} flow, {phase.fallback} "
                        f"fallback, {phase.neither} neither, {phase.lost} lost",
                        flush=True,
                    )
                    phases.append(phase)
            if args.lab:
                phase = await asyncio.to_thread(phase_lab, args, work, stub, flows)
                print(
                    f"{phase.name}: {phase.flow}/{phase.offered} flow, {phase.fallback} "
                    f"fallback, {phase.neither} neither, {phase.lost} lost",
                    flush=True,
                )
                phases.append(phase)
    finally:
        stub.stop()
    print_table(phases)
    return 1 if any(p.failed for p in phases) else 0


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(bench(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
