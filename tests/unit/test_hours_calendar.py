"""Country calendars in ``hours:`` (the ``holidays`` package), make-up workdays, and the
validator's warning for an explicit holiday list that has run out.

Dates that the code compares with "now" are built from now (the clock may be shifted 400 days
ahead: IVR_TEST_CLOCK_SHIFT_DAYS); literal dates appear only where ``status(at)`` is asked
about that very instant, which reads no clock.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr.cli import main
from ivr.errors import FlowErrors, HoursSpecError
from ivr.flow import calendars
from ivr.flow.hours import BusinessHours, parse_hours
from ivr.flow.loader import parse_flow
from ivr.flow.model import HoursNode
from ivr.flow.validate import flow_warnings

SHANGHAI = ZoneInfo("Asia/Shanghai")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
WEEKDAYS = {"mon-fri": ["09:00-12:00", "13:00-18:00"]}
# The first day of the Spring Festival (Lunar New Year), from the Chinese calendar; written
# out here so the test does not ask the package under test what it should answer.
LUNAR_NEW_YEAR = {
    2026: date(2026, 2, 17),
    2027: date(2027, 2, 6),
    2028: date(2028, 1, 26),
    2029: date(2029, 2, 13),
    2030: date(2030, 2, 3),
    2031: date(2031, 1, 23),
    2032: date(2032, 2, 11),
    2033: date(2033, 1, 31),
    2034: date(2034, 2, 19),
    2035: date(2035, 2, 8),
    2036: date(2036, 1, 28),
    2037: date(2037, 2, 15),
    2038: date(2038, 2, 4),
    2039: date(2039, 1, 24),
    2040: date(2040, 2, 12),
}


def at(day: date, hour: int, zone: ZoneInfo = SHANGHAI) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=zone)


def next_year() -> int:
    return datetime.now(SHANGHAI).year + 1


@pytest.fixture
def china() -> BusinessHours:
    return parse_hours(WEEKDAYS, [], "Asia/Shanghai", calendar="CN")


def test_next_years_spring_festival_is_a_holiday(china: BusinessHours) -> None:
    year = next_year()
    assert year in LUNAR_NEW_YEAR, f"extend LUNAR_NEW_YEAR to {year}"
    festival = LUNAR_NEW_YEAR[year]
    for day in (festival, festival + timedelta(days=1), festival + timedelta(days=2)):
        assert china.status(at(day, 10)) == "holiday"
        assert "Spring Festival" in (china.holiday_name(at(day, 10)) or "")
    plain = parse_hours(WEEKDAYS, [], "Asia/Shanghai")
    weekday = next(
        festival + timedelta(days=i)
        for i in range(3)
        if (festival + timedelta(days=i)).weekday() < 5
    )
    assert plain.status(at(weekday, 10)) == "open"  # the calendar, not the week, closes it


def test_next_open_skips_the_whole_spring_festival(china: BusinessHours) -> None:
    festival = LUNAR_NEW_YEAR[next_year()]
    opens = china.next_open(at(festival, 10))
    assert opens is not None
    assert opens.date() > festival + timedelta(days=2)
    assert china.status(opens) == "open"
    day = festival
    while day < opens.date():  # every day in between is a holiday or a closed weekend day
        assert china.status(at(day, 10)) in ("holiday", "closed")
        day += timedelta(days=1)


def test_chinas_make_up_workdays_are_open(china: BusinessHours) -> None:
    # 2026: the State Council moved work to Saturdays 14 and 28 February for the Spring
    # Festival week; Saturday 21 February stays a weekend day
    for saturday in (date(2026, 2, 14), date(2026, 2, 28)):
        assert saturday.weekday() == 5
        assert china.is_workday(saturday)
        assert china.status(at(saturday, 10)) == "open"  # Monday's windows
        assert china.status(at(saturday, 12)) == "closed"  # Monday's lunch break
    assert china.status(at(date(2026, 2, 21), 10)) == "closed"
    plain = parse_hours(WEEKDAYS, [], "Asia/Shanghai")
    assert plain.status(at(date(2026, 2, 14), 10)) == "closed"


def test_explicit_workdays_and_holidays() -> None:
    saturday = date(2026, 2, 21)
    hours = parse_hours(
        WEEKDAYS,
        [{"date": "2026-02-16", "name": "our own day off"}],
        "Asia/Shanghai",
        calendar="CN",
        workdays=[saturday.isoformat(), "2026-02-17"],
    )
    assert hours.status(at(saturday, 10)) == "open"
    assert hours.status(at(date(2026, 2, 17), 10)) == "open"  # a workday beats the calendar
    assert hours.holiday_name(at(date(2026, 2, 16), 10)) == "our own day off"
    with pytest.raises(HoursSpecError, match="also in 'holidays'") as exc:
        parse_hours(WEEKDAYS, ["2026-02-20..2026-02-22"], "UTC", workdays=["2026-02-21"])
    assert exc.value.path == ("workdays", 0)


def test_a_subdivision_has_its_own_holidays() -> None:
    march_31 = date(next_year(), 3, 31)  # Cesar Chavez Day: California's, not the nation's
    every_day = {"mon-sun": "09:00-17:00"}
    california = parse_hours(every_day, [], "America/Los_Angeles", calendar="US-CA")
    as_mapping = parse_hours(
        every_day, [], "America/Los_Angeles", calendar={"country": "us", "subdivision": "ca"}
    )
    nation = parse_hours(every_day, [], "America/Los_Angeles", calendar="US")
    assert california.calendar == as_mapping.calendar
    assert california.status(at(march_31, 10, LOS_ANGELES)) == "holiday"
    assert nation.status(at(march_31, 10, LOS_ANGELES)) == "open"
    july_4 = date(next_year(), 7, 4)
    assert california.status(at(july_4, 10, LOS_ANGELES)) == "holiday"


def test_a_year_is_built_once_then_looked_up(china: BusinessHours) -> None:
    day = LUNAR_NEW_YEAR[next_year()]
    china.status(at(day, 10))
    before = calendars._year.cache_info()
    started = time.perf_counter()
    for hour in range(10_000):
        china.status(at(day + timedelta(days=hour % 300), 10))
    elapsed = time.perf_counter() - started
    after = calendars._year.cache_info()
    assert after.misses - before.misses <= 1  # at most the year after, once
    assert elapsed < 1.0, f"10,000 lookups took {elapsed:.2f} s"


FLOW = """\
timezone: Asia/Shanghai
start: h
nodes:
  h:
    hours:
      open: {{mon-fri: "09:00-18:00"}}
{extra}      when_open: hangup
      when_closed: hangup
"""


def load(extra: str) -> HoursNode:
    node = parse_flow(FLOW.format(extra=extra), file="f.yaml", name="f").nodes["h"]
    assert isinstance(node, HoursNode)
    return node


def test_the_flow_language_takes_a_calendar_and_workdays() -> None:
    node = load("      calendar: {country: CN}\n      workdays: [2026-02-21]\n")
    assert node.hours.calendar == calendars.CountryCalendar("CN")
    assert node.hours.workdays == {date(2026, 2, 21)}


@pytest.mark.parametrize(
    ("calendar", "message"),
    [
        ("XX", "'XX' is not a country the holidays package knows"),
        ("US-ZZ", "US has no subdivision 'ZZ'; it has"),
        ("{subdivision: CA}", "expected string, got dict"),
    ],
)
def test_a_bad_calendar_is_a_located_error(calendar: str, message: str) -> None:
    with pytest.raises(FlowErrors) as exc:
        load(f"      calendar: {calendar}\n")
    error = exc.value.errors[0]
    assert error.file == "f.yaml" and error.node == "h" and error.line >= 5
    assert any(part in str(error) for part in message.split("|")), str(error)


# ---- the validator's warning ----------------------------------------------------------------


def today() -> date:
    return datetime.now(SHANGHAI).date()


def warnings_for(*holidays: date) -> list[str]:
    listed = ", ".join(f'"{d.isoformat()}"' for d in holidays)
    flow = parse_flow(FLOW.format(extra=f"      holidays: [{listed}]\n"), file="f.yaml", name="f")
    return [str(w) for w in flow_warnings(flow, time.time())]


def test_a_holiday_list_without_a_date_in_the_next_12_months_is_warned() -> None:
    last_year = today() - timedelta(days=200)
    (warning,) = warnings_for(last_year, today() - timedelta(days=1))
    assert warning.startswith("f.yaml:5:1: node 'h': warning: no holiday listed between")
    assert f"the last one is {today() - timedelta(days=1)}" in warning
    assert warnings_for(today() + timedelta(days=400))  # only beyond the 12 months


def test_a_holiday_next_month_is_no_warning() -> None:
    assert warnings_for(today() - timedelta(days=300), today() + timedelta(days=31)) == []
    assert warnings_for(today()) == []


def test_no_list_no_warning() -> None:
    flow = parse_flow(FLOW.format(extra="      calendar: CN\n"), file="f.yaml", name="f")
    assert flow_warnings(flow, time.time()) == []


def test_ivr_validate_prints_the_warning_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = (today() - timedelta(days=30)).isoformat()
    (tmp_path / "f.yaml").write_text(
        FLOW.format(extra=f'      holidays: ["{stale}"]\n'), encoding="utf-8"
    )
    assert main(["validate", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "1 flow(s) valid, 1 warning(s)" in out.out
    assert f"{tmp_path / 'f.yaml'}:5:1: node 'h': warning:" in out.err
