"""The web dashboard in headless Chromium against the REAL server: ``ivr.app.server.App`` (its admin
API from :func:`ivr.admin.api.make_admin_app` over :class:`ivr.admin.console.ServerConsole`) on a
seeded SQLite :class:`~ivr.store.records.RecordStore` and the repository's ``flows/``.

:mod:`test_dashboard` covers the page's behaviour over a stand-in API; this checks that the
real API and the page agree: the KPI tiles show the figures of the seeded records (worked out
by hand below), the recent calls and surveys are the seeded ones, the picture of
``flows/bank.yaml`` renders, and the page logs no error and gets no failed answer. Leaves a
screenshot in ``artifacts/dashboard-live.png``. Run alone with
``pytest -m browser tests/browser/test_dashboard_live.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect
from support.browser_page import Dashboard, dashboard
from support.live_server import LiveServer, console_settings, live_server

from ivr.call.record import CallRecord, Outcome, QueueVisit, SurveyAnswer, SurveyResult
from ivr.config import AdminSettings
from ivr.flow.loader import load_flow
from ivr.store.records import RecordStore

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
FLOWS = ROOT / "flows"
ARTIFACTS = ROOT / "artifacts"
SHOT = ARTIFACTS / "dashboard-live.png"

# --- the seeded store -----------------------------------------------------------------------
#
# Eight finished calls on two days: three days ago (D-3) and yesterday (D-1), UTC, so the
# dashboard's default range (the last 14 days up to today) holds them all, whatever the time
# of day the test runs. The browser runs in UTC like the API's default ``tz``.
#
#  id       day  time   flow  outcome       queue "default"        survey (satisfied 1-5, solved)
#  seed-01  D-3  10:00  bank  self_service  -                      -
#  seed-02  D-3  10:10  bank  abandoned     abandoned after 90 s   outbound, no_answer (-, -)
#  seed-03  D-3  10:20  main  error         -                      -
#  seed-04  D-1  09:00  bank  transferred   answered after 35 s    in_call, completed (5, yes)
#  seed-05  D-1  09:10  bank  transferred   answered after 20 s    in_call, completed (4, yes)
#  seed-06  D-1  09:20  bank  transferred   answered after 60 s    in_call, completed (2, no)
#  seed-07  D-1  09:30  bank  self_service  -                      -
#  seed-08  D-1  09:40  main  self_service  -                      -
#
# Overall (ivr.reporting.kpi.DEFINITIONS):
#   calls 8, in progress 0
#   self-service rate   = self_service / calls = 3 (01, 07, 08) / 8           = 37.5 %
#   containment rate    = no queue visit, no transfer, no error / calls
#                       = 3 (01, 07, 08; not 02's queue nor 03's error) / 8  = 37.5 %
#   failed in IVR       = failed_in_ivr / calls = 0 / 8                       = 0.0 %
#   agent requests      = calls with a queue visit = 4 (02, 04, 05, 06)
#   agent answer rate   = answered / agent requests = 3 / 4                   = 75.0 %
#   abandon rate        = abandoned / waited (answered+abandoned+timeout) = 1/4 = 25.0 %
#   waits 20, 35, 60, 90: avg 205 / 4 = 51.25 -> "51 s"; median (2nd) 35 s;
#                         p90 (ceil(3.6) = 4th) 90 s -> "1 min 30 s"
#   surveys offered 4; responses (completed or partial) 3 -> 75.0 %
#   satisfaction        = top box (4-5) / valid answers = 2 (5, 4) / 3 (5, 4, 2) = 66.7 %
#                         (seed-02's unanswered survey has no valid answer)
# Flow bank: 6 calls, self-service 2/6 = 33.3 %, the same four agent requests and surveys.
# Flow main: 2 calls, self-service 1/2 = 50.0 %, no agent requests or surveys: n/a.
# Days (chart points, %): D-3: self 1/3 = 33.3, answer 0/1 = 0, satisfaction none (a gap),
#                               abandon 1/1 = 100
#                         D-1: self 2/5 = 40, answer 3/3 = 100, satisfaction 66.7, abandon 0/3 = 0

TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
D3 = TODAY - timedelta(days=3)
D2 = TODAY - timedelta(days=2)  # no calls that day
D1 = TODAY - timedelta(days=1)
CALLER = "13800138000"  # shown masked: ***8000
BANK_PATH = ["welcome", "choose_language", "opening_hours", "main"]
VERSIONS = {name: load_flow(FLOWS / f"{name}.yaml").version for name in ("bank", "main")}


def at(day: datetime, hour: int, minute: int) -> float:
    return (day + timedelta(hours=hour, minutes=minute)).timestamp()


def survey(
    mode: str, status: str, satisfied: int | None, solved: int | None, when: float
) -> SurveyResult:
    return SurveyResult(
        survey="after_call",
        mode=mode,
        status=status,
        answers=[
            SurveyAnswer("satisfied", "1-5", satisfied),
            SurveyAnswer("solved", "yes-no", solved),
        ],
        satisfaction="satisfied",
        at=when,
    )


def call(
    call_id: str,
    started: float,
    flow: str,
    outcome: Outcome,
    end_node: str,
    duration: float = 120.0,
    **kw: Any,
) -> CallRecord:
    path = [*BANK_PATH, end_node] if flow == "bank" else ["welcome", "menu", end_node]
    return CallRecord(
        call_id=call_id,
        flow=flow,
        flow_version=VERSIONS[flow],
        caller=CALLER,
        dnis="4001",
        started_at=started,
        ended_at=started + duration,
        language="en",
        path=path,
        outcome=outcome,
        end_node=end_node,
        **kw,
    )


def answered(wait: float, agent: str) -> QueueVisit:
    return QueueVisit("default", "answered", wait_s=wait, agent=agent, talk_s=180, position=1)


def seeded_records() -> list[CallRecord]:
    t4, t5, t6 = at(D1, 9, 0), at(D1, 9, 10), at(D1, 9, 20)
    return [
        call("seed-01", at(D3, 10, 0), "bank", "self_service", "goodbye"),
        call(
            "seed-02",
            at(D3, 10, 10),
            "bank",
            "abandoned",
            "agent",
            duration=150,
            queue=QueueVisit("default", "abandoned", wait_s=90, position=3),
            survey=survey("outbound", "no_answer", None, None, at(D3, 11, 30)),
        ),
        call("seed-03", at(D3, 10, 20), "main", "error", "read_number", error="http lookup failed"),
        call(
            "seed-04",
            t4,
            "bank",
            "transferred",
            "agent",
            duration=300,
            transfer_target="Local/1001@agents",
            queue=answered(35, "Local/1001@agents"),
            survey=survey("in_call", "completed", 5, 1, t4 + 300),
        ),
        call(
            "seed-05",
            t5,
            "bank",
            "transferred",
            "agent",
            duration=300,
            queue=answered(20, "Local/1002@agents"),
            survey=survey("in_call", "completed", 4, 1, t5 + 300),
        ),
        call(
            "seed-06",
            t6,
            "bank",
            "transferred",
            "agent",
            duration=300,
            queue=answered(60, "Local/1001@agents"),
            survey=survey("in_call", "completed", 2, 0, t6 + 300),
        ),
        call("seed-07", at(D1, 9, 30), "bank", "self_service", "goodbye"),
        call("seed-08", at(D1, 9, 40), "main", "self_service", "goodbye"),
    ]


async def seed_store(path: Path) -> None:
    store = await RecordStore.open(path)
    try:
        for record in seeded_records():
            finished, record.outcome = record.outcome, None  # as a call does: begin, finish
            await store.begin(record)
            record.outcome = finished
            await store.finish(record)
    finally:
        await store.close()


# --- the real server -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("dashboard-live")
    db = tmp / "calls.sqlite3"
    settings = console_settings(tmp, AdminSettings(port=0, open_read=True))
    with live_server(settings, seed=lambda: seed_store(db)) as srv:
        yield srv


@pytest.fixture
def dash(browser: Browser, server: LiveServer) -> Iterator[Dashboard]:
    with dashboard(browser, server.url + "/", timezone_id="UTC", http_errors=True) as d:
        yield d


def tile(kpi: str, role: str = "value") -> str:
    return f'.tile[data-kpi="{kpi}"] [data-role="{role}"]'


def short_day(d: datetime) -> str:
    """Like the page's dayLabel/when(): "27 Nov"."""
    return f"{d.day} {d:%b}"


# --- tests --------------------------------------------------------------------------------


def test_dashboard_shows_the_seeded_store(dash: Dashboard) -> None:
    page = dash.open()
    expect(page).to_have_title("IVR operations")

    # KPI tiles: the figures worked out above
    expect(page.locator(tile("agent_answer_rate"))).to_have_text("75.0 %")
    expect(page.locator(tile("self_service_rate"))).to_have_text("37.5 %")
    expect(page.locator(tile("satisfaction"))).to_have_text("66.7 %")
    expect(page.locator(tile("abandon_rate"))).to_have_text("25.0 %")
    expect(page.locator(tile("agent_answer_rate", "sub"))).to_have_text("4 agent requests")
    expect(page.locator(tile("self_service_rate", "sub"))).to_have_text(
        "reached a served node · of 8 finished calls"
    )
    expect(page.locator(tile("containment_rate"))).to_have_text("37.5 %")
    expect(page.locator(tile("containment_rate", "sub"))).to_have_text(
        "never handed to an agent or queue · 0.0 % failed in IVR"
    )
    expect(page.locator(tile("satisfaction", "sub"))).to_have_text("top box, 3 answers")
    expect(page.locator(tile("abandon_rate", "sub"))).to_have_text(
        "of callers who waited · avg wait 51 s"
    )
    minor = page.locator("#minor-kpis")
    for text in (
        "Calls8",
        "In progress0",
        "Agent requests4",
        "Avg wait51 s",
        "Median wait35 s",
        "90th pct wait1 min 30 s",
        "Surveys offered4",
        "Survey responses75.0 %",
        "Callbacks asked / placed / connected0 / 0 / 0",
    ):
        expect(minor).to_contain_text(text)
    expect(page.locator("#kpi-scope")).to_contain_text("All flows")
    expect(page.locator("#kpi-scope")).to_contain_text("(days in UTC)")

    # the daily trends: a point per day, a day without calls (D2) or without valid answers is
    # a gap
    trends = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('.tile')]
        .map((t) => [t.dataset.kpi, {data: Chart.getChart(t.querySelector('canvas'))
          ?.data.datasets[0].data ?? null, labels: Chart.getChart(t.querySelector('canvas'))
          ?.data.labels ?? null}]))""")
    assert trends["agent_answer_rate"]["data"] == [0, None, 100]
    assert trends["self_service_rate"]["data"] == [33.3, None, 40]
    assert trends["containment_rate"]["data"] == [33.3, None, 40]
    assert trends["satisfaction"]["data"] == [None, None, 66.7]
    assert trends["abandon_rate"]["data"] == [100, None, 0]
    assert trends["agent_answer_rate"]["labels"] == [short_day(D3), short_day(D2), short_day(D1)]

    # recent calls: the seeded ids, newest first, with their queue visits and surveys
    recent = page.locator("#recent-table tbody tr")
    expect(recent).to_have_count(8)
    ids = [recent.nth(i).get_attribute("data-call-id") for i in range(8)]
    assert ids == [f"seed-0{n}" for n in range(8, 0, -1)]
    seed4 = page.locator('#recent-table tr[data-call-id="seed-04"] td')
    expect(seed4.nth(0)).to_have_text(f"{short_day(D1)}, 09:00")
    expect(seed4.nth(1)).to_have_text("***8000")  # the API masks the caller
    expect(seed4.nth(2)).to_have_text("bank")
    expect(seed4.nth(3)).to_have_text("transferred")
    expect(seed4.nth(5)).to_have_text("5 min 00 s")
    expect(seed4.nth(6)).to_have_text("default: answered after 35 s by Local/1001@agents")
    expect(seed4.nth(7)).to_have_text("completed, satisfaction 5/5")
    seed2 = page.locator('#recent-table tr[data-call-id="seed-02"] td')
    expect(seed2.nth(3)).to_have_text("abandoned")
    expect(seed2.nth(6)).to_have_text("default: abandoned after 1 min 30 s")
    # the survey table says "no answer"; this column shows the raw status "no_answer"
    expect(seed2.nth(7)).to_have_text(re.compile(r"^no[_ ]answer, satisfaction no answer$"))
    expect(page.locator('#recent-table tr[data-call-id="seed-03"] td').nth(3)).to_have_text("error")

    # surveys: the four seeded, newest call first
    surveys = page.locator("#survey-table tbody tr")
    expect(surveys).to_have_count(4)
    assert [surveys.nth(i).get_attribute("data-call-id") for i in range(4)] == [
        "seed-06",
        "seed-05",
        "seed-04",
        "seed-02",
    ]
    expect(surveys.nth(0).locator("td").nth(5)).to_have_text("satisfied 2/5 · solved no")
    expect(surveys.nth(2).locator("td").nth(5)).to_have_text("satisfied 5/5 · solved yes")
    expect(surveys.nth(3).locator("td").nth(3)).to_have_text("outbound")
    expect(surveys.nth(3).locator("td").nth(4)).to_have_text("no answer")

    # the real server's live state: no calls in progress, AMI not configured
    expect(page.locator("#live-count")).to_have_text("0 in progress")
    expect(page.locator("#live-table tbody")).to_have_text("No calls in progress.")
    expect(page.locator("#ami-status")).to_have_text("AMI off")
    expect(page.locator("#queue-table tbody")).to_have_text(
        "AMI is not configured: no queue figures."
    )

    # flows: every file of flows/ loaded without errors; the picture of bank.yaml
    bank = load_flow(FLOWS / "bank.yaml")
    expect(page.locator("#flow-table tbody tr")).to_have_count(len(list(FLOWS.glob("*.yaml"))))
    bank_row = page.locator('#flow-table tr[data-flow="bank"] td')
    expect(bank_row.nth(0)).to_have_text(bank.version)
    expect(bank_row.nth(1)).to_have_text(str(len(bank.nodes)))
    expect(page.locator("#flow-errors")).to_be_hidden()
    page.select_option("#flow-select", "bank")
    picture = page.locator("#flow-picture svg")
    expect(picture).to_be_visible()
    expect(picture).to_have_attribute("aria-label", "Picture of the flow bank")
    titles = picture.locator("g.node > title").all_text_contents()
    assert set(bank.nodes) <= set(titles), set(bank.nodes) - set(titles)
    ids = picture.locator("g.node").evaluate_all("(gs) => gs.map((g) => g.id)")
    assert {f"ivr-node-{n}" for n in bank.nodes} <= set(ids)
    box = picture.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 200
    expect(page.locator("#picture-callers")).to_have_text("No callers in this flow now.")
    expect(page.locator("#problems")).to_be_hidden()

    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#kpis").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOT), full_page=True)
    assert SHOT.stat().st_size > 10_000
    assert dash.errors == [], "errors or failed requests on the dashboard"


def test_flow_filter_shows_each_flows_figures(dash: Dashboard) -> None:
    page = dash.open()
    expect(page.locator(tile("self_service_rate"))).to_have_text("37.5 %")
    options = page.locator("#kpi-flow option").all_text_contents()
    assert options == ["All flows", "bank", "main"]  # the flows with calls in the range
    page.select_option("#kpi-flow", "bank")
    expect(page.locator(tile("self_service_rate"))).to_have_text("33.3 %")
    expect(page.locator(tile("self_service_rate", "sub"))).to_have_text(
        "reached a served node · of 6 finished calls"
    )
    expect(page.locator(tile("agent_answer_rate"))).to_have_text("75.0 %")
    expect(page.locator(tile("satisfaction"))).to_have_text("66.7 %")
    page.select_option("#kpi-flow", "main")
    expect(page.locator(tile("self_service_rate"))).to_have_text("50.0 %")
    for kpi in ("agent_answer_rate", "satisfaction", "abandon_rate"):
        expect(page.locator(tile(kpi))).to_have_text("n/a")
        expect(page.locator(tile(kpi))).to_have_class(re.compile(r"\bna\b"))
    expect(page.locator("#kpi-scope")).to_contain_text("Daily trends are for all flows")
    assert dash.errors == [], "errors or failed requests on the dashboard"
