"""A call resumed on another node: the interpreter saves where it is before each waiting node
(:class:`ResumePoint`) and takes the call up there, in the same record."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest
from support.flowkit import MONDAY_10AM_UTC, flow

from ivr.call.channel import CallInfo
from ivr.call.record import MASK, CallRecord
from ivr.call.resume import ResumePoint
from ivr.errors import IvrError
from ivr.flow.model import Flow
from ivr.runtime.interpreter import CallRun, Services
from ivr.runtime.sim import ScriptedChannel, SimClock, parse_tokens

MAIN = """
start: pin
variables: {pin: "", choice: "none"}
nodes:
  pin:
    collect:
      prompt: "Your PIN."
      into: pin
      digits: {min: 4, max: 4, end: "#"}
      sensitive: true
      no_input: {max: 0}
      otherwise: bye
    next: pick
  pick: {set: {choice: "cards"}, next: go}
  go: {call: cards, next: after}
  after: {play: "Back.", next: hangup, served: true}
  bye: {play: "Bye.", next: hangup}
"""
CARDS = """
start: m
nodes:
  m:
    menu:
      prompt: "1 lost, 2 stolen."
      options: {"1": lost, "2": stolen}
      no_input: {max: 0}
      otherwise: return
  lost: {set: {choice: "lost"}, next: return}
  stolen: {set: {choice: "stolen"}, next: return}
"""


def flows() -> dict[str, Flow]:
    return {"test": flow(MAIN), "cards": flow(CARDS, name="cards")}


def services(clock: SimClock, saved: list[tuple[CallRecord, ResumePoint]]) -> Services:
    return Services(
        clock=clock,
        flows=flows(),
        checkpoint=lambda rec, point: saved.append((copy.deepcopy(rec), point)),
    )


def channel(tokens: str, clock: SimClock) -> ScriptedChannel:
    return ScriptedChannel(
        parse_tokens(tokens), info=CallInfo(uniqueid="t-1", caller_id="5551234"), clock=clock
    )


async def first_node_dies_at_the_menu() -> tuple[CallRecord, ResumePoint]:
    """Run the call up to the sub-flow's menu; what the last checkpoint saved there."""
    clock, saved = SimClock(MONDAY_10AM_UTC), []
    await CallRun(flows()["test"], channel("1234#,hangup", clock), services(clock, saved)).run()
    return saved[-1]


async def test_the_resume_point_has_the_sub_flow_stack_and_no_sensitive_value() -> None:
    record, point = await first_node_dies_at_the_menu()
    assert (point.flow, point.node) == ("cards", "m")
    assert point.stack == (("test", "after"),)
    assert point.variables == {"choice": "cards"}  # the PIN is never stored
    assert "1234" not in point.to_json()
    assert record.path == ["pin", "pick", "go", "cards:m"]
    assert ResumePoint.from_json(point.to_json()) == point


async def test_a_resumed_call_carries_on_at_the_menu_in_the_same_record() -> None:
    record, point = await first_node_dies_at_the_menu()
    clock, saved = SimClock(MONDAY_10AM_UTC + 30), []
    line = channel("1", clock)
    run = CallRun(flows()["test"], line, services(clock, saved), record=record)
    start = run.resume(point)
    done = await run.run(start)
    assert done is record and done.call_id == "t-1"
    assert done.path == ["pin", "pick", "go", "cards:m", "cards:m", "cards:lost", "after"]
    assert done.outcome == "self_service"
    assert "play: Back." in line.transcript  # the stack returned to the main flow
    assert done.variables["pin"] == MASK and done.variables["choice"] == "lost"


@pytest.mark.parametrize(
    ("point", "missing"),
    [
        (ResumePoint(flow="gone", node="m"), "'gone'"),
        (ResumePoint(flow="cards", node="nowhere"), "'nowhere'"),
        (ResumePoint(flow="cards", node="m", stack=(("test", "removed"),)), "'removed'"),
    ],
)
async def test_a_point_the_loaded_flows_do_not_have_is_refused(
    point: ResumePoint, missing: str
) -> None:
    clock = SimClock(MONDAY_10AM_UTC)
    run = CallRun(flows()["test"], channel("", clock), services(clock, []))
    with pytest.raises(IvrError, match=missing):
        run.resume(point)


@pytest.mark.parametrize("text", ["", "[]", '{"flow": "x"}', '{"node": 1}', "{nope"])
def test_a_broken_resume_point_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="not a resume point"):
        ResumePoint.from_json(text)


def test_the_json_of_a_point_is_every_field_and_reads_back() -> None:
    point = ResumePoint(
        "bank", "main", (("bank", "after"), ("loans", "back")), {"acct": "12", "x": "é"},
        "zh", ("main", "loans"), served=True, agent_reached=False,
    )  # fmt: skip
    assert json.loads(point.to_json()) == json.loads(json.dumps(dataclasses.asdict(point)))
    assert list(json.loads(point.to_json())) == [f.name for f in dataclasses.fields(point)]
    assert ResumePoint.from_json(point.to_json()) == point
