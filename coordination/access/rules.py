"""Who may see which case: a coordinator their assigned cases, a leader the unit's cases,
nobody another unit's. A case you may not see is answered as if it did not exist."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select, SelectOfScalar

from coordination.domain import CaseStatus, UserRole
from coordination.errors import Forbidden, not_found
from coordination.models import Case, CaseCoordinator, User
from coordination.security import hash_token

#: Built once: every API request runs it, and building it costs about as much as running it.
_USER_BY_TOKEN_HASH = select(User).where(User.token_hash == bindparam("token_hash"))


async def user_for_token(session: AsyncSession, token: str) -> User | None:
    found = await session.exec(_USER_BY_TOKEN_HASH, params={"token_hash": hash_token(token)})
    user = found.first()
    return user if user is not None and user.active else None


def may_see_case(user_id: Any, role: Any, unit_id: Any, case_id: Any, case_unit_id: Any
                 ) -> ColumnElement[bool]:
    """The rule, as an SQL condition: a leader sees the unit's cases, a coordinator the cases
    assigned to them, nobody else any. The user may be given as values (a loaded user: the
    condition then folds to the branch of their role) or as columns (a joined user row, as in
    the feed token's query), so that one rule serves both."""
    assigned = col(case_id).in_(select(CaseCoordinator.case_id).where(CaseCoordinator.user_id == user_id))
    return and_(case_unit_id == unit_id,
                or_(role == UserRole.LEADER, and_(role == UserRole.COORDINATOR, assigned)))


def visible_cases(user: User) -> SelectOfScalar[Case]:
    """The cases ``user`` may see, as a query to narrow further. A purged case (its personal data
    deleted after the retention period, ``records.retention``) is seen by nobody: only its
    tombstone is left."""
    return select(Case).where(may_see_case(user.id, user.role, user.unit_id, Case.id, Case.unit_id),
                              Case.status != CaseStatus.PURGED)


async def case_for(session: AsyncSession, user: User, case_id: int) -> Case:
    case = (await session.exec(visible_cases(user).where(Case.id == case_id))).first()
    if case is None:
        raise not_found("case", case_id)
    return case


class VisibleCaseRead:
    """Some columns of one case the user may see, by the rule of ``visible_cases``, as a plain row.

    The query is built once per role, with the user and the case as bound parameters: building
    it anew costs more than running it, on the hottest reads (issue 17). The row comes straight
    from the session's connection, without the ORM's result processing (and so without its
    autoflush: read it before adding anything). A case the user may not see raises the same
    ``not_found`` as ``case_for``."""

    def __init__(self, *columns: Any) -> None:
        self._by_role: dict[UserRole, Select[*tuple[Any, ...]]] = {
            role: Select(*columns).where(
                may_see_case(bindparam("user_id"), role, bindparam("unit_id"), Case.id, Case.unit_id),
                Case.status != CaseStatus.PURGED, Case.id == bindparam("case_id"))
            for role in UserRole
        }

    async def __call__(self, session: AsyncSession, user: User, case_id: int) -> Sequence[Any]:
        query = self._by_role[user.role]
        params = {"user_id": user.id, "unit_id": user.unit_id, "case_id": case_id}
        row = (await (await session.connection()).execute(query, params)).first()
        if row is None:
            raise not_found("case", case_id)
        return tuple(row)


def require_role(user: User, *roles: UserRole) -> None:
    if user.role not in roles:
        names = " or ".join(r.value for r in roles)
        raise Forbidden(f"this needs the role {names}")
