"""The console's hardening in headless Chromium against the REAL server (:class:`ivr.app.server.App`
with a token and reads closed, on the repository's ``flows/``): the security headers on every
answer, the dashboard working under its Content-Security-Policy with no console error and no
CSP violation, injected inline code and framing refused, a page reached by another host name
(DNS rebinding) refused, and the token rules (one refused token per wrong entry, a lock-out
after :data:`ivr.admin.guard.TOKEN_FAILURES`). Run alone with
``pytest -m browser tests/browser/test_dashboard_security.py``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Request, Response, expect
from support.browser_page import Dashboard, chromium, dashboard
from support.live_server import LiveServer, console_settings, live_server

from ivr.admin import guard
from ivr.config import AdminSettings, Secret

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
FLOWS = ROOT / "flows"
TOKEN = "console-token-0123456789abcdef"
REBIND = "rebind.test"  # this browser resolves it to 127.0.0.1, as a rebinding DNS would
LOCAL = "127.0.0.1"

# every CSP violation on the page, whether or not Chromium also logs it
WATCH_CSP = """window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(`${e.effectiveDirective} ${e.blockedURI}`));"""


@dataclass
class Server:
    live: LiveServer
    shift: list[float] = field(default_factory=lambda: [0.0])

    @property
    def url(self) -> str:
        return self.live.url

    @property
    def port(self) -> int:
        return self.live.port

    @property
    def failures(self) -> guard.FailedTokens:
        assert self.live.running.admin.app is not None
        return self.live.running.admin.app[guard.FAILURES]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("dashboard-security")
    settings = console_settings(tmp, AdminSettings(port=0, token=Secret(TOKEN.encode())))
    with live_server(settings, host=LOCAL) as live:
        srv = Server(live)
        # the refused-token window on a clock the tests can move on
        srv.failures.clock = lambda: time.monotonic() + srv.shift[0]
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium(f"--host-resolver-rules=MAP {REBIND} {LOCAL}") as b:
        yield b


@pytest.fixture
def dash(browser: Browser, server: Server) -> Iterator[Dashboard]:
    server.shift[0] += guard.TOKEN_WINDOW_S  # no refused tokens from an earlier test
    with dashboard(browser, server.url + "/", timezone_id="UTC") as d:
        d.page.add_init_script(WATCH_CSP)
        # before the token is entered, the browser logs each 401 as a failed resource load
        d.allowed.append(re.compile(r"status of 401"))
        yield d


def violations(page: Page) -> list[str]:
    return list(page.evaluate("() => window.__csp"))


def sign_in(page: Page, token: str) -> None:
    expect(page.locator("#auth")).to_be_visible()
    page.fill("#auth-token", token)
    page.click("#auth button[type=submit]")


def assert_headers(response: Response) -> None:
    headers = response.headers  # lower-case names
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, csp
    assert "style-src 'self'" in csp and "unsafe" not in csp, csp
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


# --- tests --------------------------------------------------------------------------------


def test_the_dashboard_works_under_the_csp(dash: Dashboard, server: Server) -> None:
    page = dash.page
    answers: list[Response] = []
    page.on("response", lambda r: answers.append(r) if r.url.startswith(server.url) else None)
    first = page.goto(dash.url)
    assert first is not None and first.status == 200
    assert_headers(first)
    sign_in(page, TOKEN)
    expect(page.locator("#auth")).to_be_hidden()

    # scripts (modules and the vendored Chart.js), styles and fetch() all run under the policy
    expect(page.locator("#live-count")).to_have_text("0 in progress")
    expect(page.locator("#flow-table tbody tr")).to_have_count(len(list(FLOWS.glob("*.yaml"))))
    # the KPI tiles come from their own request: wait for it rather than race it
    drawn = """() => [...document.querySelectorAll('.tile canvas')]
        .map((c) => Chart.getChart(c) !== undefined)"""
    page.wait_for_function(f"() => ({drawn})().every(Boolean)", timeout=10_000)
    assert page.evaluate(drawn) == [True] * 5
    assert (
        page.evaluate("""() => getComputedStyle(document.querySelector('.skip-link'))
        .position""")
        == "absolute"
    )  # style.css applies
    page.select_option("#flow-select", "bank")
    expect(page.locator("#flow-picture svg")).to_be_visible()
    expect(page.locator("#flow-picture svg g.node").first).to_be_visible()

    # validation needs the token now; the dashboard sends it
    page.fill("#yaml-text", "start: a\nnodes:\n  a: {play: {sound: x}, next: nowhere}\n")
    page.click("#validate-form button[type=submit]")
    expect(page.locator("#validate-result")).to_have_text("1 error:")
    expect(page.locator("#validate-errors li")).to_contain_text("nowhere")

    assert violations(page) == []
    assert dash.unexpected_errors() == [], "console errors under the CSP"
    paths = {r.url.removeprefix(server.url).split("?")[0] for r in answers}
    assert {
        "/",
        "/app.js",
        "/style.css",
        "/vendor/chart.umd.js",
        "/api/kpis",
        "/api/validate",
        "/api/flows/bank/graph.svg",
    } <= paths
    for response in answers:  # every answer, the 401s included
        assert_headers(response)


def test_injected_inline_code_and_framing_are_refused(dash: Dashboard, server: Server) -> None:
    dash.allowed.append(re.compile(r"Refused to|Content Security Policy"))
    page = dash.open()
    expect(page.locator("#auth")).to_be_visible()
    page.evaluate("""() => {
        const s = document.createElement("script");
        s.textContent = "window.injected = 1";
        document.head.append(s);
        const p = document.createElement("p");
        p.id = "styled";
        p.setAttribute("style", "color: rgb(255, 0, 0)");
        p.textContent = "styled";
        document.body.append(p);
        const img = document.createElement("img");
        img.src = "https://tracker.invalid/pixel.png";
        document.body.append(img);
    }""")
    page.wait_for_function("() => window.__csp.length >= 3")
    assert page.evaluate("() => window.injected") is None
    assert (
        page.evaluate("() => getComputedStyle(document.getElementById('styled')).color")
        != "rgb(255, 0, 0)"
    )
    directives = {v.split()[0] for v in violations(page)}
    assert {"script-src-elem", "style-src-attr", "img-src"} <= directives, violations(page)

    # another page may not show the console in a frame (clickjacking)
    framing = page.context.new_page()
    refused: list[str] = []
    framing.on("console", lambda m: refused.append(m.text))
    framing.set_content(f'<iframe id="console" src="{server.url}/"></iframe>')
    child = framing.frame_locator("#console")
    framing.wait_for_timeout(500)
    assert child.locator("#auth-token").count() == 0
    assert any("frame-ancestors 'none'" in text for text in refused), refused
    framing.close()


def test_a_page_reached_by_another_name_gets_nothing(dash: Dashboard, server: Server) -> None:
    """DNS rebinding: a page of rebind.test, whose name now points at the console, is refused,
    and so are its requests (the same origin as far as the browser can tell)."""
    dash.allowed.append(re.compile(r"status of 421"))
    page = dash.page
    response = page.goto(f"http://{REBIND}:{server.port}/")
    assert response is not None and response.status == 421
    assert_headers(response)
    assert "admin.allowed_hosts" in response.json()["error"]
    expect(page.locator("#auth")).to_have_count(0)  # no dashboard
    statuses = page.evaluate(
        """async (token) => {
        const out = [];
        for (const path of ["/healthz", "/api/calls", "/app.js", "/api/flows/reload"]) {
            const r = await fetch(path, {method: path.endsWith("reload") ? "POST" : "GET",
                                         headers: {Authorization: `Bearer ${token}`}});
            out.push(r.status);
        }
        return out;
    }""",
        TOKEN,
    )
    assert statuses == [421] * 4
    response = page.goto(f"http://localhost:{server.port}/")  # an allowed name
    assert response is not None and response.status == 200
    sign_in(page, TOKEN)
    expect(page.locator("#live-count")).to_have_text("0 in progress")
    assert violations(page) == []
    assert dash.unexpected_errors() == []


def test_refused_tokens_lock_the_address_out(dash: Dashboard, server: Server) -> None:
    dash.allowed.append(re.compile(r"status of 429"))
    page = dash.page
    sent: list[str] = []

    def on_request(request: Request) -> None:
        auth = request.headers.get("authorization")
        if auth:
            sent.append(auth.removeprefix("Bearer "))

    page.on("request", on_request)
    page.goto(dash.url)
    limit = guard.TOKEN_FAILURES
    for i in range(limit):
        sign_in(page, f"wrong-token-{i:02d}")
        # one wrong entry is ONE refused token, however many requests were waiting for it
        deadline = time.monotonic() + 10
        while server.failures.count(LOCAL) < i + 1 and time.monotonic() < deadline:
            page.wait_for_timeout(50)
        assert server.failures.count(LOCAL) == i + 1
        expect(page.locator("#auth-message")).to_contain_text("That token was refused")
    page.wait_for_timeout(300)
    assert server.failures.count(LOCAL) == limit
    assert sorted(sent) == [f"wrong-token-{i:02d}" for i in range(limit)]  # each sent once

    # locked out: even the right token waits
    sign_in(page, TOKEN)
    message = page.locator("#auth-message")
    expect(message).to_contain_text("Too many refused tokens from this address")
    expect(message).to_contain_text(re.compile(r"again in \d+ s"))
    expect(page.locator("#auth")).to_be_visible()
    assert server.failures.count(LOCAL) == limit  # a lock-out answer is not another failure

    server.shift[0] += guard.TOKEN_WINDOW_S  # a minute later
    sign_in(page, TOKEN)
    expect(page.locator("#auth")).to_be_hidden()
    expect(page.locator("#live-count")).to_have_text("0 in progress")
    expect(page.locator("#problems")).to_be_hidden()
    assert violations(page) == []
    assert dash.unexpected_errors() == []
