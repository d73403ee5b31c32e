"""``GET /api/flows/{name}/analytics`` over a real store, on SQLite and PostgreSQL: the stored
paths, their times (``path_at``) and inputs read back and counted per node, the default period
(the last 7 days on the injected clock), ``since``/``until``, other flows and calls in
progress left out, and the token rules of a read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from support.store_console import StoreConsole

from ivr.admin.api import make_admin_app
from ivr.call.record import CallRecord, InputEvent, Outcome
from ivr.config import AdminSettings, Secret
from ivr.flow.registry import FlowRegistry
from ivr.store.records import RecordStore

NOW = 1_780_000_000.0  # the server's clock, injected (2026-05-28 UTC)
DAY = 86400.0
TOKEN = "analytics-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def call(
    call_id: str,
    started: float,
    path: list[str],
    at: list[float],
    outcome: Outcome | None,
    *,
    flow: str = "bank",
    end_s: float = 30.0,
    inputs: list[InputEvent] | None = None,
) -> CallRecord:
    return CallRecord(
        call_id=call_id,
        flow=flow,
        flow_version="v1",
        started_at=started,
        ended_at=None if outcome is None else started + end_s,
        path=path,
        path_at=at,
        inputs=inputs or [],
        outcome=outcome,
        end_node=path[-1],
    )


RECORDS = [
    # two days ago: hello 0-2 s, menu 2-10 s (a silence at 5 s), balance 10-30 s
    call(
        "a",
        NOW - 2 * DAY,
        ["hello", "menu", "balance"],
        [0, 2, 10],
        "self_service",
        inputs=[InputEvent("menu", "no_input", "", 5.0), InputEvent("menu", "dtmf", "1", 9.0)],
    ),
    # yesterday: hello 0-4 s, menu 4-12 s where the caller hung up (a wrong key at 6 s)
    call(
        "b",
        NOW - DAY,
        ["hello", "menu"],
        [0, 4],
        "abandoned",
        end_s=12,
        inputs=[InputEvent("menu", "no_match", "9", 6.0)],
    ),
    # an hour ago: through the menu twice, then failed in the IVR at the menu
    call(
        "c",
        NOW - 3600,
        ["hello", "menu", "info", "menu"],
        [0, 1, 3, 13],
        "failed_in_ivr",
        end_s=20,
        inputs=[InputEvent("menu", "no_input", "", 15.0), InputEvent("menu", "no_match", "", 18)],
    ),
    call("old", NOW - 9 * DAY, ["hello", "menu"], [0, 3], "abandoned"),  # outside 7 days
    call("other", NOW - DAY, ["hello"], [0], "abandoned", flow="cards"),  # another flow
    call("live", NOW - 60, ["hello", "menu"], [0, 2], None),  # in progress
]


@pytest.fixture
async def client(store: RecordStore, tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    for record in RECORDS:
        if record.outcome is None:
            await store.begin(record)
        else:
            await store.finish(record)
    console = StoreConsole(FlowRegistry(tmp_path), store, "")
    settings = AdminSettings(port=0, token=Secret(TOKEN.encode()))
    api = TestClient(TestServer(make_admin_app(console, settings, now=lambda: NOW)))
    await api.start_server()
    yield api
    await api.close()


async def get(client: TestClient[Any, Any], query: str = "") -> dict[str, Any]:
    response = await client.get(f"/api/flows/bank/analytics{query}", headers=AUTH)
    assert response.status == 200, await response.text()
    data: dict[str, Any] = await response.json()
    return data


async def test_figures_per_node_over_the_last_seven_days(client: TestClient[Any, Any]) -> None:
    data = await get(client)
    assert data["period"] == {"since": NOW - 7 * DAY, "until": NOW, "tz": "UTC"}
    assert data["calls"] == 3  # a, b, c
    nodes = data["nodes"]
    assert set(nodes) == {"hello", "menu", "balance", "info"}
    assert nodes["hello"] == {
        "calls": 3,
        "visits": 3,
        "hangups": 0,
        "no_input_rate": 0.0,
        "no_match_rate": 0.0,
        "failed_in_ivr": 0,
        "avg_time_s": round(7 / 3, 3),  # 2, 4, 1
        "p50_time_s": 2.0,
    }
    # the menu: 4 visits (c went through twice); no_input at a and c's 2nd visit; no_match
    # at b and c's 2nd visit; times 8 (a), 8 (b, until the end), 2 and 7 (c)
    assert nodes["menu"] == {
        "calls": 3,
        "visits": 4,
        "hangups": 1,
        "no_input_rate": 0.5,
        "no_match_rate": 0.5,
        "failed_in_ivr": 1,
        "avg_time_s": 6.25,
        "p50_time_s": 7.0,
    }
    assert nodes["balance"]["avg_time_s"] == 20.0
    assert nodes["info"]["avg_time_s"] == 10.0
    assert set(data["definitions"]) == set(nodes["menu"])


async def test_the_period_changes_the_figures(client: TestClient[Any, Any]) -> None:
    data = await get(client, f"?since={NOW - 1.5 * DAY}&until={NOW - 0.5 * DAY}")
    assert data["calls"] == 1  # b only
    assert data["nodes"]["menu"]["hangups"] == 1
    assert data["nodes"]["menu"]["no_match_rate"] == 1.0
    assert "balance" not in data["nodes"]
    day = await get(client, "?since=2026-05-19&until=2026-05-19")  # only "old" that day
    assert day["calls"] == 1 and day["nodes"]["menu"]["hangups"] == 1
    assert day["period"]["until"] - day["period"]["since"] == DAY
    empty = await get(client, "?since=2020-01-01&until=2020-01-02")
    assert empty["calls"] == 0 and empty["nodes"] == {}


async def test_the_token_and_bad_queries(client: TestClient[Any, Any]) -> None:
    response = await client.get("/api/flows/bank/analytics")
    assert response.status == 401
    response = await client.get("/api/flows/bank/analytics?since=soon", headers=AUTH)
    assert response.status == 400
    assert "since" in (await response.json())["error"]
    response = await client.get(
        f"/api/flows/bank/analytics?since={NOW}&until={NOW - DAY}", headers=AUTH
    )
    assert response.status == 400
