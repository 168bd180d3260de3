"""The end of a case in pages: "Journal og avslutning" (the record to download, closing and
reopening) and "Innsynsrapport" (the family's report to print or send through the municipality's
secure channel). Thin: ``coordination.records`` produces, closes and reopens, as for the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Template

from coordination import audit
from coordination.access.rules import case_for
from coordination.api.deps import Ctx
from coordination.context import ServiceContext
from coordination.domain import CaseStatus, Language
from coordination.errors import InputError
from coordination.models import User
from coordination.records import closing, pdf
from coordination.records.produce import produce_access_report, produce_record
from coordination.records.record import CaseRecord, gather
from coordination.records.report import language_of
from coordination.scheduling.enums import OPEN_STATUSES
from coordination.web import texts as t
from coordination.web.pages import CASE_TABS, errors_of, read_form, render, see
from coordination.web.session import Viewer
from coordination.web.views import cases as case_views

LANGUAGES = ((Language.NB, "Bokmål"), (Language.NN, "Nynorsk"), (Language.EN, "English"))


@dataclass(frozen=True, slots=True)
class RecordSummary:
    """What the journal page tells of the case and of its record."""

    status: str
    closed: bool
    closed_at: str
    purge_due: str
    produced_at: str
    coming_meetings: int
    sections: list[tuple[str, int]]


def _summary(record: CaseRecord, retention_days: int, produced_at: datetime | None, now: datetime) -> RecordSummary:
    case = record.case
    due = closing.purge_due_at(case.closed_at, retention_days)
    coming = sum(1 for m in record.meetings if m.status in OPEN_STATUSES and m.start > now)
    return RecordSummary(
        status={CaseStatus.OPEN: "Åpen", CaseStatus.CLOSED: "Avsluttet"}.get(case.status, case.status),
        closed=case.status is CaseStatus.CLOSED, closed_at=t.when(case.closed_at), purge_due=t.day(due),
        produced_at=t.when(produced_at), coming_meetings=coming,
        sections=[("Kontakter", len(record.contacts)), ("Samtykkehendelser", len(record.consents)),
                  ("Versjoner av tiltaksplanen", len(record.plan_revisions)), ("Møter", len(record.meetings)),
                  ("Delinger", len(record.disclosures)), ("Stoppede meldinger", len(record.suppressions))])


def _download(data: bytes, name: str) -> Response[bytes]:
    return Response(data, media_type=pdf.MEDIA_TYPE, headers={"Content-Disposition": f'attachment; filename="{name}"'})


class RecordPages(Controller):
    path = "/saker/{case_id:int}"

    async def _page(self, request: Request[Any, Any, State], ctx: ServiceContext, viewer: User, case_id: int,
                    page: str, template: str, status: int = 200, **context: Any) -> Template:
        async with ctx.transaction() as session:
            head = await case_views.case_head(session, viewer, case_id, ctx.now())
            audit.record_read(session, viewer.id or 0, viewer.unit_id, case_id, f"page.{page}", ctx.now())
        return render(request, template, status=status, viewer=viewer, head=head, tabs=CASE_TABS, tab="journal",
                      **context)

    async def _journal(self, request: Request[Any, Any, State], ctx: ServiceContext, viewer: User, case_id: int,
                       status: int = 200, errors: list[tuple[str, str]] | None = None) -> Template:
        async with ctx.transaction() as session:
            case = await case_for(session, viewer, case_id)
            record = await gather(session, case, ctx.now(), viewer.name)
            summary = _summary(record, ctx.settings.retention_days, case.record_produced_at, ctx.now())
        return await self._page(request, ctx, viewer, case_id, "journal", "journal.html", status=status,
                                summary=summary, errors=errors or [])

    @get("/journal")
    async def journal(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer, case_id: FromPath[int]
                      ) -> Template:
        return await self._journal(request, ctx, viewer, case_id)

    @get("/journal/journalutskrift.pdf")
    async def journal_pdf(self, ctx: Ctx, viewer: Viewer, case_id: FromPath[int]) -> Response[bytes]:
        """The record as the API gives it, produced and audited the same way."""
        async with ctx.transaction() as session:
            case = await case_for(session, viewer, case_id)
            record = await produce_record(session, case, viewer, ctx.now(), "pdf")
            return _download(await pdf.record_pdf(record), pdf.filename("journalutskrift", case.reference))

    @post("/avslutt")
    async def close(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer, case_id: FromPath[int]
                    ) -> Response[Any]:
        data = await read_form(request)
        if data.get("bekreft") != "ja":
            return await self._journal(request, ctx, viewer, case_id, status=400, errors=[
                ("bekreft", "Kryss av for at du vil avslutte saken.")])
        try:
            async with ctx.transaction() as session:
                await closing.close_case(session, viewer, case_id, ctx.now(), ctx.settings.retention_days)
        except InputError as error:
            return await self._journal(request, ctx, viewer, case_id, status=400, errors=errors_of(error, {}))
        return see(f"/saker/{case_id}/journal", "avsluttet")

    @post("/gjenapne")
    async def reopen(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer, case_id: FromPath[int]
                     ) -> Response[Any]:
        await read_form(request)
        try:
            async with ctx.transaction() as session:
                await closing.reopen_case(session, viewer, case_id, ctx.now(), ctx.settings.retention_days)
        except InputError as error:
            return await self._journal(request, ctx, viewer, case_id, status=400, errors=errors_of(error, {}))
        return see(f"/saker/{case_id}/journal", "gjenapnet")

    @get("/innsyn")
    async def access_report(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer,
                            case_id: FromPath[int]) -> Template:
        """The family's report as a page, in the language chosen (the case's by default)."""
        async with ctx.transaction() as session:
            case = await case_for(session, viewer, case_id)
            language = _language(request, case.language)
            report = await produce_access_report(session, case, viewer, ctx.now(), language, "page")
        return await self._page(request, ctx, viewer, case_id, "innsyn", "access_report.html", report=report,
                                languages=LANGUAGES, language=language)

    @get("/innsyn/innsyn.pdf")
    async def access_report_pdf(self, request: Request[Any, Any, State], ctx: Ctx, viewer: Viewer,
                                case_id: FromPath[int]) -> Response[bytes]:
        async with ctx.transaction() as session:
            case = await case_for(session, viewer, case_id)
            language = _language(request, case.language)
            report = await produce_access_report(session, case, viewer, ctx.now(), language, "pdf")
            return _download(await pdf.report_pdf(report), pdf.filename(f"innsyn-{language.value}", case.reference))


def _language(request: Request[Any, Any, State], default: Language) -> Language:
    return language_of(request.query_params.get("sprak"), default, "sprak")
