"""The store's SQLite database: one connection, touched only by one dedicated thread.

SQLite work never runs on the event loop: a single-worker executor (the writer thread) owns
the only connection, and the loop hands it work with :meth:`Database.run`, which also turns
:class:`sqlite3.Error` into :class:`~ivr.errors.StoreError` naming the database file.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from ivr.errors import DuplicateCallError, StoreError
from ivr.store.schema import migrate

__all__ = ["Database"]

T = TypeVar("T")


class Database:
    """The SQLite file at ``path``, its one connection and the thread that alone uses it.

    Create it on the event loop that will use it. ``closing`` and ``closed`` are the store's
    lifecycle: closing, no new work is taken; closed, the thread is gone.
    """

    def __init__(self, path: str, executor: ThreadPoolExecutor, busy_timeout_ms: int) -> None:
        self.path = path
        self.executor = executor  # one worker: the writer thread
        self.loop = asyncio.get_running_loop()
        self.closing = False
        self.closed = False
        self._busy_timeout_ms = busy_timeout_ms
        self._conn: sqlite3.Connection | None = None  # touched only on the writer thread

    def connect(self, prepare: Callable[[sqlite3.Connection], None]) -> None:
        """Writer thread: create the directory and the file, bring the schema up to date and
        ``prepare`` the connection before anything else uses it."""
        if self.path != ":memory:":
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"{self.path}: cannot create the directory: {exc}") from exc
        conn = self._new_connection()
        try:
            migrate(conn, self.path)
            prepare(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _new_connection(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        except BaseException:
            conn.close()
            raise
        return conn

    def reconnect(self) -> None:
        """Writer thread: a connection SQLite opened read-only (the file was read-only at
        the time) stays so: open it again to see whether it is writable now."""
        conn = self._new_connection()
        old, self._conn = self._conn, conn
        if old is not None:
            old.close()

    def disconnect(self) -> None:
        """Writer thread: close the connection (nothing can use it after this)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def connection(self) -> sqlite3.Connection:
        """Writer thread: the connection (a :class:`~ivr.errors.StoreError` once closed)."""
        if self._conn is None:
            raise self.closed_error()
        return self._conn

    def closed_error(self) -> StoreError:
        """The error of a call on a store that is closed or closing."""
        return StoreError(f"{self.path}: the store is closed")

    def error(self, what: str, exc: sqlite3.Error, call_id: object = None) -> StoreError:
        """``exc`` as the :class:`~ivr.errors.StoreError` the store raises: a
        :class:`~ivr.errors.DuplicateCallError` when ``call_id`` is already taken."""
        call = f" call {call_id!r}:" if call_id is not None else ""
        kind = (
            DuplicateCallError
            if isinstance(exc, sqlite3.IntegrityError) and "calls.call_id" in str(exc)
            else StoreError
        )
        error = kind(f"{self.path}:{call} {what} failed: {exc}")
        error.__cause__ = exc
        return error

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the writer thread, turning :class:`sqlite3.Error` into StoreError
        (named after ``fn``)."""
        if self.closed:
            raise self.closed_error()

        def call() -> T:
            try:
                return fn()
            except sqlite3.Error as exc:
                raise self.error(getattr(fn, "__name__", "operation").strip("_"), exc) from exc

        return await self.loop.run_in_executor(self.executor, call)

    def release(self) -> None:
        """The last step of closing: no more work; the thread ends once it is idle."""
        self.closed = True
        self.executor.shutdown(wait=False)
