"""My cases, the heading every case page shares, and a case's overview (contacts and loops)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination.access.rules import visible_cases
from coordination.cases import contacts as contact_service
from coordination.cases import service as case_service
from coordination.consent import facts as policy_facts
from coordination.consent import loops as consent_loops
from coordination.consent.facts import contact_facts
from coordination.consent.policy import CaseFacts, ConsentFact, ContactFacts, effective_consent
from coordination.domain import PARTNER_SECTORS, MeasureType, Role
from coordination.levels import Level
from coordination.models import Alert, Case, ConsentRecord, Contact, Meeting, User
from coordination.schemas import CaseOut, ContactOut
from coordination.web import texts as t
from coordination.web.views.alerts import AlertRow, alert_rows
from coordination.web.views.common import FEED_CAP, NB, OPEN, Badge, badge


@dataclass(frozen=True, slots=True)
class CaseRow:
    id: int
    reference: str
    initials: str
    next_meeting: str
    open_alerts: int
    sectors: list[Badge | None]


def sector_headings() -> list[str]:
    return [t.sector_name(s) for s in PARTNER_SECTORS]


async def my_cases(session: AsyncSession, user: User, now: datetime) -> list[CaseRow]:
    """One row per case the user may open, in a fixed number of queries however many cases."""
    listed = await case_service.list_cases(session, user, now)
    if not listed:
        return []
    ids = visible_cases(user).with_only_columns(col(Case.id))
    contacts: dict[int, list[ContactFacts]] = {}
    for contact in (await session.exec(select(Contact).where(col(Contact.case_id).in_(ids)))).all():
        contacts.setdefault(contact.case_id, []).append(contact_facts(contact))
    records: dict[int, list[ConsentFact]] = {}
    for record in (await session.exec(select(ConsentRecord).where(col(ConsentRecord.case_id).in_(ids)))).all():
        records.setdefault(record.case_id, []).append(policy_facts.consent_fact(record))
    upcoming = await session.exec(
        select(Meeting.case_id, func.min(Meeting.start))
        .where(col(Meeting.case_id).in_(ids), col(Meeting.status).in_(OPEN), col(Meeting.start) > now)
        .group_by(col(Meeting.case_id))
    )
    next_start: dict[int, datetime] = {case_id: start for case_id, start in upcoming.all()}
    open_alerts = await session.exec(
        select(Alert.case_id, func.count())
        .where(col(Alert.case_id).in_(ids), col(Alert.resolved_at).is_(None))
        .group_by(col(Alert.case_id))
    )
    alert_count: dict[int, int] = {case_id: count for case_id, count in open_alerts.all() if case_id is not None}
    rows = []
    for case in listed:
        facts = CaseFacts(case.child_birth_date, case.aimed_at_child, case.party_status_override)
        people = contacts.get(case.id, [])
        given = records.get(case.id, [])
        sectors: list[Badge | None] = []
        for sector in PARTNER_SECTORS:
            if not any(c.sector is sector and c.active for c in people):
                sectors.append(None)
                continue
            sectors.append(badge(effective_consent(facts, people, given, sector, now).state.value))
        start = next_start.get(case.id)
        rows.append(CaseRow(case.id, case.reference, case.child_initials, t.when(start) if start else "",
                            alert_count.get(case.id, 0), sectors))
    return rows


# --- one case: the heading every case page shares --------------------------------------


@dataclass(frozen=True, slots=True)
class CaseHead:
    id: int
    reference: str
    initials: str
    age: int
    party_status: bool
    measure: str
    coordinators: str


async def case_head(session: AsyncSession, user: User, case_id: int, now: datetime) -> CaseHead:
    """The case as the API shows it (404 if this user may not open it)."""
    case: CaseOut = await case_service.get_case(session, user, case_id, now)
    names = []
    if case.coordinator_ids:
        found = await session.exec(select(User.name).where(col(User.id).in_(case.coordinator_ids),
                                                           User.unit_id == user.unit_id))
        names = sorted(found.all())
    measure = "Pålagt tiltak" if case.measure_type is MeasureType.ORDERED else "Frivillig hjelpetiltak"
    return CaseHead(case.id, case.reference, case.child_initials, case.child_age, case.party_status, measure,
                    ", ".join(names))


# --- overview: contacts and the information loops --------------------------------------


@dataclass(frozen=True, slots=True)
class ContactRow:
    id: int
    name: str
    role: str
    sector: str
    organisation: str
    email: str
    phone: str
    consent: Badge | None
    availability: str
    interpreter: str
    daily_care: bool
    active: bool


@dataclass(frozen=True, slots=True)
class LoopRow:
    contact_id: int
    name: str
    role: str
    sector: str
    level: str
    invitations: str
    reminders: str
    feed: str
    reasons: list[str]
    tone: str


@dataclass(frozen=True, slots=True)
class Overview:
    contacts: list[ContactRow]
    loops: list[LoopRow]
    alerts: list[AlertRow]


def _mail_level(level: Level, contact: ContactOut, cap: Level) -> str:
    if level <= Level.NONE:
        return "Ingenting"
    if not contact.email:
        return "Ingenting (ingen e-postadresse)"
    return t.level_name(min(level, cap))


async def overview(session: AsyncSession, user: User, case_id: int, now: datetime, cap: Level) -> Overview:
    contacts = await contact_service.list_contacts(session, user, case_id)
    loops = await consent_loops.information_loops(session, user, case_id, now, None, NB)
    by_id = {c.id: c for c in contacts}
    state_of = {loop.sector: loop.now.sector_state for loop in loops.contacts}
    rows = [
        ContactRow(
            id=c.id, name=c.name, role=t.role_name(c.role, c.role_label), sector=t.sector_name(c.sector),
            organisation=c.organisation, email=c.email, phone=c.phone,
            consent=badge(state_of[c.sector]) if c.sector.needs_consent and c.sector in state_of else None,
            availability=t.availability(c.availability),
            interpreter=f"Ja, {c.interpreter_language}" if c.needs_interpreter else "",
            daily_care=c.daily_care, active=c.active,
        )
        for c in contacts
    ]
    loop_rows = []
    for loop in loops.contacts:
        contact = by_id[loop.contact_id]
        level = loop.now.level
        reasons = list(loop.now.reasons)
        if level > Level.NONE and min(level, cap) < level and contact.email:
            reasons.append(f"e-post viser høyst «{t.LEVEL_NAMES_NB[cap]}» (innstillingen for e-post)")
        if level > FEED_CAP:
            reasons.append(f"en egen kalender viser høyst «{t.LEVEL_NAMES_NB[FEED_CAP]}»")
        if loop.role is Role.PARENT:
            reasons.append("barnesamtaler: foreldrene får ikke vite om dem, med mindre du bestemmer det for "
                           "det enkelte møtet")
        loop_rows.append(LoopRow(
            contact_id=loop.contact_id, name=loop.name, role=t.role_name(contact.role, contact.role_label),
            sector=t.sector_name(loop.sector), level=t.level_name(level),
            invitations=_mail_level(level, contact, cap), reminders=_mail_level(level, contact, cap),
            feed="Ingenting" if level <= Level.NONE else t.level_name(min(level, FEED_CAP)),
            reasons=reasons, tone="bad" if level <= Level.NONE else ("ok" if loop.needs_consent else "neutral"),
        ))
    return Overview(rows, loop_rows, await alert_rows(session, user, case_id, False))
