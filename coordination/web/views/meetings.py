"""The meeting plan: the meetings by month, one meeting, and the slot finder's advice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from calendars.slots import Rule
from coordination.access.rules import case_for
from coordination.cases import contacts as contact_service
from coordination.consent.texts import contact_label
from coordination.models import Alert, Case, Contact, MeetingParticipant, User
from coordination.outbox.alerts import proposed_time
from coordination.scheduling import meetings, slot_search
from coordination.scheduling.enums import MeetingStatus, ParticipantAnswer
from coordination.scheduling.slot_texts import explain
from coordination.schemas import MeetingOut
from coordination.web import texts as t
from coordination.web.views.common import NB, OPEN, names_of, oslo_instant
from notifications.messages import meeting_kind_name
from notifications.ports import AlertKind


@dataclass(frozen=True, slots=True)
class Answer:
    contact_id: int
    name: str
    answer: str
    tone: str
    via: str = ""  # how the answer came: by the link, the calendar's reply, or recorded here


_ANSWER_TONE = {ParticipantAnswer.ACCEPTED: "ok", ParticipantAnswer.DECLINED: "bad",
                ParticipantAnswer.TENTATIVE: "warn", ParticipantAnswer.NEEDS_ACTION: "neutral"}
_STATUS_TONE = {MeetingStatus.PROPOSED: "warn", MeetingStatus.CONFIRMED: "ok", MeetingStatus.CANCELLED: "bad",
                MeetingStatus.HELD: "neutral"}


@dataclass(frozen=True, slots=True)
class MeetingView:
    id: int
    kind: str
    status: str
    status_text: str
    tone: str
    when: str
    date_value: str
    time_value: str
    place: str
    agenda: str
    answers: list[Answer]
    answered: str
    past: bool
    can_confirm: bool
    can_cancel: bool
    can_move: bool
    can_mark_held: bool
    #: Other times participants proposed in their calendars (iTIP COUNTER), not yet resolved.
    proposals: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MonthGroup:
    heading: str
    meetings: list[MeetingView]


def meeting_view(meeting: MeetingOut, now: datetime, names: Mapping[int, str]) -> MeetingView:
    local = t.local(meeting.start)
    answers = [Answer(p.contact_id, names.get(p.contact_id, p.name), t.ANSWER.get(p.answer, p.answer),
                      _ANSWER_TONE.get(p.answer, "neutral")) for p in meeting.participants]
    accepted = sum(1 for p in meeting.participants if p.answer is ParticipantAnswer.ACCEPTED)
    is_open = meeting.status in OPEN
    return MeetingView(
        id=meeting.id,
        kind=meeting_kind_name(meeting.kind, NB),
        status=meeting.status,
        status_text=t.MEETING_STATUS.get(meeting.status, meeting.status),
        tone=_STATUS_TONE.get(meeting.status, "neutral"),
        when=t.span(meeting.start, meeting.end),
        date_value=local.date().isoformat(),
        time_value=f"{local:%H:%M}",
        place=", ".join(p for p in (meeting.place, meeting.video_link) if p),
        agenda=meeting.agenda,
        answers=answers,
        answered=f"{accepted} av {len(answers)} kommer",
        past=meeting.start <= now,
        can_confirm=meeting.status is MeetingStatus.PROPOSED and meeting.start > now,
        can_cancel=is_open,
        can_move=is_open,
        can_mark_held=is_open and meeting.start <= now,
    )


async def timeline(session: AsyncSession, user: User, case_id: int, now: datetime) -> list[MonthGroup]:
    listed = await meetings.list_meetings(session, user, case_id)
    names = names_of(await contact_service.list_contacts(session, user, case_id))
    groups: list[MonthGroup] = []
    for meeting in listed:
        heading = t.month_heading(meeting.start)
        if not groups or groups[-1].heading != heading:
            groups.append(MonthGroup(heading, []))
        groups[-1].meetings.append(meeting_view(meeting, now, names))
    return groups


async def one_meeting(session: AsyncSession, user: User, case_id: int, meeting_id: int, now: datetime
                      ) -> MeetingView:
    listed = await meetings.list_meetings(session, user, case_id)
    names = names_of(await contact_service.list_contacts(session, user, case_id))
    for meeting in listed:
        if meeting.id == meeting_id:
            return await _came_back(session, meeting_view(meeting, now, names), case_id)
    from coordination.errors import not_found

    raise not_found("meeting", meeting_id)


async def _came_back(session: AsyncSession, view: MeetingView, case_id: int) -> MeetingView:
    """How each answer came, and the times proposed from calendars (coordination.replies)."""
    rows = await session.exec(select(MeetingParticipant).where(MeetingParticipant.meeting_id == view.id))
    via = {row.contact_id: t.ANSWER_VIA.get(row.answered_via, "") for row in rows.all()}
    counters = await session.exec(select(Alert).where(
        Alert.case_id == case_id, Alert.kind == AlertKind.COUNTER_PROPOSED, col(Alert.resolved_at).is_(None)))
    names = {a.contact_id: a.name for a in view.answers}
    proposals = tuple(f"{names.get(int(str(a.detail.get('contact') or 0)), '')}: {proposed_time(a.detail)}"
                      for a in counters.all() if a.detail.get("meeting") == view.id)
    return replace(view, answers=[replace(a, via=via.get(a.contact_id, "")) for a in view.answers],
                   proposals=proposals)


@dataclass(frozen=True, slots=True)
class Alternative:
    date_value: str
    time_value: str
    text: str


@dataclass(frozen=True, slots=True)
class SlotAdvice:
    """The slot finder's answer for a meeting: does a time fit, and if not, why and what does."""

    asked: str
    fits: bool
    found: Alternative | None
    absent: list[str]
    lines: list[str]
    alternatives: list[Alternative] = field(default_factory=list)


def _alternative(start: datetime, text: str) -> Alternative:
    local = t.local(start)
    return Alternative(local.date().isoformat(), f"{local:%H:%M}", text)


async def plan_period(session: AsyncSession, case_id: int) -> tuple[date, date] | None:
    """The plan's first and last day: meetings must lie inside them."""
    plan = await meetings.plan_of(session, case_id)
    return (plan.start_date, plan.expected_end) if plan else None


async def slot_advice(
    session: AsyncSession, user: User, case_id: int, meeting_id: int, window_start: datetime,
    window_end: datetime, now: datetime, asked: str, *, exact: bool = False,
) -> SlotAdvice:
    """Ask the slot finder about a window for this meeting's participants, with the meeting's
    own time left out of their busy times (a meeting never blocks its own move). ``exact``
    asks about one start time only; the window then is not a rule worth naming."""
    case = await case_for(session, user, case_id)
    meeting = await meetings.meeting_of_case(session, case_id, meeting_id)
    people = [c for _, c in (await meetings.participants_of(session, [meeting_id])).get(meeting_id, [])
              if c.active]
    return await advice_for(session, case, people, window_start, window_end, meeting.end - meeting.start, now,
                            asked, exact=exact, exclude_meeting_ids=[meeting_id])


async def advice_for(
    session: AsyncSession, case: Case, people: Sequence[Contact], window_start: datetime, window_end: datetime,
    duration: timedelta, now: datetime, asked: str, *, exact: bool = False, exclude_meeting_ids: Sequence[int] = (),
) -> SlotAdvice:
    """The slot finder's advice for ``people`` over a window within the plan: the first time
    that suits, or what blocks and the nearest alternatives (a new meeting's form asks this
    too). ``exclude_meeting_ids`` are meetings that do not block (one being moved)."""
    plan = await meetings.plan_of(session, case.id or 0)
    if plan is not None:
        first = oslo_instant(plan.start_date, time(0))
        last = oslo_instant(plan.expected_end + timedelta(days=1), time(0))
        field_name = "dato" if exact else "fra"
        if window_start >= last or (window_end if not exact else window_start) < first:
            raise t.FormError(field_name, f"Møtet må ligge innenfor tiltaksplanen: {t.day(plan.start_date)} – "
                                          f"{t.day(plan.expected_end)}.")
        window_start, window_end = max(window_start, first), min(window_end, last)
    window_end = max(window_end, window_start + duration)
    result = await slot_search.search_for(session, case, people, window_start, window_end, duration, now,
                                          exclude_meeting_ids=exclude_meeting_ids)
    labels = {str(c.id): contact_label(c.name, c.role, c.role_label, NB) for c in people}
    absent = [labels.get(a, a) for a in result.absent]
    if result.slot is not None:
        found = _alternative(result.slot.start, t.span(result.slot.start, result.slot.end))
        return SlotAdvice(asked, not absent, found, absent, [])
    assert result.explanation is not None
    explanation = result.explanation
    if exact:
        # One start time asked about: "outside the window" and "excludes 1 of 1" say nothing.
        explanation = replace(
            explanation,
            blockers=tuple(b for b in explanation.blockers if b.constraint.rule is not Rule.WINDOW),
            alternatives=tuple(
                replace(a, gives_up=tuple(c for c in a.gives_up if c.rule is not Rule.WINDOW))
                for a in explanation.alternatives
            ),
        )
    lines = explain(replace(explanation, alternatives=()), labels)
    if exact:
        lines = [line.split(" – utelukker ")[0] for line in lines]
    alternatives = [
        _alternative(a.start, explain(replace(explanation, blockers=(), alternatives=(a,)), labels)[0]
                     .replace("Alternativ ", "", 1))
        for a in explanation.alternatives
    ]
    return SlotAdvice(asked, False, None, [], lines, alternatives)
