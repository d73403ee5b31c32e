"""What the server does with each FastAGI call: :class:`Calls` picks its flow, runs it and
stores its record (:class:`Writes`: after the call, so the caller never waits for the disk),
then :func:`hand_back` tells the dialplan how it ended; and FastAGI's health
(:func:`agi_health`)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, replace

from ivr.admin.console import LiveCalls
from ivr.asterisk.agi.channel import AgiChannel, CallLogger, call_logger
from ivr.asterisk.agi.environment import AgiEnvironment
from ivr.asterisk.agi.server import AgiServer
from ivr.asterisk.ami.boxes import AmiBoxes
from ivr.call.channel import Heard, ListenRequest, readable
from ivr.call.events import EventSink, call_ended
from ivr.call.record import CallRecord
from ivr.clock import Clock
from ivr.errors import AgiError, CallHangup, IvrError, StoreError
from ivr.flow.model import Flow
from ivr.flow.registry import FlowRegistry
from ivr.health import Health
from ivr.outbound.answer import run_job
from ivr.outbound.jobs import Outbound
from ivr.runtime.interpreter import CallRun, Services
from ivr.store.records import RecordStore

log = logging.getLogger("ivr.app")


def _log(call_id: str) -> CallLogger:
    """``ivr.app``'s lines about one call: its id goes in the line's call field (``[id]`` in
    text, ``call_id`` in JSON), not in the words."""
    return call_logger(readable(call_id), log)


# Set on the channel as the server hands it back: "done" when the flow has finished with the
# call. Anything else, or nothing at all (a crash, a kill, a deploy, a full server), sends the
# caller to the dialplan's fallback (an apology and a queue) instead of a silent hang-up.
RESULT_VARIABLE = "IVR_RESULT"
DONE = "done"
STOPPED_ERROR = "server stopping: handed back to the dialplan"
# In the AGI URL when the dialplan re-enters after the call's node died (extensions.conf).
RESUME_PARAM = "resume"
NOT_RESUMED = "not_resumed"  # IVR_RESULT: nothing to resume here; the fallback takes it

# Hears a speech menu over AudioSocket (the speech service's ``listen``)
Listener = Callable[[AgiChannel, ListenRequest], Awaitable[Heard]]


class Writes:
    """Record writes after their call: the caller never waits for the disk."""

    def __init__(self, store: RecordStore, events: EventSink | None = None) -> None:
        self.store = store
        self.events = events  # call.ended goes here once the record is stored; None: off
        self._tasks: set[asyncio.Task[None]] = set()

    def after(self, begun: asyncio.Task[None], record: CallRecord) -> None:
        """Store ``record`` once its begin (``begun``) is done, in a task of its own."""
        task = asyncio.create_task(self._finish(begun, record))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the pending writes (at stop, before the store closes)."""
        if self._tasks:
            await asyncio.gather(*self._tasks)

    async def _finish(self, begun: asyncio.Task[None], record: CallRecord) -> None:
        """The final record, after its begin (which may have renamed a duplicate call id)."""
        try:
            await begun
        except Exception as exc:  # the finish below still writes the whole row
            _log(record.call_id).error("start of the record not stored: %s", exc)
        try:
            await self.store.finish(record)
        except Exception as exc:  # only a closed store refuses: the log keeps the record
            _log(record.call_id).error(
                "record not stored (%s): %s",
                exc,
                json.dumps(asdict(record), ensure_ascii=False, default=str),
            )
            return
        self.ended(record)

    def ended(self, record: CallRecord) -> None:
        """``call.ended`` for a stored record (never waits)."""
        if self.events is not None:
            self.events.emit(call_ended(record))


class Calls:
    """Takes each FastAGI call: picks its flow, runs it, stores its record."""

    def __init__(
        self,
        flows: FlowRegistry,
        live: LiveCalls,
        store: RecordStore,
        outbound: Outbound,
        services: Services,
        listen: Listener | None,
        writes: Writes,
        clock: Clock,
        boxes: AmiBoxes | None = None,
    ) -> None:
        self.flows, self.live, self.store, self.outbound = flows, live, store, outbound
        self._services, self._listen, self._writes, self._clock = services, listen, writes, clock
        self.boxes = boxes  # None: AMI off

    def services(self, call_id: str = "") -> Services:
        """The call's ports, with the flows loaded now (for sub-flows) and the queue checks
        of the Asterisk box carrying ``call_id``."""
        services = replace(self._services, flows=self.flows.library.flows)
        if self.boxes is not None:
            services.queues = self.boxes.queues_for(call_id)
        return services

    def _new_run(
        self, flow: Flow, channel: AgiChannel, record: CallRecord | None = None
    ) -> CallRun:
        run = CallRun(flow, channel, self.services(channel.info.uniqueid), record)
        if self.boxes is not None:
            run.record.box = self.boxes.box_of(run.record.call_id)
        return run

    async def handle(self, env: AgiEnvironment, channel: AgiChannel) -> str | None:
        """One call: pick the flow by the AGI script path, run it, store its record, and
        tell the dialplan ``IVR_RESULT=done`` if the flow finished with it (any other call
        takes the dialplan's fallback). Returns what the call came to, for the log."""
        library = self.flows.library
        flow = library.get(env.script)
        channel.listener = self._listen
        if "job" in env.params:  # an outbound call answered
            record = await run_job(
                env.params["job"],
                flow,
                channel,
                self.services(env.uniqueid),
                self.store,
                self.outbound,
            )
            if record is None:
                return None
            self._writes.ended(record)  # a callback or campaign call, stored
            return summary(record)
        if flow is None:
            _log(env.uniqueid).error(
                "asked for flow %r, which is not loaded (known: %s); "
                "handing the call back to the dialplan",
                env.script,
                ", ".join(sorted(library.flows)) or "none",
            )
            await hand_back(channel, "unknown_flow")
            return "unknown flow, handed back"
        if RESUME_PARAM in env.params:  # the dialplan re-entered: the call's node died
            return await self._resume(env, channel)
        run = self._new_run(flow, channel)
        # The caller never waits for the disk: the row goes in while the flow runs, and
        # the record after the line is back with Asterisk (the store never loses it).
        return await self._run(run, channel, asyncio.create_task(self.store.begin(run.record)))

    async def _resume(self, env: AgiEnvironment, channel: AgiChannel) -> str:
        """Take up a call whose node died mid-flow, at its last checkpoint, in the same
        record; when it cannot be (no record in progress, no checkpoint, a flow or node gone
        since), hand it back to the dialplan, whose fallback takes it (never silence)."""
        try:
            taken = await self.store.take_over(env.uniqueid)
        except StoreError as exc:
            _log(env.uniqueid).error("cannot resume, store unavailable: %s", exc)
            taken = None
        if taken is None:
            _log(env.uniqueid).warning("no call in progress to resume; handing it back")
            await hand_back(channel, NOT_RESUMED)
            return "not resumed, handed back"
        flow = self.flows.library.flows.get(taken.record.flow)
        run = self._new_run(flow, channel, taken.record) if flow else None
        try:
            if taken.resume is None:
                raise IvrError(f"node {taken.from_node!r} stopped before the first menu")
            if run is None:
                raise IvrError(f"flow {taken.record.flow!r} is not loaded")
            start = run.resume(taken.resume)
        except IvrError as exc:  # the record ends here; the dialplan's fallback takes over
            _log(env.uniqueid).error("cannot resume: %s; handing it back", exc)
            record = taken.record
            record.outcome, record.error = "error", f"cannot resume: {exc}"
            record.ended_at = self._clock()
            self._writes.after(_done(), record)
            await hand_back(channel, NOT_RESUMED)
            return "not resumed, handed back"
        run.note_input(run.flow.nodes[start], "resumed", taken.from_node)
        _log(env.uniqueid).warning(
            "resumed at %s (its node %s stopped mid-call)",
            start,
            taken.from_node or "?",
        )
        return await self._run(run, channel, _done(), start)

    async def _run(
        self,
        run: CallRun,
        channel: AgiChannel,
        begun: asyncio.Task[None],
        start: str | None = None,
    ) -> str:
        """Run the call, hand it back to the dialplan and store its record after ``begun``;
        what it came to."""
        with self.live.track(run):
            try:
                record = await run.run(start)
            except asyncio.CancelledError:  # shutdown grace over: the dialplan takes it
                run.record.outcome, run.record.error = "error", STOPPED_ERROR
                run.record.ended_at = self._clock()
                self._writes.after(begun, run.record)
                raise
            await hand_back(channel, "error" if record.outcome == "error" else DONE)
            self._writes.after(begun, record)
            return summary(record)


def summary(record: CallRecord) -> str:
    """``self_service at goodbye after 12.4 s (4 nodes)``: a finished call in a few words."""
    took = record.duration_s
    after = "" if took is None else f" after {took:.1f} s"
    return f"{record.outcome} at {record.end_node or '-'}{after} ({len(record.path)} nodes)"


def _done() -> asyncio.Task[None]:
    """A begin that has nothing to write: the row of a resumed call exists."""

    async def nothing() -> None:
        return None

    return asyncio.create_task(nothing())


async def agi_health(agi: AgiServer) -> Health:
    """FastAGI: up while it listens (the detail names no address)."""
    if not agi.sockets:
        return Health("down", "not listening")
    return Health("up", f"{agi.active_calls} connection(s)")


async def hand_back(channel: AgiChannel, result: str) -> None:
    """Tell the dialplan how the call ends (``IVR_RESULT``) while the channel is still up."""
    if channel.hung_up:
        return
    try:
        await channel.set_variable(RESULT_VARIABLE, result)
    except (CallHangup, AgiError) as exc:
        _log(channel.info.uniqueid).info("%s not set: %s", RESULT_VARIABLE, exc)
