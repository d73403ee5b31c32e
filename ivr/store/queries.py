"""What the call-record store does at once on its thread, outside the write queue.

Reads of the ``calls`` table (one record, the recent ones, counts by outcome, any query) and
the transactions other packages run (outbound jobs, campaigns), attaching a survey, the
start-up recovery of unfinished calls. Each waits only for the writer thread, not for the
queued record writes (begin, checkpoint, finish).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ivr.call.record import OUTCOMES, CallRecord, Outcome, SurveyResult
from ivr.call.resume import ResumePoint
from ivr.store.codec import decode, encode_survey
from ivr.store.database import Database
from ivr.store.sql import Connection, Dialect, Row

__all__ = ["RECOVERED_ERROR", "RecordQueries", "TakenCall"]

T = TypeVar("T")

RECOVERED_ERROR = "server stopped during the call"


@dataclass(frozen=True, slots=True)
class TakenCall:
    """A call in progress this node took over: its record so far, where to resume it (``None``
    when it has no usable resume point) and the node that had it."""

    record: CallRecord
    resume: ResumePoint | None
    from_node: str


class RecordQueries:
    """The store's queries and one-off transactions (a base of
    :class:`~ivr.store.records.RecordStore`, which documents the errors)."""

    def __init__(self, db: Database, node: str = "") -> None:
        self._db = db
        self.node = node  # this server, when several share the database

    @property
    def dialect(self) -> Dialect:
        """The database engine's SQL differences (``json_text`` ...), for the store's SQL."""
        return self._db.dialect

    async def get(self, call_id: str) -> CallRecord | None:
        """The record of ``call_id``, or ``None`` if there is none."""

        rows = await self.read("SELECT * FROM calls WHERE call_id = ?", [call_id])
        return decode(rows[0]) if rows else None

    async def recent(
        self,
        limit: int = 50,
        flow: str | None = None,
        outcome: Outcome | None = None,
        since: float | None = None,
        until: float | None = None,
        flow_version: str | None = None,
    ) -> list[CallRecord]:
        """Up to ``limit`` records, newest ``started_at`` first, filtered by the given fields.

        ``since`` is inclusive and ``until`` exclusive (Unix times, on ``started_at``);
        ``flow_version``: only calls that ran that version of their flow.
        """
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        where, params = _where(flow, outcome, since, until, flow_version)
        sql = f"SELECT * FROM calls{where} ORDER BY started_at DESC, call_id LIMIT ?"
        return [decode(row) for row in await self.read(sql, [*params, limit])]

    async def count_by_outcome(
        self, flow: str | None = None, since: float | None = None, until: float | None = None
    ) -> dict[Outcome | None, int]:
        """Number of calls per outcome (``None``: still in progress), every key present."""
        where, params = _where(flow, None, since, until)
        sql = f"SELECT outcome, COUNT(*) FROM calls{where} GROUP BY outcome"
        counts: dict[Outcome | None, int] = dict.fromkeys((*OUTCOMES, None), 0)
        for outcome, n in await self.read(sql, params):
            counts[outcome] = n
        return counts

    async def transaction(self, fn: Callable[[Connection], T], *, durable: bool = False) -> T:
        """Run ``fn(connection)`` in one write transaction on the store's thread.

        ``durable``: the commit is synced to disk before this returns (``synchronous=FULL``),
        so it survives a power loss, not only a crash (WAL with NORMAL syncs at checkpoints).
        For the few writes that promise something to a caller, e.g. a booked callback.
        """

        def call() -> T:
            conn = self._db.connection()
            with self._db.dialect.transaction(conn, durable=durable):
                return fn(conn)

        return await self._db.run(call)

    async def attach_survey(self, call_id: str, survey: SurveyResult) -> bool:
        """Store a survey against an earlier call (outbound surveys).

        ``False`` when the call is unknown or already has a survey: one survey per call.
        """

        def attach() -> bool:
            conn = self._db.connection()
            with self._db.dialect.transaction(conn):
                cursor = conn.execute(
                    "UPDATE calls SET survey = ? WHERE call_id = ? AND survey IS NULL",
                    (encode_survey(survey), call_id),
                )
            return cursor.rowcount == 1

        return await self._db.run(attach)

    async def recover_unfinished(self, now: float) -> int:
        """Mark every call of this node without an outcome as ``error`` (and such calls
        recorded before calls had a node); returns how many were marked.

        Call once at start-up, before taking calls: a row of this node still without outcome
        then belongs to a call its previous process never finished. Other nodes' calls are
        theirs: they may be going on. ``end_node`` becomes the last node of
        the saved path (or stays as saved if the path is empty), ``error`` is
        :data:`RECOVERED_ERROR`, and a missing ``ended_at`` becomes ``now``.
        """

        def recover() -> int:
            conn = self._db.connection()
            with self._db.dialect.transaction(conn):
                return conn.execute(
                    "UPDATE calls SET outcome = 'error', error = ?,"
                    f" end_node = COALESCE({self._db.dialect.json_last('path')}, end_node),"
                    " ended_at = COALESCE(ended_at, ?),"
                    " duration_s = COALESCE(ended_at, ?) - started_at"
                    " WHERE outcome IS NULL AND node IN (?, '')",
                    (RECOVERED_ERROR, now, now, self.node),
                ).rowcount

        if self._db.closing:
            raise self._db.closed_error()
        return await self._db.run(recover)

    async def take_over(self, call_id: str) -> TakenCall | None:
        """Take the unfinished call ``call_id`` over from the node that ran it (it died and the
        dialplan sent the call here): the row becomes this node's, and its record and resume
        point come back. ``None`` when there is no such call in progress (unknown, finished,
        or taken by another node at the same moment): the call cannot be resumed.
        """

        def take() -> TakenCall | None:
            conn = self._db.connection()
            with self._db.dialect.transaction(conn):
                row = conn.execute(
                    "SELECT * FROM calls WHERE call_id = ? AND outcome IS NULL", (call_id,)
                ).fetchone()
                if row is None:
                    return None
                taken = conn.execute(
                    "UPDATE calls SET node = ? WHERE call_id = ? AND outcome IS NULL AND node = ?",
                    (self.node, call_id, row["node"]),
                ).rowcount
            if taken != 1:
                return None
            record = decode(row)
            record.node = self.node
            try:
                point = None if row["resume"] is None else ResumePoint.from_json(row["resume"])
            except ValueError:
                point = None
            return TakenCall(record, point, row["node"])

        if self._db.closing:
            raise self._db.closed_error()
        return await self._db.run(take)

    async def read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Rows of one query, on the store's thread, without the write lock a
        :meth:`transaction` takes (one statement sees one snapshot of the database)."""

        def read() -> list[Row]:
            return self._db.connection().execute(sql, params).fetchall()

        return await self._db.run(read)


def _where(
    flow: str | None,
    outcome: Outcome | None,
    since: float | None,
    until: float | None,
    flow_version: str | None = None,
) -> tuple[str, list[Any]]:
    """A ``WHERE`` clause (or "") and its parameters; ``since`` inclusive, ``until`` exclusive."""
    clauses: list[str] = []
    params: list[Any] = []
    for clause, value in (
        ("flow = ?", flow),
        ("outcome = ?", outcome),
        ("started_at >= ?", since),
        ("started_at < ?", until),
        ("flow_version = ?", flow_version),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params
