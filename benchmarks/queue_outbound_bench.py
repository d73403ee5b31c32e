"""Agent queues, surveys and the outbound dialer under load, on the real Asterisk (the lab).

Two measurements with the real ``ivr serve`` (AMI on, bank flow clock pinned to a Monday
morning in Shanghai):

1. **Queue + survey, N concurrent callers** (default 20): SIPp places N bank calls at once;
   each presses 1 (English), 0 (agent), then answers the in-call survey with 5 and 1. The
   queue ``default`` gets N extra simulated agents for the run (``queue add member``), so
   every caller reaches one. Checked afterwards in SQLite: N records, each with an answered
   queue visit and a completed survey (5, 1): "lost" counts the calls SIPp placed without
   such a record.
2. **Dialer rate**: a campaign of M numbers (default 50) at R calls/s (default 5) to a SIPp
   that answers every call and presses 2 (not interested). The start time of each
   ``Originate`` comes from the server's log; the achieved rate is (M - 1) / (last start -
   first start), compared with R (target: within 10 %).

Run as root with the lab available (``ivr lab up`` is done here)::

    .venv/bin/python benchmarks/queue_outbound_bench.py [--callers 20] [--numbers 50 --rate 5]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sqlite3
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from serve import IvrServe  # noqa: E402  (tests/e2e/serve.py)
from support.instants import next_open_monday  # noqa: E402  (tests/support/instants.py)

from ivr.cli import main as ivr_main  # noqa: E402
from ivr.lab import CallSpec, Lab, sipp  # noqa: E402
from ivr.lab.sipp import Answerer  # noqa: E402
from ivr.store.records import RecordStore  # noqa: E402

MORNING = next_open_monday(ROOT / "flows" / "bank.yaml", 10)  # bank open, from now
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*placing campaign call")


def queue_survey(lab: Lab, server: IvrServe, callers: int) -> dict[str, float]:
    extra = [f"Local/{1010 + i}@agents/n" for i in range(callers)]
    for member in extra:
        lab.cli(f"queue add member {member} to default")
    try:
        spec = CallSpec(
            ext="200",
            digits=("1", "0", "5", "1"),
            first_digit_after_s=3.0,
            gaps_s=(4.0, 9.0, 3.0),
            hold_s=60,
            expect_hangup=True,
        )
        started = time.monotonic()
        result = sipp.load(
            spec, lab.paths.state / "sipp", calls=callers, rate=callers, max_concurrent=callers
        )
        elapsed = time.monotonic() - started
    finally:
        for member in extra:
            lab.cli(f"queue remove member {member} from default")
    time.sleep(1.0)
    records = asyncio.run(_records(server.db_path))
    good = [
        r
        for r in records
        if r.queue is not None
        and r.queue.result == "answered"
        and r.survey is not None
        and r.survey.status == "completed"
        and [a.value for a in r.survey.answers] == [5, 1]
    ]
    return {
        "offered": callers,
        "sipp_ok": result.successful,
        "sipp_failed": result.failed,
        "peak": result.max_concurrent,
        "records": len(records),
        "complete": len(good),
        "lost": max(0, result.successful - len(good)),
        "seconds": elapsed,
        "wait_max_s": max((r.queue.wait_s for r in records if r.queue), default=0.0),
    }


async def _records(db: Path) -> list:  # type: ignore[type-arg]
    store = await RecordStore.open(db)
    try:
        return await store.recent(limit=100_000)
    finally:
        await store.close()


def dialer_rate(server: IvrServe, workdir: Path, numbers: int, rate: float) -> dict[str, float]:
    call_list = workdir / "bench.csv"
    call_list.write_text("number\n" + "".join(f"86139{i:08d}\n" for i in range(numbers)))
    callee = Answerer(("2",), workdir, calls=numbers, first_digit_after_s=3.0, timeout_s=180)
    callee.start()
    log_from = server.log_size()
    try:
        code = ivr_main(
            [
                "campaign",
                "start",
                str(call_list),
                "--flow",
                "offer",
                "--db",
                str(server.db_path),
                "--dial",
                "PJSIP/{number}@survey-line",
                "--rate",
                f"{rate:g}",
                "--max-concurrent",
                str(numbers),
                "--attempts",
                "1",
                "--name",
                "bench",
            ]
        )
        if code:
            raise SystemExit("campaign start failed")
        answered = callee.wait(240)
    finally:
        callee.stop()
    deadline = time.monotonic() + 60
    while True:
        with sqlite3.connect(server.db_path) as conn:
            states = dict(
                conn.execute(
                    "SELECT status, COUNT(*) FROM outbound WHERE target = 'bench' GROUP BY status"
                ).fetchall()
            )
        if set(states) <= {"done", "failed"} or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    starts = [
        datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        for line in server.log_text(log_from).splitlines()
        if (m := STAMP.match(line))
    ]
    span = max(starts) - min(starts) if len(starts) > 1 else 0.0
    achieved = (len(starts) - 1) / span if span else 0.0
    return {
        "numbers": numbers,
        "configured_rate": rate,
        "placed": len(starts),
        "achieved_rate": achieved,
        "error_pct": 100 * (achieved - rate) / rate,
        "answered_by_sipp": 1.0 if answered.ok else 0.0,
        "done": float(states.get("done", 0)),
        "failed": float(states.get("failed", 0)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callers", type=int, default=20)
    parser.add_argument("--numbers", type=int, default=50)
    parser.add_argument("--rate", type=float, default=5.0)
    args = parser.parse_args(argv)
    lab = Lab()
    lab.up()
    with tempfile.TemporaryDirectory(prefix="queue-bench-") as tmp:
        work = Path(tmp)
        server = IvrServe(
            work / "serve",
            http_base_url="",
            clock_at=MORNING,
            ami_secret=lab.ami_secret,
            log_level="INFO",
            name="queue-bench",
        )
        server.start()
        try:
            q = queue_survey(lab, server, args.callers)
            d = dialer_rate(server, work, args.numbers, args.rate)
        finally:
            server.stop()
    print(
        f"\nqueue + in-call survey, {q['offered']:.0f} callers at once (peak "
        f"{q['peak']:.0f} in SIPp): SIPp ok {q['sipp_ok']:.0f}, failed {q['sipp_failed']:.0f}; "
        f"records complete {q['complete']:.0f}/{q['records']:.0f}, lost {q['lost']:.0f}; "
        f"{q['seconds']:.1f} s; longest queue wait {q['wait_max_s']:.1f} s"
    )
    print(
        f"dialer: {d['placed']:.0f} of {d['numbers']:.0f} calls placed, configured "
        f"{d['configured_rate']:g}/s, achieved {d['achieved_rate']:.2f}/s "
        f"({d['error_pct']:+.1f} %); done {d['done']:.0f}, failed {d['failed']:.0f}"
    )
    ok = (
        q["lost"] == 0
        and q["sipp_failed"] == 0
        and abs(d["error_pct"]) <= 10
        and d["placed"] == d["numbers"]
    )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
