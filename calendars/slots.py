"""The slot finder: the earliest time everyone can meet, or why there is none.

Pure and deterministic. Every rule is turned into the set of instants it blocks; a
candidate start (on a fixed grid of ``step``) is excluded by a rule when the meeting
would overlap one of them. Blocked intervals become ranges of candidate indices, and
one sorted sweep over the range ends answers all questions at once — the earliest
feasible slot, how many candidates each rule excludes (alone or with others), and the
cheapest alternatives — so the cost grows with the number of intervals, never with
candidates × intervals.
"""

from __future__ import annotations

import enum
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

from calendars.workdays import CalendarInputError, Closure, is_public_holiday, public_holidays
from calendars.zone import local_date, local_instant

DEFAULT_STEP = timedelta(minutes=15)
#: No meeting starts before or ends after these local times (families are not woken).
DEFAULT_DAY_HOURS = (time(7), time(21))
#: How far beyond the search window an alternative may lie.
DEFAULT_ALTERNATIVES_HORIZON = timedelta(days=28)
#: "Not longer than one year"; a leap year has 366 days.
MAX_WINDOW = timedelta(days=366)
ALTERNATIVES = 3

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_DAY = timedelta(days=1)
#: Weight of a rule no alternative may break (weekends, public holidays, closures).
_HARD = 1_000_000
#: Bounds the work spent looking for alternatives with different trade-offs.
_MAX_ALTERNATIVE_PROBES = 256


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


#: How much an alternative gives up by breaking a rule: moving the date costs least,
#: then the family's spacing, the child's wishes, the professionals' hours, and
#: finally a required participant's own time.
_WEIGHT: dict[Rule, int] = {
    Rule.WINDOW: 1,
    Rule.AVOID_DATE: 2,
    Rule.SPACING: 2,
    Rule.CHILD_WISH: 3,
    Rule.OFFICE_HOURS: 4,
    Rule.AVAILABILITY: 5,
    Rule.BUSY: 6,
    Rule.DAY_HOURS: _HARD,
    Rule.WEEKEND: _HARD,
    Rule.HOLIDAY: _HARD,
    Rule.CLOSURE: _HARD,
}
#: Missing an optional participant costs as little as moving the date.
_OPTIONAL_WEIGHT = 1


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


def find_slot(request: SlotRequest, *, now: datetime | None = None) -> SlotResult:
    """The earliest slot in the window that keeps every rule for every participant; if
    none does, the earliest that keeps them for the required ones (naming who is absent);
    else an explanation. Raises ``SlotInputError`` for malformed input."""
    validate_request(request, now)
    return _Finder(request, now).run()


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


# --- the finder -----------------------------------------------------------------------


def _secs(instant: datetime) -> int:
    return (instant - _EPOCH) // _SECOND


def _instant(secs: int) -> datetime:
    return _EPOCH + timedelta(seconds=secs)


@lru_cache(maxsize=8192)
def _local_secs(day: date, at: time) -> int:
    """Cached because every day of a year-long window is converted once per rule."""
    return _secs(local_instant(day, at))


def _midnight(day: date) -> int:
    return _local_secs(day, time(0))


@dataclass(slots=True)
class _Built:
    """A constraint compiled to the candidate indices it excludes (merged, inclusive)."""

    key: Constraint
    weight: int
    required: bool
    absentees: tuple[str, ...]
    los: list[int] = field(default_factory=list)
    his: list[int] = field(default_factory=list)

    def excludes(self, index: int) -> bool:
        at = bisect_right(self.los, index) - 1
        return at >= 0 and index <= self.his[at]


@dataclass(slots=True)
class _Segment:
    first: int
    last: int
    weight: int
    distance: int
    probe: int


class _Finder:
    """One search. Instants are whole seconds since the epoch; candidate ``k`` starts at
    ``origin + k * step`` and the candidates cover the window plus the horizons around it."""

    def __init__(self, request: SlotRequest, now: datetime | None) -> None:
        self.request = request
        self.duration = request.duration // _SECOND
        self.step = request.step // _SECOND
        horizon = request.alternatives_horizon // _SECOND
        window_start = _secs(request.window_start)
        self.window_end = _secs(request.window_end)
        if now is not None:
            now_secs = -((_EPOCH - now) // _SECOND)  # rounded up: never a start before now
            window_start = max(window_start, now_secs)
            # Before the window only when we know where the past ends.
            self.low = max(now_secs, window_start - horizon)
        else:
            self.low = window_start
        self.window_start = window_start
        self.high = self.window_end + horizon
        self.origin = -(-self.low // self.step) * self.step
        self.count = max(0, (self.high - self.duration - self.origin) // self.step + 1)
        self.window_first = max(0, -(-(window_start - self.origin) // self.step))
        self.window_last = min(
            self.count - 1, (self.window_end - self.duration - self.origin) // self.step
        )
        self.first_day = local_date(_instant(self.low)) - _DAY
        self.last_day = local_date(_instant(self.high)) + _DAY
        self.days = [
            self.first_day + timedelta(days=i)
            for i in range((self.last_day - self.first_day).days + 1)
        ]
        self.built: list[_Built] = []

    # -- compiling rules ------------------------------------------------------------

    def _add(
        self,
        key: Constraint,
        blocked: Iterable[tuple[int, int]],
        *,
        required: bool = True,
        absentees: tuple[str, ...] = (),
    ) -> None:
        """``blocked`` must be sorted by start; overlaps are merged here, on indices."""
        weight = _WEIGHT[key.rule] if required else _OPTIONAL_WEIGHT
        built = _Built(key, weight, required, absentees)
        step, origin, duration, last = self.step, self.origin, self.duration, self.count - 1
        los, his = built.los, built.his
        for start, end in blocked:
            if end <= self.low or start >= self.high:
                continue
            lo = max(0, (start - duration - origin) // step + 1)
            hi = min(last, -(-(end - origin) // step) - 1)
            if lo > hi:
                continue
            if his and lo <= his[-1] + 1:
                if hi > his[-1]:
                    his[-1] = hi
            else:
                los.append(lo)
                his.append(hi)
        if los:
            self.built.append(built)

    def _day_span(self, day: date) -> tuple[int, int]:
        return _midnight(day), _midnight(day + _DAY)

    def _weekly_blocked(self, windows: Sequence[WeeklyWindow]) -> list[tuple[int, int]]:
        """The complement of the weekly windows over the whole range."""
        by_day: dict[int, list[WeeklyWindow]] = {}
        for window in windows:
            by_day.setdefault(window.weekday, []).append(window)
        allowed: list[tuple[int, int]] = []
        for day in self.days:
            spans = sorted(
                (_local_secs(day, w.start), _local_secs(day, w.end))
                for w in by_day.get(day.weekday(), ())
            )
            allowed.extend(spans)
        blocked: list[tuple[int, int]] = []
        cursor = _midnight(self.first_day)
        for start, end in allowed:
            if start > cursor:
                blocked.append((cursor, start))
            cursor = max(cursor, end)
        final = _midnight(self.last_day + _DAY)
        if cursor < final:
            blocked.append((cursor, final))
        return blocked

    def _compile(self) -> None:
        request = self.request
        participants = request.participants
        if self.low < self.window_start:
            self._add(Constraint(Rule.WINDOW, detail="before"), [(self.low, self.window_start)])
        self._add(Constraint(Rule.WINDOW, detail="after"), [(self.window_end, self.high)])

        first, last = self.days[0], self.days[-1]
        day_start, day_end = request.day_hours
        self._add(
            Constraint(Rule.DAY_HOURS),
            self._weekly_blocked([WeeklyWindow(d, day_start, day_end) for d in range(7)]),
        )
        for day, name in public_holidays(first, last).items():
            self._add(Constraint(Rule.HOLIDAY, date=day, detail=name), [self._day_span(day)])
        self._add(
            Constraint(Rule.WEEKEND),
            [self._day_span(day) for day in self.days if day.weekday() >= 5],
        )
        for closure in request.closures:
            spans = [self._day_span(day) for day in self.days if closure.covers(day)]
            self._add(
                Constraint(Rule.CLOSURE, date=closure.start, detail=closure.label or None), spans
            )
        for day in sorted(request.avoid_dates):
            if first <= day <= last:
                self._add(Constraint(Rule.AVOID_DATE, date=day), [self._day_span(day)])
        if request.keep_apart:
            gap = request.min_gap // _SECOND
            spans = sorted((_secs(i.start) - gap, _secs(i.end) + gap) for i in request.keep_apart)
            self._add(Constraint(Rule.SPACING), spans)

        professionals = [p for p in participants if p.kind is ParticipantKind.PROFESSIONAL]
        if professionals:
            self._add(
                Constraint(Rule.OFFICE_HOURS),
                self._weekly_blocked(request.office_hours),
                required=any(p.required for p in professionals),
                absentees=tuple(p.id for p in professionals if not p.required),
            )
        children = [p for p in participants if p.kind is ParticipantKind.CHILD]
        if children and request.child_wishes is not None:
            self._compile_wishes(request.child_wishes, children)

        for p in participants:
            if p.availability is not None:
                self._add(
                    Constraint(Rule.AVAILABILITY, participant=p.id),
                    self._weekly_blocked(p.availability),
                    required=p.required,
                    absentees=() if p.required else (p.id,),
                )
            if p.busy:
                self._add(
                    Constraint(Rule.BUSY, participant=p.id),
                    sorted((_secs(i.start), _secs(i.end)) for i in p.busy),
                    required=p.required,
                    absentees=() if p.required else (p.id,),
                )

    def _compile_wishes(self, wishes: ChildWishes, children: Sequence[Participant]) -> None:
        required = any(p.required for p in children)
        absentees = tuple(p.id for p in children if not p.required)

        def add(wish: Wish, spans: list[tuple[int, int]]) -> None:
            self._add(
                Constraint(Rule.CHILD_WISH, wish=wish),
                spans,
                required=required,
                absentees=absentees,
            )

        if wishes.not_before is not None:
            at = wishes.not_before
            add(Wish.NOT_BEFORE, [(_midnight(d), _local_secs(d, at)) for d in self.days])
        if wishes.not_after is not None:
            at = wishes.not_after
            add(Wish.NOT_AFTER, [(_local_secs(d, at), _midnight(d + _DAY)) for d in self.days])
        if wishes.after_school is not None:
            at = wishes.after_school
            holidays = wishes.school_holidays
            school_days = [
                d
                for d in self.days
                if d.weekday() < 5
                and not is_public_holiday(d)
                and not any(c.covers(d) for c in holidays)
            ]
            add(Wish.AFTER_SCHOOL, [(_midnight(d), _local_secs(d, at)) for d in school_days])

    # -- answering --------------------------------------------------------------------

    def _slot(self, index: int, gives_up: Sequence[_Built]) -> Slot:
        start = self.origin + index * self.step
        absent = {a for b in gives_up for a in b.absentees}
        return Slot(
            start=_instant(start),
            end=_instant(start + self.duration),
            participants=tuple(p.id for p in self.request.participants if p.id not in absent),
            gives_up=tuple(sorted((b.key for b in gives_up), key=Constraint.sort_key)),
        )

    def _violated(self, index: int) -> list[_Built]:
        return [b for b in self.built if b.excludes(index)]

    def run(self) -> SlotResult:
        self._compile()
        window_first, window_last = self.window_first, self.window_last
        events: list[tuple[int, int, int]] = []
        for cid, b in enumerate(self.built):
            for lo, hi in zip(b.los, b.his, strict=True):
                events.append((lo, 1, cid))
                events.append((hi + 1, -1, cid))
        # Empty events split the sweep at the window's edges.
        events.append((window_first, 0, -1))
        events.append((window_last + 1, 0, -1))
        events.sort()

        built = self.built
        count = required = weight = id_sum = 0
        first_all: int | None = None
        first_required: int | None = None
        alone = [0] * len(built)
        segments: list[_Segment] = []
        position, i, total = 0, 0, self.count
        while position < total:
            while i < len(events) and events[i][0] <= position:
                _, sign, cid = events[i]
                i += 1
                if sign:
                    b = built[cid]
                    count += sign
                    weight += sign * b.weight
                    id_sum += sign * cid
                    if b.required:
                        required += sign
            end = min(events[i][0], total) if i < len(events) else total
            first, last = position, end - 1
            in_window = window_first <= first and last <= window_last
            if in_window:
                if count == 0:
                    first_all = first
                    break
                if required == 0 and first_required is None:
                    first_required = first
                if count == 1:
                    alone[id_sum] += end - position
            elif weight < _HARD:
                if last < window_first:
                    segments.append(_Segment(first, last, weight, window_first - last, last))
                else:
                    segments.append(_Segment(first, last, weight, first - window_last, first))
            if in_window and weight < _HARD and count > 0:
                segments.append(_Segment(first, last, weight, 0, first))
            position = end

        if first_all is not None:
            return SlotResult(self._slot(first_all, []))
        if first_required is not None:
            slot = self._slot(first_required, self._violated(first_required))
            absent = tuple(p.id for p in self.request.participants if p.id not in slot.participants)
            return SlotResult(slot, absent=absent)
        return SlotResult(None, explanation=self._explain(alone, segments))

    def _explain(self, alone: list[int], segments: list[_Segment]) -> Explanation:
        window_first, window_last = self.window_first, self.window_last
        candidates = max(0, window_last - window_first + 1)
        blockers: list[Blocker] = []
        for cid, b in enumerate(self.built):
            excluded = sum(
                max(0, min(hi, window_last) - max(lo, window_first) + 1)
                for lo, hi in zip(b.los, b.his, strict=True)
            )
            if excluded:
                blockers.append(Blocker(b.key, excluded, alone[cid], hard=b.weight >= _HARD))
        blockers.sort(key=lambda x: (-x.excluded_alone, -x.excluded, x.constraint.sort_key()))
        return Explanation(candidates, tuple(blockers), self._alternatives(segments))

    def _alternatives(self, segments: list[_Segment]) -> tuple[Slot, ...]:
        """Cheapest first, nearest to the window next, earliest last; first one per
        distinct trade-off, then, if that gives fewer than three, one per day."""
        segments.sort(key=lambda s: (s.weight, s.distance, s.probe))
        probed: list[tuple[int, tuple[Constraint, ...]]] = []
        for segment in segments[:_MAX_ALTERNATIVE_PROBES]:
            gives_up = tuple(
                sorted((b.key for b in self._violated(segment.probe)), key=Constraint.sort_key)
            )
            probed.append((segment.probe, gives_up))
        chosen: list[int] = []
        for rank, (_, gives_up) in enumerate(probed):
            if len(chosen) < ALTERNATIVES and all(probed[c][1] != gives_up for c in chosen):
                chosen.append(rank)
        for rank, (probe, gives_up) in enumerate(probed):
            if len(chosen) >= ALTERNATIVES:
                break
            day = self._local_day(probe)
            if all(
                c != rank
                and not (probed[c][1] == gives_up and self._local_day(probed[c][0]) == day)
                for c in chosen
            ):
                chosen.append(rank)
        return tuple(self._slot(probed[c][0], self._violated(probed[c][0])) for c in sorted(chosen))

    def _local_day(self, index: int) -> date:
        return local_date(_instant(self.origin + index * self.step))
