"""The pages that set a case up: a new case, its coordinators (leaders) and the contact list.

As in ``web.pages``: each form checks its CSRF token and calls the service function the API
calls, with the API's own body, in one transaction, so a refusal writes nothing; the answer is
a redirect to the result, or the same form again with the field at fault named and the values
as typed.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Template

from coordination import audit
from coordination.access.rules import case_for, require_role
from coordination.api.deps import Ctx
from coordination.cases import contacts as contact_service
from coordination.cases import service as case_service
from coordination.context import ServiceContext
from coordination.domain import UserRole
from coordination.errors import InputError
from coordination.models import User
from coordination.schemas import ContactPatch
from coordination.web.pages import CASE_TABS, read_form, render, see
from coordination.web.session import Viewer
from coordination.web.views import cases as case_views
from coordination.web.views import contacts as contact_views
from coordination.web.views.case_setup import (
    LANGUAGES,
    PARTY_STATUS,
    CaseForm,
    case_field_id,
    coordinator_choices,
    coordinator_ids,
)
from coordination.web.views.contacts import ContactForm
from coordination.web.views.form_input import error_pairs

TAB = "kontakter"


class NewCasePages(Controller):
    """"Ny sak": coordinators and leaders open a case as the API's ``POST /cases`` does."""

    path = "/saker/ny"

    async def _form(self, request: Request[Any, Any, State], ctx: ServiceContext, viewer: User, form: CaseForm,
                    error: InputError | None = None) -> Template:
        require_role(viewer, UserRole.COORDINATOR, UserRole.LEADER)
        async with ctx.sessions() as session:
            choices = await coordinator_choices(session, viewer, leave_out_self=True)
        errors = error_pairs(error, lambda path: case_field_id(path, choices)) if error else []
        return render(request, "case_new.html", status=400 if error else 200, viewer=viewer, form=form,
                      coordinators=choices, languages=LANGUAGES, party_status=PARTY_STATUS, errors=errors)

    @get("/")
    async def new_case(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer) -> Template:
        return await self._form(request, ctx, viewer, CaseForm.blank())

    @post("/")
    async def create_case(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer) -> Response[Any]:
        form = CaseForm.of(await read_form(request))
        try:
            body = form.case_in()
            async with ctx.transaction() as session:
                created = await case_service.create_case(session, viewer, body, ctx.now())
        except InputError as error:
            return await self._form(request, ctx, viewer, form, error)
        return see(f"/saker/{created.id}/kontakter", "sak-opprettet")


class CaseSetupPages(Controller):
    """A case's coordinators and its contact list."""

    path = "/saker/{case_id:int}"

    # coordinators (leaders)

    async def _coordinators(self, request: Request[Any, Any, State], ctx: ServiceContext, viewer: User,
                            case_id: int, chosen: list[str] | None = None, error: InputError | None = None
                            ) -> Template:
        async with ctx.transaction() as session:
            head = await case_views.case_head(session, viewer, case_id, ctx.now())
            require_role(viewer, UserRole.LEADER)
            current = (await case_service.get_case(session, viewer, case_id, ctx.now())).coordinator_ids
            choices = await coordinator_choices(session, viewer, keep=current)
            audit.record_read(session, viewer.id or 0, viewer.unit_id, case_id, "case", ctx.now())
        errors = error_pairs(error, lambda path: case_field_id(path, choices)) if error else []
        return render(request, "case_coordinators.html", status=400 if error else 200, viewer=viewer, head=head,
                      tabs=CASE_TABS, tab="koordinatorer", coordinators=choices, errors=errors,
                      chosen=chosen if chosen is not None else [str(i) for i in current])

    @get("/koordinatorer")
    async def coordinators(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer,
                           case_id: FromPath[int]) -> Template:
        return await self._coordinators(request, ctx, viewer, case_id)

    @post("/koordinatorer")
    async def assign(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer, case_id: FromPath[int]
                     ) -> Response[Any]:
        chosen = [str(v) for v in (await read_form(request)).getall("coordinator_ids", [])]
        try:
            ids = coordinator_ids(chosen)
            async with ctx.transaction() as session:
                await case_service.assign_coordinators(session, viewer, case_id, ids, ctx.now())
        except InputError as error:
            return await self._coordinators(request, ctx, viewer, case_id, chosen, error)
        return see(f"/saker/{case_id}", "koordinatorer")

    # the contact list

    async def _list(self, request: Request[Any, Any, State], ctx: ServiceContext, viewer: User, case_id: int,
                    error: InputError | None = None, contact_id: int = 0) -> Template:
        async with ctx.transaction() as session:
            head = await case_views.case_head(session, viewer, case_id, ctx.now())
            contacts = await contact_service.list_contacts(session, viewer, case_id)
            audit.record_read(session, viewer.id or 0, viewer.unit_id, case_id, "contacts", ctx.now())
        errors = error_pairs(error, lambda _: f"kontakt-{contact_id}-handling") if error else []
        return render(request, "contacts.html", status=400 if error else 200, viewer=viewer, head=head,
                      tabs=CASE_TABS, tab=TAB, rows=contact_views.contact_rows(contacts), errors=errors)

    @get("/kontakter")
    async def contacts(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer, case_id: FromPath[int]
                       ) -> Template:
        return await self._list(request, ctx, viewer, case_id)

    async def _form(self, request: Request[Any, Any, State], ctx: ServiceContext, viewer: User, case_id: int,
                    contact_id: int | None, form: ContactForm | None = None, error: InputError | None = None
                    ) -> Template:
        """The form for a new contact (``contact_id`` None) or for one of the case's contacts."""
        async with ctx.transaction() as session:
            head = await case_views.case_head(session, viewer, case_id, ctx.now())
            contact = None
            if contact_id is not None:
                contact = contact_service.contact_out(
                    await contact_service.contact_of_case(session, case_id, contact_id))
                audit.record_read(session, viewer.id or 0, viewer.unit_id, case_id, "contacts", ctx.now())
        if form is None:
            form = ContactForm.of_contact(contact) if contact is not None else ContactForm.blank()
        errors = error_pairs(error, form.field_id) if error else []
        return render(request, "contact_form.html", status=400 if error else 200, viewer=viewer, head=head,
                      tabs=CASE_TABS, tab=TAB, contact=contact, form=form, rows=form.shown_rows(), errors=errors,
                      roles=contact_views.ROLES, sectors=contact_views.SECTORS, weekdays=contact_views.WEEKDAYS,
                      languages=contact_views.CONTACT_LANGUAGES, notify_choices=contact_views.NOTIFY_CHOICES)

    @get("/kontakter/ny")
    async def new_contact(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer,
                          case_id: FromPath[int]) -> Template:
        return await self._form(request, ctx, viewer, case_id, None)

    @post("/kontakter/ny")
    async def add_contact(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer,
                          case_id: FromPath[int]) -> Response[Any]:
        form = ContactForm.of(await read_form(request))
        try:
            body = form.contact_in()
            async with ctx.transaction() as session:
                added = await contact_service.add_contact(session, viewer, case_id, body, ctx.now())
        except InputError as error:
            return await self._form(request, ctx, viewer, case_id, None, form, error)
        return see(f"/saker/{case_id}/kontakter", "kontakt-lagt-til", f"kontakt-{added.id}")

    @get("/kontakter/{contact_id:int}")
    async def contact(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer, case_id: FromPath[int],
                      contact_id: FromPath[int]) -> Template:
        return await self._form(request, ctx, viewer, case_id, contact_id)

    @post("/kontakter/{contact_id:int}")
    async def update_contact(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer,
                             case_id: FromPath[int], contact_id: FromPath[int]) -> Response[Any]:
        """Saves what differs from the contact as it is now (the audit names those fields only)."""
        form = ContactForm.of(await read_form(request))
        try:
            async with ctx.transaction() as session:
                await case_for(session, viewer, case_id)  # not found before anything else is said
                current = contact_service.contact_out(
                    await contact_service.contact_of_case(session, case_id, contact_id))
                patch = form.patch(current)
                if patch != ContactPatch():
                    await contact_service.update_contact(session, viewer, case_id, contact_id, patch, ctx.now())
        except InputError as error:
            return await self._form(request, ctx, viewer, case_id, contact_id, form, error)
        return see(f"/saker/{case_id}/kontakter", "kontakt-lagret", f"kontakt-{contact_id}")

    async def _set_active(self, request: Request[Any, Any, State], ctx: ServiceContext, viewer: User, case_id: int,
                          contact_id: int, active: bool) -> Response[Any]:
        await read_form(request)
        try:
            async with ctx.transaction() as session:
                await contact_service.update_contact(session, viewer, case_id, contact_id,
                                                     ContactPatch(active=active), ctx.now())
        except InputError as error:
            return await self._list(request, ctx, viewer, case_id, error, contact_id)
        return see(f"/saker/{case_id}/kontakter", "kontakt-aktivert" if active else "kontakt-deaktivert",
                   f"kontakt-{contact_id}")

    @post("/kontakter/{contact_id:int}/deaktiver")
    async def deactivate(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer, case_id: FromPath[int],
                         contact_id: FromPath[int]) -> Response[Any]:
        return await self._set_active(request, ctx, viewer, case_id, contact_id, False)

    @post("/kontakter/{contact_id:int}/aktiver")
    async def reactivate(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer, case_id: FromPath[int],
                         contact_id: FromPath[int]) -> Response[Any]:
        return await self._set_active(request, ctx, viewer, case_id, contact_id, True)
