"""The callback and survey number policy: what a caller may get the server to dial.

Thought through as a toll-fraud attacker would try it: premium and international numbers,
short codes and emergency numbers, a spoofed caller id, someone else's number, many bookings
a day, a number with a trailing newline. Every refusal is heard (a flow branch or an
apology) and leaves an entry on the call record.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.flowkit import MONDAY_10AM_UTC, flow, run

from ivr.call.channel import CallInfo
from ivr.call.queue import QueueState
from ivr.call.record import CallRecord
from ivr.config import load_settings
from ivr.errors import ConfigError, FlowErrors
from ivr.flow import model as m
from ivr.flow.model_values import NumberRules, SurveySpec
from ivr.flow.numbers import (
    NUMBER,
    CallPolicy,
    NumberPolicy,
    Refusal,
    effective,
)
from ivr.flow.queue_node import QueueNode
from ivr.outbound.jobs import Outbound, dial_string
from ivr.runtime.context import BookedBy
from ivr.runtime.interpreter import CallRun, Services
from ivr.runtime.sim import ScriptedChannel, SimClock, parse_tokens
from ivr.store.records import RecordStore

DAY_S = 86400.0
CALL_IDS = itertools.count(1)

FLOW = """
    start: agent
    surveys:
      after_call:
        questions: [{id: satisfied, prompt: "How satisfied were you, 1 to 5?"}]
        outbound: {dial: "PJSIP/{number}@survey-line", delay_s: 60}
    nodes:
      agent:
        queue:
          name: cards
          timeout_s: 120
          callback: {prompt: "To be called back instead, press 1.", over_s: 100, then: booked,
                     dial: "PJSIP/{number}@callback-line"REFUSED}
          when_unavailable: busy
          when_timeout: busy
        survey: after_call
        next: hangup
      booked: {play: "We will call you back.", next: hangup}
      busy: {play: "All agents are busy.", next: hangup}
"""
BRANCHES = {
    "sorry": '      sorry: {play: "We cannot call that number back.", next: busy}\n',
    "again": "      again: {goto: agent}\n",  # straight back to the queue node
}

SORRY = "play: Sorry, we cannot call you back on this line."  # the English clip


def bank(policy: str = "", refused: str = "") -> m.Flow:
    text = FLOW.replace("REFUSED", f", refused: {refused}" if refused else "")
    text += BRANCHES.get(refused, "")
    return flow(text + (f"    number_policy: {policy}\n" if policy else ""))


@dataclass
class Queues:
    """A queue whose state is given (3rd in line behind 1 agent: a 180 s wait)."""

    now: QueueState = field(
        default_factory=lambda: QueueState(
            logged_in=1, available=0, callers=2, holdtime_s=20.0, talktime_s=60.0
        )
    )

    async def state(self, queue: str) -> QueueState | None:
        return self.now

    def watch(self, uniqueid: str) -> Watch:
        return Watch()


@dataclass
class Watch:
    agent: str = ""
    hold_s: float = 0.0
    talk_s: float = 0.0
    abandoned: bool = False

    def close(self) -> None:
        pass


@dataclass
class Booked:
    """An OutboundPort that books everything it is asked to (the policy runs before it)."""

    callbacks: list[str] = field(default_factory=list)
    surveys: list[str] = field(default_factory=list)

    async def book_callback(
        self, by: BookedBy, node: QueueNode, number: str, due_in_s: float, policy: CallPolicy
    ) -> Refusal | None:
        self.callbacks.append(number)
        return None

    async def book_survey(
        self, by: BookedBy, survey: SurveySpec, policy: CallPolicy
    ) -> Refusal | None:
        self.surveys.append(by.caller)
        return None


SHORT_WAIT = QueueState(logged_in=2, available=1, callers=0, holdtime_s=20.0, talktime_s=60.0)


def refusals(record: CallRecord) -> list[tuple[str, str]]:
    return [(i.kind, i.value) for i in record.inputs if i.kind.endswith("_refused")]


# --- the number shape and the policy itself --------------------------------------------------


def test_a_number_with_a_trailing_newline_is_no_number() -> None:
    assert NUMBER.match("5550100") and NUMBER.match("+8613800138000")
    for bad in (
        "5550100\n",
        "5550100\r\n",
        "\n5550100",
        "555 0100",
        "55501OO",
        "++5550100",
        "1234567890123456",
        "12",
        "",
        "\uff15" * 7,
    ):  # fullwidth digits
        assert not NUMBER.match(bad), bad
        with pytest.raises(ValueError):
            dial_string("PJSIP/{number}@trunk", bad)


@pytest.mark.parametrize(
    ("number", "why"),
    [
        ("19005550100", "denied_prefix"),
        ("9005550100", "denied_prefix"),  # NANP premium
        ("19765550100", "denied_prefix"),
        ("09001234567", "denied_prefix"),  # 0900 premium
        ("+442071234567", "denied_prefix"),
        ("00442071234567", "denied_prefix"),  # international
        ("011442071234567", "denied_prefix"),
        ("112", "emergency"),
        ("911", "emergency"),
        ("+911", "emergency"),
        ("999", "emergency"),
        ("95588", "too_short"),
        ("10086", "too_short"),  # short codes
        ("1234567890123456", "too_long"),
        ("", "not_a_number"),
        ("abc", "not_a_number"),
        ("5550100\n", "not_a_number"),
        ("+", "not_a_number"),
    ],
)
def test_default_policy_refuses_what_toll_fraud_dials(number: str, why: Refusal) -> None:
    assert effective(NumberPolicy(), None).check(number) == why


@pytest.mark.parametrize("number", ["8613800138000", "13800138000", "02012345678", "5550100"])
def test_default_policy_allows_national_numbers(number: str) -> None:
    assert effective(NumberPolicy(), None).check(number) is None


def test_the_longest_prefix_decides_and_a_flow_only_narrows() -> None:
    server = NumberPolicy(allow_prefixes=("+86", "1"), deny_prefixes=("+", "1900"))
    policy = effective(server, None)
    assert policy.check("+8613800138000") is None  # +86 is longer than +
    assert policy.check("+442071234567") == "denied_prefix"
    assert policy.check("19005550100") == "denied_prefix"  # 1900 is longer than 1
    assert policy.check("8613800138000") == "not_allowed"  # the allow list says no
    rules = NumberRules(
        allow_prefixes=("+", "1"),
        deny_prefixes=("+8613",),
        min_digits=3,
        max_digits=12,
        per_caller_per_day=9,
        edit=True,
    )
    narrowed = effective(server, rules)
    assert narrowed.check("+442071234567") == "denied_prefix"  # the flow cannot lift it
    assert narrowed.check("+8613800138000") == "too_long"
    assert narrowed.check("+861058001234") is None
    assert narrowed.check("+8613900139") == "denied_prefix"  # the flow's own deny
    assert narrowed.min_digits == 7 and narrowed.per_caller_per_day == 3  # not loosened
    assert narrowed.edit  # the one thing a flow turns on


# --- configuration and the flow section ------------------------------------------------------


def test_numbers_section_in_the_configuration(tmp_path: Path) -> None:
    assert load_settings(env={}).numbers == NumberPolicy()  # safe defaults
    conf = tmp_path / "ivr.yaml"
    conf.write_text(
        "numbers:\n  allow_prefixes: ['86', '+86']\n  deny_prefixes: ['+', '00']\n"
        "  per_caller_per_day: 1\n",
        encoding="utf-8",
    )
    numbers = load_settings(conf, env={"IVR_NUMBERS_MIN_DIGITS": "11"}).numbers
    assert numbers.allow_prefixes == ("86", "+86") and numbers.deny_prefixes == ("+", "00")
    assert numbers.per_caller_per_day == 1 and numbers.min_digits == 11
    env = load_settings(env={"IVR_NUMBERS_DENY_PREFIXES": "00, 011,+"}).numbers
    assert env.deny_prefixes == ("00", "011", "+")
    conf.write_text("numbers:\n  deny_prefixes: ['09x']\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="09x"):
        load_settings(conf, env={})
    with pytest.raises(ConfigError, match="min_digits"):
        load_settings(env={"IVR_NUMBERS_MIN_DIGITS": "20"})


def test_flow_number_policy_and_refused_branch_are_loaded() -> None:
    f = bank("{allow_prefixes: ['86'], edit: true, per_number_per_day: 1}", refused="sorry")
    assert f.number_rules == NumberRules(allow_prefixes=("86",), edit=True, per_number_per_day=1)
    node = f.nodes["agent"]
    assert isinstance(node, QueueNode) and node.callback is not None
    assert node.callback.refused == "sorry"
    with pytest.raises(FlowErrors, match="nowhere"):
        bank(refused="nowhere")
    with pytest.raises(FlowErrors, match="'\\+44 20' is not allowed"):
        bank("{deny_prefixes: ['+44 20']}")
    # the schema's pattern ends in $, which Python lets match before a trailing newline
    with pytest.raises(FlowErrors, match="is not a prefix"):
        bank('{deny_prefixes: ["0900\\n"]}')


def test_a_dial_string_with_a_trailing_newline_is_refused_at_load() -> None:
    # a newline in an AMI field would end the Originate action early
    text = FLOW.replace("REFUSED", "").replace('@callback-line"', '@callback-line\\n"')
    with pytest.raises(FlowErrors, match="is not a dial string"):
        flow(text)


# --- in the call ----------------------------------------------------------------------------


async def test_a_premium_caller_id_is_refused_with_an_apology_then_the_queue() -> None:
    outbound = Booked()
    record, channel = await run(
        bank(), "1,noanswer", queues=Queues(), outbound=outbound, caller="19005550100"
    )  # a spoofed premium "caller id"
    assert outbound.callbacks == []
    assert refusals(record) == [("callback_refused", "denied_prefix")]
    assert SORRY in channel.transcript  # heard, not dropped
    assert "play: You entered" not in channel.transcript  # the number is not read back
    assert record.queue is not None and record.queue.result == "timeout"  # waited after all
    assert record.path == ["agent", "busy"]


async def test_a_refused_number_takes_the_flows_branch() -> None:
    record, channel = await run(
        bank(refused="sorry"), "1", queues=Queues(), outbound=Booked(), caller="+442071234567"
    )
    assert record.path == ["agent", "sorry", "busy"]
    assert refusals(record) == [("callback_refused", "denied_prefix")]
    assert record.queue is not None and record.queue.result == "callback_refused"
    assert "play: We cannot call that number back." in channel.transcript


async def test_by_default_only_the_callers_own_number() -> None:
    outbound = Booked()
    # the caller declines the read-back and would key another number: editing is off
    record, _ = await run(
        bank(), "1,2,noanswer", queues=Queues(), outbound=outbound, caller="8613800138000"
    )
    assert outbound.callbacks == []
    assert refusals(record) == [("callback_refused", "edit_not_allowed")]
    record, _ = await run(
        bank(), "1,noanswer", queues=Queues(), outbound=outbound, caller="anonymous"
    )
    assert refusals(record) == [("callback_refused", "no_caller_number")]
    assert outbound.callbacks == []
    record, _ = await run(bank(), "1,1", queues=Queues(), outbound=outbound, caller="8613800138000")
    assert outbound.callbacks == ["8613800138000"] and record.path == ["agent", "booked"]


async def test_a_flow_that_allows_editing_still_checks_the_keyed_number() -> None:
    edit = bank("{edit: true}")
    outbound = Booked()
    for keyed, why in [
        ("19005550100", "denied_prefix"),
        ("0044207123456", "denied_prefix"),
        ("112", "emergency"),
        ("95588", "too_short"),
    ]:
        record, _ = await run(
            edit,
            f"1,2,{keyed}#,noanswer",
            queues=Queues(),
            outbound=outbound,
            caller="8613800138000",
        )
        assert refusals(record) == [("callback_refused", why)], keyed
    assert outbound.callbacks == []
    record, _ = await run(
        edit, "1,13900139000#,1", queues=Queues(), outbound=outbound, caller="anonymous"
    )
    assert outbound.callbacks == ["13900139000"] and record.path == ["agent", "booked"]


async def test_the_hold_music_key_keeps_the_offers_wait_threshold_and_policy() -> None:
    outbound = Booked()
    # a short wait (a free agent): over_s 100 is not reached, so no callback from the queue
    record, channel = await run(
        bank(),
        "hold:1,noanswer",
        queues=Queues(SHORT_WAIT),
        outbound=outbound,
        caller="8613800138000",
    )
    assert outbound.callbacks == [] and record.path == ["agent", "busy"]
    assert refusals(record) == [("callback_refused", "short_wait")]
    assert SORRY in channel.transcript
    # a long wait, but a premium caller id: refused, back in line
    record, channel = await run(
        bank(), "2,hold:1,noanswer", queues=Queues(), outbound=outbound, caller="19765550100"
    )
    assert outbound.callbacks == [] and record.queue is not None
    assert refusals(record) == [("callback_refused", "denied_prefix")]
    assert sum(line.startswith("queue cards") for line in channel.transcript) == 2


async def test_no_second_offer_after_a_refusal() -> None:
    # the refused caller comes back to the same queue node: it is not offered again
    f = bank(refused="again")
    record, channel = await run(
        f, "1,noanswer", queues=Queues(), outbound=Booked(), caller="19005550100"
    )
    assert record.path == ["agent", "again", "agent", "busy"]
    assert channel.transcript.count("play: To be called back instead, press 1.") == 1


async def test_a_survey_to_a_refused_caller_is_not_booked_and_says_why() -> None:
    outbound = Booked()
    queues = Queues(SHORT_WAIT)
    queues.watch = lambda uniqueid: Watch(agent="Local/1001@agents", hold_s=5, talk_s=30)  # type: ignore[method-assign]
    record, _ = await run(
        bank(), "hangup", queues=queues, outbound=outbound, caller="+442071234567"
    )
    assert outbound.surveys == [] and record.queue is not None
    assert record.queue.result == "answered"
    assert refusals(record) == [("survey_refused", "denied_prefix")]


# --- daily limits, counted in the outbound table by the injected clock ---------------------


@dataclass
class Clock:
    now: float

    def __call__(self) -> float:
        return self.now


async def call(outbound: Outbound, f: m.Flow, caller: str, number: str) -> list[tuple[str, str]]:
    """One call from ``caller`` that books a callback to ``number``: what was refused."""
    channel = ScriptedChannel(
        parse_tokens(f"1,2,{number}#,1,noanswer"),
        clock=SimClock(outbound.clock()),
        info=CallInfo(uniqueid=f"c-{next(CALL_IDS)}", caller_id=caller),
    )
    services = Services(clock=outbound.clock, queues=Queues(), outbound=outbound)
    return refusals(await CallRun(f, channel, services).run())


async def test_per_caller_and_per_number_limits_over_the_last_24_hours(store: RecordStore) -> None:
    clock = Clock(MONDAY_10AM_UTC)
    outbound = Outbound(store, clock=clock)
    f = bank("{edit: true, per_caller_per_day: 2, per_number_per_day: 2}")
    # one caller books callbacks to three numbers: the third is one too many for the caller
    assert await call(outbound, f, "8613800138000", number="13900139001") == []
    clock.now += 60
    assert await call(outbound, f, "8613800138000", number="13900139002") == []
    clock.now += 60
    assert await call(outbound, f, "8613800138000", number="13900139003") == [
        ("callback_refused", "caller_limit")
    ]
    # other callers book the same number: two a day at most
    assert await call(outbound, f, "13700137001", number="13900139001") == []
    assert await call(outbound, f, "13700137002", number="13900139001") == [
        ("callback_refused", "number_limit")
    ]
    # 24 hours after the first bookings, the caller and the number may book again
    clock.now += DAY_S - 60
    assert await call(outbound, f, "8613800138000", number="13900139001") == []
    jobs = await outbound.jobs()
    assert [j.number for j in jobs] == ["13900139001", "13900139002", "13900139001", "13900139001"]


async def test_the_outbound_port_checks_the_policy_itself(store: RecordStore) -> None:
    # defence in depth: a booking that skipped the interpreter's check is refused too
    outbound = Outbound(store, clock=Clock(MONDAY_10AM_UTC))
    f = bank()
    node = f.nodes["agent"]
    assert isinstance(node, QueueNode)
    call = BookedBy("c-9", f.name, "19005550100")
    policy = effective(NumberPolicy(), None)
    assert await outbound.book_callback(call, node, "19005550100", 0.0, policy) == "denied_prefix"
    assert await outbound.book_callback(call, node, "5550100\n", 0.0, policy) == "not_a_number"
    assert await outbound.book_survey(call, f.surveys["after_call"], policy) == "denied_prefix"
    assert await outbound.jobs() == []
