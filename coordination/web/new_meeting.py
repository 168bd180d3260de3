"""A new meeting outside the plan (ad hoc), with the slot finder's advice.

"Finn tid" asks the slot finder (``slot_search.search_for`` through the meeting views'
``advice_for``, as the API's slot search and a meeting's move do) for the first time in a
period that suits the people chosen; each time it offers creates the meeting there. A time
typed by hand is asked about first, as a move is: if it does not suit, the page says why and
offers the nearest times, or to create it all the same. The meeting is made by
``meetings.create_meeting`` with the API's ``MeetingIn``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import FormMultiDict, State
from litestar.params import FromPath
from litestar.response import Template

from calendars.schedule import MeetingKind
from calendars.zone import local_date
from coordination import audit
from coordination.access.rules import case_for
from coordination.api.deps import Ctx
from coordination.cases import contacts as contact_service
from coordination.context import ServiceContext
from coordination.errors import InputError
from coordination.models import User
from coordination.scheduling import meetings
from coordination.schemas import MeetingIn, SlotSearchIn
from coordination.web import texts as t
from coordination.web.pages import CASE_TABS, next_quarter, read_form, render, see
from coordination.web.session import Viewer
from coordination.web.views import cases as case_views
from coordination.web.views import common as forms
from coordination.web.views import meetings as meeting_views
from coordination.web.views import plan as plan_views
from coordination.web.views.common import NB, Choice
from notifications.messages import meeting_kind_name

#: Lengths the form offers, in minutes.
DURATIONS = (15, 30, 45, 60, 90, 120, 180, 240)
#: The form's fields for each field the API or the slot finder names.
FIELDS = {"start": "dato", "end": "varighet", "duration_minutes": "varighet", "duration": "varighet",
          "window_start": "fra", "window_end": "til", "participant_ids": "participant_ids", "kind": "kind",
          "place": "place", "video_link": "video_link", "agenda": "agenda", "dato": "dato", "tid": "tid",
          "fra": "fra", "til": "til", "status": "dato"}
#: msgspec's refusals in words, by field.
WORDS = {"participant_ids": "Velg minst én deltaker (høyst 60).", "agenda": "Skriv høyst 200 tegn, uten linjeskift.",
         "place": "Skriv høyst 200 tegn, uten linjeskift.",
         "video_link": "Skriv en hel adresse som begynner med https://, uten mellomrom.",
         "kind": "Velg hva slags møte det er.", "duration_minutes": "Velg hvor lenge møtet varer."}


@dataclass
class MeetingForm:
    """The form's values as typed."""

    kind: str = MeetingKind.AD_HOC.value
    agenda: str = ""
    participant_ids: list[str] = field(default_factory=list)
    minutes: str = "60"
    place: str = ""
    video_link: str = ""
    confirm: bool = True
    fra: str = ""
    til: str = ""
    dato: str = ""
    tid: str = ""

    def hidden(self) -> list[tuple[str, str]]:
        """The meeting's own fields, for a button that creates it at an offered time."""
        pairs = [("kind", self.kind), ("agenda", self.agenda), ("varighet", self.minutes), ("place", self.place),
                 ("video_link", self.video_link), ("fra", self.fra), ("til", self.til)]
        pairs += [("participant_ids", p) for p in self.participant_ids]
        return pairs + ([("confirm", "ja")] if self.confirm else [])


def read_meeting_form(data: FormMultiDict) -> MeetingForm:
    def text(name: str) -> str:
        return str(data.get(name) or "").strip()

    return MeetingForm(kind=text("kind"), agenda=text("agenda"),
                       participant_ids=[str(v) for v in data.getall("participant_ids", [])],
                       minutes=text("varighet"), place=text("place"), video_link=text("video_link"),
                       confirm=data.get("confirm") == "ja", fra=text("fra"), til=text("til"), dato=text("dato"),
                       tid=text("tid"))


def _convert(body: Mapping[str, Any], kind: type[Any]) -> Any:
    """``body`` as the API's ``kind``, checked by msgspec as a JSON body is."""
    try:
        return msgspec.convert(body, kind)
    except msgspec.ValidationError as error:
        where = str(error).rsplit("$.", 1)[-1].rstrip("`").split("[")[0] if "$." in str(error) else ""
        raise t.FormError(where, WORDS.get(where, "Kontroller feltet: verdien er ugyldig.")) from None


def _ids(form: MeetingForm) -> list[int]:
    return [int(v) for v in form.participant_ids if v.isdigit()]


def _minutes(form: MeetingForm) -> int:
    return int(form.minutes) if form.minutes.isdigit() else 0


class NewMeetingPages(Controller):
    path = "/saker/{case_id:int}/moter/nytt"

    @get("/")
    async def new_meeting(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer,
                          case_id: FromPath[int]) -> Template:
        async with ctx.transaction() as session:
            await case_for(session, viewer, case_id)
            period = await meeting_views.plan_period(session, case_id)
            audit.record_read(session, viewer.id or 0, viewer.unit_id, case_id, "page.nytt-mote", ctx.now())
        first = local_date(ctx.now())
        last = first + timedelta(days=14)
        if period is not None:
            first = min(max(first, period[0]), period[1])
            last = min(first + timedelta(days=14), period[1])
        return await _page(request, ctx, viewer, case_id, MeetingForm(fra=first.isoformat(), til=last.isoformat()))

    @post("/")
    async def new_meeting_post(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer,
                               case_id: FromPath[int]) -> Response[Any]:
        """"finn": the slot finder's advice over the period; "opprett": create at a time."""
        data = await read_form(request)
        form = read_meeting_form(data)
        if data.get("handling") == "opprett":
            return await _create(request, ctx, viewer, case_id, form, anyway=data.get("likevel") == "ja")
        return await _find(request, ctx, viewer, case_id, form)


async def _page(request: Request[Any, Any, State], ctx: ServiceContext, viewer: User, case_id: int,
                form: MeetingForm, *, status: int = 200, **context: Any) -> Template:
    async with ctx.transaction() as session:
        head = await case_views.case_head(session, viewer, case_id, ctx.now())
        contacts = await contact_service.list_contacts(session, viewer, case_id)
    kinds = [Choice(k.value, meeting_kind_name(k, NB)) for k in MeetingKind]
    durations = [Choice(str(m), f"{m} minutter" if m < 60 else f"{m // 60} t{f' {m % 60} min' if m % 60 else ''}")
                 for m in DURATIONS]
    context.setdefault("errors", [])
    return render(request, "meeting_new.html", status=status, viewer=viewer, head=head, tabs=CASE_TABS, tab="moter",
                  form=form, contacts=plan_views.contact_choices(contacts), kinds=kinds, durations=durations,
                  **context)


def _refused(error: InputError) -> list[tuple[str, str]]:
    return [(FIELDS.get(error.field.split("[")[0], ""), t.error_text(error))]


async def _find(request: Request[Any, Any, State], ctx: ServiceContext, viewer: User, case_id: int,
                form: MeetingForm) -> Response[Any]:
    now = ctx.now()
    try:
        first = forms.parse_day(form.fra, "fra")
        last = forms.parse_day(form.til, "til")
        if last < first:
            raise t.FormError("til", "Siste dag må være samme dag som eller etter første dag.")
        start = max(forms.oslo_instant(first, datetime.min.time()), next_quarter(now))
        end = forms.oslo_instant(last + timedelta(days=1), datetime.min.time())
        if end <= start:
            raise t.FormError("til", "Perioden har allerede vært. Velg dager fram i tid.")
        search: SlotSearchIn = _convert({"window_start": start, "window_end": end, "duration_minutes": _minutes(form),
                                         "participant_ids": _ids(form)}, SlotSearchIn)
        async with ctx.transaction() as session:
            case = await case_for(session, viewer, case_id)
            people = await meetings.chosen_contacts(session, case_id, search.participant_ids, "participant_ids")
            advice = await meeting_views.advice_for(session, case, people, start, end,
                                                    timedelta(minutes=search.duration_minutes), now,
                                                    asked=f"{t.day(first)} – {t.day(last)}")
    except InputError as error:
        return await _page(request, ctx, viewer, case_id, form, status=400, errors=_refused(error))
    return await _page(request, ctx, viewer, case_id, form, suggestion=advice)


async def _create(request: Request[Any, Any, State], ctx: ServiceContext, viewer: User, case_id: int,
                  form: MeetingForm, *, anyway: bool) -> Response[Any]:
    """Create the meeting at the time given; a time typed by hand is checked with the slot
    finder first (``anyway``: the caseworker chose it knowing, or took an offered time)."""
    now = ctx.now()
    try:
        start = forms.oslo_instant(forms.parse_day(form.dato, "dato"), forms.parse_clock(form.tid, "tid"))
        duration = timedelta(minutes=_minutes(form))
        body: MeetingIn = _convert({"start": start, "end": start + duration, "participant_ids": _ids(form),
                                    "kind": form.kind, "place": form.place, "video_link": form.video_link,
                                    "agenda": form.agenda, "confirm": form.confirm}, MeetingIn)
        advice = None
        async with ctx.transaction() as session:
            if not anyway:
                case = await case_for(session, viewer, case_id)
                people = await meetings.chosen_contacts(session, case_id, body.participant_ids, "participant_ids")
                advice = await meeting_views.advice_for(session, case, people, start, start, duration, now,
                                                        asked=t.when(start), exact=True)
            if advice is None or advice.fits:
                created = await meetings.create_meeting(session, viewer, case_id, body, now)
    except InputError as error:
        return await _page(request, ctx, viewer, case_id, form, status=400, errors=_refused(error))
    if advice is not None and not advice.fits:
        return await _page(request, ctx, viewer, case_id, form, advice=advice)
    return see(f"/saker/{case_id}/moter/{created.id}", "mote-opprettet" if form.confirm else "mote-foreslatt")
