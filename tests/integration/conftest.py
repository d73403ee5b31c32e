"""Fixtures shared by the integration tests: the store's two database engines."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.postgres import PostgresServer
from support.stores import Db

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
