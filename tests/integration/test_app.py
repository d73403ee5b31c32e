"""``ivr serve``'s composition root over real TCP, driven by the scripted fake Asterisk."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web
from support.fake_asterisk import run_fake_call
from support.stores import Db

from ivr import __version__
from ivr.app.server import App, Server
from ivr.config import (
    AdminSettings,
    AgiSettings,
    HttpSettings,
    Secret,
    Settings,
    SpeechSettings,
    StoreSettings,
)
from ivr.flow.prompts import tts_file
from ivr.store.nodes import NodeStore
from ivr.store.records import RecordStore

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "24681357"


@pytest.fixture(scope="module")
def prompts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prompts")  # rendered once by the first App


@pytest.fixture
async def balance_api() -> AsyncIterator[str]:
    async def balance(request: web.Request) -> web.Response:
        return web.json_response({"available": "99.50", "acct": request.match_info["acct"]})

    app = web.Application()
    app.router.add_get("/accounts/{acct}/balance", balance)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def start_app(
    tmp_path: Path, prompts: Path, flows: Path, base_url: str = "", db: Db | None = None
) -> Server:
    """The whole server on ``db`` (default: a SQLite file in ``tmp_path``)."""
    store = StoreSettings(path=str(tmp_path / "calls.sqlite3"))
    if db is not None and db.backend == "postgresql":
        assert db.password is not None
        store = replace(store, url=db.target, password=Secret(db.password.encode()))
    settings = Settings(
        flows_dir=str(flows),
        prompts_dir=str(prompts),
        agi=AgiSettings(port=0, sounds_prefix="ivr/"),
        http=HttpSettings(base_url=base_url),
        store=store,
        speech=SpeechSettings(port=0),
        admin=AdminSettings(port=0),
    )
    return await App(settings).start()


def always_open_flows(tmp_path: Path) -> Path:
    """The sample flows, with the bank open around the clock (tests must not depend on when
    they run)."""
    flows = tmp_path / "flows"
    shutil.copytree(ROOT / "flows", flows)
    bank = flows / "bank.yaml"
    text = bank.read_text(encoding="utf-8")
    start = text.index("      open:\n")
    end = text.index("      when_open:")
    bank.write_text(
        text[:start] + '      open: {mon-sun: "00:00-24:00"}\n' + text[end:], encoding="utf-8"
    )
    return flows


@pytest.fixture
async def app(tmp_path: Path, prompts_dir: Path, balance_api: str, db: Db) -> AsyncIterator[Server]:
    app = await start_app(tmp_path, prompts_dir, always_open_flows(tmp_path), balance_api, db)
    yield app
    await app.close()


def port(app: Server) -> int:
    return app.agi.port


async def stored(app: Server, call_id: str) -> object:
    for _ in range(50):  # the record is written right after the socket closes
        record = await app.store.get(call_id)
        if record is not None and record.outcome is not None:
            return record
        await asyncio.sleep(0.02)
    raise AssertionError(f"no finished record for {call_id}")


async def test_start_renders_prompts_and_a_menu_choice_is_recorded(
    app: Server, prompts_dir: Path
) -> None:
    assert (prompts_dir / f"{tts_file('Welcome to the I V R demo.', 'en')}.wav").is_file()
    result = await run_fake_call(
        "127.0.0.1", port(app), script="main", digits=["2"], uniqueid="call-main-1"
    )
    assert result.closed_by_server and not result.timed_out
    assert result.commands[0] == "ANSWER"
    # the channel came in in English (agi_language), the flow's language: no CHANNEL(language)
    assert f"STREAM FILE ivr/{tts_file('Welcome to the I V R demo.', 'en')}" in result.commands[1]
    assert not [c for c in result.commands if "CHANNEL(language)" in c]
    record = await stored(app, "call-main-1")
    assert record.path == ["welcome", "menu", "support", "goodbye"]  # type: ignore[attr-defined]
    assert record.outcome == "self_service"  # type: ignore[attr-defined]
    assert result.names[-1] == "HANGUP"


async def test_the_server_reports_itself_in_the_nodes_table(app: Server) -> None:
    [node] = await NodeStore(app.store).nodes()  # the first beat is taken at start-up
    assert node.id == f"{socket.gethostname()}:0"  # host:agi.port (port 0 here)
    assert (node.version, node.calls) == (__version__, 0)


async def test_unknown_flow_is_handed_back_to_the_dialplan(
    app: Server, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="ivr.app"):
        result = await run_fake_call("127.0.0.1", port(app), script="nope", uniqueid="call-x")
    assert result.closed_by_server
    assert result.variables["IVR_RESULT"] == "unknown_flow"
    assert "HANGUP" not in result.names
    assert await app.store.get("call-x") is None
    # the line carries the call in its call field (JSON logs: "call_id"), not only in words
    [line] = [r for r in caplog.records if "which is not loaded" in r.getMessage()]
    assert getattr(line, "uniqueid", None) == "call-x"


async def test_caller_hangs_up_mid_menu(app: Server) -> None:
    # command 0 ANSWER, 1 the language, 2 welcome prompt, 3 menu prompt: the caller leaves
    result = await run_fake_call(
        "127.0.0.1", port(app), script="main", hangup_at=3, uniqueid="call-gone"
    )
    assert result.closed_by_server
    record = await stored(app, "call-gone")
    assert record.outcome == "abandoned"  # type: ignore[attr-defined]
    assert record.end_node == "menu"  # type: ignore[attr-defined]


async def test_bank_balance_then_agent(app: Server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    digits = ["1", "1", *ACCOUNT, "#", "1", "9", "0"]
    # Monday 10:00 in Shanghai is open; the fake says an agent took the call (no AMI here)
    result = await run_fake_call(
        "127.0.0.1",
        port(app),
        script="bank",
        digits=digits,
        uniqueid="call-bank",
        variables={"QUEUESTATUS": "CONTINUE"},
        timeout_s=20,
    )
    assert result.closed_by_server
    record = await stored(app, "call-bank")
    path = record.path  # type: ignore[attr-defined]
    assert path[-5:] == ["fetch_balance", "tell_balance", "anything_else", "main", "agent"]
    assert record.outcome == "transferred"  # type: ignore[attr-defined]
    assert record.variables["balance"] == "99.50"  # type: ignore[attr-defined]
    assert "EXEC Queue default,c,,,120" in result.commands
    assert record.queue is not None and record.queue.result == "answered"  # type: ignore[attr-defined]
    # the account number never reaches our logs (the stub bank's access log is not ours)
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("ivr")]
    assert len(ours) > 20
    assert not [line for line in ours if ACCOUNT in line]
    await app.store.close()
    db = Path(app.settings.store.path)
    for file in db.parent.glob(db.name + "*"):
        assert ACCOUNT.encode() not in file.read_bytes()


async def test_caller_bytes_that_are_not_utf8_are_stored_escaped(app: Server) -> None:
    # An old PBX: a GBK name in the number field, a Latin-1 display name, a Latin-1 query value.
    number = "张三".encode("gbk").decode("utf-8", "surrogateescape")
    name = "José".encode("latin-1").decode("utf-8", "surrogateescape")
    result = await run_fake_call(
        "127.0.0.1",
        port(app),
        script="main",
        digits=["2"],
        uniqueid="call-latin1",
        caller=number,
        caller_name=name,
        query=f"src={name}",
    )
    assert result.closed_by_server and result.names[-1] == "HANGUP"
    record = await stored(app, "call-latin1")
    assert record.outcome == "self_service"  # type: ignore[attr-defined]
    assert record.caller == "\\xd5\\xc5\\xc8\\xfd"  # type: ignore[attr-defined]
    assert record.variables["src"] == "Jos\\xe9"  # type: ignore[attr-defined]


async def test_playback_deadlines_know_the_rendered_prompts(app: Server, prompts_dir: Path) -> None:
    assert app.agi.sounds.directory == prompts_dir  # where the TTS renders, Asterisk plays
    assert app.agi.unknown_prompt_s == app.settings.agi.unknown_prompt_s
    welcome = tts_file("Welcome to the I V R demo.", "en")
    seconds = app.agi.sounds.seconds(welcome)
    assert seconds is not None and 0.5 < seconds < 10


async def test_calls_over_the_connection_cap_are_counted(app: Server) -> None:
    assert app.agi.max_connections == app.settings.agi.max_connections == 2000
    app.agi.max_connections = 1  # the test's own call fills it
    _, writer = await asyncio.open_connection("127.0.0.1", port(app))
    for _ in range(100):  # accepted, waiting for its agi_* block
        if app.agi.active_calls == 1:
            break
        await asyncio.sleep(0.01)
    result = await run_fake_call("127.0.0.1", port(app), script="main", uniqueid="call-busy")
    writer.close()
    assert result.variables == {"IVR_RESULT": "busy"}
    assert b"ivr_agi_rejected_total 1.0" in app.metrics.render()


async def test_garbage_connection_does_not_disturb_a_call(app: Server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port(app))
    writer.write(b"\xff\xfe not agi at all\n" * 100)
    call = asyncio.create_task(
        run_fake_call("127.0.0.1", port(app), script="main", digits=["1"], uniqueid="call-ok")
    )
    assert await asyncio.wait_for(reader.read(), 5) == b""  # the server closed the garbage one
    writer.close()
    result = await call
    assert result.closed_by_server
    record = await stored(app, "call-ok")
    assert record.path[-2:] == ["sales", "goodbye"]  # type: ignore[attr-defined]


async def test_a_broken_flow_file_leaves_the_others_serving(
    tmp_path: Path, prompts_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    shutil.copy(ROOT / "flows/main.yaml", flows)
    (flows / "broken.yaml").write_text("start: a\nnodes:\n  a: {play: 'x', next: b}\n")
    app = await start_app(tmp_path, prompts_dir, flows)
    try:
        assert "broken.yaml:3:" in caplog.text
        result = await run_fake_call("127.0.0.1", port(app), script="broken", uniqueid="b1")
        assert result.variables["IVR_RESULT"] == "unknown_flow"
        result = await run_fake_call(
            "127.0.0.1", port(app), script="main", digits=["2"], uniqueid="m1"
        )
        record = await stored(app, "m1")
        assert record.outcome == "self_service"  # type: ignore[attr-defined]
    finally:
        await app.close()


async def test_records_cut_off_by_a_stop_are_recovered(tmp_path: Path, prompts_dir: Path) -> None:
    from ivr.call.record import CallRecord

    store = await RecordStore.open(tmp_path / "calls.sqlite3")
    await store.begin(CallRecord(call_id="cut", flow="main", flow_version="x", path=["menu"]))
    await store.close()
    app = await start_app(tmp_path, prompts_dir, ROOT / "flows")
    try:
        record = await stored(app, "cut")
        assert record.outcome == "error"  # type: ignore[attr-defined]
        assert record.end_node == "menu"  # type: ignore[attr-defined]
    finally:
        await app.close()


def test_the_shipped_docker_config_loads() -> None:
    from ivr.config import load_settings

    settings = load_settings(ROOT / "ivr.yaml", env={})
    assert settings.store.path == "/var/lib/ivr/ivr.sqlite3"
    assert settings.agi.host == "127.0.0.1"
