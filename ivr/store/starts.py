"""Starting outbound attempts, within their target's limits on every node at once.

Every node's dialler starts a call with :meth:`AttemptStarts.start_next`: one transaction
that claims the campaign's next start slot (``campaigns.next_start_at``: its ``rate`` holds
for all the nodes together, not for each), marks the target's oldest due job ``dialing``,
and counts the target's calls ringing or answered on any node against its
``max_concurrent``. A start that does not fit rolls the whole transaction back, its slot
claim with it. The job is picked in the transaction, not from a list read before: two nodes
walking one list would both try its first job, and the one waiting for the other would find
it gone each time.

What keeps two nodes from both taking the last place: on SQLite, ``BEGIN IMMEDIATE`` (one
writer at a time). On PostgreSQL (READ COMMITTED), row locks. The slot claim's ``UPDATE``
locks the campaign's row until the commit: another node's start of that campaign waits,
then re-checks the claim on the row as committed, and its later statements see the call
just marked. Callback and survey targets have no row of their own: two nodes pick the same
oldest due job, so the one that marks it second waits for the first, finds it gone and
starts again in a new transaction, which counts the first one's call. Only a third
transaction changing which job is oldest between the two picks could let both through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

from ivr.store.outbound import IN_TARGET, JOB_COLUMNS, MARK_DIALING, Job, Target, target_params
from ivr.store.records import RecordStore
from ivr.store.sql import Connection

__all__ = ["AttemptStarts", "Pace", "StartLimits", "StartOutcome", "StartResult"]


@dataclass(frozen=True)
class Pace:
    """A campaign's start slots: one every ``interval_s`` (1 / rate). A start up to
    ``slack_s`` (one dialler round) late keeps the spacing; later, the lost time earns no
    burst."""

    campaign: str
    interval_s: float
    slack_s: float


@dataclass(frozen=True)
class StartLimits:
    """How many calls of ``target`` (counted by kind, flow and target name) may ring or
    talk at once, on all the nodes together, and for a campaign, its pace."""

    target: Target
    max_concurrent: int
    pace: Pace | None = None


StartResult = Literal["started", "none_due", "taken", "full", "not_yet"]
"""``none_due``: the target has no job due; ``taken``: another node started the job picked
(callbacks and surveys, which no lock serialises on PostgreSQL); ``full``: the target has
``max_concurrent`` calls already; ``not_yet``: the campaign's next slot is later (or the
campaign is not active)."""


class StartOutcome(NamedTuple):
    """What became of a start, and the campaign's next slot as the transaction saw it (0.0:
    not read). The slot only ever moves later, so a dialler may skip asking before it."""

    result: StartResult
    job: Job | None = None  # the job started (as it was before its mark)
    next_start_at: float = 0.0


_CLAIM_SLOT = (  # ?1 = now - slack: a late start does not earn a burst
    "UPDATE campaigns SET next_start_at ="
    " CASE WHEN next_start_at > ?1 THEN next_start_at ELSE ?1 END + ?2"
    " WHERE name = ?3 AND state = 'active' AND next_start_at <= ?4 RETURNING next_start_at"
)
_IN_PROGRESS = (
    "SELECT COUNT(*) FROM outbound WHERE status IN ('dialing', 'answered')"
    " AND kind = ? AND flow = ? AND target = ?"
)
_NEXT_DUE = (
    f"SELECT {JOB_COLUMNS} FROM outbound WHERE status = 'pending' AND {IN_TARGET}"
    " AND due_at <= ? ORDER BY due_at, id LIMIT 1"
)


class _Refused(Exception):
    """Raised in a start's transaction to roll it back (its slot claim with it)."""

    def __init__(self, result: StartResult) -> None:
        super().__init__(result)
        self.result: StartResult = result


class AttemptStarts:
    """The dialler's starts in ``records``' database."""

    def __init__(self, records: RecordStore) -> None:
        self.records = records

    async def start_next(self, limits: StartLimits, now: float) -> StartOutcome:
        """Mark the oldest job of ``limits.target`` due at ``now`` ``dialing`` (attempt + 1),
        synced, if its campaign's next slot has come and the target has room, counted on
        every node; else nothing changes."""
        node, target, dialect = self.records.node, limits.target, self.records.dialect

        def start(conn: Connection) -> StartOutcome:
            slot = 0.0
            if (pace := limits.pace) is not None:
                row = conn.execute(
                    _CLAIM_SLOT, (now - pace.slack_s, pace.interval_s, pace.campaign, now)
                ).fetchone()
                if row is None:
                    left = conn.execute(
                        "SELECT next_start_at FROM campaigns WHERE name = ?", (pace.campaign,)
                    ).fetchone()
                    return StartOutcome("not_yet", None, float(left[0]) if left else 0.0)
                slot = float(row[0])
            # one start of a target at a time across nodes: the count below then sees
            # every call started before it
            dialect.lock(conn, "ivr-start:" + ":".join(target.key))
            row = conn.execute(_NEXT_DUE, (*target_params(target), now)).fetchone()
            if row is None:
                raise _Refused("none_due")
            job = Job(*row)
            if not conn.execute(MARK_DIALING, (node, now, job.id)).rowcount:
                raise _Refused("taken")
            # counted last, this one with them: a statement after the waits above
            if conn.execute(_IN_PROGRESS, target.key).fetchone()[0] > limits.max_concurrent:
                raise _Refused("full")
            return StartOutcome("started", job, slot)

        try:  # durable: a lost mark would dial the same customer again after a restart
            return await self.records.transaction(start, durable=True)
        except _Refused as refused:
            return StartOutcome(refused.result)
