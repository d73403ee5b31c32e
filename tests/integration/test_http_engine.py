"""Tests for the ``http`` node client against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ivr.engines.http import HttpLookup, extract, sign, verify_signature
from ivr.errors import HttpLookupError

SECRET = b"s3cret-key-do-not-log"
NOW = 1_750_000_000


class Backend:
    """A fake back office that records what it received and checks signatures."""

    def __init__(self) -> None:
        self.seen: list[web.Request] = []
        self.bodies: list[bytes] = []
        self.verified: list[bool] = []

    async def record(self, request: web.Request) -> bytes:
        body = await request.read()
        self.seen.append(request)
        self.bodies.append(body)
        relative = request.path_qs.removeprefix("/api")  # the client signs the relative path
        self.verified.append(
            verify_signature(
                SECRET,
                request.headers.get("X-IVR-Timestamp", ""),
                request.method,
                relative,
                body,
                request.headers.get("X-IVR-Signature", ""),
                now=NOW,
            )
        )
        return body

    async def balance(self, request: web.Request) -> web.Response:
        await self.record(request)
        account = request.match_info["account"]
        return web.json_response({"account": account, "accounts": [{"available": 250.5}]})

    async def echo(self, request: web.Request) -> web.Response:
        body = await self.record(request)
        return web.json_response({"got": json.loads(body)})

    async def slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({})

    async def fail(self, request: web.Request) -> web.Response:
        return web.json_response({"error": "boom"}, status=500)

    async def not_json(self, request: web.Request) -> web.Response:
        return web.Response(text="<html>oops</html>", content_type="text/html")

    async def nan(self, request: web.Request) -> web.Response:
        return web.Response(text='{"x": NaN}', content_type="application/json")

    async def deep(self, request: web.Request) -> web.Response:
        depth = int(request.query.get("depth", "200000"))
        return web.Response(text="[" * depth + "]" * depth, content_type="application/json")

    async def huge_number(self, request: web.Request) -> web.Response:
        return web.Response(text='{"x": -1e400}', content_type="application/json")

    async def empty(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def big(self, request: web.Request) -> web.Response:
        return web.json_response({"blob": "x" * 5000})

    async def big_chunked(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b'{"blob": "')
        for _ in range(10):
            await response.write(b"x" * 1000)
        await response.write(b'"}')
        return response

    async def redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("http://example.invalid/")


@pytest.fixture
async def backend() -> AsyncIterator[tuple[Backend, str]]:
    fake = Backend()
    app = web.Application()
    app.router.add_get("/api/accounts/{account}/balance", fake.balance)
    app.router.add_post("/api/echo", fake.echo)
    app.router.add_get("/api/slow", fake.slow)
    app.router.add_get("/api/fail", fake.fail)
    app.router.add_get("/api/not-json", fake.not_json)
    app.router.add_get("/api/nan", fake.nan)
    app.router.add_get("/api/deep", fake.deep)
    app.router.add_get("/api/huge-number", fake.huge_number)
    app.router.add_get("/api/empty", fake.empty)
    app.router.add_get("/api/big", fake.big)
    app.router.add_get("/api/big-chunked", fake.big_chunked)
    app.router.add_get("/api/redirect", fake.redirect)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield fake, str(server.make_url("/api"))
    finally:
        await server.close()


@pytest.fixture
async def lookup(backend: tuple[Backend, str]) -> AsyncIterator[HttpLookup]:
    client = HttpLookup(
        backend[1], secret=SECRET, timeout_s=1.0, max_response_bytes=1000, clock=lambda: NOW
    )
    await client.start()
    try:
        yield client
    finally:
        await client.close()


async def test_get_returns_parsed_json_and_server_verifies_signature(
    backend: tuple[Backend, str], lookup: HttpLookup
) -> None:
    fake, _ = backend
    data = await lookup.request("GET", "/accounts/42/balance", call_id="1700000000.12")
    assert data == {"account": "42", "accounts": [{"available": 250.5}]}
    assert extract(data, "accounts.0.available") == "250.5"
    request = fake.seen[0]
    assert request.headers["X-IVR-Timestamp"] == str(NOW)
    assert request.headers["X-IVR-Call-Id"] == "1700000000.12"
    assert request.headers["User-Agent"] == "ivr/0.1"
    assert fake.bodies == [b""]
    assert fake.verified == [True]


async def test_post_sends_json_and_signs_the_body(
    backend: tuple[Backend, str], lookup: HttpLookup
) -> None:
    fake, _ = backend
    data = await lookup.request("POST", "/echo", json_body={"pin": "1234", "n": 2})
    assert data == {"got": {"pin": "1234", "n": 2}}
    assert fake.seen[0].headers["Content-Type"] == "application/json"
    assert fake.verified == [True]
    header = fake.seen[0].headers["X-IVR-Signature"]
    # A tampered body or path does not verify.
    assert not verify_signature(
        SECRET, NOW, "POST", "/echo", b'{"pin":"0000","n":2}', header, now=NOW
    )
    assert not verify_signature(SECRET, NOW, "POST", "/other", fake.bodies[0], header, now=NOW)


async def test_encoded_path_reaches_the_server_unchanged(
    backend: tuple[Backend, str], lookup: HttpLookup
) -> None:
    fake, _ = backend
    data = await lookup.request("GET", "/accounts/a%2Fb%3Fc/balance")
    assert extract(data, "account") == "a/b?c"
    assert fake.verified == [True]


async def test_no_signature_headers_without_secret(backend: tuple[Backend, str]) -> None:
    fake, base = backend
    async with HttpLookup(base, user_agent="test-agent/1") as client:
        await client.request("GET", "/accounts/7/balance")
    headers = fake.seen[0].headers
    assert "X-IVR-Signature" not in headers and "X-IVR-Timestamp" not in headers
    assert "X-IVR-Call-Id" not in headers
    assert headers["User-Agent"] == "test-agent/1"
    assert fake.verified == [False]


async def test_timeout(lookup: HttpLookup) -> None:
    with pytest.raises(HttpLookupError, match=r"GET /slow: no answer within 0.2 s"):
        await lookup.request("GET", "/slow", timeout_s=0.2)


async def test_http_500(lookup: HttpLookup) -> None:
    with pytest.raises(HttpLookupError, match=r"^GET /fail: HTTP 500 Internal Server Error$"):
        await lookup.request("GET", "/fail")


async def test_unknown_route_is_404(lookup: HttpLookup) -> None:
    with pytest.raises(HttpLookupError, match="HTTP 404"):
        await lookup.request("GET", "/nope")


async def test_redirects_are_not_followed(lookup: HttpLookup) -> None:
    with pytest.raises(HttpLookupError, match="HTTP 302"):
        await lookup.request("GET", "/redirect")


@pytest.mark.parametrize("path", ["/not-json", "/nan"])
async def test_bad_json(lookup: HttpLookup, path: str) -> None:
    with pytest.raises(HttpLookupError, match=f"GET {path}: the response is not valid JSON"):
        await lookup.request("GET", path)


async def test_json_nested_too_deeply_is_a_lookup_error(backend: tuple[Backend, str]) -> None:
    async with HttpLookup(backend[1], max_response_bytes=1_000_000) as client:
        with pytest.raises(HttpLookupError, match="GET /deep: the response is nested too deeply"):
            await client.request("GET", "/deep")  # json.loads: RecursionError
        reasonable = await client.request("GET", "/deep?depth=50")
        assert str(reasonable) == "[" * 50 + "]" * 50


async def test_number_beyond_a_float_is_a_lookup_error(lookup: HttpLookup) -> None:
    # json.loads makes -1e400 -inf, which a say node or a condition cannot use
    with pytest.raises(
        HttpLookupError, match="GET /huge-number: a number in the response is out of range"
    ):
        await lookup.request("GET", "/huge-number")


async def test_empty_response(lookup: HttpLookup) -> None:
    with pytest.raises(HttpLookupError, match="the response is empty"):
        await lookup.request("GET", "/empty")


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
async def test_oversized_response(lookup: HttpLookup, path: str) -> None:
    with pytest.raises(HttpLookupError, match="the response is larger than 1000 bytes"):
        await lookup.request("GET", path)


async def test_connection_refused() -> None:
    with socket.socket() as sock:  # find a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with HttpLookup(f"http://127.0.0.1:{port}", secret=SECRET) as client:
        with pytest.raises(HttpLookupError, match=r"GET /x: cannot connect") as info:
            await client.request("GET", "/x")
    assert SECRET.decode() not in str(info.value)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("http://evil.example/x", "must be relative to the base URL"),
        ("https://evil.example", "must be relative"),
        ("accounts/1", "must be relative"),
        ("", "must be relative"),
        ("//evil.example/x", "starts with '//'"),
        ("/a\\..\\admin", "contains '\\\\'"),
        ("/a b", "contains ' '"),
        ("/a\r\nX-Evil: 1", "contains '\\r'"),
        ("/a#frag", "contains '#'"),
        ("/é", "contains 'é'"),
        ("/accounts/../admin", "'..' segment"),
        ("/accounts/%2e%2E/admin", "'..' segment"),
        ("/./x", "'.' or '..' segment"),
    ],
)
async def test_bad_paths_are_rejected_before_sending(
    backend: tuple[Backend, str], lookup: HttpLookup, path: str, message: str
) -> None:
    with pytest.raises(HttpLookupError) as info:
        await lookup.request("GET", path)
    assert message in str(info.value)
    assert backend[0].seen == []


async def test_bad_method_and_get_with_body(lookup: HttpLookup) -> None:
    with pytest.raises(HttpLookupError, match="method 'DELETE' is not supported"):
        await lookup.request("DELETE", "/x")  # type: ignore[arg-type]
    with pytest.raises(HttpLookupError, match="GET request cannot carry a body"):
        await lookup.request("GET", "/x", json_body={"a": 1})
    with pytest.raises(HttpLookupError, match="not JSON-serialisable"):
        await lookup.request("POST", "/echo", json_body={"a": object()})
    with pytest.raises(HttpLookupError, match="call id"):
        await lookup.request("GET", "/x", call_id="1\r\nX-Evil: 1")


async def test_request_before_start_is_a_programming_error() -> None:
    client = HttpLookup("http://127.0.0.1:1")
    with pytest.raises(RuntimeError, match=r"start\(\)"):
        await client.request("GET", "/x")


async def test_close_is_idempotent() -> None:
    client = HttpLookup("http://127.0.0.1:1")
    await client.start()
    await client.close()
    await client.close()


@pytest.mark.parametrize("base", ["ftp://x", "not a url", "http://", "http://h/api?x=1"])
def test_bad_base_url(base: str) -> None:
    with pytest.raises(HttpLookupError, match="base_url"):
        HttpLookup(base)


def test_repr_hides_secret() -> None:
    assert SECRET.decode() not in repr(HttpLookup("http://h", secret=SECRET))


# ---- signatures ------------------------------------------------------------------------------


def test_sign_matches_the_documented_formula() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET, b"100.POST./echo.{}", hashlib.sha256).hexdigest()
    assert sign(SECRET, 100, "POST", "/echo", b"{}") == "sha256=" + expected


def test_verify_signature_checks_freshness_and_format() -> None:
    header = sign(SECRET, NOW, "GET", "/x", b"")
    assert verify_signature(SECRET, str(NOW), "GET", "/x", b"", header, now=NOW + 299)
    assert not verify_signature(SECRET, NOW, "GET", "/x", b"", header, now=NOW + 301)
    assert verify_signature(SECRET, NOW, "GET", "/x", b"", header, max_age_s=None)
    assert not verify_signature(b"other", NOW, "GET", "/x", b"", header, now=NOW)
    assert not verify_signature(SECRET, "soon", "GET", "/x", b"", header, now=NOW)
    assert not verify_signature(SECRET, NOW, "GET", "/x", b"", header.upper(), now=NOW)


# ---- extract ---------------------------------------------------------------------------------


DATA: object = {
    "available": 250.5,
    "whole": 100.0,
    "tiny": 1e-7,
    "count": 3,
    "vip": True,
    "closed": False,
    "note": None,
    "name": "Ann",
    "accounts": [{"balance": "12.30"}, {"balance": 7}],
    "nested": {"a": {"b": "deep"}},
    "0": "zero-key",
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("available", "250.5"),
        ("whole", "100"),
        ("tiny", "0.0000001"),
        ("count", "3"),
        ("vip", "true"),
        ("closed", "false"),
        ("note", ""),
        ("name", "Ann"),
        ("accounts.0.balance", "12.30"),
        ("accounts.1.balance", "7"),
        ("accounts.-1.balance", "7"),
        ("nested.a.b", "deep"),
        ("0", "zero-key"),
    ],
)
def test_extract(path: str, expected: str) -> None:
    assert extract(DATA, path) == expected


def test_extract_float_without_noise() -> None:
    assert extract(json.loads('{"x": 0.1}'), "x") == "0.1"
    assert extract({"x": 0.1 + 0.2}, "x") == "0.30000000000000004"  # only real noise remains


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("missing", "no field 'missing' in the response: the response has no 'missing'"),
        ("nested.a.c", "nested.a has no 'c'"),
        ("accounts.2.balance", "accounts has 2 items"),
        ("accounts.first", "accounts is a list; use an index like accounts.0"),
        ("name.first", "name is a value, not an object or a list"),
        ("nested", "field 'nested' is an object, not a value"),
        ("accounts", "field 'accounts' is a list, not a value"),
        ("", "is not a field path"),
        ("a..b", "is not a field path"),
    ],
)
def test_extract_errors(path: str, message: str) -> None:
    with pytest.raises(HttpLookupError) as info:
        extract(DATA, path)
    assert message in str(info.value)
