"""The flow schema at its public URL: the admin server inside ``ivr serve`` answers
``GET /schema/flow.json`` to anyone who reaches it (an editor cannot send a token), over a
real socket, while every ``/api`` route keeps its token."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiohttp import ClientSession
from support.store_console import StoreConsole

from ivr.admin.schema_api import CACHE_CONTROL
from ivr.admin.server import AdminServer
from ivr.config import AdminSettings, Secret
from ivr.flow.registry import FlowRegistry
from ivr.flow.schema import flow_schema

TOKEN = "s3cret-token-value"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

Serve = Callable[..., Awaitable[str]]


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Serve]:
    """Start a real admin server (any free port) with the given settings; its base URL."""
    servers: list[AdminServer] = []

    async def start(**admin: Any) -> str:
        flows = tmp_path / "flows"
        flows.mkdir(exist_ok=True)
        console = StoreConsole(FlowRegistry(flows), None, str(tmp_path))
        server = AdminServer(console, AdminSettings(port=0, **admin))
        await server.start()
        servers.append(server)
        return f"http://127.0.0.1:{server.port}"

    yield start
    for server in servers:
        await server.close()


async def test_the_schema_is_served_without_a_token_while_the_api_needs_one(
    serve: Serve,
) -> None:
    base = await serve(token=Secret(TOKEN.encode()))
    async with ClientSession() as http:
        async with http.get(f"{base}/schema/flow.json") as response:
            assert response.status == 200
            assert response.content_type == "application/json"
            assert response.headers["Cache-Control"] == CACHE_CONTROL
            assert "nosniff" in response.headers["X-Content-Type-Options"]
            etag = response.headers["ETag"]
            schema = json.loads(await response.text())
        assert schema["$id"] == f"{base}/schema/flow.json"  # where it was fetched
        assert {k: v for k, v in schema.items() if k != "$id"} == {
            k: v for k, v in flow_schema().items() if k != "$id"
        }
        jsonschema.Draft202012Validator.check_schema(schema)
        wrong = {"start": "a", "nodes": {"a": {"play": "Hi", "nxt": "hangup"}}}
        found = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(wrong)]
        assert "'nxt' is not one of ['barge_in', 'description', 'next', 'play', 'served']" in found

        # unchanged: the editor keeps its copy
        async with http.get(f"{base}/schema/flow.json", headers={"If-None-Match": etag}) as r:
            assert r.status == 304 and r.headers["ETag"] == etag
            assert await r.read() == b""

        # the rest still needs the token: the same schema at /api/schema, and call data
        for path in ("/api/schema", "/api/calls", "/api/flows"):
            async with http.get(f"{base}{path}") as r:
                assert r.status == 401, path
        async with http.get(f"{base}/api/schema", headers=AUTH) as r:
            assert r.status == 200
        async with http.post(f"{base}/schema/flow.json") as r:
            assert r.status == 405  # read-only
        async with http.get(f"{base}/schema/flow.json", headers={"Host": "evil.example"}) as r:
            assert r.status == 421  # foreign Host names still refused first


async def test_the_schema_is_served_when_no_token_is_configured(serve: Serve) -> None:
    base = await serve()
    async with ClientSession() as http:
        async with http.get(f"{base}/schema/flow.json", headers={"Host": "localhost"}) as r:
            assert r.status == 200
            assert (await r.json())["$id"] == "http://localhost/schema/flow.json"
        async with http.get(f"{base}/api/schema") as r:
            assert r.status == 403
