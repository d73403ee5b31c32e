# PYTHON_ARGCOMPLETE_OK (argcomplete completes `ivr` only when this marker is near the top)
"""The ``ivr`` command: serve, validate, simulate, schema, lab."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from ivr import __version__
from ivr.admin.flows_cli import add_flows_parser
from ivr.call.channel import CallInfo
from ivr.cli_complete import autocomplete
from ivr.cli_conventions import Parser, apply_conventions, missing_input
from ivr.clock import system_clock
from ivr.config import environment_warnings, load_settings
from ivr.errors import FlowErrors, IvrError, YamlRefused
from ivr.flow.diagnostics import FORMATS, ValidationReport
from ivr.flow.graph import add_graph_parser
from ivr.flow.library import load_library
from ivr.flow.source import safe_load
from ivr.flow.validate import flow_warnings
from ivr.flowtests.cli import add_test_parser
from ivr.lab.cli import DESCRIPTION as LAB_DESCRIPTION
from ivr.lab.cli import add_lab_commands
from ivr.logs import setup_logging
from ivr.outbound.cli import add_campaign_parser
from ivr.runtime.interpreter import CallRun, Services
from ivr.runtime.sim import ScriptedChannel, SimClock, StubHttp, parse_tokens
from ivr.speech.stt import add_stt_parser
from ivr.store.database import is_postgres


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ivr`` console script; returns the exit code."""
    parser = _parser()
    autocomplete(parser)  # answers the shell's TAB and exits, when the shell asked
    args = parser.parse_args(argv)
    missing = missing_input(args)
    if missing is not None:
        print(f"ivr: no such file: {missing}", file=sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except IvrError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:  # one the command found missing later than the check
        print(f"ivr: no such file: {exc.filename or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    p = Parser(prog="ivr", description="IVR application server for Asterisk.")
    p.add_argument("--version", action="version", version=f"ivr {__version__}")
    sub = p.add_subparsers(required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the FastAGI server")
    serve.add_argument("--config", help="YAML configuration file (IVR_* variables override it)")
    serve.set_defaults(func=_serve)

    val = sub.add_parser("validate", help="check flow files; exit 1 on any error")
    val.add_argument("paths", nargs="*", default=["flows"], help="flow files or directories")
    val.add_argument("--prompts", default="prompts", help="prompt files directory to check")
    val.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text: lines on stderr and a summary (default); json: one document with every "
        "diagnostic; github: ::error/::warning annotations for GitHub Actions",
    )
    val.set_defaults(func=_validate)

    sim = sub.add_parser("simulate", help="run a flow without Asterisk")
    sim.add_argument("flow", help="flow file (its directory provides sub-flows)")
    sim.add_argument(
        "--input",
        help='caller actions, e.g. "1,2,wait,12345678#,hangup"; '
        "without it, actions are read from the terminal",
    )
    sim.add_argument("--json", action="store_true", help="print the call record as JSON")
    sim.add_argument("--caller", default="5550100", help="caller id")
    sim.add_argument("--dnis", default="", help="dialled number")
    sim.add_argument("--at", help="call time, ISO 8601 (e.g. 2027-01-01T10:00+08:00)")
    sim.add_argument("--http-stub", help='YAML mapping "GET /path": reply for http nodes')
    sim.add_argument("--config", help="configuration file (for http.base_url)")
    sim.set_defaults(func=_simulate)

    prompts = sub.add_parser("prompts", help="render text prompts to audio")
    psub = prompts.add_subparsers(required=True, metavar="ACTION")
    build = psub.add_parser("build", help="render every missing text prompt of every flow")
    build.add_argument("--flows", default="flows", help="flow files or directory")
    build.add_argument("--prompts", default="prompts", help="where the audio goes")
    build.add_argument(
        "--remove-orphans", action="store_true", help="delete renderings that no flow uses any more"
    )
    build.set_defaults(func=_prompts_build)

    schema = sub.add_parser("schema", help="print the flow language's JSON Schema")
    schema.add_argument(
        "--write",
        metavar="DIR",
        type=Path,
        help="write it into the flows directory DIR as flow.schema.json (or to a .json file) "
        "and print the modeline for the top of each flow (default: print it)",
    )
    schema.set_defaults(func=_schema)

    lab = sub.add_parser(
        "lab", help="a local Asterisk for development (see ivr lab --help)",
        description=LAB_DESCRIPTION,
    )  # fmt: skip
    add_lab_commands(lab)
    lab.set_defaults(func=_lab)
    add_stt_parser(sub)
    add_graph_parser(sub)
    add_campaign_parser(sub)
    add_flows_parser(sub)
    add_test_parser(sub)

    rep = sub.add_parser("report", help="KPIs from the call records (see README)")
    rep.add_argument("--since", help="first day, YYYY-MM-DD or ISO date-time (in --tz)")
    rep.add_argument("--until", help="last day, included (YYYY-MM-DD), or an ISO date-time")
    rep.add_argument("--flow", help="only this flow")
    rep.add_argument("--tz", default="UTC", help="time zone of days and dates (default UTC)")
    rep.add_argument("--json", action="store_true", help="print the report as JSON")
    rep.add_argument("--config", help="configuration file (for store.path)")
    rep.add_argument("--db", help="call-record database (default: store.path of the config)")
    rep.add_argument(
        "--split",
        metavar="NODE",
        help="compare the branches of this split node instead (with --flow: of that flow)",
    )
    rep.set_defaults(func=_report)
    apply_conventions(p)
    return p


def _serve(args: argparse.Namespace) -> int:
    from ivr.app.server import serve

    settings = load_settings(args.config)
    setup_logging(settings.log_level, settings.log_format)
    for warning in environment_warnings():
        logging.getLogger("ivr.config").warning("%s", warning)
    asyncio.run(serve(settings))
    return 0


def _validate(args: argparse.Namespace) -> int:
    prompts = args.prompts if Path(args.prompts).is_dir() else None
    lib = load_library(args.paths, prompts)
    now = system_clock()
    warnings = [w for flow in lib.flows.values() for w in flow_warnings(flow, now)]
    report = ValidationReport(args.paths, len(lib.flows), lib.errors, warnings)
    return report.write(args.format, sys.stdout, sys.stderr)


def _simulate(args: argparse.Namespace) -> int:
    path = Path(args.flow)
    lib = load_library([path.parent], None)
    flow = lib.get(path.stem)
    if flow is None:
        errors = [e for e in lib.errors if Path(e.file) == path] or lib.errors
        raise FlowErrors(errors) if errors else IvrError(f"{path}: not a flow file")
    out = sys.stderr if args.json else sys.stdout
    start = datetime.fromisoformat(args.at).timestamp() if args.at else system_clock()
    clock = SimClock(start)
    interactive = args.input is None
    channel = ScriptedChannel(
        parse_tokens(args.input or ""),
        info=CallInfo(uniqueid=f"sim-{int(start)}", caller_id=args.caller, dnis=args.dnis),
        clock=clock,
        ask=_ask if interactive else None,
        emit=lambda line: print(f"  {line}", file=out),
    )
    http: Any = None
    if args.http_stub:
        http = StubHttp(_read_stub(args.http_stub), emit=lambda line: print(f"  {line}", file=out))
    elif args.config:
        http = _real_http(args.config)
    from ivr.engines.http import extract

    # a queue's record: asks for consent and shows the MixMonitor it would start (no file)
    recordings = "/simulated/recordings"
    services = Services(
        http=http, flows=lib.flows, clock=clock, extract=extract, recordings_dir=recordings
    )
    record = asyncio.run(_run_simulation(CallRun(flow, channel, services), http))
    if args.json:
        print(json.dumps(record.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(
            f"outcome: {record.outcome} at '{record.end_node}' (path: {' > '.join(record.path)})",
            file=out,
        )
    return 0


async def _run_simulation(run: CallRun, http: Any) -> Any:
    if hasattr(http, "start"):
        await http.start()
    try:
        return await run.run()
    finally:
        if hasattr(http, "close"):
            await http.close()


def _ask() -> str | None:
    try:
        return input("caller> (digits, wait, hangup) ")
    except EOFError:
        return None


def _read_stub(path: str) -> dict[str, Any]:
    try:
        data = safe_load(Path(path).read_text(encoding="utf-8"), "HTTP stub files") or {}
    except YamlRefused as exc:
        raise IvrError(exc.at(path)) from None
    except (OSError, yaml.YAMLError) as exc:
        raise IvrError(f"{path}: cannot read the HTTP stub file: {exc}") from None
    if not isinstance(data, dict):
        raise IvrError(f'{path}: write a mapping like "GET /accounts/1/balance": {{...}}')
    return data


def _real_http(config: str) -> Any:
    from ivr.engines.http import HttpLookup

    s = load_settings(config)
    if not s.http.base_url:
        return None
    secret = s.http.secret.reveal() if s.http.secret else None
    return HttpLookup(s.http.base_url, secret=secret, timeout_s=s.http.timeout_s)


def _prompts_build(args: argparse.Namespace) -> int:
    from ivr.prompts.tts import Pyttsx3Engine, build_prompts

    lib = load_library([args.flows], None)
    for error in lib.errors:
        print(error, file=sys.stderr)
    report = build_prompts(
        lib.flows.values(),
        args.prompts,
        Pyttsx3Engine(),
        remove_orphans=args.remove_orphans,
        progress=_progress_bar,
    )
    for name, reason in report.failed.items():
        print(f"{name}: {reason}", file=sys.stderr)
    print(
        f"{len(report.rendered)} rendered, {report.skipped} already there, "
        f"{len(report.removed)} orphans removed, {len(report.failed)} failed"
    )
    return 1 if report.failed or lib.errors else 0


def _progress_bar(done: int, total: int, text: str) -> None:
    width = 30
    filled = width * done // total
    line = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {text[:40]}"
    end = "\n" if done == total else ""
    if sys.stderr.isatty():
        print(f"\r{line:<90}", end=end, file=sys.stderr, flush=True)
    elif done == total or done % 10 == 0:
        print(line, file=sys.stderr)


def _schema(args: argparse.Namespace) -> int:
    from ivr.flow.schema_file import modeline, schema_text, write_schema

    if args.write is None:
        print(schema_text(), end="")
        return 0
    written = write_schema(args.write)
    print(f"wrote {written}; put this line at the top of each flow next to it:")
    print(modeline(written))
    return 0


def _lab(args: argparse.Namespace) -> int:
    from ivr.lab.cli import run

    return run(args)


REPORT_PAGE = 5000  # records per read of the store in ``ivr report``


def _report(args: argparse.Namespace) -> int:
    from ivr.reporting.kpi import format_report, parse_bound, report, time_zone

    store = load_settings(args.config).store
    db, password = (args.db, None) if args.db else (store.target, store.revealed_password())
    if not is_postgres(db) and not Path(db).is_file():  # open() would create an empty one
        raise IvrError(
            f"no such file: {db} (no call-record database there: use --db, or store.path in "
            "--config)"
        )
    try:
        time_zone(args.tz)
        since = parse_bound(args.since, args.tz) if args.since else None
        until = parse_bound(args.until, args.tz, end=True) if args.until else None
    except ValueError as exc:
        raise IvrError(str(exc)) from None
    if since is not None and until is not None and since >= until:
        raise IvrError(f"--since {args.since} is not before the end of --until {args.until}")
    records = asyncio.run(_read_records(db, password, args.flow, since, until))
    if args.split:
        from ivr.reporting.split import format_split, split_report

        data = split_report(records, args.split)
        print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else format_split(data))
        return 0
    data = report(records, tz=args.tz)
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else format_report(data))
    return 0


async def _read_records(
    db: str, password: str | None, flow: str | None, since: float | None, until: float | None
) -> list[Any]:
    """Every record in the range, read newest first in pages of :data:`REPORT_PAGE`.

    Pages overlap by one instant (``until`` is exclusive) and repeated ids are dropped, so
    calls sharing a ``started_at`` across a page boundary are neither lost nor counted twice.
    """
    import math

    from ivr.store.records import RecordStore

    records: list[Any] = []
    seen: set[str] = set()
    limit, upper = REPORT_PAGE, until
    async with await RecordStore.open(db, password=password) as store:
        while True:
            page = await store.recent(limit=limit, flow=flow, since=since, until=upper)
            fresh = [r for r in page if r.call_id not in seen]
            records += fresh
            seen.update(r.call_id for r in fresh)
            if len(page) < limit:
                return records
            if fresh:
                upper = math.nextafter(page[-1].started_at, math.inf)
            else:  # a whole page of one instant, all seen already: read more at once
                limit *= 2


if __name__ == "__main__":
    sys.exit(main())
