"""The periodic scan for deadlines the coordinator must act on (DESIGN.md "Coordinator alerts")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import mail_fixtures
from litestar import Litestar
from litestar.testing import AsyncTestClient
from mail_fixtures import to
from smtp_server import SmtpServer
from sqlalchemy import event

from coordination.access import users
from coordination.context import ServiceContext
from coordination.domain import UserRole
from coordination.models import Case
from coordination.outbox import alerts
from coordination.schemas import UserIn
from notifications.dispatcher import Dispatcher
from notifications.ports import AlertKind

Client = AsyncTestClient[Litestar]
dispatcher = mail_fixtures.dispatcher


async def scan(service: ServiceContext) -> int:
    async with service.transaction() as session:
        return await alerts.scan(session, service.now())


async def test_scan_raises_each_deadline_once(client: Client, people: Any, team: Any, service: ServiceContext,
                                              case_body: Any) -> None:
    headers = people.coordinator.headers
    # Consent to school that runs out in ten days.
    until = (service.now() + timedelta(days=10)).isoformat()
    for carer in (team.mother, team.father):
        await client.post(f"/cases/{team.case_id}/consents", headers=headers, json={
            "grantor_contact_id": carer, "sector": "school", "status": "granted", "level": "purpose",
            "form": "written", "valid_until": until})
    # The child turns 15 within 30 days.
    await client.patch(f"/cases/{team.case_id}", headers=headers, json={"child_birth_date": "2012-01-20"})
    # An ordered measure whose year ends within 30 days.
    ordered = await client.post("/cases", headers=headers, json=case_body(
        reference="BV-ORD-2", measure_type="ordered", order_date="2026-01-25"))
    assert ordered.status_code == 201, ordered.text
    # An evaluation that was not marked held.
    meeting = await client.post(f"/cases/{team.case_id}/meetings", headers=headers, json={
        "start": "2027-01-05T09:00:00+01:00", "end": "2027-01-05T10:00:00+01:00", "kind": "mini_evaluation",
        "participant_ids": [team.mother]})
    assert meeting.status_code == 201

    assert await scan(service) == 4  # two expiring grants, the birthday, the order
    service.clock.advance(timedelta(days=4))
    assert await scan(service) == 1  # now the evaluation is overdue
    assert await scan(service) == 0  # one alert per cause
    kinds = sorted(a["kind"] for a in (await client.get("/alerts", headers=headers)).json())
    assert kinds == ["child_turning_15", "consent_expiring", "consent_expiring", "evaluation_overdue",
                     "ordered_measure_ending"]
    first = (await client.get("/alerts", headers=headers)).json()[0]
    resolved = await client.post(f"/alerts/{first['id']}/resolve", headers=headers)
    assert resolved.status_code == 200 and resolved.json()["resolved_at"] is not None
    assert len((await client.get("/alerts", headers=headers)).json()) == 4
    # Another unit sees none of it.
    assert (await client.get("/alerts", headers=people.stranger.headers)).json() == []
    assert (await client.post(f"/alerts/{first['id']}/resolve", headers=people.stranger.headers)).status_code == 404


async def test_deadlines_are_all_day_events_in_the_coordinators_feed(
    client: Client, people: Any, team: Any, service: ServiceContext
) -> None:
    headers = people.coordinator.headers
    until = (service.now() + timedelta(days=10)).isoformat()
    await client.post(f"/cases/{team.case_id}/consents", headers=headers, json={
        "grantor_contact_id": team.mother, "sector": "health", "status": "granted", "level": "purpose",
        "form": "written", "valid_until": until})
    feed = await client.post("/users/me/feeds", headers=headers, json={})
    assert feed.status_code == 201, feed.text
    path = feed.json()["url"][feed.json()["url"].index("/feeds/"):]
    assert "Frist" not in (await client.get(path)).text
    await scan(service)
    body = (await client.get(path)).text.replace("\r\n ", "")
    assert "SUMMARY:Frist: Et samtykke utløper innen 14 dager – BV-2027-17 S.H." in body
    assert "DTSTART;VALUE=DATE:20270114" in body
    alert = (await client.get("/alerts", headers=headers)).json()[0]
    await client.post(f"/alerts/{alert['id']}/resolve", headers=headers)
    assert "Frist" not in (await client.get(path)).text


async def test_an_alert_is_not_mailed_to_a_coordinator_taken_off_the_case(
    client: Client, people: Any, team: Any, service: ServiceContext, dispatcher: Dispatcher, smtp: SmtpServer
) -> None:
    """Rule 11: an alert queued while a coordinator was on the case is not mailed once they are off
    it; the coordinator who stays gets it."""
    async with service.transaction() as session:
        created = {}
        for name in ("Vera", "Wenche"):
            made = await users.create_user(session, people.coordinator.unit_id, UserIn(
                name=name, role=UserRole.COORDINATOR, email=f"{name.lower()}@bv.example.org"), service.now())
            created[name] = made.user.id
    assigned = await client.put(f"/cases/{team.case_id}/coordinators", headers=people.leader.headers,
                                json=list(created.values()))
    assert assigned.status_code == 200, assigned.text
    async with service.transaction() as session:
        case = await session.get(Case, team.case_id)
        assert case is not None
        assert await alerts.raise_alert(session, case, AlertKind.NO_FEASIBLE_SLOT.value, "test:no-slot", service.now())
    moved = await client.put(f"/cases/{team.case_id}/coordinators", headers=people.leader.headers,
                             json=[created["Wenche"]])
    assert moved.status_code == 200, moved.text
    await dispatcher.drain_once()
    assert sorted(to(a) for a in smtp.arrivals) == ["wenche@bv.example.org"]


async def test_a_scan_reads_a_fixed_set_of_statements_however_many_cases(
    client: Client, people: Any, team: Any, service: ServiceContext, case_body: Any
) -> None:
    """The scan runs every ten minutes over every open case of the country: with nothing new to
    raise it costs the same few statements for 1 case with deadlines as for 11 (issue 17)."""
    headers = people.coordinator.headers
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    async def counted_scan() -> int:
        engine = service.engine.sync_engine
        event.listen(engine, "before_cursor_execute", note)
        try:
            statements.clear()
            assert await scan(service) == 0  # all raised already
        finally:
            event.remove(engine, "before_cursor_execute", note)
        return len(statements)

    async def add_case(n: int) -> None:
        case = await client.post("/cases", headers=headers, json=case_body(
            reference=f"BV-SCAN-{n}", child_birth_date="2012-01-20", measure_type="ordered",
            order_date="2026-01-25"))
        assert case.status_code == 201, case.text
        until = (service.now() + timedelta(days=10)).isoformat()
        contact = await client.post(f"/cases/{case.json()['id']}/contacts", headers=headers,
                                    json={"name": f"Mor {n}", "role": "parent", "daily_care": True})
        granted = await client.post(f"/cases/{case.json()['id']}/consents", headers=headers, json={
            "grantor_contact_id": contact.json()["id"], "sector": "school", "status": "granted",
            "level": "purpose", "form": "written", "valid_until": until})
        assert granted.status_code == 201, granted.text

    await add_case(0)
    assert await scan(service) == 3  # the consent, the birthday and the order of the new case
    small = await counted_scan()
    for n in range(1, 11):
        await add_case(n)
    assert await scan(service) == 30
    large = await counted_scan()
    assert large == small, statements


async def test_a_child_born_on_29_february_is_alerted_30_days_before_28_february(
    client: Client, people: Any, team: Any, service: ServiceContext
) -> None:
    """fristloven § 3: in 2027 the 15th birthday of a child born 29 February 2012 is 28 February,
    so the 30 days' notice starts on 29 January (noon in Oslo both days)."""
    headers = people.coordinator.headers
    changed = await client.patch(f"/cases/{team.case_id}", headers=headers, json={"child_birth_date": "2012-02-29"})
    assert changed.status_code == 200, changed.text
    service.clock.set(datetime(2027, 1, 28, 11, 0, tzinfo=UTC))
    assert await scan(service) == 0
    service.clock.set(datetime(2027, 1, 29, 11, 0, tzinfo=UTC))
    assert await scan(service) == 1
    [alert] = (await client.get("/alerts", headers=headers)).json()
    assert alert["kind"] == "child_turning_15" and alert["detail"] == {"birthday": "2027-02-28"}
    assert alert["due_at"].startswith("2027-02-27T23:00:00")
