"""The plan (tiltaksplan) in the pages: the form, its preview, and the save.

The form becomes the API's ``PlanIn`` and goes to ``plans.upsert_plan`` like the API's PUT,
through ``plan_effects.apply_plan``, which records what it did. The preview does exactly
that in a rehearsal (``ServiceContext.rehearsal``: rolled back, so nothing stays — no plan,
no meeting, no outbox row, no audit entry, no version bump) and shows it; "Lagre" then does
it for real, and commits only if it does what the preview promised (the same meetings moved,
added and cancelled, the same messages to the same people). If anything changed in between,
nothing is saved and the new preview is shown.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import FormMultiDict, State
from litestar.params import FromPath
from litestar.response import Template
from sqlmodel.ext.asyncio.session import AsyncSession

from calendars.zone import local_date
from coordination import audit
from coordination.api.deps import Ctx
from coordination.cases import contacts as contact_service
from coordination.context import ServiceContext
from coordination.errors import InputError
from coordination.models import User
from coordination.scheduling import plan_effects
from coordination.scheduling.meetings import plan_of
from coordination.scheduling.plans import plan_out
from coordination.schemas import PlanIn, RulesIn
from coordination.web import plan_form
from coordination.web.pages import CASE_TABS, read_form, render, see
from coordination.web.session import CSRF_FIELD, Viewer
from coordination.web.views import cases as case_views
from coordination.web.views import plan as plan_views

#: Fields of the form that are not the plan's: the preview's page posts back all the others.
_NOT_PLAN = {CSRF_FIELD, "handling", "lovnad"}


class _Changed(Exception):
    """The save would not do what the preview showed: roll it back, and show what it would do now."""

    def __init__(self, view: plan_views.PlanPreview) -> None:
        super().__init__("the plan's effects changed since the preview")
        self.view = view


class PlanPages(Controller):
    path = "/saker/{case_id:int}"

    @get("/plan")
    async def plan_page(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer,
                        case_id: FromPath[int]) -> Template:
        async with ctx.transaction() as session:
            page = await _form_page(request, session, ctx, viewer, case_id, None)
            audit.record_read(session, viewer.id or 0, viewer.unit_id, case_id, "page.plan", ctx.now())
        return page

    @post("/plan")
    async def plan_post(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer,
                        case_id: FromPath[int]) -> Response[Any]:
        """One form, four buttons: add a row, preview, back to the form, save."""
        data = await read_form(request)
        form = plan_form.read_form(data)
        action = str(data.get("handling") or "forhandsvis")
        if action.startswith("legg-til:") or action == "endre":
            form.add_row(action.removeprefix("legg-til:"))
            return await _form_again(request, ctx, viewer, case_id, form)
        if action == "lagre":
            return await _save(request, ctx, viewer, case_id, data, form)
        return await _preview(request, ctx, viewer, case_id, data, form)


async def _form_page(request: Request[Any, Any, State], session: AsyncSession, ctx: ServiceContext, viewer: User,
                     case_id: int, form: plan_form.PlanForm | None, *, status: int = 200,
                     errors: list[tuple[str, str]] | None = None) -> Template:
    """The form, as the plan stands (``form`` None) or as typed."""
    head = await case_views.case_head(session, viewer, case_id, ctx.now())
    contacts = await contact_service.list_contacts(session, viewer, case_id)
    plan = await plan_of(session, case_id)
    if form is None:
        form = plan_form.form_of_plan(await plan_out(session, plan) if plan is not None else None,
                                      [c.id for c in contacts if c.active], local_date(ctx.now()))
    return render(request, "plan.html", status=status, viewer=viewer, head=head, tabs=CASE_TABS, tab="plan",
                  form=form, revision=plan.revision if plan else 0, contacts=plan_views.contact_choices(contacts),
                  weekdays=plan_form.WEEKDAYS, errors=errors or [])


async def _form_again(request: Request[Any, Any, State], ctx: ServiceContext, viewer: User, case_id: int,
                      form: plan_form.PlanForm, *, status: int = 200,
                      errors: list[tuple[str, str]] | None = None) -> Template:
    async with ctx.transaction() as session:
        return await _form_page(request, session, ctx, viewer, case_id, form, status=status, errors=errors)


def _refused(error: InputError, rows: plan_form.RowMap) -> list[tuple[str, str]]:
    return [(rows.element_id(error.field), plan_form.error_words(error))]


async def _body(session: AsyncSession, case_id: int, form: plan_form.PlanForm, rows: plan_form.RowMap) -> PlanIn:
    """The form as ``PlanIn``, keeping the schedule rules the form does not show."""
    plan = await plan_of(session, case_id)
    current = _rules(plan.rules) if plan is not None else None
    return plan_form.plan_in(form, current, rows)


def _rules(stored: dict[str, object]) -> RulesIn:
    return msgspec.convert(stored, RulesIn)


async def _preview(request: Request[Any, Any, State], ctx: ServiceContext, viewer: User, case_id: int,
                   data: FormMultiDict, form: plan_form.PlanForm) -> Response[Any]:
    rows = plan_form.RowMap()
    try:
        async with ctx.rehearsal() as session:
            body = await _body(session, case_id, form, rows)
            effects = await plan_effects.apply_plan(session, viewer, case_id, body, ctx.now())
            view = await plan_views.preview(session, viewer, case_id, effects, ctx.now(), ctx.settings.email_level_cap)
    except InputError as error:
        return await _form_again(request, ctx, viewer, case_id, form, status=400, errors=_refused(error, rows))
    return await _preview_page(request, ctx, viewer, case_id, data, view, changed=False)


async def _save(request: Request[Any, Any, State], ctx: ServiceContext, viewer: User, case_id: int,
                data: FormMultiDict, form: plan_form.PlanForm) -> Response[Any]:
    rows = plan_form.RowMap()
    promised = str(data.get("lovnad") or "")
    try:
        async with ctx.transaction() as session:
            body = await _body(session, case_id, form, rows)
            effects = await plan_effects.apply_plan(session, viewer, case_id, body, ctx.now())
            if effects.promise() != promised:
                raise _Changed(await plan_views.preview(session, viewer, case_id, effects, ctx.now(),
                                                        ctx.settings.email_level_cap))
    except _Changed as changed:
        return await _preview_page(request, ctx, viewer, case_id, data, changed.view, changed=True)
    except InputError as error:
        return await _form_again(request, ctx, viewer, case_id, form, status=400, errors=_refused(error, rows))
    return see(f"/saker/{case_id}/moter", "plan-lagret")


async def _preview_page(request: Request[Any, Any, State], ctx: ServiceContext, viewer: User, case_id: int,
                        data: FormMultiDict, view: plan_views.PlanPreview, *, changed: bool) -> Template:
    """The preview, with the form's values to post again with "Lagre" or "Tilbake til skjemaet"."""
    async with ctx.transaction() as session:
        head = await case_views.case_head(session, viewer, case_id, ctx.now())
    hidden = [(name, str(value)) for name, value in data.multi_items() if name not in _NOT_PLAN]
    return render(request, "plan_preview.html", viewer=viewer, head=head, tabs=CASE_TABS, tab="plan", view=view,
                  hidden=hidden, changed=changed)
