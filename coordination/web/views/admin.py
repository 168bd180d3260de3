"""The admin's pages: the unit's users and its settings, as the API's ``UserIn`` and ``UnitPatch``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from litestar.datastructures import FormMultiDict

from coordination.domain import UserRole
from coordination.models import EMAIL_LENGTH, NAME_LENGTH
from coordination.schemas import ClosureIn, UnitOut, UnitPatch, UserIn, UserOut
from coordination.web.views.common import Choice, parse_day
from coordination.web.views.form_input import checked, convert, require, row_field, text

ROLE_WORDS = {UserRole.COORDINATOR: "Koordinator", UserRole.LEADER: "Leder", UserRole.ADMIN: "Administrator"}
ROLES = [Choice(role, ROLE_WORDS[role]) for role in UserRole]
USER_WORDS = {
    "name": f"Skriv navnet på én linje, høyst {NAME_LENGTH} tegn.",
    "email": f"Skriv en gyldig e-postadresse, for eksempel navn@kommune.no (høyst {EMAIL_LENGTH} tegn).",
    "role": "Velg koordinator, leder eller administrator.",
}
UNIT_WORDS = {
    "phone": "Skriv telefonnummeret med sifre, gjerne med +47 foran, for eksempel +47 22 00 00 00.",
    "closures": "Skriv dagene som åååå-mm-dd og merknaden på én linje, høyst 200 tegn (høyst 50 stengte perioder).",
}
SPARE_ROWS = 3


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    name: str
    role: str
    email: str
    active: bool


def user_rows(users: list[UserOut]) -> list[UserRow]:
    """Active users first, each group by name."""
    ordered = sorted(users, key=lambda u: (not u.active, u.name.casefold()))
    return [UserRow(u.id, u.name, ROLE_WORDS[u.role], u.email, u.active) for u in ordered]


@dataclass
class UserForm:
    values: dict[str, str] = field(default_factory=lambda: {"name": "", "email": "", "role": UserRole.COORDINATOR})

    @classmethod
    def of(cls, data: FormMultiDict) -> UserForm:
        return cls({name: text(data, name) for name in ("name", "email", "role")})

    def user_in(self) -> UserIn:
        """The API's new user; the e-mail is required here, as sign-in finds the person by it."""
        require(self.values["name"], "name", "Fyll inn navnet.")
        require(self.values["email"], "email",
                "Fyll inn e-postadressen. Den brukes til å kjenne igjen personen ved innlogging.")
        return convert(self.values, UserIn, USER_WORDS)


@dataclass(frozen=True, slots=True)
class ClosureRow:
    first: str = ""
    last: str = ""
    label: str = ""

    @property
    def blank(self) -> bool:
        return not (self.first or self.last or self.label)


@dataclass
class UnitForm:
    """The unit's settings as typed: the phone in mail, the child's name in feeds, the closures."""

    phone: str
    show_child_name: bool
    rows: list[ClosureRow]
    used_rows: list[int] = field(default_factory=list)

    @classmethod
    def of_unit(cls, unit: UnitOut) -> UnitForm:
        return cls(unit.phone, unit.show_child_name_in_feeds,
                   [ClosureRow(c.first.isoformat(), c.last.isoformat(), c.label) for c in unit.closures])

    @classmethod
    def of(cls, data: FormMultiDict) -> UnitForm:
        count = min(int(text(data, "rows")) if text(data, "rows").isdigit() else 0, 60)
        return cls(text(data, "phone"), checked(data, "show_child_name_in_feeds"),
                   [ClosureRow(text(data, f"closures-{i}-first"), text(data, f"closures-{i}-last"),
                               text(data, f"closures-{i}-label")) for i in range(count)])

    def shown_rows(self) -> list[ClosureRow]:
        kept = list(self.rows)
        while kept and kept[-1].blank:
            kept.pop()
        return kept + [ClosureRow()] * SPARE_ROWS

    def _closures(self) -> list[dict[str, Any]]:
        closures: list[dict[str, Any]] = []
        self.used_rows = []
        for index, row in enumerate(self.rows):
            if row.blank:
                continue
            prefix = f"closures-{index}"
            first = parse_day(require(row.first, f"{prefix}-first", "Skriv første dag som åååå-mm-dd."),
                              f"{prefix}-first")
            last = parse_day(row.last, f"{prefix}-last") if row.last else first
            closures.append({"first": first, "last": last, "label": row.label})
            self.used_rows.append(index)
        return closures

    def patch(self, current: UnitOut) -> UnitPatch:
        """What differs from the unit's settings now, checked by msgspec as the API's body is."""
        body = {"phone": self.phone, "show_child_name_in_feeds": self.show_child_name, "closures": self._closures()}
        full = convert(body, UnitPatch, UNIT_WORDS)
        closures: list[ClosureIn] = full.closures if isinstance(full.closures, list) else []
        changed: dict[str, Any] = {}
        if full.phone != current.phone:
            changed["phone"] = full.phone
        if full.show_child_name_in_feeds != current.show_child_name_in_feeds:
            changed["show_child_name_in_feeds"] = full.show_child_name_in_feeds
        if closures != current.closures:
            changed["closures"] = closures
        return UnitPatch(**changed)

    def field_id(self, path: str) -> str:
        return row_field(path, self.used_rows, "first")
