"""What a plan's schedule is made of: the plan and its rules, the meetings it implies,
those that could not be placed, and the checks that a plan is well formed
(``calendars.planner`` places the meetings).

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
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from calendars.slots import (
    DEFAULT_ALTERNATIVES_HORIZON,
    DEFAULT_DAY_HOURS,
    DEFAULT_OFFICE_HOURS,
    DEFAULT_STEP,
    ChildWishes,
    Explanation,
    Participant,
    SlotInputError,
    SlotRequest,
    WeeklyWindow,
    validate_participant,
    validate_request,
)
from calendars.workdays import CalendarInputError, Closure
from calendars.zone import local_midnight


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
        return meeting_key(self.kind, self.sequence, self.before)


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
        return meeting_key(self.kind, self.sequence, self.before)


@dataclass(frozen=True, slots=True)
class Schedule:
    """``kept`` are the existing meetings left as they were, ``planned`` the new ones."""

    kept: tuple[Meeting, ...]
    planned: tuple[Meeting, ...]
    unschedulable: tuple[Unschedulable, ...]

    @property
    def meetings(self) -> tuple[Meeting, ...]:
        return tuple(sorted(self.kept + self.planned, key=meeting_order))


def meeting_key(kind: MeetingKind, sequence: int, before: MeetingRef | None) -> str:
    """Stable identity across revisions; a child talk is known by the evaluation it prepares."""
    if kind is MeetingKind.CHILD_TALK and before is not None:
        return f"{kind.value}>{before}"
    return f"{kind.value}#{sequence}"


def meeting_order(m: Meeting) -> tuple[datetime, str]:
    """By start, then by key, so that the same plan always lists its meetings alike."""
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
