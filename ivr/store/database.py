"""The store's database: one connection, touched only by one dedicated thread.

Database work never runs on the event loop: a single-worker executor (the writer thread) owns
the only connection, and the loop hands it work with :meth:`Database.run`, which also turns
the driver's errors into :class:`~ivr.errors.StoreError` naming the database. The database is
a SQLite file (a path) or PostgreSQL (a ``postgresql://`` URL; :mod:`ivr.store.postgres`).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from ivr.errors import DuplicateCallError, StoreError
from ivr.store.schema import SCHEMA_VERSION, migrate
from ivr.store.sql import Connection, Dialect, SqliteDialect

__all__ = ["Database", "is_postgres", "shown"]


def is_postgres(target: str) -> bool:
    """Whether the store's ``target`` is a PostgreSQL URL (else a SQLite file)."""
    return target.startswith(("postgresql://", "postgres://"))


def shown(target: str) -> str:
    """``target`` as error messages and logs show it: a URL without any password in it."""
    if not is_postgres(target):
        return target
    scheme, _, rest = target.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at:
        return target
    return f"{scheme}://{userinfo.partition(':')[0]}@{host}"


T = TypeVar("T")


class Database:
    """The database at ``target`` (a SQLite path or a PostgreSQL URL), its one connection and
    the thread that alone uses it. ``password``: PostgreSQL's, kept out of the URL.

    Create it on the event loop that will use it. ``closing`` and ``closed`` are the store's
    lifecycle: closing, no new work is taken; closed, the thread is gone.
    """

    def __init__(
        self,
        target: str,
        executor: ThreadPoolExecutor,
        busy_timeout_ms: int,
        password: str | None = None,
    ) -> None:
        self.target = target
        self.path = shown(target)  # what messages name
        self.dialect: Dialect = _dialect(target)
        self.executor = executor  # one worker: the writer thread
        self.loop = asyncio.get_running_loop()
        self.closing = False
        self.closed = False
        self._busy_timeout_ms = busy_timeout_ms
        self._password = password
        self._conn: Connection | None = None  # touched only on the writer thread

    def connect(self, prepare: Callable[[Connection], None]) -> None:
        """Writer thread: create the directory and the file (SQLite), bring the schema up to
        date and ``prepare`` the connection before anything else uses it."""
        if not is_postgres(self.target) and self.target != ":memory:":
            try:
                Path(self.target).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"{self.path}: cannot create the directory: {exc}") from exc
        conn = self._new_connection()
        try:
            if is_postgres(self.target):
                from ivr.store import postgres

                postgres.migrate(conn, self.path, SCHEMA_VERSION)
            else:
                migrate(conn, self.path)
            prepare(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _new_connection(self) -> Connection:
        if is_postgres(self.target):
            from ivr.store import postgres

            return postgres.connect(self.target, self._password)
        conn = sqlite3.connect(self.target, isolation_level=None)
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
        the time) stays so, and a PostgreSQL connection the server dropped stays broken:
        open it again."""
        conn = self._new_connection()
        old, self._conn = self._conn, conn
        if old is not None:
            old.close()

    def disconnect(self) -> None:
        """Writer thread: close the connection (nothing can use it after this)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def connection(self) -> Connection:
        """Writer thread: the connection (a :class:`~ivr.errors.StoreError` once closed); a
        PostgreSQL connection the server dropped is opened again."""
        if self._conn is None:
            raise self.closed_error()
        if getattr(self._conn, "closed", False):
            self.reconnect()
            assert self._conn is not None
        return self._conn

    def closed_error(self) -> StoreError:
        """The error of a call on a store that is closed or closing."""
        return StoreError(f"{self.path}: the store is closed")

    def error(self, what: str, exc: Exception, call_id: object = None) -> StoreError:
        """``exc`` as the :class:`~ivr.errors.StoreError` the store raises: a
        :class:`~ivr.errors.DuplicateCallError` when ``call_id`` is already taken."""
        call = f" call {call_id!r}:" if call_id is not None else ""
        kind = DuplicateCallError if self.dialect.is_duplicate_call(exc) else StoreError
        error = kind(f"{self.path}:{call} {what} failed: {self.dialect.describe(exc)}")
        error.__cause__ = exc
        return error

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the writer thread, turning the driver's errors into StoreError
        (named after ``fn``)."""
        if self.closed:
            raise self.closed_error()
        errors = self.dialect.Error

        def call() -> T:
            try:
                return fn()
            except errors as exc:
                raise self.error(getattr(fn, "__name__", "operation").strip("_"), exc) from exc

        return await self.loop.run_in_executor(self.executor, call)

    def release(self) -> None:
        """The last step of closing: no more work; the thread ends once it is idle."""
        self.closed = True
        self.executor.shutdown(wait=False)


def _dialect(target: str) -> Dialect:
    if is_postgres(target):
        from ivr.store.postgres import PostgresDialect

        return PostgresDialect()
    return SqliteDialect()
