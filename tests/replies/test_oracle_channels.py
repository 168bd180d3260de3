"""Black-box checks of "Channels: out and back" (DESIGN.md) and issue 15, written from the
specification alone: calendar replies that must or must not be applied, bounces that must stay
in their own case, and SMS that must stay content-free, in the daytime and behind the consent
gate at send time. Expected values come from the text of the rules, not from the code; where
the text leaves room, the test's docstring says how it was read. Both databases."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from mail_fixtures import Client, consent
from reply_samples import message, reply
from reply_scene import MOTHER, ORGANIZER, Sent, answer_of, send_due
from sqlmodel import col, select

from coordination.context import ServiceContext
from coordination.models import AuditEntry, OutboxMessage
from coordination.outbox.enums import OutboxStatus
from coordination.replies.enums import ReplyOutcome
from coordination.replies.service import handle_message
from coordination.scheduling.enums import ParticipantAnswer
from notifications.ports import DisclosureLevel

TEACHER = "siri@skole.example.org"
MOTHERS_MOBILE = "+4791234567"
TEACHERS_MOBILE = "+4791234568"
IGNORED_OR_APPLIED = ("reply.ignored", "reply.applied")
#: The GSM 03.38 basic character set (no escapes), which holds æ, ø and å.
GSM7 = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
           "¿abcdefghijklmnopqrstuvwxyzäöñüà")


@pytest.fixture
def settings(settings: Any, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    """The shared settings, with SMS written to this test's own folder (not ./var/sms); a test
    parametrised with ``email_cap`` sets the e-mail channel's cap."""
    ours = replace(settings, sms=replace(settings.sms, folder=tmp_path / "sms"))
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and "email_cap" in callspec.params:
        ours = replace(ours, email_level_cap=DisclosureLevel(callspec.params["email_cap"]))
    return ours


async def entries(service: ServiceContext, *actions: str) -> list[AuditEntry]:
    async with service.transaction() as session:
        rows = await session.exec(select(AuditEntry).where(col(AuditEntry.action).in_(actions))
                                  .order_by(col(AuditEntry.id)))
        return list(rows.all())


def mothers_reply(sent: Sent, client: str = "gmail", **values: Any) -> bytes:
    defaults: dict[str, Any] = {"uid": sent.uid, "attendee": MOTHER, "organizer": ORGANIZER,
                                "message_id": f"oracle-{client}@example.org", "sequence": sent.sequence}
    return reply(client, **{**defaults, **values})


async def meeting_out(client: Client, people: Any, sent: Sent) -> dict[str, Any]:
    """The meeting as the API shows it to the coordinator."""
    listed = await client.get(f"/cases/{sent.team.case_id}/meetings", headers=people.coordinator.headers)
    assert listed.status_code == 200, listed.text
    found: dict[str, Any] = next(m for m in listed.json() if m["id"] == sent.meeting_id)
    return found


async def outbox(client: Client, people: Any, case_id: int) -> list[dict[str, Any]]:
    listed = await client.get(f"/cases/{case_id}/outbox", headers=people.coordinator.headers)
    assert listed.status_code == 200, listed.text
    rows: list[dict[str, Any]] = listed.json()
    return rows


async def patch_contact(client: Client, people: Any, team: Any, contact: int, **body: Any) -> dict[str, Any]:
    patched = await client.patch(f"/cases/{team.case_id}/contacts/{contact}", headers=people.coordinator.headers,
                                 json=body)
    assert patched.status_code == 200, patched.text
    answer: dict[str, Any] = patched.json()
    return answer


async def new_meeting(client: Client, people: Any, team: Any, participants: list[int], *,
                      start: str = "2027-01-11T10:00:00+01:00", end: str = "2027-01-11T11:00:00+01:00",
                      **extra: Any) -> dict[str, Any]:
    created = await client.post(f"/cases/{team.case_id}/meetings", headers=people.coordinator.headers, json={
        "start": start, "end": end, "place": "Rådhuset", "participant_ids": participants, **extra})
    assert created.status_code == 201, created.text
    answer: dict[str, Any] = created.json()
    return answer


def sms_texts(settings: Any) -> list[str]:
    folder: Path = settings.sms.folder
    return [p.read_text() for p in sorted(folder.glob("*"))] if folder.exists() else []


def mails_to(settings: Any, address: str) -> list[Path]:
    folder: Path = settings.mail_folder
    if not folder.exists():
        return []
    return [p for p in folder.glob("*.eml") if re.search(rf"^To:.*{re.escape(address)}", p.read_text(
        errors="replace"), re.MULTILINE | re.IGNORECASE)]


# --- Replies from calendars -------------------------------------------------------------------

async def test_a_reply_after_one_of_two_carers_withdrew_school_consent_is_not_applied(
        sent: Sent, service: ServiceContext, client: Client, people: Any) -> None:
    """Effective consent needs every carer's grant: one withdrawal is enough to make the
    teacher's calendar answer a reply "from someone whose consent is gone"."""
    await consent(client, people, sent.team, sent.team.father, "school", status="withdrawn")
    raw = reply("outlook", uid=sent.uid, attendee=TEACHER, organizer=ORGANIZER,
                message_id="oracle-teacher@example.org", sequence=sent.sequence)
    assert await handle_message(service, raw) is ReplyOutcome.NO_CONSENT
    assert (await answer_of(service, sent, sent.team.teacher)).partstat is ParticipantAnswer.NEEDS_ACTION
    audited = await entries(service, *IGNORED_OR_APPLIED)
    assert [(e.action.value, e.detail["reason"]) for e in audited] == [("reply.ignored", "no_consent")]


async def test_a_reply_at_the_old_sequence_after_an_update_was_sent_is_stale_and_changes_nothing(
        sent: Sent, service: ServiceContext, client: Client, people: Any, settings: Any) -> None:
    """An answer to the first invitation after the moved time went out must not be taken as an
    answer to the new time, whichever client it came from (here Apple, with ACCEPTED)."""
    moved = await client.put(f"/cases/{sent.team.case_id}/meetings/{sent.meeting_id}",
                             headers=people.coordinator.headers,
                             json={"start": "2027-01-13T10:00:00+01:00", "end": "2027-01-13T11:00:00+01:00"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["sequence"] > sent.sequence
    await send_due(service, settings.mail_folder)
    assert await handle_message(service, mothers_reply(sent, "apple")) is ReplyOutcome.STALE_SEQUENCE
    assert (await answer_of(service, sent, sent.team.mother)).partstat is ParticipantAnswer.NEEDS_ACTION
    assert [e.detail["reason"] for e in await entries(service, "reply.ignored")] == ["stale_sequence"]


async def test_a_reply_whose_sender_differs_from_the_attendee_only_in_the_domains_case_is_applied(
        sent: Sent, service: ServiceContext) -> None:
    """Reading: "the From address equal to the attendee's" means the same mailbox. Domain names
    are case-insensitive (RFC 5321 §2.4), so mona@EXAMPLE.org *is* mona@example.org; refusing it
    would lose real answers from clients that write the domain as the user typed it."""
    raw = mothers_reply(sent).replace(f"From: {MOTHER}".encode(), b"From: mona@EXAMPLE.org")
    assert b"From: mona@EXAMPLE.org" in raw
    assert await handle_message(service, raw) is ReplyOutcome.APPLIED
    assert (await answer_of(service, sent, sent.team.mother)).partstat is ParticipantAnswer.ACCEPTED


async def test_a_reply_whose_sender_and_attendee_are_written_in_capitals_is_applied(
        sent: Sent, service: ServiceContext) -> None:
    """Reading: Outlook and Exchange often write addresses as the user typed them (and
    "MAILTO:"). The local part is case-sensitive only in theory (RFC 5321 §2.4 says receivers
    SHOULD avoid relying on it) and the service stores addresses as typed by the coordinator, so
    the same address in other capitals is the same attendee and sender: the answer counts."""
    raw = mothers_reply(sent, "gmail", attendee="Mona@Example.org")
    assert await handle_message(service, raw) is ReplyOutcome.APPLIED
    assert (await answer_of(service, sent, sent.team.mother)).partstat is ParticipantAnswer.ACCEPTED


async def test_a_reply_at_the_sent_sequence_counts_while_the_update_is_still_queued(
        sent: Sent, service: ServiceContext, client: Client, people: Any) -> None:
    """Reading: the rule compares with the SEQUENCE *sent* to that address ("not older than the
    one sent"). While the move is only queued (not yet sent), the mother has seen only SEQUENCE 0,
    so her answer to it is current, not stale, and is applied."""
    moved = await client.put(f"/cases/{sent.team.case_id}/meetings/{sent.meeting_id}",
                             headers=people.coordinator.headers,
                             json={"start": "2027-01-13T10:00:00+01:00", "end": "2027-01-13T11:00:00+01:00"})
    assert moved.status_code == 200 and moved.json()["sequence"] > sent.sequence
    assert await handle_message(service, mothers_reply(sent, "apple", partstat="DECLINED")) is ReplyOutcome.APPLIED
    assert (await answer_of(service, sent, sent.team.mother)).partstat is ParticipantAnswer.DECLINED


async def test_a_reply_with_a_sequence_newer_than_any_sent_is_taken_as_not_older(
        sent: Sent, service: ServiceContext) -> None:
    """Reading: the rule is "a SEQUENCE not older than the one sent"; a higher one (some clients
    bump it on their side) passes that rule, and the other checks (UID, attendee, From,
    authentication) still hold, so it is applied."""
    raw = mothers_reply(sent, "gmail", sequence=sent.sequence + 7)
    assert await handle_message(service, raw) is ReplyOutcome.APPLIED


async def test_an_spf_fail_alone_is_a_failed_verdict_and_changes_nothing(
        sent: Sent, service: ServiceContext) -> None:
    """"no failed DMARC/SPF verdict": SPF failing with no DMARC verdict is still a failed verdict."""
    auth = b"Authentication-Results: mx.kommune.example; spf=fail smtp.mailfrom=example.org; dmarc=none\n"
    assert await handle_message(service, auth + mothers_reply(sent)) is ReplyOutcome.AUTHENTICATION_FAILED
    assert (await answer_of(service, sent, sent.team.mother)).partstat is ParticipantAnswer.NEEDS_ACTION


async def test_a_reply_from_an_address_the_invitation_was_never_sent_to_is_not_applied(
        sent: Sent, service: ServiceContext, client: Client, people: Any) -> None:
    """The rule: applied "only when it matches an invitation really sent to that address". The
    invitation went to mona@example.org; the coordinator then changes her address. No message
    with this UID has ever gone to the new address, so a reply from it is forged or misrouted
    and must change nothing (and be audited)."""
    await patch_contact(client, people, sent.team, sent.team.mother, email="mona.new@example.org")
    raw = mothers_reply(sent, "gmail", attendee="mona.new@example.org")
    assert await handle_message(service, raw) is not ReplyOutcome.APPLIED
    assert (await answer_of(service, sent, sent.team.mother)).partstat is ParticipantAnswer.NEEDS_ACTION


async def test_a_reply_from_a_deactivated_contact_changes_nothing_and_is_audited(
        sent: Sent, service: ServiceContext, client: Client, people: Any) -> None:
    """Reading: a contact taken off the case (active=false) is no longer someone the case tells
    or listens to; rule 2 says removing or deactivating a person never widens anything, and the
    issue says anything that is not a match with a live invitation changes nothing and is
    audited with its reason. So: not applied, one reply.ignored entry with a reason. (The service
    records the reason as "no_consent": a mother needs no sector consent, so the word is loose,
    but the outcome is the one the rules ask for.)"""
    await patch_contact(client, people, sent.team, sent.team.mother, active=False)
    outcome = await handle_message(service, mothers_reply(sent, "thunderbird"))
    assert outcome is not ReplyOutcome.APPLIED
    assert (await answer_of(service, sent, sent.team.mother)).partstat is ParticipantAnswer.NEEDS_ACTION
    audited = await entries(service, *IGNORED_OR_APPLIED)
    assert [e.action.value for e in audited] == ["reply.ignored"] and audited[0].detail["reason"]


async def test_a_reply_from_someone_taken_off_the_meeting_does_not_put_them_back(
        sent: Sent, service: ServiceContext, client: Client, people: Any, settings: Any) -> None:
    """Reading: once the mother is taken off the meeting (SEQUENCE raised), her calendar's answer
    (at the old or at the new SEQUENCE) matches no live invitation: it changes nothing — she
    is not added back — and is audited."""
    team = sent.team
    changed = await client.put(f"/cases/{team.case_id}/meetings/{sent.meeting_id}",
                               headers=people.coordinator.headers,
                               json={"participant_ids": [team.father, team.child, team.teacher, team.nav]})
    assert changed.status_code == 200, changed.text
    await send_due(service, settings.mail_folder)
    sequence = (await meeting_out(client, people, sent))["sequence"]
    for seq, message_id in ((sent.sequence, "off-1@example.org"), (sequence, "off-2@example.org")):
        raw = mothers_reply(sent, "outlook", sequence=seq, message_id=message_id)
        assert await handle_message(service, raw) is not ReplyOutcome.APPLIED
    participants = [p["contact_id"] for p in (await meeting_out(client, people, sent))["participants"]]
    assert team.mother not in participants
    assert [e.action.value for e in await entries(service, *IGNORED_OR_APPLIED)] == ["reply.ignored"] * 2


async def test_a_reply_to_a_cancelled_meeting_neither_revives_it_nor_records_an_answer(
        sent: Sent, service: ServiceContext, client: Client, people: Any, settings: Any) -> None:
    """Reading: after the cancellation went out, an ACCEPTED at the cancellation's own SEQUENCE
    (a client that re-answers the CANCEL) still must not bring the meeting back nor show
    "kommer" for a meeting that will not be held; it is ignored and audited."""
    cancelled = await client.post(f"/cases/{sent.team.case_id}/meetings/{sent.meeting_id}/cancel",
                                  headers=people.coordinator.headers)
    assert cancelled.status_code == 200, cancelled.text
    await send_due(service, settings.mail_folder)
    sequence = (await meeting_out(client, people, sent))["sequence"]
    outcome = await handle_message(service, mothers_reply(sent, "outlook", sequence=sequence))
    assert outcome is not ReplyOutcome.APPLIED
    assert (await meeting_out(client, people, sent))["status"] == "cancelled"
    assert (await answer_of(service, sent, sent.team.mother)).partstat is ParticipantAnswer.NEEDS_ACTION
    audited = await entries(service, *IGNORED_OR_APPLIED)
    assert [e.action.value for e in audited] == ["reply.ignored"]


async def test_a_counter_never_moves_the_meeting_nor_sends_anything_to_the_others(
        sent: Sent, service: ServiceContext, client: Client, people: Any) -> None:
    """A COUNTER is shown, "never applied by itself": the time, the SEQUENCE and the outbox stay
    as they were (no update goes to anyone because one parent proposed another time)."""
    before = await meeting_out(client, people, sent)
    sent_before = [r for r in await outbox(client, people, sent.team.case_id) if r["kind"] != "alert"]
    raw = mothers_reply(sent, "outlook", calendar_name="outlook-counter.ics", PROPOSED_START="20270112T080000",
                        PROPOSED_END="20270112T090000")
    assert await handle_message(service, raw) is ReplyOutcome.COUNTER_SHOWN
    after = await meeting_out(client, people, sent)
    assert (after["start"], after["end"], after["sequence"]) == (before["start"], before["end"], before["sequence"])
    assert (await answer_of(service, sent, sent.team.mother)).partstat is ParticipantAnswer.NEEDS_ACTION
    assert [r for r in await outbox(client, people, sent.team.case_id) if r["kind"] != "alert"] == sent_before


async def test_a_bounce_for_another_cases_message_never_touches_this_case(
        sent: Sent, service: ServiceContext, client: Client, people: Any, settings: Any, case_body: Any) -> None:
    """A bounce is matched to *our message* (its Message-ID), not to an address: a bounce for a
    message of another case (even one that names this case's mother as the failed address)
    marks nothing here and tells this case's coordinator nothing."""
    headers = people.coordinator.headers
    other = await client.post("/cases", headers=headers, json=case_body(reference="BV-2027-99"))
    assert other.status_code == 201, other.text
    other_id = other.json()["id"]
    ola = await client.post(f"/cases/{other_id}/contacts", headers=headers, json={
        "name": "Ola Nordmann", "role": "parent", "daily_care": True, "email": "ola@example.org"})
    assert ola.status_code == 201, ola.text
    created = await client.post(f"/cases/{other_id}/meetings", headers=headers, json={
        "start": "2027-01-12T10:00:00+01:00", "end": "2027-01-12T11:00:00+01:00", "place": "Rådhuset",
        "participant_ids": [ola.json()["id"]]})
    assert created.status_code == 201, created.text
    await send_due(service, settings.mail_folder)
    async with service.transaction() as session:
        others = (await session.exec(select(OutboxMessage).where(
            OutboxMessage.recipient_contact_id == ola.json()["id"], OutboxMessage.status == OutboxStatus.SENT))).one()
        ours_before = {m.id: m.status for m in (await session.exec(select(OutboxMessage).where(
            OutboxMessage.meeting_id == sent.meeting_id))).all()}
    raw = message("postfix-bounce", RECIPIENT=MOTHER, ORIGINAL_MESSAGE_ID=others.message_id)
    await handle_message(service, raw)
    async with service.transaction() as session:
        ours_after = {m.id: m.status for m in (await session.exec(select(OutboxMessage).where(
            OutboxMessage.meeting_id == sent.meeting_id))).all()}
    assert ours_after == ours_before
    alerts = await client.get(f"/cases/{sent.team.case_id}/alerts", headers=headers)
    assert [a for a in alerts.json() if a["kind"] == "address_bounced"] == []
    bounced = [e for e in await entries(service, "notification.bounced") if e.case_id == sent.team.case_id]
    assert bounced == []


async def test_a_bounce_for_a_message_we_never_sent_marks_nothing(
        sent: Sent, service: ServiceContext, client: Client, people: Any) -> None:
    """Only bounces "for our messages" mark a row: an unknown Message-ID naming the mother's
    address leaves every row and the coordinator's alerts as they were."""
    before = await outbox(client, people, sent.team.case_id)
    raw = message("exchange-bounce", RECIPIENT=MOTHER, ORIGINAL_MESSAGE_ID="<never-sent@samhandling>")
    assert await handle_message(service, raw) is not ReplyOutcome.BOUNCE_RECORDED
    assert await outbox(client, people, sent.team.case_id) == before
    alerts = await client.get(f"/cases/{sent.team.case_id}/alerts", headers=people.coordinator.headers)
    assert [a for a in alerts.json() if a["kind"] == "address_bounced"] == []


# --- SMS --------------------------------------------------------------------------------------

@pytest.mark.parametrize("email_cap", ["content"])
async def test_an_sms_reminder_names_no_child_service_measure_or_other_participant(
        client: Client, people: Any, team: Any, service: ServiceContext, settings: Any, email_cap: str) -> None:
    """Rule 4 and the issue: an SMS is at most `logistics` (time, place, the service's phone)
    and never names the child welfare service, the child, the measure or anyone else invited —
    whatever the e-mail cap (here raised to `content`)."""
    assert settings.email_level_cap is DisclosureLevel.CONTENT
    await patch_contact(client, people, team, team.mother, phone="912 34 567")
    for carer in (team.mother, team.father):
        await consent(client, people, team, carer, "school", level="content")
    made = await new_meeting(client, people, team, [team.mother, team.father, team.child, team.teacher],
                             agenda="Evaluering av tiltaket besøkshjem for Sara")
    await send_due(service, settings.mail_folder)
    service.clock.set(datetime(2027, 1, 11, 7, 30, tzinfo=UTC))  # 08:30 Oslo, the reminder is due
    await send_due(service, settings.mail_folder)
    rows = [r for r in await outbox(client, people, team.case_id)
            if r["channel"] == "sms" and r["meeting_id"] == made["id"]]
    assert {r["kind"] for r in rows if r["status"] == "sent"} >= {"invitation", "reminder"}
    for row in rows:
        if row["status"] == "sent":
            assert row["level"] in ("none", "logistics"), row
    texts = sms_texts(settings)
    assert len(texts) >= 2
    for text in texts:
        body = text.split("\n\n", 1)[1].strip()
        assert len(body) <= 160 and set(body) <= GSM7, body  # one GSM-7 segment, æ ø å included
        lowered = text.lower()
        for word in ("sara", "barnevern", "besøkshjem", "tiltak", "evaluering", "per hansen", "siri", "lærer"):
            assert word not in lowered, (word, text)


async def test_an_sms_due_at_five_past_eight_in_the_evening_waits_until_eight_in_the_morning(
        client: Client, people: Any, team: Any, service: ServiceContext, settings: Any) -> None:
    """SMS go only 08:00–20:00 Oslo: an invitation notice queued at 20:05 goes at 08:00 next
    morning, not before (07:59) and not lost; the e-mail (quiet hours 21–07) goes at once."""
    await patch_contact(client, people, team, team.mother, phone="912 34 567")
    service.clock.set(datetime(2027, 1, 4, 19, 5, tzinfo=UTC))  # 20:05 Oslo (CET)
    await new_meeting(client, people, team, [team.mother])
    await send_due(service, settings.mail_folder)
    assert sms_texts(settings) == []
    assert mails_to(settings, MOTHER)
    service.clock.set(datetime(2027, 1, 5, 6, 59, tzinfo=UTC))  # 07:59 Oslo
    await send_due(service, settings.mail_folder)
    assert sms_texts(settings) == []
    service.clock.set(datetime(2027, 1, 5, 7, 0, tzinfo=UTC))  # 08:00 Oslo
    await send_due(service, settings.mail_folder)
    assert len(sms_texts(settings)) == 1
    assert MOTHERS_MOBILE in sms_texts(settings)[0]


async def test_a_reminder_due_at_seven_goes_by_mail_at_seven_and_by_sms_at_eight(
        client: Client, people: Any, team: Any, service: ServiceContext, settings: Any) -> None:
    """Two windows, one reminder: mail to families may go from 07:00, SMS only from 08:00. The
    morning-of reminder (due 07:00 Oslo for a 10:00 meeting) therefore reaches the mother's
    inbox at 07:00 and her phone at 08:00."""
    await patch_contact(client, people, team, team.mother, phone="912 34 567")
    made = await new_meeting(client, people, team, [team.mother])
    await send_due(service, settings.mail_folder)
    service.clock.set(datetime(2027, 1, 10, 12, 0, tzinfo=UTC))  # earlier reminders out of the way
    await send_due(service, settings.mail_folder)

    def reminders(rows: list[dict[str, Any]], channel: str) -> list[dict[str, Any]]:
        return [r for r in rows if r["kind"] == "reminder" and r["channel"] == channel
                and r["meeting_id"] == made["id"] and r["due_at"].startswith("2027-01-11")]

    service.clock.set(datetime(2027, 1, 11, 6, 0, tzinfo=UTC))  # 07:00 Oslo
    await send_due(service, settings.mail_folder)
    rows = await outbox(client, people, team.case_id)
    assert [r["status"] for r in reminders(rows, "email")] == ["sent"]
    assert [r["status"] for r in reminders(rows, "sms")] == ["pending"]
    service.clock.set(datetime(2027, 1, 11, 7, 0, tzinfo=UTC))  # 08:00 Oslo
    await send_due(service, settings.mail_folder)
    rows = await outbox(client, people, team.case_id)
    assert [(r["status"], r["sent_at"]) for r in reminders(rows, "sms")] == [("sent", "2027-01-11T07:00:00Z")]


@pytest.mark.parametrize(("queued", "still_night", "morning"), [
    # spring forward, 28 March 2027: 02:00 CET becomes 03:00 CEST; 08:00 Oslo is 06:00 UTC
    (datetime(2027, 3, 28, 1, 30, tzinfo=UTC), datetime(2027, 3, 28, 5, 59, tzinfo=UTC),
     datetime(2027, 3, 28, 6, 0, tzinfo=UTC)),
    # fall back, 31 October 2027: 03:00 CEST becomes 02:00 CET; 08:00 Oslo is 07:00 UTC
    (datetime(2027, 10, 31, 0, 30, tzinfo=UTC), datetime(2027, 10, 31, 6, 30, tzinfo=UTC),
     datetime(2027, 10, 31, 7, 0, tzinfo=UTC)),
], ids=["spring", "autumn"])
async def test_an_sms_queued_in_the_night_of_the_clock_change_waits_until_eight_oslo_time(
        client: Client, people: Any, team: Any, service: ServiceContext, settings: Any,
        queued: datetime, still_night: datetime, morning: datetime) -> None:
    """The daytime window is Oslo wall-clock time on that very day, whatever its UTC offset."""
    await patch_contact(client, people, team, team.mother, phone="912 34 567")
    service.clock.set(queued)
    day = morning.date().isoformat()
    await new_meeting(client, people, team, [team.mother], start=f"{day}T14:00:00+00:00",
                      end=f"{day}T15:00:00+00:00")
    await send_due(service, settings.mail_folder)
    assert sms_texts(settings) == []
    service.clock.set(still_night)
    await send_due(service, settings.mail_folder)
    assert sms_texts(settings) == []
    service.clock.set(morning)
    await send_due(service, settings.mail_folder)
    assert len(sms_texts(settings)) == 1


async def test_a_partners_sms_is_stopped_by_consent_withdrawn_after_it_was_queued(
        client: Client, people: Any, team: Any, service: ServiceContext, settings: Any) -> None:
    """Rule 1 at send time, for SMS as for e-mail: the teacher (told by SMS only) was to get a
    notice queued while school consent held; the father withdraws before it is sent: no SMS, the
    row is suppressed, and the decision is audited."""
    for carer in (team.mother, team.father):
        await consent(client, people, team, carer, "school")
    await patch_contact(client, people, team, team.teacher, phone="+47 912 34 568", notify_by="sms")
    made = await new_meeting(client, people, team, [team.mother, team.teacher])
    queued = [r for r in await outbox(client, people, team.case_id)
              if r["recipient_contact_id"] == team.teacher and r["kind"] == "invitation"]
    assert [r["channel"] for r in queued] == ["sms"]
    await consent(client, people, team, team.father, "school", status="withdrawn")
    await send_due(service, settings.mail_folder)
    assert not any(TEACHERS_MOBILE in text for text in sms_texts(settings))
    after = [r for r in await outbox(client, people, team.case_id)
             if r["recipient_contact_id"] == team.teacher and r["meeting_id"] == made["id"]
             and r["kind"] == "invitation"]
    assert [r["status"] for r in after] == ["suppressed"]
    assert not mails_to(settings, TEACHER)


async def test_a_contact_told_by_sms_only_gets_no_email(
        client: Client, people: Any, team: Any, service: ServiceContext, settings: Any) -> None:
    """notify_by=sms: the mother has an e-mail address too, but asked for SMS only."""
    updated = await patch_contact(client, people, team, team.mother, phone="912 34 567", notify_by="sms")
    assert (updated["mobile"], updated["notify_by"]) == (MOTHERS_MOBILE, "sms")
    await new_meeting(client, people, team, [team.mother])
    await send_due(service, settings.mail_folder)
    service.clock.set(datetime(2027, 1, 11, 7, 30, tzinfo=UTC))  # past both reminders
    await send_due(service, settings.mail_folder)
    assert mails_to(settings, MOTHER) == []
    rows = [r for r in await outbox(client, people, team.case_id) if r["recipient_contact_id"] == team.mother]
    assert rows and {r["channel"] for r in rows} == {"sms"}
    assert len(sms_texts(settings)) >= 2


async def test_a_partner_with_a_mobile_is_told_by_email_unless_they_choose_sms(
        client: Client, people: Any, team: Any) -> None:
    """The default is e-mail; only family members with a mobile number default to both."""
    teacher = await patch_contact(client, people, team, team.teacher, phone="912 34 568")
    assert (teacher["mobile"], teacher["notify_by"]) == (TEACHERS_MOBILE, "email")
    mother = await patch_contact(client, people, team, team.mother, phone="+47 912 34 567")
    assert (mother["mobile"], mother["notify_by"]) == (MOTHERS_MOBILE, "both")


async def test_sms_only_without_a_mobile_number_is_a_400_naming_the_field(
        client: Client, people: Any, team: Any) -> None:
    """Reading: choosing SMS with no mobile number would silently tell the person nothing; the
    service refuses it as bad input naming the field (and changes nothing)."""
    refused = await client.patch(f"/cases/{team.case_id}/contacts/{team.father}",
                                 headers=people.coordinator.headers, json={"notify_by": "sms"})
    assert refused.status_code == 400 and refused.json()["field"] == "notify_by", refused.text
    contacts = await client.get(f"/cases/{team.case_id}/contacts", headers=people.coordinator.headers)
    assert next(c for c in contacts.json() if c["id"] == team.father)["notify_by"] == "email"


async def test_a_family_landline_gets_no_sms(
        client: Client, people: Any, team: Any, service: ServiceContext, settings: Any) -> None:
    """Reading: "families with a mobile number: both" — an Oslo landline (22 xx xx xx) is a valid
    number, accepted, but it cannot take an SMS: the default stays e-mail and nothing is queued
    by SMS."""
    updated = await patch_contact(client, people, team, team.mother, phone="22 12 34 56")
    assert updated["notify_by"] == "email"
    await new_meeting(client, people, team, [team.mother])
    assert [r for r in await outbox(client, people, team.case_id) if r["channel"] == "sms"] == []


async def test_a_number_that_is_no_number_is_a_400_naming_the_phone_field(
        client: Client, people: Any, team: Any) -> None:
    """Invalid for phonenumbers (region NO by default), though each looks like digits: a 4xx
    naming the field, on a change and on a new contact, and nothing written."""
    headers = people.coordinator.headers
    for phone in ("12345", "+47 123", "999 99 999 999", "+999 1234 5678"):
        patched = await client.patch(f"/cases/{team.case_id}/contacts/{team.mother}", headers=headers,
                                     json={"phone": phone})
        assert 400 <= patched.status_code < 500 and "phone" in patched.text, (phone, patched.text)
        created = await client.post(f"/cases/{team.case_id}/contacts", headers=headers,
                                    json={"name": "Ny Person", "role": "parent", "phone": phone})
        assert 400 <= created.status_code < 500 and "phone" in created.text, (phone, created.text)
    contacts = await client.get(f"/cases/{team.case_id}/contacts", headers=headers)
    assert [c for c in contacts.json() if c["name"] == "Ny Person"] == []
    assert next(c for c in contacts.json() if c["id"] == team.mother)["phone"] == ""
