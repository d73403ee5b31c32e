"""The metrics' view of the store: its write queue and journal backlog (read at each scrape,
in memory), and what waits in its tables (webhook events, due outbound jobs) sampled every
``every_s`` by a background task.

The tables are read in the background rather than at scrape time: ``/metrics`` is open to
anyone who reaches the admin port, and a scrape must not queue reads on the store's one
thread ahead of the calls' writes. A failed sample is logged once and retried; the gauges
keep their last values meanwhile (the store's own health says it is down).
"""

from __future__ import annotations

import asyncio
import logging

from ivr.clock import Clock
from ivr.errors import StoreError
from ivr.metrics import Metrics
from ivr.store.backlogs import read_backlogs
from ivr.store.records import RecordStore
from ivr.tasks import Background

__all__ = ["BacklogSampler", "watch_store"]

log = logging.getLogger("ivr.app")


def watch_store(metrics: Metrics, store: RecordStore, clock: Clock) -> BacklogSampler:
    """Record write latency, the write queue and journal backlog at each scrape, and the
    tables' backlogs from the returned sampler (started; ``await close()`` it)."""
    store.instrument(metrics.store_written)
    metrics.watch_store(lambda: store.writes_queued, lambda: store.backlog)
    sampler = BacklogSampler(store, metrics, clock)
    sampler.start()
    return sampler


class BacklogSampler:
    """Sets the backlog gauges of ``metrics`` from ``store`` now, then every ``every_s``."""

    every_s = 15.0  # a Prometheus scrape interval; tests shorten it

    def __init__(self, store: RecordStore, metrics: Metrics, clock: Clock) -> None:
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self._task = Background("backlog-sampler")
        self._failing = False

    def start(self) -> None:
        """The first sample now, then one every :attr:`every_s`."""
        self._task.start(self._loop())

    async def close(self) -> None:
        await self._task.close()

    async def sample(self) -> None:
        """Read the backlogs once into the gauges (raises :class:`StoreError`)."""
        now = self.clock()
        backlogs = await read_backlogs(self.store, now)
        self.metrics.backlogs(
            backlogs.webhooks_pending, backlogs.oldest_age_s(now), backlogs.outbound_due
        )

    async def _loop(self) -> None:
        while True:
            try:
                await self.sample()
            except StoreError as exc:
                if not self._failing:
                    log.warning("backlog metrics: the store did not answer: %s", exc)
                self._failing = True
            else:
                self._failing = False
            await asyncio.sleep(self.every_s)
