"""The contact list and its form: every field the API has, turned into ``ContactIn`` or a
``ContactPatch`` of what changed, so that msgspec and ``cases.contacts`` check it as they check the API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from babel.dates import get_day_names
from litestar.datastructures import FormMultiDict

from coordination.consent.texts import ROLE_NAMES
from coordination.domain import DEFAULT_SECTOR, Language, NotifyBy, Role, Sector
from coordination.models import (
    EMAIL_LENGTH,
    INTERPRETER_LANGUAGE_LENGTH,
    NAME_LENGTH,
    ORGANISATION_LENGTH,
    ROLE_LABEL_LENGTH,
)
from coordination.schemas import ContactIn, ContactOut, ContactPatch
from coordination.web import texts as t
from coordination.web.views.case_setup import LANGUAGES
from coordination.web.views.common import NB, Choice, parse_clock
from coordination.web.views.form_input import checked, convert, require, row_field, text

TEXT_FIELDS = ("name", "role", "role_label", "sector", "organisation", "email", "phone", "notify_by", "language",
               "interpreter_language")
FLAGS = ("daily_care", "needs_interpreter")
#: The fields a change compares, in the API's names.
COMPARED = ("name", "role", "role_label", "sector", "organisation", "email", "phone", "language", "daily_care",
            "needs_interpreter", "interpreter_language", "availability")
#: Blank rows offered for more weekly times, and the fewest rows the form shows.
SPARE_ROWS = 2
MIN_ROWS = 5

#: Each role with the sector it belongs to unless another is chosen.
ROLES = [Choice(role, f"{ROLE_NAMES[NB][role].capitalize()} – {t.sector_name(DEFAULT_SECTOR[role]).lower()}")
         for role in Role]
SECTORS = [Choice("", "Som rollen tilsier"), *(Choice(s, t.sector_name(s)) for s in Sector)]
WEEKDAYS = [Choice(str(day), name) for day, name in get_day_names("wide", locale=NB.value).items()]
CONTACT_LANGUAGES = LANGUAGES
#: How the person wants to be told; "standard" leaves it to the service (``notify_by_for``).
NOTIFY_DEFAULT = "standard"
NOTIFY_CHOICES = [
    Choice(NOTIFY_DEFAULT, "Som standard: e-post og SMS for familien når telefonen er et mobilnummer, ellers e-post"),
    Choice(NotifyBy.EMAIL, "E-post"), Choice(NotifyBy.SMS, "SMS"), Choice(NotifyBy.BOTH, "Begge"),
]

CONTACT_WORDS = {
    "name": f"Skriv navnet på én linje, høyst {NAME_LENGTH} tegn.",
    "role": "Velg en rolle fra listen.",
    "role_label": f"Skriv rollen med egne ord på én linje, høyst {ROLE_LABEL_LENGTH} tegn.",
    "sector": "Velg en sektor fra listen.",
    "organisation": f"Skriv organisasjonen på én linje, høyst {ORGANISATION_LENGTH} tegn.",
    "email": f"Skriv en gyldig e-postadresse, for eksempel navn@example.no (høyst {EMAIL_LENGTH} tegn).",
    "phone": "Skriv telefonnummeret med sifre, gjerne med +47 foran, for eksempel +47 400 00 000.",
    "notify_by": "Velg e-post, SMS eller begge.",
    "language": "Velg bokmål, nynorsk eller engelsk.",
    "interpreter_language": f"Skriv språket på én linje, høyst {INTERPRETER_LANGUAGE_LENGTH} tegn.",
    "availability": "Velg ukedag og skriv klokkeslettene som tt:mm, for eksempel 08:00 og 16:00.",
}


@dataclass(frozen=True, slots=True)
class WindowRow:
    """One row of weekly times as typed: weekday (0 = Monday), from, to."""

    weekday: str = ""
    start: str = ""
    end: str = ""

    @property
    def blank(self) -> bool:
        return not (self.weekday or self.start or self.end)


@dataclass
class ContactForm:
    values: dict[str, str]
    rows: list[WindowRow] = field(default_factory=list)
    #: For each weekly window sent to the API, the form row it came from (to mark the right row).
    used_rows: list[int] = field(default_factory=list)

    @classmethod
    def blank(cls) -> ContactForm:
        values = dict.fromkeys((*TEXT_FIELDS, *FLAGS), "")
        values.update(role=Role.PARENT, language=Language.NB, notify_by=NOTIFY_DEFAULT)
        return cls(values)

    @classmethod
    def of_contact(cls, contact: ContactOut) -> ContactForm:
        values: dict[str, str] = {name: str(getattr(contact, name)) for name in TEXT_FIELDS}
        values.update({name: "ja" if getattr(contact, name) else "" for name in FLAGS})
        if contact.sector == DEFAULT_SECTOR[contact.role]:
            values["sector"] = ""
        return cls(values, [WindowRow(str(w.weekday), w.start, w.end) for w in contact.availability])

    @classmethod
    def of(cls, data: FormMultiDict) -> ContactForm:
        values = {name: text(data, name) for name in TEXT_FIELDS}
        values.update({name: "ja" if checked(data, name) else "" for name in FLAGS})
        values["notify_by"] = values["notify_by"] or NOTIFY_DEFAULT
        count = min(int(text(data, "rows")) if text(data, "rows").isdigit() else 0, 60)
        rows = [WindowRow(text(data, f"availability-{i}-weekday"), text(data, f"availability-{i}-start"),
                          text(data, f"availability-{i}-end")) for i in range(count)]
        return cls(values, rows)

    def shown_rows(self) -> list[WindowRow]:
        """The typed rows, and blank ones to add more."""
        kept = list(self.rows)
        while kept and kept[-1].blank:
            kept.pop()
        return kept + [WindowRow()] * max(SPARE_ROWS, MIN_ROWS - len(kept))

    def _windows(self) -> list[dict[str, object]]:
        windows: list[dict[str, object]] = []
        self.used_rows = []
        for index, row in enumerate(self.rows):
            if row.blank:
                continue
            prefix = f"availability-{index}"
            if not row.weekday:
                raise t.FormError(f"{prefix}-weekday", "Velg ukedag for tidsrommet, eller tøm raden.")
            start = _clock(require(row.start, f"{prefix}-start", "Skriv når tidsrommet begynner (tt:mm)."),
                           f"{prefix}-start")
            end = _clock(require(row.end, f"{prefix}-end", "Skriv når tidsrommet slutter (tt:mm)."), f"{prefix}-end")
            windows.append({"weekday": int(row.weekday) if row.weekday.isdigit() else -1, "start": start,
                            "end": end})
            self.used_rows.append(index)
        return windows

    def contact_in(self) -> ContactIn:
        """The whole form as the API's new contact (sector left to the role unless chosen)."""
        v = self.values
        require(v["name"], "name", "Fyll inn navnet.")
        body: dict[str, Any] = {name: v[name] for name in TEXT_FIELDS}
        body.update({name: v[name] == "ja" for name in FLAGS})
        body["sector"] = v["sector"] or None
        body["notify_by"] = None if v["notify_by"] == NOTIFY_DEFAULT else v["notify_by"]
        body["availability"] = self._windows()
        return convert(body, ContactIn, CONTACT_WORDS)

    def patch(self, current: ContactOut) -> ContactPatch:
        """What differs from ``current``, checked as a whole first (as a new contact would be)."""
        full = self.contact_in()
        wanted: dict[str, Any] = {name: getattr(full, name) for name in COMPARED}
        wanted["sector"] = full.sector or DEFAULT_SECTOR[full.role]
        changed = {name: value for name, value in wanted.items() if value != getattr(current, name)}
        # "As standard" keeps the stored choice; a choice shown beside a new number is checked against it.
        if full.notify_by is not None and (full.notify_by != current.notify_by or "phone" in changed):
            changed["notify_by"] = full.notify_by
        return ContactPatch(**changed)

    def field_id(self, path: str) -> str:
        if path == "notify_by":  # a radio group: its first choice carries the error
            return f"notify_by-{NOTIFY_DEFAULT}"
        return row_field(path, self.used_rows, "start")


def _clock(value: str, name: str) -> str:
    """"8:00" as "08:00"; "24:00" is the end of the day, as the API allows."""
    if value == "24:00":
        return value
    at = parse_clock(value, name)
    return f"{at.hour:02d}:{at.minute:02d}"


@dataclass(frozen=True, slots=True)
class ContactListRow:
    id: int
    name: str
    role: str
    sector: str
    reach: str
    availability: str
    notes: list[str]
    active: bool


def contact_rows(contacts: list[ContactOut]) -> list[ContactListRow]:
    """The list in the order the contacts were added; active ones first."""
    rows = []
    for c in sorted(contacts, key=lambda c: (not c.active, c.id)):
        notes = ["Daglig omsorg"] if c.daily_care else []
        if c.needs_interpreter:
            notes.append(f"Tolk: {c.interpreter_language}")
        if c.language != Language.NB:
            notes.append(f"Språk: {dict((x.value, x.text) for x in LANGUAGES)[c.language]}")
        reach = " · ".join(part for part in (c.email, c.phone) if part)
        rows.append(ContactListRow(c.id, c.name, t.role_name(c.role, c.role_label)
                                   + (f", {c.organisation}" if c.organisation else ""),
                                   t.sector_name(c.sector), reach or "Ingen e-post eller telefon",
                                   t.availability(c.availability), notes, c.active))
    return rows
