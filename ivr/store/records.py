"""The call-record store: one SQLite row per call, written without blocking the event loop.

All SQLite work runs on one dedicated writer thread (a single-worker executor that owns the only
connection: :mod:`ivr.store.database`). Writes (:meth:`RecordStore.begin`,
:meth:`~RecordStore.checkpoint`, :meth:`~RecordStore.finish`) are queued on the loop and
committed in groups (:mod:`ivr.store.write_queue`); what the database refuses waits in the
journal until it takes it (:mod:`ivr.store.replay`). Reads and one-off transactions skip the
queue (:mod:`ivr.store.queries`); :mod:`ivr.store.codec` turns records into rows and back.

Crash safety: ``begin`` inserts the row with ``outcome`` NULL as the call starts, so a server that
dies mid-call leaves a row that :meth:`RecordStore.recover_unfinished` (called at start-up) marks
``error``. Checkpoints (the path so far, at each menu) are not awaited: a newer one replaces
an older one of the same call that is still queued.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ivr.call.record import CallRecord
from ivr.call.resume import ResumePoint
from ivr.errors import DuplicateCallError, IvrError, StoreError
from ivr.health import Health
from ivr.store.codec import INSERT, UPSERT, encode_checked, encode_progress
from ivr.store.database import Database, is_postgres
from ivr.store.journal import Journal
from ivr.store.queries import RecordQueries
from ivr.store.replay import BacklogReplay
from ivr.store.write_queue import WriteQueue

__all__ = ["RecordStore"]

log = logging.getLogger("ivr.store")

HEALTH_TIMEOUT_S = 2.0  # a store read slower than this is reported down


class RecordStore(RecordQueries):
    """Persists :class:`~ivr.call.record.CallRecord` objects in SQLite or PostgreSQL without
    blocking the loop.

    Create with ``await RecordStore.open(path)``; use from the event loop that opened it. Every
    method may raise :class:`~ivr.errors.StoreError` (wrapping the driver's error, with the
    database path or URL in the message). Cancelling a task awaiting a write does not cancel
    the write.
    """

    def __init__(
        self,
        path: str,
        executor: ThreadPoolExecutor,
        max_batch: int,
        journal: Journal | None,
        busy_timeout_ms: int,
        retry_s: float,
        commit_window_s: float = 0.0,
        password: str | None = None,
        node: str = "",
    ) -> None:
        """Internal: use :meth:`open`."""
        super().__init__(Database(path, executor, busy_timeout_ms, password), node)
        # the replay waits for a batch on the writer thread (the queue is made next)
        self._replay = BacklogReplay(
            self._db, journal, retry_s, writer_busy=lambda: self._writes.in_flight
        )
        self._writes = WriteQueue(self._db, self._replay, max_batch, commit_window_s)

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        max_batch: int = 256,
        journal_path: str | os.PathLike[str] | None = None,
        busy_timeout_ms: int = 5000,
        retry_s: float = 2.0,
        commit_window_s: float = 0.0,
        password: str | None = None,
        node: str = "",
    ) -> RecordStore:
        """Open (creating parent directories, file and schema) the store at ``path``: a SQLite
        file, or a ``postgresql://user@host:port/db`` URL (its ``password`` apart: never in
        the URL, which errors and logs show).

        ``":memory:"`` gives a private in-memory database (tests). ``node``: this server's id
        when several share the database: it is written on every call it records, and the
        start-up recovery touches only its own calls. ``max_batch`` caps how many
        queued writes share one transaction (1 disables group commit). Records the database
        refuses (locked past ``busy_timeout_ms``, disk full, read-only) go to the journal at
        ``journal_path`` (default: next to a SQLite file, ``<path>.journal``; in memory for
        ``:memory:`` and PostgreSQL) and are replayed every ``retry_s`` until the database
        takes them, and at the next open. ``commit_window_s``: how long a write that finds the
        writer idle waits for others to share its transaction (0: none; a server under a
        steady trickle of calls then pays one transaction, and one hand-off to the writer
        thread, per record).
        """
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if commit_window_s < 0:
            raise ValueError(f"commit_window_s must be >= 0, got {commit_window_s}")
        path = os.fspath(path)
        if journal_path is None and path != ":memory:" and not is_postgres(path):
            journal_path = path + ".journal"
        journal = Journal(journal_path) if journal_path is not None else None
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ivr-store")
        store = cls(
            path,
            executor,
            max_batch,
            journal,
            busy_timeout_ms,
            retry_s,
            commit_window_s,
            password,
            node,
        )
        try:
            await store._db.run(store._connect)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return store

    def _connect(self) -> None:
        """Writer thread: open the database and replay what the last run could not write."""
        self._db.connect(self._replay.replay_left_over)

    @property
    def path(self) -> str:
        """The database path as given to :meth:`open` (a URL without its password)."""
        return self._db.path

    @property
    def commit_window_s(self) -> float:
        """How long a write that finds the writer idle waits for others (see :meth:`open`)."""
        return self._writes.commit_window_s

    @commit_window_s.setter
    def commit_window_s(self, value: float) -> None:
        self._writes.commit_window_s = value

    @property
    def checkpoint_delay_s(self) -> float:
        """The longest a checkpoint waits for a batch to join (0.2 s)."""
        return self._writes.checkpoint_delay_s

    @checkpoint_delay_s.setter
    def checkpoint_delay_s(self, value: float) -> None:
        self._writes.checkpoint_delay_s = value

    def instrument(self, on_written: Callable[[float], None]) -> None:
        """Tell ``on_written`` how long each record write took from queued to committed."""
        self._writes.on_written = on_written

    @property
    def writes_queued(self) -> int:
        """Record writes queued or being committed now."""
        return self._writes.depth

    @property
    def backlog(self) -> int:
        """Record writes the database refused, waiting in the journal to be replayed."""
        return self._replay.waiting

    @property
    def retry_s(self) -> float:
        """How often refused records are replayed (see :meth:`open`)."""
        return self._replay.retry_s

    @retry_s.setter
    def retry_s(self, value: float) -> None:
        self._replay.retry_s = value

    async def health(self) -> Health:
        """Up when a read answers within :data:`HEALTH_TIMEOUT_S` (the detail names no file)."""
        started = time.monotonic()
        try:
            await asyncio.wait_for(self.get("healthz"), HEALTH_TIMEOUT_S)
        except TimeoutError:
            return Health("down", f"no answer in {HEALTH_TIMEOUT_S:g} s")
        except IvrError as exc:  # the message names the file: the log only
            log.warning("health check: the store failed: %s", exc)
            return Health("down", "read failed (see the server log)")
        return Health("up", f"read in {1000 * (time.monotonic() - started):.0f} ms")

    async def close(self) -> None:
        """Commit every queued write, then close the database. Idempotent."""
        if self._db.closed:
            return
        self._db.closing = True
        await self._writes.drain()
        await self._replay.close()
        try:
            await self._db.run(self._db.disconnect)
        finally:
            self._db.release()

    async def __aenter__(self) -> RecordStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def begin(self, record: CallRecord) -> None:
        """Insert the row for a call that has just started (its outcome is still ``None``).

        A ``call_id`` the store already holds (Asterisk restarted its counter, the dialplan ran
        the AGI twice on one channel) is never an error that costs the call or the earlier
        record: ``record.call_id`` gets a suffix (``-2``, ``-3``...) and the row goes in under it.
        """
        original = record.call_id
        record.node = record.node or self.node
        params = encode_checked(record, "begin", final=False)  # the call goes on meanwhile
        for n in range(2, 1000):
            try:
                await self._writes.write(INSERT, params)
                return
            except DuplicateCallError:
                record.call_id = f"{original}-{n}"
                params = (record.call_id, *params[1:])
        raise StoreError(f"{self._db.path}: call {original!r}: 1000 calls with this id")

    def checkpoint(self, record: CallRecord, resume: ResumePoint | None = None) -> None:
        """Queue a snapshot of a call in progress: its language, path, inputs and node so far,
        and where another node may resume it (the row :meth:`begin` inserted; nothing is
        written for a call without one, or one another node has taken over).

        Only a crash needs it (a hang-up still ends in :meth:`finish`), so the call does not
        wait for the disk, and a snapshot replaces the same call's older one still in the
        queue. A failed write is logged.
        """
        self._writes.checkpoint(encode_progress(record, resume))

    async def finish(self, record: CallRecord) -> None:
        """Insert or replace the final state of a call; ``record.outcome`` must be set."""
        record.node = record.node or self.node
        await self._writes.write(UPSERT, encode_checked(record, "finish", final=True))
