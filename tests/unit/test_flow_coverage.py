"""Flow test coverage (nodes, exits, retries; drawn on the flow picture) and the times a
test call can be placed at (``at:``)."""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr.flow.call_time import CallTimeError, call_time
from ivr.flow.coverage import Coverage, Untested
from ivr.flow.graph import flow_dot
from ivr.flow.loader import load_flow
from ivr.flow.model import Flow
from ivr.flow.testcases import load_cases
from ivr.runtime.flow_tests import run_cases

REPO = Path(__file__).resolve().parents[2]
SHANGHAI = ZoneInfo("Asia/Shanghai")

FLOW = """\
flow: cov
start: menu
timezone: UTC
nodes:
  menu:
    menu:
      prompt: "1 or 2."
      options: {"1": check, "2": sub}
      no_input: {max: 1}
      no_match: {max: 0, then: bye}
      otherwise: bye
  check:
    branch:
      - {if: 'caller_id == "1"', goto: bye}
      - {if: 'caller_id == "2"', goto: bye}
    else: when
  when:
    hours: {open: {mon-fri: "09:00-17:00"}, when_open: bye, when_closed: bye, when_holiday: bye}
  sub: {call: inner, next: bye}
  bye: {play: "Bye.", next: hangup}
"""
INNER = """\
flow: inner
start: hi
nodes:
  hi: {play: "Hi.", next: return}
"""


def load(tmp: Path) -> tuple[Flow, dict[str, Flow]]:
    (tmp / "cov.yaml").write_text(FLOW, encoding="utf-8")
    (tmp / "inner.yaml").write_text(INNER, encoding="utf-8")
    cov, inner = load_flow(tmp / "cov.yaml"), load_flow(tmp / "inner.yaml")
    return cov, {"cov": cov, "inner": inner}


async def cover(tmp: Path, journeys: str) -> Coverage:
    flow, flows = load(tmp)
    tests = tmp / "tests.yaml"
    tests.write_text(f"flow: cov\ncases:\n{textwrap.dedent(journeys)}", encoding="utf-8")
    results = await run_cases(flow, load_cases(tests).cases, flows)
    assert [r.error or r.failures for r in results if not r.passed] == []
    coverage = Coverage(flows.values())
    for r in results:
        coverage.add(r.steps)
    return coverage


def missing(coverage: Coverage, flow: str = "cov") -> list[str]:
    return [i.describe() for i in coverage.flows[flow].missing]


async def test_one_journey_covers_its_nodes_and_exits_and_lists_the_rest(tmp_path: Path) -> None:
    coverage = await cover(
        tmp_path,
        """
        - {name: first, caller: "1", input: "1", expect: {path: [menu, check, bye]}}
        """,
    )
    cov = coverage.flows["cov"]
    assert (cov.count("node"), cov.count("exit"), cov.count("retry")) == ((3, 5), (3, 13), (0, 1))
    assert missing(coverage) == [
        "menu -> 2",
        "menu -> no_match",
        "menu -> otherwise",
        "menu: no_input retry",
        'check -> if caller_id == "2"',
        "check -> else",
        "node when",
        "when -> open",
        "when -> closed",
        "when -> holiday",
        "node sub",
        "sub -> call",
        "sub -> next (after return)",
    ]
    summary = cov.summary().splitlines()
    assert summary[0] == "cov: nodes 3/5, exits 3/13, retries 0/1 (32%)"
    assert f"  {cov.flow.file}:8: menu -> 2" in summary
    assert f"  {cov.flow.file}:18: node when (never reached, nor its 3 exits/retries)" in summary
    assert not any("when -> open" in line for line in summary)  # folded under its node


async def test_exits_to_one_target_are_told_apart(tmp_path: Path) -> None:
    monday = "2027-01-04T10:00"  # pinned: the hours node reads only the call's own clock
    coverage = await cover(
        tmp_path,
        f"""
        - {{name: case 2, caller: "2", input: "1", expect: {{path: [menu, check, bye]}}}}
        - {{name: open, at: "{monday}", input: "1", expect: {{path: [menu, check, when, bye]}}}}
        - {{name: sub, input: "2", expect: {{path: [menu, sub, "inner:hi", bye]}}}}
        - {{name: no match gives up, input: "7", expect: {{path: [menu, bye]}}}}
        - {{name: silence, input: "wait, wait", expect: {{path: [menu, bye]}}}}
        """,
    )
    assert missing(coverage) == [
        'check -> if caller_id == "1"',  # the first case: caller 2 took the second
        "when -> closed",
        "when -> holiday",
    ]
    assert missing(coverage, "inner") == []  # walked through the call node


async def test_a_retry_counts_only_when_the_menu_asks_again(tmp_path: Path) -> None:
    once = await cover(tmp_path, '- {name: w, input: "wait, 1", expect: {path_contains: [check]}}')
    assert "menu: no_input retry" not in missing(once)
    assert "menu -> otherwise" in missing(once)
    # max 1: the second silence gives up at once, no retry walked by the last one
    twice = await cover(tmp_path, '- {name: w, input: "wait, wait", expect: {path: [menu, bye]}}')
    assert "menu -> otherwise" not in missing(twice)
    assert "menu: no_input retry" not in missing(twice)


async def test_the_picture_greys_out_what_no_test_walks(tmp_path: Path) -> None:
    coverage = await cover(tmp_path, '- {name: a, input: "7", expect: {path: [menu, bye]}}')
    dot = flow_dot(coverage.flows["cov"].flow, untested=coverage.flows["cov"].untested())
    assert "flow tests walk" in dot
    lines = {line.split(" [", 1)[0].strip(): line for line in dot.splitlines() if " [" in line}
    assert "untested" in lines["when"] and "no test reaches it" in lines["when"]
    assert "untested" not in lines["bye"]
    assert "untested: no_input retry" in lines["menu"]
    assert 'class="untested"' in lines["menu -> sub"]
    assert 'class="untested"' not in lines["menu -> bye"]  # no_match taken, otherwise not
    assert "otherwise (untested)" in lines["menu -> bye"]
    # the JSON document ivr test writes reads back to the same marks
    again, marks = Untested.from_json(coverage.to_dict(), "cov"), coverage.flows["cov"].untested()
    assert (again.nodes, again.arrows, again.retries) == (marks.nodes, marks.arrows, marks.retries)
    with pytest.raises(ValueError, match="no flow 'other'"):
        Untested.from_json(coverage.to_dict(), "other")


# --- at: ---------------------------------------------------------------------------------------


def bank() -> Flow:
    return load_flow(REPO / "flows/bank.yaml")  # calendar: CN, Asia/Shanghai


def at(text: str, now: str) -> str:
    """``text`` placed for a test run on ``now`` (Shanghai time), as Shanghai time."""
    when = call_time(text, bank(), datetime.fromisoformat(now).replace(tzinfo=SHANGHAI).timestamp())
    return datetime.fromtimestamp(when, SHANGHAI).strftime("%a %Y-%m-%d %H:%M")


def test_relative_times_skip_holidays_and_make_up_workdays() -> None:
    # China 2026: 25 Sep (Mid-Autumn) and 1-7 Oct are holidays; Sun 20 Sep and Sat 10 Oct
    # are worked (the holidays package's calendar, pinned with the environment)
    assert at("next weekday 10:00", "2026-09-24T12:00") == "Mon 2026-09-28 10:00"
    assert at("next monday 09:30", "2026-09-30T12:00") == "Mon 2026-10-12 09:30"
    assert at("next sunday 10:00", "2026-09-14T12:00") == "Sun 2026-09-27 10:00"
    assert at("next saturday 10:00", "2026-10-05T12:00") == "Sat 2026-10-17 10:00"
    assert at("next weekend 10:00", "2026-10-08T12:00") == "Sun 2026-10-11 10:00"
    assert at("next holiday 10:00", "2026-09-21T12:00") == "Fri 2026-09-25 10:00"
    assert at("today 23:59", "2026-09-24T12:00") == "Thu 2026-09-24 23:59"
    assert at("Tomorrow 08:00", "2026-09-24T12:00") == "Fri 2026-09-25 08:00"
    # ISO: without an offset, the flow's timezone; with one, as written
    assert at("2027-01-04T10:00", "2026-09-24T12:00") == "Mon 2027-01-04 10:00"
    assert at("2027-01-04T10:00+00:00", "2026-09-24T12:00") == "Mon 2027-01-04 18:00"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("soon", "is not a time"),
        ("next funday 10:00", "'funday' is not a day"),
        ("today 25:00", "25:00 is not a time of day"),
    ],
)
def test_times_that_cannot_be_read_say_why(text: str, why: str) -> None:
    with pytest.raises(CallTimeError, match=why):
        call_time(text, bank(), 0.0)


def test_next_holiday_needs_an_hours_node_with_holidays(tmp_path: Path) -> None:
    flow, _ = load(tmp_path)
    with pytest.raises(CallTimeError, match="no hours node of this flow has holidays"):
        call_time("next holiday 10:00", flow, 0.0)
