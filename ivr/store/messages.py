"""Messages callers left at ``record`` nodes (table ``messages``): one row per kept message,
its WAV under the recordings directory, its length and transcript; marked heard in the
console. Each method is one transaction (or one read)."""

from __future__ import annotations

from dataclasses import dataclass

from ivr.store.records import RecordStore
from ivr.store.sql import Connection, Row

__all__ = ["MessageRow", "MessageStore"]

_COLUMNS = (
    "id, call_id, flow, node, caller, file, duration_s, language, transcript, created_at, heard_at"
)


@dataclass(frozen=True)
class MessageRow:
    """One left message; ``file`` is the WAV's name relative to the recordings directory."""

    id: int
    call_id: str
    flow: str
    node: str
    caller: str
    file: str
    duration_s: float
    language: str
    transcript: str
    created_at: float
    heard_at: float | None


class MessageStore:
    """The ``messages`` table."""

    def __init__(self, records: RecordStore) -> None:
        self.records = records

    async def add(
        self,
        *,
        call_id: str,
        flow: str,
        node: str,
        caller: str,
        file: str,
        duration_s: float,
        language: str,
        transcript: str,
        now: float,
    ) -> int:
        """Keep a message; its id."""

        def insert(conn: Connection) -> int:
            row = conn.execute(
                "INSERT INTO messages (call_id, flow, node, caller, file, duration_s, language,"
                " transcript, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (call_id, flow, node, caller, file, duration_s, language, transcript, now),
            ).fetchone()
            assert row is not None
            return int(row[0])

        return await self.records.transaction(insert)

    async def rows(self, limit: int = 100, unheard: bool = False) -> list[MessageRow]:
        """Up to ``limit`` messages (only those not heard yet), newest first."""
        where = "WHERE heard_at IS NULL" if unheard else ""
        rows = await self.records.read(
            f"SELECT {_COLUMNS} FROM messages {where} ORDER BY created_at DESC, id DESC LIMIT ?",
            (limit,),
        )
        return [_row(r) for r in rows]

    async def get(self, message_id: int) -> MessageRow | None:
        """One message, or ``None``."""
        rows = await self.records.read(
            f"SELECT {_COLUMNS} FROM messages WHERE id = ?", (message_id,)
        )
        return _row(rows[0]) if rows else None

    async def heard(self, message_id: int, now: float) -> bool:
        """Mark it heard (the first time counts); false when there is no such message."""

        def mark(conn: Connection) -> bool:
            found = conn.execute("SELECT 1 FROM messages WHERE id = ?", (message_id,)).fetchone()
            conn.execute(
                "UPDATE messages SET heard_at = ? WHERE id = ? AND heard_at IS NULL",
                (now, message_id),
            )
            return found is not None

        return await self.records.transaction(mark)

    async def unheard(self) -> int:
        """How many messages nobody has marked heard."""
        rows = await self.records.read("SELECT COUNT(*) FROM messages WHERE heard_at IS NULL")
        return int(rows[0][0]) if rows else 0


def _row(r: Row) -> MessageRow:
    heard = None if r[10] is None else float(r[10])
    return MessageRow(
        int(r[0]), r[1], r[2], r[3], r[4], r[5], float(r[6]), r[7], r[8], float(r[9]), heard
    )
