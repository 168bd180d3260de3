"""Properties of the slot finder, checked against a brute-force oracle.

The oracle walks every candidate start and tests each rule directly on local dates and
times, so it shares nothing with the finder's interval sweep except the rules' meaning.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calendars.slot_finder import find_slot
from calendars.slots import (
    ChildWishes,
    Constraint,
    Interval,
    Participant,
    ParticipantKind,
    Rule,
    SlotRequest,
    WeeklyWindow,
    Wish,
)
from calendars.workdays import Closure, holiday_name
from calendars.zone import local_date, local_instant, local_midnight

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Days around Easter, 17 May, Christmas and both DST changes, and ordinary weeks.
ANCHORS = [
    date(2026, 3, 26),
    date(2026, 10, 22),
    date(2027, 1, 4),
    date(2027, 3, 23),
    date(2027, 5, 13),
    date(2027, 9, 14),
    date(2027, 12, 22),
]


def overlaps(start: datetime, end: datetime, lo: datetime, hi: datetime) -> bool:
    return start < hi and lo < end


def touched_days(start: datetime, end: datetime) -> list[date]:
    first, last = local_date(start), local_date(end - timedelta(microseconds=1))
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def inside_weekly(start: datetime, end: datetime, windows: tuple[WeeklyWindow, ...]) -> bool:
    """Inside the union of the weekly windows (adjacent windows join)."""
    for day in touched_days(start - timedelta(days=1), end + timedelta(days=1)):
        spans = sorted(
            (local_instant(day, w.start), local_instant(day, w.end))
            for w in windows
            if w.weekday == day.weekday()
        )
        merged: list[list[datetime]] = []
        for lo, hi in spans:
            if merged and lo <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        if any(lo <= start and end <= hi for lo, hi in merged):
            return True
    return False


def violations(req: SlotRequest, start: datetime, now: datetime | None) -> dict[Constraint, bool]:
    """Every rule the meeting at ``start`` breaks, mapped to whether it is a required one."""
    end = start + req.duration
    found: dict[Constraint, bool] = {}
    window_start = max(req.window_start, now) if now else req.window_start
    if start < window_start:
        found[Constraint(Rule.WINDOW, detail="before")] = True
    if end > req.window_end:
        found[Constraint(Rule.WINDOW, detail="after")] = True
    days = touched_days(start, end)
    for day in days:
        name = holiday_name(day)
        if name:
            found[Constraint(Rule.HOLIDAY, date=day, detail=name)] = True
        if day.weekday() >= 5:
            found[Constraint(Rule.WEEKEND)] = True
        for closure in req.closures:
            if closure.covers(day):
                found[
                    Constraint(Rule.CLOSURE, date=closure.start, detail=closure.label or None)
                ] = True
        if day in req.avoid_dates:
            found[Constraint(Rule.AVOID_DATE, date=day)] = True
    day_hours = tuple(WeeklyWindow(d, *req.day_hours) for d in range(7))
    if not inside_weekly(start, end, day_hours):
        found[Constraint(Rule.DAY_HOURS)] = True
    gap = req.min_gap
    if any(overlaps(start, end, i.start - gap, i.end + gap) for i in req.keep_apart):
        found[Constraint(Rule.SPACING)] = True
    pros = [p for p in req.participants if p.kind is ParticipantKind.PROFESSIONAL]
    if pros and not inside_weekly(start, end, req.office_hours):
        found[Constraint(Rule.OFFICE_HOURS)] = any(p.required for p in pros)
    children = [p for p in req.participants if p.kind is ParticipantKind.CHILD]
    wishes = req.child_wishes
    if children and wishes is not None:
        required = any(p.required for p in children)
        for day in days:
            midnight, next_midnight = local_midnight(day), local_midnight(day + timedelta(days=1))
            if wishes.not_before and overlaps(
                start, end, midnight, local_instant(day, wishes.not_before)
            ):
                found[Constraint(Rule.CHILD_WISH, wish=Wish.NOT_BEFORE)] = required
            if wishes.not_after and overlaps(
                start, end, local_instant(day, wishes.not_after), next_midnight
            ):
                found[Constraint(Rule.CHILD_WISH, wish=Wish.NOT_AFTER)] = required
            school_day = (
                day.weekday() < 5
                and holiday_name(day) is None
                and not any(c.covers(day) for c in wishes.school_holidays)
            )
            if (
                wishes.after_school
                and school_day
                and overlaps(start, end, midnight, local_instant(day, wishes.after_school))
            ):
                found[Constraint(Rule.CHILD_WISH, wish=Wish.AFTER_SCHOOL)] = required
    for p in req.participants:
        if p.availability is not None and not inside_weekly(start, end, p.availability):
            found[Constraint(Rule.AVAILABILITY, participant=p.id)] = p.required
        if any(overlaps(start, end, i.start, i.end) for i in p.busy):
            found[Constraint(Rule.BUSY, participant=p.id)] = p.required
    return found


def candidates(req: SlotRequest, now: datetime | None) -> list[datetime]:
    step = req.step
    window_start = max(req.window_start, now) if now else req.window_start
    first = EPOCH + -((EPOCH - window_start) // step) * step
    out = []
    while first + req.duration <= req.window_end:
        out.append(first)
        first += step
    return out


# --- strategies -------------------------------------------------------------------------

quarter_times = st.builds(time, st.integers(6, 20), st.sampled_from([0, 15, 30, 45]))


@st.composite
def weekly_windows(draw: st.DrawFn) -> WeeklyWindow:
    weekday = draw(st.integers(0, 6))
    start = draw(quarter_times)
    length = draw(st.integers(1, 16)) * 15
    end_minutes = min(start.hour * 60 + start.minute + length, 23 * 60 + 45)
    return WeeklyWindow(weekday, start, time(end_minutes // 60, end_minutes % 60))


@st.composite
def slot_requests(draw: st.DrawFn) -> tuple[SlotRequest, datetime | None]:
    anchor = draw(st.sampled_from(ANCHORS)) + timedelta(days=draw(st.integers(0, 6)))
    window_start = local_instant(anchor, draw(quarter_times)) + timedelta(
        minutes=draw(st.integers(0, 14))
    )
    window_end = window_start + timedelta(hours=draw(st.integers(2, 72)))
    duration = timedelta(minutes=draw(st.sampled_from([15, 30, 45, 60, 90, 120])))
    step = timedelta(minutes=draw(st.sampled_from([15, 30, 60])))

    def busy() -> Interval:
        start = window_start + timedelta(minutes=15 * draw(st.integers(-8, 4 * 72)))
        return Interval(start, start + timedelta(minutes=15 * draw(st.integers(1, 24))))

    participants = []
    for i in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(list(ParticipantKind)))
        availability = draw(
            st.none() | st.lists(weekly_windows(), min_size=1, max_size=4).map(tuple)
        )
        participants.append(
            Participant(
                f"p{i}",
                f"Person {i}",
                kind,
                required=draw(st.booleans()),
                availability=availability,
                busy=tuple(busy() for _ in range(draw(st.integers(0, 4)))),
            )
        )
    wishes = draw(
        st.none()
        | st.builds(
            ChildWishes,
            not_before=st.none() | st.sampled_from([time(9), time(10, 30)]),
            not_after=st.none() | st.sampled_from([time(15), time(19)]),
            after_school=st.none() | st.sampled_from([time(14), time(15)]),
            school_holidays=st.sampled_from([(), (Closure(anchor, anchor, "break"),)]),
        )
    )
    office_hours = draw(
        st.sampled_from(
            [
                SlotRequest.__dataclass_fields__["office_hours"].default,
                tuple(WeeklyWindow(d, time(7, 30), time(20)) for d in range(6)),
            ]
        )
    )
    closures = draw(
        st.sampled_from([(), (Closure(anchor + timedelta(days=1), anchor + timedelta(days=1)),)])
    )
    avoid = draw(st.sets(st.sampled_from([anchor + timedelta(days=i) for i in range(4)])))
    keep_apart = tuple(busy() for _ in range(draw(st.integers(0, 2))))
    now = draw(st.none() | st.integers(-48, 24).map(lambda h: window_start + timedelta(hours=h)))
    if now is not None and now >= window_end:
        now = None
    req = SlotRequest(
        window_start=window_start,
        window_end=window_end,
        duration=duration,
        participants=tuple(participants),
        step=step,
        office_hours=office_hours,
        child_wishes=wishes,
        closures=closures,
        avoid_dates=frozenset(avoid),
        keep_apart=keep_apart,
        min_gap=timedelta(minutes=draw(st.sampled_from([0, 30, 120]))),
        alternatives_horizon=timedelta(days=draw(st.integers(0, 3))),
    )
    return req, now


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(slot_requests())
def test_a_returned_slot_keeps_every_rule_and_is_the_earliest(
    case: tuple[SlotRequest, datetime | None],
) -> None:
    req, now = case
    if req.duration > req.window_end - req.window_start:
        return
    result = find_slot(req, now=now)
    checked = {t: violations(req, t, now) for t in candidates(req, now)}
    fits_all = [t for t, v in checked.items() if not v]
    fits_required = [t for t, v in checked.items() if not any(v.values())]
    if result.slot is None:
        assert not fits_required, "the finder missed a feasible slot"
        return
    slot = result.slot
    assert slot.end - slot.start == req.duration
    broken = checked[slot.start]
    required_ids = {p.id for p in req.participants if p.required}
    assert required_ids <= set(slot.participants), "a required participant was dropped"
    if fits_all:
        assert slot.start == fits_all[0] and not broken and result.absent == ()
    else:
        assert slot.start == fits_required[0]
        assert not any(broken.values())
        assert set(slot.gives_up) == set(broken)
        assert set(result.absent) == {p.id for p in req.participants} - set(slot.participants)
        assert not set(result.absent) & required_ids


@SETTINGS
@given(slot_requests())
def test_an_explanation_counts_what_each_rule_excludes(
    case: tuple[SlotRequest, datetime | None],
) -> None:
    req, now = case
    if req.duration > req.window_end - req.window_start:
        return
    result = find_slot(req, now=now)
    if result.explanation is None:
        return
    checked = {t: violations(req, t, now) for t in candidates(req, now)}
    explanation = result.explanation
    assert explanation.candidates == len(checked)
    excluded: Counter[Constraint] = Counter()
    alone: Counter[Constraint] = Counter()
    for broken in checked.values():
        excluded.update(broken.keys())
        if len(broken) == 1:
            alone.update(broken.keys())
    reported = {b.constraint: (b.excluded, b.excluded_alone) for b in explanation.blockers}
    assert reported == {c: (n, alone[c]) for c, n in excluded.items()}
    assert len(explanation.alternatives) <= 3
    hard = {Rule.WEEKEND, Rule.HOLIDAY, Rule.CLOSURE, Rule.DAY_HOURS}
    for alternative in explanation.alternatives:
        broken = violations(req, alternative.start, now)
        assert broken, "an alternative must give something up"
        assert set(alternative.gives_up) == set(broken)
        assert not {c.rule for c in broken} & hard
        assert now is None or alternative.start >= now
