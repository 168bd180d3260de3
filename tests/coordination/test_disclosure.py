"""What a partner's calendar says about the child: initials, never the full name (DESIGN.md
"Summaries carry ... the child's initials at most"; rule 8 for attendees)."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

Client = AsyncTestClient[Litestar]


async def _feed(client: Client, people: Any, case_id: int, contact_id: int) -> str:
    created = await client.post(f"/cases/{case_id}/feeds", headers=people.coordinator.headers,
                                json={"scope": "contact", "contact_id": contact_id})
    assert created.status_code == 201, created.text
    url = created.json()["url"]
    body = await client.get(url[url.index("/feeds/"):])
    assert body.status_code == 200
    return body.text


async def test_partners_see_the_childs_initials_and_family_the_name(client: Client, people: Any, team: Any) -> None:
    headers = people.coordinator.headers
    for carer in (team.mother, team.father):
        granted = await client.post(f"/cases/{team.case_id}/consents", headers=headers, json={
            "grantor_contact_id": carer, "sector": "school", "status": "granted", "level": "purpose",
            "form": "written"})
        assert granted.status_code == 201
    meeting = await client.post(f"/cases/{team.case_id}/meetings", headers=headers, json={
        "start": "2027-01-12T14:00:00+01:00", "end": "2027-01-12T15:00:00+01:00", "kind": "startup",
        "participant_ids": [team.child, team.mother, team.teacher]})
    assert meeting.status_code == 201, meeting.text
    teacher = await _feed(client, people, team.case_id, team.teacher)
    assert "BEGIN:VEVENT" in teacher
    unfolded = teacher.replace("\r\n ", "")
    assert "Sara" not in unfolded
    assert 'CN="S.H."' in unfolded and "BV-2027-17 S.H." in unfolded
    mother = (await _feed(client, people, team.case_id, team.mother)).replace("\r\n ", "")
    assert 'CN="Sara Hansen"' in mother
