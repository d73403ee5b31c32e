"""The admin API: over a stand-in Console (no Asterisk), then inside a real App driven by the
scripted fake Asterisk (hot reload with a call in progress, metrics, /healthz, a taken port)."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import os
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp import ClientResponse, ClientSession, TCPConnector
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from support.fake_asterisk import FakeCallState, FakeCommand, run_fake_call

from ivr.admin import flows_api, guard
from ivr.admin.api import make_admin_app
from ivr.admin.console import Health, HealthBoard, LiveCall
from ivr.app.server import App, Server
from ivr.call.record import CallRecord, SurveyAnswer, SurveyResult
from ivr.config import (
    AdminSettings,
    AgiSettings,
    Secret,
    Settings,
    SpeechSettings,
    StoreSettings,
    load_settings,
)
from ivr.errors import ConfigError, FlowErrors, StoreError
from ivr.flow.registry import FlowRegistry
from ivr.metrics import Metrics
from ivr.store.nodes import NodeStore
from ivr.store.records import RecordStore

TOKEN = "s3cret-token-value"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DAY = 1_780_000_000.0  # 2026-05-28 20:26:40 UTC


def flow_text(label: str, end: str = "bye") -> str:
    """A flow on stock sounds (nothing to render): hello, a menu (1 -> end), end."""
    return (
        f'version: "{label}"\nstart: hello\nnodes:\n'
        f"  hello: {{play: {{sound: hello-world}}, next: menu}}\n"
        f"  menu:\n    menu:\n      prompt: {{sound: press-1}}\n"
        f'      options: {{"1": {end}}}\n      otherwise: {end}\n'
        f"  {end}: {{hangup: true}}\n"
    )


BROKEN = "start: hello\nnodes:\n  hello: {play: {sound: x}, next: nowhere}\n"


def write(path: Path, text: str) -> None:
    """Write ``text`` and move the mtime on (some file systems keep 1 s granularity)."""
    old = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    st = path.stat()
    if st.st_mtime_ns <= old:
        os.utime(path, ns=(st.st_atime_ns, old + 1_000_000_000))


@dataclass
class StubConsole:
    """A Console with a real registry and store, and scripted health, live calls, queues."""

    flows: FlowRegistry
    store: RecordStore | None
    metrics: Metrics = field(default_factory=Metrics)
    live: list[LiveCall] = field(default_factory=list)
    checks: dict[str, Health] = field(
        default_factory=lambda: {
            "fastagi": Health("up", "127.0.0.1:4573"),
            "audiosocket": Health("off"),
            "ami": Health("off"),
            "store": Health("up"),
            "recogniser": Health("off"),
        }
    )
    queues: list[dict[str, object]] = field(default_factory=list)

    def live_calls(self) -> list[LiveCall]:
        return list(self.live)

    async def health(self) -> dict[str, Health]:
        return dict(self.checks)

    async def queue_state(self) -> list[dict[str, object]]:
        return list(self.queues)


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    d = tmp_path / "flows"
    d.mkdir()
    write(d / "main.yaml", flow_text("v1"))
    return d


@pytest.fixture
async def console(tmp_path: Path, flows_dir: Path) -> AsyncIterator[StubConsole]:
    registry = FlowRegistry(flows_dir)
    await registry.reload()
    store = await RecordStore.open(tmp_path / "calls.sqlite3")
    yield StubConsole(registry, store)
    await store.close()


Client = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def make_client(console: StubConsole) -> AsyncIterator[Client]:
    clients: list[TestClient[Any, Any]] = []

    async def make(**admin: ClientSession) -> TestClient[Any, Any]:
        settings = AdminSettings(port=0, **admin)
        client = TestClient(TestServer(make_admin_app(console, settings)))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def client(make_client: Client) -> TestClient[Any, Any]:
    return await make_client(token=Secret(TOKEN.encode()))


def validate(
    client: TestClient[Any, Any], text: str | bytes, query: str = ""
) -> Awaitable[ClientResponse]:
    """``POST /api/validate`` with the token."""
    return client.post(f"/api/validate{query}", headers=AUTH, data=text)


async def error_of(response: ClientResponse, status: int) -> str:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) >= {"error"}
    return str(body["error"])


def record(call_id: str, started: float, **kw: Any) -> CallRecord:
    values: dict[str, Any] = {
        "flow": "main",
        "flow_version": "v1+abc",
        "caller": "13800138000",
        "ended_at": started + 30,
        "outcome": "self_service",
        "path": ["hello", "menu", "bye"],
        "end_node": "bye",
    }
    values.update(kw)
    return CallRecord(call_id=call_id, started_at=started, **values)


async def store_records(store: RecordStore | None, *records: CallRecord) -> None:
    assert store is not None
    for r in records:
        await (store.finish(r) if r.outcome is not None else store.begin(r))


def survey(status: str = "completed", satisfied: int | None = 5) -> SurveyResult:
    return SurveyResult(
        survey="after_call",
        mode="in_call",
        status=status,
        answers=[SurveyAnswer("satisfied", "1-5", satisfied), SurveyAnswer("solved", "yes-no", 1)],
        satisfaction="satisfied",
        at=DAY + 100,
    )


# --- access -------------------------------------------------------------------------------


async def test_read_endpoints_need_the_token(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await client.get("/api/calls")
    assert "Bearer" in response.headers["WWW-Authenticate"]
    assert "Authorization" in await error_of(response, 401)
    response = await client.get("/api/calls", headers={"Authorization": "Bearer wrong"})
    assert await error_of(response, 401) == "the token was refused"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    response = await client.get("/api/calls", headers={"Authorization": f"Basic {TOKEN}"})
    await error_of(response, 401)
    response = await client.get("/api/calls", headers=AUTH)
    assert response.status == 200
    for path in (
        "/api/flows",
        "/api/kpis",
        "/api/surveys",
        "/api/surveys.csv",
        "/api/schema",
        "/api/queues",
        "/api/flows/main",
    ):
        assert (await client.get(path)).status == 401, path
        assert (await client.get(path, headers=AUTH)).status == 200, path
    assert TOKEN not in caplog.text


async def test_open_endpoints_need_no_token(client: TestClient[Any, Any]) -> None:
    for path in ("/healthz", "/metrics", "/", "/app.js", "/schema/flow.json"):
        assert (await client.get(path)).status == 200, path


async def test_validate_needs_the_token_unless_reads_are_open(make_client: Client) -> None:
    # it names the loaded flows (sub-flow checks) and costs CPU: a read, not an open endpoint
    client = await make_client(token=Secret(TOKEN.encode()))
    response = await client.post("/api/validate", data=flow_text("x"))
    assert "Authorization" in await error_of(response, 401)
    response = await client.post("/api/validate", data=b"#" * (flows_api.VALIDATE_MAX_BYTES + 1))
    await error_of(response, 401)  # refused before the body is read
    response = await validate(client, flow_text("x"))
    assert response.status == 200 and (await response.json())["ok"] is True
    client = await make_client()  # no token at all
    assert "IVR_ADMIN_TOKEN" in await error_of(
        await client.post("/api/validate", data=flow_text("x")), 403
    )
    client = await make_client(open_read=True)
    response = await client.post("/api/validate", data=flow_text("x"))
    assert response.status == 200 and (await response.json())["ok"] is True


async def test_reload_needs_the_token(make_client: Client) -> None:
    client = await make_client(token=Secret(TOKEN.encode()), open_read=True)
    assert (await client.get("/api/flows")).status == 200  # open_read
    await error_of(await client.post("/api/flows/reload"), 401)
    bad = {"Authorization": "Bearer " + TOKEN[:-1]}
    await error_of(await client.post("/api/flows/reload", headers=bad), 401)
    response = await client.post("/api/flows/reload", headers=AUTH, data=b"{not json")
    assert response.status == 200 and (await response.json())["result"] == "ok"


async def test_without_a_token_changes_are_refused(make_client: Client) -> None:
    client = await make_client()  # no token, open_read false
    assert "IVR_ADMIN_TOKEN" in await error_of(await client.get("/api/calls"), 403)
    assert "IVR_ADMIN_TOKEN" in await error_of(
        await client.post("/api/flows/reload", headers=AUTH), 403
    )
    assert (await client.get("/healthz")).status == 200
    client = await make_client(open_read=True)  # reads open, reload still refused
    assert (await client.get("/api/calls")).status == 200
    assert "set IVR_ADMIN_TOKEN" in await error_of(await client.post("/api/flows/reload"), 403)


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=abc",
        "limit=1001",
        "outcome=bogus",
        "since=yesterday",
        "since=2026-13-01",
        "since=nan",
        "since=2026-03-02&until=2026-03-01",
        "tz=Mars/Olympus",
        "live=maybe",
        "flow=" + "x" * 300,
        "since=1e400",
    ],
)
async def test_bad_query_values_are_400(client: TestClient[Any, Any], query: str) -> None:
    await error_of(await client.get(f"/api/calls?{query}", headers=AUTH), 400)


@pytest.mark.parametrize("query", ["since=2026-02-30", "tz=Nowhere", "until=x", "flow=%00"])
async def test_bad_kpi_and_export_queries_are_400(client: TestClient[Any, Any], query: str) -> None:
    await error_of(await client.get(f"/api/kpis?{query}", headers=AUTH), 400)
    await error_of(await client.get(f"/api/surveys.csv?{query}", headers=AUTH), 400)


async def test_unknown_routes_and_methods_are_json(client: TestClient[Any, Any]) -> None:
    await error_of(await client.get("/api/nope", headers=AUTH), 404)
    await error_of(await client.get("/nope.html"), 404)
    await error_of(await client.get("/%2e%2e/%2e%2e/etc/passwd"), 404)
    await error_of(await client.get("/api/flows/nope", headers=AUTH), 404)
    await error_of(await client.get("/api/flows/nope/graph.svg", headers=AUTH), 404)
    response = await client.put("/api/calls", headers=AUTH)
    await error_of(response, 405)
    assert "GET" in response.headers["Allow"]
    await error_of(await client.get("/api/validate"), 405)


async def test_an_oversized_body_is_413(make_client: Client) -> None:
    client = await make_client(max_body_bytes=1000, token=Secret(TOKEN.encode()))
    response = await validate(client, b"#" * 5000)
    await error_of(response, 413)
    response = await validate(client, flow_text("small"))
    assert response.status == 200


async def test_garbage_never_crashes_the_server(client: TestClient[Any, Any]) -> None:
    await error_of(await validate(client, b"\xff\xfe\x00garbage"), 400)
    response = await validate(client, flow_text("x"), "?name=../x")
    await error_of(response, 400)
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(b"\x16\x03\x01 not http at all\r\n\r\n")
    await writer.drain()
    await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert (await client.get("/healthz")).status == 200


# --- validate, schema, flows --------------------------------------------------------------


async def test_validate_reports_line_col_node(client: TestClient[Any, Any]) -> None:
    response = await validate(client, BROKEN)
    body = await response.json()
    assert body["ok"] is False
    [error] = body["errors"]
    assert error["line"] == 3 and error["node"] == "hello" and "nowhere" in error["message"]
    body = await (await validate(client, "start: [unclosed\n")).json()
    assert body["ok"] is False and body["errors"][0]["line"] >= 1
    body = await (await validate(client, "")).json()
    assert body["ok"] is False


async def test_validate_checks_sub_flows_against_the_loaded_ones(
    client: TestClient[Any, Any],
) -> None:
    text = (
        "start: a\nnodes:\n  a: {call: main, next: b}\n  b: {call: gone, next: c}\n"
        "  c: {hangup: true}\n"
    )
    body = await (await validate(client, text)).json()
    assert [e["node"] for e in body["errors"]] == ["b"]
    assert "gone" in body["errors"][0]["message"]


async def test_validate_refuses_a_billion_laughs(client: TestClient[Any, Any]) -> None:
    lines = ["  a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    text = "start: s\nvariables:\n" + "\n".join(lines) + "\nnodes:\n  s: {hangup: true}\n"
    response = await asyncio.wait_for(validate(client, text), 5)
    body = await response.json()
    assert body == {
        "ok": False,
        "errors": [
            {
                "line": 3,
                "col": 7,
                "node": None,
                "severity": "error",
                "message": "anchors and aliases are not allowed in flows",
                "fix": "write the value out",
            }
        ],
        "warnings": [],
    }


async def test_validate_gives_warnings_apart_from_errors(client: TestClient[Any, Any]) -> None:
    # a holiday list that ended a month ago: the flow loads (ok), with a warning and its fix
    stale = (datetime.now(UTC) - timedelta(days=30)).date().isoformat()
    text = (
        "start: h\nnodes:\n  h:\n    hours:\n      open: {mon-sun: '00:00-24:00'}\n"
        f"      holidays: ['{stale}']\n      when_open: bye\n      when_closed: bye\n"
        "  bye: {hangup: true}\n"
    )
    body = await (await validate(client, text)).json()
    assert body["ok"] is True and body["errors"] == []
    [warning] = body["warnings"]
    assert (warning["line"], warning["node"], warning["severity"]) == (4, "h", "warning")
    assert warning["message"].startswith("no holiday listed between")
    assert warning["fix"] == "add next year's dates to 'holidays', or use 'calendar: <country>'"
    # an error keeps its fix apart too (the same split as ivr validate --format json)
    misspelt = (
        "start: hello\nnodes:\n  hello: {play: {sound: x}, next: bey}\n  bye: {hangup: true}\n"
    )
    [error] = (await (await validate(client, misspelt)).json())["errors"]
    assert error["severity"] == "error" and error["fix"] == "did you mean 'bye'?"
    assert error["message"].startswith("goes to 'bey', which is not a node of this flow")
    [error] = (await (await validate(client, BROKEN)).json())["errors"]
    assert error["fix"] is None  # nothing close to 'nowhere': no suggestion


async def test_validate_takes_flows_up_to_its_own_size_limit(client: TestClient[Any, Any]) -> None:
    big = flow_text("x") + "#" * flows_api.VALIDATE_MAX_BYTES
    assert "ivr validate" in await error_of(await validate(client, big), 413)
    response = await validate(client, big[: flows_api.VALIDATE_MAX_BYTES])
    assert response.status == 200 and (await response.json())["ok"] is True


class SlowParse:
    """``parse_flow`` stand-in that blocks its worker thread until released, and counts."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = self.running = self.peak = 0
        self._lock = threading.Lock()

    def __call__(self, text: str, **kw: Any) -> Any:
        with self._lock:
            self.started += 1
            self.running += 1
            self.peak = max(self.peak, self.running)
        self.release.wait(30)
        with self._lock:
            self.running -= 1
        raise FlowErrors([])  # a valid flow, as far as _check can tell


async def test_validations_are_bounded_and_a_timed_out_one_keeps_its_slot(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = SlowParse()
    monkeypatch.setattr(flows_api, "parse_flow", slow)
    monkeypatch.setattr(flows_api, "VALIDATE_TIMEOUT_S", 0.2)
    try:
        flood = await asyncio.gather(*(validate(client, flow_text("x")) for _ in range(8)))
        statuses = sorted(r.status for r in flood)
        assert statuses == [429] * 6 + [503] * 2  # two ran out of time, six were refused
        busy = next(r for r in flood if r.status == 429)
        assert "validations are already running" in await error_of(busy, 429)
        assert int(busy.headers["Retry-After"]) > 0
        late = next(r for r in flood if r.status == 503)
        assert "longer than 0.2 s" in await error_of(late, 503)
        for _ in range(4):  # the timed-out threads still run: no new thread is started
            await error_of(await validate(client, flow_text("x")), 429)
        assert slow.started == 2 and slow.peak == 2
    finally:
        slow.release.set()
    for _ in range(100):  # the slots come back when the threads end
        response = await validate(client, flow_text("x"))
        if response.status == 200:
            break
        await asyncio.sleep(0.05)
    assert response.status == 200 and (await response.json())["ok"] is True
    assert slow.started == 3 and slow.peak == 2


async def test_schema(client: TestClient[Any, Any]) -> None:
    schema = await (await client.get("/api/schema", headers=AUTH)).json()
    assert "nodes" in schema["properties"]


async def test_flows_versions_errors_and_reload(
    client: TestClient[Any, Any], flows_dir: Path
) -> None:
    body = await (await client.get("/api/flows", headers=AUTH)).json()
    [main] = body["flows"]
    assert main["name"] == "main" and main["version"].startswith("v1+") and main["nodes"] == 3
    assert main["file"] == str(flows_dir / "main.yaml") and len(main["versions"]) == 1
    assert body["errors"] == []
    write(flows_dir / "main.yaml", flow_text("v2"))
    result = await (await client.post("/api/flows/reload", headers=AUTH)).json()
    assert result["result"] == "ok" and result["changed"] == ["main"]
    write(flows_dir / "main.yaml", BROKEN)
    result = await (await client.post("/api/flows/reload", headers=AUTH)).json()
    assert result["result"] == "partial" and result["kept"] == ["main"]
    body = await (await client.get("/api/flows", headers=AUTH)).json()
    [main] = body["flows"]
    assert main["version"].startswith("v2+")  # still serving
    assert [v["version"].split("+")[0] for v in main["versions"]] == ["v2", "v1"]
    [error] = body["errors"]
    assert error == {
        "file": str(flows_dir / "main.yaml"),
        "line": 3,
        "col": error["col"],
        "node": "hello",
        "message": error["message"],
    }
    source = await (await client.get("/api/flows/main", headers=AUTH)).json()
    assert source["current"] and source["version"] == main["version"]
    assert source["source"] == flow_text("v2")
    old = main["versions"][1]["version"]
    source = await (
        await client.get("/api/flows/main", params={"version": old}, headers=AUTH)
    ).json()
    assert source["source"] == flow_text("v1") and not source["current"]
    await error_of(await client.get("/api/flows/main?version=zzz", headers=AUTH), 404)


async def test_flow_picture(client: TestClient[Any, Any]) -> None:
    import shutil

    if shutil.which("dot") is None:
        pytest.skip("Graphviz dot is not installed")
    response = await client.get("/api/flows/main/graph.svg", headers=AUTH)
    assert response.status == 200 and response.content_type == "image/svg+xml"
    assert "<svg" in await response.text()


# --- hardening: headers, the Host check, token rules ------------------------------------------


def directives(policy: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


def assert_security_headers(response: ClientResponse) -> None:
    csp = directives(response.headers["Content-Security-Policy"])
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"]
    assert csp["connect-src"] == ["'self'"] and csp["base-uri"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert not [v for values in csp.values() for v in values if "unsafe" in v or "*" in v]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/index.html",
        "/app.js",
        "/style.css",
        "/healthz",
        "/metrics",
        "/api/calls",
        "/nope.html",
        "/api/nope",
    ],
)
async def test_every_answer_carries_the_security_headers(
    client: TestClient[Any, Any], path: str
) -> None:
    for headers in ({}, AUTH):
        assert_security_headers(await client.get(path, headers=headers))


async def test_error_answers_carry_the_security_headers(client: TestClient[Any, Any]) -> None:
    assert_security_headers(await client.put("/api/calls", headers=AUTH))  # 405
    assert_security_headers(await validate(client, b"\xff"))  # 400
    assert_security_headers(await client.get("/", headers={"Host": "evil.example"}))  # 421


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:8080",
        "127.0.0.1.nip.io",
        "localhost.evil.example",
        "127.0.0.2",
        "[::2]:8080",
        "0.0.0.0:8080",
        "",
        "localhost:80:80",
        "user@localhost",
        "[::1",
        "localhost:http",
    ],
)
async def test_a_request_for_another_host_name_is_refused(
    client: TestClient[Any, Any], host: str
) -> None:
    """DNS rebinding: a page of evil.example whose name now points at 127.0.0.1 sends
    ``Host: evil.example``; whatever it asks for, the answer is 421."""
    for path, headers in (
        ("/", {}),
        ("/app.js", {}),
        ("/healthz", {}),
        ("/api/calls", AUTH),
        ("/api/nope", AUTH),
    ):
        response = await client.get(path, headers={"Host": host, **headers})
        assert "admin.allowed_hosts" in await error_of(response, 421), (path, host)
    response = await client.post("/api/flows/reload", headers={"Host": host, **AUTH})
    await error_of(response, 421)


async def test_a_request_without_a_host_is_refused(client: TestClient[Any, Any]) -> None:
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(b"GET /healthz HTTP/1.0\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert answer.startswith(b"HTTP/1.0 421") or answer.startswith(b"HTTP/1.1 421"), answer


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LOCALHOST:8080",
        "localhost.",
        "127.0.0.1",
        "127.0.0.1:8080",
        "[::1]",
        "[::1]:8080",
    ],
)
async def test_loopback_names_are_allowed(client: TestClient[Any, Any], host: str) -> None:
    assert (await client.get("/healthz", headers={"Host": host})).status == 200
    response = await client.get("/api/calls", headers={"Host": host, **AUTH})
    assert response.status == 200


async def test_the_bind_host_and_admin_allowed_hosts_are_allowed(make_client: Client) -> None:
    client = await make_client(
        host="ivr-box.lan", allowed_hosts=("ops.example.com", "IVR.internal.")
    )
    for host in (
        "ivr-box.lan:8080",
        "ops.example.com",
        "OPS.Example.COM.:443",
        "ivr.internal",
        "localhost",
    ):
        assert (await client.get("/", headers={"Host": host})).status == 200, host
    for host in ("example.com", "evil.ops.example.com", "ops.example.com.evil", "internal"):
        await error_of(await client.get("/", headers={"Host": host}), 421)
    client = await make_client(host="0.0.0.0")  # every address: still only the known names
    assert (await client.get("/", headers={"Host": "127.0.0.1:8080"})).status == 200
    await error_of(await client.get("/", headers={"Host": "box.example"}), 421)


def test_allowed_hosts_from_the_file_the_environment_and_bad_names(tmp_path: Path) -> None:
    env = {"IVR_ADMIN_ALLOWED_HOSTS": "ops.example.com, [FD00::5],x.lan.", "IVR_ADMIN_HOST": "::"}
    names = guard.allowed_host_names(load_settings(env=env).admin)
    assert names == {"ops.example.com", "fd00::5", "x.lan", "localhost", "127.0.0.1", "::1"}
    config = tmp_path / "ivr.yaml"
    config.write_text(
        "admin:\n  host: 10.0.0.5\n  allowed_hosts: [ivr.example.com]\n", encoding="utf-8"
    )
    names = guard.allowed_host_names(load_settings(config, env={}).admin)
    assert names == {"ivr.example.com", "10.0.0.5", "localhost", "127.0.0.1", "::1"}
    for bad in (
        "ops.example.com:8080",
        "http://ops.example.com/",
        "*.example.com",
        "a@b",
        "a.example b.example",
    ):
        admin = load_settings(env={"IVR_ADMIN_ALLOWED_HOSTS": bad}).admin
        with pytest.raises(ConfigError, match=r"admin\.allowed_hosts"):
            make_admin_app(cast(Any, None), admin)


def test_a_short_token_stops_start_up(tmp_path: Path) -> None:
    minimum = AdminSettings.TOKEN_MIN_LENGTH
    assert minimum >= 16
    with pytest.raises(ConfigError, match=rf"IVR_ADMIN_TOKEN.*at least {minimum}") as caught:
        load_settings(env={"IVR_ADMIN_TOKEN": "hunter2"})
    assert "hunter2" not in str(caught.value)  # the message never shows the token
    file = tmp_path / "token"
    file.write_text("x" * (minimum - 1) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=f"at least {minimum}"):
        load_settings(env={"IVR_ADMIN_TOKEN_FILE": str(file)})
    with pytest.raises(ConfigError, match=f"at least {minimum}"):
        AdminSettings(token=Secret(b"x" * (minimum - 1)))
    token = "x" * minimum
    assert load_settings(env={"IVR_ADMIN_TOKEN": token}).admin.token == Secret(token.encode())


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_refused_tokens_are_rate_limited_per_address(
    console: StubConsole, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = FakeClock()
    settings = AdminSettings(port=0, token=Secret(TOKEN.encode()))
    client = TestClient(TestServer(make_admin_app(console, settings, clock=clock)))
    await client.start_server()
    wrong = {"Authorization": "Bearer " + "guess" * 5}
    try:
        for _ in range(guard.TOKEN_FAILURES):
            await error_of(await client.get("/api/calls", headers=wrong), 401)
            clock.now += 1
        response = await client.get("/api/calls", headers=wrong)
        assert "too many refused tokens" in await error_of(response, 429)
        assert response.headers["Retry-After"] == "50"  # the first one leaves the window then
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert_security_headers(response)
        # the right token waits too: else the guessing would go on
        await error_of(await client.get("/api/calls", headers=AUTH), 429)
        await error_of(await client.post("/api/flows/reload", headers=AUTH), 429)
        await error_of(await client.post("/api/validate", headers=AUTH, data="x"), 429)
        # no token: asked for, as before; open endpoints answer
        await error_of(await client.get("/api/calls"), 401)
        assert (await client.get("/healthz")).status == 200
        # another address is not held up, and has its own count
        other = ClientSession(connector=TCPConnector(local_addr=("127.0.0.2", 0)))
        async with other:
            url = client.make_url("/api/calls")
            assert (await other.get(url, headers=AUTH)).status == 200
            for _ in range(guard.TOKEN_FAILURES):
                await error_of(await other.get(url, headers=wrong), 401)
            await error_of(await other.get(url, headers=AUTH), 429)
        clock.now = 1000 + guard.TOKEN_WINDOW_S  # the first failure has left the window
        assert (await client.get("/api/calls", headers=AUTH)).status == 200
        await error_of(await client.get("/api/calls", headers=wrong), 401)  # fills it again
        response = await client.get("/api/calls", headers=AUTH)
        await error_of(response, 429)
        assert response.headers["Retry-After"] == "1"
        clock.now += guard.TOKEN_WINDOW_S
        assert (await client.get("/api/calls", headers=AUTH)).status == 200
    finally:
        await client.close()
    assert "guess" not in caplog.text and TOKEN not in caplog.text
    assert "refused tokens from 127.0.0.1" in caplog.text  # the lock-out is logged


def test_the_refused_token_table_is_bounded() -> None:
    clock = FakeClock()
    failures = guard.FailedTokens(clock=clock, max_clients=100)
    for i in range(5000):
        failures.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(failures) <= 100
    for _ in range(guard.TOKEN_FAILURES):
        failures.failed("192.0.2.1")
    assert failures.retry_after("192.0.2.1") == guard.TOKEN_WINDOW_S
    clock.now += guard.TOKEN_WINDOW_S
    assert failures.retry_after("192.0.2.1") is None
    assert len(failures) <= 100


# --- health, metrics ----------------------------------------------------------------------


async def test_healthz(client: TestClient[Any, Any], console: StubConsole) -> None:
    body = await (await client.get("/healthz")).json()
    assert body["status"] == "ok"
    assert set(body["components"]) == {"fastagi", "audiosocket", "ami", "store", "recogniser"}
    console.checks["ami"] = Health("down", "unreachable")
    response = await client.get("/healthz")
    assert response.status == 200 and (await response.json())["status"] == "degraded"
    console.checks["store"] = Health("down", "disk I/O error")
    response = await client.get("/healthz")
    body = await response.json()
    assert response.status == 503 and body["status"] == "down"
    assert body["components"]["store"] == {"status": "down", "detail": "disk I/O error"}
    console.checks["store"] = Health("up")
    console.checks["fastagi"] = Health("down", "not listening")
    assert (await client.get("/healthz")).status == 503


async def test_health_details_name_no_paths_or_hosts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # each component reports its own health; no detail names a file, host or port
    from types import SimpleNamespace as NS

    from ivr.app.calls import agi_health
    from ivr.asterisk.ami.client import AmiClient
    from ivr.errors import StoreError
    from ivr.speech.service import SpeechService

    def shown(checks: dict[str, Health]) -> str:
        return " ".join(h.detail for h in checks.values())

    agi = NS(host="10.9.8.7", port=4573, sockets=[object()], active_calls=3)
    speech = SpeechService(replace(Settings().speech, host="10.9.8.7", port=4574), tmp_path)
    listening = speech.server
    speech.server = NS(sockets=[object()], active_sessions=1)  # type: ignore[assignment]
    speech.engines = {"en": NS(name="vosk")}  # type: ignore[dict-item]
    ami = AmiClient(replace(Settings().ami, host="pbx.internal", port=5038))
    ami._logged_in.set()
    ami.reconnects = 2
    store = await RecordStore.open(tmp_path / "calls.sqlite3")
    board = HealthBoard()
    board.report_by("fastagi", lambda: agi_health(agi))  # type: ignore[arg-type]
    board.report_by("audiosocket", speech.audiosocket_health)
    board.report_by("recogniser", speech.recogniser_health)
    board.report_by("ami", ami.health)
    board.report_by("store", store.health)
    try:
        checks = await board.report()
        assert {n: h.status for n, h in checks.items()} == {
            "fastagi": "up",
            "audiosocket": "up",
            "ami": "up",
            "store": "up",
            "recogniser": "up",
        }
        assert checks["fastagi"].detail == "3 connection(s)"
        assert checks["audiosocket"].detail == "1 session(s)"
        assert checks["ami"].detail == "2 reconnect(s)"
        assert checks["recogniser"].detail == "en=vosk"
        ami._logged_in.clear()

        async def failing_get(call_id: str) -> None:
            raise StoreError(f"{tmp_path}/calls.sqlite3: disk I/O error")

        store.get = failing_get  # type: ignore[assignment,method-assign]
        caplog.set_level(logging.WARNING)
        checks = await board.report()
        assert checks["ami"].status == checks["store"].status == "down"
        for text in ("10.9.8.7", "4573", "4574", "pbx.internal", "5038", str(tmp_path), "sqlite3"):
            assert text not in shown(checks), text
        assert "disk I/O error" in caplog.text  # the whole message goes to the log
    finally:
        await store.close()
        speech.server = listening
        await speech.close()


async def test_metrics_text_parses(client: TestClient[Any, Any], console: StubConsole) -> None:
    console.metrics.call_started("main")
    console.metrics.call_finished("main", "self_service")
    console.metrics.node_done("main", "menu", 1.5)
    console.metrics.recognized(0.2)
    console.metrics.ami_reconnected()
    console.metrics.reload("partial")
    response = await client.get("/metrics")
    assert response.headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(await response.text())}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        for s in f.samples
    }
    assert samples[("ivr_calls_total", (("flow", "main"), ("outcome", "self_service")))] == 1
    assert samples[("ivr_calls_in_progress", (("flow", "main"),))] == 0
    assert samples[("ivr_node_seconds_count", (("flow", "main"), ("node_kind", "menu")))] == 1
    assert samples[("ivr_recognizer_seconds_count", ())] == 1
    assert samples[("ivr_ami_reconnects_total", ())] == 1
    assert samples[("ivr_flow_reloads_total", (("result", "partial"),))] == 1
    assert samples[("ivr_flow_reloads_total", (("result", "ok"),))] == 0
    assert families["ivr_node_seconds"].type == "histogram"


# --- calls, KPIs, surveys, queues ---------------------------------------------------------


async def test_calls_live_and_recent(client: TestClient[Any, Any], console: StubConsole) -> None:
    console.live = [
        LiveCall("c9", "main", "v1+abc", "menu", DAY + 500, "en", "***8000"),
        LiveCall("c8", "other", "o1", "x", DAY + 400, "en", "***"),
    ]
    await store_records(
        console.store,
        record("c1", DAY, outcome="failed_in_ivr", path_at=[0.0, 2.5, 9.25]),
        record("c2", DAY + 60, outcome="abandoned"),
        record("c3", DAY + 120, flow="other"),
        record("c4", DAY + 180, outcome=None, ended_at=None),
    )
    body = await (await client.get("/api/calls?live=1", headers=AUTH)).json()
    assert [c["call_id"] for c in body["live"]] == ["c9", "c8"]
    assert [r["call_id"] for r in body["recent"]] == ["c4", "c3", "c2", "c1"]
    assert body["recent"][0]["caller"] == "***8000"  # masked like live calls
    c1 = body["recent"][-1]  # when it entered each node of its path
    assert (c1["path"], c1["path_at"]) == (["hello", "menu", "bye"], [0.0, 2.5, 9.25])
    body = await (await client.get("/api/calls?outcome=failed_in_ivr", headers=AUTH)).json()
    assert [r["call_id"] for r in body["recent"]] == ["c1"]
    body = await (await client.get("/api/calls", headers=AUTH)).json()
    assert body["live"] == []
    query = f"live=1&flow=main&outcome=abandoned&since={DAY + 1}&limit=5"
    body = await (await client.get(f"/api/calls?{query}", headers=AUTH)).json()
    assert [c["call_id"] for c in body["live"]] == ["c9"]
    assert [r["call_id"] for r in body["recent"]] == ["c2"]
    body = await (await client.get("/api/calls?limit=1", headers=AUTH)).json()
    assert len(body["recent"]) == 1


async def test_kpis_are_the_kpi_report(client: TestClient[Any, Any], console: StubConsole) -> None:
    from ivr.reporting.kpi import report

    records = [
        record("k1", DAY),
        record("k2", DAY + 60, outcome="abandoned"),
        record("k4", DAY + 120, outcome="failed_in_ivr"),
        record("k3", DAY - 86400 * 3, survey=survey()),
    ]
    await store_records(console.store, *records)
    response = await client.get("/api/kpis?since=2026-05-28&until=2026-05-28&tz=UTC", headers=AUTH)
    body = await response.json()
    assert body == report(records[:3], tz="UTC")
    assert body["overall"]["calls"] == 3 and body["timezone"] == "UTC"
    overall = body["overall"]  # k1 served; k2 hung up and k4 failed in the IVR: all contained
    assert (overall["self_service_rate"], overall["containment_rate"]) == (0.3333, 1.0)
    assert overall["failed_in_ivr_rate"] == 0.3333
    assert "served" in body["definitions"]["self_service_rate"]
    assert "queue" in body["definitions"]["containment_rate"]
    body = await (await client.get("/api/kpis?tz=Asia/Shanghai", headers=AUTH)).json()
    assert body["overall"]["calls"] == 4 and body["timezone"] == "Asia/Shanghai"


async def test_surveys_and_csv_export(client: TestClient[Any, Any], console: StubConsole) -> None:
    await store_records(
        console.store,
        record("s1", DAY, survey=survey()),
        record("s2", DAY + 60),
        record("s3", DAY + 120, survey=survey("partial", None)),
        record("=cmd", DAY + 180, survey=survey()),
    )
    body = await (await client.get("/api/surveys?limit=2", headers=AUTH)).json()
    rows = body["surveys"]
    assert [r["call_id"] for r in rows] == ["=cmd", "s3"]
    assert rows[1]["status"] == "partial" and rows[1]["flow"] == "main"
    assert rows[1]["answers"][0] == {"question": "satisfied", "scale": "1-5", "value": None}
    await error_of(await client.get("/api/surveys?limit=x", headers=AUTH), 400)
    response = await client.get("/api/surveys.csv?since=2026-05-28", headers=AUTH)
    assert response.content_type == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(await response.text())))
    assert [r["call_id"] for r in table] == ["'=cmd", "s3", "s1"]  # no formula injection
    s1 = table[2]
    assert s1["started_at"] == "2026-05-28T20:26:40+00:00" and s1["survey"] == "after_call"
    assert s1["satisfied"] == "5" and s1["solved"] == "1" and s1["satisfaction"] == "5"
    assert s1["satisfaction_question"] == "satisfied" and table[1]["satisfied"] == ""


async def test_queues(client: TestClient[Any, Any], console: StubConsole) -> None:
    assert await (await client.get("/api/queues", headers=AUTH)).json() == {
        "ami": "off",
        "queues": [],
    }
    console.checks["ami"] = Health("up")
    console.queues = [{"name": "cards", "logged_in": 2, "available": 1, "callers": 0}]
    body = await (await client.get("/api/queues", headers=AUTH)).json()
    assert body["ami"] == "up" and body["queues"][0]["name"] == "cards"


async def test_no_store_is_503(client: TestClient[Any, Any], console: StubConsole) -> None:
    store, console.store = console.store, None
    try:
        await error_of(await client.get("/api/calls", headers=AUTH), 503)
    finally:
        console.store = store


# --- inside ivr serve -----------------------------------------------------------------------


def app_settings(tmp_path: Path, flows: Path, **admin: ClientSession) -> Settings:
    return Settings(
        flows_dir=str(flows),
        prompts_dir=str(tmp_path / "prompts"),
        agi=AgiSettings(port=0),
        store=StoreSettings(path=str(tmp_path / "calls.sqlite3")),
        speech=SpeechSettings(port=0),
        admin=AdminSettings(port=0, token=Secret(TOKEN.encode()), **admin),
    )


@pytest.fixture
async def app(tmp_path: Path, flows_dir: Path) -> AsyncIterator[Server]:
    app = await App(app_settings(tmp_path, flows_dir)).start()
    yield app
    await app.close()


@pytest.fixture
async def admin(app: Server) -> AsyncIterator[ClientSession]:
    async with ClientSession(f"http://127.0.0.1:{app.admin.port}") as session:
        yield session


def agi_port(app: Server) -> int:
    return app.agi.port


async def finished(app: Server, call_id: str) -> CallRecord:
    for _ in range(100):
        rec = await app.store.get(call_id)
        if rec is not None and rec.outcome is not None:
            return rec
        await asyncio.sleep(0.02)
    raise AssertionError(f"no finished record for {call_id}")


async def test_a_call_in_progress_keeps_its_version(
    app: Server, admin: ClientSession, flows_dir: Path
) -> None:
    at_menu = asyncio.Event()

    def hold_at_menu(cmd: FakeCommand, state: FakeCallState) -> list[str | float] | None:
        if cmd.name == "STREAM FILE" and "press-1" in cmd.raw:
            at_menu.set()
            return [1.0, "200 result=49 endpos=100"]  # pressed 1 after a long prompt
        return None

    held = asyncio.create_task(
        run_fake_call(
            "127.0.0.1",
            agi_port(app),
            script="main",
            rule=hold_at_menu,
            uniqueid="held",
            caller="13800138000",
        )
    )
    await asyncio.wait_for(at_menu.wait(), 5)
    body = await (await admin.get("/api/calls?live=1", headers=AUTH)).json()
    [live] = body["live"]
    assert live["call_id"] == "held" and live["node"] == "menu" and live["caller"] == "***8000"
    assert live["flow_version"].startswith("v1+")
    write(flows_dir / "main.yaml", flow_text("v2", end="farewell"))
    result = await (await admin.post("/api/flows/reload", headers=AUTH)).json()
    assert result["changed"] == ["main"]
    await run_fake_call("127.0.0.1", agi_port(app), script="main", digits=["1"], uniqueid="new")
    assert not held.done()  # the new call finished while the old one was still at the menu
    await held
    old, new = await finished(app, "held"), await finished(app, "new")
    assert old.flow_version.startswith("v1+") and old.path == ["hello", "menu", "bye"]
    assert new.flow_version.startswith("v2+") and new.path == ["hello", "menu", "farewell"]
    assert old.outcome == new.outcome == "failed_in_ivr"  # no node of flow_text is served


async def test_metrics_count_a_finished_call(app: Server, admin: ClientSession) -> None:
    await run_fake_call("127.0.0.1", agi_port(app), script="main", digits=["1"], uniqueid="m")
    await finished(app, "m")
    text = await (await admin.get("/metrics")).text()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    # flow_text marks no node served: the call the flow ended is failed_in_ivr
    assert samples[("ivr_calls_total", (("flow", "main"), ("outcome", "failed_in_ivr")))] == 1
    assert samples[("ivr_calls_in_progress", (("flow", "main"),))] == 0
    assert samples[("ivr_node_seconds_count", (("flow", "main"), ("node_kind", "menu")))] == 1
    assert samples[("ivr_node_seconds_count", (("flow", "main"), ("node_kind", "play")))] == 1
    assert samples[("ivr_flow_reloads_total", (("result", "ok"),))] == 0  # start-up is no reload


async def test_healthz_through_the_app(app: Server, admin: ClientSession, tmp_path: Path) -> None:
    response = await admin.get("/healthz")
    body = await response.json()
    assert response.status == 200 and body["status"] == "ok"
    assert body["components"]["ami"]["status"] == "off"
    assert body["components"]["store"]["status"] == "up"
    text = await response.text()  # open to anyone who reaches it: no file paths, no hosts
    for hidden in (str(tmp_path), "calls.sqlite3", "127.0.0.1", f":{agi_port(app)}"):
        assert hidden not in text, hidden
    await app.agi.close()  # FastAGI gone: 503
    response = await admin.get("/healthz")
    assert response.status == 503 and (await response.json())["status"] == "down"


async def test_the_watcher_reloads_inside_the_app(tmp_path: Path, flows_dir: Path) -> None:
    built = App(app_settings(tmp_path, flows_dir))
    built.flows.poll_s = 0.02
    app = await built.start()
    try:
        write(flows_dir / "main.yaml", flow_text("w2"))
        for _ in range(250):
            if app.library.flows["main"].version.startswith("w2+"):
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("not reloaded")
        await run_fake_call("127.0.0.1", agi_port(app), script="main", digits=["1"], uniqueid="w")
        assert (await finished(app, "w")).flow_version.startswith("w2+")
    finally:
        await app.close()


@pytest.fixture
def agi_starts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts FastAGI start-ups (a failed start-up must take no call)."""
    from ivr.asterisk.agi.server import AgiServer

    starts: list[int] = []
    start = AgiServer.start

    async def counted(self: AgiServer) -> None:
        starts.append(1)
        await start(self)

    monkeypatch.setattr(AgiServer, "start", counted)
    return starts


async def test_a_taken_admin_port_stops_start_up(
    tmp_path: Path, flows_dir: Path, agi_starts: list[int]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = app_settings(tmp_path, flows_dir)
        app = App(replace(settings, admin=replace(settings.admin, port=port)))
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port}"):
            await app.start()  # closes what it had started
        assert agi_starts == []  # no calls were taken


async def test_admin_off(tmp_path: Path, flows_dir: Path) -> None:
    settings = app_settings(tmp_path, flows_dir)
    app = await App(replace(settings, admin=replace(settings.admin, enabled=False))).start()
    try:
        assert app.admin.app is None  # not listening
    finally:
        await app.close()


async def test_a_bad_allowed_host_stops_start_up(
    tmp_path: Path, flows_dir: Path, agi_starts: list[int]
) -> None:
    settings = app_settings(tmp_path, flows_dir)
    app = App(replace(settings, admin=replace(settings.admin, allowed_hosts=("ops.example:8080",))))
    with pytest.raises(ConfigError, match=r"admin\.allowed_hosts: 'ops\.example:8080'"):
        await app.start()
    assert agi_starts == []  # no calls were taken


async def test_nodes_lists_the_servers_sharing_the_database(
    client: TestClient[Any, Any], console: StubConsole
) -> None:
    assert (await client.get("/api/nodes")).status == 401  # read access, as the calls
    assert await (await client.get("/api/nodes", headers=AUTH)).json() == {
        "nodes": [],
        "self": "",
    }
    assert console.store is not None
    await NodeStore(console.store).beat("0.1.0", started_at=100.0, calls=2, now=130.0)
    body = await (await client.get("/api/nodes", headers=AUTH)).json()
    assert body == {
        "nodes": [
            {"id": "", "version": "0.1.0", "started_at": 100.0, "beat_at": 130.0, "calls": 2}
        ],
        "self": "",
    }


async def test_nodes_names_the_node_that_answers(
    client: TestClient[Any, Any], console: StubConsole, tmp_path: Path
) -> None:
    """``self`` is the answering server's node id, whether or not it has beaten yet; the
    other nodes' rows are listed all the same."""
    assert console.store is not None
    other = await RecordStore.open(tmp_path / "calls.sqlite3", node="ivr-b:4573")
    try:
        await NodeStore(other).beat("0.2.0", started_at=100.0, calls=1, now=120.0)
    finally:
        await other.close()
    named = await RecordStore.open(tmp_path / "calls.sqlite3", node="ivr-a:4573")
    unnamed, console.store = console.store, named
    try:
        body = await (await client.get("/api/nodes", headers=AUTH)).json()
        assert body["self"] == "ivr-a:4573"
        assert [n["id"] for n in body["nodes"]] == ["ivr-b:4573"]
        await NodeStore(console.store).beat("0.2.0", started_at=110.0, calls=3, now=130.0)
        body = await (await client.get("/api/nodes", headers=AUTH)).json()
        assert body["self"] == "ivr-a:4573"
        listed = [(n["id"], n["calls"]) for n in body["nodes"]]
        assert listed == [("ivr-a:4573", 3), ("ivr-b:4573", 1)]
    finally:
        await console.store.close()
        console.store = unnamed


async def test_nodes_on_a_failing_store_is_503(
    client: TestClient[Any, Any], console: StubConsole, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(self: NodeStore) -> list[object]:
        raise StoreError("the database is down")

    monkeypatch.setattr(NodeStore, "nodes", down)
    assert "store failed" in await error_of(await client.get("/api/nodes", headers=AUTH), 503)
