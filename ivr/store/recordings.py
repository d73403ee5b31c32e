"""The recordings of calls' agent legs (``calls.recording``) that retention removes.

A recorded call keeps its file's name relative to the recordings directory (``calls/<id>.wav``,
``''``: none). The server's retention task (``ivr.app.retention``) asks for the names of calls
started before the limit (:meth:`RecordingStore.expired`), removes each file, then forgets
the name (:meth:`RecordingStore.forget`), so a row never names a file retention removed
once the round is done; a crash between the two leaves a name whose file is gone, forgotten
by the next round.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ivr.call.record import CALL_RECORDINGS
from ivr.store.records import RecordStore
from ivr.store.sql import Connection

__all__ = ["ExpiredRecording", "RecordingStore", "recording_path", "wav_in"]


def wav_in(directory: str | Path, subdir: str, name: str) -> Path | None:
    """The WAV a stored ``name`` (relative to ``directory``) stands for, directly in
    ``directory``/``subdir``; ``None`` when it would be anywhere else (an absolute name,
    ``..``, a symbolic link out, another kind of file): a row's name is never trusted."""
    if not name.endswith(".wav") or "\0" in name:
        return None
    base = (Path(directory) / subdir).resolve()
    path = (Path(directory) / name).resolve()
    return path if path.parent == base else None


def recording_path(directory: str | Path, name: str) -> Path | None:
    """The WAV of a call's recording, directly in ``directory``'s ``calls/`` (see
    :func:`wav_in`)."""
    return wav_in(directory, CALL_RECORDINGS, name)


@dataclass(frozen=True)
class ExpiredRecording:
    """A call's recording past retention: the call and its file name."""

    call_id: str
    name: str  # relative to the recordings directory


class RecordingStore:
    """``calls.recording`` for retention (the rest of the row is the record store's)."""

    def __init__(self, records: RecordStore) -> None:
        self.records = records

    async def expired(self, before: float, limit: int = 500) -> list[ExpiredRecording]:
        """At most ``limit`` recorded calls started before ``before`` (Unix time), oldest
        first: the calls of every node (their files may be on a shared disk)."""
        rows = await self.records.read(
            "SELECT call_id, recording FROM calls WHERE started_at < ? AND recording <> ''"
            " ORDER BY started_at, call_id LIMIT ?",
            (before, limit),
        )
        return [ExpiredRecording(str(row[0]), str(row[1])) for row in rows]

    async def forget(self, gone: list[ExpiredRecording]) -> int:
        """Clear the recording of each call in ``gone`` whose row still names that file
        (one transaction); how many rows changed."""

        def clear(conn: Connection) -> int:
            changed = 0
            for item in gone:
                cursor = conn.execute(
                    "UPDATE calls SET recording = '' WHERE call_id = ? AND recording = ?",
                    (item.call_id, item.name),
                )
                changed += max(cursor.rowcount, 0)
            return changed

        return await self.records.transaction(clear) if gone else 0
