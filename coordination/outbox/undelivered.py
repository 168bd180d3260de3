"""A sent message that did not arrive: an e-mail bounce read from the mailbox, or an SMS the
gateway reports as not delivered. One place decides what follows, for both channels."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from coordination import audit
from coordination.changes import Change
from coordination.domain import AuditAction
from coordination.models import Case, OutboxMessage
from coordination.outbox.alerts import raise_alert
from coordination.outbox.enums import OutboxStatus
from notifications.ports import AlertKind, Channel


async def mark_undelivered(session: AsyncSession, sent: OutboxMessage, case: Case, status: str, now: datetime,
                           source: dict[str, object]) -> None:
    """The row is dead with the status (trying again will not make it arrive), audited with
    ``source`` (the inbound message or the gateway's report, by id), and the coordinator is told
    whose address or number did not work."""
    sent.status = OutboxStatus.DEAD
    what = "bounced" if sent.channel is Channel.EMAIL else "not delivered"
    sent.last_error = f"{what}: {status or 'failed'}"[:500]
    sent.updated_at = now
    session.add(sent)
    Change.in_case(session, case, audit.SYSTEM, now).record(
        AuditAction.NOTIFICATION_BOUNCED, f"outbox:{sent.id}",
        {**source, "contact": sent.recipient_contact_id, "user": sent.recipient_user_id, "status": status},
        feeds=False)
    if sent.recipient_contact_id is not None:
        detail: dict[str, object] = {"outbox": sent.id, "contact": sent.recipient_contact_id, "status": status}
        if sent.channel is not Channel.EMAIL:
            detail["channel"] = sent.channel.value
        await raise_alert(session, case, AlertKind.ADDRESS_BOUNCED, f"bounce:{sent.id}", now, detail=detail)
