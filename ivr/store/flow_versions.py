"""Every flow version a server published (table ``flow_versions``): its YAML text, content
hash (the ``version`` that ``calls.flow_version`` carries), who published it, when and why,
and on which node. Rows are only ever added: a rollback is a new row with the old text.

Each method is one transaction (or one read). :meth:`FlowVersionStore.publish` with
``unless_latest`` adds nothing when the flow's newest row already has that version, so a
restart, or a second node loading the same files, does not add a duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.store.records import RecordStore
from ivr.store.sql import Connection, Row

__all__ = ["FlowVersionRow", "FlowVersionStore"]

_COLUMNS = "id, flow, version, file, published_at, published_by, reason, node"


@dataclass(frozen=True)
class FlowVersionRow:
    """One published version; ``content`` is the YAML text (``None`` in lists, which leave
    it out); ``calls``: how many calls ran this version (lists only, else 0)."""

    id: int
    flow: str
    version: str
    file: str
    published_at: float
    published_by: str
    reason: str
    node: str
    content: str | None = None
    calls: int = 0


class FlowVersionStore:
    """The ``flow_versions`` table (rows written with this store's ``node``)."""

    def __init__(self, records: RecordStore) -> None:
        self.records = records

    async def publish(
        self,
        *,
        flow: str,
        version: str,
        file: str,
        content: str,
        now: float,
        by: str = "",
        reason: str = "",
        unless_latest: bool = False,
    ) -> int | None:
        """Keep a published version; its id (``None``: ``unless_latest`` and the flow's
        newest row already has ``version``)."""
        node, dialect = self.records.node, self.records.dialect

        def insert(conn: Connection) -> int | None:
            if unless_latest:
                # Nodes starting together each ask "is it the latest?": one at a time, or
                # on PostgreSQL every node that asked before the first wrote adds a row.
                dialect.lock(conn, f"flow_versions:{flow}")
                latest = conn.execute(
                    "SELECT version FROM flow_versions WHERE flow = ? ORDER BY id DESC LIMIT 1",
                    (flow,),
                ).fetchone()
                if latest is not None and latest[0] == version:
                    return None
            row = conn.execute(
                "INSERT INTO flow_versions (flow, version, file, content, published_at,"
                " published_by, reason, node) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (flow, version, file, content, now, by, reason, node),
            ).fetchone()
            assert row is not None
            return int(row[0])

        return await self.records.transaction(insert)

    async def history(self, flow: str, limit: int = 100) -> list[FlowVersionRow]:
        """Up to ``limit`` versions of ``flow``, newest first, each with the number of calls
        that ran its version (calls are counted per version: a version published twice shows
        the same count on both rows)."""
        rows = await self.records.read(
            f"SELECT {_COLUMNS}, (SELECT COUNT(*) FROM calls c"
            " WHERE c.flow = v.flow AND c.flow_version = v.version)"
            f" FROM flow_versions v WHERE flow = ? ORDER BY id DESC LIMIT ?",
            (flow, limit),
        )
        return [_row(r, calls=int(r[8])) for r in rows]

    async def get(self, version_id: int) -> FlowVersionRow | None:
        """One version with its content, or ``None``."""
        rows = await self.records.read(
            f"SELECT {_COLUMNS}, content FROM flow_versions WHERE id = ?", (version_id,)
        )
        return _row(rows[0], content=str(rows[0][8])) if rows else None

    async def find(self, flow: str, ref: str) -> FlowVersionRow | None:
        """The version of ``flow`` that ``ref`` names, with its content: a version (hash)
        exactly, else a row id, else the start of exactly one stored version or of its hash
        after the label's ``+``; the newest row of that version. ``None``: no such version,
        or the start fits several."""
        ref = ref.strip()
        if not ref:
            return None
        rows = await self.records.read(
            "SELECT id, version FROM flow_versions WHERE flow = ? ORDER BY id DESC", (flow,)
        )
        exact = next((int(r[0]) for r in rows if r[1] == ref), None)
        if exact is None and ref.isdigit():
            exact = next((int(r[0]) for r in rows if int(r[0]) == int(ref)), None)
        if exact is None:
            starts = {
                str(r[1])
                for r in rows
                if str(r[1]).startswith(ref) or str(r[1]).rpartition("+")[2].startswith(ref)
            }
            if len(starts) != 1:
                return None
            [version] = starts
            exact = next(int(r[0]) for r in rows if r[1] == version)
        return await self.get(exact)

    async def latest(self, flow: str) -> FlowVersionRow | None:
        """The newest version of ``flow`` with its content, or ``None``."""
        rows = await self.records.read(
            f"SELECT {_COLUMNS}, content FROM flow_versions WHERE flow = ?"
            " ORDER BY id DESC LIMIT 1",
            (flow,),
        )
        return _row(rows[0], content=str(rows[0][8])) if rows else None


def _row(r: Row, *, content: str | None = None, calls: int = 0) -> FlowVersionRow:
    return FlowVersionRow(
        int(r[0]),
        str(r[1]),
        str(r[2]),
        str(r[3]),
        float(r[4]),
        str(r[5]),
        str(r[6]),
        str(r[7]),
        content,
        calls,
    )
