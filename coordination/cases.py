"""Cases, the contact list and the consent register: plain service functions.

Every function runs inside the caller's transaction and writes its audit entry there,
so a change and its record land together or not at all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import and_, or_
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from calendars.workdays import local_midnight
from coordination import alerts, audit, outbox, versions
from coordination.access import case_for, require_role, visible_cases
from coordination.domain import (
    DEFAULT_SECTOR,
    MEASURES_END_AGE,
    PARTNER_SECTORS,
    PARTY_STATUS_AGE,
    ConsentForm,
    ConsentStatus,
    Language,
    MeasureType,
    Role,
    Sector,
    UserRole,
)
from coordination.errors import InputError, NotFound, not_found
from coordination.levels import Level
from coordination.models import Case, CaseCoordinator, ConsentRecord, Contact, User
from coordination.policy import (
    CaseFacts,
    ConsentFact,
    ContactFacts,
    SectorConsent,
    age_on,
    effective_consent,
    fifteenth_birthday,
    has_party_status,
)
from coordination.schemas import (
    CaseIn,
    CaseOut,
    CasePatch,
    ConsentIn,
    ConsentOut,
    ContactIn,
    ContactLoop,
    ContactOut,
    ContactPatch,
    GrantorOut,
    InformationLoopsOut,
    LevelAt,
    WeeklyWindow,
)
from coordination.texts import contact_label, describe, grantor_label

OSLO = ZoneInfo("Europe/Oslo")
#: Eleven digits in a row look like a Norwegian national identity number (fødselsnummer).
_IDENTITY_NUMBER = re.compile(r"\d{6}\s?\d{5}")


def oslo_today(now: datetime) -> date:
    return now.astimezone(OSLO).date()


# --- cases -----------------------------------------------------------------------------


async def coordinator_ids(session: AsyncSession, case_id: int) -> list[int]:
    rows = await session.exec(
        select(CaseCoordinator.user_id).where(CaseCoordinator.case_id == case_id)
    )
    return sorted(rows.all())


def case_out(case: Case, coordinators: list[int], now: datetime) -> CaseOut:
    assert case.id is not None
    facts = case_facts(case)
    return CaseOut(
        id=case.id,
        reference=case.reference,
        child_given_name=case.child_given_name,
        child_initials=case.child_initials,
        child_birth_date=case.child_birth_date,
        child_age=age_on(case.child_birth_date, oslo_today(now)),
        party_status=has_party_status(facts, now),
        language=Language(case.language),
        aimed_at_child=case.aimed_at_child,
        measure_type=MeasureType(case.measure_type),
        order_date=case.order_date,
        party_status_override=case.party_status_override,
        coordinator_ids=coordinators,
    )


def _check_case_rules(
    birth_date: date, measure_type: MeasureType, order_date: date | None, now: datetime
) -> None:
    today = oslo_today(now)
    if birth_date > today:
        raise InputError("child_birth_date", "the birth date cannot be in the future")
    if age_on(birth_date, today) >= MEASURES_END_AGE:
        raise InputError("child_birth_date", "child welfare measures end at 25; check the birth date")
    if measure_type is MeasureType.ORDERED and order_date is None:
        raise InputError("order_date", "an ordered measure needs the date of the order")
    if measure_type is MeasureType.VOLUNTARY and order_date is not None:
        raise InputError("order_date", "only an ordered measure has an order date")
    if order_date is not None and order_date > today:
        raise InputError("order_date", "the order date cannot be in the future")


async def _check_coordinators(session: AsyncSession, unit_id: int, ids: Sequence[int]) -> None:
    for user_id in ids:
        user = await session.get(User, user_id)
        if user is None or user.unit_id != unit_id or user.role != UserRole.COORDINATOR:
            raise InputError("coordinator_ids", f"user {user_id} is not a coordinator in this unit")


async def create_case(session: AsyncSession, user: User, data: CaseIn, now: datetime) -> CaseOut:
    require_role(user, UserRole.COORDINATOR, UserRole.LEADER)
    if _IDENTITY_NUMBER.search(data.reference):
        raise InputError("reference", "a case reference must not be a national identity number")
    _check_case_rules(data.child_birth_date, data.measure_type, data.order_date, now)
    assigned = list(dict.fromkeys(data.coordinator_ids))
    if user.role == UserRole.COORDINATOR and user.id not in assigned:
        assert user.id is not None
        assigned.insert(0, user.id)
    await _check_coordinators(session, user.unit_id, assigned)
    existing = await session.exec(
        select(Case.id).where(Case.unit_id == user.unit_id, Case.reference == data.reference)
    )
    if existing.first() is not None:
        raise InputError("reference", f"the unit already has a case with reference {data.reference}")
    case = Case(
        unit_id=user.unit_id,
        reference=data.reference,
        child_given_name=data.child_given_name,
        child_initials=data.child_initials,
        child_birth_date=data.child_birth_date,
        language=data.language.value,
        aimed_at_child=data.aimed_at_child,
        measure_type=data.measure_type.value,
        order_date=data.order_date,
        party_status_override=data.party_status_override,
        created_at=now,
        updated_at=now,
    )
    session.add(case)
    await session.flush()
    assert case.id is not None
    for user_id in assigned:
        session.add(CaseCoordinator(case_id=case.id, user_id=user_id))
    assert user.id is not None
    audit.record(session, unit_id=user.unit_id, case_id=case.id, actor=audit.actor_for_user(user.id),
                 action="case.created", subject=f"case:{case.id}", at=now,
                 detail={"coordinator_ids": assigned})
    return case_out(case, sorted(assigned), now)


async def list_cases(session: AsyncSession, user: User, now: datetime) -> list[CaseOut]:
    cases = (await session.exec(visible_cases(user).order_by(col(Case.reference)))).all()
    ids = [c.id for c in cases]
    assignments: dict[int, list[int]] = {}
    if ids:
        rows = await session.exec(
            select(CaseCoordinator).where(col(CaseCoordinator.case_id).in_(ids))
        )
        for row in rows.all():
            assignments.setdefault(row.case_id, []).append(row.user_id)
    return [case_out(c, sorted(assignments.get(c.id or 0, [])), now) for c in cases]


async def get_case(session: AsyncSession, user: User, case_id: int, now: datetime) -> CaseOut:
    case = await case_for(session, user, case_id)
    return case_out(case, await coordinator_ids(session, case_id), now)


async def update_case(
    session: AsyncSession, user: User, case_id: int, patch: CasePatch, now: datetime
) -> CaseOut:
    case = await case_for(session, user, case_id)
    changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
    before = await _partner_levels(session, case, now)
    for key, value in changes.items():
        setattr(case, key, value.value if isinstance(value, Language | MeasureType) else value)
    _check_case_rules(case.child_birth_date, MeasureType(case.measure_type), case.order_date, now)
    case.updated_at = now
    session.add(case)
    assert user.id is not None
    audit.record(session, unit_id=case.unit_id, case_id=case_id, actor=audit.actor_for_user(user.id),
                 action="case.updated", subject=f"case:{case_id}", at=now,
                 detail={"fields": sorted(changes)})
    await _follow_consent(session, case, before, "case_changed", f"case:{case_id}:{now.isoformat()}", now)
    await versions.bump(session, case.unit_id)
    return case_out(case, await coordinator_ids(session, case_id), now)


async def assign_coordinators(
    session: AsyncSession, user: User, case_id: int, ids: list[int], now: datetime
) -> CaseOut:
    """Leaders decide who coordinates a case. A case the user may not see is not found, whatever
    their role; Forbidden is only for what they may see (errors.Forbidden)."""
    case = await case_for(session, user, case_id)
    require_role(user, UserRole.LEADER)
    if not ids:
        raise InputError("coordinator_ids", "a case needs at least one coordinator")
    await _check_coordinators(session, case.unit_id, ids)
    await session.exec(delete(CaseCoordinator).where(col(CaseCoordinator.case_id) == case_id))
    for user_id in dict.fromkeys(ids):
        session.add(CaseCoordinator(case_id=case_id, user_id=user_id))
    assert user.id is not None
    audit.record(session, unit_id=case.unit_id, case_id=case_id, actor=audit.actor_for_user(user.id),
                 action="case.coordinators", subject=f"case:{case_id}", at=now,
                 detail={"coordinator_ids": sorted(set(ids))})
    await versions.bump(session, case.unit_id)
    return case_out(case, sorted(set(ids)), now)


# --- contacts --------------------------------------------------------------------------


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _check_availability(windows: Sequence[WeeklyWindow]) -> list[dict[str, object]]:
    for index, window in enumerate(windows):
        if _minutes(window.start) >= _minutes(window.end):
            raise InputError(f"availability[{index}]", "a window must start before it ends")
    return [msgspec.structs.asdict(w) for w in windows]


def _check_contact(role: Role, sector: Sector, daily_care: bool, email: str, phone: str) -> None:
    if daily_care and sector is not Sector.FAMILY:
        raise InputError("daily_care", "only a family contact can have daily care")
    if daily_care and role in (Role.CHILD, Role.TRUSTED_PERSON):
        raise InputError("daily_care", f"a contact with role {role.value} cannot have daily care")
    if role is Role.CHILD and sector is not Sector.FAMILY:
        raise InputError("sector", "the child belongs to the family sector")
    if role in (Role.PARENT, Role.TRUSTED_PERSON) and sector is not Sector.FAMILY:
        raise InputError("sector", f"a {role.value} belongs to the family sector")
    if role is not Role.OTHER and DEFAULT_SECTOR[role].needs_consent and not sector.needs_consent:
        # DESIGN.md rule 11: in the family or the service they would learn all without consent.
        raise InputError(
            "sector",
            f"a {role.value} belongs to an outside sector ({DEFAULT_SECTOR[role].value}) and cannot be "
            f"placed in the {sector.value} sector: that would bypass consent",
        )


def contact_out(contact: Contact) -> ContactOut:
    assert contact.id is not None
    return ContactOut(
        id=contact.id,
        case_id=contact.case_id,
        name=contact.name,
        role=Role(contact.role),
        role_label=contact.role_label,
        sector=Sector(contact.sector),
        organisation=contact.organisation,
        email=contact.email,
        phone=contact.phone,
        language=Language(contact.language),
        daily_care=contact.daily_care,
        needs_interpreter=contact.needs_interpreter,
        interpreter_language=contact.interpreter_language,
        availability=msgspec.convert(contact.availability, list[WeeklyWindow]),
        active=contact.active,
    )


async def _contacts(session: AsyncSession, case_id: int) -> list[Contact]:
    rows = await session.exec(
        select(Contact).where(Contact.case_id == case_id).order_by(col(Contact.id))
    )
    return list(rows.all())


async def _single_child(session: AsyncSession, case_id: int, except_id: int | None = None) -> None:
    for other in await _contacts(session, case_id):
        if other.role == Role.CHILD and other.active and other.id != except_id:
            raise InputError("role", "the case already has a contact with the role child")


async def add_contact(
    session: AsyncSession, user: User, case_id: int, data: ContactIn, now: datetime
) -> ContactOut:
    case = await case_for(session, user, case_id)
    before = await _partner_levels(session, case, now)
    sector = data.sector or DEFAULT_SECTOR[data.role]
    _check_contact(data.role, sector, data.daily_care, data.email, data.phone)
    if data.role is Role.CHILD:
        await _single_child(session, case_id)
    if data.needs_interpreter and not data.interpreter_language:
        raise InputError("interpreter_language", "say which language the interpreter is for")
    contact = Contact(
        case_id=case_id,
        name=data.name,
        role=data.role.value,
        role_label=data.role_label,
        sector=sector.value,
        organisation=data.organisation,
        email=data.email,
        phone=data.phone,
        language=data.language.value,
        daily_care=data.daily_care,
        needs_interpreter=data.needs_interpreter,
        interpreter_language=data.interpreter_language,
        availability=_check_availability(data.availability),
        created_at=now,
        updated_at=now,
    )
    session.add(contact)
    await session.flush()
    assert user.id is not None and contact.id is not None
    audit.record(session, unit_id=case.unit_id, case_id=case_id, actor=audit.actor_for_user(user.id),
                 action="contact.added", subject=f"contact:{contact.id}", at=now,
                 detail={"role": data.role.value, "sector": sector.value,
                         "daily_care": data.daily_care})
    await _follow_consent(session, case, before, "contact_changed", f"contact:{contact.id}:{now.isoformat()}", now)
    await versions.bump(session, case.unit_id)
    return contact_out(contact)


async def list_contacts(session: AsyncSession, user: User, case_id: int) -> list[ContactOut]:
    await case_for(session, user, case_id)
    return [contact_out(c) for c in await _contacts(session, case_id)]


async def contact_of_case(session: AsyncSession, case_id: int, contact_id: int) -> Contact:
    contact = await session.get(Contact, contact_id)
    if contact is None or contact.case_id != case_id:
        raise not_found("contact", contact_id)
    return contact


async def update_contact(
    session: AsyncSession, user: User, case_id: int, contact_id: int, patch: ContactPatch,
    now: datetime,
) -> ContactOut:
    case = await case_for(session, user, case_id)
    contact = await contact_of_case(session, case_id, contact_id)
    changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
    levels = await _partner_levels(session, case, now)
    before = {"role": contact.role, "daily_care": contact.daily_care, "sector": contact.sector,
              "active": contact.active}
    for key, value in changes.items():
        if key == "availability":
            contact.availability = _check_availability(value)
        else:
            setattr(contact, key, value.value if isinstance(value, Role | Sector | Language) else value)
    if "role" in changes and "sector" not in changes:
        contact.sector = DEFAULT_SECTOR[Role(contact.role)].value
    _check_contact(Role(contact.role), Sector(contact.sector), contact.daily_care, contact.email,
                   contact.phone)
    if contact.role == Role.CHILD and contact.active:
        await _single_child(session, case_id, except_id=contact_id)
    if contact.needs_interpreter and not contact.interpreter_language:
        raise InputError("interpreter_language", "say which language the interpreter is for")
    contact.updated_at = now
    session.add(contact)
    assert user.id is not None
    # Every sector change is audited with its old and new value, also when a role change moved it.
    after = {"role": contact.role, "daily_care": contact.daily_care, "sector": contact.sector,
             "active": contact.active}
    audit.record(session, unit_id=case.unit_id, case_id=case_id, actor=audit.actor_for_user(user.id),
                 action="contact.updated", subject=f"contact:{contact_id}", at=now,
                 detail={"fields": sorted(changes),
                         "changed": {k: [before[k], after[k]] for k in before if before[k] != after[k]}})
    await _follow_consent(session, case, levels, "contact_changed", f"contact:{contact_id}:{now.isoformat()}", now)
    await versions.bump(session, case.unit_id)
    return contact_out(contact)


# --- consent ---------------------------------------------------------------------------


def consent_out(record: ConsentRecord) -> ConsentOut:
    assert record.id is not None
    return ConsentOut(
        id=record.id,
        case_id=record.case_id,
        grantor_contact_id=record.grantor_contact_id,
        sector=Sector(record.sector),
        status=ConsentStatus(record.status),
        level=Level(record.level),
        valid_from=record.valid_from,
        valid_until=record.valid_until,
        form=ConsentForm(record.form),
        recorded_by_user_id=record.recorded_by_user_id,
        recorded_at=record.recorded_at,
        note=record.note,
    )


async def _has_consented(session: AsyncSession, contact_id: int) -> bool:
    found = await session.exec(
        select(ConsentRecord.id).where(ConsentRecord.grantor_contact_id == contact_id).limit(1)
    )
    return found.first() is not None


async def record_consent(
    session: AsyncSession, user: User, case_id: int, data: ConsentIn, now: datetime
) -> ConsentOut:
    """Append one consent act; nothing is ever edited in place."""
    case = await case_for(session, user, case_id)
    if not data.sector.needs_consent:
        raise InputError("sector", f"the {data.sector.value} sector needs no consent")
    grantor = await session.get(Contact, data.grantor_contact_id)
    if grantor is None or grantor.case_id != case_id:
        raise InputError("grantor_contact_id", "the grantor is not a contact in this case")
    # An inactive row is still the person's (DESIGN.md rule 2): a carer or the child keeps
    # consenting, refusing and withdrawing through it. A former carer may still take back
    # what they once gave, so that it cannot come back into force with their daily care.
    if not grantor.daily_care and grantor.role != Role.CHILD and not (
        data.status is not ConsentStatus.GRANTED and await _has_consented(session, grantor.id or 0)
    ):
        raise InputError(
            "grantor_contact_id", "only a contact with daily care, or the child, can give consent"
        )
    for name, value in (("valid_from", data.valid_from), ("valid_until", data.valid_until)):
        if value is not None and value.tzinfo is None:
            raise InputError(name, "give a time zone offset, e.g. 2027-01-04T09:00:00+01:00")
    valid_from = data.valid_from or now
    level: Level
    if data.status is ConsentStatus.GRANTED:
        if data.level is None or data.level is Level.NONE:
            raise InputError("level", "a grant must name a level: logistics, purpose or content")
        level = data.level
    else:
        if data.level not in (None, Level.NONE):
            raise InputError("level", f"a {data.status.value} consent carries no level")
        if data.valid_until is not None:
            raise InputError("valid_until", f"a {data.status.value} consent has no end date")
        level = Level.NONE
    if data.valid_until is not None and data.valid_until <= valid_from:
        raise InputError("valid_until", "valid_until must be after valid_from")
    assert user.id is not None
    record = ConsentRecord(
        case_id=case_id,
        grantor_contact_id=grantor.id or 0,
        sector=data.sector.value,
        status=data.status.value,
        level=level.value,
        valid_from=valid_from,
        valid_until=data.valid_until,
        form=data.form.value,
        recorded_by_user_id=user.id,
        recorded_at=now,
        note=data.note,
    )
    session.add(record)
    await session.flush()
    audit.record(session, unit_id=case.unit_id, case_id=case_id, actor=audit.actor_for_user(user.id),
                 action=f"consent.{data.status.value}", subject=f"consent:{record.id}", at=now,
                 detail={"grantor": grantor.id, "sector": data.sector.value, "level": level.value})
    assert record.id is not None
    facts = await load_policy_facts(session, case)
    if data.status is ConsentStatus.GRANTED and facts.sector(data.sector, now).level > Level.NONE:
        await outbox.requeue_after_consent(session, case, data.sector.value, str(record.id), now)
    elif data.status is not ConsentStatus.GRANTED:
        await alerts.consent_lapsed(session, case, data.sector.value, f"consent:{record.id}:withdrawn", now,
                                    cause=data.status.value, consent=record.id)
    await versions.bump(session, case.unit_id)
    return consent_out(record)


async def list_consents(session: AsyncSession, user: User, case_id: int) -> list[ConsentOut]:
    await case_for(session, user, case_id)
    rows = await session.exec(
        select(ConsentRecord).where(ConsentRecord.case_id == case_id)
        .order_by(col(ConsentRecord.recorded_at), col(ConsentRecord.id))
    )
    return [consent_out(r) for r in rows.all()]


# --- the policy's facts and the information loops --------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyFacts:
    """Everything the policy needs about one case, loaded in one go."""

    case: CaseFacts
    contacts: tuple[ContactFacts, ...]
    records: tuple[ConsentFact, ...]

    def contact(self, contact_id: int) -> ContactFacts:
        for contact in self.contacts:
            if contact.id == contact_id:
                return contact
        raise NotFound(f"contact {contact_id} not found in this case")

    def sector(self, sector: Sector, at: datetime) -> SectorConsent:
        return effective_consent(self.case, self.contacts, self.records, sector, at)


def case_facts(case: Case) -> CaseFacts:
    return CaseFacts(case.child_birth_date, case.aimed_at_child, case.party_status_override)


def contact_facts(contact: Contact) -> ContactFacts:
    assert contact.id is not None
    return ContactFacts(contact.id, Role(contact.role), Sector(contact.sector), contact.daily_care,
                        contact.active)


def consent_fact(record: ConsentRecord) -> ConsentFact:
    assert record.id is not None
    return ConsentFact(
        id=record.id,
        grantor_id=record.grantor_contact_id,
        sector=Sector(record.sector),
        status=ConsentStatus(record.status),
        level=Level(record.level),
        valid_from=record.valid_from,
        valid_until=record.valid_until,
        recorded_at=record.recorded_at,
    )


async def load_policy_facts(session: AsyncSession, case: Case) -> PolicyFacts:
    assert case.id is not None
    contacts = await _contacts(session, case.id)
    records = await session.exec(select(ConsentRecord).where(ConsentRecord.case_id == case.id))
    return PolicyFacts(
        case=case_facts(case),
        contacts=tuple(contact_facts(c) for c in contacts),
        records=tuple(consent_fact(r) for r in records.all()),
    )


def _level_at(
    consent: SectorConsent, language: Language, names: dict[int, str]
) -> LevelAt:
    return LevelAt(
        at=consent.at,
        level=consent.level,
        sector_state=consent.state.value,
        grantors=[
            GrantorOut(
                contact_id=g.contact_id,
                name=grantor_label(g.contact_id, language, names),
                as_child=g.as_child,
                status=g.state.value,
                level=g.level,
                consent_record_id=g.record_id,
                valid_until=g.valid_until,
            )
            for g in consent.grantors
        ],
        reasons=[describe(r, language, names) for r in consent.reasons],
    )


async def information_loops(
    session: AsyncSession, user: User, case_id: int, now: datetime, at: datetime | None,
    language: Language,
) -> InformationLoopsOut:
    """The coordinator's check before any meeting: what each contact may learn, and why."""
    case = await case_for(session, user, case_id)
    contacts = await _contacts(session, case_id)
    facts = await load_policy_facts(session, case)
    names = {
        c.id: contact_label(c.name, Role(c.role), c.role_label, language)
        for c in contacts if c.id is not None
    }
    per_sector_now: dict[Sector, LevelAt] = {}
    per_sector_at: dict[Sector, LevelAt] = {}
    loops: list[ContactLoop] = []
    for contact in contacts:
        if not contact.active:
            continue
        sector = Sector(contact.sector)
        if sector not in per_sector_now:
            per_sector_now[sector] = _level_at(facts.sector(sector, now), language, names)
            if at is not None:
                per_sector_at[sector] = _level_at(facts.sector(sector, at), language, names)
        assert contact.id is not None
        loops.append(
            ContactLoop(
                contact_id=contact.id,
                name=contact.name,
                role=Role(contact.role),
                sector=sector,
                needs_consent=sector.needs_consent,
                now=per_sector_now[sector],
                at=per_sector_at.get(sector),
            )
        )
    assert user.id is not None
    audit.record(session, unit_id=case.unit_id, case_id=case_id, actor=audit.actor_for_user(user.id),
                 action="information_loops.read", subject=f"case:{case_id}", at=now)
    return InformationLoopsOut(case_id=case_id, language=language, contacts=loops)


# --- consent that ends or comes into force without a consent act -----------------------

#: How long after it happened the periodic round still looks for a change that time alone made
#: to consent: longer than any pause between rounds (a later round finds nothing new to do).
TIME_LOOKBACK = timedelta(days=3)


async def _partner_levels(session: AsyncSession, case: Case, at: datetime) -> dict[Sector, Level]:
    facts = await load_policy_facts(session, case)
    return {sector: facts.sector(sector, at).level for sector in PARTNER_SECTORS}


async def _follow_consent(session: AsyncSession, case: Case, before: dict[Sector, Level], cause: str, key: str,
                          now: datetime) -> None:
    """After a change to the contact list or the case (``key`` names it): a sector whose consent
    it ended is alerted with the partners who hold invitations (rule 7) — a new carer without a
    grant, the child's party status —; one whose consent it brought into force gets the
    invitations held back for want of it."""
    after = await _partner_levels(session, case, now)
    for sector, level in after.items():
        if before[sector] > Level.NONE and level is Level.NONE:
            await alerts.consent_lapsed(session, case, sector.value, f"{key}:{sector.value}:lapsed", now, cause=cause)
        elif before[sector] is Level.NONE and level > Level.NONE:
            await outbox.requeue_after_consent(session, case, sector.value, key, now)


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return date(day.year - years, 2, 28)


async def consent_over_time(session: AsyncSession, now: datetime) -> int:
    """What time alone changes in consent, for the periodic round (``coordination.background``).

    A grant dated ahead comes into force: the invitations held back for want of it go out. A
    grant expires, or the child turns 15 and has party status without having consented: the
    coordinator is told which partners still hold invitations (rule 7). Each change is looked
    for during ``TIME_LOOKBACK`` after it happened; the alert and invitation keys name their
    cause, so that later rounds, or another instance, add nothing. Returns the alerts raised.
    """
    since = now - TIME_LOOKBACK
    # The moment of each change per case, with the grant that changed (None: the 15th birthday).
    changes: dict[int, list[tuple[datetime, ConsentRecord | None]]] = {}
    grants = await session.exec(select(ConsentRecord).where(
        ConsentRecord.status == ConsentStatus.GRANTED.value,
        or_(and_(col(ConsentRecord.valid_from) > since, col(ConsentRecord.valid_from) <= now,
                 col(ConsentRecord.valid_from) > col(ConsentRecord.recorded_at)),
            and_(col(ConsentRecord.valid_until) > since, col(ConsentRecord.valid_until) <= now))))
    for record in grants.all():
        ended = record.valid_until if record.valid_until is not None and record.valid_until <= now else None
        changes.setdefault(record.case_id, []).append((ended or record.valid_from, record))
    born = await session.exec(select(Case).where(
        col(Case.closed_at).is_(None), Case.aimed_at_child == True,  # noqa: E712
        col(Case.party_status_override).is_(None),
        col(Case.child_birth_date) >= _years_before(oslo_today(since), PARTY_STATUS_AGE) - timedelta(days=1),
        col(Case.child_birth_date) <= _years_before(oslo_today(now), PARTY_STATUS_AGE)))
    for child in born.all():
        birthday = local_midnight(fifteenth_birthday(child.child_birth_date))
        if since < birthday <= now and child.id is not None:
            changes.setdefault(child.id, []).append((birthday, None))
    raised = 0
    for case_id, moments in sorted(changes.items()):
        case = await session.get(Case, case_id)
        if case is None or case.closed_at is not None:
            continue
        facts = await load_policy_facts(session, case)
        for moment, grant in moments:
            if grant is not None and grant.valid_from == moment:  # a grant dated ahead, now in force
                consent = facts.sector(Sector(grant.sector), now)
                if consent.level > Level.NONE:
                    await outbox.requeue_after_consent(session, case, grant.sector, str(max(consent.record_ids)),
                                                       now)
            else:
                raised += await _lapsed_at(session, case, facts, moment, grant, now)
    return raised


async def _lapsed_at(session: AsyncSession, case: Case, facts: PolicyFacts, moment: datetime,
                     expired: ConsentRecord | None, now: datetime) -> int:
    """Alerts for the sectors whose consent ended at ``moment`` (when ``expired`` ran out, or at the
    15th birthday) and has not come back since."""
    raised = 0
    for sector in [Sector(expired.sector)] if expired is not None else PARTNER_SECTORS:
        was = facts.sector(sector, moment - timedelta(microseconds=1))
        if was.level is Level.NONE or facts.sector(sector, now).level > Level.NONE:
            continue
        if expired is None:
            key, cause = f"case:{case.id}:party-status:{sector.value}", "party_status"
        elif expired.id in was.record_ids:
            key, cause = f"consent:{expired.id}:expired", "expired"
        else:
            continue  # a later act had replaced the grant before it ran out
        raised += await alerts.consent_lapsed(session, case, sector.value, key, now, cause=cause,
                                              consent=expired.id if expired is not None else None)
    return raised
