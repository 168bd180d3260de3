"""Closing and reopening a case, on SQLite and PostgreSQL: the meetings still to come are
cancelled and their cancellations go out through the consent gate like any message (a sector
whose consent was withdrawn is told nothing), waiting reminders are withdrawn, the case's feeds
and answer links answer 410, and the record comes with the answer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from record_scene import Client, Demo, send_due
from sqlmodel import select

from coordination.context import ServiceContext
from coordination.models import OutboxMessage
from coordination.outbox.enums import OutboxStatus
from notifications.ports import MessageKind, SuppressionCode


async def _rows(service: ServiceContext, case_id: int) -> list[OutboxMessage]:
    async with service.transaction() as session:
        return list((await session.exec(select(OutboxMessage).where(OutboxMessage.case_id == case_id)
                                        .order_by(OutboxMessage.id))).all())  # type: ignore[arg-type]


async def test_closing_cancels_through_the_gate_and_ends_feeds_and_links(
    client: Client, demo_case: Demo, service: ServiceContext
) -> None:
    case, who = demo_case.case_id, demo_case.coordinator
    teacher = await demo_case.contact(client, "Siri Lærer")
    nurse = await demo_case.contact(client, "Hanne Helsesykepleier")
    mother = await demo_case.contact(client, "Mona Hansen")
    feeds = [(await client.post(f"/cases/{case}/feeds", headers=who, json=body)).json()["token"]
             for body in ({"scope": "case"}, {"scope": "contact", "contact_id": nurse})]
    assert [(await client.get(f"/feeds/{token}.ics")).status_code for token in feeds] == [200, 200]
    links = demo_case.answer_links()
    assert links and {(await client.get(f"/answer/{link}")).status_code for link in links} == {200}
    # The mother withdraws her consent to the school before the case is closed.
    withdrawn = await client.post(f"/cases/{case}/consents", headers=who, json={
        "grantor_contact_id": mother, "sector": "school", "status": "withdrawn", "form": "oral"})
    assert withdrawn.status_code == 201, withdrawn.text
    waiting = [r for r in await _rows(service, case) if r.status is OutboxStatus.PENDING]
    assert MessageKind.REMINDER in {r.kind for r in waiting}

    service.clock.advance(timedelta(hours=2))
    closed = await client.post(f"/cases/{case}/close", headers=who)
    assert closed.status_code == 200, closed.text
    body = closed.json()
    assert body["status"] == "closed" and len(body["cancelled_meetings"]) == 14
    assert body["withdrawn_messages"] == len(waiting) and len(body["revoked_feeds"]) == 2
    assert body["revoked_answer_links"] >= len(links)
    assert body["record"]["case"]["status"] == "closed" and len(body["record"]["meetings"]) == 14
    assert all(m["status"] == "cancelled" for m in body["record"]["meetings"])

    rows = await _rows(service, case)
    assert not [r for r in rows if r.status is OutboxStatus.PENDING and r.kind is not MessageKind.CANCELLATION]
    await send_due(service)
    cancellations = [r for r in await _rows(service, case) if r.kind is MessageKind.CANCELLATION]
    told = {r.recipient_contact_id for r in cancellations if r.status is OutboxStatus.SENT}
    stopped = {r.recipient_contact_id: r for r in cancellations if r.status is OutboxStatus.SUPPRESSED}
    assert mother in told and nurse in told, "cancellations go out as usual"
    assert teacher not in told and stopped[teacher].suppressed_code is SuppressionCode.CONSENT_WITHDRAWN

    assert [(await client.get(f"/feeds/{token}.ics")).status_code for token in feeds] == [410, 410]
    assert {(await client.get(f"/answer/{link}")).status_code for link in links} == {410}

    again = await client.post(f"/cases/{case}/close", headers=who)
    assert again.status_code == 400 and again.json()["field"] == "status"
    assert "only an open case can be closed" in again.json()["detail"]
    change = await client.post(f"/cases/{case}/contacts", headers=who, json={"name": "Ny", "role": "other"})
    assert change.status_code == 400 and "reopen it to change it" in change.json()["detail"]
    assert (await client.get(f"/cases/{case}", headers=who)).status_code == 200, "a closed case can be read"

    reopened = await client.post(f"/cases/{case}/reopen", headers=demo_case.leader)
    assert reopened.status_code == 200 and reopened.json()["status"] == "open"
    assert reopened.json()["purge_due_at"] is None
    log = (await client.get(f"/cases/{case}/audit?limit=1000", headers=who)).json()
    actions = [e["action"] for e in log]
    assert "case.closed" in actions and "case.reopened" in actions and "record.produced" in actions
    again = await client.post(f"/cases/{case}/reopen", headers=who)
    assert again.status_code == 400 and "only a closed case can be reopened" in again.json()["detail"]


async def test_a_case_cannot_be_reopened_once_its_retention_period_has_passed(
    client: Client, demo_case: Demo, service: ServiceContext, people: Any
) -> None:
    case = demo_case.case_id
    closed = await client.post(f"/cases/{case}/close", headers=demo_case.coordinator)
    assert closed.json()["purge_due_at"].startswith("2027-04-04")
    service.clock.advance(timedelta(days=90))
    late = await client.post(f"/cases/{case}/reopen", headers=demo_case.coordinator)
    assert late.status_code == 400 and "cannot be reopened" in late.json()["detail"]
