"""The nodes sharing one database: their heartbeats, and what a dead one left behind.

Each ``ivr serve`` beats in ``nodes`` (:meth:`NodeStore.beat`). An outbound attempt carries the
node that placed it (``outbound.node``); when that node stops beating, a live node finds its
attempts (:meth:`NodeStore.stranded`) and, once Asterisk says the call is gone, takes them
over (:meth:`NodeStore.take_over`): a conditional update, so two live nodes never both do.
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.store.outbound import JOB_COLUMNS, Job
from ivr.store.records import RecordStore

__all__ = ["NodeBeat", "NodeStore"]


@dataclass(frozen=True)
class NodeBeat:
    """One ivr node as its last heartbeat left it (table ``nodes``)."""

    id: str
    version: str
    started_at: float
    beat_at: float
    calls: int


class NodeStore:
    """The ``nodes`` table, and the outbound attempts of nodes that stopped beating."""

    def __init__(self, records: RecordStore) -> None:
        self.records = records

    async def beat(self, version: str, started_at: float, calls: int, now: float) -> None:
        """This node's heartbeat: its version, start, calls at ``now``."""
        await self.records.transaction(
            lambda c: c.execute(
                "INSERT INTO nodes (id, version, started_at, beat_at, calls)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " version = excluded.version, started_at = excluded.started_at,"
                " beat_at = excluded.beat_at, calls = excluded.calls",
                (self.records.node, version, started_at, now, calls),
            )
        )

    async def nodes(self) -> list[NodeBeat]:
        """Every node that ever beat, newest heartbeat first."""
        rows = await self.records.read(
            "SELECT id, version, started_at, beat_at, calls FROM nodes ORDER BY beat_at DESC, id"
        )
        return [NodeBeat(r[0], r[1], float(r[2]), float(r[3]), int(r[4])) for r in rows]

    async def stranded(self, now: float, dead_after_s: float) -> list[tuple[str, Job]]:
        """``(node, job)`` for each attempt (``dialing`` or ``answered``) of another node
        whose last beat is older than ``dead_after_s`` (or that never beat)."""
        rows = await self.records.read(
            f"SELECT node, {JOB_COLUMNS} FROM outbound"
            " WHERE status IN ('dialing', 'answered') AND node NOT IN (?, '')"
            " AND node NOT IN (SELECT id FROM nodes WHERE beat_at >= ?)"
            " ORDER BY id",
            (self.records.node, now - dead_after_s),
        )
        return [(str(row[0]), Job(*list(row)[1:])) for row in rows]

    async def take_over(self, job: Job, dead_node: str, now: float) -> bool:
        """A dead node's attempt whose call is gone: ``dialing`` back to pending after its
        retry delay (``failed`` after its last attempt), ``answered`` closed as interrupted
        (a second call to the same customer is worse than a cut-off one). False when the row
        moved on meanwhile (another node took it over, or the node came back)."""
        return bool(
            await self.records.transaction(
                lambda c: (
                    c.execute(
                        "UPDATE outbound SET status = CASE"
                        " WHEN status = 'answered' THEN 'done'"
                        " WHEN attempts >= max_attempts THEN 'failed' ELSE 'pending' END,"
                        " due_at = CASE WHEN status = 'answered' THEN due_at"
                        " ELSE ? + retry_after_s END,"
                        " last_result = CASE WHEN status = 'answered' THEN 'interrupted'"
                        " ELSE 'node_lost' END,"
                        " node = '', updated_at = ?"
                        " WHERE id = ? AND status = ? AND node = ?",
                        (now, now, job.id, job.status, dead_node),
                    ).rowcount
                ),
                durable=True,
            )
        )
