"""The queue node and post-call surveys in the interpreter, with a fake AMI side.

The fake queue port answers ``state()`` from a given :class:`QueueState` and its watch
reports what AMI's AgentConnect/AgentComplete events would: who answered and for how long.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import yaml
from support.flowkit import flow, run

from ivr.call.queue import QueueState
from ivr.flow.model import Flow
from ivr.flow.model_values import SurveySpec
from ivr.flow.numbers import CallPolicy, NumberPolicy, Refusal
from ivr.flow.queue_node import QueueNode
from ivr.flow.sayas.en import RULES as ENGLISH
from ivr.runtime.context import BookedBy
from ivr.runtime.queueing import estimate_wait_s

BANK_LIKE = """
    start: agent
    surveys:
      after_call:
        intro: "Please rate your call."
        questions:
          - {id: satisfied, prompt: "How satisfied were you, 1 to 5?"}
          - {id: solved, prompt: "Solved? 1 yes, 2 no.", scale: yes-no}
        thanks: "Thank you."
        outbound: {dial: "PJSIP/{number}@survey-line", delay_s: 60}
    nodes:
      agent:
        queue:
          name: cards
          timeout_s: 120
          callback: {prompt: "To be called back instead, press 1.", over_s: 100, then: booked,
                     dial: "PJSIP/{number}@callback-line"}
          when_unavailable: busy
          when_timeout: busy
        survey: after_call
        next: hangup
      booked: {play: "We will call you back.", next: hangup}
      busy: {play: "All agents are busy.", next: hangup}
"""


@dataclass
class FakeWatch:
    agent: str = ""
    hold_s: float = 0.0
    talk_s: float = 0.0
    abandoned: bool = False
    closed: bool = False

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeQueues:
    state_now: QueueState | None
    answer: FakeWatch = field(default_factory=FakeWatch)
    watched: list[str] = field(default_factory=list)

    async def state(self, queue: str) -> QueueState | None:
        assert queue == "cards"
        return self.state_now

    def watch(self, uniqueid: str) -> FakeWatch:
        self.watched.append(uniqueid)
        return self.answer


@dataclass
class FakeOutbound:
    callbacks: list[tuple[str, str, float]] = field(default_factory=list)
    surveys: list[tuple[str, str]] = field(default_factory=list)

    async def book_callback(
        self, by: BookedBy, node: QueueNode, number: str, due_in_s: float, policy: CallPolicy
    ) -> Refusal | None:
        self.callbacks.append((by.call_id, number, due_in_s))
        return None

    async def book_survey(
        self, by: BookedBy, survey: SurveySpec, policy: CallPolicy
    ) -> Refusal | None:
        self.surveys.append((by.call_id, survey.name))
        return None


def state(
    logged_in: int = 2, available: int = 1, callers: int = 0, talk: float = 60.0, hold: float = 20.0
) -> QueueState:
    return QueueState(
        logged_in=logged_in, available=available, callers=callers, holdtime_s=hold, talktime_s=talk
    )


AGENT = FakeWatch(agent="Local/1001@agents", hold_s=12.0, talk_s=40.0)


def test_estimated_wait_is_computed_from_agents_and_talk_time() -> None:
    assert estimate_wait_s(1, state(available=1)) == 0  # a free agent takes it now
    # 3rd in line, 1 free agent: 2 calls must end first; 2 agents end one per 30 s
    assert estimate_wait_s(3, state(logged_in=2, available=1, talk=60)) == 60
    assert estimate_wait_s(2, state(logged_in=4, available=0, talk=0, hold=20)) == 10
    assert estimate_wait_s(5, state(logged_in=0, available=0, talk=90)) == 450


async def test_answered_then_in_call_survey_is_stored_on_the_record() -> None:
    queues = FakeQueues(state(), answer=FakeWatch(**AGENT.__dict__))
    record, channel = await run(
        flow(BANK_LIKE), "answer,5,1", queues=queues, outbound=FakeOutbound()
    )
    assert record.outcome == "transferred" and record.end_node == "agent"
    q = record.queue
    assert q is not None and (q.queue, q.result, q.agent) == ("cards", "answered", AGENT.agent)
    assert (q.wait_s, q.talk_s, q.position, q.expected_wait_s) == (12.0, 40.0, 1, 0.0)
    assert queues.watched == ["t-1"] and queues.answer.closed
    survey = record.survey
    assert survey is not None and survey.mode == "in_call" and survey.status == "completed"
    assert [(a.question, a.value) for a in survey.answers] == [("satisfied", 5), ("solved", 1)]
    assert survey.satisfaction == "satisfied"
    assert "queue cards,c,,,120 -> agent answered" in channel.transcript
    assert "play: Thank you." in channel.transcript


async def test_nobody_logged_in_takes_the_unavailable_branch_without_queueing() -> None:
    queues = FakeQueues(state(logged_in=0, available=0))
    record, channel = await run(flow(BANK_LIKE), "", queues=queues)
    assert record.path == ["agent", "busy"] and record.queue is not None
    assert record.queue.result == "no_agents" and queues.watched == []
    assert not any(line.startswith("queue ") for line in channel.transcript)
    assert record.outcome == "abandoned"  # nobody helped the caller


async def test_queue_timeout_and_asterisk_saying_empty() -> None:
    record, _ = await run(flow(BANK_LIKE), "noanswer", queues=FakeQueues(state()))
    assert record.queue is not None and record.queue.result == "timeout"
    assert record.path == ["agent", "busy"] and record.queue.wait_s == 30.0
    record, _ = await run(flow(BANK_LIKE), "chanunavail", queues=FakeQueues(state()))
    assert record.queue is not None and record.queue.result == "no_agents"


async def test_caller_hanging_up_while_waiting_is_abandoned() -> None:
    record, _ = await run(flow(BANK_LIKE), "hangup", queues=FakeQueues(state()))
    assert record.outcome == "abandoned" and record.queue is not None
    assert record.queue.result == "abandoned" and record.queue.agent == ""
    assert record.survey is None


async def test_caller_hanging_up_on_the_agent_books_the_outbound_survey() -> None:
    outbound = FakeOutbound()
    queues = FakeQueues(state(), answer=FakeWatch(**AGENT.__dict__))
    record, _ = await run(flow(BANK_LIKE), "hangup", queues=queues, outbound=outbound)
    assert record.outcome == "transferred"
    assert record.queue is not None and record.queue.result == "answered"
    assert outbound.surveys == [("t-1", "after_call")] and record.survey is None


async def test_long_wait_offers_a_callback_read_back_and_booked() -> None:
    outbound = FakeOutbound()
    busy = state(logged_in=1, available=0, callers=2, talk=60)  # 3rd: 180 s
    record, channel = await run(
        flow(BANK_LIKE),
        "1,1",
        queues=FakeQueues(busy),
        outbound=outbound,
        caller="+8613800138000",
        numbers=NumberPolicy(allow_prefixes=("+86",)),
    )  # + is denied
    assert outbound.callbacks == [("t-1", "+8613800138000", 180.0)]
    assert record.queue is not None and record.queue.result == "callback"
    assert record.queue.position == 3 and record.path == ["agent", "booked"]
    said = [line.removeprefix("play: ") for line in channel.transcript]
    # the number read back digit by digit from the English clips, no SAY command
    at = said.index("You entered")
    digits = [ENGLISH.keys[d] for d in "8613800138000"]
    assert said[at : at + 16] == ["You entered", *digits, "If that is right, press", "one"]
    assert not [line for line in channel.transcript if line.startswith("say ")]


async def test_callback_with_another_number_keyed_in() -> None:
    # a withheld caller id cannot be read back: where the flow lets callers key a number,
    # the caller keys one, then confirms it (recorded with its middle digits masked)
    outbound = FakeOutbound()
    busy = state(logged_in=1, available=0, callers=2)
    editable = flow(BANK_LIKE + "    number_policy: {edit: true}\n")
    record, _ = await run(
        editable, "1,5550199#,1", queues=FakeQueues(busy), outbound=outbound, caller="anonymous"
    )
    assert outbound.callbacks[0][1] == "5550199"
    assert [(i.kind, i.value) for i in record.inputs] == [
        ("dtmf", "1"),
        ("dtmf", "5*****9"),
        ("confirm", "1"),
    ]


async def test_declining_the_callback_keeps_waiting() -> None:
    busy = state(logged_in=1, available=0, callers=2)
    outbound = FakeOutbound()
    record, _ = await run(flow(BANK_LIKE), "2,noanswer", queues=FakeQueues(busy), outbound=outbound)
    assert outbound.callbacks == [] and record.queue is not None
    assert record.queue.result == "timeout"


async def test_the_callback_key_during_the_hold_music_books_a_callback() -> None:
    # the caller declines the offer before joining, then presses 1 while the music plays
    outbound = FakeOutbound()
    busy = state(logged_in=1, available=0, callers=2)
    record, channel = await run(
        flow(BANK_LIKE),
        "2,hold:1,1",
        queues=FakeQueues(busy),
        outbound=outbound,
        caller="8613800138000",
    )
    assert outbound.callbacks == [("t-1", "8613800138000", 180.0)]  # the wait as it is now
    q = record.queue
    assert q is not None and (q.result, q.agent, q.wait_s) == ("callback", "", 10.0)
    assert record.path == ["agent", "booked"] and record.outcome == "transferred"  # as promised
    assert [(i.kind, i.value) for i in record.inputs] == [("dtmf", "1"), ("confirm", "1")]
    assert "queue cards,c,,,120: caller presses 1 while waiting" in channel.transcript


async def test_another_key_during_the_hold_music_goes_back_in_line() -> None:
    outbound = FakeOutbound()
    record, channel = await run(
        flow(BANK_LIKE), "hold:5,noanswer", queues=FakeQueues(state()), outbound=outbound
    )
    assert outbound.callbacks == [] and record.queue is not None
    assert record.queue.result == "timeout" and record.path == ["agent", "busy"]
    assert [line for line in channel.transcript if line.startswith("queue ")] == [
        "queue cards,c,,,120: caller presses 5 while waiting",
        "queue cards,c,,,120 -> TIMEOUT",
    ]


async def test_ami_down_still_queues_and_trusts_queuestatus() -> None:
    record, _ = await run(flow(BANK_LIKE), "answer,4,2", queues=FakeQueues(None))
    assert record.queue is not None and record.queue.result == "answered"
    assert record.outcome == "transferred"
    assert record.survey is not None and [a.value for a in record.survey.answers] == [4, 0]


async def test_hanging_up_mid_survey_leaves_a_partial_survey() -> None:
    queues = FakeQueues(state(), answer=FakeWatch(**AGENT.__dict__))
    record, _ = await run(flow(BANK_LIKE), "answer,3,hangup", queues=queues)
    assert record.survey is not None and record.survey.status == "partial"
    assert [(a.question, a.value) for a in record.survey.answers] == [("satisfied", 3)]
    assert record.outcome == "transferred"


def two_questions(*nodes: str, thanks: str | None = None) -> Flow:
    """A flow whose survey ``q`` asks a 1-5 and a yes-no question, with ``nodes`` (one YAML
    line each; the first is ``s``, the start)."""
    text = {
        "start": "s",
        "surveys": {
            "q": {
                "questions": [
                    {"id": "satisfied", "prompt": "1 to 5?"},
                    {"id": "solved", "prompt": "1 yes 2 no", "scale": "yes-no"},
                ],
                **({"thanks": thanks} if thanks else {}),
            }
        },
        "nodes": {k: v for line in nodes for k, v in yaml.safe_load(line).items()},
    }
    return flow(yaml.safe_dump(text, allow_unicode=True))


@pytest.mark.parametrize(
    "keys, values, status",
    [
        ("wait,wait,wait,wait", [None, None], "no_answer"),
        ("9,5,wait,1", [5, 1], "completed"),  # a key off the scale is asked again once
    ],
)
async def test_survey_node_retries_and_no_answer(
    keys: str, values: list[int | None], status: str
) -> None:
    record, _ = await run(two_questions("s: {survey: q, next: hangup}"), keys)
    assert record.survey is not None and record.survey.status == status
    assert [a.value for a in record.survey.answers] == values


@pytest.mark.parametrize(
    "keys, path, outcome",
    [
        ("wait,wait,wait,wait", ["s", "unserved"], "failed_in_ivr"),  # silence: no_answer
        ("7,8,0,9", ["s", "unserved"], "failed_in_ivr"),  # keys off the scale: no_answer
        ("wait,wait,1", ["s", "served"], "self_service"),  # partial
        ("4,1", ["s", "served"], "self_service"),  # completed
    ],
)
async def test_survey_node_unanswered_is_not_self_service(
    keys: str, path: list[str], outcome: str
) -> None:
    f = two_questions(
        "s: {survey: q, unanswered: unserved, next: served}",
        'served: {play: "Goodbye.", served: true, next: hangup}',
        'unserved: {play: "Goodbye.", next: hangup}',
    )
    record, _ = await run(f, keys)
    assert (record.path, record.outcome) == (path, outcome)


@pytest.mark.parametrize(
    ("keys", "thanked"),
    [("wait,wait,wait,wait", False), ("wait,wait,1", True), ("4,1", True)],
)
async def test_the_survey_thanks_only_a_caller_who_answered(keys: str, thanked: bool) -> None:
    f = two_questions("s: {survey: q, next: hangup}", thanks="Thank you for your feedback.")
    _, channel = await run(f, keys)
    assert any("Thank you for your feedback" in line for line in channel.transcript) == thanked
