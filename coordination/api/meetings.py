"""The plan, its meetings, answers recorded by the coordinator, and the slot search."""

from __future__ import annotations

from litestar import Controller, get, post, put
from litestar.params import JSONBody

from coordination import audit
from coordination.api.deps import Ctx, CurrentUser, PathId
from coordination.scheduling import meetings, plans, slot_search
from coordination.scheduling.enums import MeetingStatus
from coordination.schemas import (
    AnswerIn,
    MeetingIn,
    MeetingOut,
    MeetingPatch,
    PlanIn,
    PlanOut,
    SlotSearchIn,
    SlotSearchOut,
)


class MeetingController(Controller):
    path = "/cases/{case_id:int}"
    tags = ["plans and meetings"]

    @put("/plan")
    async def upsert_plan(
        self, ctx: Ctx, user: CurrentUser, case_id: PathId, data: JSONBody[PlanIn]
    ) -> PlanOut:
        """Create the plan, or revise it: the schedule is re-planned from now on; held and
        confirmed meetings stay where they are."""
        async with ctx.transaction() as session:
            return await plans.upsert_plan(session, user, case_id, data, ctx.now())

    @get("/plan")
    async def get_plan(self, ctx: Ctx, user: CurrentUser, case_id: PathId) -> PlanOut:
        """The plan with its meetings and the meetings that could not be placed. The read is audited."""
        async with ctx.transaction() as session:
            plan = await plans.get_plan(session, user, case_id)
            audit.record_read(session, user.id or 0, user.unit_id, case_id, "plan", ctx.now())
            return plan

    @get("/meetings")
    async def list_meetings(self, ctx: Ctx, user: CurrentUser, case_id: PathId) -> list[MeetingOut]:
        """The case's meetings in time order, cancelled and held ones included. The read is audited."""
        async with ctx.transaction() as session:
            listed = await meetings.list_meetings(session, user, case_id)
            audit.record_read(session, user.id or 0, user.unit_id, case_id, "meetings", ctx.now())
            return listed

    @post("/meetings")
    async def create_meeting(
        self, ctx: Ctx, user: CurrentUser, case_id: PathId, data: JSONBody[MeetingIn]
    ) -> MeetingOut:
        """An ad hoc meeting, or one placed by hand. Confirmed at once unless ``confirm`` is false;
        confirming sends the invitations."""
        async with ctx.transaction() as session:
            return await meetings.create_meeting(session, user, case_id, data, ctx.now())

    @put("/meetings/{meeting_id:int}")
    async def update_meeting(
        self,
        ctx: Ctx,
        user: CurrentUser,
        case_id: PathId,
        meeting_id: PathId,
        data: JSONBody[MeetingPatch],
    ) -> MeetingOut:
        """Move or change a meeting; everyone invited gets an update with a raised SEQUENCE."""
        async with ctx.transaction() as session:
            return await meetings.update_meeting(session, user, case_id, meeting_id, data, ctx.now())

    @post("/meetings/{meeting_id:int}/confirm", status_code=200)
    async def confirm(
        self, ctx: Ctx, user: CurrentUser, case_id: PathId, meeting_id: PathId
    ) -> MeetingOut:
        """Confirm a proposed meeting: the invitations go out, and a plan revision leaves it where it is."""
        async with ctx.transaction() as session:
            return await meetings.set_status(session, user, case_id, meeting_id, MeetingStatus.CONFIRMED, ctx.now())

    @post("/meetings/{meeting_id:int}/cancel", status_code=200)
    async def cancel(
        self, ctx: Ctx, user: CurrentUser, case_id: PathId, meeting_id: PathId
    ) -> MeetingOut:
        """Cancel a proposed or confirmed meeting; everyone invited to a confirmed one gets a
        cancellation."""
        async with ctx.transaction() as session:
            return await meetings.set_status(session, user, case_id, meeting_id, MeetingStatus.CANCELLED, ctx.now())

    @post("/meetings/{meeting_id:int}/held", status_code=200)
    async def held(
        self, ctx: Ctx, user: CurrentUser, case_id: PathId, meeting_id: PathId
    ) -> MeetingOut:
        """Mark a meeting held once it has started; it cannot change after that."""
        async with ctx.transaction() as session:
            return await meetings.set_status(session, user, case_id, meeting_id, MeetingStatus.HELD, ctx.now())

    @put("/meetings/{meeting_id:int}/answers/{contact_id:int}")
    async def record_answer(
        self,
        ctx: Ctx,
        user: CurrentUser,
        case_id: PathId,
        meeting_id: PathId,
        contact_id: PathId,
        data: JSONBody[AnswerIn],
    ) -> MeetingOut:
        """An answer the coordinator heard by phone or in person."""
        async with ctx.transaction() as session:
            return await meetings.answer_for(session, user, case_id, meeting_id, contact_id, data, ctx.now())

    @post("/slots", status_code=200)
    async def search_slot(
        self, ctx: Ctx, user: CurrentUser, case_id: PathId, data: JSONBody[SlotSearchIn]
    ) -> SlotSearchOut:
        """The earliest time that suits everyone, or why none does and the nearest alternatives."""
        async with ctx.transaction() as session:
            return await slot_search.search_slot(session, user, case_id, data, ctx.now())
