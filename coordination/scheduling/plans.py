"""The plan (tiltaksplan) and the schedule it implies.

Creating or revising a plan asks ``calendars`` for the schedule, then writes it:
held, pinned and past meetings stay as they were; future unheld ones are moved,
added or cancelled to match. Meetings a revision moves after they were announced get
an update with a raised SEQUENCE; meetings it drops get a cancellation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import msgspec
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from calendars.planner import plan_schedule
from calendars.schedule import (
    Meeting as PlannedMeeting,
)
from calendars.schedule import (
    MeetingKind,
    MeetingRef,
    PlanMember,
    PlanSpec,
    Schedule,
    ScheduleRules,
)
from calendars.slots import WeeklyWindow as SlotWindow
from calendars.workdays import CalendarInputError
from calendars.zone import clock_minutes, clock_time
from coordination.access.rules import case_for
from coordination.changes import Change
from coordination.consent.policy import birthday_in
from coordination.domain import MEASURES_END_AGE, AuditAction, MeasureType, Role
from coordination.errors import InputError
from coordination.models import Case, Contact, Meeting, MeetingParticipant, Plan, PlanRevision, Unit, User
from coordination.outbox import alerts
from coordination.outbox import queue as outbox
from coordination.scheduling.enums import MeetingStatus
from coordination.scheduling.meetings import (
    cancel,
    case_meetings,
    child_wishes_of,
    closures_of,
    meetings_out,
    new_uid,
    participant_for,
    participants_of,
    plan_of,
    set_participants,
)
from coordination.scheduling.slot_search import busy_during_measures, busy_of
from coordination.schemas import (
    ChildWishesIn,
    ClosureIn,
    GoalIn,
    MeasureIn,
    PlanIn,
    PlanOut,
    RulesIn,
    UnschedulableOut,
)
from notifications.ports import AlertKind


def rules_from(data: RulesIn) -> ScheduleRules:
    rules = ScheduleRules()
    changes: dict[str, object] = {}
    for name in ("startup_within_days", "weekly_status", "main_evaluation_months", "child_talks"):
        value = getattr(data, name)
        if value is not msgspec.UNSET:
            changes[name] = value
    for name in ("mini_evaluation_weeks", "child_talk_days_before"):
        value = getattr(data, name)
        if value is not msgspec.UNSET:
            changes[name] = tuple(value)
    if data.office_hours is not msgspec.UNSET:
        changes["office_hours"] = tuple(
            SlotWindow(w.weekday, clock_time(w.start), clock_time(w.end)) for w in data.office_hours
        )
    if data.durations is not msgspec.UNSET:
        for kind, minutes in data.durations.items():
            changes[f"{kind}_duration"] = timedelta(minutes=minutes)
    return replace(rules, **changes)  # type: ignore[arg-type]


def _ref(text: str | None) -> MeetingRef | None:
    if not text or "#" not in text:
        return None
    kind, number = text.split("#", 1)
    return MeetingRef(MeetingKind(kind), int(number))


async def _members(session: AsyncSession, case_id: int, member_ids: Sequence[int] | None) -> list[Contact]:
    rows = await session.exec(select(Contact).where(Contact.case_id == case_id, Contact.active == True))  # noqa: E712
    active = {c.id: c for c in rows.all()}
    if member_ids is None:
        return list(active.values())
    members = []
    for contact_id in dict.fromkeys(member_ids):
        if contact_id not in active:
            raise InputError("member_ids", f"contact {contact_id} is not an active contact of this case")
        members.append(active[contact_id])
    return members


def _existing(
    meetings: Sequence[Meeting], people: dict[int, list[tuple[MeetingParticipant, Contact]]]
) -> list[PlannedMeeting]:
    result = []
    for meeting in meetings:
        if meeting.series_key is None or meeting.status is MeetingStatus.CANCELLED:
            continue
        result.append(
            PlannedMeeting(
                kind=meeting.kind,
                sequence=meeting.series_no,
                start=meeting.start,
                end=meeting.end,
                participants=tuple(str(c.id) for _, c in people.get(meeting.id or 0, [])),
                before=_ref(meeting.before_key),
                held=meeting.status is MeetingStatus.HELD,
                pinned=meeting.pinned,
            )
        )
    return result


def _check_span(case: Case, data: PlanIn) -> None:
    """A plan lies within the child's measures: from birth until the child turns 25. Besides
    being the law, this bounds the schedule computed in the request (a plan over centuries took
    the server's time for many seconds)."""
    birth = case.child_birth_date
    last = birthday_in(birth, birth.year + MEASURES_END_AGE)
    if data.start_date < birth:
        raise InputError("start_date", "the plan cannot start before the child was born")
    if data.expected_end >= last:
        raise InputError("expected_end", f"child welfare measures end when the child turns 25 ({last})")


async def upsert_plan(
    session: AsyncSession, user: User, case_id: int, data: PlanIn, now: datetime
) -> PlanOut:
    """Create the plan, or revise it: a new revision, and the schedule re-planned from now."""
    case = await case_for(session, user, case_id)
    unit = await session.get(Unit, case.unit_id)
    assert unit is not None and user.id is not None
    members = await _members(session, case_id, data.member_ids)
    await _check_measures_and_closures(session, case_id, data)
    _check_span(case, data)
    _check_goals(data)
    plan, fields = await _save_revision(session, case_id, data, members, now)
    assert plan.id is not None
    schedule = await _replan(session, case, unit, plan, members, data, now)
    session.add(
        PlanRevision(
            plan_id=plan.id,
            revision=plan.revision,
            snapshot=msgspec.to_builtins({**fields, "revision": plan.revision}),
            recorded_by_user_id=user.id,
            recorded_at=now,
        )
    )
    change = Change.in_case(session, case, user, now)
    change.record(
        AuditAction.PLAN_CREATED if plan.revision == 1 else AuditAction.PLAN_REVISED,
        f"plan:{plan.id}",
        {"revision": plan.revision, "meetings": len(schedule.planned), "unschedulable": len(schedule.unschedulable)},
        feeds=True,
    )
    await _alert_unschedulable(session, case, schedule, now)
    return await plan_out(session, plan, schedule)


def _check_goals(data: PlanIn) -> None:
    """A goal's deadline falls within the plan: it is followed up at the plan's evaluations."""
    for index, goal in enumerate(data.smart_goals):
        if goal.deadline is not None and not data.start_date <= goal.deadline <= data.expected_end:
            raise InputError(f"smart_goals[{index}].deadline",
                             f"a goal's deadline must lie within the plan ({data.start_date} – {data.expected_end})")


async def _check_measures_and_closures(session: AsyncSession, case_id: int, data: PlanIn) -> None:
    """A measure names active contacts of the case, and its weekly times end after they start;
    a closure ends on or after its first day."""
    for index, measure in enumerate(data.measures):
        for number, window in enumerate(measure.weekly):
            if clock_minutes(window.end) <= clock_minutes(window.start):
                raise InputError(f"measures[{index}].weekly[{number}].end", "a weekly time must end after it starts")
        for contact_id in measure.contact_ids:
            if contact_id not in {m.id for m in await _members(session, case_id, None)}:
                raise InputError(
                    f"measures[{index}].contact_ids",
                    f"contact {contact_id} is not an active contact of this case",
                )
    for index, closure in enumerate(data.closures):
        if closure.last < closure.first:
            raise InputError(f"closures[{index}].last", "a closure must end on or after its first day")


async def _save_revision(
    session: AsyncSession, case_id: int, data: PlanIn, members: Sequence[Contact], now: datetime
) -> tuple[Plan, dict[str, object]]:
    """The plan as ``data`` says, as its first or its next revision; with the fields saved."""
    plan = await plan_of(session, case_id)
    fields = {
        "start_date": data.start_date,
        "expected_end": data.expected_end,
        "day_care": data.day_care,
        "goals": data.goals,
        "smart_goals": msgspec.to_builtins(data.smart_goals),
        "default_place": data.default_place,
        "measures": msgspec.to_builtins(data.measures),
        "member_ids": [m.id for m in members],
        "child_takes_part": data.child_takes_part,
        "child_wishes": msgspec.to_builtins(data.child_wishes) if data.child_wishes else {},
        "closures": msgspec.to_builtins(data.closures),
        "rules": msgspec.to_builtins(data.rules),
    }
    if plan is None:
        plan = Plan(case_id=case_id, revision=1, created_at=now, updated_at=now, **fields)
    else:
        for key, value in fields.items():
            setattr(plan, key, value)
        plan.revision += 1
        plan.updated_at = now
    session.add(plan)
    await session.flush()
    return plan, fields


async def _replan(session: AsyncSession, case: Case, unit: Unit, plan: Plan, members: Sequence[Contact],
                  data: PlanIn, now: datetime) -> Schedule:
    """The schedule from ``now`` on, around the meetings that stay, written to the case's meetings."""
    spec = await _spec(session, case, unit, plan, members, data, now)
    existing_rows = await case_meetings(session, plan.case_id)
    people = await participants_of(session, [m.id for m in existing_rows if m.id is not None])
    try:
        schedule = plan_schedule(spec, now=now, existing=_existing(existing_rows, people))
    except CalendarInputError as error:
        raise InputError(error.field, error.detail) from error
    await _write_schedule(session, case, schedule, existing_rows, plan.default_place, now)
    return schedule


async def _alert_unschedulable(session: AsyncSession, case: Case, schedule: Schedule, now: datetime) -> None:
    """The coordinator hears of every meeting the plan implies that found no time."""
    for missing in schedule.unschedulable:
        await alerts.raise_alert(
            session,
            case,
            AlertKind.NO_FEASIBLE_SLOT,
            f"case:{case.id}:slot:{missing.key}",
            now,
            detail={"meeting": missing.key, "reason": missing.reason.value},
            due_at=missing.window_start,
        )


async def _spec(
    session: AsyncSession,
    case: Case,
    unit: Unit,
    plan: Plan,
    members: Sequence[Contact],
    data: PlanIn,
    now: datetime,
) -> PlanSpec:
    first = data.start_date
    last = data.expected_end + timedelta(days=1)
    measure_busy = busy_during_measures(msgspec.to_builtins(data.measures), first, last)
    window_start = datetime.combine(first, datetime.min.time()).replace(tzinfo=now.tzinfo)
    window_end = datetime.combine(last, datetime.min.time()).replace(tzinfo=now.tzinfo)
    plan_meeting_ids = [
        m.id
        for m in await case_meetings(session, case.id or 0)
        if m.series_key is not None and m.id is not None
    ]
    other_busy = await busy_of(
        session,
        members,
        window_start - timedelta(days=1),
        window_end + timedelta(days=1),
        exclude_meeting_ids=plan_meeting_ids,
    )
    spec_members = tuple(
        PlanMember(
            participant=participant_for(
                c, [*measure_busy.get(c.id or 0, []), *other_busy.get(c.id or 0, [])]
            ),
            role=c.role,
        )
        for c in members
    )
    return PlanSpec(
        start=data.start_date,
        expected_end=data.expected_end,
        members=spec_members,
        ordered=case.measure_type == MeasureType.ORDERED,
        order_date=case.order_date,
        day_care=data.day_care,
        child_takes_part=data.child_takes_part and any(c.role == Role.CHILD for c in members),
        child_wishes=child_wishes_of(plan),
        closures=closures_of(unit, plan),
        rules=rules_from(data.rules),
    )


async def _write_schedule(
    session: AsyncSession, case: Case, schedule: Schedule, rows: Sequence[Meeting], place: str, now: datetime
) -> None:
    by_key = {m.series_key: m for m in rows if m.series_key is not None and m.status is not MeetingStatus.CANCELLED}
    contacts = {
        c.id: c for c in (await session.exec(select(Contact).where(Contact.case_id == case.id))).all()
    }
    wanted = {m.key for m in schedule.meetings}
    for planned in schedule.planned:
        row = by_key.get(planned.key)
        participants = [contacts[int(p)] for p in planned.participants if int(p) in contacts]
        if row is None:
            row = Meeting(
                case_id=case.id or 0,
                uid=new_uid(),
                kind=planned.kind,
                series_key=planned.key,
                series_no=planned.sequence,
                before_key=str(planned.before) if planned.before else None,
                start=planned.start,
                end=planned.end,
                status=MeetingStatus.PROPOSED,
                place=place,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            await session.flush()
            await set_participants(session, row, participants)
            continue
        if (row.start, row.end) != (planned.start, planned.end):
            row.start, row.end = planned.start, planned.end
            row.ical_sequence += 1
            row.updated_at = now
            session.add(row)
            await set_participants(session, row, participants)
            if row.status is MeetingStatus.CONFIRMED:
                await outbox.meeting_updated(session, case, row, now)
    for key, row in by_key.items():
        if key in wanted or row.status is MeetingStatus.HELD or row.start <= now:
            continue
        was_confirmed = row.status is MeetingStatus.CONFIRMED
        cancel(row, now)
        session.add(row)
        if was_confirmed:
            await outbox.meeting_cancelled(session, case, row, now)


async def plan_out(session: AsyncSession, plan: Plan, schedule: Schedule | None = None) -> PlanOut:
    assert plan.id is not None
    meetings = await case_meetings(session, plan.case_id)
    return PlanOut(
        id=plan.id,
        case_id=plan.case_id,
        revision=plan.revision,
        start_date=plan.start_date,
        expected_end=plan.expected_end,
        day_care=plan.day_care,
        goals=plan.goals,
        smart_goals=msgspec.convert(plan.smart_goals, list[GoalIn]),
        default_place=plan.default_place,
        measures=msgspec.convert(plan.measures, list[MeasureIn]),
        member_ids=list(plan.member_ids),
        child_takes_part=plan.child_takes_part,
        child_wishes=msgspec.convert(plan.child_wishes, ChildWishesIn) if plan.child_wishes else None,
        closures=msgspec.convert(plan.closures, list[ClosureIn]),
        rules=msgspec.convert(plan.rules, RulesIn),
        meetings=await meetings_out(session, meetings),
        unschedulable=[
            UnschedulableOut(
                kind=u.kind,
                series_key=u.key,
                window_start=u.window_start,
                window_end=u.window_end,
                reason=u.reason,
                explanation=u.explanation.as_dict() if u.explanation else None,
            )
            for u in (schedule.unschedulable if schedule else ())
        ],
    )


async def get_plan(session: AsyncSession, user: User, case_id: int) -> PlanOut:
    await case_for(session, user, case_id)
    plan = await plan_of(session, case_id)
    if plan is None:
        from coordination.errors import NotFound

        raise NotFound("this case has no plan yet")
    return await plan_out(session, plan)
