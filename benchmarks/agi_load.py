"""FastAGI load benchmark: many simulated Asterisk calls through the bank flow over TCP.

Starts ``ivr serve`` as a subprocess (temporary config, store, flows and prompts; an aiohttp
balance stub in this process) and drives it with the scripted fake Asterisk
(``tests/support/fake_asterisk.py``). Every call takes the same realistic bank path: English (1),
balance (1), account ``12345678#``, confirm (1), back to the main menu (9), agent (0): the
agent queue answers (``QUEUESTATUS=CONTINUE``, no AMI) and the post-call survey goes
unanswered. Then it does the same against a bare ``asyncio.start_server`` FastAGI
handler (run from this file as a subprocess) that sends the exact command sequence captured
from one real call, with no flow, store or interpreter, and prints ours/bare ratios.

``--flow main`` runs instead the call ``benchmarks/sipp_load.py`` makes through the real
Asterisk (``flows/main.yaml``: welcome, menu, "2" for support, goodbye; 7 commands), to see
the server's share of that benchmark's figure without Asterisk and its timing.

The bank flow's business hours (Asia/Shanghai, weekdays 08:00-20:00) are replaced, in a
temporary copy, by ``mon-sun 00:00-24:00`` so the run never depends on the wall clock.

Both servers run at once. Phases:

1. reference: one call through ours; its command sequence becomes the bare handler's script
   and every later call of either server is checked against it; then a few warm-up calls;
2. hold (``--hold N``): N calls parked together on the same prompt (the fake does not answer
   that STREAM FILE until all N are parked), RSS read from ``/proc/<pid>/status`` before and
   during: (VmRSS held - VmRSS idle) / N is the RSS per idle concurrent call;
3. throughput: ``--calls`` calls split into ``--rounds`` rounds taken in turn (ours, bare,
   ours, bare, ...: this machine's speed drifts by tens of percent over a minute, and both
   servers must see the same drift), ``--concurrency`` at a time, each prompt "playing" for
   ``--prompt-ms``. Reports the median calls/s and server CPU per call over the rounds
   (and each round's), and the per-step server time:
   measured on the client side as the time from the fake writing its reply to a command
   (after the scripted prompt delay) to receiving the next command, i.e. the server's
   processing time per step plus loopback and client-loop scheduling latency (which is the
   same for both servers).

The bare handler does no HTTP lookup and writes no record: it is the floor cost of the same
FastAGI conversation in asyncio (its calls/s is often limited by the load generator, which
runs in this process on one core: then "server CPU ms per call" is the fairer comparison).

Failures: a call that timed out, was not closed by the server, or whose command sequence
differs from the reference; for ours also a call whose SQLite record (read with ``sqlite3``
once the server has stopped) is missing or has the wrong outcome, path or balance.

Run (from the repository root)::

    .venv/bin/python benchmarks/agi_load.py                      # 5,000 calls, 1,000 held
    .venv/bin/python benchmarks/agi_load.py --quick              # smoke run, a few seconds
    .venv/bin/python benchmarks/agi_load.py --calls 1000 --concurrency 1000 --prompt-ms 1000

Talks only to 127.0.0.1; every wait is bounded, so it stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from support.fake_asterisk import (  # noqa: E402
    FakeCallResult,
    FakeCallState,
    FakeCommand,
    default_reply,
    run_fake_call,
)

HOST = "127.0.0.1"
ACCOUNT = "12345678"
BALANCE = "1234.50"
VARIABLES = {"QUEUESTATUS": "CONTINUE"}


@dataclass(frozen=True)
class Journey:
    """One caller's way through a flow, the same on every call of a run (``--flow``)."""

    flow: str  # the AGI script and flows/<flow>.yaml
    digits: tuple[str, ...]  # pressed in turn wherever the server waits for a key
    path: list[str]  # the record's path
    outcome: str
    balance: bool  # the record's variables hold the stub's balance


BANK_PATH = [
    "welcome", "choose_language", "opening_hours", "main", "balance", "fetch_balance",
    "tell_balance", "anything_else", "main", "agent",
]  # fmt: skip
JOURNEYS = {
    # English (1), balance (1), account, confirm (1), back to the menu (9), agent (0)
    "bank": Journey(
        "bank",
        ("1", "1", *ACCOUNT, "#", "1", "9", "0"),
        BANK_PATH,
        "transferred",
        balance=True,
    ),
    # the call benchmarks/sipp_load.py makes through the real Asterisk: support (2)
    "main": Journey(
        "main", ("2",), ["welcome", "menu", "support", "goodbye"], "self_service", balance=False
    ),
}
JOURNEY = JOURNEYS["bank"]  # --flow
POLL_S = 0.05


# --------------------------------------------------------------------------- bare handler
async def _bare_call(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, commands: list[bytes]
) -> None:
    """Read the agi_* block, send each command and wait for its final reply, then close."""
    try:
        while (await reader.readline()).strip():
            pass
        for command in commands:
            writer.write(command)
            while True:
                line = await reader.readline()
                if not line:
                    return
                # a final reply is "NNN ..."; skip "HANGUP" and "520-" continuation lines
                if line[:3].isdigit() and line[3:4] == b" ":
                    break
    except OSError:
        pass
    finally:
        writer.close()


async def _bare_server(port: int, sequence: Path) -> None:
    commands = [c.encode() + b"\n" for c in json.loads(sequence.read_text())]
    server = await asyncio.start_server(
        lambda r, w: _bare_call(r, w, commands), HOST, port, backlog=4096
    )
    async with server:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await stop.wait()


# --------------------------------------------------------------------------- helpers
def raise_fd_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def proc_status_kb(pid: int, key: str) -> int:
    """``VmRSS``/``VmHWM`` of a process in kB (0 if it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def always_open_bank(flows: Path) -> None:
    """Copy bank.yaml with its hours opened 00:00-24:00 every day (wall-clock independent)."""
    text = (ROOT / "flows" / "bank.yaml").read_text(encoding="utf-8")
    # the whole week open and no holiday calendar: from "open:" up to the branches
    start, end = text.index("      open:\n"), text.index("      when_open:")
    text = text[:start] + '      open: {mon-sun: "00:00-24:00"}\n' + text[end:]
    (flows / "bank.yaml").write_text(text, encoding="utf-8")


async def start_stub() -> tuple[web.AppRunner, str, list[int]]:
    """The balance service: ``GET /accounts/<8 digits>/balance`` -> ``{"available": ...}``."""
    from aiohttp import web  # here: the bare server subprocess does not need it

    hits = [0]

    async def balance(request: web.Request) -> web.Response:
        hits[0] += 1
        return web.json_response({"available": BALANCE})

    app = web.Application()
    app.router.add_get(r"/accounts/{acct:\d{8}}/balance", balance)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, HOST, port, backlog=4096).start()
    return runner, f"http://{HOST}:{port}", hits


# --------------------------------------------------------------------------- servers
@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    db: Path | None = None

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} server exited ({self.proc.returncode}): {self.log_tail()}"
                )
            try:
                _, writer = await asyncio.open_connection(HOST, self.port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            writer.close()
            return
        raise RuntimeError(f"{self.name} server not listening after {timeout_s} s")

    def stop(self, timeout_s: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return int(self.proc.returncode)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def log_problems(self) -> list[str]:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return []
        return [
            ln
            for ln in text.splitlines()
            if " WARNING " in ln or " ERROR " in ln or "Traceback" in ln
        ]


def start_ours(work: Path, base_url: str) -> Server:
    flows, prompts = work / "flows", work / "prompts"
    flows.mkdir()
    always_open_bank(flows)
    shutil.copy(ROOT / "flows" / "main.yaml", flows / "main.yaml")
    if (ROOT / "prompts").is_dir():  # rendered prompts: spare the start-up TTS run
        shutil.copytree(ROOT / "prompts", prompts)
    port = free_port()
    config = {
        "flows_dir": str(flows), "prompts_dir": str(prompts), "log_level": "WARNING",
        "agi": {"host": HOST, "port": port},
        "http": {"base_url": base_url, "timeout_s": 5},
        "store": {"path": str(work / "calls.sqlite3")},
        "admin": {"host": HOST, "port": 0},  # any free port: never 8080 of a running server
        "speech": {"host": HOST, "port": 0},  # nor 4574 of one (e2e tests, the lab)
    }  # fmt: skip
    (work / "ivr.yaml").write_text(json.dumps(config, indent=1))  # JSON is YAML
    log = work / "ivr-serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "ivr"), "serve", "--config", str(work / "ivr.yaml")],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=work,
        )
    return Server("ours", proc, port, log, work / "calls.sqlite3")


def start_bare(work: Path, sequence: list[str]) -> Server:
    (work / "sequence.json").write_text(json.dumps(sequence))
    port = free_port()
    log = work / "bare.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--bare-server",
                str(port),
                "--sequence",
                str(work / "sequence.json"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=work,
        )
    return Server("bare", proc, port, log)


# --------------------------------------------------------------------------- calls
@dataclass
class Hold:
    """Parks every call on command ``index`` until ``released`` (or ``deadline``)."""

    index: int
    parked: int = 0
    released: bool = False
    deadline: float = 0.0

    def reply(self, lines: list[str]) -> Iterator[str | float]:
        self.parked += 1
        while not self.released and time.monotonic() < self.deadline:
            yield POLL_S
        yield from lines


@dataclass
class CallStats:
    steps_s: list[float] = field(default_factory=list)
    results: dict[str, FakeCallResult] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    active: int = 0
    peak_active: int = 0


async def one_call(
    port: int,
    call_id: str,
    stats: CallStats,
    prompt_s: float,
    timeout_s: float,
    hold: Hold | None = None,
    measure: bool = True,
) -> None:
    last_sent: list[float] = []

    def rule(cmd: FakeCommand, state: FakeCallState) -> Sequence[str | float] | None:
        now = time.perf_counter()
        if measure and last_sent and last_sent[0] <= now:
            stats.steps_s.append(now - last_sent[0])
        lines = default_reply(cmd, state)
        if hold is not None and state.index == hold.index:
            last_sent[:] = [float("inf")]  # not measured
            # a lazy reply: the fake only iterates it, sleeping on each number
            return cast(Sequence[str | float], hold.reply(lines))
        if prompt_s > 0 and cmd.name == "STREAM FILE":
            last_sent[:] = [now + prompt_s]
            return [prompt_s, *lines]
        last_sent[:] = [now]
        return lines

    stats.active += 1
    stats.peak_active = max(stats.peak_active, stats.active)
    try:
        stats.results[call_id] = await run_fake_call(
            HOST,
            port,
            script=JOURNEY.flow,
            digits=JOURNEY.digits,
            uniqueid=call_id,
            variables=dict(VARIABLES),
            rule=rule,
            timeout_s=timeout_s,
        )
    except OSError as exc:
        stats.errors[call_id] = f"connect: {exc!r}"
    finally:
        stats.active -= 1


async def run_batch(
    port: int,
    call_ids: Sequence[str],
    concurrency: int,
    prompt_s: float,
    timeout_s: float,
    stats: CallStats,
    measure: bool = True,
) -> float:
    """Run the calls ``concurrency`` at a time; return the elapsed seconds."""
    pending = iter(call_ids)

    async def worker() -> None:
        for call_id in pending:  # shared: each worker takes the next call
            await one_call(port, call_id, stats, prompt_s, timeout_s, measure=measure)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(call_ids))))))
    return time.perf_counter() - started


async def sample_rss(pid: int, peak: list[int]) -> None:
    while True:
        peak[0] = max(peak[0], proc_status_kb(pid, "VmRSS"))
        await asyncio.sleep(POLL_S)


# --------------------------------------------------------------------------- figures
@dataclass
class Round:
    calls: int
    elapsed_s: float
    cpu_s: float  # server process
    client_cpu_s: float  # this process (the load generator)

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.elapsed_s

    @property
    def cpu_ms_per_call(self) -> float:
        return 1000 * self.cpu_s / self.calls

    @property
    def client_load(self) -> float:
        return self.client_cpu_s / self.elapsed_s


@dataclass
class Figures:
    name: str
    rounds: list[Round] = field(default_factory=list)
    steps_s: list[float] = field(default_factory=list)
    peak_active: int = 0
    run_rss_kb: int = 0  # highest VmRSS seen during the throughput phase
    hwm_kb: int = 0  # VmHWM at the end (whole run)
    end_kb: int = 0  # VmRSS once every call has ended
    idle_kb: int = 0
    held_kb: int = 0
    held: int = 0
    hold_target: int = 0
    ramp_s: float = float("nan")  # from launching the held calls to all of them parked
    failures: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # server log warnings/errors

    @property
    def calls(self) -> int:
        return sum(r.calls for r in self.rounds)

    @property
    def calls_per_s(self) -> float:
        """Median over the rounds (the machine's speed drifts between rounds)."""
        return median([r.calls_per_s for r in self.rounds])

    @property
    def cpu_ms_per_call(self) -> float:
        return median([r.cpu_ms_per_call for r in self.rounds])

    @property
    def client_load(self) -> float:
        return median([r.client_load for r in self.rounds])

    @property
    def per_idle_call_kb(self) -> float:
        return (self.held_kb - self.idle_kb) / self.held if self.held else float("nan")


def check_calls(stats: CallStats, reference: list[str], ref_id: str) -> dict[str, str]:
    """Client-side failures: errors, timeouts, not closed by the server, other commands (a
    call's own id, e.g. in its screen-pop variables, read as the reference call's)."""
    bad = dict(stats.errors)
    for call_id, res in stats.results.items():
        commands = [c.replace(call_id, ref_id) for c in res.commands]
        if res.timed_out:
            bad[call_id] = f"timed out after {len(res.commands)} commands"
        elif not res.closed_by_server:
            bad[call_id] = "connection not closed by the server"
        elif commands != reference:
            at = next(
                (i for i, (a, b) in enumerate(zip(commands, reference, strict=False)) if a != b),
                min(len(commands), len(reference)),
            )
            got = commands[at] if at < len(commands) else "<end>"
            bad[call_id] = f"command #{at} is {got!r}, expected " + (
                repr(reference[at]) if at < len(reference) else "<end>"
            )
    return bad


def check_records(db: Path, call_ids: Sequence[str]) -> dict[str, str]:
    """Failures found in the SQLite call records (read once the server has stopped)."""
    bad: dict[str, str] = {}
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = {
            r[0]: r[1:] for r in conn.execute("SELECT call_id, outcome, path, variables FROM calls")
        }
    for call_id in call_ids:
        if call_id not in rows:
            bad[call_id] = "no record"
            continue
        outcome, path, variables = rows[call_id]
        if outcome != JOURNEY.outcome:
            bad[call_id] = f"outcome {outcome!r}"
        elif json.loads(path) != JOURNEY.path:
            bad[call_id] = f"path {json.loads(path)}"
        elif JOURNEY.balance and json.loads(variables).get("balance") != BALANCE:
            bad[call_id] = f"balance {json.loads(variables).get('balance')!r}"
    return bad


def hold_index(reference: list[str]) -> int:
    """The command calls are parked on: the middle STREAM FILE of the path."""
    streams = [i for i, c in enumerate(reference) if c.startswith("STREAM FILE")]
    return streams[len(streams) // 2]


# --------------------------------------------------------------------------- phases
@dataclass
class Plan:
    calls: int
    concurrency: int
    prompt_s: float
    hold: int
    hold_max_s: float
    warmup: int
    timeout_s: float
    rounds: int = 1


async def hold_phase(
    server: Server, plan: Plan, index: int, fig: Figures, stats: CallStats, prefix: str
) -> list[str]:
    """Park ``plan.hold`` calls on command ``index`` together; read RSS idle and held."""
    await asyncio.sleep(0.5)
    fig.idle_kb = proc_status_kb(server.proc.pid, "VmRSS")
    launched = time.monotonic()
    hold = Hold(index, deadline=launched + plan.hold_max_s)
    ids = [f"{prefix}-hold-{i}" for i in range(plan.hold)]
    tasks = [
        asyncio.create_task(
            one_call(
                server.port, call_id, stats, 0.0, plan.hold_max_s + plan.timeout_s, hold, False
            )
        )
        for call_id in ids
    ]
    while hold.parked < plan.hold and time.monotonic() < hold.deadline - 1:
        if all(t.done() for t in tasks):
            break
        await asyncio.sleep(POLL_S)
    fig.held = hold.parked
    if hold.parked == plan.hold:
        fig.ramp_s = time.monotonic() - launched
    fig.hold_target = plan.hold
    await asyncio.sleep(1.0)  # let the server finish whatever it was doing
    fig.held_kb = proc_status_kb(server.proc.pid, "VmRSS")
    hold.released = True
    await asyncio.gather(*tasks)
    return ids


async def prepare(
    server: Server, plan: Plan, reference: list[str], fig: Figures, stats: CallStats
) -> list[str]:
    """Warm-up and hold phases against one running server; returns their call ids."""
    prefix = f"{server.name}-{int(time.time())}"
    warm = [f"{prefix}-warm-{i}" for i in range(plan.warmup)]
    await run_batch(server.port, warm, 10, 0.0, plan.timeout_s, stats, measure=False)
    ids = list(warm)
    if plan.hold:
        ids += await hold_phase(server, plan, hold_index(reference), fig, stats, prefix)
    return ids


async def throughput_round(
    server: Server, plan: Plan, fig: Figures, stats: CallStats, number: int
) -> list[str]:
    """``plan.calls // plan.rounds`` calls, ``plan.concurrency`` at a time."""
    run = [f"{server.name}-run{number}-{i}" for i in range(plan.calls // plan.rounds)]
    timing = CallStats()
    peak = [0]
    sampler = asyncio.create_task(sample_rss(server.proc.pid, peak))
    cpu0, client0 = proc_cpu_s(server.proc.pid), sum(os.times()[:2])
    elapsed = await run_batch(
        server.port, run, plan.concurrency, plan.prompt_s, plan.timeout_s, timing
    )
    fig.rounds.append(
        Round(len(run), elapsed, proc_cpu_s(server.proc.pid) - cpu0, sum(os.times()[:2]) - client0)
    )
    sampler.cancel()
    fig.steps_s += timing.steps_s
    fig.peak_active = max(fig.peak_active, timing.peak_active)
    fig.run_rss_kb = max(fig.run_rss_kb, peak[0])
    stats.results.update(timing.results)
    stats.errors.update(timing.errors)
    return run


async def finish(
    server: Server, fig: Figures, stats: CallStats, reference: list[str], ref_id: str
) -> None:
    fig.hwm_kb = proc_status_kb(server.proc.pid, "VmHWM")
    await asyncio.sleep(0.5)
    fig.end_kb = proc_status_kb(server.proc.pid, "VmRSS")
    fig.failures.update(check_calls(stats, reference, ref_id))


async def reference_call(server: Server, plan: Plan) -> tuple[str, list[str]]:
    """One call through ours: its command sequence is what every call must send."""
    stats = CallStats()
    ref_id = f"ours-ref-{int(time.time())}"
    await one_call(server.port, ref_id, stats, 0.0, plan.timeout_s, measure=False)
    if ref_id not in stats.results or stats.results[ref_id].timed_out:
        raise RuntimeError(f"the reference call failed: {stats.errors} {server.log_tail()}")
    return ref_id, stats.results[ref_id].commands


async def bench_both(work: Path, base_url: str, plan: Plan) -> tuple[Figures, Figures, list[str]]:
    """Both servers up at once; warm-up and hold on each, then throughput rounds taken in
    turn (ours, bare, ours, bare...) so a drift in the machine's speed hits both alike."""
    ours, bare = Figures("ours"), Figures("bare")
    stats = {"ours": CallStats(), "bare": CallStats()}
    servers: list[Server] = []
    try:
        servers.append(start_ours(work / "ours", base_url))
        await servers[0].wait_ready()
        ref_id, reference = await reference_call(servers[0], plan)
        servers.append(start_bare(work / "bare", reference))
        await servers[1].wait_ready()
        ids = [ref_id]
        for server, fig in zip(servers, (ours, bare), strict=True):
            got = await prepare(server, plan, reference, fig, stats[fig.name])
            ids += got if fig is ours else []
        for number in range(plan.rounds):
            for server, fig in zip(servers, (ours, bare), strict=True):
                got = await throughput_round(server, plan, fig, stats[fig.name], number)
                ids += got if fig is ours else []
        for server, fig in zip(servers, (ours, bare), strict=True):
            await finish(server, fig, stats[fig.name], reference, ref_id)
    finally:
        codes = [server.stop() for server in servers]
    if codes and codes[0] != 0:
        ours.problems.append(f"ivr serve exited with {codes[0]}")
    for server, fig in zip(servers, (ours, bare), strict=False):
        fig.problems += server.log_problems()
    assert servers[0].db is not None
    ours.failures.update(check_records(servers[0].db, ids))
    return ours, bare, reference


# --------------------------------------------------------------------------- report
def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b and a == a and b == b else "-"


def report(ours: Figures, bare: Figures, plan: Plan, reference: list[str], argv: str) -> None:
    print(f"command: {argv}")
    if JOURNEY.flow == "bank":
        print(
            "flow: flows/bank.yaml, temp copy with hours opened 00:00-24:00 every day "
            "(holidays removed), so the run does not depend on the wall clock"
        )
    else:
        print(f"flow: flows/{JOURNEY.flow}.yaml")
    print(f"path: {' > '.join(JOURNEY.path)} ({len(reference)} AGI commands per call)")
    print(
        f"throughput phase: {plan.calls} calls, concurrency {plan.concurrency}, "
        f"prompt {plan.prompt_s * 1000:.0f} ms per STREAM FILE; hold phase: {plan.hold} calls "
        f"parked on command #{hold_index(reference)} ({reference[hold_index(reference)]!r})"
    )
    print(
        "step time: client side, fake's reply written -> next command received "
        "(server processing + loopback + client loop lag), prompt delay excluded"
    )
    rows: list[tuple[str, float, float, str]] = [
        ("calls/s", ours.calls_per_s, bare.calls_per_s, "{:.1f}"),
        ("failures", len(ours.failures), len(bare.failures), "{:.0f}"),
        ("server CPU ms per call", ours.cpu_ms_per_call, bare.cpu_ms_per_call, "{:.2f}"),
        ("client CPU % of a core", 100 * ours.client_load, 100 * bare.client_load, "{:.0f}"),
        (
            "step p50 ms",
            1000 * percentile(ours.steps_s, 0.5),
            1000 * percentile(bare.steps_s, 0.5),
            "{:.3f}",
        ),
        (
            "step p99 ms",
            1000 * percentile(ours.steps_s, 0.99),
            1000 * percentile(bare.steps_s, 0.99),
            "{:.3f}",
        ),
        (
            "step max ms",
            1000 * max(ours.steps_s, default=float("nan")),
            1000 * max(bare.steps_s, default=float("nan")),
            "{:.1f}",
        ),
        ("peak concurrent calls (run)", ours.peak_active, bare.peak_active, "{:.0f}"),
        ("peak VmRSS during run MB", ours.run_rss_kb / 1024, bare.run_rss_kb / 1024, "{:.1f}"),
        ("peak RSS VmHWM MB (whole run)", ours.hwm_kb / 1024, bare.hwm_kb / 1024, "{:.1f}"),
        ("VmRSS after all calls MB", ours.end_kb / 1024, bare.end_kb / 1024, "{:.1f}"),
        ("VmRSS idle MB", ours.idle_kb / 1024, bare.idle_kb / 1024, "{:.1f}"),
        (f"VmRSS with {plan.hold} held MB", ours.held_kb / 1024, bare.held_kb / 1024, "{:.1f}"),
        ("calls actually held", ours.held, bare.held, "{:.0f}"),
        ("s until all held calls parked", ours.ramp_s, bare.ramp_s, "{:.2f}"),
        ("RSS per idle call KB", ours.per_idle_call_kb, bare.per_idle_call_kb, "{:.1f}"),
    ]
    print(f"{'':32}{'ours':>12}{'bare':>12}{'ours/bare':>11}")
    for label, a, b, fmt in rows:
        print(f"{label:32}{fmt.format(a):>12}{fmt.format(b):>12}{_ratio(a, b):>11}")
    if plan.rounds > 1:
        print(
            f"calls/s and CPU are medians of {plan.rounds} rounds of "
            f"{plan.calls // plan.rounds} calls, taken in turn; per round (ours/bare):"
        )
        for i, (a, b) in enumerate(zip(ours.rounds, bare.rounds, strict=True), 1):
            # (a short round's CPU can be under one clock tick: 0 ms, no ratio)
            cpu_ratio = _ratio(a.cpu_ms_per_call, b.cpu_ms_per_call)
            print(
                f"  round {i}: {a.calls_per_s:6.1f} / {b.calls_per_s:6.1f} calls/s "
                f"({_ratio(a.calls_per_s, b.calls_per_s)}x), CPU {a.cpu_ms_per_call:.2f} / "
                f"{b.cpu_ms_per_call:.2f} ms per call ({cpu_ratio}x)"
            )
    for fig in (ours, bare):
        if fig.client_load > 0.9:
            print(
                f"note: the load generator used ~100% of a core during the {fig.name} run: "
                f"{fig.name} calls/s is a lower bound there; compare server CPU per call"
            )
        for call_id, why in list(fig.failures.items())[:10]:
            print(f"FAILED {fig.name} {call_id}: {why}")
        for line in fig.problems[:10]:
            print(f"{fig.name} server log: {line}")
        if len(fig.problems) > 10:
            print(f"{fig.name} server log: ... {len(fig.problems) - 10} more warnings/errors")
    held = max(plan.hold, ours.peak_active)
    targets = [
        (
            f"{held} concurrent calls held, no errors",
            held >= 1000 and ours.held == plan.hold and not ours.failures,
        ),
        ("throughput >= 0.5x bare", ours.calls_per_s >= 0.5 * bare.calls_per_s),
        ("< 100 KB RSS per idle call", ours.per_idle_call_kb < 100 if plan.hold else None),
        (
            "<= 1.5x bare's server CPU per call (the same AGI commands)",
            # CPU is read in 10 ms clock ticks: a short run's figure is mostly rounding
            ours.cpu_ms_per_call <= 1.5 * bare.cpu_ms_per_call if plan.calls >= 1000 else None,
        ),
    ]
    for text, ok in targets:
        verdict = "not measured" if ok is None else "met" if ok else "MISSED"
        print(
            f"target {verdict}: {text}"
            + (" (fewer than 1,000 calls in this run)" if "held" in text and held < 1000 else "")
        )
    print(f"failures: ours={len(ours.failures)} bare={len(bare.failures)}")


# --------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--calls", type=int, default=3000, help="calls in the throughput phase")
    p.add_argument("--concurrency", type=int, default=100, help="calls at a time (throughput)")
    p.add_argument(
        "--prompt-ms",
        type=float,
        default=0.0,
        help="how long each STREAM FILE 'plays' (throughput phase)",
    )
    p.add_argument(
        "--hold",
        type=int,
        default=1000,
        help="calls parked together for the idle-RSS figure (0: skip)",
    )
    p.add_argument(
        "--hold-max-s", type=float, default=60.0, help="longest wait for all held calls to park"
    )
    p.add_argument(
        "--flow",
        choices=sorted(JOURNEYS),
        default="bank",
        help="the journey: bank (60 commands, a lookup) or main (the SIPp benchmark's call)",
    )
    p.add_argument("--warmup", type=int, default=20, help="warm-up calls before measuring")
    p.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="throughput rounds per server, taken in turn (--calls is split)",
    )
    p.add_argument(
        "--quick", action="store_true", help="smoke run: 100 calls, concurrency 20, 50 held"
    )
    p.add_argument("--max-s", type=float, default=1200.0, help="give up after this long")
    p.add_argument("--bare-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    p.add_argument("--sequence", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.calls, args.concurrency, args.hold, args.warmup, args.rounds = 100, 20, 50, 5, 2
        args.hold_max_s = min(args.hold_max_s, 20.0)
    return args


async def bench(args: argparse.Namespace, argv: str) -> int:
    streams = 12  # STREAM FILEs per call, rounded up
    plan = Plan(
        calls=args.calls,
        concurrency=args.concurrency,
        prompt_s=args.prompt_ms / 1000,
        hold=args.hold,
        hold_max_s=args.hold_max_s,
        warmup=args.warmup,
        timeout_s=30.0 + streams * args.prompt_ms / 1000,
        rounds=max(1, min(args.rounds, args.calls)),
    )
    limit = raise_fd_limit(4 * max(args.hold, args.concurrency) + 1024)
    print(f"fd limit: {limit}")
    runner, base_url, hits = await start_stub()
    try:
        async with asyncio.timeout(args.max_s):
            with tempfile.TemporaryDirectory(prefix="agi-load-") as tmp:
                (Path(tmp) / "ours").mkdir()
                (Path(tmp) / "bare").mkdir()
                ours, bare, reference = await bench_both(Path(tmp), base_url, plan)
    finally:
        await runner.cleanup()
    report(ours, bare, plan, reference, argv)
    print(f"balance stub requests: {hits[0]}")
    return 1 if ours.failures or bare.failures else 0


def main(argv: Sequence[str] | None = None) -> int:
    global JOURNEY
    args = parse_args(argv)
    JOURNEY = JOURNEYS[args.flow]
    if args.bare_server is not None:
        asyncio.run(_bare_server(args.bare_server, args.sequence))
        return 0
    shown = " ".join(["benchmarks/agi_load.py", *(sys.argv[1:] if argv is None else argv)])
    return asyncio.run(bench(args, shown))


if __name__ == "__main__":
    sys.exit(main())
