"""The FastAGI server at its limit: calls beyond ``agi.max_connections``.

Over the cap a call goes back to the dialplan at once. Closing the socket alone is not
enough: ``AGI()`` reads EOF as the script's normal end (``AGISTATUS=SUCCESS``, see
``run_agi`` in Asterisk's ``res_agi.c``) and the dialplan hangs up. ``IVR_RESULT`` set sends
the caller to its fallback instead (``asterisk-conf/extensions.conf``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Final

from ivr.asterisk.agi.commands import format_command
from ivr.asterisk.tcp import IO_ERRORS, Link

logger = logging.getLogger("ivr.asterisk.agi")

BUSY_COMMAND: Final = format_command("SET VARIABLE", "IVR_RESULT", "busy")


async def turn_away(link: Link, timeout_s: float) -> None:
    """Send :data:`BUSY_COMMAND` and end, parsing nothing. Asterisk runs the command once it
    has sent its ``agi_*`` block, then sees our EOF and leaves ``AGI()``. What it sent is
    dropped unread, but drained until it closes: unread bytes turn a close into a reset."""
    link.attach(_drop)
    try:
        link.write(BUSY_COMMAND.encode() + b"\n")
        link.write_eof()
        async with asyncio.timeout(timeout_s):  # a peer that never closes
            while not link.at_eof:
                await link.readable()
    except IO_ERRORS:  # TimeoutError is an OSError too
        pass  # gone or stuck: the close below is all that is left to do
    finally:
        link.close()


def _drop(data: bytes) -> None:
    """What a turned-away peer sends is not read."""


class Rejections:
    """Counts calls turned away (``on_reject``, e.g. a metric) and warns at most once every
    ``every_s`` with how many there were: a burst must not flood the log."""

    def __init__(self, on_reject: Callable[[], None] | None, every_s: float = 10.0) -> None:
        self.on_reject = on_reject
        self.every_s = every_s
        self._unlogged = 0
        self._logged_at = -math.inf

    def note(self, max_connections: int) -> None:
        """One more connection over the cap of ``max_connections``."""
        if self.on_reject is not None:
            self.on_reject()
        self._unlogged += 1
        now = time.monotonic()
        if now - self._logged_at >= self.every_s:
            logger.warning(
                "%d call(s) over agi.max_connections=%d handed back to the dialplan "
                "(IVR_RESULT=busy) since the last warning",
                self._unlogged,
                max_connections,
            )
            self._unlogged, self._logged_at = 0, now
