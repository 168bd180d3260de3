"""One focused test per bug the reliability tests found, each failing without its fix
(the random histories that found them are too long to keep as examples)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import mail_fixtures
from mail_fixtures import Client, make_dispatcher, meeting, to
from smtp_server import SmtpServer

from coordination.context import ServiceContext
from coordination.levels import Level
from notifications.dispatcher import Dispatcher

smtp, dispatcher = mail_fixtures.smtp, mail_fixtures.dispatcher


async def test_a_change_of_place_keeps_the_reminders(
    client: Client, people: Any, team: Any, service: ServiceContext, smtp: SmtpServer, dispatcher: Dispatcher
) -> None:
    """Found by the stateful test: the new reminders had the old ones' idempotency key (start
    time only), so after a change that kept the time they were never queued."""
    created = await meeting(client, people, team, [team.mother], start="2027-01-11T08:00:00+00:00",
                            end="2027-01-11T09:00:00+00:00")
    await dispatcher.drain_once()
    for room in ("rom 4", "rom 5"):
        changed = await client.put(f"/cases/{team.case_id}/meetings/{created['id']}",
                                   headers=people.coordinator.headers, json={"place": f"Rådhuset, {room}"})
        assert changed.status_code == 200, changed.text
        await dispatcher.drain_once()
    before = len(smtp.arrivals)
    service.clock.set(datetime.fromisoformat(created["start"]) - timedelta(hours=48))
    await dispatcher.drain_once()
    reminders = [a for a in smtp.arrivals[before:] if to(a) == "mona@example.org"]
    assert len(reminders) == 1
    assert "Påminnelse" in str(reminders[0].message["Subject"])
    assert "rom 5" in reminders[0].message.get_body(preferencelist=("plain",)).get_content()


async def test_the_service_s_own_people_get_invitations_naming_the_child(
    client: Client, people: Any, team: Any, service: ServiceContext, smtp: SmtpServer
) -> None:
    """Found by the stateful test: with an e-mail cap of purpose or content, the caseworker's
    invitation to a meeting with the child went dead: the leak guard withheld the child's
    name from everyone outside the family, while the attendee list rightly shows it to the
    service."""
    service.settings = replace(service.settings, email_level_cap=Level.PURPOSE)
    added = await client.post(f"/cases/{team.case_id}/contacts", headers=people.coordinator.headers, json={
        "name": "Kari Koordinator", "role": "caseworker", "email": "kari@bv.example.org"})
    await meeting(client, people, team, [team.child, added.json()["id"]])
    await make_dispatcher(service, smtp.port).drain_once()
    assert [to(a) for a in smtp.arrivals] == ["kari@bv.example.org"]
