"""Flow tests run on the simulator: each case is one call of :class:`CallRun` on a
:class:`ScriptedChannel` and a :class:`SimClock` (what ``ivr simulate`` runs, no Asterisk),
then its record and what the caller heard are held against the case's ``expect``.

The run is traced node by node (:class:`ivr.flow.coverage.Step`) for coverage. The file
format is :mod:`ivr.flow.testcases`; ``ivr test`` (:mod:`ivr.flowtests`) prints the results.
"""

from __future__ import annotations

import asyncio
import difflib
import itertools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from ivr.call.channel import CallInfo
from ivr.call.queue import QueueState
from ivr.call.record import CallRecord
from ivr.errors import IvrError
from ivr.flow import model as m
from ivr.flow.call_time import CallTimeError, call_time
from ivr.flow.coverage import Step
from ivr.flow.model_values import RETURN
from ivr.flow.queue_node import QueueNode
from ivr.flow.redact import CallLog
from ivr.flow.testcases import Expect, FlowCase
from ivr.runtime.flow_test_stubs import BOOKS_ALL, StubQueues
from ivr.runtime.interpreter import CallRun, Services
from ivr.runtime.sim import ScriptedChannel, SimClock, StubHttp, match_phrase, parse_tokens

__all__ = ["CaseResult", "run_cases", "run_flow_tests"]

Extract = Callable[[object, str], str]
_ids = itertools.count(1)
W = TypeVar("W")
G = TypeVar("G")


@dataclass
class CaseResult:
    """One case run: ``failures`` says what did not come out as expected (empty: passed);
    ``error``: the case could not run as written (a bad token or time)."""

    case: FlowCase
    flow: str
    failures: list[str] = field(default_factory=list)
    error: str = ""
    record: CallRecord | None = None
    transcript: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures and not self.error


class _Lines(logging.Handler):
    """Log records as ``log: WARNING ...`` lines of the case's transcript."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"log: {record.levelname} {record.getMessage()}")


class _TracedRun(CallRun):
    """A call that notes every node it walks (which way it left, what the caller gave)."""

    def __init__(self, flow: m.Flow, channel: ScriptedChannel, services: Services) -> None:
        super().__init__(flow, channel, services)
        # the call's log lines go to the case (shown when it fails), not the server's log
        logger = logging.Logger(f"ivr.flowtests.{channel.info.uniqueid}", logging.WARNING)
        logger.addHandler(_Lines(channel.transcript))
        self.log = CallLog(logger, channel.info.uniqueid, self.redact)
        self.steps: list[Step] = []
        self._calls: list[tuple[str, str, str]] = []  # (flow, call node, its next)

    async def _step(self, node: m.FlowNode) -> str:
        flow, seen = self.flow.name, len(self.record.inputs)
        hint = self._hint_before(node)
        target: str | None = None
        try:
            target = await super()._step(node)
            return target
        finally:
            if isinstance(node, QueueNode) and self.record.queue is not None:
                hint = self.record.queue.result
            if isinstance(node, m.SurveyNode) and self.record.survey is not None:
                # its two exits may share a target: the exit label says which way it went
                unanswered = self.record.survey.status == "no_answer"
                hint = "unanswered" if unanswered else "answered"
            inputs = tuple(
                (e.kind, _option(node, e.kind, e.value))
                for e in self.record.inputs[seen:]
                if e.node == node.id
            )
            self.steps.append(Step(flow, node.id, target, inputs, hint))
            if isinstance(node, m.CallNode) and target is not None:
                self._calls.append((flow, node.id, node.next))
            elif target == RETURN and self._calls:
                caller, call_node, after = self._calls.pop()
                self.steps.append(Step(caller, call_node, after, (), "return"))

    def _hint_before(self, node: m.FlowNode) -> str:
        try:
            if isinstance(node, m.BranchNode):
                env = self.expression_variables()
                hit = next((i for i, c in enumerate(node.cases) if c.condition.test(env)), None)
                return "else" if hit is None else f"case:{hit}"
            if isinstance(node, m.HoursNode):
                return node.hours.status(self.now())
            if isinstance(node, m.SplitNode):
                info = self.channel.info
                return node.pick(self.flow.name, info.caller_id, self.record.call_id).label
        except IvrError:  # the step itself fails the same way and says so
            return ""
        return ""


def _queue_state(spec: Mapping[str, float]) -> QueueState:
    return QueueState(
        logged_in=int(spec.get("logged_in", 1)),
        available=int(spec.get("available", 1)),
        callers=int(spec.get("callers", 0)),
        holdtime_s=spec.get("holdtime_s", 0.0),
        talktime_s=spec.get("talktime_s", 0.0),
    )


def _option(node: m.FlowNode, kind: str, value: str) -> str:
    """A menu input as the option key it chose (a spoken choice by its words)."""
    if isinstance(node, m.MenuNode) and kind == "speech":
        choices = tuple((k, o.words) for k, o in node.options.items() if o.words)
        return match_phrase(value, choices) or value
    return value


async def run_cases(
    flow: m.Flow,
    cases: Sequence[FlowCase],
    flows: Mapping[str, m.Flow],
    *,
    extract: Extract | None = None,
    now: float | None = None,
) -> list[CaseResult]:
    """Run ``cases`` on ``flow`` (``flows``: for its sub-flows); ``now`` is "today" for the
    relative ``at:`` forms (default: the time of the run)."""
    today = time.time() if now is None else now
    return [await _run_case(flow, case, flows, extract, today) for case in cases]


def run_flow_tests(
    flow: m.Flow,
    cases: Sequence[FlowCase],
    flows: Mapping[str, m.Flow],
    *,
    extract: Extract | None = None,
    now: float | None = None,
) -> list[CaseResult]:
    """:func:`run_cases` from code that has no event loop (a reload's worker thread)."""
    return asyncio.run(run_cases(flow, cases, flows, extract=extract, now=now))


async def _run_case(
    flow: m.Flow, case: FlowCase, flows: Mapping[str, m.Flow], extract: Extract | None, now: float
) -> CaseResult:
    result = CaseResult(case, flow.name)
    began = time.perf_counter()
    try:
        tokens = [t for tok in case.input for t in parse_tokens(tok)]
        start = call_time(case.at, flow, now) if case.at else now
    except (IvrError, CallTimeError) as exc:
        result.error = str(exc)
        return result
    clock = SimClock(start)
    info = CallInfo(
        uniqueid=f"test-{next(_ids)}", caller_id=case.caller, dnis=case.dnis, params=case.params
    )
    channel = ScriptedChannel(tokens, info=info, clock=clock)
    http = StubHttp(case.http, emit=channel.transcript.append)
    services = Services(
        http=http,
        flows=flows,
        clock=clock,
        extract=extract,
        recordings_dir="/simulated/recordings",
        queues=None if case.queue is None else StubQueues(_queue_state(case.queue)),
        outbound=BOOKS_ALL,
    )
    run = _TracedRun(flow, channel, services)
    record = await run.run()
    result.record, result.transcript, result.steps = record, channel.transcript, run.steps
    error = record.error or ""
    if error.startswith("SimulationInputError"):
        result.error = f"the caller's input does not fit the flow: {error.split(': ', 1)[-1]}"
    else:
        # the call's own log lines are in the transcript for the failure report, not heard
        heard = [line for line in channel.transcript if not line.startswith("log: ")]
        result.failures = check(case.expect, record, heard)
    result.seconds = time.perf_counter() - began
    return result


def check(expect: Expect, record: CallRecord, heard: list[str]) -> list[str]:
    """What did not come out as ``expect`` says, one message each (a path as a diff)."""
    out: list[str] = []
    path = list(record.path)
    if expect.path is not None and list(expect.path) != path:
        out.append("path differs (- expected, + actual):\n" + path_diff(list(expect.path), path))
    missing = _unmatched(list(expect.path_contains), path, lambda want, got: want == got)
    if missing is not None:
        out.append(f"path_contains: '{missing}' not found in order in the path {' > '.join(path)}")
    if expect.outcome is not None and expect.outcome != record.outcome:
        why = f" ({record.error})" if record.error else ""
        out.append(f"outcome: expected {expect.outcome}, got {record.outcome}{why}")
    if expect.end_node is not None and expect.end_node != record.end_node:
        out.append(f"end_node: expected {expect.end_node}, got {record.end_node}")
    final = {**record.variables, "language": record.language}  # the built-in one too
    for name, value in expect.variables.items():
        got = final.get(name)
        if got != value:
            shown = "not set" if got is None else repr(got)
            out.append(f"variable {name}: expected {value!r}, got {shown}")
    gap = _unmatched(list(expect.heard), heard, lambda want, line: want in line)
    if gap is not None:
        out.append(f"heard: '{gap}' not heard (in this order)")
    for text in expect.not_heard:
        line = next((x for x in heard if text in x), None)
        if line is not None:
            out.append(f"not_heard: '{text}' was heard: {line}")
    events = [{"node": e.node, "kind": e.kind, "value": e.value} for e in record.inputs]
    want_inputs = [dict(i) for i in expect.inputs]
    lost = _unmatched(want_inputs, events, lambda w, e: all(e.get(k) == v for k, v in w.items()))
    if lost is not None:
        out.append(f"inputs: no {lost} (in this order) among {events}")
    return out


def _unmatched(wanted: list[W], got: Sequence[G], matches: Callable[[W, G], bool]) -> W | None:
    """The first of ``wanted`` not found in ``got`` in order, or None when all are."""
    items = iter(got)
    for want in wanted:
        if not any(matches(want, item) for item in items):
            return want
    return None


def path_diff(expected: list[str], actual: list[str]) -> str:
    """The two paths as a diff, one node a line."""
    lines = difflib.ndiff(expected, actual)
    return "\n".join(f"    {line}" for line in lines if not line.startswith("?"))
