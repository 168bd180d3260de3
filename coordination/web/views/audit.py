"""The audit log and the access report (rule 9)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination import audit
from coordination.access.rules import case_for
from coordination.models import Contact, User
from coordination.records.disclosures import Channel, shared_of_case
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
    which consent records — read from the audit log (``records.disclosures``), newest first."""
    case = await case_for(session, user, case_id)
    contacts, staff = await _actornames_of(session, case.unit_id, case_id)
    out = []
    for shared in await shared_of_case(session, case_id, limit=1000):
        if shared.contact_id is not None:
            recipient = contacts.get(shared.contact_id, "?")
        elif shared.user_id is not None:
            recipient = staff.get(shared.user_id, "Koordinator")
        else:
            recipient = "Saksteamet (kalender for saken)"
        if shared.channel in (Channel.EMAIL, Channel.SMS) and shared.message_kind is not None:
            what = t.MESSAGE_KIND.get(shared.message_kind, shared.message_kind) + (
                " på e-post" if shared.channel is Channel.EMAIL else " på SMS")
        elif shared.channel is Channel.FEED:
            what = f"Ny versjon av kalender {shared.feed_id} ({len(shared.meeting_ids)} møter)"
        else:
            what = "Møtet vist på svarsiden"
        records = ", ".join(f"#{r}" for r in shared.consent_record_ids) or "–"
        out.append(ShareRow(t.when(shared.at), recipient, what, t.level_name(shared.level), records))
    return out


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
