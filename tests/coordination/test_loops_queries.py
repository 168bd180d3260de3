"""The information loops read one set of queries per case, however many contacts it has, so
that a coordinator's check stays as quick for a large team as for a small one (issue 17)."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import event

Client = AsyncTestClient[Litestar]


async def test_information_loops_read_a_fixed_set_of_queries_however_many_contacts(
    client: Client, people: Any, team: Any, app: Litestar,
) -> None:
    headers = people.coordinator.headers
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    async def loops() -> tuple[int, int]:
        engine = app.state.service.engine.sync_engine
        event.listen(engine, "before_cursor_execute", note)
        try:
            statements.clear()
            answer = await client.get(f"/cases/{team.case_id}/information-loops", headers=headers)
        finally:
            event.remove(engine, "before_cursor_execute", note)
        assert answer.status_code == 200, answer.text
        return len(statements), len(answer.json()["contacts"])

    small = await loops()
    for n in range(10):
        added = await client.post(f"/cases/{team.case_id}/contacts", headers=headers,
                                  json={"name": f"Lærer {n}", "role": "school_contact"})
        assert added.status_code == 201, added.text
    for grantor in (team.mother, team.father):
        granted = await client.post(f"/cases/{team.case_id}/consents", headers=headers, json={
            "grantor_contact_id": grantor, "sector": "school", "status": "granted", "level": "purpose",
            "form": "written"})
        assert granted.status_code == 201, granted.text
    large = await loops()

    assert large[1] == small[1] + 10
    # The user, the case, its contacts, its consent records, and the audit entry of the read.
    assert large[0] == small[0] == 5, statements


async def test_a_loops_read_leaves_its_one_audit_entry_without_a_transaction_around_it(
    client: Client, people: Any, team: Any, app: Litestar,
) -> None:
    """The read's one write is its audit entry, a single INSERT: no BEGIN and COMMIT round trips
    around the read (issue 17), and still exactly one entry per read, none for a refused one."""
    url = f"/cases/{team.case_id}/information-loops"
    commits: list[object] = []

    def note(conn: Any) -> None:
        commits.append(conn)

    engine = app.state.service.engine.sync_engine
    event.listen(engine, "commit", note)
    try:
        read = await client.get(url, headers=people.coordinator.headers)
        refused = [
            (await client.get(url, headers=people.stranger.headers)).status_code,
            (await client.get(url, headers=people.other_coordinator.headers)).status_code,
            (await client.get(f"{url}?at=2027-03-01T09:00:00", headers=people.coordinator.headers)).status_code,
            (await client.get(url, headers={"Authorization": "Bearer not-a-token"})).status_code,
        ]
    finally:
        event.remove(engine, "commit", note)
    assert read.status_code == 200, read.text
    assert refused == [404, 404, 400, 401]
    assert commits == []

    audit = (await client.get(f"/cases/{team.case_id}/audit", headers=people.leader.headers)).json()
    reads = [(e["actor"], e["subject"]) for e in audit if e["action"] == "information_loops.read"]
    assert reads == [(f"user:{people.coordinator.id}", f"case:{team.case_id}")]
