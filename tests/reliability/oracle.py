"""Test oracle: DESIGN.md's information-loop rules written down a second time, independently.

Plain data in, plain answers out; standard library only.  Everything here is derived from
DESIGN.md (and the practice guide ``002_*.txt`` for the consent rules' source: "Den som har
daglig omsorg må samtykke til frivillige hjelpetiltak. Har barnet partsstatus (som hovedregel
fra 15 år) og tiltaket retter seg mot barnet, må barnet også samtykke.").

Readings chosen where DESIGN.md is ambiguous or silent
======================================================
Where the text is silent the reading most protective of confidentiality is chosen ("P" below).

R1  Which consent act is in force (rule 2: "Consent is append-only history: granted, refused,
    withdrawn, with valid-from/until ... never edited in place").  The text does not say whether
    recording order or valid-from decides between acts.  Only acts recorded at or before *t*
    are known at *t* (rule 1: consent must cover a disclosure "at the moment of disclosure"; an
    act recorded later cannot have been known), and only acts with ``valid_from <= t`` apply.
    Of those, reading A takes the latest *recorded* act, reading B the act with the latest
    ``valid_from`` (ties: later recorded).  P: the grantor allows only what BOTH readings allow
    (the minimum).  A superseded grant never revives when its successor expires.
R2  Expiry: "valid-from/until" is read as the half-open period [valid_from, valid_until);
    at exactly ``valid_until`` a grant is no longer in force (P).
R3  Required grantors (rule 2: "every contact with daily care has a valid grant"): every
    contact whose ``daily_care`` flag is set, whatever its role ("every contact", not "every
    parent") and whether active or not ("removing or deactivating a person never widens what
    others may learn").  An inactive grantor's own recorded acts still count (deactivating
    neither widens nor is said to narrow).  ``daily_care`` is taken as it is now (no history).
R4  The child: a contact with role ``child`` (all such rows, active or inactive, P).  When the
    child has party status and ``aimed_at_child``, the child's grant is required "even if the
    child has no contact in the list or their contact is inactive"; with no child row the
    child cannot have consented (acts name contact ids), so the sector is ``none``.
R5  No required grantor at all: "the narrowest of those grants" of no grants is undefined;
    P: effective consent is ``none``.
R6  Party status age (rule 2: "age from the birth date"): the age on the Oslo calendar date
    of *t*.  A child born on 29 February: in a non-leap year the birthday is counted on
    28 February (P: party status adds a required grantor, so it can only narrow disclosure;
    the earlier date protects).
R7  The override (rule 2: "(age from the birth date, or an explicit override)"): read as a
    disjunction, P: ``True`` gives party status at any age; ``False`` does NOT remove party
    status from a child who is 15 or older (an override to ``False`` could only widen).
R8  Which sectors need consent: rule 1 "School, health, NAV and other outside sectors".  The
    sector ``other`` is read as an outside sector (P), so PARTNER_SECTORS = school, health,
    nav, other; any unknown sector name also needs consent.  ``family`` and ``child_welfare``
    need none (their ``sector_level`` is ``content``).
R9  Who is gated: the reader's *sector* decides (consent is "recorded per recipient sector").
    A parent or the child placed in an outside sector is gated like that sector (P), although
    rule 5 says parents with daily care and the child need no sector consent.  Family-sector
    readers (including a parent without daily care or a trusted person) and child-welfare
    readers may know ``content`` of their own meetings (rule 5: "parties, not partners").
R10 Only one's own meetings: rule 5 "invited to their own meetings", the contact feed "only
    their own meetings"; rule 3 "the lowest level that its purpose needs".  A contact who is
    not a participant may know nothing of a meeting (P).  Inactive readers, or readers not on
    the case's list, know nothing (P).
R11 Barnesamtale (rule 5: "the parents are not told of it unless the coordinator says so"):
    "the parents" are contacts with role ``parent`` or with daily care (other than the child),
    P.  Without ``parents_told`` they know nothing, even if listed as participants.  With it,
    they must also be participants (P), and learn at most ``logistics`` (P: "belongs to the
    child"; being told *of* it needs no kind or agenda).
R12 E-mail (rule 4: "unless the configured channel cap allows it"): the mail level is
    min(what the reader may know, cap); rule 4 binds mail to families too.  The cap is not
    lowered further to ``logistics`` by rule 3's "lowest level its purpose needs", since rule 4
    explicitly lets a configured cap allow more.
R13 Attendees (rule 8).  Upper bound: nothing below ``purpose`` for any reader ("at logistics
    a partner sees only themselves"; rule 3's logistics is "time and place, who to call", and
    rule 4 keeps "other participants" out of logistics mail) - P extends this to family and
    service readers.  The sector function cannot tell the reader apart from colleagues, so at
    ``logistics`` it answers False for every sector; the reader's own entry is judged by
    :func:`attendee_shown_at_most`.  At ``purpose`` and above: own sector, family,
    child_welfare; another partner sector only when both the reader's and that sector's
    effective consent are at least ``purpose`` (family/service count as ``content``).  A
    partner reader shown a level above their own sector's consent may be shown no one.
    Lower bound: the service's reading as stated in the interface.
R14 Quiet hours (rule 10: "not sent between 21:00 and 07:00 Oslo time; it waits until
    07:00"): [21:00, 07:00) Oslo wall-clock time; 21:00:00 is quiet (P), 07:00:00 is not
    ("waits until 07:00").  DST days use the wall clock.  SMS daytime "08:00-20:00" is read
    as [08:00, 20:00) (P).
R15 Who is family for rule 10 ("decided when the message is sent, from the contact as it is
    then"): the text does not say whether role or sector decides; P for families (not waking
    them): family if the role is a family role OR the sector is ``family`` OR the contact has
    daily care.
R16 Feeds (rule 11: "gone (410) once that user leaves, or may no longer see what the feed
    shows"; "Only staff on the case see it, and only while they are"): revoked -> gone; owner
    unknown or inactive -> gone; case and contact feeds need the owner assigned to the case now
    (leaders and admins are not "on the case" unless assigned, P); a contact feed is gone when
    its contact is inactive or unknown.  A coordinator feed stays alive while its owner is
    active (it shows the cases they coordinate; this case only while assigned).  A feed whose
    consent was withdrawn stays alive but drops the meetings (rule 7).
R17 Sector changes (rule 11): roles whose default sector is outside (school, health, nav, and
    P: ``other`` - rule 1's "other outside sectors" - i.e. family_therapist) cannot be placed in
    ``family`` or ``child_welfare``; role ``other`` may be placed anywhere; moves between
    outside sectors, and moves of family or service roles, are allowed (the text names only
    family and child welfare as forbidden targets, and "a contact may override").  Unknown
    roles count as outside (P); unknown sectors are refused.
R18 Feeds and meeting status: proposed, confirmed and held meetings are listed; a cancelled
    one for 30 days after ``cancelled_at`` (half-open), or not at all when that time is
    unknown (P).
R19 ``by_email``: case-insensitive; prefers an active contact, else the first match.
"""

from __future__ import annotations

import calendar
import enum
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

OSLO = ZoneInfo("Europe/Oslo")
PARTY_STATUS_AGE = 15
CANCELLED_KEPT = timedelta(days=30)

SECTORS: frozenset[str] = frozenset({"family", "child_welfare", "school", "health", "nav", "other"})
CONSENT_FREE_SECTORS: frozenset[str] = frozenset({"family", "child_welfare"})
PARTNER_SECTORS: frozenset[str] = frozenset({"school", "health", "nav", "other"})
FAMILY_ROLES: frozenset[str] = frozenset({"parent", "child", "trusted_person"})

DEFAULT_SECTOR: dict[str, str] = {
    "parent": "family",
    "child": "family",
    "trusted_person": "family",
    "school_contact": "school",
    "principal": "school",
    "kindergarten": "school",
    "after_school_care": "school",
    "ppt": "school",
    "public_health_nurse": "health",
    "gp": "health",
    "child_psychiatry": "health",
    "mental_health": "health",
    "nav_adviser": "nav",
    "support_contact": "child_welfare",
    "milieu_therapist": "child_welfare",
    "interpreter": "child_welfare",
    "caseworker": "child_welfare",
    "family_therapist": "other",
    "other": "other",
}

QUIET_FROM = time(21, 0)
QUIET_UNTIL = time(7, 0)
SMS_FROM = time(8, 0)
SMS_UNTIL = time(20, 0)


class L(enum.IntEnum):
    """Rule 3's levels, ordered."""

    NONE = 0
    LOGISTICS = 1
    PURPOSE = 2
    CONTENT = 3

    @classmethod
    def of(cls, name: str) -> L:
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown disclosure level: {name!r}") from None


@dataclass(frozen=True)
class Person:
    """A contact on the case's list, as it is now."""

    id: int
    role: str
    sector: str
    email: str
    name: str
    daily_care: bool = False
    active: bool = True

    @property
    def is_family_recipient(self) -> bool:
        """Rule 10's "who is family" (R15): family role, family sector, or daily care."""
        return self.role in FAMILY_ROLES or self.sector == "family" or self.daily_care


@dataclass(frozen=True)
class Act:
    """One consent act as recorded; ``order`` is the order of recording (1, 2, 3, ...).
    ``grantor`` is a contact id (the grantor may since have been deactivated or changed)."""

    order: int
    grantor: int
    sector: str
    status: str  # granted, refused, withdrawn
    level: L  # L.NONE for refusals and withdrawals
    valid_from: datetime
    valid_until: datetime | None
    recorded_at: datetime


@dataclass(frozen=True)
class Meet:
    id: int
    uid: str
    kind: str
    start: datetime
    end: datetime
    status: str  # proposed, confirmed, cancelled, held
    sequence: int
    participants: frozenset[int]  # contact ids invited
    parents_told: bool  # for a child_talk: the coordinator said the parents may be told
    agenda: str
    place: str
    cancelled_at: datetime | None = None


@dataclass(frozen=True)
class Staff:
    """A user of the service (caseworker staff)."""

    id: int
    role: str  # coordinator, leader, admin
    active: bool = True


@dataclass(frozen=True)
class Feed:
    """A calendar subscription. ``owner`` is the user who created it (every feed belongs to a user)."""

    id: int
    scope: str  # coordinator, case, contact
    owner: int  # Staff id
    contact: int | None = None  # for scope contact
    revoked: bool = False


@dataclass(frozen=True)
class World:
    """Everything the rules look at, at one moment, for one case (in one unit)."""

    reference: str
    child_name: str
    birth_date: date
    aimed_at_child: bool
    party_status_override: bool | None
    people: tuple[Person, ...]
    acts: tuple[Act, ...]
    meetings: tuple[Meet, ...]
    staff: tuple[Staff, ...] = ()
    coordinators: frozenset[int] = frozenset()  # Staff ids assigned to this case now

    def person(self, contact_id: int) -> Person:
        for p in self.people:
            if p.id == contact_id:
                return p
        raise KeyError(contact_id)

    def meeting(self, meeting_id: int) -> Meet:
        for m in self.meetings:
            if m.id == meeting_id:
                return m
        raise KeyError(meeting_id)

    def by_email(self, email: str) -> Person | None:
        wanted = email.strip().casefold()
        matches = [p for p in self.people if p.email.strip().casefold() == wanted]
        for p in matches:
            if p.active:
                return p
        return matches[0] if matches else None

    def find_person(self, contact_id: int) -> Person | None:
        for p in self.people:
            if p.id == contact_id:
                return p
        return None

    def find_staff(self, staff_id: int) -> Staff | None:
        for s in self.staff:
            if s.id == staff_id:
                return s
        return None


# --- time helpers -------------------------------------------------------------------------


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("datetimes must be timezone-aware")
    return at


def oslo(at: datetime) -> datetime:
    """``at`` on Oslo's wall clock."""
    return _aware(at).astimezone(OSLO)


def oslo_date(at: datetime) -> date:
    return oslo(at).date()


# --- rule 2: party status -----------------------------------------------------------------


def _birthday_in(year: int, birth: date) -> date:
    if birth.month == 2 and birth.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)  # R6
    return birth.replace(year=year)


def age_on(birth: date, day: date) -> int:
    """Completed years on calendar ``day``; a 29 February birthday falls on 28 February in
    non-leap years (R6)."""
    years = day.year - birth.year
    if day < _birthday_in(day.year, birth):
        years -= 1
    return years


def party_status(world: World, at: datetime) -> bool:
    """Rule 2: party status at ``at`` from the Oslo calendar date, or an override to ``True`` (R7)."""
    if world.party_status_override is True:
        return True
    return age_on(world.birth_date, oslo_date(at)) >= PARTY_STATUS_AGE


def party_status_from(world: World) -> datetime:
    """The instant (UTC-aware) at which the age-based party status begins: Oslo midnight of the
    15th birthday (R6)."""
    day = _birthday_in(world.birth_date.year + PARTY_STATUS_AGE, world.birth_date)
    return datetime.combine(day, time(0, 0), tzinfo=OSLO)


# --- rule 2: consent acts -----------------------------------------------------------------


def _act_level(act: Act, at: datetime) -> L:
    if act.status != "granted":
        return L.NONE
    if act.valid_until is not None and at >= act.valid_until:  # R2: half-open
        return L.NONE
    return L(act.level)


def known_acts(world: World, grantor: int, sector: str, at: datetime) -> list[Act]:
    """Acts by ``grantor`` for ``sector`` recorded by ``at`` and already valid at ``at`` (R1)."""
    _aware(at)
    return [
        a
        for a in world.acts
        if a.grantor == grantor and a.sector == sector and a.recorded_at <= at and a.valid_from <= at
    ]


def grant(world: World, grantor: int, sector: str, at: datetime) -> L:
    """What one grantor's acts allow one sector at ``at`` (L.NONE when nothing is in force)."""
    acts = known_acts(world, grantor, sector, at)
    if not acts:
        return L.NONE
    latest_recorded = max(acts, key=lambda a: a.order)
    latest_valid = max(acts, key=lambda a: (a.valid_from, a.order))
    return min(_act_level(latest_recorded, at), _act_level(latest_valid, at))


def child_contacts(world: World) -> list[int]:
    return sorted(p.id for p in world.people if p.role == "child")


def required_grantors(world: World, at: datetime) -> list[int | None]:
    """Rule 2: whose grants a partner sector needs at ``at``: contact ids, and ``None`` standing
    for a child with party status who has no contact row at all."""
    carers = sorted({p.id for p in world.people if p.daily_care})
    out: list[int | None] = list(carers)
    if world.aimed_at_child and party_status(world, at):
        children = child_contacts(world)
        if not children:
            out.append(None)
        for c in children:
            if c not in carers:
                out.append(c)
    return out


def sector_needs_consent(sector: str) -> bool:
    return sector not in CONSENT_FREE_SECTORS  # R8: unknown sectors need consent too


def sector_level(world: World, sector: str, at: datetime) -> L:
    """Rule 2's effective consent level for a sector at ``at`` (L.CONTENT for sectors needing none)."""
    _aware(at)
    if not sector_needs_consent(sector):
        return L.CONTENT
    grantors = required_grantors(world, at)
    if not grantors:
        return L.NONE  # R5
    level = L.CONTENT
    for g in grantors:
        level = min(level, L.NONE if g is None else grant(world, g, sector, at))
    return level


# --- rules 1, 3, 5: what a reader may know ------------------------------------------------


def is_parent_for_child_talk(person: Person) -> bool:
    """R11: "the parents" of rule 5."""
    return person.role != "child" and (person.role == "parent" or person.daily_care)


def _current(world: World, reader: Person) -> Person | None:
    row = world.find_person(reader.id)
    if row is None or not row.active or not reader.active:
        return None
    return reader


def may_know(world: World, reader: Person, meeting: Meet, at: datetime) -> L:
    """The most ``reader`` may learn of ``meeting`` at ``at`` (rules 1, 2, 3, 5); L.NONE = nothing."""
    _aware(at)
    r = _current(world, reader)
    if r is None or r.id not in meeting.participants:
        return L.NONE  # R10
    ceiling = L.CONTENT
    if meeting.kind == "child_talk" and is_parent_for_child_talk(r):
        if not meeting.parents_told:
            return L.NONE
        ceiling = L.LOGISTICS  # R11
    return min(ceiling, sector_level(world, r.sector, at))


def mail_level(world: World, reader: Person, meeting: Meet, at: datetime, cap: L) -> L:
    """The level an e-mail to ``reader`` about ``meeting`` sent at ``at`` may carry, given the
    configured e-mail channel cap (rule 4); every part of the mail is rendered at this one level."""
    return min(may_know(world, reader, meeting, at), L(cap))


# --- rule 8: attendees --------------------------------------------------------------------


def attendee_sector_shown_at_most(world: World, reader: Person, sector: str, level: L, at: datetime) -> bool:
    """Rule 8, upper bound: may ``reader``, seeing a meeting at ``level``, be shown an attendee of ``sector``?
    (Other attendees only; the reader's own entry: see :func:`attendee_shown_at_most`.)"""
    if _current(world, reader) is None or level < L.PURPOSE:
        return False
    own = sector_level(world, reader.sector, at)
    if own < level:
        return False
    if sector == reader.sector or sector in CONSENT_FREE_SECTORS:
        return True
    return own >= L.PURPOSE and sector_level(world, sector, at) >= L.PURPOSE


def attendee_shown_at_most(world: World, reader: Person, attendee: Person, level: L, at: datetime) -> bool:
    """Rule 8 for one attendee: the reader themself may always be shown (at any level above none)."""
    if attendee.id == reader.id:
        return level > L.NONE and _current(world, reader) is not None
    return attendee_sector_shown_at_most(world, reader, attendee.sector, level, at)


def attendee_sector_shown_at_least(reader: Person, sector: str, level: L) -> bool:
    """Rule 8, lower bound: must ``reader`` seeing a meeting at ``level`` be shown attendees of ``sector``?
    (The service's reading: at ``purpose`` and above a reader sees their own sector, the family and
    the service.)"""
    if not reader.active or level < L.PURPOSE:
        return False
    return sector == reader.sector or sector in CONSENT_FREE_SECTORS


# --- rule 10: quiet hours -----------------------------------------------------------------


def quiet_hours(at: datetime) -> bool:
    """Rule 10: is ``at`` inside the hours when mail to families must wait? [21:00, 07:00) Oslo."""
    t = oslo(at).time()
    return t >= QUIET_FROM or t < QUIET_UNTIL


def family_mail_may_go(reader: Person, at: datetime) -> bool:
    """Rule 10 for one mail: not to a family recipient in quiet hours."""
    return not (reader.is_family_recipient and quiet_hours(at))


def quiet_hours_end(at: datetime) -> datetime:
    """The next 07:00 Oslo at or after ``at`` (``at`` itself when not in quiet hours)."""
    if not quiet_hours(at):
        return at
    local = oslo(at)
    day = local.date() if local.time() < QUIET_UNTIL else local.date() + timedelta(days=1)
    return datetime.combine(day, QUIET_UNTIL, tzinfo=OSLO)


def sms_daytime(at: datetime) -> bool:
    """Rule 10's default SMS window for families: [08:00, 20:00) Oslo (R14)."""
    t = oslo(at).time()
    return SMS_FROM <= t < SMS_UNTIL


# --- feeds --------------------------------------------------------------------------------


def in_feeds(meeting: Meet, at: datetime) -> bool:
    """Whether the meeting is still listed in feeds (the service keeps cancelled meetings, shown as
    cancelled, for 30 days after cancellation, then drops them)."""
    _aware(at)
    if meeting.status != "cancelled":
        return True
    if meeting.cancelled_at is None:
        return False  # R18
    return at < meeting.cancelled_at + CANCELLED_KEPT


def contact_feed(world: World, reader: Person, at: datetime, cap: L = L.PURPOSE) -> dict[str, L]:
    """The entries (UID -> level) the contact's own feed must show at ``at``: their meetings that
    the rules let them know of, each at min(what they may know, ``cap``)."""
    out: dict[str, L] = {}
    for m in world.meetings:
        if not in_feeds(m, at):
            continue
        level = min(may_know(world, reader, m, at), L(cap))
        if level > L.NONE:
            out[m.uid] = level
    return out


def staff_feed(world: World, at: datetime) -> set[str]:
    """UIDs the case team's feed shows."""
    return {m.uid for m in world.meetings if in_feeds(m, at)}


def feed_alive(world: World, feed: Feed, at: datetime) -> bool:
    """Rule 11 (R16): does this feed still answer (200), or is it gone (410)?"""
    _aware(at)
    if feed.revoked:
        return False
    owner = world.find_staff(feed.owner)
    if owner is None or not owner.active:
        return False
    if feed.scope == "coordinator":
        return True
    if owner.id not in world.coordinators:
        return False
    if feed.scope == "case":
        return True
    if feed.scope == "contact":
        if feed.contact is None:
            return False
        contact = world.find_person(feed.contact)
        return contact is not None and contact.active
    return False


def feed_shows_case(world: World, feed: Feed, at: datetime) -> bool:
    """Whether a live feed may show anything of this case (its owner is on the case now)."""
    return feed_alive(world, feed, at) and feed.owner in world.coordinators


# --- rule 11: sector changes --------------------------------------------------------------


def sector_change_allowed(role: str, new_sector: str) -> bool:
    """Rule 11 (R17): may a contact with ``role`` be placed in ``new_sector``?"""
    if new_sector not in SECTORS:
        return False
    if role == "other":
        return True
    default = DEFAULT_SECTOR.get(role)
    outside = default is None or default in PARTNER_SECTORS
    return not (outside and new_sector in CONSENT_FREE_SECTORS)
