"""Meetings: listing, placing by hand, moving, confirming, cancelling, marking held,
recording answers, and the slot search. Every change bumps SEQUENCE where a calendar
client must notice it, queues the messages it causes in the same transaction, and is
audited."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from calendars.slots import (
    DEFAULT_OFFICE_HOURS,
    ChildWishes,
    Interval,
    Participant,
    ParticipantKind,
)
from calendars.slots import WeeklyWindow as SlotWindow
from calendars.workdays import Closure
from calendars.zone import clock_time, local_date
from coordination import audit
from coordination.access.rules import case_for
from coordination.changes import Change
from coordination.domain import AuditAction, Role, Sector
from coordination.errors import InputError, not_found
from coordination.models import Case, Contact, Meeting, MeetingParticipant, Plan, Unit, User
from coordination.outbox import queue as outbox
from coordination.scheduling.enums import OPEN_STATUSES, AnswerChannel, MeetingStatus, ParticipantAnswer
from coordination.schemas import (
    AnswerIn,
    MeetingIn,
    MeetingOut,
    MeetingPatch,
    ParticipantOut,
)

#: Family parties and the caseworker must attend; partners and the trusted person are
#: invited too, but a slot may be found without them (the answer names who cannot come).
REQUIRED_ROLES = frozenset({Role.PARENT, Role.CHILD, Role.CASEWORKER})


def new_uid() -> str:
    return f"{uuid.uuid4()}@samhandling"


def participant_for(contact: Contact, busy: Sequence[Interval] = ()) -> Participant:
    """A contact as the slot finder sees them."""
    role = contact.role
    if role is Role.CHILD:
        kind = ParticipantKind.CHILD
    elif contact.sector is Sector.FAMILY:
        kind = ParticipantKind.FAMILY
    else:
        kind = ParticipantKind.PROFESSIONAL
    windows = tuple(
        SlotWindow(int(str(w["weekday"])), clock_time(str(w["start"])), clock_time(str(w["end"])))
        for w in contact.availability
    )
    return Participant(
        id=str(contact.id),
        label=f"{contact.role_label or role.value}",
        kind=kind,
        required=role in REQUIRED_ROLES,
        availability=windows or None,
        busy=tuple(busy),
    )


def child_wishes_of(plan: Plan | None) -> ChildWishes | None:
    if plan is None or not plan.child_wishes:
        return None
    wishes = plan.child_wishes

    def get(name: str) -> time | None:
        value = wishes.get(name)
        return clock_time(str(value)) if value else None

    return ChildWishes(
        not_before=get("not_before"), not_after=get("not_after"), after_school=get("after_school")
    )


def office_hours_of(plan: Plan | None) -> tuple[SlotWindow, ...]:
    """The plan's own office hours when it sets them (e.g. evening hours for working families)."""
    windows = (plan.rules.get("office_hours") if plan else None) or []
    if not isinstance(windows, list) or not windows:
        return DEFAULT_OFFICE_HOURS
    return tuple(
        SlotWindow(int(w["weekday"]), clock_time(str(w["start"])), clock_time(str(w["end"]))) for w in windows
    )


def closures_of(unit: Unit, plan: Plan | None) -> tuple[Closure, ...]:
    ranges = [*unit.closures, *(plan.closures if plan else [])]
    return tuple(
        Closure(
            date.fromisoformat(str(r["first"])), date.fromisoformat(str(r["last"])), str(r.get("label", ""))
        )
        for r in ranges
    )


# --- reading ---------------------------------------------------------------------------


async def participants_of(
    session: AsyncSession, meeting_ids: Sequence[int]
) -> dict[int, list[tuple[MeetingParticipant, Contact]]]:
    if not meeting_ids:
        return {}
    rows = await session.exec(
        select(MeetingParticipant, Contact)
        .join(Contact, col(Contact.id) == MeetingParticipant.contact_id)
        .where(col(MeetingParticipant.meeting_id).in_(meeting_ids))
        .order_by(col(MeetingParticipant.meeting_id), col(Contact.id))
    )
    result: dict[int, list[tuple[MeetingParticipant, Contact]]] = {}
    for participant, contact in rows.all():
        result.setdefault(participant.meeting_id, []).append((participant, contact))
    return result


def meeting_out(meeting: Meeting, participants: Sequence[tuple[MeetingParticipant, Contact]]) -> MeetingOut:
    assert meeting.id is not None
    return MeetingOut(
        id=meeting.id,
        uid=meeting.uid,
        kind=meeting.kind,
        series_key=meeting.series_key,
        start=meeting.start,
        end=meeting.end,
        place=meeting.place,
        video_link=meeting.video_link,
        agenda=meeting.agenda,
        status=meeting.status,
        sequence=meeting.ical_sequence,
        parents_told=meeting.parents_told,
        pinned=meeting.pinned,
        participants=[
            ParticipantOut(
                contact_id=c.id or 0,
                name=c.name,
                role=c.role,
                sector=c.sector,
                answer=p.partstat,
            )
            for p, c in participants
        ],
    )


async def case_meetings(session: AsyncSession, case_id: int) -> list[Meeting]:
    rows = await session.exec(
        select(Meeting).where(Meeting.case_id == case_id).order_by(col(Meeting.start), col(Meeting.id))
    )
    return list(rows.all())


async def meetings_out(session: AsyncSession, meetings: Sequence[Meeting]) -> list[MeetingOut]:
    people = await participants_of(session, [m.id for m in meetings if m.id is not None])
    return [meeting_out(m, people.get(m.id or 0, [])) for m in meetings]


async def list_meetings(session: AsyncSession, user: User, case_id: int) -> list[MeetingOut]:
    await case_for(session, user, case_id)
    return await meetings_out(session, await case_meetings(session, case_id))


async def meeting_of_case(session: AsyncSession, case_id: int, meeting_id: int) -> Meeting:
    meeting = await session.get(Meeting, meeting_id)
    if meeting is None or meeting.case_id != case_id:
        raise not_found("meeting", meeting_id)
    return meeting


# --- validation ------------------------------------------------------------------------


async def chosen_contacts(
    session: AsyncSession, case_id: int, ids: Sequence[int], field: str
) -> list[Contact]:
    contacts = []
    for contact_id in dict.fromkeys(ids):
        contact = await session.get(Contact, contact_id)
        if contact is None or contact.case_id != case_id:
            raise InputError(field, f"contact {contact_id} is not a contact of this case")
        if not contact.active:
            raise InputError(field, f"contact {contact_id} is no longer active in this case")
        contacts.append(contact)
    return contacts


def _check_times(start: datetime, end: datetime, plan: Plan | None, now: datetime) -> None:
    for name, value in (("start", start), ("end", end)):
        if value.tzinfo is None:
            raise InputError(name, "give a time zone offset, e.g. 2027-01-12T09:00:00+01:00")
    if end <= start:
        raise InputError("end", "a meeting must end after it starts")
    if end - start > timedelta(hours=12):
        raise InputError("end", "a meeting lasts at most 12 hours")
    if start < now:
        raise InputError("start", "a meeting cannot be placed in the past")
    if plan is not None:
        first, last = plan.start_date, plan.expected_end
        if not first <= local_date(start) <= last:
            raise InputError("start", f"the meeting must lie within the plan ({first} – {last})")


async def plan_of(session: AsyncSession, case_id: int) -> Plan | None:
    return (await session.exec(select(Plan).where(Plan.case_id == case_id))).first()


# --- changes ---------------------------------------------------------------------------


async def set_participants(session: AsyncSession, meeting: Meeting, contacts: Sequence[Contact]) -> None:
    assert meeting.id is not None
    keep = {c.id for c in contacts}
    await session.exec(
        delete(MeetingParticipant).where(
            col(MeetingParticipant.meeting_id) == meeting.id,
            col(MeetingParticipant.contact_id).not_in(keep),
        )
    )
    existing = await session.exec(
        select(MeetingParticipant.contact_id).where(MeetingParticipant.meeting_id == meeting.id)
    )
    have = set(existing.all())
    for contact in contacts:
        if contact.id not in have:
            session.add(MeetingParticipant(meeting_id=meeting.id, contact_id=contact.id or 0))


def _audit(
    session: AsyncSession,
    case: Case,
    user: User | None,
    action: AuditAction,
    meeting: Meeting,
    now: datetime,
    **detail: object,
) -> None:
    """Every change to a meeting is audited with its kind and SEQUENCE, and shows in feeds."""
    change = Change.in_case(session, case, user if user and user.id else audit.SYSTEM, now)
    change.record(action, f"meeting:{meeting.id}", {"kind": meeting.kind, "sequence": meeting.ical_sequence, **detail},
                  feeds=True)


async def create_meeting(
    session: AsyncSession, user: User, case_id: int, data: MeetingIn, now: datetime
) -> MeetingOut:
    case = await case_for(session, user, case_id)
    plan = await plan_of(session, case_id)
    _check_times(data.start, data.end, plan, now)
    contacts = await chosen_contacts(session, case_id, data.participant_ids, "participant_ids")
    meeting = Meeting(
        case_id=case_id,
        uid=new_uid(),
        kind=data.kind,
        start=data.start,
        end=data.end,
        place=data.place,
        video_link=data.video_link,
        agenda=data.agenda,
        status=MeetingStatus.CONFIRMED if data.confirm else MeetingStatus.PROPOSED,
        pinned=True,
        created_at=now,
        updated_at=now,
    )
    session.add(meeting)
    await session.flush()
    await set_participants(session, meeting, contacts)
    _audit(session, case, user, AuditAction.MEETING_CREATED, meeting, now)
    if meeting.status is MeetingStatus.CONFIRMED:
        await outbox.meeting_announced(session, case, meeting, now)
    return meeting_out(meeting, (await participants_of(session, [meeting.id or 0])).get(meeting.id or 0, []))


def cancel(meeting: Meeting, now: datetime) -> None:
    """Cancelled meetings leave the plan's series, so a revision may plan a new one in
    their place; the row itself stays (as STATUS:CANCELLED in feeds for 30 days)."""
    meeting.status = MeetingStatus.CANCELLED
    meeting.cancelled_at = now
    meeting.series_key = None
    meeting.ical_sequence += 1
    meeting.updated_at = now


def _is_open(meeting: Meeting) -> bool:
    return meeting.status in OPEN_STATUSES


async def update_meeting(
    session: AsyncSession, user: User, case_id: int, meeting_id: int, patch: MeetingPatch, now: datetime
) -> MeetingOut:
    """Moving or changing a meeting raises SEQUENCE and tells everyone invited."""
    case = await case_for(session, user, case_id)
    meeting = await meeting_of_case(session, case_id, meeting_id)
    if not _is_open(meeting):
        raise InputError("status", f"a {meeting.status} meeting cannot be changed")
    start = patch.start if isinstance(patch.start, datetime) else meeting.start
    end = patch.end if isinstance(patch.end, datetime) else meeting.end
    if isinstance(patch.start, datetime) and not isinstance(patch.end, datetime):
        end = start + (meeting.end - meeting.start)
    moved = (start, end) != (meeting.start, meeting.end)
    if moved:
        _check_times(start, end, await plan_of(session, case_id), now)
    previous_start = meeting.start
    visible_change = moved
    for name in ("place", "video_link", "agenda"):
        value = getattr(patch, name)
        if isinstance(value, str) and value != getattr(meeting, name):
            setattr(meeting, name, value)
            visible_change = True
    if isinstance(patch.parents_told, bool):
        meeting.parents_told = patch.parents_told
    if isinstance(patch.participant_ids, list):
        contacts = await chosen_contacts(session, case_id, patch.participant_ids, "participant_ids")
        await set_participants(session, meeting, contacts)
        visible_change = True
    meeting.start, meeting.end = start, end
    if visible_change:
        meeting.ical_sequence += 1
    meeting.pinned = meeting.pinned or moved
    meeting.updated_at = now
    session.add(meeting)
    _audit(
        session,
        case,
        user,
        AuditAction.MEETING_MOVED if moved else AuditAction.MEETING_UPDATED,
        meeting,
        now,
        previous_start=previous_start.isoformat() if moved else None,
    )
    if meeting.status is MeetingStatus.CONFIRMED and visible_change:
        await outbox.meeting_updated(session, case, meeting, now)
    return meeting_out(meeting, (await participants_of(session, [meeting_id])).get(meeting_id, []))


async def set_status(
    session: AsyncSession, user: User, case_id: int, meeting_id: int, status: MeetingStatus, now: datetime
) -> MeetingOut:
    """confirm → invitations go out; cancel → cancellations to everyone invited; held → done."""
    case = await case_for(session, user, case_id)
    meeting = await meeting_of_case(session, case_id, meeting_id)
    allowed = {
        MeetingStatus.CONFIRMED: (MeetingStatus.PROPOSED,),
        MeetingStatus.CANCELLED: (MeetingStatus.PROPOSED, MeetingStatus.CONFIRMED),
        MeetingStatus.HELD: (MeetingStatus.CONFIRMED, MeetingStatus.PROPOSED),
    }[status]
    if meeting.status not in allowed:
        raise InputError("status", f"a {meeting.status} meeting cannot become {status}")
    if status is MeetingStatus.HELD and meeting.start > now:
        raise InputError("status", "a meeting cannot be marked held before it has started")
    was_confirmed = meeting.status is MeetingStatus.CONFIRMED
    meeting.status = status
    if status is MeetingStatus.CONFIRMED:
        meeting.pinned = True
    if status is MeetingStatus.CANCELLED:
        cancel(meeting, now)
    meeting.updated_at = now
    session.add(meeting)
    _audit(session, case, user, AuditAction(f"meeting.{status}"), meeting, now)
    if status is MeetingStatus.CONFIRMED:
        await outbox.meeting_announced(session, case, meeting, now)
    elif status is MeetingStatus.CANCELLED and was_confirmed:
        await outbox.meeting_cancelled(session, case, meeting, now)
    elif status is MeetingStatus.CANCELLED:
        await outbox.withdraw_pending(session, meeting, now, "the meeting was cancelled before it was confirmed")
    return meeting_out(meeting, (await participants_of(session, [meeting_id])).get(meeting_id, []))


async def record_answer(
    session: AsyncSession, meeting: Meeting, contact_id: int, answer: ParticipantAnswer, now: datetime, by: User | str,
    *, via: AnswerChannel,
) -> None:
    """An answer to an invitation: by the participant's link, their calendar's reply, or recorded
    by the coordinator. The one place an answer is written, whichever way it came."""
    participant = await session.get(MeetingParticipant, (meeting.id, contact_id))
    if participant is None:
        raise InputError("contact_id", f"contact {contact_id} is not invited to this meeting")
    participant.partstat = answer
    participant.answered_at = now
    participant.answered_via = via
    session.add(participant)
    # An answer changes what calendars show (the attendee's PARTSTAT) without a new SEQUENCE
    # (RFC 5546: a reply is not a reschedule); DTSTAMP/LAST-MODIFIED follow updated_at.
    meeting.updated_at = now
    session.add(meeting)
    case = await session.get(Case, meeting.case_id)
    assert case is not None
    change = Change.in_case(session, case, by, now)
    change.record(AuditAction.MEETING_ANSWERED, f"meeting:{meeting.id}",
                  {"contact": contact_id, "answer": answer, "via": via.value}, feeds=True)


async def answer_for(
    session: AsyncSession,
    user: User,
    case_id: int,
    meeting_id: int,
    contact_id: int,
    data: AnswerIn,
    now: datetime,
) -> MeetingOut:
    await case_for(session, user, case_id)
    meeting = await meeting_of_case(session, case_id, meeting_id)
    await record_answer(session, meeting, contact_id, data.answer, now, user, via=AnswerChannel.COORDINATOR)
    return meeting_out(meeting, (await participants_of(session, [meeting_id])).get(meeting_id, []))
