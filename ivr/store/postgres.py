"""The store on PostgreSQL (``store.url: postgresql://...``): psycopg 3, the same SQL.

The store's thread keeps one connection in autocommit mode and begins its own transactions,
as on SQLite. The SQL the store writes (``?`` placeholders) is turned into psycopg's (``%s``)
once per statement text. Record writes commit with ``synchronous_commit = off`` (like SQLite's
WAL with ``synchronous = NORMAL``: a server crash can lose the last fraction of a second, an
ivr crash nothing); ``durable`` transactions (a booked callback) wait for the disk.

The schema is the SQLite one, step for step (:data:`MIGRATIONS` has one entry per
:data:`ivr.store.schema.MIGRATIONS` entry), in a ``ivr_schema`` table; nodes starting at once
migrate one after the other (an advisory lock).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg.errors
from psycopg.rows import RowMaker

from ivr.errors import StoreError
from ivr.store.schema import (
    FLOW_VERSIONS_TABLE,
    MESSAGES_TABLE,
    NODES_TABLE,
    SCHEMA_V1,
    WEBHOOK_OUTBOX_TABLE,
)
from ivr.store.sql import Connection, Cursor

__all__ = ["MIGRATIONS", "PgConnection", "PostgresDialect", "connect", "migrate"]

# Any fixed number: the advisory lock every node's migration takes.
_MIGRATION_LOCK = 0x1F2C_0001


class PgRow:
    """A row by position or by column name, like ``sqlite3.Row``."""

    __slots__ = ("_names", "_values")

    def __init__(self, values: Sequence[Any], names: dict[str, int]) -> None:
        self._values = tuple(values)
        self._names = names

    def __getitem__(self, key: int | str) -> Any:
        return self._values[self._names[key] if isinstance(key, str) else key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        return list(self._names)


def _pg_row(cursor: psycopg.Cursor[Any]) -> RowMaker[PgRow]:
    names = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: PgRow(values, names)


@functools.lru_cache(maxsize=1024)
def translate(sql: str) -> tuple[str, tuple[int, ...] | None]:
    """The store's SQL for psycopg: ``?`` outside quotes becomes ``%s``, ``%`` is doubled.
    SQLite's numbered ``?N`` become ``%s`` too, with the order to pick the parameters in
    (``None``: as given)."""
    out: list[str] = []
    order: list[int] = []
    numbered = False
    quote = ""
    i = 0
    while i < len(sql):
        char = sql[i]
        i += 1
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "?":
            digits = ""
            while i < len(sql) and sql[i].isdigit():
                digits += sql[i]
                i += 1
            numbered = numbered or bool(digits)
            order.append(int(digits) - 1 if digits else len(order))
            out.append("%s")
            continue
        out.append("%%" if char == "%" else char)
    return "".join(out), tuple(order) if numbered else None


class PgConnection:
    """A psycopg connection (autocommit) that speaks the store's SQL."""

    def __init__(self, conn: psycopg.Connection[PgRow]) -> None:
        self.raw = conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        text, order = translate(sql)
        if order is not None:
            parameters = [parameters[i] for i in order]
        return self.raw.execute(text, tuple(parameters))

    def executemany(self, sql: str, seq_of_parameters: Iterable[Sequence[Any]], /) -> Cursor:
        text, order = translate(sql)
        if order is not None:
            seq_of_parameters = [[p[i] for i in order] for p in seq_of_parameters]
        cursor = self.raw.cursor()
        cursor.executemany(text, seq_of_parameters)
        return cursor

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    @property
    def closed(self) -> bool:
        return self.raw.closed or self.raw.broken

    def close(self) -> None:
        self.raw.close()


def connect(url: str, password: str | None, *, connect_timeout_s: int = 5) -> PgConnection:
    """Open a connection in autocommit mode (``password`` apart from the URL: the URL may be
    logged, the password never is)."""
    kwargs: dict[str, Any] = {"connect_timeout": connect_timeout_s}
    if password is not None:
        kwargs["password"] = password
    conn = psycopg.connect(url, autocommit=True, row_factory=_pg_row, **kwargs)
    conn.execute("SET synchronous_commit = off")
    return PgConnection(conn)


class PostgresDialect:
    """PostgreSQL through psycopg 3."""

    name = "postgresql"
    Error = psycopg.Error
    OperationalError = psycopg.OperationalError
    IntegrityError = psycopg.IntegrityError
    aborts_on_error = True

    @contextmanager
    def transaction(self, conn: Connection, *, durable: bool = False) -> Iterator[None]:
        conn.execute("BEGIN")
        try:
            if durable:
                conn.execute("SET LOCAL synchronous_commit = on")
            yield
            conn.execute("COMMIT")
        except BaseException:
            if getattr(conn, "in_transaction", True) and not getattr(conn, "closed", False):
                conn.execute("ROLLBACK")
            raise

    @contextmanager
    def statement(self, conn: Connection) -> Iterator[None]:
        # A failed statement aborts a PostgreSQL transaction: a savepoint confines it.
        conn.execute("SAVEPOINT ivr_statement")
        try:
            yield
        except self.IntegrityError:
            conn.execute("ROLLBACK TO SAVEPOINT ivr_statement")
            raise
        conn.execute("RELEASE SAVEPOINT ivr_statement")

    def lock(self, conn: Connection, key: str) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (key,))

    def json_text(self, column: str, key: str) -> str:
        return f"({column}::jsonb ->> '{key}')"

    def json_last(self, column: str) -> str:
        return f"({column}::jsonb ->> -1)"

    def describe(self, exc: Exception) -> str:
        # str() adds "DETAIL: Failing row contains (...)": the caller's number, inputs...
        primary = exc.diag.message_primary if isinstance(exc, psycopg.Error) else None
        return primary or str(exc).split("\n", 1)[0]

    def is_duplicate_call(self, exc: Exception) -> bool:
        return (
            isinstance(exc, psycopg.errors.UniqueViolation)
            and exc.diag.constraint_name == "calls_pkey"
        )


# --------------------------------------------------------------------------- schema
_REAL = "DOUBLE PRECISION"


_ROW_ID = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"


def _from_sqlite(ddl: str) -> str:
    """SQLite's DDL for PostgreSQL: its REAL is a 4-byte float there (SQLite's is 8 bytes),
    and SQLite's INTEGER PRIMARY KEY (a row id) is an identity column."""
    ddl = re.sub(
        r"\bINTEGER PRIMARY KEY\b", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", ddl
    )
    return re.sub(r"\bREAL\b", _REAL, ddl)


def _v1(conn: Connection) -> None:
    for statement in SCHEMA_V1:  # SQLite's text, but for REAL
        conn.execute(_from_sqlite(statement))


def _v2(conn: Connection) -> None:
    conn.execute("ALTER TABLE calls ADD COLUMN queue TEXT, ADD COLUMN survey TEXT")


def _v3(conn: Connection) -> None:
    conn.execute(f"""
        CREATE TABLE outbound (
            id            BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            kind          TEXT NOT NULL CHECK (kind IN ('callback', 'survey', 'campaign')),
            call_id       TEXT NOT NULL,
            flow          TEXT NOT NULL,
            target        TEXT NOT NULL,
            number        TEXT NOT NULL,
            channel       TEXT NOT NULL,
            caller_id     TEXT NOT NULL DEFAULT '',
            due_at        {_REAL} NOT NULL,
            attempts      INTEGER NOT NULL DEFAULT 0,
            max_attempts  INTEGER NOT NULL,
            retry_after_s {_REAL} NOT NULL,
            status        TEXT NOT NULL DEFAULT 'pending' CONSTRAINT outbound_status CHECK
                              (status IN ('pending', 'dialing', 'answered', 'done', 'failed')),
            last_result   TEXT NOT NULL DEFAULT '',
            created_at    {_REAL} NOT NULL,
            updated_at    {_REAL} NOT NULL,
            variables     TEXT NOT NULL DEFAULT '{{}}',
            UNIQUE (kind, call_id)
        )""")
    conn.execute(f"""
        CREATE TABLE campaigns (
            name           TEXT PRIMARY KEY,
            flow           TEXT NOT NULL,
            rate           {_REAL} NOT NULL,
            max_concurrent INTEGER NOT NULL,
            hours          TEXT NOT NULL DEFAULT '',
            timezone       TEXT NOT NULL DEFAULT 'UTC',
            state          TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'paused')),
            created_at     {_REAL} NOT NULL
        )""")
    conn.execute("CREATE INDEX outbound_due ON outbound (status, due_at)")
    conn.execute(f"CREATE TABLE opt_out (number TEXT PRIMARY KEY, at {_REAL} NOT NULL)")


def _v4(conn: Connection) -> None:
    conn.execute(
        "ALTER TABLE outbound DROP CONSTRAINT outbound_status,"
        " ADD CONSTRAINT outbound_status CHECK (status IN"
        " ('pending', 'dialing', 'answered', 'done', 'failed', 'held')),"
        " ADD COLUMN hours TEXT, ADD COLUMN max_concurrent INTEGER,"
        " ADD COLUMN reason TEXT NOT NULL DEFAULT ''"
    )
    conn.execute("DROP INDEX outbound_due")
    conn.execute(
        "CREATE INDEX outbound_target_due ON outbound (status, kind, flow, target, due_at)"
    )


def _v5(conn: Connection) -> None:
    conn.execute("ALTER TABLE outbound ADD COLUMN booked_by TEXT NOT NULL DEFAULT ''")
    conn.execute("CREATE INDEX outbound_kind_created ON outbound (kind, created_at)")


def _v6(conn: Connection) -> None:
    conn.execute("ALTER TABLE calls ADD COLUMN node TEXT NOT NULL DEFAULT ''")
    conn.execute("ALTER TABLE outbound ADD COLUMN node TEXT NOT NULL DEFAULT ''")
    conn.execute(_from_sqlite(NODES_TABLE))


def _v7(conn: Connection) -> None:
    conn.execute(
        "ALTER TABLE calls ADD COLUMN resume TEXT, ADD COLUMN box TEXT NOT NULL DEFAULT ''"
    )
    conn.execute(
        "ALTER TABLE campaigns ADD COLUMN next_start_at DOUBLE PRECISION NOT NULL DEFAULT 0"
    )


def _v8(conn: Connection) -> None:
    conn.execute(_from_sqlite(WEBHOOK_OUTBOX_TABLE))
    conn.execute("CREATE INDEX webhook_outbox_due ON webhook_outbox (status, next_at)")
    conn.execute(_from_sqlite(MESSAGES_TABLE))
    conn.execute("CREATE INDEX messages_created ON messages (created_at)")
    conn.execute("ALTER TABLE calls ADD COLUMN recording TEXT NOT NULL DEFAULT ''")


def _v9(conn: Connection) -> None:
    conn.execute(
        "ALTER TABLE calls DROP CONSTRAINT calls_outcome_check,"
        " ADD CONSTRAINT calls_outcome_check CHECK (outcome IS NULL OR outcome IN"
        " ('self_service', 'failed_in_ivr', 'transferred', 'abandoned', 'error')),"
        " ADD COLUMN path_at TEXT NOT NULL DEFAULT '[]'"
    )
    conn.execute(_from_sqlite(FLOW_VERSIONS_TABLE))
    conn.execute("CREATE INDEX flow_versions_flow ON flow_versions (flow, id)")


MIGRATIONS: tuple[Callable[[Connection], None], ...] = (
    _v1, _v2, _v3, _v4, _v5, _v6, _v7, _v8, _v9,
)  # fmt: skip


def migrate(conn: Connection, where: str, version_wanted: int) -> None:
    """Bring the schema to ``version_wanted``, one transaction per step."""
    if len(MIGRATIONS) != version_wanted:
        raise StoreError(
            f"{where}: PostgreSQL schema has {len(MIGRATIONS)} steps, not {version_wanted}"
        )
    dialect = PostgresDialect()
    while True:
        with dialect.transaction(conn):
            conn.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS ivr_schema (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM ivr_schema").fetchone()
            version = 0 if row is None else int(row[0])
            if version > version_wanted:
                raise StoreError(
                    f"{where}: schema version {version} is newer than this ivr supports "
                    f"({version_wanted}); upgrade ivr or use another database"
                )
            if version == version_wanted:
                return
            MIGRATIONS[version](conn)
            if row is None:
                conn.execute("INSERT INTO ivr_schema (version) VALUES (?)", (version + 1,))
            else:
                conn.execute("UPDATE ivr_schema SET version = ?", (version + 1,))
