"""What a flow test's call sees instead of AMI and the outbound store: agent queues in the
state the case gives (``queue:``), and bookings (callbacks, outbound surveys) that are
always accepted; the number policy is still checked by the queue step itself."""

from __future__ import annotations

from dataclasses import dataclass

from ivr.call.queue import QueueState
from ivr.flow.model_values import SurveySpec
from ivr.flow.numbers import CallPolicy, Refusal
from ivr.flow.queue_node import QueueNode
from ivr.runtime.context import BookedBy

__all__ = ["BOOKS_ALL", "StubQueues"]


@dataclass
class _Watch:
    """Nothing follows the caller in a test: the channel's token says how the wait ended."""

    agent: str = ""
    hold_s: float = 0.0
    talk_s: float = 0.0
    abandoned: bool = False

    def close(self) -> None:
        """Nothing to stop."""


@dataclass(frozen=True)
class StubQueues:
    """Every queue in one state (:class:`ivr.runtime.context.QueuePort`)."""

    state_now: QueueState

    async def state(self, queue: str) -> QueueState | None:
        return self.state_now

    def watch(self, uniqueid: str) -> _Watch:
        return _Watch()


class _BooksAll:
    """Accepts every booking (:class:`ivr.runtime.context.OutboundPort`)."""

    async def book_callback(
        self, by: BookedBy, node: QueueNode, number: str, due_in_s: float, policy: CallPolicy
    ) -> Refusal | None:
        return None

    async def book_survey(
        self, by: BookedBy, survey: SurveySpec, policy: CallPolicy
    ) -> Refusal | None:
        return None


BOOKS_ALL = _BooksAll()
