"""The contact list: the people around the child, checked as the API promises."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec
import phonenumbers
from phonenumbers import PhoneNumberType
from sqlmodel.ext.asyncio.session import AsyncSession

from calendars.zone import clock_minutes
from coordination.access.rules import case_for
from coordination.changes import Change
from coordination.consent.facts import contacts_in_case
from coordination.consent.loops import partner_levels
from coordination.consent.over_time import follow_consent
from coordination.domain import (
    DEFAULT_SECTOR,
    AuditAction,
    NotifyBy,
    Role,
    Sector,
)
from coordination.errors import InputError, not_found
from coordination.models import Contact, User
from coordination.schemas import (
    ContactIn,
    ContactOut,
    ContactPatch,
    WeeklyWindow,
)

# --- contacts --------------------------------------------------------------------------


def _check_availability(windows: Sequence[WeeklyWindow]) -> list[dict[str, object]]:
    for index, window in enumerate(windows):
        if clock_minutes(window.start) >= clock_minutes(window.end):
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


def mobile_of(phone: str) -> str:
    """The number in E.164 when it is a mobile number, "" when it is a landline or empty; a
    number that is no number at all is refused, naming the field (region NO when no +code)."""
    if not phone.strip():
        return ""
    try:
        parsed = phonenumbers.parse(phone, "NO")
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise InputError("phone", "not a valid phone number (for example +47 400 00 000, or 8 digits in Norway)")
    if phonenumbers.number_type(parsed) not in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE):
        return ""
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def notify_by_for(wanted: NotifyBy | None, sector: Sector, mobile: str) -> NotifyBy:
    """As asked; by default both for a family member with a mobile number, else e-mail."""
    if wanted is None:
        return NotifyBy.BOTH if sector is Sector.FAMILY and mobile else NotifyBy.EMAIL
    if wanted is not NotifyBy.EMAIL and not mobile:
        raise InputError("notify_by", "SMS needs a mobile number in phone")
    return wanted


def contact_out(contact: Contact) -> ContactOut:
    assert contact.id is not None
    return ContactOut(
        id=contact.id,
        case_id=contact.case_id,
        name=contact.name,
        role=contact.role,
        role_label=contact.role_label,
        sector=contact.sector,
        organisation=contact.organisation,
        email=contact.email,
        phone=contact.phone,
        mobile=contact.mobile,
        notify_by=contact.notify_by,
        language=contact.language,
        daily_care=contact.daily_care,
        needs_interpreter=contact.needs_interpreter,
        interpreter_language=contact.interpreter_language,
        availability=msgspec.convert(contact.availability, list[WeeklyWindow]),
        active=contact.active,
    )


async def _single_child(session: AsyncSession, case_id: int, except_id: int | None = None) -> None:
    for other in await contacts_in_case(session, case_id):
        if other.role == Role.CHILD and other.active and other.id != except_id:
            raise InputError("role", "the case already has a contact with the role child")


async def add_contact(
    session: AsyncSession, user: User, case_id: int, data: ContactIn, now: datetime
) -> ContactOut:
    case = await case_for(session, user, case_id)
    before = await partner_levels(session, case, now)
    sector = data.sector or DEFAULT_SECTOR[data.role]
    _check_contact(data.role, sector, data.daily_care, data.email, data.phone)
    if data.role is Role.CHILD:
        await _single_child(session, case_id)
    if data.needs_interpreter and not data.interpreter_language:
        raise InputError("interpreter_language", "say which language the interpreter is for")
    mobile = mobile_of(data.phone)
    contact = Contact(
        case_id=case_id,
        name=data.name,
        role=data.role,
        role_label=data.role_label,
        sector=sector,
        organisation=data.organisation,
        email=data.email,
        phone=data.phone,
        mobile=mobile,
        notify_by=notify_by_for(data.notify_by, sector, mobile),
        language=data.language,
        daily_care=data.daily_care,
        needs_interpreter=data.needs_interpreter,
        interpreter_language=data.interpreter_language,
        availability=_check_availability(data.availability),
        created_at=now,
        updated_at=now,
    )
    session.add(contact)
    await session.flush()
    change = Change.in_case(session, case, user, now)
    change.record(AuditAction.CONTACT_ADDED, f"contact:{contact.id}",
                  {"role": data.role.value, "sector": sector.value, "daily_care": data.daily_care}, feeds=True)
    await follow_consent(session, case, before, "contact_changed", f"contact:{contact.id}:{now.isoformat()}", now)
    return contact_out(contact)


async def list_contacts(session: AsyncSession, user: User, case_id: int) -> list[ContactOut]:
    await case_for(session, user, case_id)
    return [contact_out(c) for c in await contacts_in_case(session, case_id)]


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
    levels = await partner_levels(session, case, now)
    before = {"role": contact.role, "daily_care": contact.daily_care, "sector": contact.sector,
              "active": contact.active}
    for key, value in changes.items():
        if key == "availability":
            contact.availability = _check_availability(value)
        else:
            setattr(contact, key, value)
    if "role" in changes and "sector" not in changes:
        contact.sector = DEFAULT_SECTOR[contact.role]
    _check_contact(contact.role, contact.sector, contact.daily_care, contact.email,
                   contact.phone)
    if contact.role == Role.CHILD and contact.active:
        await _single_child(session, case_id, except_id=contact_id)
    if contact.needs_interpreter and not contact.interpreter_language:
        raise InputError("interpreter_language", "say which language the interpreter is for")
    if "phone" in changes or "notify_by" in changes:
        had_mobile = bool(contact.mobile)
        contact.mobile = mobile_of(contact.phone)
        wanted = changes.get("notify_by")
        if wanted is None and had_mobile:  # a first mobile number gets the default; a changed one keeps the choice
            wanted = contact.notify_by if contact.mobile else NotifyBy.EMAIL
        contact.notify_by = notify_by_for(wanted, contact.sector, contact.mobile)
    contact.updated_at = now
    session.add(contact)
    # Every sector change is audited with its old and new value, also when a role change moved it.
    after = {"role": contact.role, "daily_care": contact.daily_care, "sector": contact.sector,
             "active": contact.active}
    change = Change.in_case(session, case, user, now)
    change.record(AuditAction.CONTACT_UPDATED, f"contact:{contact_id}",
                  {"fields": sorted(changes),
                   "changed": {k: [before[k], after[k]] for k in before if before[k] != after[k]}}, feeds=True)
    await follow_consent(session, case, levels, "contact_changed", f"contact:{contact_id}:{now.isoformat()}", now)
    return contact_out(contact)
