"""What a node step needs from the call it runs in, and the ports the runtime calls out to.

:class:`CallContext` is the small view of a call that queueing and surveys are written
against (the interpreter's ``CallRun`` is one); :class:`Services` bundles the ports a call may
use besides its channel. Nothing here imports the interpreter, so the interpreter, queueing and
surveys all import this module and not each other.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ivr.call.channel import Channel, Prompt
from ivr.call.events import EventSink
from ivr.call.messages import MessageSink
from ivr.call.queue import QueueState
from ivr.call.record import CallRecord
from ivr.call.resume import ResumePoint
from ivr.clock import Clock, system_clock
from ivr.flow import model as m
from ivr.flow.model_values import PromptSpec, SurveySpec
from ivr.flow.node import Node
from ivr.flow.numbers import CallPolicy, NumberPolicy, Refusal
from ivr.flow.queue_node import QueueNode
from ivr.flow.redact import CallLog

__all__ = [
    "BookedBy",
    "CallContext",
    "HttpPort",
    "OutboundPort",
    "QueuePort",
    "QueueWatch",
    "Services",
]


class HttpPort(Protocol):
    """What the ``http`` node needs (``ivr.engines.http.HttpLookup`` in production)."""

    async def request(
        self,
        method: Literal["GET", "POST"],
        path: str,
        *,
        json_body: Mapping[str, object] | None = None,
        timeout_s: float | None = None,
        call_id: str = "",
    ) -> object: ...


class QueueWatch(Protocol):
    """What AMI events said about one caller in a queue (filled while ``Queue()`` runs)."""

    agent: str  # the member that answered, "" if none
    hold_s: float
    talk_s: float
    abandoned: bool

    def close(self) -> None:
        """Stop following the caller."""


class QueuePort(Protocol):
    """Agent queues, as the interpreter needs them."""

    async def state(self, queue: str) -> QueueState | None:
        """The queue now; ``None`` when it cannot be known (AMI down, unknown queue)."""

    def watch(self, uniqueid: str) -> QueueWatch:
        """Start following the caller's channel in queue events."""


@dataclass(frozen=True)
class BookedBy:
    """The call that books an outbound call: plain values, no interpreter."""

    call_id: str
    flow: str  # the flow the call is in (where the outbound call starts again)
    caller: str  # the caller's number as the call record keeps it


class OutboundPort(Protocol):
    """Durable outbound calls (callbacks, outbound surveys), placed later over AMI."""

    async def book_callback(
        self, by: BookedBy, node: QueueNode, number: str, due_in_s: float, policy: CallPolicy
    ) -> Refusal | None:
        """Store a callback request (it keeps the caller's place in line); or say why not:
        ``policy`` is checked again, with its daily limits."""

    async def book_survey(
        self, by: BookedBy, survey: SurveySpec, policy: CallPolicy
    ) -> Refusal | None:
        """Store an outbound survey to ``by.caller`` (at most one per call); or say why not."""


@dataclass
class Services:
    """Everything a call may need besides its channel."""

    http: HttpPort | None = None
    flows: Mapping[str, m.Flow] = field(default_factory=dict)  # for `call` (sub-flows)
    clock: Clock = system_clock
    extract: Callable[[object, str], str] | None = None  # JSON path lookup for `http` save
    # Called with the record in progress before each node that waits for the caller, so a
    # server crash mid-call still leaves where the call was, and another node can resume it.
    checkpoint: Callable[[CallRecord, ResumePoint], None] | None = None
    # Languages speech menus can be heard in (a recogniser is loaded); menus in other
    # languages take keys only. None: every language (simulation).
    speech_languages: Collection[str] | None = None
    queues: QueuePort | None = None  # agent queues (AMI); None: Queue() without a check
    outbound: OutboundPort | None = None  # callbacks and outbound surveys
    numbers: NumberPolicy = field(default_factory=NumberPolicy)  # who they may call
    # Called after each node with (flow name, node kind, seconds spent in it): metrics.
    on_node: Callable[[str, str, float], None] | None = None
    events: EventSink | None = None  # webhooks (agent.offered, survey.answered); None: off
    messages: MessageSink | None = None  # record nodes' messages; None: recorded, not kept
    # Absolute directory of recordings, the same path for the server and Asterisk (agent legs
    # in its calls/); "": nothing is recorded (a queue's `record:` is skipped).
    recordings_dir: str = ""


class CallContext(Protocol):
    """One call in progress, as a node step outside the interpreter sees it."""

    flow: m.Flow  # the flow the call is in now (a sub-flow while one runs)
    channel: Channel
    services: Services
    record: CallRecord  # filled as the call goes
    vars: dict[str, str]  # the flow variables
    log: CallLog  # masks sensitive values
    agent_reached: bool  # set when an agent answered: the call counts as transferred

    async def say(self, prompts: list[PromptSpec | None], escape: str = "") -> str:
        """Play prompts in the call's language; the escape key pressed, if any."""

    def note_input(self, node: Node, kind: str, value: str, sensitive: bool = False) -> None:
        """Keep what the caller did on the record (masked as needed) and log it."""

    def public_variables(self) -> dict[str, str]:
        """The flow variables safe to show (sensitive ones masked, built-ins left out)."""

    def can_hear(self) -> bool:
        """Speech input works in the call's current language."""

    def prompts_for(self, specs: list[PromptSpec | None]) -> list[Prompt]:
        """The streamable parts of prompts in the call's language (speech listening)."""

    async def run_survey(self, spec: SurveySpec, mode: str) -> None:
        """Ask a survey on this call."""
