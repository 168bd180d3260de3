"""Fresh feeds, from DESIGN.md alone (rules 1, 2, 7, 9, 11), written while the feed is being made
fast (token state and data versions held in process, invalidated by LISTEN/NOTIFY): every case
first polls the feed many times — with and without ``If-None-Match`` — so that whatever can be
cached is cached, and then makes one change. The next poll must show the change: a revoked
token, a user who left, a coordinator taken off the case or a deactivated contact answer
``410``; a withdrawal, an expiry or a birthday (the clock moved, nothing written) drops the
meeting with a new ETag, and the old ETag never earns a ``304``.

Expected values come from the rules' text, not from the code; where the text leaves room the
test's docstring says how it was read. Both databases; the two-instance test is PostgreSQL only.

CI form: 6 plain and 6 conditional polls warm each feed. Long form:
SAMHANDLING_ORACLE_WARM_POLLS=200 (a cache that only kicks in after many hits is then warm too).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import icalendar
import pytest
from db_backends import POSTGRES_ADMIN_URL, POSTGRES_ENABLED
from litestar.testing import AsyncTestClient
from mail_fixtures import Client, consent, meeting, new_feed
from processes import ServiceProcess, postgres_database, service_env
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from coordination.access import users
from coordination.app import create_app
from coordination.clock import Clock
from coordination.context import ServiceContext
from coordination.domain import UserRole
from coordination.schemas import UserIn
from coordination.settings import Settings

OSLO = ZoneInfo("Europe/Oslo")
AGENDA = "Oppfølging av skolefravær"
#: How many plain and conditional polls make a feed "warm" before the change.
WARM_POLLS = int(os.environ.get("SAMHANDLING_ORACLE_WARM_POLLS", "6"))
#: The bound for a change made through one instance to reach another while LISTEN/NOTIFY works.
CROSS_INSTANCE_BOUND = 2.0


def oslo(day: str, clock_time: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{clock_time}").replace(tzinfo=OSLO)


async def poll(client: Client, feed: dict[str, Any], etag: str | None = None) -> httpx.Response:
    headers = {"If-None-Match": etag} if etag else {}
    return await client.get(f"/feeds/{feed['token']}.ics", headers=headers)


def uids(answer: httpx.Response) -> set[str]:
    assert answer.status_code == 200, (answer.status_code, answer.text)
    calendar = icalendar.Calendar.from_ical(answer.content)
    return {str(event["UID"]) for event in calendar.walk("VEVENT")}


def event_of(answer: httpx.Response, uid: str) -> Any:
    (event,) = [e for e in icalendar.Calendar.from_ical(answer.content).walk("VEVENT") if str(e["UID"]) == uid]
    return event


def unfolded(answer: httpx.Response) -> str:
    """The feed's text with folded lines joined, so that a word is found across a fold."""
    return answer.content.decode("utf-8").replace("\r\n ", "").replace("\r\n\t", "")


async def warm(client: Client, feed: dict[str, Any]) -> httpx.Response:
    """Poll until whatever can be cached is: the same ETag each time, and 304 for it."""
    first = await poll(client, feed)
    assert first.status_code == 200, first.text
    etag = first.headers["etag"]
    for _ in range(WARM_POLLS):
        again = await poll(client, feed)
        assert again.status_code == 200 and again.headers["etag"] == etag and again.content == first.content
        assert (await poll(client, feed, etag)).status_code == 304
    return first


async def assert_gone(client: Client, feed: dict[str, Any], old: httpx.Response) -> None:
    """410 for a plain poll and for one that offers the ETag it was last given (never a 304),
    and no calendar in the body."""
    for answer in (await poll(client, feed), await poll(client, feed, old.headers["etag"])):
        assert answer.status_code == 410, (answer.status_code, answer.text[:200])
        assert b"BEGIN:VCALENDAR" not in answer.content


async def assert_dropped(client: Client, feed: dict[str, Any], old: httpx.Response, uid: str) -> httpx.Response:
    """Rule 7 at the next poll: a new ETag, a body without the meeting; the old ETag is
    answered with that same new body, not a 304."""
    now = await poll(client, feed)
    assert uid not in uids(now), "the meeting is still served"
    assert now.headers["etag"] != old.headers["etag"]
    conditional = await poll(client, feed, old.headers["etag"])
    assert conditional.status_code == 200, "a 304 for the ETag of the old answer"
    assert conditional.content == now.content and conditional.headers["etag"] == now.headers["etag"]
    assert last_modified(now) >= last_modified(old), "Last-Modified moved backwards"
    return now


def last_modified(answer: httpx.Response) -> datetime:
    return parsedate_to_datetime(answer.headers["last-modified"])


async def patch_contact(client: Client, people: Any, case_id: int, contact: int, **body: Any) -> dict[str, Any]:
    answer = await client.patch(f"/cases/{case_id}/contacts/{contact}", json=body,
                                headers=people.coordinator.headers)
    assert answer.status_code == 200, answer.text
    patched: dict[str, Any] = answer.json()
    return patched


async def my_feed(client: Client, person: Any) -> dict[str, Any]:
    answer = await client.post("/users/me/feeds", json={}, headers=person.headers)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def school_meeting(client: Client, people: Any, team: Any, **extra: Any) -> dict[str, Any]:
    """Both carers grant school at purpose; a meeting with the mother and the teacher."""
    for carer in (team.mother, team.father):
        await consent(client, people, team, carer, "school")
    return await meeting(client, people, team, [team.mother, team.teacher], **extra)


# --- tokens and people (rule 11) -----------------------------------------------------------------

async def test_a_revoked_feed_is_gone_at_the_next_poll(client: Client, people: Any, team: Any) -> None:
    held = await school_meeting(client, people, team)
    feeds = [await new_feed(client, people.coordinator, team.case_id),
             await new_feed(client, people.coordinator, team.case_id, "contact", team.teacher),
             await my_feed(client, people.coordinator)]
    for feed in feeds:
        old = await warm(client, feed)
        assert held["uid"] in uids(old)
        revoked = await client.delete(f"/feeds/{feed['id']}", headers=people.coordinator.headers)
        assert revoked.status_code == 200, revoked.text
        await assert_gone(client, feed, old)


async def test_every_feed_of_a_user_who_left_is_gone_at_the_next_poll(
    client: Client, people: Any, team: Any
) -> None:
    held = await school_meeting(client, people, team)
    feeds = [await new_feed(client, people.coordinator, team.case_id),
             await new_feed(client, people.coordinator, team.case_id, "contact", team.mother),
             await my_feed(client, people.coordinator)]
    warmed = [await warm(client, feed) for feed in feeds]
    assert all(held["uid"] in uids(w) for w in warmed)
    left = await client.delete(f"/users/{people.coordinator.id}", headers=people.admin.headers)
    assert left.status_code == 200, left.text
    for feed, old in zip(feeds, warmed, strict=True):
        await assert_gone(client, feed, old)


async def test_a_coordinator_taken_off_the_case_loses_its_feeds_and_their_own_feed_drops_it(
    client: Client, people: Any, team: Any
) -> None:
    """Rule 11: "gone once that user ... may no longer see what the feed shows" — the case feed
    and a contact feed they made; their own feed is still theirs but no longer shows the case."""
    held = await school_meeting(client, people, team)
    case_feed = await new_feed(client, people.coordinator, team.case_id)
    teachers = await new_feed(client, people.coordinator, team.case_id, "contact", team.teacher)
    own = await my_feed(client, people.coordinator)
    warmed = {name: await warm(client, feed) for name, feed in
              (("case", case_feed), ("teacher", teachers), ("own", own))}
    assert all(held["uid"] in uids(w) for w in warmed.values())
    moved = await client.put(f"/cases/{team.case_id}/coordinators", json=[people.other_coordinator.id],
                             headers=people.leader.headers)
    assert moved.status_code == 200, moved.text
    await assert_gone(client, case_feed, warmed["case"])
    await assert_gone(client, teachers, warmed["teacher"])
    now = await assert_dropped(client, own, warmed["own"], held["uid"])
    assert "BV-2027-17" not in unfolded(now)


async def test_a_deactivated_contacts_feed_is_gone_and_the_others_go_on(
    client: Client, people: Any, team: Any
) -> None:
    held = await school_meeting(client, people, team)
    teachers = await new_feed(client, people.coordinator, team.case_id, "contact", team.teacher)
    mothers = await new_feed(client, people.coordinator, team.case_id, "contact", team.mother)
    old = await warm(client, teachers)
    await warm(client, mothers)
    await patch_contact(client, people, team.case_id, team.teacher, active=False)
    await assert_gone(client, teachers, old)
    assert held["uid"] in uids(await poll(client, mothers))


async def test_a_moved_meeting_is_served_moved_at_the_next_poll(
    client: Client, people: Any, team: Any
) -> None:
    """DESIGN.md, feeds: SEQUENCE rises on every change; the warm feeds of the case, the
    coordinator and a partner show the new place and time at the next poll, never the old."""
    held = await school_meeting(client, people, team)
    feeds = [await new_feed(client, people.coordinator, team.case_id),
             await new_feed(client, people.coordinator, team.case_id, "contact", team.teacher),
             await my_feed(client, people.coordinator)]
    warmed = [await warm(client, feed) for feed in feeds]
    moved = await client.put(f"/cases/{team.case_id}/meetings/{held['id']}", headers=people.coordinator.headers,
                             json={"place": "Helsestasjonen", "start": "2027-01-12T13:00:00+01:00",
                                   "end": "2027-01-12T14:00:00+01:00"})
    assert moved.status_code == 200, moved.text
    for feed, old in zip(feeds, warmed, strict=True):
        now = await poll(client, feed, old.headers["etag"])
        assert now.status_code == 200, "a 304 for the meeting's old place and time"
        before, after = event_of(old, held["uid"]), event_of(now, held["uid"])
        assert int(str(after["SEQUENCE"])) > int(str(before["SEQUENCE"]))
        assert after.decoded("DTSTART") == datetime.fromisoformat("2027-01-12T13:00:00+01:00")
        assert "Helsestasjonen" in str(after["LOCATION"]) and "Rådhuset" not in unfolded(now)


# --- consent (rules 1, 2, 3, 7, 8) -----------------------------------------------------------------

async def test_a_withdrawal_drops_the_meeting_from_the_partners_feed_at_the_next_poll(
    client: Client, people: Any, team: Any
) -> None:
    """One carer withdrawing is enough (every carer must grant). The teacher's feed drops the
    meeting; the mother's (family, no sector consent needed) and the nurse's (health, still
    granted) keep it — and the nurse no longer sees the teacher among its attendees (rule 8:
    another partner sector only while both sectors' consent is at least purpose)."""
    for carer in (team.mother, team.father):
        await consent(client, people, team, carer, "health")
    held = await school_meeting(client, people, team, participant_ids=[team.mother, team.teacher, team.nurse])
    teachers = await new_feed(client, people.coordinator, team.case_id, "contact", team.teacher)
    nurses = await new_feed(client, people.coordinator, team.case_id, "contact", team.nurse)
    mothers = await new_feed(client, people.coordinator, team.case_id, "contact", team.mother)
    old = await warm(client, teachers)
    others = {"nurse": await warm(client, nurses), "mother": await warm(client, mothers)}
    assert held["uid"] in uids(old)
    await consent(client, people, team, team.father, "school", status="withdrawn")
    now = await assert_dropped(client, teachers, old, held["uid"])
    assert "BEGIN:VEVENT" not in unfolded(now)
    assert "Siri Lærer" in unfolded(others["nurse"]), "the nurse saw the teacher while both sectors allowed it"
    nurse_now = await poll(client, nurses, others["nurse"].headers["etag"])
    assert nurse_now.status_code == 200 and held["uid"] in uids(nurse_now)
    assert "Siri Lærer" not in unfolded(nurse_now)
    assert held["uid"] in uids(await poll(client, mothers))


async def test_a_role_corrected_into_an_outside_sector_is_gated_by_that_sectors_consent(
    client: Client, people: Any, team: Any
) -> None:
    """Two neighbours first placed with the family (role ``other``), each with a contact feed.
    One is corrected to a GP: health consent is ``logistics`` from both carers, so their feed
    keeps the meeting but no longer shows its agenda headline (purpose) nor the family's names
    (rule 8: at logistics a partner sees only themselves). The other is corrected to a NAV
    adviser with no NAV consent: their feed must not show the meeting at all (rule 1). The
    case feed is the staff's and keeps the meeting."""
    headers = people.coordinator.headers
    neighbours = []
    for name in ("Ola Nabo", "Eva Nabo"):
        added = await client.post(f"/cases/{team.case_id}/contacts", headers=headers,
                                  json={"name": name, "role": "other", "sector": "family"})
        assert added.status_code == 201, added.text
        neighbours.append(int(added.json()["id"]))
    for carer in (team.mother, team.father):
        await consent(client, people, team, carer, "health", level="logistics")
    held = await meeting(client, people, team, [team.mother, *neighbours], agenda=AGENDA, kind="startup")
    gp_feed, nav_feed = [await new_feed(client, people.coordinator, team.case_id, "contact", n) for n in neighbours]
    case_feed = await new_feed(client, people.coordinator, team.case_id)
    old_gp, old_nav = await warm(client, gp_feed), await warm(client, nav_feed)
    await warm(client, case_feed)
    assert AGENDA in unfolded(old_gp) and held["uid"] in uids(old_nav), "family view before the correction"

    assert (await patch_contact(client, people, team.case_id, neighbours[0], role="gp"))["sector"] == "health"
    assert (await patch_contact(client, people, team.case_id, neighbours[1],
                                role="nav_adviser"))["sector"] == "nav"
    gp_now = await poll(client, gp_feed)
    assert held["uid"] in uids(gp_now)
    assert gp_now.headers["etag"] != old_gp.headers["etag"]
    for secret in (AGENDA, "Mona Hansen", "Eva Nabo"):
        assert secret not in unfolded(gp_now), secret
    nav_now = await poll(client, nav_feed)
    if nav_now.status_code != 410:  # reading: 410 or an empty calendar both tell nothing
        await assert_dropped(client, nav_feed, old_nav, held["uid"])
        assert "BEGIN:VEVENT" not in unfolded(nav_now)
    assert held["uid"] in uids(await poll(client, case_feed))


# --- rule 9: each new version accounted for once, however warm -----------------------------------

AUDIT_BOUND = 5.0  # seconds an audit written off the hot path may take to appear


async def served_entries(client: Client, people: Any, case_id: int, feed: dict[str, Any]) -> list[dict[str, Any]]:
    answer = await client.get(f"/cases/{case_id}/audit", headers=people.coordinator.headers)
    assert answer.status_code == 200, answer.text
    return [e for e in answer.json() if e["action"] == "feed.served" and e["subject"] == f"feed:{feed['id']}"]


async def settled_served(client: Client, people: Any, case_id: int, feed: dict[str, Any],
                         expected: int) -> list[dict[str, Any]]:
    """The feed's ``feed.served`` entries once ``expected`` have appeared (an audit may be
    written in batches, so within a bound), and still exactly that many a moment later."""
    began = time.monotonic()
    entries = await served_entries(client, people, case_id, feed)
    while len(entries) < expected and time.monotonic() - began < AUDIT_BOUND:
        await asyncio.sleep(0.1)
        entries = await served_entries(client, people, case_id, feed)
    await asyncio.sleep(0.3)
    again = await served_entries(client, people, case_id, feed)
    assert len(again) == expected, f"{len(again)} feed.served entries, expected {expected}"
    return sorted(again, key=lambda e: e["id"])


async def test_each_new_version_of_a_warm_feed_is_accounted_for_once(
    client: Client, people: Any, team: Any, clock: Clock
) -> None:
    """Rule 9: "a feed is accounted for once per new version served to a token (a 304 or a
    repeat of the same bytes discloses nothing new)". Many polls of one version: one entry,
    naming the meeting and the consent records. The withdrawal's new version: one more entry,
    not naming the meeting. A new grant: one more, naming it again."""
    held = await school_meeting(client, people, team)
    teachers = await new_feed(client, people.coordinator, team.case_id, "contact", team.teacher)
    await warm(client, teachers)
    first = await settled_served(client, people, team.case_id, teachers, 1)
    assert first[0]["detail"]["meeting_ids"] == [held["id"]] and first[0]["detail"]["consent_record_ids"]
    await consent(client, people, team, team.father, "school", status="withdrawn")
    clock.advance(timedelta(minutes=1))
    await warm(client, teachers)
    second = await settled_served(client, people, team.case_id, teachers, 2)
    assert held["id"] not in second[1]["detail"]["meeting_ids"]
    await consent(client, people, team, team.father, "school")
    clock.advance(timedelta(minutes=1))
    await warm(client, teachers)
    third = await settled_served(client, people, team.case_id, teachers, 3)
    assert third[2]["detail"]["meeting_ids"] == [held["id"]]


# --- the clock alone moves (rules 2 and 7): no write between the warm poll and the next -----------

EXPIRIES = {
    # valid-until at midnight Oslo; the cache warmed a day or more before; the probes around it.
    "winter": ("2027-01-08T00:00:00+01:00", oslo("2027-01-06", "12:00"), ["2027-01-07T22:59:59+00:00"],
               ["2027-01-07T23:00:00+00:00", "2027-01-08T10:00:00+00:00"]),
    # DST begins 28 March 2027: midnight Oslo on the 29th is 22:00 UTC; 22:30 UTC is already after it.
    "spring_forward": ("2027-03-29T00:00:00+02:00", oslo("2027-03-26", "12:00"), ["2027-03-28T21:59:59+00:00"],
                       ["2027-03-28T22:00:00+00:00", "2027-03-28T22:30:00+00:00"]),
    # DST ends 31 October 2027: midnight Oslo on 1 November is 23:00 UTC; 22:30 UTC is still before it.
    "fall_back": ("2027-11-01T00:00:00+01:00", oslo("2027-10-29", "12:00"),
                  ["2027-10-31T22:00:00+00:00", "2027-10-31T22:59:59+00:00"], ["2027-10-31T23:00:00+00:00"]),
}


@pytest.mark.parametrize("season", list(EXPIRIES))
async def test_a_grant_valid_until_midnight_oslo_is_served_before_and_not_after(
    client: Client, people: Any, team: Any, clock: Clock, season: str
) -> None:
    """Rule 2: a grant is valid from/until; read as the half-open [from, until). The mother's
    grant ends at midnight Oslo, the father's and the child's do not, so effective consent ends
    with hers.
    Only the clock moves between the warm poll and the probes."""
    until, warm_at, served, dropped = EXPIRIES[season]
    body = {"grantor_contact_id": team.mother, "sector": "school", "status": "granted", "form": "written",
            "level": "purpose", "valid_until": until}
    granted = await client.post(f"/cases/{team.case_id}/consents", json=body, headers=people.coordinator.headers)
    assert granted.status_code == 201, granted.text
    for grantor in (team.father, team.child):  # the child turns 15 on 10 March 2027
        await consent(client, people, team, grantor, "school")
    held = await meeting(client, people, team, [team.mother, team.teacher],
                         start="2027-12-06T09:00:00+01:00", end="2027-12-06T10:00:00+01:00")
    teachers = await new_feed(client, people.coordinator, team.case_id, "contact", team.teacher)
    clock.set(warm_at)
    old = await warm(client, teachers)
    assert held["uid"] in uids(old)
    for moment in served:
        clock.set(datetime.fromisoformat(moment))
        assert held["uid"] in uids(await poll(client, teachers)), moment
        assert (await poll(client, teachers, old.headers["etag"])).status_code == 304, moment
    clock.set(datetime.fromisoformat(dropped[0]))
    await assert_dropped(client, teachers, old, held["uid"])
    for moment in dropped[1:]:
        clock.set(datetime.fromisoformat(moment))
        assert held["uid"] not in uids(await poll(client, teachers)), moment


async def test_a_grant_dated_in_the_future_is_served_from_its_first_moment_not_before(
    client: Client, people: Any, team: Any, clock: Clock
) -> None:
    """Rule 2, the other edge of the period: the father's grant is valid from 8 January 00:00
    Oslo. The warm feed has no meeting before that moment and has it from that moment, with
    only the clock moving."""
    for grantor in (team.mother, team.child):
        await consent(client, people, team, grantor, "school")
    body = {"grantor_contact_id": team.father, "sector": "school", "status": "granted", "form": "written",
            "level": "purpose", "valid_from": "2027-01-08T00:00:00+01:00"}
    granted = await client.post(f"/cases/{team.case_id}/consents", json=body, headers=people.coordinator.headers)
    assert granted.status_code == 201, granted.text
    held = await meeting(client, people, team, [team.mother, team.teacher],
                         start="2027-02-01T09:00:00+01:00", end="2027-02-01T10:00:00+01:00")
    teachers = await new_feed(client, people.coordinator, team.case_id, "contact", team.teacher)
    clock.set(oslo("2027-01-07", "23:59:59"))
    old = await warm(client, teachers)
    assert held["uid"] not in uids(old)
    clock.set(oslo("2027-01-08", "00:00"))
    now = await poll(client, teachers, old.headers["etag"])
    assert now.status_code == 200 and held["uid"] in uids(now)


async def test_the_childs_fifteenth_birthday_stops_the_feed_until_the_child_consents(
    client: Client, people: Any, case_body: Any, clock: Clock
) -> None:
    """Rule 2: from the child's 15th birthday (the date in Oslo) the measure aimed at the child
    needs the child's grant too; until then that sector's effective consent is none. The feed
    was warm the evening before; only the clock moves past midnight Oslo."""
    headers = people.coordinator.headers
    made = await client.post("/cases", json=case_body(child_birth_date="2012-01-06", aimed_at_child=True),
                             headers=headers)
    assert made.status_code == 201, made.text
    case_id = made.json()["id"]
    ids = {}
    for name, body in (("child", {"name": "Sara Hansen", "role": "child"}),
                       ("mother", {"name": "Mona Hansen", "role": "parent", "daily_care": True}),
                       ("teacher", {"name": "Siri Lærer", "role": "school_contact"})):
        added = await client.post(f"/cases/{case_id}/contacts", json=body, headers=headers)
        assert added.status_code == 201, added.text
        ids[name] = added.json()["id"]

    async def grant(grantor: int) -> None:
        answer = await client.post(f"/cases/{case_id}/consents", headers=headers, json={
            "grantor_contact_id": grantor, "sector": "school", "status": "granted", "form": "written",
            "level": "purpose"})
        assert answer.status_code == 201, answer.text

    await grant(ids["mother"])
    created = await client.post(f"/cases/{case_id}/meetings", headers=headers, json={
        "start": "2027-01-20T09:00:00+01:00", "end": "2027-01-20T10:00:00+01:00", "place": "Rådhuset",
        "participant_ids": [ids["mother"], ids["teacher"]]})
    assert created.status_code == 201, created.text
    uid = created.json()["uid"]
    teachers = await new_feed(client, people.coordinator, case_id, "contact", ids["teacher"])
    clock.set(oslo("2027-01-05", "23:59:59"))
    old = await warm(client, teachers)
    assert uid in uids(old)
    clock.set(oslo("2027-01-06", "00:00:01"))
    await assert_dropped(client, teachers, old, uid)
    clock.set(oslo("2027-01-06", "10:00"))
    await grant(ids["child"])
    assert uid in uids(await poll(client, teachers))


# --- two instances on one PostgreSQL (rules 7 and 11 across processes) -------------------------

LISTENER = "samhandling-feed-listener"


async def _listener_pids(url: str) -> set[int]:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(text(
                "SELECT pid FROM pg_stat_activity WHERE application_name = :name AND datname = current_database()"),
                {"name": LISTENER})
            return {int(row[0]) for row in rows.all()}
    finally:
        await engine.dispose()


async def _terminate(url: str, pids: set[int]) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            for pid in pids:
                await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await engine.dispose()


async def _people(url: str) -> dict[str, tuple[int, str]]:
    """Two coordinators, a leader and an admin in one unit; their ids and API tokens."""
    context = ServiceContext.create(Settings(database_url=url))
    tokens = {}
    try:
        async with context.transaction() as session:
            unit = await users.get_or_create_unit(session, "Enhet A", context.now())
            assert unit.id is not None
            for name, role in (("coordinator", UserRole.COORDINATOR), ("other", UserRole.COORDINATOR),
                               ("leader", UserRole.LEADER), ("admin", UserRole.ADMIN)):
                made = await users.create_user(session, unit.id, UserIn(name=name.title(), role=role), context.now())
                assert made.user.id is not None
                tokens[name] = (made.user.id, made.token)
    finally:
        await context.engine.dispose()
    return tokens


def _b_polls(instance: ServiceProcess, token: str, etag: str | None = None) -> httpx.Response:
    headers = {"If-None-Match": etag} if etag else {}
    return httpx.get(f"{instance.url}/feeds/{token}.ics", headers=headers, timeout=10)


def _until_correct(instance: ServiceProcess, token: str, correct: Any, bound: float) -> tuple[float, int]:
    """Poll B until ``correct(answer)``; the seconds it took and the stale answers before (fails
    beyond ``bound``)."""
    began = time.monotonic()
    stale = 0
    while True:
        answer = _b_polls(instance, token)
        if correct(answer):
            return time.monotonic() - began, stale
        stale += 1
        if time.monotonic() - began > bound:
            raise AssertionError(f"instance B still served the old answer after {bound} s: {answer.status_code}")
        time.sleep(0.02)


def _served(uid: str) -> Any:
    return lambda answer: answer.status_code == 200 and uid.encode() in answer.content


def _dropped(uid: str) -> Any:
    return lambda answer: answer.status_code == 200 and uid.encode() not in answer.content


def _gone(answer: httpx.Response) -> bool:
    return answer.status_code == 410


@pytest.mark.skipif(not POSTGRES_ENABLED, reason="SAMHANDLING_TEST_POSTGRES=off: PostgreSQL only")
def test_a_change_through_one_instance_is_served_by_the_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Instance A (an app in this process) makes the changes; instance B (``samhandling serve``)
    has the feeds warm. While B's notification channel works, B may lag A's commit by a short
    bounded time (noted); once B's listener connection is killed, B must answer correctly at its
    very next poll (it has to fall back to the database). Last, a coordinator taken off the case
    and then deactivated through A: B's case feed and own feed follow within the bound."""
    with postgres_database() as url:
        instance_b = ServiceProcess(service_env(url, 1, SAMHANDLING_DISPATCHER_ENABLED="false"),
                                    tmp_path / "b.log").start()
        try:
            instance_b.wait_ready()
            timings, b_listeners = asyncio.run(_two_instances(url, instance_b, tmp_path))
        finally:
            instance_b.stop()
    with capsys.disabled():
        print(f"\ncross-instance (B's listeners {sorted(b_listeners)}): " +
              ", ".join(f"{name} {seconds * 1000:.0f} ms after {stale} stale" for name, (seconds, stale) in
                        timings.items()))


Timings = dict[str, tuple[float, int]]


async def _two_instances(url: str, instance_b: ServiceProcess, tmp_path: Path) -> tuple[Timings, set[int]]:
    tokens = await _people(url)
    await asyncio.sleep(0.5)  # B's listener, if it has one, connects at start
    b_listeners = await _listener_pids(url)
    settings = replace(Settings(), database_url=url, dispatcher_enabled=False,
                       mail_folder=tmp_path / "mail", public_base_url="http://testserver")
    async with AsyncTestClient(app=create_app(settings, Clock())) as instance_a:
        timings = await _cross_instance_scenario(instance_a, instance_b, tokens, url, b_listeners)
    return timings, b_listeners


async def _cross_instance_scenario(a: Client, b: ServiceProcess, people: dict[str, tuple[int, str]], url: str,
                                   b_listeners: set[int]) -> Timings:
    coordinator, leader, admin = ({"Authorization": f"Bearer {people[who][1]}"}
                                  for who in ("coordinator", "leader", "admin"))
    case_id, ids, uid = await _partner_case(a, coordinator)
    feeds = {}
    for role in ("school_contact", "public_health_nurse", "nav_adviser", "parent"):
        feed = await a.post(f"/cases/{case_id}/feeds", headers=coordinator,
                            json={"scope": "contact", "contact_id": ids[role]})
        assert feed.status_code == 201, feed.text
        feeds[role] = feed.json()
    case_feed = await a.post(f"/cases/{case_id}/feeds", headers=coordinator, json={"scope": "case"})
    own = await a.post("/users/me/feeds", headers=coordinator, json={})
    assert case_feed.status_code == 201 and own.status_code == 201, (case_feed.text, own.text)
    feeds["case"], feeds["own"] = case_feed.json(), own.json()
    for feed in feeds.values():
        for _ in range(WARM_POLLS):
            assert _served(uid)(_b_polls(b, feed["token"]))
    timings: Timings = {}

    # Channel up: B follows A within the bound.
    await _withdraw(a, coordinator, case_id, ids["parent"], "school")
    timings["withdrawal"] = _until_correct(b, feeds["school_contact"]["token"], _dropped(uid), CROSS_INSTANCE_BOUND)
    revoked = await a.delete(f"/feeds/{feeds['parent']['id']}", headers=coordinator)
    assert revoked.status_code == 200, revoked.text
    timings["revocation"] = _until_correct(b, feeds["parent"]["token"], _gone, CROSS_INSTANCE_BOUND)

    # Channel down: B's very next poll after A's commit is right.
    await _terminate(url, b_listeners)
    for role in ("public_health_nurse", "nav_adviser"):  # warm again after the kill
        assert _served(uid)(_b_polls(b, feeds[role]["token"]))
    await _withdraw(a, coordinator, case_id, ids["parent"], "health")
    assert _dropped(uid)(_b_polls(b, feeds["public_health_nurse"]["token"])), "B served a withdrawn consent"
    off = await a.patch(f"/cases/{case_id}/contacts/{ids['nav_adviser']}", headers=coordinator,
                        json={"active": False})
    assert off.status_code == 200, off.text
    assert _gone(_b_polls(b, feeds["nav_adviser"]["token"])), "B served a deactivated contact's feed"

    # Staff (rule 11), the channel perhaps back by now: within the bound again.
    moved = await a.put(f"/cases/{case_id}/coordinators", headers=leader, json=[people["other"][0]])
    assert moved.status_code == 200, moved.text
    timings["reassignment"] = _until_correct(b, feeds["case"]["token"], _gone, CROSS_INSTANCE_BOUND)
    assert _dropped(uid)(_b_polls(b, feeds["own"]["token"])), "B's own feed still shows a case taken away"
    left = await a.delete(f"/users/{people['coordinator'][0]}", headers=admin)
    assert left.status_code == 200, left.text
    timings["user left"] = _until_correct(b, feeds["own"]["token"], _gone, CROSS_INSTANCE_BOUND)
    return timings


async def _partner_case(a: Client, coordinator: dict[str, str]) -> tuple[int, dict[str, int], str]:
    """A case with a carer, a teacher, a nurse and NAV; the carer grants all three sectors; one
    meeting with all of them. The case id, the contact ids by role and the meeting's UID."""
    made = await a.post("/cases", headers=coordinator, json={
        "reference": "BV-2027-17", "child_given_name": "Sara", "child_initials": "S.H.",
        "child_birth_date": "2016-03-10", "language": "nb", "aimed_at_child": True})
    assert made.status_code == 201, made.text
    case_id: int = made.json()["id"]
    ids: dict[str, int] = {}
    for name, role, extra in (("Mona Hansen", "parent", {"daily_care": True}), ("Siri Lærer", "school_contact", {}),
                              ("Hanne Helse", "public_health_nurse", {}), ("Nils NAV", "nav_adviser", {})):
        added = await a.post(f"/cases/{case_id}/contacts", headers=coordinator,
                             json={"name": name, "role": role, **extra})
        assert added.status_code == 201, added.text
        ids[role] = added.json()["id"]
    for sector in ("school", "health", "nav"):
        granted = await a.post(f"/cases/{case_id}/consents", headers=coordinator, json={
            "grantor_contact_id": ids["parent"], "sector": sector, "status": "granted", "form": "written",
            "level": "purpose"})
        assert granted.status_code == 201, granted.text
    created = await a.post(f"/cases/{case_id}/meetings", headers=coordinator, json={
        "start": "2027-06-08T09:00:00+02:00", "end": "2027-06-08T10:00:00+02:00", "place": "Rådhuset",
        "participant_ids": list(ids.values())})
    assert created.status_code == 201, created.text
    return case_id, ids, str(created.json()["uid"])


async def _withdraw(a: Client, headers: dict[str, str], case_id: int, grantor: int, sector: str) -> None:
    answer = await a.post(f"/cases/{case_id}/consents", headers=headers, json={
        "grantor_contact_id": grantor, "sector": sector, "status": "withdrawn", "form": "written"})
    assert answer.status_code == 201, answer.text


def test_the_expiry_table_is_at_midnight_oslo() -> None:
    """The probes above are only as good as their arithmetic: every valid-until is a midnight in
    Oslo, the last 'served' probe is before it and the first 'dropped' one exactly at it."""
    for until, _, served, dropped in EXPIRIES.values():
        end = datetime.fromisoformat(until)
        assert end.astimezone(OSLO).time().isoformat() == "00:00:00"
        assert end.astimezone(OSLO).utcoffset() == end.utcoffset()
        assert all(datetime.fromisoformat(s) < end for s in served)
        assert datetime.fromisoformat(dropped[0]) == end.astimezone(UTC)


# --- an instance cut off from the database (rule 7 and "503, never a 200 with an empty calendar") ---

def _ports_of(pid: int) -> set[int]:
    """The local ports of ``pid``'s TCP connections to PostgreSQL (from ``ss``)."""
    listed = subprocess.run(["ss", "-tnpH"], capture_output=True, text=True, check=True).stdout
    ports = set()
    for line in listed.splitlines():
        columns = line.split()
        if f"pid={pid}," in line and len(columns) >= 5 and columns[4].endswith(":5432"):
            ports.add(int(columns[3].rsplit(":", 1)[1]))
    return ports


async def _admin_sql(sql: str, **params: Any) -> None:
    engine = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(sql), params)
    finally:
        await engine.dispose()


@pytest.mark.skipif(not POSTGRES_ENABLED, reason="SAMHANDLING_TEST_POSTGRES=off: PostgreSQL only")
def test_an_instance_cut_off_from_the_database_never_serves_what_changed_meanwhile(tmp_path: Path) -> None:
    """B (``samhandling serve``) has the feeds warm; then B is cut off: the database takes no new
    connections and every one of its connections except A's is ended (B's listener too). A,
    on the connection it holds, revokes the teacher's feed and withdraws health consent. B cannot
    know: it must not serve the revoked feed nor the withdrawn meeting (410 or 503 — the issue's
    "falling back to the query whenever the notification channel is down"), and a feed it cannot
    check is never a 200 with an empty calendar. Once the database is back, B answers right."""
    with postgres_database() as url:
        instance_b = ServiceProcess(service_env(url, 1, SAMHANDLING_DISPATCHER_ENABLED="false"),
                                    tmp_path / "b.log").start()
        try:
            instance_b.wait_ready()
            asyncio.run(_cut_off(url, instance_b, tmp_path))
        finally:
            instance_b.stop()


async def _cut_off(url: str, b: ServiceProcess, tmp_path: Path) -> None:
    people = await _people(url)
    coordinator = {"Authorization": f"Bearer {people['coordinator'][1]}"}
    name = url.rsplit("/", 1)[1]
    settings = replace(Settings(), database_url=url, dispatcher_enabled=False,
                       mail_folder=tmp_path / "mail", public_base_url="http://testserver")
    async with AsyncTestClient(app=create_app(settings, Clock())) as a:
        case_id, ids, uid = await _partner_case(a, coordinator)
        feeds = {}
        for role in ("school_contact", "public_health_nurse", "parent"):
            made = await a.post(f"/cases/{case_id}/feeds", headers=coordinator,
                                json={"scope": "contact", "contact_id": ids[role]})
            assert made.status_code == 201, made.text
            feeds[role] = made.json()
        for feed in feeds.values():
            for _ in range(WARM_POLLS):
                assert _served(uid)(_b_polls(b, feed["token"]))
        assert (await a.get("/users/me", headers=coordinator)).status_code == 200  # A holds a connection
        mine = _ports_of(os.getpid())
        assert mine, "A holds no connection to keep"
        try:
            await _admin_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await _admin_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name "
                             "AND NOT (client_port = ANY(:mine)) AND pid <> pg_backend_pid()",
                             name=name, mine=list(mine))
            revoked = await a.delete(f"/feeds/{feeds['school_contact']['id']}", headers=coordinator)
            assert revoked.status_code == 200, revoked.text
            await _withdraw(a, coordinator, case_id, ids["parent"], "health")
            teacher = _b_polls(b, feeds["school_contact"]["token"])
            assert teacher.status_code in (410, 503), f"B served a revoked feed: {teacher.status_code}"
            nurse = _b_polls(b, feeds["public_health_nurse"]["token"])
            assert nurse.status_code == 503 or _dropped(uid)(nurse), f"B served a withdrawn meeting: {nurse.text[:80]}"
            parent = _b_polls(b, feeds["parent"]["token"])
            assert parent.status_code == 503 or _served(uid)(parent), "B answered 200 with an empty calendar"
        finally:
            await _admin_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        _until_correct(b, feeds["school_contact"]["token"], _gone, 30)
        _until_correct(b, feeds["public_health_nurse"]["token"], _dropped(uid), 30)


# --- SQLite: a second process on the same file (a command run beside the service) -----------------

def test_on_sqlite_a_change_by_another_process_is_served_at_the_next_poll(tmp_path: Path) -> None:
    """A municipality runs one ``samhandling serve`` on SQLite, and commands beside it (purge,
    reply) write to the same file. Whatever another process commits — here an app in the test
    process on the same file: a revocation, a withdrawal, a contact deactivated, the user leaving —
    the serving process must not serve the old answer at its very next poll (rules 7 and 11; no
    notification channel reaches it, so no wait is allowed)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'samhandling.db'}"
    instance_b = ServiceProcess(service_env(url, 1, SAMHANDLING_DISPATCHER_ENABLED="false"),
                                tmp_path / "b.log").start()
    try:
        instance_b.wait_ready()
        asyncio.run(_sqlite_beside(url, instance_b, tmp_path))
    finally:
        instance_b.stop()


async def _sqlite_beside(url: str, b: ServiceProcess, tmp_path: Path) -> None:
    people = await _people(url)
    coordinator, admin = ({"Authorization": f"Bearer {people[who][1]}"} for who in ("coordinator", "admin"))
    settings = replace(Settings(), database_url=url, dispatcher_enabled=False,
                       mail_folder=tmp_path / "mail", public_base_url="http://testserver")
    async with AsyncTestClient(app=create_app(settings, Clock())) as a:
        case_id, ids, uid = await _partner_case(a, coordinator)
        feeds = {}
        for role in ("school_contact", "public_health_nurse", "nav_adviser", "parent"):
            made = await a.post(f"/cases/{case_id}/feeds", headers=coordinator,
                                json={"scope": "contact", "contact_id": ids[role]})
            assert made.status_code == 201, made.text
            feeds[role] = made.json()
        own = await a.post("/users/me/feeds", headers=coordinator, json={})
        assert own.status_code == 201, own.text
        feeds["own"] = own.json()
        for feed in feeds.values():
            for _ in range(WARM_POLLS):
                assert _served(uid)(_b_polls(b, feed["token"]))
        revoked = await a.delete(f"/feeds/{feeds['parent']['id']}", headers=coordinator)
        assert revoked.status_code == 200, revoked.text
        assert _gone(_b_polls(b, feeds["parent"]["token"])), "B served a revoked feed"
        await _withdraw(a, coordinator, case_id, ids["parent"], "school")
        assert _dropped(uid)(_b_polls(b, feeds["school_contact"]["token"])), "B served a withdrawn consent"
        off = await a.patch(f"/cases/{case_id}/contacts/{ids['nav_adviser']}", headers=coordinator,
                            json={"active": False})
        assert off.status_code == 200, off.text
        assert _gone(_b_polls(b, feeds["nav_adviser"]["token"])), "B served a deactivated contact's feed"
        left = await a.delete(f"/users/{people['coordinator'][0]}", headers=admin)
        assert left.status_code == 200, left.text
        for role in ("own", "public_health_nurse"):
            assert _gone(_b_polls(b, feeds[role]["token"])), f"B served the {role} feed of a user who left"
