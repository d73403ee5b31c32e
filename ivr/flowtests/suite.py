"""A run of flow tests over one flows directory: its flows, its test files
(``<dir>/tests/<flow>.yaml``), every case's result and the coverage they add up to.

Used by ``ivr test`` (:mod:`ivr.flowtests.cli`) and by a reload that refuses flows whose
tests fail (:mod:`ivr.flowtests.gate`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ivr.engines.http import extract
from ivr.errors import FlowError, FlowErrors
from ivr.flow.coverage import Coverage
from ivr.flow.library import FLOW_SUFFIXES, load_library
from ivr.flow.model import Flow
from ivr.flow.testcases import TESTS_DIR, CaseFile, load_cases, test_files
from ivr.runtime.flow_tests import CaseResult, run_cases

__all__ = ["Suite", "SuiteRun", "run_suite", "suites_for"]


@dataclass(frozen=True)
class Suite:
    """What to run: a flows directory and which of its test files (None: all)."""

    flows_dir: Path
    files: tuple[Path, ...] | None = None


@dataclass
class SuiteRun:
    """The outcome: results by test file, errors of unreadable files, the coverage."""

    results: list[CaseResult] = field(default_factory=list)
    errors: list[FlowError] = field(default_factory=list)
    coverage: Coverage = field(default_factory=lambda: Coverage(()))
    seconds: float = 0.0

    @property
    def failed(self) -> list[CaseResult]:
        return [r for r in self.results if not r.passed]

    @property
    def ok(self) -> bool:
        return not self.errors and not self.failed


def suites_for(paths: list[str]) -> list[Suite]:
    """``ivr test`` arguments as suites: a flows directory (all its tests), a test file
    (``flows/tests/bank.yaml``) or a flow file (``flows/bank.yaml``: its tests)."""
    out: dict[Path, list[Path] | None] = {}
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out[p] = None
            continue
        if not p.exists():
            raise FlowErrors([FlowError("no such file or directory", file=raw)])
        if p.suffix not in FLOW_SUFFIXES:
            raise FlowErrors([FlowError("not a flow, test file or flows directory", file=raw)])
        flows_dir, test = (
            (p.parent.parent, p)
            if p.parent.name == TESTS_DIR
            else (p.parent, p.parent / TESTS_DIR / p.name)
        )
        chosen = out.setdefault(flows_dir, [])
        if chosen is not None:
            chosen.append(test)
    return [Suite(d, None if f is None else tuple(f)) for d, f in out.items()]


def run_suite(suite: Suite, *, now: float | None = None) -> SuiteRun:
    """Load the directory's flows and run the chosen tests (blocking; no event loop)."""
    began = time.perf_counter()
    library = load_library([suite.flows_dir], None)
    run = SuiteRun(errors=list(library.errors), coverage=Coverage(library.flows.values()))
    files = test_files(suite.flows_dir) if suite.files is None else list(suite.files)
    plans: list[tuple[Flow, CaseFile]] = []
    for file in files:
        if not file.exists():
            run.errors.append(FlowError(f"no tests for this flow (write {file})", file=str(file)))
            continue
        try:
            cases = load_cases(file)
        except FlowErrors as exc:
            run.errors += exc.errors
            continue
        flow = library.get(cases.flow)
        if flow is None:
            run.errors.append(_no_flow(cases, library.flows))
            continue
        plans.append((flow, cases))
    if suite.files is not None:  # only the flows asked about
        run.coverage = Coverage({flow.name: flow for flow, _ in plans}.values())
    run.results = asyncio.run(_run_all(plans, library.flows, now))
    for result in run.results:
        run.coverage.add(result.steps)
    run.seconds = time.perf_counter() - began
    return run


async def _run_all(
    plans: list[tuple[Flow, CaseFile]], flows: Mapping[str, Flow], now: float | None
) -> list[CaseResult]:
    out: list[CaseResult] = []
    for flow, cases in plans:
        out += await run_cases(flow, cases.cases, flows, extract=extract, now=now)
    return out


def _no_flow(cases: CaseFile, flows: Mapping[str, Flow]) -> FlowError:
    known = ", ".join(sorted(flows)) or "none"
    return FlowError(
        f"tests flow '{cases.flow}', which is not loaded (loaded: {known})", file=cases.file, line=1
    )
