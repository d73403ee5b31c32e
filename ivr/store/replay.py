"""Record writes the database refused: set aside in the backlog, replayed until it takes them.

When SQLite fails as a whole (locked past its busy timeout, disk full, read-only file), the
writes that hold a record (begin, finish) go to the :class:`~ivr.store.journal.Backlog` and
count as saved; checkpoints, mere crash snapshots, are dropped. From then on, every write goes
there at once (no waiting out the busy timeout again) until a replay, every ``retry_s``, gets
the backlog into the database. What is left at close is replayed once more; what is left in
memory after that is logged whole, the only copy left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable

from ivr.errors import StoreError
from ivr.store.codec import ADDED_COLUMNS, COLUMNS, INSERT, UPSERT, Params
from ivr.store.database import Database
from ivr.store.journal import Backlog, Entry, Journal, Op
from ivr.store.sql import Connection

__all__ = ["BacklogReplay"]

log = logging.getLogger("ivr.store")

# Writes that hold a record, and so go to the backlog when the database refuses them.
_BACKLOG_OPS: dict[str, Op] = {INSERT: "begin", UPSERT: "finish"}


class BacklogReplay:
    """The store's backlog of refused writes and the timer that replays it.

    ``writer_busy`` tells whether a batch of writes is on the writer thread: a replay waits
    for it. :meth:`set_aside`, :meth:`replay` and :meth:`last_replay` run on the writer
    thread; the rest on the loop.
    """

    def __init__(
        self,
        db: Database,
        journal: Journal | None,
        retry_s: float,
        writer_busy: Callable[[], bool],
    ) -> None:
        self.retry_s = retry_s
        self.down = False  # writer thread: the database failed; writes go to the backlog
        self._db = db
        self._backlog = Backlog(journal)  # writer thread only
        self._writer_busy = writer_busy
        self._retry_timer: asyncio.TimerHandle | None = None
        self._retrying: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        """Record writes in the backlog (read on the loop while the writer thread may change
        it: a gauge's value, never a decision)."""
        return len(self._backlog)

    def replay_left_over(self, conn: Connection) -> None:
        """Writer thread, at open: replay what the last run could not write."""
        if len(self._backlog):
            log.warning(
                "%s: replaying %d record write(s) from %s",
                self._db.path,
                len(self._backlog),
                self._backlog.journal.path if self._backlog.journal is not None else "memory",
            )
            self._backlog.replay(conn, _replay_one, self._db.dialect.transaction)

    def set_aside(
        self, batch: list[tuple[str, Params]], exc: Exception | None
    ) -> list[Exception | None]:
        """Writer thread: records into the backlog (checkpoints, mere crash snapshots, are
        dropped); every write of the batch counts as done."""
        if not self.down:
            journal = self._backlog.journal
            log.error(
                "%s: database unavailable (%s): call records go to %s and are replayed "
                "every %.0f s until it is back",
                self._db.path,
                exc,
                journal.path if journal is not None else "memory",
                self.retry_s,
            )
        self.down = True
        self._backlog.add(
            [(_BACKLOG_OPS[sql], params) for sql, params in batch if sql in _BACKLOG_OPS]
        )
        return [None] * len(batch)

    def replay(self) -> int:
        """Writer thread: move the backlog into the database; how many writes are still
        waiting (0: the database is back)."""
        try:
            count = self._backlog.replay(
                self._db.connection(), _replay_one, self._db.dialect.transaction
            )
        except self._db.dialect.Error as exc:
            self._backlog.save()  # memory into the journal, if it can take it now
            log.debug("%s: still unavailable: %s", self._db.path, exc)
            if "readonly" in str(exc):
                with contextlib.suppress(self._db.dialect.Error):
                    self._db.reconnect()
            return len(self._backlog)
        if self.down or count:
            log.warning("%s: database back: %d record write(s) replayed", self._db.path, count)
        self.down = False
        return 0

    def last_replay(self) -> None:
        """Writer thread, at close: a last replay; what only memory holds is logged whole,
        the only copy left."""
        if not len(self._backlog) or not self.replay():
            return
        self._backlog.save()
        for op, row in self._backlog.memory:
            log.critical(
                "%s: call record not saved (%s): %s",
                self._db.path,
                op,
                json.dumps(row, ensure_ascii=False),
            )

    def schedule_retry(self) -> None:
        """Replay in ``retry_s``, unless a replay is already due or running."""
        if self._retry_timer is None and self._retrying is None and not self._db.closed:
            self._retry_timer = self._db.loop.call_later(self.retry_s, self._start_retry)

    def _start_retry(self) -> None:
        self._retry_timer = None
        if self._writer_busy():  # a batch is on the writer thread: try after it
            self.schedule_retry()
            return
        self._retrying = self._db.loop.create_task(self._retry())

    async def _retry(self) -> None:
        try:
            left = await self._db.run(self.replay)
        except StoreError as exc:
            log.warning("%s: replay failed: %s", self._db.path, exc)
            left = 1
        finally:
            self._retrying = None
        if left and not self._db.closing:
            self.schedule_retry()

    async def close(self) -> None:
        """At close, once no write is queued: stop retrying, then the last replay."""
        if self._retry_timer is not None:
            self._retry_timer.cancel()
            self._retry_timer = None
        if self._retrying is not None:
            await self._retrying
        await self._db.run(self.last_replay)


def _replay_one(conn: Connection, entry: Entry) -> None:
    """One backlog entry into the database, idempotently: a replay cut short by a crash is
    run again whole. A begin already there is left alone; a finish completes its own call's
    row (same id and start), and lands under a suffixed id when an earlier, finished call
    holds that id."""
    op, row = entry
    # journaled before calls had a node (v6), a box (v7), a recording (v8) or path_at (v9)
    if len(row) < len(COLUMNS):
        row = (*row, *(ADDED_COLUMNS[column] for column in COLUMNS[len(row) :]))
    if op == "begin":
        conn.execute(INSERT + " ON CONFLICT(call_id) DO NOTHING", row)
        return
    call_id, started_at = row[0], row[COLUMNS.index("started_at")]
    for n in range(1, 1000):
        key = call_id if n == 1 else f"{call_id}-{n}"
        found = conn.execute(
            "SELECT started_at, outcome FROM calls WHERE call_id = ?", (key,)
        ).fetchone()
        if found is None or found[0] == started_at or found[1] is None:
            conn.execute(UPSERT, (key, *row[1:]))
            return
    log.error("call %r: not replayed: 1000 calls with this id", call_id)
