"""Who may see which case: a coordinator their assigned cases, a leader the unit's cases,
nobody another unit's. A case you may not see is answered as if it did not exist."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from coordination.domain import UserRole
from coordination.errors import Forbidden, NotFound
from coordination.models import Case, CaseCoordinator, User
from coordination.security import hash_token


async def user_for_token(session: AsyncSession, token: str) -> User | None:
    found = await session.exec(select(User).where(User.token_hash == hash_token(token)))
    user = found.first()
    return user if user is not None and user.active else None


def visible_cases(user: User) -> SelectOfScalar[Case]:
    """The cases ``user`` may see, as a query to narrow further."""
    query = select(Case).where(Case.unit_id == user.unit_id)
    if user.role == UserRole.LEADER:
        return query
    if user.role == UserRole.COORDINATOR:
        assigned = select(CaseCoordinator.case_id).where(CaseCoordinator.user_id == user.id)
        return query.where(col(Case.id).in_(assigned))
    return query.where(col(Case.id).is_(None))


async def case_for(session: AsyncSession, user: User, case_id: int) -> Case:
    case = (await session.exec(visible_cases(user).where(Case.id == case_id))).first()
    if case is None:
        raise NotFound(f"case {case_id} not found")
    return case


def require_role(user: User, *roles: UserRole) -> None:
    if user.role not in roles:
        names = " or ".join(r.value for r in roles)
        raise Forbidden(f"this needs the role {names}")
