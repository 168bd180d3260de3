"""The outbox table as the dispatcher's store: rows claimed with ``FOR UPDATE SKIP LOCKED`` and a
lease on PostgreSQL, so two instances never send one message (rule 6).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from datetime import datetime, timedelta

import msgspec
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination import audit
from coordination.changes import Change
from coordination.consent.policy import Reason
from coordination.context import ServiceContext
from coordination.domain import AuditAction
from coordination.levels import Level
from coordination.models import (
    Case,
    OutboxMessage,
)
from coordination.outbox import alerts
from coordination.outbox.enums import OutboxStatus
from notifications.ports import (
    AlertKind,
    MessageKind,
    Settle,
    Settlement,
    SuppressionCode,
)
from notifications.ports import (
    OutboxMessage as PortMessage,
)

log = logging.getLogger(__name__)


def stored_reasons(reasons: Sequence[Reason]) -> list[dict[str, object]]:
    """The consent policy's reasons as an outbox row keeps them (``suppressed_reasons``): rule
    codes, contact ids, sectors, levels and dates — never a name."""
    stored: list[dict[str, object]] = msgspec.to_builtins(list(reasons))
    return stored


def reasons_of(row: OutboxMessage) -> list[Reason]:
    """The typed reasons a row was stopped for by the consent policy (none for any other stop)."""
    return msgspec.convert(row.suppressed_reasons, list[Reason])


def instance_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _port(row: OutboxMessage) -> PortMessage:
    recipient = row.recipient_contact_id if row.recipient_contact_id is not None else row.recipient_user_id
    return PortMessage(
        id=str(row.id), idempotency_key=row.idempotency_key, kind=row.kind,
        recipient_id=str(recipient), due_at=row.due_at,
        attempts=row.attempts, message_id=row.message_id,
        subject_id=str(row.meeting_id if row.meeting_id is not None else row.alert_id),
        channel=row.channel,
    )


class SqlOutboxStore:
    """The outbox table as the dispatcher's ``OutboxStore``."""

    def __init__(self, ctx: ServiceContext, instance: str | None = None) -> None:
        self._ctx = ctx
        self._instance = instance or instance_name()

    async def claim_due(self, now: datetime, limit: int, lease: timedelta) -> Sequence[PortMessage]:
        async with self._ctx.transaction() as session:
            # Two statements rather than one with OR, so each can use the (status, next_attempt_at)
            # index: expired leases first (an instance died holding them), then due rows.
            rows: list[OutboxMessage] = []
            for condition, order in (
                ((col(OutboxMessage.status) == OutboxStatus.SENDING) & (col(OutboxMessage.lease_until) < now),
                 col(OutboxMessage.lease_until)),
                ((col(OutboxMessage.status) == OutboxStatus.PENDING) & (col(OutboxMessage.next_attempt_at) <= now),
                 col(OutboxMessage.next_attempt_at)),
            ):
                if len(rows) >= limit:
                    break
                query = select(OutboxMessage).where(condition).order_by(order, col(OutboxMessage.id))
                query = query.limit(limit - len(rows))
                if not self._ctx.settings.is_sqlite:
                    query = query.with_for_update(skip_locked=True)
                rows.extend((await session.exec(query)).all())
            for row in rows:
                row.status = OutboxStatus.SENDING
                row.lease_until = now + lease
                row.claimed_by = self._instance
                row.updated_at = now
                session.add(row)
            return [_port(row) for row in rows]

    async def _finish(self, session: AsyncSession, outbox_id: str, **values: object) -> OutboxMessage | None:
        """End our claim; a row whose lease another instance has taken over is left alone."""
        row = await session.get(OutboxMessage, int(outbox_id), with_for_update=not self._ctx.settings.is_sqlite)
        return self._end_claim(row, outbox_id, values)

    def _end_claim(self, row: OutboxMessage | None, outbox_id: str, values: dict[str, object]
                   ) -> OutboxMessage | None:
        if row is None or row.status is not OutboxStatus.SENDING or row.claimed_by != self._instance:
            log.warning("outbox %s: claim lost before its outcome was recorded", outbox_id)
            return None
        for key, value in values.items():
            setattr(row, key, value)
        row.lease_until = None
        return row

    def _audit(self, session: AsyncSession, row: OutboxMessage, action: AuditAction, now: datetime,
               **detail: object) -> None:
        change = Change(session, row.unit_id, row.case_id, audit.SYSTEM, now)
        change.record(action, f"outbox:{row.id}",
                      {"kind": row.kind, "contact": row.recipient_contact_id, "user": row.recipient_user_id,
                       "meeting": row.meeting_id, "sequence": row.meeting_sequence, **detail}, feeds=False)

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        """Several outcomes in one transaction: the rows read (and locked) with one statement, in id
        order so that two instances never wait on each other in a circle."""
        ids = sorted({int(s.outbox_id) for s in settlements})
        async with self._ctx.transaction() as session:
            query = select(OutboxMessage).where(col(OutboxMessage.id).in_(ids)).order_by(col(OutboxMessage.id))
            if not self._ctx.settings.is_sqlite:
                query = query.with_for_update()
            rows = {str(row.id): row for row in (await session.exec(query)).all()}
            for settlement in settlements:
                await self._apply(session, rows.get(settlement.outbox_id), settlement)

    async def _apply(self, session: AsyncSession, row: OutboxMessage | None, s: Settlement) -> None:
        match s.kind:
            case Settle.SENT:
                await self._sent(session, self._end_claim(row, s.outbox_id, {
                    "status": OutboxStatus.SENT, "sent_at": s.at, "level": s.level, "updated_at": s.at}), s.level, s.at)
            case Settle.SUPPRESSED:
                await self._suppressed(session, self._end_claim(row, s.outbox_id, {
                    "status": OutboxStatus.SUPPRESSED, "suppressed_code": s.code, "suppressed_reason": s.text[:500],
                    "updated_at": s.at}), s.code, s.text, s.at)
            case Settle.RETRY:
                assert s.until is not None
                await self._retried(session, self._end_claim(row, s.outbox_id, {
                    "status": OutboxStatus.PENDING, "attempts": s.attempts, "next_attempt_at": s.until,
                    "last_error": s.text[:500], "updated_at": s.at}), s.attempts, s.until, s.text, s.at)
            case Settle.DEFERRED:
                self._end_claim(row, s.outbox_id, {"status": OutboxStatus.PENDING, "next_attempt_at": s.until,
                                                   "updated_at": s.at})
            case Settle.DEAD:
                await self._died(session, self._end_claim(row, s.outbox_id, {
                    "status": OutboxStatus.DEAD, "attempts": s.attempts, "last_error": s.text[:500],
                    "updated_at": s.at}), s.attempts, s.text, s.at)

    async def _sent(self, session: AsyncSession, row: OutboxMessage | None, level: Level, now: datetime) -> None:
        if row is not None:
            self._audit(session, row, AuditAction.NOTIFICATION_SENT, now, level=level.value,
                        message_id=row.message_id)

    async def _suppressed(self, session: AsyncSession, row: OutboxMessage | None, code: SuppressionCode,
                          reason: str, now: datetime) -> None:
        if row is None:
            return
        self._audit(session, row, AuditAction.NOTIFICATION_SUPPRESSED, now, code=code.value, reason=reason[:500])
        if code in (SuppressionCode.NO_ADDRESS,) and row.case_id is not None:
            case = await session.get(Case, row.case_id)
            assert case is not None
            await alerts.raise_alert(
                session, case, AlertKind.NOTIFICATION_FAILED,
                f"case:{case.id}:no_address:{row.recipient_contact_id or row.recipient_user_id}", now,
                detail={"outbox": row.id, "contact": row.recipient_contact_id, "code": code.value},
            )

    async def _retried(self, session: AsyncSession, row: OutboxMessage | None, attempts: int,
                       next_attempt_at: datetime, error: str, now: datetime) -> None:
        if row is not None:
            self._audit(session, row, AuditAction.NOTIFICATION_RETRY, now, attempts=attempts, error=error[:200],
                        next_attempt_at=next_attempt_at.isoformat())

    async def _died(self, session: AsyncSession, row: OutboxMessage | None, attempts: int, error: str,
                    now: datetime) -> None:
        if row is None:
            return
        self._audit(session, row, AuditAction.NOTIFICATION_DEAD, now, attempts=attempts, error=error[:200])
        if row.case_id is not None and row.kind is not MessageKind.ALERT:
            case = await session.get(Case, row.case_id)
            assert case is not None
            await alerts.raise_alert(session, case, AlertKind.NOTIFICATION_FAILED,
                                     f"outbox:{row.id}:dead", now,
                                     detail={"outbox": row.id, "contact": row.recipient_contact_id,
                                             "error": error[:200]})

    async def mark_sent(self, outbox_id: str, level: Level, now: datetime) -> None:
        async with self._ctx.transaction() as session:
            row = await self._finish(session, outbox_id, status=OutboxStatus.SENT, sent_at=now, level=level,
                                     updated_at=now)
            await self._sent(session, row, level, now)

    async def mark_suppressed(self, outbox_id: str, code: SuppressionCode, reason: str, now: datetime) -> None:
        async with self._ctx.transaction() as session:
            row = await self._finish(session, outbox_id, status=OutboxStatus.SUPPRESSED, suppressed_code=code,
                                     suppressed_reason=reason[:500], updated_at=now)
            await self._suppressed(session, row, code, reason, now)

    async def schedule_retry(self, outbox_id: str, attempts: int, next_attempt_at: datetime, error: str,
                             now: datetime) -> None:
        async with self._ctx.transaction() as session:
            row = await self._finish(session, outbox_id, status=OutboxStatus.PENDING, attempts=attempts,
                                     next_attempt_at=next_attempt_at, last_error=error[:500], updated_at=now)
            await self._retried(session, row, attempts, next_attempt_at, error, now)

    async def defer(self, outbox_id: str, until: datetime, reason: str, now: datetime) -> None:
        async with self._ctx.transaction() as session:
            await self._finish(session, outbox_id, status=OutboxStatus.PENDING, next_attempt_at=until, updated_at=now)

    async def mark_dead(self, outbox_id: str, attempts: int, error: str, now: datetime) -> None:
        async with self._ctx.transaction() as session:
            row = await self._finish(session, outbox_id, status=OutboxStatus.DEAD, attempts=attempts,
                                     last_error=error[:500], updated_at=now)
            await self._died(session, row, attempts, error, now)


async def release_claims(ctx: ServiceContext, instance: str) -> None:
    """At a clean shutdown, hand this instance's unfinished claims back at once."""
    async with ctx.transaction() as session:
        await session.exec(
            update(OutboxMessage)
            .where(col(OutboxMessage.status) == OutboxStatus.SENDING, col(OutboxMessage.claimed_by) == instance)
            .values(status=OutboxStatus.PENDING, lease_until=None)
        )
