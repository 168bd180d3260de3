"""Closing a case when the plan ends or the measures stop, and reopening it within the
retention period.

Closing cancels the meetings still to come — their cancellations go out as any other, through
the outbox and the consent gate at send time — withdraws every other message still waiting,
revokes the case's calendar feeds and the answer links (both then answer 410), resolves its
alerts and produces the record. From then on the case takes no change from a person
(``changes.Change.in_case``) until it is reopened; after the retention period its personal
data is deleted (``records.retention``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from msgspec import Struct
from sqlalchemy import func
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination.access.rules import case_for, require_role
from coordination.changes import Change
from coordination.domain import AuditAction, CaseStatus, UserRole
from coordination.errors import InputError
from coordination.feeds import tokens as feed_tokens
from coordination.models import Alert, AnswerToken, Case, FeedToken, Meeting, OutboxMessage, User
from coordination.outbox import queue as outbox
from coordination.outbox.enums import OutboxStatus
from coordination.records.produce import produce_record
from coordination.records.record import CaseRecord
from coordination.scheduling import meetings
from coordination.scheduling.enums import OPEN_STATUSES, MeetingStatus
from notifications.ports import AlertKind, MessageKind


class CaseStatusOut(Struct, frozen=True):
    id: int
    reference: str
    status: CaseStatus
    closed_at: datetime | None
    #: When the case's personal data will be deleted, if it stays closed.
    purge_due_at: datetime | None


class CaseClosedOut(Struct, frozen=True):
    id: int
    reference: str
    status: CaseStatus
    closed_at: datetime
    purge_due_at: datetime
    cancelled_meetings: list[int]
    withdrawn_messages: int
    revoked_feeds: list[int]
    revoked_answer_links: int
    #: The case record as it stands at closing (the same as ``GET /cases/{id}/record``).
    record: CaseRecord


def purge_due_at(closed_at: datetime | None, retention_days: int) -> datetime | None:
    """When a case closed at ``closed_at`` is due for the deletion of its personal data."""
    return closed_at + timedelta(days=retention_days) if closed_at is not None else None


def status_out(case: Case, retention_days: int) -> CaseStatusOut:
    assert case.id is not None
    return CaseStatusOut(id=case.id, reference=case.reference, status=case.status, closed_at=case.closed_at,
                         purge_due_at=purge_due_at(case.closed_at, retention_days))


async def close_case(session: AsyncSession, user: User, case_id: int, now: datetime, retention_days: int
                     ) -> CaseClosedOut:
    """Close an open case (its coordinators and the unit's leaders)."""
    case = await case_for(session, user, case_id)
    require_role(user, UserRole.COORDINATOR, UserRole.LEADER)
    if case.status is not CaseStatus.OPEN:
        raise InputError("status", f"case {case_id} is already {case.status.value}: only an open case can be closed")
    change = Change.in_case(session, case, user, now)
    coming = (await session.exec(select(Meeting).where(
        Meeting.case_id == case_id, col(Meeting.status).in_(OPEN_STATUSES), col(Meeting.start) > now)
        .order_by(col(Meeting.start), col(Meeting.id)))).all()
    cancelled = [m.id or 0 for m in coming]
    # Everything waiting now is withdrawn, with the meetings it is about or below.
    waiting = await session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.case_id == case_id, OutboxMessage.status == OutboxStatus.PENDING))
    for meeting_id in cancelled:
        # The one way a meeting is cancelled: a confirmed one tells everyone invited.
        await meetings.set_status(session, user, case_id, meeting_id, MeetingStatus.CANCELLED, now)
    await outbox.withdraw_case_pending(session, case_id, now, "the case was closed", keep=(MessageKind.CANCELLATION,))
    withdrawn = int(waiting or 0)
    feeds = (await session.exec(select(FeedToken.id).where(
        FeedToken.case_id == case_id, col(FeedToken.revoked_at).is_(None)).order_by(col(FeedToken.id)))).all()
    for feed_id in feeds:
        if feed_id is not None:
            await feed_tokens.revoke_feed(session, user, feed_id, now)
    links = await session.exec(update(AnswerToken).where(
        col(AnswerToken.meeting_id).in_(select(Meeting.id).where(Meeting.case_id == case_id)),
        col(AnswerToken.revoked_at).is_(None)).values(revoked_at=now))
    await _resolve_alerts(session, change, now)
    case.status, case.closed_at, case.updated_at = CaseStatus.CLOSED, now, now
    session.add(case)
    detail = {"cancelled_meetings": cancelled, "withdrawn_messages": withdrawn, "revoked_feeds": len(feeds),
              "revoked_answer_links": int(links.rowcount)}
    change.record(AuditAction.CASE_CLOSED, f"case:{case_id}", detail, feeds=True)
    record = await produce_record(session, case, user, now, "json")
    due = purge_due_at(case.closed_at, retention_days)
    assert due is not None
    return CaseClosedOut(id=case_id, reference=case.reference, status=case.status, closed_at=now, purge_due_at=due,
                         cancelled_meetings=cancelled, withdrawn_messages=withdrawn,
                         revoked_feeds=[f for f in feeds if f is not None],
                         revoked_answer_links=int(links.rowcount), record=record)


async def reopen_case(session: AsyncSession, user: User, case_id: int, now: datetime, retention_days: int
                      ) -> CaseStatusOut:
    """Reopen a closed case within the retention period. Meetings stay cancelled and feeds
    revoked: a plan revision plans the meetings again, and new feeds are made as before."""
    case = await case_for(session, user, case_id)
    require_role(user, UserRole.COORDINATOR, UserRole.LEADER)
    if case.status is not CaseStatus.CLOSED:
        raise InputError("status", f"case {case_id} is {case.status.value}: only a closed case can be reopened")
    due = purge_due_at(case.closed_at, retention_days)
    if due is not None and due <= now:
        raise InputError("status", f"the retention period of case {case_id} ended at {due.isoformat()}: "
                                   "its personal data is due for deletion and it cannot be reopened")
    closed_at = case.closed_at
    case.status, case.closed_at, case.updated_at = CaseStatus.OPEN, None, now
    session.add(case)
    change = Change.in_case(session, case, user, now)
    change.record(AuditAction.CASE_REOPENED, f"case:{case_id}",
                  {"closed_at": closed_at.isoformat() if closed_at else None}, feeds=True)
    await _resolve_alerts(session, change, now, kinds=(AlertKind.DELETION_DUE,))
    return status_out(case, retention_days)


async def _resolve_alerts(session: AsyncSession, change: Change, now: datetime,
                          kinds: tuple[AlertKind, ...] | None = None) -> None:
    """A closed case's alerts are moot (and a reopened one's deletion is no longer due)."""
    query = select(Alert).where(Alert.case_id == change.case_id, col(Alert.resolved_at).is_(None))
    if kinds is not None:
        query = query.where(col(Alert.kind).in_(kinds))
    for alert in (await session.exec(query)).all():
        alert.resolved_at = now
        session.add(alert)
        change.record(AuditAction.ALERT_RESOLVED, f"alert:{alert.id}", feeds=True)
