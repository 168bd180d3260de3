"""Slot search: the busy times of a case's people and the next free slot."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from calendars.slot_finder import find_slot
from calendars.slots import (
    Interval,
    SlotRequest,
    SlotResult,
    weekly_intervals,
)
from calendars.workdays import CalendarInputError
from calendars.zone import clock_time, local_date
from coordination.access.rules import case_for
from coordination.domain import Role
from coordination.errors import InputError
from coordination.models import Case, Contact, Meeting, MeetingParticipant, Unit, User
from coordination.scheduling.enums import OPEN_STATUSES
from coordination.scheduling.meetings import (
    child_wishes_of,
    chosen_contacts,
    closures_of,
    office_hours_of,
    participant_for,
    plan_of,
)
from coordination.scheduling.slot_texts import explain
from coordination.schemas import (
    SlotSearchIn,
    SlotSearchOut,
)

# --- slot search -----------------------------------------------------------------------


async def busy_of(
    session: AsyncSession,
    contacts: Sequence[Contact],
    first: datetime,
    last: datetime,
    exclude_meeting_ids: Sequence[int] = (),
) -> dict[int, list[Interval]]:
    """Each contact's other open meetings in the service between ``first`` and ``last``."""
    ids = [c.id for c in contacts if c.id is not None]
    busy: dict[int, list[Interval]] = {i: [] for i in ids}
    if not ids:
        return busy
    rows = await session.exec(
        select(MeetingParticipant.contact_id, Meeting.start, Meeting.end)
        .join(Meeting, col(Meeting.id) == MeetingParticipant.meeting_id)
        .where(
            col(MeetingParticipant.contact_id).in_(ids),
            col(Meeting.status).in_(OPEN_STATUSES),
            col(Meeting.end) > first,
            col(Meeting.start) < last,
            col(Meeting.id).not_in(list(exclude_meeting_ids) or [-1]),
        )
    )
    for contact_id, start, end in rows.all():
        busy[contact_id].append(Interval(start, end))
    return busy


def busy_during_measures(measures: Sequence[dict[str, Any]], first: date, last: date) -> dict[int, list[Interval]]:
    """The plan's recurring measures (e.g. "milieu therapist Tue/Thu 17:00") as busy time for
    the people taking part, so no meeting is put on top of them."""
    busy: dict[int, list[Interval]] = {}
    for measure in measures:
        for window in measure.get("weekly", []):
            intervals = weekly_intervals(int(window["weekday"]), clock_time(str(window["start"])),
                                         clock_time(str(window["end"])), first, last)
            for contact_id in measure.get("contact_ids", []):
                busy.setdefault(int(contact_id), []).extend(intervals)
    return busy


async def search_for(
    session: AsyncSession, case: Case, people: Sequence[Contact], window_start: datetime, window_end: datetime,
    duration: timedelta, now: datetime, *, exclude_meeting_ids: Sequence[int] = (),
) -> SlotResult:
    """The one slot search, for the API and the meeting page alike: the people's other open
    meetings (but ``exclude_meeting_ids``: a meeting never blocks its own move) and the plan's
    recurring measures as busy time, the child's wishes, the closures and the office hours."""
    plan = await plan_of(session, case.id or 0)
    unit = await session.get(Unit, case.unit_id)
    assert unit is not None
    busy = await busy_of(session, people, window_start - duration, window_end + duration, exclude_meeting_ids)
    if plan is not None:
        first, last = local_date(window_start), local_date(window_end)
        for contact_id, intervals in busy_during_measures(plan.measures, first, last).items():
            if contact_id in busy:
                busy[contact_id].extend(intervals)
    child_in = any(c.role == Role.CHILD for c in people)
    request = SlotRequest(
        window_start=window_start,
        window_end=window_end,
        duration=duration,
        participants=tuple(participant_for(c, busy.get(c.id or 0, [])) for c in people),
        child_wishes=child_wishes_of(plan) if child_in else None,
        closures=closures_of(unit, plan),
        office_hours=office_hours_of(plan),
    )
    try:
        return find_slot(request, now=now)
    except CalendarInputError as error:
        raise InputError(error.field, error.detail) from error


async def search_slot(
    session: AsyncSession, user: User, case_id: int, data: SlotSearchIn, now: datetime
) -> SlotSearchOut:
    case = await case_for(session, user, case_id)
    contacts = await chosen_contacts(session, case_id, data.participant_ids, "participant_ids")
    for name, value in (("window_start", data.window_start), ("window_end", data.window_end)):
        if value.tzinfo is None:
            raise InputError(name, "give a time zone offset")
    result = await search_for(session, case, contacts, data.window_start, data.window_end,
                              timedelta(minutes=data.duration_minutes), now)
    labels = {str(c.id): c.name for c in contacts}
    return SlotSearchOut(
        feasible=result.feasible,
        slot=result.slot.as_dict() if result.slot else None,
        absent=[int(a) for a in result.absent],
        explanation=result.explanation.as_dict() if result.explanation else None,
        explanation_text=explain(result.explanation, labels) if result.explanation else [],
    )
