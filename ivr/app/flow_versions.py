"""Every flow version the server publishes, kept in the store (``flow_versions``).

At start-up, once the store is open, each serving flow is written with reason ``start``;
then every reload that adds or changes a flow writes those flows with the reload's reason
(``file change``, ``SIGHUP``, ``reload``, ``rollback to <version>``) and who asked. A flow
whose newest row already has the version serving is not written again, so restarts, and
several nodes loading the same files, add no duplicates. A store that fails loses the row
(logged), never the reload.
"""

from __future__ import annotations

import logging

from ivr.clock import Clock
from ivr.errors import StoreError
from ivr.flow.registry import FlowRegistry, ReloadResult
from ivr.store.flow_versions import FlowVersionStore

__all__ = ["VersionKeeper"]

log = logging.getLogger("ivr.flows")


class VersionKeeper:
    """Writes ``registry``'s published versions to ``table``: :meth:`start` once the store
    is open, :meth:`close` before it closes."""

    def __init__(self, table: FlowVersionStore, registry: FlowRegistry, clock: Clock) -> None:
        self.table = table
        self.registry = registry
        self.clock = clock

    async def start(self) -> None:
        """Keep the versions serving now (reason ``start``), then every later publication."""
        await self._keep(sorted(self.registry.flows), self.clock(), "start", "")
        self.registry.on_publish = self.published

    async def close(self) -> None:
        """Stop keeping versions (the store is about to close)."""
        if self.registry.on_publish == self.published:
            self.registry.on_publish = None

    async def published(self, result: ReloadResult) -> None:
        """The registry's ``on_publish`` hook: the flows ``result`` added or changed."""
        await self._keep([*result.added, *result.changed], result.at, result.reason, result.by)

    async def _keep(self, names: list[str], now: float, reason: str, by: str) -> None:
        for name in names:
            version = self.registry.current(name)
            if version is None:
                continue
            if version.source is None:  # the file changed while loading: the next reload
                log.warning("flow %s %s: its text changed while loading, not kept", name,
                            version.version)  # fmt: skip
                continue
            try:
                await self.table.publish(
                    flow=name,
                    version=version.version,
                    file=version.file,
                    content=version.source,
                    now=now,
                    by=by,
                    reason=reason,
                    unless_latest=True,
                )
            except StoreError as exc:
                log.error("flow %s %s not kept in the store: %s", name, version.version, exc)
