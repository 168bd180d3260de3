"""SMS through the outbox, like e-mail: queued per contact as they want to be told, gated by
consent at send time, sent only in the daytime, never above the SMS level cap, retried with
backoff and given up with an alert. The folder gateway writes real files; the failing gateway
is a local HTTP server answering as Sveve does when it is down. Both databases."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from mail_fixtures import SENDER, Client, consent
from sqlmodel import col, select

from coordination.clock import Clock
from coordination.context import ServiceContext
from coordination.models import Alert, AuditEntry, OutboxMessage
from coordination.outbox.dispatcher import build_dispatcher
from coordination.outbox.enums import OutboxStatus
from notifications.dispatcher import Dispatcher, DispatchSettings, Outcome
from notifications.email import MailSettings
from notifications.ports import Channel, DisclosureLevel, MessageKind, SuppressionCode
from notifications.sms import FolderSmsGateway, SmsGateway, SveveGateway, SveveSettings
from notifications.transport import FolderTransport

MOTHERS_MOBILE = "+4740000001"


def dispatcher(service: ServiceContext, tmp_path: Path, sms: SmsGateway | None = None, **overrides: Any
               ) -> Dispatcher:
    settings = DispatchSettings(mail=MailSettings(sender_address=SENDER, sender_name="Møteinnkalling"), **overrides)
    return build_dispatcher(service, FolderTransport(tmp_path / "mail"), dispatch_settings=settings,
                            sms=sms or FolderSmsGateway(tmp_path / "sms"))


async def sms_rows(service: ServiceContext) -> list[OutboxMessage]:
    async with service.transaction() as session:
        rows = await session.exec(select(OutboxMessage).where(OutboxMessage.channel == Channel.SMS)
                                  .order_by(col(OutboxMessage.id)))
        return list(rows.all())


@pytest.fixture
async def scene(client: Client, people: Any, team: Any) -> Any:
    """The mother gets a mobile number (family: both e-mail and SMS by default); the teacher wants
    SMS only (school consent from both carers). A meeting on Monday the 11th at 10:00 confirmed."""
    headers = people.coordinator.headers
    mother = await client.patch(f"/cases/{team.case_id}/contacts/{team.mother}", headers=headers,
                                json={"phone": "400 00 001"})
    assert mother.status_code == 200 and mother.json()["mobile"] == MOTHERS_MOBILE
    assert mother.json()["notify_by"] == "both"
    teacher = await client.patch(f"/cases/{team.case_id}/contacts/{team.teacher}", headers=headers,
                                 json={"phone": "+47 400 00 009", "notify_by": "sms"})
    assert teacher.status_code == 200, teacher.text
    for carer in (team.mother, team.father):
        await consent(client, people, team, carer, "school")
    created = await client.post(f"/cases/{team.case_id}/meetings", headers=headers, json={
        "start": "2027-01-11T10:00:00+01:00", "end": "2027-01-11T11:00:00+01:00", "place": "Rådhuset, rom 3",
        "agenda": "Oppfølging av miljøterapi", "participant_ids": [team.mother, team.teacher]})
    assert created.status_code == 201, created.text
    return team


async def test_an_invalid_number_is_refused_naming_the_field(client: Client, people: Any, team: Any) -> None:
    wrong = await client.patch(f"/cases/{team.case_id}/contacts/{team.mother}", headers=people.coordinator.headers,
                               json={"phone": "+47 12"})
    assert wrong.status_code == 400 and wrong.json()["field"] == "phone"
    no_mobile = await client.patch(f"/cases/{team.case_id}/contacts/{team.father}",
                                   headers=people.coordinator.headers, json={"notify_by": "sms"})
    assert no_mobile.status_code == 400 and no_mobile.json()["field"] == "notify_by"


async def test_a_content_free_notice_goes_by_day_beside_the_mail(scene: Any, service: ServiceContext,
                                                                 tmp_path: Path) -> None:
    await dispatcher(service, tmp_path).drain_once()
    invitations = [r for r in await sms_rows(service) if r.kind is MessageKind.INVITATION]
    assert {r.recipient_contact_id for r in invitations} == {scene.mother, scene.teacher}
    assert all(r.status is OutboxStatus.SENT and r.level == DisclosureLevel.NONE for r in invitations)
    files = sorted((tmp_path / "sms").glob("*.txt"))
    assert len(files) == 2
    mothers = next(f.read_text() for f in files if MOTHERS_MOBILE in f.read_text())
    assert mothers.startswith(f"To: {MOTHERS_MOBILE}\nSegments: 1\n\nDu har fått en møteinnkalling. "
                              "Se e-post eller svar her: http://testserver/answer/")
    assert "Rådhuset" not in mothers and "miljøterapi" not in mothers.casefold()
    # The teacher wanted SMS only; the mother both: one mail, to her.
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 1


async def test_someone_told_by_sms_only_is_not_sent_looking_for_an_email(
        scene: Any, service: ServiceContext, client: Client, people: Any, tmp_path: Path) -> None:
    """The teacher wants SMS only: neither her invitation nor the cancellation points to an e-mail
    she never gets; the mother, told by both, is pointed to hers."""
    sent = dispatcher(service, tmp_path)
    await sent.drain_once()
    headers = people.coordinator.headers
    meeting = (await client.get(f"/cases/{scene.case_id}/meetings", headers=headers)).json()[0]
    cancelled = await client.post(f"/cases/{scene.case_id}/meetings/{meeting['id']}/cancel", headers=headers)
    assert cancelled.status_code == 200, cancelled.text
    await sent.drain_once()
    texts = [f.read_text() for f in sorted((tmp_path / "sms").glob("*.txt"))]
    teachers = [t.split("\n\n", 1)[1].strip() for t in texts if "+4740000009" in t]
    mothers = [t.split("\n\n", 1)[1].strip() for t in texts if MOTHERS_MOBILE in t]
    assert len(teachers) == len(mothers) == 2
    assert any(t.startswith("Du har fått en møteinnkalling. Se den og svar her: http://testserver/answer/")
               for t in teachers), teachers
    assert "Et møte du var invitert til, er avlyst." in teachers
    assert not any("e-post" in t for t in teachers), teachers
    assert "Et møte du var invitert til, er avlyst. Se e-posten for mer." in mothers


async def test_sms_wait_for_the_morning(scene: Any, service: ServiceContext, clock: Clock, tmp_path: Path) -> None:
    clock.set(datetime(2027, 1, 4, 20, 30, tzinfo=UTC))  # 21:30 in Oslo
    report = await dispatcher(service, tmp_path).drain_once()
    held = [r for r in await sms_rows(service) if r.kind is MessageKind.INVITATION]
    assert all(r.status is OutboxStatus.PENDING and r.attempts == 0 for r in held)
    assert {r.next_attempt_at for r in held} == {datetime(2027, 1, 5, 7, 0, tzinfo=UTC)}  # 08:00 in Oslo
    assert report.count(Outcome.DEFERRED) >= 2 and not (tmp_path / "sms").exists()


async def test_consent_withdrawn_before_sending_stops_the_sms(scene: Any, service: ServiceContext, client: Client,
                                                              people: Any, tmp_path: Path) -> None:
    await consent(client, people, scene, scene.father, "school", status="withdrawn")
    await dispatcher(service, tmp_path).drain_once()
    teachers = next(r for r in await sms_rows(service)
                    if r.recipient_contact_id == scene.teacher and r.kind is MessageKind.INVITATION)
    assert (teachers.status, teachers.suppressed_code) == (OutboxStatus.SUPPRESSED, SuppressionCode.CONSENT_WITHDRAWN)
    assert not any("+4740000009" in f.read_text() for f in (tmp_path / "sms").glob("*.txt"))
    async with service.transaction() as session:
        denied = (await session.exec(select(AuditEntry).where(AuditEntry.action == "disclosure.denied"))).all()
    assert any(e.detail["channel"] == "sms" and e.detail["outbox"] == teachers.id for e in denied)


@pytest.mark.parametrize("cap", [DisclosureLevel.LOGISTICS, DisclosureLevel.NONE])
async def test_a_reminder_says_no_more_than_the_cap(scene: Any, service: ServiceContext, clock: Clock,
                                                    tmp_path: Path, cap: DisclosureLevel) -> None:
    await dispatcher(service, tmp_path, sms_level_cap=cap).drain_once()
    clock.set(datetime(2027, 1, 9, 9, 0, tzinfo=UTC))  # 48 hours before, 10:00 in Oslo
    await dispatcher(service, tmp_path, sms_level_cap=cap).drain_once()
    reminder = next(r for r in await sms_rows(service)
                    if r.recipient_contact_id == scene.mother and r.kind is MessageKind.REMINDER
                    and r.due_at <= clock.now())
    texts = [f.read_text() for f in (tmp_path / "sms").glob("*.txt") if "Påminnelse" in f.read_text()]
    if cap is DisclosureLevel.NONE:
        assert (reminder.status, reminder.suppressed_code) == (OutboxStatus.SUPPRESSED, SuppressionCode.LEVEL_NONE)
        assert texts == []
    else:
        assert reminder.status is OutboxStatus.SENT and reminder.level == DisclosureLevel.LOGISTICS
        assert any("Påminnelse: møte 11.01. kl. 10:00, Rådhuset, rom 3." in t for t in texts)
        assert not any("miljøterapi" in t.casefold() for t in texts)


class GatewayDown(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.send_response(503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def gateway_down() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), GatewayDown)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/SMS/SendMessage"
    finally:
        server.shutdown()
        server.server_close()


async def test_a_gateway_that_stays_down_is_retried_then_given_up_with_an_alert(
        scene: Any, service: ServiceContext, clock: Clock, tmp_path: Path, gateway_down: str) -> None:
    sveve = SveveGateway(SveveSettings(url=gateway_down, user="kommune", password="hemmelig"))
    await dispatcher(service, tmp_path, sms=sveve, max_attempts=2).drain_once()
    first = [r for r in await sms_rows(service) if r.kind is MessageKind.INVITATION]
    assert all(r.status is OutboxStatus.PENDING and r.attempts == 1 and "HTTP 503" in r.last_error for r in first)
    clock.advance(timedelta(minutes=5))
    await dispatcher(service, tmp_path, sms=sveve, max_attempts=2).drain_once()
    dead = [r for r in await sms_rows(service) if r.kind is MessageKind.INVITATION]
    assert all(r.status is OutboxStatus.DEAD for r in dead)
    async with service.transaction() as session:
        alerts = (await session.exec(select(Alert).where(Alert.kind == "notification_failed"))).all()
    assert {a.detail["outbox"] for a in alerts} >= {r.id for r in dead}


async def test_the_outbox_shows_sms_beside_mail(scene: Any, client: Client, people: Any) -> None:
    listed = await client.get(f"/cases/{scene.case_id}/outbox", headers=people.coordinator.headers)
    channels = {(r["recipient_contact_id"], r["kind"], r["channel"]) for r in listed.json()}
    assert {(scene.mother, "invitation", "email"), (scene.mother, "invitation", "sms"),
            (scene.teacher, "invitation", "sms")} <= channels
    assert (scene.teacher, "invitation", "email") not in channels
