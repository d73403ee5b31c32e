"""The admin API's call-record endpoints: calls (live and recent), KPIs over a time range,
recent surveys and their CSV export, and the nodes sharing the store. Records go out masked
like live calls; a bad query is 400, a failing store 503.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from typing import Any

from aiohttp import web

from ivr.admin.console import Console
from ivr.admin.stored import read_store, record_store
from ivr.call.record import mask_caller
from ivr.reporting import queries as q
from ivr.reporting.kpi import report
from ivr.store.nodes import NodeStore
from ivr.store.records import RecordStore

log = logging.getLogger("ivr.admin")


class RecordEndpoints:
    """The call-record handlers over ``console``."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def _store(self) -> RecordStore:
        return record_store(self.console)

    async def nodes(self, request: web.Request) -> web.Response:
        """``{"nodes": [...], "self": id}``: the servers sharing this database, newest
        heartbeat first (``beat_at``: Unix time of the last one; one every 5 s while a node
        runs on PostgreSQL), and the id of the node answering (its store's ``node``), so the
        console can mark itself."""
        store = self._store()
        nodes = await read_store(NodeStore(store).nodes())
        return web.json_response({"nodes": [asdict(n) for n in nodes], "self": store.node})

    async def calls(self, request: web.Request) -> web.Response:
        query = request.query
        live = q.flag(query, "live")
        flow = q.text(query, "flow")
        outcome = q.outcome(query)
        tz = q.zone(query)
        since, until = q.time_range(query, tz)
        limit = q.integer(query, "limit", 50, 1, 1000)
        version = q.text(query, "version")  # calls that ran this flow version (its hash)
        recent = await read_store(
            self._store().recent(
                limit=limit,
                flow=flow,
                outcome=outcome,
                since=since,
                until=until,
                flow_version=version,
            )
        )
        calls = [
            c.to_dict()
            for c in self.console.live_calls()
            if live and (flow is None or c.flow == flow)
        ]
        flows = self.console.flows
        return web.json_response(
            {
                "live": calls,
                "recent": [_public(q.masked_record(r, flows.get(r.flow))) for r in recent],
            }
        )

    async def kpis(self, request: web.Request) -> web.Response:
        query = request.query
        tz = q.zone(query)
        since, until = q.time_range(query, tz)
        records = await read_store(
            q.records_in_range(self._store(), flow=q.text(query, "flow"), since=since, until=until)
        )
        data = await asyncio.to_thread(report, records, tz=tz)
        return web.json_response(data)

    async def surveys(self, request: web.Request) -> web.Response:
        query = request.query
        limit = q.integer(query, "limit", 20, 1, 500)
        rows = await read_store(
            q.recent_surveys(self._store(), flow=q.text(query, "flow"), limit=limit)
        )
        return web.json_response({"surveys": rows})

    async def surveys_csv(self, request: web.Request) -> web.Response:
        query = request.query
        tz = q.zone(query)
        since, until = q.time_range(query, tz)
        records = await read_store(
            q.records_in_range(self._store(), flow=q.text(query, "flow"), since=since, until=until)
        )
        return web.Response(
            text=q.surveys_csv(records),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": 'attachment; filename="surveys.csv"'},
        )


def _public(record: dict[str, Any]) -> dict[str, Any]:
    """A record for the API: the caller masked like live calls (flow values already are)."""
    return {**record, "caller": mask_caller(str(record.get("caller", "")))}
