"""The plain event data that feeds and invitations are rendered from.

``coordination`` builds these from its meetings *after* the consent filter has decided
what the reader may see, so everything in here is already safe to publish to that reader.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime


class EventStatus(enum.StrEnum):
    TENTATIVE = "TENTATIVE"
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"


class PartStat(enum.StrEnum):
    NEEDS_ACTION = "NEEDS-ACTION"
    ACCEPTED = "ACCEPTED"
    DECLINED = "DECLINED"
    TENTATIVE = "TENTATIVE"


@dataclass(frozen=True, slots=True)
class Attendee:
    """One attendee line; ``email`` may be None when the reader may not learn it."""

    name: str
    email: str | None = None
    partstat: PartStat = PartStat.NEEDS_ACTION
    rsvp: bool = False


@dataclass(frozen=True, slots=True)
class CalendarEvent:
    """One VEVENT. Timed events use aware UTC ``start``/``end``; all-day events
    (deadlines in a coordinator's feed) set ``all_day`` and leave start/end None."""

    uid: str
    sequence: int
    last_modified: datetime  # aware UTC; used for DTSTAMP and LAST-MODIFIED
    summary: str
    start: datetime | None = None
    end: datetime | None = None
    all_day: date | None = None
    status: EventStatus = EventStatus.CONFIRMED
    location: str | None = None
    description: str | None = None
    url: str | None = None
    organizer_email: str | None = None
    organizer_name: str | None = None
    attendees: tuple[Attendee, ...] = field(default_factory=tuple)
