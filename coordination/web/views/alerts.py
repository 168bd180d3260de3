"""Open alerts, for the home page and a case's overview."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination.access.rules import visible_cases
from coordination.models import Case, User
from coordination.outbox import alerts
from coordination.schemas import AlertOut
from coordination.web import texts as t
from notifications.ports import AlertKind


@dataclass(frozen=True, slots=True)
class AlertRow:
    id: int
    case_id: int | None
    reference: str
    text: str
    created: str
    due: str
    href: str
    resolved: str


async def alert_rows(session: AsyncSession, user: User, case_id: int | None, include_resolved: bool
                     ) -> list[AlertRow]:
    listed: list[AlertOut] = await alerts.list_alerts(session, user, case_id, include_resolved)
    ids = sorted({a.case_id for a in listed if a.case_id is not None})
    references: dict[int | None, str] = {}
    if ids:
        found = await session.exec(visible_cases(user).where(col(Case.id).in_(ids)))
        references = {c.id: c.reference for c in found.all()}
    rows = []
    for a in listed:
        target = t.ALERT_TARGET.get(a.kind, "")
        href = f"/saker/{a.case_id}" + (f"/{target}" if target else "") if a.case_id else "/"
        meeting = a.detail.get("meeting")
        if a.kind is AlertKind.EVALUATION_OVERDUE and isinstance(meeting, int):
            href = f"/saker/{a.case_id}/moter/{meeting}"
        rows.append(AlertRow(a.id, a.case_id, references.get(a.case_id, ""), a.text, t.when(a.created_at),
                             t.day(a.due_at) if a.due_at else "", href,
                             t.when(a.resolved_at) if a.resolved_at else ""))
    return rows
