"""Input at the edges, on SQLite and PostgreSQL (issue 12, holes 3 and 6).

Hole 3: every string the API takes fits the column it is stored in, so a value one character
too long is a 400 naming the field, never a database error; and a database error, whatever
it says, never puts personal data in the log or in the answer.

Hole 6 (rule 11): an id the user may not see — another unit's, in a case they are not
assigned to, of another case than the one in the address — answers exactly as an id that
does not exist, in every operation of the API and the pages that takes an id.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
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

from coordination import schemas
from coordination.cases import contacts as contact_service
from coordination.cases import service as case_service
from coordination.context import ServiceContext
from coordination.models import Case, ConsentRecord, Contact, FeedToken, Meeting, MeetingParticipant, Plan, Unit, User
from coordination.outbox import alerts
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
    schemas.GoalIn: None,
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
                await case_service.create_case(session, user, child, service.now())
        errors.append(str(too_long.value))
    await _refuse_contacts(service, database_url, echo_row=False)
    try:
        with pytest.raises(DBAPIError) as refused:
            async with service.transaction() as session:
                await contact_service.add_contact(session, user, team.case_id, msgspec.convert(PERSON, ContactIn),
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

    monkeypatch.setattr(contact_service, "add_contact", broken)
    with caplog.at_level(logging.DEBUG):
        response = await client.post(f"/cases/{team.case_id}/contacts", json=PERSON, headers=people.coordinator.headers)
    assert (response.status_code, response.json()) == (500, PLAIN[0]), response.text
    assert not [s for s in SECRETS if s in caplog.text], caplog.text
    assert f"internal error: POST /cases/{{case_id}}/contacts (case_id={team.case_id}): ValueError" in caplog.text


# --- ids another user may not see ---------------------------------------------------------

#: An id no table holds.
MISSING = 987_654


@dataclass
class World:
    """Case A (the coordinator's, in the address), with a meeting; for each kind of id the
    ones the coordinator may not reach there: in case B (also theirs: another case), in case D
    (their unit, not assigned to them) and in case C (another unit)."""

    a: dict[str, int]
    hidden: dict[str, dict[str, int]] = field(default_factory=dict)


async def _world(client: Client, people: Any, team: Any, service: ServiceContext) -> World:
    async def case_with_things(who: Any, reference: str, knut_feed: bool = False) -> dict[str, int]:
        case = await client.post("/cases", headers=who.headers, json={
            "reference": reference, "child_given_name": "Per", "child_initials": "P.",
            "child_birth_date": "2014-02-02"})
        assert case.status_code == 201, case.text
        case_id = case.json()["id"]
        contact = await client.post(f"/cases/{case_id}/contacts", headers=who.headers,
                                    json={"name": "Kari Mor", "role": "parent", "daily_care": True})
        meeting = await client.post(f"/cases/{case_id}/meetings", headers=who.headers, json={
            "start": "2027-01-12T09:00:00+01:00", "end": "2027-01-12T10:00:00+01:00",
            "participant_ids": [contact.json()["id"]], "confirm": False})
        feed = await client.post(f"/cases/{case_id}/feeds", headers=who.headers, json={"scope": "case"})
        assert meeting.status_code == feed.status_code == 201, meeting.text + feed.text
        async with service.transaction() as session:
            found = await session.get(Case, case_id)
            assert found is not None
            alert = await alerts.raise_alert(session, found, "other", f"case:{case_id}:probe", service.now())
            assert alert is not None and alert.id is not None
        return {"case": case_id, "contact": contact.json()["id"], "meeting": meeting.json()["id"],
                "feed": feed.json()["id"], "alert": alert.id}

    meeting = await client.post(f"/cases/{team.case_id}/meetings", headers=people.coordinator.headers, json={
        "start": "2027-01-11T09:00:00+01:00", "end": "2027-01-11T10:00:00+01:00",
        "participant_ids": [team.mother, team.teacher], "confirm": False})
    assert meeting.status_code == 201, meeting.text
    world = World(a={"case": team.case_id, "contact": team.mother, "meeting": meeting.json()["id"]})
    b = await case_with_things(people.coordinator, "BV-B")
    d = await case_with_things(people.other_coordinator, "BV-D")
    c = await case_with_things(people.stranger, "BV-C")
    own = await client.post("/users/me/feeds", headers=people.other_coordinator.headers, json={})
    assert own.status_code == 201, own.text
    world.hidden = {
        "case": {"another unit's": c["case"], "not assigned": d["case"]},
        "contact": {"another unit's": c["contact"], "not assigned": d["contact"], "another case's": b["contact"]},
        "meeting": {"another unit's": c["meeting"], "not assigned": d["meeting"], "another case's": b["meeting"]},
        "alert": {"another unit's": c["alert"], "not assigned": d["alert"]},
        "feed": {"another unit's": c["feed"], "not assigned": d["feed"], "another user's own": own.json()["id"]},
        "user": {"another unit's": people.stranger.id},
    }
    return world


Body = Callable[[World, int], Any]


@dataclass(frozen=True)
class Op:
    """One operation, asked with the probed id of kind ``kind`` in the address (``{kind}``) or,
    when ``body`` takes it, in the body or form. The other ids are case A's."""

    method: str
    path: str
    kind: str
    body: Body | None = None
    asker: str = "coordinator"
    page: bool = False

    @property
    def name(self) -> str:
        where = "" if "{" + self.kind + "}" in self.path else f" ({self.kind} id in the body)"
        return f"{self.method} {self.path}{where}"


def _meeting_body(_: World, contact: int) -> Any:
    return {"start": "2027-01-13T09:00:00+01:00", "end": "2027-01-13T10:00:00+01:00",
            "participant_ids": [contact], "confirm": False}


def _slots_body(_: World, contact: int) -> Any:
    return {"window_start": "2027-01-11T08:00:00+01:00", "window_end": "2027-01-15T16:00:00+01:00",
            "duration_minutes": 60, "participant_ids": [contact]}


def _consent_body(_: World, contact: int) -> Any:
    return {"grantor_contact_id": contact, "sector": "school", "status": "granted", "level": "purpose",
            "form": "written"}


def _plan_body(**extra: Any) -> Any:
    return {"start_date": "2027-01-04", "expected_end": "2027-06-30", **extra}


CASE_PATHS = ["", "/contacts", "/consents", "/information-loops", "/audit", "/plan", "/meetings", "/feeds",
              "/alerts", "/outbox", "/record", "/access-report"]
CASE_PAGES = ["/", "/samtykke", "/moter", "/kalendere", "/utsendinger", "/logg", "/journal",
              "/journal/journalutskrift.pdf", "/innsyn", "/innsyn/innsyn.pdf"]
MEETING_ACTIONS = ["confirm", "cancel", "held"]

OPERATIONS: list[Op] = [
    # the API: ids in the address
    *[Op("GET", "/cases/{case}" + path, "case") for path in CASE_PATHS],
    Op("PATCH", "/cases/{case}", "case", lambda w, _: {"child_given_name": "Endret"}),
    Op("PUT", "/cases/{case}/coordinators", "case", lambda w, _: [w.a["user"]]),
    Op("POST", "/cases/{case}/contacts", "case", lambda w, _: {"name": "Ny Person", "role": "parent"}),
    Op("POST", "/cases/{case}/consents", "case", lambda w, _: _consent_body(w, w.a["contact"])),
    Op("PUT", "/cases/{case}/plan", "case", lambda w, _: _plan_body()),
    Op("POST", "/cases/{case}/meetings", "case", lambda w, _: _meeting_body(w, w.a["contact"])),
    Op("POST", "/cases/{case}/slots", "case", lambda w, _: _slots_body(w, w.a["contact"])),
    Op("POST", "/cases/{case}/feeds", "case", lambda w, _: {"scope": "case"}),
    Op("POST", "/cases/{case}/close", "case"),
    Op("POST", "/cases/{case}/reopen", "case"),
    Op("PATCH", "/cases/{case}/contacts/{contact}", "contact", lambda w, _: {"name": "Endret Navn"}),
    Op("PUT", "/cases/{case}/meetings/{meeting}", "meeting", lambda w, _: {"place": "Et annet sted"}),
    *[Op("POST", "/cases/{case}/meetings/{meeting}/" + action, "meeting") for action in MEETING_ACTIONS],
    Op("PUT", "/cases/{case}/meetings/{meeting}/answers/{contact}", "meeting", lambda w, _: {"answer": "declined"}),
    Op("PUT", "/cases/{case}/meetings/{meeting}/answers/{contact}", "contact", lambda w, _: {"answer": "declined"}),
    Op("POST", "/alerts/{alert}/resolve", "alert"),
    Op("DELETE", "/feeds/{feed}", "feed"),
    Op("DELETE", "/users/{user}", "user", asker="admin"),
    # the API: ids in the body
    Op("POST", "/cases/{case}/consents", "contact", _consent_body),
    Op("POST", "/cases/{case}/meetings", "contact", _meeting_body),
    Op("PUT", "/cases/{case}/meetings/{meeting}", "contact", lambda w, c: {"participant_ids": [c]}),
    Op("POST", "/cases/{case}/slots", "contact", _slots_body),
    Op("PUT", "/cases/{case}/plan", "contact", lambda w, c: _plan_body(member_ids=[c])),
    Op("PUT", "/cases/{case}/plan", "contact",
       lambda w, c: _plan_body(measures=[{"what": "Miljøterapeut", "contact_ids": [c]}])),
    Op("POST", "/cases/{case}/feeds", "contact", lambda w, c: {"scope": "contact", "contact_id": c}),
    Op("POST", "/cases", "user", lambda w, u: {"reference": "BV-NY", "child_given_name": "Ola", "child_initials": "O.",
                                                "child_birth_date": "2015-01-01", "coordinator_ids": [u]}),
    Op("PUT", "/cases/{case}/coordinators", "user", lambda w, u: [u], asker="leader"),
    # the pages
    *[Op("GET", "/saker/{case}" + path, "case", page=True) for path in CASE_PAGES],
    Op("POST", "/saker/{case}/samtykke", "case", page=True,
       body=lambda w, _: {"grantor": str(w.a["contact"]), "sector": "school", "status": "granted",
                          "level": "purpose", "form": "written"}),
    Op("POST", "/saker/{case}/kalendere", "case", lambda w, _: {"scope": "case"}, page=True),
    Op("POST", "/saker/{case}/avslutt", "case", lambda w, _: {"bekreft": "ja"}, page=True),
    Op("POST", "/saker/{case}/gjenapne", "case", page=True),
    Op("GET", "/saker/{case}/moter/{meeting}", "meeting", page=True),
    Op("POST", "/saker/{case}/moter/{meeting}/flytt", "meeting", lambda w, _: {"dato": "2027-01-14", "tid": "10:00"},
       page=True),
    Op("POST", "/saker/{case}/moter/{meeting}/forslag", "meeting",
       lambda w, _: {"fra": "2027-01-11", "til": "2027-01-15"}, page=True),
    Op("POST", "/saker/{case}/moter/{meeting}/bekreft", "meeting", page=True),
    Op("POST", "/saker/{case}/moter/{meeting}/holdt", "meeting", page=True),
    Op("POST", "/saker/{case}/moter/{meeting}/avlys", "meeting", lambda w, _: {"bekreft": "ja"}, page=True),
    Op("POST", "/saker/{case}/moter/{meeting}/svar", "meeting",
       lambda w, _: {"kontakt": str(w.a["contact"]), "svar": "accepted"}, page=True),
    Op("POST", "/saker/{case}/moter/{meeting}/svar", "contact", lambda w, c: {"kontakt": str(c), "svar": "accepted"},
       page=True),
    Op("POST", "/saker/{case}/samtykke", "contact", page=True,
       body=lambda w, c: {"grantor": str(c), "sector": "school", "status": "granted", "level": "purpose",
                          "form": "written"}),
    Op("POST", "/saker/{case}/kalendere", "contact", lambda w, c: {"scope": "contact", "kontakt": str(c)}, page=True),
    Op("POST", "/saker/{case}/kalendere/{feed}/stopp", "feed", page=True),
    Op("POST", "/kalender/{feed}/stopp", "feed", page=True),
    Op("POST", "/varsler/{alert}/lost", "alert", page=True),
]


#: Operations whose capability is the address (a token, not an id): tests/reliability/test_tokens.py.
CAPABILITIES = {"/feeds/{filename}", "/answer/{token}"}


def _ids_in_body(schema: dict[str, Any], node: Any, seen: frozenset[str] = frozenset()) -> bool:
    """Whether a request body (an OpenAPI schema, $refs followed) carries an id anywhere."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            return name not in seen and _ids_in_body(schema, schema["components"]["schemas"][name], seen | {name})
        if node.get("type") == "array" and node.get("items", {}).get("type") == "integer":
            return True  # a bare list of ids (the coordinators)
        if any(key.endswith(("_id", "_ids")) for key in node.get("properties", {})):
            return True
        return any(_ids_in_body(schema, value, seen) for value in node.values())
    if isinstance(node, list):
        return any(_ids_in_body(schema, value, seen) for value in node)
    return False


async def test_every_operation_that_takes_an_id_is_probed(client: Client) -> None:
    """OPERATIONS must keep up with the API: each documented operation with an id in its address
    or in its body is there, so a new one cannot slip past rule 11 unasked."""
    schema = (await client.get("/schema/openapi.json")).json()

    def shape(path: str) -> str:
        return re.sub(r"\{\w+\}", "{}", path)

    probed = {(op.method, shape(op.path), "{" + op.kind + "}" in op.path) for op in OPERATIONS if not op.page}
    missing = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete") or path in CAPABILITIES:
                continue
            if "{" in path and (method.upper(), shape(path), True) not in probed:
                missing.append(f"{method.upper()} {path}")
            body = operation.get("requestBody")
            if body and _ids_in_body(schema, body) and (method.upper(), shape(path), False) not in probed:
                missing.append(f"{method.upper()} {path} (ids in the body)")
    assert not missing, f"add to OPERATIONS: {missing}"


def _same_but_the_id(text_: str, given: int) -> str:
    """The answer with the id the caller gave written as ``{id}``: it may be named back to them."""
    return re.sub(rf"(?<![\w-]){given}(?![\w-])", "{id}", text_)


async def _sign_in(client: Client, token: str) -> str:
    """Signs the client in on the pages; returns the CSRF token its forms carry."""
    form = await client.get("/logg-inn")
    csrf = re.search(r'name="_csrf" value="([^"]+)"', form.text)
    assert csrf, form.text[:300]
    signed_in = await client.post("/logg-inn", data={"_csrf": csrf.group(1), "token": token, "neste": "/"},
                                  follow_redirects=False)
    assert signed_in.status_code == 303, signed_in.text[:300]
    home = await client.get("/")
    csrf = re.search(r'name="_csrf" value="([^"]+)"', home.text)
    assert home.status_code == 200 and csrf, home.text[:300]
    return csrf.group(1)


@pytest.mark.parametrize("kind", sorted({op.kind for op in OPERATIONS}))
async def test_an_id_the_user_may_not_see_answers_as_one_that_does_not_exist(
    client: Client, people: Any, team: Any, service: ServiceContext, kind: str
) -> None:
    """Every operation in OPERATIONS that takes an id of this kind, with each id the coordinator
    may not reach there and with one that does not exist: the same status, the same bytes."""
    world = await _world(client, people, team, service)
    world.a["user"] = people.other_coordinator.id
    csrf = await _sign_in(client, people.coordinator.token)

    async def ask(op: Op, given: int) -> tuple[int, str]:
        ids = {**world.a, op.kind: given} if "{" + op.kind + "}" in op.path else world.a
        url = op.path.format(**ids)
        body = op.body(world, given) if op.body is not None else None
        if op.page:
            response = await client.request(op.method, url, data={"_csrf": csrf, **(body or {})},
                                            follow_redirects=False)
        else:
            response = await client.request(op.method, url, json=body, headers=getattr(people, op.asker).headers)
        return response.status_code, _same_but_the_id(response.text, given)

    problems = []
    for op in [op for op in OPERATIONS if op.kind == kind]:
        absent = await ask(op, MISSING)
        if absent[0] not in (400, 404):
            problems.append(f"{op.name}: an id that does not exist answers {absent[0]} {absent[1][:200]}")
            continue
        for whose, given in world.hidden[kind].items():
            answer = await ask(op, given)
            if answer != absent:
                problems.append(f"{op.name}: {whose} {kind} {given} answers {answer[0]} {answer[1][:200]}, "
                                f"an id that does not exist {absent[0]} {absent[1][:200]}")
    assert not problems, "\n".join(problems)
