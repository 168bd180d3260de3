"""The unit's pages: for leaders the unit's cases and what needs attention, for admins the users
and the unit's settings. Roles as the API has them (``access.rules.require_role``): a page the
role may not open answers 403, as the API does; a case the user may not see is never listed.
Forms as in ``web.pages``: CSRF, the API's body and service function, one transaction."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Redirect, Template

from coordination.access import users
from coordination.access.rules import require_role
from coordination.api.deps import Ctx
from coordination.context import ServiceContext
from coordination.domain import UserRole
from coordination.errors import InputError
from coordination.models import User
from coordination.schemas import UnitPatch, UserCreated
from coordination.web.pages import read_form, render, see
from coordination.web.session import Viewer
from coordination.web.views import admin as admin_views
from coordination.web.views import unit as unit_views
from coordination.web.views.form_input import error_pairs, top_field

SEARCH_FIELDS = ("sok", "koordinator", "status", "side")


class UnitPages(Controller):
    path = "/enhet"

    # leaders

    @get("/saker")
    async def cases(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer) -> Template:
        """The unit's cases, a page at a time, searched by reference or initials and by coordinator."""
        require_role(viewer, UserRole.LEADER)
        search = unit_views.CaseSearch.of({k: request.query_params.get(k, "") for k in SEARCH_FIELDS})
        async with ctx.sessions() as session:
            found = await unit_views.unit_cases(session, viewer, search, ctx.now())
            coordinators = await unit_views.coordinator_filter(session, viewer)
        return render(request, "unit_cases.html", viewer=viewer, search=search, found=found,
                      coordinators=coordinators, statuses=unit_views.STATUS_CHOICES)

    @get("/oppfolging")
    async def attention(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer) -> Template:
        """Open cases that need the leader's eye: consent expiring, evaluations overdue, measures ending,
        messages that failed."""
        require_role(viewer, UserRole.LEADER)
        async with ctx.sessions() as session:
            sections = await unit_views.attention(session, viewer, ctx.now())
        return render(request, "attention.html", viewer=viewer, sections=sections)

    # admins (leaders may see the users)

    async def _users(self, request: Request[Any, Any, State], ctx: ServiceContext, viewer: User,
                     form: admin_views.UserForm | None = None, error: InputError | None = None,
                     created: UserCreated | None = None) -> Template:
        async with ctx.sessions() as session:
            listed = await users.list_users(session, viewer)
        return render(request, "users.html", status=400 if error else 200, viewer=viewer,
                      rows=admin_views.user_rows(listed), form=form or admin_views.UserForm(),
                      roles=admin_views.ROLES, created=created, show_token=ctx.settings.oidc is None,
                      errors=error_pairs(error, top_field) if error else [])

    @get("/brukere")
    async def users_page(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer) -> Template:
        return await self._users(request, ctx, viewer)

    @post("/brukere")
    async def create_user(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer) -> Template:
        """Answered with the page itself, not a redirect: the new user's token is shown this once."""
        form = admin_views.UserForm.of(await read_form(request))
        require_role(viewer, UserRole.ADMIN)
        try:
            body = form.user_in()
            async with ctx.transaction() as session:
                created = await users.create_user_as(session, viewer, body, ctx.now())
        except InputError as error:
            return await self._users(request, ctx, viewer, form, error)
        return await self._users(request, ctx, viewer, created=created)

    @post("/brukere/{user_id:int}/deaktiver")
    async def deactivate_user(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer,
                              user_id: FromPath[int]) -> Redirect:
        await read_form(request)
        async with ctx.transaction() as session:
            await users.deactivate_user(session, viewer, user_id, ctx.now())
        return see("/enhet/brukere", "bruker-deaktivert", f"bruker-{user_id}")

    async def _settings(self, request: Request[Any, Any, State], ctx: ServiceContext, viewer: User,
                        form: admin_views.UnitForm | None = None, error: InputError | None = None) -> Template:
        require_role(viewer, UserRole.ADMIN)
        async with ctx.sessions() as session:
            unit = await users.get_unit(session, viewer)
        form = form or admin_views.UnitForm.of_unit(unit)
        return render(request, "unit_settings.html", status=400 if error else 200, viewer=viewer, unit=unit,
                      form=form, rows=form.shown_rows(), errors=error_pairs(error, form.field_id) if error else [])

    @get("/innstillinger")
    async def settings(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer) -> Template:
        return await self._settings(request, ctx, viewer)

    @post("/innstillinger")
    async def save_settings(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer) -> Response[Any]:
        """Saves what differs from the settings now (the audit names those fields only)."""
        form = admin_views.UnitForm.of(await read_form(request))
        require_role(viewer, UserRole.ADMIN)
        try:
            async with ctx.transaction() as session:
                patch = form.patch(await users.get_unit(session, viewer))
                if patch != UnitPatch():
                    await users.update_unit(session, viewer, patch, ctx.now())
        except InputError as error:
            return await self._settings(request, ctx, viewer, form, error)
        return see("/enhet/innstillinger", "innstillinger")
