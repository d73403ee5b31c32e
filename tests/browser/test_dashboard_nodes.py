"""The dashboard's Nodes panel in headless Chromium against the REAL server
(:class:`ivr.app.server.App` as node ``ivr-a:4573`` on a SQLite store) whose ``nodes`` table
holds two other nodes' heartbeats, written with :meth:`ivr.store.nodes.NodeStore.beat` at
instants built from this test's clock: ``ivr-b`` beat a moment ago, ``ivr-c`` 60 s ago (past
the dialler's 30 s takeover threshold). The page reads the same clock (``browser_page``
installs the session's shifted one under the time-bomb guard). Run alone with
``pytest -m browser tests/browser/test_dashboard_nodes.py``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from support.browser_page import Dashboard, dashboard
from support.live_server import LiveServer, console_settings, live_server

from ivr import __version__
from ivr.config import AdminSettings
from ivr.store.nodes import NodeStore
from ivr.store.records import RecordStore

pytestmark = pytest.mark.browser

SELF = "ivr-a:4573"
RECENT = "ivr-b:4573"
SILENT = "ivr-c:4573"


async def beat(db: Path, node: str, started_ago: float, beat_ago: float, calls: int) -> None:
    """``node``'s last heartbeat, ``beat_ago`` seconds before now, as that node writes it."""
    store = await RecordStore.open(db, node=node)
    try:
        now = time.time()
        await NodeStore(store).beat("0.9.1", now - started_ago, calls, now - beat_ago)
    finally:
        await store.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("dashboard-nodes")
    db = tmp / "calls.sqlite3"
    settings = console_settings(tmp, AdminSettings(port=0, open_read=True), node_id=SELF)

    async def seed() -> None:
        await beat(db, RECENT, started_ago=2 * 3600 + 60, beat_ago=2, calls=4)
        await beat(db, SILENT, started_ago=3 * 3600 + 60, beat_ago=60, calls=1)

    with live_server(settings, seed=seed) as srv:
        yield srv


@pytest.fixture
def dash(browser: Browser, server: LiveServer) -> Iterator[Dashboard]:
    with dashboard(browser, server.url + "/", timezone_id="UTC", http_errors=True) as d:
        yield d


def test_nodes_panel_shows_each_node_and_its_state(dash: Dashboard) -> None:
    page = dash.open()
    rows = page.locator("#node-table tbody tr")
    expect(rows).to_have_count(3)
    # newest heartbeat first: this server beat at start-up, after the seeded two
    assert rows.evaluate_all("(rs) => rs.map((r) => r.dataset.node)") == [SELF, RECENT, SILENT]
    expect(page.locator("#nodes-count")).to_have_text("2 of 3 up")

    mine = page.locator(f'#node-table tr[data-node="{SELF}"]')
    expect(mine.locator("th")).to_have_text(f"{SELF} this console")
    expect(mine).to_have_attribute("aria-current", "true")
    expect(mine.locator("td")).to_have_text(
        [__version__, "0", re.compile(r"^\d+ s ago$"), re.compile(r"^\d+ s ago$"), "up"]
    )

    recent = page.locator(f'#node-table tr[data-node="{RECENT}"]')
    expect(recent.locator("th")).to_have_text(RECENT)  # not this console
    expect(recent).to_have_attribute("data-state", "up")
    expect(recent.locator("td")).to_have_text(
        ["0.9.1", "4", "2 h ago", re.compile(r"^\d+ s ago$"), "up"]
    )

    silent = page.locator(f'#node-table tr[data-node="{SILENT}"]')
    expect(silent.locator("th")).to_have_text(SILENT)
    expect(silent).to_have_attribute("data-state", "silent")
    expect(silent).to_have_class(re.compile(r"\bwarn\b"))
    expect(silent.locator("td")).to_have_text(["0.9.1", "1", "3 h ago", "1 min ago", "silent"])
    expect(silent.locator("td").nth(4).locator(".pill")).to_have_attribute(
        "title", re.compile("No heartbeat for over 30 s")
    )

    expect(page.locator("#problems")).to_be_hidden()
    assert dash.errors == [], "errors or failed requests on the dashboard"
