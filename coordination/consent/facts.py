"""The facts the policy reads, loaded from the tables in one place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination.consent.policy import (
    CaseFacts,
    ConsentFact,
    ContactFacts,
    SectorConsent,
    effective_consent,
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


async def load_policy_facts(session: AsyncSession, case: Case) -> PolicyFacts:
    assert case.id is not None
    contacts = await contacts_in_case(session, case.id)
    records = await session.exec(select(ConsentRecord).where(ConsentRecord.case_id == case.id))
    return PolicyFacts(
        case=case_facts(case),
        contacts=tuple(contact_facts(c) for c in contacts),
        records=tuple(consent_fact(r) for r in records.all()),
    )



async def contacts_in_case(session: AsyncSession, case_id: int) -> list[Contact]:
    rows = await session.exec(
        select(Contact).where(Contact.case_id == case_id).order_by(col(Contact.id))
    )
    return list(rows.all())
