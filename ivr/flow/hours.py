"""Business hours for the ``hours`` node: weekly windows, holidays, one IANA time zone.

The spec as ops write it in a flow::

    hours:
      timezone: Europe/Paris
      open:
        mon-fri: ["08:00-12:00", "13:00-20:00"]
        sat: "09:00-17:00"
        sun: []                      # or: closed
      holidays:
        - 2025-12-25
        - {date: 2025-12-31..2026-01-01, name: New year}

      calendar: CN                   # or US-CA, or {country: US, subdivision: CA}
      workdays: [2026-02-28]         # make-up workdays the calendar does not know

Day keys are ``mon`` .. ``sun`` (full names work too), ranges ``mon-fri`` (``fri-mon`` wraps
around the week) and comma lists ``sat,sun``; a day may appear only once. Windows are
``HH:MM-HH:MM`` with ``24:00`` allowed as an end; a window that ends before it starts
(``22:00-02:00``) runs past midnight into the next day. Everything is wall-clock time in the
zone, so DST changes need no special care in the spec. Holidays are whole local dates and win
over every window, including the after-midnight part of the previous day's window.

A country ``calendar`` (:mod:`ivr.flow.calendars`) adds its public holidays, and its make-up
workdays (China's weekend days worked in exchange for a bridged weekday) are open days;
``workdays:`` lists more. A workday, whatever its weekday, opens with the windows of the first
weekday (Monday..Friday) that has any. The flow's own ``holidays`` win over both, a workday
wins over the calendar's holidays.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ivr.errors import HoursSpecError
from ivr.flow.calendars import CountryCalendar, parse_calendar

__all__ = ["BusinessHours", "Holiday", "Status", "parse_hours"]

Status = Literal["open", "closed", "holiday"]
PathPart = str | int
Window = tuple[int, int]  # minutes since local midnight, [start, end)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_MINUTES = 24 * 60
_MAX_HOLIDAY_DAYS = 366
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_WINDOW = re.compile(r"\s*([^-\s]+)\s*-\s*([^-\s]+)\s*")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, slots=True)
class Holiday:
    """Closed from ``first`` to ``last`` (inclusive local dates)."""

    first: date
    last: date
    name: str = ""


@dataclass(frozen=True)
class BusinessHours:
    """Parsed business hours; build with :func:`parse_hours`.

    ``week[0]`` (Monday) .. ``week[6]`` hold sorted ``(start, end)`` minute windows, with
    midnight-crossing windows already split across the two days.
    """

    zone: ZoneInfo
    week: tuple[tuple[Window, ...], ...]
    holidays: tuple[Holiday, ...] = ()
    calendar: CountryCalendar | None = None
    workdays: frozenset[date] = frozenset()  # explicit make-up workdays

    def local(self, at: datetime) -> datetime:
        """``at`` in the zone; a naive datetime is taken as wall-clock time in the zone."""
        return at.replace(tzinfo=self.zone) if at.tzinfo is None else at.astimezone(self.zone)

    def holiday_name(self, at: datetime) -> str | None:
        """The holiday covering ``at``'s local date (``""`` if unnamed), or None."""
        return self._day_holiday(self.local(at).date())

    def _day_holiday(self, day: date) -> str | None:
        for holiday in self.holidays:
            if holiday.first <= day <= holiday.last:
                return holiday.name
        if self.calendar is None or self.is_workday(day):
            return None
        return self.calendar.holiday_name(day)

    def is_workday(self, day: date) -> bool:
        """``day`` is a make-up workday: listed in ``workdays``, or by the calendar."""
        return day in self.workdays or (self.calendar is not None and self.calendar.is_workday(day))

    def windows(self, day: date) -> tuple[Window, ...]:
        """The open windows of a local date that is no holiday: its weekday's, or on a
        make-up workday those of the first weekday that has any."""
        if self.is_workday(day):
            return next((w for w in self.week[:5] if w), ())
        return self.week[day.weekday()]

    def status(self, at: datetime) -> Status:
        """``"holiday"`` on a holiday, else ``"open"`` inside a window, else ``"closed"``."""
        local = self.local(at)
        if self._day_holiday(local.date()) is not None:
            return "holiday"
        minute = local.hour * 60 + local.minute
        windows = self.windows(local.date())
        return "open" if any(s <= minute < e for s, e in windows) else "closed"

    def is_open(self, at: datetime) -> bool:
        """Shorthand for ``status(at) == "open"``."""
        return self.status(at) == "open"

    def next_open(self, at: datetime) -> datetime | None:
        """When the line next opens, in the zone (``at`` itself if open now).

        None when no window is ever open. An opening that falls in a DST gap (02:30 on the
        spring-forward night) is reported at the first real instant after it (03:30).
        """
        local = self.local(at)
        if self.status(local) == "open":
            return local
        if not any(self.week):
            return None
        instant = local.astimezone(UTC)
        last_holiday = max((h.last for h in self.holidays), default=local.date())
        # a week past the last holiday; a calendar's run of holidays lasts up to ~10 days
        stop = max(last_holiday, local.date()) + timedelta(days=8 if self.calendar is None else 40)
        day = local.date()
        while day <= stop:
            if self._day_holiday(day) is None:
                for start, _ in self.windows(day):
                    found = self._instant_after(day, start, instant)
                    if found is not None:
                        return found
            day += timedelta(days=1)
        return None  # pragma: no cover - a week past the last holiday always has a window

    def _instant_after(self, day: date, minute: int, instant: datetime) -> datetime | None:
        wall = time(minute // 60, minute % 60)
        for fold in (0, 1):  # fall-back nights repeat an hour: try both readings
            candidate = datetime.combine(day, wall, tzinfo=self.zone).replace(fold=fold)
            real = candidate.astimezone(UTC)
            if real > instant:
                return real.astimezone(self.zone)
        return None


def parse_hours(
    open_spec: Mapping[str, object],
    holidays: Sequence[object] | None,
    timezone: str,
    *,
    calendar: object = None,
    workdays: Sequence[object] | None = None,
) -> BusinessHours:
    """Validate and build :class:`BusinessHours`; raise :class:`HoursSpecError` with a path.

    ``calendar``: a country calendar spec (:func:`ivr.flow.calendars.parse_calendar`);
    ``workdays``: make-up workdays, as dates like the holidays'."""
    zone = _parse_zone(timezone)
    week = _parse_week(open_spec)
    parsed = tuple(_parse_holidays(holidays or ()))
    country = None if calendar is None else parse_calendar(calendar)
    extra = _parse_workdays(workdays or (), parsed)
    return BusinessHours(zone, week, parsed, country, extra)


def _parse_workdays(items: Sequence[object], holidays: tuple[Holiday, ...]) -> frozenset[date]:
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise HoursSpecError(("workdays",), "expected a list of dates like '2026-02-28'")
    out: set[date] = set()
    for i, item in enumerate(items):
        first, last = _parse_date_range(item, ("workdays", i))
        day = first
        while day <= last:
            clash = next((h for h in holidays if h.first <= day <= h.last), None)
            if clash is not None:
                raise HoursSpecError(
                    ("workdays", i),
                    f"{day} is also in 'holidays'{f' ({clash.name})' if clash.name else ''}; "
                    "list it in one of them",
                )
            out.add(day)
            day += timedelta(days=1)
    return frozenset(out)


def _parse_zone(name: object) -> ZoneInfo:
    if not isinstance(name, str) or not name.strip():
        raise HoursSpecError(("timezone",), "a time zone is required, like 'Europe/Paris'")
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise HoursSpecError(
            ("timezone",),
            f"{name!r} is not a known time zone; use an IANA name like "
            "'Europe/Paris' or 'America/New_York'",
        ) from None


def _parse_week(spec: object) -> tuple[tuple[Window, ...], ...]:
    if not isinstance(spec, Mapping):
        raise HoursSpecError(
            ("open",), "expected a mapping of days to windows, like {mon-fri: ['08:00-18:00']}"
        )
    week: list[list[Window]] = [[] for _ in DAYS]
    owner: dict[int, str] = {}
    for key, value in spec.items():
        path: tuple[PathPart, ...] = ("open", str(key))
        days = _parse_days(key, path)
        for day in days:
            if day in owner:
                raise HoursSpecError(
                    path, f"{DAYS[day]} is already set by '{owner[day]}'; list each day once"
                )
            owner[day] = str(key)
        for start, end in _parse_windows(value, path):
            for day in days:
                if start < end:
                    week[day].append((start, end))
                else:  # crosses midnight
                    week[day].append((start, _DAY_MINUTES))
                    if end:
                        week[(day + 1) % 7].append((0, end))
    return tuple(tuple(sorted(windows)) for windows in week)


def _day_index(name: str, path: tuple[PathPart, ...]) -> int:
    word = name.strip().lower()
    if word in DAYS:
        return DAYS.index(word)
    if word in _FULL_DAYS:
        return _FULL_DAYS.index(word)
    raise HoursSpecError(
        path,
        f"{name.strip()!r} is not a day; use mon, tue, wed, thu, fri, "
        "sat, sun, a range like mon-fri or a list like sat,sun",
    )


def _parse_days(key: object, path: tuple[PathPart, ...]) -> list[int]:
    if not isinstance(key, str) or not key.strip():
        raise HoursSpecError(path, f"{key!r} is not a day; use mon..sun, mon-fri or sat,sun")
    days: list[int] = []
    for item in key.split(","):
        first, dash, last = item.partition("-")
        start = _day_index(first, path)
        end = _day_index(last, path) if dash else start
        span = (end - start) % 7
        for offset in range(span + 1):
            day = (start + offset) % 7
            if day in days:
                raise HoursSpecError(path, f"{DAYS[day]} appears twice in '{key}'")
            days.append(day)
    return days


def _parse_windows(value: object, path: tuple[PathPart, ...]) -> list[Window]:
    if value is None or (isinstance(value, str) and value.strip().lower() == "closed"):
        return []
    if isinstance(value, str):
        return [_parse_window(value, path)]
    if isinstance(value, list | tuple):
        return [_parse_window(item, (*path, i)) for i, item in enumerate(value)]
    raise HoursSpecError(
        path, f"expected a window like '08:00-17:00', a list of windows or 'closed'; got {value!r}"
    )


def _parse_window(value: object, path: tuple[PathPart, ...]) -> Window:
    match = _WINDOW.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise HoursSpecError(
            path,
            f"{value!r} is not a window; use HH:MM-HH:MM, like '08:00-17:00' (quote it in YAML)",
        )
    start, end = _parse_time(match[1], path), _parse_time(match[2], path)
    if start == _DAY_MINUTES:
        raise HoursSpecError(path, "'24:00' can only end a window; start at '00:00'")
    if start == end % _DAY_MINUTES and end != _DAY_MINUTES:
        raise HoursSpecError(
            path, f"{value!r} starts and ends at the same time; use '00:00-24:00' for all day"
        )
    return start, end


def _parse_time(text: str, path: tuple[PathPart, ...]) -> int:
    match = _TIME.fullmatch(text)
    hour, minute = (int(match[1]), int(match[2])) if match else (-1, -1)
    if not (0 <= hour <= 24 and 0 <= minute <= 59) or (hour == 24 and minute):
        raise HoursSpecError(path, f"{text!r} is not a time; use HH:MM, 00:00-24:00")
    return hour * 60 + minute


def _parse_holidays(items: Sequence[object]) -> list[Holiday]:
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise HoursSpecError(("holidays",), "expected a list of dates like '2025-12-25'")
    out: list[Holiday] = []
    for i, item in enumerate(items):
        path: tuple[PathPart, ...] = ("holidays", i)
        name = ""
        if isinstance(item, Mapping):
            unknown = set(item) - {"date", "name"}
            if unknown or "date" not in item:
                raise HoursSpecError(
                    path,
                    "a holiday mapping takes 'date' and an optional "
                    f"'name'; got keys {sorted(map(str, item))}",
                )
            name = str(item.get("name") or "")
            path, item = (*path, "date"), item["date"]
        first, last = _parse_date_range(item, path)
        out.append(Holiday(first, last, name))
    return out


def _parse_date_range(value: object, path: tuple[PathPart, ...]) -> tuple[date, date]:
    if isinstance(value, datetime):
        raise HoursSpecError(path, f"{value!r} has a time of day; a holiday is a whole date")
    if isinstance(value, date):
        return value, value
    if not isinstance(value, str):
        raise HoursSpecError(
            path, f"{value!r} is not a date; use YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD"
        )
    first_text, dots, last_text = value.partition("..")
    first = _parse_date(first_text, path)
    last = _parse_date(last_text, path) if dots else first
    if last < first:
        raise HoursSpecError(path, f"{value!r} ends before it starts")
    if (last - first).days >= _MAX_HOLIDAY_DAYS:
        raise HoursSpecError(path, f"{value!r} is longer than a year; check the dates")
    return first, last


def _parse_date(text: str, path: tuple[PathPart, ...]) -> date:
    stripped = text.strip()
    try:
        if not _DATE.fullmatch(stripped):
            raise ValueError(stripped)
        return date.fromisoformat(stripped)
    except ValueError:
        raise HoursSpecError(
            path, f"{stripped!r} is not a date; use YYYY-MM-DD, like 2025-12-25"
        ) from None
