"""The end of a case: its record for the journal, the family's access report, closing and
reopening. Thin: ``coordination.records`` decides everything."""

from __future__ import annotations

from typing import Any

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from coordination.access.rules import case_for
from coordination.api.deps import Ctx, CurrentUser, PathId
from coordination.records import closing, pdf
from coordination.records.produce import produce_access_report, produce_record
from coordination.records.record import CaseRecord
from coordination.records.report import FamilyReport, language_of

#: What a download is answered with unless JSON is asked for (``Accept: application/json``).
OFFERED = [pdf.MEDIA_TYPE, MediaType.JSON.value]


def _wants_json(request: Request[Any, Any, State]) -> bool:
    return request.accept.best_match(OFFERED, default=pdf.MEDIA_TYPE) == MediaType.JSON.value


def _download(data: bytes, name: str) -> Response[bytes]:
    return Response(data, media_type=pdf.MEDIA_TYPE, headers={"Content-Disposition": f'attachment; filename="{name}"'})


class RecordController(Controller):
    path = "/cases/{case_id:int}"
    tags = ["records"]

    @get("/record", responses={200: ResponseSpec(data_container=CaseRecord, description=(
        "The case record: a PDF/A-3b document (application/pdf, the JSON attached), or the same "
        "content as JSON with Accept: application/json"))})
    async def case_record(self, request: Request[Any, Any, State], ctx: Ctx, user: CurrentUser,
                          case_id: PathId) -> Response[Any]:
        """The case record for the journal: the case, its contacts and how each was reached, the
        consent history, the plan's revisions, the meetings with who was invited and who answered
        what, every disclosure and every suppression. A PDF/A document; with ``Accept:
        application/json`` the same content as JSON. Producing it is audited."""
        wants_json = _wants_json(request)
        async with ctx.transaction() as session:
            case = await case_for(session, user, case_id)
            record = await produce_record(session, case, user, ctx.now(), "json" if wants_json else "pdf")
            if wants_json:
                return Response(record, media_type=MediaType.JSON)
            return _download(await pdf.record_pdf(record), pdf.filename("journalutskrift", case.reference))

    @get("/access-report", responses={200: ResponseSpec(data_container=FamilyReport, description=(
        "The family's access report: a PDF/A-3b document (application/pdf), or the same content as "
        "JSON with Accept: application/json"))})
    async def access_report(
        self, request: Request[Any, Any, State], ctx: Ctx, user: CurrentUser, case_id: PathId,
        lang: str | None = Parameter(default=None, description="nb, nn or en; the case's language if left out",
                                     pattern="^(nb|nn|en)$"),
    ) -> Response[Any]:
        """The family's access report (innsyn): what was shared about them and with whom, in plain
        words in their language, without internal notes or partners their consent never covered.
        A PDF/A document; with ``Accept: application/json`` the same content as JSON. Audited."""
        wants_json = _wants_json(request)
        async with ctx.transaction() as session:
            case = await case_for(session, user, case_id)
            language = language_of(lang, case.language)
            report = await produce_access_report(session, case, user, ctx.now(), language,
                                                 "json" if wants_json else "pdf")
            if wants_json:
                return Response(report, media_type=MediaType.JSON)
            return _download(await pdf.report_pdf(report), pdf.filename(f"innsyn-{language.value}", case.reference))

    @post("/close", status_code=200)
    async def close_case(self, ctx: Ctx, user: CurrentUser, case_id: PathId) -> closing.CaseClosedOut:
        """Close the case when the plan ends or the measures stop: meetings still to come are
        cancelled (cancellations go out through the consent gate), other waiting messages are
        withdrawn, the case's feeds and answer links stop working (410), and the record is
        produced (in the answer). A closed case takes no changes until it is reopened; its
        personal data is deleted ``SAMHANDLING_RETENTION_DAYS`` after closing. Coordinators of
        the case and leaders; closing a closed case is refused (400)."""
        async with ctx.transaction() as session:
            return await closing.close_case(session, user, case_id, ctx.now(), ctx.settings.retention_days)

    @post("/reopen", status_code=200)
    async def reopen_case(self, ctx: Ctx, user: CurrentUser, case_id: PathId) -> closing.CaseStatusOut:
        """Reopen a closed case within the retention period (audited). Cancelled meetings stay
        cancelled and revoked feeds stay revoked: revise the plan and make new feeds."""
        async with ctx.transaction() as session:
            return await closing.reopen_case(session, user, case_id, ctx.now(), ctx.settings.retention_days)
