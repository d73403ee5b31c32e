"""Outbound calls placed over AMI: queued callbacks and outbound post-call surveys.

Every outbound call is a row in the ``outbound`` table first (:class:`Outbound` books it),
so it survives a restart and is never placed twice:

- ``UNIQUE (kind, call_id)``: one callback and one survey per call at most;
- the attempt is written (``dialing``, attempts + 1) **before** ``Originate`` is sent, and a
  lost AMI answer is never re-sent: the row waits ``retry_after_s`` like a failed attempt;
- the booking, the attempt and the answer are committed with ``synchronous=FULL`` (synced:
  they survive a power loss, where the store's usual WAL commits may not);
- a restart turns rows left in ``dialing`` into a counted attempt, retried later; a row
  left ``answered`` reached its callee and is closed (``interrupted``), never dialled again.

The :class:`Dialer` wakes every ``poll_s`` and, target by target (a callback offer, a survey,
a campaign; callbacks and surveys first), picks due rows within the target's calling hours
and under its ``max_concurrent``, so rows that cannot go out now hide no others. It
originates ``channel`` into the dialplan context ``ivr-outbound``, which runs
``agi://.../<flow>?job=<id>``; the app then runs the survey (or puts the callback in the
queue ahead of later callers) and closes the row. A callback or survey keeps the hours and
limit it was booked with; one whose flow, queue node or survey is gone is ``held`` with a
reason instead of dialled, and so is a campaign call whose flow is gone (with no flow loaded
at all, jobs wait instead). An answered call that asks for another flow than its job's closes
the job as ``failed``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from ivr.call.record import mask_number
from ivr.clock import Clock, system_clock
from ivr.flow import model as m
from ivr.flow.hours import BusinessHours, Holiday, parse_hours
from ivr.flow.numbers import NUMBER, CallPolicy, Refusal
from ivr.runtime.context import BookedBy
from ivr.store.records import RecordStore

log = logging.getLogger("ivr.outbound.jobs")

CONTEXT = "ivr-outbound"  # asterisk-conf/extensions.conf

# Work on many jobs (a big campaign's) goes in transactions of BATCH_ROWS rows (~40 ms of the
# write lock), PAUSE_S apart: SQLite's busy handler retries a waiting writer (ivr serve's
# call records) every 1-25 ms in its first 128 ms, so it gets in between two of them.
BATCH_ROWS = 10_000
PAUSE_S = 0.03


@dataclass(frozen=True)
class Job:
    id: int
    kind: str  # "callback" | "survey" | "campaign"
    call_id: str
    flow: str
    target: str
    number: str
    channel: str
    caller_id: str
    attempts: int
    max_attempts: int
    retry_after_s: float
    status: str
    variables_json: str = "{}"
    hours_json: str | None = None  # the calling hours booked with ("" any hour; None: see rules)
    max_concurrent: int | None = None  # booked with (None: a campaign's, or booked before v4)
    reason: str = ""  # why it is held (or failed without running its flow)
    last_result: str = ""

    @property
    def variables(self) -> dict[str, str]:
        data = json.loads(self.variables_json)
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


@dataclass(frozen=True)
class Target:
    """What due jobs are placed for: one callback offer, survey or campaign, with the rules
    its jobs were booked with (None: not kept on the job). The dialer selects per target."""

    kind: str
    flow: str
    target: str  # queue node id, survey name or campaign name
    hours_json: str | None = None
    max_concurrent: int | None = None

    @property
    def key(self) -> Key:
        return self.kind, self.flow, self.target


Key = tuple[str, str, str]  # kind, flow, target: calls in progress are counted per key
_IN_TARGET = "kind = ? AND flow = ? AND target = ? AND hours IS ? AND max_concurrent IS ?"


@dataclass(frozen=True)
class Campaign:
    """An outbound campaign's settings (table ``campaigns``)."""

    name: str
    flow: str
    rate: float
    max_concurrent: int
    hours: BusinessHours | None
    timezone: str
    state: str  # "active" | "paused"

    @property
    def target(self) -> Target:
        return Target("campaign", self.flow, self.name)


@dataclass(frozen=True)
class Rules:
    """When, and how many at once, calls of one callback offer, survey or campaign go out."""

    max_concurrent: int
    hours: BusinessHours | None  # None: any hour

    def open_at(self, now: float) -> bool:
        return self.hours is None or self.hours.status(datetime.fromtimestamp(now, UTC)) == "open"


CLOSED = Rules(0, None)

Offer = m.CallbackOffer | m.OutboundSurvey


def hours_to_json(hours: BusinessHours | None) -> str:
    """Calling hours as a job keeps them (``""``: any hour)."""
    if hours is None:
        return ""
    holidays = [[h.first.isoformat(), h.last.isoformat(), h.name] for h in hours.holidays]
    return json.dumps({"timezone": hours.zone.key, "week": hours.week, "holidays": holidays})


def hours_from_json(text: str) -> BusinessHours | None:
    """The inverse of :func:`hours_to_json`."""
    if not text:
        return None
    data = json.loads(text)
    week = tuple(tuple((int(start), int(end)) for start, end in day) for day in data["week"])
    holidays = tuple(
        Holiday(date.fromisoformat(first), date.fromisoformat(last), name)
        for first, last, name in data["holidays"]
    )
    return BusinessHours(ZoneInfo(data["timezone"]), week, holidays)


# OriginateResponse Reason codes (Asterisk's AST_CONTROL_*)
REASONS = {
    "0": "failed",
    "1": "hung up",
    "3": "no answer",
    "4": "answered",
    "5": "busy",
    "8": "congestion",
}


# A channel as Originate gets it: one line of safe characters (\Z: `$` allows a newline)
CHANNEL = re.compile(r"\A(PJSIP|SIP|IAX2|Local|DAHDI)/[A-Za-z0-9_.@:+-]+\Z")
DAY_S = 86400.0  # the number policy's daily limits look back this far


def dial_string(pattern: str, number: str) -> str:
    """``pattern`` with ``{number}``; the number must be digits (an optional leading +), the
    result one channel line (the flow loader checked the pattern; this is the last guard)."""
    if not NUMBER.match(number):
        raise ValueError(f"not a number we may dial: {mask_number(number)!r}")
    channel = pattern.replace("{number}", number)
    if not CHANNEL.match(channel):
        raise ValueError(f"not a channel we may dial: {pattern!r}")
    return channel


class Outbound:
    """Books and tracks outbound calls in the record store (the interpreter's OutboundPort)."""

    def __init__(self, store: RecordStore, clock: Clock = system_clock) -> None:
        self.store = store
        self.clock = clock

    # -- booking (OutboundPort)
    async def book_callback(
        self, by: BookedBy, node: m.QueueNode, number: str, due_in_s: float, policy: CallPolicy
    ) -> Refusal | None:
        assert node.callback is not None
        return await self._book("callback", by, node.id, number, node.callback, due_in_s, policy)

    async def book_survey(
        self, by: BookedBy, survey: m.SurveySpec, policy: CallPolicy
    ) -> Refusal | None:
        assert survey.outbound is not None
        o = survey.outbound
        number = by.caller
        if await self.opted_out(number):
            return "opted_out"
        return await self._book("survey", by, survey.name, number, o, o.delay_s, policy)

    async def _book(
        self,
        kind: str,
        by: BookedBy,
        target: str,
        number: str,
        offer: Offer,
        due_in_s: float,
        policy: CallPolicy,
    ) -> Refusal | None:
        """One job, with the offer's calling hours and limit (a later edit of the flow does
        not change what the caller was promised), unless ``policy`` refuses the number. The
        policy is checked here again, whatever the caller of this checked, and the daily
        limits are counted in the transaction that inserts: two calls at once cannot both
        take the last booking of the day."""
        call_id = by.call_id
        refusal = policy.check(number)
        if refusal is not None:
            return refusal
        channel = dial_string(offer.dial, number)
        caller_id = offer.caller_id if isinstance(offer, m.OutboundSurvey) else ""
        booked_by = by.caller.removeprefix("+")
        now = self.clock()

        def insert(conn: sqlite3.Connection) -> Refusal | bool:
            over = _over_limit(conn, kind, booked_by, number, policy, now)
            if over is not None:
                return over
            cursor = conn.execute(
                "INSERT OR IGNORE INTO outbound (kind, call_id, flow, target, number, channel,"
                " caller_id, due_at, max_attempts, retry_after_s, created_at, updated_at,"
                " hours, max_concurrent, booked_by)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    kind,
                    call_id,
                    by.flow,
                    target,
                    number,
                    channel,
                    caller_id,
                    now + due_in_s,
                    offer.attempts,
                    offer.retry_after_s,
                    now,
                    now,
                    hours_to_json(offer.hours),
                    offer.max_concurrent,
                    booked_by,
                ),
            )
            return cursor.rowcount == 1

        booked = await self.store.transaction(insert, durable=True)  # promised to the caller
        if isinstance(booked, str):
            log.info("[%s] %s to %s refused: %s", call_id, kind, mask_number(number), booked)
            return booked
        log.info(
            "[%s] %s to %s %s (due in %.0f s)",
            call_id,
            kind,
            mask_number(number),
            "booked" if booked else "already booked",
            due_in_s,
        )
        return None

    async def campaigns(self) -> dict[str, Campaign]:
        rows = await self.store.transaction(
            lambda c: c.execute(
                "SELECT name, flow, rate, max_concurrent, hours, timezone, state FROM campaigns"
            ).fetchall()
        )
        out = {}
        for name, flow, rate, limit, hours, tz, state in rows:
            parsed = parse_hours(json.loads(hours), [], tz) if hours else None
            out[name] = Campaign(name, flow, float(rate), int(limit), parsed, tz, state)
        return out

    # -- opt-out list
    async def opt_out(self, number: str) -> None:
        await self.store.transaction(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO opt_out (number, at) VALUES (?, ?)", (number, self.clock())
            )
        )

    async def opted_out(self, number: str) -> bool:
        return bool(
            await self.store.transaction(
                lambda c: c.execute("SELECT 1 FROM opt_out WHERE number = ?", (number,)).fetchone()
            )
        )

    # -- the dialer's side
    async def due(self, limit: int = 20) -> list[Job]:
        """Due pending jobs of every kind, oldest first (for tools; the dialer selects per
        target, so that jobs it cannot place yet hide no others)."""
        now = self.clock()
        rows = await self.store.transaction(
            lambda c: c.execute(
                f"SELECT {_JOB_COLUMNS} FROM outbound WHERE status = 'pending' AND due_at <= ?"
                " ORDER BY due_at, id LIMIT ?",
                (now, limit),
            ).fetchall()
        )
        return [Job(*row) for row in rows]

    async def due_targets(self) -> list[Target]:
        """Callback offers and surveys with jobs due now, one per set of booked rules, the
        longest waiting first (campaigns are listed by :meth:`campaigns`)."""
        now = self.clock()
        rows = await self.store.transaction(
            lambda c: c.execute(
                "SELECT kind, flow, target, hours, max_concurrent FROM outbound"
                " WHERE status = 'pending' AND kind IN ('callback', 'survey') AND due_at <= ?"
                " GROUP BY kind, flow, target, hours, max_concurrent ORDER BY MIN(due_at)",
                (now,),
            ).fetchall()
        )
        return [Target(*row) for row in rows]

    async def due_in(self, target: Target, limit: int) -> list[Job]:
        """Up to ``limit`` due jobs of ``target``, oldest first."""
        now = self.clock()
        rows = await self.store.transaction(
            lambda c: c.execute(
                f"SELECT {_JOB_COLUMNS} FROM outbound WHERE status = 'pending' AND {_IN_TARGET}"
                " AND due_at <= ? ORDER BY due_at, id LIMIT ?",
                (*_target_params(target), now, limit),
            ).fetchall()
        )
        return [Job(*row) for row in rows]

    async def in_progress(self) -> dict[Key, int]:
        """Calls ringing or answered (not done yet), per kind, flow and target."""
        rows = await self.store.transaction(
            lambda c: c.execute(
                "SELECT kind, flow, target, COUNT(*) FROM outbound"
                " WHERE status IN ('dialing', 'answered') GROUP BY kind, flow, target"
            ).fetchall()
        )
        return {(str(kind), str(flow), str(target)): int(n) for kind, flow, target, n in rows}

    async def get(self, job_id: int) -> Job | None:
        row = await self.store.transaction(
            lambda c: c.execute(
                f"SELECT {_JOB_COLUMNS} FROM outbound WHERE id = ?", (job_id,)
            ).fetchone()
        )
        return Job(*row) if row else None

    async def jobs(self, status: str | None = None) -> list[Job]:
        """Every job (or those with ``status``), oldest first."""
        where, params = (" WHERE status = ?", (status,)) if status else ("", ())
        rows = await self.store.transaction(
            lambda c: c.execute(
                f"SELECT {_JOB_COLUMNS} FROM outbound{where} ORDER BY id", params
            ).fetchall()
        )
        return [Job(*row) for row in rows]

    async def hold(self, target: Target, reason: str) -> int:
        """Keep due jobs of ``target`` from being dialled (its flow or node is gone), saying
        why; how many were held. At most BATCH_ROWS at once: the dialer's next round holds
        more (it dials none of them meanwhile)."""
        now = self.clock()
        held = int(
            await self.store.transaction(
                lambda c: (
                    c.execute(
                        "UPDATE outbound SET status = 'held', reason = ?, updated_at = ?"
                        " WHERE id IN (SELECT id FROM outbound WHERE status = 'pending'"
                        f" AND {_IN_TARGET} AND due_at <= ? LIMIT ?)",
                        (reason, now, *_target_params(target), now, BATCH_ROWS),
                    ).rowcount
                )
            )
        )
        if held:
            log.warning(
                "%d %s calls of %s/%s held: %s",
                held,
                target.kind,
                target.flow,
                target.target,
                reason,
            )
        return held

    async def release_campaign(self, name: str) -> int:
        """Campaign ``name``'s held calls back to pending, due now; how many."""
        return await self._release("kind = 'campaign' AND target = ?", (name,))

    async def release_jobs(self, ids: Sequence[int]) -> int:
        """These jobs back to pending, due now, those that are held; how many."""
        marks = ", ".join("?" * len(ids))
        return await self._release(f"id IN ({marks})", tuple(ids)) if ids else 0

    async def _release(self, where: str, params: tuple[object, ...]) -> int:
        """Held jobs matching ``where`` back to pending, due now (held jobs were due already:
        their retry delay has passed), BATCH_ROWS at a time, PAUSE_S apart."""
        released = 0
        while True:
            n = await self.store.transaction(
                functools.partial(_release_batch, where=where, params=params, now=self.clock())
            )
            released += n
            if n < BATCH_ROWS:
                return released
            await asyncio.sleep(PAUSE_S)  # a waiting writer gets the lock

    async def start_attempt(self, job: Job) -> bool:
        """Mark the job ``dialing`` (attempt + 1) before dialling; False if it moved on."""
        now = self.clock()
        return bool(
            await self.store.transaction(
                lambda c: (
                    c.execute(
                        "UPDATE outbound SET status = 'dialing', attempts = attempts + 1,"
                        " updated_at = ? WHERE id = ? AND status = 'pending'",
                        (now, job.id),
                    ).rowcount
                ),
                durable=True,
            )
        )  # a lost mark would dial the same customer again after a restart

    async def attempt_failed(self, job: Job, result: str) -> None:
        """No answer, busy, or an unknown fate: retry later, or give up after the last."""
        now = self.clock()
        await self.store.transaction(
            lambda c: c.execute(
                "UPDATE outbound SET status = CASE WHEN attempts >= max_attempts THEN 'failed'"
                " ELSE 'pending' END, due_at = ?, last_result = ?, updated_at = ?"
                " WHERE id = ? AND status = 'dialing'",
                (now + job.retry_after_s, result, now, job.id),
            )
        )

    async def answered(self, job_id: int) -> Job | None:
        """The callee answered and the AGI call arrived: claim the job (once)."""
        now = self.clock()
        claimed = await self.store.transaction(
            lambda c: (
                c.execute(
                    "UPDATE outbound SET status = 'answered', last_result = 'answered',"
                    " updated_at = ? WHERE id = ? AND status = 'dialing'",
                    (now, job_id),
                ).rowcount
            ),
            durable=True,
        )  # lost, recover() would take the job for unanswered and re-dial
        return await self.get(job_id) if claimed else None

    async def failed(self, job_id: int, result: str, reason: str) -> None:
        """Close an answered job that could not run its flow (the callee was reached: never
        dialled again by itself)."""
        now = self.clock()
        await self.store.transaction(
            lambda c: c.execute(
                "UPDATE outbound SET status = 'failed', last_result = ?, reason = ?, updated_at = ?"
                " WHERE id = ? AND status = 'answered'",
                (result, reason, now, job_id),
            )
        )

    async def done(self, job_id: int, result: str) -> None:
        now = self.clock()
        await self.store.transaction(
            lambda c: c.execute(
                "UPDATE outbound SET status = 'done', last_result = ?, updated_at = ? WHERE id = ?",
                (result, now, job_id),
            )
        )

    async def recover(self) -> int:
        """At start-up: attempts cut off by the last stop count as failed attempts (how many
        will be retried). An ``answered`` job reached its callee: it is closed, never re-dialled
        (a second call to the same customer is worse than a cut-off one)."""
        now = self.clock()

        def close_and_requeue(conn: sqlite3.Connection) -> tuple[int, int]:
            closed = conn.execute(
                "UPDATE outbound SET status = 'done', last_result = 'interrupted',"
                " updated_at = ? WHERE status = 'answered'",
                (now,),
            ).rowcount
            requeued = conn.execute(
                "UPDATE outbound SET status = CASE WHEN attempts >= max_attempts THEN 'failed'"
                " ELSE 'pending' END, due_at = ? + retry_after_s, last_result = 'interrupted',"
                " updated_at = ? WHERE status = 'dialing'",
                (now, now),
            ).rowcount
            return closed, requeued

        closed, requeued = await self.store.transaction(close_and_requeue)
        if closed:
            log.warning(
                "%d answered outbound calls were cut off by the last stop: closed as "
                "'interrupted', not called again",
                closed,
            )
        return int(requeued)


def _over_limit(
    conn: sqlite3.Connection, kind: str, booked_by: str, number: str, policy: CallPolicy, now: float
) -> Refusal | None:
    """The daily limit ``kind`` bookings by this caller or to this number would pass, if
    any: rows created in the last 24 h by the injected clock (index outbound_kind_created)."""
    since = now - DAY_S
    by_caller = conn.execute(
        "SELECT COUNT(*) FROM outbound WHERE kind = ? AND created_at > ? AND booked_by = ?",
        (kind, since, booked_by),
    ).fetchone()[0]
    if by_caller >= policy.per_caller_per_day:
        return "caller_limit"
    bare = number.removeprefix("+")
    to_number = conn.execute(
        "SELECT COUNT(*) FROM outbound WHERE kind = ? AND created_at > ? AND number IN (?, ?)",
        (kind, since, bare, "+" + bare),
    ).fetchone()[0]
    return "number_limit" if to_number >= policy.per_number_per_day else None


def _release_batch(
    conn: sqlite3.Connection, *, where: str, params: tuple[object, ...], now: float
) -> int:
    return int(
        conn.execute(
            "UPDATE outbound SET status = 'pending', reason = '', due_at = ?, updated_at = ?"
            f" WHERE id IN (SELECT id FROM outbound WHERE status = 'held' AND {where} LIMIT ?)",
            (now, now, *params, BATCH_ROWS),
        ).rowcount
    )


def _target_params(t: Target) -> tuple[object, ...]:
    """The parameters of :data:`_IN_TARGET`."""
    return t.kind, t.flow, t.target, t.hours_json, t.max_concurrent


_JOB_COLUMNS = (
    "id, kind, call_id, flow, target, number, channel, caller_id, attempts,"
    " max_attempts, retry_after_s, status, variables, hours, max_concurrent,"
    " reason, last_result"
)
