"""SIPp load through the real Asterisk (lab) and the real ``ivr serve``: rates, concurrency, CPU.

Every call dials extension 100 (``flows/main.yaml``): welcome, menu, the caller presses "2"
while the menu prompt plays (``--first-digit-s`` after the 200 OK), support message, goodbye,
and the server hangs up (SIPp waits for Asterisk's BYE, ``expect_hangup``). SIPp offers the
calls at increasing rates (``--rates``, ``--seconds`` of arrivals per step, so concurrency
builds up to about rate x call length) and the run stops at the first step with a failure.

A call fails when SIPp counts it failed (or not successful) **or** when the server's SQLite
record is wrong: after each step the new records (``RecordStore.recent``) must number exactly
the calls offered, all with outcome ``self_service`` and path welcome > menu > support >
goodbye.

CPU per call: ``utime + stime`` from ``/proc/<pid>/stat`` of the Asterisk daemon in the chroot
(the lab's pid file) and of the ``ivr serve`` child, read before a step and after its calls
have ended, divided by the calls completed. SIPp's CPU (the load generator, on the same two
cores) comes from ``RUSAGE_CHILDREN`` around its run. A sampler thread reads the same counters
every second for the peak % of a core of each process and the machine's busy %.

Baseline (the ratio): the same steps against a *bare* FastAGI server (run from this file as a
subprocess) that replays the exact AGI command sequence ``ivr serve`` sent on one reference
call (captured from its DEBUG log first), with no flow, store, logging or AMI: the floor cost
of the same FastAGI conversation in asyncio. Both servers run at once, ``ivr serve`` on
127.0.0.1 and the bare one on 127.0.0.2 (both loopback, both port 4573), and the steps are
taken in turn, ours then bare at each rate: before each step the dialplan's global
``IVR_AGI_DEFAULT_HOST`` is set to that server's address (``dialplan set global``; put back to
127.0.0.1 at the end). This machine's speed drifts by tens of percent over minutes, and both
servers must see the same drift. Asterisk's per-call CPU should be the same for both (same
dialplan, same sounds, same SIP/RTP); the ratio that matters is ``ivr serve`` CPU per call
over the bare server's, and over Asterisk's.

Run (from the repository root, as root: the lab needs it)::

    .venv/bin/python benchmarks/sipp_load.py                 # 5, 10, 20 ... 60 calls/s
    .venv/bin/python benchmarks/sipp_load.py --quick         # 10 calls at 2/s, ~30 s
    .venv/bin/python benchmarks/sipp_load.py --rates 2,5,10,15,20 --seconds 20 --no-baseline

The lab is started if needed (``Lab().up()``, idempotent) and left running. Port 4573 must be
free on 127.0.0.1 and 127.0.0.2 (no other ``ivr serve``). Ctrl-C stops SIPp and the servers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from serve import AGI_HOST, AGI_PORT, IvrServe, port_accepts  # noqa: E402

from ivr.lab import CallSpec, Lab, LoadResult, asterisk_process, sipp  # noqa: E402
from ivr.store.records import RecordStore  # noqa: E402

EXT = "100"
DIGIT = "2"
EXPECTED_PATH = ["welcome", "menu", "support", "goodbye"]
EXPECTED_OUTCOME = "self_service"
TICK = os.sysconf("SC_CLK_TCK")
# The bare server's address: another loopback address, so that it can listen on the
# dialplan's port while ``ivr serve`` does too, and the steps can be taken in turn.
BARE_HOST = "127.0.0.2"
# The dialplan's global that names the FastAGI host (asterisk-conf/extensions.conf).
AGI_HOST_GLOBAL = "IVR_AGI_DEFAULT_HOST"


# --------------------------------------------------------------------------- bare server
async def _bare_call(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    commands: list[bytes],
    done: list[int],
) -> None:
    """Read the agi_* block, send each command and wait for its final reply, then close."""
    sent = 0
    try:
        while (await reader.readline()).strip():
            pass
        for command in commands:
            writer.write(command)
            while True:
                line = await reader.readline()
                if not line:
                    return
                if line[:3].isdigit() and line[3:4] == b" ":  # final reply "NNN ..."
                    break
            sent += 1
    except OSError:
        pass
    finally:
        if sent == len(commands):
            done[0] += 1
        writer.close()


async def _bare_server(port: int, sequence: Path) -> None:
    commands = [c.encode() + b"\n" for c in json.loads(sequence.read_text())]
    done = [0]
    server = await asyncio.start_server(
        lambda r, w: _bare_call(r, w, commands, done), BARE_HOST, port, backlog=4096
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    print(f"bare calls completed: {done[0]}", flush=True)


class BareServe:
    """The bare handler as a child process on :data:`BARE_HOST` and the dialplan's port (same
    interface as IvrServe for what the benchmark needs)."""

    def __init__(self, workdir: Path, sequence: list[str]) -> None:
        self.workdir = workdir
        self.sequence = sequence
        self.log_path = workdir / "bare.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def start(self, timeout_s: float = 30) -> None:
        if port_accepts(BARE_HOST, AGI_PORT):
            raise RuntimeError(f"something already listens on {BARE_HOST}:{AGI_PORT}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "sequence.json").write_text(json.dumps(self.sequence))
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--bare-server",
                    str(AGI_PORT),
                    "--sequence",
                    str(self.workdir / "sequence.json"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        deadline = time.monotonic() + timeout_s
        while not port_accepts(BARE_HOST, AGI_PORT):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"bare server did not start: {self.log_path.read_text()}")
            time.sleep(0.05)

    def stop(self, timeout_s: float = 10) -> int | None:
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        return proc.returncode

    def completed(self) -> int | None:
        match = re.search(r"bare calls completed: (\d+)", self.log_path.read_text())
        return int(match.group(1)) if match else None


def server_pid(server: IvrServe | BareServe) -> int:
    if isinstance(server, BareServe):
        return server.pid
    proc = server._proc
    assert proc is not None
    return proc.pid


# --------------------------------------------------------------------------- measuring
def raise_fd_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads); 0 if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK


@dataclass(frozen=True)
class ThreadUse:
    """CPU (user, system seconds) and wakeups (voluntary context switches: an event-loop
    wakeup, a thread hand-off...) of a process's threads: its main thread (the event loop)
    or all the others (the store writer, executor threads)."""

    user_s: float = 0.0
    sys_s: float = 0.0
    wakeups: int = 0

    def __add__(self, other: ThreadUse) -> ThreadUse:
        return ThreadUse(
            self.user_s + other.user_s, self.sys_s + other.sys_s, self.wakeups + other.wakeups
        )

    def __sub__(self, other: ThreadUse) -> ThreadUse:
        return ThreadUse(
            self.user_s - other.user_s, self.sys_s - other.sys_s, self.wakeups - other.wakeups
        )


def thread_use(pid: int) -> dict[str, ThreadUse]:
    """``{"main": ..., "other": ...}`` for the process ``pid`` now (zeros if it is gone). A
    thread that ended meanwhile drops out of "other": the server's threads are long-lived."""
    use = {"main": ThreadUse(), "other": ThreadUse()}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return use
    for task in tasks:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (task / "stat").read_text().rpartition(")")[2].split()
            status = (task / "status").read_text()
            woke = int(status.split("\nvoluntary_ctxt_switches:")[1].split()[0])
            key = "main" if task.name == str(pid) else "other"
            use[key] += ThreadUse(int(fields[11]) / TICK, int(fields[12]) / TICK, woke)
    return use


def wakeup_cost_us(wakeups: int = 50, period_s: float = 0.02) -> float:
    """On-CPU time of one idle asyncio loop wakeup on this machine (a sleep that ends), from
    the scheduler's own accounting: on a virtual machine it can dwarf the work done."""

    def on_cpu_ns() -> int:
        return sum(
            int(Path(f"/proc/self/task/{t}/schedstat").read_text().split()[0])
            for t in os.listdir("/proc/self/task")
        )

    async def sleep_often() -> None:
        for _ in range(wakeups):
            await asyncio.sleep(period_s)

    before = on_cpu_ns()
    asyncio.run(sleep_often())
    return (on_cpu_ns() - before) / 1000 / wakeups


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + parts[4]  # idle + iowait
    total = sum(parts[:8])  # guest time is already in user
    return total - idle, total


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def agi_sessions() -> int:
    """Established TCP connections accepted on the FastAGI port (server side)."""
    count = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] == "01" and int(cols[1].rsplit(":", 1)[1], 16) == AGI_PORT:
                count += 1
    return count


class Sampler(threading.Thread):
    """Every second: % of a core used by Asterisk and the server, machine busy %, AGI sockets."""

    def __init__(self, pids: dict[str, int], period_s: float = 1.0) -> None:
        super().__init__(daemon=True, name="cpu-sampler")
        self.pids = pids
        self.period_s = period_s
        self.peak: dict[str, float] = dict.fromkeys([*pids, "machine"], 0.0)
        self.peak_sessions = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        last = {k: proc_cpu_s(p) for k, p in self.pids.items()}
        busy0, total0 = machine_busy()
        t0 = time.monotonic()
        while not self._stop_event.wait(self.period_s):
            now = time.monotonic()
            dt = now - t0
            for key, pid in self.pids.items():
                cpu = proc_cpu_s(pid)
                self.peak[key] = max(self.peak[key], 100 * (cpu - last[key]) / dt)
                last[key] = cpu
            busy, total = machine_busy()
            if total > total0:
                self.peak["machine"] = max(
                    self.peak["machine"], 100 * (busy - busy0) / (total - total0)
                )
            busy0, total0, t0 = busy, total, now
            self.peak_sessions = max(self.peak_sessions, agi_sessions())

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)


# --------------------------------------------------------------------------- records
async def _all_records(db: Path) -> list[tuple[str, str | None, list[str]]]:
    store = await RecordStore.open(db)
    try:
        return [(r.call_id, r.outcome, list(r.path)) for r in await store.recent(limit=100_000)]
    finally:
        await store.close()


def record_ids(db: Path) -> set[str]:
    return {call_id for call_id, _, _ in asyncio.run(_all_records(db))} if db.exists() else set()


def check_records(
    db: Path, before: set[str], offered: int, timeout_s: float = 20
) -> tuple[int, int, str]:
    """(new records, good ones, first problem) once ``offered`` new records have an outcome
    (or ``timeout_s`` passed)."""
    deadline = time.monotonic() + timeout_s
    seen, stable_since = -1, time.monotonic()
    while True:  # SIPp has ended: every call is over, only the writes may still be queued
        fresh = [r for r in asyncio.run(_all_records(db)) if r[0] not in before]
        finished = [r for r in fresh if r[1] is not None]
        if len(finished) != seen:
            seen, stable_since = len(finished), time.monotonic()
        if (
            len(finished) >= offered
            or time.monotonic() > deadline
            or time.monotonic() - stable_since > 3
        ):
            break
        time.sleep(0.5)
    good = [r for r in fresh if r[1] == EXPECTED_OUTCOME and r[2] == EXPECTED_PATH]
    bad = [r for r in fresh if r not in good]
    problem = f"{bad[0][0]}: outcome {bad[0][1]}, path {bad[0][2]}" if bad else ""
    return len(fresh), len(good), problem


# --------------------------------------------------------------------------- steps
@dataclass
class Step:
    server: str
    rate: float
    offered: int
    result: LoadResult | None = None
    elapsed_s: float = 0.0
    asterisk_cpu_s: float = 0.0
    server_cpu_s: float = 0.0
    server_threads: dict[str, ThreadUse] = field(default_factory=dict)  # main, other
    sipp_cpu_s: float = 0.0
    machine_busy_pct: float = 0.0  # average over the step, % of all cores
    peak: dict[str, float] = field(default_factory=dict)
    peak_sessions: int = 0
    records: int | None = None  # new records (ivr serve only)
    good_records: int | None = None
    bare_completed: int | None = None  # calls the bare server saw through (bare only)
    misrouted: int = 0  # calls of a bare step that reached ivr serve instead
    problem: str = ""
    asterisk_warnings: list[str] = field(default_factory=list)  # "count x message", top 3
    call_length_s: float = float("nan")
    setup_ms: float = float("nan")

    @property
    def completed(self) -> int:
        return self.result.successful if self.result else 0

    @property
    def failed(self) -> int:
        """SIPp failures, calls SIPp did not finish, and (ours) calls with a wrong record."""
        if self.result is None:
            return self.offered
        sipp_bad = max(self.result.failed, self.offered - self.result.successful)
        record_bad = 0 if self.good_records is None else self.offered - self.good_records
        return max(sipp_bad, record_bad, self.misrouted, 0 if self.result.ok else 1)

    @property
    def peak_concurrent(self) -> int:
        return self.result.max_concurrent if self.result else 0

    @property
    def server_ms(self) -> float:
        """The server's CPU ms per completed call."""
        return self.per_call_ms(self.server_cpu_s)

    def per_call_ms(self, cpu_s: float) -> float:
        return 1000 * cpu_s / self.completed if self.completed else float("nan")


def _stat_seconds(value: str) -> float:
    """SIPp's "HH:MM:SS:mmmmmm" (or with a trailing ms part) as seconds."""
    parts = value.split(":")
    if len(parts) < 4:
        return float("nan")
    h, m, s, frac = parts[:4]
    return int(h) * 3600 + int(m) * 60 + int(s) + int(frac) / 10 ** len(frac)


def wait_idle(lab: Lab, timeout_s: float) -> bool:
    """0 channels in Asterisk and no FastAGI session; hang everything up after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (
            lab.cli("core show channels count").startswith("0 active channels")
            and agi_sessions() == 0
        ):
            return True
        time.sleep(0.5)
    lab.cli("channel request hangup all")
    time.sleep(2)
    return False


def run_step(
    lab: Lab,
    spec: CallSpec,
    server: IvrServe | BareServe,
    name: str,
    rate: float,
    calls: int,
    workdir: Path,
) -> Step:
    step = Step(name, rate, calls)
    if not wait_idle(lab, 30):
        step.problem = "leftover calls before the step (hung up)"
    ast_pid = asterisk_process.pid(lab.paths)
    if ast_pid is None:
        raise RuntimeError("asterisk is not running")
    srv_pid = server_pid(server)
    db = server.db_path if isinstance(server, IvrServe) else None
    before = record_ids(db) if db else set()
    log_offset = lab.log_size()
    sampler = Sampler({"asterisk": ast_pid, "server": srv_pid})
    ast0, srv0, kids0 = proc_cpu_s(ast_pid), proc_cpu_s(srv_pid), children_cpu_s()
    threads0 = thread_use(srv_pid)
    busy0, total0 = machine_busy()
    started = time.monotonic()
    sampler.start()
    try:
        step.result = sipp.load(spec, workdir, calls=calls, rate=rate, max_concurrent=calls)
        step.sipp_cpu_s = children_cpu_s() - kids0  # SIPp is our only child reaped meanwhile
        busy, total = machine_busy()
        step.machine_busy_pct = 100 * (busy - busy0) / max(1, total - total0)
        if db:  # every record written (group commit) before the CPU is read
            step.records, step.good_records, bad = check_records(db, before, calls)
            step.problem = step.problem or bad
    finally:
        sampler.stop()
    step.elapsed_s = time.monotonic() - started
    step.asterisk_cpu_s = proc_cpu_s(ast_pid) - ast0
    step.server_cpu_s = proc_cpu_s(srv_pid) - srv0
    step.server_threads = {k: v - threads0[k] for k, v in thread_use(srv_pid).items()}
    step.peak, step.peak_sessions = sampler.peak, sampler.peak_sessions
    stats = step.result.stats
    step.call_length_s = _stat_seconds(stats.get("CallLength(C)", ""))
    step.setup_ms = 1000 * _stat_seconds(stats.get("ResponseTime1(C)", ""))
    step.asterisk_warnings = asterisk_warnings(lab, log_offset)
    if not step.result.ok and not step.problem:
        step.problem = f"SIPp exit {step.result.exit_code}: {_sipp_errors(workdir)}"
    return step


def asterisk_warnings(lab: Lab, since: int, top: int = 3) -> list[str]:
    """The most frequent WARNING/ERROR messages in Asterisk's messages.log after ``since``."""
    counts: Counter[str] = Counter()
    with lab.log_path().open("rb") as fh:
        fh.seek(since)
        for line in fh.read().decode(errors="replace").splitlines():
            match = re.match(r"\[[^]]+\] (?:WARNING|ERROR)\[\d+\](?:\[[^]]*\])? (.*)", line)
            if match:
                counts[re.sub(r"\d+", "N", match.group(1))[:160]] += 1
    return [f"{n} x {text}" for text, n in counts.most_common(top)]


def _sipp_errors(workdir: Path) -> str:
    logs = sorted(workdir.glob("load-*.errors.log"), key=lambda p: p.stat().st_mtime)
    if not logs:
        return "no error file"
    return sipp._first_event(logs[-1].read_text(errors="replace"))[:300]


def route_agi(lab: Lab, host: str) -> None:
    """Send the dialplan's next calls to the FastAGI server on ``host`` (port 4573)."""
    lab.cli(f"dialplan set global {AGI_HOST_GLOBAL} {host}")
    shown = lab.cli("dialplan show globals")
    if f"{AGI_HOST_GLOBAL}={host}" not in shown:
        raise RuntimeError(f"could not set {AGI_HOST_GLOBAL} to {host}: {shown[:300]}")


def _report(step: Step) -> None:
    name = step.server
    print(
        f"[{name}]   {step.completed}/{step.offered} ok, {step.failed} failed, "
        f"{step.peak_concurrent} concurrent, asterisk "
        f"{step.per_call_ms(step.asterisk_cpu_s):.1f} ms/call, {name} "
        f"{step.per_call_ms(step.server_cpu_s):.1f} ms/call, sipp "
        f"{step.per_call_ms(step.sipp_cpu_s):.1f} ms/call"
        + (f" ({step.problem})" if step.problem else ""),
        flush=True,
    )


def run_plan(
    lab: Lab,
    spec: CallSpec,
    server: IvrServe,
    bare_server: BareServe | None,
    plan: list[tuple[float, int]],
    workdir: Path,
    keep_going: bool,
) -> tuple[list[Step], list[Step]]:
    """Each step of ``plan`` for ``ivr serve``, then (with a ``bare_server``) for the bare
    server; stops after the first step ``ivr serve`` failed unless ``keep_going``."""
    ours: list[Step] = []
    bare: list[Step] = []
    try:
        for rate, calls in plan:
            route_agi(lab, AGI_HOST)
            print(f"[ivr] {calls} calls at {rate:g}/s ...", flush=True)
            step = run_step(lab, spec, server, "ivr", rate, calls, workdir)
            ours.append(step)
            _report(step)
            if bare_server is not None:
                route_agi(lab, BARE_HOST)
                seen = record_ids(server.db_path)
                print(f"[bare] {calls} calls at {rate:g}/s ...", flush=True)
                base = run_step(lab, spec, bare_server, "bare", rate, calls, workdir)
                base.misrouted = len(record_ids(server.db_path) - seen)
                if base.misrouted:
                    base.problem = base.problem or (
                        f"{base.misrouted} calls went to ivr serve, not the bare server "
                        "(is IVR_AGI_HOST set in Asterisk's environment?)"
                    )
                bare.append(base)
                _report(base)
            if step.failed and not keep_going:
                break
    finally:
        route_agi(lab, AGI_HOST)
    return ours, bare


# --------------------------------------------------------------------------- reference
def reference_sequence(
    lab: Lab, spec: CallSpec, workdir: Path, artifacts: Path, ami_secret: str | None
) -> list[str]:
    """The AGI commands ``ivr serve`` sends on one call, from a short DEBUG run."""
    server = IvrServe(
        workdir / "reference",
        http_base_url="http://127.0.0.1:9",
        log_level="DEBUG",
        artifacts=artifacts,
        name="sipp-load-reference",
        ami_secret=ami_secret,
    )
    server.start()
    try:
        result = sipp.call(spec, workdir / "sipp")
        if not result.ok:
            raise RuntimeError(f"reference call failed: {result}\n{server.log_tail()}")
        time.sleep(0.5)
    finally:
        server.stop()
    commands = [m.group(1) for m in re.finditer(r"\[[^]]+\] -> (.+)$", server.log_text(), re.M)]
    if not commands or not commands[-1].startswith("HANGUP"):
        raise RuntimeError(f"no AGI command sequence ending in HANGUP in {server.log_path}")
    return commands


# --------------------------------------------------------------------------- report
def _fmt(value: float, digits: int = 1) -> str:
    return "-" if value != value else f"{value:.{digits}f}"


def print_table(title: str, steps: Sequence[Step]) -> None:
    print(f"\n{title}")
    head = (
        f"{'rate/s':>7}{'offered':>8}{'ok':>6}{'failed':>7}{'peak conc':>10}"
        f"{'agi sess':>9}{'call s':>7}{'setup ms':>9}{'ast ms/call':>12}"
        f"{'srv ms/call':>12}{'sipp ms/call':>13}{'srv/ast':>8}{'ast %core':>10}"
        f"{'srv %core':>10}{'machine %':>10}{'peak mach%':>11}"
    )
    print(head)
    for s in steps:
        ast, srv = s.per_call_ms(s.asterisk_cpu_s), s.per_call_ms(s.server_cpu_s)
        print(
            f"{s.rate:>7g}{s.offered:>8}{s.completed:>6}{s.failed:>7}{s.peak_concurrent:>10}"
            f"{s.peak_sessions:>9}{_fmt(s.call_length_s):>7}{_fmt(s.setup_ms):>9}"
            f"{_fmt(ast):>12}{_fmt(srv):>12}{_fmt(s.per_call_ms(s.sipp_cpu_s)):>13}"
            f"{_fmt(srv / ast if ast else float('nan'), 2):>8}"
            f"{_fmt(s.peak.get('asterisk', 0), 0):>10}{_fmt(s.peak.get('server', 0), 0):>10}"
            f"{_fmt(s.machine_busy_pct, 0):>10}{_fmt(s.peak.get('machine', 0), 0):>11}"
        )
    for s in steps:
        if s.problem:
            print(f"  {s.rate:g}/s: {s.problem}")
        for line in s.asterisk_warnings:
            print(f"  {s.rate:g}/s: asterisk log: {line}")
        if s.records is not None:
            print(
                f"  {s.rate:g}/s: records {s.records} new, {s.good_records} with "
                f"{EXPECTED_OUTCOME} and {' > '.join(EXPECTED_PATH)} (offered {s.offered})"
            )


def best(steps: Sequence[Step]) -> tuple[float, int]:
    clean = [s for s in steps if s.failed == 0]
    return (
        max((s.rate for s in clean), default=0.0),
        max((s.peak_concurrent for s in clean), default=0),
    )


def summarize(ours: list[Step], bare: list[Step]) -> None:
    rate, conc = best(ours)
    first_bad = next((s for s in ours if s.failed), None)
    print("\nsummary:")
    print(
        f"  ivr serve: highest rate with 0 failed calls {rate:g} calls/s, highest concurrency "
        f"with 0 failed calls {conc}"
        + (
            f"; first failing step {first_bad.rate:g}/s ({first_bad.failed} failed)"
            if first_bad
            else "; no step failed"
        )
    )
    clean = [s for s in ours if s.failed == 0 and s.completed]
    srv = float("nan")
    if clean:
        calls = sum(s.completed for s in clean)
        ast = 1000 * sum(s.asterisk_cpu_s for s in clean) / calls
        srv = 1000 * sum(s.server_cpu_s for s in clean) / calls
        sp = 1000 * sum(s.sipp_cpu_s for s in clean) / calls
        print(
            f"  CPU per call over the clean steps ({calls} calls): Asterisk {ast:.1f} ms, "
            f"ivr serve {srv:.1f} ms, SIPp {sp:.1f} ms; ivr serve / Asterisk = {srv / ast:.2f}"
        )
        if bare:
            bclean = [s for s in bare if s.failed == 0 and s.completed]
            bcalls = sum(s.completed for s in bclean)
            if bcalls:
                bsrv = 1000 * sum(s.server_cpu_s for s in bclean) / bcalls
                bast = 1000 * sum(s.asterisk_cpu_s for s in bclean) / bcalls
                print(
                    f"  bare FastAGI baseline ({bcalls} calls): server {bsrv:.2f} ms/call, "
                    f"Asterisk {bast:.1f} ms/call; ivr serve / bare = {srv / bsrv:.1f}x"
                )
                pairs = [
                    f"{a.rate:g}/s {a.server_ms / b.server_ms:.1f}x"
                    for a, b in zip(ours, bare, strict=False)
                    if a.failed == b.failed == 0 and b.server_ms > 0  # (CPU is read in ticks)
                ]
                print(f"  ivr serve / bare step by step (taken in turn): {', '.join(pairs)}")
                cost = wakeup_cost_us()
                print(
                    f"  where it goes, per call (user + system CPU ms, wakeups); one idle "
                    f"asyncio wakeup costs {cost:.0f} us of CPU on this machine:"
                )
                for label, steps, n in (("ivr serve", clean, calls), ("bare", bclean, bcalls)):
                    for key, what in (("main", "main thread (event loop)"), ("other", "others")):
                        use = sum((s.server_threads[key] for s in steps), ThreadUse())
                        print(
                            f"    {label:9} {what:24} {1000 * use.user_s / n:5.2f} + "
                            f"{1000 * use.sys_s / n:4.2f} ms, {use.wakeups / n:4.1f} wakeups"
                        )
        cores = os.cpu_count() or 1
        print(
            f"  CPU-bound estimate on {cores} cores (per-call CPU drops near saturation): "
            f"{cores} x 1000 ms / {ast + srv + sp:.1f} ms "
            f"per call = {cores * 1000 / (ast + srv + sp):.0f} calls/s (Asterisk "
            f"{100 * ast / (ast + srv + sp):.0f}% of the CPU a call costs)"
        )
    if first_bad:
        warnings = " ".join(first_bad.asterisk_warnings)
        if "Unable to create RTP instance" in warnings:
            print(
                f"  limit at {first_bad.rate:g}/s: Asterisk ran out of RTP ports (rtp.conf "
                f"rtpstart-rtpend; {first_bad.peak_concurrent} calls at once), peak machine "
                f"CPU {first_bad.peak.get('machine', 0):.0f}%"
            )
        else:
            print(
                f"  limit at {first_bad.rate:g}/s: peak CPU asterisk "
                f"{first_bad.peak.get('asterisk', 0):.0f}% of a core, ivr serve "
                f"{first_bad.peak.get('server', 0):.0f}%, machine "
                f"{first_bad.peak.get('machine', 0):.0f}%; {first_bad.problem[:200]}"
            )
    targets: list[tuple[str, bool | None]] = [
        (">= 50 concurrent calls with no failure", conc >= 50),
        (">= 10 calls/s with no failure", rate >= 10),
        ("<= 3 ms of ivr serve CPU per call (clean steps)", srv <= 3.0 if clean else None),
    ]
    for text, ok in targets:
        verdict = "not measured" if ok is None else "met" if ok else "MISSED"
        print(f"  target {verdict}: {text}")
    print(
        f"RESULT: max_rate={rate:g}/s max_concurrent={conc} failed_steps="
        f"{sum(1 for s in ours if s.failed)}"
    )


# --------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--rates", default="5,10,20,30,40,50,60", help="calls/s of each step, in order")
    p.add_argument(
        "--seconds",
        type=float,
        default=15.0,
        help="seconds of arrivals per step: calls = rate x seconds",
    )
    p.add_argument("--max-calls", type=int, default=1000, help="cap on the calls of one step")
    p.add_argument(
        "--first-digit-s",
        type=float,
        default=4.0,
        help="press 2 this long after the 200 OK (in the menu prompt)",
    )
    p.add_argument(
        "--hold-s",
        type=float,
        default=40.0,
        help="how long SIPp waits for Asterisk's BYE after the digit",
    )
    p.add_argument("--log-level", default="INFO", help="ivr serve's log level (INFO: default)")
    p.add_argument("--no-ami", action="store_true", help="run ivr serve without AMI")
    p.add_argument("--no-baseline", action="store_true", help="skip the bare FastAGI run")
    p.add_argument("--keep-going", action="store_true", help="do not stop at a failing step")
    p.add_argument("--quick", action="store_true", help="smoke run: 10 calls at 2/s")
    p.add_argument("--bare-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    p.add_argument("--sequence", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.plan = [
        (float(r), max(1, min(args.max_calls, round(float(r) * args.seconds))))
        for r in args.rates.split(",")
    ]
    if args.quick:
        args.plan = [(2.0, 10)]
    return args


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def bench(args: argparse.Namespace, shown: str) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    limit = raise_fd_limit(65536)
    lab = Lab()
    how = lab.up()
    ami_secret = None if args.no_ami else lab.ami_secret
    spec = CallSpec(
        ext=EXT,
        digits=(DIGIT,),
        first_digit_after_s=args.first_digit_s,
        hold_s=args.hold_s,
        expect_hangup=True,
    )
    artifacts = ROOT / "artifacts" / "e2e"
    print(f"command: {shown}")
    print(
        f"lab: {how}; fd limit {limit}; {os.cpu_count()} CPUs; ivr serve log level "
        f"{args.log_level}, AMI {'off' if args.no_ami else 'on'}"
    )
    print(
        f"call: ext {EXT} (flows/main.yaml), digit {DIGIT} at {args.first_digit_s:g} s "
        f"after the 200 OK, the server hangs up (SIPp waits up to {args.hold_s:g} s)"
    )
    ours: list[Step] = []
    bare: list[Step] = []
    with tempfile.TemporaryDirectory(prefix="sipp-load-") as tmp:
        work = Path(tmp)
        sipp_dir = lab.paths.state / "sipp-load"
        sequence = reference_sequence(lab, spec, work, artifacts, ami_secret)
        print(
            f"reference call: {len(sequence)} AGI commands: "
            + " | ".join(c.split(" ivr/")[0] if " ivr/" in c else c for c in sequence)
        )
        server = IvrServe(
            work / "ivr",
            http_base_url="http://127.0.0.1:9",
            log_level=args.log_level,
            artifacts=artifacts,
            name="sipp-load",
            ami_secret=ami_secret,
        )
        bare_server = None if args.no_baseline else BareServe(work / "bare", sequence)
        server.start()
        try:
            print(f"ivr serve pid {server_pid(server)}, log {server.log_path}")
            if bare_server is not None:
                bare_server.start()
            ours, bare = run_plan(
                lab, spec, server, bare_server, args.plan, sipp_dir, args.keep_going
            )
        finally:
            code = server.stop()
            if bare_server is not None:
                bare_server.stop()
        if code not in (0, None):
            print(f"ivr serve exited with {code}; log {server.log_path}")
        problems = [
            ln
            for ln in server.log_text().splitlines()
            if " ERROR " in ln or " WARNING " in ln or "Traceback" in ln
        ]
        for line in problems[:10]:
            print(f"ivr serve log: {line}")
        if bare_server is not None:
            print(
                f"bare server: {bare_server.completed()} calls saw the full command sequence "
                f"(offered {sum(s.offered for s in bare)})"
            )
    print_table("ivr serve (flows/main.yaml through the real Asterisk)", ours)
    if bare:
        print_table("bare FastAGI baseline (the same AGI commands replayed)", bare)
    print(
        "\ncolumns: peak conc = SIPp's highest CurrentCall; agi sess = highest open FastAGI "
        "sessions; call s = SIPp's mean call length; setup ms = INVITE -> 200 OK mean; "
        "ms/call = CPU (user+sys) / completed calls; %core = highest 1 s sample (100 = one "
        "core; Asterisk is multi-threaded); machine % = average busy of all "
        f"{os.cpu_count()} cores while SIPp ran"
    )
    summarize(ours, bare)
    return 1 if any(s.failed for s in ours) or any(s.failed for s in bare) else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.bare_server is not None:
        asyncio.run(_bare_server(args.bare_server, args.sequence))
        return 0
    shown = " ".join(["benchmarks/sipp_load.py", *(sys.argv[1:] if argv is None else argv)])
    try:
        return bench(args, shown)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
