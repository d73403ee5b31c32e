"""What the admin API needs from the running server, and the server's side of it.

:class:`Console` is the small interface :func:`ivr.admin.api.make_admin_app` serves from; the
tests give it a stand-in, ``ivr serve`` gives it a :class:`ServerConsole` over the parts it
reads (flows, store, metrics, live calls, queues) and a :class:`HealthBoard` where each
component reports its own health. :class:`LiveCalls` tracks the calls in progress for both the
console and the call metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from ivr.call.record import mask_caller
from ivr.flow.registry import FlowRegistry
from ivr.health import Health, HealthCheck, Status, always
from ivr.metrics import Metrics
from ivr.runtime.interpreter import CallRun
from ivr.store.records import RecordStore

__all__ = [
    "COMPONENTS",
    "Console",
    "Health",
    "HealthBoard",
    "LiveCall",
    "LiveCalls",
    "ServerConsole",
    "Status",
]

COMPONENTS = ("fastagi", "audiosocket", "ami", "store", "recogniser")

log = logging.getLogger("ivr.admin")


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

    def running(self, call_id: str) -> CallRun | None:
        """The call ``call_id`` if it is in progress on this server."""

    async def health(self) -> dict[str, Health]:
        """Each of :data:`COMPONENTS` by name."""

    async def queue_state(self) -> list[dict[str, object]]:
        """Agent queues as AMI reports them (empty when AMI is off or down)."""

    @property
    def recordings_dir(self) -> str:
        """The recordings directory (``""``: none, nothing recorded)."""


class HealthBoard:
    """Each of :data:`COMPONENTS` by name, with the check its component reports through
    (a component not started yet reports ``down``, one not configured ``off``)."""

    def __init__(self) -> None:
        self._checks: dict[str, HealthCheck] = {
            name: always(Health("down", "not started")) for name in COMPONENTS
        }
        self._checks["fastagi"] = always(Health("down", "not listening"))

    def report_by(self, name: str, check: HealthCheck) -> None:
        """From now on ``name`` reports through ``check``."""
        if name not in self._checks:
            raise KeyError(f"not a component: {name!r}")
        self._checks[name] = check

    async def report(self) -> dict[str, Health]:
        """Each component's health now, asked one after the other."""
        return {name: await check() for name, check in self._checks.items()}


class ServerConsole:
    """:class:`Console` over the running server's parts (never the whole server)."""

    def __init__(
        self,
        flows: FlowRegistry,
        store: RecordStore,
        metrics: Metrics,
        live: LiveCalls,
        board: HealthBoard,
        queues: Callable[[], Awaitable[list[dict[str, object]]]],
        recordings_dir: str = "",
    ) -> None:
        self._flows, self._store, self._metrics = flows, store, metrics
        self._live, self._board, self._queues = live, board, queues
        self._recordings_dir = recordings_dir

    @property
    def flows(self) -> FlowRegistry:
        return self._flows

    @property
    def store(self) -> RecordStore:
        return self._store

    @property
    def metrics(self) -> Metrics:
        return self._metrics

    def live_calls(self) -> list[LiveCall]:
        return self._live.snapshot()

    def running(self, call_id: str) -> CallRun | None:
        return self._live.find(call_id)

    async def health(self) -> dict[str, Health]:
        return await self._board.report()

    async def queue_state(self) -> list[dict[str, object]]:
        return await self._queues()

    @property
    def recordings_dir(self) -> str:
        return self._recordings_dir


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

    def find(self, call_id: str) -> CallRun | None:
        """The run of ``call_id``, if it is in progress."""
        return next((r for r in self._runs.values() if r.record.call_id == call_id), None)

    def __len__(self) -> int:
        return len(self._runs)

    def snapshot(self) -> list[LiveCall]:
        out = []
        for run in self._runs.values():
            rec = run.record
            out.append(
                LiveCall(
                    call_id=rec.call_id,
                    flow=rec.flow,
                    flow_version=rec.flow_version,
                    node=rec.end_node or "",
                    started_at=rec.started_at,
                    language=run.vars.get("language", ""),
                    caller=mask_caller(rec.caller),
                )
            )
        return sorted(out, key=lambda c: c.started_at)
