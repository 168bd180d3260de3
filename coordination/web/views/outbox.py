"""What is sent, stopped or waiting, with the gate's reasons in words."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from calendars.schedule import MeetingKind
from coordination.access.rules import case_for
from coordination.consent import facts as policy_facts
from coordination.consent.disclosure import Reader, level_for
from coordination.consent.facts import contact_facts, load_policy_facts
from coordination.consent.policy import Reason
from coordination.consent.texts import contact_label, describe
from coordination.domain import Language, Role, Sector
from coordination.levels import Level
from coordination.models import Contact, Meeting, User
from coordination.outbox import queue as outbox
from coordination.web import texts as t
from coordination.web.views.common import (
    NB,
    reason_texts,
)
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


def _reasons_from_stored(text: str, names: Mapping[int, str]) -> list[str]:
    """The gate stores rule codes with ids ("withdrawn contact=3 sector=school"); put them in words."""
    out = []
    for part in text.split(";"):
        words = part.split()
        if not words:
            continue
        code, values = words[0], dict(w.split("=", 1) for w in words[1:] if "=" in w)
        try:
            reason = Reason(code, int(values["contact"]) if "contact" in values else None,
                            Sector(values["sector"]) if "sector" in values else None)
            out.append(describe(reason, NB, names))
        except (KeyError, ValueError):
            continue
    return out


async def outbox_rows(session: AsyncSession, user: User, case_id: int, now: datetime, cap: Level,
                      status_filter: str) -> list[OutboxRow]:
    case = await case_for(session, user, case_id)
    listed = await outbox.list_outbox(session, case_id)
    contacts = {c.id: c for c in (await session.exec(select(Contact).where(Contact.case_id == case_id))).all()}
    names = {i: contact_label(c.name, Role(c.role), c.role_label, NB) for i, c in contacts.items() if i}
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
    rows = []
    for r in listed:
        meeting = by_meeting.get(r.meeting_id)
        contact = contacts.get(r.recipient_contact_id)
        recipient = names.get(r.recipient_contact_id or 0) or user_names.get(r.recipient_user_id, "?")
        details: list[str] = []
        level = t.level_name(r.level) if r.level else ""
        if r.status == "sent":
            status, tone = f"Sendt {t.when(r.sent_at)}", "ok"
        elif r.status == "suppressed":
            status, tone = f"Stoppet: {t.SUPPRESSION.get(r.suppressed_code, r.suppressed_code)}", "bad"
            details = _reasons_from_stored(r.suppressed_reason, names)
        elif r.status == "dead":
            status, tone = f"Kunne ikke leveres etter {r.attempts} forsøk", "bad"
        elif r.status == "sending":
            status, tone = "Sendes nå", "neutral"
        else:
            status, tone, details = _pending(r.kind, r.attempts, r.last_error, r.due_at, meeting, contact,
                                             r.meeting_id, facts, cap, now, names)
        if status_filter and _group(r.status, tone) != status_filter:
            continue
        rows.append(OutboxRow(
            id=r.id, kind=t.MESSAGE_KIND.get(r.kind, r.kind), recipient=recipient,
            meeting=f"{meeting_kind_name(MeetingKind(meeting.kind), NB)}, {t.when(meeting.start)}" if meeting else "",
            due=t.when(r.due_at), status=status, tone=tone, details=details, level=level,
        ))
    return rows


def _group(status: str, tone: str) -> str:
    if status == "sent":
        return "sendt"
    if status in ("suppressed", "dead") or tone == "bad":
        return "stoppet"
    return "venter"


def _pending(
    kind: str, attempts: int, last_error: str, due_at: datetime, meeting: Meeting | None, contact: Contact | None,
    meeting_id: int | None, facts: policy_facts.PolicyFacts, cap: Level, now: datetime, names: Mapping[int, str],
) -> tuple[str, str, list[str]]:
    """A queued message as the gate would judge it if it were due now (read-only)."""
    retry = [f"Forrige forsøk mislyktes ({attempts} forsøk)"] if attempts and last_error else []
    if meeting_id is None or contact is None:
        return f"Venter til {t.when(due_at)}", "neutral", retry
    if meeting is None or (kind != "cancellation" and meeting.status != "confirmed"):
        return "Blir ikke sendt: møtet er endret", "bad", retry
    if not contact.active:
        return "Blir ikke sendt: kontakten er ikke lenger aktiv", "bad", retry
    reader = Reader(contact=contact_facts(contact), language=Language(contact.language), cap=cap)
    decision = level_for(reader, facts, meeting, now)
    if not decision.allowed:
        return ("Stoppes ved utsending: samtykket gjelder ikke nå", "bad",
                [*reason_texts(decision.reasons, names), *retry])
    if not contact.email:
        return "Blir ikke sendt: ingen e-postadresse", "bad", retry
    return f"Venter til {t.when(due_at)}", "neutral", [f"Nivå nå: {t.level_name(decision.level)}", *retry]
