"""The plan page: the choices the form offers, and the preview of what saving will do —
the meetings kept, moved, added and cancelled, and the messages queued, each with the
consent gate's verdict (``consent.gate.decide_for``, as the dispatcher's gate decides)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from calendars.schedule import MeetingKind, Reason
from coordination.access.rules import case_for
from coordination.consent.facts import PolicyFacts, load_policy_facts
from coordination.consent.gate import Stop, decide_for
from coordination.levels import Level
from coordination.models import Contact, User
from coordination.scheduling.plan_effects import MeetingChange, MeetingEffect, PlanEffects, QueuedMessage
from coordination.schemas import ContactOut
from coordination.web import texts as t
from coordination.web.views.common import NB, Choice, names_of, reason_texts
from notifications.messages import meeting_kind_name
from notifications.ports import MessageKind


def contact_choices(contacts: list[ContactOut]) -> list[Choice]:
    """The active contacts, as the form's participants and a measure's people."""
    names = names_of(contacts)
    return [Choice(str(c.id), names[c.id]) for c in contacts if c.active]


@dataclass(frozen=True, slots=True)
class MeetingLine:
    kind: str
    when: str
    was: str
    href: str
    note: str


@dataclass(frozen=True, slots=True)
class MessageLine:
    kind: str
    recipient: str
    about: str
    href: str
    due: str
    verdict: str
    tone: str
    details: list[str]


@dataclass(frozen=True, slots=True)
class PlanPreview:
    revision: int
    kept: list[MeetingLine]
    moved: list[MeetingLine]
    added: list[MeetingLine]
    cancelled: list[MeetingLine]
    messages: list[MessageLine]
    stopped: int
    withdrawn: int
    unschedulable: list[str]
    promise: str


#: The plan's meetings that could not be placed, and why, in words.
_NO_TIME: dict[Reason, str] = {
    Reason.NO_SLOT: "ingen tid passer for alle",
    Reason.WINDOW_PASSED: "tiden det skulle holdes i, har allerede vært",
    Reason.DEPENDS_ON: "møtet det hører til, fikk ingen tid",
    Reason.NO_PARTICIPANTS: "ingen i planen skal være med på dette møtet",
}
#: What the page says of a message the gate would not send.
_WILL_STOP: dict[Stop, str] = {
    Stop.NO_CONSENT: "Stoppes ved utsending: samtykket gjelder ikke",
    Stop.NO_ADDRESS: "Blir ikke sendt: ingen e-postadresse",
    Stop.INACTIVE: "Blir ikke sendt: kontakten er ikke lenger aktiv",
    Stop.GONE: "Blir ikke sendt: møtet er endret",
    Stop.SUPERSEDED: "Blir ikke sendt: møtet er endret",
    Stop.NOT_CONFIRMED: "Blir ikke sendt: møtet er endret",
    Stop.NOT_INVITED: "Blir ikke sendt: møtet er endret",
}


async def preview(session: AsyncSession, user: User, case_id: int, effects: PlanEffects, now: datetime,
                  cap: Level) -> PlanPreview:
    """What ``effects`` did, in words, read in the unit of work that did it (before it is
    rolled back, for a preview): the new meeting times and the gate's verdicts need it."""
    case = await case_for(session, user, case_id)
    contacts = (await session.exec(select(Contact).where(Contact.case_id == case_id))).all()
    names = names_of(list(contacts))
    user_ids = sorted({m.row.recipient_user_id for m in effects.messages if m.row.recipient_user_id is not None})
    users = dict((await session.exec(select(User.id, User.name).where(col(User.id).in_(user_ids)))).all()) \
        if user_ids else {}
    by_id = {m.meeting_id: m for m in effects.meetings}
    facts = await load_policy_facts(session, case)
    messages = []
    for queued in sorted(effects.messages, key=_message_order):
        messages.append(await _message_line(session, queued, by_id, names, users, now, cap, facts, case_id))
    groups: dict[MeetingEffect, list[MeetingLine]] = {effect: [] for effect in MeetingEffect}
    for change in effects.meetings:
        if change.effect is MeetingEffect.KEPT and change.start <= now:
            continue  # the past is not the plan's to change
        groups[change.effect].append(_meeting_line(change, case_id))
    unschedulable = [f"{meeting_kind_name(u.kind, NB)} ({t.day(u.window_start)} – {t.day(u.window_end)}): "
                     f"{_NO_TIME.get(u.reason, u.reason)}" for u in effects.plan.unschedulable]
    return PlanPreview(
        revision=effects.plan.revision, kept=groups[MeetingEffect.KEPT], moved=groups[MeetingEffect.MOVED],
        added=groups[MeetingEffect.ADDED], cancelled=groups[MeetingEffect.CANCELLED], messages=messages,
        stopped=sum(1 for m in messages if m.tone == "bad"), withdrawn=len(effects.withdrawn),
        unschedulable=unschedulable, promise=effects.promise(),
    )


def _message_order(queued: QueuedMessage) -> tuple[str, str, int, int]:
    row = queued.row
    return (queued.about, row.due_at.isoformat(), row.recipient_contact_id or 0, row.recipient_user_id or 0)


def _meeting_line(change: MeetingChange, case_id: int) -> MeetingLine:
    added = change.effect is MeetingEffect.ADDED
    was = t.span(change.was_start, change.was_end) if change.was_start and change.was_end else ""
    note = ""
    if added and change.kind is not MeetingKind.AD_HOC:
        note = "Foreslås: invitasjonene går ut når du bekrefter møtet."
    elif change.effect is MeetingEffect.KEPT and change.pinned:
        note = "Låst: bekreftet eller flyttet for hånd."
    return MeetingLine(kind=meeting_kind_name(change.kind, NB), when=t.span(change.start, change.end), was=was,
                       href="" if added else f"/saker/{case_id}/moter/{change.meeting_id}",
                       note=f"{t.MEETING_STATUS[change.status]}. {note}".strip())


async def _message_line(session: AsyncSession, queued: QueuedMessage, meetings: Mapping[int, MeetingChange],
                        names: Mapping[int, str], users: Mapping[int | None, str], now: datetime, cap: Level,
                        facts: PolicyFacts, case_id: int) -> MessageLine:
    row = queued.row
    meeting = meetings.get(row.meeting_id or 0)
    recipient = names.get(row.recipient_contact_id or 0) or users.get(row.recipient_user_id, "?")
    due = "Nå" if row.due_at <= now else t.when(row.due_at)
    about, href = "", ""
    if meeting is not None:
        about = f"{meeting_kind_name(meeting.kind, NB)}, {t.when(meeting.start)}"
        href = "" if meeting.effect is MeetingEffect.ADDED else f"/saker/{case_id}/moter/{meeting.meeting_id}"
    elif row.kind is MessageKind.ALERT:
        about = "Et møte i planen fikk ingen tid"
    if row.meeting_id is None or row.recipient_contact_id is None:
        return MessageLine(t.MESSAGE_KIND[row.kind], recipient, about, href, due, "Sendes", "ok", [])
    # As the gate will decide when the message is due: the same function, recording nothing.
    verdict = await decide_for(session, row, max(now, row.due_at), cap, facts=facts)
    if verdict.stop is None:
        level = t.level_name(verdict.asked.decision.level) if verdict.asked else ""
        return MessageLine(t.MESSAGE_KIND[row.kind], recipient, about, href, due, "Sendes", "ok",
                           [f"Nivå: {level}"] if level else [])
    reasons = verdict.asked.decision.reasons if verdict.stop is Stop.NO_CONSENT and verdict.asked else ()
    return MessageLine(t.MESSAGE_KIND[row.kind], recipient, about, href, due, _WILL_STOP[verdict.stop], "bad",
                       reason_texts(reasons, names))
