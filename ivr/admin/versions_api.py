"""The admin API's flow version endpoints: the published versions of a flow (from the store's
``flow_versions``, newest first, with the calls that ran each), one version's YAML, a unified
diff between two, and rollback.

A version is named by its row id, its version (content hash), or the start of exactly one
stored version. Rollback publishes the stored text again through
:func:`ivr.flow.republish.republish` (checked first, refused with the errors when it would
not load now, then the same reload as an edit) and answers with the new row. Who asked is
kept with each reload and rollback: the body's ``by`` (the CLI sends ``user@host``) and the
client address, else ``admin API`` and the address; the token is the only identity.
"""

from __future__ import annotations

import difflib
import json
import logging
from dataclasses import asdict
from typing import Any

from aiohttp import web

from ivr.admin.console import Console
from ivr.admin.stored import read_store, record_store
from ivr.errors import ApiError, FlowErrors
from ivr.flow.registry import error_dict
from ivr.flow.republish import republish
from ivr.reporting import queries as q
from ivr.store.flow_versions import FlowVersionRow, FlowVersionStore

__all__ = ["VersionEndpoints", "publish_request"]

log = logging.getLogger("ivr.admin")

MAX_TEXT = 120  # characters of a request's `by` or `reason`


class VersionEndpoints:
    """The version handlers over ``console``."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def _table(self) -> FlowVersionStore:
        return FlowVersionStore(record_store(self.console))

    async def versions(self, request: web.Request) -> web.Response:
        """``{"name", "current", "timezone", "versions": [...]}``: newest first, ``?limit=``
        (100); ``timezone`` is the serving flow's (``UTC`` when it is not loaded)."""
        name = request.match_info["name"]
        limit = q.integer(request.query, "limit", 100, 1, 1000)
        rows = await read_store(self._table().history(name, limit))
        serving = self.console.flows.get(name)
        if not rows and serving is None:
            raise ApiError(404, f"flow {name!r} is not loaded and has no stored versions")
        current = serving.version if serving else None
        shown = [_shown(r, None) for r in rows]
        newest = next((v for v in shown if v["version"] == current), None)
        if newest is not None:  # the newest row of the serving version, not older copies
            newest["current"] = True
        return web.json_response(
            {
                "name": name,
                "current": current,
                "timezone": serving.timezone if serving else "UTC",  # the flow's clock
                "versions": shown,
            }
        )

    async def version(self, request: web.Request) -> web.Response:
        """One version with its YAML (``content``)."""
        name = request.match_info["name"]
        row = await self._find(name, request.match_info["ref"])
        return web.json_response(_shown(row, self._serving(name), content=True))

    async def diff(self, request: web.Request) -> web.Response:
        """``?from=&to=``: a unified diff of the stored texts; ``to`` defaults to the version
        serving (else the newest stored), ``from`` to the version published before it."""
        name = request.match_info["name"]
        table = self._table()
        wanted_to = q.text(request.query, "to") or self._serving(name)
        if wanted_to:
            new = await self._find(name, wanted_to)
        else:
            latest = await read_store(table.latest(name))
            if latest is None:
                raise ApiError(404, f"flow {name!r} has no stored versions")
            new = latest
        wanted_from = q.text(request.query, "from")
        if wanted_from:
            old = await self._find(name, wanted_from)
        else:
            history = await read_store(table.history(name, 1000))
            before = next((r for r in history if r.id < new.id and r.version != new.version), None)
            if before is None:
                raise ApiError(404, f"flow {name!r} has no version before {new.version}")
            found = await read_store(table.get(before.id))
            assert found is not None  # rows are never removed
            old = found
        text = "".join(
            difflib.unified_diff(
                (old.content or "").splitlines(keepends=True),
                (new.content or "").splitlines(keepends=True),
                fromfile=f"{name} #{old.id} {old.version}",
                tofile=f"{name} #{new.id} {new.version}",
            )
        )
        serving = self._serving(name)
        return web.json_response(
            {"name": name, "from": _shown(old, serving), "to": _shown(new, serving), "diff": text}
        )

    async def rollback(self, request: web.Request) -> web.Response:
        """``{"version": ref, "by"?, "reason"?}``: publish that version's text again."""
        name = request.match_info["name"]
        body = await publish_request(request)
        ref = body.get("version")
        if not isinstance(ref, str | int) or not str(ref).strip():
            raise ApiError(400, 'give the version to roll back to: {"version": "..."}')
        row = await self._find(name, str(ref))
        if row.version == self._serving(name):
            raise ApiError(409, f"flow {name} already serves version {row.version}")
        reason = f"rollback to {row.version}"
        if body["reason"]:
            reason += f": {body['reason']}"
        try:
            await republish(
                self.console.flows,
                name,
                row.content or "",
                reason=reason,
                by=body["by"],
                stored=row.file,
            )
        except FlowErrors as exc:
            return web.json_response(
                {
                    "error": f"version {row.version} of {name} no longer loads; nothing changed",
                    "errors": [error_dict(e) for e in exc.errors],
                },
                status=422,
            )
        except OSError as exc:
            log.error("rollback of %s to %s: cannot write the file: %s", name, row.version, exc)
            raise ApiError(500, f"cannot write the flow file: {exc.strerror or exc}") from None
        latest = await read_store(self._table().latest(name))
        return web.json_response(
            {
                "name": name,
                "rolled_back_to": row.version,
                "published": _shown(latest, row.version) if latest else None,
            }
        )

    def _serving(self, name: str) -> str | None:
        flow = self.console.flows.get(name)
        return flow.version if flow else None

    async def _find(self, name: str, ref: str) -> FlowVersionRow:
        row = await read_store(self._table().find(name, ref))
        if row is None:
            raise ApiError(
                404, f"flow {name!r} has no stored version {ref!r} (or that start fits several)"
            )
        return row


async def publish_request(request: web.Request, *, strict: bool = True) -> dict[str, Any]:
    """A reload's or rollback's JSON body (empty: none) with ``by`` (who asked, and from
    which address) and ``reason`` (``""`` when not given) filled in. Not ``strict`` (a
    reload, which never needed a body): a body that is not a JSON object is ignored."""
    raw = await request.read()
    body: Any = {}
    if raw.strip():
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            body = None
    if not isinstance(body, dict):
        if strict:
            raise ApiError(400, "the body must be a JSON object")
        body = {}
    who = _short(body.get("by"), "by") or "admin API"
    return {
        **body,
        "by": f"{who} ({request.remote or 'unknown'})",
        "reason": _short(body.get("reason"), "reason"),
    }


def _short(value: object, key: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ApiError(400, f"{key}: a string")
    text = " ".join(value.split())  # one line: it goes to the log and the history
    if len(text) > MAX_TEXT:
        raise ApiError(400, f"{key}: at most {MAX_TEXT} characters")
    return text


def _shown(row: FlowVersionRow, serving: str | None, *, content: bool = False) -> dict[str, Any]:
    out = asdict(row)
    if not content:
        out.pop("content")
    out["current"] = row.version == serving
    return out
