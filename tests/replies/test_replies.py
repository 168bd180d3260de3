"""Answers that come back: each calendar client's reply (golden samples) recorded once, as the
answer link records it; forged, stale, unknown and consent-less replies change nothing and are
audited with their reason; a proposed time reaches the coordinator; bounces mark the message
and name the address; two readers of one mailbox apply an answer once. Both databases."""

from __future__ import annotations

import asyncio
import os
import re
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from mail_fixtures import Client, consent
from reply_samples import CLIENTS, message, reply
from reply_scene import MOTHER, ORGANIZER, PARTSTAT, Sent, answer_of, send_due
from sqlmodel import col, select

from coordination.context import ServiceContext
from coordination.models import AuditEntry, InboundMessage, Meeting, OutboxMessage
from coordination.outbox.enums import OutboxStatus
from coordination.replies.enums import ReplyOutcome
from coordination.replies.inbox import FolderInbox
from coordination.replies.service import handle_message
from coordination.replies.try_reply import write_reply
from coordination.scheduling.enums import AnswerChannel, ParticipantAnswer


async def entries(service: ServiceContext, *actions: str) -> list[AuditEntry]:
    async with service.transaction() as session:
        rows = await session.exec(select(AuditEntry).where(col(AuditEntry.action).in_(actions))
                                  .order_by(col(AuditEntry.id)))
        return list(rows.all())


async def sign_in(client: Client, token: str) -> None:
    """Sign in to the pages with the token form (the embedded default's sign-in)."""
    form = await client.get("/logg-inn")
    csrf = re.search(r'name="_csrf" value="([^"]+)"', form.text)
    assert csrf is not None
    answer = await client.post("/logg-inn", data={"_csrf": csrf.group(1), "token": token, "neste": "/"},
                               follow_redirects=False)
    assert answer.status_code == 303, answer.text


def mothers_reply(sent: Sent, client: str = "gmail", **values: Any) -> bytes:
    defaults: dict[str, Any] = {"uid": sent.uid, "attendee": MOTHER, "organizer": ORGANIZER,
                                "message_id": f"{client}-answer@example.org", "sequence": sent.sequence}
    return reply(client, **{**defaults, **values})


@pytest.mark.parametrize("client_name", CLIENTS)
async def test_each_clients_reply_is_recorded_once_as_the_link_records_it(
        sent: Sent, service: ServiceContext, client: Client, people: Any, client_name: str) -> None:
    partstat = PARTSTAT[client_name]
    raw = mothers_reply(sent, client_name, partstat=partstat)
    assert await handle_message(service, raw) is ReplyOutcome.APPLIED
    assert await handle_message(service, raw) is None  # read again: nothing more
    answered = await answer_of(service, sent, sent.team.mother)
    assert answered.partstat is ParticipantAnswer(partstat.lower())
    assert answered.answered_via is AnswerChannel.CALENDAR
    listed = await client.get(f"/cases/{sent.team.case_id}/meetings", headers=people.coordinator.headers)
    mine = next(m for m in listed.json() if m["id"] == sent.meeting_id)
    assert {p["contact_id"]: p["answer"] for p in mine["participants"]}[sent.team.mother] == partstat.lower()
    applied = await entries(service, "reply.applied", "meeting.answered")
    assert [e.action.value for e in applied] == ["meeting.answered", "reply.applied"]
    assert applied[0].detail["via"] == "calendar"


async def test_the_meeting_page_says_how_each_answer_came(sent: Sent, service: ServiceContext, client: Client,
                                                           people: Any) -> None:
    await handle_message(service, mothers_reply(sent, "apple"))
    await sign_in(client, people.coordinator.token)
    page = await client.get(f"/saker/{sent.team.case_id}/moter/{sent.meeting_id}")
    assert "svar fra kalenderen" in page.text


async def test_the_answer_shows_in_the_case_feed(sent: Sent, service: ServiceContext, client: Client,
                                                 people: Any) -> None:
    feed = await client.post(f"/cases/{sent.team.case_id}/feeds", headers=people.coordinator.headers,
                             json={"scope": "case"})
    url = feed.json()["url"].split("testserver", 1)[-1]
    before = await client.get(url)
    await handle_message(service, mothers_reply(sent, "outlook", partstat="DECLINED"))
    after = await client.get(url)
    assert after.headers["etag"] != before.headers["etag"]
    unfolded = after.text.replace("\r\n ", "")
    assert any("PARTSTAT=DECLINED" in line and MOTHER in line for line in unfolded.splitlines())


@pytest.mark.parametrize(("change", "reason"), [
    ({"raw_from": "mallory@evil.example"}, ReplyOutcome.SENDER_MISMATCH),
    ({"auth": "mx.kommune.example; spf=pass smtp.mailfrom=example.org; dmarc=fail header.from=example.org"},
     ReplyOutcome.AUTHENTICATION_FAILED),
    ({"attendee": "someone.else@example.org"}, ReplyOutcome.UNKNOWN_ATTENDEE),
    ({"attendee": "nils@nav.example.org"}, ReplyOutcome.NOT_SENT),
    ({"partstat": "DELEGATED"}, ReplyOutcome.UNSUPPORTED_ANSWER),
])
async def test_forged_and_unfit_replies_change_nothing_and_are_audited(
        sent: Sent, service: ServiceContext, change: dict[str, str], reason: ReplyOutcome) -> None:
    values = {k: v for k, v in change.items() if k in ("attendee", "partstat")}
    raw = mothers_reply(sent, "gmail", **values)
    if "raw_from" in change:
        raw = raw.replace(f"From: {MOTHER}".encode(), f"From: {change['raw_from']}".encode())
    if "auth" in change:
        raw = f"Authentication-Results: {change['auth']}\n".encode() + raw
    assert await handle_message(service, raw) is reason
    assert (await answer_of(service, sent, sent.team.mother)).partstat is ParticipantAnswer.NEEDS_ACTION
    ignored = await entries(service, "reply.ignored", "reply.applied", "meeting.answered")
    assert [(e.action.value, e.detail["reason"], e.subject) for e in ignored] == [
        ("reply.ignored", reason.value, f"meeting:{sent.meeting_id}")]


async def test_a_stale_reply_to_an_older_sequence_is_ignored(
        sent: Sent, service: ServiceContext, client: Client, people: Any, settings: Any) -> None:
    moved = await client.put(f"/cases/{sent.team.case_id}/meetings/{sent.meeting_id}",
                             headers=people.coordinator.headers,
                             json={"start": "2027-01-12T10:00:00+01:00", "end": "2027-01-12T11:00:00+01:00"})
    assert moved.status_code == 200, moved.text
    await send_due(service, settings.mail_folder)  # the update goes out with the new SEQUENCE
    assert await handle_message(service, mothers_reply(sent, "thunderbird")) is ReplyOutcome.STALE_SEQUENCE
    fresh = mothers_reply(sent, "thunderbird", sequence=moved.json()["sequence"], message_id="tb-2@example.org")
    assert await handle_message(service, fresh) is ReplyOutcome.APPLIED


async def test_a_reply_counts_from_the_address_the_invitation_went_to_not_the_one_on_record_now(
        sent: Sent, service: ServiceContext, client: Client, people: Any, settings: Any) -> None:
    """The mother's address changes after her invitation went out: her calendar's answer from the
    old address (which got it) is hers; one from the new address is not, until an update goes there."""
    patched = await client.patch(f"/cases/{sent.team.case_id}/contacts/{sent.team.mother}",
                                 headers=people.coordinator.headers, json={"email": "Mona.New@Example.org"})
    assert patched.status_code == 200, patched.text
    new = "mona.new@example.org"
    early = mothers_reply(sent, "outlook", attendee=new, message_id="new-1@example.org")
    assert await handle_message(service, early) is ReplyOutcome.NOT_SENT
    assert await handle_message(service, mothers_reply(sent, "outlook", partstat="TENTATIVE")) is ReplyOutcome.APPLIED
    assert (await answer_of(service, sent, sent.team.mother)).partstat is ParticipantAnswer.TENTATIVE
    moved = await client.put(f"/cases/{sent.team.case_id}/meetings/{sent.meeting_id}",
                             headers=people.coordinator.headers, json={"place": "Skolen"})
    assert moved.status_code == 200, moved.text
    await send_due(service, settings.mail_folder)  # the update goes to the new address
    later = mothers_reply(sent, "outlook", attendee=new, sequence=moved.json()["sequence"],
                          message_id="new-2@example.org", partstat="DECLINED")
    assert await handle_message(service, later) is ReplyOutcome.APPLIED
    assert (await answer_of(service, sent, sent.team.mother)).partstat is ParticipantAnswer.DECLINED


async def test_an_unknown_uid_is_kept_as_handled_and_changes_nothing(sent: Sent, service: ServiceContext) -> None:
    assert await handle_message(service, mothers_reply(sent, uid="not-ours@example.org")) is ReplyOutcome.UNKNOWN_UID
    async with service.transaction() as session:
        kept = (await session.exec(select(InboundMessage))).one()
    assert (kept.outcome, kept.case_id, kept.meeting_id) == (ReplyOutcome.UNKNOWN_UID, None, None)
    assert await entries(service, "reply.applied", "meeting.answered") == []


async def test_a_reply_from_someone_whose_consent_is_gone_is_ignored(
        sent: Sent, service: ServiceContext, client: Client, people: Any) -> None:
    await consent(client, people, sent.team, sent.team.mother, "school", status="withdrawn")
    teacher = "siri@skole.example.org"
    raw = reply("apple", uid=sent.uid, attendee=teacher, organizer=ORGANIZER, message_id="apple-t@example.org",
                sequence=sent.sequence)
    assert await handle_message(service, raw) is ReplyOutcome.NO_CONSENT
    assert (await answer_of(service, sent, sent.team.teacher)).partstat is ParticipantAnswer.NEEDS_ACTION
    assert [e.detail["reason"] for e in await entries(service, "reply.ignored")] == ["no_consent"]


async def test_a_counter_is_shown_to_the_coordinator_and_not_applied(
        sent: Sent, service: ServiceContext, client: Client, people: Any) -> None:
    raw = mothers_reply(sent, "outlook", calendar_name="outlook-counter.ics", PROPOSED_START="20270111T140000",
                        PROPOSED_END="20270111T150000")
    assert await handle_message(service, raw) is ReplyOutcome.COUNTER_SHOWN
    async with service.transaction() as session:
        meeting = await session.get(Meeting, sent.meeting_id)
        assert meeting is not None
        assert meeting.start.isoformat() == "2027-01-11T09:00:00+00:00"  # not moved
    alerts = await client.get(f"/cases/{sent.team.case_id}/alerts", headers=people.coordinator.headers)
    counter = next(a for a in alerts.json() if a["kind"] == "counter_proposed")
    assert counter["detail"]["start"] == "2027-01-11T13:00:00+00:00"
    assert "Mona Hansen" in counter["text"]
    await sign_in(client, people.coordinator.token)
    page = await client.get(f"/saker/{sent.team.case_id}/moter/{sent.meeting_id}")
    assert page.status_code == 200
    assert "Nytt tidspunkt foreslått fra kalenderen" in page.text
    proposal = re.search(r"<li>([^<]*11\.01\.2027 14:00–15:00)</li>", page.text)
    assert proposal is not None and "Mona Hansen" in proposal.group(1)


@pytest.mark.parametrize("sample", ["postfix-bounce", "exchange-bounce"])
async def test_a_bounce_marks_the_message_failed_and_names_the_address(
        sent: Sent, service: ServiceContext, client: Client, people: Any, sample: str) -> None:
    async with service.transaction() as session:
        invitation = (await session.exec(select(OutboxMessage).where(
            OutboxMessage.recipient_contact_id == sent.team.mother, OutboxMessage.status == OutboxStatus.SENT,
            OutboxMessage.meeting_id == sent.meeting_id))).one()
    raw = message(sample, RECIPIENT=MOTHER, ORIGINAL_MESSAGE_ID=invitation.message_id)
    assert await handle_message(service, raw) is ReplyOutcome.BOUNCE_RECORDED
    async with service.transaction() as session:
        marked = await session.get(OutboxMessage, invitation.id)
        assert marked is not None
        assert marked.status is OutboxStatus.DEAD and marked.last_error.startswith("bounced: 5.")
    alerts = await client.get(f"/cases/{sent.team.case_id}/alerts", headers=people.coordinator.headers)
    bounced = next(a for a in alerts.json() if a["kind"] == "address_bounced")
    assert "Mona Hansen" in bounced["text"]
    assert [e.subject for e in await entries(service, "notification.bounced")] == [f"outbox:{invitation.id}"]


@pytest.mark.parametrize("sample", ["exchange-out-of-office", "apple-vacation"])
async def test_automatic_replies_are_ignored(sent: Sent, service: ServiceContext, sample: str) -> None:
    assert await handle_message(service, message(sample)) is ReplyOutcome.AUTO_REPLY
    assert await entries(service, "reply.applied", "reply.ignored", "notification.bounced") == []


async def test_two_readers_of_one_mailbox_apply_a_reply_once(
        sent: Sent, service: ServiceContext, settings: Any, tmp_path: Path) -> None:
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "answer.eml").write_bytes(mothers_reply(sent, "apple"))
    os.utime(folder / "answer.eml", (0, 0))  # settled: not being written any more
    other = ServiceContext.create(settings, service.clock)
    try:
        await asyncio.gather(FolderInbox(folder).read_once(service), FolderInbox(folder).read_once(other),
                             handle_message(other, mothers_reply(sent, "apple")))
    finally:
        await other.engine.dispose()
    assert [e.action.value for e in await entries(service, "reply.applied")] == ["reply.applied"]
    assert not (folder / "answer.eml").exists() and (folder / "handled" / "answer.eml").exists()


async def test_the_demo_command_turns_a_sent_invitation_into_an_answer_that_is_recorded(
        sent: Sent, service: ServiceContext, settings: Any, tmp_path: Path) -> None:
    def is_mothers_invitation(path: Path) -> bool:
        mail = message_from_bytes(path.read_bytes(), policy=policy.default)
        return MOTHER in str(mail["To"]) and any(
            p.get_content_type() == "text/calendar" and p.get_param("method") == "REQUEST" for p in mail.walk())

    invitation = next(p for p in settings.mail_folder.glob("*.eml") if is_mothers_invitation(p))
    written = write_reply(invitation, "declined", tmp_path / "inbox", service.now())
    os.utime(written, (0, 0))
    assert await FolderInbox(tmp_path / "inbox").read_once(service) == 1
    assert (await answer_of(service, sent, sent.team.mother)).partstat is ParticipantAnswer.DECLINED
