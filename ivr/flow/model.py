"""Typed flow model: what the loader builds from YAML and the interpreter walks.

Frozen dataclasses, no I/O. A :class:`Flow` is immutable, so a call keeps the version it
started with while a reload swaps in a new one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from ivr.flow.expr import Expression
    from ivr.flow.hours import BusinessHours
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
    pattern: re.Pattern[str] | None = None
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


HangupOutcome = Literal["self_service", "abandoned"]


@dataclass(frozen=True)
class HangupNode(Node):
    outcome: HangupOutcome = "self_service"


FlowNode = (
    PlayNode | MenuNode | CollectNode | SetNode | BranchNode | GotoNode | CallNode | HoursNode
    | HttpNode | TransferNode | HangupNode
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

    def prompts(self) -> list[PromptSpec]:
        """Every prompt of the flow (for TTS rendering and prompt-file checks)."""
        return [p for node in self.nodes.values() for p in node_prompts(node)]


def node_prompts(node: FlowNode) -> list[PromptSpec]:
    """Every prompt one node can say, retry prompts included."""
    out: list[PromptSpec] = []
    for attr in ("prompt", "short_prompt", "confirm"):
        p = getattr(node, attr, None)
        if p is not None:
            out.append(p)
    for attr in ("no_input", "no_match"):
        r = getattr(node, attr, None)
        if r is not None and r.prompt is not None:
            out.append(r.prompt)
    return out
