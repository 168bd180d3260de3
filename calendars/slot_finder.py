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

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

from calendars.slots import (
    Blocker,
    ChildWishes,
    Constraint,
    Explanation,
    Participant,
    ParticipantKind,
    Rule,
    Slot,
    SlotRequest,
    SlotResult,
    WeeklyWindow,
    Wish,
    validate_request,
)
from calendars.workdays import is_public_holiday, public_holidays
from calendars.zone import local_date, local_instant

ALTERNATIVES = 3

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_DAY = timedelta(days=1)
#: Weight of a rule no alternative may break (weekends, public holidays, closures).
_HARD = 1_000_000
#: Bounds the work spent looking for alternatives with different trade-offs.
_MAX_ALTERNATIVE_PROBES = 256

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


def find_slot(request: SlotRequest, *, now: datetime | None = None) -> SlotResult:
    """The earliest slot in the window that keeps every rule for every participant; if
    none does, the earliest that keeps them for the required ones (naming who is absent);
    else an explanation. Raises ``SlotInputError`` for malformed input."""
    validate_request(request, now)
    return _Finder(request, now).run()


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
