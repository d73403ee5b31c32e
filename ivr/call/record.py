"""The call record: what every call leaves behind, whatever way it ends.

Plain data, written by the interpreter and persisted by ``ivr.store``. KPIs are computed from
these records only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

# self_service: the caller reached a node marked ``served`` (or an explicit ``hangup: {outcome:
# self_service}``); failed_in_ivr: the flow ended the call and the caller was never served
# (menus failed to the end, a closed line, a lookup that failed...); abandoned: the caller hung
# up unserved, or asked for an agent and none took the call; transferred: an agent answered (or
# a callback was booked)
Outcome = Literal["self_service", "failed_in_ivr", "transferred", "abandoned", "error"]
OUTCOMES: tuple[Outcome, ...] = (
    "self_service",
    "failed_in_ivr",
    "transferred",
    "abandoned",
    "error",
)
MASK = "***"
# agent-leg recordings (CallRecord.recording) are files in this subdirectory of the recordings
# directory
CALL_RECORDINGS = "calls"


def mask_number(number: str) -> str:
    """A phone number with its middle digits hidden, for records, logs and the API:
    ``8613800138000`` -> ``861*******000``. At most a quarter of the digits (three) show at
    each end, so a short number gives little away; three digits or fewer show none."""
    plus, digits = ("+", number[1:]) if number.startswith("+") else ("", number)
    keep = min(3, len(digits) // 4)
    if keep == 0:
        return plus + "*" * len(digits) if digits else ""
    return plus + digits[:keep] + "*" * (len(digits) - 2 * keep) + digits[-keep:]


def mask_caller(number: str) -> str:
    """``13800138000`` -> ``***8000``; short or empty numbers show nothing but the mask."""
    if not number:
        return ""
    return "***" + number[-4:] if len(number) > 4 else "***"


@dataclass(slots=True)
class InputEvent:
    """One thing the caller did at a node: digits pressed, words said, or nothing."""

    node: str
    # "dtmf" | "speech" | "no_input" | "no_match" | "confirm", or "callback_refused" /
    # "survey_refused" with the reason as the value (ivr.flow.numbers.Refusal), or
    # "recording_refused" with the key pressed, "split" with the branch's label, "resumed"
    # with the node the call came from (it died mid-call)
    kind: str
    value: str  # already masked when the node is sensitive; numbers to call: mask_number
    at_s: float  # seconds since the call started


QueueResult = Literal[
    "answered", "abandoned", "timeout", "no_agents", "closed", "callback", "callback_refused"
]
QUEUE_RESULTS: tuple[QueueResult, ...] = (
    "answered",
    "abandoned",
    "timeout",
    "no_agents",
    "closed",
    "callback",
    "callback_refused",
)


@dataclass(slots=True)
class QueueVisit:
    """The call's time in an agent queue (``queue`` node).

    ``result``: ``answered`` (an agent took it), ``abandoned`` (the caller hung up while
    waiting), ``timeout`` (the queue's time limit passed), ``no_agents`` (nobody logged in or
    free, so it never waited), ``closed`` (outside the queue's hours), ``callback`` (the
    caller chose to be called back instead of waiting), ``callback_refused`` (the number
    policy refused the callback and the flow's ``refused:`` branch took the caller on).
    """

    queue: str
    result: QueueResult
    wait_s: float = 0.0  # time from joining the queue to the answer (or leaving)
    agent: str = ""  # the member that answered (e.g. Local/1001@agents)
    talk_s: float = 0.0  # the agent conversation
    position: int = 0  # place in line on joining (1 = next)
    expected_wait_s: float | None = None  # what the caller was told
    agents_available: int = 0  # free agents when the caller arrived


@dataclass(slots=True)
class SurveyAnswer:
    """One survey question and the caller's answer (``None``: no valid answer)."""

    question: str  # the question's id in the flow
    scale: str  # "1-5" | "yes-no"
    value: int | None  # 1..5, or 1 (yes) / 0 (no)


@dataclass(slots=True)
class SurveyResult:
    """The post-call survey of one call (at most one per call).

    ``mode``: ``in_call`` (right after the agent hung up) or ``outbound`` (a call placed
    later). ``status``: ``completed``, ``partial`` (some answers), ``no_answer`` (the survey
    call was not answered or every question went unanswered), ``opted_out``.
    ``satisfaction``: the question whose answers make the post-call satisfaction figure.
    """

    survey: str
    mode: str
    status: str
    answers: list[SurveyAnswer] = field(default_factory=list)
    satisfaction: str = ""
    at: float = 0.0  # Unix time the survey ended
    comment_file: str = ""  # a recorded comment, if the survey asks for one


@dataclass(slots=True)
class CallRecord:
    """One row per call."""

    call_id: str  # Asterisk uniqueid (or a generated id in simulation)
    flow: str
    flow_version: str
    caller: str = ""
    dnis: str = ""
    started_at: float = 0.0  # Unix time
    ended_at: float | None = None
    language: str = ""
    path: list[str] = field(default_factory=list)  # node ids in visiting order
    # when each node of ``path`` was entered: seconds since ``started_at`` (ms), same length
    path_at: list[float] = field(default_factory=list)
    inputs: list[InputEvent] = field(default_factory=list)
    outcome: Outcome | None = None
    end_node: str | None = None  # where the call ended
    transfer_target: str | None = None
    error: str | None = None
    variables: dict[str, str] = field(default_factory=dict)  # non-sensitive flow variables
    queue: QueueVisit | None = None  # set when the call went to an agent queue
    survey: SurveyResult | None = None  # set once the post-call survey ran (or failed to)
    node: str = ""  # the ivr node that served it (the store fills it in)
    box: str = ""  # the Asterisk box that carried it (its systemname; "" with one box)
    # the agent leg's recording (a queue's `record:`), relative to the recordings directory
    recording: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def duration_s(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started_at
