"""Coordinator alerts: things a person must act on, listed in the API and mailed to the
case's coordinators (at the channel cap, which by default says only "open Samhandling").

One alert per cause: ``key`` is unique, so a repeated scan or a repeated failure does
not pile up duplicates.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination import audit
from coordination.models import Alert, Case, CaseCoordinator, OutboxMessage
from coordination.outbox import ENQUEUED, new_message_id
from notifications.ports import MessageKind, RecipientKind


async def raise_alert(
    session: AsyncSession,
    case: Case,
    kind: str,
    key: str,
    now: datetime,
    *,
    detail: dict[str, object] | None = None,
    due_at: datetime | None = None,
) -> Alert | None:
    """Record the alert and queue a mail to each coordinator of the case; None if already raised."""
    found = (await session.exec(select(Alert).where(Alert.key == key))).first()
    if found is not None:
        return None
    alert = Alert(
        unit_id=case.unit_id,
        case_id=case.id,
        kind=kind,
        key=key,
        detail=detail or {},
        due_at=due_at,
        created_at=now,
    )
    session.add(alert)
    await session.flush()
    coordinators = await session.exec(
        select(CaseCoordinator.user_id).where(CaseCoordinator.case_id == case.id)
    )
    for user_id in coordinators.all():
        session.add(
            OutboxMessage(
                idempotency_key=f"alert:{alert.id}:user:{user_id}",
                unit_id=case.unit_id,
                case_id=case.id,
                kind=MessageKind.ALERT.value,
                recipient_user_id=user_id,
                recipient_kind=RecipientKind.COORDINATOR.value,
                alert_id=alert.id,
                due_at=now,
                next_attempt_at=now,
                message_id=new_message_id(),
                created_at=now,
                updated_at=now,
            )
        )
        session.info[ENQUEUED] = True
    audit.record(
        session,
        unit_id=case.unit_id,
        case_id=case.id,
        actor=audit.SYSTEM,
        action="alert.raised",
        subject=f"alert:{alert.id}",
        at=now,
        detail={"kind": kind},
    )
    return alert
