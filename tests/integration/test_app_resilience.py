"""The call path under bad conditions, through ``App`` over TCP with the fake Asterisk: the
store failing never hangs up on a caller or loses a record, and a server that stops hands its
calls back to the dialplan (``IVR_RESULT`` is ``done`` only for calls the flow finished)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.fake_asterisk import build_env, env_block, run_fake_call

from ivr.app.calls import DONE, STOPPED_ERROR
from ivr.app.server import App, Server
from ivr.config import AdminSettings, AgiSettings, Settings, SpeechSettings, StoreSettings

FLOW = """
start: hello
nodes:
  hello: {play: {sound: hello-world}, next: bye}
  bye: {hangup: {outcome: abandoned}}
"""


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Server]:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "hello.yaml").write_text(FLOW, encoding="utf-8")
    settings = Settings(
        flows_dir=str(flows),
        prompts_dir=str(tmp_path / "prompts"),
        agi=AgiSettings(port=0, shutdown_grace_s=0.5),
        store=StoreSettings(path=str(tmp_path / "calls.sqlite3")),
        speech=SpeechSettings(port=0),
        admin=AdminSettings(enabled=False),
    )
    the_app = await App(settings).start()
    the_app.store.retry_s = 0.1
    try:
        yield the_app
    finally:
        await the_app.close()


def port(app: Server) -> int:
    return app.agi.port


def rows(app: Server) -> dict[str, tuple[str | None, str | None]]:
    with sqlite3.connect(app.store.path) as conn:
        return {
            r[0]: (r[1], r[2])
            for r in conn.execute("SELECT call_id, outcome, error FROM calls").fetchall()
        }


async def wait_for_row(app: Server, call_id: str, timeout_s: float = 15) -> tuple[str | None, ...]:
    deadline = time.monotonic() + timeout_s
    while (row := rows(app).get(call_id)) is None or row[0] is None:
        assert time.monotonic() < deadline, f"no record for {call_id}: {rows(app)}"
        await asyncio.sleep(0.05)
    return row


async def test_a_finished_flow_marks_the_call_done(app: Server) -> None:
    result = await run_fake_call("127.0.0.1", port(app), script="hello", uniqueid="c-1")
    assert result.variables["IVR_RESULT"] == DONE
    assert await wait_for_row(app, "c-1") == ("abandoned", None)


async def test_a_locked_database_never_holds_up_or_drops_the_call(app: Server) -> None:
    lock = sqlite3.connect(app.store.path, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # a big import holds the write lock past busy_timeout
    try:
        result = await run_fake_call(
            "127.0.0.1", port(app), script="hello", uniqueid="c-2", timeout_s=4.0
        )  # busy_timeout is 5 s: never waited for
        assert not result.timed_out
        assert any("hello-world" in c for c in result.commands)  # the flow ran
        assert result.variables["IVR_RESULT"] == DONE
        await asyncio.sleep(5.5)  # the write waited out busy_timeout and went to the journal
        assert Path(f"{app.store.path}.journal").exists()
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert await wait_for_row(app, "c-2") == ("abandoned", None)


async def test_a_call_id_seen_before_runs_and_keeps_both_records(app: Server) -> None:
    await run_fake_call("127.0.0.1", port(app), script="hello", uniqueid="c-3")
    await wait_for_row(app, "c-3")
    result = await run_fake_call("127.0.0.1", port(app), script="hello", uniqueid="c-3")
    assert any("hello-world" in c for c in result.commands)
    assert result.variables["IVR_RESULT"] == DONE
    assert await wait_for_row(app, "c-3-2") == ("abandoned", None)


async def test_shutdown_hands_calls_past_the_grace_back_to_the_dialplan(app: Server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port(app))
    writer.write(env_block(build_env("hello", host="127.0.0.1", port=port(app), uniqueid="c-4")))
    await writer.drain()
    sent = [await reader.readline()]  # ANSWER: never answered, as if Asterisk were slow
    closing = asyncio.create_task(app.close())
    while line := await asyncio.wait_for(reader.readline(), 5):
        sent.append(line)
    await closing
    writer.close()
    assert not any(b"IVR_RESULT" in s for s in sent)  # no "done": the dialplan falls back
    with sqlite3.connect(Path(app.settings.store.path)) as conn:
        row = conn.execute("SELECT outcome, error FROM calls WHERE call_id = 'c-4'").fetchone()
    assert tuple(row) == ("error", STOPPED_ERROR)
