"""Issue 12, the send path at its edges: quiet hours from the contact as it is at send time
(rule 10), one disclosure level for every part of a message (rules 3 and 9), one answer link
for the life of an invitation, and the relay's time in the audit. Through the HTTP API, the
real dispatcher and a real SMTP server (aiosmtpd), on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import stat
from dataclasses import replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import icalendar
import mail_fixtures
import pytest
from mail_fixtures import Client, consent, to
from smtp_server import Mailbox, SmtpServer
from sqlmodel import col, select

from coordination.clock import Clock
from coordination.context import ServiceContext
from coordination.levels import Level
from coordination.models import AnswerToken, AuditEntry, OutboxMessage
from coordination.outbox.dispatcher import build_dispatcher
from coordination.scheduling.answer_links import answer_link_key
from coordination.security import hash_token
from coordination.settings import Settings
from notifications.dispatcher import DispatchSettings, Outcome
from notifications.email import MailSettings
from notifications.transport import SmtpSecurity, SmtpSettings, SmtpTransport

dispatcher = mail_fixtures.dispatcher

TEACHER = "siri@skole.example.org"
GOALS = "Oppmøte minst 90 prosent de neste tolv ukene"
MEASURE = "Miljøterapeut hjemme"
AGENDA = "Oppfølging av skolefravær"
START = "2027-01-11T09:00:00+01:00"


def _parts(message: EmailMessage) -> tuple[str, str, icalendar.Calendar | None]:
    """The text, the HTML (unescaped) and the parsed calendar part of a mail."""
    text = html_text = ""
    calendar = None
    for part in message.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        if part.get_content_type() == "text/plain":
            text = payload.decode("utf-8")
        elif part.get_content_type() == "text/html":
            html_text = html.unescape(payload.decode("utf-8"))
        elif part.get_content_type() == "text/calendar":
            calendar = icalendar.Calendar.from_ical(payload)
    return text, html_text, calendar


def _attendees(event: Any) -> list[str]:
    found = event.get("ATTENDEE")
    if found is None:
        return []
    return [str(a) for a in (found if isinstance(found, list) else [found])]


async def _rows(service: ServiceContext) -> list[OutboxMessage]:
    async with service.transaction() as session:
        return list((await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all())


async def _audit(service: ServiceContext, action: str) -> list[AuditEntry]:
    async with service.transaction() as session:
        found = await session.exec(select(AuditEntry).where(AuditEntry.action == action)
                                   .order_by(col(AuditEntry.id)))
        return list(found.all())


# --- hole 5: every part of a message at one level, and the audit says which -----------------

_LEVELS = ("logistics", "purpose", "content")


def _expected_level(kind: str, cap: str) -> str:
    """An invitation or update may help people prepare (content); a reminder or cancellation
    only has to identify the meeting (purpose at most). Never above the channel cap."""
    ceiling = "content" if kind in ("invitation", "update") else "purpose"
    return min(cap, ceiling, key=_LEVELS.index)


@pytest.mark.parametrize("cap", _LEVELS)
async def test_every_part_of_every_message_is_rendered_at_the_audited_level(
    client: Client, people: Any, team: Any, service: ServiceContext, smtp: SmtpServer, cap: str
) -> None:
    headers = people.coordinator.headers
    for contact, email in ((team.nurse, "hanne@helse.example.org"), (team.nav, "nils@nav.example.org")):
        assert (await client.patch(f"/cases/{team.case_id}/contacts/{contact}", headers=headers,
                                   json={"email": email})).status_code == 200
    for carer in (team.mother, team.father):
        await consent(client, people, team, carer, "school", level="content")
        await consent(client, people, team, carer, "nav", level="purpose")
    plan = await client.put(f"/cases/{team.case_id}/plan", headers=headers, json={
        "start_date": "2027-01-04", "expected_end": "2027-12-17", "goals": GOALS,
        "measures": [{"what": MEASURE, "how_often": "2x/uke"}], "member_ids": [team.mother]})
    assert plan.status_code == 200, plan.text
    meeting = await mail_fixtures.meeting(client, people, team,
                                          [team.mother, team.father, team.teacher, team.nav, team.nurse],
                                          start=START, end="2027-01-11T10:00:00+01:00", agenda=AGENDA,
                                          kind="startup")
    capped = ServiceContext(replace(service.settings, email_level_cap=Level(cap)), service.engine, service.sessions,
                            service.clock)
    sender = mail_fixtures.make_dispatcher(capped, smtp.port)
    url = f"/cases/{team.case_id}/meetings/{meeting['id']}"

    await sender.drain_once()  # the invitation
    service.clock.set(datetime.fromisoformat(START) - timedelta(hours=48))
    await sender.drain_once()  # the 48-hour reminder
    assert (await client.put(url, headers=headers, json={"place": "Rådhuset, rom 4"})).status_code == 200
    await sender.drain_once()  # the update
    assert (await client.post(f"{url}/cancel", headers=headers)).status_code == 200
    await sender.drain_once()  # the cancellation

    rows = {r.message_id: r for r in await _rows(service)}
    sent_level = {e.subject: e.detail["level"] for e in await _audit(service, "notification.sent")}
    seen: set[str] = set()
    for arrival in smtp.arrivals:
        if to(arrival) != TEACHER:
            continue
        row = rows[str(arrival.message["Message-ID"])]
        level = _expected_level(row.kind, cap)
        assert sent_level[f"outbox:{row.id}"] == level, (row.kind, cap)
        seen.add(row.kind)
        text, html_text, calendar = _parts(arrival.message)
        bodies = [text, html_text]
        if calendar is not None:
            event = calendar.walk("VEVENT")[0]
            ics_words = f"{event.get('SUMMARY', '')}\n{event.get('DESCRIPTION', '')}"
            attendees = _attendees(event)
            bodies.append(ics_words)
            if level == "logistics":
                assert attendees == [f"mailto:{TEACHER}"], (row.kind, attendees)
                assert str(event["SUMMARY"]) == "Møte"
            else:
                assert f"mailto:{TEACHER}" in attendees and "mailto:nils@nav.example.org" in attendees
            # Rule 8 at every level: a sector without consent is never shown.
            assert "mailto:hanne@helse.example.org" not in attendees
        else:
            assert row.kind == "reminder"
        for body in bodies:
            if level != "content":
                assert "90 prosent" not in body and MEASURE not in body, (row.kind, cap)
            if level == "logistics":
                assert AGENDA not in body and "Oppstartsmøte" not in body, (row.kind, cap)
                assert "Nils" not in body and "Mona" not in body, (row.kind, cap)
            assert "Hanne" not in body
        # What the audit says was disclosed really was: the level is not overstated.
        if level != "logistics":
            assert AGENDA in text and AGENDA in html_text
        if level == "content":
            assert GOALS in text and GOALS in html_text
            assert calendar is not None and GOALS in str(calendar.walk("VEVENT")[0]["DESCRIPTION"])
    assert seen == {"invitation", "reminder", "update", "cancellation"}


# --- hole 4: quiet hours follow the contact as it is when the message is sent --------------

SIX_OSLO = datetime.fromisoformat("2027-01-11T06:00:00+01:00")  # the 3-hour reminder of a 09:00 meeting
SEVEN_OSLO = datetime.fromisoformat("2027-01-11T07:00:00+01:00")


async def _reminders_to(service: ServiceContext, contact: int) -> list[OutboxMessage]:
    return [r for r in await _rows(service) if r.kind == "reminder" and r.recipient_contact_id == contact]


async def test_a_contact_corrected_to_parent_is_not_woken_by_a_reminder(
    client: Client, people: Any, team: Any, dispatcher: Any, smtp: SmtpServer, service: ServiceContext
) -> None:
    for carer in (team.mother, team.father):
        await consent(client, people, team, carer, "school")
    await mail_fixtures.meeting(client, people, team, [team.mother, team.teacher], start=START)
    service.clock.set(datetime.fromisoformat(START) - timedelta(hours=48))
    await dispatcher.drain_once()  # the invitation and the 48-hour reminder, in the daytime
    # Queued to a school contact; the role was wrong: she is the child's mother.
    corrected = await client.patch(f"/cases/{team.case_id}/contacts/{team.teacher}",
                                   headers=people.coordinator.headers, json={"role": "parent"})
    assert corrected.status_code == 200, corrected.text
    before = len(smtp.arrivals)

    service.clock.set(SIX_OSLO)
    await dispatcher.drain_once()

    assert TEACHER not in [to(a) for a in smtp.arrivals[before:]]
    [held] = [r for r in await _reminders_to(service, team.teacher) if r.status == "pending"]
    assert held.next_attempt_at == SEVEN_OSLO and held.attempts == 0
    # Waiting is no disclosure: nothing is recorded as sent.
    assert held.sent_at is None and held.level == ""
    assert f"outbox:{held.id}" not in {e.subject for e in await _audit(service, "notification.sent")}

    service.clock.set(SEVEN_OSLO - timedelta(minutes=1))
    await dispatcher.drain_once()
    assert TEACHER not in [to(a) for a in smtp.arrivals[before:]]
    service.clock.set(SEVEN_OSLO)
    await dispatcher.drain_once()
    assert [to(a) for a in smtp.arrivals[before:]].count(TEACHER) == 1
    sent = [r for r in await _reminders_to(service, team.teacher) if r.id == held.id]
    assert sent[0].status == "sent" and sent[0].sent_at == SEVEN_OSLO


async def test_a_parent_corrected_to_teacher_is_not_held_by_quiet_hours_but_by_consent(
    client: Client, people: Any, team: Any, dispatcher: Any, smtp: SmtpServer, service: ServiceContext
) -> None:
    headers = people.coordinator.headers
    first = await mail_fixtures.meeting(client, people, team, [team.mother, team.father], start=START)
    second = await mail_fixtures.meeting(client, people, team, [team.mother, team.father],
                                         start="2027-01-12T09:00:00+01:00", end="2027-01-12T10:00:00+01:00")
    await dispatcher.drain_once()  # the invitations, in the daytime
    # Every reminder was queued to him as a parent; he is the child's teacher, without daily care.
    corrected = await client.patch(f"/cases/{team.case_id}/contacts/{team.father}", headers=headers,
                                   json={"role": "school_contact", "daily_care": False,
                                         "email": "per@skole.example.org"})
    assert corrected.status_code == 200, corrected.text
    for day in ("2027-01-09T09:00:00+01:00", "2027-01-10T09:00:00+01:00"):  # the 48-hour reminders
        service.clock.set(datetime.fromisoformat(day))
        await dispatcher.drain_once()

    # No school consent: the first meeting's 06:00 reminder is refused at once, not kept for 07:00.
    service.clock.set(SIX_OSLO)
    await dispatcher.drain_once()
    [refused] = [r for r in await _reminders_to(service, team.father)
                 if r.meeting_id == first["id"] and r.due_at == SIX_OSLO]
    assert refused.status == "suppressed" and refused.suppressed_code == "no_consent"

    # With school consent (the mother alone has daily care now) the next one goes out at 06:00:
    # he is no family, while the mother's waits for the morning.
    await consent(client, people, team, team.mother, "school")
    before = len(smtp.arrivals)
    service.clock.set(SIX_OSLO + timedelta(days=1))
    await dispatcher.drain_once()
    assert [to(a) for a in smtp.arrivals[before:]] == ["per@skole.example.org"]
    [sent] = [r for r in await _reminders_to(service, team.father)
              if r.meeting_id == second["id"] and r.due_at == SIX_OSLO + timedelta(days=1)]
    assert sent.status == "sent" and sent.sent_at == SIX_OSLO + timedelta(days=1)


# --- hole 10: one answer link for the life of an invitation; the relay's time in the audit ---

MOTHER = "mona@example.org"


class FirstCopyUnacknowledged(Mailbox):
    """A relay that keeps the first copy but answers 451, as when its 250 is lost on the way
    back or the service dies before reading it: the copy arrived, the service sends it again."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        return "451 4.3.0 Temporary failure, try again" if len(self.arrivals) == 1 else reply


class RelayTakingTime(SmtpTransport):
    """The SMTP conversation takes seven seconds on the service's clock."""

    def __init__(self, port: int, clock: Clock) -> None:
        super().__init__(SmtpSettings(host="127.0.0.1", port=port, security=SmtpSecurity.NONE, timeout=5))
        self.clock = clock

    async def send(self, message: EmailMessage) -> None:
        self.clock.advance(timedelta(seconds=7))
        await super().send(message)


def _answer_path(message: EmailMessage) -> str:
    text, _, _ = _parts(message)
    link = next(word for word in text.split() if "/answer/" in word)
    return link[link.index("/answer/"):]


async def test_the_answer_link_of_every_copy_keeps_working(
    client: Client, people: Any, team: Any, service: ServiceContext
) -> None:
    relay = SmtpServer()
    relay.mailbox = FirstCopyUnacknowledged()
    relay.up()
    try:
        sender = mail_fixtures.make_dispatcher(service, relay.port)
        meeting = await mail_fixtures.meeting(client, people, team, [team.mother], start=START)
        assert (await sender.drain_once()).count(Outcome.RETRY) == 1
        service.clock.advance(timedelta(minutes=5))
        assert (await sender.drain_once()).count(Outcome.SENT) == 1
        moved = await client.put(f"/cases/{team.case_id}/meetings/{meeting['id']}",
                                 headers=people.coordinator.headers, json={"place": "Rådhuset, rom 4"})
        assert moved.status_code == 200
        await sender.drain_once()
        copies = [a.message for a in relay.arrivals if to(a) == MOTHER]
    finally:
        relay.down()

    assert len(copies) == 3  # the unacknowledged invitation, its resend, and the update
    paths = [_answer_path(copy) for copy in copies]
    assert len(set(paths)) == 1
    for path in paths:
        page = await client.get(path)
        assert page.status_code == 200 and "Rådhuset, rom 4" in page.text
    answered = await client.post(paths[0], data={"answer": "accepted"})
    assert answered.status_code == 200, answered.text
    # Stored only hashed: the token itself is nowhere in its row.
    async with service.transaction() as session:
        [row] = (await session.exec(select(AnswerToken))).all()
    token = paths[0].removeprefix("/answer/")
    assert token not in (row.token_hash, row.salt) and row.token_hash == hash_token(token)


async def test_a_removed_participant_s_link_stops_working(
    client: Client, people: Any, team: Any, dispatcher: Any, smtp: SmtpServer
) -> None:
    await mail_fixtures.meeting(client, people, team, [team.mother, team.father], start=START)
    await dispatcher.drain_once()
    path = _answer_path(next(a.message for a in smtp.arrivals if to(a) == MOTHER))
    removed = await client.patch(f"/cases/{team.case_id}/contacts/{team.mother}",
                                 headers=people.coordinator.headers, json={"active": False})
    assert removed.status_code == 200, removed.text
    assert (await client.get(path)).status_code == 410


async def test_sent_at_is_when_the_relay_took_the_message_not_when_the_gate_decided(
    client: Client, people: Any, team: Any, service: ServiceContext, smtp: SmtpServer
) -> None:
    sender = build_dispatcher(service, RelayTakingTime(smtp.port, service.clock),
                              dispatch_settings=DispatchSettings(mail=MailSettings(sender_address=mail_fixtures.SENDER)))
    await mail_fixtures.meeting(client, people, team, [team.mother], start=START)
    decided = service.now()

    assert (await sender.drain_once()).count(Outcome.SENT) == 1

    accepted = decided + timedelta(seconds=7)
    [row] = [r for r in await _rows(service) if r.kind == "invitation"]
    assert row.sent_at == accepted
    [sent] = await _audit(service, "notification.sent")
    assert sent.at == accepted and sent.subject == f"outbox:{row.id}"
    [allowed] = [e for e in await _audit(service, "disclosure.allowed") if e.detail.get("outbox") == row.id]
    assert allowed.at == decided


def test_the_link_secret_is_configured_or_kept_beside_the_sqlite_database(tmp_path: Path) -> None:
    configured = "k" * 40
    assert answer_link_key(replace(Settings(), link_secret=configured)) == configured.encode()
    database = tmp_path / "embedded.db"
    embedded = replace(Settings(), database_url=f"sqlite+aiosqlite:///{database}")
    key = answer_link_key(embedded)
    kept = tmp_path / "embedded.db.link-secret"
    assert kept.read_text().strip().encode() == key and len(key) >= 32
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600  # the service's user only
    # A restart reads the same secret: links sent before it keep their value.
    moved = tmp_path / "moved.db"
    (tmp_path / "moved.db.link-secret").write_text(key.decode() + "\n")
    assert answer_link_key(replace(embedded, database_url=f"sqlite+aiosqlite:///{moved}")) == key
    with pytest.raises(ValueError, match="SAMHANDLING_LINK_SECRET must be at least 32 characters"):
        Settings.from_env({"SAMHANDLING_LINK_SECRET": "too-short"})
    assert Settings.from_env({"SAMHANDLING_LINK_SECRET": configured}).link_secret == configured
