"""A local journal for call records the database could not take.

When SQLite is locked past its busy timeout, the disk holding it is full, or the file turned
read-only, the store (:mod:`ivr.store.replay`) appends the rows it could not write here
(one JSON object per line, fsync'd before the write counts as saved) and replays them into the
database once it answers again, or at the next start. The journal lives next to the database
by default; put it on another disk (``store.journal_path``) to survive that disk filling up.

Replaying is idempotent (a row that already arrived is left alone or completed), so a crash
between the replay's commit and the journal's truncation costs nothing.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Literal

from ivr.store.sql import Connection

__all__ = ["Backlog", "Entry", "Journal", "Op"]

log = logging.getLogger("ivr.store")

Op = Literal["begin", "finish"]
Entry = tuple[Op, tuple[Any, ...]]  # the operation and its row parameters


class Journal:
    """Append-only, fsync'd JSON lines at ``path``; one writer thread at a time."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def append(self, entries: Sequence[Entry]) -> None:
        """Write ``entries`` durably (raises :class:`OSError` when it cannot: disk full...)."""
        if not entries:
            return
        text = "".join(json.dumps({"op": op, "row": list(row)}) + "\n" for op, row in entries)
        data = memoryview(text.encode("utf-8"))
        new = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            try:
                while data:
                    data = data[os.write(fd, data) :]
                os.fsync(fd)
            except OSError:
                # a disk that filled up mid-write leaves half a line, which the next append
                # would join and a replay skip: cut it off (that frees the space again)
                os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)
        if new:  # the file's name must survive a power cut too
            _fsync_dir(self.path.parent)

    def read(self) -> list[Entry]:
        """Every entry written so far. A line torn by a crash mid-append is skipped (its
        write never counted as saved, so its record is still in memory or in the database)."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        entries: list[Entry] = []
        for number, line in enumerate(lines, 1):
            try:
                item = json.loads(line)
                op, row = item["op"], tuple(item["row"])
            except (ValueError, KeyError, TypeError):
                log.warning("%s:%d: unreadable journal line skipped", self.path, number)
                continue
            if op in ("begin", "finish"):
                entries.append((op, row))
        return entries

    def __len__(self) -> int:
        try:
            with self.path.open("rb") as fh:
                return sum(1 for _ in fh)
        except (FileNotFoundError, NotADirectoryError):  # nothing journaled yet
            return 0

    def clear(self) -> None:
        """Forget every entry (after they reached the database)."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return
        _fsync_dir(self.path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Backlog:
    """Writes the database refused, owned by the store's writer thread: in the journal when
    it can take them, else in memory (logged) until the journal or the database can."""

    def __init__(self, journal: Journal | None) -> None:
        self.journal = journal
        self.memory: list[Entry] = []
        self._journaled = len(journal) if journal is not None else 0
        self._journal_failing = False

    def __len__(self) -> int:
        return self._journaled + len(self.memory)

    def add(self, entries: Sequence[Entry]) -> None:
        self.memory.extend(entries)
        self.save()

    def save(self) -> None:
        """Move what is in memory to the journal, if there is one and it takes it."""
        if self.journal is None or not self.memory:
            return
        try:
            self.journal.append(self.memory)
        except OSError as exc:
            if not self._journal_failing:
                log.error(
                    "%s: journal not writable (%s): %d record write(s) kept in memory "
                    "until the database or the journal takes them",
                    self.journal.path,
                    exc,
                    len(self.memory),
                )
            self._journal_failing = True
            return
        self._journal_failing = False
        self._journaled += len(self.memory)
        self.memory.clear()

    def replay(
        self,
        conn: Connection,
        write: Callable[[Connection, Entry], None],
        transaction: Callable[[Connection], AbstractContextManager[None]],
    ) -> int:
        """Write every entry in one transaction with ``write``; returns how many. Raises
        the driver's error (the backlog unchanged) while the database cannot take them."""
        entries = (self.journal.read() if self.journal is not None else []) + self.memory
        if entries:
            with transaction(conn):
                for entry in entries:
                    write(conn, entry)
        if self.journal is not None:
            self.journal.clear()
        self.memory.clear()
        self._journaled = 0
        return len(entries)
