"""``ivr campaign start|pause|resume|status``: manage outbound campaigns
(see ivr.outbound.campaigns);
``ivr campaign jobs``: every outbound call (callbacks and surveys too), e.g. the held ones;
``ivr campaign release``: held calls back to pending once their flow is back."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from ivr.call.record import mask_caller
from ivr.config import load_settings
from ivr.errors import CampaignError
from ivr.flow.library import load_library
from ivr.outbound.campaigns import Campaigns, Settings, read_list
from ivr.outbound.jobs import Outbound
from ivr.store.database import is_postgres
from ivr.store.outbound import Job
from ivr.store.records import RecordStore


def add_campaign_parser(subparsers: Any) -> None:
    """Register ``campaign`` on the ``ivr`` sub-parsers."""
    p = subparsers.add_parser("campaign", help="outbound campaigns placed by ivr serve")
    sub = p.add_subparsers(dest="action", required=True)
    start = sub.add_parser("start", help="add a CSV call list (column 'number') to a campaign")
    start.add_argument("file", help="CSV with a header line; 'number' plus any columns")
    start.add_argument("--flow", required=True, help="the flow callers hear when they answer")
    start.add_argument("--name", help="campaign name (default: the file name)")
    start.add_argument(
        "--dial",
        default="PJSIP/{number}@trunk",
        help="channel to dial, with {number} (default PJSIP/{number}@trunk)",
    )
    start.add_argument("--rate", type=float, default=1.0, help="calls started per second")
    start.add_argument(
        "--max-concurrent", type=int, default=2, help="the campaign's calls up at once"
    )
    start.add_argument(
        "--hours",
        action="append",
        metavar="DAYS=HH:MM-HH:MM",
        help="calling hours, e.g. mon-fri=09:00-20:00 (repeat); default: any",
    )
    start.add_argument("--timezone", default="UTC", help="time zone of --hours")
    start.add_argument("--attempts", type=int, default=2, help="calls at most per number")
    start.add_argument(
        "--retry-after-s", type=float, default=600, help="seconds before a number is tried again"
    )
    start.add_argument("--caller-id", default="", help="caller id number shown to the callee")
    for name in ("pause", "resume", "status"):
        q = sub.add_parser(name, help=f"{name} a campaign")
        q.add_argument("name", help="the campaign's name")
        if name == "status":
            q.add_argument("--json", action="store_true", help="print the status as JSON")
    jobs = sub.add_parser("jobs", help="outbound calls: callbacks, surveys, campaign calls")
    jobs.add_argument("--status", choices=STATUSES, help="only these (e.g. held)")
    jobs.add_argument("--json", action="store_true", help="print the jobs as JSON")
    release = sub.add_parser(
        "release",
        help="held calls back to pending, due now (once "
        "their flow is back): a campaign's, or jobs by id",
    )
    release.add_argument("name", nargs="?", help="the campaign whose held calls to release")
    release.add_argument(
        "--job",
        type=int,
        action="append",
        default=[],
        metavar="ID",
        help="a held job, as ivr campaign jobs lists it (repeat)",
    )
    for q in sub.choices.values():  # start, pause, resume, status, jobs, release
        q.add_argument("--config", help="configuration file (flows_dir, store.path)")
        q.add_argument("--db", help="database of ivr serve (default: store.path)")
    p.set_defaults(func=_campaign)


STATUSES = ("pending", "dialing", "answered", "done", "failed", "held")


def _campaign(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    s = settings.store
    db, password = (args.db, None) if args.db else (s.target, s.revealed_password())
    if args.action != "start" and not is_postgres(db) and not Path(db).is_file():
        raise CampaignError(f"{db}: no database there (use --db, or store.path in --config)")
    store = await RecordStore.open(db, password=password)
    try:
        campaigns = Campaigns(store)
        if args.action == "start":
            return await _start(args, campaigns, settings.flows_dir)
        if args.action == "jobs":
            _print_jobs(await Outbound(store).jobs(args.status), args.json)
            return 0
        if args.action == "release":
            print(await _release(args, Outbound(store)))
            return 0
        if args.action in ("pause", "resume"):
            await campaigns.set_state(args.name, "paused" if args.action == "pause" else "active")
            print(f"campaign {args.name}: {'paused' if args.action == 'pause' else 'active'}")
            return 0
        status = await campaigns.status(args.name)
        if args.json:
            print(json.dumps(status, indent=2))
        else:
            print(
                f"campaign {status['name']} ({status['state']}), flow {status['flow']}, "
                f"{status['numbers']} numbers"
            )
            for key in ("by_status", "results"):
                for what, n in sorted(status[key].items()):
                    print(f"  {what:<12} {n}")
            print(f"  interested   {status['interested']}")
        return 0
    finally:
        await store.close()


async def _start(args: argparse.Namespace, campaigns: Campaigns, flows_dir: str) -> int:
    library = load_library([flows_dir])
    if args.flow not in library.flows:
        raise CampaignError(
            f"flow {args.flow!r} is not among the loadable flows in "
            f"{flows_dir} ({', '.join(sorted(library.flows)) or 'none'})"
        )
    hours = None
    if args.hours:
        hours = {}
        for item in args.hours:
            days, sep, window = item.partition("=")
            if not sep:
                raise CampaignError(f"--hours {item!r}: write DAYS=HH:MM-HH:MM")
            hours[days.strip()] = window.strip()
    calls = read_list(args.file)
    name = args.name or Path(args.file).stem
    added = await campaigns.start(
        Settings(
            name=name,
            flow=args.flow,
            dial=args.dial,
            rate=args.rate,
            max_concurrent=args.max_concurrent,
            hours=hours,
            timezone=args.timezone,
            attempts=args.attempts,
            retry_after_s=args.retry_after_s,
            caller_id=args.caller_id,
        ),
        calls,
    )
    for problem in calls.rejected:
        print(f"skipped {problem}")
    print(
        f"campaign {name}: {added} numbers added ({len(calls.rows) - added} already in it, "
        f"{calls.duplicates} repeated in the file, {len(calls.rejected)} rejected); "
        "ivr serve places the calls"
    )
    return 0


async def _release(args: argparse.Namespace, outbound: Outbound) -> str:
    """Release a campaign's held calls or the ``--job`` ids; what was done."""
    if bool(args.name) == bool(args.job):
        raise CampaignError("release: give a campaign name or --job ID, not both")
    if args.job:
        n = await outbound.release_jobs(args.job)
        others = "" if n == len(args.job) else " (the others are not held)"
        return f"{n} of {len(args.job)} jobs back to pending, due now{others}"
    if args.name not in await outbound.campaigns():
        raise CampaignError(f"no campaign named {args.name!r}")
    n = await outbound.release_campaign(args.name)
    return f"campaign {args.name}: {n} held calls back to pending, due now"


def _print_jobs(jobs: list[Job], as_json: bool) -> None:
    """One line per job (numbers masked); a held job says why it is held."""
    if as_json:
        print(json.dumps([_job_fields(j) for j in jobs], indent=2))
        return
    print(
        f"{'id':>6}  {'kind':<8} {'status':<8} {'call':<24} {'flow/target':<24} "
        f"{'number':<8} tries  result / reason"
    )
    for j in jobs:
        print(
            f"{j.id:>6}  {j.kind:<8} {j.status:<8} {j.call_id:<24} "
            f"{j.flow + '/' + j.target:<24} {mask_caller(j.number):<8} {j.attempts:>5}  "
            f"{j.reason or j.last_result}"
        )


def _job_fields(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "call_id": job.call_id,
        "flow": job.flow,
        "target": job.target,
        "number": mask_caller(job.number),
        "attempts": job.attempts,
        "result": job.last_result,
        "reason": job.reason,
    }
