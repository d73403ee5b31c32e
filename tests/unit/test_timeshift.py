"""The time-bomb guard itself (tests/support/timeshift.py): the shift lands on a Saturday at least
the asked days ahead, and Python child processes read the same "now" as the session."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from support import timeshift
from support.instants import MONDAY, next_monday_at, next_weekday_at


@pytest.mark.parametrize("days", [0.5, 1, 400, 3650])
def test_shift_is_at_least_the_days_asked_and_lands_on_a_saturday(days: float) -> None:
    now = time.time()
    shift = timeshift.shift_seconds(days, now)
    assert days * 86400 <= shift < (days + 7) * 86400
    assert datetime.fromtimestamp(now + shift, UTC).weekday() == timeshift.SATURDAY


def test_a_child_process_reads_the_same_now() -> None:
    """Under IVR_TEST_CLOCK_SHIFT_DAYS the child is shifted through sitecustomize.py; in a
    plain run both read the real clock: either way they agree."""
    out = subprocess.run(
        [sys.executable, "-c", "import time; print(time.time())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert abs(float(out) - time.time()) < 30


def test_next_weekday_is_strictly_after_now_and_in_the_zone() -> None:
    at = next_monday_at(10, tz="Asia/Shanghai")
    assert at.weekday() == MONDAY and (at.hour, at.minute) == (10, 0)
    assert 0 < at.timestamp() - time.time() <= 7 * 86400
    same_instant = next_weekday_at(MONDAY, 10, tz="Asia/Shanghai", after=at.timestamp() - 1)
    assert same_instant == at
