"""A :class:`~ivr.call.record.CallRecord` as a ``calls`` row and back, and the SQL of the writes.

The row keeps the record's plain fields as they are and its lists and dicts (path and when
each of its nodes was entered, inputs, variables, queue visit, survey) as JSON. Every write's
parameters put the ``call_id`` first: errors and the checkpoint queue are keyed on
``params[0]``.
"""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any, cast

from ivr.call.channel import readable
from ivr.call.record import (
    OUTCOMES,
    CallRecord,
    InputEvent,
    Outcome,
    QueueVisit,
    SurveyAnswer,
    SurveyResult,
)
from ivr.call.resume import ResumePoint
from ivr.errors import StoreError
from ivr.store.sql import Row

__all__ = [
    "ADDED_COLUMNS",
    "CHECKPOINT",
    "COLUMNS",
    "INSERT",
    "UPSERT",
    "Params",
    "decode",
    "encode",
    "encode_checked",
    "encode_progress",
    "encode_survey",
]

Params = tuple[Any, ...]

COLUMNS = (
    "call_id",
    "flow",
    "flow_version",
    "caller",
    "dnis",
    "started_at",
    "ended_at",
    "duration_s",
    "language",
    "path",
    "inputs",
    "outcome",
    "end_node",
    "transfer_target",
    "error",
    "variables",
    "queue",
    "survey",
    "node",
    "box",
    "recording",
    "path_at",
)
# what a column added since holds in a row journaled before it (ivr.store.replay): v6 node,
# v7 box, v8 recording, v9 path_at
ADDED_COLUMNS: dict[str, str] = {"node": "", "box": "", "recording": "", "path_at": "[]"}
_JSON_COLUMNS = ("path", "path_at", "inputs", "variables", "queue", "survey")
_PLAIN_COLUMNS = tuple(  # stored as they are in the record
    c for c in COLUMNS if c not in ("duration_s", "outcome", *_JSON_COLUMNS)
)
_COLS = ", ".join(COLUMNS)
_MARKS = ", ".join("?" * len(COLUMNS))
INSERT = f"INSERT INTO calls ({_COLS}) VALUES ({_MARKS})"
# A call another node has taken over (it resumed the call) is that node's to finish.
UPSERT = (
    f"{INSERT} ON CONFLICT(call_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:])
    + " WHERE calls.node IN (excluded.node, '')"
)

# A checkpoint saves where the caller is; the rest of the row comes with begin and finish.
# (call_id first, as in every write: errors and the checkpoint queue are keyed on params[0].)
# Never on a finished row (an earlier call that had the same id) nor on a call another node
# has taken over. ``resume`` says where another node can take the call up (ivr.call.resume).
CHECKPOINT = (
    "UPDATE calls SET language = ?2, path = ?3, inputs = ?4, end_node = ?5, resume = ?6, "
    "path_at = ?8 WHERE call_id = ?1 AND outcome IS NULL AND node IN (?7, '')"
)


def encode(record: CallRecord) -> Params:
    """A record as the parameter tuple for :data:`INSERT` (JSON for the list/dict fields)."""
    return _readable(
        (
            record.call_id,
            record.flow,
            record.flow_version,
            record.caller,
            record.dnis,
            record.started_at,
            record.ended_at,
            record.duration_s,
            record.language,
            _dumps(record.path),
            _inputs_json(record),
            record.outcome,
            record.end_node,
            record.transfer_target,
            record.error,
            _dumps(record.variables),
            _json_or_none(record.queue),
            _json_or_none(record.survey),
            record.node,
            record.box,
            record.recording,
            _dumps(record.path_at),
        )
    )


def encode_checked(record: CallRecord, op: str, final: bool) -> Params:
    """``record`` encoded, after checking it has an outcome iff ``final`` (``op`` names the
    store method in the :class:`ValueError`)."""
    if (record.outcome is not None) != final:
        state = "has no outcome" if final else "already has an outcome"
        raise ValueError(f"{op}(): call {record.call_id!r} {state}")
    return encode(record)


def encode_progress(record: CallRecord, resume: ResumePoint | None = None) -> Params:
    """The :data:`CHECKPOINT` parameters of a call in progress (``resume``: where another
    node may take it up; ``None``: nowhere)."""
    if record.outcome is not None:
        raise ValueError(f"checkpoint(): call {record.call_id!r} already has an outcome")
    return _readable(
        (
            record.call_id,
            record.language,
            _dumps(record.path),
            _inputs_json(record),
            record.end_node,
            None if resume is None else readable(resume.to_json(), in_json=True),
            record.node,
            _dumps(record.path_at),
        )
    )


def encode_survey(survey: SurveyResult) -> str:
    """The ``survey`` column of a call that has ``survey``."""
    return _dumps(_survey_dict(survey))


def decode(row: Row) -> CallRecord:
    """The record a ``SELECT *`` row of ``calls`` holds; an outcome this version does not know
    is a :class:`~ivr.errors.StoreError`."""
    outcome = row["outcome"]
    if outcome is not None and outcome not in OUTCOMES:
        raise StoreError(f"call {row['call_id']!r}: unknown outcome {outcome!r} in the database")
    return CallRecord(
        **{name: row[name] for name in _PLAIN_COLUMNS},
        path=json.loads(row["path"]),
        path_at=json.loads(row["path_at"]),
        inputs=[InputEvent(**item) for item in json.loads(row["inputs"])],
        outcome=cast("Outcome | None", outcome),
        variables=json.loads(row["variables"]),
        queue=QueueVisit(**json.loads(row["queue"])) if row["queue"] is not None else None,
        survey=_survey(row["survey"]),
    )


def _readable(params: Params) -> Params:
    """Caller text from Asterisk may hold bytes that were not UTF-8 (``surrogateescape``),
    which SQLite cannot encode: they are stored as ``\\xe9`` text. ``params[0]`` (the
    call_id, a queue key) is left as it is; the AGI server already made it plain text."""
    # (the ASCII test inline: readable() would be called for each of some 50 values a call)
    return (
        params[0],
        *(readable(p) if isinstance(p, str) and not p.isascii() else p for p in params[1:]),
    )


# One encoder for every write: json.dumps() builds a new one for each non-default option.
_encode_json = json.JSONEncoder(ensure_ascii=False).encode


def _dumps(value: object) -> str:
    return readable(_encode_json(value), in_json=True)


def _inputs_json(record: CallRecord) -> str:
    return _dumps(
        [{"node": i.node, "kind": i.kind, "value": i.value, "at_s": i.at_s} for i in record.inputs]
    )


def _json_or_none(value: QueueVisit | SurveyResult | None) -> str | None:
    if value is None:
        return None
    return _dumps(_survey_dict(value) if isinstance(value, SurveyResult) else _plain(value))


# What dataclasses.asdict() gives for these plain records, without its deep copy of each value.
_FIELDS = {
    cls: tuple(f.name for f in fields(cls)) for cls in (QueueVisit, SurveyAnswer, SurveyResult)
}


def _plain(value: QueueVisit | SurveyAnswer | SurveyResult) -> dict[str, Any]:
    return {name: getattr(value, name) for name in _FIELDS[type(value)]}


def _survey_dict(survey: SurveyResult) -> dict[str, Any]:
    data = _plain(survey)
    data["answers"] = [_plain(answer) for answer in survey.answers]
    return data


def _survey(text: str | None) -> SurveyResult | None:
    if text is None:
        return None
    data = json.loads(text)
    data["answers"] = [SurveyAnswer(**a) for a in data["answers"]]
    return SurveyResult(**data)
