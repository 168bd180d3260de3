"""Scheduling: plans per second for a one-year plan, and how the cost grows with the number
of participants and of busy intervals (the fitted exponent of cost ∝ n^k).

Busy intervals are 30-minute appointments on working days between 08:00 and 16:00, drawn
with a fixed seed. Up to 1,000 per participant they fall within the plan's year; beyond
that the density stays at one a day and the list reaches back into earlier years (a
long calendar history), so that the problem the finder solves stays the same and only the
input grows.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo

from bench.common import fit_exponent

OSLO = ZoneInfo("Europe/Oslo")
PLAN_START = date(2027, 1, 4)
PLAN_END = date(2027, 12, 31)
NOW = datetime(2027, 1, 1, 9, 0, tzinfo=UTC)
PER_DAY = 1
PARTICIPANTS = (2, 4, 8, 16, 32, 64)
BUSY = (10, 30, 100, 300, 1000, 3000, 10000)
QUICK_BUSY = (10, 100, 1000, 3000)
QUICK_PARTICIPANTS = (2, 4, 8, 16, 32)
PROFESSIONAL_ROLES = ("school_contact", "public_health_nurse", "nav_adviser", "child_psychiatry", "gp", "ppt",
                      "kindergarten", "support_contact")


@dataclass
class ScheduleResults:
    figures: dict[str, float] = field(default_factory=dict)
    curves: dict[str, list[dict[str, float]]] = field(default_factory=dict)


def working_days_back(last: date, count: int) -> list[date]:
    days: list[date] = []
    day = last
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day -= timedelta(days=1)
    return days


def busy_intervals(rng: random.Random, count: int) -> tuple[Any, ...]:
    from calendars.slots import Interval

    year = working_days_back(PLAN_END, 260)
    days = year if count <= len(year) * PER_DAY else working_days_back(PLAN_END, -(-count // PER_DAY))
    out = []
    for _ in range(count):
        day = rng.choice(days)
        minutes = 8 * 60 + 15 * rng.randrange(0, 30)
        start = datetime(day.year, day.month, day.day, minutes // 60, minutes % 60, tzinfo=OSLO)
        out.append(Interval(start.astimezone(UTC), (start + timedelta(minutes=30)).astimezone(UTC)))
    out.sort(key=lambda i: i.start)
    return tuple(out)


def plan(participants: int, busy: int, seed: int = 7) -> Any:
    """A one-year plan: the child, a parent, the caseworker, then partners; every member
    holds ``busy`` intervals of other meetings."""
    from calendars.schedule import PlanMember, PlanSpec
    from calendars.slots import ChildWishes, Participant, ParticipantKind

    rng = random.Random(seed)
    fixed = [("child", ParticipantKind.CHILD, "child"), ("parent", ParticipantKind.FAMILY, "parent"),
             ("caseworker", ParticipantKind.PROFESSIONAL, "caseworker")]
    if participants == 2:
        fixed = fixed[1:]
    members = []
    for i in range(participants):
        if i < len(fixed):
            pid, kind, role = fixed[i]
        else:
            role = PROFESSIONAL_ROLES[i % len(PROFESSIONAL_ROLES)]
            pid, kind = f"{role}-{i}", ParticipantKind.PROFESSIONAL
        members.append(PlanMember(Participant(pid, pid, kind, busy=busy_intervals(rng, busy)), role))
    return PlanSpec(start=PLAN_START, expected_end=PLAN_END, members=tuple(members),
                    child_wishes=ChildWishes(not_after=clock(19)))


def time_plan(spec: Any, min_seconds: float, min_runs: int) -> tuple[float, int, int]:
    """Median seconds per plan_schedule, and the meetings placed and unschedulable."""
    from calendars.planner import plan_schedule

    times: list[float] = []
    started = time.perf_counter()
    schedule = None
    while len(times) < min_runs or time.perf_counter() - started < min_seconds:
        t0 = time.perf_counter()
        schedule = plan_schedule(spec, now=NOW)
        times.append(time.perf_counter() - t0)
    assert schedule is not None
    times.sort()
    return times[len(times) // 2], len(schedule.planned), len(schedule.unschedulable)


def run(quick: bool, log: Callable[[str], None]) -> ScheduleResults:
    results = ScheduleResults()
    seconds, placed, failed = time_plan(plan(8, 20), 1.5 if quick else 5.0, 5)
    results.figures["schedule_plans_per_s"] = round(1 / seconds, 2)
    results.figures["schedule_ms_per_plan"] = round(seconds * 1000, 2)
    results.figures["schedule_meetings_per_plan"] = placed
    results.figures["schedule_unschedulable_per_plan"] = failed
    log(f"  one-year plan, 8 participants × 20 busy: {1 / seconds:.1f} plans/s ({seconds * 1000:.1f} ms, "
        f"{placed} meetings, {failed} unschedulable)")
    for name, values, make in (
        ("participants", QUICK_PARTICIPANTS if quick else PARTICIPANTS, lambda n: plan(n, 20)),
        ("busy", QUICK_BUSY if quick else BUSY, lambda n: plan(8, n)),
    ):
        curve = []
        for n in values:
            spec = make(n)
            seconds, placed, failed = time_plan(spec, 0.5 if quick else 1.5, 1 if n >= 3000 else 3)
            curve.append({"n": n, "ms": round(seconds * 1000, 2), "meetings": placed, "unschedulable": failed})
            log(f"  {name} {n:6}: {seconds * 1000:9.1f} ms per plan ({placed} meetings, {failed} unschedulable)")
        xs = [float(p["n"]) for p in curve]
        ys = [float(p["ms"]) for p in curve]
        results.curves[name] = curve
        results.figures[f"schedule_exponent_{name}"] = round(fit_exponent(xs, ys), 3)
        results.figures[f"schedule_exponent_{name}_tail"] = round(fit_exponent(xs[-3:], ys[-3:]), 3)
    return results
