"""Composition root: builds the store, HTTP client, flows and FastAGI server from one config."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

from ivr.admin.console import STORE_CHECK_TIMEOUT_S, Health, LiveCall, LiveCalls
from ivr.admin.server import AdminServer
from ivr.asterisk.agi.channel import AgiChannel
from ivr.asterisk.agi.protocol import AgiEnvironment
from ivr.asterisk.agi.server import AgiServer
from ivr.asterisk.ami.client import AmiClient
from ivr.asterisk.ami.queues import AmiQueues
from ivr.call.record import CallRecord
from ivr.clock import Clock, system_clock
from ivr.config import Settings
from ivr.engines.http import HttpLookup, extract
from ivr.errors import AgiError, CallHangup, IvrError
from ivr.flow.library import FlowLibrary
from ivr.flow.model import Flow, MenuNode, QueueNode
from ivr.flow.registry import FlowRegistry, ReloadResult
from ivr.metrics import Metrics, TimedEngine
from ivr.outbound.answer import run_job
from ivr.outbound.dialer import Dialer
from ivr.outbound.jobs import Outbound
from ivr.prompts.tts import Pyttsx3Engine, build_prompts
from ivr.runtime.interpreter import CallRun, Services
from ivr.speech.service import SpeechService
from ivr.store.records import RecordStore

log = logging.getLogger("ivr.app")
admin_log = logging.getLogger("ivr.admin")

# Set on the channel as the server hands it back: "done" when the flow has finished with the
# call. Anything else, or nothing at all (a crash, a kill, a deploy, a full server), sends the
# caller to the dialplan's fallback (an apology and a queue) instead of a silent hang-up.
RESULT_VARIABLE = "IVR_RESULT"
DONE = "done"
STOPPED_ERROR = "server stopping: handed back to the dialplan"


class App:
    """The running server. ``await start()``, then ``await close()``."""

    clock: Clock = staticmethod(system_clock)  # calls, records, outbound, reload stamps

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.live = LiveCalls(self.metrics)  # calls in progress (console, metrics)
        self.flows = FlowRegistry(settings.flows_dir, settings.prompts_dir,
                                  poll_s=settings.flows_poll_s, clock=self.clock,
                                  prepare=self.render_prompts, on_reload=self._reloaded)
        self.admin: AdminServer | None = None
        self.store: RecordStore | None = None
        self.http: HttpLookup | None = None
        self.agi: AgiServer | None = None
        self.speech: SpeechService | None = None
        self.ami: AmiClient | None = None
        self.queues: AmiQueues | None = None
        self.outbound: Outbound | None = None
        self.dialer: Dialer | None = None
        self._writes: set[asyncio.Task[None]] = set()  # record writes after their call

    @property
    def library(self) -> FlowLibrary:
        """The flows new calls get (the registry's current library; replaced on reload)."""
        return self.flows.library

    async def start(self) -> None:
        s = self.settings
        await self.flows.reload("start-up")  # logs errors; renders the flows' text prompts
        if not self.library.flows:
            log.warning("no flows loaded from %s", Path(s.flows_dir).resolve())
        if any(speech_languages(f) for f in self.library.flows.values()):
            await self.start_speech()
        self.store = await RecordStore.open(s.store.path, journal_path=s.store.journal_path or None)
        recovered = await self.store.recover_unfinished(self.clock())
        if recovered:
            log.warning("%d calls were cut off by the last stop; marked as errors", recovered)
        self.outbound = Outbound(self.store, clock=self.clock)
        if await self.outbound.recover():
            log.warning("outbound calls cut off by the last stop will be retried later")
        if s.ami.secret is not None:
            await self.start_ami()
        else:
            log.warning("AMI off (no IVR_AMI_SECRET): queues join without a check, no "
                        "callbacks or outbound surveys are placed")
        if s.http.base_url:
            secret = s.http.secret.reveal() if s.http.secret else None
            self.http = HttpLookup(s.http.base_url, secret=secret, timeout_s=s.http.timeout_s,
                                   clock=self.clock)
            await self.http.start()
        if s.admin.enabled:  # before FastAGI: a taken admin port stops start-up, no calls
            self.admin = AdminServer(AppConsole(self), s.admin)
            await self.admin.start()
        self.agi = AgiServer(
            self.handle_call, host=s.agi.host, port=s.agi.port,
            command_timeout_s=s.agi.command_timeout_s, header_timeout_s=s.agi.header_timeout_s,
            max_line_bytes=s.agi.max_line_bytes, sounds_prefix=s.agi.sounds_prefix,
            prompts_dir=s.prompts_dir, unknown_prompt_s=s.agi.unknown_prompt_s,
            max_connections=s.agi.max_connections, on_reject=self.metrics.agi_rejected,
        )
        await self.agi.start()
        log.info("FastAGI listening on %s:%d", s.agi.host, self.agi.port)
        self.flows.start_watching()

    async def render_prompts(self, flows: Iterable[Flow]) -> None:
        """Render missing text prompts of ``flows`` before they take calls (at start-up and
        before a reloaded flow is swapped in; TTS never runs per call)."""
        started = time.monotonic()
        report = await asyncio.to_thread(
            build_prompts, list(flows), self.settings.prompts_dir, Pyttsx3Engine())
        for name, reason in report.failed.items():
            log.error("prompt %s not rendered: %s", name, reason)
        log.info("prompts: %d rendered in %.1f s, %d already there", len(report.rendered),
                 time.monotonic() - started, report.skipped)

    async def start_speech(self) -> None:
        """Load the recognisers and open AudioSocket. A speech menu heard in a language no
        recogniser knows takes keys only (a warning at start, never a dead line)."""
        self.speech = SpeechService(self.settings.speech, self.settings.prompts_dir)
        await self.speech.start()
        self.speech.engines = {lang: TimedEngine(engine, self.metrics.recognized)
                               for lang, engine in self.speech.engines.items()}
        for flow in self.library.flows.values():
            missing = self.speech.missing(speech_languages(flow))
            if missing:
                log.warning("flow %s: no speech recogniser for %s, so its speech menus take "
                            "keys only in that language (see speech.vosk_model and "
                            "speech.vosk_languages)", flow.name, ", ".join(missing))

    async def start_ami(self) -> None:
        """AMI for queue checks and outbound calls; never blocks start-up when it is down."""
        assert self.outbound is not None
        self.ami = AmiClient(self.settings.ami, on_reconnect=self.metrics.ami_reconnected)
        self.queues = AmiQueues(self.ami)
        await self.ami.start()
        self.dialer = Dialer(self.outbound, self.ami, lambda: self.library.flows)
        self.dialer.start()

    def queue_names(self) -> list[str]:
        """Every queue a loaded flow sends callers to."""
        return sorted({n.queue for f in self.library.flows.values() for n in f.nodes.values()
                       if isinstance(n, QueueNode)})

    def _reloaded(self, result: ReloadResult) -> None:
        if not result.initial:
            self.metrics.reload(result.result)
        self.metrics.flow_errors(len({e.file for e in self.flows.errors}))
        if self.speech is None and not result.initial and any(
                speech_languages(self.flows.flows[n]) for n in result.added + result.changed):
            log.warning("a reloaded flow has speech menus, but speech is off until a restart: "
                        "they take keys only")

    async def close(self) -> None:
        await self.flows.close()
        if self.agi is not None:
            await self.agi.close(self.settings.agi.shutdown_grace_s)
        if self.admin is not None:
            await self.admin.close()
        if self.dialer is not None:
            await self.dialer.close()
        if self.ami is not None:
            await self.ami.close()
        if self.speech is not None:
            await self.speech.close()
        if self.http is not None:
            await self.http.close()
        if self._writes:
            await asyncio.gather(*self._writes)
        if self.store is not None:
            await self.store.close()

    def services(self) -> Services:
        assert self.store is not None
        hearable = frozenset(self.speech.engines) if self.speech else frozenset()
        return Services(http=self.http, flows=self.library.flows, extract=extract,
                        checkpoint=self.store.checkpoint, speech_languages=hearable,
                        clock=self.clock, on_node=self.metrics.node_done,
                        queues=self.queues, outbound=self.outbound if self.ami else None,
                        numbers=self.settings.numbers)

    async def handle_call(self, env: AgiEnvironment, channel: AgiChannel) -> None:
        """One call: pick the flow by the AGI script path, run it, store its record, and
        tell the dialplan ``IVR_RESULT=done`` if the flow finished with it (any other call
        takes the dialplan's fallback)."""
        assert self.store is not None
        flow = self.library.get(env.script)
        if self.speech is not None:
            channel.listener = self.speech.listen
        if "job" in env.params and self.outbound is not None:  # an outbound call answered
            await run_job(env.params["job"], flow, channel, self.services(), self.store,
                          self.outbound)
            return
        if flow is None:
            log.error("call %s asked for flow %r, which is not loaded (known: %s); "
                      "handing the call back to the dialplan", env.uniqueid, env.script,
                      ", ".join(sorted(self.library.flows)) or "none")
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
                run.record.ended_at = self.clock()
                self._write_after(begun, run.record)
                raise
            await hand_back(channel, "error" if record.outcome == "error" else DONE)
            self._write_after(begun, record)

    def _write_after(self, begun: asyncio.Task[None], record: CallRecord) -> None:
        task = asyncio.create_task(self._finish(begun, record))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _finish(self, begun: asyncio.Task[None], record: CallRecord) -> None:
        """The final record, after its begin (which may have renamed a duplicate call id)."""
        assert self.store is not None
        try:
            await begun
        except Exception as exc:  # the finish below still writes the whole row
            log.error("call %s: start of the record not stored: %s", record.call_id, exc)
        try:
            await self.store.finish(record)
        except Exception as exc:  # only a closed store refuses: the log keeps the record
            log.error("call %s: record not stored (%s): %s", record.call_id, exc,
                      json.dumps(asdict(record), ensure_ascii=False, default=str))


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
    app = App(settings)
    await app.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    reloads: set[asyncio.Task[None]] = set()

    async def hup() -> None:
        result = await app.flows.reload("SIGHUP")
        log.info("SIGHUP: flow reload %s (%d added, %d changed, %d removed)", result.result,
                 len(result.added), len(result.changed), len(result.removed))

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


class AppConsole:
    """:class:`Console` over a running :class:`ivr.app.App`."""

    def __init__(self, app: App) -> None:
        self.app = app

    @property
    def flows(self) -> FlowRegistry:
        return self.app.flows

    @property
    def store(self) -> RecordStore | None:
        return self.app.store

    @property
    def metrics(self) -> Metrics:
        return self.app.metrics

    def live_calls(self) -> list[LiveCall]:
        return self.app.live.snapshot()

    async def queue_state(self) -> list[dict[str, object]]:
        app = self.app
        if app.queues is None or app.ami is None or not app.ami.up:
            return []
        return await app.queues.snapshot(app.queue_names())

    async def health(self) -> dict[str, Health]:
        return {
            "fastagi": self._fastagi(),
            "audiosocket": self._audiosocket(),
            "ami": self._ami(),
            "store": await self._store(),
            "recogniser": self._recogniser(),
        }

    def _fastagi(self) -> Health:
        agi = self.app.agi
        if agi is None or not agi.sockets:
            return Health("down", "not listening")
        return Health("up", f"{agi.active_calls} connection(s)")

    def _audiosocket(self) -> Health:
        speech = self.app.speech
        if speech is None:
            return Health("off", "no flow has speech menus")
        if not speech.server.sockets:
            return Health("down", "not listening")
        return Health("up", f"{speech.server.active_sessions} session(s)")

    def _ami(self) -> Health:
        app = self.app
        if app.ami is None:
            return Health("off", "no IVR_AMI_SECRET")
        if not app.ami.up:
            return Health("down", "unreachable or login refused; reconnecting")
        return Health("up", f"{app.ami.reconnects} reconnect(s)")

    async def _store(self) -> Health:
        store = self.app.store
        if store is None:
            return Health("down", "not open")
        started = time.monotonic()
        try:
            await asyncio.wait_for(store.get("healthz"), STORE_CHECK_TIMEOUT_S)
        except TimeoutError:
            return Health("down", f"no answer in {STORE_CHECK_TIMEOUT_S:g} s")
        except IvrError as exc:  # the message names the file: the log only
            admin_log.warning("health check: the store failed: %s", exc)
            return Health("down", "read failed (see the server log)")
        return Health("up", f"read in {1000 * (time.monotonic() - started):.0f} ms")

    def _recogniser(self) -> Health:
        speech = self.app.speech
        if speech is None:
            return Health("off", "no flow has speech menus")
        if not speech.engines:
            return Health("down", "no recogniser loaded")
        return Health("up", ", ".join(f"{lang}={engine.name}"
                                      for lang, engine in sorted(speech.engines.items())))
