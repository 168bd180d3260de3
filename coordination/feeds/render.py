"""Rendering a feed: the scope's meetings, filtered by consent, as one calendar."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col
from sqlmodel import select as sm_select
from sqlmodel.ext.asyncio.session import AsyncSession

from calendars.events import CalendarEvent
from calendars.ical import render_event, render_feed
from calendars.schedule import MeetingKind
from calendars.zone import local_date
from coordination.access.rules import visible_cases
from coordination.consent.disclosure import Reader, level_for, to_event, visible_for
from coordination.consent.facts import Columns, PolicyFacts, case_facts, load_policy_facts
from coordination.domain import Language, Role, Sector, UserRole
from coordination.feeds.enums import FeedScope
from coordination.feeds.tokens import TokenState
from coordination.levels import Level
from coordination.models import (
    Alert,
    Case,
    Contact,
    Meeting,
    MeetingParticipant,
    User,
)
from coordination.outbox.alerts import ALERT_TEXTS
from coordination.scheduling.enums import MeetingStatus, ParticipantAnswer

#: How often clients are asked to poll (REFRESH-INTERVAL, X-PUBLISHED-TTL).
REFRESH = timedelta(hours=1)


#: A cached body is rendered again at the latest this long after it was rendered, so a
#: time dependence we did not foresee can never keep a stale feed for long.
CACHE_HORIZON = timedelta(hours=1)


#: A cancelled meeting stays in feeds as STATUS:CANCELLED this long, so that clients
#: show the cancellation instead of the meeting just vanishing; then it is dropped.
CANCELLED_KEPT = timedelta(days=30)


CALNAME_PREFIX = "Samhandling – "


MY_CASES = {Language.NB: "mine saker", Language.NN: "mine saker", Language.EN: "my cases"}


NEUTRAL_CALNAME = {Language.NB: "Møter", Language.NN: "Møte", Language.EN: "Meetings"}


# --- rendering -------------------------------------------------------------------------


class FragmentCache:
    """Rendered VEVENTs keyed by the complete event: the same value always gives the same
    bytes, so an entry can never be stale, only unused (then it ages out)."""

    def __init__(self, max_entries: int = 50_000) -> None:
        self._entries: OrderedDict[CalendarEvent, bytes] = OrderedDict()
        self._max = max_entries

    def get(self, event: CalendarEvent) -> bytes:
        fragment = self._entries.get(event)
        if fragment is not None:
            self._entries.move_to_end(event)
            return fragment
        fragment = render_event(event)
        self._entries[event] = fragment
        if len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return fragment

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True, slots=True)
class CaseAccount:
    """What one case's part of a feed disclosed: the detail of a ``feed.served`` entry."""

    case_id: int | None
    level: Level
    meeting_ids: tuple[int, ...]
    consent_record_ids: tuple[int, ...]
    digest: str


@dataclass(frozen=True, slots=True)
class Rendered:
    body: bytes
    etag: str
    #: The newest change among the meetings served (the token's creation if none are).
    newest_change: datetime
    valid_until: datetime
    accounts: tuple[CaseAccount, ...]


@dataclass(frozen=True, slots=True)
class FeedMeeting:
    """The columns of a meeting a feed reads (``MEETING_COLUMNS``): plain rows, not ORM
    objects, so that a cold render spends its time rendering, not loading (issue 17)."""

    id: int
    case_id: int
    uid: str
    kind: MeetingKind
    status: MeetingStatus
    ical_sequence: int
    start: datetime
    end: datetime
    place: str
    video_link: str
    agenda: str
    parents_told: bool
    cancelled_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class FeedContact:
    """The columns of a participant's contact a feed reads (``CONTACT_COLUMNS``)."""

    id: int
    role: Role
    sector: Sector
    name: str
    email: str


@dataclass(frozen=True, slots=True)
class Attendance:
    """A participant's answer, the one thing a feed reads of a participation."""

    partstat: ParticipantAnswer


ATTENDANCE = {answer: Attendance(answer) for answer in ParticipantAnswer}
MEETING_COLUMNS = tuple(col(getattr(Meeting, f.name)) for f in fields(FeedMeeting))
CONTACT_COLUMNS = tuple(col(getattr(Contact, f.name)) for f in fields(FeedContact))
PARTICIPANT_COLUMNS = (col(MeetingParticipant.meeting_id), col(MeetingParticipant.contact_id),
                       col(MeetingParticipant.partstat))


def strong_etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _drop_at(meeting: FeedMeeting) -> datetime | None:
    if meeting.status is not MeetingStatus.CANCELLED:
        return None
    return (meeting.cancelled_at or meeting.updated_at) + CANCELLED_KEPT


async def _scope_cases(
    session: AsyncSession, state: TokenState
) -> tuple[list[Case], Any, User | None]:
    """The cases in scope and a query of their ids (so the meeting queries stay one query
    each however many cases a leader has)."""
    if state.scope is FeedScope.COORDINATOR:
        assert state.user_id is not None
        user = await session.get(User, state.user_id)
        if user is None:
            return [], None, None
        cases_query = visible_cases(user)
        cases = list((await session.exec(cases_query)).all())
        return cases, cases_query.with_only_columns(col(Case.id)), user
    assert state.case_id is not None
    case = await session.get(Case, state.case_id)
    if case is None or case.unit_id != state.unit_id:
        return [], None, None
    return [case], sm_select(Case.id).where(Case.id == state.case_id), None


async def render(
    session: AsyncSession, state: TokenState, now: datetime, fragments: FragmentCache
) -> Rendered:
    """The feed as this token's reader may see it at ``now``."""
    material = await _material(session, state, now)
    reader = material.contact_reader or _staff_reader(state, material.user)
    shown = _meetings_shown(material, reader, now, fragments)
    if state.scope is FeedScope.COORDINATOR and material.cases:
        for deadline in await _deadlines(session, material.case_ids, material.by_id):
            shown.items.append((deadline.at, deadline.event.uid, fragments.get(deadline.event)))
            shown.note_change(deadline.changed)
    shown.items.sort(key=lambda item: (item[0], item[1]))
    body = render_feed(_calendar_name(state, material.cases, reader, shown.per_case),
                       (fragment for _, _, fragment in shown.items), refresh=REFRESH)
    return Rendered(
        body=body,
        etag=strong_etag(body),
        newest_change=shown.newest or state.created_at,
        valid_until=min(b for b in material.bounds if b > now),
        accounts=_accounts(state, shown.per_case),
    )


@dataclass(slots=True)
class _Material:
    """What a feed is drawn from: the cases in scope (none once a contact's token no longer
    fits its case), their meetings with who takes part, in a contact's feed that contact as
    the reader with the case's consent facts, and the moments the feed changes by itself."""

    cases: list[Case]
    case_ids: Any
    user: User | None
    by_id: dict[int | None, Case]
    bounds: list[datetime]
    meetings: list[FeedMeeting] = field(default_factory=list)
    people: dict[int, list[tuple[Attendance, FeedContact]]] = field(default_factory=dict)
    contact_reader: Reader | None = None
    facts_by_case: dict[int, PolicyFacts] = field(default_factory=dict)


async def _material(session: AsyncSession, state: TokenState, now: datetime) -> _Material:
    """One query per kind for all the cases of the feed: meetings, participants, and the
    contacts of the cases (each read once, however many meetings they take part in)."""
    cases, case_ids, user = await _scope_cases(session, state)
    found = _Material(cases, case_ids, user, {c.id: c for c in cases}, bounds=[now + CACHE_HORIZON])
    meeting_query: Columns = sm_select(*MEETING_COLUMNS)
    participant_query: Columns = sm_select(*PARTICIPANT_COLUMNS)
    contact_query: Columns = sm_select(*CONTACT_COLUMNS)
    if state.scope is FeedScope.CONTACT and cases:
        case = cases[0]
        contact = await session.get(Contact, state.contact_id)
        if contact is not None and contact.case_id == case.id:
            facts = await load_policy_facts(session, case)
            found.facts_by_case[case.id] = facts
            found.contact_reader = Reader(contact=facts.contact(contact.id or 0),
                                          language=contact.language, cap=Level.PURPOSE)
            found.bounds += facts.changes_after(now)
            mine = sm_select(MeetingParticipant.meeting_id).where(
                MeetingParticipant.contact_id == contact.id
            )
            meeting_query = meeting_query.where(
                Meeting.case_id == case.id, col(Meeting.id).in_(mine)
            )
            participant_query = participant_query.where(col(MeetingParticipant.meeting_id).in_(mine))
            contact_query = contact_query.where(Contact.case_id == case.id)
        else:
            found.cases = []
    elif cases:
        meeting_query = meeting_query.where(col(Meeting.case_id).in_(case_ids))
        participant_query = participant_query.where(
            col(MeetingParticipant.meeting_id).in_(
                sm_select(Meeting.id).where(col(Meeting.case_id).in_(case_ids))
            )
        )
        contact_query = contact_query.where(col(Contact.case_id).in_(case_ids))
    if found.cases:
        found.meetings = [FeedMeeting(*row) for row in await _rows(session, meeting_query)]
        contacts = {row[0]: FeedContact(*row) for row in await _rows(session, contact_query)}
        for meeting_id, contact_id, partstat in await _rows(session, participant_query.order_by(
                col(MeetingParticipant.meeting_id), col(MeetingParticipant.contact_id))):
            found.people.setdefault(meeting_id, []).append((ATTENDANCE[partstat], contacts[contact_id]))
        # A cancelled meeting leaves the feed once it has been kept long enough.
        found.bounds += [at for meeting in found.meetings if (at := _drop_at(meeting)) is not None and at > now]
    return found


async def _rows(session: AsyncSession, query: Columns) -> Sequence[Any]:
    """Rows straight from the connection, without the ORM's row processing: a feed is rendered
    in a session of its own, which holds no pending changes to flush first."""
    connection = await session.connection()
    return (await connection.execute(query)).all()


def _staff_reader(state: TokenState, user: User | None) -> Reader:
    return Reader(
        contact=None, language=Language.NB, cap=Level.CONTENT,
        # The child's name only in the feeds of the case's own coordinators (not a leader's).
        show_child_name=state.show_child_name and (user is None or user.role == UserRole.COORDINATOR),
    )


@dataclass(slots=True)
class _Shown:
    """The feed's events (start, UID, VEVENT), each case's part of them, and the newest change."""

    items: list[tuple[datetime, str, bytes]] = field(default_factory=list)
    per_case: dict[int, list[tuple[FeedMeeting, Level, tuple[int, ...], bytes]]] = field(default_factory=dict)
    newest: datetime | None = None

    def note_change(self, at: datetime) -> None:
        self.newest = at if self.newest is None else max(self.newest, at)


def _meetings_shown(material: _Material, reader: Reader, now: datetime, fragments: FragmentCache) -> _Shown:
    """The meetings ``reader`` may see at ``now``, each at the level consent allows."""
    shown = _Shown()
    visible_by_case = {}
    for meeting in material.meetings:
        drop_at = _drop_at(meeting)
        if drop_at is not None and now >= drop_at:
            continue
        owner = material.by_id.get(meeting.case_id)
        if owner is None:
            continue
        facts = material.facts_by_case.get(meeting.case_id) or PolicyFacts(case_facts(owner), (), ())
        decision = level_for(reader, facts, meeting, now)
        if not decision.allowed or decision.level <= Level.NONE:
            continue
        if meeting.case_id not in visible_by_case:
            visible_by_case[meeting.case_id] = visible_for(reader, facts, now)
        event = to_event(owner, meeting, material.people.get(meeting.id, []), decision.level, reader,
                         visible_by_case[meeting.case_id])
        fragment = fragments.get(event)
        shown.items.append((meeting.start, meeting.uid, fragment))
        shown.per_case.setdefault(meeting.case_id, []).append(
            (meeting, decision.level, decision.consent_record_ids, fragment)
        )
        shown.note_change(meeting.updated_at)
    return shown


@dataclass(frozen=True, slots=True)
class Deadline:
    at: datetime
    changed: datetime
    event: CalendarEvent


async def _deadlines(session: AsyncSession, case_ids: Sequence[int], by_id: Mapping[int | None, Case]
                     ) -> list[Deadline]:
    """Open alerts with a deadline, as all-day events in the coordinator's own feed (DESIGN.md)."""
    rows = await session.exec(sm_select(Alert).where(
        col(Alert.case_id).in_(case_ids), col(Alert.resolved_at).is_(None), col(Alert.due_at).is_not(None)))
    deadlines = []
    for alert in rows.all():
        owner = by_id.get(alert.case_id)
        if owner is None or alert.due_at is None:
            continue
        text = ALERT_TEXTS.get(alert.kind, alert.kind)
        event = CalendarEvent(
            uid=f"deadline-{alert.id}@samhandling", sequence=0, last_modified=alert.created_at,
            summary=f"Frist: {text} – {owner.reference} {owner.child_initials}",
            all_day=local_date(alert.due_at),
        )
        deadlines.append(Deadline(alert.due_at, alert.created_at, event))
    return deadlines


def _calendar_name(
    state: TokenState, cases: Sequence[Case], reader: Reader,
    per_case: Mapping[int, Sequence[tuple[FeedMeeting, Level, tuple[int, ...], bytes]]],
) -> str:
    """A contact's calendar names the case only when its events already do (purpose)."""
    if state.scope is FeedScope.COORDINATOR:
        return CALNAME_PREFIX + MY_CASES[reader.language]
    if not cases:
        return NEUTRAL_CALNAME[reader.language]
    if reader.is_staff or any(level >= Level.PURPOSE for parts in per_case.values()
                              for _, level, _, _ in parts):
        return CALNAME_PREFIX + cases[0].reference
    return NEUTRAL_CALNAME[reader.language]


def _accounts(
    state: TokenState,
    per_case: Mapping[int, Sequence[tuple[FeedMeeting, Level, tuple[int, ...], bytes]]],
) -> tuple[CaseAccount, ...]:
    accounts = []
    for case_id in sorted(per_case):
        parts = per_case[case_id]
        digest = hashlib.sha256(b"".join(fragment for *_, fragment in parts)).hexdigest()[:32]
        accounts.append(CaseAccount(
            case_id=case_id,
            level=max(level for _, level, _, _ in parts),
            meeting_ids=tuple(sorted(m.id for m, *_ in parts)),
            consent_record_ids=tuple(sorted({i for _, _, ids, _ in parts for i in ids})),
            digest=digest,
        ))
    if not accounts:
        accounts.append(CaseAccount(state.case_id, Level.NONE, (), (), ""))
    return tuple(accounts)
