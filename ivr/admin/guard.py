"""Who may talk to the ops console, and the headers every answer carries.

Access: each route has a level (:data:`Level`). *write* needs ``Authorization: Bearer
<IVR_ADMIN_TOKEN>`` (403 when no token is configured), and so does *private* (a read of the
callers' own voices: recordings); *read* needs it too unless ``admin.open_read`` is true;
*open* never does. A missing or wrong token is 401 with
``WWW-Authenticate: Bearer``.

Hardening (see SECURITY.md): a request whose ``Host`` is not one of the console's names
(:func:`allowed_host_names`) is refused with 421 before anything else, against DNS rebinding.
After :data:`TOKEN_FAILURES` refused tokens from one client address within
:data:`TOKEN_WINDOW_S` (a monotonic clock), that address's tokens are refused unchecked (429
with ``Retry-After``) until the oldest failure leaves the window. Every answer carries
:data:`SECURITY_HEADERS`: a Content-Security-Policy without inline code, frame denial,
``nosniff`` and ``Referrer-Policy: no-referrer``.

Refusals are raised as :class:`ivr.errors.ApiError`; the API's error middleware, outside these
two, turns them into JSON.
"""

from __future__ import annotations

import hmac
import logging
import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Literal

from aiohttp import web

from ivr.config import AdminSettings
from ivr.errors import ApiError, ConfigError

log = logging.getLogger("ivr.admin")

Level = Literal["open", "read", "private", "write"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Clock = Callable[[], float]

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
        "media-src blob:",  # a message's WAV, fetched with the token, played from a blob
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


SETTINGS = web.AppKey("settings", AdminSettings)
LEVELS = web.AppKey("levels", dict[str, Level])
HOSTS = web.AppKey("hosts", frozenset[str])
FAILURES = web.AppKey("failures", FailedTokens)


def guard(
    app: web.Application, settings: AdminSettings, *, clock: Clock = time.monotonic
) -> dict[str, Level]:
    """Keep on ``app`` what :func:`check_host` and :func:`check_token` need (:class:`ConfigError`
    for a bad ``admin.allowed_hosts``) and add :data:`SECURITY_HEADERS` to every answer;
    ``clock`` times the refused-token window. Returns the route name -> level map for the
    caller to fill as it adds routes (a named route it leaves out is *read*)."""
    app[SETTINGS] = settings
    app[HOSTS] = allowed_host_names(settings)
    app[FAILURES] = FailedTokens(clock=clock)
    app.on_response_prepare.append(security_headers)
    levels: dict[str, Level] = {}
    app[LEVELS] = levels
    return levels


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
    """Add :data:`SECURITY_HEADERS` to an answer about to be sent (an ``on_response_prepare``
    hook: errors and static files get them too)."""
    response.headers.update(SECURITY_HEADERS)


@web.middleware
async def check_host(request: web.Request, handler: Handler) -> web.StreamResponse:
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
async def check_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The route's level decides: *open* passes, *read* passes when ``admin.open_read``, else
    the bearer token must match ``IVR_ADMIN_TOKEN`` (unless the address is waiting out its
    refused tokens)."""
    route = request.match_info.route
    if request.match_info.http_exception is not None or route.name is None:
        return await handler(request)  # 404/405: say so, whoever asks
    level = request.app[LEVELS].get(route.name, "read")
    settings = request.app[SETTINGS]
    if level == "open" or (level == "read" and settings.open_read):
        return await handler(request)
    if settings.token is None:
        hint = "" if level != "read" else " (or admin.open_read: true for read-only access)"
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
