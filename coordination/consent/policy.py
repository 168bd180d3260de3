"""The information-loop policy: the one place that decides "may X learn Y now".

Pure functions over plain facts (no database), so that every rule in DESIGN.md
(rules 1, 2, 3, 5 and 8) is decided here and nowhere else, and can be tested exhaustively.

How consent history is read: for one grantor and one sector, the record in force at time
``t`` is the most recently *recorded* record whose ``valid_from`` is at or before ``t``
(a correction or a withdrawal is a new record and wins over older ones). A grant in force
whose ``valid_until`` has passed is *expired*. Records recorded after the moment of the
decision are not known at that moment and are ignored.

Who must consent (rule 2): every contact with daily care, active or not — deactivating a
carer never widens what others may learn; only taking away their daily care does — and,
when the child has party status and the measure is aimed at the child, the child. Party
status belongs to the child, not to a contact row: the child's consent acts are those
recorded for any contact with the role child (active or not), and a case without a child
contact still needs the child's grant, so its sectors stay at ``none`` until the child is
added and consents.
"""

from __future__ import annotations

import calendar
import enum
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from calendars.zone import local_date
from coordination.domain import PARTY_STATUS_AGE, ConsentStatus, Role, Sector
from coordination.levels import Level


@dataclass(frozen=True, slots=True)
class CaseFacts:
    birth_date: date
    aimed_at_child: bool
    party_status_override: bool | None = None


@dataclass(frozen=True, slots=True)
class ContactFacts:
    id: int
    role: Role
    sector: Sector
    daily_care: bool
    active: bool = True


@dataclass(frozen=True, slots=True)
class ConsentFact:
    id: int
    grantor_id: int
    sector: Sector
    status: ConsentStatus
    level: Level
    valid_from: datetime
    valid_until: datetime | None
    recorded_at: datetime


class GrantorState(enum.StrEnum):
    GRANTED = "granted"
    MISSING = "missing"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


class SectorState(enum.StrEnum):
    """The coordinator's overview of one sector (DESIGN.md)."""

    NOT_NEEDED = "not_needed"
    GRANTED = "granted"
    PARTIAL = "partial"
    MISSING = "missing"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a decision came out as it did; rendered into words by ``coordination.texts``."""

    code: str
    contact_id: int | None = None
    sector: Sector | None = None
    level: Level | None = None
    on: datetime | None = None


@dataclass(frozen=True, slots=True)
class Grantor:
    """One person whose consent a sector needs.

    ``acts_of`` are the contact rows whose consent records are this person's: a carer's own
    row, or every row with the role child. ``contact_id`` names the person; it is None for a
    child with party status who has no contact in the list.
    """

    contact_id: int | None
    as_child: bool
    acts_of: frozenset[int]


@dataclass(frozen=True, slots=True)
class GrantorStatus:
    """A grantor's state; ``contact_id`` is the row whose record is in force, else the grantor's
    own row (None: the child, who has no contact in the list)."""

    contact_id: int | None
    as_child: bool
    state: GrantorState
    level: Level
    record_id: int | None
    valid_until: datetime | None


@dataclass(frozen=True, slots=True)
class SectorConsent:
    sector: Sector
    at: datetime
    level: Level
    state: SectorState
    grantors: tuple[GrantorStatus, ...]
    reasons: tuple[Reason, ...]

    @property
    def record_ids(self) -> tuple[int, ...]:
        return tuple(g.record_id for g in self.grantors if g.record_id is not None)


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to "may this recipient learn this, at this level, now"."""

    allowed: bool
    level: Level
    reasons: tuple[Reason, ...]
    consent_record_ids: tuple[int, ...] = field(default_factory=tuple)


def birthday_in(birth_date: date, year: int) -> date:
    """The birthday in ``year``. A child born on 29 February has it on 28 February in other
    years: a period counted in years ends on the last day of the month when the day does not
    exist (fristloven § 3), and the earlier day is also the one that never widens consent."""
    if (birth_date.month, birth_date.day) == (2, 29) and not calendar.isleap(year):
        return date(year, 2, 28)
    return birth_date.replace(year=year)


def age_on(birth_date: date, day: date) -> int:
    years = day.year - birth_date.year
    if day < birthday_in(birth_date, day.year):
        years -= 1
    return years


def fifteenth_birthday(birth_date: date) -> date:
    """The Oslo calendar day party status begins as a rule."""
    return birthday_in(birth_date, birth_date.year + PARTY_STATUS_AGE)


def has_party_status(case: CaseFacts, at: datetime) -> bool:
    """Party status as a rule from 15 (age on the Oslo calendar date of ``at``), unless overridden."""
    if case.party_status_override is not None:
        return case.party_status_override
    return age_on(case.birth_date, local_date(at)) >= PARTY_STATUS_AGE


def required_grantors(
    case: CaseFacts, contacts: Iterable[ContactFacts], at: datetime
) -> list[Grantor]:
    """Everyone whose consent a sector needs at ``at``: the carers by id, then the child."""
    contacts = sorted(contacts, key=lambda c: c.id)
    result = [
        Grantor(c.id, False, frozenset((c.id,)))
        for c in contacts
        if c.daily_care and c.role is not Role.CHILD
    ]
    if case.aimed_at_child and has_party_status(case, at):
        rows = [c for c in contacts if c.role is Role.CHILD]
        active = [c for c in rows if c.active]
        named = (active or rows)[-1].id if rows else None
        result.append(Grantor(named, True, frozenset(c.id for c in rows)))
    return result


def record_in_force(
    records: Iterable[ConsentFact], grantor_ids: Collection[int], sector: Sector, at: datetime
) -> ConsentFact | None:
    """The record in force at ``at`` among the acts of one grantor (any of ``grantor_ids``)."""
    best: ConsentFact | None = None
    for record in records:
        if record.grantor_id not in grantor_ids or record.sector is not sector:
            continue
        if record.recorded_at > at or record.valid_from > at:
            continue
        if best is None or (record.recorded_at, record.id) > (best.recorded_at, best.id):
            best = record
    return best


def _grantor_status(
    grantor: Grantor, records: Sequence[ConsentFact], sector: Sector, at: datetime
) -> GrantorStatus:
    record = record_in_force(records, grantor.acts_of, sector, at)
    if record is None:
        state, level = GrantorState.MISSING, Level.NONE
    elif record.status is ConsentStatus.REFUSED:
        state, level = GrantorState.REFUSED, Level.NONE
    elif record.status is ConsentStatus.WITHDRAWN:
        state, level = GrantorState.WITHDRAWN, Level.NONE
    elif record.valid_until is not None and record.valid_until <= at:
        state, level = GrantorState.EXPIRED, Level.NONE
    else:
        state, level = GrantorState.GRANTED, record.level
    return GrantorStatus(
        contact_id=record.grantor_id if record else grantor.contact_id,
        as_child=grantor.as_child,
        state=state,
        level=level,
        record_id=record.id if record else None,
        valid_until=record.valid_until if record else None,
    )


def effective_consent(
    case: CaseFacts,
    contacts: Sequence[ContactFacts],
    records: Sequence[ConsentFact],
    sector: Sector,
    at: datetime,
) -> SectorConsent:
    """DESIGN.md rule 2: every carer (and the child with party status, when the measure is
    aimed at the child) must hold a valid grant; the effective level is the narrowest.
    A child without a contact row is named by a reason with ``contact_id`` None."""
    at = at.astimezone(UTC)
    if not sector.needs_consent:
        reason = Reason("party_or_service", sector=sector)
        return SectorConsent(sector, at, Level.CONTENT, SectorState.NOT_NEEDED, (), (reason,))
    grantors = required_grantors(case, contacts, at)
    if not grantors:
        reason = Reason("no_daily_care", sector=sector)
        return SectorConsent(sector, at, Level.NONE, SectorState.MISSING, (), (reason,))
    statuses = tuple(_grantor_status(g, records, sector, at) for g in grantors)
    reasons: list[Reason] = []
    for status in statuses:
        if status.state is GrantorState.GRANTED:
            continue
        code = {
            GrantorState.MISSING: "child_not_consented" if status.as_child else "not_consented",
            GrantorState.REFUSED: "refused",
            GrantorState.WITHDRAWN: "withdrawn",
            GrantorState.EXPIRED: "expired",
        }[status.state]
        reasons.append(Reason(code, contact_id=status.contact_id, sector=sector,
                              on=status.valid_until))
    if reasons:
        return SectorConsent(sector, at, Level.NONE, _overview(statuses), statuses, tuple(reasons))
    level = min(s.level for s in statuses)
    narrowed = [
        Reason("narrowed", contact_id=s.contact_id, sector=sector, level=s.level)
        for s in statuses
        if s.level == level and any(o.level > level for o in statuses)
    ]
    granted = Reason("granted", sector=sector, level=level)
    return SectorConsent(
        sector, at, level, SectorState.GRANTED, statuses, (granted, *narrowed)
    )


def _overview(statuses: Sequence[GrantorStatus]) -> SectorState:
    states = {s.state for s in statuses}
    if GrantorState.WITHDRAWN in states:
        return SectorState.WITHDRAWN
    if GrantorState.GRANTED in states:
        return SectorState.PARTIAL
    if GrantorState.EXPIRED in states:
        return SectorState.EXPIRED
    return SectorState.MISSING


def allowed_level(
    case: CaseFacts,
    contacts: Sequence[ContactFacts],
    records: Sequence[ConsentFact],
    recipient: ContactFacts,
    at: datetime,
    *,
    child_talk: bool = False,
    parents_told_of_child_talk: bool = False,
) -> Decision:
    """The most ``recipient`` may learn of a case's meeting at ``at``.

    Families are parties (rule 5): they need no sector consent, except that a child talk
    belongs to the child: the parents (a parent, or whoever has daily care) learn of it only
    when the coordinator says so, and then only that it takes place (``logistics``) — what the
    child talks about stays the child's. Partners get their sector's effective consent level
    (rules 1-3).
    """
    if not recipient.active:
        return Decision(False, Level.NONE, (Reason("contact_inactive", recipient.id),))
    if child_talk and (recipient.role is Role.PARENT or recipient.daily_care):
        if not parents_told_of_child_talk:
            return Decision(False, Level.NONE, (Reason("child_talk_private", recipient.id),))
        return Decision(True, Level.LOGISTICS, (Reason("child_talk_told", recipient.id),))
    if not recipient.sector.needs_consent:
        return Decision(True, Level.CONTENT,
                        (Reason("party_or_service", recipient.id, recipient.sector),))
    consent = effective_consent(case, contacts, records, recipient.sector, at)
    return Decision(consent.level > Level.NONE, consent.level, consent.reasons, consent.record_ids)


def decide(
    case: CaseFacts,
    contacts: Sequence[ContactFacts],
    records: Sequence[ConsentFact],
    recipient: ContactFacts,
    wanted: Level,
    at: datetime,
    *,
    child_talk: bool = False,
    parents_told_of_child_talk: bool = False,
) -> Decision:
    """May ``recipient`` learn something that needs level ``wanted`` at ``at``?"""
    most = allowed_level(case, contacts, records, recipient, at, child_talk=child_talk,
                         parents_told_of_child_talk=parents_told_of_child_talk)
    if not most.allowed:
        return most
    if most.level < wanted:
        reason = Reason("level_too_low", recipient.id, recipient.sector, most.level)
        return Decision(False, most.level, (reason, *most.reasons), most.consent_record_ids)
    return Decision(True, wanted, most.reasons, most.consent_record_ids)


def visible_sectors(
    case: CaseFacts,
    contacts: Sequence[ContactFacts],
    records: Sequence[ConsentFact],
    reader: ContactFacts,
    at: datetime,
) -> frozenset[Sector]:
    """Rule 8: whose attendance a reader may see — their own sector, the family, the service,
    and other partner sectors when both sectors' effective consent is at least ``purpose``
    (knowing who else takes part tells what the meeting is about).

    A family or service reader's sector needs no consent (it counts as ``content``), so a
    partner sector is shown to them once that sector's own consent reaches ``purpose``.
    """
    visible = {Sector.FAMILY, Sector.CHILD_WELFARE, reader.sector}
    reader_level = (
        Level.CONTENT
        if not reader.sector.needs_consent
        else effective_consent(case, contacts, records, reader.sector, at).level
    )
    if reader_level < Level.PURPOSE:
        return frozenset(visible)
    for sector in Sector:
        if not sector.needs_consent or sector in visible:
            continue
        if effective_consent(case, contacts, records, sector, at).level >= Level.PURPOSE:
            visible.add(sector)
    return frozenset(visible)
