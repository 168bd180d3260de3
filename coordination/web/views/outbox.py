"""What is sent, stopped or waiting, with the gate's reasons in words."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination.access.rules import case_for
from coordination.consent.facts import PolicyFacts, load_policy_facts
from coordination.consent.gate import Stop, decide_for
from coordination.consent.texts import contact_label
from coordination.levels import Level
from coordination.models import Contact, Meeting, OutboxMessage, User
from coordination.outbox import queue as outbox
from coordination.outbox.enums import OutboxStatus
from coordination.outbox.store import reasons_of
from coordination.web import texts as t
from coordination.web.views.common import NB, reason_texts
from notifications.messages import meeting_kind_name


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    kind: str
    recipient: str
    meeting: str
    due: str
    status: str
    tone: str
    details: list[str]
    level: str


async def outbox_rows(session: AsyncSession, user: User, case_id: int, now: datetime, cap: Level,
                      status_filter: str) -> list[OutboxRow]:
    case = await case_for(session, user, case_id)
    listed = await outbox.list_outbox(session, case_id)
    contacts = {c.id: c for c in (await session.exec(select(Contact).where(Contact.case_id == case_id))).all()}
    names = {i: contact_label(c.name, c.role, c.role_label, NB) for i, c in contacts.items() if i}
    meeting_ids = sorted({r.meeting_id for r in listed if r.meeting_id is not None})
    by_meeting = {}
    if meeting_ids:
        found = await session.exec(select(Meeting).where(col(Meeting.id).in_(meeting_ids)))
        by_meeting = {m.id: m for m in found.all()}
    user_ids = sorted({r.recipient_user_id for r in listed if r.recipient_user_id is not None})
    user_names: dict[int | None, str] = {}
    if user_ids:
        found_users = await session.exec(select(User.id, User.name).where(col(User.id).in_(user_ids)))
        user_names = dict(found_users.all())
    facts = await load_policy_facts(session, case)
    # The rows themselves, for the typed reasons of a stopped one and the gate's preview of a waiting one.
    judged = [r.id for r in listed if r.status in (OutboxStatus.SUPPRESSED, OutboxStatus.PENDING)]
    stored = {}
    if judged:
        found_rows = await session.exec(select(OutboxMessage).where(col(OutboxMessage.id).in_(judged)))
        stored = {m.id: m for m in found_rows.all()}
    rows = []
    for r in listed:
        meeting = by_meeting.get(r.meeting_id)
        recipient = names.get(r.recipient_contact_id or 0) or user_names.get(r.recipient_user_id, "?")
        details: list[str] = []
        level = t.level_name(r.level) if r.level else ""
        if r.status is OutboxStatus.SENT:
            status, tone = f"Sendt {t.when(r.sent_at)}", "ok"
        elif r.status is OutboxStatus.SUPPRESSED:
            status, tone = f"Stoppet: {t.SUPPRESSION.get(r.suppressed_code, r.suppressed_code)}", "bad"
            details = reason_texts(reasons_of(stored[r.id]), names)
        elif r.status is OutboxStatus.DEAD:
            status, tone = f"Kunne ikke leveres etter {r.attempts} forsøk", "bad"
        elif r.status is OutboxStatus.SENDING:
            status, tone = "Sendes nå", "neutral"
        else:
            status, tone, details = await _pending(session, stored[r.id], facts, cap, now, names)
        if status_filter and _group(r.status, tone) != status_filter:
            continue
        rows.append(OutboxRow(
            id=r.id, kind=t.MESSAGE_KIND.get(r.kind, r.kind) + t.CHANNEL_MARK[r.channel], recipient=recipient,
            meeting=f"{meeting_kind_name(meeting.kind, NB)}, {t.when(meeting.start)}" if meeting else "",
            due=t.when(r.due_at), status=status, tone=tone, details=details, level=level,
        ))
    return rows


def _group(status: OutboxStatus, tone: str) -> str:
    if status is OutboxStatus.SENT:
        return "sendt"
    if status in (OutboxStatus.SUPPRESSED, OutboxStatus.DEAD) or tone == "bad":
        return "stoppet"
    return "venter"


#: What the page says of a waiting row the gate will stop, by the gate's own reason.
_WILL_STOP = {
    Stop.GONE: "Blir ikke sendt: møtet er endret",
    Stop.SUPERSEDED: "Blir ikke sendt: møtet er endret",
    Stop.NOT_CONFIRMED: "Blir ikke sendt: møtet er endret",
    Stop.NOT_INVITED: "Blir ikke sendt: møtet er endret",
    Stop.INACTIVE: "Blir ikke sendt: kontakten er ikke lenger aktiv",
    Stop.NO_CONSENT: "Stoppes ved utsending: samtykket gjelder ikke nå",
    Stop.NO_ADDRESS: "Blir ikke sendt: ingen e-postadresse",
}


async def _pending(session: AsyncSession, row: OutboxMessage, facts: PolicyFacts, cap: Level, now: datetime,
                   names: Mapping[int, str]) -> tuple[str, str, list[str]]:
    """A queued message as the gate would decide it if it were due now: the gate's own
    ``decide_for``, which records nothing."""
    retry = [f"Forrige forsøk mislyktes ({row.attempts} forsøk)"] if row.attempts and row.last_error else []
    waiting = f"Venter til {t.when(row.due_at)}"
    if row.meeting_id is None or row.recipient_contact_id is None:
        return waiting, "neutral", retry  # an alert to a coordinator: decided when it is due
    verdict = await decide_for(session, row, now, cap, facts=facts)
    if verdict.stop is None and verdict.asked is not None:
        return waiting, "neutral", [f"Nivå nå: {t.level_name(verdict.asked.decision.level)}", *retry]
    assert verdict.stop is not None
    reasons = verdict.asked.decision.reasons if verdict.stop is Stop.NO_CONSENT and verdict.asked else ()
    return _WILL_STOP[verdict.stop], "bad", [*reason_texts(reasons, names), *retry]
