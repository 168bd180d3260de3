"""Feeds at the edges of rule 11, on SQLite and PostgreSQL: every feed belongs to a user and is
gone (410) once that user leaves or may no longer see what it shows — also when its body is
warm in the cache (issue 12, hole 2)."""

from __future__ import annotations

from typing import Any

import httpx
import icalendar
from mail_fixtures import Client, meeting, new_feed

TEXT_GONE = "trukket tilbake"


async def my_feed(client: Client, person: Any) -> dict[str, Any]:
    answer = await client.post("/users/me/feeds", json={}, headers=person.headers)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def poll(client: Client, feed: dict[str, Any], **headers: str) -> httpx.Response:
    return await client.get(f"/feeds/{feed['token']}.ics", headers=headers)


def uids(answer: httpx.Response) -> set[str]:
    assert answer.status_code == 200, answer.text
    calendar = icalendar.Calendar.from_ical(answer.content)
    return {str(event["UID"]) for event in calendar.walk("VEVENT")}


def assert_gone(answer: httpx.Response) -> None:
    """410 with the plain notice: no calendar, no name, no attendee."""
    assert answer.status_code == 410, answer.text
    assert TEXT_GONE in answer.text
    assert b"BEGIN:VCALENDAR" not in answer.content and b"Sara" not in answer.content


async def reassign(client: Client, people: Any, case_id: int, *coordinators: Any) -> None:
    answer = await client.put(f"/cases/{case_id}/coordinators", json=[c.id for c in coordinators],
                              headers=people.leader.headers)
    assert answer.status_code == 200, answer.text


async def deactivate(client: Client, people: Any, person: Any) -> None:
    answer = await client.delete(f"/users/{person.id}", headers=people.admin.headers)
    assert answer.status_code == 200, answer.text


async def show_child_name(client: Client, people: Any) -> None:
    """The unit's setting that puts the child's given name in its coordinators' case feeds."""
    answer = await client.patch("/units/me", json={"show_child_name_in_feeds": True},
                                headers=people.admin.headers)
    assert answer.status_code == 200, answer.text


async def test_a_case_feed_is_gone_once_its_creator_no_longer_coordinates_the_case(
    client: Client, people: Any, team: Any
) -> None:
    """The review's scenario: created, the case reassigned, then the creator deactivated."""
    await show_child_name(client, people)
    held = await meeting(client, people, team, [team.mother, team.teacher])
    case_feed = await new_feed(client, people.coordinator, team.case_id)
    mothers = await new_feed(client, people.coordinator, team.case_id, "contact", team.mother)
    own = await my_feed(client, people.coordinator)
    warm = await poll(client, case_feed)
    assert uids(warm) == {held["uid"]} and b"Sara" in warm.content  # the staff view, cached
    assert uids(await poll(client, mothers)) == {held["uid"]}

    await reassign(client, people, team.case_id, people.other_coordinator)
    assert_gone(await poll(client, case_feed))
    assert_gone(await poll(client, case_feed, **{"If-None-Match": warm.headers["etag"]}))  # not 304
    assert_gone(await poll(client, mothers))
    # Their own feed is theirs while they are employed; it just no longer shows the case.
    assert uids(await poll(client, own)) == set()

    await deactivate(client, people, people.coordinator)
    for feed in (case_feed, mothers, own):
        assert_gone(await poll(client, feed))


async def test_a_warm_case_feed_is_gone_once_its_creator_leaves(
    client: Client, people: Any, team: Any
) -> None:
    """Deactivating a user writes nothing a feed shows, so the cached body would still be
    fresh by its data version: access is checked before the cache on every poll."""
    held = await meeting(client, people, team, [team.mother])
    case_feed = await new_feed(client, people.coordinator, team.case_id)
    mothers = await new_feed(client, people.coordinator, team.case_id, "contact", team.mother)
    for feed in (case_feed, mothers):
        assert uids(await poll(client, feed)) == {held["uid"]}
        assert uids(await poll(client, feed)) == {held["uid"]}  # warm
    await deactivate(client, people, people.coordinator)
    for feed in (case_feed, mothers):
        assert_gone(await poll(client, feed))
        assert_gone(await poll(client, feed))
    # The case's other staff are not affected: a feed created by the leader goes on.
    leaders = await new_feed(client, people.leader, team.case_id)
    assert uids(await poll(client, leaders)) == {held["uid"]}


async def test_a_leaders_case_feed_follows_the_leader_not_the_assignment(
    client: Client, people: Any, team: Any
) -> None:
    held = await meeting(client, people, team, [team.mother])
    case_feed = await new_feed(client, people.leader, team.case_id)
    teachers = await new_feed(client, people.leader, team.case_id, "contact", team.teacher)
    assert uids(await poll(client, case_feed)) == {held["uid"]}
    await reassign(client, people, team.case_id, people.other_coordinator)
    assert uids(await poll(client, case_feed)) == {held["uid"]}
    assert (await poll(client, teachers)).status_code == 200
    await deactivate(client, people, people.leader)
    assert_gone(await poll(client, case_feed))
    assert_gone(await poll(client, teachers))


async def test_a_case_feed_follows_its_owners_assignment_alone(
    client: Client, people: Any, team: Any
) -> None:
    """Co-coordinators keep their feeds while they stay on the case; a feed's access follows
    its owner alone, never whoever else is assigned."""
    held = await meeting(client, people, team, [team.mother])
    await reassign(client, people, team.case_id, people.coordinator, people.other_coordinator)
    mine = await new_feed(client, people.coordinator, team.case_id)
    theirs = await new_feed(client, people.other_coordinator, team.case_id)
    await reassign(client, people, team.case_id, people.other_coordinator)
    assert_gone(await poll(client, mine))
    assert uids(await poll(client, theirs)) == {held["uid"]}
    await reassign(client, people, team.case_id, people.coordinator)
    assert_gone(await poll(client, theirs))
    assert uids(await poll(client, mine)) == {held["uid"]}


async def test_a_deactivated_contacts_feed_is_gone_while_they_are_inactive(
    client: Client, people: Any, team: Any
) -> None:
    """DESIGN.md: a contact feed shows "only their own meetings"; an inactive contact is no
    longer one of the people around the child (no feed can be made for them), so theirs is
    gone like one whose owner left (rule 11) — even warm in the cache — while the others'
    feeds go on. Reactivating the contact makes it answer again."""
    held = await meeting(client, people, team, [team.mother, team.father])
    mothers = await new_feed(client, people.coordinator, team.case_id, "contact", team.mother)
    fathers = await new_feed(client, people.coordinator, team.case_id, "contact", team.father)
    assert uids(await poll(client, mothers)) == {held["uid"]}
    path = f"/cases/{team.case_id}/contacts/{team.mother}"
    off = await client.patch(path, json={"active": False}, headers=people.coordinator.headers)
    assert off.status_code == 200, off.text
    gone = await poll(client, mothers)
    assert_gone(gone)
    assert b"BV-2027-17" not in gone.content and b"S.H." not in gone.content
    assert uids(await poll(client, fathers)) == {held["uid"]}
    on = await client.patch(path, json={"active": True}, headers=people.coordinator.headers)
    assert on.status_code == 200, on.text
    assert uids(await poll(client, mothers)) == {held["uid"]}
