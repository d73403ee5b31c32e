"""What the store's SQL needs from a database engine, and the two engines it runs on.

The store writes one SQL text for both engines: ``?`` placeholders, ``ON CONFLICT`` upserts,
``RETURNING``. A :class:`Dialect` supplies the rest: how to open a connection, begin a write
transaction, make one commit durable, isolate one statement of a batch, read a JSON field,
and which exceptions mean what. :class:`SqliteDialect` is the embedded default;
:class:`~ivr.store.postgres.PostgresDialect` runs the same store on PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

__all__ = ["Connection", "Cursor", "Dialect", "Row", "SqliteDialect"]


class Row(Protocol):
    """One result row: by position or by column name (``sqlite3.Row`` does both)."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...


class Cursor(Protocol):
    """What the store uses of a DB-API cursor."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """What the store uses of a connection in autocommit mode: ``execute`` with ``?``
    placeholders (a ``sqlite3.Connection`` as it is)."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, seq_of_parameters: Iterable[Sequence[Any]], /) -> Cursor: ...

    def close(self) -> None: ...


class Dialect(Protocol):
    """One database engine as the store sees it."""

    @property
    def name(self) -> str: ...

    @property
    def Error(self) -> type[Exception]:  # the DB-API names
        """Any error of the engine's driver."""
        ...

    @property
    def OperationalError(self) -> type[Exception]:
        """The database as a whole failed: locked, down, disk full, read-only."""
        ...

    @property
    def IntegrityError(self) -> type[Exception]:
        """A constraint refused one statement."""
        ...

    @property
    def aborts_on_error(self) -> bool:
        """Whether one failed statement aborts the whole transaction (PostgreSQL)."""
        ...

    def transaction(
        self, conn: Connection, *, durable: bool = False
    ) -> AbstractContextManager[None]:
        """A write transaction: commit at the end, roll back on an exception. ``durable``:
        the commit is on disk before it returns (power loss, not only a crash)."""
        ...

    def statement(self, conn: Connection) -> AbstractContextManager[None]:
        """Inside a transaction, one statement whose failure undoes only itself."""
        ...

    def lock(self, conn: Connection, key: str) -> None:
        """Inside a transaction: wait for, then hold until it ends, the lock named ``key``
        (transactions of every node that lock one key run one after the other)."""
        ...

    def json_text(self, column: str, key: str) -> str:
        """SQL for the text of ``column``'s JSON object member ``key``."""
        ...

    def json_last(self, column: str) -> str:
        """SQL for the last element of ``column``'s JSON array (``NULL`` if empty)."""
        ...

    def is_duplicate_call(self, exc: Exception) -> bool:
        """Whether ``exc`` is a second row for one ``calls.call_id``."""
        ...

    def describe(self, exc: Exception) -> str:
        """``exc`` for an error message: what failed, never the row's values (caller data)."""
        ...


class SqliteDialect:
    """SQLite (the embedded default): ``BEGIN IMMEDIATE`` takes the one write lock."""

    name = "sqlite"
    Error = sqlite3.Error
    OperationalError = sqlite3.OperationalError
    IntegrityError = sqlite3.IntegrityError
    aborts_on_error = False

    @contextmanager
    def transaction(self, conn: Connection, *, durable: bool = False) -> Iterator[None]:
        if durable:  # PRAGMA synchronous cannot change inside a transaction
            conn.execute("PRAGMA synchronous = FULL")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield
                conn.execute("COMMIT")
            except BaseException:
                if _in_transaction(conn):
                    conn.execute("ROLLBACK")
                raise
        finally:
            if durable:
                conn.execute("PRAGMA synchronous = NORMAL")

    @contextmanager
    def statement(self, conn: Connection) -> Iterator[None]:
        yield  # SQLite undoes a failed statement by itself; the transaction goes on

    def lock(self, conn: Connection, key: str) -> None:
        pass  # BEGIN IMMEDIATE already runs every write transaction one after the other

    def json_text(self, column: str, key: str) -> str:
        return f"json_extract({column}, '$.{key}')"

    def json_last(self, column: str) -> str:
        return f"json_extract({column}, '$[#-1]')"

    def is_duplicate_call(self, exc: Exception) -> bool:
        return isinstance(exc, sqlite3.IntegrityError) and "calls.call_id" in str(exc)

    def describe(self, exc: Exception) -> str:
        return str(exc)  # SQLite names the constraint, never the values


def _in_transaction(conn: Connection) -> bool:
    return bool(getattr(conn, "in_transaction", True))
