"""Hot reload under load: flows rewritten and reloaded while many FastAGI calls run.

Runs :class:`ivr.app.server.App` in this process (FastAGI, admin API and the store on temporary
files, loopback only) and drives it with the scripted fake Asterisk
(``tests/support/fake_asterisk.py``):
``--callers`` callers place calls back to back, each prompt "playing" 0-``--prompt-ms`` ms,
while the flows directory is rewritten ``--reloads`` times, ``--interval-s`` apart:

- every rewrite gives ``main.yaml`` and ``sub.yaml`` a new ``version:`` label ``rN`` and new
  node names (``bye_rN``, ``s_rN``), written in place (not atomically: a reload may read a
  half-written file, which must then keep its previous version);
- every 5th rewrite makes ``main.yaml`` invalid (a target that does not exist), so the
  previous version must keep serving; the next rewrite fixes it;
- odd rewrites are picked up by the mtime watcher (``--poll-s``), even ones by
  ``POST /api/flows/reload`` with the admin token; the two may overlap (the registry
  serializes them).

Each call walks hello -> menu (key 1) -> a sub-flow call -> ``bye_rN``. Checks, once the
server has stopped: no failed call (timed out, not closed by the server, or handed back to
the dialplan with ``IVR_RESULT``), one record per call, every outcome ``self_service``, every
``flow_version`` one that served (seen current after some reload), and every call's end node
named after its own version's label: a call finishes on the Flow object it started with.

Run (from the repository root)::

    .venv/bin/python benchmarks/reload_under_load.py            # 100 callers, 20 reloads
    .venv/bin/python benchmarks/reload_under_load.py --quick    # smoke run, a few seconds

Talks only to 127.0.0.1; every wait is bounded, so it stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
from support.fake_asterisk import FakeCallState, FakeCommand, run_fake_call  # noqa: E402

from ivr.app.server import App, Server  # noqa: E402
from ivr.config import (  # noqa: E402
    AdminSettings,
    AgiSettings,
    Secret,
    Settings,
    SpeechSettings,
    StoreSettings,
)
from ivr.flow.registry import ReloadResult  # noqa: E402

HOST = "127.0.0.1"
TOKEN = "reload-bench-token"


def main_text(label: str, *, broken: bool = False) -> str:
    target = "nowhere" if broken else f"bye_{label}"
    return (
        f'version: "{label}"\nstart: hello\nnodes:\n'
        "  hello: {play: {sound: hello-world}, next: menu}\n"
        "  menu:\n    menu:\n      prompt: {sound: press-1}\n"
        f'      options: {{"1": to_sub}}\n      otherwise: bye_{label}\n'
        f"  to_sub: {{call: sub, next: {target}}}\n"
        f"  bye_{label}: {{play: {{sound: goodbye}}, next: hangup}}\n"
    )


def sub_text(label: str) -> str:
    return (
        f'version: "{label}"\nstart: s_{label}\nnodes:\n'
        f"  s_{label}: {{play: {{sound: beep}}, served: true, next: return}}\n"
    )


@dataclass
class Run:
    """What happened, for the report."""

    calls: int = 0
    failures: list[str] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    served: set[str] = field(default_factory=set)  # flow versions current after a reload
    sub_served: set[str] = field(default_factory=set)
    results: list[ReloadResult] = field(default_factory=list)
    post_s: list[float] = field(default_factory=list)  # POST /api/flows/reload answer times
    watch_s: list[float] = field(default_factory=list)  # rewrite -> watcher swapped it in
    broken_kept: int = 0  # broken rewrites during which the previous version kept serving


def pct(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def caller(
    app_port: int, n: int, stop: asyncio.Event, run: Run, prompt_ms: float, rng: random.Random
) -> None:
    def rule(cmd: FakeCommand, state: FakeCallState) -> list[str | float] | None:
        if cmd.name == "STREAM FILE" and prompt_ms > 0:
            reply = (
                "200 result=49 endpos=100" if "press-1" in cmd.raw else "200 result=0 endpos=100"
            )
            return [rng.uniform(0, prompt_ms) / 1000, reply]
        return None

    i = 0
    while not stop.is_set():
        i += 1
        call_id = f"c{n}-{i}"
        started = time.monotonic()
        result = await run_fake_call(
            HOST, app_port, script="main", digits=["1"], rule=rule, uniqueid=call_id, timeout_s=20
        )
        run.calls += 1
        run.durations.append(time.monotonic() - started)
        if result.timed_out or not result.closed_by_server:
            run.failures.append(f"{call_id}: timed out or not closed by the server")
        elif "IVR_RESULT" in result.variables:
            run.failures.append(f"{call_id}: IVR_RESULT={result.variables['IVR_RESULT']}")


async def reloader(app: Server, flows: Path, args: argparse.Namespace, run: Run) -> None:
    from aiohttp import ClientSession

    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with ClientSession(f"http://{HOST}:{app.admin.port}") as http:
        for i in range(1, args.reloads + 1):
            await asyncio.sleep(args.interval_s)
            label = f"r{i}"
            broken = i % 5 == 0
            before = app.library.flows["main"]
            reloads_before = len(run.results)
            written = time.monotonic()
            (flows / "main.yaml").write_text(main_text(label, broken=broken), encoding="utf-8")
            if not broken:
                (flows / "sub.yaml").write_text(sub_text(label), encoding="utf-8")
            if i % 2 == 0:  # the admin API
                response = await http.post("/api/flows/reload", headers=headers)
                run.post_s.append(time.monotonic() - written)
                body = await response.json()
                if response.status != 200:
                    run.failures.append(f"reload {i}: HTTP {response.status} {body}")
            else:  # the watcher
                deadline = time.monotonic() + 10 * args.poll_s + 5
                while time.monotonic() < deadline:
                    if broken and len(run.results) > reloads_before:
                        break
                    if app.library.flows["main"].version.startswith(f"{label}+"):
                        break
                    await asyncio.sleep(args.poll_s / 4)
                else:
                    run.failures.append(f"reload {i}: the watcher did not reload in time")
                run.watch_s.append(time.monotonic() - written)
            if broken:
                await asyncio.sleep(args.poll_s * 3)  # let the watcher see it too
                if app.library.flows["main"] is before:
                    run.broken_kept += 1
                else:
                    run.failures.append(f"reload {i}: a broken main.yaml replaced the flow")


async def bench(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.CRITICAL if args.quiet else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    rng = random.Random(args.seed)
    run = Run()
    with tempfile.TemporaryDirectory(prefix="ivr-reload-") as tmp:
        root = Path(tmp)
        flows = root / "flows"
        flows.mkdir()
        (flows / "main.yaml").write_text(main_text("r0"), encoding="utf-8")
        (flows / "sub.yaml").write_text(sub_text("r0"), encoding="utf-8")
        settings = Settings(
            flows_dir=str(flows),
            prompts_dir=str(root / "prompts"),
            agi=AgiSettings(host=HOST, port=0),
            speech=SpeechSettings(host=HOST, port=0),
            store=StoreSettings(path=str(root / "calls.sqlite3")),
            admin=AdminSettings(host=HOST, port=0, token=Secret(TOKEN.encode())),
        )
        built = App(settings)
        built.flows.poll_s = args.poll_s
        app_hook = built.flows.on_reload

        def seen(result: ReloadResult) -> None:
            run.results.append(result)
            for name, flow in built.flows.flows.items():
                (run.served if name == "main" else run.sub_served).add(flow.version)
            if app_hook is not None:
                app_hook(result)  # the server's own (metrics)

        built.flows.on_reload = seen
        started = time.monotonic()
        app = await built.start()
        stop = asyncio.Event()
        callers = [
            asyncio.create_task(caller(app.agi.port, n, stop, run, args.prompt_ms, rng))
            for n in range(args.callers)
        ]
        try:
            async with asyncio.timeout(args.max_s):
                await reloader(app, flows, args, run)
                await asyncio.sleep(args.interval_s)
                stop.set()
                await asyncio.gather(*callers)
        except TimeoutError:
            run.failures.append(f"gave up after {args.max_s} s")
            for task in callers:
                task.cancel()
        finally:
            elapsed = time.monotonic() - started
            await app.close()
        records = read_records(root / "calls.sqlite3")
    return report(args, run, records, elapsed)


def read_records(db: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(
            "SELECT call_id, flow_version, outcome, end_node, path FROM calls"
        ).fetchall()
    finally:
        conn.close()


def report(args: argparse.Namespace, run: Run, records: list[sqlite3.Row], elapsed: float) -> int:
    import json

    unknown = [r["call_id"] for r in records if r["flow_version"] not in run.served]
    wrong_end = [
        r["call_id"] for r in records if r["end_node"] != "bye_" + r["flow_version"].split("+")[0]
    ]
    bad_outcome = [r["call_id"] for r in records if r["outcome"] != "self_service"]
    subs = {
        p.split(":", 1)[1].removeprefix("s_")
        for r in records
        for p in json.loads(r["path"])
        if p.startswith("sub:")
    }
    sub_labels = {v.split("+")[0] for v in run.sub_served}
    unknown_sub = sorted(subs - sub_labels)
    if len(records) != run.calls:
        run.failures.append(f"{run.calls} calls but {len(records)} records")
    reloads = [r for r in run.results if not r.initial]
    by_result = Counter(r.result for r in reloads)
    versions = Counter(r["flow_version"].split("+")[0] for r in records)
    print(
        f"callers: {args.callers}, prompt 0-{args.prompt_ms:g} ms, rewrites: {args.reloads} "
        f"every {args.interval_s:g} s, watcher poll {args.poll_s:g} s"
    )
    print(
        f"calls: {run.calls} in {elapsed:.1f} s ({run.calls / elapsed:.0f} calls/s); call "
        f"time p50 {1000 * pct(run.durations, 50):.0f} ms, p99 "
        f"{1000 * pct(run.durations, 99):.0f} ms, max {1000 * max(run.durations):.0f} ms"
    )
    print(
        f"reloads: {len(reloads)} (ok={by_result['ok']} partial={by_result['partial']} "
        f"error={by_result['error']}); POST answered p50 {1000 * pct(run.post_s, 50):.0f} ms"
        f" max {1000 * max(run.post_s, default=0):.0f} ms; watcher swap p50 "
        f"{1000 * pct(run.watch_s, 50):.0f} ms max {1000 * max(run.watch_s, default=0):.0f} ms"
    )
    print(f"broken rewrites that kept the previous version: {run.broken_kept}")
    print(
        f"versions served: {len(run.served)}; versions in records: {len(versions)} "
        f"({', '.join(f'{k}={v}' for k, v in sorted(versions.items(), key=_label))})"
    )
    print(f"unknown versions: {len(unknown) + len(unknown_sub)}")
    print(f"wrong end node for the version: {len(wrong_end)}")
    print(f"outcome not self_service: {len(bad_outcome)}")
    for call_id in (unknown + wrong_end + bad_outcome)[:10]:
        print(f"FAILED record {call_id}")
    for failure in run.failures[:10]:
        print(f"FAILED {failure}")
    total = len(run.failures) + len(unknown) + len(unknown_sub) + len(wrong_end) + len(bad_outcome)
    print(f"failures: {total}")
    return 1 if total or len(reloads) < args.reloads else 0


def _label(item: tuple[str, int]) -> int:
    return int(item[0].removeprefix("r") or 0)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--callers", type=int, default=100, help="concurrent callers")
    p.add_argument("--reloads", type=int, default=20, help="rewrites of the flows directory")
    p.add_argument("--interval-s", type=float, default=0.5, help="time between rewrites")
    p.add_argument("--poll-s", type=float, default=0.1, help="the watcher's poll interval")
    p.add_argument(
        "--prompt-ms", type=float, default=50.0, help="each prompt 'plays' a random 0..N ms"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--quick", action="store_true", help="smoke run: 20 callers, rewrites 0.1 s apart"
    )
    p.add_argument("--quiet", action="store_true", help="no server warnings on stderr")
    p.add_argument("--max-s", type=float, default=300.0, help="give up after this long")
    args = p.parse_args(argv)
    if args.quick:
        args.callers, args.interval_s, args.poll_s = 20, 0.1, 0.05
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(bench(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
