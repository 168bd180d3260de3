"""The new-case form and a case's coordinators: the choices, and the form as the API's ``CaseIn``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from litestar.datastructures import FormMultiDict
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination.domain import Language, MeasureType, UserRole
from coordination.models import CHILD_NAME_LENGTH, INITIALS_LENGTH, REFERENCE_LENGTH, User
from coordination.schemas import MAX_ID, CaseIn
from coordination.web import texts as t
from coordination.web.views.common import Choice, parse_day
from coordination.web.views.form_input import convert, require, text, top_field

LANGUAGES = (Choice(Language.NB, "Bokmål"), Choice(Language.NN, "Nynorsk"), Choice(Language.EN, "Engelsk"))
#: Party status: by the child's age (15), or decided by the coordinator either way.
PARTY_STATUS = (Choice("", "Følger alderen (partsstatus fra 15 år)"), Choice("ja", "Har partsstatus"),
                Choice("nei", "Har ikke partsstatus"))
CASE_TEXT_FIELDS = ("reference", "child_given_name", "child_initials", "child_birth_date", "language",
                    "aimed_at_child", "measure_type", "order_date", "party_status_override")

#: What msgspec's refusal of a field means, for the form (the rules behind it are the API's).
CASE_WORDS = {
    "reference": f"Skriv saksnummeret med bokstaver, tall og . _ / - uten mellomrom, høyst {REFERENCE_LENGTH} tegn.",
    "child_given_name": f"Skriv barnets fornavn på én linje, høyst {CHILD_NAME_LENGTH} tegn.",
    "child_initials": f"Skriv barnets initialer med bokstaver og punktum, for eksempel S.H., høyst "
                      f"{INITIALS_LENGTH} tegn.",
    "language": "Velg bokmål, nynorsk eller engelsk.",
    "measure_type": "Velg om tiltaket er frivillig eller pålagt.",
    "coordinator_ids": "Velg koordinatorer fra listen.",
}


@dataclass
class CaseForm:
    """The new-case form as typed: strings for the fields, the ids of the chosen coordinators."""

    values: dict[str, str]
    coordinator_ids: list[str] = field(default_factory=list)

    @classmethod
    def blank(cls) -> CaseForm:
        values = dict.fromkeys(CASE_TEXT_FIELDS, "")
        values.update(language=Language.NB, aimed_at_child="ja", measure_type=MeasureType.VOLUNTARY)
        return cls(values)

    @classmethod
    def of(cls, data: FormMultiDict) -> CaseForm:
        return cls({name: text(data, name) for name in CASE_TEXT_FIELDS},
                   [str(v) for v in data.getall("coordinator_ids", [])])

    def case_in(self) -> CaseIn:
        """The API's body; a missing or malformed field is named before the service sees it."""
        v = self.values
        require(v["reference"], "reference", "Fyll inn saksnummeret.")
        require(v["child_given_name"], "child_given_name", "Fyll inn barnets fornavn.")
        require(v["child_initials"], "child_initials", "Fyll inn barnets initialer.")
        birth = parse_day(require(v["child_birth_date"], "child_birth_date", "Fyll inn barnets fødselsdato."),
                          "child_birth_date")
        if v["aimed_at_child"] not in ("ja", "nei"):
            raise t.FormError("aimed_at_child", "Velg om tiltakene er rettet mot barnet.")
        body = {
            "reference": v["reference"],
            "child_given_name": v["child_given_name"],
            "child_initials": v["child_initials"],
            "child_birth_date": birth,
            "language": v["language"],
            "aimed_at_child": v["aimed_at_child"] == "ja",
            "measure_type": v["measure_type"],
            "order_date": parse_day(v["order_date"], "order_date") if v["order_date"] else None,
            "party_status_override": {"ja": True, "nei": False}.get(v["party_status_override"]),
            "coordinator_ids": coordinator_ids(self.coordinator_ids),
        }
        return convert(body, CaseIn, CASE_WORDS)


def coordinator_ids(chosen: Sequence[str]) -> list[int]:
    """The checked coordinators' ids (a tampered value is refused as the API refuses it)."""
    if not all(value.isdigit() and 0 < int(value) <= MAX_ID for value in chosen):
        raise t.FormError("coordinator_ids", CASE_WORDS["coordinator_ids"])
    return [int(value) for value in chosen]


def case_field_id(path: str, choices: Sequence[Choice]) -> str:
    """The element an error points at: the first radio or checkbox of a group."""
    top = top_field(path)
    first = f"coordinator-{choices[0].value}" if choices else ""
    return {"aimed_at_child": "aimed_at_child-ja", "measure_type": "measure_type-voluntary",
            "coordinator_ids": first}.get(top, top)


async def coordinator_choices(session: AsyncSession, viewer: User, *, keep: Sequence[int] = (),
                              leave_out_self: bool = False) -> list[Choice]:
    """The unit's active coordinators by name (and any in ``keep``, active or not, so that a case's
    current coordinators stay shown)."""
    rows = await session.exec(select(User).where(User.unit_id == viewer.unit_id,
                                                 User.role == UserRole.COORDINATOR).order_by(col(User.name)))
    return [Choice(str(u.id), u.name + ("" if u.active else " (deaktivert)")) for u in rows.all()
            if (u.active or u.id in keep) and not (leave_out_self and u.id == viewer.id)]
