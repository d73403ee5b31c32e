"""Messages callers left (``record`` nodes) in the console: ``GET /api/messages`` (newest
first, callers masked like calls), ``GET /api/messages/{id}/audio`` (the WAV) and
``POST /api/messages/{id}/heard``.

The audio is found from the message's row only (its ``file``, relative to the recordings
directory), never from the request, and only when it is a WAV directly in the directory's
``messages/``: a row naming anything else is refused as if there were no file.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

from aiohttp import web

from ivr.admin.console import Console
from ivr.admin.stored import read_store, record_store, wav_file
from ivr.call.messages import MESSAGES_SUBDIR
from ivr.call.record import mask_caller
from ivr.clock import system_clock
from ivr.errors import ApiError
from ivr.reporting import queries as q
from ivr.store.messages import MessageRow, MessageStore
from ivr.store.recordings import wav_in

__all__ = ["MessageEndpoints", "message_path"]

log = logging.getLogger("ivr.admin")


def message_path(directory: str | Path, file: str) -> Path | None:
    """The WAV a row's ``file`` stands for, directly under ``directory``/messages; ``None``
    when it would be anywhere else (absolute, ``..``, a link out, not a WAV)."""
    return wav_in(directory, MESSAGES_SUBDIR, file)


class MessageEndpoints:
    """The message handlers over ``console``."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def _table(self) -> MessageStore:
        return MessageStore(record_store(self.console))

    async def messages(self, request: web.Request) -> web.Response:
        """``{"unheard": n, "messages": [...]}``, newest first (``?unheard=1``: those only)."""
        limit = q.integer(request.query, "limit", 50, 1, 500)
        unheard_only = request.query.get("unheard", "") in ("1", "true")
        table = self._table()
        rows = await read_store(table.rows(limit, unheard=unheard_only))
        unheard = await read_store(table.unheard())
        return web.json_response({"unheard": unheard, "messages": [_shown(r) for r in rows]})

    async def audio(self, request: web.Request) -> web.FileResponse:
        """The message's WAV (404 for no such message or file)."""
        row = await self._row(request)
        directory = self.console.recordings_dir
        path = message_path(directory, row.file) if directory else None
        if path is None:
            log.warning("message %d names %r outside %s: refused", row.id, row.file, directory)
            raise ApiError(404, "this message has no file")
        if not path.is_file():
            raise ApiError(404, "the message's file is gone")
        return wav_file(path)

    async def heard(self, request: web.Request) -> web.Response:
        """Mark the message heard (the first time counts)."""
        message_id = _id(request)
        found = await read_store(self._table().heard(message_id, system_clock()))
        if not found:
            raise ApiError(404, "no such message")
        return web.json_response({"heard": message_id})

    async def _row(self, request: web.Request) -> MessageRow:
        message_id = _id(request)
        row = await read_store(self._table().get(message_id))
        if row is None:
            raise ApiError(404, "no such message")
        return row


def _id(request: web.Request) -> int:
    text = request.match_info["id"]
    if not text.isdigit() or len(text) > 18:
        raise ApiError(404, "no such message")
    return int(text)


def _shown(row: MessageRow) -> dict[str, object]:
    return {**asdict(row), "caller": mask_caller(row.caller)}
