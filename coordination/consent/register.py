"""The consent register: recording grants, refusals and withdrawals (rule 2)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination.access.rules import case_for
from coordination.changes import Change
from coordination.consent.facts import load_policy_facts
from coordination.domain import (
    AuditAction,
    ConsentStatus,
    Role,
)
from coordination.errors import InputError
from coordination.levels import Level
from coordination.models import ConsentRecord, Contact, User
from coordination.outbox import alerts
from coordination.outbox import queue as outbox
from coordination.schemas import (
    ConsentIn,
    ConsentOut,
)

# --- consent ---------------------------------------------------------------------------


def consent_out(record: ConsentRecord) -> ConsentOut:
    assert record.id is not None
    return ConsentOut(
        id=record.id,
        case_id=record.case_id,
        grantor_contact_id=record.grantor_contact_id,
        sector=record.sector,
        status=record.status,
        level=record.level,
        valid_from=record.valid_from,
        valid_until=record.valid_until,
        form=record.form,
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
        sector=data.sector,
        status=data.status,
        level=level,
        valid_from=valid_from,
        valid_until=data.valid_until,
        form=data.form,
        recorded_by_user_id=user.id,
        recorded_at=now,
        note=data.note,
    )
    session.add(record)
    await session.flush()
    change = Change.in_case(session, case, user, now)
    change.record(AuditAction(f"consent.{data.status.value}"), f"consent:{record.id}",
                  {"grantor": grantor.id, "sector": data.sector.value, "level": level.value}, feeds=True)
    assert record.id is not None
    facts = await load_policy_facts(session, case)
    if data.status is ConsentStatus.GRANTED and facts.sector(data.sector, now).level > Level.NONE:
        await outbox.requeue_after_consent(session, case, data.sector, str(record.id), now)
    elif data.status is not ConsentStatus.GRANTED:
        await alerts.consent_lapsed(session, case, data.sector, f"consent:{record.id}:withdrawn", now,
                                    cause=data.status.value, consent=record.id)
    return consent_out(record)


async def list_consents(session: AsyncSession, user: User, case_id: int) -> list[ConsentOut]:
    await case_for(session, user, case_id)
    rows = await session.exec(
        select(ConsentRecord).where(ConsentRecord.case_id == case_id)
        .order_by(col(ConsentRecord.recorded_at), col(ConsentRecord.id))
    )
    return [consent_out(r) for r in rows.all()]
