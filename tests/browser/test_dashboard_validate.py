"""The dashboard's Validate panel in headless Chromium against the REAL server's
``/api/validate``: warnings are told apart from errors (a flow with only warnings is valid),
each problem shows its fix, and the gutter marks error and warning lines differently.
Run alone with ``pytest -m browser tests/browser/test_dashboard_validate.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, expect
from support.browser_page import Dashboard, dashboard
from support.live_server import LiveServer, console_settings, live_server

from ivr.config import AdminSettings

pytestmark = pytest.mark.browser


def stale_holidays() -> str:
    """A flow whose holiday list ended a month ago: it loads, with a warning on line 4."""
    stale = (datetime.now(UTC) - timedelta(days=30)).date().isoformat()
    return (
        "start: h\nnodes:\n  h:\n    hours:\n      open: {mon-sun: '00:00-24:00'}\n"
        f"      holidays: ['{stale}']\n      when_open: bye\n      when_closed: bye\n"
        "  bye: {hangup: true}\n"
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("dashboard-validate")
    with live_server(console_settings(tmp, AdminSettings(port=0, open_read=True))) as srv:
        yield srv


@pytest.fixture
def dash(browser: Browser, server: LiveServer) -> Iterator[Dashboard]:
    with dashboard(browser, server.url + "/", timezone_id="UTC") as d:
        yield d
        assert d.unexpected_errors() == []


def validate(dash: Dashboard, text: str) -> None:
    page = dash.page
    page.fill("#yaml-text", text)
    page.click("#validate-form button[type=submit]")


def test_warnings_are_told_apart_from_errors(dash: Dashboard) -> None:
    page = dash.open()
    validate(dash, stale_holidays())
    result = page.locator("#validate-result")
    expect(result).to_have_text("No errors: this flow is valid. 1 warning:")
    expect(result).to_have_class("ok")
    item = page.locator("#validate-errors li")
    expect(item).to_have_count(1)
    expect(item).to_have_class("warning")
    expect(item.locator(".pill")).to_have_text("warning")
    expect(item).to_contain_text("line 4")
    expect(item).to_contain_text("no holiday listed between")
    expect(item.locator(".fix")).to_have_text(
        " Fix: add next year's dates to 'holidays', or use 'calendar: <country>'"
    )
    expect(page.locator("#yaml-gutter .warn")).to_have_text("4")
    expect(page.locator("#yaml-gutter .err")).to_have_count(0)

    # an error and a warning together (a call to a flow the server has not loaded: the flow
    # parses, so its warnings are judged too): the error fails it, both listed, errors first
    calls_gone = stale_holidays().replace("when_closed: bye", "when_closed: sub")
    validate(dash, calls_gone + "  sub: {call: gone, next: bye}\n")
    expect(result).to_have_text("1 error and 1 warning:")
    expect(result).to_have_class("bad")
    items = page.locator("#validate-errors li")
    expect(items).to_have_count(2)
    expect(items.nth(0)).to_contain_text("calls flow 'gone', which is not loaded")
    expect(items.nth(1)).to_have_class("warning")
    expect(page.locator("#yaml-gutter .err")).to_have_text("10")
    expect(page.locator("#yaml-gutter .warn")).to_have_text("4")

    # a misspelt target: the suggestion shows as the fix
    validate(dash, stale_holidays().replace("when_closed: bye", "when_closed: bey"))
    expect(result).to_have_text("1 error:")
    expect(page.locator("#validate-errors li .fix")).to_have_text(" Fix: did you mean 'bye'?")
    expect(page.locator("#yaml-gutter .err")).to_have_text("8")
