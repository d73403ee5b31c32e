"""When a test call happens (a flow test's ``at:``), absolute or relative to today.

- ``2027-01-04T10:00`` (ISO 8601; without an offset, wall-clock time in the flow's timezone)
- ``today 10:00``, ``tomorrow 18:30``
- ``next monday 10:00`` (``mon`` .. ``sun``, full names too), ``next weekday 10:00``
  (Monday to Friday), ``next weekend 10:00`` (Saturday or Sunday): the first such day after
  today that is an **ordinary** day for every ``hours`` node of the flow, neither a holiday nor
  a make-up workday, so a test of the open line does not fail in a holiday week
- ``next holiday 10:00``: the first day after today that an ``hours`` node calls a holiday

Tests in the repository use the relative forms for business hours: they hold whatever the
date they run on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ivr.flow import model as m
from ivr.flow.hours import DAYS, BusinessHours

__all__ = ["CallTimeError", "call_time"]

_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_RELATIVE = re.compile(r"^\s*(today|tomorrow|next\s+(\w+))\s+(\d{1,2}):(\d{2})\s*$", re.IGNORECASE)
_NOON = time(12)  # a naive time: wall clock in each hours node's own zone
_SEARCH_DAYS = 400  # a year and a bit: every calendar has a holiday within it
FORMS = (
    "an ISO time (2027-01-04T10:00), today/tomorrow HH:MM, "
    "or next monday|weekday|weekend|holiday HH:MM"
)


class CallTimeError(ValueError):
    """``at:`` is not a time this module reads."""


def call_time(text: str, flow: m.Flow, now: float) -> float:
    """Unix time of ``text`` for a call of ``flow``; ``now`` is today (relative forms)."""
    zone = ZoneInfo(flow.timezone)
    match = _RELATIVE.match(text)
    if match is None:
        try:
            at = datetime.fromisoformat(text.strip())
        except ValueError:
            raise CallTimeError(f"'{text}' is not a time: write {FORMS}") from None
        return (at.replace(tzinfo=zone) if at.tzinfo is None else at).timestamp()
    word, which, hour, minute = match.group(1).lower(), match.group(2), *match.group(3, 4)
    if int(hour) > 23 or int(minute) > 59:
        raise CallTimeError(f"'{text}': {hour}:{minute} is not a time of day")
    today = datetime.fromtimestamp(now, zone).date()
    if word == "today":
        day = today
    elif word == "tomorrow":
        day = today + timedelta(days=1)
    else:
        day = _next_day(which.lower(), today, _hours_of(flow), text)
    return datetime.combine(day, time(int(hour), int(minute)), tzinfo=zone).timestamp()


def _next_day(which: str, today: date, hours: list[BusinessHours], text: str) -> date:
    wanted = _day_test(which, hours, text)
    for n in range(1, _SEARCH_DAYS):
        day = today + timedelta(days=n)
        if wanted(day):
            return day
    raise CallTimeError(f"'{text}': no such day in the next {_SEARCH_DAYS} days")


def _day_test(which: str, hours: list[BusinessHours], text: str) -> Callable[[date], bool]:
    def holiday(day: date) -> bool:
        return any(h.holiday_name(datetime.combine(day, _NOON)) is not None for h in hours)

    def ordinary(day: date) -> bool:
        return not holiday(day) and not any(h.is_workday(day) for h in hours)

    if which == "holiday":
        if not any(h.holidays or h.calendar for h in hours):
            raise CallTimeError(f"'{text}': no hours node of this flow has holidays")
        return holiday
    if which == "weekday":
        return lambda day: day.weekday() < 5 and ordinary(day)
    if which == "weekend":
        return lambda day: day.weekday() >= 5 and ordinary(day)
    if which in DAYS or which in _FULL:
        weekday = DAYS.index(which[:3])
        return lambda day: day.weekday() == weekday and ordinary(day)
    raise CallTimeError(f"'{text}': '{which}' is not a day; write {FORMS}")


def _hours_of(flow: m.Flow) -> list[BusinessHours]:
    return [node.hours for node in flow.nodes.values() if isinstance(node, m.HoursNode)]
