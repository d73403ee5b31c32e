"""Signing in to the dashboard in headless Chromium against the REAL server: without a token the
page shows the sign-in form and nothing else (no empty panels, no red HTTP errors); a wrong
token is refused without being shown again; the right one loads the panels, is kept in this
tab's sessionStorage only (never localStorage or a cookie) and survives a reload; Sign out
forgets it. A server with no token set says the console is closed instead of five red 403s.
Run alone with ``pytest -m browser tests/browser/test_dashboard_sign_in.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Request, expect
from support.browser_page import dashboard
from support.live_server import LiveServer, console_settings, live_server

from ivr.config import AdminSettings, Secret

pytestmark = pytest.mark.browser

TOKEN = "sign-in-token-0123456789abcdef"
WRONG = "not-the-token-4242424242"
FLOWS = Path(__file__).resolve().parents[2] / "flows"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("dashboard-sign-in")
    settings = console_settings(tmp, AdminSettings(port=0, token=Secret(TOKEN.encode())))
    with live_server(settings) as live:
        yield live


@pytest.fixture(scope="module")
def closed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The default console: no token set and reads not opened, so every read is 403."""
    tmp = tmp_path_factory.mktemp("dashboard-closed")
    with live_server(console_settings(tmp, AdminSettings(port=0))) as live:
        yield live


def sent_tokens(page: Page) -> list[str]:
    sent: list[str] = []

    def on_request(request: Request) -> None:
        auth = request.headers.get("authorization")
        if request.url.split("/", 3)[3].startswith("api/"):
            sent.append(auth or "")

    page.on("request", on_request)
    return sent


def storage(page: Page) -> dict[str, object]:
    return dict(
        page.evaluate("""() => ({session: sessionStorage.getItem('ivr-admin-token'),
            local: localStorage.length, cookie: document.cookie})""")
    )


def assert_no_red_errors(page: Page) -> None:
    expect(page.locator("#problems")).to_be_hidden()
    assert not re.search(r"HTTP 40[13]|Forbidden|Unauthorized", page.inner_text("body"))


def test_sign_in_reload_and_sign_out(browser: Browser, server: LiveServer) -> None:
    with dashboard(browser, server.url + "/", timezone_id="UTC") as dash:
        dash.allowed.append(re.compile(r"status of 401"))  # the page's first reads
        page = dash.open()
        sent = sent_tokens(page)

        # no token: the form, and nothing else
        expect(page.locator("#auth")).to_be_visible()
        expect(page.locator("#auth-title")).to_have_text("Sign in")
        expect(page.locator("#auth-token")).to_be_focused()
        expect(page.locator("#main")).to_be_hidden()
        expect(page.locator("#sign-out")).to_be_hidden()
        assert_no_red_errors(page)

        # a wrong token: refused, not shown again, not kept
        page.fill("#auth-token", WRONG)
        page.press("#auth-token", "Enter")
        expect(page.locator("#auth-message")).to_contain_text("That token was refused")
        expect(page.locator("#auth-token")).to_have_value("")
        assert WRONG not in page.content()
        expect(page.locator("#main")).to_be_hidden()
        assert_no_red_errors(page)
        assert sent.count(f"Bearer {WRONG}") == 1  # one wrong entry, one refused request

        # the right one: the panels load
        page.fill("#auth-token", TOKEN)
        page.click("#auth button[type=submit]")
        expect(page.locator("#auth")).to_be_hidden()
        expect(page.locator("#main")).to_be_visible()
        expect(page.locator("#live-count")).to_have_text("0 in progress")
        flows = len(list(FLOWS.glob("*.yaml")))
        expect(page.locator("#flow-table tbody tr")).to_have_count(flows)
        expect(page.locator("#sign-out")).to_be_visible()
        assert storage(page) == {"session": TOKEN, "local": 0, "cookie": ""}
        assert_no_red_errors(page)

        # a reload keeps the session: no form, every read with the token
        sent.clear()
        page.reload()
        expect(page.locator("#live-count")).to_have_text("0 in progress")
        expect(page.locator("#flow-table tbody tr")).to_have_count(flows)
        expect(page.locator("#auth")).to_be_hidden()
        expect(page.locator("#sign-out")).to_be_visible()
        assert sent and set(sent) == {f"Bearer {TOKEN}"}

        # sign out: the token is forgotten and the form is back
        page.click("#sign-out")
        expect(page.locator("#auth")).to_be_visible()
        expect(page.locator("#main")).to_be_hidden()
        expect(page.locator("#sign-out")).to_be_hidden()
        assert storage(page) == {"session": None, "local": 0, "cookie": ""}
        assert_no_red_errors(page)
        assert dash.unexpected_errors() == []


def test_a_server_without_a_token_says_the_console_is_closed(
    browser: Browser, closed_server: LiveServer
) -> None:
    with dashboard(browser, closed_server.url + "/", timezone_id="UTC") as dash:
        dash.allowed.append(re.compile(r"status of 403"))
        page = dash.open()
        message = page.locator("#auth-message")
        expect(message).to_contain_text("This console is closed")
        expect(message).to_contain_text("IVR_ADMIN_TOKEN")
        expect(page.locator("#auth-token")).to_be_hidden()  # no token could open it
        expect(page.locator("#main")).to_be_hidden()
        page.wait_for_timeout(500)  # every panel's first read has been answered
        assert_no_red_errors(page)
        assert dash.unexpected_errors() == []


def test_open_reads_need_no_sign_in_but_a_write_still_asks(
    browser: Browser, tmp_path: Path
) -> None:
    """With ``admin.open_read`` the panels load at once; the form only comes when an action
    needs the token, and the panels stay in view behind it."""
    admin = AdminSettings(port=0, open_read=True, token=Secret(TOKEN.encode()))
    with (
        live_server(console_settings(tmp_path, admin)) as live,
        dashboard(browser, live.url + "/", timezone_id="UTC") as dash,
    ):
        dash.allowed.append(re.compile(r"status of 401"))
        page = dash.open()
        expect(page.locator("#live-count")).to_have_text("0 in progress")
        expect(page.locator("#auth")).to_be_hidden()
        expect(page.locator("#sign-out")).to_be_hidden()  # nothing to sign out of
        # a reload of the flows needs the token: asked for with the panels still in view
        page.evaluate("""() => import('/api.js').then((api) => {
            window.reloaded = api.request('/api/flows/reload', {method: 'POST'})
                .then((r) => r.status);
        })""")
        expect(page.locator("#auth")).to_be_visible()
        expect(page.locator("#main")).to_be_visible()
        page.fill("#auth-token", TOKEN)
        page.press("#auth-token", "Enter")
        assert page.evaluate("() => window.reloaded") == 200
        expect(page.locator("#sign-out")).to_be_visible()
        assert_no_red_errors(page)
        assert dash.unexpected_errors() == []
