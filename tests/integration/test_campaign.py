"""Campaigns and the outbound dialer with a fake AMI: lists, pause/resume, rate and
concurrency limits, calling hours, never the same number twice."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.flowkit import flow
from support.instants import next_monday_at

from ivr.cli import main
from ivr.errors import CampaignError, StoreError
from ivr.flow.model import Flow
from ivr.outbound.campaigns import CallList, Campaigns, Settings, read_list
from ivr.outbound.dialer import Dialer
from ivr.outbound.jobs import Outbound
from ivr.store.records import RecordStore
from ivr.store.schema import immediate


@dataclass
class FakeAmi:
    """Originate answers after ``ring_s`` with the scripted result per number."""

    results: dict[str, str] = field(default_factory=dict)  # number -> Response
    ring_s: float = 0.2
    outbound: Outbound | None = None  # answered calls are "done" at once (as after AGI)
    up: bool = True
    dialled: list[tuple[float, str]] = field(default_factory=list)
    active: int = 0
    peak: int = 0

    async def originate(self, channel: str, **kw: object) -> dict[str, str]:
        self.dialled.append((time.monotonic(), channel))
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(self.ring_s)
        finally:
            self.active -= 1
        number = channel.split("/")[1].split("@")[0]
        ok = self.results.get(number, "Success")
        if ok == "Success" and self.outbound is not None:
            job_id = int(str(kw["channel_id"]).split("-")[2])
            assert await self.outbound.answered(job_id) is not None
            await self.outbound.done(job_id, "answered")
        return {"Response": ok, "Reason": "4" if ok == "Success" else "3"}


OFFER_FLOW = flow(
    """
    start: offer
    nodes:
      offer: {play: "A new card for you.", next: hangup}
""",
    name="offer",
)


def offer_flows() -> dict[str, Flow]:
    """The server's loaded flows: the campaigns' flow is there (else their calls are held)."""
    return {"offer": OFFER_FLOW}


def write_list(tmp_path: Path, numbers: list[str]) -> Path:
    path = tmp_path / "list.csv"
    path.write_text("number,name\n" + "".join(f"{n},N{i}\n" for i, n in enumerate(numbers)))
    return path


def settings(**kw: object) -> Settings:
    base: dict[str, object] = {"name": "spring", "flow": "offer", "dial": "PJSIP/{number}@trunk"}
    base.update(kw)
    return Settings(**base)  # type: ignore[arg-type]


async def run_dialer(dialer: Dialer, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await dialer.tick()
        await asyncio.sleep(0.05)
    while dialer._dialing:
        await asyncio.sleep(0.05)


def test_list_reading_rejects_bad_rows_and_keeps_numbers_once(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_text(
        "number,name,amount\n+8613800000001,Li,300\n8613800000001,again,1\n"
        "12ab,X,1\n5550100,Wang,20\n"
    )
    calls = read_list(path)
    assert [r["number"] for r in calls.rows] == ["+8613800000001", "5550100"]
    assert calls.rows[0] == {"number": "+8613800000001", "name": "Li", "amount": "300"}
    assert calls.duplicates == 1 and calls.rejected == ["line 4: '12ab' is not a number to call"]
    (tmp_path / "bad.csv").write_text("phone,name\n1,2\n")
    with pytest.raises(CampaignError, match="'number' among them"):
        read_list(tmp_path / "bad.csv")


async def test_start_twice_adds_only_new_numbers(store: RecordStore, tmp_path: Path) -> None:
    campaigns = Campaigns(store)
    assert await campaigns.start(settings(), read_list(write_list(tmp_path, ["5550001"]))) == 1
    more = read_list(write_list(tmp_path, ["5550001", "5550002"]))
    assert await campaigns.start(settings(), more) == 1
    status = await campaigns.status("spring")
    assert status["numbers"] == 2 and status["by_status"] == {"pending": 2}
    with pytest.raises(CampaignError, match="runs flow offer"):
        await campaigns.start(settings(flow="other"), more)
    with pytest.raises(CampaignError, match="with \\{number\\}"):
        await campaigns.start(settings(name="x", dial="PJSIP/555@trunk"), more)


async def test_rate_and_concurrency_limits(store: RecordStore, tmp_path: Path) -> None:
    numbers = [f"55501{i:02d}" for i in range(6)]
    await Campaigns(store).start(
        settings(rate=2, max_concurrent=2), read_list(write_list(tmp_path, numbers))
    )
    outbound = Outbound(store)
    ami = FakeAmi(ring_s=0.3, outbound=outbound)
    dialer = Dialer(outbound, ami, offer_flows, poll_s=0.05)  # type: ignore[arg-type]
    await run_dialer(dialer, 3.5)
    assert sorted(ch for _, ch in ami.dialled) == sorted(f"PJSIP/{n}@trunk" for n in numbers)
    assert ami.peak <= 2
    starts = [t for t, _ in ami.dialled]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) > 0.5 - 0.06, gaps  # evenly spaced at 1/rate (ticks every 0.05 s)
    achieved = (len(starts) - 1) / (starts[-1] - starts[0])
    assert abs(achieved - 2) / 2 < 0.1, achieved
    jobs = await outbound.jobs()
    assert {(j.status, j.attempts) for j in jobs} == {("done", 1)}


async def test_a_call_in_progress_counts_against_max_concurrent(
    store: RecordStore, tmp_path: Path
) -> None:
    await Campaigns(store).start(
        settings(rate=10, max_concurrent=1), read_list(write_list(tmp_path, ["5550700", "5550701"]))
    )
    ami = FakeAmi(ring_s=0.05)  # answered, and the flow is still running (no "done")
    await run_dialer(Dialer(Outbound(store), ami, offer_flows, poll_s=0.05), 0.5)  # type: ignore[arg-type]
    assert len(ami.dialled) == 1


async def test_pause_stops_new_calls_and_resume_goes_on_without_repeats(
    store: RecordStore, tmp_path: Path
) -> None:
    numbers = [f"55502{i:02d}" for i in range(4)]
    campaigns = Campaigns(store)
    await campaigns.start(
        settings(rate=10, max_concurrent=1), read_list(write_list(tmp_path, numbers))
    )
    outbound = Outbound(store)
    ami = FakeAmi(ring_s=0.3, outbound=outbound)
    dialer = Dialer(outbound, ami, offer_flows, poll_s=0.05)  # type: ignore[arg-type]
    await run_dialer(dialer, 0.5)  # one or two calls
    await campaigns.set_state("spring", "paused")
    paused_at = len(ami.dialled)
    await run_dialer(dialer, 1.0)
    assert len(ami.dialled) == paused_at and 1 <= paused_at < 4
    await campaigns.set_state("spring", "active")
    await run_dialer(dialer, 2.0)
    assert sorted(ch for _, ch in ami.dialled) == sorted(f"PJSIP/{n}@trunk" for n in numbers)


async def test_no_answer_is_retried_after_the_delay_then_given_up(
    store: RecordStore, tmp_path: Path
) -> None:
    await Campaigns(store).start(
        settings(attempts=2, retry_after_s=0.5), read_list(write_list(tmp_path, ["5550300"]))
    )
    ami = FakeAmi(results={"5550300": "Failure"}, ring_s=0.05)
    outbound = Outbound(store)
    dialer = Dialer(outbound, ami, offer_flows, poll_s=0.05)  # type: ignore[arg-type]
    await run_dialer(dialer, 0.3)
    [job] = await outbound.jobs()
    assert (job.status, job.attempts, len(ami.dialled)) == ("pending", 1, 1)
    await run_dialer(dialer, 1.0)
    [job] = await outbound.jobs()
    assert (job.status, job.attempts, len(ami.dialled)) == ("failed", 2, 2)
    status = await Campaigns(store).status("spring")
    assert status["results"] == {"no answer": 1} and status["by_status"] == {"failed": 1}


async def test_outside_calling_hours_nothing_is_dialled(store: RecordStore, tmp_path: Path) -> None:
    noon = next_monday_at(12).timestamp()  # every clock reads from here: no pinned date
    await Campaigns(store, clock=lambda: noon - 4 * 3600).start(  # booked at 08:00
        settings(hours={"mon-fri": "09:00-10:00"}, timezone="UTC"),
        read_list(write_list(tmp_path, ["5550400"])),
    )
    outbound = Outbound(store, clock=lambda: noon)
    ami = FakeAmi()
    await run_dialer(Dialer(outbound, ami, offer_flows, poll_s=0.05), 0.3)  # type: ignore[arg-type]
    assert ami.dialled == []
    outbound.clock = lambda: noon - 2.5 * 3600  # 09:30
    await run_dialer(Dialer(outbound, ami, offer_flows, poll_s=0.05), 0.3)  # type: ignore[arg-type]
    assert len(ami.dialled) == 1


async def test_a_restart_mid_dial_counts_the_attempt(store: RecordStore, tmp_path: Path) -> None:
    await Campaigns(store).start(
        settings(attempts=3, retry_after_s=60), read_list(write_list(tmp_path, ["5550500"]))
    )
    outbound = Outbound(store)
    [job] = await outbound.due()
    assert await outbound.start_attempt(job)
    assert not await outbound.start_attempt(job)  # never twice
    assert await outbound.recover() == 1  # the server died while it rang
    [job] = await outbound.jobs()
    assert (job.status, job.attempts) == ("pending", 1)
    assert await outbound.due() == []  # not before retry_after_s


def test_cli_start_pause_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "c.sqlite3")
    path = write_list(tmp_path, ["5550600", "5550601"])
    assert (
        main(
            [
                "campaign",
                "start",
                str(path),
                "--flow",
                "offer",
                "--db",
                db,
                "--hours",
                "mon-fri=09:00-20:00",
                "--timezone",
                "Asia/Shanghai",
            ]
        )
        == 0
    )
    assert "2 numbers added" in capsys.readouterr().out
    assert main(["campaign", "pause", "list", "--db", db]) == 0
    assert main(["campaign", "status", "list", "--db", db, "--json"]) == 0
    out = capsys.readouterr().out
    assert '"state": "paused"' in out and '"pending": 2' in out
    assert main(["campaign", "start", str(path), "--flow", "nosuchflow", "--db", db]) == 2
    assert "not among the loadable flows" in capsys.readouterr().err


def big_list(n: int) -> CallList:
    return CallList([{"number": f"55{i:08d}", "name": f"N{i}"} for i in range(n)], 0, [])


class Writer(threading.Thread):
    """Small writes from a second connection (as ``ivr serve``'s call records while
    ``ivr campaign start`` runs): how many campaign rows each one saw when it got the lock."""

    def __init__(self, path: str) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.seen: list[int] = []
        self.stop = threading.Event()
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE probe (n INTEGER)")
        conn.close()

    def run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        while not self.stop.is_set():
            with immediate(conn):
                n = conn.execute("SELECT COUNT(*) FROM outbound").fetchone()[0]
                conn.execute("INSERT INTO probe VALUES (?)", (n,))
            self.seen.append(n)
            time.sleep(0.001)
        conn.close()


async def test_a_large_import_commits_in_batches_that_let_other_writers_in(
    sqlite_store: RecordStore,
) -> None:
    store = sqlite_store
    statements: list[str] = []
    await store.transaction(lambda c: c.set_trace_callback(statements.append))
    writer = Writer(store.path)
    writer.start()
    try:
        added = await Campaigns(store, batch_s=0.01).start(settings(), big_list(20_000))
    finally:
        writer.stop.set()
        await asyncio.to_thread(writer.join)
    assert added == 20_000
    assert statements.count("BEGIN IMMEDIATE") >= 3  # the campaign row, then the list in batches
    assert any(0 < n < 20_000 for n in writer.seen), writer.seen  # got in mid-import
    assert (
        await store.transaction(
            lambda c: c.execute("SELECT COUNT(DISTINCT number) FROM outbound").fetchone()[0]
        )
        == 20_000
    )


async def test_an_import_cut_off_says_how_far_it_got_and_a_rerun_adds_the_rest(
    store: RecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    transaction, calls = store.transaction, 0

    async def full_disk_at_the_fourth(fn: object, **kw: bool) -> object:
        nonlocal calls
        calls += 1
        if calls == 4:  # the campaign row and two batches are in
            raise StoreError("database or disk is full")
        return await transaction(fn, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "transaction", full_disk_at_the_fourth)
    with pytest.raises(CampaignError, match=r"stopped after \d+ of 20000 numbers") as cut:
        await Campaigns(store, batch_s=0.01).start(settings(), big_list(20_000))
    monkeypatch.undo()
    count = "SELECT COUNT(*), COUNT(DISTINCT number) FROM outbound"
    [(written, distinct)] = await store.transaction(lambda c: c.execute(count).fetchall())
    assert f"stopped after {written} of 20000 numbers" in str(cut.value)
    assert "disk is full" in str(cut.value) and "again" in str(cut.value)
    assert 0 < written == distinct < 20_000
    assert await Campaigns(store).start(settings(), big_list(20_000)) == 20_000 - written
    assert tuple(await store.transaction(lambda c: c.execute(count).fetchone())) == (20_000, 20_000)


def test_cli_release_puts_held_calls_back_due_now(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "c.sqlite3")
    assert (
        main(
            [
                "campaign",
                "start",
                str(write_list(tmp_path, ["5550600", "5550601"])),
                "--flow",
                "offer",
                "--db",
                db,
            ]
        )
        == 0
    )

    async def hold_them() -> None:  # the flow was renamed in the server's flows_dir
        async with await RecordStore.open(db) as store:
            renamed = {"offers": OFFER_FLOW}
            await Dialer(Outbound(store), FakeAmi(), lambda: renamed).tick()  # type: ignore[arg-type]

    asyncio.run(hold_them())
    capsys.readouterr()
    assert main(["campaign", "release", "--job", "1", "--db", db]) == 0
    assert capsys.readouterr().out == "1 of 1 jobs back to pending, due now\n"
    before = time.time()
    assert main(["campaign", "release", "list", "--db", db]) == 0
    assert capsys.readouterr().out == "campaign list: 1 held calls back to pending, due now\n"
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT status, reason, due_at FROM outbound ORDER BY id").fetchall()
    conn.close()
    assert [r[:2] for r in rows] == [("pending", ""), ("pending", "")]
    assert before <= rows[1][2] <= time.time()
    assert main(["campaign", "release", "nosuch", "--db", db]) == 2
    assert "no campaign named 'nosuch'" in capsys.readouterr().err
    assert main(["campaign", "release", "--db", db]) == 2
    assert "a campaign name or --job" in capsys.readouterr().err
