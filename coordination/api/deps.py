"""Dependencies every controller uses: the service context and the signed-in user."""

from __future__ import annotations

from typing import Annotated

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException
from litestar.params import Parameter
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination.access.rules import user_for_token
from coordination.context import ServiceContext
from coordination.models import User
from coordination.schemas import MAX_ID


async def provide_context(state: State) -> ServiceContext:
    context: ServiceContext = state.service
    return context


def bearer_token(request: Request[object, object, State]) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def required_token(request: Request[object, object, State]) -> str:
    token = bearer_token(request)
    if token is None:
        raise NotAuthorizedException("sign in with an API token: Authorization: Bearer <token>")
    return token


async def signed_in(session: AsyncSession, token: str) -> User:
    """The user of ``token``, read in ``session``: a handler on a hot path reads it in its own
    transaction, one connection checkout per request instead of two (issue 17)."""
    user = await user_for_token(session, token)
    if user is None:
        raise NotAuthorizedException("unknown or revoked token")
    return user


async def provide_user(
    request: Request[object, object, State], ctx: NamedDependency[ServiceContext]
) -> User:
    token = required_token(request)
    async with ctx.single_read() as session:
        return await signed_in(session, token)


#: Handler parameters that Litestar fills from the dependencies above.
Ctx = NamedDependency[ServiceContext]
CurrentUser = NamedDependency[User]
#: A row id in the path: refused (400) when no table could hold it, never sent to the database.
PathId = Annotated[int, Parameter(ge=1, le=MAX_ID)]
