"""The web dashboard in a real headless Chromium (Debian's ``chromium``), driven by Playwright.

The page is served with a stand-in API (:mod:`dashboard_seed`): seeded JSON in the real API's
shapes, the real flows, flow pictures and validator. Every test fails on a JavaScript error
or a console error. Run alone with ``pytest -m browser tests/browser/test_dashboard.py``; the main
test leaves a screenshot in ``artifacts/dashboard.png``.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from playwright.sync_api import Browser, Page, expect
from support.browser_page import Dashboard, dashboard
from support.dashboard_seed import Seed, make_app

from ivr.admin.guard import security_headers
from ivr.reporting.kpi import DEFINITIONS

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"

BROKEN_FLOW = """\
start: welcome
nodes:
  welcome:
    play: "Hello."
    next: main
  main:
    menu:
      prompt: "Press 1."
      options: {"1": offerz}
      otherwise: welcome
"""


# --- the stand-in server, in a thread with its own event loop ---------------------------------


@dataclass
class Server:
    seed: Seed
    url: str = ""
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = Server(Seed())
    ready = threading.Event()
    app = make_app(srv.seed)
    app.on_response_prepare.append(security_headers)  # the real API's CSP and other headers
    runner = web.AppRunner(app, access_log=None)

    def serve() -> None:
        asyncio.set_event_loop(srv.loop)
        srv.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        srv.loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        srv.url = f"http://127.0.0.1:{port}"
        ready.set()
        srv.loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(15), "the test server did not start"
    yield srv
    asyncio.run_coroutine_threadsafe(runner.cleanup(), srv.loop).result(10)
    srv.loop.call_soon_threadsafe(srv.loop.stop)
    thread.join(10)


@pytest.fixture
def seed(server: Server) -> Iterator[Seed]:
    """The server's seed, fresh for each test."""
    server.seed.__init__()  # type: ignore[misc]
    yield server.seed


@pytest.fixture
def dash(browser: Browser, server: Server, seed: Seed) -> Iterator[Dashboard]:
    with dashboard(browser, server.url + "/") as d:
        yield d
    assert d.unexpected_errors() == [], "JavaScript or console errors on the dashboard"


def tile(page: Page, kpi: str) -> str:
    return f'.tile[data-kpi="{kpi}"] [data-role="value"]'


# --- tests --------------------------------------------------------------------------------


def test_dashboard_shows_the_seeded_operations_picture(dash: Dashboard, seed: Seed) -> None:
    page = dash.open()
    expect(page).to_have_title("IVR operations")

    # KPI tiles with the overall figures, and a daily trend chart in each
    expect(page.locator(tile(page, "agent_answer_rate"))).to_have_text("75.0 %")
    expect(page.locator(tile(page, "self_service_rate"))).to_have_text("62.5 %")
    expect(page.locator(tile(page, "containment_rate"))).to_have_text("80.0 %")
    expect(page.locator(tile(page, "satisfaction"))).to_have_text("80.0 %")
    expect(page.locator(tile(page, "abandon_rate"))).to_have_text("12.5 %")
    expect(page.locator('.tile[data-kpi="agent_answer_rate"] [data-role="sub"]')).to_have_text(
        "40 agent requests"
    )
    # self-service and containment say what they count, under the figure and in the tooltip
    expect(page.locator('.tile[data-kpi="self_service_rate"] [data-role="sub"]')).to_have_text(
        "reached a served node · of 200 finished calls"
    )
    expect(page.locator('.tile[data-kpi="containment_rate"] [data-role="sub"]')).to_have_text(
        "never handed to an agent or queue · 12.5 % failed in IVR"
    )
    for key in ("self_service_rate", "containment_rate"):
        expect(page.locator(f'.tile[data-kpi="{key}"]')).to_have_attribute(
            "title", DEFINITIONS[key]
        )
    expect(page.locator("#minor-kpis")).to_contain_text("Failed in IVR12.5 %")
    points = page.evaluate("""() => [...document.querySelectorAll('.tile canvas')].map(
        (c) => Chart.getChart(c)?.data.datasets[0].data ?? null)""")
    assert points[0] == [70, 72, 80, None, 78, 76, 75]  # a day without calls keeps its place
    assert points[2] == [75, 76, 79, None, 77, 80, 77]  # containment, day by day
    assert points[3][-1] is None  # a day without survey answers is a gap, not a zero
    assert "n/a" in (
        page.locator('.tile[data-kpi="satisfaction"] canvas').get_attribute("aria-label") or ""
    )
    expect(page.locator("#minor-kpis")).to_contain_text("Avg wait43 s")
    expect(page.locator("#minor-kpis")).to_contain_text(
        "Callbacks asked / placed / connected4 / 3 / 2"
    )
    expect(page.locator("#kpi-scope")).to_contain_text("Asia/Shanghai")
    query = seed.kpi_queries[0]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", query["since"]) and query["until"] > query["since"]

    # live calls: every seeded caller, the node each one is at
    live = page.locator("#live-table tbody tr")
    expect(live).to_have_count(3)
    expect(page.locator("#live-count")).to_have_text("3 in progress")
    first = live.nth(0).locator("td")  # longest in the call first
    expect(first.nth(0)).to_have_text("13800138000")
    expect(first.nth(1)).to_have_text("bank")
    expect(first.nth(2)).to_have_text("main")
    expect(first.nth(3)).to_have_text(re.compile(r"1:[3-5]\d"))
    expect(live.nth(1).locator("td").nth(2)).to_have_text("balance")
    expect(live.nth(2).locator("td").nth(2)).to_have_text("menu")

    # queues, recent calls, surveys
    expect(page.locator("#ami-status")).to_have_text("AMI up")
    rows = page.locator("#queue-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("cards")
    expect(rows.nth(1)).to_have_class(re.compile("warn"))  # callers waiting, nobody free
    expect(rows.nth(1).locator("td").nth(5)).to_have_text("2 min 05 s")
    recent = page.locator("#recent-table tbody tr")
    expect(recent).to_have_count(4)
    expect(recent.nth(3).locator(".pill")).to_have_text("failed in IVR")
    expect(recent.nth(3).locator(".pill")).to_have_class(re.compile(r"\bpill-warn\b"))
    expect(recent.nth(0)).to_contain_text("transferred")
    expect(recent.nth(0)).to_contain_text("cards: answered after 35 s by Local/1001@agents")
    expect(recent.nth(0)).to_contain_text("completed, satisfaction 4/5")
    surveys = page.locator("#survey-table tbody tr")
    expect(surveys).to_have_count(2)
    expect(surveys.nth(0)).to_contain_text("satisfied 4/5 · solved yes")
    expect(surveys.nth(1)).to_contain_text("satisfied 2/5 · solved no answer")
    expect(surveys.nth(1).locator("td").nth(3)).to_have_text("outbound")

    # flows, their errors, and the picture of bank.yaml from the real flow_svg
    flows = len(list((ROOT / "flows").glob("*.yaml")))
    expect(page.locator("#flow-table tbody tr")).to_have_count(flows)
    expect(page.locator("#flow-errors")).to_be_visible()
    expect(page.locator("#flow-errors li")).to_have_text(
        "flows/broken.yaml:12:7 node 'main': goes to 'offerz', which is not a node of this flow"
    )
    page.select_option("#flow-select", "bank")
    picture = page.locator("#flow-picture svg")
    expect(picture).to_be_visible()
    titles = picture.locator("g.node > title").all_text_contents()
    from ivr.flow.loader import load_flow

    assert set(load_flow(ROOT / "flows" / "bank.yaml").nodes) <= set(titles)
    expect(picture.locator("g.edge text", has_text="1 (balance, account balance)")).to_have_count(1)
    # live callers are outlined on their nodes
    expect(picture.locator("g.node.has-callers")).to_have_count(2)
    expect(page.locator("#picture-callers")).to_have_text("Callers now: main (1), balance (1)")

    # validate a broken flow: the error line is listed and highlighted
    page.fill("#yaml-text", BROKEN_FLOW)
    page.click("#validate-form button[type=submit]")
    expect(page.locator("#validate-result")).to_have_text("1 error:")
    error = page.locator("#validate-errors li")
    expect(error).to_have_count(1)
    expect(error).to_contain_text("line 9")
    expect(error).to_contain_text("node 'main'")
    expect(error).to_contain_text("goes to 'offerz', which is not a node of this flow")
    expect(page.locator("#yaml-gutter .err")).to_have_text("9")

    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#kpis").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000


def test_flow_filter_switches_the_tiles(dash: Dashboard) -> None:
    page = dash.open()
    expect(page.locator(tile(page, "agent_answer_rate"))).to_have_text("75.0 %")
    page.select_option("#kpi-flow", "main")
    expect(page.locator(tile(page, "agent_answer_rate"))).to_have_text("40.0 %")
    expect(page.locator(tile(page, "satisfaction"))).to_have_text("n/a")
    expect(page.locator(tile(page, "satisfaction"))).to_have_class(re.compile(r"\bna\b"))
    expect(page.locator("#kpi-scope")).to_contain_text("Daily trends are for all flows")
    page.select_option("#kpi-flow", "")
    expect(page.locator(tile(page, "satisfaction"))).to_have_text("80.0 %")


def test_live_calls_refresh_every_five_seconds(dash: Dashboard, seed: Seed) -> None:
    page = dash.open()
    expect(page.locator("#live-table tbody tr")).to_have_count(3)
    page.select_option("#flow-select", "bank")
    expect(page.locator("#flow-picture g.node.has-callers")).to_have_count(2)
    seed.live = [dict(seed.live[0], node="agent"), *seed.live[2:]]
    seed.queues = {"ami": "down", "queues": []}
    started = time.monotonic()
    expect(page.locator("#live-table tbody tr")).to_have_count(2, timeout=8000)
    assert time.monotonic() - started < 7
    expect(page.locator("#live-table tbody tr").nth(0).locator("td").nth(2)).to_have_text("agent")
    expect(page.locator("#picture-callers")).to_have_text("Callers now: agent (1)")
    expect(page.locator("#ivr-node-agent")).to_have_class(re.compile("has-callers"))
    expect(page.locator("#ami-status")).to_have_text("AMI down")
    expect(page.locator("#queue-table tbody")).to_have_text(
        "Queue figures unavailable: AMI is down."
    )
    seed.live = []
    expect(page.locator("#live-table tbody")).to_have_text("No calls in progress.", timeout=8000)


def test_nodes_panel_marks_this_console_and_a_node_falling_silent(
    dash: Dashboard, seed: Seed
) -> None:
    hostile = '<img src=x onerror="window.__owned = 1">'
    seed.nodes.append(
        {
            "id": hostile,
            "version": "<b>0.8.0</b>",
            "started_at": seed.now - 3 * 86400 - 60,
            "beat_at": seed.now - 45,
            "calls": 0,
        }
    )
    page = dash.open()
    rows = page.locator("#node-table tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator("#nodes-count")).to_have_text("2 of 3 up")
    mine, other, gone = (rows.nth(i) for i in range(3))
    expect(mine.locator("th")).to_have_text("ivr-a:4573 this console")
    expect(mine).to_have_attribute("aria-current", "true")
    expect(mine.locator("td")).to_have_text(
        ["0.9.0", "3", "2 h ago", re.compile(r"^\d+ s ago$"), "up"]
    )
    expect(other.locator("th")).to_have_text("ivr-b:4573")
    expect(other).not_to_have_attribute("aria-current", "true")
    expect(other.locator("td")).to_have_text(
        ["0.9.0", "12", "10 min ago", re.compile(r"^\d+ s ago$"), "up"]
    )
    # server text stays text, in the cells and in the attributes
    expect(gone.locator("th")).to_have_text(hostile)
    expect(gone).to_have_attribute("data-node", hostile)
    expect(gone).to_have_class(re.compile(r"\bwarn\b"))
    expect(gone.locator("td")).to_have_text(
        ["<b>0.8.0</b>", "0", "3 d ago", re.compile(r"^(4[5-9]|[5-9]\d) s ago$"), "silent"]
    )
    assert page.locator("#node-table img, #node-table b").count() == 0
    assert page.evaluate("() => window.__owned") is None

    # the next refresh (every 5 s) sees ivr-b's beats stop: silent past 30 s
    seed.nodes[1] = dict(seed.nodes[1], beat_at=time.time() - 31)
    expect(other.locator("td").nth(4)).to_have_text("silent", timeout=8000)
    expect(other).to_have_attribute("data-state", "silent")
    expect(page.locator("#nodes-count")).to_have_text("1 of 3 up")
    # the node serving the page is up whatever its row says: it answered (on SQLite, one
    # node, it beats only at start-up)
    seed.nodes[0] = dict(seed.nodes[0], beat_at=time.time() - 3600)
    expect(mine.locator("td").nth(3)).to_have_text("1 h ago", timeout=8000)
    expect(mine).to_have_attribute("data-state", "up")
    expect(page.locator("#nodes-count")).to_have_text("1 of 3 up")
    expect(page.locator("#problems")).to_be_hidden()


def test_picture_follows_the_flow_selector(dash: Dashboard) -> None:
    page = dash.open()
    page.select_option("#flow-select", "main")
    titles = page.locator("#flow-picture svg g.node > title")
    expect(titles.filter(has_text=re.compile("^read_number$"))).to_have_count(1)
    page.select_option("#flow-select", "voice")
    expect(titles.filter(has_text=re.compile("^read_number$"))).to_have_count(0)
    expect(page.locator("#flow-picture svg")).to_have_attribute(
        "aria-label", "Picture of the flow voice"
    )
    page.click("#picture-size")
    expect(page.locator("#flow-picture")).to_have_class(re.compile("actual"))
    expect(page.locator("#picture-size")).to_have_attribute("aria-pressed", "true")


def test_validate_a_good_flow_and_jump_to_an_error_line(dash: Dashboard) -> None:
    page = dash.open()
    good = (ROOT / "flows" / "bank.yaml").read_text(encoding="utf-8")
    page.fill("#yaml-text", good)
    page.click("#validate-form button[type=submit]")
    expect(page.locator("#validate-result")).to_have_text("No errors: this flow is valid.")
    expect(page.locator("#yaml-gutter .err")).to_have_count(0)

    page.fill("#yaml-text", BROKEN_FLOW.replace("    next: main\n", "    next: mian\n"))
    page.click("#validate-form button[type=submit]")
    expect(page.locator("#validate-result")).to_have_text("2 errors:")
    lines = page.locator("#validate-errors li button.line").all_text_contents()
    assert lines == ["line 5", "line 9"]  # mian (main is unreachable because of it), offerz
    expect(page.locator("#validate-errors li").nth(0)).to_contain_text(
        "1 node is unreachable because of this: main"
    )
    expect(page.locator("#yaml-gutter .err")).to_have_text(["5", "9"])
    page.click("#validate-errors li button.line >> text=line 9")
    selected = page.evaluate("""() => { const t = document.getElementById('yaml-text');
        return t.value.slice(t.selectionStart, t.selectionEnd); }""")
    assert selected == '      options: {"1": offerz}'

    page.fill("#yaml-text", "nodes: [")
    page.click("#validate-form button[type=submit]")
    expect(page.locator("#validate-result")).to_have_text("1 error:")
    expect(page.locator("#validate-errors li")).to_contain_text("'[' opened here is never closed")


def test_token_is_asked_for_and_kept_in_session_storage(dash: Dashboard, seed: Seed) -> None:
    seed.token = "s3cret"
    # the browser itself logs each 401 answer as a failed resource load
    dash.allowed.append(re.compile(r"status of 401"))
    page = dash.open()
    form = page.locator("#auth")
    expect(form).to_be_visible()
    expect(page.locator("#auth-token")).to_be_focused()
    page.fill("#auth-token", "wrong")
    page.click("#auth button[type=submit]")
    expect(page.locator("#auth-message")).to_contain_text("That token was refused")
    page.fill("#auth-token", "s3cret")
    page.click("#auth button[type=submit]")
    expect(form).to_be_hidden()
    expect(page.locator(tile(page, "agent_answer_rate"))).to_have_text("75.0 %")
    expect(page.locator("#live-table tbody tr")).to_have_count(3)
    expect(page.locator("#flow-picture svg")).to_be_visible()  # the picture is fetched too
    stored = page.evaluate("""() => [sessionStorage.getItem('ivr-admin-token'),
        localStorage.length, document.cookie]""")
    assert stored == ["s3cret", 0, ""]
    api = [(path, auth) for method, path, auth in seed.requests if path.startswith("/api/")]
    assert ("/api/queues", "Bearer s3cret") in api
    assert ("/api/flows/bank/graph.svg", "Bearer s3cret") in api
    assert all(auth in ("", "Bearer wrong", "Bearer s3cret") for _, auth in api)

    page.reload()  # same tab: no prompt again
    expect(page.locator(tile(page, "agent_answer_rate"))).to_have_text("75.0 %")
    expect(form).to_be_hidden()


def test_a_failing_endpoint_is_reported_and_the_rest_still_works(
    dash: Dashboard, seed: Seed
) -> None:
    seed.failing = {"/api/queues", "/api/flows/bank/graph.svg"}
    dash.allowed.append(re.compile(r"status of 500"))
    page = dash.open()
    expect(page.locator("#problems")).to_be_visible()
    expect(page.locator("#problems")).to_contain_text("/api/queues: HTTP 500")
    expect(page.locator("#flow-picture")).to_contain_text("No picture of bank: ")
    expect(page.locator(tile(page, "self_service_rate"))).to_have_text("62.5 %")
    expect(page.locator("#live-table tbody tr")).to_have_count(3)
    seed.failing = set()
    expect(page.locator("#problems")).to_be_hidden(timeout=8000)
    expect(page.locator("#queue-table tbody tr")).to_have_count(2)


def test_page_is_accessible_enough(dash: Dashboard) -> None:
    page = dash.open()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    assert page.locator("h1").count() == 1
    headings = page.locator("h2").all_text_contents()
    assert headings[:2] == ["Key figures", "Live calls"] and "Validate a flow" in headings
    # every form control has a label
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
        .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
        .map((e) => e.id)""")
    assert unlabelled == []
    tables = ("#live-table", "#queue-table", "#node-table", "#recent-table", "#survey-table")
    for table in (*tables, "#flow-table"):
        assert page.locator(f"{table} caption").count() == 1
        assert page.locator(f"{table} thead th[scope=col]").count() >= 5
