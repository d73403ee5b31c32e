"""What the admin endpoints over the store share: the store or a 503, one read with its errors
as HTTP answers, a stored call or a 404, and a WAV file as the answer."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

from aiohttp import web

from ivr.admin.console import Console
from ivr.call.record import CallRecord
from ivr.errors import ApiError, BadQuery, StoreError
from ivr.store.records import RecordStore

__all__ = ["read_store", "record_store", "stored_call", "wav_file"]

log = logging.getLogger("ivr.admin")

T = TypeVar("T")


def record_store(console: Console) -> RecordStore:
    """The console's store; 503 while it is not open."""
    store = console.store
    if store is None:
        raise ApiError(503, "the call-record store is not open")
    return store


async def read_store(job: Awaitable[T]) -> T:
    """A store read or write; a bad query is 400, a failing store 503."""
    try:
        return await job
    except BadQuery as exc:
        raise ApiError(400, str(exc)) from None
    except StoreError as exc:
        log.error("admin API: store read failed: %s", exc)
        raise ApiError(503, "the call-record store failed (see the server log)") from None


async def stored_call(console: Console, call_id: str) -> CallRecord:
    """The stored record of ``call_id``; 404 when there is none."""
    record = await read_store(record_store(console).get(call_id))
    if record is None:
        raise ApiError(404, "no such call")
    return record


def wav_file(path: Path) -> web.FileResponse:
    """A recording as the answer: played in the page, never cached."""
    return web.FileResponse(
        path,
        headers={
            "Content-Type": "audio/wav",
            "Content-Disposition": f'inline; filename="{path.name}"',
            "Cache-Control": "no-store",
        },
    )
