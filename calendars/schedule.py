"""The schedule a plan implies (DESIGN.md, "The schedule a plan implies").

Meetings are placed one after another, in a fixed order, each with the slot finder:
the start-up, the mini-evaluation and its child talk, the weekly status meetings in
between, then each main evaluation and the final evaluation, each followed by its
child talk. Every meeting placed becomes busy time for its participants and, when the
family takes part, takes its day away from the family's other meetings. The order and
the finder are deterministic, so the same plan gives the same schedule.

Defaults (all in ``ScheduleRules``, all overridable per plan): start-up on or before
the 14th day after the plan start; weekly status (30 min) in every calendar week after
the start-up's week and before the mini-evaluation's; mini-evaluation 4–6 weeks (28–42
days) after the start-up; main evaluations due every 3 months after the plan start,
each within 14 days from its due date, while that window ends before the final
evaluation's; final evaluation in the 14 days up to and including the plan's end;
child talk 2–7 days before each evaluation when the child takes part. Durations:
start-up 90 min, weekly status 30, mini-evaluation 60, main evaluation 90, child talk
45, final evaluation 90, ad hoc 60.
"""

from __future__ import annotations

import calendar
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta

from calendars.slots import (
    DEFAULT_ALTERNATIVES_HORIZON,
    DEFAULT_DAY_HOURS,
    DEFAULT_OFFICE_HOURS,
    DEFAULT_STEP,
    ChildWishes,
    Explanation,
    Interval,
    Participant,
    ParticipantKind,
    SlotInputError,
    SlotRequest,
    WeeklyWindow,
    find_slot,
    validate_participant,
    validate_request,
)
from calendars.workdays import CalendarInputError, Closure
from calendars.zone import local_date, local_midnight


class ScheduleInputError(CalendarInputError):
    """A plan the API must refuse with 400."""


class MeetingKind(enum.StrEnum):
    STARTUP = "startup"
    WEEKLY_STATUS = "weekly_status"
    MINI_EVALUATION = "mini_evaluation"
    MAIN_EVALUATION = "main_evaluation"
    CHILD_TALK = "child_talk"
    FINAL_EVALUATION = "final_evaluation"
    AD_HOC = "ad_hoc"


EVALUATIONS: frozenset[MeetingKind] = frozenset(
    {MeetingKind.MINI_EVALUATION, MeetingKind.MAIN_EVALUATION, MeetingKind.FINAL_EVALUATION}
)

#: Role names as ``coordination`` spells them; plain strings so that this package
#: stays free of ``coordination``.
FAMILY_ROLES: frozenset[str] = frozenset({"parent", "child", "trusted_person"})
WEEKLY_STATUS_ROLES: frozenset[str] = FAMILY_ROLES | {"caseworker", "interpreter"}
#: The child talk belongs to the child: no parents (DESIGN.md rule 5).
CHILD_TALK_ROLES: frozenset[str] = frozenset({"child", "caseworker", "trusted_person"})


@dataclass(frozen=True, slots=True)
class ScheduleRules:
    """Every default of the plan's schedule; a role set of None means everyone in the plan."""

    startup_within_days: int = 14
    weekly_status: bool = True
    mini_evaluation_weeks: tuple[int, int] = (4, 6)
    main_evaluation_months: int = 3
    main_evaluation_window_days: int = 14
    final_evaluation_window_days: int = 14
    child_talks: bool = True
    child_talk_days_before: tuple[int, int] = (2, 7)
    child_talk_before: frozenset[MeetingKind] = EVALUATIONS
    ordered_max_months: int = 12
    startup_duration: timedelta = timedelta(minutes=90)
    weekly_status_duration: timedelta = timedelta(minutes=30)
    mini_evaluation_duration: timedelta = timedelta(minutes=60)
    main_evaluation_duration: timedelta = timedelta(minutes=90)
    child_talk_duration: timedelta = timedelta(minutes=45)
    final_evaluation_duration: timedelta = timedelta(minutes=90)
    ad_hoc_duration: timedelta = timedelta(minutes=60)
    startup_roles: frozenset[str] | None = None
    weekly_status_roles: frozenset[str] | None = WEEKLY_STATUS_ROLES
    evaluation_roles: frozenset[str] | None = None
    child_talk_roles: frozenset[str] | None = CHILD_TALK_ROLES
    one_family_meeting_per_day: bool = True
    office_hours: tuple[WeeklyWindow, ...] = DEFAULT_OFFICE_HOURS
    day_hours: tuple[time, time] = DEFAULT_DAY_HOURS
    step: timedelta = DEFAULT_STEP
    alternatives_horizon: timedelta = DEFAULT_ALTERNATIVES_HORIZON

    def duration(self, kind: MeetingKind) -> timedelta:
        return {
            MeetingKind.STARTUP: self.startup_duration,
            MeetingKind.WEEKLY_STATUS: self.weekly_status_duration,
            MeetingKind.MINI_EVALUATION: self.mini_evaluation_duration,
            MeetingKind.MAIN_EVALUATION: self.main_evaluation_duration,
            MeetingKind.CHILD_TALK: self.child_talk_duration,
            MeetingKind.FINAL_EVALUATION: self.final_evaluation_duration,
            MeetingKind.AD_HOC: self.ad_hoc_duration,
        }[kind]

    def roles(self, kind: MeetingKind) -> frozenset[str] | None:
        if kind is MeetingKind.STARTUP:
            return self.startup_roles
        if kind is MeetingKind.WEEKLY_STATUS:
            return self.weekly_status_roles
        if kind is MeetingKind.CHILD_TALK:
            return self.child_talk_roles
        return self.evaluation_roles


@dataclass(frozen=True, slots=True)
class PlanMember:
    """Someone who takes part in the plan; ``role`` picks the meetings they are invited to."""

    participant: Participant
    role: str


@dataclass(frozen=True, slots=True)
class PlanSpec:
    """The plan as the schedule sees it. ``day_care`` exempts an ordered measure from the
    one-year limit; members' ``busy`` intervals are their meetings outside this plan."""

    start: date
    expected_end: date
    members: tuple[PlanMember, ...]
    ordered: bool = False
    order_date: date | None = None
    day_care: bool = False
    child_takes_part: bool = True
    child_wishes: ChildWishes | None = None
    closures: tuple[Closure, ...] = ()
    rules: ScheduleRules = field(default_factory=ScheduleRules)


@dataclass(frozen=True, slots=True)
class MeetingRef:
    kind: MeetingKind
    sequence: int

    def __str__(self) -> str:
        return f"{self.kind.value}#{self.sequence}"


@dataclass(frozen=True, slots=True)
class Meeting:
    """A meeting of the plan, planned here or passed in as existing. ``before`` names the
    evaluation a child talk prepares; ``absent`` the optional members who cannot come."""

    kind: MeetingKind
    sequence: int
    start: datetime
    end: datetime
    participants: tuple[str, ...]
    before: MeetingRef | None = None
    held: bool = False
    pinned: bool = False
    absent: tuple[str, ...] = ()

    @property
    def ref(self) -> MeetingRef:
        return MeetingRef(self.kind, self.sequence)

    @property
    def key(self) -> str:
        """Stable identity across revisions; a child talk is known by its evaluation."""
        return _key(self.kind, self.sequence, self.before)


class Reason(enum.StrEnum):
    NO_SLOT = "no_slot"
    WINDOW_PASSED = "window_passed"
    DEPENDS_ON = "depends_on"
    NO_PARTICIPANTS = "no_participants"


@dataclass(frozen=True, slots=True)
class Unschedulable:
    """A meeting the plan implies but that could not be placed, and why."""

    kind: MeetingKind
    sequence: int
    window_start: datetime
    window_end: datetime
    participants: tuple[str, ...]
    reason: Reason
    explanation: Explanation | None = None
    before: MeetingRef | None = None
    depends_on: MeetingRef | None = None

    @property
    def key(self) -> str:
        return _key(self.kind, self.sequence, self.before)


@dataclass(frozen=True, slots=True)
class Schedule:
    """``kept`` are the existing meetings left as they were, ``planned`` the new ones."""

    kept: tuple[Meeting, ...]
    planned: tuple[Meeting, ...]
    unschedulable: tuple[Unschedulable, ...]

    @property
    def meetings(self) -> tuple[Meeting, ...]:
        return tuple(sorted(self.kept + self.planned, key=_meeting_order))


def _key(kind: MeetingKind, sequence: int, before: MeetingRef | None) -> str:
    if kind is MeetingKind.CHILD_TALK and before is not None:
        return f"{kind.value}>{before}"
    return f"{kind.value}#{sequence}"


def _meeting_order(m: Meeting) -> tuple[datetime, str]:
    return (m.start, m.key)


def add_months(day: date, months: int) -> date:
    """Calendar months, clamped to the month's last day (31 Jan + 1 month = 28/29 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def ordered_limit(plan: PlanSpec) -> date | None:
    """The last day an ordered measure may run, or None when no limit applies."""
    if not plan.ordered or plan.day_care or plan.order_date is None:
        return None
    return add_months(plan.order_date, plan.rules.ordered_max_months)


def plan_schedule(plan: PlanSpec, *, now: datetime, existing: Sequence[Meeting] = ()) -> Schedule:
    """The plan's meetings from ``now`` on. Existing meetings that are held, pinned
    (confirmed or moved by a coordinator), ad hoc or already begun are kept as they were
    and anchor what follows; other existing meetings are planned afresh."""
    validate_plan(plan, now)
    return _Planner(plan, now, existing).run()


def revise_schedule(plan: PlanSpec, existing: Sequence[Meeting], *, now: datetime) -> Schedule:
    """A revision: past and held meetings stay, future unheld ones are re-planned."""
    return plan_schedule(plan, now=now, existing=existing)


def validate_plan(plan: PlanSpec, now: datetime | None = None) -> None:
    """Raises ``ScheduleInputError`` naming the first bad field."""
    if now is not None and (now.tzinfo is None or now.utcoffset() is None):
        raise ScheduleInputError("now", "must be a timezone-aware datetime")
    if plan.expected_end <= plan.start:
        raise ScheduleInputError("expected_end", "must be after the plan's start")
    if plan.ordered:
        if plan.order_date is None:
            raise ScheduleInputError("order_date", "is required for an ordered measure")
        limit = ordered_limit(plan)
        if limit is not None and plan.expected_end > limit:
            raise ScheduleInputError(
                "expected_end",
                f"an ordered measure ends at most {plan.rules.ordered_max_months} months "
                f"after the order ({limit.isoformat()}), day care excepted",
            )
    if not plan.members:
        raise ScheduleInputError("members", "a plan needs at least one member")
    seen: set[str] = set()
    for i, member in enumerate(plan.members):
        name = f"members[{i}]"
        try:
            validate_participant(member.participant, f"{name}.participant")
        except SlotInputError as error:
            raise ScheduleInputError(error.field, error.detail) from error
        if member.participant.id in seen:
            raise ScheduleInputError(f"{name}.participant.id", "duplicate member id")
        seen.add(member.participant.id)
    _validate_rules(plan.rules)
    probe = SlotRequest(
        window_start=local_midnight(plan.start),
        window_end=local_midnight(plan.start + timedelta(days=1)),
        duration=timedelta(minutes=1),
        participants=tuple(m.participant for m in plan.members),
        step=plan.rules.step,
        office_hours=plan.rules.office_hours,
        child_wishes=plan.child_wishes,
        closures=plan.closures,
        day_hours=plan.rules.day_hours,
        alternatives_horizon=plan.rules.alternatives_horizon,
    )
    try:
        validate_request(probe)
    except SlotInputError as error:
        field_name = error.field
        if field_name.startswith(("office_hours", "step", "day_hours", "alternatives")):
            field_name = f"rules.{field_name}"
        raise ScheduleInputError(field_name, error.detail) from error


def _validate_rules(rules: ScheduleRules) -> None:
    def positive(name: str, value: int) -> None:
        if value < 1:
            raise ScheduleInputError(f"rules.{name}", "must be at least 1")

    if rules.startup_within_days < 0:
        raise ScheduleInputError("rules.startup_within_days", "must not be negative")
    positive("main_evaluation_months", rules.main_evaluation_months)
    positive("main_evaluation_window_days", rules.main_evaluation_window_days)
    positive("final_evaluation_window_days", rules.final_evaluation_window_days)
    positive("ordered_max_months", rules.ordered_max_months)
    low, high = rules.mini_evaluation_weeks
    if not 1 <= low <= high:
        raise ScheduleInputError("rules.mini_evaluation_weeks", "must be 1 <= first <= last")
    low, high = rules.child_talk_days_before
    if not 1 <= low <= high:
        raise ScheduleInputError("rules.child_talk_days_before", "must be 1 <= first <= last")
    for kind in MeetingKind:
        if rules.duration(kind) <= timedelta(0):
            raise ScheduleInputError(f"rules.{kind.value}_duration", "must be positive")
        if rules.duration(kind) > timedelta(hours=12):
            raise ScheduleInputError(f"rules.{kind.value}_duration", "must be at most 12 hours")


@dataclass(slots=True)
class _Placed:
    meeting: Meeting | None
    unschedulable: Unschedulable | None


class _Planner:
    """Holds what is placed so far: every later search sees it as busy time."""

    def __init__(self, plan: PlanSpec, now: datetime, existing: Sequence[Meeting]) -> None:
        self.plan = plan
        self.rules = plan.rules
        self.now = now
        self.members = {m.participant.id: m for m in plan.members}
        self.family_ids = {
            pid
            for pid, m in self.members.items()
            if m.participant.kind in (ParticipantKind.FAMILY, ParticipantKind.CHILD)
        }
        self.family_days: set[date] = set()
        self.extra_busy: dict[str, list[Interval]] = {pid: [] for pid in self.members}
        # By key, to anchor what follows; the list keeps every one, even if keys repeat.
        self.kept: dict[str, Meeting] = {}
        self.kept_list: list[Meeting] = []
        for meeting in sorted(existing, key=_meeting_order):
            if (
                meeting.held
                or meeting.pinned
                or meeting.kind is MeetingKind.AD_HOC
                or meeting.start < now
            ):
                self.kept.setdefault(meeting.key, meeting)
                self.kept_list.append(meeting)
                self._occupy(meeting)
        self.planned: list[Meeting] = []
        self.unschedulable: list[Unschedulable] = []

    # -- state ------------------------------------------------------------------------

    def _involves_family(self, participants: Sequence[str]) -> bool:
        return any(pid in self.family_ids for pid in participants)

    def _occupy(self, meeting: Meeting) -> None:
        for pid in meeting.participants:
            if pid in self.extra_busy:
                self.extra_busy[pid].append(Interval(meeting.start, meeting.end))
        if self._involves_family(meeting.participants):
            self.family_days.add(local_date(meeting.start))

    def _invited(self, kind: MeetingKind) -> tuple[Participant, ...]:
        roles = self.rules.roles(kind)
        chosen: list[Participant] = []
        for member in self.plan.members:
            p = member.participant
            if p.kind is ParticipantKind.CHILD and not self.plan.child_takes_part:
                continue
            if roles is not None and member.role not in roles:
                continue
            extra = self.extra_busy[p.id]
            chosen.append(replace(p, busy=p.busy + tuple(extra)) if extra else p)
        return tuple(chosen)

    # -- placing one meeting ----------------------------------------------------------

    def _place(
        self,
        kind: MeetingKind,
        sequence: int,
        first: date,
        last: date,
        *,
        before: MeetingRef | None = None,
        avoid: frozenset[date] = frozenset(),
    ) -> _Placed:
        """Search local dates ``first``..``last`` inclusive; does not occupy the result."""
        window_start = local_midnight(first)
        window_end = local_midnight(last + timedelta(days=1))
        participants = self._invited(kind)
        ids = tuple(p.id for p in participants)

        def fail(reason: Reason, explanation: Explanation | None = None) -> _Placed:
            return _Placed(
                None,
                Unschedulable(
                    kind, sequence, window_start, window_end, ids, reason, explanation, before
                ),
            )

        if not participants:
            return fail(Reason.NO_PARTICIPANTS)
        if window_end <= self.now or last < first:
            return fail(Reason.WINDOW_PASSED)
        avoid_dates: frozenset[date] = frozenset()
        if self.rules.one_family_meeting_per_day and self._involves_family(ids):
            avoid_dates = frozenset(self.family_days) | avoid
        result = find_slot(
            SlotRequest(
                window_start=window_start,
                window_end=window_end,
                duration=self.rules.duration(kind),
                participants=participants,
                step=self.rules.step,
                office_hours=self.rules.office_hours,
                child_wishes=self.plan.child_wishes,
                closures=self.plan.closures,
                avoid_dates=avoid_dates,
                day_hours=self.rules.day_hours,
                alternatives_horizon=self.rules.alternatives_horizon,
            ),
            now=self.now,
        )
        if result.slot is None:
            return fail(Reason.NO_SLOT, result.explanation)
        slot = result.slot
        return _Placed(
            Meeting(
                kind,
                sequence,
                slot.start,
                slot.end,
                slot.participants,
                before=before,
                absent=result.absent,
            ),
            None,
        )

    def _commit(self, placed: _Placed) -> Meeting | None:
        if placed.meeting is not None:
            self.planned.append(placed.meeting)
            self._occupy(placed.meeting)
        elif placed.unschedulable is not None:
            self.unschedulable.append(placed.unschedulable)
        return placed.meeting

    def _depends(
        self,
        kind: MeetingKind,
        sequence: int,
        first: date,
        last: date,
        on: MeetingRef,
        before: MeetingRef | None = None,
    ) -> None:
        self.unschedulable.append(
            Unschedulable(
                kind,
                sequence,
                local_midnight(first),
                local_midnight(last + timedelta(days=1)),
                tuple(p.id for p in self._invited(kind)),
                Reason.DEPENDS_ON,
                before=before,
                depends_on=on,
            )
        )

    def _meeting(self, kind: MeetingKind, sequence: int, first: date, last: date) -> Meeting | None:
        """A meeting without a child talk: kept if it exists, else placed and committed."""
        kept = self.kept.get(_key(kind, sequence, None))
        if kept is not None:
            return kept
        return self._commit(self._place(kind, sequence, first, last))

    def _talk_window(self, evaluation_day: date) -> tuple[date, date]:
        low, high = self.rules.child_talk_days_before
        return evaluation_day - timedelta(days=high), evaluation_day - timedelta(days=low)

    def _wants_talk(self, kind: MeetingKind) -> bool:
        return (
            self.rules.child_talks
            and kind in self.rules.child_talk_before
            and self.plan.child_takes_part
            and any(m.participant.kind is ParticipantKind.CHILD for m in self.plan.members)
        )

    def _evaluation(
        self, kind: MeetingKind, sequence: int, first: date, last: date, talk_sequence: int
    ) -> Meeting | None:
        """The evaluation first, then its child talk in the days before; when no talk
        fits, later days of the evaluation's window are tried before giving up the talk."""
        ref = MeetingRef(kind, sequence)
        kept = self.kept.get(_key(kind, sequence, None))
        talk_key = _key(MeetingKind.CHILD_TALK, talk_sequence, ref)
        if not self._wants_talk(kind) or talk_key in self.kept:
            return (
                kept if kept is not None else self._commit(self._place(kind, sequence, first, last))
            )
        if kept is not None:
            if kept.start < self.now:
                return kept  # a talk to prepare a meeting that has begun is moot
            talk_first, talk_last = self._talk_window(local_date(kept.start))
            self._commit(
                self._place(
                    MeetingKind.CHILD_TALK, talk_sequence, talk_first, talk_last, before=ref
                )
            )
            return kept

        first_try: tuple[_Placed, _Placed] | None = None
        cursor = first
        while cursor <= last:
            evaluation = self._place(kind, sequence, cursor, last)
            if evaluation.meeting is None:
                if first_try is None:
                    self._commit(evaluation)
                    self._depends(
                        MeetingKind.CHILD_TALK,
                        talk_sequence,
                        *self._talk_window(last),
                        on=ref,
                        before=ref,
                    )
                    return None
                break
            day = local_date(evaluation.meeting.start)
            talk_first, talk_last = self._talk_window(day)
            talk = self._place(
                MeetingKind.CHILD_TALK,
                talk_sequence,
                talk_first,
                talk_last,
                before=ref,
                avoid=frozenset({day}),
            )
            if talk.meeting is not None:
                self._commit(evaluation)
                self._commit(talk)
                return evaluation.meeting
            if first_try is None:
                first_try = (evaluation, talk)
            cursor = day + timedelta(days=1)
        if first_try is None:  # an empty window: let the search say so
            return self._commit(self._place(kind, sequence, first, last))
        meeting = self._commit(first_try[0])
        self._commit(first_try[1])
        return meeting

    # -- the whole plan ---------------------------------------------------------------

    def run(self) -> Schedule:
        plan, rules = self.plan, self.rules
        evaluations = self._evaluation_windows()
        talk_numbers = {ref: n for n, (ref, _, _) in enumerate(evaluations, start=1)}

        startup_first = plan.start
        startup_last = plan.start + timedelta(days=rules.startup_within_days)
        startup = self._meeting(MeetingKind.STARTUP, 1, startup_first, startup_last)
        startup_ref = MeetingRef(MeetingKind.STARTUP, 1)

        mini_ref = MeetingRef(MeetingKind.MINI_EVALUATION, 1)
        low, high = rules.mini_evaluation_weeks
        anchor = local_date(startup.start) if startup is not None else startup_last
        mini_first = anchor + timedelta(weeks=low)
        mini_last = anchor + timedelta(weeks=high)
        mini: Meeting | None = None
        if startup is None and _key(MeetingKind.MINI_EVALUATION, 1, None) not in self.kept:
            self._depends(MeetingKind.MINI_EVALUATION, 1, mini_first, mini_last, on=startup_ref)
        else:
            mini = self._evaluation(
                MeetingKind.MINI_EVALUATION, 1, mini_first, mini_last, talk_numbers[mini_ref]
            )

        if rules.weekly_status:
            self._weekly_statuses(startup, anchor, mini, mini_last, startup_ref)

        for ref, first, last in evaluations:
            if ref.kind is MeetingKind.MINI_EVALUATION:
                continue
            self._evaluation(ref.kind, ref.sequence, first, last, talk_numbers[ref])

        return Schedule(
            kept=tuple(self.kept_list),
            planned=tuple(sorted(self.planned, key=_meeting_order)),
            unschedulable=tuple(sorted(self.unschedulable, key=lambda u: (u.window_start, u.key))),
        )

    def _weekly_statuses(
        self,
        startup: Meeting | None,
        anchor: date,
        mini: Meeting | None,
        mini_last: date,
        startup_ref: MeetingRef,
    ) -> None:
        """One per calendar week after the start-up's week, before the mini-evaluation's."""
        limit = local_date(mini.start) if mini is not None else mini_last + timedelta(days=1)
        monday = anchor - timedelta(days=anchor.weekday()) + timedelta(weeks=1)
        limit_monday = limit - timedelta(days=limit.weekday())
        sequence = 1
        while monday < limit_monday:
            first, last = monday, monday + timedelta(days=6)
            if startup is None and _key(MeetingKind.WEEKLY_STATUS, sequence, None) not in self.kept:
                self._depends(MeetingKind.WEEKLY_STATUS, sequence, first, last, on=startup_ref)
            else:
                self._meeting(MeetingKind.WEEKLY_STATUS, sequence, first, last)
            monday += timedelta(weeks=1)
            sequence += 1

    def _evaluation_windows(self) -> list[tuple[MeetingRef, date, date]]:
        """Mini first (its window depends on the start-up), then the due mains, then the final."""
        plan, rules = self.plan, self.rules
        final_first = plan.expected_end - timedelta(days=rules.final_evaluation_window_days)
        windows: list[tuple[MeetingRef, date, date]] = [
            (MeetingRef(MeetingKind.MINI_EVALUATION, 1), plan.start, plan.start)
        ]
        sequence = 1
        while True:
            due = add_months(plan.start, sequence * rules.main_evaluation_months)
            last = due + timedelta(days=rules.main_evaluation_window_days - 1)
            if last >= final_first:
                break
            windows.append((MeetingRef(MeetingKind.MAIN_EVALUATION, sequence), due, last))
            sequence += 1
        windows.append(
            (
                MeetingRef(MeetingKind.FINAL_EVALUATION, 1),
                max(final_first, plan.start),
                plan.expected_end,
            )
        )
        return windows
