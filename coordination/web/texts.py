"""The pages' words in bokmål: states, kinds and the service's English error messages.

The service speaks English to the API (developers read it); caseworkers read these.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime

from babel.dates import format_date, format_datetime, get_day_names

from calendars.zone import wall_time
from coordination.consent.policy import GrantorState, SectorState
from coordination.consent.texts import LEVEL_NAMES, ROLE_NAMES, SECTOR_NAMES
from coordination.domain import AuditAction, ConsentForm, ConsentStatus, Language, Role, Sector
from coordination.errors import InputError
from coordination.feeds.enums import FeedScope
from coordination.levels import Level
from coordination.scheduling.enums import AnswerChannel, MeetingStatus, ParticipantAnswer
from coordination.schemas import WeeklyWindow
from notifications.ports import AlertKind, Channel, MessageKind, SuppressionCode

NB = Language.NB

LEVEL_NAMES_NB = LEVEL_NAMES[NB]

SECTOR_STATE: dict[str, str] = {
    SectorState.GRANTED: "Gitt",
    SectorState.PARTIAL: "Delvis",
    SectorState.MISSING: "Mangler",
    SectorState.WITHDRAWN: "Trukket tilbake",
    SectorState.EXPIRED: "Utløpt",
    SectorState.NOT_NEEDED: "Trengs ikke",
}

GRANTOR_STATE: dict[str, str] = {
    GrantorState.GRANTED: "har samtykket",
    GrantorState.MISSING: "har ikke samtykket",
    GrantorState.REFUSED: "har nektet",
    GrantorState.WITHDRAWN: "har trukket tilbake",
    GrantorState.EXPIRED: "samtykket er utløpt",
}

CONSENT_STATUS: dict[str, str] = {
    ConsentStatus.GRANTED: "Samtykke gitt",
    ConsentStatus.REFUSED: "Nektet",
    ConsentStatus.WITHDRAWN: "Trukket tilbake",
}
CONSENT_FORM: dict[str, str] = {ConsentForm.WRITTEN: "Skriftlig", ConsentForm.ORAL: "Muntlig"}

MEETING_STATUS: dict[str, str] = {
    MeetingStatus.PROPOSED: "Foreslått",
    MeetingStatus.CONFIRMED: "Bekreftet",
    MeetingStatus.CANCELLED: "Avlyst",
    MeetingStatus.HELD: "Holdt",
}
ANSWER: dict[str, str] = {
    ParticipantAnswer.NEEDS_ACTION: "Ikke svart",
    ParticipantAnswer.ACCEPTED: "Kommer",
    ParticipantAnswer.DECLINED: "Kommer ikke",
    ParticipantAnswer.TENTATIVE: "Kanskje",
}

MESSAGE_KIND: dict[str, str] = {
    MessageKind.INVITATION: "Invitasjon",
    MessageKind.UPDATE: "Endring",
    MessageKind.CANCELLATION: "Avlysning",
    MessageKind.REMINDER: "Påminnelse",
    MessageKind.ALERT: "Varsel til koordinator",
}

SUPPRESSION: dict[str, str] = {
    SuppressionCode.NO_CONSENT: "mangler samtykke",
    SuppressionCode.CONSENT_WITHDRAWN: "samtykket er trukket tilbake",
    SuppressionCode.NOT_TOLD: "barnesamtalen holdes for barnet",
    SuppressionCode.NO_ADDRESS: "mangler e-postadresse",
    SuppressionCode.OBSOLETE: "erstattet av en senere endring",
    SuppressionCode.TOO_LATE: "møtet hadde allerede begynt",
    SuppressionCode.LEVEL_NONE: "ingenting kan deles",
    SuppressionCode.OTHER: "annen grunn",
}

FEED_SCOPE: dict[str, str] = {
    FeedScope.CASE: "Saken (teamet)",
    FeedScope.CONTACT: "Én kontakt",
    FeedScope.COORDINATOR: "Alle sakene mine",
}

AUDIT_ACTIONS: dict[str, str] = {
    AuditAction.CASE_CREATED: "Saken opprettet",
    AuditAction.CASE_UPDATED: "Saken endret",
    AuditAction.CASE_COORDINATORS: "Koordinatorer endret",
    AuditAction.CONTACT_ADDED: "Kontakt lagt til",
    AuditAction.CONTACT_UPDATED: "Kontakt endret",
    AuditAction.CONSENT_GRANTED: "Samtykke registrert",
    AuditAction.CONSENT_REFUSED: "Nektet samtykke registrert",
    AuditAction.CONSENT_WITHDRAWN: "Tilbaketrukket samtykke registrert",
    AuditAction.INFORMATION_LOOPS_READ: "Informasjonssløyfer lest",
    AuditAction.PLAN_CREATED: "Tiltaksplan opprettet",
    AuditAction.PLAN_REVISED: "Tiltaksplan revidert",
    AuditAction.MEETING_CREATED: "Møte opprettet",
    AuditAction.MEETING_MOVED: "Møte flyttet",
    AuditAction.MEETING_UPDATED: "Møte endret",
    AuditAction.MEETING_CONFIRMED: "Møte bekreftet",
    AuditAction.MEETING_CANCELLED: "Møte avlyst",
    AuditAction.MEETING_HELD: "Møte markert som holdt",
    AuditAction.MEETING_ANSWERED: "Svar registrert",
    AuditAction.ANSWER_LINK_USED: "Svar via lenke",
    AuditAction.DISCLOSURE_ALLOWED: "Deling tillatt",
    AuditAction.DISCLOSURE_DENIED: "Deling stoppet",
    AuditAction.NOTIFICATION_SENT: "Melding sendt",
    AuditAction.NOTIFICATION_SUPPRESSED: "Melding stoppet",
    AuditAction.NOTIFICATION_RETRY: "Melding forsøkes igjen",
    AuditAction.NOTIFICATION_DEAD: "Melding ga opp",
    AuditAction.NOTIFICATION_BOUNCED: "Melding kom i retur",
    AuditAction.NOTIFICATION_DELIVERED: "SMS kom fram",
    AuditAction.REPLY_APPLIED: "Svar fra kalender registrert",
    AuditAction.REPLY_IGNORED: "Svar fra kalender avvist",
    AuditAction.COUNTER_RECEIVED: "Nytt tidspunkt foreslått fra kalender",
    AuditAction.FEED_CREATED: "Kalenderabonnement opprettet",
    AuditAction.FEED_REVOKED: "Kalenderabonnement trukket tilbake",
    AuditAction.FEED_SERVED: "Kalender levert",
    AuditAction.ALERT_RAISED: "Varsel",
    AuditAction.ALERT_RESOLVED: "Varsel løst",
    AuditAction.CASE_CLOSED: "Saken avsluttet",
    AuditAction.CASE_REOPENED: "Saken gjenåpnet",
    AuditAction.CASE_PURGED: "Personopplysningene i saken slettet",
    AuditAction.RECORD_PRODUCED: "Journalutskrift laget",
    AuditAction.ACCESS_REPORT_PRODUCED: "Innsynsrapport laget",
}

READ_WHAT = {
    "case": "saken", "contacts": "kontaktene", "consents": "samtykkene", "audit": "loggen", "plan": "planen",
    "meetings": "møtene", "outbox": "utsendingene", "page.samtykke": "siden Samtykke",
    "page.moter": "siden Møteplan", "page.kalendere": "siden Kalendere", "page.utsendinger": "siden Utsendinger",
    "page.logg": "siden Logg og innsyn", "page.plan": "siden Tiltaksplan", "page.nytt-mote": "siden Nytt møte",
    "page.journal": "siden Journal og avslutning", "page.innsyn": "siden Innsynsrapport",
}


def audit_action(action: str) -> str:
    if action.startswith("read."):
        what = action.removeprefix("read.")
        return f"Lest: {READ_WHAT.get(what, what)}"
    return AUDIT_ACTIONS.get(action, action)


#: How a message travels, on the outbox page: e-mail is the rule, SMS is marked.
CHANNEL_MARK: dict[str, str] = {Channel.EMAIL: "", Channel.SMS: " (SMS)"}

#: How an answer came (MeetingParticipant.answered_via).
ANSWER_VIA: dict[str, str] = {
    AnswerChannel.LINK: "via lenken i invitasjonen",
    AnswerChannel.CALENDAR: "svar fra kalenderen",
    AnswerChannel.COORDINATOR: "registrert av koordinator",
}

#: Where an alert is resolved, relative to its case's page.
ALERT_TARGET: dict[str, str] = {
    AlertKind.CONSENT_EXPIRING: "samtykke",
    AlertKind.CHILD_TURNING_15: "samtykke",
    AlertKind.CONSENT_WITHDRAWN: "samtykke",
    AlertKind.NO_FEASIBLE_SLOT: "moter",
    AlertKind.EVALUATION_OVERDUE: "moter",
    AlertKind.ORDERED_MEASURE_ENDING: "",
    AlertKind.NOTIFICATION_FAILED: "utsendinger",
    AlertKind.COUNTER_PROPOSED: "moter",
    AlertKind.ADDRESS_BOUNCED: "utsendinger",
    AlertKind.PLAN_ENDED: "journal",
    AlertKind.DELETION_DUE: "journal",
}

MESSAGES = {
    "logget-inn": "Du er logget inn.",
    "logget-ut": "Du er logget ut.",
    "utlopt": "Økten er utløpt. Logg inn på nytt.",
    "samtykke": "Samtykket er registrert. Informasjonssløyfene er oppdatert.",
    "flyttet": "Møtet er flyttet. De inviterte får beskjed om den nye tiden.",
    "bekreftet": "Møtet er bekreftet. Invitasjonene sendes.",
    "avlyst": "Møtet er avlyst. De inviterte får avlysning.",
    "holdt": "Møtet er markert som holdt.",
    "svar": "Svaret er registrert.",
    "kalender-stoppet": "Kalenderabonnementet er trukket tilbake. Adressen virker ikke lenger.",
    "varsel-lost": "Varselet er markert som løst.",
    "plan-lagret": "Tiltaksplanen er lagret, og møteplanen er oppdatert. Nye møter er forslag: bekreft dem for å "
                   "sende invitasjonene.",
    "mote-opprettet": "Møtet er opprettet og bekreftet. Invitasjonene sendes.",
    "mote-foreslatt": "Møtet er opprettet som forslag. Bekreft det for å sende invitasjonene.",
    "sak-opprettet": "Saken er opprettet. Legg til kontaktene rundt barnet.",
    "koordinatorer": "Koordinatorene er lagret.",
    "kontakt-lagt-til": "Kontakten er lagt til.",
    "kontakt-lagret": "Endringene er lagret.",
    "kontakt-deaktivert": "Kontakten er deaktivert og får ingen flere meldinger fra saken.",
    "kontakt-aktivert": "Kontakten er aktiv igjen.",
    "bruker-deaktivert": "Brukeren er deaktivert. Tilgangen er stengt med en gang.",
    "innstillinger": "Innstillingene er lagret.",
    "avsluttet": "Saken er avsluttet. Framtidige møter er avlyst, og de inviterte får avlysning. "
                 "Last ned journalutskriften og arkiver den i fagsystemet.",
    "gjenapnet": "Saken er gjenåpnet. Lag nye kalenderabonnementer og planlegg møtene på nytt.",
}


def sector_name(sector: Sector | str) -> str:
    return SECTOR_NAMES[NB][Sector(sector)].capitalize() if sector != Sector.NAV else "NAV"


def role_name(role: Role | str, label: str = "") -> str:
    return label or ROLE_NAMES[NB][Role(role)]


def level_name(level: Level | str) -> str:
    return LEVEL_NAMES[NB][Level(level)].capitalize()


def local(value: datetime) -> datetime:
    return wall_time(value)


def when(value: datetime | None) -> str:
    """"tir. 12.01.2027 kl. 09:00" in Oslo time."""
    if value is None:
        return ""
    return format_datetime(local(value), "EEE dd.MM.y 'kl.' HH:mm", locale=NB.value)


def span(start: datetime, end: datetime) -> str:
    """"tirsdag 12. januar 2027 kl. 09:00–10:00"; across midnight, two :func:`when`."""
    first, last = local(start), local(end)
    if first.date() == last.date():
        return f"{format_date(first, 'EEEE d. MMMM y', locale=NB.value)} kl. {first:%H:%M}–{last:%H:%M}"
    return f"{when(start)} – {when(end)}"


def day(value: date | datetime | None) -> str:
    """"12. januar 2027"; an instant is shown by its Oslo date."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = local(value).date()
    return format_date(value, "d. MMMM y", locale=NB.value)


def month_heading(value: datetime) -> str:
    """"Januar 2027"."""
    return format_date(local(value), "LLLL y", locale=NB.value).capitalize()


def _weekday_short(weekday: int) -> str:
    """"man" for Monday (0): CLDR's abbreviation without its full stop, as in "man–fre"."""
    name: str = get_day_names("abbreviated", locale=NB.value)[weekday]
    return name.removesuffix(".")


def availability(windows: Sequence[WeeklyWindow]) -> str:
    """Weekly windows in short words: "man–fre 08:00–17:00"."""
    by_hours: dict[tuple[str, str], list[int]] = {}
    for window in windows:
        by_hours.setdefault((window.start, window.end), []).append(window.weekday)
    parts = []
    for (start, end), weekdays in by_hours.items():
        days = sorted(set(weekdays))
        if len(days) > 2 and days == list(range(days[0], days[-1] + 1)):
            names = f"{_weekday_short(days[0])}–{_weekday_short(days[-1])}"
        else:
            names = ", ".join(_weekday_short(d) for d in days)
        parts.append(f"{names} {start}–{end}")
    return "; ".join(parts)


#: The service's messages for the fields the pages' forms send, in words for the form.
_ERRORS = (
    # Cases, contacts and the unit: before "window" below, which would take "a window must start".
    ("national identity number", "Saksnummeret kan ikke være et fødselsnummer."),
    ("birth date cannot be in the future", "Fødselsdatoen kan ikke være fram i tid."),
    ("measures end at 25", "Barnevernstiltak varer til barnet fyller 25 år. Kontroller fødselsdatoen."),
    ("needs the date of the order", "Et pålagt tiltak må ha datoen for vedtaket."),
    ("only an ordered measure has an order date",
     "Bare et pålagt tiltak har vedtaksdato. La feltet stå tomt for et frivillig tiltak."),
    ("order date cannot be in the future", "Vedtaksdatoen kan ikke være fram i tid."),
    ("already has a case with reference", "Enheten har allerede en sak med dette saksnummeret."),
    ("is not a coordinator in this unit", "Velg koordinatorer fra enheten."),
    ("needs at least one coordinator", "Saken må ha minst én koordinator."),
    ("a window must start before it ends", "Tidsrommet må begynne før det slutter."),
    ("only a family contact can have daily care",
     "Bare en i familien kan ha daglig omsorg. Velg sektoren familie, eller fjern krysset."),
    ("cannot have daily care", "Barnet eller en tillitsperson kan ikke ha daglig omsorg."),
    ("the child belongs to the family sector", "Barnet hører til sektoren familie."),
    ("belongs to the family sector", "En forelder eller tillitsperson hører til sektoren familie."),
    ("would bypass consent",
     "Rollen hører til en sektor utenfor familien og barnevernet. Velg den sektoren (eller «Som rollen "
     "tilsier»): ellers ville samtykket blitt omgått."),
    ("already has a contact with the role child", "Saken har allerede en aktiv kontakt med rollen barnet."),
    ("which language the interpreter is for", "Skriv hvilket språk tolken skal tolke til."),
    ("SMS needs a mobile number", "SMS krever et mobilnummer i feltet Telefon. Skriv et mobilnummer, eller "
     "velg e-post."),
    ("not a valid phone number", "Skriv et gyldig telefonnummer, for eksempel +47 400 00 000 eller 8 sifre."),
    ("a closure must end on or after", "Siste dag må være samme dag som første dag eller senere."),
    ("must name a level", "Velg hvor mye som kan deles når samtykket gis."),
    ("valid_until must be after", "«Gyldig til og med» må være en dag etter at samtykket gjelder fra."),
    ("has no end date", "Bare et samtykke som gis kan ha en sluttdato."),
    ("grantor is not a contact", "Velg en kontakt i saken."),
    ("no longer an active contact", "Kontakten er ikke lenger aktiv i saken."),
    ("only a contact with daily care", "Bare den som har daglig omsorg, eller barnet, kan samtykke."),
    ("needs no consent", "Denne sektoren trenger ikke samtykke."),
    ("cannot be placed in the past", "Møtet kan ikke legges til et tidspunkt som allerede har vært."),
    ("must end after it starts", "Møtet må slutte etter at det begynner."),
    ("lasts at most 12 hours", "Et møte kan vare høyst 12 timer."),
    ("meeting cannot be changed", "Et avlyst eller holdt møte kan ikke flyttes eller endres."),
    ("cannot become", "Møtet kan ikke få den statusen nå."),
    ("cannot be marked held before", "Et møte kan ikke markeres som holdt før det har begynt."),
    ("is not invited to this meeting", "Kontakten er ikke invitert til dette møtet."),
    ("window", "Søkevinduet er ugyldig: velg en periode på høyst ett år."),
    ("contact feed needs", "Velg hvilken kontakt kalenderen er for."),
    ("not a contact of this case", "Velg en kontakt i saken."),
    ("no longer active in this case", "Kontakten er ikke lenger aktiv i saken."),
    ("only an open case can be closed", "Saken er allerede avsluttet."),
    ("only a closed case can be reopened", "Saken er ikke avsluttet, så den kan ikke gjenåpnes."),
    ("cannot be reopened", "Oppbevaringstiden er ute: personopplysningene slettes, og saken kan ikke gjenåpnes."),
    ("reopen it to change it", "Saken er avsluttet. Gjenåpne den under «Journal og avslutning» for å endre den."),
)


class FormError(InputError):
    """A form's own check, already in words for the caseworker."""


def error_text(error: InputError) -> str:
    """The service's reason in bokmål; a message we have no words for gets a general one."""
    if isinstance(error, FormError):
        return error.message
    message = error.message
    plan = re.search(r"within the plan \((\d{4}-\d\d-\d\d) – (\d{4}-\d\d-\d\d)\)", message)
    if plan:
        first, last = (date.fromisoformat(d) for d in plan.groups())
        return f"Møtet må ligge innenfor tiltaksplanen: {day(first)} – {day(last)}."
    for needle, words in _ERRORS:
        if needle in message:
            return words
    return "Endringen ble ikke lagret. Kontroller feltene og prøv igjen."
