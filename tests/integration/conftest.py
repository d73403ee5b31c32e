"""Fixtures shared by the integration tests: the store's two database engines."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from support.postgres import PostgresServer
from support.stores import Db

from ivr.store.records import RecordStore

_databases = itertools.count(1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One throw-away PostgreSQL server for the session (each test gets its own database)."""
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Db:
    """The store's database, once per engine."""
    if request.param == "sqlite":
        return Db("sqlite", str(tmp_path / "calls.db"))
    server: PostgresServer = request.getfixturevalue("postgres")
    return Db("postgresql", server.create_database(f"t{next(_databases)}"), server.password)


@pytest.fixture
async def store(db: Db) -> AsyncIterator[RecordStore]:
    """An open store on each engine."""
    s = await db.open()
    yield s
    await s.close()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[RecordStore]:
    """SQLite only: for the tests that watch SQLite itself (its statements, its write lock)."""
    s = await RecordStore.open(tmp_path / "calls.sqlite3")
    yield s
    await s.close()
