"""The unit's data version: bumped in the same transaction as every change that can alter
what a feed shows, so that every instance's feed cache knows when to render again.

Changes mark their unit with ``bump_at_commit`` (through ``coordination.changes.Change``);
the version then goes up once per unit as the transaction commits, however many of its
changes touched the unit, and not at all when it rolls back.
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import SessionTransaction
from sqlalchemy.sql.dml import Update
from sqlmodel import Session, col, update
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination.models import Unit

#: In ``session.info``: the units whose feeds the open transaction has changed.
_STALE_UNITS = "samhandling.stale_units"


def _bump(unit_id: int) -> Update:
    return update(Unit).where(col(Unit.id) == unit_id).values(data_version=col(Unit.data_version) + 1)


async def bump(session: AsyncSession, unit_id: int) -> None:
    """At once, whatever else the transaction does (tests stand in for a change with it)."""
    await session.exec(_bump(unit_id))


def bump_at_commit(session: AsyncSession, unit_id: int) -> None:
    """The unit's feeds have changed: its version goes up when the transaction commits."""
    session.info.setdefault(_STALE_UNITS, set()).add(unit_id)


@event.listens_for(Session, "before_commit")
def _bump_stale_units(session: Session) -> None:
    # Runs inside AsyncSession.commit's greenlet, so the synchronous call reaches the database.
    for unit_id in sorted(session.info.pop(_STALE_UNITS, ())):
        session.exec(_bump(unit_id))


@event.listens_for(Session, "after_transaction_end")
def _forget_stale_units(session: Session, transaction: SessionTransaction) -> None:
    """A rolled-back transaction bumps nothing, nor leaves its marks to the session's next one."""
    if transaction.parent is None:
        session.info.pop(_STALE_UNITS, None)
