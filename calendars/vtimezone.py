"""The Europe/Oslo VTIMEZONE we ship, and the check that it is safe to rely on.

icalendar's generated VTIMEZONE lists every transition as RDATEs with an outdated
final STANDARD rule; Outlook, ical.js (Thunderbird) and vobject misread it and put
events an hour off (DESIGN.md). The yearly RRULE form below is what Outlook itself
writes and what every client we test reads the same way.

A local time is only as good as the rules its reader applies, so
:func:`oslo_wall_time` gives a wall-clock time only when a reader of *these* rules
gets the original instant back; otherwise the renderer falls back to UTC.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, timedelta

from calendars.zone import OSLO

TZID = "Europe/Oslo"

EUROPE_OSLO_VTIMEZONE: bytes = (
    b"BEGIN:VTIMEZONE\r\n"
    b"TZID:Europe/Oslo\r\n"
    b"X-LIC-LOCATION:Europe/Oslo\r\n"
    b"BEGIN:DAYLIGHT\r\n"
    b"TZOFFSETFROM:+0100\r\n"
    b"TZOFFSETTO:+0200\r\n"
    b"TZNAME:CEST\r\n"
    b"DTSTART:19810329T020000\r\n"
    b"RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n"
    b"END:DAYLIGHT\r\n"
    b"BEGIN:STANDARD\r\n"
    b"TZOFFSETFROM:+0200\r\n"
    b"TZOFFSETTO:+0100\r\n"
    b"TZNAME:CET\r\n"
    b"DTSTART:19961027T030000\r\n"
    b"RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\n"
    b"END:STANDARD\r\n"
    b"END:VTIMEZONE\r\n"
)

# Before the STANDARD rule's DTSTART the VTIMEZONE above does not describe Oslo
# (summer time ended in September until 1996).
_FIRST_YEAR = 1997
_WINTER = timedelta(hours=1)
_SUMMER = timedelta(hours=2)
_HOUR = timedelta(hours=1)


def _last_sunday(year: int, month: int) -> date:
    last = date(year, month, 31)  # March and October both have 31 days
    return last - timedelta(days=(last.weekday() + 1) % 7)


@functools.cache
def _summer_time(year: int) -> tuple[datetime, datetime]:
    """Both transitions happen at 01:00 UTC under the RRULEs above."""
    begin = datetime.combine(_last_sunday(year, 3), datetime.min.time(), UTC) + _HOUR
    end = datetime.combine(_last_sunday(year, 10), datetime.min.time(), UTC) + _HOUR
    return begin, end


def oslo_wall_time(instant: datetime) -> datetime | None:
    """The naive Oslo wall-clock time that a reader of EUROPE_OSLO_VTIMEZONE maps back
    to ``instant``, or None when it would not: outside the years the rules cover,
    when the tz database disagrees with them (a future change to Norwegian summer
    time), and in the repeated hour of an October night, which RFC 5545 readers
    resolve to its first occurrence."""
    utc = instant.astimezone(UTC)
    if utc.year < _FIRST_YEAR:
        return None
    begin, end = _summer_time(utc.year)
    offset = _SUMMER if begin <= utc < end else _WINTER
    if utc.astimezone(OSLO).utcoffset() != offset:
        return None
    if end - _HOUR <= utc < end + _HOUR:
        return None
    return (utc + offset).replace(tzinfo=None)
