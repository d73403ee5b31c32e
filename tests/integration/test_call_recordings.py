"""Recordings of calls' agent legs: ``calls.recording`` on both engines, retention (files and
rows older than the limit removed, on the injected clock), and ``GET /api/calls/{id}/recording``
serving only a WAV under the recordings directory's ``calls/``, with the token."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient, TestServer
from support.store_console import StoreConsole

from ivr.admin.api import make_admin_app
from ivr.app.retention import RecordingRetention, Swept
from ivr.app.server import App
from ivr.call.record import CallRecord
from ivr.config import AdminSettings, AgiSettings, Secret, Settings, StoreSettings
from ivr.flow.registry import FlowRegistry
from ivr.store.records import RecordStore

NOW = 1_780_000_000.0  # a fixed "now" for the injected clock (2026-05-28 UTC)
DAY = 86400.0
TOKEN = "s3cret-token-value"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def call(call_id: str, started: float, recording: str = "") -> CallRecord:
    return CallRecord(
        call_id=call_id,
        flow="bank",
        flow_version="v1",
        started_at=started,
        ended_at=started + 60,
        outcome="transferred",
        recording=recording,
    )


def wav(directory: Path, name: str, mtime: float, data: bytes = b"RIFF....WAVE") -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return path


async def test_the_recording_is_kept_with_the_record(store: RecordStore) -> None:
    started = call("c-1", NOW)
    started.outcome, started.ended_at = None, None
    await store.begin(started)
    begun = await store.get("c-1")
    assert begun is not None and begun.recording == ""
    await store.finish(call("c-1", NOW, "calls/c-1.wav"))
    done = await store.get("c-1")
    assert done is not None and done.recording == "calls/c-1.wav"


async def test_retention_removes_old_files_and_clears_their_calls(
    store: RecordStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recordings = tmp_path / "recordings"
    old_start, new_start = NOW - 91 * DAY, NOW - 89 * DAY
    olds = [wav(recordings, f"calls/old-{n}.wav", old_start + 60) for n in range(5)]
    new = wav(recordings, "calls/new.wav", new_start + 60)
    orphan_old = wav(recordings, "calls/orphan-old.wav", old_start)
    orphan_new = wav(recordings, "calls/orphan-new.wav", new_start)
    message = wav(recordings, "message.wav", old_start)  # not a call recording: not ours
    outside = wav(tmp_path, "secret.wav", old_start)
    for n in range(5):
        await store.finish(call(f"old-{n}", old_start + n, f"calls/old-{n}.wav"))
    await store.finish(call("gone", old_start, "calls/gone.wav"))  # its file already went
    await store.finish(call("new", new_start, "calls/new.wav"))
    await store.finish(call("escape", old_start, "calls/../../secret.wav"))
    await store.finish(call("plain", old_start))

    retention = RecordingRetention(store, recordings, 90, clock=lambda: NOW, batch=2)
    swept = await retention.sweep()

    assert swept == Swept(files=5, rows=7, orphans=1)
    assert not any(p.exists() for p in (*olds, orphan_old))
    assert new.exists() and orphan_new.exists() and message.exists()
    assert outside.exists()  # a name leading out of calls/ is forgotten, never followed
    for call_id in ("old-0", "old-4", "gone", "escape"):
        kept = await store.get(call_id)
        assert kept is not None and kept.recording == "", call_id
    fresh = await store.get("new")
    assert fresh is not None and fresh.recording == "calls/new.wav"
    assert "escape names 'calls/../../secret.wav'" in caplog.text
    assert await retention.sweep() == Swept()  # nothing left to do


async def test_retention_runs_in_the_background_and_logs_each_round(
    store: RecordStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ivr.app")
    recordings = tmp_path / "recordings"
    old = wav(recordings, "calls/old.wav", NOW - 40 * DAY)
    await store.finish(call("old", NOW - 40 * DAY, "calls/old.wav"))
    retention = RecordingRetention(store, recordings, 30, clock=lambda: NOW, every_s=0.05)
    retention.start()
    try:
        for _ in range(100):
            if "1 files removed, 1 calls cleared" in caplog.text:
                break
            await asyncio.sleep(0.02)
    finally:
        await retention.close()
    assert not old.exists()
    assert "recording retention (30 days): 1 files removed, 1 calls cleared" in caplog.text


async def test_the_server_sweeps_at_start_up_and_serves_from_its_recordings_dir(
    tmp_path: Path,
) -> None:
    recordings = tmp_path / "recordings"
    old = wav(recordings, "calls/old.wav", NOW - 40 * DAY)
    kept = wav(recordings, "calls/kept.wav", NOW - DAY, AUDIO)
    db = tmp_path / "calls.sqlite3"
    async with await RecordStore.open(db) as store:
        await store.finish(call("old", NOW - 40 * DAY, "calls/old.wav"))
        await store.finish(call("kept", NOW - DAY, "calls/kept.wav"))
    flows = tmp_path / "flows"
    flows.mkdir()
    settings = Settings(
        flows_dir=str(flows),
        prompts_dir=str(tmp_path / "prompts"),
        agi=AgiSettings(port=0),
        store=StoreSettings(path=str(db)),
        admin=AdminSettings(port=0, token=Secret(TOKEN.encode())),
        recordings_dir=str(recordings),
        recordings_retention_days=30,
    )
    app = App(settings)
    app.clock = lambda: NOW
    server = await app.start()
    try:
        for _ in range(100):
            if not old.exists():
                break
            await asyncio.sleep(0.02)
        assert not old.exists() and kept.exists()
        base = f"http://127.0.0.1:{server.admin.port}"
        async with (
            ClientSession() as http,
            http.get(f"{base}/api/calls/kept/recording", headers=AUTH) as response,
        ):
            assert response.status == 200 and await response.read() == AUDIO
    finally:
        await server.close()


# --- the API ------------------------------------------------------------------------------


AUDIO = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(64))


@pytest.fixture
async def api(
    store: RecordStore, tmp_path: Path
) -> AsyncIterator[tuple[TestClient[Any, Any], Path]]:
    recordings = tmp_path / "recordings"
    wav(recordings, "calls/c-1.wav", NOW, AUDIO)
    wav(tmp_path, "secret.wav", NOW, b"not yours")
    wav(recordings, "message.wav", NOW, b"a message")
    (recordings / "calls/link.wav").symlink_to(tmp_path / "secret.wav")
    for call_id, name in [
        ("c-1", "calls/c-1.wav"),
        ("none", ""),
        ("up", "../secret.wav"),
        ("updown", "calls/../../secret.wav"),
        ("absolute", str(tmp_path / "secret.wav")),
        ("sibling", "message.wav"),
        ("link", "calls/link.wav"),
        ("removed", "calls/removed.wav"),
    ]:
        await store.finish(call(call_id, NOW, name))
    flows = tmp_path / "flows"
    flows.mkdir()
    console = StoreConsole(FlowRegistry(flows), store, str(recordings))
    settings = AdminSettings(port=0, token=Secret(TOKEN.encode()), open_read=True)
    client = TestClient(TestServer(make_admin_app(console, settings)))
    await client.start_server()
    yield client, recordings
    await client.close()


async def test_the_api_serves_the_wav_with_the_token_only(
    api: tuple[TestClient[Any, Any], Path],
) -> None:
    client, _ = api
    response = await client.get("/api/calls/c-1/recording", headers=AUTH)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "audio/wav"
    assert response.headers["Cache-Control"] == "no-store"
    assert await response.read() == AUDIO
    # open_read opens the records, never the callers' voices
    calls = await client.get("/api/calls")
    assert calls.status == 200
    [listed] = [c for c in (await calls.json())["recent"] if c["call_id"] == "c-1"]
    assert listed["recording"] == "calls/c-1.wav"
    assert (await client.get("/api/calls/c-1/recording")).status == 401
    wrong = {"Authorization": "Bearer wrong-token-value"}
    assert (await client.get("/api/calls/c-1/recording", headers=wrong)).status == 401


@pytest.mark.parametrize(
    "call_id", ["none", "up", "updown", "absolute", "sibling", "link", "removed", "nobody"]
)
async def test_the_api_refuses_what_is_not_a_recording_under_the_directory(
    api: tuple[TestClient[Any, Any], Path], call_id: str
) -> None:
    client, _ = api
    response = await client.get(f"/api/calls/{call_id}/recording", headers=AUTH)
    assert response.status == 404, await response.text()
    assert response.content_type == "application/json"
    assert b"not yours" not in await response.read()


async def test_the_request_path_never_names_the_file(
    api: tuple[TestClient[Any, Any], Path],
) -> None:
    client, _ = api
    for path in ("/api/calls/..%2F..%2Fsecret/recording", "/api/calls/%2E%2E/recording"):
        response = await client.get(path, headers=AUTH)
        assert response.status == 404
        assert b"not yours" not in await response.read()
