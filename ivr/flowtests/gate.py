"""A reload that refuses flows whose tests fail (setting ``flows_require_tests``).

:func:`refuse_failing` runs on the library a reload has just loaded, in its worker thread:
each flow with a test file (``<flows_dir>/tests/<flow>.yaml``) runs its cases, and a flow
whose file cannot be read or whose cases fail leaves the library with an error on its file.
The registry then treats it as a file with errors: its previous version keeps serving (a new
flow stays out), and the error says which case failed and how. Flows without tests load.
"""

from __future__ import annotations

from pathlib import Path

from ivr.engines.http import extract
from ivr.errors import FlowError, FlowErrors
from ivr.flow.library import FlowLibrary
from ivr.flow.model import Flow
from ivr.flow.testcases import load_cases, test_files
from ivr.runtime.flow_tests import run_flow_tests

__all__ = ["refuse_failing"]

SHOWN = 3  # failed cases named in a refusal


def refuse_failing(library: FlowLibrary, flows_dir: str | Path) -> FlowLibrary:
    """``library`` without the flows whose tests fail, their refusals among its errors
    (blocking: call it from a worker thread, as the registry's reload does)."""
    refusals: dict[str, FlowError] = {}  # by flow name
    for file in test_files(flows_dir):
        try:
            cases = load_cases(file)
        except FlowErrors as exc:
            flow = library.get(file.stem)
            if flow is not None:
                first = exc.errors[0]
                refusals[flow.name] = _refusal(flow, f"its tests cannot run: {first}")
            continue
        flow = library.get(cases.flow)
        if flow is None:
            continue
        failed = [
            r
            for r in run_flow_tests(flow, cases.cases, library.flows, extract=extract)
            if not r.passed
        ]
        if failed:
            named = "; ".join(
                f"{r.case.file}:{r.case.line} '{r.case.name}': "
                + (r.error or r.failures[0]).splitlines()[0]
                for r in failed[:SHOWN]
            )
            more = f" (and {len(failed) - SHOWN} more)" if len(failed) > SHOWN else ""
            message = f"{len(failed)} of {len(cases.cases)} tests fail: {named}{more}"
            refusals[flow.name] = _refusal(flow, message)
    if not refusals:
        return library
    return FlowLibrary(
        flows={n: f for n, f in library.flows.items() if n not in refusals},
        errors=[*library.errors, *refusals.values()],
    )


def _refusal(flow: Flow, message: str) -> FlowError:
    text = f"flow '{flow.name}' refused (flows_require_tests): {message}"
    return FlowError(text, file=flow.file, line=1)
