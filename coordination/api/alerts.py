"""Coordinator alerts across the user's cases, and each case's outbox."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.params import Parameter

from coordination import audit
from coordination.access.rules import case_for
from coordination.api.deps import Ctx, CurrentUser, PathId
from coordination.outbox import alerts
from coordination.outbox import queue as outbox
from coordination.schemas import AlertOut, OutboxOut


class AlertController(Controller):
    tags = ["alerts"]

    @get("/alerts")
    async def list_alerts(self, ctx: Ctx, user: CurrentUser,
                          include_resolved: bool = Parameter(default=False)) -> list[AlertOut]:
        """The alerts of every case the signed-in user may see, newest first; resolved ones only
        when asked for."""
        async with ctx.transaction() as session:
            return await alerts.list_alerts(session, user, None, include_resolved)

    @get("/cases/{case_id:int}/alerts")
    async def case_alerts(self, ctx: Ctx, user: CurrentUser, case_id: PathId,
                          include_resolved: bool = Parameter(default=False)) -> list[AlertOut]:
        """The alerts of one case, newest first; resolved ones only when asked for."""
        async with ctx.transaction() as session:
            return await alerts.list_alerts(session, user, case_id, include_resolved)

    @post("/alerts/{alert_id:int}/resolve", status_code=200)
    async def resolve(self, ctx: Ctx, user: CurrentUser, alert_id: PathId) -> AlertOut:
        """Mark an alert dealt with. It stays listed among the resolved ones."""
        async with ctx.transaction() as session:
            return await alerts.resolve(session, user, alert_id, ctx.now())

    @get("/cases/{case_id:int}/outbox")
    async def case_outbox(self, ctx: Ctx, user: CurrentUser, case_id: PathId) -> list[OutboxOut]:
        """What was sent, suppressed (with the reason), retried or given up, newest first."""
        async with ctx.transaction() as session:
            await case_for(session, user, case_id)
            audit.record_read(session, user.id or 0, user.unit_id, case_id, "outbox", ctx.now())
            return await outbox.list_outbox(session, case_id)
