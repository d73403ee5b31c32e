"""The ``http`` node's client: small signed JSON lookups against one back-office base URL.

::

    lookup = HttpLookup("https://crm.example/ivr", secret=b"shared-secret")
    await lookup.start()
    data = await lookup.request("GET", "/accounts/42/balance", call_id=uniqueid)
    balance = extract(data, "accounts.0.available")       # -> "250.5"
    await lookup.close()

Paths are always relative to ``base_url`` (callers build them with
``parse_template(...).render(vars, url=True)``, which percent-encodes caller input), redirects are
not followed, and every failure (timeout, connection, non-2xx status, oversized or non-JSON
body, JSON nested too deeply or with a number beyond a float) is one
:class:`~ivr.errors.HttpLookupError` with a short message that never contains the secret.

Signing (when ``secret`` is set): ``X-IVR-Timestamp: <unix seconds>`` and
``X-IVR-Signature: sha256=<hex>``, the HMAC-SHA256 of ``f"{timestamp}.{method}.{path}.".encode()
+ body``, where ``path`` is the relative path exactly as passed to :meth:`HttpLookup.request`
(with its query string, without the base URL's own path) and ``body`` the raw request bytes
(empty for GET). :func:`verify_signature` checks it on the server side.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from types import TracebackType
from typing import Literal
from urllib.parse import unquote

import aiohttp
from yarl import URL

from ivr.clock import Clock, system_clock
from ivr.errors import HttpLookupError

__all__ = ["HttpLookup", "extract", "sign", "verify_signature"]

Method = Literal["GET", "POST"]
_BAD_PATH_CHARS = re.compile(r"[^\x21-\x7e]|[\\#]")
_INDEX = re.compile(r"-?\d+")


def sign(secret: bytes, timestamp: str | int, method: str, path: str, body: bytes) -> str:
    """The ``X-IVR-Signature`` value: ``sha256=<hex HMAC of "{ts}.{method}.{path}." + body>``."""
    message = f"{timestamp}.{method}.{path}.".encode() + body
    return "sha256=" + hmac.new(secret, message, hashlib.sha256).hexdigest()


def verify_signature(
    secret: bytes,
    timestamp: str | int,
    method: str,
    path: str,
    body: bytes,
    header: str,
    *,
    max_age_s: float | None = 300.0,
    now: float | None = None,
) -> bool:
    """True when ``header`` signs this request and ``timestamp`` is within ``max_age_s``.

    Compares in constant time. ``max_age_s=None`` skips the freshness check (replay window).
    """
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if max_age_s is not None and abs((system_clock() if now is None else now) - ts) > max_age_s:
        return False
    return hmac.compare_digest(sign(secret, ts, method, path, body), header)


class HttpLookup:
    """One shared :class:`aiohttp.ClientSession` to a back office; see the module docstring."""

    def __init__(
        self,
        base_url: str,
        *,
        secret: bytes | None = None,
        timeout_s: float = 2.0,
        max_response_bytes: int = 1_000_000,
        user_agent: str = "ivr/0.1",
        clock: Clock = system_clock,
    ) -> None:
        url = URL(base_url)
        if url.scheme not in ("http", "https") or not url.host or url.query_string or url.fragment:
            raise HttpLookupError(
                f"base_url {base_url!r} must be an http:// or https:// URL with a host and "
                "no query or fragment"
            )
        if timeout_s <= 0 or max_response_bytes <= 0:
            raise HttpLookupError("timeout_s and max_response_bytes must be positive")
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_response_bytes = max_response_bytes
        self.user_agent = user_agent
        self._secret = secret
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:  # never show the secret
        return f"HttpLookup({self.base_url!r}, signed={self._secret is not None})"

    async def start(self) -> None:
        """Open the shared session (idempotent)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(headers={"User-Agent": self.user_agent})

    async def close(self) -> None:
        """Close the session (idempotent)."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def __aenter__(self) -> HttpLookup:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def request(
        self,
        method: Method,
        path: str,
        *,
        json_body: Mapping[str, object] | None = None,
        timeout_s: float | None = None,
        call_id: str = "",
    ) -> object:
        """Send one request and return the parsed JSON body; raise HttpLookupError on failure."""
        if self._session is None:
            raise RuntimeError("HttpLookup.start() must be awaited before request()")
        what = f"{method} {path}"
        body, headers = self._prepare(method, path, json_body, call_id)
        limit = self.timeout_s if timeout_s is None else timeout_s
        try:
            async with self._session.request(
                method,
                URL(self.base_url + path, encoded=True),
                data=body or None,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=limit),
                allow_redirects=False,
            ) as response:
                if not 200 <= response.status < 300:
                    raise HttpLookupError(
                        f"{what}: HTTP {response.status} {response.reason or ''}".rstrip()
                    )
                raw = await self._read(response, what)
        except TimeoutError as exc:
            raise HttpLookupError(f"{what}: no answer within {limit:g} s") from exc
        except aiohttp.ClientConnectorError as exc:
            reason = exc.os_error.strerror or type(exc.os_error).__name__
            raise HttpLookupError(f"{what}: cannot connect ({reason})") from exc
        except aiohttp.ClientError as exc:
            raise HttpLookupError(f"{what}: request failed ({type(exc).__name__})") from exc
        return _parse_json(raw, what)

    def _prepare(
        self, method: str, path: str, json_body: Mapping[str, object] | None, call_id: str
    ) -> tuple[bytes, dict[str, str]]:
        if method not in ("GET", "POST"):
            raise HttpLookupError(f"method {method!r} is not supported; use GET or POST")
        _check_path(path)
        if json_body is not None and method == "GET":
            raise HttpLookupError(f"GET {path}: a GET request cannot carry a body; use POST")
        headers = {"Accept": "application/json"}
        body = b""
        if json_body is not None:
            try:
                body = json.dumps(json_body, separators=(",", ":"), ensure_ascii=False).encode()
            except (TypeError, ValueError) as exc:
                raise HttpLookupError(f"{method} {path}: body is not JSON-serialisable") from exc
            headers["Content-Type"] = "application/json"
        if call_id:
            if _BAD_PATH_CHARS.search(call_id):
                raise HttpLookupError(f"call id {call_id!r} contains characters not allowed")
            headers["X-IVR-Call-Id"] = call_id
        if self._secret is not None:
            timestamp = str(int(self._clock()))
            headers["X-IVR-Timestamp"] = timestamp
            headers["X-IVR-Signature"] = sign(self._secret, timestamp, method, path, body)
        return body, headers

    async def _read(self, response: aiohttp.ClientResponse, what: str) -> bytes:
        limit = self.max_response_bytes
        too_big = f"{what}: the response is larger than {limit} bytes"
        if response.content_length is not None and response.content_length > limit:
            raise HttpLookupError(too_big)
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise HttpLookupError(too_big)
            chunks.append(chunk)
        return b"".join(chunks)


def _check_path(path: str) -> None:
    shown = path if len(path) <= 80 else path[:77] + "..."
    if not path.startswith("/"):
        raise HttpLookupError(
            f"path {shown!r} must be relative to the base URL and start "
            "with '/', like '/accounts/42'"
        )
    if path.startswith("//"):
        raise HttpLookupError(
            f"path {shown!r} starts with '//', which names another host; start with a single '/'"
        )
    bad = _BAD_PATH_CHARS.search(path)
    if bad:
        raise HttpLookupError(
            f"path {shown!r} contains {bad.group()!r}; paths must be "
            "percent-encoded ASCII without spaces, '\\' or '#'"
        )
    segments = path.split("?", 1)[0].split("/")
    if any(unquote(segment) in (".", "..") for segment in segments):
        raise HttpLookupError(f"path {shown!r} contains a '.' or '..' segment")


def _reject_constant(name: str) -> object:
    raise ValueError(name)


class _OutOfRange(ValueError):
    """A JSON number too large for a float (``1e400`` would become ``inf``)."""


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _OutOfRange(text)
    return number


def _parse_json(raw: bytes, what: str) -> object:
    if not raw.strip():
        raise HttpLookupError(f"{what}: the response is empty; expected JSON")
    try:
        result: object = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
        return result
    except _OutOfRange as exc:
        raise HttpLookupError(f"{what}: a number in the response is out of range") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN/Infinity
        raise HttpLookupError(f"{what}: the response is not valid JSON") from exc
    except RecursionError:  # the C parser recurses per level: [[[[...]]]] 200,000 deep
        raise HttpLookupError(f"{what}: the response is nested too deeply") from None


def extract(data: object, path: str) -> str:
    """Pick ``path`` (``"accounts.0.balance"``: keys and list indexes) out of a JSON response.

    Returns flow text: strings as is, numbers without float noise (``250.5``, ``100``), booleans
    as ``true``/``false``, null as ``""``. Raises HttpLookupError for a missing key, a bad index
    or a path that ends on an object or a list.
    """
    if not path or any(not key for key in path.split(".")):
        raise HttpLookupError(
            f"{path!r} is not a field path; use names and indexes joined by "
            "'.', like accounts.0.balance"
        )
    current = data
    seen: list[str] = []
    for key in path.split("."):
        where = ".".join(seen) or "the response"
        if isinstance(current, Mapping):
            if key not in current:
                raise HttpLookupError(f"no field {path!r} in the response: {where} has no {key!r}")
            current = current[key]
        elif isinstance(current, list):
            if not _INDEX.fullmatch(key):
                raise HttpLookupError(
                    f"no field {path!r} in the response: {where} is a list; "
                    f"use an index like {'.'.join([*seen, '0'])}"
                )
            if not -len(current) <= int(key) < len(current):
                raise HttpLookupError(
                    f"no field {path!r} in the response: {where} has {len(current)} items"
                )
            current = current[int(key)]
        else:
            raise HttpLookupError(
                f"no field {path!r} in the response: {where} is a value, not an object or a list"
            )
        seen.append(key)
    return _text(current, path)


def _text(value: object, path: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return format(Decimal(repr(value)), "f")
    kind = "an object" if isinstance(value, Mapping) else "a list"
    raise HttpLookupError(f"field {path!r} is {kind}, not a value; save a field inside it")
