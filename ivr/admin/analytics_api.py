"""The admin API's per-node analytics: ``GET /api/flows/{name}/analytics``.

The finished calls of one flow that started in a period, read like the KPIs'
(:func:`ivr.reporting.queries.records_in_range`, paged), and their figures per node
(:func:`ivr.reporting.node_stats.node_stats`), which the dashboard draws on the flow picture.
The period is ``since``/``until`` as the KPIs take them (Unix seconds, ``YYYY-MM-DD`` in ``tz``,
``until`` including its day, or ISO date-times); without them, the last
:data:`DEFAULT_DAYS` days up to now on the server's clock.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from ivr.admin.console import Console
from ivr.admin.stored import read_store, record_store
from ivr.clock import Clock, system_clock
from ivr.reporting import queries as q
from ivr.reporting.node_stats import DEFINITIONS, node_stats

__all__ = ["DEFAULT_DAYS", "AnalyticsEndpoint"]

DEFAULT_DAYS = 7
DAY_S = 86400.0


class AnalyticsEndpoint:
    """The analytics handler over ``console``; ``now`` is the wall clock that places the
    default period."""

    def __init__(self, console: Console, now: Clock = system_clock) -> None:
        self.console = console
        self.now = now

    async def analytics(self, request: web.Request) -> web.Response:
        """``{"flow", "nodes": {id: figures}, "calls", "period": {"since", "until", "tz"},
        "definitions"}``; each node's figures as :data:`ivr.reporting.node_stats.DEFINITIONS`
        says. A node of the flow no call went through is not listed."""
        name = request.match_info["name"]
        query = request.query
        tz = q.zone(query)
        since, until = q.time_range(query, tz)
        if until is None:
            until = self.now() if since is None else max(self.now(), since + DAY_S)
        if since is None:
            since = until - DEFAULT_DAYS * DAY_S
        records = await read_store(
            q.records_in_range(record_store(self.console), flow=name, since=since, until=until)
        )
        nodes = await asyncio.to_thread(node_stats, records)
        return web.json_response(
            {
                "flow": name,
                "nodes": nodes,
                "calls": sum(1 for r in records if r.outcome is not None),
                "period": {"since": since, "until": until, "tz": tz},
                "definitions": DEFINITIONS,
            }
        )
