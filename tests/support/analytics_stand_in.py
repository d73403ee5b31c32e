"""The stand-in API's per-node figures (``GET /api/flows/{name}/analytics``) for the dashboard
tests that do not look at them: the answer's shape, with no call in the last 7 days. The
figures themselves are tested against the real server (test_dashboard_analytics.py)."""

from __future__ import annotations

import time

from aiohttp import web

from ivr.reporting.node_stats import DEFINITIONS

WEEK_S = 7 * 86400.0


async def no_figures(request: web.Request) -> web.Response:
    """No calls went through the flow in the period (the last 7 days)."""
    until = time.time()
    return web.json_response(
        {
            "flow": request.match_info["name"],
            "nodes": {},
            "calls": 0,
            "period": {"since": until - WEEK_S, "until": until, "tz": "UTC"},
            "definitions": DEFINITIONS,
        }
    )
