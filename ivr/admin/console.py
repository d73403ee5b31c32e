"""What the admin API needs from the running server, and the server's side of it.

:class:`Console` is the small interface :func:`ivr.admin.api.make_admin_app` serves from; the
tests give it a stand-in, ``ivr serve`` gives it :class:`AppConsole` (a view of
:class:`ivr.app.App`). :class:`LiveCalls` tracks the calls in progress for both the console
and the call metrics.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ivr.errors import IvrError
from ivr.flow.interpreter import CallRun
from ivr.flow.registry import FlowRegistry
from ivr.metrics import Metrics
from ivr.store.records import RecordStore

if TYPE_CHECKING:
    from ivr.app import App

Status = Literal["up", "down", "off"]
COMPONENTS = ("fastagi", "audiosocket", "ami", "store", "recogniser")
STORE_CHECK_TIMEOUT_S = 2.0

log = logging.getLogger("ivr.admin")


@dataclass(frozen=True)
class Health:
    """One component's state: ``up``, ``down`` (should work and does not) or ``off``
    (not configured). ``/healthz`` shows ``detail`` to anyone: it names no file, host or
    port (the log has those)."""

    status: Status
    detail: str = ""


@dataclass(frozen=True)
class LiveCall:
    """A call in progress, as the console shows it (the caller masked to the last 4 digits)."""

    call_id: str
    flow: str
    flow_version: str
    node: str
    started_at: float
    language: str
    caller: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mask_caller(number: str) -> str:
    """``13800138000`` -> ``***8000``; short or empty numbers show nothing but the mask."""
    if not number:
        return ""
    return "***" + number[-4:] if len(number) > 4 else "***"


class Console(Protocol):
    """The running server, as the admin API sees it."""

    @property
    def flows(self) -> FlowRegistry:
        """The flow registry (current flows, versions, errors, reload)."""

    @property
    def store(self) -> RecordStore | None:
        """The call-record store (``None`` before it is open)."""

    @property
    def metrics(self) -> Metrics:
        """The server's Prometheus metrics."""

    def live_calls(self) -> list[LiveCall]:
        """Calls in progress, oldest first."""

    async def health(self) -> dict[str, Health]:
        """Each of :data:`COMPONENTS` by name."""

    async def queue_state(self) -> list[dict[str, object]]:
        """Agent queues as AMI reports them (empty when AMI is off or down)."""


class LiveCalls:
    """The calls walking a flow now; counts them in the metrics too."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._runs: dict[int, CallRun] = {}

    @contextmanager
    def track(self, run: CallRun) -> Iterator[CallRun]:
        """``with live.track(run): ...`` around one call's run."""
        flow = run.flow.name
        self._runs[id(run)] = run
        self.metrics.call_started(flow)
        try:
            yield run
        finally:
            del self._runs[id(run)]
            self.metrics.call_finished(flow, run.record.outcome or "error")

    def __len__(self) -> int:
        return len(self._runs)

    def snapshot(self) -> list[LiveCall]:
        out = []
        for run in self._runs.values():
            rec = run.record
            out.append(LiveCall(
                call_id=rec.call_id, flow=rec.flow, flow_version=rec.flow_version,
                node=rec.end_node or "", started_at=rec.started_at,
                language=run.vars.get("language", ""), caller=mask_caller(rec.caller)))
        return sorted(out, key=lambda c: c.started_at)


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
            log.warning("health check: the store failed: %s", exc)
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
