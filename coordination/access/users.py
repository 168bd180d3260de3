"""Units and users. A user's API token is shown once, at creation, and stored hashed."""

from __future__ import annotations

from datetime import datetime

import msgspec
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination import audit
from coordination.access.rules import require_role
from coordination.changes import Change, actor_of
from coordination.domain import AuditAction, UserRole
from coordination.errors import InputError, not_found
from coordination.models import Unit, User, WebSession
from coordination.schemas import ClosureIn, UnitOut, UnitPatch, UserCreated, UserIn, UserOut
from coordination.security import hash_token, new_token


def user_out(user: User) -> UserOut:
    assert user.id is not None
    return UserOut(id=user.id, unit_id=user.unit_id, name=user.name, role=user.role,
                   email=user.email, active=user.active)


async def get_or_create_unit(session: AsyncSession, name: str, now: datetime) -> Unit:
    unit = (await session.exec(select(Unit).where(Unit.name == name))).first()
    if unit is None:
        unit = Unit(name=name, created_at=now)
        session.add(unit)
        await session.flush()
    return unit


async def create_user(
    session: AsyncSession, unit_id: int, data: UserIn, now: datetime, actor: str = audit.SYSTEM
) -> UserCreated:
    token = new_token()
    user = User(unit_id=unit_id, name=data.name, email=data.email, role=data.role,
                token_hash=hash_token(token), created_at=now)
    session.add(user)
    await session.flush()
    change = Change(session, unit_id, None, actor, now)
    change.record(AuditAction.USER_CREATED, f"user:{user.id}", {"role": data.role.value}, feeds=False)
    return UserCreated(user=user_out(user), token=token)


async def create_user_as(
    session: AsyncSession, admin: User, data: UserIn, now: datetime
) -> UserCreated:
    require_role(admin, UserRole.ADMIN)
    return await create_user(session, admin.unit_id, data, now, actor_of(admin))


async def list_users(session: AsyncSession, user: User) -> list[UserOut]:
    require_role(user, UserRole.ADMIN, UserRole.LEADER)
    rows = await session.exec(
        select(User).where(User.unit_id == user.unit_id).order_by(col(User.id))
    )
    return [user_out(u) for u in rows.all()]


async def deactivate_user(session: AsyncSession, admin: User, user_id: int, now: datetime) -> UserOut:
    """Revokes the user's token at once (every later request with it answers 401) and ends their
    browser sessions, so that reactivating the user later revives none of them."""
    require_role(admin, UserRole.ADMIN)
    user = await session.get(User, user_id)
    if user is None or user.unit_id != admin.unit_id:
        raise not_found("user", user_id)
    user.active = False
    session.add(user)
    await session.exec(update(WebSession).where(
        col(WebSession.user_id) == user_id, col(WebSession.ended_at).is_(None)).values(ended_at=now))
    change = Change(session, admin.unit_id, None, actor_of(admin), now)
    change.record(AuditAction.USER_DEACTIVATED, f"user:{user_id}", feeds=False)
    return user_out(user)


def unit_out(unit: Unit) -> UnitOut:
    assert unit.id is not None
    return UnitOut(id=unit.id, name=unit.name, phone=unit.phone,
                   show_child_name_in_feeds=unit.show_child_name_in_feeds,
                   closures=msgspec.convert(unit.closures, list[ClosureIn]))


async def get_unit(session: AsyncSession, user: User) -> UnitOut:
    unit = await session.get(Unit, user.unit_id)
    assert unit is not None
    return unit_out(unit)


async def update_unit(session: AsyncSession, admin: User, patch: UnitPatch, now: datetime) -> UnitOut:
    """The organiser phone in mail, whether coordinators' feeds show the child's given name, and
    the unit's closures (the scheduler never plans meetings on them)."""
    require_role(admin, UserRole.ADMIN)
    unit = await session.get(Unit, admin.unit_id)
    assert unit is not None
    changed = []
    if isinstance(patch.phone, str):
        unit.phone = patch.phone
        changed.append("phone")
    if isinstance(patch.show_child_name_in_feeds, bool):
        unit.show_child_name_in_feeds = patch.show_child_name_in_feeds
        changed.append("show_child_name_in_feeds")
    if isinstance(patch.closures, list):
        for index, closure in enumerate(patch.closures):
            if closure.last < closure.first:
                raise InputError(f"closures[{index}].last", "a closure must end on or after its first day")
        unit.closures = msgspec.to_builtins(patch.closures)
        changed.append("closures")
    session.add(unit)
    change = Change(session, unit.id or 0, None, actor_of(admin), now)
    change.record(AuditAction.UNIT_UPDATED, f"unit:{unit.id}", {"fields": changed}, feeds=True)
    return unit_out(unit)
