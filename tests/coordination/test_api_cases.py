"""The case, contact and consent API on SQLite and PostgreSQL: what a coordinator sees."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

Client = AsyncTestClient[Litestar]


async def test_health_and_schema(client: Client) -> None:
    health = await client.get("/health")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    schema = await client.get("/schema/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/cases/{case_id}/information-loops" in paths


async def test_requests_without_a_valid_token_are_refused(client: Client, people: Any) -> None:
    assert (await client.get("/cases")).status_code == 401
    bad = await client.get("/cases", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401
    assert "token" in bad.json()["detail"]


async def test_coordinator_creates_case_and_sees_it(client: Client, people: Any, case_body: Any) -> None:
    created = await client.post("/cases", json=case_body(), headers=people.coordinator.headers)
    assert created.status_code == 201, created.text
    case = created.json()
    assert case["coordinator_ids"] == [people.coordinator.id]
    assert case["child_age"] == 14 and case["party_status"] is False
    listed = await client.get("/cases", headers=people.coordinator.headers)
    assert [c["reference"] for c in listed.json()] == ["BV-2027-17"]


async def test_access_is_by_assignment_and_unit(client: Client, people: Any, case_body: Any) -> None:
    created = await client.post("/cases", json=case_body(), headers=people.coordinator.headers)
    case_id = created.json()["id"]
    # Another coordinator in the same unit, and a leader of another unit: the case does not exist.
    for outsider in (people.other_coordinator, people.stranger, people.admin):
        response = await client.get(f"/cases/{case_id}", headers=outsider.headers)
        assert response.status_code == 404
        assert (await client.get("/cases", headers=outsider.headers)).json() == []
        loops = await client.get(f"/cases/{case_id}/information-loops", headers=outsider.headers)
        assert loops.status_code == 404
    # The unit's leader sees it and may assign the other coordinator.
    assert (await client.get(f"/cases/{case_id}", headers=people.leader.headers)).status_code == 200
    assigned = await client.put(f"/cases/{case_id}/coordinators",
                                json=[people.other_coordinator.id], headers=people.leader.headers)
    assert assigned.status_code == 200
    assert (await client.get(f"/cases/{case_id}",
                             headers=people.other_coordinator.headers)).status_code == 200
    assert (await client.get(f"/cases/{case_id}", headers=people.coordinator.headers)).status_code == 404
    # A coordinator may not reassign cases.
    denied = await client.put(f"/cases/{case_id}/coordinators", json=[people.coordinator.id],
                              headers=people.other_coordinator.headers)
    assert denied.status_code == 403


async def test_deactivated_user_is_locked_out(client: Client, people: Any) -> None:
    gone = await client.delete(f"/users/{people.coordinator.id}", headers=people.admin.headers)
    assert gone.status_code == 200
    assert (await client.get("/users/me", headers=people.coordinator.headers)).status_code == 401


async def test_admin_creates_user_and_token_is_shown_once(client: Client, people: Any) -> None:
    created = await client.post("/users", json={"name": "Nina", "role": "coordinator"},
                                headers=people.admin.headers)
    assert created.status_code == 201
    token = created.json()["token"]
    me = await client.get("/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["name"] == "Nina"
    listed = await client.get("/users", headers=people.admin.headers)
    assert all("token" not in u for u in listed.json())
    denied = await client.post("/users", json={"name": "X", "role": "admin"},
                               headers=people.coordinator.headers)
    assert denied.status_code == 403


async def test_information_loops_explain_each_contact(client: Client, people: Any, team: Any) -> None:
    headers = people.coordinator.headers
    for grantor in (team.mother, team.father):
        granted = await client.post(f"/cases/{team.case_id}/consents", headers=headers, json={
            "grantor_contact_id": grantor, "sector": "school", "status": "granted",
            "level": "purpose" if grantor == team.mother else "logistics", "form": "written",
            "valid_until": "2027-06-30T22:00:00+00:00"})
        assert granted.status_code == 201, granted.text
    await client.post(f"/cases/{team.case_id}/consents", headers=headers, json={
        "grantor_contact_id": team.mother, "sector": "health", "status": "granted",
        "level": "content", "form": "oral"})
    loops = await client.get(f"/cases/{team.case_id}/information-loops",
                             params={"at": "2027-07-01T10:00:00+02:00"}, headers=headers)
    assert loops.status_code == 200, loops.text
    by_contact = {c["contact_id"]: c for c in loops.json()["contacts"]}
    teacher = by_contact[team.teacher]
    assert teacher["now"]["level"] == "logistics"  # the narrowest of the two grants
    assert any("Per Hansen (far) har bare samtykket" in r for r in teacher["now"]["reasons"])
    assert teacher["at"]["level"] == "none"
    assert any("utløp 2027-07-01" in r for r in teacher["at"]["reasons"])
    nurse = by_contact[team.nurse]
    assert nurse["now"]["level"] == "none" and nurse["now"]["sector_state"] == "partial"
    assert "Per Hansen (far) har ikke samtykket til deling med helse" in nurse["now"]["reasons"]
    nav = by_contact[team.nav]
    assert nav["now"]["sector_state"] == "missing"
    assert by_contact[team.mother]["needs_consent"] is False
    english = await client.get(f"/cases/{team.case_id}/information-loops",
                               params={"lang": "en"}, headers=headers)
    nurse_en = {c["contact_id"]: c for c in english.json()["contacts"]}[team.nurse]
    assert "Per Hansen (far) has not consented to health" in nurse_en["now"]["reasons"]


async def test_withdrawal_is_a_new_record_and_takes_effect(client: Client, people: Any, team: Any,
                                                           service: Any) -> None:
    headers = people.coordinator.headers
    url = f"/cases/{team.case_id}/consents"
    for grantor in (team.mother, team.father):
        await client.post(url, headers=headers, json={
            "grantor_contact_id": grantor, "sector": "school", "status": "granted",
            "level": "purpose", "form": "written"})
    loops_url = f"/cases/{team.case_id}/information-loops"

    async def teacher_level() -> str:
        loops = (await client.get(loops_url, headers=headers)).json()
        return next(c["now"]["level"] for c in loops["contacts"] if c["contact_id"] == team.teacher)

    assert await teacher_level() == "purpose"
    service.clock.set(service.now().replace(hour=10))
    withdrawn = await client.post(url, headers=headers, json={
        "grantor_contact_id": team.father, "sector": "school", "status": "withdrawn",
        "form": "oral", "note": "ringte"})
    assert withdrawn.status_code == 201
    assert await teacher_level() == "none"
    history = (await client.get(url, headers=headers)).json()
    assert [r["status"] for r in history] == ["granted", "granted", "withdrawn"]
    audit = (await client.get(f"/cases/{team.case_id}/audit", headers=headers)).json()
    actions = [e["action"] for e in audit]
    assert "consent.withdrawn" in actions and "case.created" in actions
    # The audit log names ids, never people.
    assert "Per Hansen" not in str(audit)
    # There is no way to edit or delete a consent record.
    record_id = history[0]["id"]
    assert (await client.patch(f"{url}/{record_id}", json={}, headers=headers)).status_code in (404, 405)
    assert (await client.delete(f"{url}/{record_id}", headers=headers)).status_code in (404, 405)


async def test_carer_losing_daily_care_no_longer_grants(client: Client, people: Any, team: Any) -> None:
    headers = people.coordinator.headers
    await client.post(f"/cases/{team.case_id}/consents", headers=headers, json={
        "grantor_contact_id": team.mother, "sector": "health", "status": "granted",
        "level": "purpose", "form": "written"})
    loops_url = f"/cases/{team.case_id}/information-loops"

    async def nurse_level() -> str:
        loops = (await client.get(loops_url, headers=headers)).json()
        return next(c["now"]["level"] for c in loops["contacts"] if c["contact_id"] == team.nurse)

    assert await nurse_level() == "none"  # the father has not consented
    changed = await client.patch(f"/cases/{team.case_id}/contacts/{team.father}",
                                 json={"daily_care": False}, headers=headers)
    assert changed.status_code == 200 and changed.json()["daily_care"] is False
    assert await nurse_level() == "purpose"
    refused = await client.post(f"/cases/{team.case_id}/consents", headers=headers, json={
        "grantor_contact_id": team.father, "sector": "health", "status": "granted",
        "level": "purpose", "form": "written"})
    assert refused.status_code == 400
    assert refused.json()["field"] == "grantor_contact_id"


async def _count(client: Client, headers: dict[str, str], case_id: int) -> tuple[int, int]:
    contacts = (await client.get(f"/cases/{case_id}/contacts", headers=headers)).json()
    consents = (await client.get(f"/cases/{case_id}/consents", headers=headers)).json()
    return len(contacts), len(consents)


BAD_CONTACTS: list[tuple[dict[str, Any], str]] = [
    ({"name": "X", "role": "wizard"}, "role"),
    ({"name": "X", "role": "gp", "sector": "church"}, "sector"),
    ({"name": "X", "role": "gp", "email": "not-an-email"}, "email"),
    ({"name": "X", "role": "gp", "email": "a@b.no\r\nBcc: evil@x.org"}, "email"),
    ({"name": "X", "role": "gp", "phone": "call me"}, "phone"),
    ({"name": "Eve\r\nBcc: x@y.org", "role": "gp"}, "name"),
    ({"name": "Eve\nX", "role": "gp"}, "name"),
    ({"name": "X", "role": "gp", "role_label": "lege\r\n"}, "role_label"),
    ({"name": "X\x00", "role": "gp"}, "name"),
    ({"name": "", "role": "gp"}, "name"),
    ({"name": "X", "role": "gp", "daily_care": True}, "daily_care"),
    ({"name": "X", "role": "parent", "sector": "school"}, "sector"),
    ({"name": "X", "role": "gp", "availability": [{"weekday": 7, "start": "08:00", "end": "09:00"}]},
     "availability"),
    ({"name": "X", "role": "gp", "availability": [{"weekday": 1, "start": "10:00", "end": "09:00"}]},
     "availability[0]"),
    ({"name": "X", "role": "gp", "availability": [{"weekday": 1, "start": "25:00", "end": "26:00"}]},
     "availability"),
    ({"name": "X", "role": "gp", "needs_interpreter": True}, "interpreter_language"),
    ({"name": "X", "role": "child"}, "role"),  # the team already has a child
    ({"name": "X", "role": "gp", "unknown_field": 1}, "unknown_field"),
]


async def test_bad_contacts_are_refused_with_the_field_named(client: Client, people: Any,
                                                             team: Any) -> None:
    headers = people.coordinator.headers
    before = await _count(client, headers, team.case_id)
    for body, field in BAD_CONTACTS:
        response = await client.post(f"/cases/{team.case_id}/contacts", json=body, headers=headers)
        assert response.status_code == 400, (body, response.text)
        error = response.json()
        assert field in (error.get("field") or "") + error["detail"], (body, error)
    assert await _count(client, headers, team.case_id) == before


async def test_bad_consents_are_refused_with_the_field_named(client: Client, people: Any,
                                                             team: Any) -> None:
    headers = people.coordinator.headers
    base = {"grantor_contact_id": team.mother, "sector": "school", "status": "granted",
            "level": "purpose", "form": "written"}
    bad: list[tuple[dict[str, Any], str]] = [
        ({"sector": "family"}, "sector"),
        ({"sector": "child_welfare"}, "sector"),
        ({"grantor_contact_id": team.teacher}, "grantor_contact_id"),
        ({"grantor_contact_id": 99999}, "grantor_contact_id"),
        ({"level": None}, "level"),
        ({"level": "everything"}, "level"),
        ({"valid_from": "2027-02-01T00:00:00+00:00", "valid_until": "2027-01-01T00:00:00+00:00"},
         "valid_until"),
        ({"valid_from": "2027-02-01T00:00:00"}, "valid_from"),
        ({"status": "withdrawn"}, "level"),
        ({"form": "telepathy"}, "form"),
        ({"note": "x" * 5000}, "note"),
    ]
    before = await _count(client, headers, team.case_id)
    for change, field in bad:
        response = await client.post(f"/cases/{team.case_id}/consents", json={**base, **change},
                                     headers=headers)
        assert response.status_code == 400, (change, response.text)
        error = response.json()
        assert field in (error.get("field") or "") + error["detail"], (change, error)
    assert await _count(client, headers, team.case_id) == before


async def test_bad_cases_are_refused(client: Client, people: Any, case_body: Any) -> None:
    headers = people.coordinator.headers
    bad: list[tuple[dict[str, Any], str]] = [
        ({"child_birth_date": "2030-01-01"}, "child_birth_date"),
        ({"reference": "01017012345"}, "reference"),
        ({"reference": "010170 12345"}, "reference"),
        ({"measure_type": "ordered"}, "order_date"),
        ({"child_given_name": "Sara\r\nX"}, "child_given_name"),
        ({"language": "sv"}, "language"),
    ]
    for change, field in bad:
        response = await client.post("/cases", json=case_body(**change), headers=headers)
        assert response.status_code == 400, (change, response.text)
        error = response.json()
        assert field in (error.get("field") or "") + error["detail"], (change, error)
    assert (await client.get("/cases", headers=headers)).json() == []
    duplicate = await client.post("/cases", json=case_body(), headers=headers)
    assert duplicate.status_code == 201
    again = await client.post("/cases", json=case_body(), headers=headers)
    assert again.status_code == 400 and again.json()["field"] == "reference"


async def test_oversized_body_is_refused(client: Client, people: Any, team: Any) -> None:
    body = {"name": "X", "role": "gp", "organisation": "y" * 100_000}
    response = await client.post(f"/cases/{team.case_id}/contacts", json=body,
                                 headers=people.coordinator.headers)
    assert response.status_code == 413


async def test_malformed_json_is_a_400(client: Client, people: Any) -> None:
    response = await client.post("/cases", content=b"{not json",
                                 headers={**people.coordinator.headers,
                                          "Content-Type": "application/json"})
    assert response.status_code == 400


async def test_reads_are_audited_once_per_request(client: Client, people: Any, team: Any) -> None:
    headers = people.coordinator.headers
    assert (await client.get(f"/cases/{team.case_id}/contacts", headers=headers)).status_code == 200
    assert (await client.get(f"/cases/{team.case_id}", headers=people.leader.headers)).status_code == 200
    audit = (await client.get(f"/cases/{team.case_id}/audit", headers=headers)).json()
    reads = [(e["action"], e["actor"]) for e in audit if e["action"].startswith("read.")]
    assert ("read.contacts", f"user:{people.coordinator.id}") in reads
    assert ("read.case", f"user:{people.leader.id}") in reads
    assert sum(1 for action, _ in reads if action == "read.contacts") == 1


async def test_admin_sets_the_units_phone_and_closures(client: Client, people: Any) -> None:
    changed = await client.patch("/units/me", headers=people.admin.headers, json={
        "phone": "+47 22 00 00 00", "closures": [{"first": "2027-07-05", "last": "2027-07-30", "label": "Sommer"}]})
    assert changed.status_code == 200, changed.text
    assert (await client.get("/units/me", headers=people.coordinator.headers)).json()["phone"] == "+47 22 00 00 00"
    denied = await client.patch("/units/me", headers=people.coordinator.headers, json={"phone": "+47 1"})
    assert denied.status_code in (400, 403)
    bad = await client.patch("/units/me", headers=people.admin.headers,
                             json={"closures": [{"first": "2027-07-30", "last": "2027-07-05"}]})
    assert bad.status_code == 400 and bad.json()["field"] == "closures[0].last"
