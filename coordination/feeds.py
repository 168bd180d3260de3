"""iCalendar feeds: capability tokens, and serving a feed fast without ever serving a stale one.

Three scopes (DESIGN.md, "Calendars that real clients accept"):

* ``coordinator`` — the meetings of every case the token's user may open (a coordinator's
  assigned cases, a leader's whole unit), as staff of the service see them;
* ``case`` — the team view of one case, for its coordinators;
* ``contact`` — one contact's own meetings, at the level their consent allows now.

What a reader may see of a meeting is decided by :mod:`coordination.disclosure` only.

Serving is built around one cheap query. Every write that can change a feed bumps the
unit's ``data_version`` in its own transaction (:mod:`coordination.versions`); the token
row joined with that counter says whether the body cached in this process is still the
one the database would give, and joined with its owner, case and contact whether the
feed may be served at all (rule 11) — checked on every poll, before the cache. The rest
of the time dependence (a consent starting or ending, the child turning 15, a cancelled
meeting reaching its 30 days) is folded into the entry's ``valid_until``: the next
instant at which the same data could render differently. Rendered events are cached too,
keyed by the complete event value, so a cold render is mostly a join of bytes.

Accounting (rule 9) happens when a token is served bytes it has not been served
before: the ``feed.served`` entries and the token's new ``last_etag`` are written in one
transaction, guarded by the ``last_etag`` the render started from, so two requests (or
two instances) never account the same version twice and no version is served
unaccounted. Polls only note a last-seen time in memory; :meth:`FeedRuntime.flush_seen`
writes them in batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import logging
import re
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased
from sqlmodel import col
from sqlmodel import select as sm_select
from sqlmodel.ext.asyncio.session import AsyncSession

from calendars.events import CalendarEvent
from calendars.ical import render_event, render_feed
from calendars.workdays import local_date, local_midnight
from coordination import audit
from coordination.access import case_for, may_see_case, require_role, visible_cases
from coordination.alerts import ALERT_TEXTS
from coordination.cases import PolicyFacts, case_facts, load_policy_facts
from coordination.context import ServiceContext
from coordination.disclosure import Reader, level_for, to_event, visible_for
from coordination.domain import Language, UserRole
from coordination.errors import Gone, InputError, NotFound, not_found
from coordination.levels import Level
from coordination.models import (
    Alert,
    Case,
    Contact,
    FeedToken,
    Meeting,
    MeetingParticipant,
    Unit,
    User,
)
from coordination.policy import fifteenth_birthday
from coordination.schemas import CaseFeedIn, FeedCreated, FeedOut, MyFeedIn
from coordination.security import hash_token, new_token

log = logging.getLogger("samhandling.feeds")

OSLO = ZoneInfo("Europe/Oslo")
#: How often clients are asked to poll (REFRESH-INTERVAL, X-PUBLISHED-TTL).
REFRESH = timedelta(hours=1)
#: A cached body is rendered again at the latest this long after it was rendered, so a
#: time dependence we did not foresee can never keep a stale feed for long.
CACHE_HORIZON = timedelta(hours=1)
#: A cancelled meeting stays in feeds as STATUS:CANCELLED this long, so that clients
#: show the cancellation instead of the meeting just vanishing; then it is dropped.
CANCELLED_KEPT = timedelta(days=30)
#: How often the last-seen times of polled tokens are written.
FLUSH_INTERVAL_SECONDS = 30.0
#: Clients revalidate every time (a 304 is cheap): a consent withdrawn must reach the
#: subscriber at their next refresh, not after a private cache's max-age has run out.
CACHE_CONTROL = "private, no-cache"
RETRY_AFTER_SECONDS = 30
#: ``secrets.token_urlsafe(32)`` gives 43 characters; anything far from that is not ours.
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{22,128}")
_ENTITY_TAG = re.compile(r'(?:W/)?("[^"]*")')

CALNAME_PREFIX = "Samhandling – "
MY_CASES = {Language.NB: "mine saker", Language.NN: "mine saker", Language.EN: "my cases"}
NEUTRAL_CALNAME = {Language.NB: "Møter", Language.NN: "Møte", Language.EN: "Meetings"}

TEXT_NOT_FOUND = "Fant ingen kalender på denne adressen.\n"
TEXT_GONE = "Denne kalenderen er trukket tilbake og blir ikke oppdatert mer.\n"
TEXT_UNAVAILABLE = "Kalenderen er midlertidig utilgjengelig. Prøv igjen om litt.\n"


class FeedScope(enum.StrEnum):
    COORDINATOR = "coordinator"
    CASE = "case"
    CONTACT = "contact"


# --- tokens ----------------------------------------------------------------------------


def feed_urls(public_base_url: str, token: str) -> tuple[str, str]:
    """The https address, and the ``webcal://`` one that makes Apple and Outlook subscribe."""
    url = f"{public_base_url.rstrip('/')}/feeds/{token}.ics"
    _, sep, rest = url.partition("://")
    return url, f"webcal://{rest}" if sep else url


def feed_out(feed: FeedToken, seen: Mapping[int, datetime] | None = None) -> FeedOut:
    """``seen`` holds last-seen times not yet flushed to the database."""
    assert feed.id is not None
    last_seen = feed.last_seen_at
    pending = (seen or {}).get(feed.id)
    if pending is not None and (last_seen is None or pending > last_seen):
        last_seen = pending
    return FeedOut(
        id=feed.id,
        scope=feed.scope,
        label=feed.label,
        case_id=feed.case_id,
        contact_id=feed.contact_id,
        user_id=feed.user_id,
        created_by_user_id=feed.created_by_user_id,
        created_at=feed.created_at,
        revoked_at=feed.revoked_at,
        last_seen_at=last_seen,
    )


def _created(feed: FeedToken, token: str, public_base_url: str) -> FeedCreated:
    out = feed_out(feed)
    url, webcal = feed_urls(public_base_url, token)
    return FeedCreated(
        id=out.id, scope=out.scope, label=out.label, case_id=out.case_id,
        contact_id=out.contact_id, user_id=out.user_id, created_by_user_id=out.created_by_user_id,
        created_at=out.created_at, revoked_at=out.revoked_at, last_seen_at=out.last_seen_at,
        url=url, webcal_url=webcal, token=token,
    )


async def _add_feed(
    session: AsyncSession, user: User, scope: FeedScope, now: datetime, label: str, *,
    case_id: int | None = None, contact_id: int | None = None,
) -> tuple[FeedToken, str]:
    assert user.id is not None
    token = new_token()
    feed = FeedToken(
        token_hash=hash_token(token),
        unit_id=user.unit_id,
        scope=scope.value,
        user_id=user.id if scope is FeedScope.COORDINATOR else None,
        case_id=case_id,
        contact_id=contact_id,
        label=label,
        created_by_user_id=user.id,
        created_at=now,
    )
    session.add(feed)
    await session.flush()
    detail: dict[str, object] = {"feed": feed.id, "scope": scope.value}
    if contact_id is not None:
        detail["contact"] = contact_id
    audit.record(session, unit_id=user.unit_id, case_id=case_id, actor=audit.actor_for_user(user.id),
                 action="feed.created", subject=f"feed:{feed.id}", at=now, detail=detail)
    return feed, token


async def create_case_feed(
    session: AsyncSession, user: User, case_id: int, data: CaseFeedIn, now: datetime,
    public_base_url: str,
) -> FeedCreated:
    """A case or contact feed; the token is in the answer and nowhere else."""
    await case_for(session, user, case_id)
    scope = FeedScope(data.scope)
    if scope is FeedScope.CASE:
        if data.contact_id is not None:
            raise InputError("contact_id", "only a contact feed names a contact; leave it out")
    else:
        if data.contact_id is None:
            raise InputError("contact_id", "a contact feed needs the contact it is for")
        contact = await session.get(Contact, data.contact_id)
        if contact is None or contact.case_id != case_id:
            raise InputError("contact_id", f"contact {data.contact_id} is not a contact of this case")
        if not contact.active:
            raise InputError("contact_id", f"contact {data.contact_id} is no longer active in this case")
    feed, token = await _add_feed(session, user, scope, now, data.label, case_id=case_id,
                                  contact_id=data.contact_id)
    return _created(feed, token, public_base_url)


async def create_my_feed(
    session: AsyncSession, user: User, data: MyFeedIn, now: datetime, public_base_url: str
) -> FeedCreated:
    """A coordinator's (or leader's) own feed of every case they may open."""
    require_role(user, UserRole.COORDINATOR, UserRole.LEADER)
    feed, token = await _add_feed(session, user, FeedScope.COORDINATOR, now, data.label)
    return _created(feed, token, public_base_url)


async def list_case_feeds(
    session: AsyncSession, user: User, case_id: int, seen: Mapping[int, datetime] | None = None
) -> list[FeedOut]:
    await case_for(session, user, case_id)
    rows = await session.exec(
        sm_select(FeedToken).where(FeedToken.case_id == case_id).order_by(col(FeedToken.id))
    )
    return [feed_out(f, seen) for f in rows.all()]


async def list_my_feeds(
    session: AsyncSession, user: User, seen: Mapping[int, datetime] | None = None
) -> list[FeedOut]:
    rows = await session.exec(
        sm_select(FeedToken)
        .where(FeedToken.scope == FeedScope.COORDINATOR.value, FeedToken.user_id == user.id)
        .order_by(col(FeedToken.id))
    )
    return [feed_out(f, seen) for f in rows.all()]


async def revoke_feed(
    session: AsyncSession, user: User, feed_id: int, now: datetime,
    seen: Mapping[int, datetime] | None = None,
) -> FeedOut:
    """From now on the address answers 410 Gone. Revoking twice changes nothing."""
    feed = await session.get(FeedToken, feed_id)
    if feed is None or feed.unit_id != user.unit_id:
        raise not_found("feed", feed_id)
    if feed.scope == FeedScope.COORDINATOR:
        if feed.user_id != user.id:
            raise not_found("feed", feed_id)
    else:
        assert feed.case_id is not None
        try:
            await case_for(session, user, feed.case_id)
        except NotFound:
            raise not_found("feed", feed_id) from None
    if feed.revoked_at is None:
        feed.revoked_at = now
        session.add(feed)
        assert user.id is not None
        audit.record(session, unit_id=feed.unit_id, case_id=feed.case_id,
                     actor=audit.actor_for_user(user.id), action="feed.revoked",
                     subject=f"feed:{feed_id}", at=now,
                     detail={"feed": feed_id, "scope": feed.scope})
    return feed_out(feed, seen)


# --- what a token stands for -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenState:
    """The token row joined with its unit's data version and with what decides whether its
    owner may still see its scope: all a warm request reads."""

    id: int
    unit_id: int
    scope: FeedScope
    user_id: int | None
    case_id: int | None
    contact_id: int | None
    created_at: datetime
    revoked_at: datetime | None
    last_etag: str
    last_modified: datetime | None
    data_version: int
    show_child_name: bool
    #: The owner (the coordinator feed's user, or whoever created a case or contact feed).
    owner_active: bool
    #: The owner may see the feed's case now (access.may_see_case); False without a case.
    owner_sees_case: bool
    #: The contact of a contact feed is still an active contact of the case: a feed cannot be
    #: made for an inactive contact, and one made before does not outlive the deactivation.
    contact_active: bool

    @property
    def usable(self) -> bool:
        """Rule 11: a feed belongs to a user, and is gone once it is revoked, once that user
        leaves, or once they may no longer see what it shows."""
        if self.revoked_at is not None or not self.owner_active:
            return False
        if self.scope is FeedScope.COORDINATOR:
            return True
        return self.owner_sees_case and (self.scope is FeedScope.CASE or self.contact_active)


_Owner = aliased(User)
_STATE_QUERY = (
    select(
        col(FeedToken.id), col(FeedToken.unit_id), col(FeedToken.scope), col(FeedToken.user_id),
        col(FeedToken.case_id), col(FeedToken.contact_id), col(FeedToken.created_at),
        col(FeedToken.revoked_at), col(FeedToken.last_etag), col(FeedToken.last_modified),
        col(Unit.data_version), col(Unit.show_child_name_in_feeds), col(_Owner.active),
        may_see_case(_Owner.id, _Owner.role, _Owner.unit_id, FeedToken.case_id, Case.unit_id),
        and_(col(Contact.case_id) == col(FeedToken.case_id), col(Contact.active)),
    )
    .join(Unit, col(Unit.id) == col(FeedToken.unit_id))
    # One statement, however many facts: polls are the hot path (one query per poll).
    .outerjoin(_Owner, col(_Owner.id) == func.coalesce(FeedToken.user_id, FeedToken.created_by_user_id))
    .outerjoin(Case, col(Case.id) == col(FeedToken.case_id))
    .outerjoin(Contact, col(Contact.id) == col(FeedToken.contact_id))
    .where(col(FeedToken.token_hash) == bindparam("token_hash"))
)


async def token_state(connection: AsyncConnection, token_hash: str) -> TokenState | None:
    row = (await connection.execute(_STATE_QUERY, {"token_hash": token_hash})).first()
    if row is None or row[0] is None:
        return None
    return TokenState(
        id=row[0], unit_id=row[1], scope=FeedScope(row[2]), user_id=row[3], case_id=row[4],
        contact_id=row[5], created_at=row[6], revoked_at=row[7], last_etag=row[8],
        last_modified=row[9], data_version=row[10], show_child_name=bool(row[11]),
        owner_active=bool(row[12]), owner_sees_case=bool(row[13]), contact_active=bool(row[14]),
    )


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


def strong_etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _drop_at(meeting: Meeting) -> datetime | None:
    if meeting.status != "cancelled":
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
    cases, case_ids, user = await _scope_cases(session, state)
    by_id = {c.id: c for c in cases}
    meeting_query = sm_select(Meeting)
    participant_query = sm_select(MeetingParticipant, Contact).join(
        Contact, col(Contact.id) == col(MeetingParticipant.contact_id)
    )
    bounds = [now + CACHE_HORIZON]
    contact_reader: Reader | None = None
    facts_by_case: dict[int, PolicyFacts] = {}
    if state.scope is FeedScope.CONTACT and cases:
        case = cases[0]
        contact = await session.get(Contact, state.contact_id)
        if contact is not None and contact.case_id == case.id:
            facts = await load_policy_facts(session, case)
            facts_by_case[case.id] = facts
            contact_reader = Reader(contact=facts.contact(contact.id or 0),
                                    language=Language(contact.language), cap=Level.PURPOSE)
            bounds += _consent_bounds(facts, case, now)
            mine = sm_select(MeetingParticipant.meeting_id).where(
                MeetingParticipant.contact_id == contact.id
            )
            meeting_query = meeting_query.where(
                Meeting.case_id == case.id, col(Meeting.id).in_(mine)
            )
            participant_query = participant_query.where(col(MeetingParticipant.meeting_id).in_(mine))
        else:
            cases = []
    elif cases:
        meeting_query = meeting_query.where(col(Meeting.case_id).in_(case_ids))
        participant_query = participant_query.where(
            col(MeetingParticipant.meeting_id).in_(
                sm_select(Meeting.id).where(col(Meeting.case_id).in_(case_ids))
            )
        )
    meetings: list[Meeting] = []
    people: dict[int, list[tuple[MeetingParticipant, Contact]]] = {}
    if cases:
        meetings = list((await session.exec(meeting_query)).all())
        rows = await session.exec(participant_query.order_by(col(MeetingParticipant.meeting_id),
                                                             col(Contact.id)))
        for participant, person in rows.all():
            people.setdefault(participant.meeting_id, []).append((participant, person))

    staff_reader = Reader(
        contact=None, language=Language.NB, cap=Level.CONTENT,
        # The child's name only in the feeds of the case's own coordinators (not a leader's).
        show_child_name=state.show_child_name and (user is None or user.role == UserRole.COORDINATOR),
    )
    reader = contact_reader or staff_reader
    items: list[tuple[datetime, str, bytes]] = []
    per_case: dict[int, list[tuple[Meeting, Level, tuple[int, ...], bytes]]] = {}
    visible_by_case = {}
    newest: datetime | None = None
    for meeting in meetings:
        drop_at = _drop_at(meeting)
        if drop_at is not None:
            if now >= drop_at:
                continue
            bounds.append(drop_at)
        owner = by_id.get(meeting.case_id)
        if owner is None:
            continue
        facts = facts_by_case.get(meeting.case_id) or PolicyFacts(case_facts(owner), (), ())
        decision = level_for(reader, facts, meeting, now)
        if not decision.allowed or decision.level <= Level.NONE:
            continue
        if meeting.case_id not in visible_by_case:
            visible_by_case[meeting.case_id] = visible_for(reader, facts, now)
        event = to_event(owner, meeting, people.get(meeting.id or 0, []), decision.level, reader,
                         visible_by_case[meeting.case_id])
        fragment = fragments.get(event)
        items.append((meeting.start, meeting.uid, fragment))
        per_case.setdefault(meeting.case_id, []).append(
            (meeting, decision.level, decision.consent_record_ids, fragment)
        )
        newest = meeting.updated_at if newest is None else max(newest, meeting.updated_at)
    if state.scope is FeedScope.COORDINATOR and cases:
        for deadline in await _deadlines(session, case_ids, by_id):
            items.append((deadline.at, deadline.event.uid, fragments.get(deadline.event)))
            newest = deadline.changed if newest is None else max(newest, deadline.changed)
    items.sort(key=lambda item: (item[0], item[1]))
    body = render_feed(_calendar_name(state, cases, reader, per_case),
                       (fragment for _, _, fragment in items), refresh=REFRESH)
    return Rendered(
        body=body,
        etag=strong_etag(body),
        newest_change=newest or state.created_at,
        valid_until=min(b for b in bounds if b > now),
        accounts=_accounts(state, per_case),
    )


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


def _consent_bounds(facts: PolicyFacts, case: Case, now: datetime) -> list[datetime]:
    """The instants after ``now`` at which what a contact may see can change by itself."""
    bounds = []
    for record in facts.records:
        bounds.append(record.valid_from)
        if record.valid_until is not None:
            bounds.append(record.valid_until)
    if case.aimed_at_child and case.party_status_override is None:
        bounds.append(local_midnight(fifteenth_birthday(case.child_birth_date)))
    return [b for b in bounds if b > now]


def _calendar_name(
    state: TokenState, cases: Sequence[Case], reader: Reader,
    per_case: Mapping[int, Sequence[tuple[Meeting, Level, tuple[int, ...], bytes]]],
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
    per_case: Mapping[int, Sequence[tuple[Meeting, Level, tuple[int, ...], bytes]]],
) -> tuple[CaseAccount, ...]:
    accounts = []
    for case_id in sorted(per_case):
        parts = per_case[case_id]
        digest = hashlib.sha256(b"".join(fragment for *_, fragment in parts)).hexdigest()[:32]
        accounts.append(CaseAccount(
            case_id=case_id,
            level=max(level for _, level, _, _ in parts),
            meeting_ids=tuple(sorted(m.id or 0 for m, *_ in parts)),
            consent_record_ids=tuple(sorted({i for _, _, ids, _ in parts for i in ids})),
            digest=digest,
        ))
    if not accounts:
        accounts.append(CaseAccount(state.case_id, Level.NONE, (), (), ""))
    return tuple(accounts)


# --- HTTP ------------------------------------------------------------------------------


def http_date(value: datetime) -> str:
    return format_datetime(value.astimezone(UTC), usegmt=True)


def _second(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(microsecond=0)


def next_last_modified(
    stored: datetime | None, stored_etag: str, etag: str, newest_change: datetime, now: datetime
) -> datetime:
    """Last-Modified never moves backwards, and moves forwards with every new version,
    also when the change left no newer ``updated_at`` behind (a meeting deleted, a consent
    withdrawn, an answer recorded): then it becomes the time the new version was found."""
    candidate = _second(newest_change)
    if stored is None:
        return candidate
    if etag == stored_etag or candidate > stored:
        return max(candidate, stored)
    return max(_second(now), stored + timedelta(seconds=1))


def etag_matches(header: str, etag: str) -> bool:
    """RFC 9110 If-None-Match: ``*`` or a list of tags, compared weakly."""
    if header.strip() == "*":
        return True
    return any(tag == etag for tag in _ENTITY_TAG.findall(header))


def not_modified(
    if_none_match: str | None, if_modified_since: str | None, etag: str, last_modified: datetime
) -> bool:
    if if_none_match is not None:
        return etag_matches(if_none_match, etag)
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError, IndexError):
            return False
        if since.tzinfo is None:
            return False
        return last_modified <= since
    return False


@dataclass(frozen=True, slots=True)
class FeedAnswer:
    """Status, body and headers; the media type is completed with ``charset=utf-8``."""

    status: int
    body: bytes
    media_type: str
    headers: dict[str, str]


def _text_answer(status: int, text: str, headers: Mapping[str, str] | None = None) -> FeedAnswer:
    return FeedAnswer(status, text.encode(), "text/plain",
                      {"Cache-Control": "no-store", **(headers or {})})


def unavailable() -> FeedAnswer:
    """Never a 200 with an empty calendar: clients would wipe their copy."""
    return _text_answer(503, TEXT_UNAVAILABLE, {"Retry-After": str(RETRY_AFTER_SECONDS)})


# --- the runtime: cache, accounting, last-seen -----------------------------------------


@dataclass(frozen=True, slots=True)
class CacheEntry:
    feed_id: int
    data_version: int
    valid_until: datetime
    body: bytes
    etag: str
    last_modified: datetime
    digests: Mapping[int | None, str] = field(default_factory=dict)


class ConcurrentChange(RuntimeError):
    """The token was served or changed by another request while we rendered, repeatedly."""


class FeedRuntime:
    """Per-process state of the feed service: the body cache (by token hash), the event
    fragment cache and the last-seen times waiting to be written. Created once by the
    composition root; every instance has its own and they agree through the database."""

    def __init__(self, *, max_body_bytes: int = 64 * 1024 * 1024,
                 flush_interval: float = FLUSH_INTERVAL_SECONDS) -> None:
        self.fragments = FragmentCache()
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()
        self._bytes = 0
        self._max_bytes = max_body_bytes
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._seen: dict[int, datetime] = {}
        self._flush_interval = flush_interval
        self._flusher: asyncio.Task[None] | None = None

    # cache

    def _get(self, key: str) -> CacheEntry | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def _put(self, key: str, entry: CacheEntry) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old.body)
        self._entries[key] = entry
        self._bytes += len(entry.body)
        while self._bytes > self._max_bytes and len(self._entries) > 1:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= len(evicted.body)

    def _forget(self, key: str) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old.body)

    @staticmethod
    def _fresh(entry: CacheEntry | None, state: TokenState, now: datetime) -> bool:
        return (
            entry is not None
            and entry.data_version == state.data_version
            and now < entry.valid_until
            # Another request or instance has served this token other bytes since: render
            # again, so that going back to these bytes is accounted for too.
            and entry.etag == state.last_etag
        )

    # serving

    async def serve(
        self, ctx: ServiceContext, token: str, if_none_match: str | None = None,
        if_modified_since: str | None = None,
    ) -> FeedAnswer:
        """Answer one poll. Database errors propagate (the caller answers 503)."""
        if not _TOKEN_SHAPE.fullmatch(token):
            return _text_answer(404, TEXT_NOT_FOUND)
        key = hash_token(token)
        now = ctx.now()
        # One statement needs no transaction: in autocommit the driver sends no BEGIN and
        # ROLLBACK around it, two of the warm path's three round trips (bench/, issue 7).
        async with ctx.engine.execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
            state = await token_state(connection, key)
        if state is None:
            return _text_answer(404, TEXT_NOT_FOUND)
        if not state.usable:
            # Checked before the cache on every poll, so no cached body outlives its owner's
            # access; the body is dropped too, it is never to be served again as it is.
            self._forget(key)
            return _text_answer(410, TEXT_GONE)
        entry = self._get(key)
        if not self._fresh(entry, state, now):
            try:
                entry = await self._refresh(ctx, key, now)
            except NotFound:
                return _text_answer(404, TEXT_NOT_FOUND)
            except Gone:
                return _text_answer(410, TEXT_GONE)
        assert entry is not None
        self.note_seen(entry.feed_id, now)
        headers = {"ETag": entry.etag, "Cache-Control": CACHE_CONTROL}
        if not_modified(if_none_match, if_modified_since, entry.etag, entry.last_modified):
            return FeedAnswer(304, b"", "text/calendar", headers)
        headers["Last-Modified"] = http_date(entry.last_modified)
        return FeedAnswer(200, entry.body, "text/calendar", headers)

    async def _refresh(self, ctx: ServiceContext, key: str, now: datetime) -> CacheEntry:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            for _ in range(3):
                entry = await self._render_and_account(ctx, key, now)
                if entry is not None:
                    self._put(key, entry)
                    return entry
            raise ConcurrentChange("the feed changed under every render")

    async def _render_and_account(
        self, ctx: ServiceContext, key: str, now: datetime
    ) -> CacheEntry | None:
        async with ctx.sessions() as session, session.begin():
            if ctx.engine.dialect.name == "postgresql":
                # One snapshot for the version and everything rendered from it.
                await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            connection = await session.connection()
            state = await token_state(connection, key)
            if state is None:
                raise NotFound("feed")
            if not state.usable:
                raise Gone("feed")
            rendered = await render(session, state, now, self.fragments)
        previous = self._get(key)
        known = previous.digests if previous is not None and previous.etag == state.last_etag else None
        digests = {a.case_id: a.digest for a in rendered.accounts}
        if rendered.etag == state.last_etag and state.last_modified is not None:
            # The same bytes as last served to this token: nothing new is disclosed.
            return CacheEntry(state.id, state.data_version, rendered.valid_until, rendered.body,
                              rendered.etag, state.last_modified, digests)
        last_modified = next_last_modified(state.last_modified, state.last_etag, rendered.etag,
                                           rendered.newest_change, now)
        async with ctx.transaction() as session:
            connection = await session.connection()
            result = await connection.execute(
                update(FeedToken)
                .where(col(FeedToken.id) == state.id, col(FeedToken.last_etag) == state.last_etag,
                       col(FeedToken.revoked_at).is_(None))
                .values(last_etag=rendered.etag, last_modified=last_modified)
            )
            if result.rowcount != 1:
                # Served meanwhile by another request or instance, or revoked: start over.
                return None
            self._account(session, state, rendered, known, now)
        log.info("feed %s: new version served (%d cases)", state.id, len(rendered.accounts))
        return CacheEntry(state.id, state.data_version, rendered.valid_until, rendered.body,
                          rendered.etag, last_modified, digests)

    @staticmethod
    def _account(
        session: AsyncSession, state: TokenState, rendered: Rendered,
        known: Mapping[int | None, str] | None, now: datetime,
    ) -> None:
        """Rule 9: one ``feed.served`` entry per case whose part of the feed is new. For a
        coordinator's feed, cases whose part is unchanged since the last version (as this
        process knows it) are not written again; a part that vanished is written as empty."""
        accounts = list(rendered.accounts)
        if known is not None and state.scope is FeedScope.COORDINATOR:
            current = {a.case_id for a in accounts}
            accounts = [a for a in accounts if known.get(a.case_id) != a.digest]
            accounts += [CaseAccount(case_id, Level.NONE, (), (), "")
                         for case_id in sorted(c for c in known if c is not None)
                         if case_id not in current]
        for account in accounts:
            detail: dict[str, object] = {
                "feed": state.id,
                "scope": state.scope.value,
                "level": account.level.value,
                "meeting_ids": list(account.meeting_ids),
                "consent_record_ids": list(account.consent_record_ids),
            }
            if state.contact_id is not None:
                detail["contact"] = state.contact_id
            if state.user_id is not None:
                detail["user"] = state.user_id
            audit.record(session, unit_id=state.unit_id, case_id=account.case_id,
                         actor=f"feed:{state.id}", action="feed.served", subject=f"feed:{state.id}",
                         at=now, detail=detail)

    # last seen

    def note_seen(self, feed_id: int, at: datetime) -> None:
        current = self._seen.get(feed_id)
        if current is None or at > current:
            self._seen[feed_id] = at

    @property
    def pending_seen(self) -> Mapping[int, datetime]:
        return dict(self._seen)

    async def flush_seen(self, ctx: ServiceContext) -> int:
        """Write the last-seen times gathered since the last flush, in one transaction."""
        if not self._seen:
            return 0
        batch, self._seen = self._seen, {}
        statement = (
            update(FeedToken)
            .where(col(FeedToken.id) == bindparam("feed_id"),
                   or_(col(FeedToken.last_seen_at).is_(None),
                       col(FeedToken.last_seen_at) < bindparam("seen_at")))
            .values(last_seen_at=bindparam("seen_at"))
        )
        rows = [{"feed_id": feed_id, "seen_at": at} for feed_id, at in sorted(batch.items())]
        try:
            async with ctx.engine.begin() as connection:
                await connection.execute(statement, rows)
        except Exception as error:
            for feed_id, at in batch.items():
                self.note_seen(feed_id, at)
            log.warning("could not write last-seen times of %d feeds: %s", len(batch),
                        type(error).__name__)
            return 0
        return len(rows)

    async def _flush_forever(self, ctx: ServiceContext) -> None:
        while True:
            await asyncio.sleep(self._flush_interval)
            await self.flush_seen(ctx)

    def start(self, ctx: ServiceContext) -> None:
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_forever(ctx), name="feed-last-seen")

    async def stop(self, ctx: ServiceContext) -> None:
        """Stop the flusher and write what is left, so a restart loses no last-seen time."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        await self.flush_seen(ctx)

