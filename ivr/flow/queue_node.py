"""The ``queue`` node: the caller is handed to an agent queue (Asterisk ``Queue()``).

Its own module because :mod:`ivr.flow.model` is at the module size limit; the model's
``FlowNode`` union lists it like every other kind.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ivr.flow.model_values import HANGUP, CallbackOffer, PromptSpec, RecordingConsent
from ivr.flow.node import Exit, Node

__all__ = ["QueueNode"]


@dataclass(frozen=True)
class QueueNode(Node):
    """Hand the caller to an agent queue (Asterisk ``Queue()``), after checking it over AMI."""

    yaml_keys = ("queue",)
    ends_call = True
    waits = True

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
    record: RecordingConsent | None = None  # record the agent leg, unless the caller refuses

    def exits(self) -> Iterator[Exit]:
        if self.callback is not None:
            yield Exit(
                self.callback.then,
                ("queue", "callback", "then"),
                f"{self.callback.key} callback",
                "option",
            )
            if self.callback.refused is not None:
                yield Exit(
                    self.callback.refused,
                    ("queue", "callback", "refused"),
                    "callback refused",
                    "error",
                )
        yield Exit(self.when_unavailable, ("queue", "when_unavailable"), "unavailable", "error")
        yield Exit(self.when_timeout, ("queue", "when_timeout"), "timeout", "retry")
        yield Exit(self.next, ("next",), "after the agent")

    def prompts(self) -> list[PromptSpec]:
        announce = [self.announce] if self.announce is not None else []
        consent = [self.record.consent] if self.record is not None else []
        return announce + consent + ([self.callback.prompt] if self.callback is not None else [])
