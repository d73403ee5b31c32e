"""The webhook outbox (table ``webhook_outbox``): events wait here until a receiver has them.

The call path only inserts (:meth:`WebhookStore.enqueue`, from the server's outbox task); the
sender claims what is due (:meth:`WebhookStore.claim`), posts it and marks it sent, or due
again later, or failed. Each method is one transaction; the policy (backoff, limits, which
events) is the sender's (``ivr.app.webhooks``).

- **In order per call**: only a call's oldest pending event can be claimed, so a later one
  waits while an earlier one is retried (a ``failed`` one no longer holds the rest back).
- **Once across nodes**: a claim is a conditional update that pushes ``next_at`` past the
  attempt (a lease) and counts it; two senders on one database never post the same event at
  once, and a sender that died mid-post leaves the event due again when its lease ends.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ivr.store.records import RecordStore
from ivr.store.sql import Connection, Row

__all__ = ["OutboxRow", "WebhookStore"]

_COLUMNS = "id, event, call_id, payload, created_at, status, attempts, next_at, last_error, sent_at"
# Each call's oldest pending event (and every event of no call): the only ones that may go.
# One pass over the pending rows (an uncorrelated subquery, run once), whatever the backlog.
_HEAD = (
    "status = 'pending' AND (call_id = '' OR id IN (SELECT MIN(id) FROM webhook_outbox"
    " WHERE status = 'pending' GROUP BY call_id))"
)
_HEADS = f"SELECT {_COLUMNS} FROM webhook_outbox WHERE {_HEAD} AND next_at <= ? ORDER BY id LIMIT ?"


@dataclass(frozen=True)
class OutboxRow:
    """One event in the outbox; ``payload`` is the exact JSON body that is signed and sent."""

    id: int
    event: str
    call_id: str
    payload: str
    created_at: float
    status: str  # pending | sent | failed
    attempts: int  # posts tried (a claim counts one)
    next_at: float  # when it is due (again)
    last_error: str
    sent_at: float | None


class WebhookStore:
    """The ``webhook_outbox`` table."""

    def __init__(self, records: RecordStore) -> None:
        self.records = records

    async def enqueue(self, events: list[tuple[str, str, str]], now: float) -> list[int]:
        """Insert ``(event, call_id, payload)`` rows in this order, due at ``now``, in one
        transaction; their ids (increasing: the order they are sent in, per call)."""

        def insert(conn: Connection) -> list[int]:
            ids = []
            for event, call_id, payload in events:
                row = conn.execute(
                    "INSERT INTO webhook_outbox (event, call_id, payload, created_at, next_at)"
                    " VALUES (?, ?, ?, ?, ?) RETURNING id",
                    (event, call_id, payload, now, now),
                ).fetchone()
                assert row is not None
                ids.append(int(row[0]))
            return ids

        return await self.records.transaction(insert)

    async def claim(self, now: float, lease_s: float, limit: int = 50) -> list[OutboxRow]:
        """Up to ``limit`` due events, oldest first and at most one per call, each claimed
        for one attempt (``attempts`` + 1, due again at ``now + lease_s`` unless marked
        before). An event another sender claimed meanwhile is left out."""

        def claim(conn: Connection) -> list[OutboxRow]:
            out = []
            for row in conn.execute(_HEADS, (now, limit)).fetchall():
                claimed = conn.execute(
                    "UPDATE webhook_outbox SET attempts = attempts + 1, next_at = ?"
                    " WHERE id = ? AND status = 'pending' AND next_at <= ?",
                    (now + lease_s, row[0], now),
                ).rowcount
                if claimed == 1:
                    r = _row(row)
                    out.append(replace(r, attempts=r.attempts + 1, next_at=now + lease_s))
            return out

        return await self.records.transaction(claim)

    async def next_due(self) -> float | None:
        """When the first event that may go now is due (``None``: nothing is pending); a
        read, without the write lock a claim takes."""
        rows = await self.records.read(f"SELECT MIN(next_at) FROM webhook_outbox WHERE {_HEAD}")
        return None if not rows or rows[0][0] is None else float(rows[0][0])

    async def sent(self, row_id: int, now: float) -> None:
        """The receiver took it (a 2xx answer)."""
        await self._update(
            "UPDATE webhook_outbox SET status = 'sent', sent_at = ?, last_error = '' WHERE id = ?",
            (now, row_id),
        )

    async def retry(self, row_id: int, error: str, at: float) -> None:
        """The attempt failed (``error``); due again at ``at``."""
        await self._update(
            "UPDATE webhook_outbox SET next_at = ?, last_error = ? WHERE id = ?",
            (at, error[:500], row_id),
        )

    async def give_up(self, row_id: int, error: str) -> None:
        """The last attempt failed (``error``): ``failed``, and the call's next event goes."""
        await self._update(
            "UPDATE webhook_outbox SET status = 'failed', last_error = ? WHERE id = ?",
            (error[:500], row_id),
        )

    async def resend(self, row_id: int, now: float) -> bool:
        """A failed event back to pending, due now, its attempts counted from 0 again."""

        def resend(conn: Connection) -> bool:
            return bool(
                conn.execute(
                    "UPDATE webhook_outbox SET status = 'pending', attempts = 0, next_at = ?,"
                    " created_at = ? WHERE id = ? AND status = 'failed'",
                    (now, now, row_id),
                ).rowcount
            )

        return await self.records.transaction(resend)

    async def rows(self, status: str | None = None, limit: int = 100) -> list[OutboxRow]:
        """Up to ``limit`` events (with ``status``), newest first."""
        where, params = ("WHERE status = ?", [status]) if status else ("", [])
        rows = await self.records.read(
            f"SELECT {_COLUMNS} FROM webhook_outbox {where} ORDER BY id DESC LIMIT ?",
            [*params, limit],
        )
        return [_row(r) for r in rows]

    async def counts(self) -> dict[str, int]:
        """How many events are pending, sent and failed (every key present)."""
        counts = dict.fromkeys(("pending", "sent", "failed"), 0)
        for status, n in await self.records.read(
            "SELECT status, COUNT(*) FROM webhook_outbox GROUP BY status"
        ):
            counts[str(status)] = int(n)
        return counts

    async def prune(self, before: float) -> int:
        """Delete events sent before ``before`` (failed ones stay: the console shows them);
        how many."""

        def prune(conn: Connection) -> int:
            return int(
                conn.execute(
                    "DELETE FROM webhook_outbox WHERE status = 'sent' AND sent_at < ?", (before,)
                ).rowcount
            )

        return await self.records.transaction(prune)

    async def _update(self, sql: str, params: tuple[object, ...]) -> None:
        await self.records.transaction(lambda c: c.execute(sql, params))


def _row(r: Row) -> OutboxRow:
    sent_at = None if r[9] is None else float(r[9])
    return OutboxRow(
        int(r[0]), r[1], r[2], r[3], float(r[4]), r[5], int(r[6]), float(r[7]), r[8], sent_at
    )
