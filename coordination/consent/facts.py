"""The facts the policy reads, loaded from the tables in one place."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select

from calendars.zone import local_midnight
from coordination.consent.policy import (
    CaseFacts,
    ConsentFact,
    ContactFacts,
    SectorConsent,
    effective_consent,
    fifteenth_birthday,
)
from coordination.domain import Sector
from coordination.errors import NotFound
from coordination.models import Case, ConsentRecord, Contact

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

    def changes_after(self, now: datetime) -> list[datetime]:
        """The instants after ``now`` at which what someone may learn can change by the clock
        alone: a grant coming into force or ending, the child's 15th birthday."""
        bounds = []
        for record in self.records:
            bounds.append(record.valid_from)
            if record.valid_until is not None:
                bounds.append(record.valid_until)
        if self.case.aimed_at_child and self.case.party_status_override is None:
            bounds.append(local_midnight(fifteenth_birthday(self.case.birth_date)))
        return [b for b in bounds if b > now]


def case_facts(case: Case) -> CaseFacts:
    return CaseFacts(case.child_birth_date, case.aimed_at_child, case.party_status_override)


def contact_facts(contact: Contact) -> ContactFacts:
    assert contact.id is not None
    return ContactFacts(contact.id, contact.role, contact.sector, contact.daily_care,
                        contact.active)


def consent_fact(record: ConsentRecord) -> ConsentFact:
    assert record.id is not None
    return ConsentFact(
        id=record.id,
        grantor_id=record.grantor_contact_id,
        sector=record.sector,
        status=record.status,
        level=record.level,
        valid_from=record.valid_from,
        valid_until=record.valid_until,
        recorded_at=record.recorded_at,
    )


#: A select of columns: rows come back as plain tuples, not ORM objects.
Columns = Select[*tuple[Any, ...]]

#: The columns the policy reads, so that a case's facts cost one light query per kind however
#: many contacts and records it has (issue 17). ``contact_fact_of`` takes a row starting with them.
CONTACT_FACT_COLUMNS = (col(Contact.id), col(Contact.role), col(Contact.sector), col(Contact.daily_care),
                        col(Contact.active))
CONSENT_FACT_COLUMNS = (
    col(ConsentRecord.id), col(ConsentRecord.grantor_contact_id), col(ConsentRecord.sector),
    col(ConsentRecord.status), col(ConsentRecord.level), col(ConsentRecord.valid_from),
    col(ConsentRecord.valid_until), col(ConsentRecord.recorded_at),
)


def contact_fact_of(row: Sequence[Any]) -> ContactFacts:
    return ContactFacts(*row[:len(CONTACT_FACT_COLUMNS)])


def contact_rows(case_ids: Collection[int], *more: Any) -> Columns:
    """The contacts of these cases, by id: the policy's columns, then ``more``."""
    query: Columns = Select(*CONTACT_FACT_COLUMNS, *more)
    return query.where(col(Contact.case_id).in_(case_ids)).order_by(col(Contact.id))


async def consent_facts(session: AsyncSession, case_id: int) -> tuple[ConsentFact, ...]:
    """Every consent record of the case, as the policy reads them."""
    query: Columns = Select(*CONSENT_FACT_COLUMNS)
    rows = await session.exec(query.where(ConsentRecord.case_id == case_id))
    return tuple(ConsentFact(*row) for row in rows.all())


async def load_policy_facts(session: AsyncSession, case: Case) -> PolicyFacts:
    assert case.id is not None
    contacts = await session.exec(contact_rows((case.id,)))
    return PolicyFacts(
        case=case_facts(case),
        contacts=tuple(contact_fact_of(c) for c in contacts.all()),
        records=await consent_facts(session, case.id),
    )


async def contacts_in_case(session: AsyncSession, case_id: int) -> list[Contact]:
    rows = await session.exec(
        select(Contact).where(Contact.case_id == case_id).order_by(col(Contact.id))
    )
    return list(rows.all())
