"""The one wall clock.

Every reader and writer of wall time (the interpreter, call records, the dialler, campaigns,
the CLI, admin queries) takes a :data:`Clock` from its caller, so that the simulator and tests
can run a call at any instant; the server passes :func:`system_clock` (or its own ``App.clock``)
everywhere. Durations and deadlines use ``time.monotonic()``, never this clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]
"""Seconds since the Unix epoch, like ``time.time()``."""


def system_clock() -> float:
    """The machine's wall clock."""
    return time.time()
