"""Country holiday calendars for ``hours:`` (``calendar: CN``), from the ``holidays`` package.

A :class:`CountryCalendar` answers two questions about a local date: is it a public holiday
(and its name), and is it a make-up workday, a weekend day the country works instead of a
bridged weekday (China's 调休; ``holidays`` lists them in ``weekend_workdays`` for the years
the State Council has announced them, none for other countries). Each (country, subdivision,
year) is built once per process, at the first date asked in that year, and kept: a call only
looks a date up in a dict. ``holidays`` itself is imported at the first calendar a flow names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from ivr.errors import HoursSpecError

__all__ = ["CountryCalendar", "parse_calendar"]

PathPart = str | int


@dataclass(frozen=True, slots=True)
class _Year:
    holidays: Mapping[date, str]
    workdays: frozenset[date]


@dataclass(frozen=True, slots=True)
class CountryCalendar:
    """The public holidays (``public`` category) of a country or one of its subdivisions."""

    country: str  # ISO 3166-1 alpha-2, like CN
    subdivision: str | None = None  # the package's code, like CA for US-CA

    @property
    def name(self) -> str:
        """``CN`` or ``US-CA``."""
        return f"{self.country}-{self.subdivision}" if self.subdivision else self.country

    def holiday_name(self, day: date) -> str | None:
        """The holiday's name on ``day`` (several joined by ``; ``), or None."""
        return _year(self.country, self.subdivision, day.year).holidays.get(day)

    def is_workday(self, day: date) -> bool:
        """``day`` is a make-up workday (a weekend day worked instead of a bridged weekday)."""
        return day in _year(self.country, self.subdivision, day.year).workdays


@lru_cache(maxsize=256)
def _year(country: str, subdivision: str | None, year: int) -> _Year:
    """One year of a calendar; built once and kept (about 0.5 ms, 45 ms for the first use
    of a country, which loads its module)."""
    import holidays  # the package's 500 countries load lazily too: only what a flow names

    table = holidays.country_holidays(country, subdiv=subdivision, years=year)
    workdays = getattr(table, "weekend_workdays", None) or ()
    return _Year(
        holidays=dict(table.items()),
        workdays=frozenset(d for d in workdays if d.year == year),
    )


def parse_calendar(spec: object) -> CountryCalendar:
    """``CN``, ``US-CA`` or ``{country: US, subdivision: CA}``, checked against the package:
    a bad code fails when the flow loads, not at the first call."""
    path: tuple[PathPart, ...] = ("calendar",)
    if isinstance(spec, str):
        country, _, subdivision = spec.strip().partition("-")
    elif (
        isinstance(spec, Mapping) and "country" in spec and set(spec) <= {"country", "subdivision"}
    ):
        country, subdivision = str(spec["country"]), str(spec.get("subdivision") or "")
    else:
        raise HoursSpecError(
            path,
            f"write a country code like CN, or {{country: US, subdivision: CA}}; got {spec!r}",
        )
    calendar = CountryCalendar(country.strip().upper(), subdivision.strip().upper() or None)
    _check(calendar, path)
    return calendar


def _check(calendar: CountryCalendar, path: tuple[PathPart, ...]) -> None:
    import holidays

    supported = holidays.list_supported_countries()
    if calendar.country not in supported:
        raise HoursSpecError(
            path,
            f"{calendar.country!r} is not a country the holidays package knows; use an ISO "
            "3166-1 alpha-2 code like CN, US or FR",
        )
    subdivisions = supported[calendar.country]
    if calendar.subdivision is not None and calendar.subdivision not in subdivisions:
        some = ", ".join(subdivisions[:8]) if subdivisions else "none"
        raise HoursSpecError(
            path,
            f"{calendar.country} has no subdivision {calendar.subdivision!r}; "
            f"it has {some}{'...' if len(subdivisions) > 8 else ''}",
        )
    # loads the country's module now (tens of ms), not on the event loop at the first call
    holidays.country_holidays(calendar.country, subdiv=calendar.subdivision)
