"""The admin HTTP API of ``ivr serve`` (aiohttp), and the dashboard's static files.

======================================  =======  ==========================================
endpoint                                access   answer
======================================  =======  ==========================================
``GET /healthz``                        open     components; 200, or 503 when FastAGI or
                                                 the store is down
``GET /metrics``                        open     Prometheus text exposition
``GET /api/calls``                      read     ``{"live": [...], "recent": [...]}``
``GET /api/kpis``                       read     :func:`ivr.reporting.kpi.report` of a range
``GET /api/queues``                     read     ``{"ami": status, "queues": [...]}``
``GET /api/flows``                      read     flows, versions, errors, last reload
``GET /api/flows/{name}``               read     the YAML source of a version
``GET /api/flows/{name}/graph.svg``     read     the flow picture (Graphviz)
``POST /api/flows/reload``              write    reload result
``GET /api/schema``                     read     the flow JSON Schema
``POST /api/validate``                  read     ``{"ok": bool, "errors": [...]}``
``GET /api/surveys``                    read     ``{"surveys": [...]}``
``GET /api/surveys.csv``                read     CSV export
``GET /``, static files                 open     the dashboard (``ivr/admin/static/``)
======================================  =======  ==========================================

Access: *write* needs ``Authorization: Bearer <IVR_ADMIN_TOKEN>`` (403 when no token is
configured); *read* needs it too unless ``admin.open_read`` is true; *open* never does. A
missing or wrong token is 401 with ``WWW-Authenticate: Bearer``. Every error is JSON
``{"error": "..."}``.

Hardening (see SECURITY.md): a request whose ``Host`` is not one of the console's names
(:func:`allowed_host_names`) is refused with 421 before anything else, against DNS rebinding.
After :data:`TOKEN_FAILURES` refused tokens from one client address within
:data:`TOKEN_WINDOW_S` (a monotonic clock), that address's tokens are refused unchecked (429
with ``Retry-After``) until the oldest failure leaves the window. Every answer carries
:data:`SECURITY_HEADERS`: a Content-Security-Policy without inline code, frame denial,
``nosniff`` and ``Referrer-Policy: no-referrer``.

``/api/validate`` is a *read* endpoint (it names the loaded flows and costs CPU) and bounded
even when reads are open: bodies up to :data:`VALIDATE_MAX_BYTES` (413 beyond),
:data:`VALIDATE_CONCURRENCY` validations at once in threads of their own (429 with
``Retry-After`` beyond), 503 after :data:`VALIDATE_TIMEOUT_S`; a validation that outlives its
request keeps its thread slot until it ends, so timed-out work cannot pile up.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from ivr.admin.console import Console
from ivr.admin.slots import ThreadSlots
from ivr.call.record import mask_caller
from ivr.config import AdminSettings
from ivr.errors import (
    ApiError,
    BadQuery,
    ConfigError,
    FlowError,
    FlowErrors,
    GraphvizError,
    StoreError,
)
from ivr.flow.graph import flow_svg
from ivr.flow.library import subflow_errors
from ivr.flow.loader import parse_flow
from ivr.flow.registry import error_dict
from ivr.flow.schema import flow_schema
from ivr.metrics import CONTENT_TYPE
from ivr.reporting import queries as q
from ivr.reporting.kpi import report
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
TOKEN_FAILURES = 10  # refused tokens from one address within TOKEN_WINDOW_S, then 429
TOKEN_WINDOW_S = 60.0
TOKEN_CLIENTS_MAX = 10_000  # addresses remembered; the oldest are forgotten beyond
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})

# the dashboard loads its scripts and styles from files only (no inline code, no eval); the
# favicon is a data: URL; fetch() goes to this origin; nothing may frame it
CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}

Clock = Callable[[], float]

CONSOLE: web.AppKey[Console] = web.AppKey("console", Console)
SETTINGS = web.AppKey("settings", AdminSettings)
LEVELS = web.AppKey("levels", dict[str, str])
HOSTS = web.AppKey("hosts", frozenset[str])


def make_admin_app(
    console: Console, settings: AdminSettings, *, clock: Clock = time.monotonic
) -> web.Application:
    """The admin API for ``console``, with the access rules of ``settings`` (:class:`ConfigError`
    for a bad ``admin.allowed_hosts``); ``clock`` times the refused-token window."""
    app = web.Application(
        middlewares=[_errors, _host, _auth], client_max_size=settings.max_body_bytes
    )
    app[CONSOLE] = console
    app[SETTINGS] = settings
    app[HOSTS] = allowed_host_names(settings)
    app[FAILURES] = FailedTokens(clock=clock)
    app.on_response_prepare.append(security_headers)
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
    route("POST", "/api/validate", api.validate, "read")
    route("GET", "/api/surveys", api.surveys, "read")
    route("GET", "/api/surveys.csv", api.surveys_csv, "read")
    route("GET", "/{path:(?!api/).*}", api.static, "open")  # last: other GET paths
    return app


# --- hardening ------------------------------------------------------------------------------


class FailedTokens:
    """Refused tokens per client address, in a sliding window of ``window_s`` on a monotonic
    clock: after ``limit`` of them the address waits until the oldest leaves the window. At most
    ``max_clients`` addresses are remembered (the oldest are forgotten first)."""

    def __init__(
        self,
        limit: int = TOKEN_FAILURES,
        window_s: float = TOKEN_WINDOW_S,
        *,
        clock: Clock = time.monotonic,
        max_clients: int = TOKEN_CLIENTS_MAX,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self.max_clients = max_clients
        self._seen: dict[str, deque[float]] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def count(self, client: str) -> int:
        """Refused tokens from ``client`` in the window now."""
        return len(self._recent(client, self.clock()) or ())

    def retry_after(self, client: str) -> float | None:
        """Seconds until ``client`` may try a token again; ``None``: now."""
        now = self.clock()
        times = self._recent(client, now)
        if times is None or len(times) < self.limit:
            return None
        return times[0] + self.window_s - now

    def failed(self, client: str) -> bool:
        """Count a refused token; true when it is the one that reaches the limit."""
        now = self.clock()
        times = self._recent(client, now)
        if times is None:
            if len(self._seen) >= self.max_clients:
                self._prune(now)
            times = self._seen[client] = deque(maxlen=self.limit)
        times.append(now)
        return len(times) == self.limit

    def _recent(self, client: str, now: float) -> deque[float] | None:
        times = self._seen.get(client)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._seen[client]
            return None
        return times

    def _prune(self, now: float) -> None:
        for client in list(self._seen):
            self._recent(client, now)
        while len(self._seen) >= self.max_clients:
            del self._seen[next(iter(self._seen))]


FAILURES = web.AppKey("failures", FailedTokens)

_HOST_HEADER = re.compile(r"(?:\[(?P<ip6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9._-]+))(?::[0-9]{1,5})?")
_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?")
_IP6 = re.compile(r"[0-9a-f]*:[0-9a-f:.]*")


def host_name(header: str) -> str | None:
    """The name in a ``Host`` header (lower case, no port, brackets or final dot); ``None``
    when it is not ``name[:port]`` or ``[ipv6][:port]``."""
    found = _HOST_HEADER.fullmatch(header.lower())
    if found is None:
        return None
    return found["ip6"] or found["name"].removesuffix(".")


def allowed_host_names(settings: AdminSettings) -> frozenset[str]:
    """The names a request's ``Host`` may carry: localhost, 127.0.0.1, ::1, ``admin.host``
    (unless it is a wildcard address) and ``admin.allowed_hosts``."""
    names = set(LOOPBACK_NAMES)
    if settings.host not in WILDCARD_HOSTS:
        name = _config_name(settings.host)
        if name is not None:
            names.add(name)
    for entry in settings.allowed_hosts:
        name = _config_name(entry.strip())
        if name is None:
            raise ConfigError(
                f"admin.allowed_hosts: {entry!r} is not a host name or address "
                "(names only: no port, scheme, path or wildcard)"
            )
        names.add(name)
    return frozenset(names)


def _config_name(entry: str) -> str | None:
    name = entry.lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
        return name if _IP6.fullmatch(name) else None
    if _IP6.fullmatch(name):
        return name
    return name.removesuffix(".") if _NAME.fullmatch(name) else None


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)


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


@web.middleware
async def _host(request: web.Request, handler: Handler) -> web.StreamResponse:
    """DNS rebinding: a page of another site whose name now points here sends its own name as
    ``Host``; it gets nothing but this refusal."""
    name = host_name(request.headers.get("Host", ""))
    if name is None or name not in request.app[HOSTS]:
        raise ApiError(
            421,
            "this console does not answer for that Host name; it answers for "
            "localhost, 127.0.0.1, [::1], admin.host and admin.allowed_hosts",
        )
    return await handler(request)


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
        raise ApiError(
            401,
            "this endpoint needs 'Authorization: Bearer <IVR_ADMIN_TOKEN>'",
            {"WWW-Authenticate": 'Bearer realm="ivr"'},
        )
    failures = request.app[FAILURES]
    client = request.remote or "unknown"
    wait = failures.retry_after(client)
    if wait is not None:  # the token is not even compared: guessing stops here
        seconds = str(max(1, math.ceil(wait)))
        raise ApiError(
            429,
            f"too many refused tokens from this address; try again in {seconds} s",
            {"Retry-After": seconds, "WWW-Authenticate": _REFUSED},
        )
    if not hmac.compare_digest(given, settings.token.reveal()):
        if failures.failed(client):
            log.warning(
                "admin: %d refused tokens from %s within %g s; its tokens are refused "
                "unchecked until the oldest is %g s old",
                failures.limit,
                client,
                failures.window_s,
                failures.window_s,
            )
        raise ApiError(401, "the token was refused", {"WWW-Authenticate": _REFUSED})
    return await handler(request)


_REFUSED = 'Bearer realm="ivr", error="invalid_token"'


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

    async def calls(self, request: web.Request) -> web.Response:
        query = request.query
        live = q.flag(query, "live")
        flow = q.text(query, "flow")
        outcome = q.outcome(query)
        tz = q.zone(query)
        since, until = q.time_range(query, tz)
        limit = q.integer(query, "limit", 50, 1, 1000)
        recent = await _read(
            self._store().recent(limit=limit, flow=flow, outcome=outcome, since=since, until=until)
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
        records = await _read(
            q.records_in_range(self._store(), flow=q.text(query, "flow"), since=since, until=until)
        )
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
            out.append(
                {
                    "name": name,
                    "version": flow.version,
                    "file": flow.file,
                    "loaded_at": current.loaded_at if current else None,
                    "versions": [v.to_dict() for v in reversed(registry.versions(name))],
                    "nodes": len(flow.nodes),
                }
            )
        last = registry.last
        return web.json_response(
            {
                "flows": out,
                "errors": [error_dict(e) for e in registry.errors],
                "reload": last.to_dict() if last is not None else None,
            }
        )

    async def flow(self, request: web.Request) -> web.Response:
        registry = self.console.flows
        name = request.match_info["name"]
        flow = registry.get(name)
        if flow is None:
            raise ApiError(404, f"no flow named {name!r} is loaded")
        wanted = q.text(request.query, "version") or flow.version
        version = next((v for v in reversed(registry.versions(name)) if v.version == wanted), None)
        if version is None:
            raise ApiError(404, f"flow {name!r} has no version {wanted!r} in its history")
        if version.source is None:
            raise ApiError(
                404,
                f"the text of {name} version {wanted} was not kept (the file "
                "changed again while it was loading)",
            )
        return web.json_response(
            {
                "name": name,
                "version": version.version,
                "file": version.file,
                "loaded_at": version.loaded_at,
                "current": version.version == flow.version,
                "source": version.source,
            }
        )

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
            raise ApiError(
                429,
                f"{VALIDATE_CONCURRENCY} validations are already running; try "
                f"again in {RETRY_AFTER_S} s",
                {"Retry-After": str(RETRY_AFTER_S)},
            )
        try:  # shielded: a request that gives up leaves the job its slot until its thread ends
            errors = await asyncio.wait_for(asyncio.shield(job), VALIDATE_TIMEOUT_S)
        except TimeoutError:
            raise ApiError(
                503,
                f"validation took longer than {VALIDATE_TIMEOUT_S:g} s",
                {"Retry-After": str(RETRY_AFTER_S)},
            ) from None
        return web.json_response(
            {
                "ok": not errors,
                "errors": [
                    {"line": e.line, "col": e.col, "node": e.node, "message": e.message}
                    for e in errors
                ],
            }
        )

    def _check(self, text: str, name: str) -> list[FlowError]:
        """Blocking: the same checks as ``ivr validate`` for one pasted file; sub-flow calls
        must name a flow the server has loaded (or this one)."""
        registry = self.console.flows
        try:
            flow = parse_flow(
                text, file=f"{name}.yaml", name=name, prompts_dir=registry.prompts_dir
            )
        except FlowErrors as exc:
            return exc.errors
        return subflow_errors({**registry.flows, name: flow})

    async def surveys(self, request: web.Request) -> web.Response:
        query = request.query
        limit = q.integer(query, "limit", 20, 1, 500)
        rows = await _read(q.recent_surveys(self._store(), flow=q.text(query, "flow"), limit=limit))
        return web.json_response({"surveys": rows})

    async def surveys_csv(self, request: web.Request) -> web.Response:
        query = request.query
        tz = q.zone(query)
        since, until = q.time_range(query, tz)
        records = await _read(
            q.records_in_range(self._store(), flow=q.text(query, "flow"), since=since, until=until)
        )
        return web.Response(
            text=q.surveys_csv(records),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": 'attachment; filename="surveys.csv"'},
        )

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
    except BadQuery as exc:
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


_TOO_BIG = (
    f"a flow sent here is at most {VALIDATE_MAX_BYTES // 1024} KiB; check larger files "
    "with ivr validate"
)


def _declared_name(text: str) -> str | None:
    found = re.search(r"^flow:[ \t]*[\"']?([A-Za-z0-9_-]+)", text, re.MULTILINE)
    return found.group(1) if found else None


def _public(record: dict[str, Any]) -> dict[str, Any]:
    """A record for the API: the caller masked like live calls (flow values already are)."""
    return {**record, "caller": mask_caller(str(record.get("caller", "")))}
