"""Users of the unit, and who am I."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.params import JSONBody

from coordination.access import users
from coordination.api.deps import Ctx, CurrentUser, PathId
from coordination.schemas import UnitOut, UnitPatch, UserCreated, UserIn, UserOut


class UserController(Controller):
    path = "/users"
    tags = ["users"]

    @get("/me")
    async def me(self, user: CurrentUser) -> UserOut:
        """The signed-in user."""
        return users.user_out(user)

    @get("/")
    async def list_users(self, ctx: Ctx, user: CurrentUser) -> list[UserOut]:
        """The users of the signed-in user's unit (admins and leaders)."""
        async with ctx.transaction() as session:
            return await users.list_users(session, user)

    @post("/")
    async def create_user(self, ctx: Ctx, user: CurrentUser, data: JSONBody[UserIn]) -> UserCreated:
        """Add a user to the unit (admins only). The answer holds the user's API token, shown this
        once only."""
        async with ctx.transaction() as session:
            return await users.create_user_as(session, user, data, ctx.now())

    @delete("/{user_id:int}", status_code=200)
    async def deactivate_user(self, ctx: Ctx, user: CurrentUser, user_id: PathId) -> UserOut:
        """Deactivate a user (admins only): their token stops working at once."""
        async with ctx.transaction() as session:
            return await users.deactivate_user(session, user, user_id, ctx.now())


class UnitController(Controller):
    path = "/units/me"
    tags = ["users"]

    @get("/")
    async def get_unit(self, ctx: Ctx, user: CurrentUser) -> UnitOut:
        """The signed-in user's unit and its settings."""
        async with ctx.transaction() as session:
            return await users.get_unit(session, user)

    @patch("/")
    async def update_unit(self, ctx: Ctx, user: CurrentUser, data: JSONBody[UnitPatch]) -> UnitOut:
        """Change the unit's settings (admins only); fields left out keep their value."""
        async with ctx.transaction() as session:
            return await users.update_unit(session, user, data, ctx.now())
