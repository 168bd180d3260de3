"""Input at the edges, on SQLite and PostgreSQL (issue 12, hole 3).

Hole 3: every string the API takes fits the column it is stored in, so a value one character
too long is a 400 naming the field, never a database error; and a database error, whatever
it says, never puts personal data in the log or in the answer.
"""

from __future__ import annotations

import logging
import math
import re
from datetime import date
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel

from coordination import cases, schemas
from coordination.context import ServiceContext
from coordination.models import Case, ConsentRecord, Contact, FeedToken, Meeting, MeetingParticipant, Plan, Unit, User
from coordination.schemas import CaseIn, ContactIn

Client = AsyncTestClient[Litestar]


def column_length(table: type[SQLModel], field: str) -> int:
    """The column's own size, read from the table (not from a constant the schema may share)."""
    length = getattr(table.__table__.c[field].type, "length", None)  # type: ignore[attr-defined]
    assert isinstance(length, int), f"{table.__name__}.{field} has no length"
    return length


#: (what, field, table): each string field whose schema once allowed more than its column held.
FITTED = [
    ("case", "child_given_name", Case),
    ("case patch", "child_given_name", Case),
    ("contact", "role_label", Contact),
    ("contact", "interpreter_language", Contact),
    ("contact patch", "role_label", Contact),
    ("contact patch", "interpreter_language", Contact),
]


async def _send(client: Client, people: Any, team: Any, what: str, field: str, value: str) -> Any:
    headers = people.coordinator.headers
    if what == "case":
        return await client.post("/cases", headers=headers, json={
            "reference": "BV-LANG", "child_given_name": "Ola", "child_initials": "O.N.",
            "child_birth_date": "2015-01-01", field: value})
    if what == "case patch":
        return await client.patch(f"/cases/{team.case_id}", headers=headers, json={field: value})
    body: dict[str, Any] = {field: value}
    if field == "interpreter_language":
        body["needs_interpreter"] = True
    if what == "contact":
        return await client.post(f"/cases/{team.case_id}/contacts", headers=headers,
                                 json={"name": "Ny Kontakt", "role": "other", **body})
    return await client.patch(f"/cases/{team.case_id}/contacts/{team.nurse}", headers=headers, json=body)


async def _stored(client: Client, people: Any, team: Any) -> str:
    """Everything a too-long value could have been written to: the cases and this case's contacts."""
    headers = people.coordinator.headers
    listed = await client.get("/cases", headers=headers)
    contacts = await client.get(f"/cases/{team.case_id}/contacts", headers=headers)
    return listed.text + contacts.text


@pytest.mark.parametrize(("what", "field", "table"), FITTED, ids=[f"{w}.{f}" for w, f, _ in FITTED])
async def test_a_string_one_longer_than_its_column_is_a_400_naming_the_field(
    client: Client, people: Any, team: Any, what: str, field: str, table: type[SQLModel]
) -> None:
    length = column_length(table, field)
    before = await _stored(client, people, team)
    # "Å" is two bytes in UTF-8: the limits count characters, as PostgreSQL's varchar does.
    too_long = await _send(client, people, team, what, field, "Å" * (length + 1))
    assert too_long.status_code == 400, too_long.text[:300]
    assert too_long.json()["field"] == field, too_long.text[:300]
    assert await _stored(client, people, team) == before, "a refused value was written"
    fits = await _send(client, people, team, what, field, "Å" * length)
    assert fits.status_code == (201 if what in ("case", "contact") else 200), fits.text[:300]
    assert fits.json()[field] == "Å" * length


#: Where each request body is stored: a table (its fields are columns of the same name, unless
#: renamed here), or None when the whole body is kept in a JSON column or not at all.
STORED_IN: dict[type[msgspec.Struct], tuple[type[SQLModel], dict[str, str]] | None] = {
    schemas.CaseIn: (Case, {}),
    schemas.CasePatch: (Case, {}),
    schemas.ContactIn: (Contact, {}),
    schemas.ContactPatch: (Contact, {}),
    schemas.ConsentIn: (ConsentRecord, {}),
    schemas.UserIn: (User, {}),
    schemas.PlanIn: (Plan, {}),
    schemas.MeetingIn: (Meeting, {}),
    schemas.MeetingPatch: (Meeting, {}),
    schemas.AnswerIn: (MeetingParticipant, {"answer": "partstat"}),
    schemas.CaseFeedIn: (FeedToken, {}),
    schemas.MyFeedIn: (FeedToken, {}),
    schemas.UnitPatch: (Unit, {}),
    schemas.SlotSearchIn: None,  # a question, not stored
    schemas.WeeklyWindow: None,  # the rest are parts of bodies kept in JSON columns
    schemas.MeasureIn: None,
    schemas.ChildWishesIn: None,
    schemas.ClosureIn: None,
    schemas.RulesIn: None,
}


def _longest(info: mi.Type) -> float | None:
    """The longest string ``info`` lets through (inf: no limit); None when it takes no string."""
    if isinstance(info, mi.UnionType):
        found = [n for n in (_longest(t) for t in info.types) if n is not None]
        return max(found) if found else None
    if isinstance(info, mi.StrType):
        if info.max_length is not None:
            return info.max_length
        choices = re.fullmatch(r"\^\(([\w|]+)\)\$", info.pattern or "")
        return max(len(c) for c in choices.group(1).split("|")) if choices else math.inf
    if isinstance(info, mi.EnumType):
        return max(len(str(member.value)) for member in info.cls)
    return None


def test_every_string_a_request_body_takes_fits_its_column() -> None:
    """Structural twin of the test above, over every input body: a new field or a narrower
    column that would let the database refuse a value fails here first."""
    bodies = [v for v in vars(schemas).values() if isinstance(v, type) and issubclass(v, msgspec.Struct)
              and v.__struct_config__.forbid_unknown_fields]
    assert set(bodies) == set(STORED_IN), "say where each request body is stored"
    problems = []
    for body, stored in STORED_IN.items():
        if stored is None:
            continue
        table, renamed = stored
        info = mi.type_info(body)
        assert isinstance(info, mi.StructType)
        for part in info.fields:
            longest = _longest(part.type)
            if longest is None:
                continue
            column = table.__table__.c.get(renamed.get(part.name, part.name))  # type: ignore[attr-defined]
            if column is None:
                problems.append(f"{body.__name__}.{part.name}: no column {table.__name__}.{part.name}")
                continue
            length = getattr(column.type, "length", None)
            if length is not None and longest > length:
                problems.append(f"{body.__name__}.{part.name}: up to {longest} characters, "
                                f"{table.__name__}.{column.name} holds {length}")
    assert not problems, "\n".join(problems)


# --- a database error -------------------------------------------------------------------

#: A contact as a coordinator would type it; none of it may reach a log or an error answer.
PERSON = {"name": "Mona Testesen", "role": "parent", "role_label": "mor til barnet", "email": "mona.t@example.org",
          "phone": "+47 912 34 567", "organisation": "Hjemme AS"}
SECRETS = ("Mona", "Testesen", "mor til barnet", "mona.t@example.org", "912 34 567", "Hjemme AS")
#: The answers a database error may give: the same words whatever went wrong, and no values.
PLAIN = ({"status_code": 500, "detail": "internal error"},
         {"status_code": 409, "detail": "the change conflicts with data that already exists; reload and try again"})


async def _refuse_contacts(service: ServiceContext, database_url: str, *, echo_row: bool) -> None:
    """A trigger that makes the database itself refuse every new contact. On PostgreSQL it fails
    as a too-long value does (SQLSTATE 22001), and with ``echo_row`` its message carries the whole
    row, as PostgreSQL's own DETAIL lines do ("Failing row contains ...", "Key (...)=(...)")."""
    if database_url.startswith("sqlite"):
        statements = ["CREATE TRIGGER refuse_contact BEFORE INSERT ON contact "
                      "BEGIN SELECT RAISE(ABORT, 'refused'); END"]
    else:
        message = "'refused %', NEW" if echo_row else "'refused'"
        statements = [
            "CREATE OR REPLACE FUNCTION refuse_contact() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION {message} USING ERRCODE = '22001'; END $$",
            "CREATE TRIGGER refuse_contact BEFORE INSERT ON contact FOR EACH ROW EXECUTE FUNCTION refuse_contact()",
        ]
    async with service.engine.begin() as connection:
        for statement in statements:
            await connection.execute(text(statement))


async def _allow_contacts(service: ServiceContext, database_url: str) -> None:
    """The PostgreSQL database outlives the test (it is emptied, not dropped): take the trigger away."""
    statements = ["DROP TRIGGER IF EXISTS refuse_contact" if database_url.startswith("sqlite")
                  else "DROP TRIGGER IF EXISTS refuse_contact ON contact"]
    if not database_url.startswith("sqlite"):
        statements.append("DROP FUNCTION IF EXISTS refuse_contact()")
    async with service.engine.begin() as connection:
        for statement in statements:
            await connection.execute(text(statement))


async def test_a_database_error_carries_none_of_the_values_it_was_given(
    people: Any, team: Any, service: ServiceContext, database_url: str
) -> None:
    """Called directly, past the schema: the error the database raises (the one a handler or a
    log would print) names no value. PostgreSQL refuses a too-long name as it did before the
    schema and the columns agreed; both databases refuse a contact by a trigger."""
    async with service.transaction() as session:
        user = await session.get(User, people.coordinator.id)
    assert user is not None
    errors: list[str] = []
    if not database_url.startswith("sqlite"):
        child = CaseIn(reference="BV-LONG", child_given_name="Sigrid" + "Å" * 200, child_initials="S.",
                       child_birth_date=date(2013, 5, 17))
        with pytest.raises(DBAPIError) as too_long:
            async with service.transaction() as session:
                await cases.create_case(session, user, child, service.now())
        errors.append(str(too_long.value))
    await _refuse_contacts(service, database_url, echo_row=False)
    try:
        with pytest.raises(DBAPIError) as refused:
            async with service.transaction() as session:
                await cases.add_contact(session, user, team.case_id, msgspec.convert(PERSON, ContactIn),
                                       service.now())
        errors.append(str(refused.value))
    finally:
        await _allow_contacts(service, database_url)
    for error in errors:
        assert "hidden" in error, error
        assert not [s for s in (*SECRETS, "Sigrid", "2013-05-17", "2013, 5, 17") if s in error], error


async def test_a_database_error_in_a_request_answers_plainly_and_logs_no_personal_data(
    client: Client, people: Any, team: Any, service: ServiceContext, database_url: str,
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
) -> None:
    """The worst case: the database's own message holds the row. The answer is the plain one,
    and the log (every logger, SQLAlchemy's statement log switched on too) holds ids only."""
    await _refuse_contacts(service, database_url, echo_row=True)
    capfd.readouterr()
    try:
        with caplog.at_level(logging.DEBUG), caplog.at_level(logging.INFO, logger="sqlalchemy.engine"):
            response = await client.post(f"/cases/{team.case_id}/contacts", json=PERSON,
                                         headers=people.coordinator.headers)
    finally:
        await _allow_contacts(service, database_url)
    assert response.json() in PLAIN, response.text
    if not database_url.startswith("sqlite"):
        assert response.status_code == 500
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    out, err = capfd.readouterr()
    for where, text_ in (("the log", logged), ("stdout", out), ("stderr", err)):
        assert not [s for s in SECRETS if s in text_], f"{where}:\n{text_}"
    if not database_url.startswith("sqlite"):
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors, "the error is logged"
        assert f"case_id={team.case_id}" in errors[0].getMessage(), errors[0].getMessage()
    contacts = await client.get(f"/cases/{team.case_id}/contacts", headers=people.coordinator.headers)
    assert "Testesen" not in contacts.text


async def test_an_unexpected_error_answers_plainly_and_logs_no_message(
    client: Client, people: Any, team: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not only the database's: no error's text reaches the log or the answer, whatever it holds."""
    async def broken(*_: Any) -> None:
        raise ValueError("Mona Testesen, mona.t@example.org")

    monkeypatch.setattr(cases, "add_contact", broken)
    with caplog.at_level(logging.DEBUG):
        response = await client.post(f"/cases/{team.case_id}/contacts", json=PERSON, headers=people.coordinator.headers)
    assert (response.status_code, response.json()) == (500, PLAIN[0]), response.text
    assert not [s for s in SECRETS if s in caplog.text], caplog.text
    assert f"internal error: POST /cases/{{case_id}}/contacts (case_id={team.case_id}): ValueError" in caplog.text

