"""The append-only audit log: who changed, read or was told what, per case (DESIGN.md rule 9).

Details carry ids and levels, never names, e-mail addresses or phone numbers, so that
the log itself is no new disclosure.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination.domain import AuditAction
from coordination.models import AuditEntry


def actor_for_user(user_id: int) -> str:
    return f"user:{user_id}"


SYSTEM = "system"


def record(
    session: AsyncSession,
    *,
    unit_id: int,
    case_id: int | None,
    actor: str,
    action: AuditAction,
    at: datetime,
    subject: str = "",
    detail: Mapping[str, object] | None = None,
) -> None:
    """Add an entry to the caller's transaction, so the entry and the change land together.

    A change comes here through ``coordination.changes.Change``, which also keeps the feeds'
    version; what was disclosed (by the gate, a feed, the answer page) or read is recorded here.
    """
    session.add(
        AuditEntry(
            unit_id=unit_id,
            case_id=case_id,
            actor=actor,
            action=action,
            subject=subject,
            detail=dict(detail or {}),
            at=at,
        )
    )


async def entries_for_case(
    session: AsyncSession, case_id: int, limit: int = 500, before_id: int | None = None
) -> list[AuditEntry]:
    query = select(AuditEntry).where(AuditEntry.case_id == case_id)
    if before_id is not None:
        query = query.where(col(AuditEntry.id) < before_id)
    query = query.order_by(col(AuditEntry.id).desc()).limit(limit)
    return list((await session.exec(query)).all())


def record_read(session: AsyncSession, user_id: int, unit_id: int, case_id: int, what: str, at: datetime) -> None:
    """One entry per request that shows a case's data to a user (who read what, and when); ``what``
    is the rest of one of the ``AuditAction.READ_*`` values, ``read.{what}``."""
    record(session, unit_id=unit_id, case_id=case_id, actor=actor_for_user(user_id), action=AuditAction(f"read.{what}"),
           subject=f"case:{case_id}", at=at)
