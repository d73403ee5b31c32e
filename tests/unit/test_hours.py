"""Tests for business hours: windows, midnight crossing, holidays, DST, spec errors."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
import yaml

from ivr.errors import HoursSpecError, IvrError
from ivr.flow.hours import BusinessHours, Holiday, parse_hours

PARIS = ZoneInfo("Europe/Paris")


def paris(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=PARIS)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.fixture
def office() -> BusinessHours:
    return parse_hours(
        {"mon-fri": ["08:00-12:00", "13:00-20:00"], "sat": "09:00-17:00", "sun": []},
        ["2025-12-25", "2025-12-30..2026-01-01", {"date": "2025-05-01", "name": "Labour day"}],
        "Europe/Paris",
    )


# ---- weekly windows --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (paris(2025, 7, 1, 7, 59), "closed"),  # Tuesday
        (paris(2025, 7, 1, 8, 0), "open"),
        (paris(2025, 7, 1, 11, 59, 59), "open"),
        (paris(2025, 7, 1, 12, 0), "closed"),  # lunch
        (paris(2025, 7, 1, 13, 0), "open"),
        (paris(2025, 7, 1, 19, 59), "open"),
        (paris(2025, 7, 1, 20, 0), "closed"),  # end is exclusive
        (paris(2025, 7, 5, 9, 30), "open"),  # Saturday
        (paris(2025, 7, 5, 17, 0), "closed"),
        (paris(2025, 7, 6, 10, 0), "closed"),  # Sunday: []
    ],
)
def test_status_weekly(office: BusinessHours, at: datetime, expected: str) -> None:
    assert office.status(at) == expected
    assert office.is_open(at) == (expected == "open")


def test_aware_datetimes_are_converted_to_the_zone(office: BusinessHours) -> None:
    # 06:30 UTC is 07:30 in Paris in winter (UTC+1) but 08:30 in summer (UTC+2).
    assert office.status(utc(2025, 1, 7, 6, 30)) == "closed"
    assert office.status(utc(2025, 7, 1, 6, 30)) == "open"
    new_york = datetime(2025, 7, 1, 2, 30, tzinfo=ZoneInfo("America/New_York"))  # 08:30 Paris
    assert office.status(new_york) == "open"


def test_naive_datetimes_are_wall_clock_in_the_zone(office: BusinessHours) -> None:
    assert office.status(datetime(2025, 7, 1, 8, 30)) == "open"
    assert office.status(datetime(2025, 7, 1, 7, 30)) == "closed"


def test_days_not_listed_are_closed() -> None:
    hours = parse_hours({"mon": "08:00-09:00"}, None, "UTC")
    assert hours.status(utc(2025, 7, 1, 8, 30)) == "closed"  # Tuesday
    assert hours.status(utc(2025, 6, 30, 8, 30)) == "open"  # Monday


def test_day_lists_ranges_wraparound_and_full_names() -> None:
    hours = parse_hours({"Sat, sunday": "10:00-11:00", "TUE": None, "wed-thu": "closed"}, [], "UTC")
    assert hours.week == ((), (), (), (), (), ((600, 660),), ((600, 660),))
    wrapped = parse_hours({"fri-mon": "10:00-11:00"}, [], "UTC")
    assert [bool(w) for w in wrapped.week] == [True, False, False, False, True, True, True]


def test_all_day_and_24_00_end() -> None:
    hours = parse_hours({"mon": "00:00-24:00", "tue": "18:00-24:00"}, [], "UTC")
    assert hours.status(utc(2025, 6, 30, 0, 0)) == "open"
    assert hours.status(utc(2025, 6, 30, 23, 59, 59)) == "open"
    assert hours.status(utc(2025, 7, 1, 23, 59)) == "open"
    assert hours.status(utc(2025, 7, 2, 0, 0)) == "closed"


def test_overlapping_windows_are_a_union() -> None:
    hours = parse_hours({"mon": ["08:00-12:00", "10:00-14:00"]}, [], "UTC")
    assert hours.is_open(utc(2025, 6, 30, 13, 0))
    assert not hours.is_open(utc(2025, 6, 30, 14, 0))


# ---- midnight crossing -----------------------------------------------------------------------


def test_window_crossing_midnight_spans_into_next_day() -> None:
    hours = parse_hours({"fri": "22:00-02:00"}, [], "Europe/Paris")
    assert hours.status(paris(2025, 7, 4, 21, 59)) == "closed"  # Friday
    assert hours.status(paris(2025, 7, 4, 23, 0)) == "open"
    assert hours.status(paris(2025, 7, 5, 1, 59)) == "open"  # Saturday morning
    assert hours.status(paris(2025, 7, 5, 2, 0)) == "closed"
    assert hours.status(paris(2025, 7, 5, 23, 0)) == "closed"  # not Saturday night


def test_sunday_night_window_wraps_into_monday() -> None:
    hours = parse_hours({"sun": "23:00-01:00"}, [], "UTC")
    assert hours.week[0] == ((0, 60),)
    assert hours.status(utc(2025, 7, 7, 0, 30)) == "open"  # Monday


def test_window_ending_at_midnight_does_not_spill() -> None:
    hours = parse_hours({"mon": "22:00-00:00"}, [], "UTC")
    assert hours.week[0] == ((1320, 1440),)
    assert hours.week[1] == ()


# ---- holidays --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected", "name"),
    [
        (paris(2025, 12, 25, 10, 0), "holiday", ""),  # a Thursday: holiday wins
        (paris(2025, 12, 24, 10, 0), "open", None),
        (paris(2025, 12, 29, 10, 0), "open", None),
        (paris(2025, 12, 30, 0, 0), "holiday", ""),  # range start
        (paris(2025, 12, 31, 10, 0), "holiday", ""),
        (paris(2026, 1, 1, 23, 59), "holiday", ""),  # range end is inclusive
        (paris(2026, 1, 2, 10, 0), "open", None),
        (paris(2025, 5, 1, 10, 0), "holiday", "Labour day"),
        (paris(2025, 12, 28, 10, 0), "holiday", None),  # Sunday, but not a holiday
    ],
)
def test_holidays(office: BusinessHours, at: datetime, expected: str, name: str | None) -> None:
    if name is None and expected == "holiday":
        expected = "closed"
    assert office.status(at) == expected
    assert office.holiday_name(at) == name


def test_holiday_is_a_local_date(office: BusinessHours) -> None:
    # 23:30 UTC on the 24th is already the 25th in Paris.
    assert office.status(utc(2025, 12, 24, 23, 30)) == "holiday"


def test_holiday_wins_over_spill_of_previous_night() -> None:
    hours = parse_hours({"mon-sun": "22:00-02:00"}, ["2025-07-05"], "UTC")
    assert hours.status(utc(2025, 7, 5, 1, 0)) == "holiday"
    assert hours.status(utc(2025, 7, 6, 1, 0)) == "open"


def test_yaml_dates_and_mappings_are_accepted() -> None:
    spec = yaml.safe_load("""
        timezone: Europe/Paris
        open: {mon-fri: ["08:00-18:00"]}
        holidays:
          - 2025-12-25
          - {date: 2025-12-31..2026-01-01, name: New year}
          - {date: 2025-05-08}
    """)
    assert isinstance(spec["holidays"][0], date)
    hours = parse_hours(spec["open"], spec["holidays"], spec["timezone"])
    assert hours.holidays == (
        Holiday(date(2025, 12, 25), date(2025, 12, 25)),
        Holiday(date(2025, 12, 31), date(2026, 1, 1), "New year"),
        Holiday(date(2025, 5, 8), date(2025, 5, 8)),
    )


# ---- DST -------------------------------------------------------------------------------------


def test_spring_forward_day_uses_wall_clock() -> None:
    # Paris, Sunday 2025-03-30: 02:00 CET jumps to 03:00 CEST.
    hours = parse_hours({"sun": "01:00-04:00", "mon": "08:00-09:00"}, [], "Europe/Paris")
    assert hours.status(utc(2025, 3, 30, 0, 30)) == "open"  # 01:30 CET
    assert hours.status(utc(2025, 3, 30, 1, 30)) == "open"  # 03:30 CEST
    assert hours.status(utc(2025, 3, 30, 2, 0)) == "closed"  # 04:00 CEST: only 2 h real time
    assert hours.status(utc(2025, 3, 31, 6, 30)) == "open"  # Monday 08:30 CEST


def test_next_open_in_spring_forward_gap() -> None:
    hours = parse_hours({"sun": "02:30-05:00"}, [], "Europe/Paris")
    found = hours.next_open(utc(2025, 3, 30, 0, 0))  # 01:00 CET
    assert found == utc(2025, 3, 30, 1, 30)  # 02:30 does not exist: 03:30 CEST
    assert found is not None and found.tzinfo == PARIS and (found.hour, found.minute) == (3, 30)
    assert hours.status(found) == "open"


def test_fall_back_day_repeats_the_hour() -> None:
    # Paris, Sunday 2025-10-26: 03:00 CEST falls back to 02:00 CET.
    hours = parse_hours({"sun": "02:30-04:00"}, [], "Europe/Paris")
    assert hours.status(utc(2025, 10, 26, 0, 45)) == "open"  # 02:45 CEST (first pass)
    second_pass = utc(2025, 10, 26, 1, 15)  # 02:15 CET (second pass)
    assert hours.status(second_pass) == "closed"
    found = hours.next_open(second_pass)
    assert found is not None
    # Compare instants: PEP 495 makes fold=1 datetimes unequal across zones.
    assert found.timestamp() == utc(2025, 10, 26, 1, 30).timestamp()  # 02:30 CET, not CEST
    assert (found.hour, found.minute, found.fold) == (2, 30, 1)


# ---- next_open -------------------------------------------------------------------------------


def test_next_open_same_day_after_lunch(office: BusinessHours) -> None:
    assert office.next_open(paris(2025, 7, 1, 12, 30)) == paris(2025, 7, 1, 13, 0)


def test_next_open_over_the_weekend(office: BusinessHours) -> None:
    # Saturday 18:00 -> Monday 08:00 (Sunday is closed).
    assert office.next_open(paris(2025, 7, 5, 18, 0)) == paris(2025, 7, 7, 8, 0)


def test_next_open_skips_holiday_ranges(office: BusinessHours) -> None:
    # Monday 29 Dec 20:30 -> 30, 31 Dec and 1 Jan are holidays -> Friday 2 Jan 08:00.
    assert office.next_open(paris(2025, 12, 29, 20, 30)) == paris(2026, 1, 2, 8, 0)


def test_next_open_when_open_is_now(office: BusinessHours) -> None:
    at = utc(2025, 7, 1, 8, 0)  # 10:00 in Paris
    found = office.next_open(at)
    assert found == at and found is not None and found.tzinfo == PARIS


def test_next_open_none_when_never_open() -> None:
    hours = parse_hours({"mon-sun": []}, ["2025-01-01"], "UTC")
    assert hours.next_open(utc(2025, 1, 1)) is None


def test_next_open_after_a_long_holiday_run_on_the_only_open_day() -> None:
    mondays = [f"2025-{m:02d}-{d:02d}" for m, d in ((7, 7), (7, 14), (7, 21))]
    hours = parse_hours({"mon": "09:00-10:00"}, mondays, "UTC")
    assert hours.next_open(utc(2025, 7, 1)) == utc(2025, 7, 28, 9, 0)


# ---- spec errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("open_spec", "holidays", "tz", "path", "message"),
    [
        (
            {"mon-fri": ["08:00-12:00", "13:00-25:00"]},
            [],
            "UTC",
            ("open", "mon-fri", 1),
            "'25:00' is not a time; use HH:MM, 00:00-24:00",
        ),
        ({"mon": "08:00"}, [], "UTC", ("open", "mon"), "'08:00' is not a window; use HH:MM-HH:MM"),
        ({"mon": "8-17"}, [], "UTC", ("open", "mon"), "'8' is not a time; use HH:MM"),
        ({"mon": "08:60-09:00"}, [], "UTC", ("open", "mon"), "'08:60' is not a time"),
        ({"mon": "24:30-09:00"}, [], "UTC", ("open", "mon"), "'24:30' is not a time"),
        ({"mon": "24:00-09:00"}, [], "UTC", ("open", "mon"), "'24:00' can only end a window"),
        ({"mon": "09:00-09:00"}, [], "UTC", ("open", "mon"), "starts and ends at the same time"),
        ({"mon": "00:00-00:00"}, [], "UTC", ("open", "mon"), "use '00:00-24:00' for all day"),
        ({"mon": [750]}, [], "UTC", ("open", "mon", 0), "750 is not a window"),
        ({"mon": 9}, [], "UTC", ("open", "mon"), "expected a window like '08:00-17:00'"),
        ({"mnd": "08:00-09:00"}, [], "UTC", ("open", "mnd"), "'mnd' is not a day; use mon, tue"),
        ({"mon-frx": []}, [], "UTC", ("open", "mon-frx"), "'frx' is not a day"),
        (
            {"mon-fri": [], "fri": []},
            [],
            "UTC",
            ("open", "fri"),
            "fri is already set by 'mon-fri'; list each day once",
        ),
        ({"mon,mon": []}, [], "UTC", ("open", "mon,mon"), "mon appears twice"),
        (["mon"], [], "UTC", ("open",), "expected a mapping of days to windows"),
        ({}, [], "Mars/Olympus", ("timezone",), "'Mars/Olympus' is not a known time zone"),
        ({}, [], "../etc/passwd", ("timezone",), "is not a known time zone"),
        ({}, [], "", ("timezone",), "a time zone is required"),
        ({}, ["2025-13-01"], "UTC", ("holidays", 0), "'2025-13-01' is not a date; use YYYY-MM-DD"),
        ({}, ["25/12/2025"], "UTC", ("holidays", 0), "'25/12/2025' is not a date"),
        (
            {},
            ["2025-01-01", "2025-12-26..2025-12-24"],
            "UTC",
            ("holidays", 1),
            "ends before it starts",
        ),
        ({}, ["2025-01-01..2027-01-01"], "UTC", ("holidays", 0), "longer than a year"),
        (
            {},
            [{"date": "2025-02-30"}],
            "UTC",
            ("holidays", 0, "date"),
            "'2025-02-30' is not a date",
        ),
        ({}, [{"day": "2025-01-01"}], "UTC", ("holidays", 0), "takes 'date' and an optional"),
        ({}, [20250101], "UTC", ("holidays", 0), "20250101 is not a date"),
        ({}, [datetime(2025, 1, 1, 9)], "UTC", ("holidays", 0), "has a time of day"),
        ({}, "2025-01-01", "UTC", ("holidays",), "expected a list of dates"),
    ],
)
def test_spec_errors(
    open_spec: object, holidays: object, tz: str, path: tuple[object, ...], message: str
) -> None:
    with pytest.raises(HoursSpecError) as info:
        parse_hours(open_spec, holidays, tz)  # type: ignore[arg-type]
    assert info.value.path == path
    assert message in info.value.message


def test_spec_error_is_a_value_error_and_an_ivr_error() -> None:
    with pytest.raises(HoursSpecError) as info:
        parse_hours({"mon-fri": ["08:00-12:00", "13:00-25:00"]}, [], "UTC")
    assert isinstance(info.value, ValueError) and isinstance(info.value, IvrError)
    assert str(info.value) == "open.mon-fri[1]: '25:00' is not a time; use HH:MM, 00:00-24:00"
