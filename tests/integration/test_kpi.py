"""KPIs from call records (ivr.reporting.kpi) and ``ivr report`` on a real SQLite store.

The main data set is built by hand; every expected figure is worked out on paper next to it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import ivr.cli
from ivr.call.record import CallRecord, QueueResult, QueueVisit, SurveyAnswer, SurveyResult
from ivr.cli import main
from ivr.reporting.kpi import (
    DEFINITIONS,
    KPI_KEYS,
    format_report,
    nearest_rank,
    parse_bound,
    rate,
    report,
)
from ivr.store.records import RecordStore


def at(text: str) -> float:
    """Unix time of an ISO time in UTC ("2026-03-02T10:00")."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def call(
    call_id: str,
    started: str,
    outcome: str | None = "self_service",
    *,
    flow: str = "bank",
    queue: QueueResult | None = None,
    wait: float = 0.0,
    survey: SurveyResult | None = None,
    callback_for: str = "",
) -> CallRecord:
    start = at(started)
    return CallRecord(
        call_id=call_id,
        flow=flow,
        flow_version="v1",
        started_at=start,
        ended_at=None if outcome is None else start + 120,
        outcome=outcome,  # type: ignore[arg-type]
        queue=None if queue is None else QueueVisit(queue="agents", result=queue, wait_s=wait),
        survey=survey,
        variables={"callback_for": callback_for} if callback_for else {},
    )


def csat(status: str, value: int | None = None, *, resolved: int | None = None) -> SurveyResult:
    """A survey whose satisfaction question is "csat" (1-5), plus a yes-no "resolved"."""
    answers = [] if value is None else [SurveyAnswer("csat", "1-5", value)]
    if resolved is not None:
        answers.append(SurveyAnswer("resolved", "yes-no", resolved))
    return SurveyResult(
        survey="post", mode="in_call", status=status, answers=answers, satisfaction="csat"
    )


# Day 1 (2026-03-02 UTC): s1, s2, s3 (23:30 UTC: 2026-03-03 in Shanghai), cb_req.
# Day 2 (2026-03-03 UTC): s4, a1, a2, a3, q_ab, na, cb_call, live (in progress).
# Flow "cards": s3, s4, q_ab; flow "bank": the rest.
RECORDS = [
    call("s1", "2026-03-02T09:00"),
    call("s2", "2026-03-02T10:00"),
    call("s3", "2026-03-02T23:30", flow="cards"),
    # asked for an agent, waited 60 s, then chose a callback; the flow ended the call
    call("cb_req", "2026-03-02T11:00", queue="callback", wait=60),
    call("s4", "2026-03-03T08:00", flow="cards"),
    call(
        "a1",
        "2026-03-03T09:00",
        "transferred",
        queue="answered",
        wait=10,
        survey=csat("completed", 5, resolved=0),
    ),
    call(
        "a2",
        "2026-03-03T09:10",
        "transferred",
        queue="answered",
        wait=20,
        survey=csat("completed", 3, resolved=1),
    ),
    call(
        "a3", "2026-03-03T09:20", "transferred", queue="answered", wait=30, survey=csat("no_answer")
    ),
    call("q_ab", "2026-03-03T09:30", "abandoned", flow="cards", queue="abandoned", wait=45),
    call("na", "2026-03-03T09:40", "abandoned", queue="no_agents"),
    # the callback call placed for cb_req: an agent answered after 5 s
    call(
        "cb_call",
        "2026-03-03T10:00",
        "transferred",
        queue="answered",
        wait=5,
        callback_for="cb_req",
    ),
    # in progress, already answered after 999 s: must not count anywhere but in_progress
    call("live", "2026-03-03T11:00", None, queue="answered", wait=999, survey=csat("completed", 1)),
]


def test_overall_figures_worked_out_by_hand() -> None:
    k = report(RECORDS)["overall"]
    assert k == {
        "calls": 11,  # 12 records, "live" has no outcome
        "in_progress": 1,
        "self_service_rate": 0.4545,  # s1 s2 s3 s4 cb_req = 5 / 11
        "containment_rate": 0.3636,  # s1 s2 s3 s4 = 4 / 11 (cb_req went to a queue)
        "failed_in_ivr_rate": 0.0,
        # a1 a2 a3 q_ab na cb_req = 6 (cb_call is a callback call, live unfinished)
        "agent_requests": 6,
        "agent_answer_rate": 0.6667,  # a1 a2 a3 + cb_req called back = 4 / 6
        "abandon_rate": 0.25,  # q_ab / (a1 a2 a3 q_ab) = 1 / 4
        "avg_wait_s": 26.25,  # (10 + 20 + 30 + 45) / 4; not cb_req's 60, cb_call's 5, live's 999
        "p50_wait_s": 20,  # ceil(0.5 * 4) = 2nd of 10 20 30 45
        "p90_wait_s": 45,  # ceil(0.9 * 4) = 4th
        "surveys_offered": 3,  # a1 a2 a3
        "survey_response_rate": 0.6667,  # completed a1 a2 / 3
        "satisfaction": 0.5,  # csat 5 (top box) and 3 (not): 1 / 2; "resolved" is ignored
        "satisfaction_answers": 2,
        "callbacks_requested": 1,
        "callbacks_placed": 1,
        "callbacks_connected": 1,
    }


def test_per_flow_figures_and_zero_is_not_none() -> None:
    flows = report(RECORDS)["flows"]
    assert list(flows) == ["bank", "cards"]
    cards = flows["cards"]
    # s3 s4 q_ab: 2 / 3 self-service; one request, abandoned after 45 s: answered 0 / 1
    assert (cards["calls"], cards["self_service_rate"]) == (3, 0.6667)
    assert (cards["agent_requests"], cards["agent_answer_rate"], cards["abandon_rate"]) == (
        1,
        0.0,
        1.0,
    )
    assert (cards["avg_wait_s"], cards["p50_wait_s"], cards["p90_wait_s"]) == (45, 45, 45)
    # no survey in cards: no rate at all, not 0
    assert (cards["surveys_offered"], cards["survey_response_rate"], cards["satisfaction"]) == (
        0,
        None,
        None,
    )
    bank = flows["bank"]
    # s1 s2 cb_req a1 a2 a3 na cb_call = 8; self-service s1 s2 cb_req = 3 / 8
    assert (bank["calls"], bank["in_progress"], bank["self_service_rate"]) == (8, 1, 0.375)
    # a1 a2 a3 na cb_req = 5, answered a1 a2 a3 + called back cb_req = 4 / 5; nobody abandoned
    assert (bank["agent_requests"], bank["agent_answer_rate"], bank["abandon_rate"]) == (
        5,
        0.8,
        0.0,
    )
    assert (bank["avg_wait_s"], bank["p50_wait_s"], bank["p90_wait_s"]) == (20, 20, 30)


def test_days_are_sorted_and_a_callback_counts_for_the_original_day() -> None:
    data = report(reversed(RECORDS))  # order of the input does not matter
    assert [d["day"] for d in data["days"]] == ["2026-03-02", "2026-03-03"]
    day1, day2 = data["days"]
    assert set(day1) == {"day", *KPI_KEYS}
    # s1 s2 s3 cb_req: all self-service; cb_req answered by the callback placed on day 2
    assert (day1["calls"], day1["self_service_rate"], day1["agent_requests"]) == (4, 1.0, 1)
    assert day1["agent_answer_rate"] == 1.0
    assert (day1["abandon_rate"], day1["avg_wait_s"], day1["p90_wait_s"]) == (None, None, None)
    assert (day1["callbacks_requested"], day1["callbacks_placed"]) == (1, 0)
    # s4 a1 a2 a3 q_ab na cb_call = 7 (+ live); s4 = 1 / 7; a1 a2 a3 of 5 requests answered
    assert (day2["calls"], day2["in_progress"], day2["self_service_rate"]) == (7, 1, 0.1429)
    assert (day2["agent_requests"], day2["agent_answer_rate"]) == (5, 0.6)
    assert (day2["callbacks_requested"], day2["callbacks_placed"], day2["callbacks_connected"]) == (
        0,
        1,
        1,
    )


def test_report_shape_and_definitions() -> None:
    data = report(RECORDS, tz="Europe/Paris")
    assert list(data) == ["overall", "flows", "days", "timezone", "definitions"]
    assert data["timezone"] == "Europe/Paris"
    assert list(data["overall"]) == list(KPI_KEYS)
    assert data["definitions"] == DEFINITIONS
    assert set(DEFINITIONS) == set(KPI_KEYS)
    assert json.loads(json.dumps(data)) == data  # JSON-ready


def test_no_records_gives_no_rates() -> None:
    data = report([])
    k = data["overall"]
    assert k["calls"] == 0
    assert (data["flows"], data["days"]) == ({}, [])
    for key in KPI_KEYS:
        if key.endswith(("_rate", "_wait_s")) or key == "satisfaction":
            assert k[key] is None, key
        else:
            assert k[key] == 0, key


def test_calls_without_queue_or_survey() -> None:
    k = report([call("x", "2026-03-02T09:00"), call("y", "2026-03-02T09:01", "error")])["overall"]
    # errors stay in the denominator: 1 / 2
    assert (k["calls"], k["self_service_rate"]) == (2, 0.5)
    assert (k["agent_requests"], k["agent_answer_rate"], k["abandon_rate"]) == (0, None, None)
    assert (k["avg_wait_s"], k["p50_wait_s"], k["p90_wait_s"]) == (None, None, None)
    assert (k["surveys_offered"], k["survey_response_rate"], k["satisfaction"]) == (0, None, None)


def test_calls_in_progress_only() -> None:
    k = report([call("x", "2026-03-02T09:00", None, queue="answered", wait=3)])["overall"]
    assert (k["calls"], k["in_progress"], k["self_service_rate"]) == (0, 1, None)
    assert (k["agent_requests"], k["avg_wait_s"]) == (0, None)


def test_queue_requests_that_never_waited_are_unanswered_but_not_abandoned() -> None:
    records = [
        call("n", "2026-03-02T09:00", "abandoned", queue="no_agents"),
        call("c", "2026-03-02T09:01", "abandoned", queue="closed"),
        call("t", "2026-03-02T09:02", "abandoned", queue="timeout", wait=300),
        call("r", "2026-03-02T09:03", queue="callback"),
    ]  # never called back
    k = report(records)["overall"]
    assert (k["agent_requests"], k["agent_answer_rate"]) == (4, 0.0)
    assert (k["abandon_rate"], k["avg_wait_s"]) == (0.0, 300)  # only "t" waited
    assert (k["callbacks_requested"], k["callbacks_placed"], k["callbacks_connected"]) == (1, 0, 0)


def test_a_callback_that_did_not_connect_leaves_the_request_unanswered() -> None:
    records = [
        call("r", "2026-03-02T09:00", queue="callback"),
        call("cb1", "2026-03-02T10:00", "abandoned", queue="abandoned", wait=40, callback_for="r"),
        call("cb2", "2026-03-02T11:00", None, queue="answered", callback_for="r"),
    ]
    k = report(records)["overall"]
    # cb2 is still in progress: neither placed nor connected yet
    assert (k["agent_requests"], k["agent_answer_rate"]) == (1, 0.0)
    assert (k["callbacks_placed"], k["callbacks_connected"]) == (1, 0)
    # a callback call's wait is not an inbound wait
    assert (k["abandon_rate"], k["avg_wait_s"]) == (None, None)


def test_days_follow_the_time_zone() -> None:
    utc = report(RECORDS)["days"]
    shanghai = report(RECORDS, tz="Asia/Shanghai")["days"]
    # s3 at 23:30 UTC on 03-02 is 07:30 on 03-03 in Shanghai (UTC+8); 09:00..11:00 UTC stay
    assert [(d["day"], d["calls"]) for d in utc] == [("2026-03-02", 4), ("2026-03-03", 7)]
    assert [(d["day"], d["calls"]) for d in shanghai] == [("2026-03-02", 3), ("2026-03-03", 8)]


def test_surveys_partial_opted_out_and_scales() -> None:
    def survey(status: str, *answers: SurveyAnswer, question: str = "q") -> SurveyResult:
        return SurveyResult(
            survey="s", mode="outbound", status=status, answers=list(answers), satisfaction=question
        )

    surveys = [
        survey("partial", SurveyAnswer("q", "1-5", 4)),  # top box
        survey("opted_out"),
        survey("completed", SurveyAnswer("q", "1-5", None)),  # no valid answer
        survey("completed", SurveyAnswer("q", "1-5", 9)),  # off the scale: not valid
        survey("completed", SurveyAnswer("y", "yes-no", 1), question="y"),  # yes: top box
        survey("completed", SurveyAnswer("y", "yes-no", 0), question="y"),
        survey("completed", SurveyAnswer("q", "1-10", 9)),  # top 2 of 1-10: 9 and 10
    ]
    records = [call(f"c{i}", "2026-03-02T09:00", survey=s) for i, s in enumerate(surveys)]
    k = report(records)["overall"]
    # responses: every status but opted_out = 6 / 7; valid answers 4, 1-10, yes, no, 9 -> 3 / 4
    assert (k["surveys_offered"], k["survey_response_rate"]) == (7, 0.8571)
    assert (k["satisfaction_answers"], k["satisfaction"]) == (4, 0.75)
    # top_box=1: only 5 on 1-5 and 10 on 1-10; yes is still top box -> yes only = 1 / 4
    assert report(records, top_box=1)["overall"]["satisfaction"] == 0.25


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="time zone"):
        report([], tz="Mars/Olympus")
    with pytest.raises(ValueError, match="top_box"):
        report([], top_box=0)


def test_rate_and_nearest_rank() -> None:
    assert rate(0, 0) is None
    assert rate(0, 3) == 0.0
    assert rate(2, 3) == 0.6667
    assert nearest_rank([], 50) is None
    values = [15.0, 20.0, 35.0, 40.0, 50.0]  # the textbook nearest-rank example
    assert [nearest_rank(values, p) for p in (5, 30, 40, 50, 100)] == [15, 20, 20, 35, 50]
    with pytest.raises(ValueError):
        nearest_rank(values, 0)


def test_parse_bound() -> None:
    assert parse_bound("2026-03-02", "UTC") == at("2026-03-02T00:00")
    assert parse_bound("2026-03-02", "UTC", end=True) == at("2026-03-03T00:00")
    assert parse_bound("2026-03-02", "Asia/Shanghai") == at("2026-03-01T16:00")
    assert parse_bound("2026-03-02T12:30", "Asia/Shanghai") == at("2026-03-02T04:30")
    assert parse_bound("2026-03-02T12:30+00:00", "Asia/Shanghai", end=True) == at(
        "2026-03-02T12:30"
    )
    with pytest.raises(ValueError, match="not a date"):
        parse_bound("yesterday", "UTC")


def test_format_report_text() -> None:
    text = format_report(report(RECORDS))
    lines = text.splitlines()
    assert "self-service rate" in text
    assert any(line.split()[-1] == "45.5%" for line in lines if "self-service" in line)
    wait = next(line for line in lines if "average wait" in line)
    assert wait.split()[-2:] == ["26.2", "s"]  # 26.25 to one decimal (half to even)
    cards = next(line for line in lines if line.startswith("cards"))
    # calls, in progress, self-service, containment, failed in IVR, agent requests, answer
    assert cards.split()[1:8] == ["3", "0", "66.7%", "66.7%", "0.0%", "1", "0.0%"]
    day1 = next(line for line in lines if line.startswith("2026-03-02"))
    assert "n/a" in day1.split()
    assert lines.index("By flow") < lines.index("By day")
    assert "(no calls)" in format_report(report([]))


# --- ivr report on a real SQLite file --------------------------------------------------------


async def write_store(path: Path, records: list[CallRecord]) -> None:
    async with await RecordStore.open(path) as store:
        for record in records:
            await store.begin(dataclasses.replace(record, outcome=None, ended_at=None))
            if record.outcome is not None:
                await store.finish(record)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "data" / "ivr.sqlite3"
    asyncio.run(write_store(path, RECORDS))
    yield str(path)


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["report", "--json", *args]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def test_cli_json_whole_store(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_json(capsys, "--db", db) == report(RECORDS)


def test_cli_until_includes_its_day(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "--db", db, "--until", "2026-03-02")
    assert [d["day"] for d in data["days"]] == ["2026-03-02"]
    # s1 s2 s3 cb_req (s3 at 23:30 is inside); the callback call is after the range
    assert data["overall"]["calls"] == 4
    assert data["overall"]["agent_answer_rate"] == 0.0


def test_cli_since_in_time_zone(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    utc = run_json(capsys, "--db", db, "--since", "2026-03-03")
    assert (utc["overall"]["calls"], utc["overall"]["in_progress"]) == (7, 1)
    # from 2026-03-03 00:00 in Shanghai = 03-02 16:00 UTC: s3 (23:30 UTC) comes in
    sh = run_json(capsys, "--db", db, "--since", "2026-03-03", "--tz", "Asia/Shanghai")
    assert sh["overall"]["calls"] == 8
    assert sh["timezone"] == "Asia/Shanghai"
    assert [d["day"] for d in sh["days"]] == ["2026-03-03"]


def test_cli_since_until_flow_and_datetimes(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(
        capsys,
        "--db",
        db,
        "--since",
        "2026-03-03T09:00",
        "--until",
        "2026-03-03T09:30",
        "--flow",
        "bank",
    )
    # bank calls from 09:00 up to (not including) 09:30: a1 a2 a3
    assert data["overall"]["calls"] == 3
    assert list(data["flows"]) == ["bank"]


def test_cli_db_from_config(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IVR_STORE_PATH", raising=False)
    config = tmp_path / "ivr.yaml"
    config.write_text(f"store:\n  path: {db}\n", encoding="utf-8")
    assert run_json(capsys, "--config", str(config))["overall"]["calls"] == 11


def test_cli_pages_through_ties(
    db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    same = [call(f"t{i}", "2026-03-04T12:00") for i in range(5)]  # 5 calls at one instant
    asyncio.run(write_store(Path(db), same))
    monkeypatch.setattr(ivr.cli, "REPORT_PAGE", 2)
    data = run_json(capsys, "--db", db)
    assert data == report(RECORDS + same)
    assert data["overall"]["calls"] == 16


def test_cli_text_output(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--db", db]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Call KPIs (days in UTC)")
    assert "45.5%" in out and "n/a" in out
    assert "cards" in out and "2026-03-03" in out


def test_cli_missing_db_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "none.sqlite3"
    assert main(["report", "--db", str(missing)]) == 2
    assert "no call-record database" in capsys.readouterr().err
    assert not missing.exists()  # not created by the attempt


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "soon"], "not a date"),
        (["--tz", "Nowhere/Land"], "time zone"),
        (["--since", "2026-03-04", "--until", "2026-03-03"], "not before"),
    ],
)
def test_cli_bad_arguments_exit_2(
    db: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["report", "--db", db, *args]) == 2
    assert message in capsys.readouterr().err


def test_all_abandoned() -> None:
    # three callers asked for an agent and hung up while waiting (30, 60, 90 s)
    records = [
        call(f"ab{i}", f"2026-03-02T10:0{i}", "abandoned", queue="abandoned", wait=30.0 * (i + 1))
        for i in range(3)
    ]
    k = report(records)["overall"]
    assert (k["calls"], k["self_service_rate"]) == (3, 0.0)
    assert (k["agent_requests"], k["agent_answer_rate"], k["abandon_rate"]) == (3, 0.0, 1.0)
    assert (k["avg_wait_s"], k["p50_wait_s"], k["p90_wait_s"]) == (60.0, 60.0, 90.0)
    assert (k["surveys_offered"], k["satisfaction"]) == (0, None)


def test_a_call_spanning_midnight_counts_on_the_day_it_started() -> None:
    late = call("late", "2026-03-02T23:59", "transferred", queue="answered", wait=20)
    late.ended_at = at("2026-03-03T00:09")  # ten minutes later, the next day
    early = call("early", "2026-03-03T00:05")
    days = {d["day"]: d for d in report([late, early])["days"]}
    assert sorted(days) == ["2026-03-02", "2026-03-03"]
    assert (days["2026-03-02"]["calls"], days["2026-03-02"]["agent_answer_rate"]) == (1, 1.0)
    assert (days["2026-03-03"]["calls"], days["2026-03-03"]["self_service_rate"]) == (1, 1.0)
