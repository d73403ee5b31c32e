"""This node's heartbeat: its row in the store's ``nodes`` table, kept fresh.

Several ``ivr serve`` nodes may share one database (PostgreSQL). Each says every ``every_s``
who it is, which version it runs, since when, and how many calls it has; the console shows
them (``GET /api/nodes``), and a node whose beat stops is known to be gone.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from ivr import __version__
from ivr.clock import Clock
from ivr.errors import StoreError
from ivr.store.nodes import NodeStore
from ivr.store.records import RecordStore
from ivr.tasks import Background

log = logging.getLogger("ivr.app")

__all__ = ["Heartbeat", "default_node_id"]


def default_node_id(agi_port: int) -> str:
    """``host:port``: the same after a restart, so a node recovers its own calls."""
    return f"{socket.gethostname()}:{agi_port}"


class Heartbeat:
    """Beat now and then every ``every_s`` until :meth:`close` (``None``: only now; a SQLite
    file has one node, and a beat waiting on a locked file would hold up the records queued
    behind it on the store's thread); ``calls`` counts this node's calls at each beat. A
    refused beat is logged, never fatal."""

    def __init__(
        self,
        store: RecordStore,
        calls: Callable[[], int],
        clock: Clock,
        every_s: float | None = 5.0,
    ) -> None:
        self.nodes = NodeStore(store)
        self.calls = calls
        self.clock = clock
        self.every_s = every_s
        self.started_at = clock()
        self._task = Background("node-heartbeat")

    async def start(self) -> None:
        await self.beat()
        if self.every_s is not None:
            self._task.start(self._loop(self.every_s))

    async def beat(self) -> None:
        try:
            await self.nodes.beat(__version__, self.started_at, self.calls(), self.clock())
        except StoreError as exc:
            log.warning("node heartbeat not saved: %s", exc)

    async def _loop(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            await self.beat()

    async def close(self) -> None:
        await self._task.close()
