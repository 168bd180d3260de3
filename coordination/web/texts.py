"""The pages' words in bokmål: states, kinds and the service's English error messages.

The service speaks English to the API (developers read it); caseworkers read these.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime

from babel.dates import format_date, format_datetime, get_day_names

from calendars.zone import wall_time
from coordination.consent.texts import LEVEL_NAMES, ROLE_NAMES, SECTOR_NAMES
from coordination.domain import Language, Role, Sector
from coordination.errors import InputError
from coordination.levels import Level
from coordination.schemas import WeeklyWindow

NB = Language.NB

LEVEL_NAMES_NB = LEVEL_NAMES[NB]

SECTOR_STATE = {
    "granted": "Gitt",
    "partial": "Delvis",
    "missing": "Mangler",
    "withdrawn": "Trukket tilbake",
    "expired": "Utløpt",
    "not_needed": "Trengs ikke",
}

GRANTOR_STATE = {
    "granted": "har samtykket",
    "missing": "har ikke samtykket",
    "refused": "har nektet",
    "withdrawn": "har trukket tilbake",
    "expired": "samtykket er utløpt",
}

CONSENT_STATUS = {"granted": "Samtykke gitt", "refused": "Nektet", "withdrawn": "Trukket tilbake"}
CONSENT_FORM = {"written": "Skriftlig", "oral": "Muntlig"}

MEETING_STATUS = {"proposed": "Foreslått", "confirmed": "Bekreftet", "cancelled": "Avlyst", "held": "Holdt"}
ANSWER = {"needs_action": "Ikke svart", "accepted": "Kommer", "declined": "Kommer ikke",
          "tentative": "Kanskje"}

MESSAGE_KIND = {
    "invitation": "Invitasjon",
    "update": "Endring",
    "cancellation": "Avlysning",
    "reminder": "Påminnelse",
    "alert": "Varsel til koordinator",
}

SUPPRESSION = {
    "no_consent": "mangler samtykke",
    "consent_withdrawn": "samtykket er trukket tilbake",
    "not_told": "barnesamtalen holdes for barnet",
    "no_address": "mangler e-postadresse",
    "obsolete": "erstattet av en senere endring",
    "too_late": "møtet hadde allerede begynt",
    "level_none": "ingenting kan deles",
    "other": "annen grunn",
}

FEED_SCOPE = {"case": "Saken (teamet)", "contact": "Én kontakt", "coordinator": "Alle sakene mine"}

AUDIT_ACTIONS = {
    "case.created": "Saken opprettet",
    "case.updated": "Saken endret",
    "case.coordinators": "Koordinatorer endret",
    "contact.added": "Kontakt lagt til",
    "contact.updated": "Kontakt endret",
    "consent.granted": "Samtykke registrert",
    "consent.refused": "Nektet samtykke registrert",
    "consent.withdrawn": "Tilbaketrukket samtykke registrert",
    "information_loops.read": "Informasjonssløyfer lest",
    "plan.created": "Tiltaksplan opprettet",
    "plan.revised": "Tiltaksplan revidert",
    "meeting.created": "Møte opprettet",
    "meeting.moved": "Møte flyttet",
    "meeting.updated": "Møte endret",
    "meeting.confirmed": "Møte bekreftet",
    "meeting.cancelled": "Møte avlyst",
    "meeting.held": "Møte markert som holdt",
    "meeting.answered": "Svar registrert",
    "answer.link_used": "Svar via lenke",
    "disclosure.allowed": "Deling tillatt",
    "disclosure.denied": "Deling stoppet",
    "notification.sent": "Melding sendt",
    "notification.suppressed": "Melding stoppet",
    "notification.retry": "Melding forsøkes igjen",
    "notification.dead": "Melding ga opp",
    "feed.created": "Kalenderabonnement opprettet",
    "feed.revoked": "Kalenderabonnement trukket tilbake",
    "feed.served": "Kalender levert",
    "alert.raised": "Varsel",
    "alert.resolved": "Varsel løst",
}

READ_WHAT = {
    "case": "saken", "contacts": "kontaktene", "consents": "samtykkene", "audit": "loggen", "plan": "planen",
    "meetings": "møtene", "outbox": "utsendingene", "page.samtykke": "siden Samtykke",
    "page.moter": "siden Møteplan", "page.kalendere": "siden Kalendere", "page.utsendinger": "siden Utsendinger",
    "page.logg": "siden Logg og innsyn",
}


def audit_action(action: str) -> str:
    if action.startswith("read."):
        what = action.removeprefix("read.")
        return f"Lest: {READ_WHAT.get(what, what)}"
    return AUDIT_ACTIONS.get(action, action)


#: Where an alert is resolved, relative to its case's page.
ALERT_TARGET = {
    "consent_expiring": "samtykke",
    "child_turning_15": "samtykke",
    "consent_withdrawn": "samtykke",
    "no_feasible_slot": "moter",
    "evaluation_overdue": "moter",
    "ordered_measure_ending": "",
    "notification_failed": "utsendinger",
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
