"""Retention: a closed case's personal data is deleted once ``SAMHANDLING_RETENTION_DAYS`` have
passed since it was closed (DESIGN.md "The case record and retention"); its record, produced
at closing, is the journal's. Deleted means gone from every table: every row that belongs to the
case — found by following the schema's foreign keys from the case, so that a table added later
is covered without being named here — and every audit detail of the case, while the audit
entries themselves (who did what, when) stay. The case row stays as a tombstone: its reference,
when it was opened and closed, when its record was produced and when its data was deleted.

Also the alerts of the end of a case: a plan past its end in a case still open, and a closed
case whose deletion is due within 14 days."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, Table, delete, func, or_, select, update
from sqlmodel import SQLModel, col
from sqlmodel import select as sm_select
from sqlmodel.ext.asyncio.session import AsyncSession

from calendars.zone import local_date, local_midnight
from coordination import audit
from coordination.changes import Change
from coordination.context import ServiceContext
from coordination.domain import AuditAction, CaseStatus
from coordination.models import AuditEntry, Case, Plan
from coordination.outbox.alerts import raise_alert
from coordination.records.closing import purge_due_at
from notifications.ports import AlertKind

log = logging.getLogger(__name__)

#: The case row is the tombstone; the audit log keeps its entries, emptied of their details.
KEPT = frozenset({Case.__tablename__, AuditEntry.__tablename__})
#: A birth date the tombstone can hold (the column is a date): the same for every purged case.
ERASED_BIRTH_DATE = date.min
#: How long before the deletion the coordinators are told.
WARN_BEFORE = timedelta(days=14)


@dataclass(frozen=True, slots=True)
class Purge:
    """What the deletion of one case removes (``done``) or would remove."""

    case_id: int
    reference: str
    closed_at: datetime
    due_at: datetime
    rows: dict[str, int] = field(default_factory=dict)
    #: Audit entries of the case whose details are emptied.
    audit_details: int = 0
    done: bool = False


def _case_rows(case_id: int) -> list[tuple[Table, ColumnElement[bool]]]:
    """Each table holding rows of the case with the condition that picks them, parents first: a
    row is the case's when one of its foreign keys points at the case or at a row of the case."""
    picked: dict[str, ColumnElement[bool]] = {}
    for table in SQLModel.metadata.sorted_tables:
        if table.name in KEPT:
            continue
        conditions = []
        for key in table.foreign_keys:
            target = key.column.table
            if target.name == Case.__tablename__:
                conditions.append(key.parent == case_id)
            elif target.name in picked:
                conditions.append(key.parent.in_(select(key.column).where(picked[target.name])))
        if conditions:
            picked[table.name] = or_(*conditions)
    return [(SQLModel.metadata.tables[name], condition) for name, condition in picked.items()]


async def _counted(session: AsyncSession, case: Case, rows: list[tuple[Table, ColumnElement[bool]]]
                   ) -> tuple[dict[str, int], int]:
    counts = {}
    for table, condition in rows:
        found = await session.scalar(select(func.count()).select_from(table).where(condition))
        if found:
            counts[table.name] = int(found)
    audit_table = SQLModel.metadata.tables[str(AuditEntry.__tablename__)]
    details = await session.scalar(select(func.count()).select_from(audit_table).where(
        audit_table.c.case_id == case.id))
    return counts, int(details or 0)


async def due_cases(session: AsyncSession, now: datetime, retention_days: int) -> list[Case]:
    """Closed cases whose retention period has ended, oldest first."""
    before = now - timedelta(days=retention_days)
    return list((await session.exec(sm_select(Case).where(
        Case.status == CaseStatus.CLOSED, col(Case.closed_at) <= before)
        .order_by(col(Case.closed_at), col(Case.id)))).all())


async def purge_case(session: AsyncSession, case: Case, now: datetime, retention_days: int, *,
                     dry_run: bool = False) -> Purge:
    """Delete the case's personal data (or, with ``dry_run``, count what would go)."""
    assert case.id is not None and case.closed_at is not None
    due = purge_due_at(case.closed_at, retention_days)
    assert due is not None
    rows = _case_rows(case.id)
    counts, details = await _counted(session, case, rows)
    if dry_run:
        return Purge(case.id, case.reference, case.closed_at, due, counts, details)
    for table, condition in reversed(rows):  # children before the rows they point at
        await session.exec(delete(table).where(condition))
    await session.exec(update(AuditEntry).where(col(AuditEntry.case_id) == case.id).values(detail={}))
    case.child_given_name, case.child_initials, case.child_birth_date = "", "", ERASED_BIRTH_DATE
    case.order_date, case.party_status_override = None, None
    case.status, case.purged_at, case.updated_at = CaseStatus.PURGED, now, now
    session.add(case)
    change = Change(session, case.unit_id, case.id, audit.SYSTEM, now)
    change.record(AuditAction.CASE_PURGED, f"case:{case.id}", {"rows": counts, "audit_details": details},
                  feeds=True)
    return Purge(case.id, case.reference, case.closed_at, due, counts, details, done=True)


async def purge_due(ctx: ServiceContext, *, dry_run: bool = False) -> list[Purge]:
    """Every case due for deletion, each in its own transaction. On PostgreSQL the case row is
    locked and its state read again, so that two instances never purge one case twice."""
    async with ctx.transaction() as session:
        due = [c.id for c in await due_cases(session, ctx.now(), ctx.settings.retention_days)]
    done = []
    for case_id in due:
        async with ctx.transaction() as session:
            case = await session.get(Case, case_id, with_for_update=not ctx.settings.is_sqlite, populate_existing=True)
            if case is None or case.status is not CaseStatus.CLOSED:
                continue
            done.append(await purge_case(session, case, ctx.now(), ctx.settings.retention_days, dry_run=dry_run))
        if not dry_run:
            log.info("case %s: personal data deleted after the retention period", case_id)
    return done


async def raise_alerts(session: AsyncSession, now: datetime, retention_days: int) -> int:
    """A plan past its end in a case still open; a closed case to be deleted within 14 days."""
    raised = 0
    today = local_date(now)
    ended = await session.exec(sm_select(Case, Plan).join(Plan, col(Plan.case_id) == Case.id).where(
        Case.status == CaseStatus.OPEN, col(Plan.expected_end) < today))
    for case, plan in ended.all():
        alert = await raise_alert(session, case, AlertKind.PLAN_ENDED, f"case:{case.id}:plan-ended:{plan.expected_end}",
                                  now, detail={"plan_end": plan.expected_end.isoformat()},
                                  due_at=local_midnight(plan.expected_end + timedelta(days=1)))
        raised += alert is not None
    closed = await session.exec(sm_select(Case).where(
        Case.status == CaseStatus.CLOSED,
        col(Case.closed_at) <= now + WARN_BEFORE - timedelta(days=retention_days)))
    for case in closed.all():
        due = purge_due_at(case.closed_at, retention_days)
        assert due is not None and case.closed_at is not None
        alert = await raise_alert(session, case, AlertKind.DELETION_DUE,
                                  f"case:{case.id}:deletion-due:{case.closed_at.isoformat()}", now,
                                  detail={"due": due.isoformat()}, due_at=due)
        raised += alert is not None
    return raised
