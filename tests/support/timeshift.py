"""The time-bomb guard: run the whole test session with the wall clock shifted ahead.

``IVR_TEST_CLOCK_SHIFT_DAYS=400 pytest`` moves ``time.time()``, ``datetime.now()`` and
``time.localtime()`` (the ``time-machine`` package, ticking) at least that many days ahead and
on to the next Saturday, for this process and every Python child process a test starts (via
``tests/support/clockshift/sitecustomize.py``). Monotonic clocks and sleeps are untouched. A
test that wrote a literal date which the code compares with its own "now" fails under the shift
the day it is written, instead of the day the date passes.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

DAYS_ENV = "IVR_TEST_CLOCK_SHIFT_DAYS"
SHIFT_ENV = "IVR_TEST_CLOCK_SHIFT_S"  # the exact shift, for child processes
SITE_DIR = Path(__file__).parent / "clockshift"
SATURDAY = 5


def shift_seconds(days: float, now: float) -> float:
    """At least ``days`` ahead of ``now``, landing on a Saturday (UTC) at the same time of day:
    weekend closing hours and calendar edges are where pinned dates break first."""
    weekday = datetime.fromtimestamp(now + days * 86400, UTC).weekday()
    return (days + (SATURDAY - weekday) % 7) * 86400  # exact: no round trip via datetime


def start_from_env() -> float:
    """Start the shift the environment asks for; the shift in seconds (0.0 for none)."""
    days = float(os.environ.get(DAYS_ENV) or 0)
    if not days:
        return 0.0
    import time_machine

    shift = shift_seconds(days, time.time())
    time_machine.travel(time.time() + shift, tick=True).start()
    os.environ[SHIFT_ENV] = repr(shift)
    path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SITE_DIR), path]))
    return shift
