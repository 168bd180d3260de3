"""Oslo time, the one zone the service's users live in.

Instants are stored and passed as aware UTC datetimes; a date, a wall-clock time or a
clock time of day ("HH:MM") means Oslo's. Conversions go through zoneinfo so that the
DST changes land right.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

OSLO = ZoneInfo("Europe/Oslo")

#: "24:00", the end of the day, in minutes after midnight.
END_OF_DAY_MINUTES = 24 * 60


def local_instant(day: date, at: time) -> datetime:
    """The UTC instant of local wall-clock time ``at`` on ``day`` in Oslo."""
    return datetime.combine(day, at.replace(tzinfo=None), tzinfo=OSLO).astimezone(UTC)


def local_midnight(day: date) -> datetime:
    """The UTC instant at which local ``day`` begins in Oslo."""
    return local_instant(day, time(0))


def local_date(instant: datetime) -> date:
    """The Oslo calendar date of an aware instant: what a caseworker calls "today"."""
    return instant.astimezone(OSLO).date()


def wall_time(instant: datetime) -> datetime:
    """An aware instant as Oslo wall-clock time, for showing it to people."""
    return instant.astimezone(OSLO)


def clock_minutes(text: str) -> int:
    """Minutes after midnight of a clock time "HH:MM" ("24:00" is the end of the day)."""
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def clock_time(text: str) -> time:
    """A clock time "HH:MM" as a ``time``; "24:00", which ``time`` cannot hold, is 23:59."""
    minutes = clock_minutes(text)
    return time(23, 59) if minutes >= END_OF_DAY_MINUTES else time(*divmod(minutes, 60))
