"""The admin HTTP API of ``ivr serve`` (aiohttp), and the dashboard's static files.

======================================  =======  ==========================================
endpoint                                access   answer
======================================  =======  ==========================================
``GET /healthz``                        open     components; 200, or 503 when FastAGI or
                                                 the store is down
``GET /metrics``                        open     Prometheus text exposition
``GET /api/calls``                      read     ``{"live": [...], "recent": [...]}``
``GET /api/kpis``                       read     :func:`ivr.kpi.report` of a range
``GET /api/queues``                     read     ``{"ami": status, "queues": [...]}``
``GET /api/flows``                      read     flows, versions, errors, last reload
``GET /api/flows/{name}``               read     the YAML source of a version
``GET /api/flows/{name}/graph.svg``     read     the flow picture (Graphviz)
``POST /api/flows/reload``              write    reload result
``GET /api/schema``                     read     the flow JSON Schema
``POST /api/validate``                  open     ``{"ok": bool, "errors": [...]}``
``GET /api/surveys``                    read     ``{"surveys": [...]}``
``GET /api/surveys.csv``                read     CSV export
``GET /``, static files                 open     the dashboard (``ivr/admin/static/``)
======================================  =======  ==========================================

Access: *write* needs ``Authorization: Bearer <IVR_ADMIN_TOKEN>`` (403 when no token is
configured); *read* needs it too unless ``admin.open_read`` is true; *open* never does. A
missing or wrong token is 401 with ``WWW-Authenticate: Bearer``. Every error is JSON
``{"error": "..."}``.

``/api/validate`` is open, so it is bounded: bodies up to :data:`VALIDATE_MAX_BYTES` (413
beyond), :data:`VALIDATE_CONCURRENCY` validations at once in threads of their own (429 with
``Retry-After`` beyond), 503 after :data:`VALIDATE_TIMEOUT_S`; a validation that outlives its
request keeps its thread slot until it ends, so timed-out work cannot pile up.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from ivr.admin import queries as q
from ivr.admin.console import Console, mask_caller
from ivr.admin.slots import ThreadSlots
from ivr.config import AdminSettings
from ivr.errors import FlowError, FlowErrors, StoreError
from ivr.flow.graph import GraphvizError, flow_svg
from ivr.flow.library import subflow_errors
from ivr.flow.loader import parse_flow
from ivr.flow.registry import error_dict
from ivr.flow.schema import flow_schema
from ivr.kpi import report
from ivr.metrics import CONTENT_TYPE
from ivr.store.records import RecordStore

log = logging.getLogger("ivr.admin")

Level = Literal["open", "read", "write"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STATIC = Path(str(resources.files("ivr.admin").joinpath("static")))
VALIDATE_TIMEOUT_S = 10.0
VALIDATE_CONCURRENCY = 2  # validation threads at once; more requests get 429
VALIDATE_MAX_BYTES = 256 * 1024  # ~12,000 nodes, validated in about 1.5 s
RETRY_AFTER_S = 5
GRAPH_CACHE = 32

CONSOLE: web.AppKey[Console] = web.AppKey("console", Console)
SETTINGS = web.AppKey("settings", AdminSettings)
LEVELS = web.AppKey("levels", dict[str, str])


class ApiError(Exception):
    """An error answer: ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def make_admin_app(console: Console, settings: AdminSettings) -> web.Application:
    """The admin API for ``console``, with the access rules of ``settings``."""
    app = web.Application(middlewares=[_errors, _auth], client_max_size=settings.max_body_bytes)
    app[CONSOLE] = console
    app[SETTINGS] = settings
    levels: dict[str, str] = {}
    app[LEVELS] = levels
    api = _Api(console)
    app.on_cleanup.append(api.close)

    def route(method: str, path: str, handler: Handler, level: Level) -> None:
        name = handler.__name__
        levels[name] = level
        app.router.add_route(method, path, handler, name=name)

    route("GET", "/healthz", api.healthz, "open")
    route("GET", "/metrics", api.metrics, "open")
    route("GET", "/api/calls", api.calls, "read")
    route("GET", "/api/kpis", api.kpis, "read")
    route("GET", "/api/queues", api.queues, "read")
    route("GET", "/api/flows", api.flows, "read")
    route("POST", "/api/flows/reload", api.reload, "write")
    route("GET", "/api/flows/{name}", api.flow, "read")
    route("GET", "/api/flows/{name}/graph.svg", api.graph, "read")
    route("GET", "/api/schema", api.schema, "read")
    route("POST", "/api/validate", api.validate, "open")
    route("GET", "/api/surveys", api.surveys, "read")
    route("GET", "/api/surveys.csv", api.surveys_csv, "read")
    route("GET", "/{path:(?!api/).*}", api.static, "open")  # last: other GET paths
    return app


# --- middleware -----------------------------------------------------------------------------


def _json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes JSON ``{"error": ...}``; nothing a client sends crashes us."""
    try:
        return await handler(request)
    except ApiError as exc:
        return _json_error(exc.status, exc.message, exc.headers)
    except q.BadQuery as exc:
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


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = request.match_info.route
    if request.match_info.http_exception is not None or route.name is None:
        return await handler(request)  # 404/405: say so, whoever asks
    level = request.app[LEVELS].get(route.name, "read")
    settings = request.app[SETTINGS]
    if level == "open" or (level == "read" and settings.open_read):
        return await handler(request)
    if settings.token is None:
        hint = "" if level == "write" else " (or admin.open_read: true for read-only access)"
        raise ApiError(403, f"set IVR_ADMIN_TOKEN to use this endpoint{hint}")
    given = _bearer(request)
    if given is None:
        raise ApiError(401, "this endpoint needs 'Authorization: Bearer <IVR_ADMIN_TOKEN>'",
                       {"WWW-Authenticate": 'Bearer realm="ivr"'})
    if not hmac.compare_digest(given, settings.token.reveal()):
        raise ApiError(401, "the token was refused",
                       {"WWW-Authenticate": 'Bearer realm="ivr", error="invalid_token"'})
    return await handler(request)


def _bearer(request: web.Request) -> bytes | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip().encode("utf-8", "surrogateescape")


# --- handlers -------------------------------------------------------------------------------


class _Api:
    def __init__(self, console: Console) -> None:
        self.console = console
        self._validations = ThreadSlots(VALIDATE_CONCURRENCY, "ivr-validate")
        self._graphs: dict[tuple[str, str], str] = {}

    async def close(self, app: web.Application) -> None:
        self._validations.close()

    def _store(self) -> RecordStore:
        store = self.console.store
        if store is None:
            raise ApiError(503, "the call-record store is not open")
        return store

    async def healthz(self, request: web.Request) -> web.Response:
        checks = await self.console.health()
        core = all(checks.get(n) is not None and checks[n].status == "up"
                   for n in ("fastagi", "store"))
        degraded = any(h.status == "down" for h in checks.values())
        status = "down" if not core else "degraded" if degraded else "ok"
        return web.json_response({
            "status": status,
            "components": {n: {"status": h.status, "detail": h.detail}
                           for n, h in checks.items()},
        }, status=200 if core else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.console.metrics.render(),
                            headers={"Content-Type": CONTENT_TYPE})

    async def calls(self, request: web.Request) -> web.Response:
        query = request.query
        live = q.flag(query, "live")
        flow = q.text(query, "flow")
        outcome = q.outcome(query)
        tz = q.zone(query)
        since, until = q.time_range(query, tz)
        limit = q.integer(query, "limit", 50, 1, 1000)
        recent = await _read(self._store().recent(
            limit=limit, flow=flow, outcome=outcome, since=since, until=until))
        calls = [c.to_dict() for c in self.console.live_calls()
                 if live and (flow is None or c.flow == flow)]
        return web.json_response({"live": calls, "recent": [_public(r.to_dict())
                                                           for r in recent]})

    async def kpis(self, request: web.Request) -> web.Response:
        query = request.query
        tz = q.zone(query)
        since, until = q.time_range(query, tz)
        records = await _read(q.records_in_range(
            self._store(), flow=q.text(query, "flow"), since=since, until=until))
        data = await asyncio.to_thread(report, records, tz=tz)
        return web.json_response(data)

    async def queues(self, request: web.Request) -> web.Response:
        health = await self.console.health()
        ami = health["ami"].status if "ami" in health else "off"
        return web.json_response({"ami": ami, "queues": await self.console.queue_state()})

    async def flows(self, request: web.Request) -> web.Response:
        registry = self.console.flows
        out = []
        for name, flow in sorted(registry.flows.items()):
            current = registry.current(name)
            out.append({
                "name": name, "version": flow.version, "file": flow.file,
                "loaded_at": current.loaded_at if current else None,
                "versions": [v.to_dict() for v in reversed(registry.versions(name))],
                "nodes": len(flow.nodes),
            })
        last = registry.last
        return web.json_response({
            "flows": out, "errors": [error_dict(e) for e in registry.errors],
            "reload": last.to_dict() if last is not None else None,
        })

    async def flow(self, request: web.Request) -> web.Response:
        registry = self.console.flows
        name = request.match_info["name"]
        flow = registry.get(name)
        if flow is None:
            raise ApiError(404, f"no flow named {name!r} is loaded")
        wanted = q.text(request.query, "version") or flow.version
        version = next((v for v in reversed(registry.versions(name)) if v.version == wanted),
                       None)
        if version is None:
            raise ApiError(404, f"flow {name!r} has no version {wanted!r} in its history")
        if version.source is None:
            raise ApiError(404, f"the text of {name} version {wanted} was not kept (the file "
                           "changed again while it was loading)")
        return web.json_response({
            "name": name, "version": version.version, "file": version.file,
            "loaded_at": version.loaded_at, "current": version.version == flow.version,
            "source": version.source,
        })

    async def graph(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        flow = self.console.flows.get(name)
        if flow is None:
            raise ApiError(404, f"no flow named {name!r} is loaded")
        key = (name, flow.version)
        svg = self._graphs.get(key)
        if svg is None:
            try:
                svg = await asyncio.to_thread(flow_svg, flow)
            except GraphvizError as exc:
                raise ApiError(503, str(exc)) from None
            if len(self._graphs) >= GRAPH_CACHE:
                self._graphs.pop(next(iter(self._graphs)))
            self._graphs[key] = svg
        return web.Response(text=svg, content_type="image/svg+xml")

    async def reload(self, request: web.Request) -> web.Response:
        result = await self.console.flows.reload("admin API")
        body = result.to_dict()
        if result.result == "error":
            return web.json_response({"error": result.message, **body}, status=500)
        return web.json_response(body)

    async def schema(self, request: web.Request) -> web.Response:
        return web.json_response(flow_schema())

    async def validate(self, request: web.Request) -> web.Response:
        text = await _flow_text(request)
        name = q.text(request.query, "name") or _declared_name(text) or "pasted"
        if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
            raise ApiError(400, "name: letters, digits, - and _ only")
        job = self._validations.start(self._check, text, name)
        if job is None:
            raise ApiError(429, f"{VALIDATE_CONCURRENCY} validations are already running; try "
                           f"again in {RETRY_AFTER_S} s", {"Retry-After": str(RETRY_AFTER_S)})
        try:  # shielded: a request that gives up leaves the job its slot until its thread ends
            errors = await asyncio.wait_for(asyncio.shield(job), VALIDATE_TIMEOUT_S)
        except TimeoutError:
            raise ApiError(503, f"validation took longer than {VALIDATE_TIMEOUT_S:g} s",
                           {"Retry-After": str(RETRY_AFTER_S)}) from None
        return web.json_response({"ok": not errors, "errors": [
            {"line": e.line, "col": e.col, "node": e.node, "message": e.message}
            for e in errors]})

    def _check(self, text: str, name: str) -> list[FlowError]:
        """Blocking: the same checks as ``ivr validate`` for one pasted file; sub-flow calls
        must name a flow the server has loaded (or this one)."""
        registry = self.console.flows
        try:
            flow = parse_flow(text, file=f"{name}.yaml", name=name,
                              prompts_dir=registry.prompts_dir)
        except FlowErrors as exc:
            return exc.errors
        return subflow_errors({**registry.flows, name: flow})

    async def surveys(self, request: web.Request) -> web.Response:
        query = request.query
        limit = q.integer(query, "limit", 20, 1, 500)
        rows = await _read(q.recent_surveys(self._store(), flow=q.text(query, "flow"),
                                            limit=limit))
        return web.json_response({"surveys": rows})

    async def surveys_csv(self, request: web.Request) -> web.Response:
        query = request.query
        tz = q.zone(query)
        since, until = q.time_range(query, tz)
        records = await _read(q.records_in_range(
            self._store(), flow=q.text(query, "flow"), since=since, until=until))
        return web.Response(
            text=q.surveys_csv(records), content_type="text/csv", charset="utf-8",
            headers={"Content-Disposition": 'attachment; filename="surveys.csv"'})

    async def static(self, request: web.Request) -> web.FileResponse:
        """The dashboard's files (``/`` is ``index.html``); nothing outside ``static/``."""
        path = request.match_info["path"] or "index.html"
        root = STATIC.resolve()
        file = (root / path).resolve()
        if not file.is_relative_to(root) or not file.is_file():
            raise ApiError(404, f"not found: /{path}")
        return web.FileResponse(file, headers={"Cache-Control": "no-cache"})


async def _read(job: Awaitable[Any]) -> Any:
    """A store read; a bad query is 400, a failing store 503."""
    try:
        return await job
    except q.BadQuery as exc:
        raise ApiError(400, str(exc)) from None
    except StoreError as exc:
        log.error("admin API: store read failed: %s", exc)
        raise ApiError(503, "the call-record store failed (see the server log)") from None


async def _flow_text(request: web.Request) -> str:
    """The posted flow: UTF-8, at most :data:`VALIDATE_MAX_BYTES` (validation time grows with
    the size; the whole API's ``admin.max_body_bytes`` is larger)."""
    if (request.content_length or 0) > VALIDATE_MAX_BYTES:
        raise ApiError(413, _TOO_BIG)
    body = await request.read()
    if len(body) > VALIDATE_MAX_BYTES:  # chunked: no Content-Length to check first
        raise ApiError(413, _TOO_BIG)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "the body must be UTF-8 YAML text") from None


_TOO_BIG = (f"a flow sent here is at most {VALIDATE_MAX_BYTES // 1024} KiB; check larger files "
            "with ivr validate")


def _declared_name(text: str) -> str | None:
    found = re.search(r"^flow:[ \t]*[\"']?([A-Za-z0-9_-]+)", text, re.MULTILINE)
    return found.group(1) if found else None


def _public(record: dict[str, Any]) -> dict[str, Any]:
    """A record for the API: the caller masked like live calls (flow values already are)."""
    return {**record, "caller": mask_caller(str(record.get("caller", "")))}
