"""The slot finder as a coordinator meets it: the slot it picks, and its explanations."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest

from calendars.slot_finder import find_slot
from calendars.slots import (
    ChildWishes,
    Constraint,
    Interval,
    Participant,
    ParticipantKind,
    Rule,
    SlotInputError,
    SlotRequest,
    WeeklyWindow,
    Wish,
    weekly_intervals,
)
from calendars.workdays import Closure, day_status
from calendars.zone import OSLO, local_date, local_instant

CASEWORKER = Participant("cw", "Caseworker", ParticipantKind.PROFESSIONAL)
MOTHER = Participant("mother", "Mother", ParticipantKind.FAMILY)
CHILD = Participant("child", "Child", ParticipantKind.CHILD)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return local_instant(day, time(hour, minute))


def request(
    first: date,
    last: date,
    *participants: Participant,
    minutes: int = 60,
    **options: object,
) -> SlotRequest:
    """A search over local days ``first``..``last`` inclusive."""
    base = SlotRequest(
        window_start=at(first, 0),
        window_end=at(last + timedelta(days=1), 0),
        duration=timedelta(minutes=minutes),
        participants=participants or (CASEWORKER, MOTHER),
    )
    return replace(base, **options)  # type: ignore[arg-type]


def local(instant: datetime) -> datetime:
    return instant.astimezone(OSLO)


def test_earliest_slot_is_the_start_of_office_hours() -> None:
    result = find_slot(request(date(2027, 1, 4), date(2027, 1, 8)))
    assert result.slot is not None
    assert local(result.slot.start) == datetime(2027, 1, 4, 8, tzinfo=OSLO)
    assert result.slot.end - result.slot.start == timedelta(minutes=60)
    assert result.slot.participants == ("cw", "mother")
    assert result.explanation is None and result.absent == ()


def test_busy_intervals_push_the_slot_later() -> None:
    busy = (
        Interval(at(date(2027, 1, 4), 8), at(date(2027, 1, 4), 9)),
        Interval(at(date(2027, 1, 4), 8, 30), at(date(2027, 1, 4), 10, 15)),
    )
    mother = replace(MOTHER, busy=busy)
    result = find_slot(request(date(2027, 1, 4), date(2027, 1, 8), CASEWORKER, mother))
    assert result.slot is not None
    assert local(result.slot.start) == datetime(2027, 1, 4, 10, 15, tzinfo=OSLO)


def test_availability_is_respected() -> None:
    mother = replace(MOTHER, availability=(WeeklyWindow(2, time(13), time(14, 30)),))
    result = find_slot(request(date(2027, 1, 4), date(2027, 1, 15), CASEWORKER, mother))
    assert result.slot is not None
    assert local(result.slot.start) == datetime(2027, 1, 6, 13, tzinfo=OSLO)


def test_17_may_is_never_chosen() -> None:
    # Friday 14 May after office hours: the next working day is Tuesday 18 May 2027,
    # since 17 May is both Constitution Day and Whit Monday.
    req = replace(
        request(date(2027, 5, 14), date(2027, 5, 21)), window_start=at(date(2027, 5, 14), 15, 30)
    )
    result = find_slot(req)
    assert result.slot is not None
    assert local(result.slot.start) == datetime(2027, 5, 18, 8, tzinfo=OSLO)


def test_a_window_on_17_may_explains_the_holiday() -> None:
    result = find_slot(request(date(2027, 5, 17), date(2027, 5, 17)))
    assert result.slot is None and result.explanation is not None
    top = result.explanation.blockers[0]
    assert top.constraint.as_dict()["rule"] == "holiday"
    assert top.constraint.date == date(2027, 5, 17)
    assert top.excluded == result.explanation.candidates
    assert top.hard
    alternatives = result.explanation.alternatives
    assert len(alternatives) == 3
    for alternative in alternatives:
        assert local_date(alternative.start) != date(2027, 5, 17)
        assert day_status(local_date(alternative.start)).is_working


@pytest.mark.parametrize(
    ("day", "utc_hour"),
    [(date(2026, 3, 30), 7), (date(2026, 10, 26), 8)],
)
def test_nine_oclock_local_after_a_dst_change(day: date, utc_hour: int) -> None:
    mother = replace(MOTHER, availability=(WeeklyWindow(0, time(9), time(10)),))
    result = find_slot(request(day - timedelta(days=3), day, CASEWORKER, mother))
    assert result.slot is not None
    assert result.slot.start == datetime(day.year, day.month, day.day, utc_hour, tzinfo=UTC)
    assert local(result.slot.start).hour == 9


def test_weekly_intervals_keep_local_time_across_dst() -> None:
    busy = weekly_intervals(1, time(17), time(18), date(2026, 3, 20), date(2026, 4, 5))
    assert [i.start for i in busy] == [
        datetime(2026, 3, 24, 16, tzinfo=UTC),
        datetime(2026, 3, 31, 15, tzinfo=UTC),
    ]


def test_child_wish_not_after_bounds_the_end() -> None:
    # Evening office hours, and the caseworker busy until 18:30: a 60-minute meeting
    # would end at 19:30, after the child's limit of 19:00.
    evening = tuple(WeeklyWindow(d, time(8), time(21)) for d in range(5))
    day = date(2027, 1, 5)
    cw = replace(CASEWORKER, busy=(Interval(at(day, 8), at(day, 18, 30)),))
    req = request(
        day, day, cw, CHILD, office_hours=evening, child_wishes=ChildWishes(not_after=time(19))
    )
    result = find_slot(req)
    assert result.slot is None and result.explanation is not None
    rules = [b.constraint.as_dict() for b in result.explanation.blockers]
    assert {"rule": "child_wish", "wish": "not_after"} in rules
    assert {"rule": "busy", "participant": "cw"} in rules
    # A 30-minute meeting fits exactly: 18:30–19:00.
    short = find_slot(replace(req, duration=timedelta(minutes=30)))
    assert short.slot is not None
    assert local(short.slot.end) == datetime(2027, 1, 5, 19, tzinfo=OSLO)


def test_child_wishes_only_apply_when_the_child_takes_part() -> None:
    wishes = ChildWishes(not_before=time(10))
    without_child = find_slot(request(date(2027, 1, 4), date(2027, 1, 4), child_wishes=wishes))
    with_child = find_slot(
        request(date(2027, 1, 4), date(2027, 1, 4), CASEWORKER, CHILD, child_wishes=wishes)
    )
    assert without_child.slot is not None and with_child.slot is not None
    assert local(without_child.slot.start).hour == 8
    assert local(with_child.slot.start).hour == 10


def test_after_school_holds_on_school_days_only() -> None:
    winter_break = Closure(date(2027, 2, 22), date(2027, 2, 26), "winter break")
    wishes = ChildWishes(after_school=time(15), school_holidays=(winter_break,))
    school_day = find_slot(
        request(date(2027, 2, 15), date(2027, 2, 15), CASEWORKER, CHILD, child_wishes=wishes)
    )
    holiday = find_slot(
        request(date(2027, 2, 22), date(2027, 2, 22), CASEWORKER, CHILD, child_wishes=wishes)
    )
    assert school_day.slot is not None and holiday.slot is not None
    assert local(school_day.slot.start).hour == 15
    assert local(holiday.slot.start).hour == 8


def test_closures_and_avoided_dates_are_skipped() -> None:
    closure = Closure(date(2027, 7, 5), date(2027, 7, 9), "summer")
    result = find_slot(
        request(
            date(2027, 7, 5),
            date(2027, 7, 16),
            closures=(closure,),
            avoid_dates=frozenset({date(2027, 7, 12)}),
        )
    )
    assert result.slot is not None
    assert local_date(result.slot.start) == date(2027, 7, 13)


def test_keep_apart_with_a_minimum_gap() -> None:
    day = date(2027, 1, 4)
    other = Interval(at(day, 8), at(day, 9))
    result = find_slot(request(day, day, keep_apart=(other,), min_gap=timedelta(hours=2)))
    assert result.slot is not None
    assert local(result.slot.start) == datetime(2027, 1, 4, 11, tzinfo=OSLO)


def test_an_optional_participant_is_dropped_only_when_nobody_else_fits_and_is_named() -> None:
    day = date(2027, 1, 4)
    teacher = Participant(
        "teacher",
        "Teacher",
        ParticipantKind.PROFESSIONAL,
        required=False,
        busy=(Interval(at(day, 8), at(day + timedelta(days=1), 0)),),
    )
    # Within one day the teacher never fits: the slot goes ahead without them, said so.
    alone = find_slot(request(day, day, CASEWORKER, MOTHER, teacher))
    assert alone.slot is not None
    assert alone.absent == ("teacher",)
    assert alone.slot.participants == ("cw", "mother")
    assert alone.slot.gives_up == (Constraint(Rule.BUSY, participant="teacher"),)
    # Over two days everyone fits on the second day, which wins over the earlier slot.
    both = find_slot(request(day, day + timedelta(days=1), CASEWORKER, MOTHER, teacher))
    assert both.slot is not None and both.absent == ()
    assert local(both.slot.start) == datetime(2027, 1, 5, 8, tzinfo=OSLO)


def test_a_required_participant_is_never_dropped() -> None:
    day = date(2027, 1, 4)
    mother = replace(MOTHER, busy=(Interval(at(day, 0), at(day + timedelta(days=1), 0)),))
    result = find_slot(request(day, day, CASEWORKER, mother))
    assert result.slot is None and result.explanation is not None
    assert result.explanation.blockers[0].constraint == Constraint(Rule.BUSY, participant="mother")
    for alternative in result.explanation.alternatives:
        assert "mother" in alternative.participants
        assert alternative.gives_up


def test_infeasible_request_explains_and_offers_three_alternatives() -> None:
    # The only required participant can meet on weekday evenings only, after office hours.
    evenings = tuple(WeeklyWindow(d, time(17), time(19)) for d in range(5))
    therapist = replace(CASEWORKER, availability=evenings)
    result = find_slot(
        request(date(2027, 3, 1), date(2027, 3, 7), therapist),
        now=datetime(2027, 2, 1, tzinfo=UTC),
    )
    assert not result.feasible and result.explanation is not None
    explanation = result.explanation
    blockers = {b.constraint: b for b in explanation.blockers}
    office = blockers[Constraint(Rule.OFFICE_HOURS)]
    availability = blockers[Constraint(Rule.AVAILABILITY, participant="cw")]
    assert office.excluded > 0 and office.excluded_alone > 0
    assert availability.excluded > 0 and availability.excluded_alone > 0
    assert blockers[Constraint(Rule.WEEKEND)].hard
    assert len(explanation.alternatives) == 3
    for alternative in explanation.alternatives:
        assert alternative.gives_up, "an alternative must say what it gives up"
        assert day_status(local_date(alternative.start)).is_working
        rules = {c.rule for c in alternative.gives_up}
        assert rules & {Rule.OFFICE_HOURS, Rule.AVAILABILITY}
    cheapest = explanation.alternatives[0]
    assert cheapest.gives_up == (Constraint(Rule.OFFICE_HOURS),)
    assert local(cheapest.start) == datetime(2027, 3, 1, 17, tzinfo=OSLO)
    as_json = json.loads(json.dumps(explanation.as_dict()))
    assert {"rule": "office_hours", "excluded": office.excluded} in [
        {k: b[k] for k in ("rule", "excluded")} for b in as_json["blockers"]
    ]
    assert as_json["alternatives"][0]["gives_up"] == [{"rule": "office_hours"}]


def test_alternatives_just_after_the_window() -> None:
    day = date(2027, 1, 4)
    mother = replace(MOTHER, busy=(Interval(at(day, 0), at(day + timedelta(days=1), 0)),))
    result = find_slot(request(day, day, CASEWORKER, mother))
    assert result.explanation is not None
    first = result.explanation.alternatives[0]
    assert first.gives_up == (Constraint(Rule.WINDOW, detail="after"),)
    assert local(first.start) == datetime(2027, 1, 5, 8, tzinfo=OSLO)


def test_alternatives_before_the_window_only_when_now_is_known() -> None:
    day = date(2027, 1, 11)
    mother = replace(MOTHER, busy=(Interval(at(day, 0), at(day + timedelta(days=1), 0)),))
    req = request(day, day, CASEWORKER, mother)
    unknown = find_slot(req)
    known = find_slot(req, now=at(date(2027, 1, 4), 12))
    assert unknown.explanation is not None and known.explanation is not None
    before = Constraint(Rule.WINDOW, detail="before")
    assert all(before not in a.gives_up for a in unknown.explanation.alternatives)
    earlier = [a for a in known.explanation.alternatives if before in a.gives_up]
    assert earlier and local(earlier[0].end) == datetime(2027, 1, 8, 16, tzinfo=OSLO)


def test_now_inside_the_window_moves_the_earliest_start() -> None:
    result = find_slot(request(date(2027, 1, 4), date(2027, 1, 8)), now=at(date(2027, 1, 4), 10, 7))
    assert result.slot is not None
    assert local(result.slot.start) == datetime(2027, 1, 4, 10, 15, tzinfo=OSLO)


def test_same_inputs_same_output() -> None:
    evenings = (WeeklyWindow(1, time(17), time(19)),)
    req = request(
        date(2027, 5, 10),
        date(2027, 5, 21),
        CASEWORKER,
        replace(MOTHER, availability=evenings),
        replace(CHILD, required=False),
        avoid_dates=frozenset({date(2027, 5, 11), date(2027, 5, 12), date(2027, 5, 18)}),
        child_wishes=ChildWishes(not_after=time(19)),
    )
    first = find_slot(req, now=datetime(2027, 5, 1, tzinfo=UTC))
    second = find_slot(req, now=datetime(2027, 5, 1, tzinfo=UTC))
    assert first == second
    assert first.explanation is not None and second.explanation is not None
    assert first.explanation.as_dict() == second.explanation.as_dict()


# --- input validation -----------------------------------------------------------------


def _bad(**changes: object) -> SlotRequest:
    return replace(request(date(2027, 1, 4), date(2027, 1, 8)), **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("req", "field"),
    [
        (_bad(window_end=at(date(2027, 1, 3), 0)), "window_end"),
        (_bad(window_end=at(date(2028, 1, 6), 0)), "window_end"),
        (_bad(window_start=datetime(2027, 1, 4)), "window_start"),
        (_bad(duration=timedelta(0)), "duration"),
        (_bad(duration=timedelta(days=30)), "duration"),
        (_bad(step=timedelta(0)), "step"),
        (_bad(participants=()), "participants"),
        (_bad(participants=(CASEWORKER, CASEWORKER)), "participants[1].id"),
        (
            _bad(
                participants=(replace(MOTHER, availability=(WeeklyWindow(1, time(12), time(9)),)),)
            ),
            "participants[0].availability[0]",
        ),
        (
            _bad(
                participants=(replace(MOTHER, availability=(WeeklyWindow(7, time(9), time(12)),)),)
            ),
            "participants[0].availability[0].weekday",
        ),
        (
            _bad(
                participants=(
                    replace(
                        MOTHER,
                        busy=(Interval(at(date(2027, 1, 5), 9), at(date(2027, 1, 5), 8)),),
                    ),
                )
            ),
            "participants[0].busy[0]",
        ),
        (_bad(office_hours=(WeeklyWindow(0, time(16), time(8)),)), "office_hours[0]"),
        (
            _bad(child_wishes=ChildWishes(not_before=time(19), not_after=time(9))),
            "child_wishes",
        ),
        (_bad(closures=(Closure(date(2027, 7, 30), date(2027, 7, 1)),)), "closures[0]"),
    ],
)
def test_malformed_input_names_the_field(req: SlotRequest, field: str) -> None:
    with pytest.raises(SlotInputError) as caught:
        find_slot(req)
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith(field)


def test_a_window_in_the_past_is_refused() -> None:
    with pytest.raises(SlotInputError) as caught:
        find_slot(request(date(2027, 1, 4), date(2027, 1, 8)), now=at(date(2027, 2, 1), 9))
    assert caught.value.field == "window_end"
    assert "past" in str(caught.value)


def test_a_window_of_exactly_a_leap_year_is_accepted() -> None:
    result = find_slot(
        SlotRequest(
            at(date(2028, 1, 3), 0),
            at(date(2028, 1, 3), 0) + timedelta(days=366),
            timedelta(minutes=60),
            (CASEWORKER,),
        )
    )
    assert result.slot is not None


def test_wish_enum_spelling_matches_the_explanations() -> None:
    assert Constraint(Rule.CHILD_WISH, wish=Wish.NOT_AFTER).as_dict() == {
        "rule": "child_wish",
        "wish": "not_after",
    }
