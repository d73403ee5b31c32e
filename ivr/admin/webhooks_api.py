"""The webhook outbox in the console: ``GET /api/webhooks`` (counts, and the newest events,
e.g. ``?status=failed``) and ``POST /api/webhooks/{id}/resend`` (a failed event due again).
Bodies are not listed: the receiver has them (or will)."""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web

from ivr.admin.console import Console
from ivr.admin.stored import read_store, record_store
from ivr.clock import system_clock
from ivr.errors import ApiError
from ivr.reporting import queries as q
from ivr.store.webhooks import WebhookStore

__all__ = ["WebhookEndpoints"]

STATUSES = ("pending", "sent", "failed")


class WebhookEndpoints:
    """The outbox handlers over ``console``."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def _table(self) -> WebhookStore:
        return WebhookStore(record_store(self.console))

    async def webhooks(self, request: web.Request) -> web.Response:
        """``{"counts": {status: n}, "events": [...]}``, newest first."""
        status = q.text(request.query, "status")
        if status is not None and status not in STATUSES:
            raise ApiError(400, f"status must be one of {', '.join(STATUSES)}")
        limit = q.integer(request.query, "limit", 50, 1, 500)
        table = self._table()
        counts = await read_store(table.counts())
        rows = await read_store(table.rows(status, limit))
        events = [{k: v for k, v in asdict(r).items() if k != "payload"} for r in rows]
        return web.json_response({"counts": counts, "events": events})

    async def resend(self, request: web.Request) -> web.Response:
        """A failed event back to pending (404 unless there is such a failed event)."""
        text = request.match_info["id"]
        if not text.isdigit():
            raise ApiError(404, "no such failed event")
        done = await read_store(self._table().resend(int(text), system_clock()))
        if not done:
            raise ApiError(404, "no such failed event")
        return web.json_response({"resent": int(text)})
