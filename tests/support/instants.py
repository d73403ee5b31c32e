"""Instants for tests, built from "now" so that no test carries a date that will pass.

A literal date is only safe where every clock the code under test reads is pinned to it for
the whole test; anything a CLI, a background task or another process compares with its own
"now" must come from here (see ``tests/support/timeshift.py`` for the guard that catches the rest).
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

MONDAY, SATURDAY, SUNDAY = 0, 5, 6


def next_weekday_at(
    weekday: int, hour: int, minute: int = 0, tz: str = "UTC", after: float | None = None
) -> datetime:
    """The first ``weekday`` (0 = Monday) at ``hour:minute`` in ``tz`` strictly after
    ``after`` (default: now), as an aware datetime in ``tz``."""
    zone = ZoneInfo(tz)
    start = datetime.fromtimestamp(time.time() if after is None else after, zone)
    day = start.date() + timedelta(days=(weekday - start.weekday()) % 7)
    at = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
    return at if at > start else at + timedelta(days=7)


def next_monday_at(hour: int, minute: int = 0, tz: str = "UTC") -> datetime:
    """The next Monday ``hour:minute`` in ``tz`` after now (a working day: the sample flows
    are open Monday to Friday)."""
    return next_weekday_at(MONDAY, hour, minute, tz)


def next_new_year(tz: str = "UTC") -> date:
    """1 January of next year in ``tz``."""
    return date(datetime.now(ZoneInfo(tz)).year + 1, 1, 1)


def next_open_monday(flow_file: str | Path, hour: int = 10) -> datetime:
    """The next Monday ``hour``:00, in the flow's time zone, at which every ``hours`` node of
    the flow says open (a week that falls in one of its holidays is skipped)."""
    from ivr.flow.loader import load_flow
    from ivr.flow.model import HoursNode

    flow = load_flow(flow_file)
    hours = [n.hours for n in flow.nodes.values() if isinstance(n, HoursNode)]
    at = next_weekday_at(MONDAY, hour, tz=flow.timezone)
    for _ in range(60):
        if all(h.status(at) == "open" for h in hours):
            return at
        at = next_weekday_at(MONDAY, hour, tz=flow.timezone, after=at.timestamp())
    raise AssertionError(f"{flow_file}: no open Monday {hour}:00 within 60 weeks")


def first_holiday(flow_file: str | Path) -> date:
    """The first day from today on which every ``hours`` node of the flow says holiday (at
    noon in the flow's time zone; its own list or its country calendar), for a simulation
    pinned to it."""
    from ivr.flow.loader import load_flow
    from ivr.flow.model import HoursNode

    flow = load_flow(flow_file)
    hours = [n.hours for n in flow.nodes.values() if isinstance(n, HoursNode)]
    day = datetime.now(ZoneInfo(flow.timezone)).replace(hour=12, minute=0, second=0, microsecond=0)
    for _ in range(400):
        if hours and all(h.status(day) == "holiday" for h in hours):
            return day.date()
        day += timedelta(days=1)
    raise AssertionError(f"{flow_file}: no holiday within 400 days")
