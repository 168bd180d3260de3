"""Where Sveve sends its delivery reports (GET or POST, as configured with Sveve). Sveve cannot
sign them, so the address carries a shared secret (``SAMHANDLING_SMS_REPORT_SECRET``); without
one set, or with another, the address does not exist (404)."""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath

from coordination.api.deps import Ctx
from coordination.errors import NotFound
from coordination.outbox.sms_reports import apply_report, parse_report


class SmsReportController(Controller):
    path = "/sms/leveringsrapport/{secret:str}"
    include_in_schema = False

    @get("/")
    async def report_by_get(self, request: Request[Any, Any, State], ctx: Ctx, secret: FromPath[str]
                            ) -> dict[str, str]:
        """A delivery report in the query string."""
        return await _report(ctx, secret, dict(request.query_params))

    @post("/", status_code=200)
    async def report_by_post(self, request: Request[Any, Any, State], ctx: Ctx, secret: FromPath[str]
                             ) -> dict[str, str]:
        """A delivery report as a form (the query string is read too)."""
        form = await request.form()
        return await _report(ctx, secret, {**dict(request.query_params), **dict(form)})


async def _report(ctx: Ctx, secret: str, params: dict[str, Any]) -> dict[str, str]:
    expected = ctx.settings.sms.report_secret
    if not expected or not hmac.compare_digest(secret.encode(), expected.encode()):
        raise NotFound("not found")
    report = parse_report({key: str(value) for key, value in params.items()})
    async with ctx.transaction() as session:
        outcome = await apply_report(session, report, ctx.now())
    return {"outcome": outcome.value}
