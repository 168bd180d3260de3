"""The consent page: each sector's state, the grantors and the history of records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination.access.rules import case_for
from coordination.cases import contacts as contact_service
from coordination.consent import register as consent_register
from coordination.consent.facts import load_policy_facts
from coordination.consent.texts import grantor_label
from coordination.domain import PARTNER_SECTORS, ConsentStatus, Role
from coordination.levels import Level
from coordination.models import User
from coordination.web import texts as t
from coordination.web.views.common import NB, Badge, Choice, badge, names_of, reason_texts


@dataclass(frozen=True, slots=True)
class SectorView:
    sector: str
    name: str
    badge: Badge
    level: str
    grantors: list[str]
    reasons: list[str]


@dataclass(frozen=True, slots=True)
class ConsentRow:
    id: int
    recorded_at: str
    grantor: str
    sector: str
    status: str
    tone: str
    level: str
    valid_from: str
    valid_until: str
    form: str
    recorded_by: str
    note: str


@dataclass(frozen=True, slots=True)
class ConsentPage:
    sectors: list[SectorView]
    history: list[ConsentRow]
    grantors: list[Choice]
    sector_choices: list[Choice]
    level_choices: list[Choice]


async def consent_page(session: AsyncSession, user: User, case_id: int, now: datetime) -> ConsentPage:
    history = await consent_register.list_consents(session, user, case_id)
    case = await case_for(session, user, case_id)
    contacts = await contact_service.list_contacts(session, user, case_id)
    names = names_of(contacts)
    facts = await load_policy_facts(session, case)
    present = {c.sector for c in contacts if c.active}
    sectors = []
    for sector in PARTNER_SECTORS:
        consent = facts.sector(sector, now)
        if sector not in present and not any(r.sector is sector for r in facts.records):
            continue  # nobody from this sector in the case, and no consent ever recorded for it
        grantors = [
            f"{grantor_label(g.contact_id, NB, names)}: {t.GRANTOR_STATE[g.state]}"
            + (f" ({t.level_name(g.level).lower()}" + (f", til {t.day(g.valid_until)}" if g.valid_until else "")
               + ")" if g.level > Level.NONE else "")
            for g in consent.grantors
        ]
        sectors.append(SectorView(sector.value, t.sector_name(sector), badge(consent.state.value),
                                  t.level_name(consent.level), grantors, reason_texts(consent.reasons, names)))
    recorders = {}
    recorder_ids = sorted({r.recorded_by_user_id for r in history})
    if recorder_ids:
        found = await session.exec(select(User.id, User.name).where(col(User.id).in_(recorder_ids)))
        recorders = dict(found.all())
    rows = [
        ConsentRow(
            id=r.id, recorded_at=t.when(r.recorded_at), grantor=names.get(r.grantor_contact_id, "?"),
            sector=t.sector_name(r.sector), status=t.CONSENT_STATUS[r.status],
            tone="ok" if r.status is ConsentStatus.GRANTED else "bad",
            level=t.level_name(r.level) if r.level > Level.NONE else "–",
            valid_from=t.when(r.valid_from), valid_until=t.day(r.valid_until) if r.valid_until else "",
            form=t.CONSENT_FORM[r.form], recorded_by=recorders.get(r.recorded_by_user_id, "?"), note=r.note,
        )
        for r in reversed(history)
    ]
    # An inactive carer or child still consents (DESIGN.md rule 2), so they stay in the list.
    choices = [Choice(str(c.id), names[c.id] + ("" if c.active else " – ikke aktiv")) for c in contacts
               if c.daily_care or c.role is Role.CHILD]
    return ConsentPage(
        sectors=sectors,
        history=rows,
        grantors=choices,
        sector_choices=[Choice(s.value, t.sector_name(s)) for s in PARTNER_SECTORS],
        level_choices=[Choice(level.value, t.level_name(level)) for level in (Level.LOGISTICS, Level.PURPOSE,
                                                                             Level.CONTENT)],
    )
