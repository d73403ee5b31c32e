"""The store's record writes, queued on the loop and committed in groups on the writer thread.

While one transaction runs, new writes pile up and go into the next one (group commit), so
many concurrent calls cost one fsync-free WAL commit per batch instead of one per record. A
write that finds the writer idle may wait ``commit_window_s`` for others to share its
transaction. Checkpoints are not awaited: they ride with the next batch or go after
``checkpoint_delay_s``, and a newer one replaces an older one of the same call still queued.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ivr.store.codec import CHECKPOINT, Params
from ivr.store.database import Database
from ivr.store.replay import BacklogReplay
from ivr.store.sql import Connection

__all__ = ["WriteQueue"]

log = logging.getLogger("ivr.store")


@dataclass(slots=True)
class _Write:
    sql: str
    params: Params  # params[0] is the call_id
    done: asyncio.Future[None] | None  # None: a checkpoint, which nobody awaits
    queued_at: float = 0.0  # loop time (awaited writes: their latency is measured)


class WriteQueue:
    """Queued writes of one store; loop thread only, but for the batch on the writer thread.

    A batch the database refuses as a whole goes to ``replay``'s backlog and counts as saved.
    ``on_written`` hears how long each awaited write took from queued to committed.
    """

    def __init__(
        self, db: Database, replay: BacklogReplay, max_batch: int, commit_window_s: float
    ) -> None:
        self.commit_window_s = commit_window_s
        self.checkpoint_delay_s = 0.2  # the longest a checkpoint waits for a batch to join
        self.in_flight = False  # a batch is on the writer thread
        self.on_written: Callable[[float], None] | None = None
        self._in_flight_writes = 0
        self._db = db
        self._replay = replay
        self._max_batch = max_batch
        self._pending: list[_Write] = []
        self._snapshots: dict[str, _Write] = {}  # queued checkpoints by call_id
        self._flush_timer: asyncio.TimerHandle | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    async def write(self, sql: str, params: Params) -> None:
        """Queue ``sql`` with ``params`` (``params[0]``: the call_id) and wait until it is
        committed; its error, if it fails alone, is raised here."""
        if self._db.closing:
            raise self._db.closed_error()
        done: asyncio.Future[None] = self._db.loop.create_future()
        self._pending.append(_Write(sql, params, done, self._db.loop.time()))
        if not self.in_flight:
            if self.commit_window_s <= 0:
                self._kick()
            elif self._flush_timer is None or self._flush_timer.when() > (
                self._db.loop.time() + self.commit_window_s
            ):
                if self._flush_timer is not None:
                    self._flush_timer.cancel()
                self._flush_timer = self._db.loop.call_later(self.commit_window_s, self._flush)
        await done

    def checkpoint(self, params: Params) -> None:
        """Queue a checkpoint (``params`` of :data:`~ivr.store.codec.CHECKPOINT`), replacing
        the same call's one still queued; a failed one is logged."""
        if self._db.closing:
            raise self._db.closed_error()
        queued = self._snapshots.get(params[0])
        if queued is not None:
            queued.params = params
            return
        write = _Write(CHECKPOINT, params, None)
        self._snapshots[params[0]] = write
        self._pending.append(write)
        # No batch of its own right away: it rides with the next begin/finish, or goes
        # after checkpoint_delay_s (a hand-off to the writer thread costs more than the row).
        if not self.in_flight and self._flush_timer is None:
            self._flush_timer = self._db.loop.call_later(self.checkpoint_delay_s, self._flush)

    async def drain(self) -> None:
        """At close, once no new write comes: commit every queued write."""
        self._flush()  # queued checkpoints
        while not self._idle.is_set():
            await self._idle.wait()

    @property
    def depth(self) -> int:
        """Writes queued or on the writer thread now."""
        return len(self._pending) + self._in_flight_writes

    def _flush(self) -> None:
        self._flush_timer = None
        if self._pending and not self.in_flight:
            self._kick()

    def _kick(self) -> None:
        """Hand the next batch of queued writes to the writer thread (loop thread only)."""
        batch, self._pending = (self._pending[: self._max_batch], self._pending[self._max_batch :])
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        self.in_flight = True
        self._in_flight_writes = len(batch)
        self._idle.clear()
        for write in batch:
            if write.done is None:  # a checkpoint leaves the queue: the next one is new
                del self._snapshots[write.params[0]]
        job = self._db.loop.run_in_executor(
            self._db.executor, self._write_batch, [(w.sql, w.params) for w in batch]
        )
        job.add_done_callback(lambda j: self._batch_done(j, batch))

    def _batch_done(self, job: asyncio.Future[list[Exception | None]], batch: list[_Write]) -> None:
        exc = job.exception()
        results: Sequence[BaseException | None] = (
            [exc] * len(batch) if exc is not None else job.result()
        )
        now, on_written = self._db.loop.time(), self.on_written
        for write, error in zip(batch, results, strict=True):
            done = write.done
            if on_written is not None and done is not None and error is None:
                on_written(now - write.queued_at)
            if done is None:
                if error is not None:
                    log.warning("checkpoint of call %s not saved: %s", write.params[0], error)
                continue
            if done.done():  # the awaiting task was cancelled; the write happened anyway
                continue
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)
        self.in_flight = False
        self._in_flight_writes = 0
        if self._replay.down:
            self._replay.schedule_retry()
        if self._pending:
            self._kick()
        else:
            self._idle.set()

    def _write_batch(self, batch: list[tuple[str, Params]]) -> list[Exception | None]:
        """Writer thread: commit ``batch`` in one transaction; per-write errors are returned.

        A constraint violation fails only its own statement. When the database itself fails
        (an OperationalError: locked, disk full, read-only, the server gone), the batch goes to
        the backlog and counts as saved; until a retry gets through, later batches go there at
        once, without waiting out the busy timeout again. Any other error rolls the batch back
        and retries each write in its own transaction, so one bad write sinks no other.
        """
        if self._replay.down:
            return self._replay.set_aside(batch, None)
        dialect = self._db.dialect
        try:
            conn = self._db.connection()  # PostgreSQL: may connect again, and fail to
            return self._transaction(conn, batch)
        except dialect.OperationalError as exc:
            return self._replay.set_aside(batch, exc)
        except dialect.Error as exc:
            if len(batch) == 1:
                return [self._db.error("write", exc, batch[0][1][0])]
        results: list[Exception | None] = []
        for sql, params in batch:
            try:
                results += self._transaction(conn, [(sql, params)])
            except dialect.OperationalError as exc:
                results += self._replay.set_aside([(sql, params)], exc)
            except dialect.Error as exc:
                results.append(self._db.error("write", exc, params[0]))
        return results

    def _transaction(
        self, conn: Connection, batch: list[tuple[str, Params]]
    ) -> list[Exception | None]:
        """``batch`` in one transaction; a write a constraint refuses fails alone. Where a
        refused statement aborts the transaction (PostgreSQL), the batch first runs without
        a savepoint around each statement (three round trips instead of one) and, only if a
        write is refused, again with them."""
        if self._db.dialect.aborts_on_error:
            try:
                return self._run(conn, batch, guarded=False)
            except _Refused:
                pass  # rolled back whole: once more, each statement in its savepoint
        return self._run(conn, batch, guarded=True)

    def _run(
        self, conn: Connection, batch: list[tuple[str, Params]], *, guarded: bool
    ) -> list[Exception | None]:
        results: list[Exception | None] = []
        dialect = self._db.dialect
        with dialect.transaction(conn):
            for sql, params in batch:
                if not guarded:
                    try:
                        conn.execute(sql, params)
                    except dialect.IntegrityError:
                        raise _Refused from None
                    results.append(None)
                    continue
                try:
                    with dialect.statement(conn):  # a refused one undoes only itself
                        conn.execute(sql, params)
                    results.append(None)
                except dialect.IntegrityError as exc:
                    results.append(self._db.error("write", exc, params[0]))
        return results


class _Refused(Exception):
    """A constraint refused a write of a batch run without savepoints: roll it all back."""
