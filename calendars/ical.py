"""iCalendar rendering for feeds (RFC 5545) and iMIP invitations (RFC 5546/6047).

Hand-written rather than built with icalendar's object model because feeds are on
the hot path: a feed is assembled from per-event fragments that ``coordination``
caches, so serving one is a join of bytes (see :func:`render_feed`).

Decisions that clients notice:

* Timed events are written as Europe/Oslo wall time with ``TZID`` and our own
  VTIMEZONE; when that VTIMEZONE would not give the instant back (the repeated
  October hour, years before 1997, a future change of the tz database) the time is
  written in UTC instead, so the instant is always right.
* The feed always carries the VTIMEZONE, even with no timed event: an empty feed
  (a partner without consent) must still be a valid VCALENDAR, which needs at least
  one component.
* An attendee without an e-mail address gets a ``urn:uuid:`` address derived from
  the event UID and the name. A CAL-ADDRESS must be a URI; Apple's
  ``invalid:nomail`` would be shared by all such attendees, and Thunderbird drops
  attendees with an address it has already seen, so each needs its own.
* Every event is ``CLASS:PRIVATE``: when a partner's calendar is shared with
  colleagues, Outlook and Google then show the slot as busy and hide the details
  (the duty of confidentiality covers the mere fact of a meeting).
* Text is passed through :func:`sanitize_text`; in parameter values (names) line
  breaks also become spaces, double quotes ``'`` and backslashes ``/``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from urllib.parse import quote

from calendars.events import Attendee, CalendarEvent, EventStatus
from calendars.vtimezone import EUROPE_OSLO_VTIMEZONE, TZID, oslo_wall_time

__all__ = [
    "EUROPE_OSLO_VTIMEZONE",
    "PRODID",
    "render_event",
    "render_feed",
    "render_itip",
    "sanitize_text",
]

PRODID = "-//Samhandling//Samhandling//NB"

# Stable namespace for the urn:uuid addresses of attendees without e-mail.
_ATTENDEE_NAMESPACE = uuid.UUID("6f1c7f52-3b0e-5d43-9a0c-5a3c1f0e2b71")

# Everything sanitize_text or TEXT escaping has to look at; most values contain none
# of it and are passed through untouched.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_TEXT_SPECIAL = re.compile("[\\\\;,\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
# C0 (except TAB and LF, which survives as a line break), DEL and C1 controls.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_TEXT_ESCAPES = str.maketrans({"\\": "\\\\", ";": "\\;", ",": "\\,", "\n": "\\n"})
_PARAM_SPECIAL = re.compile('[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff"^\\\\]')
# RFC 6868 readers (ical.js, icalendar) decode ^n, ^' and ^^ in parameter values.
_CARET = re.compile(r"\^(?=[n'^])")
# RFC 3986 reserved and unreserved characters, plus "%" so that pre-encoded URIs stay.
_URI_SAFE = "!#$%&'()*+,/:;=?@[]~"
_URI_PLAIN = re.compile(r"[A-Za-z0-9\-._~!#$%&'()*+,/:;=?@\[\]]*")


def sanitize_text(text: str) -> str:
    """The text a client reads back from what we write.

    Any line break (CRLF, CR, LF, NEL, U+2028, U+2029) becomes LF; other control
    characters except TAB are dropped (RFC 5545 TEXT cannot carry them, and a NUL
    truncates the value in C-based clients); lone surrogates, which UTF-8 cannot
    encode, become U+FFFD. Everything else, including bidi marks and emoji, is kept.
    """
    if _UNSAFE.search(text) is None:
        return text
    text = _LINE_BREAK.sub("\n", text)
    text = _CONTROL.sub("", text)
    return _SURROGATE.sub("\ufffd", text)


def _text(value: str) -> str:
    if _TEXT_SPECIAL.search(value) is None:
        return value
    return sanitize_text(value).translate(_TEXT_ESCAPES)


def _param(value: str) -> str:
    """Always quoted, so that ``:``, ``;`` and ``,`` in names need no further care.

    A quoted value cannot hold a line break or a double quote, and backslash has no
    escape that all readers share (icalendar unescapes ``\\,`` there, RFC 5545 and
    others do not), so these become a space, ``'`` and ``/``. A caret is doubled only
    where an RFC 6868 reader (ical.js, icalendar) would otherwise decode it, so that
    readers without RFC 6868 (vobject, Outlook) rarely see the escape.
    """
    if _PARAM_SPECIAL.search(value) is not None:
        value = sanitize_text(value).replace("\n", " ").replace('"', "'").replace("\\", "/")
        value = _CARET.sub("^^", value)
    return f'"{value}"'


def _uri(value: str) -> str:
    if _URI_PLAIN.fullmatch(value):
        return value
    return quote(value, safe=_URI_SAFE)


def _fold(line: str) -> bytes:
    """RFC 5545 folding at 75 octets, never inside a UTF-8 sequence."""
    data = line.encode()
    size = len(data)
    if size <= 75:
        return data + b"\r\n"
    parts = []
    start = 0
    limit = 75
    while size - start > limit:
        cut = start + limit
        while data[cut] & 0xC0 == 0x80:
            cut -= 1
        parts.append(data[start:cut])
        start = cut
        limit = 74  # the continuation's leading space counts
    parts.append(data[start:])
    return b"\r\n ".join(parts) + b"\r\n"


def _utc_stamp(value: datetime, what: str) -> str:
    if value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {value!r}")
    v = value.astimezone(UTC)
    return f"{v.year:04d}{v.month:02d}{v.day:02d}T{v.hour:02d}{v.minute:02d}{v.second:02d}Z"


def _date_time(name: str, value: datetime) -> str:
    if value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")
    wall = oslo_wall_time(value)
    if wall is None:
        return f"{name}:{_utc_stamp(value, name)}"
    return (
        f"{name};TZID={TZID}:{wall.year:04d}{wall.month:02d}{wall.day:02d}"
        f"T{wall.hour:02d}{wall.minute:02d}{wall.second:02d}"
    )


def _date(name: str, value: date) -> str:
    return f"{name};VALUE=DATE:{value.year:04d}{value.month:02d}{value.day:02d}"


def _attendee_address(event: CalendarEvent, attendee: Attendee, seen: dict[str, int]) -> str:
    if attendee.email:
        return "mailto:" + _uri(attendee.email)
    name = sanitize_text(attendee.name)
    count = seen.get(name, 0)
    seen[name] = count + 1
    key = sanitize_text(f"{event.uid}\n{name}\n{count}")
    return uuid.uuid5(_ATTENDEE_NAMESPACE, key).urn


def _event_lines(event: CalendarEvent) -> list[str]:
    if not event.uid:
        raise ValueError("an event needs a UID")
    if event.sequence < 0:
        raise ValueError(f"SEQUENCE must not be negative, got {event.sequence}")
    stamp = _utc_stamp(event.last_modified, "last_modified")
    lines = [
        "BEGIN:VEVENT",
        "UID:" + _text(event.uid),
        "DTSTAMP:" + stamp,
        "LAST-MODIFIED:" + stamp,
        f"SEQUENCE:{event.sequence}",
    ]
    if event.all_day is not None:
        if event.start is not None or event.end is not None:
            raise ValueError(f"event {event.uid!r} is all-day and timed at once")
        lines.append(_date("DTSTART", event.all_day))
        lines.append(_date("DTEND", event.all_day + timedelta(days=1)))
        transparent = True
    else:
        if event.start is None or event.end is None:
            raise ValueError(f"event {event.uid!r} needs start and end, or all_day")
        lines.append(_date_time("DTSTART", event.start))
        lines.append(_date_time("DTEND", event.end))
        if event.end <= event.start:
            raise ValueError(f"event {event.uid!r} must end after it starts")
        transparent = event.status is EventStatus.CANCELLED
    lines.append("SUMMARY:" + _text(event.summary))
    if event.location:
        lines.append("LOCATION:" + _text(event.location))
    if event.description:
        lines.append("DESCRIPTION:" + _text(event.description))
    if event.url:
        lines.append("URL:" + _uri(event.url))
    lines.append("STATUS:" + event.status.value)
    lines.append("TRANSP:TRANSPARENT" if transparent else "TRANSP:OPAQUE")
    lines.append("CLASS:PRIVATE")
    if event.organizer_email:
        cn = f";CN={_param(event.organizer_name)}" if event.organizer_name else ""
        lines.append(f"ORGANIZER{cn}:mailto:{_uri(event.organizer_email)}")
    seen: dict[str, int] = {}
    for attendee in event.attendees:
        cn = f";CN={_param(attendee.name)}" if attendee.name else ""
        rsvp = ";RSVP=TRUE" if attendee.rsvp else ""
        lines.append(
            f"ATTENDEE{cn};ROLE=REQ-PARTICIPANT;PARTSTAT={attendee.partstat.value}{rsvp}:"
            + _attendee_address(event, attendee, seen)
        )
    lines.append("END:VEVENT")
    return lines


def render_event(event: CalendarEvent) -> bytes:
    """One VEVENT, folded and CRLF-terminated: the fragment a feed is assembled from.

    The bytes depend only on the event, so they can be cached under
    ``(uid, sequence, last_modified)`` and reused across feeds and readers that see
    the same version of the event.
    """
    return b"".join([_fold(line) for line in _event_lines(event)])


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    if seconds <= 0 or value.microseconds:
        raise ValueError(f"refresh must be a positive whole number of seconds, got {value}")
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    time = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    return "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")


def _calendar_head(extra: list[str]) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:" + PRODID, "CALSCALE:GREGORIAN", *extra]
    return b"".join([_fold(line) for line in lines])


def render_feed(
    name: str,
    events: Iterable[bytes],
    *,
    refresh: timedelta = timedelta(hours=1),
    description: str | None = None,
) -> bytes:
    """A subscribable calendar: one VCALENDAR without METHOD around ``events``, the
    fragments from :func:`render_event`, in the order given (sort them, e.g. by start
    and UID, for equal state to give equal bytes).

    ``refresh`` is how often clients should poll (REFRESH-INTERVAL for Apple and
    Thunderbird, X-PUBLISHED-TTL for Outlook).
    """
    ttl = _duration(refresh)
    extra = ["NAME:" + _text(name), "X-WR-CALNAME:" + _text(name)]
    if description:
        extra += ["DESCRIPTION:" + _text(description), "X-WR-CALDESC:" + _text(description)]
    extra += [
        "X-WR-TIMEZONE:" + TZID,
        "REFRESH-INTERVAL;VALUE=DURATION:" + ttl,
        "X-PUBLISHED-TTL:" + ttl,
    ]
    parts = [_calendar_head(extra), EUROPE_OSLO_VTIMEZONE]
    for fragment in events:
        if not (fragment.startswith(b"BEGIN:VEVENT\r\n") and fragment.endswith(b"END:VEVENT\r\n")):
            raise ValueError("feed events must be fragments from render_event")
        parts.append(fragment)
    parts.append(b"END:VCALENDAR\r\n")
    return b"".join(parts)


def render_itip(method: Literal["REQUEST", "CANCEL"], event: CalendarEvent) -> bytes:
    """The ``text/calendar`` body of an iMIP message (RFC 6047).

    The MIME part must name the same method (``text/calendar; method=REQUEST;
    charset=utf-8``, as RFC 6047 asks; Gmail is reported to show no invitation
    otherwise), and be sent base64 or quoted-printable: a folded line may end in a
    space, which 7bit/8bit transports are allowed to strip.

    ORGANIZER is the bare ``mailto:`` of ``event.organizer_email``, which must be
    the sending address; every attendee with an address gets ``RSVP=TRUE`` so that
    clients offer to answer. CANCEL always says ``STATUS:CANCELLED``; the caller
    raises SEQUENCE on every update and cancellation.
    """
    if method not in ("REQUEST", "CANCEL"):
        raise ValueError(f"unsupported iTIP method {method!r}")
    if not event.organizer_email:
        raise ValueError(f"iTIP {method} needs an organizer e-mail (the sending address)")
    if method == "REQUEST":
        if event.status is EventStatus.CANCELLED:
            raise ValueError("a cancelled event is sent with CANCEL, not REQUEST")
        if not any(attendee.email for attendee in event.attendees):
            raise ValueError("iTIP REQUEST needs at least one attendee with an e-mail address")
    attendees = tuple(
        replace(attendee, rsvp=True) if attendee.email else attendee for attendee in event.attendees
    )
    status = EventStatus.CANCELLED if method == "CANCEL" else event.status
    vevent = render_event(replace(event, attendees=attendees, status=status))
    parts = [_calendar_head(["METHOD:" + method])]
    if event.all_day is None:
        parts.append(EUROPE_OSLO_VTIMEZONE)
    parts += [vevent, b"END:VCALENDAR\r\n"]
    return b"".join(parts)
