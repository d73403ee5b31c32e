"""The SQL of outbound jobs (table ``outbound``: callbacks, surveys, campaign calls) and of
the opt-out list (table ``opt_out``).

Each method of :class:`JobStore` is one transaction on the record store's connection
(:meth:`~ivr.store.records.RecordStore.transaction`); it takes and returns plain data, and
the caller (:class:`ivr.outbound.jobs.Outbound`) decides what to book, when and how much:
it passes the instant (``now``), the daily limits and the batch sizes. The writes that
promise something to a callee (the booking, the attempt, the answer) are committed with
``synchronous=FULL`` (``durable=True``): they survive a power loss.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ivr.store.records import RecordStore
from ivr.store.sql import Connection

__all__ = ["BookResult", "Booking", "DailyLimits", "Job", "JobStore", "Key", "Target"]


@dataclass(frozen=True)
class Job:
    """One row of the ``outbound`` table."""

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


@dataclass(frozen=True)
class Booking:
    """A callback or survey job to insert, as the caller was promised it."""

    kind: str  # "callback" | "survey"
    call_id: str
    flow: str
    target: str
    number: str
    channel: str
    caller_id: str
    due_at: float
    max_attempts: int
    retry_after_s: float
    hours_json: str  # "" any hour
    max_concurrent: int
    booked_by: str  # the caller's number without a leading +


@dataclass(frozen=True)
class DailyLimits:
    """At most ``per_caller`` bookings of a kind by one caller and ``per_number`` to one
    number among the rows created after ``since``."""

    per_caller: int
    per_number: int
    since: float


BookResult = Literal["booked", "already_booked", "caller_limit", "number_limit"]

IN_TARGET = (  # the jobs of one Target: with target_params(target)
    "kind = ? AND flow = ? AND target = ?"
    " AND hours IS NOT DISTINCT FROM ? AND max_concurrent IS NOT DISTINCT FROM ?"
)
MARK_DIALING = (  # a pending job's next attempt starts: (node, now, id)
    "UPDATE outbound SET status = 'dialing', attempts = attempts + 1, node = ?, updated_at = ?"
    " WHERE id = ? AND status = 'pending'"
)
JOB_COLUMNS = (
    "id, kind, call_id, flow, target, number, channel, caller_id, attempts,"
    " max_attempts, retry_after_s, status, variables, hours, max_concurrent,"
    " reason, last_result"
)


class JobStore:
    """The ``outbound`` and ``opt_out`` tables in ``records``' database."""

    def __init__(self, records: RecordStore) -> None:
        self.records = records

    # -- booking
    async def book(self, booking: Booking, limits: DailyLimits, now: float) -> BookResult:
        """Insert ``booking`` (created ``now``) unless it would pass ``limits``: counted in
        the transaction that inserts, so two calls at once cannot both take the last booking
        of the day. ``already_booked``: the call has this kind of job already."""

        def insert(conn: Connection) -> BookResult:
            over = _over_limit(conn, booking, limits)
            if over is not None:
                return over
            cursor = conn.execute(
                "INSERT INTO outbound (kind, call_id, flow, target, number, channel,"
                " caller_id, due_at, max_attempts, retry_after_s, created_at, updated_at,"
                " hours, max_concurrent, booked_by)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (
                    booking.kind,
                    booking.call_id,
                    booking.flow,
                    booking.target,
                    booking.number,
                    booking.channel,
                    booking.caller_id,
                    booking.due_at,
                    booking.max_attempts,
                    booking.retry_after_s,
                    now,
                    now,
                    booking.hours_json,
                    booking.max_concurrent,
                    booking.booked_by,
                ),
            )
            return "booked" if cursor.rowcount == 1 else "already_booked"

        return await self.records.transaction(insert, durable=True)  # promised to the caller

    # -- opt-out list
    async def opt_out(self, number: str, now: float) -> None:
        """Put ``number`` on the opt-out list (again: at ``now``)."""
        await self.records.transaction(
            lambda c: c.execute(
                "INSERT INTO opt_out (number, at) VALUES (?, ?)"
                " ON CONFLICT (number) DO UPDATE SET at = excluded.at",
                (number, now),
            )
        )

    async def opted_out(self, number: str) -> bool:
        """Whether ``number`` is on the opt-out list."""
        return bool(
            await self.records.transaction(
                lambda c: c.execute("SELECT 1 FROM opt_out WHERE number = ?", (number,)).fetchone()
            )
        )

    # -- reading jobs
    async def due(self, now: float, limit: int) -> list[Job]:
        """Pending jobs due at ``now``, of every kind, oldest first."""
        rows = await self.records.transaction(
            lambda c: c.execute(
                f"SELECT {JOB_COLUMNS} FROM outbound WHERE status = 'pending' AND due_at <= ?"
                " ORDER BY due_at, id LIMIT ?",
                (now, limit),
            ).fetchall()
        )
        return [Job(*row) for row in rows]

    async def any_due(self, now: float) -> bool:
        """Whether any job waits to be placed at ``now`` (one indexed read, no write lock:
        the dialler asks it every round and does the rest only when the answer is yes)."""
        rows = await self.records.read(
            "SELECT EXISTS (SELECT 1 FROM outbound WHERE status = 'pending' AND due_at <= ?)",
            (now,),
        )
        return bool(rows[0][0])

    async def due_targets(self, now: float) -> list[Target]:
        """Callback offers and surveys with jobs due at ``now``, one per set of booked
        rules, the longest waiting first."""
        rows = await self.records.transaction(
            lambda c: c.execute(
                "SELECT kind, flow, target, hours, max_concurrent FROM outbound"
                " WHERE status = 'pending' AND kind IN ('callback', 'survey') AND due_at <= ?"
                " GROUP BY kind, flow, target, hours, max_concurrent ORDER BY MIN(due_at)",
                (now,),
            ).fetchall()
        )
        return [Target(*row) for row in rows]

    async def in_progress(self) -> dict[Key, int]:
        """Calls ringing or answered (not done yet), per kind, flow and target."""
        rows = await self.records.transaction(
            lambda c: c.execute(
                "SELECT kind, flow, target, COUNT(*) FROM outbound"
                " WHERE status IN ('dialing', 'answered') GROUP BY kind, flow, target"
            ).fetchall()
        )
        return {(str(kind), str(flow), str(target)): int(n) for kind, flow, target, n in rows}

    async def get(self, job_id: int) -> Job | None:
        """Job ``job_id``, if there is one."""
        row = await self.records.transaction(
            lambda c: c.execute(
                f"SELECT {JOB_COLUMNS} FROM outbound WHERE id = ?", (job_id,)
            ).fetchone()
        )
        return Job(*row) if row else None

    async def jobs(self, status: str | None = None) -> list[Job]:
        """Every job (or those with ``status``), oldest first."""
        where, params = (" WHERE status = ?", (status,)) if status else ("", ())
        rows = await self.records.transaction(
            lambda c: c.execute(
                f"SELECT {JOB_COLUMNS} FROM outbound{where} ORDER BY id", params
            ).fetchall()
        )
        return [Job(*row) for row in rows]

    # -- held jobs
    async def hold(self, target: Target, reason: str, now: float, limit: int) -> int:
        """Up to ``limit`` jobs of ``target`` due at ``now`` to ``held``, saying why; how many."""
        return int(
            await self.records.transaction(
                lambda c: (
                    c.execute(
                        "UPDATE outbound SET status = 'held', reason = ?, updated_at = ?"
                        " WHERE id IN (SELECT id FROM outbound WHERE status = 'pending'"
                        f" AND {IN_TARGET} AND due_at <= ? LIMIT ?)",
                        (reason, now, *target_params(target), now, limit),
                    ).rowcount
                )
            )
        )

    async def release_campaign(self, name: str, now: float, limit: int) -> int:
        """Up to ``limit`` held calls of campaign ``name`` back to pending, due ``now``."""
        return await self._release("kind = 'campaign' AND target = ?", (name,), now, limit)

    async def release_jobs(self, ids: Sequence[int], now: float, limit: int) -> int:
        """Up to ``limit`` of these jobs, those that are held, back to pending, due ``now``."""
        marks = ", ".join("?" * len(ids))
        return await self._release(f"id IN ({marks})", tuple(ids), now, limit) if ids else 0

    async def _release(self, where: str, params: tuple[object, ...], now: float, limit: int) -> int:
        return int(
            await self.records.transaction(
                lambda c: (
                    c.execute(
                        "UPDATE outbound SET status = 'pending', reason = '', due_at = ?,"
                        " updated_at = ? WHERE id IN (SELECT id FROM outbound"
                        f" WHERE status = 'held' AND {where} LIMIT ?)",
                        (now, now, *params, limit),
                    ).rowcount
                )
            )
        )

    # -- a job's attempts
    async def start_attempt(self, job_id: int, now: float) -> bool:
        """Mark a pending job ``dialing`` (attempt + 1), synced; False if it moved on."""
        return bool(
            await self.records.transaction(
                lambda c: c.execute(MARK_DIALING, (self.records.node, now, job_id)).rowcount,
                durable=True,
            )
        )  # a lost mark would dial the same customer again after a restart

    async def attempt_failed(self, job_id: int, result: str, retry_at: float, now: float) -> None:
        """A dialing job back to pending, due ``retry_at``, or ``failed`` after its last
        attempt."""
        await self.records.transaction(
            lambda c: c.execute(
                "UPDATE outbound SET status = CASE WHEN attempts >= max_attempts THEN 'failed'"
                " ELSE 'pending' END, due_at = ?, last_result = ?, updated_at = ?"
                " WHERE id = ? AND status = 'dialing'",
                (retry_at, result, now, job_id),
            )
        )

    async def answered(self, job_id: int, now: float) -> bool:
        """Claim a dialing job as ``answered`` (once) for the node whose call it is now,
        synced; False if it was not dialing."""
        return bool(
            await self.records.transaction(
                lambda c: (
                    c.execute(
                        "UPDATE outbound SET status = 'answered', last_result = 'answered',"
                        " node = ?, updated_at = ? WHERE id = ? AND status = 'dialing'",
                        (self.records.node, now, job_id),
                    ).rowcount
                ),
                durable=True,
            )
        )  # lost, recover() would take the job for unanswered and re-dial

    async def failed(self, job_id: int, result: str, reason: str, now: float) -> None:
        """Close an answered job as ``failed``."""
        await self.records.transaction(
            lambda c: c.execute(
                "UPDATE outbound SET status = 'failed', last_result = ?, reason = ?, updated_at = ?"
                " WHERE id = ? AND status = 'answered'",
                (result, reason, now, job_id),
            )
        )

    async def done(self, job_id: int, result: str, now: float) -> None:
        """Close the job as ``done`` with ``result``."""
        await self.records.transaction(
            lambda c: c.execute(
                "UPDATE outbound SET status = 'done', last_result = ?, updated_at = ? WHERE id = ?",
                (result, now, job_id),
            )
        )

    async def recover(self, now: float) -> tuple[int, int]:
        """In one transaction, for the jobs this node was placing (and those from before jobs
        had a node): ``answered`` ones closed (``interrupted``), ``dialing`` ones back to
        pending after their retry delay (or ``failed`` after their last attempt); how many
        were closed, how many requeued. Another node's calls may be going on: not touched."""
        node = self.records.node

        def close_and_requeue(conn: Connection) -> tuple[int, int]:
            closed = conn.execute(
                "UPDATE outbound SET status = 'done', last_result = 'interrupted',"
                " updated_at = ? WHERE status = 'answered' AND node IN (?, '')",
                (now, node),
            ).rowcount
            requeued = conn.execute(
                "UPDATE outbound SET status = CASE WHEN attempts >= max_attempts THEN 'failed'"
                " ELSE 'pending' END, due_at = ? + retry_after_s, last_result = 'interrupted',"
                " updated_at = ? WHERE status = 'dialing' AND node IN (?, '')",
                (now, now, node),
            ).rowcount
            return closed, requeued

        return await self.records.transaction(close_and_requeue)


def _over_limit(
    conn: Connection, b: Booking, limits: DailyLimits
) -> Literal["caller_limit", "number_limit"] | None:
    """The daily limit ``b`` would pass, if any, counting the rows of its kind created after
    ``limits.since`` (index outbound_kind_created)."""
    by_caller = conn.execute(
        "SELECT COUNT(*) FROM outbound WHERE kind = ? AND created_at > ? AND booked_by = ?",
        (b.kind, limits.since, b.booked_by),
    ).fetchone()[0]
    if by_caller >= limits.per_caller:
        return "caller_limit"
    bare = b.number.removeprefix("+")
    to_number = conn.execute(
        "SELECT COUNT(*) FROM outbound WHERE kind = ? AND created_at > ? AND number IN (?, ?)",
        (b.kind, limits.since, bare, "+" + bare),
    ).fetchone()[0]
    return "number_limit" if to_number >= limits.per_number else None


def target_params(t: Target) -> tuple[object, ...]:
    """The parameters of :data:`IN_TARGET`."""
    return t.kind, t.flow, t.target, t.hours_json, t.max_concurrent
