"""Typed flow model: the node kinds and the :class:`Flow`, what the loader builds from YAML and
the interpreter walks.

Frozen dataclasses, no I/O. A :class:`Flow` is immutable, so a call keeps the version it
started with while a reload swaps in a new one. Each node kind extends
:class:`~ivr.flow.node.Node` and owns its parts; the values shared between kinds and flows
(prompts, reserved targets, callback offers, number rules, surveys) are in
:mod:`ivr.flow.model_values`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, get_args

from ivr.flow.model_values import (
    BACK,
    HANGUP,
    REPEAT,
    NumberRules,
    PromptSpec,
    SurveySpec,
)
from ivr.flow.node import Exit, Node, YamlPath
from ivr.flow.queue_node import QueueNode
from ivr.flow.record_node import RecordNode
from ivr.flow.split import SplitBranch, pick_branch

if TYPE_CHECKING:
    from ivr.flow.expr import Expression
    from ivr.flow.hours import BusinessHours
    from ivr.flow.regex import Matcher
    from ivr.flow.template import Template


@dataclass(frozen=True)
class Retry:
    """No-input or no-match handling: a prompt to say first, and how many retries."""

    prompt: PromptSpec | None = None
    max: int = 2
    then: str | None = None  # where to go once exceeded; falls back to the node's `otherwise`


def _retry_exits(node: MenuNode | CollectNode) -> Iterator[Exit]:
    for name in ("no_input", "no_match"):
        retry: Retry = getattr(node, name)
        if retry.then:
            yield Exit(retry.then, (node.kind, name, "then"), name, "retry")
    # with a `then` on both, `otherwise` is a placeholder the interpreter never uses
    if not (node.no_input.then and node.no_match.then):
        yield Exit(node.otherwise, (node.kind, "otherwise"), "otherwise", "retry")


def _retry_prompts(node: MenuNode | CollectNode) -> list[PromptSpec]:
    return [r.prompt for r in (node.no_input, node.no_match) if r.prompt is not None]


@dataclass(frozen=True)
class PlayNode(Node):
    yaml_keys = ("play", "say")
    prompt: PromptSpec
    next: str
    barge_in: bool = False  # a key press skips the rest of the prompt
    served: bool = False  # reaching this node means the caller got what they called for

    def exits(self) -> Iterator[Exit]:
        yield Exit(self.next, ("next",))

    def prompts(self) -> list[PromptSpec]:
        return [self.prompt]


@dataclass(frozen=True)
class MenuOption:
    key: str  # the digits, e.g. "1" or "12"
    target: str  # node id, REPEAT or BACK
    words: tuple[str, ...] = ()
    assign: dict[str, Template] = field(default_factory=dict)
    confirm_prompt: PromptSpec | None = None  # "Did you say <first word>?" (speech menus)


@dataclass(frozen=True)
class MenuNode(Node):
    yaml_keys = ("menu",)
    waits = True
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
    # spoken choices: None keeps the recogniser's calibrated thresholds (ivr.speech.decision)
    min_confidence: float | None = None
    accept_confidence: float | None = None
    confirm_mode: str = "auto"  # auto | always | never (YAML: confirm)

    @property
    def max_digits(self) -> int:
        return max(len(k) for k in self.options)

    @property
    def speech(self) -> bool:
        return "speech" in self.inputs

    def exits(self) -> Iterator[Exit]:
        for key, opt in self.options.items():
            words = f" ({', '.join(opt.words)})" if opt.words else ""
            word = {REPEAT: " repeat", BACK: " back"}.get(opt.target, "")
            yield Exit(opt.target, ("menu", "options", key), f"{key}{word}{words}", "option")
        yield from _retry_exits(self)

    def prompts(self) -> list[PromptSpec]:
        short = [self.short_prompt] if self.short_prompt is not None else []
        confirm = [o.confirm_prompt for o in self.options.values() if o.confirm_prompt]
        return [self.prompt, *short, *_retry_prompts(self), *confirm]

    def assignments(self) -> list[tuple[str, Template]]:
        return [item for option in self.options.values() for item in option.assign.items()]


@dataclass(frozen=True)
class CollectNode(Node):
    yaml_keys = ("collect",)
    waits = True
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

    def exits(self) -> Iterator[Exit]:
        yield Exit(self.next, ("next",), "next")
        yield from _retry_exits(self)

    def prompts(self) -> list[PromptSpec]:
        confirm = [self.confirm] if self.confirm is not None else []
        return [self.prompt, *confirm, *_retry_prompts(self)]

    def sets(self) -> list[str]:
        return [self.into]


@dataclass(frozen=True)
class SetNode(Node):
    yaml_keys = ("set",)
    assign: dict[str, Template]
    next: str

    def exits(self) -> Iterator[Exit]:
        yield Exit(self.next, ("next",))

    def assignments(self) -> list[tuple[str, Template]]:
        return list(self.assign.items())

    def reads(self) -> Iterator[tuple[str, YamlPath]]:
        for key, tpl in self.assign.items():
            yield from ((n, ("set", key)) for n in sorted(tpl.names))


@dataclass(frozen=True)
class BranchCase:
    condition: Expression
    target: str
    source: str


@dataclass(frozen=True)
class BranchNode(Node):
    yaml_keys = ("branch",)
    cases: tuple[BranchCase, ...]
    otherwise: str

    def exits(self) -> Iterator[Exit]:
        for i, case in enumerate(self.cases):
            yield Exit(case.target, ("branch", i, "goto"), "if", "branch", condition=case.source)
        yield Exit(self.otherwise, ("else",), "else", "branch")

    def reads(self) -> Iterator[tuple[str, YamlPath]]:
        for i, case in enumerate(self.cases):
            yield from ((n, ("branch", i, "if")) for n in sorted(case.condition.names))


@dataclass(frozen=True)
class GotoNode(Node):
    yaml_keys = ("goto",)
    target: str

    def exits(self) -> Iterator[Exit]:
        yield Exit(self.target, ("goto",))


@dataclass(frozen=True)
class CallNode(Node):
    yaml_keys = ("call",)
    waits = True
    flow: str
    next: str

    def exits(self) -> Iterator[Exit]:
        yield Exit(f"flow:{self.flow}", ("call",), "call", "call", to_node=False)
        yield Exit(self.next, ("next",), "next (after return)")


@dataclass(frozen=True)
class HoursNode(Node):
    yaml_keys = ("hours",)
    hours: BusinessHours
    when_open: str
    when_closed: str
    when_holiday: str

    def exits(self) -> Iterator[Exit]:
        yield Exit(self.when_open, ("hours", "when_open"), "open", "hours")
        yield Exit(self.when_closed, ("hours", "when_closed"), "closed", "hours")
        yield Exit(self.when_holiday, ("hours", "when_holiday"), "holiday", "hours")


@dataclass(frozen=True)
class SplitNode(Node):
    """Send each caller down one branch by percentage, the same one every time they call."""

    yaml_keys = ("split",)
    branches: tuple[SplitBranch, ...]  # their percentages add up to 100

    def exits(self) -> Iterator[Exit]:
        for i, b in enumerate(self.branches):
            label = f"{b.percent:g}%" + (f" {b.label}" if b.label != b.target else "")
            yield Exit(b.target, ("split", i, "goto"), label, "branch")

    def pick(self, flow: str, caller_id: str, call_id: str) -> SplitBranch:
        """This caller's branch (:func:`ivr.flow.split.pick_branch`)."""
        return pick_branch(self.branches, flow, caller_id, call_id)


@dataclass(frozen=True)
class HttpNode(Node):
    yaml_keys = ("http",)
    method: Literal["GET", "POST"]
    path: Template
    next: str
    on_error: str
    body: dict[str, Template] = field(default_factory=dict)
    save: dict[str, str] = field(default_factory=dict)  # variable -> path in the JSON reply
    timeout_s: float | None = None

    def exits(self) -> Iterator[Exit]:
        yield Exit(self.next, ("next",), "next")
        yield Exit(self.on_error, ("http", "on_error"), "on_error", "error")

    def sets(self) -> list[str]:
        return list(self.save)

    def reads(self) -> Iterator[tuple[str, YamlPath]]:
        yield from ((n, ("http",)) for n in sorted(self.path.names))
        for key, tpl in self.body.items():
            yield from ((n, ("http", "body", key)) for n in sorted(tpl.names))


@dataclass(frozen=True)
class TransferNode(Node):
    yaml_keys = ("transfer",)
    ends_call = True
    to: str  # a literal dial string from the flow, never from caller input
    on_fail: str
    timeout_s: int = 30

    def exits(self) -> Iterator[Exit]:
        yield Exit(self.on_fail, ("transfer", "on_fail"), "on_fail", "error")


@dataclass(frozen=True)
class SurveyNode(Node):
    """Run a survey of this flow now (e.g. at the end of a self-service call)."""

    yaml_keys = ("survey",)
    waits = True

    survey: str
    next: str = HANGUP  # some question answered (survey status completed or partial)
    unanswered: str | None = None  # no question answered (status no_answer); None: ``next``

    def exits(self) -> Iterator[Exit]:
        if self.unanswered is None:
            yield Exit(self.next, ("next",))
            return
        yield Exit(self.next, ("next",), "answered")
        yield Exit(self.unanswered, ("unanswered",), "unanswered", "retry")

    def after(self, status: str) -> str:
        """Where a survey that ended with ``status`` (its result's) goes on."""
        if status == "no_answer" and self.unanswered is not None:
            return self.unanswered
        return self.next


HangupOutcome = Literal["self_service", "failed_in_ivr", "abandoned"]


@dataclass(frozen=True)
class HangupNode(Node):
    yaml_keys = ("hangup",)
    ends_call = True
    outcome: HangupOutcome | None = None  # None: self_service if served, else failed_in_ivr

    def exits(self) -> Iterator[Exit]:
        return iter(())


FlowNode = (
    PlayNode
    | MenuNode
    | CollectNode
    | SetNode
    | BranchNode
    | GotoNode
    | CallNode
    | HoursNode
    | SplitNode
    | HttpNode
    | TransferNode
    | HangupNode
    | QueueNode
    | SurveyNode
    | RecordNode
)
# The node kinds' YAML keys, in the order of ``FlowNode`` (the loader's and the schema's list).
KINDS: tuple[str, ...] = tuple(k for cls in get_args(FlowNode) for k in cls.yaml_keys)


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
        nodes = [p for node in self.nodes.values() for p in node.prompts()]
        return nodes + [p for survey in self.surveys.values() for p in survey.prompts()]
