"""The schedule a plan implies (DESIGN.md, "The schedule a plan implies").

Meetings are placed one after another, in a fixed order, each with the slot finder:
the start-up, the mini-evaluation and its child talk, the weekly status meetings in
between, then each main evaluation and the final evaluation, each followed by its
child talk. Every meeting placed becomes busy time for its participants and, when the
family takes part, takes its day away from the family's other meetings. The order and
the finder are deterministic, so the same plan gives the same schedule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from calendars.schedule import (
    Meeting,
    MeetingKind,
    MeetingRef,
    PlanSpec,
    Reason,
    Schedule,
    Unschedulable,
    add_months,
    meeting_key,
    meeting_order,
    validate_plan,
)
from calendars.slot_finder import find_slot
from calendars.slots import Explanation, Interval, Participant, ParticipantKind, SlotRequest
from calendars.zone import local_date, local_midnight


def plan_schedule(plan: PlanSpec, *, now: datetime, existing: Sequence[Meeting] = ()) -> Schedule:
    """The plan's meetings from ``now`` on. Existing meetings that are held, pinned
    (confirmed or moved by a coordinator), ad hoc or already begun are kept as they were
    and anchor what follows; other existing meetings are planned afresh. A pinned meeting
    whose place in the series the plan no longer has (a main evaluation after a new, earlier
    end) is let go: it is neither kept nor planned, and the caller cancels it."""
    validate_plan(plan, now)
    return _Planner(plan, now, existing).run()


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
        #: The kept meetings' keys the plan's series asked for: a pinned meeting it never asks
        #: for has no place in the plan any more.
        self.claimed: set[str] = set()
        for meeting in sorted(existing, key=meeting_order):
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

    def _kept(self, key: str) -> Meeting | None:
        """The kept meeting at this place in the series, if any; the series has asked for it."""
        self.claimed.add(key)
        return self.kept.get(key)

    def _let_go(self, meeting: Meeting) -> bool:
        """A pinned meeting still to come whose place in the series the plan no longer has."""
        return (meeting.pinned and not meeting.held and meeting.start >= self.now
                and meeting.kind is not MeetingKind.AD_HOC and meeting.key not in self.claimed)

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
        kept = self._kept(meeting_key(kind, sequence, None))
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
        kept = self._kept(meeting_key(kind, sequence, None))
        talk_key = meeting_key(MeetingKind.CHILD_TALK, talk_sequence, ref)
        if not self._wants_talk(kind) or self._kept(talk_key) is not None:
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
        if startup is None and self._kept(meeting_key(MeetingKind.MINI_EVALUATION, 1, None)) is None:
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
            kept=tuple(m for m in self.kept_list if not self._let_go(m)),
            planned=tuple(sorted(self.planned, key=meeting_order)),
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
            if startup is None and self._kept(meeting_key(MeetingKind.WEEKLY_STATUS, sequence, None)) is None:
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
