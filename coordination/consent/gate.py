"""The send-time consent gate: the policy asked at the moment of sending (rule 1), every decision
audited with its reasons and the records it rested on (rule 9).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select

from calendars.events import CalendarEvent
from calendars.ical import render_itip
from coordination import audit
from coordination.access.rules import visible_cases
from coordination.consent.disclosure import Reader, level_for, to_event, visible_for
from coordination.consent.facts import (
    CONSENT_FACT_COLUMNS,
    Columns,
    PolicyFacts,
    case_facts,
    contact_fact_of,
    contact_facts,
    contact_rows,
    load_policy_facts,
)
from coordination.consent.policy import ConsentFact, Decision
from coordination.context import ServiceContext
from coordination.domain import AuditAction, Language, Role, Sector
from coordination.levels import Level
from coordination.models import (
    Alert,
    Case,
    ConsentRecord,
    Contact,
    Meeting,
    MeetingParticipant,
    OutboxMessage,
    Plan,
    Unit,
    User,
)
from coordination.outbox.queue import channels_of, recipient_kind
from coordination.outbox.store import stored_reasons
from coordination.scheduling.answer_links import KnownLinks, answer_link, known_answer_links
from coordination.scheduling.enums import MeetingStatus
from coordination.scheduling.meetings import participants_of
from notifications.messages import message_level
from notifications.ports import (
    AlertDetails,
    Channel,
    Decisions,
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


class Stop(enum.StrEnum):
    """Why a queued meeting message is not sent, in the order the gate asks."""

    GONE = "gone"  # the meeting or the recipient no longer exists
    SUPERSEDED = "superseded"  # the meeting changed after the message was queued
    NOT_CONFIRMED = "not_confirmed"
    INACTIVE = "inactive"  # the recipient is no longer active in the case
    NOT_INVITED = "not_invited"
    NO_CONSENT = "no_consent"
    NO_ADDRESS = "no_address"


@dataclass(frozen=True, slots=True)
class Asked:
    """What the policy was asked about, and its answer."""

    meeting: Meeting
    contact: Contact
    case: Case
    reader: Reader
    facts: PolicyFacts
    decision: Decision


@dataclass(frozen=True, slots=True)
class Verdict:
    """The gate's decision on a queued meeting message. ``stop`` is None when it may be sent;
    ``why`` is the stored and audited text (ids and rule codes); ``asked`` is set once the
    policy was asked (the audit records its answer)."""

    stop: Stop | None
    why: str = ""
    asked: Asked | None = None

    def suppressed(self) -> Suppressed:
        if self.stop is Stop.NO_CONSENT and self.asked is not None:
            return Suppressed(_suppression(self.asked.decision), self.why)
        code = SuppressionCode.NO_ADDRESS if self.stop is Stop.NO_ADDRESS else SuppressionCode.OBSOLETE
        return Suppressed(code, self.why)


async def decide_for(session: AsyncSession, row: OutboxMessage, now: datetime, cap: Level, *,
                     facts: PolicyFacts | None = None) -> Verdict:
    """What the gate decides about a queued meeting message at ``now``, recording nothing: the
    dispatcher's gate acts on it, and the outbox page shows it as a preview. ``facts`` are the
    row's case's, for a caller that has loaded them already."""
    meeting = await session.get(Meeting, row.meeting_id) if row.meeting_id else None
    contact = await session.get(Contact, row.recipient_contact_id) if row.recipient_contact_id else None
    if meeting is None or contact is None:
        return Verdict(Stop.GONE, "the meeting or the recipient is gone")
    if row.meeting_sequence != meeting.ical_sequence:
        return Verdict(Stop.SUPERSEDED, f"superseded: sequence {row.meeting_sequence} is now {meeting.ical_sequence}")
    if row.kind is not MessageKind.CANCELLATION and meeting.status is not MeetingStatus.CONFIRMED:
        return Verdict(Stop.NOT_CONFIRMED, f"the meeting is {meeting.status}")
    if not contact.active:
        return Verdict(Stop.INACTIVE, f"contact {contact.id} is no longer active")
    if await session.get(MeetingParticipant, (meeting.id, contact.id)) is None:
        return Verdict(Stop.NOT_INVITED, f"contact {contact.id} is no longer invited")
    case = await session.get(Case, meeting.case_id)
    assert case is not None
    if facts is None:
        facts = await load_policy_facts(session, case)
    reader = Reader(contact=contact_facts(contact), language=contact.language, cap=cap)
    asked = Asked(meeting, contact, case, reader, facts, level_for(reader, facts, meeting, now))
    if not asked.decision.allowed:
        return Verdict(Stop.NO_CONSENT, _reason_text(asked.decision), asked)
    if row.channel is Channel.SMS and not contact.mobile:
        return Verdict(Stop.NO_ADDRESS, f"contact {contact.id} has no mobile number", asked)
    if row.channel is Channel.EMAIL and not contact.email:
        return Verdict(Stop.NO_ADDRESS, f"contact {contact.id} has no e-mail address", asked)
    return Verdict(None, asked=asked)


class ConsentGate:
    """``DisclosureGate``: the policy, asked at send time, and the message data it allows."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    async def prepare(self, message: PortMessage, now: datetime) -> Prepared | Suppressed:
        return (await self.prepare_batch([message], now)).answers[0]

    async def prepare_batch(self, messages: Sequence[PortMessage], now: datetime) -> Decisions:
        """Each message decided by ``decide_for`` as :meth:`prepare` does, in one transaction: the
        rows, meetings, participants, cases, units and plans read once for all, and each case's
        consent facts once. The units' data versions are read first, so that a change committed
        while deciding shows as moved (:meth:`moved`) even if a decision already saw it."""
        async with self._ctx.transaction() as session:
            ids = [int(message.id) for message in messages]
            rows = {str(row.id): row for row in
                    (await session.exec(select(OutboxMessage).where(col(OutboxMessage.id).in_(ids)))).all()}
            versions = await _unit_versions(session, {row.unit_id for row in rows.values()})
            batch = await _Batch.load(session, list(rows.values()))
            answers: list[Prepared | Suppressed] = []
            basis: list[tuple[str, int]] = []
            # The audit entries and ``sent_to`` go to the database together at the commit, not
            # before each read (the reads do not depend on them; answer links flush when they do).
            with session.sync_session.no_autoflush:
                for message in messages:
                    row = rows.get(message.id)
                    if row is None:
                        answers.append(Suppressed(SuppressionCode.OBSOLETE, "the outbox row is gone"))
                        basis.append(("", 0))
                        continue
                    basis.append((str(row.unit_id), versions.get(row.unit_id, 0)))
                    if row.kind is MessageKind.ALERT:
                        answers.append(await self._prepare_alert(session, row))
                    else:
                        answers.append(await self._prepare_meeting(session, row, now, batch))
            return Decisions(tuple(answers), tuple(basis))

    async def moved(self, decisions: Decisions) -> frozenset[int]:
        """One query: the units whose data version went up since the answers were given."""
        units = {int(key) for key, _ in decisions.basis if key}
        if not units:
            return frozenset()
        async with self._ctx.transaction() as session:
            versions = await _unit_versions(session, units)
        return frozenset(index for index, (key, version) in enumerate(decisions.basis)
                         if key and versions.get(int(key), version + 1) != version)

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
        return Prepared(
            recipient=Recipient(email=user.email, language=Language.NB),
            recipient_kind=RecipientKind.COORDINATOR,
            allowed_level=min(Level.CONTENT, self._ctx.settings.email_level_cap),
            alert=AlertDetails(kind=alert.kind, case_reference=case.reference if case else None),
            link_url=f"{self._ctx.settings.public_base_url}/",
        )

    async def _prepare_meeting(self, session: AsyncSession, row: OutboxMessage, now: datetime, batch: _Batch
                               ) -> Prepared | Suppressed:
        meeting = await session.get(Meeting, row.meeting_id) if row.meeting_id else None
        facts = batch.facts.get(meeting.case_id) if meeting is not None else None
        verdict = await decide_for(session, row, now, self._ctx.settings.email_level_cap, facts=facts)
        asked = verdict.asked
        if asked is not None:
            assert asked.case.id is not None
            batch.facts[asked.case.id] = asked.facts
            self._audit(session, row, asked, now)
            if verdict.stop is Stop.NO_CONSENT:
                # Typed, for the outbox page to put in words: ids and rule codes, never names.
                row.suppressed_reasons = stored_reasons(asked.decision.reasons)
                session.add(row)
        if verdict.stop is not None or asked is None:
            return verdict.suppressed()
        # One level for the whole message — text, HTML and the calendar part — which the
        # dispatcher renders and audits as sent (rules 3 and 9).
        level = message_level(row.kind, asked.decision.level)
        # The address this attempt goes to, recorded on each attempt: a reply is matched against it.
        row.sent_to = asked.contact.mobile if row.channel is Channel.SMS else asked.contact.email
        session.add(row)
        return await self._prepared(session, row, asked, level, now, batch)

    @staticmethod
    def _audit(session: AsyncSession, row: OutboxMessage, asked: Asked, now: datetime) -> None:
        """Rule 9: every decision of the policy, with its reasons and the records it rested on."""
        decision, case, contact = asked.decision, asked.case, asked.contact
        decided = {"outbox": row.id, "meeting": asked.meeting.id, "contact": contact.id, "channel": row.channel.value,
                   "level": decision.level.value if decision.allowed else "none",
                   "reasons": [r.code for r in decision.reasons],
                   "consent_records": list(decision.consent_record_ids)}
        action = AuditAction.DISCLOSURE_ALLOWED if decision.allowed else AuditAction.DISCLOSURE_DENIED
        audit.record(session, unit_id=case.unit_id, case_id=case.id, actor=audit.SYSTEM,
                     action=action, subject=f"contact:{contact.id}", at=now, detail=decided)

    async def _prepared(self, session: AsyncSession, row: OutboxMessage, asked: Asked, level: Level,
                        now: datetime, batch: _Batch) -> Prepared:
        settings = self._ctx.settings
        kind, case, meeting, contact, reader = row.kind, asked.case, asked.meeting, asked.contact, asked.reader
        unit = await session.get(Unit, case.unit_id)
        assert unit is not None
        people = await batch.people_of(session, meeting.id or 0)
        plan = await batch.plan_of(session, case.id or 0)
        visible = visible_for(reader, asked.facts, now)
        answer_url = None
        if kind in _SENT_KINDS:
            answer_url = await answer_link(session, self._ctx, meeting, contact, now, known=batch.links)
        calendar = None
        if row.channel is Channel.EMAIL and kind in (MessageKind.INVITATION, MessageKind.UPDATE,
                                                      MessageKind.CANCELLATION):
            event = to_event(case, meeting, people, level, reader, visible, organizer_email=settings.mail_from,
                             url=answer_url, plan_text=plan.goals if plan else None)
            event = _neutral_organizer(event, settings.mail_from_name)
            calendar = render_itip("CANCEL" if kind is MessageKind.CANCELLATION else "REQUEST", event)
        return Prepared(
            recipient=Recipient(email=contact.email, language=contact.language, mobile=contact.mobile or None,
                                by_email=bool(contact.email) and Channel.EMAIL in channels_of(contact)),
            recipient_kind=recipient_kind(contact),
            allowed_level=level,
            meeting=MeetingDetails(
                uid=meeting.uid, sequence=meeting.ical_sequence, start=meeting.start, end=meeting.end,
                place=_place(meeting), organiser_phone=unit.phone or None,
                kind=meeting.kind, agenda_headline=meeting.agenda or None,
                content_text=plan.goals if plan and plan.goals and level >= Level.CONTENT else None,
            ),
            answer_url=answer_url,
            calendar=calendar,
            withheld_terms=_withheld(case, contact, people, visible, plan, level),
            valid_until=min(asked.facts.changes_after(now), default=None),
        )


async def _unit_versions(session: AsyncSession, units: set[int]) -> dict[int, int]:
    rows = await session.exec(select(Unit.id, Unit.data_version).where(col(Unit.id).in_(sorted(units))))
    return {int(unit_id or 0): version for unit_id, version in rows.all()}


@dataclass(slots=True)
class _Batch:
    """What several messages' decisions share, read once: each case's consent facts (filled as
    ``decide_for`` loads them), the meetings' participants and the cases' plans. Meetings, cases
    and units are read in one statement each so that ``session.get`` finds them in the session."""

    facts: dict[int, PolicyFacts] = field(default_factory=dict)
    people: dict[int, list[tuple[MeetingParticipant, Contact]]] = field(default_factory=dict)
    plans: dict[int, Plan | None] = field(default_factory=dict)
    #: the invitations' answer-link rows, read in one statement; the links this chunk makes join them
    links: KnownLinks = field(default_factory=dict)
    #: the rows read for ``session.get`` to find: the session's identity map holds them only weakly
    held: list[object] = field(default_factory=list)

    @classmethod
    async def load(cls, session: AsyncSession, rows: Sequence[OutboxMessage]) -> _Batch:
        meeting_ids = sorted({row.meeting_id for row in rows if row.meeting_id is not None})
        case_ids = sorted({row.case_id for row in rows if row.case_id is not None})
        batch = cls(people=await participants_of(session, meeting_ids) if meeting_ids else {},
                    links=await known_answer_links(session, (
                        (row.meeting_id, row.recipient_contact_id) for row in rows if row.kind in _SENT_KINDS
                        and row.meeting_id is not None and row.recipient_contact_id is not None)))
        if meeting_ids:
            batch.held += (await session.exec(select(Meeting).where(col(Meeting.id).in_(meeting_ids)))).all()
        if not case_ids:
            return batch
        cases = (await session.exec(select(Case).where(col(Case.id).in_(case_ids)))).all()
        units = sorted({case.unit_id for case in cases})
        batch.held += [*cases, *(await session.exec(select(Unit).where(col(Unit.id).in_(units)))).all()]
        await batch._load_facts(session, cases)
        plans = (await session.exec(select(Plan).where(col(Plan.case_id).in_(case_ids)))).all()
        batch.plans = dict.fromkeys(case_ids)
        for plan in reversed(plans):  # the first, as ``.first()`` would give
            batch.plans[plan.case_id] = plan
        return batch

    async def _load_facts(self, session: AsyncSession, cases: Sequence[Case]) -> None:
        """Every case's consent facts as ``load_policy_facts`` reads them, in two statements."""
        case_ids = [case.id for case in cases if case.id is not None]
        contacts: dict[int, list[Any]] = {}
        for row in (await session.exec(contact_rows(case_ids, col(Contact.case_id)))).all():
            contacts.setdefault(row[-1], []).append(contact_fact_of(row))
        records: dict[int, list[ConsentFact]] = {}
        query: Columns = Select(*CONSENT_FACT_COLUMNS, col(ConsentRecord.case_id))
        for row in (await session.exec(query.where(col(ConsentRecord.case_id).in_(case_ids)))).all():
            records.setdefault(row[-1], []).append(ConsentFact(*row[:-1]))
        for case in cases:
            assert case.id is not None
            self.facts[case.id] = PolicyFacts(case=case_facts(case), contacts=tuple(contacts.get(case.id, ())),
                                              records=tuple(records.get(case.id, ())))

    async def people_of(self, session: AsyncSession, meeting_id: int) -> list[tuple[MeetingParticipant, Contact]]:
        if meeting_id not in self.people:
            self.people[meeting_id] = (await participants_of(session, [meeting_id])).get(meeting_id, [])
        return self.people[meeting_id]

    async def plan_of(self, session: AsyncSession, case_id: int) -> Plan | None:
        if case_id not in self.plans:
            self.plans[case_id] = (await session.exec(select(Plan).where(Plan.case_id == case_id))).first()
        return self.plans[case_id]


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
    if reader.sector.needs_consent:
        child_names = [c.name for _, c in people if c.role == Role.CHILD]
        terms += [case.child_given_name, *child_names]
    for _, other in people:
        if other.id != reader.id and (other.sector not in visible or level < Level.PURPOSE):
            terms.append(other.name)
    if plan is not None and level < Level.CONTENT:
        terms += [str(m.get("what", "")) for m in plan.measures]
    own = reader.name.casefold()
    return tuple(sorted({t for t in terms if t and len(t) >= 3 and t.casefold() not in own}))
