"""Invitations and reminders end to end: the API queues, the dispatcher drains through the
consent gate to a real SMTP server (aiosmtpd), on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import icalendar
import mail_fixtures
import pytest
from mail_fixtures import SENDER, Client, consent, to
from smtp_server import SmtpServer
from sqlmodel import select

from coordination.context import ServiceContext
from coordination.models import AuditEntry, OutboxMessage
from notifications.dispatcher import Dispatcher, Outcome

dispatcher = mail_fixtures.dispatcher


@dataclass
class Scene:
    team: Any
    caseworker: int
    meeting: dict[str, Any]


def ics_of(message: EmailMessage) -> icalendar.Calendar:
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            return icalendar.Calendar.from_ical(part.get_payload(decode=True))
    raise AssertionError("no calendar part")


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


@pytest.fixture
async def scene(client: Client, people: Any, team: Any) -> Scene:
    """School consent from both carers; health and NAV none. A confirmed ad hoc meeting a week
    ahead with the family, the teacher, the nurse, NAV and the caseworker."""
    headers = people.coordinator.headers
    added = await client.post(f"/cases/{team.case_id}/contacts", headers=headers, json={
        "name": "Kari Koordinator", "role": "caseworker", "email": "kari@bv.example.org"})
    caseworker = added.json()["id"]
    for email, contact in (("per@example.org", team.father), ("hanne@helse.example.org", team.nurse),
                           ("nils@nav.example.org", team.nav), ("sara@example.org", team.child)):
        patched = await client.patch(f"/cases/{team.case_id}/contacts/{contact}", headers=headers,
                                     json={"email": email})
        assert patched.status_code == 200
    for carer in (team.mother, team.father):
        await consent(client, people, team, carer, "school")
    response = await client.post(f"/cases/{team.case_id}/meetings", headers=headers, json={
        "start": "2027-01-11T09:00:00+01:00", "end": "2027-01-11T10:00:00+01:00", "place": "Rådhuset, rom 3",
        "agenda": "Oppfølging av miljøterapi", "kind": "startup",
        "participant_ids": [team.mother, team.father, team.child, team.teacher, team.nurse, team.nav, caseworker]})
    assert response.status_code == 201, response.text
    return Scene(team, caseworker, response.json())


async def outbox_rows(service: ServiceContext) -> list[OutboxMessage]:
    async with service.transaction() as session:
        return list((await session.exec(select(OutboxMessage).order_by(OutboxMessage.id))).all())


async def audit_actions(service: ServiceContext) -> list[AuditEntry]:
    async with service.transaction() as session:
        return list((await session.exec(select(AuditEntry).order_by(AuditEntry.id))).all())


async def test_invitations_reach_only_those_consent_allows(
    scene: Scene, dispatcher: Dispatcher, smtp: SmtpServer, service: ServiceContext
) -> None:
    report = await dispatcher.drain_once()
    assert report.claimed == 7
    recipients = sorted(to(a) for a in smtp.arrivals)
    assert recipients == sorted(["mona@example.org", "per@example.org", "sara@example.org",
                                 "siri@skole.example.org", "kari@bv.example.org"])
    rows = {r.recipient_contact_id: r for r in await outbox_rows(service) if r.kind == "invitation"}
    for partner in (scene.team.nurse, scene.team.nav):
        assert rows[partner].status == "suppressed" and rows[partner].suppressed_code == "no_consent"
    teacher_mail = next(a for a in smtp.arrivals if to(a) == "siri@skole.example.org").message
    assert teacher_mail.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in teacher_mail.iter_parts()] == ["text/plain", "text/html", "text/calendar"]
    calendar_part = list(teacher_mail.iter_parts())[2]
    assert calendar_part.get_param("method") == "REQUEST"
    calendar = ics_of(teacher_mail)
    assert calendar["METHOD"] == "REQUEST"
    event = calendar.walk("VEVENT")[0]
    assert str(event["ORGANIZER"]).lower() == f"mailto:{SENDER}"
    assert SENDER in str(teacher_mail["From"])
    assert int(event["SEQUENCE"]) == 0 and str(event["UID"]) == scene.meeting["uid"]
    # Logistics is the default e-mail cap: neutral subject, no service name, no child, no measure.
    whole = teacher_mail.as_string().casefold()
    for forbidden in ("barnevern", "sara", "miljøterapi", "oppstartsmøte", "nils", "hanne"):
        assert not re.search(rf"\b{forbidden}\b", whole), forbidden
    assert "rådhuset, rom 3" in text_of(teacher_mail).casefold()
    # Every decision was recorded, allow and deny, with the consent records behind it.
    audit = await audit_actions(service)
    denied = [e for e in audit if e.action == "disclosure.denied"]
    assert {e.detail["contact"] for e in denied} == {scene.team.nurse, scene.team.nav}
    allowed_teacher = next(e for e in audit if e.action == "disclosure.allowed"
                           and e.detail["contact"] == scene.team.teacher)
    assert len(allowed_teacher.detail["consent_records"]) == 2  # type: ignore[arg-type]
    assert sum(1 for e in audit if e.action == "notification.sent") == 5


async def test_family_gets_their_own_language(
    client: Client, people: Any, scene: Scene, dispatcher: Dispatcher, smtp: SmtpServer
) -> None:
    await client.patch(f"/cases/{scene.team.case_id}/contacts/{scene.team.father}",
                       headers=people.coordinator.headers, json={"language": "en"})
    await client.put(f"/cases/{scene.team.case_id}/meetings/{scene.meeting['id']}",
                     headers=people.coordinator.headers, json={"place": "Rådhuset, rom 4"})
    await dispatcher.drain_once()
    father = [a for a in smtp.arrivals if to(a) == "per@example.org"]
    assert father and father[-1].message["Content-Language"] == "en"
    mother = [a for a in smtp.arrivals if to(a) == "mona@example.org"]
    assert mother[-1].message["Content-Language"] == "nb"


async def test_withdrawal_between_queuing_and_sending_stops_the_reminder(
    client: Client, people: Any, scene: Scene, dispatcher: Dispatcher, smtp: SmtpServer, service: ServiceContext
) -> None:
    await dispatcher.drain_once()
    start = datetime.fromisoformat(scene.meeting["start"])
    service.clock.set(start - timedelta(hours=48, minutes=1))
    await consent(client, people, scene.team, scene.team.father, "school", "withdrawn")
    before = len(smtp.arrivals)
    service.clock.set(start - timedelta(hours=48))
    await dispatcher.drain_once()
    new = smtp.arrivals[before:]
    assert "siri@skole.example.org" not in [to(a) for a in new]
    assert "mona@example.org" in [to(a) for a in new]  # the family still gets theirs
    reminder = next(r for r in await outbox_rows(service)
                    if r.kind == "reminder" and r.recipient_contact_id == scene.team.teacher and r.status != "pending")
    assert reminder.status == "suppressed" and reminder.suppressed_code == "consent_withdrawn"
    audit = await audit_actions(service)
    assert any(e.action == "notification.suppressed" and e.detail["contact"] == scene.team.teacher for e in audit)
    # The coordinator is told who still holds an invitation, to tell them in person.
    alerts = (await client.get("/alerts", headers=people.coordinator.headers)).json()
    withdrawn = [a for a in alerts if a["kind"] == "consent_withdrawn"]
    assert withdrawn and "Siri Lærer" in withdrawn[0]["text"]


async def test_consent_granted_later_sends_the_held_back_invitation(
    client: Client, people: Any, scene: Scene, dispatcher: Dispatcher, smtp: SmtpServer
) -> None:
    await dispatcher.drain_once()
    assert "hanne@helse.example.org" not in [to(a) for a in smtp.arrivals]
    await consent(client, people, scene.team, scene.team.mother, "health")
    await dispatcher.drain_once()
    assert "hanne@helse.example.org" not in [to(a) for a in smtp.arrivals]  # the father has not consented
    await consent(client, people, scene.team, scene.team.father, "health")
    await dispatcher.drain_once()
    nurse = [a for a in smtp.arrivals if to(a) == "hanne@helse.example.org"]
    assert len(nurse) == 1
    assert ics_of(nurse[0].message)["METHOD"] == "REQUEST"


async def test_child_turning_15_without_consenting_stops_partners(
    client: Client, people: Any, team: Any, scene: Scene, dispatcher: Dispatcher, smtp: SmtpServer,
    service: ServiceContext
) -> None:
    # The child (born 2012-03-10 in the fixture) turns 15 on 2027-03-10: put the birthday before the reminder.
    await client.patch(f"/cases/{team.case_id}", headers=people.coordinator.headers,
                       json={"child_birth_date": "2012-01-09"})
    await dispatcher.drain_once()
    assert "siri@skole.example.org" in [to(a) for a in smtp.arrivals]
    start = datetime.fromisoformat(scene.meeting["start"])
    service.clock.set(start - timedelta(hours=1))  # 2027-01-11 08:00 Oslo, after the 15th birthday
    before = len(smtp.arrivals)
    await dispatcher.drain_once()
    new = [to(a) for a in smtp.arrivals[before:]]
    assert "siri@skole.example.org" not in new and "mona@example.org" in new
    loops = (await client.get(f"/cases/{team.case_id}/information-loops", headers=people.coordinator.headers)).json()
    teacher = next(c for c in loops["contacts"] if c["contact_id"] == team.teacher)
    assert teacher["now"]["level"] == "none"
    assert any("partsstatus" in r for r in teacher["now"]["reasons"])


async def test_smtp_outage_then_recovery_delivers_once(
    scene: Scene, dispatcher: Dispatcher, smtp: SmtpServer, service: ServiceContext
) -> None:
    smtp.down()
    report = await dispatcher.drain_once()
    # The chunk in flight meets the closed port together and waits; the two without consent
    # are settled by the gate's decision alone.
    assert report.count(Outcome.RETRY) == 5 and report.count(Outcome.SUPPRESSED) == 2
    rows = [r for r in await outbox_rows(service) if r.kind == "invitation" and r.status == "pending"]
    assert rows and all(r.attempts == 1 and r.next_attempt_at > service.now() for r in rows)
    service.clock.advance(timedelta(minutes=1))
    await dispatcher.drain_once()
    smtp.up()
    service.clock.advance(timedelta(hours=1))
    await dispatcher.drain_once()
    await dispatcher.drain_once()
    recipients = [to(a) for a in smtp.arrivals]
    assert sorted(recipients) == sorted(set(recipients)) and len(recipients) == 5
    ids = [a.message["Message-ID"] for a in smtp.arrivals]
    assert len(set(ids)) == 5


async def test_greylisting_is_retried_and_550_is_dead_with_an_alert(
    client: Client, people: Any, scene: Scene, dispatcher: Dispatcher, smtp: SmtpServer, service: ServiceContext
) -> None:
    smtp.mailbox.rcpt_reply = "451 4.7.1 Greylisted, try again later"
    await dispatcher.drain_once()
    assert smtp.arrivals == []
    smtp.mailbox.rcpt_reply = None
    service.clock.advance(timedelta(minutes=5))
    await dispatcher.drain_once()
    assert len(smtp.arrivals) == 5
    # A permanent refusal for one update: dead, and the coordinator is alerted.
    smtp.mailbox.rcpt_reply = "550 5.1.1 No such user"
    moved = await client.put(f"/cases/{scene.team.case_id}/meetings/{scene.meeting['id']}",
                             headers=people.coordinator.headers, json={"place": "Rådhuset, rom 5"})
    assert moved.status_code == 200
    await dispatcher.drain_once()
    dead = [r for r in await outbox_rows(service) if r.status == "dead"]
    assert len(dead) == 5 and all(r.kind == "update" for r in dead)
    alerts = (await client.get(f"/cases/{scene.team.case_id}/alerts", headers=people.coordinator.headers)).json()
    assert sum(1 for a in alerts if a["kind"] == "notification_failed") == 5


async def test_meeting_moved_twice_updates_and_reminders_follow(
    client: Client, people: Any, scene: Scene, dispatcher: Dispatcher, smtp: SmtpServer, service: ServiceContext
) -> None:
    headers = people.coordinator.headers
    url = f"/cases/{scene.team.case_id}/meetings/{scene.meeting['id']}"
    await dispatcher.drain_once()
    first = await client.put(url, headers=headers, json={"start": "2027-01-12T09:00:00+01:00"})
    second = await client.put(url, headers=headers, json={"start": "2027-01-13T13:00:00+01:00"})
    assert (first.json()["sequence"], second.json()["sequence"]) == (1, 2)
    await dispatcher.drain_once()
    mother = [a.message for a in smtp.arrivals if to(a) == "mona@example.org"]
    sequences = [int(ics_of(m).walk("VEVENT")[0]["SEQUENCE"]) for m in mother]
    assert sequences == [0, 2]  # the first update was superseded before it was sent
    # Walk the clock through the old and the new reminder times.
    for moment in ("2027-01-09T09:00:00+01:00", "2027-01-11T06:00:00+01:00", "2027-01-11T13:00:00+01:00",
                   "2027-01-13T10:00:00+01:00"):
        service.clock.set(datetime.fromisoformat(moment))
        await dispatcher.drain_once()
    reminders = [a.message for a in smtp.arrivals if to(a) == "mona@example.org" and "calendar" not in
                 str([p.get_content_type() for p in a.message.walk()])]
    assert len(reminders) == 2
    assert all("13. januar" in str(m["Subject"]) for m in reminders), [str(m["Subject"]) for m in reminders]


async def test_answer_link_updates_the_participant(
    client: Client, people: Any, scene: Scene, dispatcher: Dispatcher, smtp: SmtpServer, service: ServiceContext
) -> None:
    await dispatcher.drain_once()
    mail = next(a.message for a in smtp.arrivals if to(a) == "mona@example.org")
    link = next(word for word in text_of(mail).split() if "/answer/" in word)
    path = link[link.index("/answer/"):]
    page = await client.get(path)
    assert page.status_code == 200 and "Rådhuset, rom 3" in page.text
    assert "Sara" not in page.text and "barnevern" not in page.text.casefold()
    answered = await client.post(path, data={"answer": "accepted"})
    assert answered.status_code == 200 and "Du kommer" in answered.text
    meetings = (await client.get(f"/cases/{scene.team.case_id}/meetings", headers=people.coordinator.headers)).json()
    mother = next(p for p in meetings[0]["participants"] if p["contact_id"] == scene.team.mother)
    assert mother["answer"] == "accepted"
    assert (await client.get("/answer/not-a-token")).status_code == 404
    bad = await client.post(path, data={"answer": "maybe-later"})
    assert bad.status_code == 400
