"""Coordinator alerts: things a person must act on, listed in the API and mailed to the
case's coordinators (at the channel cap, which by default says only "open Samhandling").

One alert per cause: ``key`` is unique, so a repeated scan or a repeated failure does
not pile up duplicates.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, cast, exists, literal
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select

from calendars.schedule import MeetingKind, add_months
from calendars.zone import local_date, local_midnight, wall_time
from coordination import audit
from coordination.access.rules import case_for, visible_cases
from coordination.changes import Change
from coordination.consent.facts import Columns
from coordination.consent.policy import birthday_in, fifteenth_birthday
from coordination.consent.texts import SECTOR_NAMES
from coordination.domain import PARTY_STATUS_AGE, AuditAction, ConsentStatus, Language, MeasureType, Sector
from coordination.errors import not_found
from coordination.models import Alert, Case, CaseCoordinator, ConsentRecord, Contact, Meeting, OutboxMessage, User
from coordination.outbox.enums import OutboxStatus
from coordination.outbox.queue import TELLS_OF_MEETING, alert_message, enqueue
from coordination.scheduling.enums import OPEN_STATUSES
from coordination.schemas import AlertOut
from notifications.ports import AlertKind


async def raise_alert(
    session: AsyncSession,
    case: Case,
    kind: AlertKind,
    key: str,
    now: datetime,
    *,
    detail: dict[str, object] | None = None,
    due_at: datetime | None = None,
) -> Alert | None:
    """Record the alert and queue a mail to each coordinator of the case; None if already raised."""
    found = (await session.exec(select(Alert).where(Alert.key == key))).first()
    if found is not None:
        return None
    alert = _alert(case, Due(case.id, kind, key, detail or {}, due_at), now)
    session.add(alert)
    await session.flush()
    coordinators = await session.exec(
        select(CaseCoordinator.user_id).where(CaseCoordinator.case_id == case.id)
    )
    await _announce(session, case, alert, coordinators.all(), now)
    return alert


@dataclass(frozen=True, slots=True)
class Due:
    """An alert the scan found due and not yet raised."""

    case_id: int | None
    kind: AlertKind
    key: str
    detail: dict[str, object]
    due_at: datetime | None


def _alert(case: Case, due: Due, now: datetime) -> Alert:
    return Alert(unit_id=case.unit_id, case_id=case.id, kind=due.kind, key=due.key, detail=due.detail,
                 due_at=due.due_at, created_at=now)


async def _announce(session: AsyncSession, case: Case, alert: Alert, coordinators: Sequence[int],
                    now: datetime) -> None:
    """Queue the alert's mail to each coordinator and audit it (deadlines show in feeds)."""
    for user_id in coordinators:
        await enqueue(session, alert_message(case, alert, user_id, now))
    change = Change.in_case(session, case, audit.SYSTEM, now)
    change.record(AuditAction.ALERT_RAISED, f"alert:{alert.id}", {"kind": alert.kind}, feeds=True)


async def scan(session: AsyncSession, now: datetime) -> int:
    """The periodic look for deadlines (DESIGN.md "Coordinator alerts"); returns how many were raised.

    Consent expiring within 14 days; the child turning 15 within 30 days (a sector may lose
    effective consent that day); an evaluation not held two days after its time; an ordered
    measure ending within 30 days. One query per kind for all open cases, each leaving out
    what was already raised, so a scan of a whole country costs a few statements (issue 17).
    """
    due = [*await _consent_expiring(session, now), *await _turning_15(session, now),
           *await _evaluations_overdue(session, now), *await _orders_ending(session, now)]
    if not due:
        return 0
    due.sort(key=lambda d: d.case_id or 0)  # stable: per case, in the order of the kinds above
    cases: dict[int | None, Case] = {}
    coordinators: dict[int | None, list[int]] = {}
    for ids in _batches(sorted({d.case_id or 0 for d in due})):
        cases.update((c.id, c) for c in (await session.exec(select(Case).where(col(Case.id).in_(ids)))).all())
        rows = await session.exec(select(CaseCoordinator.case_id, CaseCoordinator.user_id)
                                  .where(col(CaseCoordinator.case_id).in_(ids)).order_by(col(CaseCoordinator.user_id)))
        for coordinated, user_id in rows.all():
            coordinators.setdefault(coordinated, []).append(user_id)
    raised = [(_alert(cases[d.case_id], d, now), d.case_id) for d in due]
    session.add_all(alert for alert, _ in raised)
    await session.flush()  # one INSERT for all, with their ids
    for alert, of_case in raised:
        await _announce(session, cases[of_case], alert, coordinators.get(of_case, []), now)
    return len(raised)


EVALUATION_KINDS = [MeetingKind.MINI_EVALUATION, MeetingKind.MAIN_EVALUATION, MeetingKind.FINAL_EVALUATION]

#: Cases per statement where a scan names them (bind parameters stay well under every driver's limit).
BATCH = 1000


def _batches(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), BATCH):
        yield ids[start:start + BATCH]


def _not_raised(prefix: str, row_id: Any, suffix: str) -> ColumnElement[bool]:
    """No alert has the key ``prefix + row_id + suffix`` yet: the key is unique and indexed, so the
    database leaves out what an earlier scan raised (``raise_alert`` makes the same key)."""
    key = literal(prefix) + cast(row_id, String) + literal(suffix)
    return ~exists().where(col(Alert.key) == key)


OPEN_CASE = col(Case.closed_at).is_(None)


async def _consent_expiring(session: AsyncSession, now: datetime) -> list[Due]:
    query: Columns = Select(col(ConsentRecord.id), col(ConsentRecord.case_id), col(ConsentRecord.sector),
                            col(ConsentRecord.grantor_contact_id), col(ConsentRecord.valid_until))
    rows = await session.exec(
        query.join(Case, col(Case.id) == ConsentRecord.case_id)
        .where(OPEN_CASE, ConsentRecord.status == ConsentStatus.GRANTED, col(ConsentRecord.valid_until) > now,
               col(ConsentRecord.valid_until) <= now + timedelta(days=14),
               _not_raised("consent:", ConsentRecord.id, ":expiring"))
        .order_by(col(ConsentRecord.id)))
    return [Due(case_id, AlertKind.CONSENT_EXPIRING, f"consent:{record_id}:expiring",
                {"consent": record_id, "sector": sector, "grantor": grantor}, until)
            for record_id, case_id, sector, grantor, until in rows.all()]


async def _turning_15(session: AsyncSession, now: datetime) -> list[Due]:
    """The database narrows by birth date with a few days to spare; the rule itself (29 February)
    is ``fifteenth_birthday``'s."""
    today = local_date(now)
    last = today + timedelta(days=30)
    slack = timedelta(days=3)
    rows = await session.exec(
        select(col(Case.id), col(Case.child_birth_date))
        .where(OPEN_CASE, col(Case.aimed_at_child).is_(True), col(Case.party_status_override).is_(None),
               col(Case.child_birth_date) >= birthday_in(today, today.year - PARTY_STATUS_AGE) - slack,
               col(Case.child_birth_date) <= birthday_in(last, last.year - PARTY_STATUS_AGE) + slack,
               _not_raised("case:", Case.id, ":turns15"))
        .order_by(col(Case.id)))
    return [Due(case_id, AlertKind.CHILD_TURNING_15, f"case:{case_id}:turns15",
                {"birthday": birthday.isoformat()}, local_midnight(birthday))
            for case_id, born in rows.all()
            if today <= (birthday := fifteenth_birthday(born)) <= last]


async def _evaluations_overdue(session: AsyncSession, now: datetime) -> list[Due]:
    rows = await session.exec(
        select(col(Meeting.id), col(Meeting.case_id), col(Meeting.kind), col(Meeting.end))
        .join(Case, col(Case.id) == Meeting.case_id)
        .where(OPEN_CASE, col(Meeting.kind).in_(EVALUATION_KINDS), col(Meeting.status).in_(OPEN_STATUSES),
               col(Meeting.end) < now - timedelta(days=2), _not_raised("meeting:", Meeting.id, ":overdue"))
        .order_by(col(Meeting.id)))
    return [Due(case_id, AlertKind.EVALUATION_OVERDUE, f"meeting:{meeting_id}:overdue",
                {"meeting": meeting_id, "kind": kind}, end)
            for meeting_id, case_id, kind, end in rows.all()]


async def _orders_ending(session: AsyncSession, now: datetime) -> list[Due]:
    """An ordered measure's year ends ``add_months(order_date, 12)``; the database narrows by the
    order date with a few days to spare."""
    today = local_date(now)
    last = today + timedelta(days=30)
    slack = timedelta(days=3)
    rows = await session.exec(
        select(col(Case.id), col(Case.order_date))
        .where(OPEN_CASE, Case.measure_type == MeasureType.ORDERED, col(Case.order_date).is_not(None),
               col(Case.order_date) >= add_months(today, -12) - slack,
               col(Case.order_date) <= add_months(last, -12) + slack,
               _not_raised("case:", Case.id, ":order-ends"))
        .order_by(col(Case.id)))
    return [Due(case_id, AlertKind.ORDERED_MEASURE_ENDING, f"case:{case_id}:order-ends",
                {"ends": limit.isoformat()}, local_midnight(limit))
            for case_id, ordered in rows.all()
            if ordered is not None and today <= (limit := add_months(ordered, 12)) <= last]


async def consent_lapsed(session: AsyncSession, case: Case, sector: Sector, key: str, now: datetime, *,
                         cause: str, consent: int | None = None) -> bool:
    """Rule 7: a sector's consent has ended — withdrawn or refused, expired, or ended by the child's
    party status or a change in the contact list or the case. Partners of the sector who hold
    invitations to future meetings are named to the coordinator, to be told in person; the
    partners themselves get nothing more. ``key`` names the cause, so each is alerted once;
    True when this call raised it."""
    rows = await session.exec(
        select(OutboxMessage.recipient_contact_id, OutboxMessage.meeting_id)
        .join(Meeting, col(Meeting.id) == OutboxMessage.meeting_id)
        .join(Contact, col(Contact.id) == OutboxMessage.recipient_contact_id)
        .where(OutboxMessage.case_id == case.id, col(OutboxMessage.kind).in_(TELLS_OF_MEETING),
               OutboxMessage.status == OutboxStatus.SENT, Contact.sector == sector, col(Meeting.start) > now,
               col(Meeting.status).in_(OPEN_STATUSES))
    )
    holders: dict[int, set[int]] = {}
    for contact_id, meeting_id in rows.all():
        if contact_id is not None and meeting_id is not None:
            holders.setdefault(contact_id, set()).add(meeting_id)
    if not holders:
        return False
    detail: dict[str, object] = {"sector": sector, "cause": cause,
                                 "holders": {str(k): sorted(v) for k, v in sorted(holders.items())}}
    if consent is not None:
        detail["consent"] = consent
    return await raise_alert(session, case, AlertKind.CONSENT_WITHDRAWN, key, now, detail=detail) is not None


ALERT_TEXTS = {
    AlertKind.CONSENT_EXPIRING: "Et samtykke utløper innen 14 dager",
    AlertKind.CHILD_TURNING_15: "Barnet fyller 15 år innen 30 dager og må da samtykke selv",
    AlertKind.CONSENT_WITHDRAWN: "Samtykke trukket tilbake: disse har fortsatt invitasjoner og må få beskjed personlig",
    AlertKind.NO_FEASIBLE_SLOT: "Fant ikke noe tidspunkt som passer for et møte",
    AlertKind.EVALUATION_OVERDUE: "En evaluering er ikke markert som holdt",
    AlertKind.ORDERED_MEASURE_ENDING: "Et pålagt tiltak når ettårsgrensen innen 30 dager",
    AlertKind.NOTIFICATION_FAILED: "En melding kunne ikke leveres",
    AlertKind.COUNTER_PROPOSED: "Nytt tidspunkt foreslått fra kalenderen",
    AlertKind.ADDRESS_BOUNCED: "E-postadressen virket ikke, meldingen kom i retur",
    AlertKind.PLAN_ENDED: "Tiltaksplanen er over, men saken er ikke avsluttet: avslutt saken eller revider planen",
    AlertKind.DELETION_DUE: "Saken slettes innen 14 dager; etter det kan den ikke gjenåpnes",
}


#: Alerts about one contact, named in the text (for the coordinator, who may read names).
ABOUT_A_CONTACT = (AlertKind.COUNTER_PROPOSED, AlertKind.ADDRESS_BOUNCED)


#: Why a sector's consent ended (``consent_lapsed``), in the words of its alert.
LAPSE_TEXTS = {
    "withdrawn": "Samtykke trukket tilbake ({sector})",
    "refused": "Samtykke nektet ({sector})",
    "expired": "Samtykke utløpt ({sector})",
    "party_status": "Barnet har fått partsstatus og har ikke samtykket ({sector})",
    "contact_changed": "Samtykket gjelder ikke lenger etter en endring i kontaktlisten, for eksempel en ny med "
                       "daglig omsorg ({sector})",
    "case_changed": "Samtykket gjelder ikke lenger etter en endring i saken, for eksempel barnets partsstatus "
                    "({sector})",
}


def _text(alert: Alert) -> str:
    cause = str(alert.detail.get("cause", ""))
    if alert.kind is AlertKind.CONSENT_WITHDRAWN and cause in LAPSE_TEXTS:
        sector = SECTOR_NAMES[Language.NB].get(Sector(str(alert.detail.get("sector"))), "")
        return LAPSE_TEXTS[cause].format(sector=sector) + ": disse har fortsatt invitasjoner og må få beskjed personlig"
    if alert.kind is AlertKind.ADDRESS_BOUNCED and alert.detail.get("channel") == "sms":
        return "Mobilnummeret virket ikke, SMS-en kom ikke fram"
    return ALERT_TEXTS.get(alert.kind, alert.kind)


def proposed_time(detail: dict[str, object]) -> str:
    """A proposed time (iTIP COUNTER) in Oslo's words: ``11.01.2027 14:00–15:00``."""
    start = wall_time(datetime.fromisoformat(str(detail["start"])))
    end = wall_time(datetime.fromisoformat(str(detail["end"])))
    return f"{start:%d.%m.%Y %H:%M}–{end:%H:%M}"


async def alert_out(session: AsyncSession, alert: Alert) -> AlertOut:
    """Alerts are for the coordinator, who may read names: holders are named in the text."""
    text = _text(alert)
    holders = alert.detail.get("holders")
    if isinstance(holders, dict) and holders:
        names = []
        for contact_id in holders:
            contact = await session.get(Contact, int(contact_id))
            if contact is not None:
                names.append(contact.name)
        text += ": " + ", ".join(sorted(names))
    about = alert.detail.get("contact")
    if alert.kind in ABOUT_A_CONTACT and isinstance(about, int):
        contact = await session.get(Contact, about)
        text += f": {contact.name}" if contact is not None else ""
    if alert.kind is AlertKind.COUNTER_PROPOSED:
        text += f" ({proposed_time(alert.detail)})"
    assert alert.id is not None
    return AlertOut(id=alert.id, case_id=alert.case_id, kind=alert.kind, text=text, detail=alert.detail,
                    due_at=alert.due_at, created_at=alert.created_at, resolved_at=alert.resolved_at)


async def list_alerts(session: AsyncSession, user: User, case_id: int | None, include_resolved: bool
                      ) -> list[AlertOut]:
    visible = visible_cases(user).with_only_columns(col(Case.id))
    query = select(Alert).where(col(Alert.case_id).in_(visible))
    if case_id is not None:
        await case_for(session, user, case_id)
        query = query.where(Alert.case_id == case_id)
    if not include_resolved:
        query = query.where(col(Alert.resolved_at).is_(None))
    rows = await session.exec(query.order_by(col(Alert.created_at).desc(), col(Alert.id).desc()).limit(500))
    return [await alert_out(session, a) for a in rows.all()]


async def resolve(session: AsyncSession, user: User, alert_id: int, now: datetime) -> AlertOut:
    """An alert of a case the user may not see is not found, as the alert itself (rule 11): saying
    "case 5 not found" would tell another unit that its case 5 has alerts."""
    visible = visible_cases(user).with_only_columns(col(Case.id))
    alert = (await session.exec(select(Alert).where(Alert.id == alert_id, col(Alert.case_id).in_(visible)))).first()
    case = await session.get(Case, alert.case_id) if alert is not None and alert.case_id is not None else None
    if alert is None or case is None:
        raise not_found("alert", alert_id)
    if alert.resolved_at is None:
        alert.resolved_at = now
        session.add(alert)
        Change.in_case(session, case, user, now).record(AuditAction.ALERT_RESOLVED, f"alert:{alert.id}", feeds=True)
    return await alert_out(session, alert)
