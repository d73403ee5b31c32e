"""The dashboard's Webhooks panel in headless Chromium against the REAL server (its
``GET /api/webhooks``), whose outbox holds one event that failed (its last error carries
markup, shown as text), one waiting and one sent, written through
:class:`ivr.store.webhooks.WebhookStore` as the sender leaves them. Run alone with
``pytest -m browser tests/browser/test_dashboard_webhooks.py``.
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

from ivr.config import AdminSettings
from ivr.store.records import RecordStore
from ivr.store.webhooks import WebhookStore

pytestmark = pytest.mark.browser

ERROR = "HTTP 500 from <b>crm</b>.example.com"


async def outbox(db: Path) -> None:
    """A failed, a waiting and a sent event, as the sender leaves them."""
    store = await RecordStore.open(db)
    try:
        table = WebhookStore(store)
        now = time.time()
        failed, waiting, sent = await table.enqueue(
            [
                ("agent.offered", "1700000000.7", "{}"),
                ("call.ended", "1700000000.9", "{}"),
                ("call.ended", "1700000000.8", "{}"),
            ],
            now - 60,
        )
        await table.claim(now - 60, lease_s=0)
        for _ in range(2):  # three attempts in all
            await table.retry(failed, "HTTP 503", now - 60)
            await table.claim(now - 60, lease_s=0)
        await table.give_up(failed, ERROR)
        await table.retry(waiting, "no answer", now + 600)
        await table.sent(sent, now - 30)
    finally:
        await store.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("dashboard-webhooks")
    db = tmp / "calls.sqlite3"
    settings = console_settings(tmp, AdminSettings(port=0, open_read=True))
    with live_server(settings, seed=lambda: outbox(db)) as srv:
        yield srv


@pytest.fixture
def dash(browser: Browser, server: LiveServer) -> Iterator[Dashboard]:
    with dashboard(browser, server.url + "/", timezone_id="UTC", http_errors=True) as d:
        yield d


def test_webhooks_panel_lists_the_failed_events(dash: Dashboard) -> None:
    page = dash.open()
    pill = page.locator("#webhooks-count")
    expect(pill).to_have_text("1 waiting · 1 failed")
    expect(pill).to_have_class(re.compile(r"\bpill-bad\b"))
    expect(pill).to_have_attribute("title", "1 sent in the last 7 days")
    rows = page.locator("#webhook-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.locator("th")).to_have_text("agent.offered")
    expect(rows.locator("td")).to_have_text(
        [re.compile(r"^\d\d:\d\d:\d\d$|^\d+ \w+, \d\d:\d\d$"), "1700000000.7", "3", ERROR]
    )
    assert page.locator("#webhook-table b").count() == 0  # the error's markup stays text
    expect(page.locator('nav a[href="#webhooks"]')).to_have_text("Webhooks")
    expect(page.locator("#problems")).to_be_hidden()
    assert dash.errors == [], "errors or failed requests on the dashboard"
