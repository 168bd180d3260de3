"""Closing, the record, the family's access report and the purge, tested from DESIGN.md ("The case
record and retention") and issue 16 alone: every expected value below comes from those texts, not
from the implementation. The scene is built through the HTTP API; the dispatcher and the purge job
run for real against the test's database with the service's clock set on purpose at the edges."""

from __future__ import annotations

import asyncio
import email
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from db_backends import START
from litestar.testing import AsyncTestClient
from record_scene import ANSWER_LINK, Client, send_due
from sqlalchemy import MetaData, select

from coordination.access import users
from coordination.app import create_app
from coordination.clock import Clock
from coordination.context import ServiceContext
from coordination.domain import UserRole
from coordination.records.retention import purge_due, raise_alerts
from coordination.schemas import UserIn

SCHOOL_EMAIL = "siri.oracle@skole.example.org"
MOTHER_EMAIL = "mona.oracle@example.org"
MOTHER_PHONE = "+47 412 34 567"
NAV_PHONE = "+47 413 57 913"
INTERNAL_NOTE = "Internt notat: mor virket usikker"
NAMES = ("Ingeborg Oraklesen", "Mona Oraklesen", "Siri Lærerinne", "Nils Navesen", "Hanne Helsesøster")
OTHER_NAMES = ("Tobias Annensen", "Turid Annensen")
ANSWER_TOKENS: set[str] = set()


async def a_coordinator(context: ServiceContext) -> dict[str, str]:
    async with context.transaction() as session:
        unit = await users.get_or_create_unit(session, "Enhet T", context.now())
        assert unit.id is not None
        made = await users.create_user(session, unit.id, UserIn(name="Tora", role=UserRole.COORDINATOR),
                                       context.now())
    return {"Authorization": f"Bearer {made.token}"}


def parse(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


@dataclass
class Scene:
    case_id: int
    mother: int
    teacher: int
    nav: int
    nurse: int
    soon: int
    later: int
    headers: dict[str, str]


async def build_scene(client: Client, people: Any, service: ServiceContext,
                      reference: str = "BV-ORAKEL-1") -> Scene:
    """A case with a mother (e-mail and phone), a teacher the mother consented for (purpose), a NAV
    adviser and a nurse nobody consented for (the consent on 4 January), and, a day later, two
    confirmed meetings: 11 January and 1 March (its reminders lie far ahead). The invitations are
    sent through the real dispatcher."""
    headers = people.coordinator.headers
    created = await client.post("/cases", headers=headers, json={
        "reference": reference, "child_given_name": "Ingeborg", "child_initials": "I.O.",
        "child_birth_date": "2013-05-17", "language": "nb", "aimed_at_child": True})
    assert created.status_code == 201, created.text
    case_id = int(created.json()["id"])

    async def add(**body: Any) -> int:
        added = await client.post(f"/cases/{case_id}/contacts", json=body, headers=headers)
        assert added.status_code == 201, added.text
        return int(added.json()["id"])

    await add(name=NAMES[0], role="child")
    mother = await add(name=NAMES[1], role="parent", role_label="mor", daily_care=True,
                       email=MOTHER_EMAIL, phone=MOTHER_PHONE)
    teacher = await add(name=NAMES[2], role="school_contact", email=SCHOOL_EMAIL)
    nav = await add(name=NAMES[3], role="nav_adviser", phone=NAV_PHONE)
    nurse = await add(name=NAMES[4], role="public_health_nurse", email="hanne.oracle@helse.example.org")
    granted = await client.post(f"/cases/{case_id}/consents", headers=headers, json={
        "grantor_contact_id": mother, "sector": "school", "status": "granted", "form": "written",
        "level": "purpose", "note": INTERNAL_NOTE})
    assert granted.status_code == 201, granted.text
    service.clock.advance(timedelta(days=1))

    async def meeting(start: str, end: str) -> int:
        made = await client.post(f"/cases/{case_id}/meetings", headers=headers, json={
            "start": start, "end": end, "place": "Rådhuset, rom 3",
            "participant_ids": [mother, teacher, nav, nurse]})
        assert made.status_code == 201, made.text
        return int(made.json()["id"])

    soon = await meeting("2027-01-11T09:00:00+01:00", "2027-01-11T10:00:00+01:00")
    later = await meeting("2027-03-01T09:00:00+01:00", "2027-03-01T10:00:00+01:00")
    await send_due(service)
    return Scene(case_id, mother, teacher, nav, nurse, soon, later, headers)


def mails(folder: Path) -> dict[Path, EmailMessage]:
    return {path: email.message_from_bytes(path.read_bytes(), policy=policy.default)
            for path in folder.rglob("*.eml")}


def recipients(message: EmailMessage) -> set[str]:
    return {str(address.addr_spec).lower() for address in message["To"].addresses}


def is_cancellation(message: EmailMessage) -> bool:
    for part in message.walk():
        if part.get_content_type() == "text/calendar" and "METHOD:CANCEL" in str(part.get_content()):
            return True
    return False


async def close(client: Client, scene: Scene) -> dict[str, Any]:
    closed = await client.post(f"/cases/{scene.case_id}/close", headers=scene.headers)
    assert closed.status_code == 200, closed.text
    body: dict[str, Any] = closed.json()
    return body


async def record(client: Client, scene: Scene) -> dict[str, Any]:
    answer = await client.get(f"/cases/{scene.case_id}/record",
                              headers={**scene.headers, "Accept": "application/json"})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_closing_sends_no_cancellation_to_a_school_whose_consent_was_withdrawn(
        client: Client, people: Any, service: ServiceContext) -> None:
    """The school learned of the meetings; then the mother withdrew the consent. Closing cancels the
    future meetings "with cancellations sent as usual" — i.e. through the consent gate, which now
    says no for the school: the teacher gets no cancellation, the mother (family) does."""
    scene = await build_scene(client, people, service)
    before = mails(service.settings.mail_folder)
    assert any(SCHOOL_EMAIL in recipients(m) for m in before.values()), "the school was invited"
    withdrawn = await client.post(f"/cases/{scene.case_id}/consents", headers=scene.headers, json={
        "grantor_contact_id": scene.mother, "sector": "school", "status": "withdrawn", "form": "oral"})
    assert withdrawn.status_code == 201, withdrawn.text

    closed = await close(client, scene)
    assert closed["status"] == "closed"
    assert set(closed["cancelled_meetings"]) == {scene.soon, scene.later}
    await send_due(service)

    new = [m for p, m in mails(service.settings.mail_folder).items() if p not in before]
    cancellations = [m for m in new if is_cancellation(m)]
    assert not [m for m in new if SCHOOL_EMAIL in recipients(m)]
    assert any(MOTHER_EMAIL in recipients(m) for m in cancellations)
    outbox = (await client.get(f"/cases/{scene.case_id}/outbox", headers=scene.headers)).json()
    to_teacher = [o for o in outbox if o["kind"] == "cancellation" and o["recipient_contact_id"] == scene.teacher]
    assert to_teacher and all(o["status"] == "suppressed" for o in to_teacher)
    full = await record(client, scene)
    assert len(full["disclosures"]) == len([o for o in outbox if o["status"] == "sent"])
    suppressed = {s["outbox_id"] for s in full["suppressions"] if s["recipient_contact_id"] == scene.teacher}
    assert {o["id"] for o in to_teacher} <= suppressed
    assert all(s["code"] for s in full["suppressions"] if s["outbox_id"] in suppressed)
    school_lines = [line for line in (await client.get(
        f"/cases/{scene.case_id}/access-report", headers={**scene.headers, "Accept": "application/json"}
    )).json()["shared"] if NAMES[2] in line["text"]]
    assert len(school_lines) == 2, "the two invitations, and no cancellation, reached the school"


async def test_feeds_and_answer_links_answer_410_after_closing(
        client: Client, people: Any, service: ServiceContext) -> None:
    scene = await build_scene(client, people, service)
    feed = await client.post(f"/cases/{scene.case_id}/feeds", headers=scene.headers, json={"scope": "case"})
    assert feed.status_code == 201, feed.text
    feed_path = "/feeds/" + feed.json()["url"].rsplit("/feeds/", 1)[1]
    links = set()
    for message in mails(service.settings.mail_folder).values():
        body = message.get_body(("plain",))
        if body is not None:
            links.update(ANSWER_LINK.findall(str(body.get_content())))
    assert links, "the invitations carry answer links"
    assert (await client.get(feed_path)).status_code == 200
    for token in links:
        assert (await client.get(f"/answer/{token}")).status_code == 200

    await close(client, scene)

    assert (await client.get(feed_path)).status_code == 410
    for token in links:
        assert (await client.get(f"/answer/{token}")).status_code == 410
        submitted = await client.post(f"/answer/{token}", data={"answer": "accepted"})
        assert submitted.status_code == 410


async def test_a_reminder_due_after_closing_is_never_sent(
        client: Client, people: Any, service: ServiceContext, clock: Clock) -> None:
    scene = await build_scene(client, people, service)
    outbox = (await client.get(f"/cases/{scene.case_id}/outbox", headers=scene.headers)).json()
    reminders = [o for o in outbox if o["kind"] == "reminder" and o["meeting_id"] == scene.later]
    assert reminders and all(o["status"] == "pending" for o in reminders), "the March meeting has reminders ahead"
    before = mails(service.settings.mail_folder)

    await close(client, scene)
    clock.set(datetime.fromisoformat("2027-03-01T12:00:00+01:00"))
    await send_due(service)

    outbox = (await client.get(f"/cases/{scene.case_id}/outbox", headers=scene.headers)).json()
    assert not [o for o in outbox if o["kind"] == "reminder" and o["status"] in ("sent", "pending", "sending")]
    assert not [m for p, m in mails(service.settings.mail_folder).items()
                if p not in before and not is_cancellation(m)]


async def test_reopen_within_the_retention_period_works_and_is_audited(
        client: Client, people: Any, service: ServiceContext, clock: Clock) -> None:
    """Reading: "within the retention period" is before closed_at + retention days; one second
    before the boundary counts as within."""
    scene = await build_scene(client, people, service)
    closed = await close(client, scene)
    days = service.settings.retention_days
    clock.set(parse(closed["closed_at"]) + timedelta(days=days) - timedelta(seconds=1))
    reopened = await client.post(f"/cases/{scene.case_id}/reopen", headers=scene.headers)
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["status"] == "open"
    assert reopened.json()["closed_at"] is None
    audit = (await client.get(f"/cases/{scene.case_id}/audit", headers=scene.headers)).json()
    assert [e["action"] for e in audit].count("case.reopened") == 1
    assert (await record(client, scene))["case"]["status"] == "open"


async def test_reopen_after_the_retention_period_is_refused(
        client: Client, people: Any, service: ServiceContext, clock: Clock) -> None:
    """After the period the case may not come back, whether or not the purge job has run yet; and
    once purged it can never be reopened."""
    scene = await build_scene(client, people, service)
    closed = await close(client, scene)
    clock.set(parse(closed["purge_due_at"]) + timedelta(seconds=1))
    late = await client.post(f"/cases/{scene.case_id}/reopen", headers=scene.headers)
    assert 400 <= late.status_code < 500, late.text
    await purge_due(service)
    purged = await client.post(f"/cases/{scene.case_id}/reopen", headers=scene.headers)
    assert 400 <= purged.status_code < 500, purged.text
    audit = (await client.get(f"/cases/{scene.case_id}/audit", headers=scene.headers))
    assert "case.reopened" not in [e["action"] for e in audit.json()] if audit.status_code == 200 else True


REPORT_WORDS = {"nb": ("Skolen", "11. januar", "4. januar"), "nn": ("Skulen", "11. januar", "4. januar"),
                "en": ("school", "11 January", "4 January")}


async def test_the_family_report_lists_consented_disclosures_only_and_no_internal_note(
        client: Client, people: Any, service: ServiceContext) -> None:
    """Each school disclosure is a line naming the school and the teacher, the meeting's day and the
    day the family consented (the issue's example line), in the language asked for; no line or
    word names the NAV adviser or the nurse (no consent covered them) or the consent's note."""
    scene = await build_scene(client, people, service)
    full = await record(client, scene)
    to_school = [d for d in full["disclosures"] if d["recipient_contact_id"] == scene.teacher]
    assert to_school, "the school learned of the meetings"
    assert not [d for d in full["disclosures"] if d["recipient_contact_id"] in (scene.nav, scene.nurse)]

    for language, (sector, meeting_day, consent_day) in REPORT_WORDS.items():
        answer = await client.get(f"/cases/{scene.case_id}/access-report", params={"lang": language},
                                  headers={**scene.headers, "Accept": "application/json"})
        assert answer.status_code == 200, answer.text
        report = answer.json()
        assert report["language"] == language
        assert INTERNAL_NOTE not in answer.text and "usikker" not in answer.text
        assert NAMES[3] not in answer.text and NAMES[4] not in answer.text
        shared_to_school = [line for line in report["shared"] if NAMES[2] in line["text"]]
        assert len(shared_to_school) == len(to_school)
        assert {parse(line["at"]) for line in shared_to_school} == {parse(d["at"]) for d in to_school}
        first = next(line["text"] for line in shared_to_school if meeting_day in line["text"])
        assert sector in first and consent_day in first, first
    wrong = await client.get(f"/cases/{scene.case_id}/access-report", params={"lang": "de"},
                             headers={**scene.headers, "Accept": "application/json"})
    assert wrong.status_code == 400 and "lang" in wrong.text


async def test_the_record_counts_match_the_api(client: Client, people: Any, service: ServiceContext) -> None:
    scene = await build_scene(client, people, service)
    withdrawn = await client.post(f"/cases/{scene.case_id}/consents", headers=scene.headers, json={
        "grantor_contact_id": scene.mother, "sector": "school", "status": "withdrawn", "form": "oral"})
    assert withdrawn.status_code == 201
    full = await record(client, scene)
    consents = (await client.get(f"/cases/{scene.case_id}/consents", headers=scene.headers)).json()
    meetings = (await client.get(f"/cases/{scene.case_id}/meetings", headers=scene.headers)).json()
    outbox = (await client.get(f"/cases/{scene.case_id}/outbox", headers=scene.headers)).json()
    assert len(full["consents"]) == len(consents) == 2
    assert len(full["meetings"]) == len(meetings) == 2
    assert len(full["disclosures"]) == len([o for o in outbox if o["status"] == "sent"])
    assert len(full["suppressions"]) == len([o for o in outbox if o["status"] == "suppressed"])
    assert {c["name"] for c in full["contacts"]} == set(NAMES)
    for held in full["meetings"]:
        assert {i["contact_id"] for i in held["invitees"]} == {scene.mother, scene.teacher, scene.nav, scene.nurse}


async def alerts_job(service: ServiceContext) -> None:
    """The background job that raises the closing alerts, run once at the clock's now."""
    async with service.transaction() as session:
        await raise_alerts(session, service.now(), service.settings.retention_days)


async def alerts(client: Client, scene: Scene) -> list[dict[str, Any]]:
    listed = await client.get(f"/cases/{scene.case_id}/alerts", headers=scene.headers)
    assert listed.status_code == 200, listed.text
    found: list[dict[str, Any]] = listed.json()
    return found


async def rows_as_text(service: ServiceContext) -> dict[str, str]:
    """Every row of every table, as text, per table."""
    metadata = MetaData()
    async with service.engine.connect() as connection:
        await connection.run_sync(metadata.reflect)
        found = {}
        for table in metadata.sorted_tables:
            rows = (await connection.execute(select(table))).all()
            found[table.name] = "\n".join(repr(tuple(row)) for row in rows)
    return found


def personal_data(text: str) -> list[str]:
    squeezed = text.replace(" ", "")
    needles = [*NAMES, "Ingeborg", "Oraklesen", MOTHER_EMAIL, SCHOOL_EMAIL, "hanne.oracle", "2013-05-17",
               "I.O.", *ANSWER_TOKENS]
    hits = [n for n in needles if n.lower() in text.lower()]
    hits += [p for p in (MOTHER_PHONE, NAV_PHONE) if p.replace(" ", "")[3:] in squeezed]
    return hits


async def test_purge_at_the_boundary_removes_every_trace_and_leaves_the_neighbour_alone(
        client: Client, people: Any, service: ServiceContext, clock: Clock) -> None:
    """Reading: data is deleted "after N days from closing": at closed_at + N days exactly the
    period has passed (the purge happens), one second before it has not (nothing goes)."""
    scene = await build_scene(client, people, service)
    for message in mails(service.settings.mail_folder).values():
        body = message.get_body(("plain",))
        if body is not None:
            ANSWER_TOKENS.update(ANSWER_LINK.findall(str(body.get_content())))
    assert ANSWER_TOKENS
    other = await client.post("/cases", headers=scene.headers, json={
        "reference": "BV-ANNEN-2", "child_given_name": "Tobias", "child_initials": "T.A.",
        "child_birth_date": "2011-02-02", "language": "nb", "aimed_at_child": True})
    other_id = other.json()["id"]
    for name, role in zip(OTHER_NAMES, ("child", "parent"), strict=True):
        extra = {"daily_care": True, "email": "turid@example.org"} if role == "parent" else {}
        added = await client.post(f"/cases/{other_id}/contacts", headers=scene.headers,
                                  json={"name": name, "role": role, **extra})
        assert added.status_code == 201, added.text
    other_before = (await client.get(f"/cases/{other_id}/contacts", headers=scene.headers)).json()

    closed = await close(client, scene)
    boundary = parse(closed["closed_at"]) + timedelta(days=service.settings.retention_days)
    clock.set(boundary - timedelta(days=10))
    await alerts_job(service)
    assert "deletion_due" in [a["kind"] for a in await alerts(client, scene)]
    assert parse(closed["purge_due_at"]) == boundary
    clock.set(boundary - timedelta(seconds=1))
    assert await purge_due(service) == []
    assert (await record(client, scene))["case"]["status"] == "closed"

    clock.set(boundary)
    assert len(await purge_due(service, dry_run=True)) == 1
    assert (await record(client, scene))["case"]["status"] == "closed", "a dry run deletes nothing"
    if service.settings.database_url.startswith("postgresql"):
        both = await asyncio.gather(purge_due(service), purge_due(service))
        assert sorted(len(done) for done in both) == [0, 1], "two instances purge one case once"
    else:
        assert len(await purge_due(service)) == 1
    leftovers = {table: personal_data(text) for table, text in (await rows_as_text(service)).items()}
    assert {table: hits for table, hits in leftovers.items() if hits} == {}

    everything = await rows_as_text(service)
    assert (await client.get(f"/cases/{other_id}/contacts", headers=scene.headers)).json() == other_before
    assert all(name in "\n".join(everything.values()) for name in OTHER_NAMES)
    assert await purge_due(service) == []


async def test_the_tombstone_keeps_reference_and_dates(
        client: Client, people: Any, service: ServiceContext, clock: Clock) -> None:
    """The API no longer shows a purged case (404, which the spec allows: it names no read of the
    tombstone); the tombstone is read from the tables: one row holding the reference, the opening
    and closing instants and when the data was deleted."""
    opened = clock.now()
    scene = await build_scene(client, people, service)
    clock.advance(timedelta(days=3))
    closed = await close(client, scene)
    deleted = parse(closed["purge_due_at"]) + timedelta(hours=1)
    clock.set(deleted)
    await purge_due(service)
    assert (await client.get(f"/cases/{scene.case_id}/record", headers=scene.headers)).status_code == 404
    metadata = MetaData()
    instants: set[datetime] = set()
    async with service.engine.connect() as connection:
        await connection.run_sync(metadata.reflect)
        for table in metadata.sorted_tables:
            for row in (await connection.execute(select(table))).all():
                if "BV-ORAKEL-1" in [value for value in row if isinstance(value, str)]:
                    instants |= {value.replace(tzinfo=None, microsecond=0) for value in row
                                 if isinstance(value, datetime)}
    def plain(instant: datetime) -> datetime:
        return instant.astimezone(opened.tzinfo).replace(tzinfo=None, microsecond=0)
    assert {plain(opened), plain(parse(closed["closed_at"])), plain(deleted)} <= instants, instants


async def test_who_may_close_and_reopen_and_see_the_record(
        client: Client, people: Any, service: ServiceContext) -> None:
    """A user of another unit: 404 for the record, the report, closing and reopening (like any case
    they may not see); nobody signed in: 401; the unit's leader may close ("a button for its
    coordinators and leaders"); reopening an open case is refused (4xx, not 404)."""
    scene = await build_scene(client, people, service)
    stranger = people.stranger.headers
    json_accept = {**stranger, "Accept": "application/json"}
    assert (await client.get(f"/cases/{scene.case_id}/record", headers=json_accept)).status_code == 404
    assert (await client.get(f"/cases/{scene.case_id}/access-report", headers=json_accept)).status_code == 404
    assert (await client.post(f"/cases/{scene.case_id}/close", headers=stranger)).status_code == 404
    assert (await client.post(f"/cases/{scene.case_id}/close")).status_code == 401
    assert (await record(client, scene))["case"]["status"] == "open"
    open_case = await client.post(f"/cases/{scene.case_id}/reopen", headers=scene.headers)
    assert 400 <= open_case.status_code < 500 and open_case.status_code != 404, open_case.text
    closed = await client.post(f"/cases/{scene.case_id}/close", headers=people.leader.headers)
    assert closed.status_code == 200 and closed.json()["status"] == "closed", closed.text
    assert (await client.post(f"/cases/{scene.case_id}/reopen", headers=stranger)).status_code == 404


async def test_closing_a_closed_case_is_refused_naming_the_rule(
        client: Client, people: Any, service: ServiceContext) -> None:
    scene = await build_scene(client, people, service)
    await close(client, scene)
    audit_before = (await client.get(f"/cases/{scene.case_id}/audit", headers=scene.headers)).json()
    again = await client.post(f"/cases/{scene.case_id}/close", headers=scene.headers)
    assert again.status_code in (400, 409, 422), again.text
    detail = again.json()["detail"].lower()
    assert any(word in detail for word in ("closed", "lukket", "avslutta", "avsluttet")), detail
    audit_after = (await client.get(f"/cases/{scene.case_id}/audit", headers=scene.headers)).json()
    assert [e["action"] for e in audit_after].count("case.closed") == 1
    assert len([e for e in audit_after if e["action"] == "case.closed"]) == len(
        [e for e in audit_before if e["action"] == "case.closed"])



async def test_closing_cancels_only_future_meetings(
        client: Client, people: Any, service: ServiceContext, clock: Clock) -> None:
    """"Future meetings cancelled": the 11 January meeting is over when the case closes (not marked
    held); it is neither cancelled nor does anyone get a cancellation for it; 1 March is cancelled."""
    scene = await build_scene(client, people, service)
    clock.set(datetime.fromisoformat("2027-01-12T12:00:00+01:00"))
    await send_due(service)
    before = mails(service.settings.mail_folder)
    closed = await close(client, scene)
    assert closed["cancelled_meetings"] == [scene.later]
    await send_due(service)
    outbox = (await client.get(f"/cases/{scene.case_id}/outbox", headers=scene.headers)).json()
    assert not [o for o in outbox if o["kind"] == "cancellation" and o["meeting_id"] == scene.soon]
    statuses = {m["id"]: m["status"] for m in (await record(client, scene))["meetings"]}
    assert statuses[scene.later] == "cancelled" and statuses[scene.soon] != "cancelled"
    uids = {m["id"]: m["uid"] for m in
            (await client.get(f"/cases/{scene.case_id}/meetings", headers=scene.headers)).json()}
    new = [m for p, m in mails(service.settings.mail_folder).items() if p not in before]
    assert new and all(is_cancellation(m) for m in new)
    assert not [m for m in new if uids[scene.soon] in m.as_string()]


async def test_a_held_meeting_stays_held_when_the_case_closes(
        client: Client, people: Any, service: ServiceContext, clock: Clock) -> None:
    scene = await build_scene(client, people, service)
    clock.set(datetime.fromisoformat("2027-01-11T11:00:00+01:00"))
    held = await client.post(f"/cases/{scene.case_id}/meetings/{scene.soon}/held", headers=scene.headers)
    assert held.status_code in (200, 201), held.text
    closed = await close(client, scene)
    assert closed["cancelled_meetings"] == [scene.later]
    meetings = {m["id"]: m for m in closed["record"]["meetings"]}
    assert meetings[scene.soon]["held"] is True and meetings[scene.soon]["status"] == "held"
    assert meetings[scene.later]["status"] == "cancelled"


async def test_closing_again_after_reopening_moves_the_deletion(
        client: Client, people: Any, service: ServiceContext, clock: Clock) -> None:
    """The period runs "from closing": after a reopening, from the last closing."""
    scene = await build_scene(client, people, service)
    first = await close(client, scene)
    assert service.settings.retention_days == 90
    assert parse(first["purge_due_at"]) == parse(first["closed_at"]) + timedelta(days=90)
    clock.set(parse(first["closed_at"]) + timedelta(days=80))
    assert (await client.post(f"/cases/{scene.case_id}/reopen", headers=scene.headers)).status_code == 200
    clock.advance(timedelta(days=1))
    second = await close(client, scene)
    assert parse(second["purge_due_at"]) == parse(second["closed_at"]) + timedelta(days=90)
    clock.set(parse(first["purge_due_at"]) + timedelta(days=1))
    assert await purge_due(service) == []
    assert (await record(client, scene))["case"]["status"] == "closed"
    audit = (await client.get(f"/cases/{scene.case_id}/audit", headers=scene.headers)).json()
    actions = [e["action"] for e in audit]
    assert actions.count("case.closed") == 2 and actions.count("case.reopened") == 1



async def test_producing_the_record_and_the_report_is_audited(
        client: Client, people: Any, service: ServiceContext) -> None:
    scene = await build_scene(client, people, service)

    async def count(action: str) -> int:
        audit = (await client.get(f"/cases/{scene.case_id}/audit", headers=scene.headers)).json()
        return [e["action"] for e in audit].count(action)

    produced, reported = await count("record.produced"), await count("record.access_report")
    await record(client, scene)
    report = await client.get(f"/cases/{scene.case_id}/access-report",
                              headers={**scene.headers, "Accept": "application/json"})
    assert report.status_code == 200
    assert await count("record.produced") == produced + 1
    assert await count("record.access_report") == reported + 1


async def test_contact_feeds_go_at_closing_and_their_tokens_at_the_purge(
        client: Client, people: Any, service: ServiceContext, clock: Clock) -> None:
    scene = await build_scene(client, people, service)
    feed = await client.post(f"/cases/{scene.case_id}/feeds", headers=scene.headers,
                             json={"scope": "contact", "contact_id": scene.mother})
    assert feed.status_code == 201, feed.text
    token, path = feed.json()["token"], "/feeds/" + feed.json()["url"].rsplit("/feeds/", 1)[1]
    assert (await client.get(path)).status_code == 200
    closed = await close(client, scene)
    assert feed.json()["id"] in closed["revoked_feeds"]
    assert (await client.get(path)).status_code == 410
    clock.set(parse(closed["purge_due_at"]))
    await purge_due(service)
    assert (await client.get(path)).status_code in (404, 410)
    assert not [table for table, text in (await rows_as_text(service)).items() if token in text]


async def test_two_closings_at_once_close_the_case_once(
        client: Client, people: Any, service: ServiceContext) -> None:
    scene = await build_scene(client, people, service)
    answers = await asyncio.gather(*(client.post(f"/cases/{scene.case_id}/close", headers=scene.headers)
                                     for _ in range(2)))
    assert sorted(a.status_code for a in answers) in ([200, 409], [200, 400], [200, 422]), [a.text for a in answers]
    outbox = (await client.get(f"/cases/{scene.case_id}/outbox", headers=scene.headers)).json()
    cancellations = [(o["meeting_id"], o["recipient_contact_id"], o["channel"]) for o in outbox
                     if o["kind"] == "cancellation"]
    assert len(cancellations) == len(set(cancellations))
    audit = (await client.get(f"/cases/{scene.case_id}/audit", headers=scene.headers)).json()
    assert [e["action"] for e in audit].count("case.closed") == 1



def dry_run(database_url: str, tmp_path: Path, clock_start: datetime | None = None) -> str:
    environment = {**os.environ, "SAMHANDLING_DATABASE_URL": database_url,
                   "SAMHANDLING_MAIL_FOLDER": str(tmp_path / "mail")}
    if clock_start is not None:
        environment["SAMHANDLING_CLOCK_START"] = clock_start.isoformat()
    executable = Path(sys.executable).with_name("samhandling")
    run = subprocess.run([str(executable), "purge", "--dry-run"], env=environment, capture_output=True,
                         text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_purge_dry_run_says_when_nothing_is_due_and_lists_a_due_case_without_deleting(
        database_url: str, tmp_path: Path, settings: Any) -> None:
    """The command line, against the test's database: first empty (it must say there is nothing
    to delete, in words, exit 0), then with one closed case and the service clock
    (SAMHANDLING_CLOCK_START) past its due instant (it names the case; nothing goes)."""
    said = dry_run(database_url, tmp_path).lower()
    assert said.strip(), "the dry run says something"
    assert any(word in said for word in ("nothing", "ingen", "no case")), said
    async def prepare() -> int:
        clock = Clock(frozen=START)
        context = ServiceContext.create(settings, clock)
        try:
            headers = await a_coordinator(context)
            async with AsyncTestClient(app=create_app(settings, clock)) as client:
                made = await client.post("/cases", headers=headers, json={
                    "reference": "BV-TØRR-3", "child_given_name": "Ola", "child_initials": "O.T.",
                    "child_birth_date": "2014-01-01", "language": "nb", "aimed_at_child": True})
                case_id = int(made.json()["id"])
                closed = await client.post(f"/cases/{case_id}/close", headers=headers)
                assert closed.status_code == 200, closed.text
            return case_id
        finally:
            await context.engine.dispose()

    case_id = asyncio.run(prepare())
    listed = dry_run(database_url, tmp_path, START + timedelta(days=90, seconds=5))
    assert "BV-TØRR-3" in listed and "would delete" in listed and "nothing was deleted" in listed

    async def still_there() -> str:
        context = ServiceContext.create(settings, Clock(frozen=START))
        try:
            async with context.engine.connect() as connection:
                metadata = MetaData()
                await connection.run_sync(metadata.reflect)
                return "\n".join([repr(tuple(row)) for table in metadata.sorted_tables
                                  for row in (await connection.execute(select(table))).all()])
        finally:
            await context.engine.dispose()

    assert case_id and "Ola" in asyncio.run(still_there())


async def test_alerts_for_an_ended_plan_and_a_deletion_due_within_14_days(
        client: Client, people: Any, service: ServiceContext, clock: Clock) -> None:
    """Reading: "a plan that has passed its end" — the day after its expected end (Oslo), not on
    the day itself; "deletion due within 14 days" — 13 days before yes, 15 days before no (the
    instant of exactly 14 days is left open). A closed case gets no plan alert."""
    scene = await build_scene(client, people, service)
    plan = await client.put(f"/cases/{scene.case_id}/plan", headers=scene.headers, json={
        "start_date": "2027-01-18", "expected_end": "2027-02-26", "goals": "Trives på skolen",
        "member_ids": [scene.mother, scene.teacher]})
    assert plan.status_code in (200, 201), plan.text
    clock.set(datetime.fromisoformat("2027-02-26T20:00:00+01:00"))
    await alerts_job(service)
    assert "plan_ended" not in [a["kind"] for a in await alerts(client, scene)]
    clock.set(datetime.fromisoformat("2027-02-27T12:00:00+01:00"))
    await alerts_job(service)
    assert "plan_ended" in [a["kind"] for a in await alerts(client, scene)]

    closed = await close(client, scene)
    due = parse(closed["purge_due_at"])
    clock.set(due - timedelta(days=15))
    await alerts_job(service)
    kinds = [a["kind"] for a in await alerts(client, scene)]
    assert "deletion_due" not in kinds and "plan_ended" not in kinds, kinds
    clock.set(due - timedelta(days=13))
    await alerts_job(service)
    deletion = [a for a in await alerts(client, scene) if a["kind"] == "deletion_due"]
    assert len(deletion) == 1 and parse(deletion[0]["due_at"]) == due
    await alerts_job(service)
    assert len([a for a in await alerts(client, scene) if a["kind"] == "deletion_due"]) == 1


async def test_no_new_feed_can_be_made_for_a_closed_case(
        client: Client, people: Any, service: ServiceContext) -> None:
    """Closing ends the case's feeds (410); a feed made afterwards would open again what closing shut,
    so it is refused like any other change to a closed case — or, at the least, answers 410."""
    scene = await build_scene(client, people, service)
    await close(client, scene)
    served = []
    for body in ({"scope": "case"}, {"scope": "contact", "contact_id": scene.mother}):
        made = await client.post(f"/cases/{scene.case_id}/feeds", headers=scene.headers, json=body)
        if made.status_code == 201:
            served.append((await client.get("/feeds/" + made.json()["url"].rsplit("/feeds/", 1)[1])).status_code)
        else:
            assert 400 <= made.status_code < 500, made.text
    assert served == []
