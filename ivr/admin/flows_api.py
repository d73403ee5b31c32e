"""The admin API's flow endpoints: the loaded flows and their versions, a version's YAML
source, the flow picture, reload, the flow JSON Schema, and validation of a pasted flow.

``/api/validate`` is a *read* endpoint (it names the loaded flows and costs CPU) and bounded
even when reads are open: bodies up to :data:`VALIDATE_MAX_BYTES` (413 beyond),
:data:`VALIDATE_CONCURRENCY` validations at once in threads of their own (429 with
``Retry-After`` beyond), 503 after :data:`VALIDATE_TIMEOUT_S`; a validation that outlives its
request keeps its thread slot until it ends, so timed-out work cannot pile up.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp import web

from ivr.admin.console import Console
from ivr.admin.slots import ThreadSlots
from ivr.admin.versions_api import publish_request
from ivr.errors import ApiError, FlowError, FlowErrors, GraphvizError
from ivr.flow.diagnostics import Diagnostic, Severity
from ivr.flow.graph import flow_svg
from ivr.flow.library import subflow_errors
from ivr.flow.loader import parse_flow
from ivr.flow.registry import error_dict
from ivr.flow.schema import flow_schema
from ivr.flow.validate import flow_warnings
from ivr.reporting import queries as q

VALIDATE_TIMEOUT_S = 10.0
VALIDATE_CONCURRENCY = 2  # validation threads at once; more requests get 429
VALIDATE_MAX_BYTES = 256 * 1024  # ~12,000 nodes, validated in about 1.5 s
RETRY_AFTER_S = 5
GRAPH_CACHE = 32


class FlowEndpoints:
    """The flow handlers over ``console``; :meth:`close` (an ``on_cleanup`` hook) stops the
    validation threads."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._validations = ThreadSlots(VALIDATE_CONCURRENCY, "ivr-validate")
        self._graphs: dict[tuple[str, str], str] = {}

    async def close(self, app: web.Application) -> None:
        """Stop the validation threads (the app is cleaning up)."""
        self._validations.close()

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
        """Reload now; the JSON body may say ``by`` (who) and ``reason`` (kept with each
        version this publishes; the reason defaults to ``reload``)."""
        body = await publish_request(request, strict=False)
        result = await self.console.flows.reload(body["reason"] or "reload", body["by"])
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
            errors, warnings = await asyncio.wait_for(asyncio.shield(job), VALIDATE_TIMEOUT_S)
        except TimeoutError:
            raise ApiError(
                503,
                f"validation took longer than {VALIDATE_TIMEOUT_S:g} s",
                {"Retry-After": str(RETRY_AFTER_S)},
            ) from None
        return web.json_response(validation_body(errors, warnings))

    def _check(self, text: str, name: str) -> tuple[list[FlowError], list[FlowError]]:
        """Blocking: the same checks as ``ivr validate`` for one pasted file (its errors and
        its warnings, judged at the server's now); sub-flow calls must name a flow the server
        has loaded (or this one)."""
        registry = self.console.flows
        try:
            flow = parse_flow(
                text, file=f"{name}.yaml", name=name, prompts_dir=registry.prompts_dir
            )
        except FlowErrors as exc:
            return exc.errors, []
        return subflow_errors({**registry.flows, name: flow}), flow_warnings(flow, registry.clock())


def validation_body(errors: list[FlowError], warnings: list[FlowError]) -> dict[str, Any]:
    """``POST /api/validate``'s answer: ``ok`` (no error; warnings do not fail a flow), then
    the errors and the warnings, each with its place, ``severity``, ``message`` and, when the
    message says how to fix it, ``fix`` (as ``ivr validate --format json`` writes them)."""

    def item(error: FlowError, severity: Severity) -> dict[str, Any]:
        found = Diagnostic.of(error, severity)
        where = {"line": error.line, "col": error.col, "node": error.node}
        return {**where, "severity": severity, "message": found.message, "fix": found.fix}

    return {
        "ok": not errors,
        "errors": [item(e, "error") for e in errors],
        "warnings": [item(w, "warning") for w in warnings],
    }


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
