"""The dashboard's Messages panel in headless Chromium against the REAL server: a message
in its store (written through :class:`ivr.store.messages.MessageStore`) with its WAV under
the recordings directory. The list shows it not heard; Play fetches the WAV with the admin
token (the audio is private even with open reads) and the <audio> element loads it (its
duration is the file's); Mark heard marks it in the store. Run alone with
``pytest -m browser tests/browser/test_dashboard_messages.py``.
"""

from __future__ import annotations

import math
import re
import sqlite3
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from support.browser_page import Dashboard, dashboard
from support.live_server import LiveServer, console_settings, live_server

from ivr.config import (
    AdminSettings,
    Secret,
)
from ivr.store.messages import MessageStore
from ivr.store.records import RecordStore

pytestmark = pytest.mark.browser

TOKEN = "dashboard-messages-token-42"
LENGTH_S = 2.5


def tone(path: Path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = b"".join(
        int(8000 * math.sin(2 * math.pi * 440 * i / 8000)).to_bytes(2, "little", signed=True)
        for i in range(int(8000 * seconds))
    )
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(frames)


async def seed(db: Path) -> None:
    store = await RecordStore.open(db)
    try:
        await MessageStore(store).add(
            call_id="1700000000.5",
            flow="bank",
            node="leave_message",
            caller="+8613812345678",
            file="messages/1700000000.5-leave_message-1.wav",
            duration_s=LENGTH_S,
            language="en",
            transcript="please call me <b>back</b>",
            now=time.time() - 120,
        )
    finally:
        await store.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("dashboard-messages")
    db = tmp / "calls.sqlite3"
    recordings = tmp / "recordings"
    tone(recordings / "messages/1700000000.5-leave_message-1.wav", LENGTH_S)
    settings = console_settings(
        tmp,
        AdminSettings(port=0, open_read=True, token=Secret(TOKEN.encode())),
        recordings_dir=str(recordings),
    )
    with live_server(settings, seed=lambda: seed(db)) as srv:
        srv.db = db  # type: ignore[attr-defined]
        yield srv


@pytest.fixture
def dash(browser: Browser, server: LiveServer) -> Iterator[Dashboard]:
    with dashboard(browser, server.url + "/", timezone_id="UTC") as d:
        yield d


def heard_at(db: Path) -> float | None:
    """The message's heard_at as the store keeps it (the page runs its own event loop)."""
    with sqlite3.connect(db) as conn:
        [(value,)] = conn.execute("SELECT heard_at FROM messages").fetchall()
    return None if value is None else float(value)


def test_messages_panel_plays_a_message_and_marks_it_heard(
    dash: Dashboard, server: LiveServer
) -> None:
    page = dash.open()
    expect(page.locator('nav a[href="#messages"]')).to_have_text("Messages")
    pill = page.locator("#messages-count")
    expect(pill).to_have_text("1 not heard")
    rows = page.locator("#message-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.locator("th")).not_to_contain_text("8613812345678")  # masked like calls
    expect(rows.locator("th")).to_contain_text("5678")
    expect(rows).to_contain_text("bank · leave_message")
    expect(rows).to_contain_text("please call me <b>back</b>")  # markup stays text
    rows.locator("[data-play]").click()
    expect(page.locator("#auth-token")).to_be_visible()  # voices need the token
    page.fill("#auth-token", TOKEN)
    page.press("#auth-token", "Enter")
    audio = page.locator("#message-table audio")
    expect(audio).to_have_count(1)
    page.wait_for_function(
        "() => { const a = document.querySelector('#message-table audio');"
        " return a && a.readyState >= 1 && isFinite(a.duration); }"
    )
    duration = audio.evaluate("a => a.duration")
    assert abs(duration - LENGTH_S) < 0.05, duration
    assert audio.evaluate("a => a.error") is None
    rows.locator("[data-heard]").click()
    expect(pill).to_have_text("0 not heard")
    expect(rows.locator("[data-heard]")).to_have_text("Heard")
    assert heard_at(server.db) is not None  # type: ignore[attr-defined]
    errors = [e for e in dash.unexpected_errors() if not re.search(r"401", e)]
    assert errors == [], "errors on the dashboard"
