"""``ivr flows history|diff|rollback``: a flow's published versions, from the running server.

Each command asks the server's admin API (``--url``, default ``http://<admin.host>:<admin.port>``
of the configuration) with the admin token of the configuration (``IVR_ADMIN_TOKEN`` or
``IVR_ADMIN_TOKEN_FILE``), so a rollback goes through the server's own checks and reload,
and is recorded with who asked (``user@host``, sent as ``by``).
"""

from __future__ import annotations

import argparse
import getpass
import json
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ivr.config import Settings, load_settings
from ivr.errors import ConfigError, IvrError

__all__ = ["add_flows_parser"]

TIMEOUT_S = 30.0  # a rollback renders the flow's prompts before it serves


class AdminApiError(IvrError):
    """The admin API said no (``status``; ``errors``: a refused flow's problems)."""

    def __init__(self, status: int, message: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors


def add_flows_parser(sub: Any) -> None:
    """Register ``ivr flows`` and its actions on the CLI's subparsers."""
    flows = sub.add_parser(
        "flows", help="published flow versions: history, diff, rollback (asks the server)"
    )
    actions = flows.add_subparsers(required=True, metavar="ACTION")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", help="configuration file (admin.host, admin.port, token)")
        p.add_argument("--url", help="the admin API (default: http://<admin.host>:<admin.port>)")

    history = actions.add_parser(
        "history", help="published versions, newest first, with the calls that ran each"
    )
    history.add_argument("name", help="flow name")
    history.add_argument(
        "--tz", help="time zone of the times (default: the flow's timezone, else UTC)"
    )
    history.add_argument("--limit", type=int, default=50, help="versions shown (default 50)")
    common(history)
    history.set_defaults(func=_history)

    diff = actions.add_parser(
        "diff", help="unified diff of two versions (default: the previous one and the current)"
    )
    diff.add_argument("name", help="flow name")
    diff.add_argument("old", nargs="?", help="version (id, hash or its start); default: previous")
    diff.add_argument("new", nargs="?", help="version to compare with; default: the current one")
    common(diff)
    diff.set_defaults(func=_diff)

    rollback = actions.add_parser(
        "rollback", help="publish a stored version again (checked first, then reloaded)"
    )
    rollback.add_argument("name", help="flow name")
    rollback.add_argument("version", help="version to publish again (id, hash or its start)")
    rollback.add_argument("--reason", default="", help="why, kept in the history")
    common(rollback)
    rollback.set_defaults(func=_rollback)


def _history(args: argparse.Namespace) -> int:
    name = args.name
    try:
        data = _api(args, "GET", f"/api/flows/{_q(name)}/versions?limit={int(args.limit)}")
    except AdminApiError as exc:
        return _refused(exc)
    zone = _zone(args.tz or data.get("timezone") or "UTC")
    serving = data.get("current") or "none (not loaded)"
    print(f"flow {name}: serving {serving}; times in {zone.key}")
    rows = [
        (
            ("* " if v["current"] else "  ") + str(v["id"]),
            v["version"],
            datetime.fromtimestamp(v["published_at"], zone).strftime("%Y-%m-%d %H:%M:%S"),
            v["published_by"] or "-",
            v["reason"] or "-",
            str(v["calls"]),
        )
        for v in data["versions"]
    ]
    head = ("  id", "version", "published", "by", "reason", "calls")
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    for row in (head, *rows):
        cells = [c.ljust(w) for c, w in zip(row[:-1], widths, strict=False)]
        cells.append(row[-1].rjust(widths[-1]))  # calls: a number
        print("  ".join(cells).rstrip())
    if not rows:
        print("(no stored versions)")
    return 0


def _diff(args: argparse.Namespace) -> int:
    query = {k: v for k, v in (("from", args.old), ("to", args.new)) if v}
    path = f"/api/flows/{_q(args.name)}/diff"
    if query:
        path += "?" + urllib.parse.urlencode(query)
    try:
        data = _api(args, "GET", path)
    except AdminApiError as exc:
        return _refused(exc)
    sys.stdout.write(data["diff"] or f"# versions {data['from']['id']} and "
                     f"{data['to']['id']} have the same text\n")  # fmt: skip
    return 0


def _rollback(args: argparse.Namespace) -> int:
    body = {"version": args.version, "by": _who(), "reason": args.reason}
    try:
        data = _api(args, "POST", f"/api/flows/{_q(args.name)}/rollback", body)
    except AdminApiError as exc:
        return _refused(exc)
    row = data.get("published") or {}
    print(
        f"flow {args.name} now serves {data['rolled_back_to']}"
        + (f" (version #{row['id']}: {row['reason']})" if row else "")
    )
    return 0


def _refused(exc: AdminApiError) -> int:
    print(f"ivr flows: {exc}", file=sys.stderr)
    for e in exc.errors:
        where = ":".join(str(x) for x in (e.get("file"), e.get("line"), e.get("col")) if x)
        print(f"  {where}: {e.get('message')}", file=sys.stderr)
    return 1


def _api(
    args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None
) -> Any:
    settings = load_settings(args.config)
    url = (args.url or _default_url(settings)).rstrip("/") + path
    headers = {"Accept": "application/json"}
    if settings.admin.token is not None:
        headers["Authorization"] = f"Bearer {settings.admin.token.reveal().decode()}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            answer = json.loads(exc.read())
        except ValueError:
            answer = {}
        message = answer.get("error") or f"HTTP {exc.code}"
        if exc.code in (401, 403) and settings.admin.token is None:
            message += " (set IVR_ADMIN_TOKEN or IVR_ADMIN_TOKEN_FILE)"
        raise AdminApiError(exc.code, message, answer.get("errors") or []) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConfigError(f"cannot reach the admin API at {url}: {reason} (is ivr serve "
                          "running? see --url)") from None  # fmt: skip


def _default_url(settings: Settings) -> str:
    host = settings.admin.host
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"  # listening everywhere: ask it here
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.admin.port}"


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {name!r} (e.g. UTC, Europe/London)") from None


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _q(name: str) -> str:
    return urllib.parse.quote(name, safe="")
