"""Information loops: which sector may learn what, now and over time (rule 8)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination import audit
from coordination.access.rules import VisibleCaseRead
from coordination.consent.facts import (
    PolicyFacts,
    consent_facts,
    contact_fact_of,
    contact_rows,
    load_policy_facts,
)
from coordination.consent.policy import CaseFacts, SectorConsent
from coordination.consent.texts import contact_label, describe, grantor_label
from coordination.domain import PARTNER_SECTORS, AuditAction, Language, Sector
from coordination.levels import Level
from coordination.models import Case, Contact, User
from coordination.schemas import (
    ContactLoop,
    GrantorOut,
    InformationLoopsOut,
    LevelAt,
)

#: The case's unit (for the audit entry), then its facts for the policy, in ``CaseFacts``' order.
_visible_case = VisibleCaseRead(col(Case.unit_id), col(Case.child_birth_date), col(Case.aimed_at_child),
                                col(Case.party_status_override))


def _level_at(
    consent: SectorConsent, language: Language, names: dict[int, str]
) -> LevelAt:
    return LevelAt(
        at=consent.at,
        level=consent.level,
        sector_state=consent.state,
        grantors=[
            GrantorOut(
                contact_id=g.contact_id,
                name=grantor_label(g.contact_id, language, names),
                as_child=g.as_child,
                status=g.state,
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
    """The coordinator's check before any meeting: what each contact may learn, and why.

    One set of queries per case, whatever the number of contacts: the case, its contacts (with
    their names, as the policy's facts too) and its consent records; the policy decides once
    per sector, and each contact takes its sector's answer. The case and contacts rows come
    straight from the connection (nothing is pending before the audit entry is added)."""
    unit_id, *case_columns = await _visible_case(session, user, case_id)
    connection = await session.connection()
    rows = (await connection.execute(contact_rows((case_id,), col(Contact.name), col(Contact.role_label)))).all()
    people = [(contact_fact_of(row), name, role_label) for *row, name, role_label in rows]
    facts = PolicyFacts(CaseFacts(*case_columns), tuple(contact for contact, _, _ in people),
                        await consent_facts(session, case_id))
    names = {contact.id: contact_label(name, contact.role, role_label, language)
             for contact, name, role_label in people}
    per_sector_now: dict[Sector, LevelAt] = {}
    per_sector_at: dict[Sector, LevelAt] = {}
    loops: list[ContactLoop] = []
    for contact, name, _ in people:
        if not contact.active:
            continue
        sector = contact.sector
        if sector not in per_sector_now:
            per_sector_now[sector] = _level_at(facts.sector(sector, now), language, names)
            if at is not None:
                per_sector_at[sector] = _level_at(facts.sector(sector, at), language, names)
        loops.append(
            ContactLoop(
                contact_id=contact.id,
                name=name,
                role=contact.role,
                sector=sector,
                needs_consent=sector.needs_consent,
                now=per_sector_now[sector],
                at=per_sector_at.get(sector),
            )
        )
    assert user.id is not None
    audit.record(session, unit_id=unit_id, case_id=case_id, actor=audit.actor_for_user(user.id),
                 action=AuditAction.INFORMATION_LOOPS_READ, subject=f"case:{case_id}", at=now)
    return InformationLoopsOut(case_id=case_id, language=language, contacts=loops)


async def partner_levels(session: AsyncSession, case: Case, at: datetime) -> dict[Sector, Level]:
    facts = await load_policy_facts(session, case)
    return {sector: facts.sector(sector, at).level for sector in PARTNER_SECTORS}
