"""The case record for the journal (DESIGN.md "The case record and retention"): the case, its
contacts and how each was reached, the consent history, the plan's revisions, the meetings with
who was invited and who answered what and how, every disclosure and every suppression.

Gathered as typed data from the tables and the audit log; the API answers it as JSON, the PDF
and the family's access report are made from the same data."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import date, datetime

import msgspec
from msgspec import Struct
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from calendars.schedule import MeetingKind
from coordination.consent.texts import contact_label, describe
from coordination.domain import CaseStatus, ConsentForm, ConsentStatus, Language, MeasureType, Role, Sector
from coordination.feeds.enums import FeedScope
from coordination.levels import Level
from coordination.models import (
    Case,
    CaseCoordinator,
    ConsentRecord,
    Contact,
    Meeting,
    OutboxMessage,
    Plan,
    PlanRevision,
    User,
)
from coordination.outbox.enums import OutboxStatus
from coordination.outbox.store import reasons_of
from coordination.records.disclosures import Channel, Shared, shared_of_case
from coordination.scheduling.enums import AnswerChannel, MeetingStatus, ParticipantAnswer
from coordination.scheduling.meetings import participants_of
from notifications.ports import MessageKind, SuppressionCode

NB = Language.NB


class RecordCase(Struct, frozen=True):
    id: int
    reference: str
    initials: str
    measure_type: MeasureType
    order_date: date | None
    status: CaseStatus
    opened_at: datetime
    closed_at: datetime | None
    plan_start: date | None
    plan_end: date | None
    coordinators: list[str]


class RecordContact(Struct, frozen=True):
    id: int
    name: str
    role: Role
    role_label: str
    sector: Sector
    organisation: str
    daily_care: bool
    active: bool
    email: str
    phone: str
    #: The channels through which something was actually shared with them.
    reached_by: list[Channel]


class ConsentEvent(enum.StrEnum):
    GRANTED = "granted"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"
    #: A grant whose end date passed with nothing recorded after it.
    EXPIRED = "expired"


class RecordConsent(Struct, frozen=True):
    record_id: int
    event: ConsentEvent
    #: When it was recorded, or for an expiry when the grant ended.
    at: datetime
    grantor_contact_id: int
    grantor: str
    sector: Sector
    level: Level
    valid_from: datetime
    valid_until: datetime | None
    form: ConsentForm
    recorded_by: str
    recorded_at: datetime
    note: str


class RecordPlanRevision(Struct, frozen=True):
    revision: int
    recorded_by: str
    recorded_at: datetime
    start_date: str
    expected_end: str
    goals: str
    measures: list[str]


class RecordInvitee(Struct, frozen=True):
    contact_id: int
    name: str
    answer: ParticipantAnswer
    answered_at: datetime | None
    #: How the answer came (link, calendar reply, or recorded by the coordinator); None until answered.
    answered_via: AnswerChannel | None


class RecordMeeting(Struct, frozen=True):
    id: int
    kind: MeetingKind
    start: datetime
    end: datetime
    place: str
    status: MeetingStatus
    held: bool
    cancelled_at: datetime | None
    invitees: list[RecordInvitee]


class RecordDisclosure(Struct, frozen=True):
    at: datetime
    channel: Channel
    message_kind: MessageKind | None
    recipient: str
    recipient_contact_id: int | None
    recipient_user_id: int | None
    sector: Sector | None
    meeting_ids: list[int]
    level: Level
    consent_record_ids: list[int]


class RecordSuppression(Struct, frozen=True):
    at: datetime
    outbox_id: int
    message_kind: MessageKind
    recipient: str
    recipient_contact_id: int | None
    meeting_id: int | None
    code: SuppressionCode | None
    #: The consent policy's rules that stopped it, in words (empty for any other stop).
    reasons: list[str]


class CaseRecord(Struct, frozen=True):
    case: RecordCase
    contacts: list[RecordContact]
    consents: list[RecordConsent]
    plan_revisions: list[RecordPlanRevision]
    meetings: list[RecordMeeting]
    disclosures: list[RecordDisclosure]
    suppressions: list[RecordSuppression]
    produced_at: datetime
    produced_by: str


class _Names:
    """The case's contacts and the unit's staff by id, for putting rows in words."""

    def __init__(self, contacts: Sequence[Contact], staff: Mapping[int, str]) -> None:
        self.contacts = {c.id: c for c in contacts if c.id is not None}
        self.labels = {i: contact_label(c.name, c.role, c.role_label, NB) for i, c in self.contacts.items()}
        self.staff = dict(staff)

    def user(self, user_id: int | None) -> str:
        return self.staff.get(user_id or 0, f"Bruker {user_id}")

    def recipient(self, shared: Shared) -> str:
        if shared.contact_id is not None:
            return self.labels.get(shared.contact_id, f"Kontakt {shared.contact_id}")
        if shared.user_id is not None:
            return f"{self.user(shared.user_id)} (barneverntjenesten)"
        return "Saksteamet (kalender for saken)" if shared.feed_scope is FeedScope.CASE else "?"


async def gather(session: AsyncSession, case: Case, now: datetime, produced_by: str) -> CaseRecord:
    """The whole record of ``case`` as it stands at ``now``. The caller has checked access."""
    assert case.id is not None
    contacts = (await session.exec(select(Contact).where(Contact.case_id == case.id)
                                   .order_by(col(Contact.id)))).all()
    staff = dict((await session.exec(select(User.id, User.name).where(User.unit_id == case.unit_id))).all())
    names = _Names(contacts, {i: n for i, n in staff.items() if i is not None})
    shared = await shared_of_case(session, case.id)
    shared.reverse()  # oldest first, as a record reads
    plan = (await session.exec(select(Plan).where(Plan.case_id == case.id))).first()
    return CaseRecord(
        case=await _case(session, case, plan, names),
        contacts=_contacts(contacts, shared),
        consents=await _consents(session, case.id, names, now),
        plan_revisions=await _revisions(session, plan, names),
        meetings=await _meetings(session, case.id, names),
        disclosures=[_disclosure(s, names) for s in shared],
        suppressions=await _suppressions(session, case.id, names),
        produced_at=now,
        produced_by=produced_by,
    )


async def _case(session: AsyncSession, case: Case, plan: Plan | None, names: _Names) -> RecordCase:
    assert case.id is not None
    coordinators = (await session.exec(select(CaseCoordinator.user_id).where(CaseCoordinator.case_id == case.id)
                                       .order_by(col(CaseCoordinator.user_id)))).all()
    return RecordCase(
        id=case.id, reference=case.reference, initials=case.child_initials, measure_type=case.measure_type,
        order_date=case.order_date, status=case.status, opened_at=case.created_at, closed_at=case.closed_at,
        plan_start=plan.start_date if plan else None, plan_end=plan.expected_end if plan else None,
        coordinators=[names.user(u) for u in coordinators],
    )


def _contacts(contacts: Sequence[Contact], shared: Sequence[Shared]) -> list[RecordContact]:
    reached: dict[int, set[Channel]] = {}
    for s in shared:
        if s.contact_id is not None and s.level > Level.NONE:
            reached.setdefault(s.contact_id, set()).add(s.channel)
    return [
        RecordContact(id=c.id or 0, name=c.name, role=c.role, role_label=c.role_label, sector=c.sector,
                      organisation=c.organisation, daily_care=c.daily_care, active=c.active, email=c.email,
                      phone=c.phone, reached_by=sorted(reached.get(c.id or 0, set())))
        for c in contacts
    ]


async def _consents(session: AsyncSession, case_id: int, names: _Names, now: datetime) -> list[RecordConsent]:
    """Every act of consent as recorded, and the end of each grant that ran out with nothing after it."""
    records = (await session.exec(select(ConsentRecord).where(ConsentRecord.case_id == case_id)
                                  .order_by(col(ConsentRecord.recorded_at), col(ConsentRecord.id)))).all()
    events = []
    for r in records:
        event = RecordConsent(
            record_id=r.id or 0, event=ConsentEvent(r.status.value), at=r.recorded_at,
            grantor_contact_id=r.grantor_contact_id, grantor=names.labels.get(r.grantor_contact_id, "?"),
            sector=r.sector, level=r.level, valid_from=r.valid_from, valid_until=r.valid_until, form=r.form,
            recorded_by=names.user(r.recorded_by_user_id), recorded_at=r.recorded_at, note=r.note)
        events.append(event)
        until = r.valid_until
        if r.status is ConsentStatus.GRANTED and until is not None and until <= now and not any(
                o.grantor_contact_id == r.grantor_contact_id and o.sector == r.sector
                and r.recorded_at < o.recorded_at <= until for o in records):
            events.append(msgspec.structs.replace(event, event=ConsentEvent.EXPIRED, at=until))
    return sorted(events, key=lambda e: (e.at, e.record_id))


async def _revisions(session: AsyncSession, plan: Plan | None, names: _Names) -> list[RecordPlanRevision]:
    if plan is None:
        return []
    rows = (await session.exec(select(PlanRevision).where(PlanRevision.plan_id == plan.id)
                               .order_by(col(PlanRevision.revision)))).all()
    out = []
    for row in rows:
        snapshot = row.snapshot
        measures = snapshot.get("measures")
        out.append(RecordPlanRevision(
            revision=row.revision, recorded_by=names.user(row.recorded_by_user_id), recorded_at=row.recorded_at,
            start_date=str(snapshot.get("start_date", "")), expected_end=str(snapshot.get("expected_end", "")),
            goals=str(snapshot.get("goals", "")),
            measures=[str(m.get("what", "")) for m in measures if isinstance(m, dict)]
            if isinstance(measures, list) else []))
    return out


async def _meetings(session: AsyncSession, case_id: int, names: _Names) -> list[RecordMeeting]:
    meetings = (await session.exec(select(Meeting).where(Meeting.case_id == case_id)
                                   .order_by(col(Meeting.start), col(Meeting.id)))).all()
    people = await participants_of(session, [m.id for m in meetings if m.id is not None])
    return [
        RecordMeeting(
            id=m.id or 0, kind=m.kind, start=m.start, end=m.end, place=m.place or m.video_link, status=m.status,
            held=m.status is MeetingStatus.HELD, cancelled_at=m.cancelled_at,
            invitees=[RecordInvitee(
                contact_id=c.id or 0, name=names.labels.get(c.id or 0, c.name), answer=p.partstat,
                answered_at=p.answered_at, answered_via=p.answered_via or None)
                for p, c in people.get(m.id or 0, [])])
        for m in meetings
    ]


def _disclosure(shared: Shared, names: _Names) -> RecordDisclosure:
    contact = names.contacts.get(shared.contact_id or 0)
    return RecordDisclosure(
        at=shared.at, channel=shared.channel, message_kind=shared.message_kind, recipient=names.recipient(shared),
        recipient_contact_id=shared.contact_id, recipient_user_id=shared.user_id,
        sector=contact.sector if contact else (Sector.CHILD_WELFARE if shared.contact_id is None else None),
        meeting_ids=list(shared.meeting_ids), level=shared.level, consent_record_ids=list(shared.consent_record_ids))


async def _suppressions(session: AsyncSession, case_id: int, names: _Names) -> list[RecordSuppression]:
    rows = (await session.exec(select(OutboxMessage).where(
        OutboxMessage.case_id == case_id, OutboxMessage.status == OutboxStatus.SUPPRESSED)
        .order_by(col(OutboxMessage.updated_at), col(OutboxMessage.id)))).all()
    return [
        RecordSuppression(
            at=r.updated_at, outbox_id=r.id or 0, message_kind=r.kind,
            recipient=names.labels.get(r.recipient_contact_id or 0, "") if r.recipient_contact_id
            else names.user(r.recipient_user_id),
            recipient_contact_id=r.recipient_contact_id, meeting_id=r.meeting_id, code=r.suppressed_code or None,
            reasons=[describe(reason, NB, names.labels) for reason in reasons_of(r)])
        for r in rows
    ]
