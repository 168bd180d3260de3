"""The caseworker's pages: thin handlers over the service functions the API uses.

Reading is a GET that renders a template; every change is a POST form (works without
JavaScript) that checks the CSRF token, calls the same service function as the API, and
answers with a redirect to the page that shows the result (POST-redirect-GET). When the
service refuses the input, the same page comes back with the reason in words beside the
field and the values the user typed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import FormMultiDict, State
from litestar.params import FromPath
from litestar.response import Redirect, Template

from calendars.zone import local_date
from coordination import audit
from coordination.access.rules import user_for_token
from coordination.api.deps import Ctx
from coordination.cases import contacts as contact_service
from coordination.cases import service as case_service
from coordination.consent import register as consent_register
from coordination.context import ServiceContext
from coordination.domain import ConsentForm, ConsentStatus, UserRole
from coordination.errors import InputError, not_found
from coordination.feeds import tokens as feed_tokens
from coordination.feeds.enums import FeedScope
from coordination.feeds.runtime import FeedRuntime
from coordination.models import User
from coordination.outbox.alerts import resolve
from coordination.scheduling import meetings
from coordination.scheduling.enums import MeetingStatus
from coordination.schemas import AnswerIn, CaseFeedIn, ConsentIn, MeetingPatch, MyFeedIn
from coordination.web import texts as t
from coordination.web.session import (
    CSRF_FIELD,
    Viewer,
    check_csrf,
    csrf_cookie,
    csrf_token_of,
    new_csrf_token,
    safe_next,
    session_cookies,
    session_id_of,
    start_session,
)
from coordination.web.views import alerts as alert_views
from coordination.web.views import audit as audit_views
from coordination.web.views import cases as case_views
from coordination.web.views import common as forms
from coordination.web.views import consent as consent_views
from coordination.web.views import feeds as feed_views
from coordination.web.views import meetings as meeting_views
from coordination.web.views import outbox as outbox_views

CONSENT_FIELDS = ("grantor", "sector", "status", "level", "form", "valid_until", "note")
CASE_TABS = (
    ("", "Oversikt"),
    ("kontakter", "Kontakter"),
    ("samtykke", "Samtykke"),
    ("plan", "Tiltaksplan"),
    ("moter", "Møteplan"),
    ("kalendere", "Kalendere"),
    ("utsendinger", "Utsendinger"),
    ("logg", "Logg og innsyn"),
    ("journal", "Journal og avslutning"),
)


def service(request: Request[Any, Any, State]) -> ServiceContext:
    context: ServiceContext = request.app.state.service
    return context


def render(request: Request[Any, Any, State], template: str, *, status: int = 200, **context: Any) -> Template:
    """A page with the CSRF token its forms need (issued here when the browser has none yet)."""
    settings = service(request).settings
    token = csrf_token_of(request, settings)
    cookies = []
    if token is None:
        token = new_csrf_token()
        cookies.append(csrf_cookie(settings, token))
    message = t.MESSAGES.get(request.query_params.get("melding", ""))
    return Template(
        template_name=template,
        context={"csrf": token, "csrf_field": CSRF_FIELD, "message": message, "path": request.url.path,
                 **context},
        status_code=status,
        cookies=cookies,
    )


async def read_form(request: Request[Any, Any, State]) -> FormMultiDict:
    """The submitted form, once its CSRF token has been checked."""
    data = await request.form()
    check_csrf(request, service(request).settings, data.get(CSRF_FIELD))
    return data


def see(path: str, message: str | None = None, anchor: str = "") -> Redirect:
    query = f"?melding={message}" if message else ""
    return Redirect(path=f"{path}{query}{'#' + anchor if anchor else ''}", status_code=303)


def errors_of(error: InputError, field_ids: Mapping[str, str]) -> list[tuple[str, str]]:
    """(the id of the form field at fault, the reason in words) for the error summary."""
    return [(field_ids.get(error.field.split("[")[0], ""), t.error_text(error))]


def next_quarter(now: datetime) -> datetime:
    """The slot finder's grid starts at the window's start: begin it on a quarter hour."""
    base = now.replace(second=0, microsecond=0)
    if base < now:
        base += timedelta(minutes=1)
    return base + timedelta(minutes=-base.minute % 15)


# --- sign-in ---------------------------------------------------------------------------


def _session_limits(ctx: ServiceContext) -> dict[str, int]:
    """For the sign-in page, which tells how long a session lasts."""
    return {"idle_minutes": ctx.settings.session_idle_minutes, "max_hours": ctx.settings.session_max_hours}


class SignInPages(Controller):
    path = ""

    @get("/logg-inn")
    async def sign_in_form(self, request: Request[Any, Any, State], ctx: Ctx) -> Template:
        return render(request, "sign_in.html", next=safe_next(request.query_params.get("neste")), errors=[],
                      oidc=ctx.settings.oidc is not None, **_session_limits(ctx))

    @post("/logg-inn")
    async def sign_in(self, request: Request[Any, Any, State], ctx: Ctx) -> Response[Any]:
        data = await read_form(request)
        if ctx.settings.oidc is not None:  # sign-in is the provider's (web.oidc): no token is taken here
            return Redirect(path="/logg-inn", status_code=303)
        token = (data.get("token") or "").strip()
        target = safe_next(data.get("neste"))
        user = None
        if token and len(token) <= 200:
            async with ctx.sessions() as session:
                user = await user_for_token(session, token)
        if user is None:
            return render(request, "sign_in.html", status=400, next=target, oidc=False, **_session_limits(ctx),
                          errors=[("token", "Fant ingen aktiv bruker med denne tilgangsnøkkelen. "
                                            "Kontroller at du har limt inn hele nøkkelen.")])
        session_id = await start_session(ctx, user, session_id_of(request, ctx.settings))
        return Redirect(path=target, status_code=303, cookies=session_cookies(ctx.settings, session_id))


# --- my cases, alerts, my calendar ------------------------------------------------------


class HomePages(Controller):
    path = ""

    async def _home(self, request: Request[Any, Any, State], ctx: ServiceContext, viewer: User,
                    **extra: Any) -> Template:
        async with ctx.transaction() as session:
            rows = await case_views.my_cases(session, viewer, ctx.now())
            mine = await feed_tokens.list_my_feeds(session, viewer, _runtime(request).pending_seen)
        return render(request, "cases.html", viewer=viewer, rows=rows, headings=case_views.sector_headings(),
                      feeds=feed_views.feed_rows(mine, {}), can_have_feed=viewer.role != UserRole.ADMIN, **extra)

    @get("/")
    async def my_cases(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer) -> Template:
        return await self._home(request, ctx, viewer)

    @post("/kalender")
    async def create_my_feed(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer) -> Template:
        data = await read_form(request)
        label = (data.get("label") or "").strip()[:100]
        async with ctx.transaction() as session:
            created = await feed_tokens.create_my_feed(session, viewer, MyFeedIn(label=label), ctx.now(),
                                                 ctx.settings.public_base_url)
        return await self._home(request, ctx, viewer,
                                new_feed=feed_views.new_feed(created, label or "Samhandling – mine saker"))

    @post("/kalender/{feed_id:int}/stopp")
    async def revoke_my_feed(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer,
                             feed_id: FromPath[int]) -> Redirect:
        await read_form(request)
        async with ctx.transaction() as session:
            await feed_tokens.revoke_feed(session, viewer, feed_id, ctx.now(), _runtime(request).pending_seen)
        return see("/", "kalender-stoppet")

    @get("/varsler")
    async def alerts_page(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer) -> Template:
        include_resolved = request.query_params.get("vis") == "alle"
        async with ctx.transaction() as session:
            rows = await alert_views.alert_rows(session, viewer, None, include_resolved)
        return render(request, "alerts.html", viewer=viewer, alerts=rows, include_resolved=include_resolved)

    @post("/varsler/{alert_id:int}/lost")
    async def resolve_alert(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer,
                            alert_id: FromPath[int]) -> Redirect:
        data = await read_form(request)
        async with ctx.transaction() as session:
            await resolve(session, viewer, alert_id, ctx.now())
        return see(safe_next(data.get("tilbake")), "varsel-lost")


def _runtime(request: Request[Any, Any, State]) -> FeedRuntime:
    runtime: FeedRuntime = request.app.state.feeds
    return runtime


# --- one case --------------------------------------------------------------------------


class CasePages(Controller):
    path = "/saker/{case_id:int}"

    async def _page(self, request: Request[Any, Any, State], ctx: ServiceContext, viewer: User, case_id: int,
                    tab: str, template: str, status: int = 200, **context: Any) -> Template:
        async with ctx.transaction() as session:
            head = await case_views.case_head(session, viewer, case_id, ctx.now())
            # As the API does: one entry per request that shows a case's data to a user.
            audit.record_read(session, viewer.id or 0, viewer.unit_id, case_id, f"page.{tab}", ctx.now())
        return render(request, template, status=status, viewer=viewer, head=head, tabs=CASE_TABS, tab=tab,
                      **context)

    # overview

    @get("/")
    async def overview(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer, case_id: FromPath[int]
                       ) -> Template:
        """The read is audited by ``consent_loops.information_loops`` (``information_loops.read``)."""
        async with ctx.transaction() as session:
            head = await case_views.case_head(session, viewer, case_id, ctx.now())
            data = await case_views.overview(session, viewer, case_id, ctx.now(), ctx.settings.email_level_cap)
        return render(request, "case.html", viewer=viewer, head=head, tabs=CASE_TABS, tab="", data=data)

    # consent

    async def _consent(self, request: Request[Any, Any, State], ctx: ServiceContext, viewer: User,
                       case_id: int, status: int = 200, errors: list[tuple[str, str]] | None = None,
                       values: Mapping[str, str] | None = None) -> Template:
        async with ctx.transaction() as session:
            data = await consent_views.consent_page(session, viewer, case_id, ctx.now())
        blank = dict.fromkeys(CONSENT_FIELDS, "")
        return await self._page(request, ctx, viewer, case_id, "samtykke", "consent.html", status=status,
                                data=data, errors=errors or [], values={**blank, **(values or {})})

    @get("/samtykke")
    async def consent(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer, case_id: FromPath[int]
                      ) -> Template:
        return await self._consent(request, ctx, viewer, case_id)

    @post("/samtykke")
    async def record_consent(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer, case_id: FromPath[int]
                             ) -> Response[Any]:
        data = await read_form(request)
        values = {k: str(data.get(k) or "") for k in CONSENT_FIELDS}
        fields = {"grantor_contact_id": "grantor", "sector": "sector", "status": "status", "level": "level",
                  "form": "form", "valid_until": "valid_until", "note": "note"}
        try:
            body = _consent_in(values)
            async with ctx.transaction() as session:
                await consent_register.record_consent(session, viewer, case_id, body, ctx.now())
        except InputError as error:
            return await self._consent(request, ctx, viewer, case_id, status=400,
                                       errors=errors_of(error, fields), values=values)
        return see(f"/saker/{case_id}", "samtykke")

    # meetings

    @get("/moter")
    async def schedule(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer, case_id: FromPath[int]
                       ) -> Template:
        async with ctx.transaction() as session:
            months = await meeting_views.timeline(session, viewer, case_id, ctx.now())
            open_alerts = [a for a in await alert_views.alert_rows(session, viewer, case_id, False)
                           if a.href.startswith(f"/saker/{case_id}/moter")]
        return await self._page(request, ctx, viewer, case_id, "moter", "meetings.html", months=months,
                                alerts=open_alerts)

    async def _meeting(self, request: Request[Any, Any, State], ctx: ServiceContext, viewer: User,
                       case_id: int, meeting_id: int, status: int = 200, **context: Any) -> Template:
        async with ctx.transaction() as session:
            meeting = await meeting_views.one_meeting(session, viewer, case_id, meeting_id, ctx.now())
            period = await meeting_views.plan_period(session, case_id)
        first = local_date(ctx.now())
        last = first + timedelta(days=14)
        if period is not None:
            first = min(max(first, period[0]), period[1])
            last = min(first + timedelta(days=14), period[1])
        context.setdefault("errors", [])
        context["values"] = {"dato": "", "tid": "", **context.get("values", {})}
        return await self._page(request, ctx, viewer, case_id, "moter", "meeting.html", status=status,
                                meeting=meeting, search_from=first.isoformat(), search_to=last.isoformat(),
                                **context)

    @get("/moter/{meeting_id:int}")
    async def meeting(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer, case_id: FromPath[int],
                      meeting_id: FromPath[int]) -> Template:
        return await self._meeting(request, ctx, viewer, case_id, meeting_id)

    @post("/moter/{meeting_id:int}/flytt")
    async def move(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer, case_id: FromPath[int],
                   meeting_id: FromPath[int]) -> Response[Any]:
        """Move a meeting. A time that breaks a rule is not taken at once: the page explains
        what blocks it and offers the nearest times that fit, or to move it all the same."""
        data = await read_form(request)
        values = {"dato": str(data.get("dato") or ""), "tid": str(data.get("tid") or "")}
        fields = {"dato": "dato", "tid": "tid", "start": "dato", "end": "tid", "status": "dato"}
        try:
            start = forms.oslo_instant(forms.parse_day(values["dato"], "dato"), forms.parse_clock(values["tid"], "tid"))
            advice = None
            async with ctx.transaction() as session:
                if data.get("likevel") != "ja":
                    advice = await meeting_views.slot_advice(session, viewer, case_id, meeting_id, start, start,
                                                             ctx.now(), asked=t.when(start), exact=True)
                if advice is None or advice.fits:
                    await meetings.update_meeting(session, viewer, case_id, meeting_id, MeetingPatch(start=start),
                                                  ctx.now())
        except InputError as error:
            return await self._meeting(request, ctx, viewer, case_id, meeting_id, status=400,
                                       errors=errors_of(error, fields), values=values)
        if advice is not None and not advice.fits:
            return await self._meeting(request, ctx, viewer, case_id, meeting_id, advice=advice, values=values)
        return see(f"/saker/{case_id}/moter", "flyttet", f"mote-{meeting_id}")

    @post("/moter/{meeting_id:int}/forslag")
    async def suggest(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer, case_id: FromPath[int],
                      meeting_id: FromPath[int]) -> Template:
        """The slot finder over a period: the earliest time that suits everyone, or why none does."""
        data = await read_form(request)
        values = {"fra": str(data.get("fra") or ""), "til": str(data.get("til") or "")}
        fields = {"fra": "fra", "til": "til", "window_start": "fra", "window_end": "til", "duration": "til"}
        try:
            first = forms.parse_day(values["fra"], "fra")
            last = forms.parse_day(values["til"], "til")
            if last < first:
                raise t.FormError("til", "Siste dag må være samme dag som eller etter første dag.")
            start = max(forms.oslo_instant(first, datetime.min.time()), next_quarter(ctx.now()))
            end = forms.oslo_instant(last + timedelta(days=1), datetime.min.time())
            if end <= start:
                raise t.FormError("til", "Perioden har allerede vært. Velg dager fram i tid.")
            async with ctx.transaction() as session:
                advice = await meeting_views.slot_advice(session, viewer, case_id, meeting_id, start, end, ctx.now(),
                                                         asked=f"{t.day(first)} – {t.day(last)}")
        except InputError as error:
            return await self._meeting(request, ctx, viewer, case_id, meeting_id, status=400,
                                       errors=errors_of(error, fields), search_values=values)
        return await self._meeting(request, ctx, viewer, case_id, meeting_id, suggestion=advice,
                                   search_values=values)

    async def _status(self, request: Request[Any, Any, State], ctx: ServiceContext, viewer: User, case_id: int,
                      meeting_id: int, status: MeetingStatus, message: str) -> Response[Any]:
        try:
            async with ctx.transaction() as session:
                await meetings.set_status(session, viewer, case_id, meeting_id, status, ctx.now())
        except InputError as error:
            return await self._meeting(request, ctx, viewer, case_id, meeting_id, status=400,
                                       errors=errors_of(error, {}))
        return see(f"/saker/{case_id}/moter", message, f"mote-{meeting_id}")

    @post("/moter/{meeting_id:int}/bekreft")
    async def confirm(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer, case_id: FromPath[int],
                      meeting_id: FromPath[int]) -> Response[Any]:
        await read_form(request)
        return await self._status(request, ctx, viewer, case_id, meeting_id, MeetingStatus.CONFIRMED, "bekreftet")

    @post("/moter/{meeting_id:int}/holdt")
    async def mark_held(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer, case_id: FromPath[int],
                        meeting_id: FromPath[int]) -> Response[Any]:
        await read_form(request)
        return await self._status(request, ctx, viewer, case_id, meeting_id, MeetingStatus.HELD, "holdt")

    @post("/moter/{meeting_id:int}/avlys")
    async def cancel(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer, case_id: FromPath[int],
                     meeting_id: FromPath[int]) -> Response[Any]:
        data = await read_form(request)
        if data.get("bekreft") != "ja":
            return await self._meeting(request, ctx, viewer, case_id, meeting_id, status=400, errors=[
                ("bekreft", "Kryss av for at du vil avlyse møtet. Alle inviterte får da en avlysning.")])
        return await self._status(request, ctx, viewer, case_id, meeting_id, MeetingStatus.CANCELLED, "avlyst")

    @post("/moter/{meeting_id:int}/svar")
    async def record_answer(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer, case_id: FromPath[int],
                            meeting_id: FromPath[int]) -> Response[Any]:
        data = await read_form(request)
        try:
            contact_id = int(str(data.get("kontakt") or "0"))
            answer = msgspec.convert({"answer": data.get("svar") or ""}, AnswerIn)
            async with ctx.transaction() as session:
                await meetings.answer_for(session, viewer, case_id, meeting_id, contact_id, answer, ctx.now())
        except InputError as error:  # before ValueError, of which it is a kind
            return await self._meeting(request, ctx, viewer, case_id, meeting_id, status=400,
                                       errors=errors_of(error, {"contact_id": "kontakt", "answer": "svar"}))
        except (ValueError, msgspec.ValidationError):
            return await self._meeting(request, ctx, viewer, case_id, meeting_id, status=400,
                                       errors=[("svar", "Velg en deltaker og et svar.")])
        return see(f"/saker/{case_id}/moter/{meeting_id}", "svar")

    # feeds

    async def _feeds(self, request: Request[Any, Any, State], ctx: ServiceContext, viewer: User, case_id: int,
                     status: int = 200, **context: Any) -> Template:
        async with ctx.transaction() as session:
            listed = await feed_tokens.list_case_feeds(session, viewer, case_id, _runtime(request).pending_seen)
            contacts = await contact_service.list_contacts(session, viewer, case_id)
        choices = feed_views.contact_choices(contacts)
        names = {int(c.value): c.text for c in choices}
        context.setdefault("errors", [])
        return await self._page(request, ctx, viewer, case_id, "kalendere", "feeds.html", status=status,
                                feeds=feed_views.feed_rows(listed, names), contacts=choices, **context)

    @get("/kalendere")
    async def feeds_page(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer, case_id: FromPath[int]
                         ) -> Template:
        return await self._feeds(request, ctx, viewer, case_id)

    @post("/kalendere")
    async def create_feed(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer, case_id: FromPath[int]
                          ) -> Template:
        data = await read_form(request)
        scope = FeedScope.CONTACT if data.get("scope") == FeedScope.CONTACT else FeedScope.CASE
        label = str(data.get("label") or "").strip()[:100]
        try:
            contact_id = int(str(data.get("kontakt"))) if scope is FeedScope.CONTACT and data.get("kontakt") else None
            body = msgspec.convert({"scope": scope, "contact_id": contact_id, "label": label}, CaseFeedIn)
            async with ctx.transaction() as session:
                created = await feed_tokens.create_case_feed(session, viewer, case_id, body, ctx.now(),
                                                       ctx.settings.public_base_url)
                head = await case_views.case_head(session, viewer, case_id, ctx.now())
        except InputError as error:  # before ValueError, of which it is a kind
            return await self._feeds(request, ctx, viewer, case_id, status=400,
                                     errors=errors_of(error, {"contact_id": "kontakt", "label": "label"}))
        except (ValueError, msgspec.ValidationError):
            return await self._feeds(request, ctx, viewer, case_id, status=400,
                                     errors=[("label", "Navnet kan ikke ha linjeskift og kan ha høyst 100 tegn.")])
        name = label or f"Samhandling – {head.reference}"
        return await self._feeds(request, ctx, viewer, case_id, new_feed=feed_views.new_feed(created, name))

    @post("/kalendere/{feed_id:int}/stopp")
    async def revoke_feed(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer, case_id: FromPath[int],
                          feed_id: FromPath[int]) -> Redirect:
        await read_form(request)
        async with ctx.transaction() as session:
            await case_service.get_case(session, viewer, case_id, ctx.now())
            listed = await feed_tokens.list_case_feeds(session, viewer, case_id)
            if feed_id not in {f.id for f in listed}:
                raise not_found("feed", feed_id)
            await feed_tokens.revoke_feed(session, viewer, feed_id, ctx.now(), _runtime(request).pending_seen)
        return see(f"/saker/{case_id}/kalendere", "kalender-stoppet")

    # outbox, audit and access report

    @get("/utsendinger")
    async def outbox(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer, case_id: FromPath[int]
                     ) -> Template:
        wanted = request.query_params.get("status", "")
        wanted = wanted if wanted in ("venter", "sendt", "stoppet") else ""
        async with ctx.transaction() as session:
            rows = await outbox_views.outbox_rows(session, viewer, case_id, ctx.now(), ctx.settings.email_level_cap,
                                                  wanted)
        return await self._page(request, ctx, viewer, case_id, "utsendinger", "outbox.html", rows=rows,
                                wanted=wanted)

    @get("/logg")
    async def log(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer, case_id: FromPath[int]
                  ) -> Template:
        before = request.query_params.get("for", "")
        before_id = int(before) if before.isdigit() else None
        limit = 100
        async with ctx.transaction() as session:
            shared = await audit_views.access_report(session, viewer, case_id)
            entries = await audit_views.audit_rows(session, viewer, case_id, before_id, limit)
        older = entries[-1].id if len(entries) == limit else None
        return await self._page(request, ctx, viewer, case_id, "logg", "log.html", shared=shared, entries=entries,
                                older=older, paged=before_id is not None)


def _consent_in(values: Mapping[str, str]) -> ConsentIn:
    """The consent form as the API's body; the service checks the rules as it does for the API."""
    status = values["status"]
    body: dict[str, object] = {
        "grantor_contact_id": int(values["grantor"]) if values["grantor"].isdigit() else 0,
        "sector": values["sector"],
        "status": status,
        "form": values["form"] or ConsentForm.WRITTEN,
        "note": values["note"],
    }
    if status == ConsentStatus.GRANTED.value:
        if values["level"]:
            body["level"] = values["level"]
        if values["valid_until"]:
            body["valid_until"] = forms.end_of_day(forms.parse_day(values["valid_until"], "valid_until"))
    elif values["valid_until"]:
        raise t.FormError("valid_until", "Bare et samtykke som gis kan ha en sluttdato. La feltet stå tomt.")
    if not values["grantor"]:
        raise t.FormError("grantor_contact_id", "Velg hvem samtykket gjelder.")
    if not values["sector"]:
        raise t.FormError("sector", "Velg hvilken sektor samtykket gjelder.")
    if status not in {s.value for s in ConsentStatus}:
        raise t.FormError("status", "Velg om samtykket gis, nektes eller trekkes tilbake.")
    try:
        return msgspec.convert(body, ConsentIn)
    except msgspec.ValidationError as error:
        field = str(error).rsplit("$.", 1)[-1].rstrip("`")
        raise t.FormError(field, "Kontroller feltet: " + {
            "note": "merknaden kan ha høyst 4000 tegn.",
            "level": "velg et nivå.",
            "sector": "velg en sektor.",
            "form": "velg skriftlig eller muntlig.",
        }.get(field, "verdien er ugyldig.")) from None

