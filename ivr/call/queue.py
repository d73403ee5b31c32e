"""A queue as the call sees it: what the AMI adapter (:mod:`ivr.asterisk.ami.queues`) reports
and the ``queue`` node (:mod:`ivr.runtime.queueing`) reads."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QueueState:
    """A queue as AMI's ``QueueSummary`` sees it."""

    logged_in: int
    available: int  # free to take a call now
    callers: int
    holdtime_s: float  # recent average
    talktime_s: float  # recent average
    longest_hold_s: float = 0.0
    staffed: int | None = None  # logged in and not paused (on duty); None: as logged_in

    @property
    def on_duty(self) -> int:
        return self.logged_in if self.staffed is None else self.staffed
