"""A stand-in for the admin API's ``Console`` over a real store (and a recordings directory),
with no calls in progress: for the API tests of stored calls, messages and recordings."""

from __future__ import annotations

from dataclasses import dataclass, field

from ivr.admin.console import LiveCall
from ivr.flow.registry import FlowRegistry
from ivr.health import Health
from ivr.metrics import Metrics
from ivr.store.records import RecordStore


@dataclass
class StoreConsole:
    """A Console with a real store and a recordings directory."""

    flows: FlowRegistry
    store: RecordStore | None
    recordings_dir: str
    metrics: Metrics = field(default_factory=Metrics)

    def live_calls(self) -> list[LiveCall]:
        return []

    def running(self, call_id: str) -> None:
        return None

    async def health(self) -> dict[str, Health]:
        return {"fastagi": Health("up"), "store": Health("up")}

    async def queue_state(self) -> list[dict[str, object]]:
        return []
