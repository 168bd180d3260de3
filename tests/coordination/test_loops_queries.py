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
