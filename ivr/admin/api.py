"""The admin HTTP API of ``ivr serve`` (aiohttp), and the dashboard's static files.

======================================  =======  ==========================================
endpoint                                access   answer
======================================  =======  ==========================================
``GET /healthz``                        open     components; 200, or 503 when FastAGI or
                                                 the store is down
``GET /metrics``                        open     Prometheus text exposition
``GET /schema/flow.json``               open     the flow JSON Schema for editors (``$id``:
                                                 this URL; ``ETag``, cached 5 min)
``GET /api/calls``                      read     ``{"live": [...], "recent": [...]}``
                                                 (``?flow=&outcome=&version=&since=``...)
``GET /api/calls/{call_id}/context``    read     a call's screen-pop (404 for none)
``GET /api/calls/{call_id}/recording``  private  the agent leg's WAV (404 for none)
``GET /api/webhooks``                   read     outbox counts and events (``?status=``)
``POST /api/webhooks/{id}/resend``      write    a failed event due again
``GET /api/messages``                   read     left messages, newest first, callers masked
``GET /api/messages/{id}/audio``        private  a message's WAV (404 for none)
``POST /api/messages/{id}/heard``       write    mark a message heard
``GET /api/kpis``                       read     :func:`ivr.reporting.kpi.report` of a range
``GET /api/queues``                     read     ``{"ami": status, "queues": [...]}``
``GET /api/nodes``                      read     ``{"nodes": [...], "self": node id}``
``GET /api/flows``                      read     flows, versions, errors, last reload
``GET /api/flows/{name}``               read     the YAML source of a version
``GET /api/flows/{name}/graph.svg``     read     the flow picture (Graphviz)
``GET /api/flows/{name}/analytics``     read     figures per node (``?since=&until=&tz=``;
                                                 default: the last 7 days)
``POST /api/flows/reload``              write    reload result (body: ``by``, ``reason``)
``GET /api/flows/{name}/versions``      read     published versions, newest first
``GET /api/flows/{name}/versions/{v}``  read     one version with its YAML
``GET /api/flows/{name}/diff``          read     unified diff (``?from=&to=``)
``POST /api/flows/{name}/rollback``     write    publish a stored version again
``GET /api/schema``                     read     the flow JSON Schema
``POST /api/validate``                  read     ``{"ok": bool, "errors": [], "warnings": []}``
``GET /api/surveys``                    read     ``{"surveys": [...]}``
``GET /api/surveys.csv``                read     CSV export
``GET /``, static files                 open     the dashboard (``ivr/admin/static/``)
======================================  =======  ==========================================

Access (:mod:`ivr.admin.guard`): *write* and *private* need ``Authorization: Bearer
<IVR_ADMIN_TOKEN>``; *read* needs it too unless ``admin.open_read`` is true; *open* never does.
The guard also refuses foreign ``Host`` names (421), holds off an address after too many
refused tokens (429) and adds the security headers to every answer. Every error is JSON
``{"error": "..."}``.

The handlers live by resource: :mod:`ivr.admin.records_api` (calls, KPIs, surveys),
:mod:`ivr.admin.flows_api` (flows, graph, reload, schema, validation),
:mod:`ivr.admin.versions_api` (published versions, diff, rollback),
:mod:`ivr.admin.analytics_api` (figures per node of a flow),
:mod:`ivr.admin.schema_api` (the schema's public URL); this module has the health, metrics,
queue and static-file ones, the error middleware and the route table.
"""

from __future__ import annotations

import asyncio
import logging
import time
from importlib import resources
from pathlib import Path

from aiohttp import web

from ivr.admin.analytics_api import AnalyticsEndpoint
from ivr.admin.console import Console
from ivr.admin.context_api import ContextEndpoint
from ivr.admin.flows_api import FlowEndpoints
from ivr.admin.guard import Clock, Handler, Level, check_host, check_token, guard
from ivr.admin.messages_api import MessageEndpoints
from ivr.admin.recordings_api import RecordingEndpoint
from ivr.admin.records_api import RecordEndpoints
from ivr.admin.schema_api import SCHEMA_URL_PATH, flow_schema_json
from ivr.admin.versions_api import VersionEndpoints
from ivr.admin.webhooks_api import WebhookEndpoints
from ivr.clock import Clock as WallClock
from ivr.clock import system_clock
from ivr.config import AdminSettings
from ivr.errors import ApiError, BadQuery
from ivr.metrics import CONTENT_TYPE

log = logging.getLogger("ivr.admin")

STATIC = Path(str(resources.files("ivr.admin").joinpath("static")))

CONSOLE: web.AppKey[Console] = web.AppKey("console", Console)


def make_admin_app(
    console: Console,
    settings: AdminSettings,
    *,
    clock: Clock = time.monotonic,
    now: WallClock = system_clock,
) -> web.Application:
    """The admin API for ``console``, with the access rules of ``settings`` (:class:`ConfigError`
    for a bad ``admin.allowed_hosts``); ``clock`` times the refused-token window, ``now`` (the
    server's wall clock) places default periods."""
    app = web.Application(
        middlewares=[_errors, check_host, check_token], client_max_size=settings.max_body_bytes
    )
    app[CONSOLE] = console
    levels = guard(app, settings, clock=clock)
    status, records, flows = _Status(console), RecordEndpoints(console), FlowEndpoints(console)
    app.on_cleanup.append(flows.close)

    def route(method: str, path: str, handler: Handler, level: Level) -> None:
        name = handler.__name__
        levels[name] = level
        app.router.add_route(method, path, handler, name=name)

    route("GET", "/healthz", status.healthz, "open")
    route("GET", "/metrics", status.metrics, "open")
    route("GET", SCHEMA_URL_PATH, flow_schema_json, "open")  # editors fetch it without a token
    route("GET", "/api/calls", records.calls, "read")
    route("GET", "/api/calls/{call_id}/context", ContextEndpoint(console).context, "read")
    route("GET", "/api/calls/{call_id}/recording", RecordingEndpoint(console).recording, "private")
    route("GET", "/api/kpis", records.kpis, "read")
    route("GET", "/api/queues", status.queues, "read")
    route("GET", "/api/nodes", records.nodes, "read")
    route("GET", "/api/flows", flows.flows, "read")
    route("POST", "/api/flows/reload", flows.reload, "write")
    route("GET", "/api/flows/{name}", flows.flow, "read")
    route("GET", "/api/flows/{name}/graph.svg", flows.graph, "read")
    route("GET", "/api/flows/{name}/analytics", AnalyticsEndpoint(console, now).analytics, "read")
    versions = VersionEndpoints(console)
    route("GET", "/api/flows/{name}/versions", versions.versions, "read")
    route("GET", "/api/flows/{name}/versions/{ref}", versions.version, "read")
    route("GET", "/api/flows/{name}/diff", versions.diff, "read")
    route("POST", "/api/flows/{name}/rollback", versions.rollback, "write")
    route("GET", "/api/schema", flows.schema, "read")
    route("POST", "/api/validate", flows.validate, "read")
    route("GET", "/api/surveys", records.surveys, "read")
    route("GET", "/api/surveys.csv", records.surveys_csv, "read")
    webhooks = WebhookEndpoints(console)
    route("GET", "/api/webhooks", webhooks.webhooks, "read")
    route("POST", "/api/webhooks/{id}/resend", webhooks.resend, "write")
    messages = MessageEndpoints(console)
    route("GET", "/api/messages", messages.messages, "read")
    route("GET", "/api/messages/{id}/audio", messages.audio, "private")
    route("POST", "/api/messages/{id}/heard", messages.heard, "write")
    route("GET", "/{path:(?!api/).*}", status.static, "open")  # last: other GET paths
    return app


def _json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes JSON ``{"error": ...}``; nothing a client sends crashes us."""
    try:
        return await handler(request)
    except ApiError as exc:
        return _json_error(exc.status, exc.message, exc.headers)
    except BadQuery as exc:
        return _json_error(400, str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        text = exc.text or ""
        message = exc.reason if not text or text.startswith(f"{exc.status}:") else text
        keep = {k: v for k, v in exc.headers.items() if k in ("Allow", "WWW-Authenticate")}
        return _json_error(exc.status, message, keep)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("admin API: %s %s failed", request.method, request.path)
        return _json_error(500, "internal error (see the server log)")


class _Status:
    """The server's own endpoints: health, metrics, queues and the dashboard's files."""

    def __init__(self, console: Console) -> None:
        self.console = console

    async def healthz(self, request: web.Request) -> web.Response:
        checks = await self.console.health()
        core = all(
            checks.get(n) is not None and checks[n].status == "up" for n in ("fastagi", "store")
        )
        degraded = any(h.status == "down" for h in checks.values())
        status = "down" if not core else "degraded" if degraded else "ok"
        return web.json_response(
            {
                "status": status,
                "components": {
                    n: {"status": h.status, "detail": h.detail} for n, h in checks.items()
                },
            },
            status=200 if core else 503,
        )

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self.console.metrics.render(), headers={"Content-Type": CONTENT_TYPE}
        )

    async def queues(self, request: web.Request) -> web.Response:
        health = await self.console.health()
        ami = health["ami"].status if "ami" in health else "off"
        return web.json_response({"ami": ami, "queues": await self.console.queue_state()})

    async def static(self, request: web.Request) -> web.FileResponse:
        """The dashboard's files (``/`` is ``index.html``); nothing outside ``static/``."""
        path = request.match_info["path"] or "index.html"
        root = STATIC.resolve()
        file = (root / path).resolve()
        if not file.is_relative_to(root) or not file.is_file():
            raise ApiError(404, f"not found: /{path}")
        return web.FileResponse(file, headers={"Cache-Control": "no-cache"})
