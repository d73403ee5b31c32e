"""``ivr test [PATH...]``: run flow tests, print failures and coverage, exit 1 on a failure."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from ivr.errors import IvrError
from ivr.flow.testcases_schema import cases_schema
from ivr.flowtests.junit import junit_xml
from ivr.flowtests.suite import SuiteRun, run_suite, suites_for
from ivr.runtime.flow_tests import CaseResult

__all__ = ["add_test_parser", "print_run"]


def add_test_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``ivr test`` (sets ``func``)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "test",
        help="run the flows' tests (flows/tests/<flow>.yaml) on the simulator, with coverage",
        description="Run flow tests in-process on the simulator (no Asterisk): each case is a "
        "caller journey and what must come out of it. Prints failures (the path as a diff) and "
        "per-flow coverage of nodes, exits and retries; exit 1 when a test fails.",
    )
    p.add_argument(
        "paths",
        nargs="*",
        default=["flows"],
        help="flows directories (their tests/), test files or flow files (default: flows)",
    )
    p.add_argument("--junit", metavar="FILE", help="also write the results as JUnit XML")
    p.add_argument(
        "--coverage-json",
        metavar="FILE",
        help="also write coverage as JSON (for ivr graph --coverage)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="name every case, passed ones too")
    p.add_argument(
        "--schema", action="store_true", help="print the test files' JSON Schema and exit"
    )
    p.set_defaults(func=_test_command)
    return p


def _test_command(args: argparse.Namespace) -> int:
    if args.schema:
        print(json.dumps(cases_schema(), indent=1, ensure_ascii=False))
        return 0
    runs = [run_suite(suite) for suite in suites_for(args.paths)]
    merged = SuiteRun()
    for run in runs:
        merged.results += run.results
        merged.errors += run.errors
        merged.seconds += run.seconds
        merged.coverage.flows.update(run.coverage.flows)
    print_run(merged, sys.stdout, verbose=args.verbose)
    if args.junit:
        _write(args.junit, junit_xml(merged.results, merged.errors))
    if args.coverage_json:
        _write(args.coverage_json, json.dumps(merged.coverage.to_dict(), indent=1) + "\n")
    return 0 if merged.ok else 1


def print_run(run: SuiteRun, out: TextIO, *, verbose: bool = False) -> None:
    """Errors, failed cases (passed ones too with ``verbose``), coverage, the totals."""
    for error in run.errors:
        print(f"ERROR {error}", file=out)
    for result in run.results:
        if not result.passed:
            _print_failure(result, out)
        elif verbose:
            print(f"ok    {result.flow}: {result.case.name}", file=out)
    if run.coverage.flows:
        print("\ncoverage (what no test walks is listed with its line):", file=out)
        tested = {r.flow for r in run.results} | {s.flow for r in run.results for s in r.steps}
        for name, cov in run.coverage.flows.items():
            if name in tested:
                print(cov.summary(), file=out)
            else:
                print(f"{name}: no tests ({cov.flow.file})", file=out)
    n, failed = len(run.results), len(run.failed)
    busy = sum(r.seconds for r in run.results)
    rate = f" ({n / busy:.0f} cases/s)" if busy > 0 else ""
    errors = f", {len(run.errors)} file error(s)" if run.errors else ""
    print(
        f"\n{n} cases, {n - failed} passed, {failed} failed{errors} in {run.seconds:.2f} s{rate}",
        file=out,
    )


def _print_failure(result: CaseResult, out: TextIO) -> None:
    case = result.case
    print(f"FAIL  {case.file}:{case.line}: {result.flow}: {case.name}", file=out)
    for problem in [result.error] if result.error else result.failures:
        print(f"  {problem}", file=out)
    if result.transcript:
        print("  the call:", file=out)
        for line in result.transcript:
            print(f"    | {line}", file=out)


def _write(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise IvrError(f"cannot write {path}: {exc.strerror or exc}") from None
