"""Producing the record and the family's report: each production is audited (who, when, in which
form and language), and the case notes when its record was last produced (kept in the tombstone).
The API and the pages both come here."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from coordination import audit
from coordination.domain import AuditAction, Language
from coordination.models import Case, User
from coordination.records.record import CaseRecord, gather
from coordination.records.report import FamilyReport, family_report


async def produce_record(session: AsyncSession, case: Case, user: User, now: datetime, form: str) -> CaseRecord:
    """The record for the journal as it stands now (``form``: pdf or json, for the audit)."""
    record = await gather(session, case, now, user.name)
    case.record_produced_at = now
    session.add(case)
    audit.record(session, unit_id=case.unit_id, case_id=case.id, actor=audit.actor_for_user(user.id or 0),
                 action=AuditAction.RECORD_PRODUCED, subject=f"case:{case.id}", at=now, detail={"format": form})
    return record


async def produce_access_report(session: AsyncSession, case: Case, user: User, now: datetime, language: Language,
                                form: str) -> FamilyReport:
    """The family's report in ``language``, from the same record."""
    report = family_report(await gather(session, case, now, user.name), language)
    audit.record(session, unit_id=case.unit_id, case_id=case.id, actor=audit.actor_for_user(user.id or 0),
                 action=AuditAction.ACCESS_REPORT_PRODUCED, subject=f"case:{case.id}", at=now,
                 detail={"language": language.value, "format": form})
    return report
