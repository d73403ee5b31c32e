"""The server: :class:`App` builds the store, HTTP client, flows, speech, AMI, admin console and
FastAGI server from one config and starts them; :class:`Server` is them running; :func:`serve`
runs it until a signal (``ivr serve``)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import signal
import time
from collections.abc import Iterable
from pathlib import Path

from ivr.admin.console import HealthBoard, LiveCalls, ServerConsole
from ivr.admin.server import AdminServer
from ivr.app.backlogs import watch_store
from ivr.app.calls import Calls, Listener, Writes, agi_health
from ivr.app.flow_versions import VersionKeeper
from ivr.app.heartbeat import Heartbeat, default_node_id
from ivr.app.messages import MessageKeeper
from ivr.app.retention import RecordingRetention
from ivr.app.webhooks import Outbox, WebhookSender
from ivr.asterisk.agi.server import AgiServer
from ivr.asterisk.ami.boxes import AmiBoxes
from ivr.clock import Clock, system_clock
from ivr.config import Settings
from ivr.engines.http import HttpLookup, extract
from ivr.flow.library import FlowLibrary
from ivr.flow.model import Flow, MenuNode
from ivr.flow.queue_node import QueueNode
from ivr.flow.registry import FlowRegistry, ReloadResult
from ivr.flowtests.gate import refuse_failing
from ivr.health import Health, always
from ivr.metrics import Metrics, TimedEngine
from ivr.outbound.dialer import Dialer
from ivr.outbound.jobs import Outbound
from ivr.prompts.tts import Pyttsx3Engine, build_prompts
from ivr.runtime.interpreter import Services
from ivr.speech.base import SpeechEngine
from ivr.speech.keep import UtteranceKeeper
from ivr.speech.service import SpeechService
from ivr.store.database import is_postgres
from ivr.store.flow_versions import FlowVersionStore
from ivr.store.messages import MessageStore
from ivr.store.records import RecordStore
from ivr.store.webhooks import WebhookStore

log = logging.getLogger("ivr.app")


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
        if settings.flows_require_tests:  # a flow whose tests fail keeps its last version
            self.flows.vet = functools.partial(refuse_failing, flows_dir=settings.flows_dir)
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
        engines: dict[str, SpeechEngine] = {}  # recognisers: speech menus, messages' transcripts
        if any(speech_languages(f) for f in self.library.flows.values()):
            speech = await self.start_speech(parts)
            listen, hearable = speech.listen, frozenset(speech.engines)
            engines = speech.engines
            board.report_by("audiosocket", speech.audiosocket_health)
            board.report_by("recogniser", speech.recogniser_health)
        else:
            off = always(Health("off", "no flow has speech menus"))
            board.report_by("audiosocket", off)
            board.report_by("recogniser", off)
        store = await RecordStore.open(
            s.store.target,
            journal_path=s.store.journal,
            commit_window_s=s.store.commit_window_s,
            password=s.store.revealed_password(),
            node=s.node_id or default_node_id(s.agi.port),
        )
        parts.push_async_callback(store.close)
        parts.push_async_callback(watch_store(self.metrics, store, self.clock).close)
        versions = VersionKeeper(FlowVersionStore(store), self.flows, self.clock)
        await versions.start()  # the versions serving now, then every one published
        parts.push_async_callback(versions.close)
        events = await self.start_webhooks(parts, store)
        messages = MessageKeeper(
            MessageStore(store), s.recordings, self.clock, events, lambda: engines
        )
        messages.start()
        parts.push_async_callback(messages.close)  # stored before the store closes
        writes = Writes(store, events)
        parts.push_async_callback(writes.drain)  # before the store closes
        board.report_by("store", store.health)
        recovered = await store.recover_unfinished(self.clock())
        if recovered:
            log.warning("%d calls were cut off by the last stop; marked as errors", recovered)
        outbound = Outbound(store, clock=self.clock)
        outbound.events = events
        if await outbound.recover():
            log.warning("outbound calls cut off by the last stop will be retried later")
        boxes: AmiBoxes | None = None  # AMI off: queues join without a check
        queue_state = no_queues
        if s.ami.secret is not None:
            boxes = await self.start_ami(parts, outbound)
            board.report_by("ami", boxes.health)
            queue_state = functools.partial(self.queue_state, boxes)
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
        recordings = str(s.recordings.resolve())  # absolute: Asterisk writes there too
        if s.recordings_retention_days > 0:
            days = s.recordings_retention_days
            retention = RecordingRetention(store, recordings, days, self.clock)
            retention.start()
            parts.push_async_callback(retention.close)
        console = ServerConsole(
            self.flows, store, self.metrics, self.live, board, queue_state, recordings
        )
        admin = AdminServer(console, s.admin, self.clock)
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
            outbound=outbound if boxes is not None else None,
            numbers=s.numbers,
            events=events,
            messages=messages,
            recordings_dir=recordings,
        )
        calls = Calls(
            self.flows, self.live, store, outbound, services, listen, writes, self.clock, boxes
        )
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
            on_command_error=self.metrics.agi_command_error,
        )
        await agi.start()
        parts.push_async_callback(agi.close, s.agi.shutdown_grace_s)
        several = is_postgres(s.store.target)  # nodes share only a PostgreSQL database
        heartbeat = Heartbeat(
            store, lambda: agi.active_calls, self.clock, every_s=5.0 if several else None
        )
        await heartbeat.start()
        parts.push_async_callback(heartbeat.close)
        board.report_by("fastagi", functools.partial(agi_health, agi))
        log.info("FastAGI listening on %s:%d", s.agi.host, agi.port)
        self.flows.start_watching()
        parts.push_async_callback(self.flows.close)  # the first to close: no reload mid-stop
        return Server(
            self, store=store, agi=agi, admin=admin, calls=calls, board=board, parts=parts.pop_all()
        )

    async def start_webhooks(
        self, parts: contextlib.AsyncExitStack, store: RecordStore
    ) -> Outbox | None:
        """The outbox and its sender when ``webhooks.url`` is set (else no event is kept)."""
        settings = self.settings.webhooks
        if not settings.url:
            return None
        table = WebhookStore(store)
        sender = WebhookSender(table, settings, self.clock, self.metrics.webhook)
        outbox = Outbox(table, settings.events, self.clock, on_stored=sender.wake)
        outbox.start()
        parts.push_async_callback(outbox.close)  # after the record writes, before the store
        await sender.start()
        parts.push_async_callback(sender.close)
        return outbox

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
        s = self.settings
        keeper = None
        if s.speech.keep_utterances:  # for tuning: the caller's voice, kept like recordings
            keeper = UtteranceKeeper(
                s.recordings.resolve(), s.recordings_retention_days, self.clock
            )
            log.info("speech: keeping each utterance under %s", keeper.directory)
        speech = SpeechService(s.speech, s.prompts_dir, keeper)
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

    async def start_ami(self, parts: contextlib.AsyncExitStack, outbound: Outbound) -> AmiBoxes:
        """AMI for queue checks and outbound calls, on every Asterisk box; never blocks
        start-up when one is down."""
        boxes = AmiBoxes(self.settings.ami, on_reconnect=self.metrics.ami_reconnected)
        parts.push_async_callback(boxes.close)
        await boxes.start()
        dialer = Dialer(outbound, boxes, lambda: self.library.flows, on_result=self.metrics.dialed)
        parts.push_async_callback(dialer.close)
        dialer.start()
        return boxes

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

    async def queue_state(self, boxes: AmiBoxes) -> list[dict[str, object]]:
        """The flows' queues as each box that is up reports them (with its name when there
        are several)."""
        out: list[dict[str, object]] = []
        for name, client in boxes.clients.items():
            if client.up:
                for queue in await boxes.queues[name].snapshot(self.queue_names()):
                    out.append({**queue, "box": name} if name else queue)
        return out

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


async def no_queues() -> list[dict[str, object]]:
    """AMI off: no queue to show."""
    return []


def speech_languages(flow: Flow) -> set[str]:
    """The languages a flow's speech menus may be heard in (any language the flow speaks)."""
    speech = any(isinstance(n, MenuNode) and n.speech for n in flow.nodes.values())
    return set(flow.languages) if speech else set()


async def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM, then stop accepting calls and let current ones finish.
    SIGHUP reloads the flows (as ``POST /api/flows/reload`` does)."""
    app = await App(settings).start()
    # What start-up built (flows, prompts, config) lives as long as the server: keep it out
    # of the collector's passes, which otherwise walk it again and again under load.
    gc.freeze()
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
