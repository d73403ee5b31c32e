"""A stand-in admin API for the dashboard tests: seeded JSON in the shapes the real API serves.

``make_app()`` serves ``ivr/admin/static/`` at ``/`` and the endpoints the page reads:
``/api/kpis``, ``/api/calls``, ``/api/queues``, ``/api/nodes``, ``/api/webhooks``,
``/api/messages``, ``/api/flows`` (the real
``flows/`` directory), ``/api/flows/{name}/graph.svg`` (the real
:func:`ivr.flow.graph.flow_svg`), ``/api/flows/{name}/analytics`` (no calls),
``/api/surveys``, ``/api/validate`` (the real flow loader) and ``/api/schema``. The seeded
figures live in a
mutable :class:`Seed` so a test can change them between two refreshes, require a token, or make
an endpoint fail.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from ivr.admin.flows_api import validation_body
from ivr.errors import FlowErrors, GraphvizError
from ivr.flow.graph import flow_svg
from ivr.flow.library import load_library
from ivr.flow.loader import parse_flow
from ivr.flow.schema import flow_schema
from ivr.flow.validate import flow_warnings
from ivr.reporting.kpi import DEFINITIONS

from .analytics_stand_in import no_figures

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "ivr" / "admin" / "static"
FLOWS = ROOT / "flows"

KPI_ZERO: dict[str, Any] = {
    "calls": 0,
    "in_progress": 0,
    "self_service_rate": None,
    "containment_rate": None,
    "failed_in_ivr_rate": None,
    "agent_requests": 0,
    "agent_answer_rate": None,
    "abandon_rate": None,
    "avg_wait_s": None,
    "p50_wait_s": None,
    "p90_wait_s": None,
    "surveys_offered": 0,
    "survey_response_rate": None,
    "satisfaction": None,
    "satisfaction_answers": 0,
    "callbacks_requested": 0,
    "callbacks_placed": 0,
    "callbacks_connected": 0,
}


def kpi(**values: Any) -> dict[str, Any]:
    """A full K dict: every key, the given values."""
    unknown = set(values) - set(KPI_ZERO)
    assert not unknown, f"not KPI keys: {unknown}"
    return {**KPI_ZERO, **values}


OVERALL = kpi(
    calls=200,
    in_progress=3,
    self_service_rate=0.625,
    containment_rate=0.8,
    failed_in_ivr_rate=0.125,
    agent_requests=40,
    agent_answer_rate=0.75,
    abandon_rate=0.125,
    avg_wait_s=42.5,
    p50_wait_s=30,
    p90_wait_s=95,
    surveys_offered=30,
    survey_response_rate=0.6,
    satisfaction=0.8,
    satisfaction_answers=18,
    callbacks_requested=4,
    callbacks_placed=3,
    callbacks_connected=2,
)
FLOW_KPIS = {
    "bank": kpi(
        calls=150,
        self_service_rate=0.6,
        agent_requests=35,
        agent_answer_rate=0.8,
        abandon_rate=0.1,
        avg_wait_s=40,
        satisfaction=0.85,
        satisfaction_answers=15,
    ),
    "main": kpi(
        calls=50,
        self_service_rate=0.7,
        agent_requests=5,
        agent_answer_rate=0.4,
        abandon_rate=0.25,
        satisfaction=None,
    ),
}
DAY_RATES = [  # answer, self-service, satisfaction, abandon per day
    (0.70, 0.60, 0.75, 0.15),
    (0.72, 0.61, 0.80, 0.14),
    (0.80, 0.64, 0.82, 0.10),
    (0.74, 0.63, 0.78, 0.13),
    (0.78, 0.62, 0.85, 0.11),
    (0.76, 0.65, 0.80, 0.12),
    (0.75, 0.62, None, 0.125),
]


NO_CALLS_DAY = 3  # index into DAY_RATES of a day left out of the API's answer


def days(last: date | None = None) -> list[dict[str, Any]]:
    """One K per day for the week ending ``last`` (default: today)."""
    last = last or date.today()
    out = []
    for i, (answer, self_service, csat, abandon) in enumerate(DAY_RATES):
        if i == NO_CALLS_DAY:
            continue  # the API lists only days with calls
        day = last - timedelta(days=len(DAY_RATES) - 1 - i)
        out.append(
            {
                "day": day.isoformat(),
                **kpi(
                    calls=28,
                    agent_requests=6,
                    agent_answer_rate=answer,
                    self_service_rate=self_service,
                    containment_rate=round(self_service + 0.15, 2),
                    satisfaction=csat,
                    abandon_rate=abandon,
                ),
            }
        )
    return out


def live_calls(now: float) -> list[dict[str, Any]]:
    return [
        {
            "call_id": "1764500000.11",
            "flow": "bank",
            "flow_version": "2026.11+6b167df0f735",
            "node": "main",
            "started_at": now - 95,
            "language": "en",
            "caller": "13800138000",
        },
        {
            "call_id": "1764500000.12",
            "flow": "bank",
            "flow_version": "2026.11+6b167df0f735",
            "node": "balance",
            "started_at": now - 40,
            "language": "zh",
            "caller": "13911112222",
        },
        {
            "call_id": "1764500000.13",
            "flow": "main",
            "flow_version": "a1b2c3d4e5f6",
            "node": "menu",
            "started_at": now - 12,
            "language": "en",
            "caller": "5550100",
        },
    ]


def recent_calls(now: float) -> list[dict[str, Any]]:
    survey = {
        "survey": "after_call",
        "mode": "in_call",
        "status": "completed",
        "answers": [
            {"question": "satisfied", "scale": "1-5", "value": 4},
            {"question": "solved", "scale": "yes-no", "value": 1},
        ],
        "satisfaction": "satisfied",
        "at": now - 300,
    }
    return [
        {
            "call_id": "1764499000.1",
            "flow": "bank",
            "flow_version": "2026.11+6b167df0f735",
            "caller": "13700001111",
            "started_at": now - 600,
            "ended_at": now - 300,
            "outcome": "transferred",
            "end_node": "agent",
            "path": ["welcome", "choose_language", "opening_hours", "main", "agent"],
            "path_at": [0.0, 1.6, 5.2, 5.2, 14.8],
            "inputs": [],
            "queue": {
                "queue": "cards",
                "result": "answered",
                "wait_s": 35.0,
                "agent": "Local/1001@agents",
                "talk_s": 200.0,
            },
            "survey": survey,
        },
        {
            "call_id": "1764499000.2",
            "flow": "bank",
            "flow_version": "2026.11+6b167df0f735",
            "caller": "13700002222",
            "started_at": now - 900,
            "ended_at": now - 840,
            "outcome": "self_service",
            "end_node": "goodbye",
            "path": ["welcome", "main", "balance", "fetch_balance", "tell_balance", "goodbye"],
            "path_at": [0.0, 1.6, 9.9, 24.3, 24.5, 29.0],
            "inputs": [],
            "queue": None,
            "survey": None,
        },
        {
            "call_id": "1764499000.3",
            "flow": "main",
            "flow_version": "a1b2c3d4e5f6",
            "caller": "",
            "started_at": now - 1200,
            "ended_at": now - 1150,
            "outcome": "abandoned",
            "end_node": "menu",
            "path": ["welcome", "menu"],
            "path_at": [0.0, 2.1],
            "inputs": [],
            "queue": {"queue": "loans", "result": "abandoned", "wait_s": 48.0, "agent": ""},
            "survey": None,
        },
        {
            "call_id": "1764499000.4",
            "flow": "main",
            "flow_version": "a1b2c3d4e5f6",
            "caller": "5550123",
            "started_at": now - 1500,
            "ended_at": now - 1470,
            "outcome": "failed_in_ivr",
            "end_node": "goodbye",
            "path": ["welcome", "menu", "goodbye"],
            "path_at": [0.0, 2.1, 27.4],
            "inputs": [],
            "queue": None,
            "survey": None,
        },
    ]


def surveys(now: float) -> list[dict[str, Any]]:
    return [
        {
            "call_id": "1764499000.1",
            "flow": "bank",
            "at": now - 300,
            "survey": "after_call",
            "mode": "in_call",
            "status": "completed",
            "answers": [
                {"question": "satisfied", "scale": "1-5", "value": 4},
                {"question": "solved", "scale": "yes-no", "value": 1},
            ],
            "satisfaction": "satisfied",
        },
        {
            "call_id": "1764498000.7",
            "flow": "bank",
            "at": now - 4000,
            "survey": "after_call",
            "mode": "outbound",
            "status": "partial",
            "answers": [
                {"question": "satisfied", "scale": "1-5", "value": 2},
                {"question": "solved", "scale": "yes-no", "value": None},
            ],
            "satisfaction": "satisfied",
        },
    ]


SELF_NODE = "ivr-a:4573"


def nodes(now: float) -> list[dict[str, Any]]:
    """This console's node and another, both beating; newest beat first, as the API lists."""
    return [
        {
            "id": SELF_NODE,
            "version": "0.9.0",
            "started_at": now - 7300,
            "beat_at": now - 1,
            "calls": 3,
        },
        {
            "id": "ivr-b:4573",
            "version": "0.9.0",
            "started_at": now - 600,
            "beat_at": now - 4,
            "calls": 12,
        },
    ]


QUEUES = {
    "ami": "up",
    "queues": [
        {
            "name": "cards",
            "logged_in": 3,
            "available": 1,
            "callers": 2,
            "holdtime_s": 35,
            "longest_wait_s": 80,
        },
        {
            "name": "loans",
            "logged_in": 2,
            "available": 0,
            "callers": 1,
            "holdtime_s": 50,
            "longest_wait_s": 125,
        },
    ],
}


@dataclass
class Seed:
    """What the stand-in API answers; tests change it while the page runs."""

    now: float = field(default_factory=time.time)
    live: list[dict[str, Any]] = field(default_factory=list)
    recent: list[dict[str, Any]] = field(default_factory=list)
    queues: dict[str, Any] = field(default_factory=lambda: dict(QUEUES))
    surveys: list[dict[str, Any]] = field(default_factory=list)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    self_node: str = SELF_NODE
    webhooks: dict[str, Any] = field(  # GET /api/webhooks?status=failed: nothing failed
        default_factory=lambda: {"counts": {"pending": 0, "sent": 12, "failed": 0}, "events": []}
    )
    messages: dict[str, Any] = field(  # GET /api/messages: none left
        default_factory=lambda: {"unheard": 0, "messages": []}
    )
    token: str | None = None  # when set, /api/* wants "Authorization: Bearer <token>"
    failing: set[str] = field(default_factory=set)  # API paths that answer 500
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, auth
    kpi_queries: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.live = self.live or live_calls(self.now)
        self.recent = self.recent or recent_calls(self.now)
        self.surveys = self.surveys or surveys(self.now)
        self.nodes = self.nodes or nodes(self.now)


def make_app(seed: Seed) -> web.Application:
    """The stand-in API plus the dashboard's static files."""
    library = load_library([FLOWS], None)
    loaded_at = time.time() - 3600

    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        seed.requests.append((request.method, request.path, auth))
        if request.path.startswith("/api/"):
            if seed.token is not None and auth != f"Bearer {seed.token}":
                return web.json_response({"error": "unauthorized"}, status=401)
            if request.path in seed.failing:
                return web.json_response({"error": "boom"}, status=500)
        response: web.StreamResponse = await handler(request)
        return response

    async def kpis(request: web.Request) -> web.Response:
        seed.kpi_queries.append(dict(request.query))
        return web.json_response(
            {
                "overall": OVERALL,
                "flows": FLOW_KPIS,
                "days": days(),
                "timezone": "Asia/Shanghai",
                "definitions": {
                    "agent_answer_rate": "agent requests answered / agent requests",
                    "satisfaction": "answers in the top box / valid answers",
                    **{k: DEFINITIONS[k] for k in ("self_service_rate", "containment_rate")},
                },
            }
        )

    async def calls(request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", "50"))
        live = seed.live if request.query.get("live") == "1" else []
        return web.json_response({"live": live, "recent": seed.recent[:limit]})

    async def queues(request: web.Request) -> web.Response:
        return web.json_response(seed.queues)

    async def node_list(request: web.Request) -> web.Response:
        return web.json_response({"nodes": seed.nodes, "self": seed.self_node})

    async def webhook_list(request: web.Request) -> web.Response:
        return web.json_response(seed.webhooks)

    async def message_list(request: web.Request) -> web.Response:
        return web.json_response(seed.messages)

    async def flows(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "flows": [
                    {
                        "name": f.name,
                        "version": f.version,
                        "file": f.file,
                        "loaded_at": loaded_at,
                        "versions": [f.version],
                        "nodes": len(f.nodes),
                    }
                    for f in library.flows.values()
                ],
                "errors": [
                    {
                        "file": "flows/broken.yaml",
                        "line": 12,
                        "col": 7,
                        "node": "main",
                        "message": "goes to 'offerz', which is not a node of this flow",
                    }
                ],
            }
        )

    async def versions(request: web.Request) -> web.Response:
        """Each flow's one version, published at start (the Versions panel's list)."""
        flow = library.get(request.match_info["name"])
        if flow is None:
            raise web.HTTPNotFound(text="no such flow")
        row = {
            "id": 1, "flow": flow.name, "version": flow.version, "file": flow.file,
            "published_at": loaded_at, "published_by": "", "reason": "start", "node": "",
            "calls": 0, "current": True,
        }  # fmt: skip
        current = {"name": flow.name, "current": flow.version, "timezone": flow.timezone}
        return web.json_response({**current, "versions": [row]})

    async def graph(request: web.Request) -> web.Response:
        flow = library.get(request.match_info["name"])
        if flow is None:
            raise web.HTTPNotFound(text="no such flow")
        try:
            svg = flow_svg(flow)
        except GraphvizError as exc:
            return web.Response(status=503, text=str(exc))
        return web.Response(text=svg, content_type="image/svg+xml")

    async def survey_list(request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", "20"))
        return web.json_response({"surveys": seed.surveys[:limit]})

    async def validate(request: web.Request) -> web.Response:
        text = await request.text()
        named = re.search(r"^flow:\s*([A-Za-z0-9_-]+)", text, re.MULTILINE)
        name = named.group(1) if named else "pasted"
        try:
            flow = parse_flow(text, file=f"{name}.yaml", name=name)
        except FlowErrors as exc:
            return web.json_response(validation_body(exc.errors, []))
        return web.json_response(validation_body([], flow_warnings(flow, time.time())))

    async def schema(request: web.Request) -> web.Response:
        return web.json_response(flow_schema())

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    app = web.Application(middlewares=[guard])
    app.router.add_get("/api/kpis", kpis)
    app.router.add_get("/api/calls", calls)
    app.router.add_get("/api/queues", queues)
    app.router.add_get("/api/nodes", node_list)
    app.router.add_get("/api/webhooks", webhook_list)
    app.router.add_get("/api/messages", message_list)
    app.router.add_get("/api/flows", flows)
    app.router.add_get("/api/flows/{name}/graph.svg", graph)
    app.router.add_get("/api/flows/{name}/versions", versions)
    app.router.add_get("/api/flows/{name}/analytics", no_figures)
    app.router.add_get("/api/surveys", survey_list)
    app.router.add_post("/api/validate", validate)
    app.router.add_get("/api/schema", schema)
    app.router.add_get("/", index)
    app.router.add_static("/", STATIC)
    return app
