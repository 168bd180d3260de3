"""The schedule a plan implies, checked on the demo case and on revisions."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from calendars.planner import plan_schedule
from calendars.schedule import (
    Meeting,
    MeetingKind,
    MeetingRef,
    PlanMember,
    PlanSpec,
    Reason,
    Schedule,
    ScheduleInputError,
    ScheduleRules,
    add_months,
)
from calendars.slots import (
    ChildWishes,
    Interval,
    Participant,
    ParticipantKind,
    Rule,
    WeeklyWindow,
    weekly_intervals,
)
from calendars.workdays import Closure, day_status
from calendars.zone import OSLO, local_date, local_instant

PLAN_START = date(2027, 1, 4)
PLAN_END = date(2028, 1, 4)
NOW = datetime(2027, 1, 1, 9, tzinfo=UTC)
_FIRST, _LAST = date(2026, 12, 1), date(2028, 3, 1)
#: The measures: a home milieu therapist Tue/Thu 17–18, COS-P parent guidance Wed 19–20.
FAMILY_BUSY = (
    weekly_intervals(1, time(17), time(18), _FIRST, _LAST)
    + weekly_intervals(3, time(17), time(18), _FIRST, _LAST)
    + weekly_intervals(2, time(19), time(20), _FIRST, _LAST)
)
FAMILY_IDS = {"child", "mother", "father", "aunt"}


def demo_plan(**changes: object) -> PlanSpec:
    """The demo case: a 15-year-old who does not want meetings after 19:00."""
    members = (
        PlanMember(Participant("child", "Child", ParticipantKind.CHILD, busy=FAMILY_BUSY), "child"),
        PlanMember(
            Participant("mother", "Mother", ParticipantKind.FAMILY, busy=FAMILY_BUSY), "parent"
        ),
        PlanMember(
            Participant("father", "Father", ParticipantKind.FAMILY, busy=FAMILY_BUSY), "parent"
        ),
        PlanMember(
            Participant("aunt", "Aunt", ParticipantKind.FAMILY, required=False), "trusted_person"
        ),
        PlanMember(Participant("cw", "Caseworker", ParticipantKind.PROFESSIONAL), "caseworker"),
        PlanMember(
            Participant("teacher", "Teacher", ParticipantKind.PROFESSIONAL, required=False),
            "school_contact",
        ),
    )
    plan = PlanSpec(
        start=PLAN_START,
        expected_end=PLAN_END,
        members=members,
        child_wishes=ChildWishes(not_after=time(19)),
    )
    return replace(plan, **changes)  # type: ignore[arg-type]


def of_kind(schedule: Schedule, kind: MeetingKind) -> list[Meeting]:
    return [m for m in schedule.meetings if m.kind is kind]


def day_of(meeting: Meeting) -> date:
    return local_date(meeting.start)


def check_family_rules(schedule: Schedule) -> None:
    """What the family would notice: working days only, one meeting a day, nothing
    after 19:00 for the child, no clash with the measures, every talk 2–7 days ahead."""
    family_days: list[date] = []
    for m in schedule.meetings:
        assert day_status(day_of(m)).is_working, f"{m.key} on {day_of(m)}"
        assert day_of(m) != date(2027, 5, 17)
        if "child" in m.participants:
            assert m.end.astimezone(OSLO).time() <= time(19), m.key
        if FAMILY_IDS & set(m.participants):
            family_days.append(day_of(m))
            assert not any(m.start < b.end and b.start < m.end for b in FAMILY_BUSY), m.key
    assert len(family_days) == len(set(family_days)), "two family meetings on one day"
    evaluations = {m.ref: m for m in schedule.meetings if m.kind is not MeetingKind.CHILD_TALK}
    for talk in of_kind(schedule, MeetingKind.CHILD_TALK):
        assert talk.before is not None
        gap = (day_of(evaluations[talk.before]) - day_of(talk)).days
        assert 2 <= gap <= 7, talk.key


def test_demo_case_gets_a_full_first_year() -> None:
    schedule = plan_schedule(demo_plan(), now=NOW)
    assert schedule.unschedulable == ()
    assert schedule.kept == ()
    check_family_rules(schedule)

    (startup,) = of_kind(schedule, MeetingKind.STARTUP)
    assert PLAN_START <= day_of(startup) <= PLAN_START + timedelta(days=14)
    assert startup.end - startup.start == timedelta(minutes=90)

    (mini,) = of_kind(schedule, MeetingKind.MINI_EVALUATION)
    assert 28 <= (day_of(mini) - day_of(startup)).days <= 42

    weekly = of_kind(schedule, MeetingKind.WEEKLY_STATUS)
    assert len(weekly) >= 3
    assert [m.sequence for m in weekly] == list(range(1, len(weekly) + 1))
    weeks = [day_of(m).isocalendar()[:2] for m in weekly]
    assert len(set(weeks)) == len(weeks), "one weekly status per week"
    assert all(day_of(startup) < day_of(m) < day_of(mini) for m in weekly)
    assert all(m.end - m.start == timedelta(minutes=30) for m in weekly)
    assert all("teacher" not in m.participants for m in weekly)

    mains = of_kind(schedule, MeetingKind.MAIN_EVALUATION)
    assert [m.sequence for m in mains] == [1, 2, 3]
    for m in mains:
        due = add_months(PLAN_START, 3 * m.sequence)
        assert due <= day_of(m) < due + timedelta(days=14)

    (final,) = of_kind(schedule, MeetingKind.FINAL_EVALUATION)
    assert PLAN_END - timedelta(days=14) <= day_of(final) <= PLAN_END

    talks = of_kind(schedule, MeetingKind.CHILD_TALK)
    assert {t.before for t in talks} == {
        MeetingRef(MeetingKind.MINI_EVALUATION, 1),
        MeetingRef(MeetingKind.MAIN_EVALUATION, 1),
        MeetingRef(MeetingKind.MAIN_EVALUATION, 2),
        MeetingRef(MeetingKind.MAIN_EVALUATION, 3),
        MeetingRef(MeetingKind.FINAL_EVALUATION, 1),
    }
    for talk in talks:
        assert set(talk.participants) == {"child", "cw", "aunt"}, "no parents at a child talk"
    for m in [startup, mini, *mains, final]:
        assert set(m.participants) == {"child", "mother", "father", "aunt", "cw", "teacher"}
    assert len({m.key for m in schedule.meetings}) == len(schedule.meetings)


EVENING = ScheduleRules(office_hours=tuple(WeeklyWindow(d, time(8), time(21)) for d in range(5)))


def caseworker_busy_until(until: dict[int, time]) -> tuple[Interval, ...]:
    """The caseworker's day is full from 08:00 until ``until[weekday]``."""
    days = (_FIRST + timedelta(days=i) for i in range((_LAST - _FIRST).days))
    return tuple(
        Interval(local_instant(day, time(8)), local_instant(day, until[day.weekday()]))
        for day in days
        if day.weekday() in until
    )


def with_caseworker_busy(plan: PlanSpec, busy: tuple[Interval, ...]) -> PlanSpec:
    members = tuple(
        replace(m, participant=replace(m.participant, busy=busy)) if m.participant.id == "cw" else m
        for m in plan.members
    )
    return replace(plan, members=members, rules=EVENING)


def test_the_childs_evening_limit_moves_meetings_to_another_day() -> None:
    # With late office hours, Monday's first free time is 18:30: a meeting there would
    # end after 19:00. Tuesday and Thursday have the milieu therapist until 18:00, so
    # the child's wish leaves Wednesday and Friday evenings.
    busy = caseworker_busy_until(
        {0: time(18, 30), 1: time(17), 2: time(17), 3: time(17), 4: time(17)}
    )
    unlimited = plan_schedule(with_caseworker_busy(demo_plan(child_wishes=None), busy), now=NOW)
    assert any(
        m.end.astimezone(OSLO).time() > time(19)
        for m in unlimited.meetings
        if "child" in m.participants
    ), "without the wish some meeting ends after 19:00"

    schedule = plan_schedule(with_caseworker_busy(demo_plan(), busy), now=NOW)
    assert schedule.unschedulable == ()
    check_family_rules(schedule)
    (startup,) = of_kind(schedule, MeetingKind.STARTUP)
    assert day_of(startup) == date(2027, 1, 6)  # a Wednesday, not Monday 18:30–20:00
    assert startup.start.astimezone(OSLO).time() == time(17)


def test_a_start_up_blocked_by_the_childs_wish_says_so() -> None:
    # Free from 18:00 only: a 90-minute start-up cannot end by 19:00 on any day.
    busy = caseworker_busy_until({d: time(18) for d in range(5)})
    schedule = plan_schedule(with_caseworker_busy(demo_plan(), busy), now=NOW)
    startup = next(u for u in schedule.unschedulable if u.kind is MeetingKind.STARTUP)
    assert startup.reason is Reason.NO_SLOT and startup.explanation is not None
    blockers = [b.constraint.as_dict() for b in startup.explanation.blockers]
    assert {"rule": "child_wish", "wish": "not_after"} in blockers
    assert {"rule": "busy", "participant": "cw"} in blockers
    assert startup.explanation.alternatives
    assert "child" in startup.participants, "the child is not dropped to make it fit"
    # Shorter meetings still fit in 18:00–19:00.
    dependants = [u for u in schedule.unschedulable if u.kind is MeetingKind.WEEKLY_STATUS]
    assert dependants and all(u.reason is Reason.DEPENDS_ON for u in dependants)
    assert all(u.depends_on == MeetingRef(MeetingKind.STARTUP, 1) for u in dependants)


def test_a_start_up_that_cannot_be_placed_is_explained() -> None:
    closed = Closure(PLAN_START - timedelta(days=3), PLAN_START + timedelta(days=20), "closed")
    schedule = plan_schedule(demo_plan(closures=(closed,)), now=NOW)
    startup = next(u for u in schedule.unschedulable if u.kind is MeetingKind.STARTUP)
    assert startup.reason is Reason.NO_SLOT
    assert startup.explanation is not None
    top = startup.explanation.blockers[0]
    assert top.constraint.rule is Rule.CLOSURE and top.constraint.detail == "closed"
    assert 1 <= len(startup.explanation.alternatives) <= 3
    dependants = [u for u in schedule.unschedulable if u.reason is Reason.DEPENDS_ON]
    assert {u.kind for u in dependants} >= {MeetingKind.MINI_EVALUATION}
    assert all(u.depends_on is not None for u in dependants)
    # The quarterly evaluations hang on the plan's dates, not on the start-up.
    assert len(of_kind(schedule, MeetingKind.MAIN_EVALUATION)) == 3


def test_an_evaluation_moves_later_when_its_child_talk_has_no_room() -> None:
    # Easter 2027 plus a closure fill 29 March – 4 April: an evaluation on Monday
    # 5 April (its first free day) would leave no day 2–7 days before it for the talk.
    closure = Closure(date(2027, 3, 29), date(2027, 4, 2), "easter closure")
    schedule = plan_schedule(demo_plan(closures=(closure,)), now=NOW)
    main = next(m for m in of_kind(schedule, MeetingKind.MAIN_EVALUATION) if m.sequence == 1)
    talk = next(m for m in of_kind(schedule, MeetingKind.CHILD_TALK) if m.before == main.ref)
    assert day_of(main) == date(2027, 4, 7)
    assert day_of(talk) == date(2027, 4, 5)
    check_family_rules(schedule)


def test_rules_are_overridable() -> None:
    rules = ScheduleRules(
        weekly_status=False,
        main_evaluation_months=4,
        main_evaluation_duration=timedelta(minutes=120),
    )
    schedule = plan_schedule(demo_plan(rules=rules), now=NOW)
    assert of_kind(schedule, MeetingKind.WEEKLY_STATUS) == []
    mains = of_kind(schedule, MeetingKind.MAIN_EVALUATION)
    assert len(mains) == 2
    assert all(m.end - m.start == timedelta(minutes=120) for m in mains)
    assert day_of(mains[0]) >= date(2027, 5, 4)


def test_a_child_who_does_not_take_part_gets_no_talks_and_no_invitations() -> None:
    schedule = plan_schedule(demo_plan(child_takes_part=False), now=NOW)
    assert of_kind(schedule, MeetingKind.CHILD_TALK) == []
    assert all("child" not in m.participants for m in schedule.meetings)


def test_revision_keeps_held_and_past_meetings_and_replans_the_future() -> None:
    original = plan_schedule(demo_plan(), now=NOW)
    startup = of_kind(original, MeetingKind.STARTUP)[0]
    weekly = of_kind(original, MeetingKind.WEEKLY_STATUS)
    mini = of_kind(original, MeetingKind.MINI_EVALUATION)[0]
    held = [replace(startup, held=True), replace(weekly[0], held=True)]
    later = [m for m in original.meetings if m.start > weekly[1].end]
    now = weekly[1].end + timedelta(hours=1)

    # The caseworker is now away the week the mini-evaluation was planned.
    away = Interval(
        local_instant(day_of(mini) - timedelta(days=day_of(mini).weekday()), time(0)),
        local_instant(day_of(mini) + timedelta(days=7), time(0)),
    )
    plan = demo_plan()
    members = tuple(
        replace(m, participant=replace(m.participant, busy=(away,)))
        if m.participant.id == "cw"
        else m
        for m in plan.members
    )
    existing = [*held, weekly[1], *later]
    revised = plan_schedule(replace(plan, members=members), now=now, existing=existing)

    assert set(revised.kept) == {*held, weekly[1]}  # held, and past though not marked held
    assert all(m.start >= now for m in revised.planned)
    new_mini = of_kind(revised, MeetingKind.MINI_EVALUATION)[0]
    assert new_mini.start != mini.start
    assert not (away.start < new_mini.end and new_mini.start < away.end)
    assert 28 <= (day_of(new_mini) - day_of(startup)).days <= 42
    check_family_rules(revised)
    assert len({m.key for m in revised.meetings}) == len(revised.meetings)


def test_revision_keeps_pinned_and_ad_hoc_meetings_and_works_around_them() -> None:
    original = plan_schedule(demo_plan(), now=NOW)
    mini = of_kind(original, MeetingKind.MINI_EVALUATION)[0]
    pinned = replace(
        mini, start=mini.start + timedelta(days=1), end=mini.end + timedelta(days=1), pinned=True
    )
    ad_hoc_day = date(2027, 4, 6)
    ad_hoc = Meeting(
        MeetingKind.AD_HOC,
        1,
        local_instant(ad_hoc_day, time(9)),
        local_instant(ad_hoc_day, time(10)),
        ("mother", "cw"),
    )
    revised = plan_schedule(demo_plan(), now=NOW, existing=[pinned, ad_hoc])
    assert pinned in revised.kept and ad_hoc in revised.kept
    assert of_kind(revised, MeetingKind.MINI_EVALUATION) == [pinned]
    family_days = [day_of(m) for m in revised.meetings]
    assert family_days.count(ad_hoc_day) == 1
    check_family_rules(revised)


def test_a_shortened_plan_lets_go_of_a_pinned_meeting_after_its_new_end() -> None:
    """A confirmed meeting stays where it is while the plan has its place: a main evaluation
    the shortened plan no longer has is let go (the service cancels it, telling its invitees),
    never moved."""
    original = plan_schedule(demo_plan(), now=NOW)
    last_main = of_kind(original, MeetingKind.MAIN_EVALUATION)[-1]
    pinned = replace(last_main, pinned=True)
    new_end = day_of(last_main) - timedelta(days=10)
    revised = plan_schedule(demo_plan(expected_end=new_end), now=NOW, existing=[pinned])
    assert pinned not in revised.kept and pinned not in revised.meetings
    assert all(day_of(m) <= new_end for m in revised.meetings)
    kept = plan_schedule(demo_plan(), now=NOW, existing=[pinned])
    assert pinned in kept.kept, "within the plan it stays"


def test_same_plan_same_schedule() -> None:
    assert plan_schedule(demo_plan(), now=NOW) == plan_schedule(demo_plan(), now=NOW)


def test_same_schedule_in_a_fresh_interpreter_whatever_the_hash_seed() -> None:
    """Sets of ids and dates must never leak their iteration order into the output."""
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from test_schedule import demo_plan, NOW;"
        "from calendars.planner import plan_schedule;"
        "print(repr(plan_schedule(demo_plan(), now=NOW)))"
    )
    here = str(Path(__file__).parent)
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script, here],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            cwd=Path(__file__).parents[2],
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
    assert "startup" in outputs.pop()


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"expected_end": PLAN_START - timedelta(days=1)}, "expected_end"),
        ({"expected_end": PLAN_START}, "expected_end"),
        ({"ordered": True}, "order_date"),
        (
            {"ordered": True, "order_date": date(2026, 12, 1), "expected_end": date(2027, 12, 2)},
            "expected_end",
        ),
        ({"members": ()}, "members"),
        (
            {
                "members": (
                    PlanMember(
                        Participant(
                            "cw",
                            "Caseworker",
                            ParticipantKind.PROFESSIONAL,
                            availability=(WeeklyWindow(0, time(15), time(9)),),
                        ),
                        "caseworker",
                    ),
                )
            },
            "members[0].participant.availability[0]",
        ),
        ({"rules": ScheduleRules(mini_evaluation_weeks=(6, 4))}, "rules.mini_evaluation_weeks"),
        ({"rules": ScheduleRules(child_talk_duration=timedelta(0))}, "rules.child_talk_duration"),
        ({"child_wishes": ChildWishes(not_before=time(20), not_after=time(8))}, "child_wishes"),
    ],
)
def test_bad_plans_are_refused_naming_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ScheduleInputError) as caught:
        plan_schedule(demo_plan(**changes), now=NOW)
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)


def test_an_ordered_measure_may_run_one_year_and_day_care_longer() -> None:
    ordered = demo_plan(ordered=True, order_date=date(2027, 1, 4), expected_end=date(2028, 1, 4))
    assert of_kind(plan_schedule(ordered, now=NOW), MeetingKind.FINAL_EVALUATION)
    day_care = demo_plan(
        ordered=True, order_date=date(2026, 6, 1), expected_end=date(2028, 1, 4), day_care=True
    )
    assert of_kind(plan_schedule(day_care, now=NOW), MeetingKind.FINAL_EVALUATION)


def test_add_months_clamps_to_the_end_of_the_month() -> None:
    assert add_months(date(2027, 1, 31), 1) == date(2027, 2, 28)
    assert add_months(date(2027, 11, 30), 3) == date(2028, 2, 29)
    assert add_months(date(2027, 1, 4), 12) == date(2028, 1, 4)


def test_every_kept_meeting_is_returned_even_with_repeated_numbers() -> None:
    def ad_hoc(day: date) -> Meeting:
        return Meeting(
            MeetingKind.AD_HOC,
            1,
            local_instant(day, time(9)),
            local_instant(day, time(10)),
            ("cw",),
        )

    first, second = ad_hoc(date(2027, 2, 9)), ad_hoc(date(2027, 2, 10))
    revised = plan_schedule(demo_plan(), now=NOW, existing=[second, first])
    assert revised.kept == (first, second)
