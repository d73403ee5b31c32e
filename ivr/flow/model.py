"""Typed flow model: what the loader builds from YAML and the interpreter walks.

Frozen dataclasses, no I/O. A :class:`Flow` is immutable, so a call keeps the version it
started with while a reload swaps in a new one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from ivr.flow.expr import Expression
    from ivr.flow.hours import BusinessHours
    from ivr.flow.regex import Matcher
    from ivr.flow.template import Template

# Targets with a meaning of their own; node ids may not use them.
HANGUP = "hangup"  # end the call (the flow is done)
RETURN = "return"  # leave a sub-flow, continue after the `call` node
REPEAT = "repeat"  # menu option: play the menu again
BACK = "back"  # menu option: return to the previous menu
RESERVED_TARGETS = frozenset({HANGUP, RETURN, REPEAT, BACK})

# Variables every call has; time ones are computed when a condition reads them.
CALL_VARIABLES = frozenset({"caller_id", "caller_name", "dnis", "uniqueid", "channel", "flow"})
TIME_VARIABLES = frozenset({"time", "hour", "minute", "weekday", "date"})
BUILTIN_VARIABLES = CALL_VARIABLES | TIME_VARIABLES | {"language"}

SayFormat = Literal["digits", "number", "currency", "date"]


@dataclass(frozen=True)
class Speech:
    """A fixed spoken piece: text (rendered by TTS ahead of time), a file or a stock sound."""

    kind: Literal["text", "file", "sound"]
    value: str  # the text, or the file name without extension
    language: str


@dataclass(frozen=True)
class SayValue:
    """A value from a variable, spoken by Asterisk (``SAY DIGITS``/``SAY NUMBER``...)."""

    variable: str
    format: SayFormat


@dataclass(frozen=True)
class PromptSpec:
    """What a node says. Text may embed ``{var:format}``, split at load time into parts."""

    parts_by_language: dict[str, tuple[Speech | SayValue, ...]]
    default_language: str

    def parts(self, language: str) -> tuple[Speech | SayValue, ...]:
        return self.parts_by_language.get(language) or self.parts_by_language[
            self.default_language
        ]

    @property
    def variables(self) -> frozenset[str]:
        return frozenset(
            p.variable
            for parts in self.parts_by_language.values()
            for p in parts
            if isinstance(p, SayValue)
        )


@dataclass(frozen=True)
class Retry:
    """No-input or no-match handling: a prompt to say first, and how many retries."""

    prompt: PromptSpec | None = None
    max: int = 2
    then: str | None = None  # where to go once exceeded; falls back to the node's `otherwise`


@dataclass(frozen=True)
class Node:
    id: str
    line: int


@dataclass(frozen=True)
class PlayNode(Node):
    prompt: PromptSpec
    next: str
    barge_in: bool = False  # a key press skips the rest of the prompt
    served: bool = False  # reaching this node means the caller got what they called for


@dataclass(frozen=True)
class MenuOption:
    key: str  # the digits, e.g. "1" or "12"
    target: str  # node id, REPEAT or BACK
    words: tuple[str, ...] = ()
    assign: dict[str, Template] = field(default_factory=dict)


@dataclass(frozen=True)
class MenuNode(Node):
    prompt: PromptSpec
    options: dict[str, MenuOption]
    otherwise: str
    short_prompt: PromptSpec | None = None
    no_input: Retry = Retry()
    no_match: Retry = Retry()
    inputs: tuple[str, ...] = ("dtmf",)
    timeout_s: float = 5.0
    inter_digit_timeout_s: float = 2.0
    terminator: str = "#"
    barge_in: bool = True  # speech menus: speaking stops the prompt
    min_speech_ms: int = 300
    max_speech_s: float = 10.0

    @property
    def max_digits(self) -> int:
        return max(len(k) for k in self.options)

    @property
    def speech(self) -> bool:
        return "speech" in self.inputs


@dataclass(frozen=True)
class CollectNode(Node):
    prompt: PromptSpec
    into: str
    next: str
    otherwise: str
    min_digits: int = 1
    max_digits: int = 20
    terminator: str = "#"
    pattern: Matcher | None = None  # a compiled pattern; flow patterns: ivr.flow.regex (RE2)
    confirm: PromptSpec | None = None
    sensitive: bool = False
    no_input: Retry = Retry()
    no_match: Retry = Retry()
    timeout_s: float = 5.0
    inter_digit_timeout_s: float = 3.0


@dataclass(frozen=True)
class SetNode(Node):
    assign: dict[str, Template]
    next: str


@dataclass(frozen=True)
class BranchCase:
    condition: Expression
    target: str
    source: str


@dataclass(frozen=True)
class BranchNode(Node):
    cases: tuple[BranchCase, ...]
    otherwise: str


@dataclass(frozen=True)
class GotoNode(Node):
    target: str


@dataclass(frozen=True)
class CallNode(Node):
    flow: str
    next: str


@dataclass(frozen=True)
class HoursNode(Node):
    hours: BusinessHours
    when_open: str
    when_closed: str
    when_holiday: str


@dataclass(frozen=True)
class HttpNode(Node):
    method: Literal["GET", "POST"]
    path: Template
    next: str
    on_error: str
    body: dict[str, Template] = field(default_factory=dict)
    save: dict[str, str] = field(default_factory=dict)  # variable -> path in the JSON reply
    timeout_s: float | None = None


@dataclass(frozen=True)
class TransferNode(Node):
    to: str  # a literal dial string from the flow, never from caller input
    on_fail: str
    timeout_s: int = 30


@dataclass(frozen=True)
class CallbackOffer:
    """In a queue: offer to call the caller back instead of waiting."""

    prompt: PromptSpec  # e.g. "To be called back instead of waiting, press 1."
    dial: str  # channel pattern with {number}, e.g. PJSIP/{number}@trunk
    over_s: float = 60.0  # offer when the estimated wait is at least this
    key: str = "1"
    then: str = HANGUP  # where the call goes once the callback is booked
    attempts: int = 3
    retry_after_s: float = 300.0
    hours: BusinessHours | None = None  # calling hours: a callback waits for them
    max_concurrent: int = 2  # callbacks of this offer in progress at once
    # where a refused number goes (None: an apology, then the queue as if no callback)
    refused: str | None = None


@dataclass(frozen=True)
class NumberRules:
    """A flow's ``number_policy:``: narrows the server's (``ivr.flow.numbers``) for the
    flow's callbacks and outbound surveys. None: as the server says."""

    allow_prefixes: tuple[str, ...] = ()
    deny_prefixes: tuple[str, ...] = ()
    min_digits: int | None = None
    max_digits: int | None = None
    per_caller_per_day: int | None = None
    per_number_per_day: int | None = None
    edit: bool | None = None  # the caller may key another number than their own


@dataclass(frozen=True)
class QueueNode(Node):
    """Hand the caller to an agent queue (Asterisk ``Queue()``), after checking it over AMI."""

    queue: str  # a queues.conf queue, written in the flow
    when_unavailable: str  # nobody logged in / free to answer, or AMI down
    when_timeout: str  # waited ``timeout_s`` without an answer
    next: str = HANGUP  # after the agent hung up (and the survey, if any)
    timeout_s: int = 300
    music: str = ""  # music-on-hold class ("" = the queue's)
    announce: PromptSpec | None = None  # said before joining; may use {queue_position} etc.
    require_available: bool = False  # true: all agents busy also counts as unavailable
    callback: CallbackOffer | None = None
    survey: str | None = None  # survey (flow `surveys:`) after the agent hangs up


@dataclass(frozen=True)
class SurveyQuestion:
    id: str
    prompt: PromptSpec
    scale: Literal["1-5", "yes-no"] = "1-5"


@dataclass(frozen=True)
class OutboundSurvey:
    """Call the caller back for the survey when they hung up before it could run."""

    dial: str  # channel pattern with {number}, e.g. PJSIP/{number}@trunk
    delay_s: float = 120.0
    hours: BusinessHours | None = None  # calling hours
    attempts: int = 2
    retry_after_s: float = 600.0
    max_concurrent: int = 2
    caller_id: str = ""


@dataclass(frozen=True)
class SurveySpec:
    """A post-call survey (flow section ``surveys:``)."""

    name: str
    line: int
    questions: tuple[SurveyQuestion, ...]
    satisfaction: str  # the question that makes the satisfaction figure
    intro: PromptSpec | None = None
    thanks: PromptSpec | None = None
    inputs: tuple[str, ...] = ("dtmf",)  # "speech" too: answers may be said
    timeout_s: float = 6.0
    retries: int = 1  # per question, after no input or a key outside the scale
    outbound: OutboundSurvey | None = None

    def prompts(self) -> list[PromptSpec]:
        extra = [p for p in (self.intro, self.thanks) if p is not None]
        return [q.prompt for q in self.questions] + extra


@dataclass(frozen=True)
class SurveyNode(Node):
    """Run a survey of this flow now (e.g. at the end of a self-service call)."""

    survey: str
    next: str = HANGUP


HangupOutcome = Literal["self_service", "abandoned"]


@dataclass(frozen=True)
class HangupNode(Node):
    outcome: HangupOutcome = "self_service"


FlowNode = (
    PlayNode | MenuNode | CollectNode | SetNode | BranchNode | GotoNode | CallNode | HoursNode
    | HttpNode | TransferNode | HangupNode | QueueNode | SurveyNode
)


@dataclass(frozen=True)
class Flow:
    """One loaded, validated flow file."""

    name: str
    version: str  # content hash of the file (plus the optional `version:` label)
    file: str
    start: str
    nodes: dict[str, FlowNode]
    language: str = "en"
    languages: tuple[str, ...] = ("en",)
    timezone: str = "UTC"
    variables: dict[str, str] = field(default_factory=dict)
    sensitive: frozenset[str] = frozenset()  # variables never logged or recorded
    surveys: dict[str, SurveySpec] = field(default_factory=dict)
    number_rules: NumberRules | None = None  # `number_policy:` for callbacks and surveys

    def prompts(self) -> list[PromptSpec]:
        """Every prompt of the flow (for TTS rendering and prompt-file checks)."""
        nodes = [p for node in self.nodes.values() for p in node_prompts(node)]
        return nodes + [p for survey in self.surveys.values() for p in survey.prompts()]


def node_prompts(node: FlowNode) -> list[PromptSpec]:
    """Every prompt one node can say, retry prompts included."""
    out: list[PromptSpec] = []
    for attr in ("prompt", "short_prompt", "confirm", "announce"):
        p = getattr(node, attr, None)
        if p is not None:
            out.append(p)
    for attr in ("no_input", "no_match"):
        r = getattr(node, attr, None)
        if r is not None and r.prompt is not None:
            out.append(r.prompt)
    if isinstance(node, QueueNode) and node.callback:
        out.append(node.callback.prompt)
    return out
