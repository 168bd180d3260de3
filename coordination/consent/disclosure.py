"""What one reader may see of one meeting, as a ``CalendarEvent`` ready to render.

Used for every disclosure of a meeting — feeds and invitations alike — so that the
level, the summary and the attendee list (DESIGN.md rules 3 and 8) are decided once.
The consent decision itself comes from ``policy``; this module only applies it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from calendars.events import Attendee, CalendarEvent, EventStatus, PartStat
from calendars.schedule import MeetingKind
from coordination.consent.facts import PolicyFacts
from coordination.consent.policy import ContactFacts, Decision, allowed_level, visible_sectors
from coordination.domain import Language, Role, Sector
from coordination.levels import Level
from coordination.models import Case
from coordination.scheduling.enums import MeetingStatus, ParticipantAnswer
from notifications.messages import meeting_kind_name

NEUTRAL = {Language.NB: "Møte", Language.NN: "Møte", Language.EN: "Meeting"}

PARTSTAT = {
    ParticipantAnswer.NEEDS_ACTION: PartStat.NEEDS_ACTION, ParticipantAnswer.ACCEPTED: PartStat.ACCEPTED,
    ParticipantAnswer.DECLINED: PartStat.DECLINED, ParticipantAnswer.TENTATIVE: PartStat.TENTATIVE,
}


class MeetingView(Protocol):
    """What a disclosure reads of a meeting: its table row, or the columns a feed loads."""

    @property
    def uid(self) -> str: ...
    @property
    def kind(self) -> MeetingKind: ...
    @property
    def status(self) -> MeetingStatus: ...
    @property
    def ical_sequence(self) -> int: ...
    @property
    def start(self) -> datetime: ...
    @property
    def end(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def place(self) -> str: ...
    @property
    def video_link(self) -> str: ...
    @property
    def agenda(self) -> str: ...
    @property
    def parents_told(self) -> bool: ...


class ParticipantView(Protocol):
    @property
    def partstat(self) -> ParticipantAnswer: ...


class ContactView(Protocol):
    @property
    def id(self) -> int | None: ...
    @property
    def role(self) -> Role: ...
    @property
    def sector(self) -> Sector: ...
    @property
    def name(self) -> str: ...
    @property
    def email(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Reader:
    """Who is looking: a contact of the case (at their consent level), or staff of the
    service (a coordinator or leader, who see everything of cases they may open)."""

    contact: ContactFacts | None
    language: Language
    cap: Level = Level.CONTENT
    show_child_name: bool = False

    @property
    def is_staff(self) -> bool:
        return self.contact is None


def level_for(reader: Reader, facts: PolicyFacts, meeting: MeetingView, at: datetime) -> Decision:
    """The level a reader gets for a meeting at ``at``: what the policy allows, never above
    the reader's cap. Staff of the service get the cap."""
    if reader.contact is None:
        return Decision(True, reader.cap, ())
    decision = allowed_level(
        facts.case, facts.contacts, facts.records, reader.contact, at,
        child_talk=meeting.kind == MeetingKind.CHILD_TALK,
        parents_told_of_child_talk=meeting.parents_told,
    )
    if not decision.allowed:
        return decision
    return Decision(True, min(decision.level, reader.cap), decision.reasons,
                    decision.consent_record_ids)


def summary(case: Case, meeting: MeetingView, level: Level, reader: Reader) -> str:
    """Kind, case reference and initials at most; never a national identity number. The
    child's given name only for staff, and only when the unit turns that on."""
    language = reader.language
    if level < Level.PURPOSE:
        return NEUTRAL[language]
    kind = meeting_kind_name(meeting.kind, language)
    who = case.child_initials
    if reader.is_staff and reader.show_child_name:
        who = f"{case.child_given_name} ({case.child_initials})"
    return f"{kind} – {case.reference} {who}"


def to_event(
    case: Case,
    meeting: MeetingView,
    participants: Sequence[tuple[ParticipantView, ContactView]],
    level: Level,
    reader: Reader,
    visible: frozenset[Sector],
    *,
    organizer_email: str | None = None,
    url: str | None = None,
    plan_text: str | None = None,
) -> CalendarEvent:
    """The meeting as this reader may see it at ``level`` (which must be above none)."""
    assert level > Level.NONE
    if level >= Level.PURPOSE or reader.is_staff:
        shown = [(p, c) for p, c in participants if c.sector in visible]
    else:
        # At logistics a reader learns only of themselves among the attendees.
        shown = [(p, c) for p, c in participants if reader.contact is not None and c.id == reader.contact.id]
    attendees = tuple(_attendee(case, participant, contact, reader) for participant, contact in shown)
    description_parts: list[str] = []
    if level >= Level.PURPOSE and meeting.agenda:
        description_parts.append(meeting.agenda)
    if level >= Level.CONTENT and plan_text:
        description_parts.append(plan_text)
    place = meeting.place or None
    if meeting.video_link:
        place = f"{place} ({meeting.video_link})" if place else meeting.video_link
    return CalendarEvent(
        uid=meeting.uid,
        sequence=meeting.ical_sequence,
        last_modified=meeting.updated_at,
        summary=summary(case, meeting, level, reader),
        start=meeting.start,
        end=meeting.end,
        status=_status(meeting.status),
        location=place,
        description="\n\n".join(description_parts) or None,
        url=url,
        organizer_email=organizer_email,
        attendees=attendees,
    )


def _attendee(case: Case, participant: ParticipantView, contact: ContactView, reader: Reader) -> Attendee:
    """The child is named only to the family and the service; partners see the initials, as in
    the summary, and never the child's address."""
    partstat = PARTSTAT.get(participant.partstat, PartStat.NEEDS_ACTION)
    reader_is_outside = reader.contact is not None and reader.contact.sector.needs_consent
    if contact.role == Role.CHILD and reader_is_outside:
        return Attendee(name=case.child_initials, email=None, partstat=partstat)
    return Attendee(name=contact.name, email=contact.email or None, partstat=partstat)


def _status(status: MeetingStatus) -> EventStatus:
    if status is MeetingStatus.CANCELLED:
        return EventStatus.CANCELLED
    if status is MeetingStatus.PROPOSED:
        return EventStatus.TENTATIVE
    return EventStatus.CONFIRMED


def visible_for(reader: Reader, facts: PolicyFacts, at: datetime) -> frozenset[Sector]:
    """Rule 8 for this reader; staff see every sector."""
    if reader.contact is None:
        return frozenset(Sector)
    return visible_sectors(facts.case, facts.contacts, facts.records, reader.contact, at)
