"""The unit of work every write goes through (coordination.changes): audit entries land with
the change, in order, and a unit's data version goes up once per committed transaction that
changes what its feeds show, never for one that rolls back."""

from __future__ import annotations

import pytest
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination import audit
from coordination.access import users
from coordination.changes import Change
from coordination.context import ServiceContext
from coordination.domain import AuditAction
from coordination.models import AuditEntry, Unit


async def _unit(service: ServiceContext, name: str = "Enhet A") -> int:
    async with service.transaction() as session:
        unit = await users.get_or_create_unit(session, name, service.now())
        assert unit.id is not None
        return unit.id


def _change(session: AsyncSession, service: ServiceContext, unit_id: int, actor: str = audit.SYSTEM) -> Change:
    return Change(session, unit_id, None, actor, service.now())


async def _version(service: ServiceContext, unit_id: int) -> int:
    async with service.transaction() as session:
        unit = await session.get(Unit, unit_id)
        assert unit is not None
        return unit.data_version


async def _actions(service: ServiceContext, unit_id: int) -> list[str]:
    async with service.transaction() as session:
        rows = await session.exec(select(AuditEntry.action).where(AuditEntry.unit_id == unit_id)
                                  .order_by(col(AuditEntry.id)))
        return [str(action) for action in rows.all()]


async def test_one_bump_per_unit_and_transaction_and_entries_in_order(service: ServiceContext) -> None:
    unit_id, other_id = await _unit(service), await _unit(service, "Enhet B")
    async with service.transaction() as session:
        first = _change(session, service, unit_id)
        first.record(AuditAction.UNIT_UPDATED, "unit:1", feeds=True)
        first.record(AuditAction.USER_CREATED, "user:1", {"role": "leader"}, feeds=False)
        _change(session, service, unit_id, "user:7").record(AuditAction.ALERT_RESOLVED, "alert:1", feeds=True)
        _change(session, service, other_id).record(AuditAction.UNIT_UPDATED, "unit:2", feeds=True)
    assert await _version(service, unit_id) == 1
    assert await _version(service, other_id) == 1
    assert await _actions(service, unit_id) == ["unit.updated", "user.created", "alert.resolved"]


async def test_a_change_feeds_do_not_show_bumps_nothing(service: ServiceContext) -> None:
    unit_id = await _unit(service)
    async with service.transaction() as session:
        _change(session, service, unit_id).record(AuditAction.USER_CREATED, "user:1", feeds=False)
    assert await _version(service, unit_id) == 0
    assert await _actions(service, unit_id) == ["user.created"]


async def test_nothing_is_recorded_when_the_transaction_rolls_back(service: ServiceContext) -> None:
    unit_id = await _unit(service)
    with pytest.raises(RuntimeError):
        async with service.transaction() as session:
            _change(session, service, unit_id).record(AuditAction.UNIT_UPDATED, "unit:1", feeds=True)
            await session.flush()
            raise RuntimeError("the change fails half-way")
    assert await _version(service, unit_id) == 0
    assert await _actions(service, unit_id) == []


async def test_a_session_used_again_after_a_rollback_carries_no_marks_over(service: ServiceContext) -> None:
    unit_id = await _unit(service)
    async with service.sessions() as session:
        async with session.begin():
            _change(session, service, unit_id).record(AuditAction.UNIT_UPDATED, "unit:1", feeds=True)
            await session.rollback()
        async with session.begin():
            _change(session, service, unit_id).record(AuditAction.USER_CREATED, "user:1", feeds=False)
    assert await _version(service, unit_id) == 0
    assert await _actions(service, unit_id) == ["user.created"]
