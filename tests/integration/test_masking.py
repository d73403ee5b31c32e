"""Sensitive values stay masked everywhere: records, log lines, the admin API; numbers to
call back show only their first and last digits.

Each test keys an account number (or a number to call back) and then looks for its digits
where they must not be: a log line, the stored record, the API's answer.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from support.flowkit import flow, run

from ivr.admin.api import make_admin_app
from ivr.admin.console import Health, LiveCall
from ivr.call.channel import CallInfo
from ivr.call.queue import QueueState
from ivr.call.record import MASK, CallRecord, InputEvent, mask_number
from ivr.config import AdminSettings
from ivr.engines.http import HttpLookup, extract
from ivr.errors import HttpLookupError
from ivr.flow.numbers import NumberPolicy
from ivr.flow.registry import FlowRegistry
from ivr.metrics import Metrics
from ivr.outbound.jobs import Outbound
from ivr.runtime.interpreter import CallRun, Services
from ivr.runtime.sim import ScriptedChannel
from ivr.store.records import RecordStore

ACCOUNT = "12345678"

BALANCE = """
    start: balance
    nodes:
      balance:
        collect:
          prompt: "Enter your account number."
          into: account
          digits: {min: 8, max: 8}
          sensitive: true
          otherwise: hangup
        next: copy
      copy:
        set: {again: "{account}", hint: "{account:masked}", label: "acct {account}"}
        next: fetch
      fetch:
        http: {get: "/accounts/{account}/balance", on_error: sorry}
        next: hangup
      sorry: {play: "Sorry.", next: hangup}
"""


class Failing:
    """An http port failing like ivr.engines.http does: the message names the request."""

    def __init__(self, error: type[Exception] = HttpLookupError) -> None:
        self.error = error

    async def request(self, method: str, path: str, **kw: Any) -> object:
        raise self.error(f"{method} {path}: HTTP 404 Not Found")


class Queues:
    """A queue with a long wait (and AMI events that never name an agent)."""

    async def state(self, queue: str) -> QueueState:
        return QueueState(logged_in=1, available=0, callers=2, holdtime_s=20.0, talktime_s=60.0)

    def watch(self, uniqueid: str) -> Any:
        return None


def closed_port() -> int:
    """A local port nothing listens on (connecting is refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_middle_digits_of_a_number_are_masked() -> None:
    assert mask_number("8613800138000") == "861*******000"
    assert mask_number("13900139000") == "13*******00"
    assert mask_number("+442071234567") == "+442******567"
    assert mask_number("5550199") == "5*****9"
    assert mask_number("112") == "***" and mask_number("") == ""


async def test_an_http_error_never_logs_the_sensitive_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    record, _ = await run(flow(BALANCE), f"{ACCOUNT}#", http=Failing(), extract=extract)
    assert record.path[-1] == "sorry"
    assert "GET /accounts/{account}/balance: HTTP 404" in caplog.text  # still says what failed
    assert ACCOUNT not in caplog.text


async def test_the_real_http_client_error_never_logs_the_sensitive_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with HttpLookup(f"http://127.0.0.1:{closed_port()}", timeout_s=1.0) as http:
        record, _ = await run(flow(BALANCE), f"{ACCOUNT}#", http=http, extract=extract)
    assert record.path[-1] == "sorry" and "http node fetch failed" in caplog.text
    assert ACCOUNT not in caplog.text


async def test_a_failing_service_leaves_no_sensitive_value_in_the_record_or_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    record, _ = await run(flow(BALANCE), f"{ACCOUNT}#", http=Failing(RuntimeError), extract=extract)
    assert record.outcome == "error" and record.error is not None
    assert "HTTP 404" in record.error and ACCOUNT not in record.error
    assert "Traceback" in caplog.text  # the bug is still logged with its stack
    assert ACCOUNT not in caplog.text


async def test_a_copy_of_a_sensitive_value_is_masked_too() -> None:
    record, _ = await run(flow(BALANCE), f"{ACCOUNT}#", http=Failing(), extract=extract)
    assert record.variables["account"] == MASK
    assert record.variables["again"] == MASK and record.variables["label"] == MASK
    assert record.variables["hint"] == "****5678"  # :masked shows the last four only
    assert ACCOUNT not in str(record.to_dict())


async def test_variables_declared_sensitive_at_the_top_are_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    f = flow("""
        start: fetch
        sensitive: [card]
        variables: {card: ""}
        nodes:
          fetch:
            http: {get: "/cards/{card}", on_error: hangup}
            next: hangup
    """)
    channel = ScriptedChannel(info=CallInfo(uniqueid="t-2", params={"card": "4111 1111"}))
    record = await CallRun(f, channel, Services(http=Failing(), extract=extract)).run()
    assert record.variables["card"] == MASK
    assert "4111" not in caplog.text and "4111%201111" not in caplog.text


async def test_a_callback_number_is_masked_in_the_record_and_the_logs(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    f = flow("""
        start: agent
        number_policy: {edit: true}
        nodes:
          agent:
            queue:
              name: cards
              callback: {prompt: "Press 1.", over_s: 0, then: hangup,
                         dial: "PJSIP/{number}@callback-line"}
              when_unavailable: hangup
              when_timeout: hangup
    """)
    async with await RecordStore.open(tmp_path / "calls.sqlite3") as store:
        outbound = Outbound(store)
        record, _ = await run(
            f,
            "1,2,13900139000#,1",
            queues=Queues(),
            outbound=outbound,
            caller="8613800138000",
            numbers=NumberPolicy(),
        )
        [job] = await outbound.jobs()
    assert job.number == "13900139000"  # the dialer needs it whole
    assert ("dtmf", "13*******00") in [(i.kind, i.value) for i in record.inputs]
    assert "13900139000" not in caplog.text and "8613800138000" not in caplog.text
    assert "13*******00" in caplog.text


# --- the admin API ----------------------------------------------------------------------------


class Console:
    """The running server as the admin API sees it: flows, a store, nothing live."""

    def __init__(self, flows: FlowRegistry, store: RecordStore) -> None:
        self.flows = flows
        self.store = store
        self.metrics = Metrics()

    def live_calls(self) -> list[LiveCall]:
        return []

    async def health(self) -> dict[str, Health]:
        return {"fastagi": Health("up"), "store": Health("up")}

    async def queue_state(self) -> list[dict[str, object]]:
        return []


QUEUE_FLOW = """start: balance
nodes:
  balance:
    collect: {prompt: "Account?", into: account, sensitive: true, otherwise: agent}
    next: agent
  agent:
    queue:
      name: cards
      callback: {prompt: "Press 1.", dial: "PJSIP/{number}@trunk"}
      when_unavailable: hangup
      when_timeout: hangup
"""


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], RecordStore]]:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "bank.yaml").write_text(QUEUE_FLOW, encoding="utf-8")
    registry = FlowRegistry(flows)
    await registry.reload()
    async with await RecordStore.open(tmp_path / "calls.sqlite3") as store:
        app = make_admin_app(
            Console(registry, store),  # type: ignore[arg-type]
            AdminSettings(port=0, open_read=True),
        )
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            yield client, store
        finally:
            await client.close()


async def test_api_calls_masks_what_an_older_record_kept(
    api: tuple[TestClient[Any, Any], RecordStore],
) -> None:
    # A record stored before the flow said `account` was sensitive (or by an older server):
    # the API masks it by the flow loaded now, and the number keyed for a callback.
    client, store = api
    record = CallRecord(
        call_id="1.1",
        flow="bank",
        flow_version="v",
        caller="8613800138000",
        started_at=1.0,
        ended_at=2.0,
        outcome="transferred",
        path=["balance", "agent"],
        inputs=[
            InputEvent("balance", "dtmf", ACCOUNT, 1.0),
            InputEvent("agent", "dtmf", "1", 2.0),
            InputEvent("agent", "dtmf", "13900139000", 3.0),
        ],
        variables={"account": ACCOUNT, "segment": "gold"},
    )
    await store.begin(CallRecord(call_id="1.1", flow="bank", flow_version="v", started_at=1.0))
    await store.finish(record)
    response = await client.get("/api/calls")
    assert response.status == 200
    text = await response.text()
    assert ACCOUNT not in text and "13900139000" not in text and "8613800138000" not in text
    [call] = (await response.json())["recent"]
    assert call["variables"] == {"account": MASK, "segment": "gold"}
    assert [i["value"] for i in call["inputs"]] == [MASK, "1", "13*******00"]
