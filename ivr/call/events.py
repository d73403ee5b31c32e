"""The events a call sends out (webhooks): their names, their payloads, and the port they
go through.

Plain data like the call record: the runtime, the outbound policy and the app build an event
here and hand it to an :class:`EventSink` (the server's outbox, ``ivr.app.webhooks``), which
returns at once: nobody on the call path waits for a receiver. Payloads never hold a sensitive
value: the record's variables as stored (sensitive ones are ``***``), callers' numbers masked
as the admin API shows them (:func:`~ivr.call.record.mask_caller`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

from ivr.call.record import CallRecord, SurveyResult, mask_caller

__all__ = [
    "EVENTS",
    "Event",
    "EventSink",
    "agent_offered",
    "call_ended",
    "callback_booked",
    "message_recorded",
    "survey_answered",
]

EVENTS = ("call.ended", "survey.answered", "callback.booked", "agent.offered", "message.recorded")


@dataclass(frozen=True, slots=True)
class Event:
    """One event about a call: ``kind`` (one of :data:`EVENTS`), the call it is about
    (``""``: none; a call's events reach the receiver in the order they happened) and the
    payload's ``data`` (JSON-ready, non-sensitive)."""

    kind: str
    call_id: str
    data: dict[str, Any]


class EventSink(Protocol):
    """Where events go (the outbox); ``emit`` never waits and never raises."""

    def emit(self, event: Event) -> None:
        """Queue ``event`` for the receiver (dropped, with a log line, if it is not wanted)."""


def call_ended(record: CallRecord) -> Event:
    """``call.ended``: the finished record, as stored (without the caller's inputs)."""
    data = {
        "call_id": record.call_id,
        "flow": record.flow,
        "flow_version": record.flow_version,
        "caller": mask_caller(record.caller),
        "dnis": record.dnis,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "duration_s": record.duration_s,
        "language": record.language,
        "outcome": record.outcome,
        "end_node": record.end_node,
        "transfer_target": record.transfer_target,
        "error": record.error,
        "path": list(record.path),
        "path_at": list(record.path_at),
        "variables": dict(record.variables),
        "queue": asdict(record.queue) if record.queue is not None else None,
        "survey": asdict(record.survey) if record.survey is not None else None,
        "node": record.node,
        "box": record.box,
    }
    return Event("call.ended", record.call_id, data)


def survey_answered(call_id: str, flow: str, survey: SurveyResult) -> Event:
    """``survey.answered``: a survey about call ``call_id`` ended (completed, partial or
    unanswered; ``status`` says which)."""
    return Event("survey.answered", call_id, {"call_id": call_id, "flow": flow, **asdict(survey)})


def callback_booked(call_id: str, flow: str, queue_node: str, number: str, due_at: float) -> Event:
    """``callback.booked``: the caller of ``call_id`` asked to be called back at ``number``
    (masked) from ``due_at`` on, in the queue of ``queue_node``."""
    data = {
        "call_id": call_id,
        "flow": flow,
        "node": queue_node,
        "number": mask_caller(number),
        "due_at": due_at,
    }
    return Event("callback.booked", call_id, data)


def agent_offered(
    record: CallRecord,
    queue: str,
    reason: str,
    language: str,
    variables: dict[str, str],
    position: int = 0,
    expected_wait_s: float | None = None,
) -> Event:
    """``agent.offered``: the caller is handed to ``queue`` now (the screen-pop: why, in
    which language, the non-sensitive variables and the path so far)."""
    data = {
        "call_id": record.call_id,
        "flow": record.flow,
        "caller": mask_caller(record.caller),
        "queue": queue,
        "reason": reason,
        "language": language,
        "position": position,
        "expected_wait_s": expected_wait_s,
        "path": list(record.path),
        "path_at": list(record.path_at),
        "variables": dict(variables),
    }
    return Event("agent.offered", record.call_id, data)


def message_recorded(
    call_id: str,
    flow: str,
    node: str,
    caller: str,
    file: str,
    duration_s: float,
    language: str,
    transcript: str = "",
) -> Event:
    """``message.recorded``: the caller of ``call_id`` left a message (``file``: the WAV's
    name under the recordings directory, as the ``messages`` table keeps it)."""
    data = {
        "call_id": call_id,
        "flow": flow,
        "node": node,
        "caller": mask_caller(caller),
        "file": file,
        "duration_s": duration_s,
        "language": language,
        "transcript": transcript,
    }
    return Event("message.recorded", call_id, data)
