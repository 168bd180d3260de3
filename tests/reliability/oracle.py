"""DESIGN.md rules 1-3, 5, 8 and 10 written down a second time, for the tests to judge the
service by. Deliberately independent of ``coordination.policy``: plain data, its own
level scale, and the rules read straight from the design text, so that a mistake in the
service's policy is not repeated here and can be caught.

Readings the design leaves open, and how they are read here:

* A consent act (granted, refused, withdrawn) is in force for its grantor and sector from
  its ``valid_from`` until a later-recorded act is in force; a grant whose ``valid_until``
  has passed gives nothing.
* Rule 8 is checked as an upper bound: a partner sector's attendance may be shown to a
  reader only when that sector has some effective consent and the reader sees the meeting
  at ``purpose`` or above; the reader's own sector, the family and the service are always
  shown at ``purpose`` and above.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

OSLO = ZoneInfo("Europe/Oslo")
PARTY_STATUS_AGE = 15
PARTNER_SECTORS = frozenset({"school", "health", "nav", "other"})
FAMILY_ROLES = frozenset({"parent", "child", "trusted_person"})
#: How long a cancelled meeting stays in feeds (as STATUS:CANCELLED).
CANCELLED_KEPT = timedelta(days=30)


class L(enum.IntEnum):
    """Rule 3's levels, ordered."""

    NONE = 0
    LOGISTICS = 1
    PURPOSE = 2
    CONTENT = 3

    @classmethod
    def of(cls, name: str) -> L:
        return cls[name.upper()]


@dataclass(frozen=True)
class Person:
    id: int
    role: str
    sector: str
    email: str
    name: str
    daily_care: bool = False
    active: bool = True

    @property
    def is_family_recipient(self) -> bool:
        return self.role in FAMILY_ROLES


@dataclass(frozen=True)
class Act:
    """One consent act as recorded; ``order`` is the order of recording."""

    order: int
    grantor: int
    sector: str
    status: str  # granted, refused, withdrawn
    level: L
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
    status: str  # proposed, confirmed, cancelled
    sequence: int
    participants: frozenset[int]
    parents_told: bool
    agenda: str
    place: str
    cancelled_at: datetime | None = None


@dataclass(frozen=True)
class World:
    """Everything the rules look at, at one moment."""

    reference: str
    child_name: str
    birth_date: date
    aimed_at_child: bool
    party_status_override: bool | None
    people: tuple[Person, ...]
    acts: tuple[Act, ...]
    meetings: tuple[Meet, ...]

    def person(self, contact_id: int) -> Person:
        return next(p for p in self.people if p.id == contact_id)

    def meeting(self, meeting_id: int) -> Meet:
        return next(m for m in self.meetings if m.id == meeting_id)

    def by_email(self, email: str) -> Person | None:
        return next((p for p in self.people if p.email.lower() == email.lower()), None)


def age_on(birth: date, day: date) -> int:
    years = day.year - birth.year
    return years - 1 if (day.month, day.day) < (birth.month, birth.day) else years


def party_status(world: World, at: datetime) -> bool:
    """From 15 (on the Oslo calendar), unless the coordinator has overridden it."""
    if world.party_status_override is not None:
        return world.party_status_override
    return age_on(world.birth_date, at.astimezone(OSLO).date()) >= PARTY_STATUS_AGE


def grant(world: World, grantor: int, sector: str, at: datetime) -> L:
    """What one grantor allows one sector at ``at``."""
    known = [a for a in world.acts if a.grantor == grantor and a.sector == sector
             and a.recorded_at <= at and a.valid_from <= at]
    if not known:
        return L.NONE
    latest = max(known, key=lambda a: a.order)
    if latest.status != "granted":
        return L.NONE
    if latest.valid_until is not None and at >= latest.valid_until:
        return L.NONE
    return latest.level


def grantors(world: World, at: datetime) -> list[Person]:
    """Rule 2: everyone with daily care; and the child once they have party status, when the
    measure is aimed at them."""
    needed = [p for p in world.people if p.active and p.daily_care and p.role != "child"]
    if world.aimed_at_child and party_status(world, at):
        needed += [p for p in world.people if p.active and p.role == "child"]
    return needed


def sector_level(world: World, sector: str, at: datetime) -> L:
    """Rule 2's effective consent for a sector: the narrowest grant of all who must give one."""
    if sector not in PARTNER_SECTORS:
        return L.CONTENT
    needed = grantors(world, at)
    if not needed:
        return L.NONE
    return min(grant(world, p.id, sector, at) for p in needed)


def may_know(world: World, reader: Person, meeting: Meet, at: datetime) -> L:
    """The most ``reader`` may learn of ``meeting`` at ``at`` (rules 1, 2, 3 and 5)."""
    if not reader.active:
        return L.NONE
    if meeting.kind == "child_talk" and reader.role == "parent" and not meeting.parents_told:
        return L.NONE  # rule 5: the child's conversation is the child's
    if reader.sector not in PARTNER_SECTORS:
        return L.CONTENT  # the family and the service are parties, not partners
    return sector_level(world, reader.sector, at)


def attendee_sector_shown_at_most(world: World, reader: Person, sector: str, level: L, at: datetime) -> bool:
    """Rule 8, the upper bound: may ``reader``, seeing a meeting at ``level``, be shown that
    someone of ``sector`` takes part?"""
    if level < L.PURPOSE:
        return False
    if sector in ("family", "child_welfare") or sector == reader.sector:
        return True
    return sector_level(world, sector, at) > L.NONE


def attendee_sector_shown_at_least(reader: Person, sector: str, level: L) -> bool:
    """Rule 8, the lower bound: at ``purpose`` a reader sees their own sector, the family
    and the service."""
    return level >= L.PURPOSE and (sector in ("family", "child_welfare") or sector == reader.sector)


def quiet_hours(at: datetime) -> bool:
    """Rule 10: 21:00-07:00 Oslo time."""
    hour = at.astimezone(OSLO).hour
    return hour >= 21 or hour < 7


def in_feeds(meeting: Meet, at: datetime) -> bool:
    """Cancelled meetings stay (as cancelled) for 30 days, then leave the feeds."""
    return meeting.cancelled_at is None or at < meeting.cancelled_at + CANCELLED_KEPT


def contact_feed(world: World, reader: Person, at: datetime, cap: L = L.PURPOSE) -> dict[str, L]:
    """Rule 1 applied to a contact's own feed: their meetings that consent lets them know of,
    each at the lowest level a calendar needs (``cap``) and never above what is allowed."""
    entries = {}
    for meeting in world.meetings:
        if reader.id not in meeting.participants or not in_feeds(meeting, at):
            continue
        level = min(may_know(world, reader, meeting, at), cap)
        if level > L.NONE:
            entries[meeting.uid] = level
    return entries


def staff_feed(world: World, at: datetime) -> set[str]:
    """The case team's feed: every meeting of the case still in feeds."""
    return {m.uid for m in world.meetings if in_feeds(m, at)}
