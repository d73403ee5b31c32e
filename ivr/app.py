"""Composition root: builds the store, HTTP client, flows and FastAGI server from one config."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, replace
from pathlib import Path

from ivr.admin.console import HealthBoard, LiveCalls, ServerConsole
from ivr.admin.server import AdminServer
from ivr.asterisk.agi.channel import AgiChannel
from ivr.asterisk.agi.protocol import AgiEnvironment
from ivr.asterisk.agi.server import AgiServer
from ivr.asterisk.ami.client import AmiClient
from ivr.asterisk.ami.queues import AmiQueues
from ivr.call.channel import Heard, ListenRequest
from ivr.call.record import CallRecord
from ivr.clock import Clock, system_clock
from ivr.config import Settings
from ivr.engines.http import HttpLookup, extract
from ivr.errors import AgiError, CallHangup
from ivr.flow.library import FlowLibrary
from ivr.flow.model import Flow, MenuNode, QueueNode
from ivr.flow.registry import FlowRegistry, ReloadResult
from ivr.health import Health, always
from ivr.metrics import Metrics, TimedEngine
from ivr.outbound.answer import run_job
from ivr.outbound.dialer import Dialer
from ivr.outbound.jobs import Outbound
from ivr.prompts.tts import Pyttsx3Engine, build_prompts
from ivr.runtime.interpreter import CallRun, Services
from ivr.speech.service import SpeechService
from ivr.store.records import RecordStore

log = logging.getLogger("ivr.app")

# Set on the channel as the server hands it back: "done" when the flow has finished with the
# call. Anything else, or nothing at all (a crash, a kill, a deploy, a full server), sends the
# caller to the dialplan's fallback (an apology and a queue) instead of a silent hang-up.
RESULT_VARIABLE = "IVR_RESULT"
DONE = "done"
STOPPED_ERROR = "server stopping: handed back to the dialplan"

# Hears a speech menu over AudioSocket (the speech service's ``listen``)
Listener = Callable[[AgiChannel, ListenRequest], Awaitable[Heard]]


class App:
    """The server before it runs: its settings, metrics, live calls and flow registry.
    ``server = await App(settings).start()``, then ``await server.close()``."""

    clock: Clock = staticmethod(system_clock)  # calls, records, outbound, reload stamps

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.live = LiveCalls(self.metrics)  # calls in progress (console, metrics)
        self.flows = FlowRegistry(
            settings.flows_dir,
            settings.prompts_dir,
            poll_s=settings.flows_poll_s,
            clock=self.clock,
            prepare=self.render_prompts,
            on_reload=self._reloaded,
        )
        self.speech_on = False  # recognisers loaded at start (a reload cannot add them)

    @property
    def library(self) -> FlowLibrary:
        """The flows new calls get (the registry's current library; replaced on reload)."""
        return self.flows.library

    async def start(self) -> Server:
        """Start every component; on a failure, close what had started and raise."""
        async with contextlib.AsyncExitStack() as parts:  # empty once the server has them
            return await self._start(parts)

    async def _start(self, parts: contextlib.AsyncExitStack) -> Server:
        s = self.settings
        board = HealthBoard()
        parts.push_async_callback(self.flows.close)  # the last to close
        await self.flows.reload("start-up")  # logs errors; renders the flows' text prompts
        if not self.library.flows:
            log.warning("no flows loaded from %s", Path(s.flows_dir).resolve())
        listen: Listener | None = None  # no speech: menus take keys only
        hearable: frozenset[str] = frozenset()
        if any(speech_languages(f) for f in self.library.flows.values()):
            speech = await self.start_speech(parts)
            listen, hearable = speech.listen, frozenset(speech.engines)
            board.report_by("audiosocket", speech.audiosocket_health)
            board.report_by("recogniser", speech.recogniser_health)
        else:
            off = always(Health("off", "no flow has speech menus"))
            board.report_by("audiosocket", off)
            board.report_by("recogniser", off)
        store = await RecordStore.open(s.store.path, journal_path=s.store.journal_path or None)
        parts.push_async_callback(store.close)
        writes = Writes(store)
        parts.push_async_callback(writes.drain)  # before the store closes
        board.report_by("store", store.health)
        recovered = await store.recover_unfinished(self.clock())
        if recovered:
            log.warning("%d calls were cut off by the last stop; marked as errors", recovered)
        outbound = Outbound(store, clock=self.clock)
        if await outbound.recover():
            log.warning("outbound calls cut off by the last stop will be retried later")
        queues: AmiQueues | None = None  # AMI off: queues join without a check
        queue_state = no_queues
        if s.ami.secret is not None:
            ami, queues = await self.start_ami(parts, outbound)
            board.report_by("ami", ami.health)
            queue_state = functools.partial(self.queue_state, ami, queues)
        else:
            board.report_by("ami", always(Health("off", "no IVR_AMI_SECRET")))
            log.warning(
                "AMI off (no IVR_AMI_SECRET): queues join without a check, no "
                "callbacks or outbound surveys are placed"
            )
        http: HttpLookup | None = None
        if s.http.base_url:
            secret = s.http.secret.reveal() if s.http.secret else None
            http = HttpLookup(
                s.http.base_url, secret=secret, timeout_s=s.http.timeout_s, clock=self.clock
            )
            await http.start()
            parts.push_async_callback(http.close)
        admin = AdminServer(
            ServerConsole(self.flows, store, self.metrics, self.live, board, queue_state), s.admin
        )
        if s.admin.enabled:  # before FastAGI: a taken admin port stops start-up, no calls
            await admin.start()
            parts.push_async_callback(admin.close)
        services = Services(
            http=http,
            extract=extract,
            checkpoint=store.checkpoint,
            speech_languages=hearable,
            clock=self.clock,
            on_node=self.metrics.node_done,
            queues=queues,
            outbound=outbound if queues is not None else None,
            numbers=s.numbers,
        )
        calls = Calls(self.flows, self.live, store, outbound, services, listen, writes, self.clock)
        agi = AgiServer(
            calls.handle,
            host=s.agi.host,
            port=s.agi.port,
            command_timeout_s=s.agi.command_timeout_s,
            header_timeout_s=s.agi.header_timeout_s,
            max_line_bytes=s.agi.max_line_bytes,
            sounds_prefix=s.agi.sounds_prefix,
            prompts_dir=s.prompts_dir,
            unknown_prompt_s=s.agi.unknown_prompt_s,
            max_connections=s.agi.max_connections,
            on_reject=self.metrics.agi_rejected,
        )
        await agi.start()
        parts.push_async_callback(agi.close, s.agi.shutdown_grace_s)
        board.report_by("fastagi", functools.partial(agi_health, agi))
        log.info("FastAGI listening on %s:%d", s.agi.host, agi.port)
        self.flows.start_watching()
        parts.push_async_callback(self.flows.close)  # the first to close: no reload mid-stop
        return Server(
            self, store=store, agi=agi, admin=admin, calls=calls, board=board, parts=parts.pop_all()
        )

    async def render_prompts(self, flows: Iterable[Flow]) -> None:
        """Render missing text prompts of ``flows`` before they take calls (at start-up and
        before a reloaded flow is swapped in; TTS never runs per call)."""
        started = time.monotonic()
        report = await asyncio.to_thread(
            build_prompts, list(flows), self.settings.prompts_dir, Pyttsx3Engine()
        )
        for name, reason in report.failed.items():
            log.error("prompt %s not rendered: %s", name, reason)
        log.info(
            "prompts: %d rendered in %.1f s, %d already there",
            len(report.rendered),
            time.monotonic() - started,
            report.skipped,
        )

    async def start_speech(self, parts: contextlib.AsyncExitStack) -> SpeechService:
        """Load the recognisers and open AudioSocket. A speech menu heard in a language no
        recogniser knows takes keys only (a warning at start, never a dead line)."""
        speech = SpeechService(self.settings.speech, self.settings.prompts_dir)
        parts.push_async_callback(speech.close)
        await speech.start()
        self.speech_on = True
        speech.engines = {
            lang: TimedEngine(engine, self.metrics.recognized)
            for lang, engine in speech.engines.items()
        }
        for flow in self.library.flows.values():
            missing = speech.missing(speech_languages(flow))
            if missing:
                log.warning(
                    "flow %s: no speech recogniser for %s, so its speech menus take "
                    "keys only in that language (see speech.vosk_model and "
                    "speech.vosk_languages)",
                    flow.name,
                    ", ".join(missing),
                )
        return speech

    async def start_ami(
        self, parts: contextlib.AsyncExitStack, outbound: Outbound
    ) -> tuple[AmiClient, AmiQueues]:
        """AMI for queue checks and outbound calls; never blocks start-up when it is down."""
        ami = AmiClient(self.settings.ami, on_reconnect=self.metrics.ami_reconnected)
        queues = AmiQueues(ami)
        parts.push_async_callback(ami.close)
        await ami.start()
        dialer = Dialer(outbound, ami, lambda: self.library.flows)
        parts.push_async_callback(dialer.close)
        dialer.start()
        return ami, queues

    def queue_names(self) -> list[str]:
        """Every queue a loaded flow sends callers to."""
        return sorted(
            {
                n.queue
                for f in self.library.flows.values()
                for n in f.nodes.values()
                if isinstance(n, QueueNode)
            }
        )

    async def queue_state(self, ami: AmiClient, queues: AmiQueues) -> list[dict[str, object]]:
        """The flows' queues as AMI reports them (empty while AMI is down)."""
        if not ami.up:
            return []
        return await queues.snapshot(self.queue_names())

    def _reloaded(self, result: ReloadResult) -> None:
        if not result.initial:
            self.metrics.reload(result.result)
        self.metrics.flow_errors(len({e.file for e in self.flows.errors}))
        if (
            not self.speech_on
            and not result.initial
            and any(speech_languages(self.flows.flows[n]) for n in result.added + result.changed)
        ):
            log.warning(
                "a reloaded flow has speech menus, but speech is off until a restart: "
                "they take keys only"
            )


class Server:
    """The running server that :meth:`App.start` returns; ``await close()`` once."""

    def __init__(
        self,
        app: App,
        *,
        store: RecordStore,
        agi: AgiServer,
        admin: AdminServer,
        calls: Calls,
        board: HealthBoard,
        parts: contextlib.AsyncExitStack,
    ) -> None:
        self.settings, self.metrics, self.flows = app.settings, app.metrics, app.flows
        self.live = app.live
        self.store = store
        self.agi = agi
        self.admin = admin  # not listening when admin.enabled is false
        self.calls = calls
        self.board = board  # each component's own health
        self._parts = parts

    @property
    def library(self) -> FlowLibrary:
        """The flows new calls get."""
        return self.flows.library

    async def close(self) -> None:
        """Stop the watcher, take no more calls (current ones get the grace period), then
        close every component in the reverse order of start-up (pending record writes
        before the store)."""
        await self._parts.aclose()


class Writes:
    """Record writes after their call: the caller never waits for the disk."""

    def __init__(self, store: RecordStore) -> None:
        self.store = store
        self._tasks: set[asyncio.Task[None]] = set()

    def after(self, begun: asyncio.Task[None], record: CallRecord) -> None:
        task = asyncio.create_task(self._finish(begun, record))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks)

    async def _finish(self, begun: asyncio.Task[None], record: CallRecord) -> None:
        """The final record, after its begin (which may have renamed a duplicate call id)."""
        try:
            await begun
        except Exception as exc:  # the finish below still writes the whole row
            log.error("call %s: start of the record not stored: %s", record.call_id, exc)
        try:
            await self.store.finish(record)
        except Exception as exc:  # only a closed store refuses: the log keeps the record
            log.error(
                "call %s: record not stored (%s): %s",
                record.call_id,
                exc,
                json.dumps(asdict(record), ensure_ascii=False, default=str),
            )


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
    ) -> None:
        self.flows, self.live, self.store, self.outbound = flows, live, store, outbound
        self._services, self._listen, self._writes, self._clock = services, listen, writes, clock

    def services(self) -> Services:
        """The call's ports, with the flows loaded now (for sub-flows)."""
        return replace(self._services, flows=self.flows.library.flows)

    async def handle(self, env: AgiEnvironment, channel: AgiChannel) -> None:
        """One call: pick the flow by the AGI script path, run it, store its record, and
        tell the dialplan ``IVR_RESULT=done`` if the flow finished with it (any other call
        takes the dialplan's fallback)."""
        library = self.flows.library
        flow = library.get(env.script)
        channel.listener = self._listen
        if "job" in env.params:  # an outbound call answered
            await run_job(
                env.params["job"], flow, channel, self.services(), self.store, self.outbound
            )
            return
        if flow is None:
            log.error(
                "call %s asked for flow %r, which is not loaded (known: %s); "
                "handing the call back to the dialplan",
                env.uniqueid,
                env.script,
                ", ".join(sorted(library.flows)) or "none",
            )
            await hand_back(channel, "unknown_flow")
            return
        run = CallRun(flow, channel, self.services())
        with self.live.track(run):
            # The caller never waits for the disk: the row goes in while the flow runs, and
            # the record after the line is back with Asterisk (the store never loses it).
            begun = asyncio.create_task(self.store.begin(run.record))
            try:
                record = await run.run()
            except asyncio.CancelledError:  # shutdown grace over: the dialplan takes it
                run.record.outcome, run.record.error = "error", STOPPED_ERROR
                run.record.ended_at = self._clock()
                self._writes.after(begun, run.record)
                raise
            await hand_back(channel, "error" if record.outcome == "error" else DONE)
            self._writes.after(begun, record)


async def no_queues() -> list[dict[str, object]]:
    """AMI off: no queue to show."""
    return []


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
        log.info("call %s: %s not set: %s", channel.info.uniqueid, RESULT_VARIABLE, exc)


def speech_languages(flow: Flow) -> set[str]:
    """The languages a flow's speech menus may be heard in (any language the flow speaks)."""
    speech = any(isinstance(n, MenuNode) and n.speech for n in flow.nodes.values())
    return set(flow.languages) if speech else set()


async def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM, then stop accepting calls and let current ones finish.
    SIGHUP reloads the flows (as ``POST /api/flows/reload`` does)."""
    app = await App(settings).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    reloads: set[asyncio.Task[None]] = set()

    async def hup() -> None:
        result = await app.flows.reload("SIGHUP")
        log.info(
            "SIGHUP: flow reload %s (%d added, %d changed, %d removed)",
            result.result,
            len(result.added),
            len(result.changed),
            len(result.removed),
        )

    def reload() -> None:
        task = loop.create_task(hup())
        reloads.add(task)  # a strong reference until it is done
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, reload)
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        await app.close()
