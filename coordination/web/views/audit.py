"""The audit log and the access report (rule 9)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination import audit
from coordination.access.rules import case_for
from coordination.domain import AuditAction
from coordination.levels import Level
from coordination.models import AuditEntry, Contact, User
from coordination.web import texts as t
from coordination.web.views.common import names_of


@dataclass(frozen=True, slots=True)
class ShareRow:
    at: str
    recipient: str
    what: str
    level: str
    consent_records: str


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    at: str
    actor: str
    action: str
    subject: str
    detail: str


SHARED = (AuditAction.NOTIFICATION_SENT, AuditAction.FEED_SERVED, AuditAction.DISCLOSURE_ALLOWED)


async def _actornames_of(session: AsyncSession, unit_id: int, case_id: int) -> tuple[dict[int, str], dict[int, str]]:
    contacts = (await session.exec(select(Contact).where(Contact.case_id == case_id))).all()
    found = await session.exec(select(User.id, User.name).where(User.unit_id == unit_id))
    return names_of(contacts), {i: n for i, n in found.all() if i is not None}


def _actor(actor: str, contacts: Mapping[int, str], staff: Mapping[int, str]) -> str:
    kind, _, ident = actor.partition(":")
    if kind == "user" and ident.isdigit():
        return staff.get(int(ident), f"Bruker {ident}")
    if kind == "contact" and ident.isdigit():
        return contacts.get(int(ident), f"Kontakt {ident}")
    if kind == "feed":
        return f"Kalenderabonnement {ident}"
    if kind == "answer-link":
        return "Svarlenke i invitasjon"
    return "Systemet" if actor == audit.SYSTEM else actor


async def access_report(session: AsyncSession, user: User, case_id: int) -> list[ShareRow]:
    """Rule 9, for an access request: what was shared with whom, when, at which level and on
    which consent records — read from the audit log, newest first."""
    case = await case_for(session, user, case_id)
    contacts, staff = await _actornames_of(session, case.unit_id, case_id)
    rows = (await session.exec(
        select(AuditEntry).where(AuditEntry.case_id == case_id, col(AuditEntry.action).in_(SHARED))
        .order_by(col(AuditEntry.id).desc()).limit(1000)
    )).all()
    consent_of_outbox: dict[str, list[int]] = {}
    for entry in rows:
        if entry.action is AuditAction.DISCLOSURE_ALLOWED:
            # Newest first: a row retried or held until morning was decided more than once, and
            # the send rests on the last decision before it.
            consent_of_outbox.setdefault(str(entry.detail.get("outbox")),
                                         _ints(entry.detail.get("consent_records")))
    out = []
    for entry in rows:
        detail = entry.detail
        contact_id = detail.get("contact")
        if entry.action is AuditAction.NOTIFICATION_SENT:
            recipient = contacts.get(int(str(contact_id)), "?") if contact_id else staff.get(
                int(str(detail.get("user") or 0)), "Koordinator")
            what = t.MESSAGE_KIND.get(str(detail.get("kind")), str(detail.get("kind"))) + " på e-post"
            records = consent_of_outbox.get(entry.subject.removeprefix("outbox:"), [])
        elif entry.action is AuditAction.FEED_SERVED:
            if contact_id:
                recipient = contacts.get(int(str(contact_id)), "?")
            elif detail.get("user"):
                recipient = staff.get(int(str(detail.get("user"))), "Koordinator")
            else:
                recipient = "Saksteamet (kalender for saken)"
            count = len(_ints(detail.get("meeting_ids")))
            what = f"Ny versjon av kalender {detail.get('feed')} ({count} møter)"
            records = _ints(detail.get("consent_record_ids"))
        else:
            continue
        level = str(detail.get("level") or "none")
        words = t.level_name(level) if level in {v.value for v in Level} else level
        out.append(ShareRow(t.when(entry.at), recipient, what, words, ", ".join(f"#{r}" for r in records) or "–"))
    return out


def _ints(value: object) -> list[int]:
    """Ids from an audit entry's JSON detail."""
    return [v for v in value if isinstance(v, int)] if isinstance(value, list) else []


async def audit_rows(session: AsyncSession, user: User, case_id: int, before_id: int | None, limit: int
                     ) -> list[AuditRow]:
    case = await case_for(session, user, case_id)
    contacts, staff = await _actornames_of(session, case.unit_id, case_id)
    entries = await audit.entries_for_case(session, case_id, limit, before_id)
    return [
        AuditRow(e.id or 0, t.when(e.at), _actor(e.actor, contacts, staff), t.audit_action(e.action),
                 e.subject, ", ".join(f"{k}: {v}" for k, v in sorted(e.detail.items())))
        for e in entries
    ]
