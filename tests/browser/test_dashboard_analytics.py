"""Per-node figures on the flow picture in headless Chromium against the REAL server, its store
seeded with calls of the repository's ``main`` flow (started relative to now): the table's
numbers equal the ones worked out by hand below, each box of the picture is filled by the
chosen figure (and back to its kind's colour with none), the legend names the figure and its
range, a heading sorts the table, and a wider period brings an older call in. Run alone with
``pytest -m browser tests/browser/test_dashboard_analytics.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from support.browser_page import Dashboard, dashboard
from support.live_server import LiveServer, console_settings, live_server

from ivr.call.record import CallRecord, InputEvent, Outcome
from ivr.config import AdminSettings, Secret
from ivr.store.records import RecordStore

pytestmark = pytest.mark.browser

TOKEN = "analytics-token-0123456789abcdef"
DAY = 86400.0
SHADES = ["#fef0d9", "#fdcc8a", "#fc8d59", "#e34a33", "#b30000"]  # analytics.js, low -> high
NO_CALLS = "#eceff3"
DASH = "\u2013"  # a figure with no visit to count


def call(
    call_id: str,
    days_ago: float,
    path: list[str],
    at: list[float],
    outcome: Outcome,
    end_s: float,
    inputs: list[InputEvent] | None = None,
) -> CallRecord:
    started = time.time() - days_ago * DAY
    return CallRecord(
        call_id=call_id,
        flow="main",
        flow_version="seeded",
        started_at=started,
        ended_at=started + end_s,
        path=path,
        path_at=at,
        inputs=inputs or [],
        outcome=outcome,
        end_node=path[-1],
    )


def records() -> list[CallRecord]:
    return [
        # welcome 0-3, menu 3-10, sales 10-20, goodbye 20-25
        call("a", 1, ["welcome", "menu", "sales", "goodbye"], [0, 3, 10, 20], "self_service", 25),
        # welcome 0-5, menu 5-15: silent at 8 s, then hung up
        call(
            "b",
            2,
            ["welcome", "menu"],
            [0, 5],
            "abandoned",
            15,
            [InputEvent("menu", "no_input", "", 8)],
        ),
        # welcome 0-2, menu 2-6 (wrong key at 4 s), read_number 6-12, menu 12-20 (wrong key at
        # 14 s): the menu failed twice and the flow ended the call there
        call(
            "c",
            3,
            ["welcome", "menu", "read_number", "menu"],
            [0, 2, 6, 12],
            "failed_in_ivr",
            20,
            [InputEvent("menu", "no_match", "7", 4), InputEvent("menu", "no_match", "8", 14)],
        ),
        # welcome 0-4, menu 4-9, support 9-19, goodbye 19-21
        call("d", 4, ["welcome", "menu", "support", "goodbye"], [0, 4, 9, 19], "self_service", 21),
        # twelve days ago, outside the last 7: welcome 0-2, menu 2-30, hung up there
        call("old", 12, ["welcome", "menu"], [0, 2], "abandoned", 30),
    ]


# The last 7 days (a, b, c, d), by hand:
#   welcome: 4 calls, 4 visits; times 3, 5, 2, 4: avg 3.5, median (2nd of 2 3 4 5) 3
#   menu: 4 calls, 5 visits (c twice); hang-ups 1 (b); failed in IVR 1 (c); no-input 1/5,
#     no-match 2/5; times 7, 10, 4, 8, 5: avg 6.8, median 7
#   sales 1 call (10 s), support 1 (10 s), read_number 1 (6 s); goodbye 2 calls: 5 and 2 s,
#     avg 3.5, median 2
# columns: calls, visits, hang-ups, no-input, no-match, failed in IVR, avg time, median time
WEEK = {
    "welcome": ["4", "4", "0", "0.0 %", "0.0 %", "0", "3.5 s", "3.0 s"],
    "menu": ["4", "5", "1", "20.0 %", "40.0 %", "1", "6.8 s", "7.0 s"],
    "sales": ["1", "1", "0", "0.0 %", "0.0 %", "0", "10.0 s", "10.0 s"],
    "support": ["1", "1", "0", "0.0 %", "0.0 %", "0", "10.0 s", "10.0 s"],
    "read_number": ["1", "1", "0", "0.0 %", "0.0 %", "0", "6.0 s", "6.0 s"],
    "goodbye": ["2", "2", "0", "0.0 %", "0.0 %", "0", "3.5 s", "2.0 s"],
}
# with "old" too (from 14 days ago): welcome 5 calls, times 3 5 2 4 2 (avg 3.2, median 3);
# menu 5 calls, 6 visits, 2 hang-ups, no-input 1/6, no-match 2/6, times 7 10 4 8 5 28
# (avg 62/6 = 10.3, median 3rd of 4 5 7 8 10 28 = 7)
FORTNIGHT_MENU = ["5", "6", "2", "16.7 %", "33.3 %", "1", "10.3 s", "7.0 s"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("dashboard-analytics")
    settings = console_settings(
        tmp, AdminSettings(port=0, open_read=True, token=Secret(TOKEN.encode()))
    )

    async def seed() -> None:
        store = await RecordStore.open(settings.store.path)
        try:
            for record in records():
                await store.finish(record)
        finally:
            await store.close()

    with live_server(settings, seed) as live:
        yield live


@pytest.fixture
def dash(browser: Browser, server: LiveServer) -> Iterator[Dashboard]:
    with dashboard(browser, server.url + "/", timezone_id="UTC") as d:
        yield d


def table(page: Page) -> dict[str, list[str]]:
    rows: list[list[str]] = page.eval_on_selector_all(
        "#heat-table tbody tr",
        "rows => rows.map(r => [...r.cells].map(c => c.textContent.trim()))",
    )
    return {row[0]: row[1:] for row in rows}


def fills(page: Page) -> dict[str, Any]:
    """Each box's fill in the picture, by node id."""
    return dict(
        page.eval_on_selector_all(
            "#flow-picture g.node.ivr-node",
            """gs => gs.map(g => [g.querySelector('title').textContent,
                [...g.children].find(c => ['path', 'polygon', 'ellipse'].includes(c.localName)
                    && c.getAttribute('fill') !== 'none').getAttribute('fill')])""",
        )
    )


def show_main(page: Page) -> None:
    page.select_option("#flow-select", "main")
    expect(page.locator("#heat-scope")).to_contain_text("4 finished calls of main")


def test_the_figures_per_node_match_the_calls(dash: Dashboard) -> None:
    page = dash.open()
    show_main(page)
    assert table(page) == WEEK
    day = datetime.now(UTC)
    expect(page.locator("#heat-until")).to_have_value(day.strftime("%Y-%m-%d"))
    week_ago = datetime.fromtimestamp(day.timestamp() - 7 * DAY, UTC)
    expect(page.locator("#heat-since")).to_have_value(week_ago.strftime("%Y-%m-%d"))
    # sorted by calls, most first; a heading sorts by its column, again the other way
    assert list(table(page))[:2] == ["menu", "welcome"]
    page.click("#heat-table th[data-key=avg_time_s] button")
    assert list(table(page))[:2] == ["sales", "support"]
    expect(page.locator("#heat-table th[data-key=avg_time_s]")).to_have_attribute(
        "aria-sort", "descending"
    )
    page.click("#heat-table th[data-key=avg_time_s] button")
    assert next(iter(table(page))) == "goodbye"  # 3.5 s, before menu's 6.8 s (ids break ties)
    assert dash.unexpected_errors() == []


def test_the_boxes_are_filled_by_the_chosen_figure(dash: Dashboard) -> None:
    page = dash.open()
    show_main(page)
    # calls (the default): welcome and menu 4 of 4, goodbye 2 (floor(2/4*5) = 2), sales 1
    expect(page.locator("#heat-legend")).to_contain_text("Calls:")
    expect(page.locator("#heat-legend")).to_contain_text("4 calls")
    colours = fills(page)
    assert colours["welcome"] == colours["menu"] == SHADES[4]
    assert colours["goodbye"] == SHADES[2] and colours["sales"] == SHADES[1]
    # drop-off: only the menu lost a caller
    page.select_option("#heat-metric", "hangups")
    expect(page.locator("#heat-legend")).to_contain_text("Hang-ups:")
    colours = fills(page)
    assert colours["menu"] == SHADES[4]
    assert colours["welcome"] == colours["goodbye"] == SHADES[0]
    expect(page.locator("#heat-table td.chosen")).to_have_count(len(WEEK))
    # no-match: the menu alone; time: sales and support (10 s) darkest, menu 6.8/10 -> 3
    page.select_option("#heat-metric", "no_match_rate")
    assert fills(page)["menu"] == SHADES[4] and fills(page)["welcome"] == SHADES[0]
    page.select_option("#heat-metric", "avg_time_s")
    colours = fills(page)
    assert colours["sales"] == colours["support"] == SHADES[4]
    assert colours["menu"] == SHADES[3] and colours["welcome"] == SHADES[1]
    # text on the dark boxes turns white
    white = page.eval_on_selector(
        "#flow-picture g.node.ivr-node[data-heat='4'] text", "t => t.getAttribute('fill')"
    )
    assert white == "#ffffff"
    # none: Graphviz's own colours again
    page.select_option("#heat-metric", "")
    plain = fills(page)
    assert not set(plain.values()) & {*SHADES, NO_CALLS}
    expect(page.locator("#heat-legend")).to_be_empty()
    assert dash.unexpected_errors() == []


def test_the_period_changes_the_figures(dash: Dashboard) -> None:
    page = dash.open()
    show_main(page)
    assert table(page)["menu"] == WEEK["menu"]
    since = datetime.fromtimestamp(time.time() - 14 * DAY, UTC).strftime("%Y-%m-%d")
    page.fill("#heat-since", since)
    page.click("#heat-form button[type=submit]")
    expect(page.locator("#heat-scope")).to_contain_text("5 finished calls of main")
    figures = table(page)
    assert figures["menu"] == FORTNIGHT_MENU
    assert figures["welcome"][:2] == ["5", "5"] and figures["welcome"][6] == "3.2 s"
    page.select_option("#heat-metric", "hangups")
    assert fills(page)["menu"] == SHADES[4]
    # a period with no calls: every box grey, every figure a dash
    page.fill("#heat-since", "2020-01-01")
    page.fill("#heat-until", "2020-01-31")
    page.click("#heat-form button[type=submit]")
    expect(page.locator("#heat-scope")).to_contain_text("0 finished calls of main")
    assert set(fills(page).values()) == {NO_CALLS}
    assert table(page)["menu"] == ["0", "0"] + [DASH] * 6
    assert dash.unexpected_errors() == []


def test_another_flow_has_its_own_figures(dash: Dashboard) -> None:
    page = dash.open()
    show_main(page)
    page.select_option("#flow-select", "bank")
    expect(page.locator("#heat-scope")).to_contain_text("0 finished calls of bank")
    assert all(row[0] == "0" for row in table(page).values())
    assert "menu" not in table(page) or table(page)["menu"][0] == "0"
    assert dash.unexpected_errors() == []
