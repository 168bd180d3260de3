"""Consent that changes by itself: future-dated grants, expiry, the 15th birthday."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import and_, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from calendars.zone import local_date, local_midnight
from coordination.consent.facts import PolicyFacts, load_policy_facts
from coordination.consent.loops import partner_levels
from coordination.consent.policy import birthday_in, fifteenth_birthday
from coordination.domain import (
    PARTNER_SECTORS,
    PARTY_STATUS_AGE,
    ConsentStatus,
    Sector,
)
from coordination.levels import Level
from coordination.models import Case, ConsentRecord
from coordination.outbox import alerts
from coordination.outbox import queue as outbox

# --- consent that ends or comes into force without a consent act -----------------------

#: How long after it happened the periodic round still looks for a change that time alone made
#: to consent: longer than any pause between rounds (a later round finds nothing new to do).
TIME_LOOKBACK = timedelta(days=3)


async def follow_consent(session: AsyncSession, case: Case, before: dict[Sector, Level], cause: str, key: str,
                          now: datetime) -> None:
    """After a change to the contact list or the case (``key`` names it): a sector whose consent
    it ended is alerted with the partners who hold invitations (rule 7) — a new carer without a
    grant, the child's party status —; one whose consent it brought into force gets the
    invitations held back for want of it."""
    after = await partner_levels(session, case, now)
    for sector, level in after.items():
        if before[sector] > Level.NONE and level is Level.NONE:
            await alerts.consent_lapsed(session, case, sector, f"{key}:{sector.value}:lapsed", now, cause=cause)
        elif before[sector] is Level.NONE and level > Level.NONE:
            await outbox.requeue_after_consent(session, case, sector, key, now)


def _years_before(day: date, years: int) -> date:
    """The day ``years`` before ``day``, counted as birthdays are (29 February gives 28 February)."""
    return birthday_in(day, day.year - years)


async def consent_over_time(session: AsyncSession, now: datetime) -> int:
    """What time alone changes in consent, for the periodic round (``coordination.background``).

    A grant dated ahead comes into force: the invitations held back for want of it go out. A
    grant expires, or the child turns 15 and has party status without having consented: the
    coordinator is told which partners still hold invitations (rule 7). Each change is looked
    for during ``TIME_LOOKBACK`` after it happened; the alert and invitation keys name their
    cause, so that later rounds, or another instance, add nothing. Returns the alerts raised.
    """
    since = now - TIME_LOOKBACK
    # The moment of each change per case, with the grant that changed (None: the 15th birthday).
    changes: dict[int, list[tuple[datetime, ConsentRecord | None]]] = {}
    grants = await session.exec(select(ConsentRecord).where(
        ConsentRecord.status == ConsentStatus.GRANTED,
        or_(and_(col(ConsentRecord.valid_from) > since, col(ConsentRecord.valid_from) <= now,
                 col(ConsentRecord.valid_from) > col(ConsentRecord.recorded_at)),
            and_(col(ConsentRecord.valid_until) > since, col(ConsentRecord.valid_until) <= now))))
    for record in grants.all():
        ended = record.valid_until if record.valid_until is not None and record.valid_until <= now else None
        changes.setdefault(record.case_id, []).append((ended or record.valid_from, record))
    born = await session.exec(select(Case).where(
        col(Case.closed_at).is_(None), Case.aimed_at_child == True,  # noqa: E712
        col(Case.party_status_override).is_(None),
        col(Case.child_birth_date) >= _years_before(local_date(since), PARTY_STATUS_AGE) - timedelta(days=1),
        # a day's margin: a child born on 29 February turns 15 on 28 February in other years
        col(Case.child_birth_date) <= _years_before(local_date(now), PARTY_STATUS_AGE) + timedelta(days=1)))
    for child in born.all():
        birthday = local_midnight(fifteenth_birthday(child.child_birth_date))
        if since < birthday <= now and child.id is not None:
            changes.setdefault(child.id, []).append((birthday, None))
    raised = 0
    for case_id, moments in sorted(changes.items()):
        case = await session.get(Case, case_id)
        if case is None or case.closed_at is not None:
            continue
        facts = await load_policy_facts(session, case)
        for moment, grant in moments:
            if grant is not None and grant.valid_from == moment:  # a grant dated ahead, now in force
                consent = facts.sector(grant.sector, now)
                if consent.level > Level.NONE:
                    await outbox.requeue_after_consent(session, case, grant.sector, str(max(consent.record_ids)),
                                                       now)
            else:
                raised += await _lapsed_at(session, case, facts, moment, grant, now)
    return raised


async def _lapsed_at(session: AsyncSession, case: Case, facts: PolicyFacts, moment: datetime,
                     expired: ConsentRecord | None, now: datetime) -> int:
    """Alerts for the sectors whose consent ended at ``moment`` (when ``expired`` ran out, or at the
    15th birthday) and has not come back since."""
    raised = 0
    for sector in [expired.sector] if expired is not None else PARTNER_SECTORS:
        was = facts.sector(sector, moment - timedelta(microseconds=1))
        if was.level is Level.NONE or facts.sector(sector, now).level > Level.NONE:
            continue
        if expired is None:
            key, cause = f"case:{case.id}:party-status:{sector.value}", "party_status"
        elif expired.id in was.record_ids:
            key, cause = f"consent:{expired.id}:expired", "expired"
        else:
            continue  # a later act had replaced the grant before it ran out
        raised += await alerts.consent_lapsed(session, case, sector, key, now, cause=cause,
                                              consent=expired.id if expired is not None else None)
    return raised
