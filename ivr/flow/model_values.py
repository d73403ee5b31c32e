"""Value types of the flow model that nodes and flows share: the reserved targets and built-in
variable names, prompts (a :class:`PromptSpec` of :class:`Speech` and :class:`SayValue` parts),
a queue's :class:`CallbackOffer` and :class:`RecordingConsent`, a flow's :class:`NumberRules`
and its surveys.

Frozen dataclasses, no I/O. The node kinds and :class:`~ivr.flow.model.Flow` that hold them are
in :mod:`ivr.flow.model`, the base of every node kind in :mod:`ivr.flow.node`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from ivr.flow.hours import BusinessHours

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
        return self.parts_by_language.get(language) or self.parts_by_language[self.default_language]

    @property
    def variables(self) -> frozenset[str]:
        return frozenset(
            p.variable
            for parts in self.parts_by_language.values()
            for p in parts
            if isinstance(p, SayValue)
        )


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
class RecordingConsent:
    """In a queue: record the agent leg (``MixMonitor``) unless the caller refuses. The
    consent prompt is said before ``Queue()``; the refuse key during it, or within
    ``wait_s`` after it, means no recording."""

    consent: PromptSpec  # e.g. "This call may be recorded; to refuse, press 9."
    refuse_key: str = "9"
    wait_s: float = 3.0  # how long to wait for the refuse key once the prompt ended


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
