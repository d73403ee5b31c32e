"""The survey node's ``unanswered:`` exit in the language: loaded, checked like any target,
drawn on the flow picture, told apart by flow tests' coverage. (Its runtime step:
tests/unit/test_queue_survey.py; the schema: tests/unit/test_flow_schema_editor.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.flowkit import flow

from ivr.errors import FlowErrors
from ivr.flow import model as m
from ivr.flow.coverage import Coverage
from ivr.flow.graph import flow_dot
from ivr.flow.loader import load_flow
from ivr.flow.reachability import flow_edges
from ivr.flow.testcases import load_cases
from ivr.runtime.flow_tests import run_cases

SURVEY_NODE = """
    start: s
    surveys:
      after: {questions: [{id: happy, prompt: "Rate us 1 to 5"}]}
    nodes:
      s: {survey: after, %s}
      bye: {play: "Goodbye.", served: true, next: hangup}
      silent: {play: "Goodbye.", next: hangup}
"""
STATUSES = ("no_answer", "partial", "completed")


def survey_node(keys: str, text: str = SURVEY_NODE) -> m.SurveyNode:
    s = flow(text % keys).nodes["s"]
    assert isinstance(s, m.SurveyNode)
    return s


def errors_of(keys: str) -> list[str]:
    with pytest.raises(FlowErrors) as info:
        flow(SURVEY_NODE % keys)
    return [str(e) for e in info.value.errors]


def test_unanswered_is_taken_only_when_no_question_was_answered() -> None:
    s = survey_node("unanswered: silent, next: bye")
    assert (s.next, s.unanswered) == ("bye", "silent")
    assert [(e.target, e.path, e.label, e.style) for e in s.exits()] == [
        ("bye", ("next",), "answered", "next"),
        ("silent", ("unanswered",), "unanswered", "retry"),
    ]
    assert [s.after(status) for status in STATUSES] == ["silent", "bye", "bye"]


def test_without_unanswered_every_survey_goes_to_next() -> None:
    s = survey_node("next: bye", SURVEY_NODE.replace("silent: {", "# silent: {"))
    assert s.unanswered is None
    assert [s.after(status) for status in STATUSES] == ["bye", "bye", "bye"]
    assert [(e.target, e.path, e.label) for e in s.exits()] == [("bye", ("next",), "")]


def test_the_unanswered_target_must_exist() -> None:
    (err,) = errors_of("unanswered: silnt, next: bye")  # `silent` unreachable: folded in
    assert err.startswith("test.yaml:6:")
    assert "'silnt', which is not a node of this flow" in err
    assert "unreachable because of this: silent" in err and "did you mean 'silent'?" in err


def test_a_misspelt_or_mistyped_unanswered_is_named() -> None:
    assert (
        "unknown key 'unanswerd'; did you mean 'unanswered'?"
        in errors_of("unanswerd: silent, next: bye")[0]
    )
    assert "expected string" in errors_of("unanswered: [silent], next: bye")[0]


def test_the_flow_picture_draws_both_ways_out() -> None:
    f = flow(SURVEY_NODE % "unanswered: silent, next: bye")
    edges = {(e.target, e.label) for e in flow_edges(f) if e.source == "s"}
    assert edges == {("bye", "answered"), ("silent", "unanswered")}
    dot = flow_dot(f)
    assert "s -> bye [" in dot and "style=solid, label=<answered>" in dot
    assert "s -> silent [" in dot and "style=dashed, label=<unanswered>" in dot


async def test_flow_test_coverage_tells_the_two_exits_apart_on_one_target(tmp_path: Path) -> None:
    """An odd flow sends both ways to one node: coverage still knows which way a call went."""
    (tmp_path / "f.yaml").write_text(
        (SURVEY_NODE % "unanswered: bye, next: bye").replace("silent: {", "# silent: {")
    )
    (tmp_path / "tests.yaml").write_text(
        "flow: f\ncases:\n"
        "  - {name: silence, input: 'wait, wait', expect: {path: [s, bye]}}\n"
        "  - {name: rated, input: '4', expect: {path: [s, bye]}}\n"
    )
    f = load_flow(tmp_path / "f.yaml")
    cases = load_cases(tmp_path / "tests.yaml").cases

    for names, left in (
        (["silence"], ["s -> answered"]),
        (["rated"], ["s -> unanswered"]),
        (["silence", "rated"], []),
    ):
        results = await run_cases(f, [c for c in cases if c.name in names], {"f": f})
        assert all(r.passed for r in results), [r.failures for r in results]
        coverage = Coverage([f])
        for r in results:
            coverage.add(r.steps)
        assert [i.describe() for i in coverage.flows["f"].missing] == left
