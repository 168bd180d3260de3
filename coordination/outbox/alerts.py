"""Coordinator alerts: things a person must act on, listed in the API and mailed to the
case's coordinators (at the channel cap, which by default says only "open Samhandling").

One alert per cause: ``key`` is unique, so a repeated scan or a repeated failure does
not pile up duplicates.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from calendars.schedule import MeetingKind, add_months
from calendars.zone import local_date, local_midnight, wall_time
from coordination import audit
from coordination.access.rules import case_for, visible_cases
from coordination.changes import Change
from coordination.consent.policy import fifteenth_birthday
from coordination.consent.texts import SECTOR_NAMES
from coordination.domain import AuditAction, ConsentStatus, Language, MeasureType, Sector
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
    alert = Alert(
        unit_id=case.unit_id,
        case_id=case.id,
        kind=kind,
        key=key,
        detail=detail or {},
        due_at=due_at,
        created_at=now,
    )
    session.add(alert)
    await session.flush()
    coordinators = await session.exec(
        select(CaseCoordinator.user_id).where(CaseCoordinator.case_id == case.id)
    )
    for user_id in coordinators.all():
        await enqueue(session, alert_message(case, alert, user_id, now))
    change = Change.in_case(session, case, audit.SYSTEM, now)
    change.record(AuditAction.ALERT_RAISED, f"alert:{alert.id}", {"kind": kind}, feeds=True)  # deadlines show in feeds
    return alert


async def scan(session: AsyncSession, now: datetime) -> int:
    """The periodic look for deadlines (DESIGN.md "Coordinator alerts"); returns how many were raised.

    Consent expiring within 14 days; the child turning 15 within 30 days (a sector may lose
    effective consent that day); an evaluation not held two days after its time; an ordered
    measure ending within 30 days.
    """
    raised = 0
    cases = (await session.exec(select(Case).where(col(Case.closed_at).is_(None)))).all()
    today = local_date(now)
    for case in cases:
        assert case.id is not None
        records = (await session.exec(select(ConsentRecord).where(
            ConsentRecord.case_id == case.id, ConsentRecord.status == ConsentStatus.GRANTED,
            col(ConsentRecord.valid_until).is_not(None)))).all()
        for record in records:
            until = record.valid_until
            assert until is not None
            if now < until <= now + timedelta(days=14):
                alert = await raise_alert(session, case, AlertKind.CONSENT_EXPIRING, f"consent:{record.id}:expiring",
                                          now,
                                          detail={"consent": record.id, "sector": record.sector,
                                                  "grantor": record.grantor_contact_id}, due_at=until)
                raised += alert is not None
        birthday = fifteenth_birthday(case.child_birth_date)
        if case.aimed_at_child and case.party_status_override is None and today <= birthday <= today + timedelta(30):
            alert = await raise_alert(session, case, AlertKind.CHILD_TURNING_15, f"case:{case.id}:turns15", now,
                                      detail={"birthday": birthday.isoformat()},
                                      due_at=local_midnight(birthday))
            raised += alert is not None
        overdue = (await session.exec(select(Meeting).where(
            Meeting.case_id == case.id, col(Meeting.kind).in_(EVALUATION_KINDS),
            col(Meeting.status).in_(OPEN_STATUSES), col(Meeting.end) < now - timedelta(days=2)))).all()
        for meeting in overdue:
            alert = await raise_alert(session, case, AlertKind.EVALUATION_OVERDUE, f"meeting:{meeting.id}:overdue", now,
                                      detail={"meeting": meeting.id, "kind": meeting.kind}, due_at=meeting.end)
            raised += alert is not None
        if case.measure_type is MeasureType.ORDERED and case.order_date is not None:
            limit = add_months(case.order_date, 12)
            if today <= limit <= today + timedelta(days=30):
                alert = await raise_alert(session, case, AlertKind.ORDERED_MEASURE_ENDING, f"case:{case.id}:order-ends",
                                          now,
                                          detail={"ends": limit.isoformat()}, due_at=local_midnight(limit))
                raised += alert is not None
    return raised


EVALUATION_KINDS = [MeetingKind.MINI_EVALUATION, MeetingKind.MAIN_EVALUATION, MeetingKind.FINAL_EVALUATION]


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
