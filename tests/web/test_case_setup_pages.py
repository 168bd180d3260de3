"""Setting a case up in the pages, on SQLite and PostgreSQL: a new case, its coordinators and the
contact list, through plain HTML forms as a browser without JavaScript sends them. What the
page did is read back through the API, so page and API are seen to agree; a refused form is
seen to name its field and to have written nothing."""

from __future__ import annotations

import re
from typing import Any

from test_pages import Client, _csrf, sign_in, submit, text_of

CASE = {"reference": "BV-2027-40", "child_given_name": "Ola", "child_initials": "O.N.",
        "child_birth_date": "2015-05-20", "language": "nn", "aimed_at_child": "nei",
        "measure_type": "ordered", "order_date": "2026-11-02", "party_status_override": ""}


def summary_links(page: str) -> list[str]:
    """The fields the error summary points at, in order."""
    found = re.search(r'<div class="error-summary"[^>]*>(.*?)</div>', page, re.S)
    assert found, "the page has an error summary"
    assert "autofocus" in page[found.start():found.start() + 120], "focus moves to the summary without script"
    return re.findall(r'<a href="#([^"]+)"', found.group(1))


def invalid(page: str, element_id: str) -> bool:
    """The field is marked invalid and described by its error message."""
    tag = re.search(rf'<(?:input|select)[^>]*\bid="{re.escape(element_id)}"[^>]*>', page)
    assert tag, f"no field #{element_id}"
    return 'aria-invalid="true"' in tag.group(0) and f"{element_id}-feil" in tag.group(0)


async def cases_of(client: Client, person: Any) -> list[dict[str, Any]]:
    listed = await client.get("/cases", headers=person.headers)
    assert listed.status_code == 200, listed.text
    result: list[dict[str, Any]] = listed.json()
    return result


async def contacts_of(client: Client, person: Any, case_id: int) -> list[dict[str, Any]]:
    listed = await client.get(f"/cases/{case_id}/contacts", headers=person.headers)
    assert listed.status_code == 200, listed.text
    result: list[dict[str, Any]] = listed.json()
    return result


async def test_a_coordinator_opens_a_case_as_the_api_would(client: Client, people: Any) -> None:
    await sign_in(client, people.coordinator.token)
    form = await client.get("/saker/ny")
    assert form.status_code == 200 and "Ny sak" in text_of(form.text)
    assert f'id="coordinator-{people.other_coordinator.id}"' in form.text
    assert f'id="coordinator-{people.coordinator.id}"' not in form.text, "the coordinator is always on it: not offered"
    chosen = {"coordinator_ids": str(people.other_coordinator.id)}
    created = await submit(client, "/saker/ny", "/saker/ny", {**CASE, **chosen})
    assert created.status_code == 303, created.text
    case_id = int(created.headers["location"].split("/")[2])
    assert created.headers["location"] == f"/saker/{case_id}/kontakter?melding=sak-opprettet"

    [case] = await cases_of(client, people.coordinator)
    assert case["id"] == case_id
    assert {k: case[k] for k in ("reference", "child_given_name", "child_initials", "child_birth_date", "language",
                                 "aimed_at_child", "measure_type", "order_date", "party_status_override")} == {
        "reference": "BV-2027-40", "child_given_name": "Ola", "child_initials": "O.N.",
        "child_birth_date": "2015-05-20", "language": "nn", "aimed_at_child": False, "measure_type": "ordered",
        "order_date": "2026-11-02", "party_status_override": None}
    assert case["coordinator_ids"] == sorted([people.coordinator.id, people.other_coordinator.id])
    page = await client.get(created.headers["location"])
    assert "Saken er opprettet" in text_of(page.text) and "Saken har ingen kontakter ennå" in text_of(page.text)


async def test_a_refused_case_names_its_field_and_writes_nothing(client: Client, people: Any) -> None:
    await sign_in(client, people.coordinator.token)
    for change, field, words in (
        ({"child_birth_date": "2027-06-01"}, "child_birth_date", "Fødselsdatoen kan ikke være fram i tid."),
        ({"child_birth_date": "1. mai"}, "child_birth_date", "Skriv datoen som åååå-mm-dd."),
        ({"reference": "BV 2027"}, "reference", "Skriv saksnummeret med bokstaver, tall og"),
        ({"reference": "12345678901"}, "reference", "Saksnummeret kan ikke være et fødselsnummer."),
        ({"child_initials": ""}, "child_initials", "Fyll inn barnets initialer."),
        ({"order_date": ""}, "order_date", "Et pålagt tiltak må ha datoen for vedtaket."),
        ({"measure_type": "voluntary"}, "order_date", "Bare et pålagt tiltak har vedtaksdato."),
        ({"measure_type": "frivillig", "order_date": ""}, "measure_type-voluntary", "Velg om tiltaket er frivillig"),
        ({"coordinator_ids": str(people.leader.id)}, f"coordinator-{people.other_coordinator.id}",
         "Velg koordinatorer fra enheten."),
    ):
        refused = await submit(client, "/saker/ny", "/saker/ny", {**CASE, **change})
        assert refused.status_code == 400, (change, refused.text[:300])
        assert summary_links(refused.text) == [field], change
        assert words in text_of(refused.text), (change, text_of(refused.text)[:400])
        assert refused.text.startswith("<!doctype html>") and "<title>Feil: Ny sak" in refused.text
        if not field.startswith(("measure_type", "coordinator")):
            assert invalid(refused.text, field), change
        assert 'value="O.N."' in refused.text or field == "child_initials", "what was typed is kept"
    assert await cases_of(client, people.coordinator) == []

    first = await submit(client, "/saker/ny", "/saker/ny", CASE)
    assert first.status_code == 303
    again = await submit(client, "/saker/ny", "/saker/ny", CASE)
    assert again.status_code == 400 and summary_links(again.text) == ["reference"]
    assert "Enheten har allerede en sak med dette saksnummeret" in text_of(again.text)
    assert len(await cases_of(client, people.coordinator)) == 1


async def test_the_leader_chooses_the_coordinators(client: Client, people: Any) -> None:
    await sign_in(client, people.leader.token)
    form = await client.get("/saker/ny")
    assert "Kari" in form.text and "Knut" in form.text
    created = await submit(client, "/saker/ny", "/saker/ny", {
        **CASE, "measure_type": "voluntary", "order_date": "", "coordinator_ids": str(people.coordinator.id)})
    case_id = int(created.headers["location"].split("/")[2])
    page = await client.get(f"/saker/{case_id}/koordinatorer")
    assert page.status_code == 200 and "Endre koordinatorer" in page.text
    assert re.search(rf'id="coordinator-{people.coordinator.id}"[^>]*checked', page.text)

    changed = await submit(client, f"/saker/{case_id}/koordinatorer", f"/saker/{case_id}/koordinatorer",
                           {"coordinator_ids": str(people.other_coordinator.id)})
    assert changed.status_code == 303 and changed.headers["location"] == f"/saker/{case_id}?melding=koordinatorer"
    case = (await client.get(f"/cases/{case_id}", headers=people.leader.headers)).json()
    assert case["coordinator_ids"] == [people.other_coordinator.id]

    none = await submit(client, f"/saker/{case_id}/koordinatorer", f"/saker/{case_id}/koordinatorer", {})
    assert none.status_code == 400 and "Saken må ha minst én koordinator" in text_of(none.text)
    assert summary_links(none.text) == [f"coordinator-{people.coordinator.id}"]
    assert (await client.get(f"/cases/{case_id}", headers=people.leader.headers)).json()["coordinator_ids"] == [
        people.other_coordinator.id], "nothing half-written"

    # A coordinator of the case sees it but may not choose its coordinators; an admin opens no case.
    await sign_in(client, people.other_coordinator.token)
    assert (await client.get(f"/saker/{case_id}/koordinatorer")).status_code == 403
    refused = await submit(client, f"/saker/{case_id}", f"/saker/{case_id}/koordinatorer",
                           {"coordinator_ids": str(people.other_coordinator.id)})
    assert refused.status_code == 403
    await sign_in(client, people.admin.token)
    assert (await client.get("/saker/ny")).status_code == 403


CONTACT = {"name": "Eva Kontakt", "role": "school_contact", "role_label": "kontaktlærer", "sector": "",
           "organisation": "Byskolen", "email": "eva@skole.example.org", "phone": "+47 400 11 222",
           "language": "en", "needs_interpreter": "ja", "interpreter_language": "arabisk", "rows": "5",
           "availability-0-weekday": "0", "availability-0-start": "8:00", "availability-0-end": "15:30",
           "availability-2-weekday": "3", "availability-2-start": "12:00", "availability-2-end": "16:00"}


async def test_contacts_are_added_edited_and_deactivated(client: Client, people: Any, team: Any) -> None:
    await sign_in(client, people.coordinator.token)
    base = f"/saker/{team.case_id}/kontakter"
    listed = await client.get(base)
    assert listed.status_code == 200 and "Mona Hansen" in listed.text and 'aria-current="page">Kontakter' in listed.text
    before = await contacts_of(client, people.coordinator, team.case_id)

    added = await submit(client, f"{base}/ny", f"{base}/ny", CONTACT)
    assert added.status_code == 303, added.text
    new = next(c for c in await contacts_of(client, people.coordinator, team.case_id) if c["name"] == "Eva Kontakt")
    assert added.headers["location"] == f"{base}?melding=kontakt-lagt-til#kontakt-{new['id']}"
    assert {k: new[k] for k in ("role", "role_label", "sector", "organisation", "email", "phone", "language",
                                "daily_care", "needs_interpreter", "interpreter_language", "active")} == {
        "role": "school_contact", "role_label": "kontaktlærer", "sector": "school", "organisation": "Byskolen",
        "email": "eva@skole.example.org", "phone": "+47 400 11 222", "language": "en", "daily_care": False,
        "needs_interpreter": True, "interpreter_language": "arabisk", "active": True}
    assert new["availability"] == [{"weekday": 0, "start": "08:00", "end": "15:30"},
                                   {"weekday": 3, "start": "12:00", "end": "16:00"}]

    # The form shows the contact as stored; changing one field saves that field only.
    edit = f"{base}/{new['id']}"
    shown = await client.get(edit)
    assert 'value="eva@skole.example.org"' in shown.text and 'value="15:30"' in shown.text
    saved = await submit(client, edit, edit, {**CONTACT, "email": "eva.ny@skole.example.org", "rows": "7",
                                              "availability-0-start": "08:00"})
    assert saved.status_code == 303, saved.text
    after = next(c for c in await contacts_of(client, people.coordinator, team.case_id) if c["id"] == new["id"])
    assert after["email"] == "eva.ny@skole.example.org" and after["availability"] == new["availability"]
    log = (await client.get(f"/cases/{team.case_id}/audit", headers=people.coordinator.headers)).json()
    assert next(e for e in log if e["action"] == "contact.updated")["detail"]["fields"] == ["email"]

    deactivated = await submit(client, base, f"{edit}/deaktiver", {})
    assert deactivated.status_code == 303 and "kontakt-deaktivert" in deactivated.headers["location"]
    page = await client.get(base)
    assert "Deaktivert" in text_of(page.text, f"kontakt-{new['id']}")
    assert not next(c for c in await contacts_of(client, people.coordinator, team.case_id)
                    if c["id"] == new["id"])["active"]
    assert (await submit(client, base, f"{edit}/aktiver", {})).status_code == 303
    everyone = await contacts_of(client, people.coordinator, team.case_id)
    assert len(everyone) == len(before) + 1 and all(c["active"] for c in everyone)


async def test_a_refused_contact_names_its_field_and_writes_nothing(client: Client, people: Any, team: Any) -> None:
    await sign_in(client, people.coordinator.token)
    base = f"/saker/{team.case_id}/kontakter"
    before = await contacts_of(client, people.coordinator, team.case_id)
    for change, field, words in (
        ({"daily_care": "ja", "needs_interpreter": ""}, "daily_care", "Bare en i familien kan ha daglig omsorg"),
        ({"sector": "family"}, "sector", "ellers ville samtykket blitt omgått"),
        ({"role": "child", "sector": ""}, "role", "Saken har allerede en aktiv kontakt med rollen barnet"),
        ({"email": "eva@"}, "email", "Skriv en gyldig e-postadresse"),
        ({"phone": "ring meg"}, "phone", "Skriv telefonnummeret med sifre"),
        ({"interpreter_language": ""}, "interpreter_language", "Skriv hvilket språk tolken skal tolke til"),
        ({"name": " "}, "name", "Fyll inn navnet."),
        ({"availability-2-end": "11:00"}, "availability-2-start", "Tidsrommet må begynne før det slutter."),
        ({"availability-2-end": "halv fire"}, "availability-2-end", "Skriv klokkeslettet som tt:mm."),
        ({"availability-0-weekday": ""}, "availability-0-weekday", "Velg ukedag for tidsrommet"),
    ):
        refused = await submit(client, f"{base}/ny", f"{base}/ny", {**CONTACT, **change})
        assert refused.status_code == 400, (change, refused.text[:300])
        assert summary_links(refused.text) == [field], (change, summary_links(refused.text))
        assert words in text_of(refused.text), (change, text_of(refused.text)[:500])
        assert invalid(refused.text, field), change
        assert 'value="Byskolen"' in refused.text, "what was typed is kept"
    assert await contacts_of(client, people.coordinator, team.case_id) == before

    # A change the service refuses leaves the contact as it was, the other fields too.
    edit = f"{base}/{team.teacher}"
    refused = await submit(client, edit, edit, {**CONTACT, "daily_care": "ja", "email": "annen@example.org"})
    assert refused.status_code == 400 and summary_links(refused.text) == ["daily_care"]
    assert await contacts_of(client, people.coordinator, team.case_id) == before
    # A second child cannot be made active again.
    await submit(client, base, f"{base}/{team.child}/deaktiver", {})
    assert (await submit(client, f"{base}/ny", f"{base}/ny", {
        **CONTACT, "name": "Sara H.", "role": "child", "email": "", "needs_interpreter": ""})).status_code == 303
    again = await submit(client, base, f"{base}/{team.child}/aktiver", {})
    assert again.status_code == 400 and summary_links(again.text) == [f"kontakt-{team.child}-handling"]
    assert "rollen barnet" in text_of(again.text)


async def test_a_contact_chooses_sms_with_a_mobile_number(client: Client, people: Any, team: Any) -> None:
    await sign_in(client, people.coordinator.token)
    base = f"/saker/{team.case_id}/kontakter"
    form = await client.get(f"{base}/ny")
    assert 'id="notify_by-standard" name="notify_by" value="standard" checked' in form.text
    before = await contacts_of(client, people.coordinator, team.case_id)

    # SMS without a mobile number is refused on the field, and nothing is written.
    refused = await submit(client, f"{base}/ny", f"{base}/ny", {**CONTACT, "phone": "", "notify_by": "sms"})
    assert refused.status_code == 400, refused.text[:300]
    assert summary_links(refused.text) == ["notify_by-standard"]
    assert "SMS krever et mobilnummer" in text_of(refused.text)
    assert 'id="notify_by-sms" name="notify_by" value="sms" checked' in refused.text, "the choice is kept"
    assert await contacts_of(client, people.coordinator, team.case_id) == before

    added = await submit(client, f"{base}/ny", f"{base}/ny", {**CONTACT, "notify_by": "sms"})
    assert added.status_code == 303, added.text[:300]
    new = next(c for c in await contacts_of(client, people.coordinator, team.case_id) if c["name"] == "Eva Kontakt")
    assert (new["notify_by"], new["mobile"]) == ("sms", "+4740011222")
    edit = f"{base}/{new['id']}"
    assert 'id="notify_by-sms" name="notify_by" value="sms" checked' in (await client.get(edit)).text
    # Removing the number while SMS is still chosen is refused; choosing e-mail with it is saved.
    refused = await submit(client, edit, edit, {**CONTACT, "phone": "", "notify_by": "sms"})
    assert refused.status_code == 400 and summary_links(refused.text) == ["notify_by-standard"]
    saved = await submit(client, edit, edit, {**CONTACT, "phone": "", "notify_by": "email"})
    assert saved.status_code == 303, saved.text[:300]
    after = next(c for c in await contacts_of(client, people.coordinator, team.case_id) if c["id"] == new["id"])
    assert (after["notify_by"], after["phone"]) == ("email", "")


async def test_forms_refuse_a_missing_csrf_token(client: Client, people: Any, team: Any) -> None:
    await sign_in(client, people.coordinator.token)
    base = f"/saker/{team.case_id}/kontakter"
    before = await contacts_of(client, people.coordinator, team.case_id)
    for action, data in (("/saker/ny", CASE), (f"{base}/ny", CONTACT), (f"{base}/{team.teacher}", CONTACT),
                         (f"{base}/{team.teacher}/deaktiver", {})):
        for token in ("", "x" * 43):
            refused = await client.post(action, data={**data, "_csrf": token})
            assert refused.status_code == 403 and "Skjemaet kunne ikke sendes" in refused.text, action
    page = await client.get("/saker/ny")
    cross = await client.post("/saker/ny", data={**CASE, "_csrf": _csrf(page.text)},
                              headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    assert len(await cases_of(client, people.coordinator)) == 1
    assert await contacts_of(client, people.coordinator, team.case_id) == before


async def test_what_a_user_may_not_see_is_not_found(client: Client, people: Any, team: Any) -> None:
    base = f"/saker/{team.case_id}/kontakter"
    before = await contacts_of(client, people.coordinator, team.case_id)
    for person in (people.stranger, people.other_coordinator, people.admin):
        await sign_in(client, person.token)
        for path in (base, f"{base}/ny", f"{base}/{team.mother}", f"/saker/{team.case_id}/koordinatorer"):
            page = await client.get(path)
            assert page.status_code == 404 and "Mona" not in page.text and "BV-2027-17" not in page.text, path
        for action, data in ((f"{base}/ny", CONTACT), (f"{base}/{team.mother}", {**CONTACT, "role": "parent"}),
                             (f"{base}/{team.mother}/deaktiver", {}),
                             (f"/saker/{team.case_id}/koordinatorer", {"coordinator_ids": str(person.id)})):
            refused = await submit(client, "/varsler", action, data)
            assert refused.status_code == 404, (person, action)
    assert await contacts_of(client, people.coordinator, team.case_id) == before

    # A contact of another case is not found in this one.
    await sign_in(client, people.coordinator.token)
    other = await submit(client, "/saker/ny", "/saker/ny", {**CASE, "measure_type": "voluntary", "order_date": ""})
    other_id = int(other.headers["location"].split("/")[2])
    assert (await client.get(f"/saker/{other_id}/kontakter/{team.mother}")).status_code == 404
    assert (await submit(client, "/", f"/saker/{other_id}/kontakter/{team.mother}/deaktiver", {})).status_code == 404
    assert await contacts_of(client, people.coordinator, team.case_id) == before
