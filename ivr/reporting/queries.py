"""Query-string parsing and record reads for the admin API (no aiohttp in here).

Every parser raises :class:`BadQuery` (answered 400) with a message saying what is accepted.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from ivr.call.record import MASK, OUTCOMES, CallRecord, InputEvent, Outcome, mask_number
from ivr.errors import BadQuery
from ivr.flow import model as m
from ivr.flow.queue_node import QueueNode
from ivr.reporting.kpi import parse_bound, time_zone
from ivr.store.records import RecordStore

PAGE = 2000  # records per read of the store
MAX_RANGE_RECORDS = 200_000  # KPIs and CSV exports read at most this many records
MAX_SURVEY_SCAN = 50_000  # /api/surveys looks at most this far back
MAX_TEXT = 200  # longest flow name or time zone accepted in a query


class TooMany(BadQuery):
    """The range holds more records than one request may read (HTTP 400)."""


def text(query: Mapping[str, str], name: str) -> str | None:
    value = query.get(name)
    if value is None or value == "":
        return None
    if len(value) > MAX_TEXT or not value.isprintable():
        raise BadQuery(f"{name}: at most {MAX_TEXT} printable characters")
    return value


def integer(query: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    value = query.get(name)
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except ValueError:
        raise BadQuery(f"{name} must be a whole number from {lo} to {hi}, not {value!r}") from None
    if not lo <= n <= hi:
        raise BadQuery(f"{name} must be from {lo} to {hi}, not {n}")
    return n


def flag(query: Mapping[str, str], name: str) -> bool:
    value = query.get(name, "").lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("", "0", "false", "no"):
        return False
    raise BadQuery(f"{name} must be 1 or 0, not {value!r}")


def outcome(query: Mapping[str, str]) -> Outcome | None:
    value = query.get("outcome") or None
    if value is not None and value not in OUTCOMES:
        raise BadQuery(f"outcome must be one of {', '.join(OUTCOMES)}, not {value!r}")
    return value


def zone(query: Mapping[str, str]) -> str:
    tz = text(query, "tz") or "UTC"
    try:
        time_zone(tz)
    except ValueError as exc:
        raise BadQuery(f"tz: {exc}") from None
    return tz


def bound(query: Mapping[str, str], name: str, tz: str, *, end: bool = False) -> float | None:
    """``since``/``until``: Unix seconds, ``YYYY-MM-DD`` in ``tz`` (``until`` includes that
    day) or an ISO 8601 date-time (naive ones in ``tz``)."""
    value = text(query, name)
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise BadQuery(f"{name} must be a finite Unix time, not {value!r}")
        return seconds
    try:
        return parse_bound(value, tz, end=end)
    except (ValueError, OverflowError) as exc:
        raise BadQuery(f"{name}: {exc}; or Unix seconds") from None


def time_range(query: Mapping[str, str], tz: str) -> tuple[float | None, float | None]:
    since = bound(query, "since", tz)
    until = bound(query, "until", tz, end=True)
    if since is not None and until is not None and since >= until:
        raise BadQuery("since must be before until")
    return since, until


async def pages(
    store: RecordStore,
    *,
    flow: str | None = None,
    since: float | None = None,
    until: float | None = None,
) -> AsyncIterator[list[CallRecord]]:
    """The records in range, newest first, in pages of :data:`PAGE`, each once.

    Pages overlap by one instant (``until`` is exclusive) and ids already given are dropped,
    so calls sharing a ``started_at`` across a page boundary are neither lost nor repeated.
    """
    seen: set[str] = set()
    limit, upper = PAGE, until
    while True:
        page = await store.recent(limit=limit, flow=flow, since=since, until=upper)
        fresh = [r for r in page if r.call_id not in seen]
        seen.update(r.call_id for r in fresh)
        if fresh:
            yield fresh
        if len(page) < limit:
            return
        if fresh:
            upper = math.nextafter(page[-1].started_at, math.inf)
        else:  # a whole page of one instant, all seen already: read more at once
            limit *= 2


async def records_in_range(
    store: RecordStore,
    *,
    flow: str | None,
    since: float | None,
    until: float | None,
) -> list[CallRecord]:
    """Every record in range; :class:`TooMany` past :data:`MAX_RANGE_RECORDS`."""
    out: list[CallRecord] = []
    async for page in pages(store, flow=flow, since=since, until=until):
        out += page
        if len(out) > MAX_RANGE_RECORDS:
            raise TooMany(
                f"more than {MAX_RANGE_RECORDS} calls in this range; narrow it "
                "(since/until/flow) or use `ivr report` on the database"
            )
    return out


def masked_record(record: CallRecord, flow: m.Flow | None) -> dict[str, Any]:
    """A stored record for the API, masked again by the flow loaded now: records keep
    what the server that wrote them masked, which may be less (a variable marked sensitive
    later, a record from before callback numbers were masked). Variables the flow marks
    sensitive and inputs at its sensitive collect nodes show as ``***``; a number keyed at
    a queue node (a callback number) shows its first and last digits only."""
    data = record.to_dict()
    if flow is None:
        return data
    data["variables"] = {k: MASK if k in flow.sensitive else v for k, v in record.variables.items()}
    data["inputs"] = [asdict(_masked_input(i, flow.nodes.get(i.node))) for i in record.inputs]
    return data


def _masked_input(event: InputEvent, node: m.FlowNode | None) -> InputEvent:
    if isinstance(node, m.CollectNode) and node.sensitive and event.value:
        return InputEvent(event.node, event.kind, MASK, event.at_s)
    if isinstance(node, QueueNode) and event.kind == "dtmf" and len(event.value) > 1:
        return InputEvent(event.node, event.kind, mask_number(event.value), event.at_s)
    return event


def survey_row(record: CallRecord) -> dict[str, Any]:
    """A record's survey for the API: the call's id, flow and start, then the survey."""
    assert record.survey is not None
    return {
        "call_id": record.call_id,
        "flow": record.flow,
        "started_at": record.started_at,
        **asdict(record.survey),
    }


async def recent_surveys(
    store: RecordStore, *, flow: str | None, limit: int
) -> list[dict[str, Any]]:
    """Up to ``limit`` surveys of the newest calls (looking back :data:`MAX_SURVEY_SCAN`)."""
    out: list[dict[str, Any]] = []
    scanned = 0
    async for page in pages(store, flow=flow):
        for record in page:
            if record.survey is not None:
                out.append(survey_row(record))
                if len(out) >= limit:
                    return out
        scanned += len(page)
        if scanned >= MAX_SURVEY_SCAN:
            break
    return out


def iso(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _cell(value: object) -> str:
    """CSV cell text; a leading = + - @ is quoted so spreadsheets never run it as a formula."""
    s = "" if value is None else str(value)
    return "'" + s if s[:1] in ("=", "+", "-", "@", "\t", "\r") else s


def surveys_csv(records: Iterable[CallRecord]) -> str:
    """One row per survey: call_id, flow, started_at and at (ISO, UTC), survey, mode,
    status, satisfaction_question, satisfaction (its answer), then one column per question
    id (answers: 1-5, or 1 yes / 0 no; empty: no valid answer)."""
    surveyed = [r for r in records if r.survey is not None]
    questions: dict[str, None] = {}
    for r in surveyed:
        assert r.survey is not None
        questions.update(dict.fromkeys(a.question for a in r.survey.answers))
    head = [
        "call_id",
        "flow",
        "started_at",
        "at",
        "survey",
        "mode",
        "status",
        "satisfaction_question",
        "satisfaction",
    ]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(head + [q for q in questions if q not in head])
    for r in surveyed:
        s = r.survey
        assert s is not None
        answers = {a.question: a.value for a in s.answers}
        row = [
            r.call_id,
            r.flow,
            iso(r.started_at),
            iso(s.at or None),
            s.survey,
            s.mode,
            s.status,
            s.satisfaction,
            answers.get(s.satisfaction),
        ]
        writer.writerow(
            [_cell(v) for v in row] + [_cell(answers.get(q)) for q in questions if q not in head]
        )
    return buf.getvalue()
