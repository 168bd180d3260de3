"""The authorization matrix: every operation in the OpenAPI document, as every kind of outsider.

One unit's case (with contacts, consent, a meeting, a feed and an alert) is asked for by: no
token, a token nobody has, a deactivated user's token, a leader and an admin of another unit,
a coordinator of the same unit not assigned to the case, and the unit's admin (who sees no
case). None of them may read or change anything of the case — a case they may not see answers
404, as if it did not exist — and no answer to them may carry any of its data. The unit's
leader, who may see the case, is asked too, so that the matrix is seen to reach real data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from coordination.access import users
from coordination.context import ServiceContext
from coordination.domain import UserRole
from coordination.models import Case
from coordination.outbox import alerts
from coordination.schemas import UserIn

Client = AsyncTestClient[Litestar]
#: Words of the case that no outsider's answer may contain.
SECRETS = ("Sara", "BV-2027-17", "Mona Hansen", "Siri Lærer", "mona@example.org", "Rådhuset, rom 3", "Oppfølging")
#: Operations whose capability is in the address, not in a token: tested in test_tokens.py.
CAPABILITIES = {("GET", "/feeds/{filename}"), ("GET", "/answer/{token}"), ("POST", "/answer/{token}")}


@dataclass
class Scene:
    ids: dict[str, int]
    bodies: dict[tuple[str, str], Any]


@dataclass(frozen=True)
class Outsider:
    name: str
    headers: dict[str, str]
    signed_in: bool


async def _scene(client: Client, people: Any, team: Any, service: ServiceContext) -> Scene:
    headers = people.coordinator.headers
    await client.patch(f"/cases/{team.case_id}/contacts/{team.mother}", headers=headers,
                       json={"email": "mona@example.org"})
    for carer in (team.mother, team.father):
        granted = await client.post(f"/cases/{team.case_id}/consents", headers=headers, json={
            "grantor_contact_id": carer, "sector": "school", "status": "granted", "level": "purpose",
            "form": "written"})
        assert granted.status_code == 201
    meeting = (await client.post(f"/cases/{team.case_id}/meetings", headers=headers, json={
        "start": "2027-01-11T09:00:00+01:00", "end": "2027-01-11T10:00:00+01:00", "place": "Rådhuset, rom 3",
        "agenda": "Oppfølging", "participant_ids": [team.mother, team.teacher], "confirm": False})).json()
    feed = (await client.post(f"/cases/{team.case_id}/feeds", headers=headers, json={"scope": "case"})).json()
    plan = await client.put(f"/cases/{team.case_id}/plan", headers=headers,
                            json={"start_date": "2027-01-04", "expected_end": "2027-06-30", "goals": "Oppfølging"})
    assert plan.status_code == 200, plan.text[:300]
    async with service.transaction() as session:
        case = await session.get(Case, team.case_id)
        assert case is not None
        alert = await alerts.raise_alert(session, case, "other", f"case:{case.id}:matrix", service.now())
        assert alert is not None and alert.id is not None
    async with service.transaction() as session:
        target = await users.create_user(session, people.coordinator.unit_id,
                                         UserIn(name="Tove", role=UserRole.COORDINATOR), service.now())
    ids = {"case_id": team.case_id, "contact_id": team.mother, "meeting_id": meeting["id"], "feed_id": feed["id"],
           "alert_id": alert.id, "user_id": target.user.id}
    window = {"window_start": "2027-01-11T08:00:00+01:00", "window_end": "2027-01-15T16:00:00+01:00"}
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/cases"): {"reference": "BV-NY-1", "child_given_name": "Ola", "child_initials": "O.N.",
                             "child_birth_date": "2015-01-01"},
        ("PATCH", "/cases/{case_id}"): {"child_given_name": "Endret"},
        ("PUT", "/cases/{case_id}/coordinators"): [people.other_coordinator.id],
        ("POST", "/cases/{case_id}/contacts"): {"name": "Ny Person", "role": "parent"},
        ("PATCH", "/cases/{case_id}/contacts/{contact_id}"): {"name": "Endret Navn"},
        ("POST", "/cases/{case_id}/consents"): {"grantor_contact_id": team.mother, "sector": "nav",
                                                "status": "granted", "level": "content", "form": "oral"},
        ("PUT", "/cases/{case_id}/plan"): {"start_date": "2027-01-04", "expected_end": "2027-12-01"},
        ("POST", "/cases/{case_id}/meetings"): {"start": "2027-01-12T09:00:00+01:00",
                                                "end": "2027-01-12T10:00:00+01:00", "participant_ids": [team.mother]},
        ("PUT", "/cases/{case_id}/meetings/{meeting_id}"): {"place": "Et annet sted"},
        ("PUT", "/cases/{case_id}/meetings/{meeting_id}/answers/{contact_id}"): {"answer": "declined"},
        ("POST", "/cases/{case_id}/slots"): {**window, "duration_minutes": 60, "participant_ids": [team.mother]},
        ("POST", "/cases/{case_id}/feeds"): {"scope": "case"},
        ("POST", "/users/me/feeds"): {"label": "mine"},
        ("POST", "/users"): {"name": "Ny Bruker", "role": "coordinator"},
        ("PATCH", "/units/me"): {"phone": "+47 22 00 00 00"},
    }
    return Scene(ids, bodies)


async def _outsiders(client: Client, people: Any, service: ServiceContext) -> list[Outsider]:
    async with service.transaction() as session:
        other_unit = await users.get_or_create_unit(session, "Enhet B", service.now())
        assert other_unit.id is not None
        foreign_admin = await users.create_user(session, other_unit.id, UserIn(name="Bjørn", role=UserRole.ADMIN),
                                                service.now())
        leaver = await users.create_user(session, people.coordinator.unit_id,
                                         UserIn(name="Gunn", role=UserRole.COORDINATOR), service.now())
    deactivated = await client.delete(f"/users/{leaver.user.id}", headers=people.admin.headers)
    assert deactivated.status_code == 200

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    return [
        Outsider("no token", {}, False),
        Outsider("unknown token", bearer("A" * 43), False),
        Outsider("deactivated user", bearer(leaver.token), False),
        Outsider("leader of another unit", people.stranger.headers, True),
        Outsider("admin of another unit", bearer(foreign_admin.token), True),
        Outsider("coordinator not assigned", people.other_coordinator.headers, True),
        Outsider("the unit's admin", people.admin.headers, True),
    ]


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, bool, bool]]:
    """(method, path, needs sign-in, has a body) for every documented operation."""
    found = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            secured = operation.get("security", schema.get("security")) not in ([{}], [])
            found.append((method.upper(), path, secured, "requestBody" in operation))
    return sorted(found)


async def _snapshot(client: Client, people: Any, case_id: int) -> list[str]:
    headers = people.coordinator.headers
    parts = ["", "/contacts", "/consents", "/meetings", "/feeds", "/alerts", "/outbox"]
    texts = [(await client.get(f"/cases/{case_id}{part}", headers=headers)).text for part in parts]
    return texts


async def test_no_outsider_reads_or_changes_a_case(
    client: Client, people: Any, team: Any, service: ServiceContext
) -> None:
    scene = await _scene(client, people, team, service)
    outsiders = await _outsiders(client, people, service)
    schema = (await client.get("/schema/openapi.json")).json()
    operations = [op for op in _operations(schema) if (op[0], op[1]) not in CAPABILITIES]
    missing = [f"{m} {p}" for m, p, _, body in operations if body and (m, p) not in scene.bodies]
    assert not missing, f"the matrix needs a request body for: {missing}"
    before = await _snapshot(client, people, team.case_id)
    asked = 0
    for method, path, secured, has_body in operations:
        url = re.sub(r"\{(\w+)\}", lambda m: str(scene.ids[m.group(1)]), path)
        body = scene.bodies.get((method, path)) if has_body else None
        for outsider in outsiders:
            response = await client.request(method, url, json=body, headers=outsider.headers)
            asked += 1
            where = f"{method} {path} as {outsider.name}: {response.status_code} {response.text[:200]}"
            assert response.status_code < 500, where
            assert not any(secret in response.text for secret in SECRETS), where
            if not secured:
                continue
            if not outsider.signed_in:
                assert response.status_code == 401, where
            elif "{case_id}" in path or "{feed_id}" in path or "{alert_id}" in path:
                assert response.status_code == 404, where
            elif "{user_id}" in path:
                # Users are the unit admin's to manage; everyone else gets nothing.
                assert response.status_code in (403, 404) or outsider.name == "the unit's admin", where
            else:
                assert response.status_code < 500, where
    assert await _snapshot(client, people, team.case_id) == before, "an outsider changed the case"
    # The case's own leader reaches the same data: the matrix asks where the data is.
    reads = [(m, p) for m, p, secured, _ in operations if m == "GET" and "{case_id}" in p]
    for _, path in reads:
        url = re.sub(r"\{(\w+)\}", lambda m: str(scene.ids[m.group(1)]), path)
        response = await client.get(url, headers=people.leader.headers)
        assert response.status_code == 200, f"{path} as the leader: {response.status_code}"
    assert "Sara" in (await client.get(f"/cases/{team.case_id}", headers=people.leader.headers)).text
    print(f"authorization matrix: {len(operations)} operations x {len(outsiders)} outsiders = {asked} requests")


@pytest.mark.parametrize("header", ["Bearer", "Basic QUFBOkJCQg==", "Bearer  ", "bearer\tx", "Token abc"])
async def test_malformed_authorization_is_401(client: Client, header: str) -> None:
    response = await client.get("/cases", headers={"Authorization": header})
    assert response.status_code == 401
