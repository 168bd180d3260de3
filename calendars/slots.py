"""What the slot finder is asked and what it answers: participants, their windows and
busy time, the rules a slot must keep, the slot or the explanation, and the checks that
a request is well formed (``calendars.slot_finder`` does the search).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from calendars.workdays import CalendarInputError, Closure
from calendars.zone import local_instant

DEFAULT_STEP = timedelta(minutes=15)
#: No meeting starts before or ends after these local times (families are not woken).
DEFAULT_DAY_HOURS = (time(7), time(21))
#: How far beyond the search window an alternative may lie.
DEFAULT_ALTERNATIVES_HORIZON = timedelta(days=28)
#: "Not longer than one year"; a leap year has 366 days.
MAX_WINDOW = timedelta(days=366)


class SlotInputError(CalendarInputError):
    """A slot request the API must refuse with 400."""


class ParticipantKind(enum.StrEnum):
    PROFESSIONAL = "professional"
    FAMILY = "family"
    CHILD = "child"


class Rule(enum.StrEnum):
    """What a constraint is about; the ``rule`` of every explanation entry."""

    WINDOW = "window"
    DAY_HOURS = "day_hours"
    WEEKEND = "weekend"
    HOLIDAY = "holiday"
    CLOSURE = "closure"
    AVOID_DATE = "avoid_date"
    SPACING = "spacing"
    OFFICE_HOURS = "office_hours"
    CHILD_WISH = "child_wish"
    AVAILABILITY = "availability"
    BUSY = "busy"


class Wish(enum.StrEnum):
    NOT_BEFORE = "not_before"
    NOT_AFTER = "not_after"
    AFTER_SCHOOL = "after_school"


@dataclass(frozen=True, slots=True)
class WeeklyWindow:
    """A recurring local time window: ``weekday`` 0 = Monday … 6 = Sunday, naive local times."""

    weekday: int
    start: time
    end: time


DEFAULT_OFFICE_HOURS: tuple[WeeklyWindow, ...] = tuple(
    WeeklyWindow(weekday, time(8), time(16)) for weekday in range(5)
)


@dataclass(frozen=True, slots=True)
class Interval:
    """A half-open span of aware instants."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Participant:
    """Someone the meeting is for. ``availability`` None means no restriction beyond the
    rules; ``busy`` are their other meetings (UTC)."""

    id: str
    label: str
    kind: ParticipantKind
    required: bool = True
    availability: tuple[WeeklyWindow, ...] | None = None
    busy: tuple[Interval, ...] = ()


@dataclass(frozen=True, slots=True)
class ChildWishes:
    """The child's wishes, applied whenever the child takes part.

    ``not_after`` bounds the meeting's *end* ("not after 19:00" = over by 19:00);
    ``after_school`` is a "not before" that holds on school days only: working days
    outside ``school_holidays``.
    """

    not_before: time | None = None
    not_after: time | None = None
    after_school: time | None = None
    school_holidays: tuple[Closure, ...] = ()


@dataclass(frozen=True, slots=True)
class SlotRequest:
    """Everything the finder needs. ``avoid_dates`` are local dates (e.g. days the family
    already has a meeting); ``keep_apart`` are meetings to stay ``min_gap`` away from.
    ``day_hours`` bounds every meeting and every alternative, so that giving up office
    hours never means proposing a meeting at midnight."""

    window_start: datetime
    window_end: datetime
    duration: timedelta
    participants: tuple[Participant, ...]
    step: timedelta = DEFAULT_STEP
    office_hours: tuple[WeeklyWindow, ...] = DEFAULT_OFFICE_HOURS
    child_wishes: ChildWishes | None = None
    closures: tuple[Closure, ...] = ()
    avoid_dates: frozenset[date] = frozenset()
    keep_apart: tuple[Interval, ...] = ()
    min_gap: timedelta = timedelta(0)
    day_hours: tuple[time, time] = DEFAULT_DAY_HOURS
    alternatives_horizon: timedelta = DEFAULT_ALTERNATIVES_HORIZON


@dataclass(frozen=True, slots=True)
class Constraint:
    """One rule as it applies here: per participant, per date or per wish."""

    rule: Rule
    participant: str | None = None
    date: date | None = None
    wish: Wish | None = None
    detail: str | None = None

    def sort_key(self) -> tuple[str, str, str, str, str]:
        return (
            self.rule.value,
            self.participant or "",
            self.date.isoformat() if self.date else "",
            self.wish.value if self.wish else "",
            self.detail or "",
        )

    def as_dict(self) -> dict[str, str]:
        out = {"rule": self.rule.value}
        if self.participant is not None:
            out["participant"] = self.participant
        if self.date is not None:
            out["date"] = self.date.isoformat()
        if self.wish is not None:
            out["wish"] = self.wish.value
        if self.detail is not None:
            out["detail"] = self.detail
        return out


@dataclass(frozen=True, slots=True)
class Slot:
    """A proposed meeting time. ``participants`` are those who can come; ``gives_up``
    is empty for a slot that keeps every rule."""

    start: datetime
    end: datetime
    participants: tuple[str, ...]
    gives_up: tuple[Constraint, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "participants": list(self.participants),
            "gives_up": [c.as_dict() for c in self.gives_up],
        }


@dataclass(frozen=True, slots=True)
class Blocker:
    """How many candidate slots in the window one constraint excludes, and how many of
    those it alone excludes (dropping it would free exactly those)."""

    constraint: Constraint
    excluded: int
    excluded_alone: int
    hard: bool

    def as_dict(self) -> dict[str, object]:
        return {
            **self.constraint.as_dict(),
            "excluded": self.excluded,
            "excluded_alone": self.excluded_alone,
            "hard": self.hard,
        }


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why no slot fits: blockers sorted by how much they block, and up to three nearest
    alternatives, each with what it gives up."""

    candidates: int
    blockers: tuple[Blocker, ...]
    alternatives: tuple[Slot, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "candidates": self.candidates,
            "blockers": [b.as_dict() for b in self.blockers],
            "alternatives": [a.as_dict() for a in self.alternatives],
        }


@dataclass(frozen=True, slots=True)
class SlotResult:
    """Either a slot or an explanation. ``absent`` names the optional participants who
    cannot come to the slot; they are only left out when no slot in the window fits all."""

    slot: Slot | None
    absent: tuple[str, ...] = ()
    explanation: Explanation | None = None

    @property
    def feasible(self) -> bool:
        return self.slot is not None


def weekly_intervals(
    weekday: int, start: time, end: time, first: date, last: date
) -> tuple[Interval, ...]:
    """A recurring local appointment (e.g. "Tue 17:00–18:00") as busy intervals from
    ``first`` to ``last`` inclusive, each converted with that day's UTC offset."""
    _check_weekly(WeeklyWindow(weekday, start, end), "weekly")
    day = first + timedelta(days=(weekday - first.weekday()) % 7)
    out: list[Interval] = []
    while day <= last:
        out.append(Interval(local_instant(day, start), local_instant(day, end)))
        day += timedelta(days=7)
    return tuple(out)


# --- validation -----------------------------------------------------------------------


def _aware(value: datetime, name: str) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise SlotInputError(name, "must be a timezone-aware datetime")


def _whole_seconds(value: timedelta, name: str) -> None:
    if value.microseconds:
        raise SlotInputError(name, "must be a whole number of seconds")


def _check_weekly(window: WeeklyWindow, name: str) -> None:
    if isinstance(window.weekday, bool) or not isinstance(window.weekday, int):
        raise SlotInputError(f"{name}.weekday", "must be an integer 0 (Monday) to 6 (Sunday)")
    if not 0 <= window.weekday <= 6:
        raise SlotInputError(f"{name}.weekday", "must be 0 (Monday) to 6 (Sunday)")
    for part in ("start", "end"):
        value = getattr(window, part)
        if not isinstance(value, time) or value.tzinfo is not None:
            raise SlotInputError(f"{name}.{part}", "must be a naive local time")
    if not window.start < window.end:
        raise SlotInputError(name, "start must be before end")


def _check_interval(interval: Interval, name: str) -> None:
    _aware(interval.start, f"{name}.start")
    _aware(interval.end, f"{name}.end")
    if not interval.start < interval.end:
        raise SlotInputError(name, "start must be before end")


def _check_closures(closures: Sequence[Closure], name: str) -> None:
    for i, closure in enumerate(closures):
        if not closure.start <= closure.end:
            raise SlotInputError(f"{name}[{i}]", "start must not be after end")


def _check_time(value: time | None, name: str) -> None:
    if value is not None and (not isinstance(value, time) or value.tzinfo is not None):
        raise SlotInputError(name, "must be a naive local time")


def validate_participant(participant: Participant, name: str = "participant") -> None:
    """Shared with the schedule so that a bad member is named by the caller's field."""
    if not isinstance(participant.id, str) or not participant.id:
        raise SlotInputError(f"{name}.id", "must be a non-empty string")
    if not isinstance(participant.kind, ParticipantKind):
        raise SlotInputError(f"{name}.kind", "must be professional, family or child")
    for j, window in enumerate(participant.availability or ()):
        _check_weekly(window, f"{name}.availability[{j}]")
    for j, interval in enumerate(participant.busy):
        _check_interval(interval, f"{name}.busy[{j}]")


def validate_request(request: SlotRequest, now: datetime | None = None) -> None:
    """Raises ``SlotInputError`` naming the first bad field; ``find_slot`` calls it first."""
    _aware(request.window_start, "window_start")
    _aware(request.window_end, "window_end")
    if request.window_end <= request.window_start:
        raise SlotInputError("window_end", "must be after window_start")
    length = request.window_end - request.window_start
    if length > MAX_WINDOW:
        raise SlotInputError("window_end", "the search window must not be longer than one year")
    if now is not None:
        _aware(now, "now")
        if request.window_end <= now:
            raise SlotInputError("window_end", "the search window lies in the past")
    if request.duration <= timedelta(0):
        raise SlotInputError("duration", "must be positive")
    _whole_seconds(request.duration, "duration")
    if request.duration > length:
        raise SlotInputError("duration", "is longer than the search window")
    if request.step <= timedelta(0):
        raise SlotInputError("step", "must be positive")
    _whole_seconds(request.step, "step")
    if request.min_gap < timedelta(0):
        raise SlotInputError("min_gap", "must not be negative")
    _whole_seconds(request.min_gap, "min_gap")
    if not timedelta(0) <= request.alternatives_horizon <= MAX_WINDOW:
        raise SlotInputError("alternatives_horizon", "must be between zero and one year")
    _whole_seconds(request.alternatives_horizon, "alternatives_horizon")
    if not request.participants:
        raise SlotInputError("participants", "at least one participant is needed")
    seen: set[str] = set()
    for i, p in enumerate(request.participants):
        validate_participant(p, f"participants[{i}]")
        if p.id in seen:
            raise SlotInputError(f"participants[{i}].id", f"duplicate participant id {p.id!r}")
        seen.add(p.id)
    for j, window in enumerate(request.office_hours):
        _check_weekly(window, f"office_hours[{j}]")
    wishes = request.child_wishes
    if wishes is not None:
        _check_time(wishes.not_before, "child_wishes.not_before")
        _check_time(wishes.not_after, "child_wishes.not_after")
        _check_time(wishes.after_school, "child_wishes.after_school")
        if (
            wishes.not_before is not None
            and wishes.not_after is not None
            and not wishes.not_before < wishes.not_after
        ):
            raise SlotInputError("child_wishes", "not_before must be before not_after")
        _check_closures(wishes.school_holidays, "child_wishes.school_holidays")
    _check_closures(request.closures, "closures")
    _check_time(request.day_hours[0], "day_hours[0]")
    _check_time(request.day_hours[1], "day_hours[1]")
    if not request.day_hours[0] < request.day_hours[1]:
        raise SlotInputError("day_hours", "start must be before end")
    for j, interval in enumerate(request.keep_apart):
        _check_interval(interval, f"keep_apart[{j}]")
