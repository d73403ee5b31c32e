"""The call-record store: one SQLite row per call, written without blocking the event loop.

All SQLite work runs on one dedicated writer thread (a single-worker executor that owns the only
connection). Writes (:meth:`RecordStore.begin`, :meth:`~RecordStore.checkpoint`,
:meth:`~RecordStore.finish`) are queued on the loop and committed in groups: while one
transaction is running, new writes pile up and go into the next one (group commit), so many
concurrent calls cost one fsync-free WAL commit per batch instead of one per record.

Crash safety: ``begin`` inserts the row with ``outcome`` NULL as the call starts, so a server that
dies mid-call leaves a row that :meth:`RecordStore.recover_unfinished` (called at start-up) marks
``error``. Checkpoints (the path so far, at each menu) are not awaited: a newer one replaces
an older one of the same call that is still queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from ivr.call.channel import readable
from ivr.call.record import (
    OUTCOMES,
    CallRecord,
    InputEvent,
    Outcome,
    QueueVisit,
    SurveyAnswer,
    SurveyResult,
)
from ivr.errors import DuplicateCallError, IvrError, StoreError
from ivr.health import Health
from ivr.store.journal import Backlog, Entry, Journal, Op
from ivr.store.schema import SCHEMA_VERSION, immediate, migrate

__all__ = ["RECOVERED_ERROR", "SCHEMA_VERSION", "RecordStore"]

log = logging.getLogger("ivr.store")

T = TypeVar("T")
Params = tuple[Any, ...]

RECOVERED_ERROR = "server stopped during the call"
HEALTH_TIMEOUT_S = 2.0  # a store read slower than this is reported down

_COLUMNS = (
    "call_id",
    "flow",
    "flow_version",
    "caller",
    "dnis",
    "started_at",
    "ended_at",
    "duration_s",
    "language",
    "path",
    "inputs",
    "outcome",
    "end_node",
    "transfer_target",
    "error",
    "variables",
    "queue",
    "survey",
)
_PLAIN_COLUMNS = tuple(  # stored as they are in the record
    c
    for c in _COLUMNS
    if c not in ("duration_s", "path", "inputs", "outcome", "variables", "queue", "survey")
)
_COLS = ", ".join(_COLUMNS)
_MARKS = ", ".join("?" * len(_COLUMNS))
_INSERT = f"INSERT INTO calls ({_COLS}) VALUES ({_MARKS})"
_UPSERT = f"{_INSERT} ON CONFLICT(call_id) DO UPDATE SET " + ", ".join(
    f"{c} = excluded.{c}" for c in _COLUMNS[1:]
)

# A checkpoint saves where the caller is; the rest of the row comes with begin and finish.
# (call_id first, as in every write: errors and the checkpoint queue are keyed on params[0].)
# Never on a finished row: that is an earlier call that had the same id.
_CHECKPOINT = (
    "UPDATE calls SET language = ?2, path = ?3, inputs = ?4, end_node = ?5 "
    "WHERE call_id = ?1 AND outcome IS NULL"
)

# Writes that hold a record, and so go to the backlog when the database refuses them.
_BACKLOG_OPS: dict[str, Op] = {_INSERT: "begin", _UPSERT: "finish"}


def _encode(record: CallRecord) -> Params:
    """A record as the parameter tuple for :data:`_INSERT` (JSON for the list/dict fields)."""
    return _readable(
        (
            record.call_id,
            record.flow,
            record.flow_version,
            record.caller,
            record.dnis,
            record.started_at,
            record.ended_at,
            record.duration_s,
            record.language,
            _dumps(record.path),
            _inputs_json(record),
            record.outcome,
            record.end_node,
            record.transfer_target,
            record.error,
            _dumps(record.variables),
            _json_or_none(record.queue),
            _json_or_none(record.survey),
        )
    )


def _readable(params: Params) -> Params:
    """Caller text from Asterisk may hold bytes that were not UTF-8 (``surrogateescape``),
    which SQLite cannot encode: they are stored as ``\\xe9`` text. ``params[0]`` (the
    call_id, a queue key) is left as it is; the AGI server already made it plain text."""
    return (params[0], *(readable(p) if isinstance(p, str) else p for p in params[1:]))


def _dumps(value: object) -> str:
    return readable(json.dumps(value, ensure_ascii=False), in_json=True)


def _progress(record: CallRecord) -> Params:
    """The :data:`_CHECKPOINT` parameters of a call in progress."""
    if record.outcome is not None:
        raise ValueError(f"checkpoint(): call {record.call_id!r} already has an outcome")
    return _readable(
        (
            record.call_id,
            record.language,
            _dumps(record.path),
            _inputs_json(record),
            record.end_node,
        )
    )


def _inputs_json(record: CallRecord) -> str:
    return _dumps(
        [{"node": i.node, "kind": i.kind, "value": i.value, "at_s": i.at_s} for i in record.inputs]
    )


def _json_or_none(value: QueueVisit | SurveyResult | None) -> str | None:
    return None if value is None else _dumps(asdict(value))


def _survey(text: str | None) -> SurveyResult | None:
    if text is None:
        return None
    data = json.loads(text)
    data["answers"] = [SurveyAnswer(**a) for a in data["answers"]]
    return SurveyResult(**data)


def _checked(record: CallRecord, op: str, final: bool) -> Params:
    """``record`` encoded, after checking it has an outcome iff ``final``."""
    if (record.outcome is not None) != final:
        state = "has no outcome" if final else "already has an outcome"
        raise ValueError(f"{op}(): call {record.call_id!r} {state}")
    return _encode(record)


def _decode(row: sqlite3.Row) -> CallRecord:
    outcome = row["outcome"]
    if outcome is not None and outcome not in OUTCOMES:
        raise StoreError(f"call {row['call_id']!r}: unknown outcome {outcome!r} in the database")
    return CallRecord(
        **{name: row[name] for name in _PLAIN_COLUMNS},
        path=json.loads(row["path"]),
        inputs=[InputEvent(**item) for item in json.loads(row["inputs"])],
        outcome=cast("Outcome | None", outcome),
        variables=json.loads(row["variables"]),
        queue=QueueVisit(**json.loads(row["queue"])) if row["queue"] is not None else None,
        survey=_survey(row["survey"]),
    )


def _where(
    flow: str | None, outcome: Outcome | None, since: float | None, until: float | None
) -> tuple[str, list[Any]]:
    """A ``WHERE`` clause (or "") and its parameters; ``since`` inclusive, ``until`` exclusive."""
    clauses: list[str] = []
    params: list[Any] = []
    for clause, value in (
        ("flow = ?", flow),
        ("outcome = ?", outcome),
        ("started_at >= ?", since),
        ("started_at < ?", until),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


@dataclass(slots=True)
class _Write:
    sql: str
    params: Params  # params[0] is the call_id
    done: asyncio.Future[None] | None  # None: a checkpoint, which nobody awaits


class RecordStore:
    """Persists :class:`~ivr.call.record.CallRecord` objects in SQLite without blocking the loop.

    Create with ``await RecordStore.open(path)``; use from the event loop that opened it. Every
    method may raise :class:`~ivr.errors.StoreError` (wrapping :class:`sqlite3.Error`, with the
    database path in the message). Cancelling a task awaiting a write does not cancel the write.
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
    ) -> None:
        """Internal: use :meth:`open`."""
        self.commit_window_s = commit_window_s
        self._path = path
        self._backlog = Backlog(journal)  # writer thread only
        self._down = False  # writer thread: the database failed; writes go to the backlog
        self._busy_timeout_ms = busy_timeout_ms
        self.retry_s = retry_s
        self._retry_timer: asyncio.TimerHandle | None = None
        self._retrying: asyncio.Task[None] | None = None
        self._executor = executor
        self._max_batch = max_batch
        self._conn: sqlite3.Connection | None = None  # touched only on the writer thread
        self._loop = asyncio.get_running_loop()
        self._pending: list[_Write] = []
        self._snapshots: dict[str, _Write] = {}  # queued checkpoints by call_id
        self._flush_timer: asyncio.TimerHandle | None = None
        self.checkpoint_delay_s = 0.2  # the longest a checkpoint waits for a batch to join
        self._in_flight = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        self._closed = False

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
    ) -> RecordStore:
        """Open (creating parent directories, file and schema) the store at ``path``.

        ``":memory:"`` gives a private in-memory database (tests). ``max_batch`` caps how many
        queued writes share one transaction (1 disables group commit). Records the database
        refuses (locked past ``busy_timeout_ms``, disk full, read-only) go to the journal at
        ``journal_path`` (default: next to the database, ``<path>.journal``; none for
        ``:memory:``) and are replayed every ``retry_s`` until the database takes them, and at
        the next open. ``commit_window_s``: how long a write that finds the writer idle waits
        for others to share its transaction (0: none; a server under a steady trickle of calls
        then pays one transaction, and one hand-off to the writer thread, per record).
        """
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if commit_window_s < 0:
            raise ValueError(f"commit_window_s must be >= 0, got {commit_window_s}")
        path = os.fspath(path)
        if journal_path is None and path != ":memory:":
            journal_path = path + ".journal"
        journal = Journal(journal_path) if journal_path is not None else None
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ivr-store")
        store = cls(path, executor, max_batch, journal, busy_timeout_ms, retry_s, commit_window_s)
        try:
            await store._run(store._connect)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return store

    def _connect(self) -> None:
        if self._path != ":memory:":
            try:
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"{self._path}: cannot create the directory: {exc}") from exc
        conn = self._new_connection()
        try:
            migrate(conn, self._path)
            if len(self._backlog):  # what the last run could not write
                log.warning(
                    "%s: replaying %d record write(s) from %s",
                    self._path,
                    len(self._backlog),
                    self._backlog.journal and self._backlog.journal.path,
                )
                self._backlog.replay(conn, _replay_one)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _new_connection(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _reconnect(self) -> None:
        """Writer thread: a connection SQLite opened read-only (the file was read-only at
        the time) stays so: open it again to see whether it is writable now."""
        conn = self._new_connection()
        old, self._conn = self._conn, conn
        if old is not None:
            old.close()

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
        if self._closed:
            return
        self._closing = True
        self._flush()  # queued checkpoints
        while not self._idle.is_set():
            await self._idle.wait()
        if self._retry_timer is not None:
            self._retry_timer.cancel()
            self._retry_timer = None
        if self._retrying is not None:
            await self._retrying
        await self._run(self._last_replay)
        try:
            await self._run(self._disconnect)
        finally:
            self._closed = True
            self._executor.shutdown(wait=False)

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def __aenter__(self) -> RecordStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def path(self) -> str:
        """The database path as given to :meth:`open`."""
        return self._path

    async def begin(self, record: CallRecord) -> None:
        """Insert the row for a call that has just started (its outcome is still ``None``).

        A ``call_id`` the store already holds (Asterisk restarted its counter, the dialplan ran
        the AGI twice on one channel) is never an error that costs the call or the earlier
        record: ``record.call_id`` gets a suffix (``-2``, ``-3``...) and the row goes in under it.
        """
        original = record.call_id
        params = _checked(record, "begin", final=False)  # the call goes on meanwhile
        for n in range(2, 1000):
            try:
                await self._enqueue(_INSERT, params)
                return
            except DuplicateCallError:
                record.call_id = f"{original}-{n}"
                params = (record.call_id, *params[1:])
        raise StoreError(f"{self._path}: call {original!r}: 1000 calls with this id")

    def checkpoint(self, record: CallRecord) -> None:
        """Queue a snapshot of a call in progress: its language, path, inputs and node so far
        (the row :meth:`begin` inserted; nothing is written for a call without one).

        Only a crash needs it (a hang-up still ends in :meth:`finish`), so the call does not
        wait for the disk, and a snapshot replaces the same call's older one still in the
        queue. A failed write is logged.
        """
        params = _progress(record)
        if self._closing:
            raise StoreError(f"{self._path}: the store is closed")
        queued = self._snapshots.get(record.call_id)
        if queued is not None:
            queued.params = params
            return
        write = _Write(_CHECKPOINT, params, None)
        self._snapshots[record.call_id] = write
        self._pending.append(write)
        # No batch of its own right away: it rides with the next begin/finish, or goes
        # after checkpoint_delay_s (a hand-off to the writer thread costs more than the row).
        if not self._in_flight and self._flush_timer is None:
            self._flush_timer = self._loop.call_later(self.checkpoint_delay_s, self._flush)

    def _flush(self) -> None:
        self._flush_timer = None
        if self._pending and not self._in_flight:
            self._kick()

    async def finish(self, record: CallRecord) -> None:
        """Insert or replace the final state of a call; ``record.outcome`` must be set."""
        await self._enqueue(_UPSERT, _checked(record, "finish", final=True))

    async def _enqueue(self, sql: str, params: Params) -> None:
        if self._closing:
            raise StoreError(f"{self._path}: the store is closed")
        done: asyncio.Future[None] = self._loop.create_future()
        self._pending.append(_Write(sql, params, done))
        if not self._in_flight:
            if self.commit_window_s <= 0:
                self._kick()
            elif self._flush_timer is None or self._flush_timer.when() > (
                self._loop.time() + self.commit_window_s
            ):
                if self._flush_timer is not None:
                    self._flush_timer.cancel()
                self._flush_timer = self._loop.call_later(self.commit_window_s, self._flush)
        await done

    def _kick(self) -> None:
        """Hand the next batch of queued writes to the writer thread (loop thread only)."""
        batch, self._pending = (self._pending[: self._max_batch], self._pending[self._max_batch :])
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        self._in_flight = True
        self._idle.clear()
        for write in batch:
            if write.done is None:  # a checkpoint leaves the queue: the next one is new
                del self._snapshots[write.params[0]]
        job = self._loop.run_in_executor(
            self._executor, self._write_batch, [(w.sql, w.params) for w in batch]
        )
        job.add_done_callback(lambda j: self._batch_done(j, batch))

    def _batch_done(self, job: asyncio.Future[list[Exception | None]], batch: list[_Write]) -> None:
        exc = job.exception()
        results: Sequence[BaseException | None] = (
            [exc] * len(batch) if exc is not None else job.result()
        )
        for write, error in zip(batch, results, strict=True):
            done = write.done
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
        self._in_flight = False
        if self._down:
            self._schedule_retry()
        if self._pending:
            self._kick()
        else:
            self._idle.set()

    def _write_batch(self, batch: list[tuple[str, Params]]) -> list[Exception | None]:
        """Writer thread: commit ``batch`` in one transaction; per-write errors are returned.

        A constraint violation fails only its own statement. When the database itself fails
        (an OperationalError: locked, disk full, read-only), the batch goes to the backlog and
        counts as saved; until a retry gets through, later batches go there at once, without
        waiting out the busy timeout again. Any other error rolls the batch back and retries
        each write in its own transaction, so one bad write sinks no other.
        """
        conn = self._connection()
        if self._down:
            return self._set_aside(batch, None)
        try:
            return self._transaction(conn, batch)
        except sqlite3.OperationalError as exc:
            return self._set_aside(batch, exc)
        except sqlite3.Error as exc:
            if len(batch) == 1:
                return [self._error("write", exc, batch[0][1][0])]
        results: list[Exception | None] = []
        for sql, params in batch:
            try:
                results += self._transaction(conn, [(sql, params)])
            except sqlite3.OperationalError as exc:
                results += self._set_aside([(sql, params)], exc)
            except sqlite3.Error as exc:
                results.append(self._error("write", exc, params[0]))
        return results

    def _set_aside(
        self, batch: list[tuple[str, Params]], exc: sqlite3.Error | None
    ) -> list[Exception | None]:
        """Writer thread: records into the backlog (checkpoints, mere crash snapshots, are
        dropped); every write of the batch counts as done."""
        if not self._down:
            journal = self._backlog.journal
            log.error(
                "%s: database unavailable (%s): call records go to %s and are replayed "
                "every %.0f s until it is back",
                self._path,
                exc,
                journal.path if journal else "memory",
                self.retry_s,
            )
        self._down = True
        self._backlog.add(
            [(_BACKLOG_OPS[sql], params) for sql, params in batch if sql in _BACKLOG_OPS]
        )
        return [None] * len(batch)

    def _replay(self) -> int:
        """Writer thread: move the backlog into the database; how many writes are still
        waiting (0: the database is back)."""
        try:
            count = self._backlog.replay(self._connection(), _replay_one)
        except sqlite3.Error as exc:
            self._backlog.save()  # memory into the journal, if it can take it now
            log.debug("%s: still unavailable: %s", self._path, exc)
            if "readonly" in str(exc):
                with contextlib.suppress(sqlite3.Error):
                    self._reconnect()
            return len(self._backlog)
        if self._down or count:
            log.warning("%s: database back: %d record write(s) replayed", self._path, count)
        self._down = False
        return 0

    def _last_replay(self) -> None:
        """Writer thread, at close: a last replay; what only memory holds is logged whole,
        the only copy left."""
        if not len(self._backlog) or not self._replay():
            return
        self._backlog.save()
        for op, row in self._backlog.memory:
            log.critical(
                "%s: call record not saved (%s): %s",
                self._path,
                op,
                json.dumps(row, ensure_ascii=False),
            )

    def _schedule_retry(self) -> None:
        if self._retry_timer is None and self._retrying is None and not self._closed:
            self._retry_timer = self._loop.call_later(self.retry_s, self._start_retry)

    def _start_retry(self) -> None:
        self._retry_timer = None
        if self._in_flight:  # a batch is on the writer thread: try after it
            self._schedule_retry()
            return
        self._retrying = self._loop.create_task(self._retry())

    async def _retry(self) -> None:
        try:
            left = await self._run(self._replay)
        except StoreError as exc:
            log.warning("%s: replay failed: %s", self._path, exc)
            left = 1
        finally:
            self._retrying = None
        if left and not self._closing:
            self._schedule_retry()

    def _transaction(
        self, conn: sqlite3.Connection, batch: list[tuple[str, Params]]
    ) -> list[Exception | None]:
        results: list[Exception | None] = []
        with immediate(conn):
            for sql, params in batch:
                try:
                    conn.execute(sql, params)
                    results.append(None)
                except sqlite3.IntegrityError as exc:  # only this statement is rolled back
                    results.append(self._error("write", exc, params[0]))
        return results

    async def get(self, call_id: str) -> CallRecord | None:
        """The record of ``call_id``, or ``None`` if there is none."""

        rows = await self.read("SELECT * FROM calls WHERE call_id = ?", [call_id])
        return _decode(rows[0]) if rows else None

    async def recent(
        self,
        limit: int = 50,
        flow: str | None = None,
        outcome: Outcome | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[CallRecord]:
        """Up to ``limit`` records, newest ``started_at`` first, filtered by the given fields.

        ``since`` is inclusive and ``until`` exclusive (Unix times, on ``started_at``).
        """
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        where, params = _where(flow, outcome, since, until)
        sql = f"SELECT * FROM calls{where} ORDER BY started_at DESC, call_id LIMIT ?"
        return [_decode(row) for row in await self.read(sql, [*params, limit])]

    async def count_by_outcome(
        self, flow: str | None = None, since: float | None = None, until: float | None = None
    ) -> dict[Outcome | None, int]:
        """Number of calls per outcome (``None``: still in progress), every key present."""
        where, params = _where(flow, None, since, until)
        sql = f"SELECT outcome, COUNT(*) FROM calls{where} GROUP BY outcome"
        counts: dict[Outcome | None, int] = dict.fromkeys((*OUTCOMES, None), 0)
        for outcome, n in await self.read(sql, params):
            counts[outcome] = n
        return counts

    async def transaction(
        self, fn: Callable[[sqlite3.Connection], T], *, durable: bool = False
    ) -> T:
        """Run ``fn(connection)`` in one write transaction on the store's thread.

        ``durable``: the commit is synced to disk before this returns (``synchronous=FULL``),
        so it survives a power loss, not only a crash (WAL with NORMAL syncs at checkpoints).
        For the few writes that promise something to a caller, e.g. a booked callback.
        """

        def call() -> T:
            conn = self._connection()
            if not durable:
                with immediate(conn):
                    return fn(conn)
            conn.execute("PRAGMA synchronous = FULL")  # not allowed inside a transaction
            try:
                with immediate(conn):
                    return fn(conn)
            finally:
                conn.execute("PRAGMA synchronous = NORMAL")

        return await self._run(call)

    async def attach_survey(self, call_id: str, survey: SurveyResult) -> bool:
        """Store a survey against an earlier call (outbound surveys).

        ``False`` when the call is unknown or already has a survey: one survey per call.
        """

        def attach() -> bool:
            conn = self._connection()
            with immediate(conn):
                cursor = conn.execute(
                    "UPDATE calls SET survey = ? WHERE call_id = ? AND survey IS NULL",
                    (_json_or_none(survey), call_id),
                )
            return cursor.rowcount == 1

        return await self._run(attach)

    async def recover_unfinished(self, now: float) -> int:
        """Mark every call without an outcome as ``error``; returns how many were marked.

        Call once at start-up, before taking calls: a row still without outcome then belongs to
        a call the previous server process never finished. ``end_node`` becomes the last node of
        the saved path (or stays as saved if the path is empty), ``error`` is
        :data:`RECOVERED_ERROR`, and a missing ``ended_at`` becomes ``now``.
        """

        def recover() -> int:
            conn = self._connection()
            with immediate(conn):
                return conn.execute(
                    "UPDATE calls SET outcome = 'error', error = ?,"
                    " end_node = COALESCE(json_extract(path, '$[#-1]'), end_node),"
                    " ended_at = COALESCE(ended_at, ?),"
                    " duration_s = COALESCE(ended_at, ?) - started_at"
                    " WHERE outcome IS NULL",
                    (RECOVERED_ERROR, now, now),
                ).rowcount

        if self._closing:
            raise StoreError(f"{self._path}: the store is closed")
        return await self._run(recover)

    async def read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Rows of one query, on the store's thread, without the write lock a
        :meth:`transaction` takes (one statement sees one snapshot of the database)."""

        def read() -> list[sqlite3.Row]:
            return self._connection().execute(sql, params).fetchall()

        return await self._run(read)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"{self._path}: the store is closed")
        return self._conn

    def _error(self, what: str, exc: sqlite3.Error, call_id: object = None) -> StoreError:
        call = f" call {call_id!r}:" if call_id is not None else ""
        kind = (
            DuplicateCallError
            if isinstance(exc, sqlite3.IntegrityError) and "calls.call_id" in str(exc)
            else StoreError
        )
        error = kind(f"{self._path}:{call} {what} failed: {exc}")
        error.__cause__ = exc
        return error

    async def _run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the writer thread, turning :class:`sqlite3.Error` into StoreError."""
        if self._closed:
            raise StoreError(f"{self._path}: the store is closed")

        def call() -> T:
            try:
                return fn()
            except sqlite3.Error as exc:
                raise self._error(getattr(fn, "__name__", "operation").strip("_"), exc) from exc

        return await self._loop.run_in_executor(self._executor, call)


def _replay_one(conn: sqlite3.Connection, entry: Entry) -> None:
    """One backlog entry into the database, idempotently: a replay cut short by a crash is
    run again whole. A begin already there is left alone; a finish completes its own call's
    row (same id and start), and lands under a suffixed id when an earlier, finished call
    holds that id."""
    op, row = entry
    if op == "begin":
        conn.execute(_INSERT + " ON CONFLICT(call_id) DO NOTHING", row)
        return
    call_id, started_at = row[0], row[_COLUMNS.index("started_at")]
    for n in range(1, 1000):
        key = call_id if n == 1 else f"{call_id}-{n}"
        found = conn.execute(
            "SELECT started_at, outcome FROM calls WHERE call_id = ?", (key,)
        ).fetchone()
        if found is None or found[0] == started_at or found[1] is None:
            conn.execute(_UPSERT, (key, *row[1:]))
            return
    log.error("call %r: not replayed: 1000 calls with this id", call_id)
