"""What each page shows, built from the same service functions the API uses.

Every builder first goes through the API's own access rule (``case_service.get_case`` /
``access.case_for`` and friends), so a page never shows what the API would refuse. The
rest is read-only arrangement for the templates: words, badges and links. The only
decision taken here is a preview — what the consent gate would say *now* about a queued
message — and it is asked of ``disclosure.level_for``, the gate's own function.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from urllib.parse import quote

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from calendars.schedule import MeetingKind
from calendars.slots import Rule, SlotRequest, find_slot
from calendars.workdays import CalendarInputError
from coordination import audit
from coordination.access.rules import case_for, visible_cases
from coordination.cases import contacts as contact_service
from coordination.cases import service as case_service
from coordination.consent import facts as policy_facts
from coordination.consent import loops as consent_loops
from coordination.consent import register as consent_register
from coordination.consent.disclosure import Reader, level_for
from coordination.consent.facts import contact_facts, load_policy_facts
from coordination.consent.policy import CaseFacts, ConsentFact, ContactFacts, Reason, effective_consent
from coordination.consent.texts import contact_label, describe, grantor_label
from coordination.domain import PARTNER_SECTORS, Language, Role, Sector
from coordination.errors import InputError
from coordination.levels import Level
from coordination.models import Alert, AuditEntry, Case, ConsentRecord, Contact, Meeting, Unit, User
from coordination.outbox import alerts
from coordination.outbox import queue as outbox
from coordination.scheduling import meetings, slot_search
from coordination.scheduling.slot_texts import explain
from coordination.schemas import AlertOut, CaseOut, ContactOut, FeedCreated, FeedOut, MeetingOut
from coordination.web import texts as t
from notifications.messages import meeting_kind_name

NB = Language.NB
#: A contact's own feed shows at most the purpose of a meeting (``coordination.feeds``).
FEED_CAP = Level.PURPOSE
OPEN = ("proposed", "confirmed")


@dataclass(frozen=True, slots=True)
class Badge:
    """A state in words and a tone for the colour; the words alone carry the meaning."""

    text: str
    tone: str


_TONE = {
    "granted": "ok", "partial": "warn", "missing": "bad", "withdrawn": "bad", "expired": "warn",
    "not_needed": "neutral",
}


def badge(state: str) -> Badge:
    return Badge(t.SECTOR_STATE.get(state, state), _TONE.get(state, "neutral"))


def _reason_texts(reasons: Sequence[Reason], names: Mapping[int, str]) -> list[str]:
    return [describe(r, NB, names) for r in reasons]


def _names(contacts: Sequence[Contact] | Sequence[ContactOut]) -> dict[int, str]:
    return {c.id: contact_label(c.name, Role(c.role), c.role_label, NB) for c in contacts if c.id is not None}


# --- my cases --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CaseRow:
    id: int
    reference: str
    initials: str
    next_meeting: str
    open_alerts: int
    sectors: list[Badge | None]


def sector_headings() -> list[str]:
    return [t.sector_name(s) for s in PARTNER_SECTORS]


async def my_cases(session: AsyncSession, user: User, now: datetime) -> list[CaseRow]:
    """One row per case the user may open, in a fixed number of queries however many cases."""
    listed = await case_service.list_cases(session, user, now)
    if not listed:
        return []
    ids = visible_cases(user).with_only_columns(col(Case.id))
    contacts: dict[int, list[ContactFacts]] = {}
    for contact in (await session.exec(select(Contact).where(col(Contact.case_id).in_(ids)))).all():
        contacts.setdefault(contact.case_id, []).append(contact_facts(contact))
    records: dict[int, list[ConsentFact]] = {}
    for record in (await session.exec(select(ConsentRecord).where(col(ConsentRecord.case_id).in_(ids)))).all():
        records.setdefault(record.case_id, []).append(policy_facts.consent_fact(record))
    upcoming = await session.exec(
        select(Meeting.case_id, func.min(Meeting.start))
        .where(col(Meeting.case_id).in_(ids), col(Meeting.status).in_(OPEN), col(Meeting.start) > now)
        .group_by(col(Meeting.case_id))
    )
    next_start: dict[int, datetime] = {case_id: start for case_id, start in upcoming.all()}
    open_alerts = await session.exec(
        select(Alert.case_id, func.count())
        .where(col(Alert.case_id).in_(ids), col(Alert.resolved_at).is_(None))
        .group_by(col(Alert.case_id))
    )
    alert_count: dict[int, int] = {case_id: count for case_id, count in open_alerts.all() if case_id is not None}
    rows = []
    for case in listed:
        facts = CaseFacts(case.child_birth_date, case.aimed_at_child, case.party_status_override)
        people = contacts.get(case.id, [])
        given = records.get(case.id, [])
        sectors: list[Badge | None] = []
        for sector in PARTNER_SECTORS:
            if not any(c.sector is sector and c.active for c in people):
                sectors.append(None)
                continue
            sectors.append(badge(effective_consent(facts, people, given, sector, now).state.value))
        start = next_start.get(case.id)
        rows.append(CaseRow(case.id, case.reference, case.child_initials, t.when(start) if start else "",
                            alert_count.get(case.id, 0), sectors))
    return rows


# --- one case: the heading every case page shares --------------------------------------


@dataclass(frozen=True, slots=True)
class CaseHead:
    id: int
    reference: str
    initials: str
    age: int
    party_status: bool
    measure: str
    coordinators: str


async def case_head(session: AsyncSession, user: User, case_id: int, now: datetime) -> CaseHead:
    """The case as the API shows it (404 if this user may not open it)."""
    case: CaseOut = await case_service.get_case(session, user, case_id, now)
    names = []
    if case.coordinator_ids:
        found = await session.exec(select(User.name).where(col(User.id).in_(case.coordinator_ids),
                                                           User.unit_id == user.unit_id))
        names = sorted(found.all())
    measure = "Pålagt tiltak" if case.measure_type == "ordered" else "Frivillig hjelpetiltak"
    return CaseHead(case.id, case.reference, case.child_initials, case.child_age, case.party_status, measure,
                    ", ".join(names))


# --- overview: contacts and the information loops --------------------------------------


@dataclass(frozen=True, slots=True)
class ContactRow:
    id: int
    name: str
    role: str
    sector: str
    organisation: str
    email: str
    phone: str
    consent: Badge | None
    availability: str
    interpreter: str
    daily_care: bool
    active: bool


@dataclass(frozen=True, slots=True)
class LoopRow:
    contact_id: int
    name: str
    role: str
    sector: str
    level: str
    invitations: str
    reminders: str
    feed: str
    reasons: list[str]
    tone: str


@dataclass(frozen=True, slots=True)
class Overview:
    contacts: list[ContactRow]
    loops: list[LoopRow]
    alerts: list[AlertRow]


def _mail_level(level: Level, contact: ContactOut, cap: Level) -> str:
    if level <= Level.NONE:
        return "Ingenting"
    if not contact.email:
        return "Ingenting (ingen e-postadresse)"
    return t.level_name(min(level, cap))


async def overview(session: AsyncSession, user: User, case_id: int, now: datetime, cap: Level) -> Overview:
    contacts = await contact_service.list_contacts(session, user, case_id)
    loops = await consent_loops.information_loops(session, user, case_id, now, None, NB)
    by_id = {c.id: c for c in contacts}
    state_of = {loop.sector: loop.now.sector_state for loop in loops.contacts}
    rows = [
        ContactRow(
            id=c.id, name=c.name, role=t.role_name(c.role, c.role_label), sector=t.sector_name(c.sector),
            organisation=c.organisation, email=c.email, phone=c.phone,
            consent=badge(state_of[c.sector]) if c.sector.needs_consent and c.sector in state_of else None,
            availability=t.availability(c.availability),
            interpreter=f"Ja, {c.interpreter_language}" if c.needs_interpreter else "",
            daily_care=c.daily_care, active=c.active,
        )
        for c in contacts
    ]
    loop_rows = []
    for loop in loops.contacts:
        contact = by_id[loop.contact_id]
        level = loop.now.level
        reasons = list(loop.now.reasons)
        if level > Level.NONE and min(level, cap) < level and contact.email:
            reasons.append(f"e-post viser høyst «{t.LEVEL_NAMES_NB[cap]}» (innstillingen for e-post)")
        if level > FEED_CAP:
            reasons.append(f"en egen kalender viser høyst «{t.LEVEL_NAMES_NB[FEED_CAP]}»")
        if loop.role is Role.PARENT:
            reasons.append("barnesamtaler: foreldrene får ikke vite om dem, med mindre du bestemmer det for "
                           "det enkelte møtet")
        loop_rows.append(LoopRow(
            contact_id=loop.contact_id, name=loop.name, role=t.role_name(contact.role, contact.role_label),
            sector=t.sector_name(loop.sector), level=t.level_name(level),
            invitations=_mail_level(level, contact, cap), reminders=_mail_level(level, contact, cap),
            feed="Ingenting" if level <= Level.NONE else t.level_name(min(level, FEED_CAP)),
            reasons=reasons, tone="bad" if level <= Level.NONE else ("ok" if loop.needs_consent else "neutral"),
        ))
    return Overview(rows, loop_rows, await alert_rows(session, user, case_id, False))


# --- consent ---------------------------------------------------------------------------


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
class Choice:
    value: str
    text: str


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
    names = _names(contacts)
    facts = await load_policy_facts(session, case)
    present = {c.sector for c in contacts if c.active}
    sectors = []
    for sector in PARTNER_SECTORS:
        consent = facts.sector(sector, now)
        if sector not in present and not any(r.sector is sector for r in facts.records):
            continue  # nobody from this sector in the case, and no consent ever recorded for it
        grantors = [
            f"{grantor_label(g.contact_id, NB, names)}: {t.GRANTOR_STATE[g.state.value]}"
            + (f" ({t.level_name(g.level).lower()}" + (f", til {t.day(g.valid_until)}" if g.valid_until else "")
               + ")" if g.level > Level.NONE else "")
            for g in consent.grantors
        ]
        sectors.append(SectorView(sector.value, t.sector_name(sector), badge(consent.state.value),
                                  t.level_name(consent.level), grantors, _reason_texts(consent.reasons, names)))
    recorders = {}
    recorder_ids = sorted({r.recorded_by_user_id for r in history})
    if recorder_ids:
        found = await session.exec(select(User.id, User.name).where(col(User.id).in_(recorder_ids)))
        recorders = dict(found.all())
    rows = [
        ConsentRow(
            id=r.id, recorded_at=t.when(r.recorded_at), grantor=names.get(r.grantor_contact_id, "?"),
            sector=t.sector_name(r.sector), status=t.CONSENT_STATUS[r.status.value],
            tone="ok" if r.status.value == "granted" else "bad",
            level=t.level_name(r.level) if r.level > Level.NONE else "–",
            valid_from=t.when(r.valid_from), valid_until=t.day(r.valid_until) if r.valid_until else "",
            form=t.CONSENT_FORM[r.form.value], recorded_by=recorders.get(r.recorded_by_user_id, "?"), note=r.note,
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


# --- meetings --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    contact_id: int
    name: str
    answer: str
    tone: str


_ANSWER_TONE = {"accepted": "ok", "declined": "bad", "tentative": "warn", "needs_action": "neutral"}
_STATUS_TONE = {"proposed": "warn", "confirmed": "ok", "cancelled": "bad", "held": "neutral"}


@dataclass(frozen=True, slots=True)
class MeetingView:
    id: int
    kind: str
    status: str
    status_text: str
    tone: str
    when: str
    date_value: str
    time_value: str
    place: str
    agenda: str
    answers: list[Answer]
    answered: str
    past: bool
    can_confirm: bool
    can_cancel: bool
    can_move: bool
    can_mark_held: bool


@dataclass(frozen=True, slots=True)
class MonthGroup:
    heading: str
    meetings: list[MeetingView]


def meeting_view(meeting: MeetingOut, now: datetime, names: Mapping[int, str]) -> MeetingView:
    local = t.local(meeting.start)
    answers = [Answer(p.contact_id, names.get(p.contact_id, p.name), t.ANSWER.get(p.answer, p.answer),
                      _ANSWER_TONE.get(p.answer, "neutral")) for p in meeting.participants]
    accepted = sum(1 for p in meeting.participants if p.answer == "accepted")
    is_open = meeting.status in OPEN
    return MeetingView(
        id=meeting.id,
        kind=meeting_kind_name(MeetingKind(meeting.kind), NB),
        status=meeting.status,
        status_text=t.MEETING_STATUS.get(meeting.status, meeting.status),
        tone=_STATUS_TONE.get(meeting.status, "neutral"),
        when=t.span(meeting.start, meeting.end),
        date_value=local.date().isoformat(),
        time_value=f"{local:%H:%M}",
        place=", ".join(p for p in (meeting.place, meeting.video_link) if p),
        agenda=meeting.agenda,
        answers=answers,
        answered=f"{accepted} av {len(answers)} kommer",
        past=meeting.start <= now,
        can_confirm=meeting.status == "proposed" and meeting.start > now,
        can_cancel=is_open,
        can_move=is_open,
        can_mark_held=is_open and meeting.start <= now,
    )


async def timeline(session: AsyncSession, user: User, case_id: int, now: datetime) -> list[MonthGroup]:
    listed = await meetings.list_meetings(session, user, case_id)
    names = _names(await contact_service.list_contacts(session, user, case_id))
    groups: list[MonthGroup] = []
    for meeting in listed:
        heading = t.month_heading(meeting.start)
        if not groups or groups[-1].heading != heading:
            groups.append(MonthGroup(heading, []))
        groups[-1].meetings.append(meeting_view(meeting, now, names))
    return groups


async def one_meeting(session: AsyncSession, user: User, case_id: int, meeting_id: int, now: datetime
                      ) -> MeetingView:
    listed = await meetings.list_meetings(session, user, case_id)
    names = _names(await contact_service.list_contacts(session, user, case_id))
    for meeting in listed:
        if meeting.id == meeting_id:
            return meeting_view(meeting, now, names)
    from coordination.errors import not_found

    raise not_found("meeting", meeting_id)


@dataclass(frozen=True, slots=True)
class Alternative:
    date_value: str
    time_value: str
    text: str


@dataclass(frozen=True, slots=True)
class SlotAdvice:
    """The slot finder's answer for a meeting: does a time fit, and if not, why and what does."""

    asked: str
    fits: bool
    found: Alternative | None
    absent: list[str]
    lines: list[str]
    alternatives: list[Alternative] = field(default_factory=list)


def oslo_instant(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=t.OSLO)


def _alternative(start: datetime, text: str) -> Alternative:
    local = t.local(start)
    return Alternative(local.date().isoformat(), f"{local:%H:%M}", text)


async def plan_period(session: AsyncSession, case_id: int) -> tuple[date, date] | None:
    """The plan's first and last day: meetings must lie inside them."""
    plan = await meetings.plan_of(session, case_id)
    return (plan.start_date, plan.expected_end) if plan else None


async def slot_advice(
    session: AsyncSession, user: User, case_id: int, meeting_id: int, window_start: datetime,
    window_end: datetime, now: datetime, asked: str, *, exact: bool = False,
) -> SlotAdvice:
    """Ask the slot finder about a window for this meeting's participants, with the meeting's
    own time left out of their busy times (a meeting never blocks its own move). ``exact``
    asks about one start time only; the window then is not a rule worth naming."""
    case = await case_for(session, user, case_id)
    meeting = await meetings.meeting_of_case(session, case_id, meeting_id)
    people = [c for _, c in (await meetings.participants_of(session, [meeting_id])).get(meeting_id, [])
              if c.active]
    plan = await meetings.plan_of(session, case_id)
    if plan is not None:
        first = oslo_instant(plan.start_date, time(0))
        last = oslo_instant(plan.expected_end + timedelta(days=1), time(0))
        field_name = "dato" if exact else "fra"
        if window_start >= last or (window_end if not exact else window_start) < first:
            raise t.FormError(field_name, f"Møtet må ligge innenfor tiltaksplanen: {t.day(plan.start_date)} – "
                                          f"{t.day(plan.expected_end)}.")
        window_start, window_end = max(window_start, first), min(window_end, last)
    unit = await session.get(Unit, case.unit_id)
    assert unit is not None
    duration = meeting.end - meeting.start
    window_end = max(window_end, window_start + duration)
    busy = await slot_search.busy_of(session, people, window_start - duration, window_end + duration,
                                  exclude_meeting_ids=[meeting_id])
    child_in = any(c.role == Role.CHILD for c in people)
    request = SlotRequest(
        window_start=window_start,
        window_end=window_end,
        duration=duration,
        participants=tuple(meetings.participant_for(c, busy.get(c.id or 0, [])) for c in people),
        child_wishes=meetings.child_wishes_of(plan) if child_in else None,
        closures=meetings.closures_of(unit, plan),
        office_hours=meetings.office_hours_of(plan),
    )
    try:
        result = find_slot(request, now=now)
    except CalendarInputError as error:
        raise InputError(error.field, error.detail) from error
    labels = {str(c.id): contact_label(c.name, Role(c.role), c.role_label, NB) for c in people}
    absent = [labels.get(a, a) for a in result.absent]
    if result.slot is not None:
        found = _alternative(result.slot.start, t.span(result.slot.start, result.slot.end))
        return SlotAdvice(asked, not absent, found, absent, [])
    assert result.explanation is not None
    explanation = result.explanation
    if exact:
        # One start time asked about: "outside the window" and "excludes 1 of 1" say nothing.
        explanation = replace(
            explanation,
            blockers=tuple(b for b in explanation.blockers if b.constraint.rule is not Rule.WINDOW),
            alternatives=tuple(
                replace(a, gives_up=tuple(c for c in a.gives_up if c.rule is not Rule.WINDOW))
                for a in explanation.alternatives
            ),
        )
    lines = explain(replace(explanation, alternatives=()), labels)
    if exact:
        lines = [line.split(" – utelukker ")[0] for line in lines]
    alternatives = [
        _alternative(a.start, explain(replace(explanation, blockers=(), alternatives=(a,)), labels)[0]
                     .replace("Alternativ ", "", 1))
        for a in explanation.alternatives
    ]
    return SlotAdvice(asked, False, None, [], lines, alternatives)


# --- feeds -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedRow:
    id: int
    scope: str
    label: str
    contact: str
    created: str
    last_seen: str
    revoked: str


@dataclass(frozen=True, slots=True)
class NewFeed:
    """Shown once, right after creation: the token is in these addresses and nowhere else."""

    label: str
    url: str
    webcal: str
    outlook: str
    google: str


def feed_rows(feeds: Sequence[FeedOut], names: Mapping[int, str]) -> list[FeedRow]:
    return [
        FeedRow(f.id, t.FEED_SCOPE.get(f.scope, f.scope), f.label,
                names.get(f.contact_id, "") if f.contact_id else "", t.when(f.created_at),
                t.when(f.last_seen_at) if f.last_seen_at else "Ikke hentet ennå",
                t.when(f.revoked_at) if f.revoked_at else "")
        for f in reversed(feeds)
    ]


def new_feed(created: FeedCreated, name: str) -> NewFeed:
    return NewFeed(
        label=name,
        url=created.url,
        webcal=created.webcal_url,
        outlook=("https://outlook.office.com/calendar/0/addfromweb?url=" + quote(created.url, safe="")
                 + "&name=" + quote(name, safe="")),
        google="https://calendar.google.com/calendar/render?cid=" + quote(created.webcal_url, safe=""),
    )


def contact_choices(contacts: Sequence[ContactOut]) -> list[Choice]:
    names = _names(contacts)
    return [Choice(str(c.id), names[c.id]) for c in contacts if c.active]


# --- the outbox ------------------------------------------------------------------------


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
                [*_reason_texts(decision.reasons, names), *retry])
    if not contact.email:
        return "Blir ikke sendt: ingen e-postadresse", "bad", retry
    return f"Venter til {t.when(due_at)}", "neutral", [f"Nivå nå: {t.level_name(decision.level)}", *retry]


# --- audit and the access report -------------------------------------------------------


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


SHARED = ("notification.sent", "feed.served", "disclosure.allowed")


async def _actor_names(session: AsyncSession, unit_id: int, case_id: int) -> tuple[dict[int, str], dict[int, str]]:
    contacts = (await session.exec(select(Contact).where(Contact.case_id == case_id))).all()
    found = await session.exec(select(User.id, User.name).where(User.unit_id == unit_id))
    return _names(contacts), {i: n for i, n in found.all() if i is not None}


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
    contacts, staff = await _actor_names(session, case.unit_id, case_id)
    rows = (await session.exec(
        select(AuditEntry).where(AuditEntry.case_id == case_id, col(AuditEntry.action).in_(SHARED))
        .order_by(col(AuditEntry.id).desc()).limit(1000)
    )).all()
    consent_of_outbox: dict[str, list[int]] = {}
    for entry in rows:
        if entry.action == "disclosure.allowed":
            # Newest first: a row retried or held until morning was decided more than once, and
            # the send rests on the last decision before it.
            consent_of_outbox.setdefault(str(entry.detail.get("outbox")),
                                         _ints(entry.detail.get("consent_records")))
    out = []
    for entry in rows:
        detail = entry.detail
        contact_id = detail.get("contact")
        if entry.action == "notification.sent":
            recipient = contacts.get(int(str(contact_id)), "?") if contact_id else staff.get(
                int(str(detail.get("user") or 0)), "Koordinator")
            what = t.MESSAGE_KIND.get(str(detail.get("kind")), str(detail.get("kind"))) + " på e-post"
            records = consent_of_outbox.get(entry.subject.removeprefix("outbox:"), [])
        elif entry.action == "feed.served":
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
    contacts, staff = await _actor_names(session, case.unit_id, case_id)
    entries = await audit.entries_for_case(session, case_id, limit, before_id)
    return [
        AuditRow(e.id or 0, t.when(e.at), _actor(e.actor, contacts, staff), t.audit_action(e.action),
                 e.subject, ", ".join(f"{k}: {v}" for k, v in sorted(e.detail.items())))
        for e in entries
    ]


# --- alerts ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertRow:
    id: int
    case_id: int | None
    reference: str
    text: str
    created: str
    due: str
    href: str
    resolved: str


async def alert_rows(session: AsyncSession, user: User, case_id: int | None, include_resolved: bool
                     ) -> list[AlertRow]:
    listed: list[AlertOut] = await alerts.list_alerts(session, user, case_id, include_resolved)
    ids = sorted({a.case_id for a in listed if a.case_id is not None})
    references: dict[int | None, str] = {}
    if ids:
        found = await session.exec(visible_cases(user).where(col(Case.id).in_(ids)))
        references = {c.id: c.reference for c in found.all()}
    rows = []
    for a in listed:
        target = t.ALERT_TARGET.get(a.kind, "")
        href = f"/saker/{a.case_id}" + (f"/{target}" if target else "") if a.case_id else "/"
        meeting = a.detail.get("meeting")
        if a.kind == "evaluation_overdue" and isinstance(meeting, int):
            href = f"/saker/{a.case_id}/moter/{meeting}"
        rows.append(AlertRow(a.id, a.case_id, references.get(a.case_id, ""), a.text, t.when(a.created_at),
                             t.day(a.due_at) if a.due_at else "", href,
                             t.when(a.resolved_at) if a.resolved_at else ""))
    return rows


def parse_day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise t.FormError(name, "Skriv datoen som åååå-mm-dd.") from None


def parse_clock(text: str, name: str) -> time:
    try:
        hours, minutes = text.strip().split(":")[:2]
        return time(int(hours), int(minutes))
    except ValueError:
        raise t.FormError(name, "Skriv klokkeslettet som tt:mm.") from None


def end_of_day(day: date) -> datetime:
    """"Valid to and including" a day: until Oslo midnight after it."""
    return oslo_instant(day + timedelta(days=1), time(0))
