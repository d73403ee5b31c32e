"""The store's database on either engine, for tests: a SQLite file or a PostgreSQL database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ivr.store.records import RecordStore


@dataclass(frozen=True)
class Db:
    """A fresh, empty store database on one engine: a SQLite file or a PostgreSQL database."""

    backend: str  # "sqlite" | "postgresql"
    target: str  # the path or the URL (no password)
    password: str | None = None

    async def open(self, **kwargs: Any) -> RecordStore:
        """``RecordStore.open`` on this database (``kwargs`` as there)."""
        return await RecordStore.open(self.target, password=self.password, **kwargs)
