"""What the admin API needs from the running server, and the server's side of it.

:class:`Console` is the small interface :func:`ivr.admin.api.make_admin_app` serves from; the
tests give it a stand-in, ``ivr serve`` gives it :class:`ivr.app.AppConsole` (a view of
:class:`ivr.app.App`). :class:`LiveCalls` tracks the calls in progress for both the console
and the call metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from ivr.call.record import mask_caller
from ivr.flow.registry import FlowRegistry
from ivr.metrics import Metrics
from ivr.runtime.interpreter import CallRun
from ivr.store.records import RecordStore

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
