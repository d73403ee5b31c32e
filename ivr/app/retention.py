"""Retention of call recordings: files older than ``recordings.retention_days`` removed.

Every ``every_s`` (an hour) a background task of the server, never a call, takes the calls
started before the limit that still name a recording
(:class:`~ivr.store.recordings.RecordingStore`), removes each file and then clears the call's
``recording``. Files in ``calls/`` that no row
names (a record the store never got, a node whose rows another node already cleared) go by
their modification time against the same limit. "Now" is the injected clock's; file work runs
in a thread, off the event loop. Each round is logged; a failed one is logged and retried at
the next.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from ivr.call.record import CALL_RECORDINGS
from ivr.clock import Clock
from ivr.errors import StoreError
from ivr.store.recordings import ExpiredRecording, RecordingStore, recording_path
from ivr.store.records import RecordStore
from ivr.tasks import Background

__all__ = ["RecordingRetention", "Swept"]

log = logging.getLogger("ivr.app")

DAY_S = 86400.0


@dataclass(frozen=True)
class Swept:
    """One round: files removed for expired rows, rows cleared, files no row named."""

    files: int = 0
    rows: int = 0
    orphans: int = 0


class RecordingRetention:
    """Removes recordings older than ``days`` under ``directory`` every ``every_s``."""

    def __init__(
        self,
        store: RecordStore,
        directory: str | Path,
        days: float,
        clock: Clock,
        every_s: float = 3600.0,
        batch: int = 500,
    ) -> None:
        self.recordings = RecordingStore(store)
        self.directory = Path(directory)
        self.days = days
        self.clock = clock
        self.every_s = every_s
        self.batch = batch
        self._task = Background("recording-retention")

    def start(self) -> None:
        """The first round now, then one every ``every_s``."""
        self._task.start(self._loop())

    async def close(self) -> None:
        await self._task.close()

    async def sweep(self) -> Swept:
        """One round (see the module's notes)."""
        before = self.clock() - self.days * DAY_S
        files = rows = 0
        while True:
            batch = await self.recordings.expired(before, self.batch)
            results = [(item, await asyncio.to_thread(self._remove, item)) for item in batch]
            gone = [item for item, result in results if result is not None]
            files += sum(1 for _, result in results if result)
            rows += await self.recordings.forget(gone)
            if len(batch) < self.batch or not gone:  # the end, or nothing more can go
                break
        orphans = await asyncio.to_thread(self._remove_orphans, before)
        return Swept(files, rows, orphans)

    def _remove(self, item: ExpiredRecording) -> bool | None:
        """Remove one expired call's file: True when removed, False when there was nothing to
        remove (already gone, or the row named something no recording can be), None when it
        could not be removed (the row keeps its name)."""
        path = recording_path(self.directory, item.name)
        if path is None:
            log.warning(
                "recording retention: call %s names %r, not a file under %s; forgotten",
                item.call_id,
                item.name,
                self.directory / CALL_RECORDINGS,
            )
            return False
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            log.warning("recording retention: cannot remove %s: %s", path, exc)
            return None
        return True

    def _remove_orphans(self, before: float) -> int:
        removed = 0
        for path in sorted((self.directory / CALL_RECORDINGS).glob("*.wav")):
            try:
                if path.is_file() and path.stat().st_mtime < before:
                    path.unlink()
                    removed += 1
            except OSError as exc:
                log.warning("recording retention: cannot remove %s: %s", path, exc)
        return removed

    async def _loop(self) -> None:
        while True:
            try:
                swept = await self.sweep()
            except StoreError as exc:
                log.warning(
                    "recording retention: round failed, next in %.0f s: %s", self.every_s, exc
                )
            else:
                log.info(
                    "recording retention (%g days): %d files removed, %d calls cleared, "
                    "%d files without a call",
                    self.days,
                    swept.files,
                    swept.rows,
                    swept.orphans,
                )
            await asyncio.sleep(self.every_s)
