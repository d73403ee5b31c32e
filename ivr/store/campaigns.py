"""The SQL of outbound campaigns: table ``campaigns`` (settings and state), the campaign's
calls in table ``outbound``, and its counts (the ``calls`` table's records of it too).

Each method of :class:`CampaignStore` is one transaction on the record store's connection;
it takes and returns plain data. The caller (:mod:`ivr.outbound.campaigns`) builds the
rows, paces the import and words the errors.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from ivr.errors import CampaignError
from ivr.store.records import RecordStore
from ivr.store.sql import Connection

__all__ = ["CampaignCall", "CampaignCounts", "CampaignRow", "CampaignStore"]

CHUNK_ROWS = 500  # rows per executemany: a few ms, so a batch ends close to its budget


@dataclass(frozen=True)
class CampaignRow:
    """One row of table ``campaigns``."""

    name: str
    flow: str
    rate: float
    max_concurrent: int
    hours_json: str  # a flow `open:` map as JSON ("": any hour)
    timezone: str
    state: str  # "active" | "paused"


# One campaign call (an ``outbound`` row of kind "campaign"), in the order of _INSERT:
# call_id, flow, target (the campaign), number, channel, caller_id, due_at, max_attempts,
# retry_after_s, created_at, updated_at, variables (JSON). A plain tuple: a list of
# hundreds of thousands is built before the import, and executemany takes it as it is.
CampaignCall = tuple[str, str, str, str, str, str, float, int, float, float, float, str]


@dataclass(frozen=True)
class CampaignCounts:
    """A campaign's settings and what became of its calls."""

    flow: str
    rate: float
    max_concurrent: int
    state: str
    by_status: dict[str, int]  # calls per job status
    results: dict[str, int]  # calls per last result (those with one)
    interested: int  # call records of the campaign with variable interested = yes


_INSERT = (
    "INSERT INTO outbound (kind, call_id, flow, target, number, channel, caller_id,"
    " due_at, max_attempts, retry_after_s, created_at, updated_at, variables)"
    " VALUES ('campaign', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)


class CampaignStore:
    """Campaign rows in ``records``' database."""

    def __init__(self, records: RecordStore) -> None:
        self.records = records

    async def campaigns(self) -> list[CampaignRow]:
        """Every campaign."""
        rows = await self.records.transaction(
            lambda c: c.execute(
                "SELECT name, flow, rate, max_concurrent, hours, timezone, state FROM campaigns"
            ).fetchall()
        )
        return [
            CampaignRow(name, flow, float(rate), int(limit), hours, tz, state)
            for name, flow, rate, limit, hours, tz, state in rows
        ]

    async def save(
        self,
        *,
        name: str,
        flow: str,
        rate: float,
        max_concurrent: int,
        hours_json: str,
        timezone: str,
        now: float,
    ) -> None:
        """Create the campaign (created ``now``), or update its limits and hours; a campaign
        keeps its flow: :class:`~ivr.errors.CampaignError` (and nothing changed) if it runs
        another one."""

        def write(conn: Connection) -> None:
            conn.execute(
                "INSERT INTO campaigns (name, flow, rate, max_concurrent, hours, timezone,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET"
                " rate = excluded.rate, max_concurrent = excluded.max_concurrent,"
                " hours = excluded.hours, timezone = excluded.timezone",
                (name, flow, rate, max_concurrent, hours_json, timezone, now),
            )
            kept = conn.execute("SELECT flow FROM campaigns WHERE name = ?", (name,)).fetchone()[0]
            if kept != flow:  # raised in the transaction: the update is rolled back
                raise CampaignError(f"campaign {name} runs flow {kept}, not {flow}")

        await self.records.transaction(write)

    async def insert_calls(
        self, calls: Sequence[CampaignCall], first: int, budget_s: float
    ) -> tuple[int, int]:
        """Insert ``calls[first:]`` (those not in yet) in chunks, in one transaction, until
        ``budget_s`` has passed (it holds the write lock that long); how many calls were
        written, and how many of them are new."""

        def insert(conn: Connection) -> tuple[int, int]:
            deadline = time.monotonic() + budget_s
            end, added = first, 0
            while end < len(calls):
                chunk = calls[end : end + CHUNK_ROWS]
                added += conn.executemany(_INSERT, chunk).rowcount
                end += len(chunk)
                if time.monotonic() >= deadline:
                    break
            return end - first, added

        return await self.records.transaction(insert)

    async def set_state(self, name: str, state: str) -> bool:
        """Set campaign ``name``'s state; False if there is no such campaign."""
        return bool(
            await self.records.transaction(
                lambda c: (
                    c.execute(
                        "UPDATE campaigns SET state = ? WHERE name = ?", (state, name)
                    ).rowcount
                )
            )
        )

    async def counts(self, name: str) -> CampaignCounts | None:
        """Campaign ``name``'s settings and counts, read in one transaction (None: no such
        campaign)."""
        json = self.records.dialect.json_text

        def read(conn: Connection) -> CampaignCounts | None:
            row = conn.execute(
                "SELECT flow, rate, max_concurrent, state FROM campaigns WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                return None
            by_status = dict(
                conn.execute(
                    "SELECT status, COUNT(*) FROM outbound WHERE kind = 'campaign' AND target = ?"
                    " GROUP BY status",
                    (name,),
                ).fetchall()
            )
            results = dict(
                conn.execute(
                    "SELECT last_result, COUNT(*) FROM outbound WHERE kind = 'campaign' AND"
                    " target = ? AND last_result != '' GROUP BY last_result",
                    (name,),
                ).fetchall()
            )
            interested = conn.execute(
                f"SELECT COUNT(*) FROM calls WHERE {json('variables', 'campaign')} = ?"
                f" AND {json('variables', 'interested')} = 'yes'",
                (name,),
            ).fetchone()[0]
            return CampaignCounts(row[0], row[1], row[2], row[3], by_status, results, interested)

        return await self.records.transaction(read)
