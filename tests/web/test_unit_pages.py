"""The unit's pages on SQLite and PostgreSQL: the leader's case list (search and paging) and
attention list, the admin's users and settings. Set-up goes through the service functions the
API uses; what the pages did is read back through the API."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from test_case_setup_pages import summary_links
from test_pages import Client, _csrf, sign_in, submit, text_of

from coordination.cases import service as case_service
from coordination.context import ServiceContext
from coordination.domain import CaseStatus
from coordination.models import Case, User
from coordination.outbox import alerts
from coordination.schemas import CaseIn
from notifications.ports import AlertKind


async def open_cases(service: ServiceContext, people: Any, count: int) -> dict[str, int]:
    """``count`` cases in unit A (every third without a coordinator, the rest Kari's or Knut's) and
    one in unit B; their ids by reference."""
    ids: dict[str, int] = {}
    async with service.transaction() as session:
        leader = await session.get(User, people.leader.id)
        stranger = await session.get(User, people.stranger.id)
        assert leader is not None and stranger is not None
        for number in range(count):
            coordinators = [] if number % 3 == 0 else [
                people.coordinator.id if number % 3 == 1 else people.other_coordinator.id]
            created = await case_service.create_case(session, leader, CaseIn(
                reference=f"SAK-{number:04d}", child_given_name="Barn",
                child_initials="A.B." if number == 7 else "X.Y.", child_birth_date=date(2015, 1, 1),
                coordinator_ids=coordinators), service.now())
            ids[created.reference] = created.id
        other = await case_service.create_case(session, stranger, CaseIn(
            reference="SAK-0001-B", child_given_name="Annen", child_initials="A.B.",
            child_birth_date=date(2015, 1, 1)), service.now())
        ids[other.reference] = other.id
    return ids


def references(page: str) -> list[str]:
    return re.findall(r'<th scope="row"><a href="/saker/\d+">([^<]+)</a></th>', page)


async def test_the_leader_searches_and_pages_the_units_cases(client: Client, people: Any,
                                                             service: ServiceContext) -> None:
    ids = await open_cases(service, people, 121)
    await sign_in(client, people.leader.token)
    first = await client.get("/enhet/saker")
    assert first.status_code == 200
    assert references(first.text) == [f"SAK-{n:04d}" for n in range(50)]
    assert "Viser 1–50 av 121 saker (side 1 av 3)" in text_of(first.text)
    assert 'href="/enhet/saker?side=2" rel="next"' in first.text and 'rel="prev"' not in first.text
    last = await client.get("/enhet/saker?side=3")
    assert references(last.text) == [f"SAK-{n:04d}" for n in range(100, 121)]
    assert 'href="/enhet/saker?side=2" rel="prev"' in last.text and 'rel="next"' not in last.text
    assert references((await client.get("/enhet/saker?side=999")).text) == references(last.text)

    by_reference = await client.get("/enhet/saker?sok=sak-0042")
    assert references(by_reference.text) == ["SAK-0042"]
    assert "SAK-0001-B" not in (await client.get("/enhet/saker?sok=0001")).text, "never another unit's"
    by_initials = await client.get("/enhet/saker?sok=ab")
    assert references(by_initials.text) == ["SAK-0007"], "initials match without their dots"
    assert references((await client.get("/enhet/saker?sok=%25")).text) == [], "a wildcard is a plain character"
    kari = await client.get(f"/enhet/saker?koordinator={people.coordinator.id}")
    assert "av 40 saker" in text_of(kari.text) and "SAK-0001" in references(kari.text)
    assert all(int(r[4:]) % 3 == 1 for r in references(kari.text))
    nobody = await client.get("/enhet/saker?koordinator=ingen&sok=sak-00")
    assert references(nobody.text)[:4] == ["SAK-0000", "SAK-0003", "SAK-0006", "SAK-0009"]
    paged = await client.get("/enhet/saker?sok=sak&status=all")
    assert 'href="/enhet/saker?sok=sak&amp;status=all&amp;side=2"' in paged.text, "the next page keeps the search"

    async with service.transaction() as session:
        case = await session.get(Case, ids["SAK-0042"])
        assert case is not None
        case.status = CaseStatus.CLOSED
        session.add(case)
    assert references((await client.get("/enhet/saker?sok=sak-0042")).text) == []
    closed = await client.get("/enhet/saker?sok=sak-0042&status=closed")
    assert references(closed.text) == ["SAK-0042"] and "Avsluttet" in text_of(closed.text)

    for person in (people.coordinator, people.admin):
        await sign_in(client, person.token)
        assert (await client.get("/enhet/saker")).status_code == 403
        assert (await client.get("/enhet/oppfolging")).status_code == 403


async def test_the_attention_list_links_to_where_each_thing_is_done(client: Client, people: Any,
                                                                    service: ServiceContext, team: Any) -> None:
    plan = await client.put(f"/cases/{team.case_id}/plan", headers=people.coordinator.headers, json={
        "start_date": "2027-01-05", "expected_end": "2027-01-29"})
    assert plan.status_code in (200, 201), plan.text
    meeting_id = plan.json()["meetings"][0]["id"]
    ids = await open_cases(service, people, 2)
    now = service.now()
    async with service.transaction() as session:
        case = await session.get(Case, team.case_id)
        other = await session.get(Case, ids["SAK-0001-B"])
        assert case is not None and other is not None
        await alerts.raise_alert(session, case, AlertKind.CONSENT_EXPIRING, "t:consent", now,
                                 detail={"sector": "school"}, due_at=now + timedelta(days=10))
        await alerts.raise_alert(session, case, AlertKind.EVALUATION_OVERDUE, "t:evaluation", now,
                                 detail={"meeting": meeting_id}, due_at=now - timedelta(days=3))
        await alerts.raise_alert(session, case, AlertKind.NOTIFICATION_FAILED, "t:failed", now,
                                 detail={"outbox": 1})
        await alerts.raise_alert(session, case, AlertKind.CHILD_TURNING_15, "t:turns15", now)
        await alerts.raise_alert(session, other, AlertKind.CONSENT_EXPIRING, "t:other-unit", now)

    await sign_in(client, people.leader.token)
    page = await client.get("/enhet/oppfolging")
    assert page.status_code == 200
    consent = text_of(page.text, "samtykke")
    assert "Samtykker som snart utløper (1)" in consent and "Sak BV-2027-17" in consent
    assert "Samtykke-siden" in consent, "the page says where the link goes"
    assert f'href="/saker/{team.case_id}/samtykke"' in page.text
    assert f'href="/saker/{team.case_id}/moter/{meeting_id}"' in page.text
    assert f'href="/saker/{team.case_id}/utsendinger?status=stoppet"' in page.text
    measures = text_of(page.text, "tiltak")
    assert "Tiltaksplanen har forventet slutt" in measures and "29. januar 2027" in measures
    assert "Barnet fyller 15 år" in text_of(page.text, "andre"), "no open alert is missed"
    assert "SAK-0001-B" not in page.text, "never another unit's"

    resolved = await submit(client, "/enhet/oppfolging", re.findall(r'action="(/varsler/\d+/lost)"', page.text)[0],
                            {"tilbake": "/enhet/oppfolging"})
    assert resolved.status_code == 303 and resolved.headers["location"].startswith("/enhet/oppfolging")
    assert "Samtykker som snart utløper (0)" in text_of((await client.get("/enhet/oppfolging")).text)


async def users_of(client: Client, people: Any) -> list[dict[str, Any]]:
    listed = await client.get("/users", headers=people.admin.headers)
    assert listed.status_code == 200
    result: list[dict[str, Any]] = listed.json()
    return result


async def test_the_admin_adds_and_deactivates_users(client: Client, people: Any) -> None:
    await sign_in(client, people.admin.token)
    before = await users_of(client, people)
    for change, field, words in (
        ({"email": ""}, "email", "Fyll inn e-postadressen"),
        ({"email": "nina@"}, "email", "Skriv en gyldig e-postadresse"),
        ({"name": ""}, "name", "Fyll inn navnet."),
        ({"role": "superuser"}, "role", "Velg koordinator, leder eller administrator."),
    ):
        refused = await submit(client, "/enhet/brukere", "/enhet/brukere",
                               {"name": "Nina Ny", "email": "nina@kommune.example.no", "role": "coordinator", **change})
        assert refused.status_code == 400 and summary_links(refused.text) == [field], change
        assert words in text_of(refused.text)
    assert await users_of(client, people) == before

    created = await submit(client, "/enhet/brukere", "/enhet/brukere",
                           {"name": "Nina Ny", "email": "nina@kommune.example.no", "role": "coordinator"})
    assert created.status_code == 200 and "Nina Ny er lagt til" in text_of(created.text)
    token = re.search(r'id="ny-token" value="([^"]+)"', created.text)
    assert token, "without OIDC (the demo) the new user's sign-in key is shown once"
    nina = next(u for u in await users_of(client, people) if u["name"] == "Nina Ny")
    assert nina["email"] == "nina@kommune.example.no" and nina["role"] == "coordinator" and nina["active"]
    assert token.group(1) not in (await client.get("/enhet/brukere")).text, "shown only once"

    deactivated = await submit(client, "/enhet/brukere", f"/enhet/brukere/{nina['id']}/deaktiver", {})
    assert deactivated.status_code == 303 and "bruker-deaktivert" in deactivated.headers["location"]
    assert not next(u for u in await users_of(client, people) if u["id"] == nina["id"])["active"]
    assert (await client.get("/users/me", headers={"Authorization": f"Bearer {token.group(1)}"})).status_code == 401
    assert "Deaktivert" in text_of((await client.get("/enhet/brukere")).text, f"bruker-{nina['id']}")
    assert (await submit(client, "/enhet/brukere", f"/enhet/brukere/{people.stranger.id}/deaktiver",
                         {})).status_code == 404, "another unit's user is not found"

    # A leader sees the users but cannot change them; a coordinator sees neither.
    await sign_in(client, people.leader.token)
    listed = await client.get("/enhet/brukere")
    assert listed.status_code == 200 and "Nina Ny" in listed.text and "Legg til bruker" not in listed.text
    assert (await submit(client, "/enhet/brukere", "/enhet/brukere",
                         {"name": "X", "email": "x@example.org", "role": "admin"})).status_code == 403
    assert (await submit(client, "/enhet/brukere", f"/enhet/brukere/{people.coordinator.id}/deaktiver",
                         {})).status_code == 403
    await sign_in(client, people.coordinator.token)
    assert (await client.get("/enhet/brukere")).status_code == 403
    assert len(await users_of(client, people)) == len(before) + 1


async def test_the_admin_changes_the_units_settings(client: Client, people: Any) -> None:
    await sign_in(client, people.admin.token)
    page = await client.get("/enhet/innstillinger")
    assert page.status_code == 200 and "Innstillinger for Enhet A" in text_of(page.text)
    settings = {"phone": "+47 22 00 00 00", "show_child_name_in_feeds": "ja", "rows": "3",
                "closures-0-first": "2027-07-05", "closures-0-last": "2027-07-30", "closures-0-label": "Sommer",
                "closures-2-first": "2027-12-24", "closures-2-label": "Julaften"}
    saved = await submit(client, "/enhet/innstillinger", "/enhet/innstillinger", settings)
    assert saved.status_code == 303 and saved.headers["location"] == "/enhet/innstillinger?melding=innstillinger"
    unit = (await client.get("/units/me", headers=people.admin.headers)).json()
    assert unit["phone"] == "+47 22 00 00 00" and unit["show_child_name_in_feeds"] is True
    assert unit["closures"] == [{"first": "2027-07-05", "last": "2027-07-30", "label": "Sommer"},
                                {"first": "2027-12-24", "last": "2027-12-24", "label": "Julaften"}]
    shown = await client.get("/enhet/innstillinger")
    assert 'value="Julaften"' in shown.text and 'name="rows" value="5"' in shown.text

    for change, field, words in (
        ({"closures-2-last": "2027-12-20"}, "closures-2-last", "Siste dag må være samme dag som første dag"),
        ({"closures-0-first": "5. juli"}, "closures-0-first", "Skriv datoen som åååå-mm-dd."),
        ({"phone": "sentralbordet"}, "phone", "Skriv telefonnummeret med sifre"),
    ):
        refused = await submit(client, "/enhet/innstillinger", "/enhet/innstillinger", {**settings, **change})
        assert refused.status_code == 400 and summary_links(refused.text) == [field], (change, refused.text[:500])
        assert words in text_of(refused.text)
    assert (await client.get("/units/me", headers=people.admin.headers)).json() == unit, "nothing half-written"

    for person in (people.leader, people.coordinator):
        await sign_in(client, person.token)
        assert (await client.get("/enhet/innstillinger")).status_code == 403
        assert (await submit(client, "/", "/enhet/innstillinger", {**settings, "phone": ""})).status_code == 403
    assert (await client.get("/units/me", headers=people.admin.headers)).json() == unit


async def test_the_units_forms_refuse_a_missing_csrf_token(client: Client, people: Any) -> None:
    await sign_in(client, people.admin.token)
    before = await users_of(client, people)
    unit = (await client.get("/units/me", headers=people.admin.headers)).json()
    for action, data in (("/enhet/brukere", {"name": "Nina", "email": "n@example.org", "role": "admin"}),
                         (f"/enhet/brukere/{people.coordinator.id}/deaktiver", {}),
                         ("/enhet/innstillinger", {"phone": "+47 99 99 99 99", "rows": "0"})):
        for token in ("", "x" * 43):
            refused = await client.post(action, data={**data, "_csrf": token})
            assert refused.status_code == 403 and "Skjemaet kunne ikke sendes" in refused.text, action
    page = await client.get("/enhet/brukere")
    cross = await client.post("/enhet/innstillinger", data={"_csrf": _csrf(page.text), "phone": "+47 99 99 99 99"},
                              headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    assert await users_of(client, people) == before
    assert (await client.get("/units/me", headers=people.admin.headers)).json() == unit
