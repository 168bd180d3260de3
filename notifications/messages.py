"""Message texts per message kind, recipient kind, disclosure level and language.

Every text is built from what the allowed level lets through and no more (DESIGN rules
3 and 4): at ``logistics`` a mail says only that there is a meeting at this time and
place, who to call and where to answer. Subjects are neutral at every level, because a
subject is read on lock screens and in shared inboxes. No template here names the child
welfare service; :data:`SERVICE_TERMS` lets the dispatcher check that the data filled
in did not either.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from babel.dates import format_date

from calendars.zone import wall_time
from notifications.ports import (
    AlertDetails,
    AlertKind,
    DisclosureLevel,
    Language,
    MeetingKind,
    MessageKind,
    Prepared,
    RecipientKind,
    lowest,
)

#: Words that name the child welfare service; never in a mail below ``purpose``.
#: Substrings, so that "barnevern" also catches "barneverntjenesten" and "barnevernet".
SERVICE_TERMS: tuple[str, ...] = ("barnevern", "child welfare", "child protection")

#: Field limits in characters: together they keep the text and HTML parts of any mail
#: well below :data:`notifications.email.MAX_MESSAGE_BYTES`.
MAX_PLACE = 200
MAX_PHONE = 40
MAX_HEADLINE = 200
MAX_REFERENCE = 40
MAX_CONTENT = 4000
MAX_URL = 2000

#: The most each kind of message can use. A cancellation or a reminder only has to
#: identify the meeting; an invitation helps people prepare, so it may carry content.
KIND_CEILING: dict[MessageKind, DisclosureLevel] = {
    MessageKind.INVITATION: DisclosureLevel.CONTENT,
    MessageKind.UPDATE: DisclosureLevel.CONTENT,
    MessageKind.CANCELLATION: DisclosureLevel.PURPOSE,
    MessageKind.REMINDER: DisclosureLevel.PURPOSE,
    MessageKind.ALERT: DisclosureLevel.CONTENT,
}


def message_level(kind: MessageKind, allowed: DisclosureLevel) -> DisclosureLevel:
    """The one level a message of this kind is rendered at, in every part (text, HTML and
    the calendar object alike): the lowest its purpose needs, never above what is allowed."""
    return lowest(allowed, KIND_CEILING[kind])


class RenderError(ValueError):
    """The prepared data cannot make this message (missing meeting, bad link, level
    ``none``); sending it anyway would mislead or leak, so the row ends dead."""


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    """``level`` is what the mail actually discloses, for the audit log."""

    subject: str
    text: str
    html: str
    level: DisclosureLevel


@dataclass(frozen=True, slots=True)
class _Texts:
    #: Babel (CLDR) date patterns: a day in full ("mandag 12. januar 2026") and a subject's date.
    day_pattern: str
    subject_date_pattern: str
    greeting: str
    subject: dict[MessageKind, str]
    invite: str
    invite_child: str
    moved: str
    changed: str
    cancelled: str
    reminder: str
    alert: str
    when: str
    new_when: str
    previous_when: str
    place: str
    call: str
    meeting_kind: str
    agenda: str
    case: str
    content: str
    answer_family: str
    answer_professional: str
    answer_in_calendar: str
    more: str
    open_app: str
    alert_label: str
    alert_detail: str
    regards: str
    automatic: str
    meeting_kinds: dict[MeetingKind, str]
    child_conversation_to_child: str
    alert_kinds: dict[AlertKind, str]


_TEXTS: dict[Language, _Texts] = {
    Language.NB: _Texts(
        day_pattern="EEEE d. MMMM y",
        subject_date_pattern="d. MMMM",
        greeting="Hei,",
        subject={
            MessageKind.INVITATION: "Møte {date} kl. {time}",
            MessageKind.UPDATE: "Endret: møte {date} kl. {time}",
            MessageKind.CANCELLATION: "Avlyst: møte {date} kl. {time}",
            MessageKind.REMINDER: "Påminnelse: møte {date} kl. {time}",
            MessageKind.ALERT: "Nytt varsel i Samhandling",
        },
        invite="Du er invitert til et møte.",
        invite_child="Du er invitert til et møte, og vi håper du vil komme.",
        moved="Møtet er flyttet til et nytt tidspunkt.",
        changed="Det er gjort endringer i møtet.",
        cancelled="Møtet er avlyst.",
        reminder="Dette er en påminnelse om et møte.",
        alert="Du har et nytt varsel i Samhandling.",
        when="Tid",
        new_when="Ny tid",
        previous_when="Tidligere tid",
        place="Sted",
        call="Spørsmål? Ring {phone}.",
        meeting_kind="Møte",
        agenda="Tema",
        case="Sak",
        content="Mål og tiltak",
        answer_family="Svar om du kan komme:",
        answer_professional="Godta eller avslå:",
        answer_in_calendar="Du kan også svare i kalenderen din.",
        more="Mer informasjon:",
        open_app="Åpne Samhandling:",
        alert_label="Varsel",
        alert_detail="Detaljer",
        regards="Vennlig hilsen",
        automatic="Denne e-posten er sendt automatisk.",
        meeting_kinds={
            MeetingKind.STARTUP: "Oppstartsmøte",
            MeetingKind.WEEKLY_STATUS: "Statusmøte",
            MeetingKind.MINI_EVALUATION: "Første evaluering",
            MeetingKind.MAIN_EVALUATION: "Evalueringsmøte",
            MeetingKind.FINAL_EVALUATION: "Sluttevaluering",
            MeetingKind.CHILD_TALK: "Samtale med barnet",
            MeetingKind.AD_HOC: "Møte",
        },
        child_conversation_to_child="Samtale med deg",
        alert_kinds={
            AlertKind.CONSENT_EXPIRING: "Et samtykke utløper snart",
            AlertKind.CHILD_TURNING_15: "Barnet fyller snart 15 år",
            AlertKind.CONSENT_WITHDRAWN: "Samtykke gjelder ikke lenger mens partnere har invitasjoner",
            AlertKind.NO_FEASIBLE_SLOT: "Fant ikke noe tidspunkt som passer for et møte",
            AlertKind.EVALUATION_OVERDUE: "En evaluering er ikke holdt i tide",
            AlertKind.ORDERED_MEASURE_ENDING: "Et pålagt tiltak nærmer seg slutten",
            AlertKind.NOTIFICATION_FAILED: "Et varsel kunne ikke leveres",
            AlertKind.PLAN_ENDED: "En tiltaksplan er over, men saken er ikke avsluttet",
            AlertKind.DELETION_DUE: "En avsluttet sak slettes snart",
            AlertKind.OTHER: "Nytt varsel",
        },
    ),
    Language.NN: _Texts(
        day_pattern="EEEE d. MMMM y",
        subject_date_pattern="d. MMMM",
        greeting="Hei,",
        subject={
            MessageKind.INVITATION: "Møte {date} kl. {time}",
            MessageKind.UPDATE: "Endra: møte {date} kl. {time}",
            MessageKind.CANCELLATION: "Avlyst: møte {date} kl. {time}",
            MessageKind.REMINDER: "Påminning: møte {date} kl. {time}",
            MessageKind.ALERT: "Nytt varsel i Samhandling",
        },
        invite="Du er invitert til eit møte.",
        invite_child="Du er invitert til eit møte, og vi håpar du vil kome.",
        moved="Møtet er flytta til eit nytt tidspunkt.",
        changed="Det er gjort endringar i møtet.",
        cancelled="Møtet er avlyst.",
        reminder="Dette er ei påminning om eit møte.",
        alert="Du har eit nytt varsel i Samhandling.",
        when="Tid",
        new_when="Ny tid",
        previous_when="Tidlegare tid",
        place="Stad",
        call="Spørsmål? Ring {phone}.",
        meeting_kind="Møte",
        agenda="Tema",
        case="Sak",
        content="Mål og tiltak",
        answer_family="Svar om du kan kome:",
        answer_professional="Godta eller avslå:",
        answer_in_calendar="Du kan òg svare i kalenderen din.",
        more="Meir informasjon:",
        open_app="Opne Samhandling:",
        alert_label="Varsel",
        alert_detail="Detaljar",
        regards="Venleg helsing",
        automatic="Denne e-posten er send automatisk.",
        meeting_kinds={
            MeetingKind.STARTUP: "Oppstartsmøte",
            MeetingKind.WEEKLY_STATUS: "Statusmøte",
            MeetingKind.MINI_EVALUATION: "Første evaluering",
            MeetingKind.MAIN_EVALUATION: "Evalueringsmøte",
            MeetingKind.FINAL_EVALUATION: "Sluttevaluering",
            MeetingKind.CHILD_TALK: "Samtale med barnet",
            MeetingKind.AD_HOC: "Møte",
        },
        child_conversation_to_child="Samtale med deg",
        alert_kinds={
            AlertKind.CONSENT_EXPIRING: "Eit samtykke går snart ut",
            AlertKind.CHILD_TURNING_15: "Barnet fyller snart 15 år",
            AlertKind.CONSENT_WITHDRAWN: "Samtykke gjeld ikkje lenger medan partnarar har invitasjonar",
            AlertKind.NO_FEASIBLE_SLOT: "Fann ikkje noko tidspunkt som passar for eit møte",
            AlertKind.EVALUATION_OVERDUE: "Ei evaluering er ikkje halden i tide",
            AlertKind.ORDERED_MEASURE_ENDING: "Eit pålagt tiltak nærmar seg slutten",
            AlertKind.NOTIFICATION_FAILED: "Eit varsel kunne ikkje leverast",
            AlertKind.PLAN_ENDED: "Ein tiltaksplan er over, men saka er ikkje avslutta",
            AlertKind.DELETION_DUE: "Ei avslutta sak blir sletta snart",
            AlertKind.OTHER: "Nytt varsel",
        },
    ),
    Language.EN: _Texts(
        day_pattern="EEEE d MMMM y",
        subject_date_pattern="d MMMM",
        greeting="Hello,",
        subject={
            MessageKind.INVITATION: "Meeting {date} at {time}",
            MessageKind.UPDATE: "Changed: meeting {date} at {time}",
            MessageKind.CANCELLATION: "Cancelled: meeting {date} at {time}",
            MessageKind.REMINDER: "Reminder: meeting {date} at {time}",
            MessageKind.ALERT: "New alert in Samhandling",
        },
        invite="You are invited to a meeting.",
        invite_child="You are invited to a meeting, and we hope you will come.",
        moved="The meeting has been moved to a new time.",
        changed="The meeting has been changed.",
        cancelled="The meeting has been cancelled.",
        reminder="This is a reminder about a meeting.",
        alert="You have a new alert in Samhandling.",
        when="Time",
        new_when="New time",
        previous_when="Previous time",
        place="Place",
        call="Questions? Call {phone}.",
        meeting_kind="Meeting",
        agenda="Agenda",
        case="Case",
        content="Goals and measures",
        answer_family="Please tell us if you can come:",
        answer_professional="Accept or decline:",
        answer_in_calendar="You can also answer in your calendar.",
        more="More information:",
        open_app="Open Samhandling:",
        alert_label="Alert",
        alert_detail="Details",
        regards="Kind regards",
        automatic="This e-mail was sent automatically.",
        meeting_kinds={
            MeetingKind.STARTUP: "Start-up meeting",
            MeetingKind.WEEKLY_STATUS: "Status meeting",
            MeetingKind.MINI_EVALUATION: "First evaluation",
            MeetingKind.MAIN_EVALUATION: "Evaluation meeting",
            MeetingKind.FINAL_EVALUATION: "Final evaluation",
            MeetingKind.CHILD_TALK: "Conversation with the child",
            MeetingKind.AD_HOC: "Meeting",
        },
        child_conversation_to_child="A conversation with you",
        alert_kinds={
            AlertKind.CONSENT_EXPIRING: "A consent expires soon",
            AlertKind.CHILD_TURNING_15: "The child turns 15 soon",
            AlertKind.CONSENT_WITHDRAWN: "Consent no longer in force while partners hold invitations",
            AlertKind.NO_FEASIBLE_SLOT: "No feasible time was found for a meeting",
            AlertKind.EVALUATION_OVERDUE: "An evaluation was not held in time",
            AlertKind.ORDERED_MEASURE_ENDING: "An ordered measure is nearing its end",
            AlertKind.NOTIFICATION_FAILED: "A notification could not be delivered",
            AlertKind.PLAN_ENDED: "A plan has ended, but its case is not closed",
            AlertKind.DELETION_DUE: "A closed case will soon be deleted",
            AlertKind.OTHER: "New alert",
        },
    ),
}


# --- cleaning input -------------------------------------------------------------------

_SPACES = re.compile(r"\s+")


def _is_unsafe(ch: str) -> bool:
    # Cc: controls incl. CR/LF; Cf: format incl. bidi overrides that could disguise text;
    # Zl/Zp: Unicode line and paragraph separators, which some clients break lines on.
    return unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"}


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def one_line(value: str, limit: int) -> str:
    """A single safe line: control and separator characters become spaces, runs of
    whitespace collapse, and over-long text is cut with an ellipsis."""
    cleaned = "".join(" " if _is_unsafe(ch) else ch for ch in value)
    return _truncate(_SPACES.sub(" ", cleaned).strip(), limit)


def _multi_line(value: str, limit: int) -> str:
    lines = value.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept = [one_line(line, limit) for line in lines]
    return _truncate("\n".join(kept).strip("\n"), limit)


def _url(value: str) -> str:
    if len(value) > MAX_URL or not re.fullmatch(r"https?://[^\s<>\"'\\]+", value):
        raise RenderError("link is not a plain http(s) URL")
    if any(_is_unsafe(ch) for ch in value):
        raise RenderError("link contains control characters")
    return value


# --- time -----------------------------------------------------------------------------


def _day_words(moment: datetime, language: Language) -> str:
    """The local day in full, with month and weekday names in ``language`` (Babel)."""
    return format_date(moment, _TEXTS[language].day_pattern, locale=language.value)


def format_when(start: datetime, end: datetime, language: Language) -> str:
    """Oslo wall-clock time in Norwegian style ("mandag 12. januar 2026 kl. 09:00–10:00"),
    whatever zone the data came in, since families and partners live by Oslo time."""
    local_start, local_end = wall_time(start), wall_time(end)
    day = _day_words(local_start, language)
    if language is Language.EN:
        if local_end.date() == local_start.date():
            span = f"{local_start:%H:%M}–{local_end:%H:%M}"
        else:
            span = f"{local_start:%H:%M} – {_day_words(local_end, language)}, {local_end:%H:%M}"
        return f"{day}, {span} (Norwegian time)"
    if local_end.date() == local_start.date():
        return f"{day} kl. {local_start:%H:%M}–{local_end:%H:%M}"
    return f"{day} kl. {local_start:%H:%M} – {_day_words(local_end, language)} kl. {local_end:%H:%M}"


def _subject(kind: MessageKind, start: datetime | None, texts: _Texts, lang: Language) -> str:
    if start is None:
        return texts.subject[kind]
    local = wall_time(start)
    date = format_date(local, texts.subject_date_pattern, locale=lang.value)
    return texts.subject[kind].format(date=date, time=f"{local:%H:%M}")


# --- blocks, rendered to text and HTML from one list ----------------------------------


@dataclass(frozen=True, slots=True)
class _Para:
    text: str


@dataclass(frozen=True, slots=True)
class _Field:
    label: str
    value: str


@dataclass(frozen=True, slots=True)
class _Link:
    label: str
    url: str


@dataclass(frozen=True, slots=True)
class _Long:
    label: str
    text: str


_Block = _Para | _Field | _Link | _Long


def meeting_kind_name(kind: MeetingKind, language: Language) -> str:
    """The meeting kind in words; shared with feeds so a meeting has one name everywhere."""
    return _TEXTS[language].meeting_kinds[kind]


def _to_text(blocks: list[_Block]) -> str:
    out: list[str] = []
    for block in blocks:
        match block:
            case _Para(text):
                out.append(f"{text}\n")
            case _Field(label, value):
                out.append(f"{label}: {value}\n")
            case _Link(label, url):
                out.append(f"{label}\n{url}\n")
            case _Long(label, text):
                out.append(f"{label}:\n{text}\n")
    return "\n".join(out)


def _to_html(blocks: list[_Block], language: Language) -> str:
    esc = html.escape
    body: list[str] = []
    for block in blocks:
        match block:
            case _Para(text):
                body.append(f"<p>{esc(text).replace(chr(10), '<br>')}</p>")
            case _Field(label, value):
                body.append(f"<p><strong>{esc(label)}:</strong> {esc(value)}</p>")
            case _Link(label, url):
                body.append(f'<p>{esc(label)}<br><a href="{esc(url)}">{esc(url)}</a></p>')
            case _Long(label, text):
                lines = "<br>".join(esc(line) for line in text.split("\n"))
                body.append(f"<p><strong>{esc(label)}:</strong><br>{lines}</p>")
    return (
        f'<!DOCTYPE html>\n<html lang="{language.value}"><head><meta charset="utf-8">'
        "</head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


# --- the renderer ---------------------------------------------------------------------


def render(
    kind: MessageKind,
    recipient_kind: RecipientKind,
    prepared: Prepared,
    *,
    sender_name: str,
) -> RenderedMessage:
    """Render one message at the lowest level it needs, never above the allowed one."""
    level = message_level(kind, prepared.allowed_level)
    if level is DisclosureLevel.NONE:
        raise RenderError("nothing may be disclosed to this recipient")
    language = prepared.recipient.language
    texts = _TEXTS[language]
    if kind is MessageKind.ALERT:
        if prepared.alert is None:
            raise RenderError("an alert needs alert details")
        blocks = _alert_blocks(prepared.alert, prepared, level, texts)
        shown = _alert_level(prepared.alert, level)
        start: datetime | None = None
    else:
        if prepared.meeting is None:
            raise RenderError("a meeting message needs meeting details")
        blocks, shown = _meeting_blocks(kind, recipient_kind, prepared, level, language)
        start = prepared.meeting.start
    blocks.append(_Para(f"{texts.regards}\n{one_line(sender_name, 100)}"))
    blocks.append(_Para(texts.automatic))
    return RenderedMessage(
        subject=_subject(kind, start, texts, language),
        text=_to_text(blocks),
        html=_to_html(blocks, language),
        level=shown,
    )


def _meeting_blocks(
    kind: MessageKind,
    recipient_kind: RecipientKind,
    prepared: Prepared,
    level: DisclosureLevel,
    language: Language,
) -> tuple[list[_Block], DisclosureLevel]:
    texts = _TEXTS[language]
    meeting = prepared.meeting
    assert meeting is not None
    is_child = recipient_kind is RecipientKind.CHILD
    when = format_when(meeting.start, meeting.end, language)
    blocks: list[_Block] = [_Para(texts.greeting)]
    moved = meeting.previous_start is not None and meeting.previous_start != meeting.start
    match kind:
        case MessageKind.INVITATION:
            blocks.append(_Para(texts.invite_child if is_child else texts.invite))
            blocks.append(_Field(texts.when, when))
        case MessageKind.UPDATE if moved:
            assert meeting.previous_start is not None
            previous_end = meeting.previous_end or (meeting.previous_start + (meeting.end - meeting.start))
            blocks.append(_Para(texts.moved))
            blocks.append(_Field(texts.new_when, when))
            blocks.append(
                _Field(
                    texts.previous_when,
                    format_when(meeting.previous_start, previous_end, language),
                )
            )
        case MessageKind.UPDATE:
            blocks.append(_Para(texts.changed))
            blocks.append(_Field(texts.when, when))
        case MessageKind.CANCELLATION:
            blocks.append(_Para(texts.cancelled))
            blocks.append(_Field(texts.when, when))
        case _:
            blocks.append(_Para(texts.reminder))
            blocks.append(_Field(texts.when, when))
    if meeting.place and kind is not MessageKind.CANCELLATION:
        blocks.append(_Field(texts.place, one_line(meeting.place, MAX_PLACE)))
    shown = DisclosureLevel.LOGISTICS
    if level >= DisclosureLevel.PURPOSE:
        shown = DisclosureLevel.PURPOSE
        label = texts.meeting_kinds[meeting.kind]
        if meeting.kind is MeetingKind.CHILD_TALK and is_child:
            label = texts.child_conversation_to_child
        blocks.append(_Field(texts.meeting_kind, label))
        if meeting.agenda_headline:
            blocks.append(_Field(texts.agenda, one_line(meeting.agenda_headline, MAX_HEADLINE)))
        if meeting.case_reference and recipient_kind is RecipientKind.COORDINATOR:
            blocks.append(_Field(texts.case, one_line(meeting.case_reference, MAX_REFERENCE)))
    if level >= DisclosureLevel.CONTENT and meeting.content_text:
        shown = DisclosureLevel.CONTENT
        blocks.append(_Long(texts.content, _multi_line(meeting.content_text, MAX_CONTENT)))
    if meeting.organiser_phone:
        blocks.append(_Para(texts.call.format(phone=one_line(meeting.organiser_phone, MAX_PHONE))))
    if prepared.answer_url and kind in (MessageKind.INVITATION, MessageKind.UPDATE):
        label = texts.answer_family if recipient_kind.is_family else texts.answer_professional
        blocks.append(_Link(label, _url(prepared.answer_url)))
        if prepared.calendar is not None:
            blocks.append(_Para(texts.answer_in_calendar))
    if prepared.link_url:
        blocks.append(_Link(texts.more, _url(prepared.link_url)))
    return blocks, shown


def _alert_level(alert: AlertDetails, level: DisclosureLevel) -> DisclosureLevel:
    if level >= DisclosureLevel.CONTENT and alert.detail:
        return DisclosureLevel.CONTENT
    if level >= DisclosureLevel.PURPOSE:
        return DisclosureLevel.PURPOSE
    return DisclosureLevel.LOGISTICS


def _alert_blocks(
    alert: AlertDetails, prepared: Prepared, level: DisclosureLevel, texts: _Texts
) -> list[_Block]:
    blocks: list[_Block] = [_Para(texts.greeting), _Para(texts.alert)]
    if level >= DisclosureLevel.PURPOSE:
        if alert.case_reference:
            blocks.append(_Field(texts.case, one_line(alert.case_reference, MAX_REFERENCE)))
        blocks.append(_Field(texts.alert_label, texts.alert_kinds[alert.kind]))
    if level >= DisclosureLevel.CONTENT and alert.detail:
        blocks.append(_Long(texts.alert_detail, _multi_line(alert.detail, MAX_CONTENT)))
    if prepared.link_url:
        blocks.append(_Link(texts.open_app, _url(prepared.link_url)))
    return blocks
