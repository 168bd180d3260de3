"""Calendar feeds over HTTP, on SQLite and PostgreSQL: what a subscriber's calendar shows.

Every feed a test fetches is read by three independent parsers — ical.js (Thunderbird),
vobject (Radicale) and icalendar — which must agree with each other; the tests then
compare what they read with the meetings in the database.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import icalendar
import pytest
import vobject
from litestar import Litestar
from litestar.testing import AsyncTestClient
from mail_fixtures import new_feed
from sqlalchemy import event
from sqlmodel import col, delete, select

from calendars.schedule import MeetingKind
from coordination import versions
from coordination.app import create_app
from coordination.clock import Clock
from coordination.context import ServiceContext
from coordination.db import make_engine, make_sessionmaker
from coordination.domain import Language
from coordination.models import AuditEntry, Case, FeedToken, Meeting, MeetingParticipant, Unit
from coordination.settings import Settings
from notifications.messages import meeting_kind_name

Client = AsyncTestClient[Litestar]
OSLO = ZoneInfo("Europe/Oslo")
JS_DIR = Path(__file__).parents[1] / "js"
START = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)
STATUS = {"proposed": "TENTATIVE", "confirmed": "CONFIRMED", "held": "CONFIRMED",
          "cancelled": "CANCELLED"}


def kind(name: str) -> str:
    """The meeting kind as summaries name it in bokmål."""
    return meeting_kind_name(MeetingKind(name), Language.NB)


def oslo(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=OSLO).astimezone(UTC)


# --- three independent readers ---------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    uid: str
    start: datetime
    end: datetime
    status: str
    summary: str
    attendees: int


@dataclass(frozen=True)
class Read:
    calname: str
    events: list[Seen]


def _utc(value: Any) -> datetime:
    assert isinstance(value, datetime) and value.utcoffset() is not None, f"not an instant: {value!r}"
    return value.astimezone(UTC)


def read_icaljs(data: bytes) -> Read:
    node = shutil.which("node")
    if node is None or not (JS_DIR / "node_modules" / "ical.js").is_dir():
        pytest.fail("ical.js is needed: install Node and run `npm ci --prefix tests/js`")
    result = subprocess.run([node, str(JS_DIR / "parse_ics.mjs")], input=data, capture_output=True,
                            check=False)
    if result.returncode != 0:
        pytest.fail("ical.js could not read the feed:\n" + result.stderr.decode())
    out = json.loads(result.stdout)
    assert out["method"] is None
    return Read(out["calname"], [
        Seen(e["uid"], datetime.fromisoformat(e["start"]), datetime.fromisoformat(e["end"]),
             e["status"], e["summary"], e["attendees"])
        for e in out["events"]
    ])


def read_vobject(data: bytes) -> Read:
    calendar = vobject.readOne(data.decode("utf-8"))
    assert "method" not in calendar.contents
    return Read(calendar.contents["x-wr-calname"][0].value, [
        Seen(v.uid.value, _utc(v.dtstart.value), _utc(v.dtend.value), v.status.value,
             v.summary.value, len(v.contents.get("attendee", [])))
        for v in calendar.contents.get("vevent", [])
    ])


def read_icalendar(data: bytes) -> Read:
    calendar = icalendar.Calendar.from_ical(data)
    assert calendar.get("METHOD") is None

    def attendees(vevent: Any) -> int:
        value = vevent.get("ATTENDEE", [])
        return len(value) if isinstance(value, list) else 1

    return Read(str(calendar["X-WR-CALNAME"]), [
        Seen(str(v["UID"]), _utc(v.decoded("DTSTART")), _utc(v.decoded("DTEND")), str(v["STATUS"]),
             str(v["SUMMARY"]), attendees(v))
        for v in calendar.walk("VEVENT")
    ])


def read_feed(body: bytes) -> Read:
    """What all three clients agree the feed says (a disagreement fails the test)."""
    assert body.count(b"BEGIN:VCALENDAR") == 1 and b"METHOD:" not in body
    assert b"REFRESH-INTERVAL;VALUE=DURATION:PT1H" in body and b"X-PUBLISHED-TTL:PT1H" in body
    readings = {"ical.js": read_icaljs(body), "vobject": read_vobject(body),
                "icalendar": read_icalendar(body)}
    first = readings["ical.js"]
    for name, reading in readings.items():
        assert reading == first, f"{name} reads the feed differently from ical.js"
    return first


def expected(meetings: Sequence[Meeting]) -> list[tuple[str, datetime, datetime, str]]:
    return sorted((m.uid, m.start.astimezone(UTC), m.end.astimezone(UTC), STATUS[m.status])
                  for m in meetings)


def seen(read: Read) -> list[tuple[str, datetime, datetime, str]]:
    return sorted((e.uid, e.start, e.end, e.status) for e in read.events)


# --- setting up ------------------------------------------------------------------------


async def add_meeting(
    service: ServiceContext, case_id: int, start: datetime, participants: Sequence[int], *,
    kind: str = "ad_hoc", minutes: int = 60, status: str = "confirmed", parents_told: bool = False,
    updated_at: datetime | None = None, cancelled_at: datetime | None = None,
) -> Meeting:
    """A meeting as the meetings service would store it, with the unit's version bumped."""
    async with service.transaction() as session:
        meeting = Meeting(
            case_id=case_id, uid=f"{uuid.uuid4()}@samhandling", kind=kind, start=start,
            end=start + timedelta(minutes=minutes), place="Skolen, møterom 2", agenda="Status",
            status=status, parents_told=parents_told, cancelled_at=cancelled_at,
            created_at=service.now(), updated_at=updated_at or service.now(),
        )
        session.add(meeting)
        await session.flush()
        for contact_id in participants:
            session.add(MeetingParticipant(meeting_id=meeting.id or 0, contact_id=contact_id))
        case = await session.get(Case, case_id)
        assert case is not None
        await versions.bump(session, case.unit_id)
    return meeting


async def change_meeting(service: ServiceContext, meeting: Meeting, **fields: Any) -> Meeting:
    async with service.transaction() as session:
        row = await session.get(Meeting, meeting.id)
        assert row is not None
        for name, value in fields.items():
            setattr(row, name, value)
        row.ical_sequence += 1
        row.updated_at = service.now()
        session.add(row)
        case = await session.get(Case, row.case_id)
        assert case is not None
        await versions.bump(session, case.unit_id)
    return row


async def delete_meeting(service: ServiceContext, meeting: Meeting) -> None:
    async with service.transaction() as session:
        await session.exec(delete(MeetingParticipant).where(
            col(MeetingParticipant.meeting_id) == meeting.id))
        await session.exec(delete(Meeting).where(col(Meeting.id) == meeting.id))
        case = await session.get(Case, meeting.case_id)
        assert case is not None
        await versions.bump(session, case.unit_id)


async def consent(client: Client, people: Any, team: Any, sector: str, status: str = "granted",
                  grantors: Sequence[int] | None = None, **extra: Any) -> list[int]:
    ids = []
    for grantor in grantors or (team.mother, team.father):
        body = {"grantor_contact_id": grantor, "sector": sector, "status": status, "form": "written",
                **extra}
        if status == "granted":
            body.setdefault("level", "purpose")
        answer = await client.post(f"/cases/{team.case_id}/consents", json=body,
                                   headers=people.coordinator.headers)
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
    return ids


async def get_feed(client: Client, feed: dict[str, Any], **headers: str) -> httpx.Response:
    return await client.get(f"/feeds/{feed['token']}.ics", headers=headers)


async def fetch(client: Client, feed: dict[str, Any]) -> tuple[httpx.Response, Read]:
    """A successful poll, read by the three clients."""
    answer = await get_feed(client, feed)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/calendar; charset=utf-8"
    return answer, read_feed(answer.content)


async def served_entries(service: ServiceContext) -> list[AuditEntry]:
    async with service.sessions() as session:
        rows = await session.exec(select(AuditEntry).where(AuditEntry.action == "feed.served")
                                  .order_by(col(AuditEntry.id)))
        return list(rows.all())


@dataclass
class Schedule:
    startup: Meeting  # after the switch to summer time, with everyone
    child_talk: Meeting  # the child's, the mother brings her
    national_day: Meeting  # 17 May, mother and nurse
    cancelled: Meeting  # a weekly status cancelled now
    evaluation: Meeting  # after the switch back to winter time, proposed

    @property
    def all(self) -> list[Meeting]:
        return [self.startup, self.child_talk, self.national_day, self.cancelled, self.evaluation]


@pytest.fixture
async def schedule(service: ServiceContext, team: Any) -> Schedule:
    everyone = [team.mother, team.father, team.child, team.teacher, team.nurse, team.nav]
    return Schedule(
        startup=await add_meeting(service, team.case_id, oslo(2027, 3, 29, 9), everyone,
                                  kind="startup", minutes=90),
        child_talk=await add_meeting(service, team.case_id, oslo(2027, 3, 24, 15),
                                     [team.child, team.mother], kind="child_talk"),
        national_day=await add_meeting(service, team.case_id, oslo(2027, 5, 17, 9),
                                       [team.mother, team.nurse], kind="mini_evaluation"),
        cancelled=await add_meeting(service, team.case_id, oslo(2027, 2, 8, 9),
                                    [team.mother, team.teacher], kind="weekly_status",
                                    minutes=30, status="cancelled", cancelled_at=START),
        evaluation=await add_meeting(service, team.case_id, oslo(2027, 11, 1, 9),
                                     [team.mother, team.father, team.teacher],
                                     kind="main_evaluation", status="proposed"),
    )


# --- tokens ----------------------------------------------------------------------------


async def test_token_lifecycle(client: Client, people: Any, team: Any, service: ServiceContext) -> None:
    created = await new_feed(client, people.coordinator, team.case_id)
    token = created["token"]
    assert len(token) >= 22  # ≥ 128 bits in URL-safe base64
    assert created["url"] == f"http://testserver/feeds/{token}.ics"
    assert created["webcal_url"] == f"webcal://testserver/feeds/{token}.ics"
    assert created["scope"] == "case" and created["revoked_at"] is None

    listed = await client.get(f"/cases/{team.case_id}/feeds", headers=people.coordinator.headers)
    assert listed.status_code == 200
    [entry] = listed.json()
    assert entry["id"] == created["id"] and entry["label"] == ""
    assert token not in listed.text and "token" not in entry
    async with service.sessions() as session:
        stored = await session.get(FeedToken, created["id"])
        assert stored is not None and token not in stored.token_hash  # only the hash is kept

    assert (await get_feed(client, created)).status_code == 200
    revoked = await client.delete(f"/feeds/{created['id']}", headers=people.coordinator.headers)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    gone = await get_feed(client, created)
    assert gone.status_code == 410
    assert gone.headers["content-type"].startswith("text/plain") and "trukket tilbake" in gone.text
    again = await client.delete(f"/feeds/{created['id']}", headers=people.coordinator.headers)
    assert again.status_code == 200 and again.json()["revoked_at"] == revoked.json()["revoked_at"]

    for path in ("/feeds/" + "A" * 43 + ".ics", "/feeds/short.ics", f"/feeds/{token}.ical",
                 f"/feeds/{token}"):
        unknown = await client.get(path)
        assert unknown.status_code == 404, path
        assert unknown.headers["content-type"].startswith("text/plain")

    log = await client.get(f"/cases/{team.case_id}/audit", headers=people.coordinator.headers)
    actions = [e["action"] for e in log.json()]
    assert "feed.created" in actions and "feed.revoked" in actions
    assert token not in log.text


async def test_only_those_who_may_see_the_case_manage_its_feeds(
    client: Client, people: Any, team: Any
) -> None:
    created = await new_feed(client, people.coordinator, team.case_id)
    for outsider in (people.stranger, people.other_coordinator, people.admin):
        made = await client.post(f"/cases/{team.case_id}/feeds", json={"scope": "case"},
                                 headers=outsider.headers)
        assert made.status_code == 404
        listed = await client.get(f"/cases/{team.case_id}/feeds", headers=outsider.headers)
        assert listed.status_code == 404
        revoked = await client.delete(f"/feeds/{created['id']}", headers=outsider.headers)
        assert revoked.status_code == 404
    assert (await get_feed(client, created)).status_code == 200
    # The unit's leader may see the case, so may manage its feeds.
    listed = await client.get(f"/cases/{team.case_id}/feeds", headers=people.leader.headers)
    assert [f["id"] for f in listed.json()] == [created["id"]]
    assert (await client.get(f"/feeds/{created['id']}.ics")).status_code == 404


async def test_bad_feed_requests_are_refused(client: Client, people: Any, team: Any, case_body: Any) -> None:
    headers = people.coordinator.headers
    no_contact = await client.post(f"/cases/{team.case_id}/feeds", json={"scope": "contact"},
                                   headers=headers)
    assert no_contact.status_code == 400 and no_contact.json()["field"] == "contact_id"
    other = await client.post("/cases", json=case_body(reference="BV-2027-99"), headers=headers)
    stranger_contact = await client.post(f"/cases/{other.json()['id']}/contacts",
                                         json={"name": "Ola", "role": "gp"}, headers=headers)
    wrong_case = await client.post(
        f"/cases/{team.case_id}/feeds",
        json={"scope": "contact", "contact_id": stranger_contact.json()["id"]}, headers=headers)
    assert wrong_case.status_code == 400 and wrong_case.json()["field"] == "contact_id"
    for scope in ("coordinator", "everything"):
        bad = await client.post(f"/cases/{team.case_id}/feeds", json={"scope": scope}, headers=headers)
        assert bad.status_code == 400
    case_with_contact = await client.post(
        f"/cases/{team.case_id}/feeds", json={"scope": "case", "contact_id": team.teacher},
        headers=headers)
    assert case_with_contact.status_code == 400
    admin = await client.post("/users/me/feeds", json={}, headers=people.admin.headers)
    assert admin.status_code == 403
    assert (await client.post(f"/cases/{team.case_id}/feeds", json={"scope": "case"})).status_code == 401
    assert (await client.get(f"/cases/{team.case_id}/feeds", headers=headers)).json() == []


# --- what each reader sees -------------------------------------------------------------


async def test_case_feed_shows_every_meeting_of_the_case(
    client: Client, people: Any, team: Any, schedule: Schedule
) -> None:
    feed = await new_feed(client, people.coordinator, team.case_id)
    _, read = await fetch(client, feed)
    assert read.calname == "Samhandling – BV-2027-17"
    assert seen(read) == expected(schedule.all)
    by_uid = {e.uid: e for e in read.events}
    startup = by_uid[schedule.startup.uid]
    assert startup.summary == f"{kind('startup')} – BV-2027-17 S.H."
    assert startup.attendees == 6  # staff see the whole team
    assert by_uid[schedule.child_talk.uid].summary == f"{kind('child_talk')} – BV-2027-17 S.H."
    # The instants around the switches to and from summer time, and on 17 May.
    assert startup.start == datetime(2027, 3, 29, 7, 0, tzinfo=UTC)
    assert startup.end == datetime(2027, 3, 29, 8, 30, tzinfo=UTC)
    assert by_uid[schedule.evaluation.uid].start == datetime(2027, 11, 1, 8, 0, tzinfo=UTC)
    assert by_uid[schedule.national_day.uid].start == datetime(2027, 5, 17, 7, 0, tzinfo=UTC)
    assert by_uid[schedule.evaluation.uid].status == "TENTATIVE"
    assert by_uid[schedule.cancelled.uid].status == "CANCELLED"


async def test_unit_setting_puts_child_name_only_in_coordinators_feeds(
    client: Client, people: Any, team: Any, schedule: Schedule, service: ServiceContext
) -> None:
    case_feed = await new_feed(client, people.coordinator, team.case_id)
    partner = await new_feed(client, people.coordinator, team.case_id, "contact", team.mother)
    leader_feed = (await client.post("/users/me/feeds", headers=people.leader.headers)).json()
    _, before = await fetch(client, case_feed)
    assert all("Sara" not in e.summary for e in before.events)
    async with service.transaction() as session:
        unit = await session.get(Unit, people.coordinator.unit_id)
        assert unit is not None
        unit.show_child_name_in_feeds = True
        session.add(unit)
        await versions.bump(session, unit.id or 0)
    _, after = await fetch(client, case_feed)
    startup = next(e for e in after.events if e.uid == schedule.startup.uid)
    assert startup.summary == f"{kind('startup')} – BV-2027-17 Sara (S.H.)"
    for other in (partner, leader_feed):
        _, read = await fetch(client, other)
        assert all("Sara" not in e.summary for e in read.events)


async def test_partner_with_consent_sees_own_meetings_at_purpose(
    client: Client, people: Any, team: Any, schedule: Schedule
) -> None:
    await consent(client, people, team, "school", level="content")
    feed = await new_feed(client, people.coordinator, team.case_id, "contact", team.teacher)
    answer, read = await fetch(client, feed)
    assert read.calname == "Samhandling – BV-2027-17"
    # Only the meetings the teacher takes part in; never the child talk or the nurse's meeting.
    assert seen(read) == expected([schedule.startup, schedule.cancelled, schedule.evaluation])
    startup = next(e for e in read.events if e.uid == schedule.startup.uid)
    assert startup.summary == f"{kind('startup')} – BV-2027-17 S.H."
    # Family and school are shown; health and NAV have no consent, so the teacher never
    # learns that the nurse or the NAV adviser take part.
    assert startup.attendees == 4
    assert b"Hanne Helse" not in answer.content and b"Nils NAV" not in answer.content
    # A purpose-level entry carries no goals or measures, only the agenda headline.
    assert b"DESCRIPTION:Status\r\n" in answer.content


async def test_partner_without_consent_gets_an_empty_valid_calendar(
    client: Client, people: Any, team: Any, schedule: Schedule
) -> None:
    await consent(client, people, team, "school")
    feed = await new_feed(client, people.coordinator, team.case_id, "contact", team.nurse)
    answer, read = await fetch(client, feed)
    assert read.events == [] and read.calname == "Møter"
    assert b"BV-2027-17" not in answer.content and b"S.H." not in answer.content
    assert b"BEGIN:VTIMEZONE" in answer.content


async def test_withdrawn_consent_empties_the_feed_at_the_next_poll(
    client: Client, people: Any, team: Any, schedule: Schedule, service: ServiceContext
) -> None:
    grants = await consent(client, people, team, "school")
    feed = await new_feed(client, people.coordinator, team.case_id, "contact", team.teacher)
    first, read = await fetch(client, feed)
    assert len(read.events) == 3
    await consent(client, people, team, "school", status="withdrawn", grantors=[team.mother])
    # The client presents the ETag it has: it must get the new, empty calendar, not 304.
    answer = await get_feed(client, feed, **{"If-None-Match": first.headers["etag"]})
    assert answer.status_code == 200
    empty = read_feed(answer.content)
    assert empty.events == [] and empty.calname == "Møter"
    assert b"BV-2027-17" not in answer.content
    entries = await served_entries(service)
    assert [e.detail["meeting_ids"] for e in entries] == [
        sorted(m.id for m in (schedule.startup, schedule.cancelled, schedule.evaluation)), []]
    assert entries[0].detail["consent_record_ids"] == sorted(grants)
    assert entries[0].detail["level"] == "purpose" and entries[1].detail["level"] == "none"
    assert all(e.case_id == team.case_id and e.detail["contact"] == team.teacher for e in entries)


async def test_parents_learn_of_a_child_talk_only_when_told(
    client: Client, people: Any, team: Any, schedule: Schedule, service: ServiceContext
) -> None:
    feed = await new_feed(client, people.coordinator, team.case_id, "contact", team.mother)
    _, read = await fetch(client, feed)
    assert schedule.child_talk.uid not in {e.uid for e in read.events}
    assert seen(read) == expected([schedule.startup, schedule.national_day, schedule.cancelled,
                                   schedule.evaluation])
    child = await new_feed(client, people.coordinator, team.case_id, "contact", team.child)
    _, childs = await fetch(client, child)
    assert schedule.child_talk.uid in {e.uid for e in childs.events}
    told = await change_meeting(service, schedule.child_talk, parents_told=True)
    _, after = await fetch(client, feed)
    assert seen(after) == expected([schedule.startup, told, schedule.national_day,
                                    schedule.cancelled, schedule.evaluation])


async def test_consent_ending_or_the_child_turning_15_changes_the_feed_without_a_write(
    client: Client, people: Any, team: Any, schedule: Schedule, clock: Clock
) -> None:
    """The cache knows when the same data renders differently: the child (born 2012-03-10)
    gets party status at Oslo midnight on 10 March 2027 and has not consented."""
    await consent(client, people, team, "school")
    await consent(client, people, team, "nav", valid_until="2027-01-05T12:00:00+01:00")
    teacher = await new_feed(client, people.coordinator, team.case_id, "contact", team.teacher)
    nav = await new_feed(client, people.coordinator, team.case_id, "contact", team.nav)
    _, read = await fetch(client, nav)
    assert [e.uid for e in read.events] == [schedule.startup.uid]
    clock.set(datetime(2027, 1, 5, 10, 59, 59, tzinfo=UTC))
    assert len((await fetch(client, nav))[1].events) == 1
    clock.set(datetime(2027, 1, 5, 11, 0, tzinfo=UTC))
    assert (await fetch(client, nav))[1].events == []

    # (By March the cancelled weekly status has been dropped: two meetings are left.)
    clock.set(datetime(2027, 3, 9, 22, 59, 59, tzinfo=UTC))
    assert seen((await fetch(client, teacher))[1]) == expected([schedule.startup, schedule.evaluation])
    clock.set(datetime(2027, 3, 9, 23, 0, tzinfo=UTC))
    assert (await fetch(client, teacher))[1].events == []
    await consent(client, people, team, "school", grantors=[team.child])
    assert seen((await fetch(client, teacher))[1]) == expected([schedule.startup, schedule.evaluation])


async def test_coordinator_feed_follows_assignment(
    client: Client, people: Any, team: Any, schedule: Schedule, service: ServiceContext,
    case_body: Any,
) -> None:
    other = await client.post("/cases", json=case_body(reference="BV-2027-18",
                                                       coordinator_ids=[people.other_coordinator.id]),
                              headers=people.leader.headers)
    assert other.status_code == 201, other.text
    other_id = other.json()["id"]
    contact = await client.post(f"/cases/{other_id}/contacts", json={"name": "Eva", "role": "parent"},
                                headers=people.leader.headers)
    theirs = await add_meeting(service, other_id, oslo(2027, 2, 1, 10), [contact.json()["id"]])
    mine = (await client.post("/users/me/feeds", json={"label": "Jobb"},
                              headers=people.coordinator.headers)).json()
    assert mine["scope"] == "coordinator" and mine["label"] == "Jobb" and mine["case_id"] is None
    leaders = (await client.post("/users/me/feeds", headers=people.leader.headers)).json()
    _, read = await fetch(client, mine)
    assert read.calname == "Samhandling – mine saker"
    assert seen(read) == expected(schedule.all)
    _, unit = await fetch(client, leaders)
    assert seen(unit) == expected([*schedule.all, theirs])
    summaries = {e.uid: e.summary for e in unit.events}
    assert summaries[theirs.uid] == f"{kind('ad_hoc')} – BV-2027-18 S.H."

    listed = await client.get("/users/me/feeds", headers=people.coordinator.headers)
    assert [f["id"] for f in listed.json()] == [mine["id"]]
    for outsider in (people.leader, people.other_coordinator, people.stranger):
        denied = await client.delete(f"/feeds/{mine['id']}", headers=outsider.headers)
        assert denied.status_code == 404
    assigned = await client.put(f"/cases/{other_id}/coordinators",
                                json=[people.other_coordinator.id, people.coordinator.id],
                                headers=people.leader.headers)
    assert assigned.status_code == 200
    _, after = await fetch(client, mine)
    assert seen(after) == expected([*schedule.all, theirs])
    # A user who leaves takes their feed with them.
    await client.delete(f"/users/{people.coordinator.id}", headers=people.admin.headers)
    assert (await get_feed(client, mine)).status_code == 410


# --- HTTP: validators, equal bytes, cancelled meetings -----------------------------------


async def test_etag_and_conditional_requests(
    client: Client, people: Any, team: Any, schedule: Schedule
) -> None:
    feed = await new_feed(client, people.coordinator, team.case_id)
    answer, _ = await fetch(client, feed)
    etag = answer.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    assert "private" in answer.headers["cache-control"]
    last_modified = answer.headers["last-modified"]
    for header in (etag, f'"nope", {etag}', f"W/{etag}", '"a", W/"b",' + etag, "*"):
        again = await get_feed(client, feed, **{"If-None-Match": header})
        assert again.status_code == 304, header
        assert again.content == b"" and again.headers["etag"] == etag
    for header in ('"nope"', 'W/"nope"', etag[:-2] + '"'):
        fresh = await get_feed(client, feed, **{"If-None-Match": header})
        assert fresh.status_code == 200 and fresh.content == answer.content
    since = await get_feed(client, feed, **{"If-Modified-Since": last_modified})
    assert since.status_code == 304
    older = parsedate_to_datetime(last_modified) - timedelta(seconds=1)
    stale = await get_feed(client, feed, **{"If-Modified-Since": older.strftime(
        "%a, %d %b %Y %H:%M:%S GMT")})
    assert stale.status_code == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
    both = await get_feed(client, feed, **{"If-None-Match": '"nope"', "If-Modified-Since": last_modified})
    assert both.status_code == 200


async def test_equal_state_gives_equal_bytes(
    client: Client, people: Any, team: Any, schedule: Schedule, app: Litestar, service: ServiceContext,
) -> None:
    await consent(client, people, team, "school")
    one = await new_feed(client, people.coordinator, team.case_id)
    two = await new_feed(client, people.leader, team.case_id)
    teacher_one = await new_feed(client, people.coordinator, team.case_id, "contact", team.teacher)
    teacher_two = await new_feed(client, people.leader, team.case_id, "contact", team.teacher)
    a, _ = await fetch(client, one)
    b, _ = await fetch(client, two)
    assert a.content == b.content and a.headers["etag"] == b.headers["etag"]
    c, _ = await fetch(client, teacher_one)
    d, _ = await fetch(client, teacher_two)
    assert c.content == d.content and c.headers["etag"] == d.headers["etag"]
    assert c.content != a.content
    # A change elsewhere in the unit renders again: the same bytes, nothing new accounted.
    before = len(await served_entries(service))
    patched = await client.patch(f"/cases/{team.case_id}/contacts/{team.nav}",
                                 json={"phone": "+47 400 00 001"}, headers=people.coordinator.headers)
    assert patched.status_code == 200
    again, _ = await fetch(client, one)
    assert again.content == a.content and again.headers["etag"] == a.headers["etag"]
    assert again.headers["last-modified"] == a.headers["last-modified"]
    assert len(await served_entries(service)) == before


async def test_last_modified_never_moves_backwards(
    client: Client, people: Any, team: Any, service: ServiceContext, settings: Settings, clock: Clock,
) -> None:
    older = await add_meeting(service, team.case_id, oslo(2027, 2, 1, 9), [team.mother],
                              updated_at=START - timedelta(days=2))
    newer = await add_meeting(service, team.case_id, oslo(2027, 2, 2, 9), [team.mother],
                              updated_at=START - timedelta(days=1) + timedelta(milliseconds=500))
    feed = await new_feed(client, people.coordinator, team.case_id)
    clock.advance(timedelta(minutes=5))
    first, _ = await fetch(client, feed)
    shown = parsedate_to_datetime(first.headers["last-modified"])
    assert shown == START - timedelta(days=1)  # the newest change, to the second
    await delete_meeting(service, newer)
    second, read = await fetch(client, feed)
    assert seen(read) == expected([older])
    after_delete = parsedate_to_datetime(second.headers["last-modified"])
    assert after_delete > shown  # a new version, so later; never back to the older meeting
    stale = await get_feed(client, feed, **{"If-Modified-Since": first.headers["last-modified"]})
    assert stale.status_code == 200
    # A new process (empty cache) serving the same bytes keeps the stored value.
    async with AsyncTestClient(app=create_app(settings, clock)) as fresh:
        third, _ = await fetch(fresh, feed)
    assert third.headers["last-modified"] == second.headers["last-modified"]
    assert third.headers["etag"] == second.headers["etag"]
    assert len(await served_entries(service)) == 2


async def test_cancelled_meetings_stay_30_days_then_go(
    client: Client, people: Any, team: Any, schedule: Schedule, clock: Clock, service: ServiceContext
) -> None:
    feed = await new_feed(client, people.coordinator, team.case_id)
    _, read = await fetch(client, feed)
    assert {e.uid: e.status for e in read.events}[schedule.cancelled.uid] == "CANCELLED"
    clock.set(START + timedelta(days=30) - timedelta(seconds=1))
    _, read = await fetch(client, feed)
    assert schedule.cancelled.uid in {e.uid for e in read.events}
    # Nothing is written in between: the cached body knows it expires at 30 days.
    clock.set(START + timedelta(days=30))
    _, read = await fetch(client, feed)
    assert seen(read) == expected([m for m in schedule.all if m is not schedule.cancelled])
    entries = await served_entries(service)
    assert len(entries) == 2 and schedule.cancelled.id not in entries[-1].detail["meeting_ids"]


# --- rule 9 and last seen --------------------------------------------------------------


async def test_each_new_version_is_accounted_once(
    client: Client, people: Any, team: Any, schedule: Schedule, service: ServiceContext
) -> None:
    feed = await new_feed(client, people.coordinator, team.case_id)
    first, _ = await fetch(client, feed)
    [entry] = await served_entries(service)
    assert entry.case_id == team.case_id and entry.actor == f"feed:{feed['id']}"
    assert entry.detail == {
        "feed": feed["id"], "scope": "case", "level": "content",
        "meeting_ids": sorted(m.id for m in schedule.all), "consent_record_ids": [],
    }
    await fetch(client, feed)
    not_modified = await get_feed(client, feed, **{"If-None-Match": first.headers["etag"]})
    assert not_modified.status_code == 304
    assert len(await served_entries(service)) == 1
    await change_meeting(service, schedule.evaluation, place="Rådhuset")
    changed, _ = await fetch(client, feed)
    assert changed.headers["etag"] != first.headers["etag"]
    assert b"R\xc3\xa5dhuset" in changed.content
    await fetch(client, feed)
    assert len(await served_entries(service)) == 2
    log = await client.get(f"/cases/{team.case_id}/audit", headers=people.coordinator.headers)
    assert [e["action"] for e in log.json()].count("feed.served") == 2


async def test_polls_only_note_last_seen_and_write_it_in_batches(
    client: Client, people: Any, team: Any, app: Litestar, service: ServiceContext, clock: Clock,
    settings: Settings,
) -> None:
    feed = await new_feed(client, people.coordinator, team.case_id)
    await fetch(client, feed)
    clock.advance(timedelta(minutes=10))
    await fetch(client, feed)

    async def stored() -> datetime | None:
        async with service.sessions() as session:
            row = await session.get(FeedToken, feed["id"])
            assert row is not None
            await session.refresh(row)
            return row.last_seen_at

    assert await stored() is None  # no write on the request path
    listed = await client.get(f"/cases/{team.case_id}/feeds", headers=people.coordinator.headers)
    assert listed.json()[0]["last_seen_at"] == "2027-01-04T08:10:00Z"
    # (Written here through the test's own connections: the app's belong to its event loop.)
    assert await app.state.feeds.flush_seen(service) == 1
    assert await stored() == START + timedelta(minutes=10)
    # At shutdown whatever is pending is written too.
    clock.advance(timedelta(minutes=10))
    async with AsyncTestClient(app=create_app(settings, clock)) as other:
        await fetch(other, feed)
    assert await stored() == START + timedelta(minutes=20)


# --- failures --------------------------------------------------------------------------


async def test_unreachable_database_answers_503_never_an_empty_calendar(
    client: Client, people: Any, team: Any, schedule: Schedule, app: Litestar, settings: Settings,
    clock: Clock,
) -> None:
    feed = await new_feed(client, people.coordinator, team.case_id)
    good, _ = await fetch(client, feed)
    # This process has the feed cached; the database goes away.
    ctx: ServiceContext = app.state.service
    working = ctx.engine, ctx.sessions
    dead = make_engine("postgresql+asyncpg://postgres@127.0.0.1:9/none")
    ctx.engine, ctx.sessions = dead, make_sessionmaker(dead)
    try:
        for headers in ({}, {"If-None-Match": good.headers["etag"]}):
            answer = await get_feed(client, feed, **headers)
            assert answer.status_code == 503
            assert int(answer.headers["retry-after"]) > 0
            assert not answer.headers["content-type"].startswith("text/calendar")
            assert b"BEGIN:VCALENDAR" not in answer.content
    finally:
        ctx.engine, ctx.sessions = working
        await dead.dispose()
    assert (await get_feed(client, feed)).content == good.content
    # A process that never reached its database.
    down = replace(settings, database_url="postgresql+asyncpg://postgres@127.0.0.1:9/none")
    async with AsyncTestClient(app=create_app(down, clock)) as lost:
        answer = await get_feed(lost, feed)
        assert answer.status_code == 503 and "retry-after" in answer.headers


async def test_meetings_made_through_the_meetings_api_show_in_feeds(
    client: Client, people: Any, team: Any
) -> None:
    """The meetings service bumps the data version: feeds follow it at the next poll."""
    headers = people.coordinator.headers
    await consent(client, people, team, "school")
    case_feed = await new_feed(client, people.coordinator, team.case_id)
    teacher = await new_feed(client, people.coordinator, team.case_id, "contact", team.teacher)
    assert (await fetch(client, case_feed))[1].events == []
    for start, end, kind in (("2027-03-29T09:00:00+02:00", "2027-03-29T10:30:00+02:00", "startup"),
                             ("2027-05-17T09:00:00+02:00", "2027-05-17T10:00:00+02:00", "ad_hoc"),
                             ("2027-11-01T09:00:00+01:00", "2027-11-01T10:00:00+01:00",
                              "main_evaluation")):
        made = await client.post(f"/cases/{team.case_id}/meetings", headers=headers, json={
            "start": start, "end": end, "kind": kind,
            "participant_ids": [team.mother, team.father, team.teacher]})
        assert made.status_code == 201, made.text
    first = made.json()

    async def api_meetings() -> list[tuple[str, datetime, datetime, str]]:
        listed = await client.get(f"/cases/{team.case_id}/meetings", headers=headers)
        assert listed.status_code == 200, listed.text
        return sorted((m["uid"], datetime.fromisoformat(m["start"]).astimezone(UTC),
                       datetime.fromisoformat(m["end"]).astimezone(UTC), STATUS[m["status"]])
                      for m in listed.json())

    meetings = await api_meetings()
    assert [m[1] for m in sorted(meetings, key=lambda m: m[1])] == [
        datetime(2027, 3, 29, 7, tzinfo=UTC), datetime(2027, 5, 17, 7, tzinfo=UTC),
        datetime(2027, 11, 1, 8, tzinfo=UTC)]
    for feed in (case_feed, teacher):
        assert seen((await fetch(client, feed))[1]) == meetings
    cancelled = await client.post(f"/cases/{team.case_id}/meetings/{first['id']}/cancel",
                                  headers=headers)
    assert cancelled.status_code == 200, cancelled.text
    meetings = await api_meetings()
    assert ("CANCELLED" in {m[3] for m in meetings})
    for feed in (case_feed, teacher):
        assert seen((await fetch(client, feed))[1]) == meetings


def test_dates_used_here_are_the_ones_the_issue_names() -> None:
    """The Mondays after the last Sundays of March and October 2027, and 17 May."""
    assert date(2027, 3, 29).weekday() == 0 and date(2027, 3, 28).weekday() == 6
    assert (date(2027, 3, 28) + timedelta(days=7)).month == 4
    assert date(2027, 11, 1).weekday() == 0 and (date(2027, 10, 31) + timedelta(days=7)).month == 11
    assert oslo(2027, 3, 29, 9).hour == 7 and oslo(2027, 11, 1, 9).hour == 8


async def test_a_warm_poll_reads_nothing_and_a_change_renders_again(
    client: Client, people: Any, team: Any, schedule: Schedule, app: Litestar, service: ServiceContext,
) -> None:
    feed = await new_feed(client, people.coordinator, team.case_id)
    first, _ = await fetch(client, feed)
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    engine = app.state.service.engine.sync_engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        await until_warm(client, feed, statements)
        for headers in ({}, {"If-None-Match": first.headers["etag"]}):
            statements.clear()
            answer = await get_feed(client, feed, **headers)
            assert answer.status_code in (200, 304)
            assert statements == []
        await change_meeting(service, schedule.startup, place="Helsestasjonen")
        statements.clear()
        changed, _ = await fetch(client, feed)
        assert len(statements) > 1 and changed.content != first.content
        assert b"Helsestasjonen" in changed.content
    finally:
        event.remove(engine, "before_cursor_execute", note)


async def until_warm(client: Client, feed: dict[str, Any], statements: list[str]) -> None:
    """Poll until a poll reads nothing: on PostgreSQL the change channel connects at start,
    and the notice of the feed's own first render (its new ETag) comes back through it."""
    quiet = 0
    for _ in range(200):
        await asyncio.sleep(0.05)  # the notice of a render just made may be on its way
        statements.clear()
        assert (await get_feed(client, feed)).status_code == 200
        quiet = 0 if statements else quiet + 1
        if quiet == 2:
            return
    raise AssertionError("every poll read the database")


async def test_a_leaders_feed_accounts_only_the_cases_that_changed(
    client: Client, people: Any, team: Any, schedule: Schedule, service: ServiceContext,
    case_body: Any,
) -> None:
    other = await client.post("/cases", json=case_body(reference="BV-2027-18"),
                              headers=people.coordinator.headers)
    other_id = other.json()["id"]
    contact = await client.post(f"/cases/{other_id}/contacts", json={"name": "Eva", "role": "parent"},
                                headers=people.coordinator.headers)
    theirs = await add_meeting(service, other_id, oslo(2027, 2, 1, 10), [contact.json()["id"]])
    feed = (await client.post("/users/me/feeds", headers=people.leader.headers)).json()
    await fetch(client, feed)
    entries = await served_entries(service)
    assert sorted((e.case_id, tuple(e.detail["meeting_ids"])) for e in entries) == sorted([
        (team.case_id, tuple(sorted(m.id or 0 for m in schedule.all))), (other_id, (theirs.id,))])
    assert all(e.detail["scope"] == "coordinator" and e.detail["user"] == people.leader.id
               for e in entries)
    await change_meeting(service, theirs, place="Kontoret")
    await fetch(client, feed)
    new = (await served_entries(service))[len(entries):]
    assert [(e.case_id, e.detail["meeting_ids"]) for e in new] == [(other_id, [theirs.id])]
    await delete_meeting(service, theirs)
    await fetch(client, feed)
    gone = (await served_entries(service))[len(entries) + 1:]
    assert [(e.case_id, e.detail["meeting_ids"]) for e in gone] == [(other_id, [])]


async def test_a_failing_render_answers_503_not_stale_and_not_empty(
    client: Client, people: Any, team: Any, schedule: Schedule, app: Litestar, service: ServiceContext,
) -> None:
    """The token query works but the render's queries fail: the new version cannot be
    known, so neither the cached old one nor an empty calendar may be served."""
    feed = await new_feed(client, people.coordinator, team.case_id)
    good, _ = await fetch(client, feed)
    await change_meeting(service, schedule.startup, status="cancelled", cancelled_at=START)
    ctx: ServiceContext = app.state.service
    working = ctx.sessions
    dead = make_engine("postgresql+asyncpg://postgres@127.0.0.1:9/none")
    ctx.sessions = make_sessionmaker(dead)
    try:
        answer = await get_feed(client, feed)
        assert answer.status_code == 503 and "retry-after" in answer.headers
        assert b"BEGIN:VCALENDAR" not in answer.content
    finally:
        ctx.sessions = working
        await dead.dispose()
    after, read = await fetch(client, feed)
    assert after.headers["etag"] != good.headers["etag"]
    assert {e.uid: e.status for e in read.events}[schedule.startup.uid] == "CANCELLED"
