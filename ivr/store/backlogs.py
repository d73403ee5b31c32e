"""What waits: webhook events not delivered yet and outbound jobs due, for the metrics.

One read on the store's thread, three indexed scalar subqueries (``webhook_outbox (status,
next_at)``, ``outbound (status, kind, ...)``), the same text on SQLite and PostgreSQL. The
server samples it in the background every few seconds (``ivr.app.backlogs``), never per call
or per scrape.
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.store.records import RecordStore

__all__ = ["Backlogs", "read_backlogs"]

_BACKLOGS = (
    "SELECT (SELECT COUNT(*) FROM webhook_outbox WHERE status = 'pending'),"
    " (SELECT MIN(created_at) FROM webhook_outbox WHERE status = 'pending'),"
    " (SELECT COUNT(*) FROM outbound WHERE status = 'pending' AND due_at <= ?)"
)


@dataclass(frozen=True)
class Backlogs:
    """Undelivered webhook events, when the oldest was created (``None``: none), and the
    outbound jobs due but not placed yet."""

    webhooks_pending: int
    webhooks_oldest_at: float | None
    outbound_due: int

    def oldest_age_s(self, now: float) -> float:
        """How long the oldest undelivered event has waited at ``now`` (0 when none)."""
        return 0.0 if self.webhooks_oldest_at is None else max(0.0, now - self.webhooks_oldest_at)


async def read_backlogs(records: RecordStore, now: float) -> Backlogs:
    """The backlogs at ``now`` (jobs due at or before it)."""
    [(pending, oldest, due)] = await records.read(_BACKLOGS, (now,))
    return Backlogs(int(pending), None if oldest is None else float(oldest), int(due))
