"""``GET /api/calls/{call_id}/recording``: the WAV of a call's agent leg (a queue's ``record:``).

The call's records (``GET /api/calls``) carry ``recording``, the file's name relative to the
recordings directory (``""``: none). This endpoint serves that file, found only from the name
the call's row (or the call in progress) holds, never from the request, and only when it is a
WAV directly in the directory's ``calls/`` (:func:`~ivr.store.recordings.recording_path`):
a name that would lead anywhere else is refused as if there were none. The route is
*private*: the admin token is needed even with ``admin.open_read``.
"""

from __future__ import annotations

import logging

from aiohttp import web

from ivr.admin.console import Console
from ivr.admin.stored import stored_call, wav_file
from ivr.errors import ApiError
from ivr.store.recordings import recording_path

__all__ = ["RecordingEndpoint"]

log = logging.getLogger("ivr.admin")


class RecordingEndpoint:
    """The handler over ``console``."""

    def __init__(self, console: Console) -> None:
        self.console = console

    async def recording(self, request: web.Request) -> web.FileResponse:
        call_id = request.match_info["call_id"]
        directory = self.console.recordings_dir
        if not directory:
            raise ApiError(404, "this server keeps no recordings (recordings_dir is not set)")
        name = await self._name(call_id)
        if not name:
            raise ApiError(404, "this call has no recording")
        path = recording_path(directory, name)
        if path is None:
            log.warning("call %s names recording %r outside %s: refused", call_id, name, directory)
            raise ApiError(404, "this call has no recording")
        if not path.is_file():
            raise ApiError(404, "the recording's file is gone (removed by retention?)")
        return wav_file(path)

    async def _name(self, call_id: str) -> str:
        run = self.console.running(call_id)
        if run is not None:
            return run.record.recording
        return (await stored_call(self.console, call_id)).recording
