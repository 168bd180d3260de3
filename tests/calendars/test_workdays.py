"""Working days: what a coordinator would see go wrong if a holiday or a DST change slipped."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from calendars.workdays import (
    Closure,
    DayKind,
    day_status,
    holiday_name,
    is_working_day,
    next_working_day,
    public_holidays,
    working_days,
)
from calendars.zone import local_date, local_instant, local_midnight


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (date(2027, 1, 1), "New Year's Day"),
        (date(2027, 3, 25), "Maundy Thursday"),
        (date(2027, 3, 26), "Good Friday"),
        (date(2027, 3, 29), "Easter Monday"),
        (date(2027, 5, 1), "Labor Day"),
        (date(2027, 5, 6), "Ascension Day"),
        (date(2027, 5, 17), "Constitution Day"),
        (date(2027, 12, 25), "Christmas Day"),
        (date(2027, 12, 26), "Second Day of Christmas"),
        (date(2026, 5, 25), "Pentecost Monday"),
    ],
)
def test_norwegian_public_holidays_are_not_working_days(day: date, name: str) -> None:
    found = holiday_name(day)
    assert found is not None and name in found
    assert day_status(day).kind is DayKind.HOLIDAY
    assert not is_working_day(day)


def test_whit_monday_and_constitution_day_coincide_in_2027() -> None:
    name = holiday_name(date(2027, 5, 17))
    assert name is not None
    assert "Constitution Day" in name and "Pentecost Monday" in name


def test_ordinary_days_weekends_and_closures() -> None:
    assert is_working_day(date(2027, 5, 18))  # a Tuesday
    assert day_status(date(2027, 5, 22)).kind is DayKind.WEEKEND
    summer = Closure(date(2027, 7, 5), date(2027, 7, 30), "summer closure")
    status = day_status(date(2027, 7, 14), [summer])
    assert status.kind is DayKind.CLOSURE and status.name == "summer closure"
    assert is_working_day(date(2027, 8, 2), [summer])


def test_a_holiday_is_named_even_inside_a_closure() -> None:
    christmas = Closure(date(2027, 12, 20), date(2028, 1, 2), "christmas closure")
    assert day_status(date(2027, 12, 27), [christmas]).kind is DayKind.CLOSURE
    assert day_status(date(2027, 12, 25), [christmas]).kind is DayKind.HOLIDAY


def test_sundays_are_weekends_not_holidays() -> None:
    assert holiday_name(date(2027, 5, 23)) is None
    assert day_status(date(2027, 5, 23)).kind is DayKind.WEEKEND


def test_easter_week_skips_to_tuesday() -> None:
    assert next_working_day(date(2027, 3, 25)) == date(2027, 3, 30)
    assert next_working_day(date(2027, 3, 24)) == date(2027, 3, 24)


def test_working_days_of_easter_week_2027() -> None:
    days = list(working_days(date(2027, 3, 22), date(2027, 4, 2)))
    assert days == [
        date(2027, 3, 22),
        date(2027, 3, 23),
        date(2027, 3, 24),
        date(2027, 3, 30),
        date(2027, 3, 31),
        date(2027, 4, 1),
        date(2027, 4, 2),
    ]


def test_public_holidays_across_a_new_year() -> None:
    found = public_holidays(date(2027, 12, 24), date(2028, 1, 2))
    assert list(found) == [date(2027, 12, 25), date(2027, 12, 26), date(2028, 1, 1)]


@pytest.mark.parametrize(
    ("day", "utc_hour"),
    [
        (date(2026, 3, 27), 8),  # winter time, UTC+1
        (date(2026, 3, 30), 7),  # the Monday after the spring change, UTC+2
        (date(2026, 10, 23), 7),  # still summer time
        (date(2026, 10, 26), 8),  # the Monday after the autumn change, UTC+1
    ],
)
def test_nine_oclock_in_oslo_around_dst(day: date, utc_hour: int) -> None:
    instant = local_instant(day, time(9))
    assert instant == datetime(day.year, day.month, day.day, utc_hour, tzinfo=UTC)
    assert local_date(instant) == day


def test_the_spring_change_day_has_23_hours() -> None:
    day = date(2026, 3, 29)
    length = local_midnight(date(2026, 3, 30)) - local_midnight(day)
    assert length.total_seconds() == 23 * 3600
