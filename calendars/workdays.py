"""Working days in Norway: weekends, public holidays and configured closures.

Named ``workdays`` rather than ``holidays`` so that it never shadows the ``holidays``
package it wraps. Every local rule is evaluated on the Oslo calendar (``calendars.zone``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from types import MappingProxyType

import holidays as holidays_package

#: Names come in English so that explanations are stable whatever the server's locale.
HOLIDAY_LANGUAGE = "en_US"


class CalendarInputError(ValueError):
    """Bad input to a calendar computation; ``field`` names the offending input so that
    the API can answer 400 with a message the caller can act on."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.detail = message


@dataclass(frozen=True, slots=True)
class Closure:
    """A closed local date range, both ends inclusive: a unit's summer closure, or (for
    the child's wishes) a school holiday."""

    start: date
    end: date
    label: str = ""

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.end


class DayKind(enum.StrEnum):
    WORKING = "working"
    WEEKEND = "weekend"
    HOLIDAY = "holiday"
    CLOSURE = "closure"


@dataclass(frozen=True, slots=True)
class DayStatus:
    """Why a day is (not) a working day; ``name`` is the holiday's name or the closure's label."""

    day: date
    kind: DayKind
    name: str | None = None

    @property
    def is_working(self) -> bool:
        return self.kind is DayKind.WORKING


@lru_cache(maxsize=64)
def _holidays_of_year(year: int) -> Mapping[date, str]:
    """Cached per year because the package computes Easter and friends on every construction."""
    table = holidays_package.country_holidays(
        "NO", years=year, language=HOLIDAY_LANGUAGE, include_sundays=False
    )
    return MappingProxyType({day: str(name) for day, name in sorted(table.items())})


def holiday_name(day: date) -> str | None:
    """The Norwegian public holiday on ``day``, or None (Sundays are not holidays here)."""
    return _holidays_of_year(day.year).get(day)


def is_public_holiday(day: date) -> bool:
    return holiday_name(day) is not None


def public_holidays(first: date, last: date) -> dict[date, str]:
    """Every public holiday from ``first`` to ``last`` inclusive, in date order."""
    found: dict[date, str] = {}
    for year in range(first.year, last.year + 1):
        for day, name in _holidays_of_year(year).items():
            if first <= day <= last:
                found[day] = name
    return found


def closure_on(day: date, closures: Iterable[Closure]) -> Closure | None:
    """The first configured closure covering ``day`` (in the order given), or None."""
    for closure in closures:
        if closure.covers(day):
            return closure
    return None


def day_status(day: date, closures: Iterable[Closure] = ()) -> DayStatus:
    """A public holiday wins over a closure, which wins over a weekend, so that an
    explanation names the most specific reason."""
    name = holiday_name(day)
    if name is not None:
        return DayStatus(day, DayKind.HOLIDAY, name)
    closure = closure_on(day, closures)
    if closure is not None:
        return DayStatus(day, DayKind.CLOSURE, closure.label or None)
    if day.weekday() >= 5:
        return DayStatus(day, DayKind.WEEKEND)
    return DayStatus(day, DayKind.WORKING)


def is_working_day(day: date, closures: Iterable[Closure] = ()) -> bool:
    return day_status(day, closures).is_working


def working_days(first: date, last: date, closures: Iterable[Closure] = ()) -> Iterator[date]:
    """The working days from ``first`` to ``last`` inclusive."""
    closures = tuple(closures)
    day = first
    while day <= last:
        if is_working_day(day, closures):
            yield day
        day += timedelta(days=1)


def next_working_day(day: date, closures: Iterable[Closure] = ()) -> date:
    """``day`` itself when it is a working day, else the first one after it."""
    closures = tuple(closures)
    while not is_working_day(day, closures):
        day += timedelta(days=1)
    return day

