"""Screen-pop and webhooks through the whole server, driven by the scripted fake Asterisk: the
inherited IVR_* variables are set before Queue(), the call's context is readable live and
after the call, and its events reach a verifying receiver in order, with nothing sensitive;
a receiver that hangs holds up no call."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from support.fake_asterisk import FakeCallState, FakeCommand, run_fake_call
from support.webhook_receiver import SECRET, Receiver

from ivr.app.server import App, Server
from ivr.config import (
    AdminSettings,
    AgiSettings,
    HttpSettings,
    Secret,
    Settings,
    SpeechSettings,
    StoreSettings,
    WebhookSettings,
)
from ivr.store.webhooks import WebhookStore

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "24681357"
TOKEN = "t" * 32
# language 1 (English), balance, the account, confirm, back to the main menu, 0: an agent
DIGITS = ["1", "1", *ACCOUNT, "#", "1", "9", "0"]


@pytest.fixture(scope="module")
def prompts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prompts")


@pytest.fixture
async def balance_api() -> AsyncIterator[str]:
    async def balance(request: web.Request) -> web.Response:
        return web.json_response({"available": "99.50"})

    app = web.Application()
    app.router.add_get("/accounts/{acct}/balance", balance)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    await runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    yield r
    await r.stop()


def open_flows(tmp_path: Path) -> Path:
    """The sample flows with the bank open around the clock (no test depends on the date)."""
    flows = tmp_path / "flows"
    shutil.copytree(ROOT / "flows", flows)
    bank = flows / "bank.yaml"
    text = bank.read_text(encoding="utf-8")
    start, end = text.index("      open:\n"), text.index("      when_open:")
    bank.write_text(text[:start] + '      open: {mon-sun: "00:00-24:00"}\n' + text[end:])
    return flows


@pytest.fixture
async def app(
    tmp_path: Path, prompts_dir: Path, balance_api: str, receiver: Receiver
) -> AsyncIterator[Server]:
    settings = Settings(
        flows_dir=str(open_flows(tmp_path)),
        prompts_dir=str(prompts_dir),
        agi=AgiSettings(port=0),
        http=HttpSettings(base_url=balance_api),
        store=StoreSettings(path=str(tmp_path / "calls.sqlite3")),
        speech=SpeechSettings(port=0),
        admin=AdminSettings(port=0, token=Secret(TOKEN.encode())),
        webhooks=WebhookSettings(
            url=receiver.url, secret=Secret(SECRET.encode()), retry_s=0.05, timeout_s=0.5
        ),
    )
    server = await App(settings).start()
    yield server
    await server.close()


async def get(app: Server, path: str, token: str | None = TOKEN) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{app.admin.port}{path}", headers=headers) as response,
    ):
        return response.status, await response.json()


def queue_call(app: Server, call_id: str, hold_s: float = 0.0) -> asyncio.Task[Any]:
    """The bank call to an agent; Queue() lasts ``hold_s`` (an agent answers)."""

    def rule(cmd: FakeCommand, state: FakeCallState) -> Sequence[str | float] | None:
        if cmd.name == "EXEC" and cmd.args[0] == "Queue":
            return [hold_s, "200 result=0"]
        return None

    return asyncio.create_task(
        run_fake_call(
            "127.0.0.1",
            app.agi.port,
            script="bank",
            digits=DIGITS,
            uniqueid=call_id,
            variables={"QUEUESTATUS": "CONTINUE"},
            rule=rule,
            timeout_s=30,
        )
    )


async def test_the_agent_leg_gets_the_ivr_variables_before_queue(
    app: Server, receiver: Receiver
) -> None:
    await receiver.start()
    call = queue_call(app, "pop-1", hold_s=1.0)
    for _ in range(500):  # the caller is in Queue() now: the context is live
        if app.live.find("pop-1") is not None and app.live.find("pop-1").record.queue:  # type: ignore[union-attr]
            break
        await asyncio.sleep(0.02)
    status, live = await get(app, "/api/calls/pop-1/context")
    result = await call
    assert result.closed_by_server
    queue_at = next(i for i, c in enumerate(result.commands) if c.startswith("EXEC Queue"))
    sets = {
        p.args[0]: p.args[1]
        for p in result.parsed[:queue_at]
        if p.name == "SET VARIABLE" and p.args[0].startswith("__IVR_")
    }
    assert sets == {
        "__IVR_CALL_ID": "pop-1",
        "__IVR_REASON": "main:0",
        "__IVR_LANGUAGE": "en",
        "__IVR_FLOW": "bank",
    }
    assert status == 200 and live["live"] is True and live["reason"] == "main:0"
    assert live["queue"]["queue"] == "default" and live["path"][-1] == "agent"
    assert live["variables"]["account"] == "***" and live["caller"] == "***1234"

    await receiver.wait_for(3)
    assert receiver.of("pop-1") == ["agent.offered", "survey.answered", "call.ended"]
    offered, _, ended = receiver.taken
    assert offered["data"]["reason"] == "main:0" and offered["data"]["queue"] == "default"
    assert ended["data"]["outcome"] == "transferred" and ended["data"]["caller"] == "***1234"
    assert ACCOUNT not in json.dumps(receiver.taken)

    status, after = await get(app, "/api/calls/pop-1/context")
    assert status == 200 and after["live"] is False and after["outcome"] == "transferred"
    assert after["reason"] == "main:0" and after["variables"]["account"] == "***"
    assert (await get(app, "/api/calls/nope/context"))[0] == 404
    assert (await get(app, "/api/calls/pop-1/context", token=None))[0] == 401
    status, hooks = await get(app, "/api/webhooks")
    assert status == 200 and hooks["counts"]["sent"] == 3
    assert "payload" not in hooks["events"][0]


async def test_a_hanging_receiver_holds_up_no_call(app: Server, receiver: Receiver) -> None:
    receiver.mode = "hang"
    await receiver.start()
    started = time.monotonic()
    result = await queue_call(app, "pop-hang")
    assert result.closed_by_server and time.monotonic() - started < 10
    for _ in range(100):
        record = await app.store.get("pop-hang")
        if record is not None and record.outcome is not None:
            break
        await asyncio.sleep(0.02)
    assert record is not None and record.outcome == "transferred"
    for _ in range(200):
        rows = await WebhookStore(app.store).rows()
        if any("no answer" in r.last_error for r in rows) and len(rows) == 3:
            break
        await asyncio.sleep(0.02)
    assert {r.event for r in rows} == {"agent.offered", "survey.answered", "call.ended"}
    assert all(r.status == "pending" for r in rows)  # waiting for the receiver, in order
    status, failed = await get(app, "/api/webhooks?status=failed")
    assert status == 200 and failed["events"] == []
    assert (await get(app, "/api/webhooks?status=nope"))[0] == 400
