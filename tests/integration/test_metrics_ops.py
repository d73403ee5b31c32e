"""The series an operator alerts on, scraped from ``/metrics`` of a real running server: each
one exists and moves when its event happens (an AGI timeout from a fake Asterisk that never
answers, a refused command, a record write, a locked database, a dial result through a fake
AMI manager, a webhook nobody takes, a due outbound job)."""

from __future__ import annotations

import asyncio
import platform
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import ClientSession
from prometheus_client.parser import text_string_to_metric_families
from support.fake_ami import SECRET, FakeManager
from support.fake_asterisk import FakeCallState, FakeCommand, run_fake_call
from support.flowkit import flow
from support.stores import Db

from ivr import __version__
from ivr.app.backlogs import BacklogSampler
from ivr.app.server import App, Server
from ivr.call.record import CallRecord
from ivr.config import (
    AdminSettings,
    AgiSettings,
    AmiSettings,
    Secret,
    Settings,
    SpeechSettings,
    StoreSettings,
    WebhookSettings,
)
from ivr.flow.numbers import NumberPolicy, effective
from ivr.flow.queue_node import QueueNode
from ivr.outbound.jobs import Outbound
from ivr.runtime.context import BookedBy
from ivr.store.backlogs import read_backlogs
from ivr.store.webhooks import WebhookStore

MAIN = """\
start: hello
nodes:
  hello: {play: {sound: hello-world}, next: menu}
  menu:
    menu:
      prompt: {sound: press-1}
      options: {"1": bye}
      otherwise: bye
  bye: {hangup: true}
"""

# A callback offered around the clock (tests never depend on when they run), two at once.
CALLBACK = """\
start: agent
timezone: UTC
nodes:
  agent:
    queue:
      name: cards
      callback: {prompt: {sound: press-1}, then: booked, dial: "PJSIP/{number}@callback-line",
                 max_concurrent: 2, hours: {mon-sun: "00:00-24:00"}}
      when_unavailable: booked
      when_timeout: booked
    next: hangup
  booked: {play: {sound: hello-world}, next: hangup}
"""

POLICY = effective(NumberPolicy(per_caller_per_day=1000, per_number_per_day=1000), None)
WEBHOOK_SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    d = tmp_path / "flows"
    d.mkdir()
    (d / "main.yaml").write_text(MAIN, encoding="utf-8")
    (d / "cb.yaml").write_text(CALLBACK, encoding="utf-8")
    return d


@pytest.fixture(autouse=True)
def quick_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BacklogSampler, "every_s", 0.05)


def settings(tmp_path: Path, flows: Path, db: Db | None = None, **parts: object) -> Settings:
    store = StoreSettings(path=str(tmp_path / "calls.sqlite3"))
    if db is not None and db.backend == "postgresql":
        assert db.password is not None
        store = replace(store, url=db.target, password=Secret(db.password.encode()))
    base = Settings(
        flows_dir=str(flows),
        prompts_dir=str(tmp_path / "prompts"),
        agi=AgiSettings(port=0),
        store=store,
        speech=SpeechSettings(port=0),
        admin=AdminSettings(port=0),
    )
    return replace(base, **parts)  # type: ignore[arg-type]


@pytest.fixture
async def app(tmp_path: Path, flows_dir: Path) -> AsyncIterator[Server]:
    server = await App(settings(tmp_path, flows_dir)).start()
    yield server
    await server.close()


async def scrape(app: Server) -> Samples:
    """Every sample of ``GET /metrics`` by name and sorted labels."""
    async with ClientSession() as http:
        response = await http.get(f"http://127.0.0.1:{app.admin.port}/metrics")
        assert response.status == 200
        text = await response.text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def until(app: Server, check: Callable[[Samples], bool], timeout_s: float = 10.0) -> Samples:
    """Scrape until ``check`` holds (the last scrape); fails after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        samples = await scrape(app)
        if check(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError("the metrics never got there")
        await asyncio.sleep(0.05)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_process_python_and_build_series(app: Server) -> None:
    samples = await scrape(app)
    names = {name for name, _ in samples}
    for name in (
        "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
        "process_start_time_seconds", "python_gc_objects_collected_total",
        "python_gc_collections_total",
    ):  # fmt: skip
        assert name in names, name
    assert value(samples, "process_resident_memory_bytes") > 10e6
    assert value(samples, "process_start_time_seconds") <= time.time()
    python = platform.python_version()
    [info] = [labels for name, labels in samples if name == "python_info"]
    assert ("version", python) in info
    build = {"version": __version__, "python": python, "sqlite": sqlite3.sqlite_version}
    assert value(samples, "ivr_build_info", **build) == 1
    # the process collector reads /proc at each scrape: CPU spent shows at the next one
    cpu = value(samples, "process_cpu_seconds_total")
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    assert value(await scrape(app), "process_cpu_seconds_total") >= cpu + 0.2


def never_answer(name: str) -> Callable[[FakeCommand, FakeCallState], list[str | float] | None]:
    def rule(cmd: FakeCommand, state: FakeCallState) -> list[str | float] | None:
        return [] if cmd.name == name else None

    return rule


def answer_with(
    name: str, *lines: str
) -> Callable[[FakeCommand, FakeCallState], list[str | float] | None]:
    def rule(cmd: FakeCommand, state: FakeCallState) -> list[str | float] | None:
        return list(lines) if cmd.name == name else None

    return rule


async def test_agi_timeouts_and_errors_by_verb(tmp_path: Path, flows_dir: Path) -> None:
    agi = AgiSettings(port=0, command_timeout_s=0.3)
    app = await App(settings(tmp_path, flows_dir, agi=agi)).start()
    try:
        port = app.agi.port
        before = await scrape(app)
        assert value(before, "ivr_agi_command_timeouts_total", command="ANSWER") == 0
        call = await run_fake_call("127.0.0.1", port, script="main", rule=never_answer("ANSWER"))
        assert call.closed_by_server and call.names[-1] == "ANSWER"  # the server gave up
        samples = await until(
            app, lambda s: value(s, "ivr_agi_command_timeouts_total", command="ANSWER") == 1
        )
        assert value(samples, "ivr_agi_command_timeouts_total", command="STREAM FILE") == 0
        # Asterisk refusing a command (510), then a prompt it cannot play (result=-1)
        refused = answer_with("STREAM FILE", "510 Invalid or unknown command")
        await run_fake_call("127.0.0.1", port, script="main", rule=refused)
        missing = answer_with("STREAM FILE", "200 result=-1 endpos=0")
        await run_fake_call("127.0.0.1", port, script="main", rule=missing)
        errors = "ivr_agi_command_errors_total"
        samples = await until(
            app,
            lambda s: (
                value(s, errors, command="STREAM FILE", kind="invalid") == 1
                and value(s, errors, command="STREAM FILE", kind="failed") == 1
            ),
        )
        assert value(samples, "ivr_agi_command_timeouts_total", command="ANSWER") == 1
        labels = {dict(lbl)["command"] for name, lbl in samples if name == errors}
        assert labels == {"STREAM FILE"}  # a verb, never the command line or the caller
    finally:
        await app.close()


def a_record(call_id: str) -> CallRecord:
    return CallRecord(call_id=call_id, flow="main", flow_version="1", started_at=time.time())


@contextmanager
def write_lock(db: Path) -> Iterator[None]:
    """Another writer holding the SQLite database's write lock (a big import)."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


async def test_store_write_latency_queue_depth_and_journal_backlog(
    app: Server, tmp_path: Path
) -> None:
    start = await scrape(app)
    assert value(start, "ivr_store_writes_queued") == value(start, "ivr_store_backlog") == 0
    written = value(start, "ivr_store_write_seconds_count")
    await run_fake_call("127.0.0.1", app.agi.port, script="main", digits=["1"])
    samples = await until(app, lambda s: value(s, "ivr_store_write_seconds_count") >= written + 2)
    assert value(samples, "ivr_store_write_seconds_sum") > 0  # the begin and the finish
    app.store.retry_s = 0.1
    with write_lock(tmp_path / "calls.sqlite3"):
        begin = asyncio.create_task(app.store.begin(a_record("locked")))
        await until(app, lambda s: value(s, "ivr_store_writes_queued") == 1)
        # past the busy timeout (5 s) the write goes to the journal and counts as saved
        await asyncio.wait_for(begin, 15)
        samples = await scrape(app)
        assert value(samples, "ivr_store_backlog") == 1
        assert value(samples, "ivr_store_writes_queued") == 0
        assert value(samples, "ivr_store_write_seconds_bucket", le="2.5") < value(
            samples, "ivr_store_write_seconds_count"
        )  # the slow write is in the top buckets
    await until(app, lambda s: value(s, "ivr_store_backlog") == 0)  # replayed
    assert await app.store.get("locked") is not None


async def test_dial_results_by_kind_and_result(tmp_path: Path, flows_dir: Path) -> None:
    manager = FakeManager()
    ami = AmiSettings(port=await manager.start(), secret=Secret(SECRET.encode()))
    app = await App(settings(tmp_path, flows_dir, ami=ami)).start()
    try:
        dials = "ivr_outbound_dials_total"
        before = await scrape(app)
        assert value(before, dials, kind="callback", result="answered") == 0  # there at 0
        assert value(before, dials, kind="survey", result="busy") == 0
        outbound = Outbound(app.store)
        await book(outbound, app, "c1", "5550101")
        await until(app, lambda s: value(s, dials, kind="callback", result="answered") == 1)
        manager.originate_reason = "5"  # busy
        await book(outbound, app, "c2", "5550102")
        samples = await until(app, lambda s: value(s, dials, kind="callback", result="busy") == 1)
        assert value(samples, dials, kind="callback", result="answered") == 1
        numbers = {v for name, lbl in samples if name == dials for _, v in lbl}
        assert not numbers & {"5550101", "5550102", "c1", "c2"}
    finally:
        await app.close()
        await manager.close()


async def book(outbound: Outbound, app: Server, call_id: str, number: str) -> None:
    """The callback of the cb flow's queue node, due now."""
    node = app.library.flows["cb"].nodes["agent"]
    assert isinstance(node, QueueNode)
    by = BookedBy(call_id, "cb", number)
    assert await outbound.book_callback(by, node, number, 0.0, POLICY) is None


async def test_webhook_and_outbound_backlogs(tmp_path: Path, flows_dir: Path) -> None:
    dead = "http://127.0.0.1:9/hook"  # nothing listens on discard: every post fails
    hooks = WebhookSettings(url=dead, secret=Secret(WEBHOOK_SECRET.encode()), retry_s=60)
    app = await App(settings(tmp_path, flows_dir, webhooks=hooks)).start()  # AMI off
    try:
        samples = await scrape(app)
        for name in ("ivr_webhooks_pending", "ivr_outbound_jobs_due"):
            assert value(samples, name) == 0, name
        assert value(samples, "ivr_webhooks_oldest_pending_seconds") == 0
        await run_fake_call("127.0.0.1", app.agi.port, script="main", digits=["1"])
        samples = await until(app, lambda s: value(s, "ivr_webhooks_pending") >= 1)
        await until(app, lambda s: value(s, "ivr_webhooks_oldest_pending_seconds") > 0.1)
        await book(Outbound(app.store), app, "c1", "5550101")  # no AMI: nobody dials it
        await until(app, lambda s: value(s, "ivr_outbound_jobs_due") == 1)
    finally:
        await app.close()


async def test_backlogs_read_from_the_tables(db: Db) -> None:
    store = await db.open()
    try:
        now = time.time()
        empty = await read_backlogs(store, now)
        assert (empty.webhooks_pending, empty.webhooks_oldest_at, empty.outbound_due) == (
            0,
            None,
            0,
        )
        assert empty.oldest_age_s(now) == 0
        table = WebhookStore(store)
        await table.enqueue([("call.ended", "a", "{}"), ("call.ended", "b", "{}")], now - 30)
        [first, *_] = await table.claim(now, lease_s=60)
        await table.sent(first.id, now)
        outbound = Outbound(store, clock=lambda: now)
        node = flow(CALLBACK, name="cb").nodes["agent"]
        assert isinstance(node, QueueNode)
        for call_id, number, due_in_s in (("x", "5550101", 0.0), ("y", "5550102", 3600.0)):
            by = BookedBy(call_id, "cb", number)
            assert await outbound.book_callback(by, node, number, due_in_s, POLICY) is None
        backlogs = await read_backlogs(store, now)
        assert backlogs.webhooks_pending == 1  # the sent one no longer waits
        assert backlogs.oldest_age_s(now) == pytest.approx(30)
        assert backlogs.outbound_due == 1  # the other is due in an hour
        assert (await read_backlogs(store, now + 3600)).outbound_due == 2
    finally:
        await store.close()
