"""The flow interpreter: walks a :class:`Flow` on a :class:`Channel` and fills a call record.

It knows no sockets: the same code runs under Asterisk, under ``ivr simulate`` and in tests.
Whatever happens (hang-up at any step, a failing lookup, a bug), :meth:`CallRun.run` returns a
complete :class:`CallRecord`. The bigger steps live beside it and see the call through
:class:`ivr.runtime.context.CallContext`: menus and digit collection (:mod:`.inputs`), queues
(:mod:`.queueing`), surveys (:mod:`.survey`).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import assert_never
from zoneinfo import ZoneInfo

from ivr.call.channel import Channel, Prompt
from ivr.call.record import MASK, CallRecord, InputEvent, Outcome
from ivr.call.resume import ResumePoint
from ivr.errors import CallHangup, ExpressionError, HttpLookupError, IvrError
from ivr.flow import model as m
from ivr.flow.model_values import (
    BUILTIN_VARIABLES,
    HANGUP,
    RETURN,
    PromptSpec,
    Speech,
    SurveySpec,
)
from ivr.flow.node import Node
from ivr.flow.queue_node import QueueNode
from ivr.flow.record_node import RecordNode
from ivr.flow.redact import CallLog, redact, sensitive_values
from ivr.runtime.context import HttpPort, Services
from ivr.runtime.inputs import run_collect, run_menu
from ivr.runtime.queueing import run_queue
from ivr.runtime.record import run_record
from ivr.runtime.speak import set_language, speak, to_prompt
from ivr.runtime.survey import run_survey, run_survey_node

__all__ = ["CallRun", "HttpPort", "Services"]

log = logging.getLogger("ivr.call")

MAX_SUBFLOW_DEPTH = 8
MAX_STEPS_WITHOUT_INPUT = 200  # the validator rejects such loops; this guards the rest
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Stop(Exception):
    """Internal: the flow reached its end with this outcome."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome


class CallRun:
    """One call walking one flow. Create, then ``await run()``."""

    def __init__(
        self,
        flow: m.Flow,
        channel: Channel,
        services: Services | None = None,
        record: CallRecord | None = None,
    ) -> None:
        self.flow = flow
        self.channel = channel
        self.services = services or Services()
        info = channel.info
        self.record = record or CallRecord(
            call_id=info.uniqueid,
            flow=flow.name,
            flow_version=flow.version,
            caller=info.caller_id,
            dnis=info.dnis,
            started_at=self.services.clock(),
        )
        self.vars: dict[str, str] = {
            **flow.variables,
            **{k: v for k, v in info.params.items() if k.isidentifier()},
            "caller_id": info.caller_id,
            "caller_name": info.caller_name,
            "dnis": info.dnis,
            "uniqueid": info.uniqueid,
            "channel": info.channel,
            "flow": flow.name,
            "language": flow.language,
        }
        self.sensitive = set(flow.sensitive)
        self.stack: list[tuple[m.Flow, str]] = []  # sub-flow return points
        self.menus: list[str] = []  # menu history, for "back"
        self.served = False
        self.agent_reached = False  # an agent answered: the call counts as transferred
        # The CHANNEL(language) Asterisk has: the call came in with it (agi_language), so a
        # flow in that language sets nothing (one AGI round trip less per call).
        self._told_language = info.language
        self.node: m.FlowNode | None = None
        self.log = CallLog(log, info.uniqueid, self.redact)  # no sensitive value in a line

    # --- the loop ----------------------------------------------------------------------

    async def run(self, start: str | None = None) -> CallRecord:
        """Run the call to its end and return the finished record (never raises).

        ``start`` begins at another node than the flow's start (a callback's queue node)."""
        rec = self.record
        outcome: Outcome = "error"
        try:
            await self.channel.answer()
            if self.vars.get("language", "") != self._told_language:
                await self._tell_language()
            await self._walk(start or self.flow.start)
        except _Stop as stop:
            outcome = stop.outcome
        except CallHangup:
            outcome = "self_service" if self.served else "abandoned"
        except Exception as exc:  # a bug or a failing service must still leave a record
            rec.error = self.redact(f"{type(exc).__name__}: {exc}")
            level = logging.ERROR if isinstance(exc, IvrError) else logging.CRITICAL
            self.log.log(
                level,
                "call failed at %s: %s",
                rec.end_node,
                rec.error,
                exc_info=not isinstance(exc, IvrError),
            )
        outcome = self._agent_outcome(outcome)
        if outcome in ("self_service", "failed_in_ivr", "transferred"):
            await self._hangup_quietly()  # on error the channel stays up for the dialplan
        rec.outcome = outcome
        rec.ended_at = self.services.clock()
        rec.language = self.vars.get("language", "")
        rec.variables = self.public_variables()
        return rec

    def _ended(self) -> Outcome:
        """The flow ended the call: ``self_service`` once the caller reached a ``served``
        node, else ``failed_in_ivr`` (menus failed, a closed line, a lookup that failed...)."""
        return "self_service" if self.served else "failed_in_ivr"

    def _agent_outcome(self, outcome: Outcome) -> Outcome:
        """A caller who asked for an agent was not self-served: ``transferred`` when an agent
        answered (or a callback was booked), else ``abandoned`` (nobody could take it)."""
        visit = self.record.queue
        if outcome not in ("self_service", "failed_in_ivr", "abandoned") or visit is None:
            return outcome
        if self.agent_reached or visit.result == "callback":
            return "transferred"
        return "abandoned"

    async def _walk(self, target: str) -> None:
        idle_steps = 0
        while True:
            if target == HANGUP:
                raise _Stop(self._ended())
            if target == RETURN:
                if not self.stack:
                    raise _Stop(self._ended())
                self.flow, target = self.stack.pop()
                continue
            node = self.flow.nodes[target]
            self.node = node
            self.record.path.append(node.id if not self.stack else f"{self.flow.name}:{node.id}")
            self.record.path_at.append(round(self.services.clock() - self.record.started_at, 3))
            self.record.end_node = self.record.path[-1]
            waits = isinstance(node, m.MenuNode | m.CollectNode)
            idle_steps = 0 if waits else idle_steps + 1
            if waits and self.services.checkpoint is not None:
                self.services.checkpoint(self.record, self.resume_point(node.id))
            if idle_steps > MAX_STEPS_WITHOUT_INPUT:
                raise IvrError(f"{idle_steps} steps without waiting for the caller: a loop")
            if self.vars.get("language", "") != self._told_language:  # a menu changed it
                await self._tell_language()
            flow, started = self.flow.name, time.monotonic()
            try:
                target = await self._step(node)
            finally:
                self._node_done(flow, node, time.monotonic() - started)

    async def _tell_language(self) -> None:
        """``CHANNEL(language)`` follows the call's language, so Asterisk's own sounds and the
        dialplan's fallback (its apology) speak it too."""
        language = self.vars.get("language", "")
        if language:
            await set_language(self.channel, language)
        self._told_language = language

    def _node_done(self, flow: str, node: m.FlowNode, seconds: float) -> None:
        if self.services.on_node is None:
            return
        try:
            self.services.on_node(flow, type(node).__name__.removesuffix("Node").lower(), seconds)
        except Exception:  # metrics must never cost a call
            self.log.exception("on_node hook failed")

    async def _step(self, node: m.FlowNode) -> str:
        """Run one node; where to go next. Each node kind of ``m.FlowNode`` has its case."""
        match node:
            case m.PlayNode():
                await self.say([node.prompt], "0123456789*#" if node.barge_in else "")
                self.served = self.served or node.served
                return node.next
            case m.MenuNode():
                return await run_menu(self, node, self.menus)
            case m.CollectNode():
                return await run_collect(self, node)
            case m.SetNode():
                for name, tpl in node.assign.items():
                    self.vars[name] = tpl.render(self.vars)
                return node.next
            case m.BranchNode():
                env = self.expression_variables()
                for case in node.cases:
                    if case.condition.test(env):
                        return case.target
                return node.otherwise
            case m.GotoNode():
                return node.target
            case m.CallNode():
                return self._enter_subflow(node)
            case m.HoursNode():
                status = node.hours.status(self.now())
                return {"open": node.when_open, "holiday": node.when_holiday}.get(
                    status, node.when_closed
                )
            case m.SplitNode():
                info = self.channel.info
                branch = node.pick(self.flow.name, info.caller_id, self.record.call_id)
                self.note_input(node, "split", branch.label)
                return branch.target
            case m.HttpNode():
                return await self._http(node)
            case m.TransferNode():
                return await self._transfer(node)
            case QueueNode():
                return await run_queue(self, node)
            case m.SurveyNode():
                return await run_survey_node(self, node)
            case RecordNode():
                return await run_record(self, node)
            case m.HangupNode():
                raise _Stop(node.outcome or self._ended())
            case _:  # mypy: a node kind of the model without its step here
                assert_never(node)

    # --- helpers -------------------------------------------------------------------------

    async def run_survey(self, spec: SurveySpec, mode: str) -> None:
        await run_survey(self, spec, mode)

    def can_hear(self) -> bool:
        """Speech input works in the call's current language."""
        hearable = self.services.speech_languages
        return hearable is None or self.vars["language"] in hearable

    def prompts_for(self, specs: list[PromptSpec | None]) -> list[Prompt]:
        """The streamable parts of prompts in the call's language (speech listening)."""
        language = self.vars["language"]
        parts = [p for spec in specs if spec is not None for p in spec.parts(language)]
        return [to_prompt(p) for p in parts if isinstance(p, Speech)]

    async def say(self, prompts: list[PromptSpec | None], escape: str = "") -> str:
        present = [p for p in prompts if p is not None]
        return await speak(self.channel, present, self.vars, self.vars["language"], escape)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.services.clock(), ZoneInfo(self.flow.timezone))

    def expression_variables(self) -> dict[str, str | int]:
        now = self.now()
        return {
            **self.vars,
            "time": now.strftime("%H:%M"),
            "hour": now.hour,
            "minute": now.minute,
            "weekday": WEEKDAYS[now.weekday()],
            "date": now.date().isoformat(),
        }

    def public_variables(self) -> dict[str, str]:
        """Flow variables safe to store: sensitive ones masked (and a sensitive value inside
        another, e.g. echoed by a lookup), per-call built-ins left out."""
        return {
            k: (MASK if k in self.sensitive else self.redact(v))
            for k, v in self.vars.items()
            if k not in BUILTIN_VARIABLES
        }

    def resume_point(self, node: str) -> ResumePoint:
        """Where another node can take this call up, at ``node`` of the current flow
        (sensitive variables left out: they are never stored)."""
        return ResumePoint(
            flow=self.flow.name,
            node=node,
            stack=tuple((flow.name, target) for flow, target in self.stack),
            variables={
                k: self.redact(v)
                for k, v in self.vars.items()
                if k not in BUILTIN_VARIABLES and k not in self.sensitive
            },
            language=self.vars.get("language", ""),
            menus=tuple(self.menus),
            served=self.served,
            agent_reached=self.agent_reached,
        )

    def resume(self, point: ResumePoint) -> str:
        """Take the call up where another node left it (``point``); the node to start at
        (give it to :meth:`run`). An :class:`IvrError` when the flows loaded here cannot
        (a flow or node that is gone since): the call then goes back to the dialplan."""
        flows = {self.flow.name: self.flow, **self.services.flows}
        try:
            stack = [(flows[name], target) for name, target in point.stack]
            current = flows[point.flow]
        except KeyError as exc:
            raise IvrError(f"flow {exc} is not loaded") from None
        for flow, target in [*stack, (current, point.node)]:
            if target not in flow.nodes and target not in (HANGUP, RETURN):
                raise IvrError(f"flow {flow.name!r} has no node {target!r}")
        self.flow, self.stack = current, stack
        for flow, _ in stack:
            self.sensitive |= flow.sensitive
        self.sensitive |= current.sensitive
        self.vars.update(point.variables)
        if point.language:
            self.vars["language"] = point.language
        self.menus = list(point.menus)
        self.served, self.agent_reached = point.served, point.agent_reached
        return point.node

    def redact(self, text: str) -> str:
        """``text`` with the values of sensitive variables masked (for logs and errors)."""
        return redact(text, sensitive_values(self.sensitive, self.vars))

    def note_input(self, node: Node, kind: str, value: str, sensitive: bool = False) -> None:
        at = self.services.clock() - self.record.started_at
        shown = MASK if sensitive and value else self.redact(value)
        self.record.inputs.append(InputEvent(node=node.id, kind=kind, value=shown, at_s=at))
        self.log.info("%s at %s: %s", kind, node.id, shown)

    async def _hangup_quietly(self) -> None:
        try:
            await self.channel.hangup()
        except CallHangup:
            pass
        except IvrError as exc:
            self.log.warning("hangup failed: %s", exc)

    # --- node kinds ----------------------------------------------------------------------

    def _enter_subflow(self, node: m.CallNode) -> str:
        sub = self.services.flows.get(node.flow)
        if sub is None:
            raise IvrError(f"sub-flow '{node.flow}' is not loaded")
        if len(self.stack) >= MAX_SUBFLOW_DEPTH:
            raise IvrError(f"sub-flows nested deeper than {MAX_SUBFLOW_DEPTH}")
        self.stack.append((self.flow, node.next))
        self.flow = sub
        self.sensitive |= sub.sensitive
        for name, value in sub.variables.items():
            self.vars.setdefault(name, value)
        return sub.start

    async def _http(self, node: m.HttpNode) -> str:
        http, extract = self.services.http, self.services.extract
        if http is None or extract is None:
            self.log.error("http node %s: no HTTP client configured (http.base_url)", node.id)
            return node.on_error
        url = ""
        try:
            url = node.path.render(self.vars, url=True)
            reply = await http.request(
                node.method,
                url,
                json_body={k: t.render(self.vars) for k, t in node.body.items()} or None,
                timeout_s=node.timeout_s,
                call_id=self.record.call_id,
            )
            saved = {var: extract(reply, path) for var, path in node.save.items()}
        except (HttpLookupError, ExpressionError) as exc:  # the lookup, or a value for the URL
            # the error quotes the URL asked for: shown as the flow wrote it, no caller input
            shown = str(exc).replace(url, node.path.source) if url else str(exc)
            self.log.warning("http node %s failed: %s", node.id, shown)
            return node.on_error
        self.vars.update(saved)
        return node.next

    async def _transfer(self, node: m.TransferNode) -> str:
        await self.channel.exec("Dial", f"{node.to},{node.timeout_s}")
        status = await self.channel.get_variable("DIALSTATUS") or ""
        self.log.info("transfer to %s: %s", node.to, status)
        if status == "ANSWER":
            self.record.transfer_target = node.to
            raise _Stop("transferred")
        return node.on_fail
