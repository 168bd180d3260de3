"""The send-time consent gate: the policy asked at the moment of sending (rule 1), every decision
audited with its reasons and the records it rested on (rule 9).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from calendars.events import CalendarEvent
from calendars.ical import render_itip
from calendars.schedule import MeetingKind
from coordination import audit
from coordination.access.rules import visible_cases
from coordination.consent.disclosure import Reader, level_for, to_event, visible_for
from coordination.consent.facts import PolicyFacts, contact_facts, load_policy_facts
from coordination.consent.policy import Decision
from coordination.context import ServiceContext
from coordination.domain import Language, Role, Sector
from coordination.levels import Level
from coordination.models import (
    Alert,
    Case,
    Contact,
    Meeting,
    MeetingParticipant,
    OutboxMessage,
    Plan,
    Unit,
    User,
)
from coordination.outbox.queue import recipient_kind
from coordination.scheduling.answer_links import answer_link
from coordination.scheduling.meetings import participants_of
from notifications.messages import message_level
from notifications.ports import (
    AlertDetails,
    AlertKind,
    MeetingDetails,
    MessageKind,
    Prepared,
    Recipient,
    RecipientKind,
    Suppressed,
    SuppressionCode,
)
from notifications.ports import (
    OutboxMessage as PortMessage,
)

_SENT_KINDS = {MessageKind.INVITATION, MessageKind.UPDATE}


def _suppression(decision: Decision) -> SuppressionCode:
    codes = {r.code for r in decision.reasons}
    if "withdrawn" in codes:
        return SuppressionCode.CONSENT_WITHDRAWN
    if "child_talk_private" in codes:
        return SuppressionCode.NOT_TOLD
    return SuppressionCode.NO_CONSENT


def _reason_text(decision: Decision) -> str:
    """Ids and rule codes only: this text is stored and shown, and must name nobody."""
    parts = []
    for reason in decision.reasons:
        text = reason.code
        if reason.contact_id is not None:
            text += f" contact={reason.contact_id}"
        if reason.sector is not None:
            text += f" sector={reason.sector.value}"
        parts.append(text)
    return "; ".join(parts) or "no consent"


class ConsentGate:
    """``DisclosureGate``: the policy, asked at send time, and the message data it allows."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    async def prepare(self, message: PortMessage, now: datetime) -> Prepared | Suppressed:
        async with self._ctx.transaction() as session:
            row = await session.get(OutboxMessage, int(message.id))
            if row is None:
                return Suppressed(SuppressionCode.OBSOLETE, "the outbox row is gone")
            if row.kind == MessageKind.ALERT.value:
                return await self._prepare_alert(session, row)
            return await self._prepare_meeting(session, row, now)

    async def _prepare_alert(self, session: AsyncSession, row: OutboxMessage) -> Prepared | Suppressed:
        user = await session.get(User, row.recipient_user_id) if row.recipient_user_id else None
        alert = await session.get(Alert, row.alert_id) if row.alert_id else None
        if user is None or alert is None or not user.active:
            return Suppressed(SuppressionCode.OBSOLETE, "the coordinator or the alert is gone")
        if not user.email:
            return Suppressed(SuppressionCode.NO_ADDRESS, f"user {user.id} has no e-mail address")
        case = None
        if alert.case_id is not None:
            # Rule 11: an alert queued while the user was on the case is not mailed once they are off it.
            case = (await session.exec(visible_cases(user).where(Case.id == alert.case_id))).first()
            if case is None:
                return Suppressed(SuppressionCode.OBSOLETE, f"user {user.id} no longer sees the alert's case")
        kind = AlertKind(alert.kind) if alert.kind in AlertKind.__members__.values() else AlertKind.OTHER
        return Prepared(
            recipient=Recipient(email=user.email, language=Language.NB),
            recipient_kind=RecipientKind.COORDINATOR,
            allowed_level=min(Level.CONTENT, self._ctx.settings.email_level_cap),
            alert=AlertDetails(kind=kind, case_reference=case.reference if case else None),
            link_url=f"{self._ctx.settings.public_base_url}/",
        )

    async def _prepare_meeting(self, session: AsyncSession, row: OutboxMessage, now: datetime
                               ) -> Prepared | Suppressed:
        meeting = await session.get(Meeting, row.meeting_id) if row.meeting_id else None
        contact = await session.get(Contact, row.recipient_contact_id) if row.recipient_contact_id else None
        if meeting is None or contact is None:
            return Suppressed(SuppressionCode.OBSOLETE, "the meeting or the recipient is gone")
        kind = MessageKind(row.kind)
        if row.meeting_sequence != meeting.ical_sequence:
            return Suppressed(SuppressionCode.OBSOLETE,
                              f"superseded: sequence {row.meeting_sequence} is now {meeting.ical_sequence}")
        if kind is not MessageKind.CANCELLATION and meeting.status != "confirmed":
            return Suppressed(SuppressionCode.OBSOLETE, f"the meeting is {meeting.status}")
        if not contact.active:
            return Suppressed(SuppressionCode.OBSOLETE, f"contact {contact.id} is no longer active")
        if await session.get(MeetingParticipant, (meeting.id, contact.id)) is None:
            return Suppressed(SuppressionCode.OBSOLETE, f"contact {contact.id} is no longer invited")
        case = await session.get(Case, meeting.case_id)
        unit = await session.get(Unit, case.unit_id) if case else None
        assert case is not None and unit is not None
        facts = await load_policy_facts(session, case)
        reader = Reader(contact=contact_facts(contact), language=Language(contact.language),
                        cap=self._ctx.settings.email_level_cap)
        decision = level_for(reader, facts, meeting, now)
        decided = {"outbox": row.id, "meeting": meeting.id, "contact": contact.id, "channel": "email",
                   "level": decision.level.value if decision.allowed else "none",
                   "reasons": [r.code for r in decision.reasons],
                   "consent_records": list(decision.consent_record_ids)}
        if not decision.allowed:
            audit.record(session, unit_id=case.unit_id, case_id=case.id, actor=audit.SYSTEM,
                         action="disclosure.denied", subject=f"contact:{contact.id}", at=now, detail=decided)
            return Suppressed(_suppression(decision), _reason_text(decision))
        audit.record(session, unit_id=case.unit_id, case_id=case.id, actor=audit.SYSTEM,
                     action="disclosure.allowed", subject=f"contact:{contact.id}", at=now, detail=decided)
        if not contact.email:
            return Suppressed(SuppressionCode.NO_ADDRESS, f"contact {contact.id} has no e-mail address")
        # One level for the whole message — text, HTML and the calendar part — which the
        # dispatcher renders and audits as sent (rules 3 and 9).
        level = message_level(kind, decision.level)
        return await self._prepared(session, row, kind, case, unit, meeting, contact, reader, facts, level, now)

    async def _prepared(self, session: AsyncSession, row: OutboxMessage, kind: MessageKind, case: Case,
                        unit: Unit, meeting: Meeting, contact: Contact, reader: Reader, facts: PolicyFacts,
                        level: Level, now: datetime) -> Prepared:
        settings = self._ctx.settings
        people = (await participants_of(session, [meeting.id or 0])).get(meeting.id or 0, [])
        plan = (await session.exec(select(Plan).where(Plan.case_id == case.id))).first()
        visible = visible_for(reader, facts, now)
        answer_url = None
        if kind in _SENT_KINDS:
            answer_url = await answer_link(session, self._ctx, meeting, contact, now)
        calendar = None
        if kind in (MessageKind.INVITATION, MessageKind.UPDATE, MessageKind.CANCELLATION):
            event = to_event(case, meeting, people, level, reader, visible, organizer_email=settings.mail_from,
                             url=answer_url, plan_text=plan.goals if plan else None)
            event = _neutral_organizer(event, settings.mail_from_name)
            calendar = render_itip("CANCEL" if kind is MessageKind.CANCELLATION else "REQUEST", event)
        return Prepared(
            recipient=Recipient(email=contact.email, language=Language(contact.language)),
            recipient_kind=recipient_kind(contact),
            allowed_level=level,
            meeting=MeetingDetails(
                uid=meeting.uid, sequence=meeting.ical_sequence, start=meeting.start, end=meeting.end,
                place=_place(meeting), organiser_phone=unit.phone or None,
                kind=MeetingKind(meeting.kind), agenda_headline=meeting.agenda or None,
                content_text=plan.goals if plan and plan.goals and level >= Level.CONTENT else None,
            ),
            answer_url=answer_url,
            calendar=calendar,
            withheld_terms=_withheld(case, contact, people, visible, plan, level),
        )


def _place(meeting: Meeting) -> str | None:
    if meeting.place and meeting.video_link:
        return f"{meeting.place} ({meeting.video_link})"
    return meeting.place or meeting.video_link or None


def _neutral_organizer(event: CalendarEvent, name: str) -> CalendarEvent:
    """The caseworker's name must not travel in the iTIP object: the organiser is neutral."""
    return replace(event, organizer_name=name)


def _withheld(case: Case, reader: Contact, people: Sequence[tuple[object, Contact]], visible: frozenset[Sector],
              plan: Plan | None, level: Level) -> tuple[str, ...]:
    """Words this recipient may not read: a last guard against a leaking place or agenda.
    The child is named to the family and the service, as the attendee list does."""
    terms: list[str] = []
    if Sector(reader.sector).needs_consent:
        child_names = [c.name for _, c in people if c.role == Role.CHILD]
        terms += [case.child_given_name, *child_names]
    for _, other in people:
        if other.id != reader.id and (Sector(other.sector) not in visible or level < Level.PURPOSE):
            terms.append(other.name)
    if plan is not None and level < Level.CONTENT:
        terms += [str(m.get("what", "")) for m in plan.measures]
    own = reader.name.casefold()
    return tuple(sorted({t for t in terms if t and len(t) >= 3 and t.casefold() not in own}))
