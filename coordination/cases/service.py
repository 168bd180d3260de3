"""Cases: opening, reading and changing a case, and who coordinates it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime

import msgspec
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from calendars.zone import local_date
from coordination.access.rules import case_for, require_role, visible_cases
from coordination.changes import Change
from coordination.consent.facts import case_facts
from coordination.consent.loops import partner_levels
from coordination.consent.over_time import follow_consent
from coordination.consent.policy import (
    age_on,
    has_party_status,
)
from coordination.domain import (
    MEASURES_END_AGE,
    AuditAction,
    MeasureType,
    UserRole,
)
from coordination.errors import InputError
from coordination.models import Case, CaseCoordinator, User
from coordination.schemas import (
    CaseIn,
    CaseOut,
    CasePatch,
)

#: Eleven digits in a row look like a Norwegian national identity number (fødselsnummer).
_IDENTITY_NUMBER = re.compile(r"\d{6}\s?\d{5}")


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
        child_age=age_on(case.child_birth_date, local_date(now)),
        party_status=has_party_status(facts, now),
        language=case.language,
        aimed_at_child=case.aimed_at_child,
        measure_type=case.measure_type,
        order_date=case.order_date,
        party_status_override=case.party_status_override,
        coordinator_ids=coordinators,
    )


def _check_case_rules(
    birth_date: date, measure_type: MeasureType, order_date: date | None, now: datetime
) -> None:
    today = local_date(now)
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
        language=data.language,
        aimed_at_child=data.aimed_at_child,
        measure_type=data.measure_type,
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
    change = Change.in_case(session, case, user, now)
    change.record(AuditAction.CASE_CREATED, f"case:{case.id}", {"coordinator_ids": assigned}, feeds=False)
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
    before = await partner_levels(session, case, now)
    for key, value in changes.items():
        setattr(case, key, value)
    _check_case_rules(case.child_birth_date, case.measure_type, case.order_date, now)
    case.updated_at = now
    session.add(case)
    change = Change.in_case(session, case, user, now)
    change.record(AuditAction.CASE_UPDATED, f"case:{case_id}", {"fields": sorted(changes)}, feeds=True)
    await follow_consent(session, case, before, "case_changed", f"case:{case_id}:{now.isoformat()}", now)
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
    change = Change.in_case(session, case, user, now)
    change.record(AuditAction.CASE_COORDINATORS, f"case:{case_id}", {"coordinator_ids": sorted(set(ids))}, feeds=True)
    return case_out(case, sorted(set(ids)), now)
