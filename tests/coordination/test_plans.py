"""Plans and meetings through the API: the schedule a plan implies, moves, confirmations,
cancellations, revisions and the slot search, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlmodel import select

from coordination.models import OutboxMessage

Client = AsyncTestClient[Litestar]
OSLO = ZoneInfo("Europe/Oslo")


async def _caseworker(client: Client, people: Any, team: Any) -> int:
    added = await client.post(f"/cases/{team.case_id}/contacts", headers=people.coordinator.headers, json={
        "name": "Kari Koordinator", "role": "caseworker", "email": "kari@bv.example.org",
        "availability": [{"weekday": d, "start": "08:00", "end": "16:00"} for d in range(5)]})
    assert added.status_code == 201, added.text
    return int(added.json()["id"])


def plan_body(team: Any, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "start_date": "2027-01-11",
        "expected_end": "2027-12-17",
        "goals": "Oppmøte minst 90 % de neste 12 ukene",
        "measures": [
            {"what": "Miljøterapeut hjemme", "how_often": "2x/uke, 60 min",
             "weekly": [{"weekday": 1, "start": "17:00", "end": "18:00"},
                        {"weekday": 3, "start": "17:00", "end": "18:00"}],
             "contact_ids": [team.mother, team.father, team.child]},
        ],
        "child_wishes": {"not_after": "19:00"},
    }
    body.update(overrides)
    return body


async def test_plan_implies_a_first_year_schedule(client: Client, people: Any, team: Any) -> None:
    await _caseworker(client, people, team)
    response = await client.put(f"/cases/{team.case_id}/plan", json=plan_body(team),
                                headers=people.coordinator.headers)
    assert response.status_code == 200, response.text
    plan = response.json()
    meetings = plan["meetings"]
    kinds = [m["kind"] for m in meetings]
    assert kinds.count("startup") == 1 and kinds.count("mini_evaluation") == 1
    assert kinds.count("main_evaluation") >= 3 and kinds.count("final_evaluation") == 1
    assert kinds.count("weekly_status") >= 3
    assert kinds.count("child_talk") >= 4
    norway = holidays.country_holidays("NO", years=[2027])
    startup = next(m for m in meetings if m["kind"] == "startup")
    startup_day = datetime.fromisoformat(startup["start"]).astimezone(OSLO).date()
    assert date(2027, 1, 11) <= startup_day <= date(2027, 1, 25)
    mini = next(m for m in meetings if m["kind"] == "mini_evaluation")
    weeks_after = (datetime.fromisoformat(mini["start"]) - datetime.fromisoformat(startup["start"])).days / 7
    assert 3 <= weeks_after <= 6
    for meeting in meetings:
        start = datetime.fromisoformat(meeting["start"]).astimezone(OSLO)
        end = datetime.fromisoformat(meeting["end"]).astimezone(OSLO)
        assert start.date() not in norway and start.weekday() < 5, meeting
        assert meeting["status"] == "proposed"
        if any(p["role"] == "child" for p in meeting["participants"]):
            assert end.time() <= datetime.strptime("19:00", "%H:%M").time(), meeting
        if meeting["kind"] == "child_talk":
            roles = {p["role"] for p in meeting["participants"]}
            assert "parent" not in roles and "child" in roles
    # Proposed meetings send nothing yet.
    assert plan["unschedulable"] == []


async def test_confirm_move_cancel_queue_messages_with_rising_sequence(
    client: Client, people: Any, team: Any, service: Any
) -> None:
    headers = people.coordinator.headers
    await _caseworker(client, people, team)
    plan = (await client.put(f"/cases/{team.case_id}/plan", json=plan_body(team), headers=headers)).json()
    startup = next(m for m in plan["meetings"] if m["kind"] == "startup")
    url = f"/cases/{team.case_id}/meetings/{startup['id']}"
    confirmed = await client.post(f"{url}/confirm", headers=headers)
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"

    async def outbox() -> list[OutboxMessage]:
        async with service.transaction() as session:
            rows = await session.exec(select(OutboxMessage).where(OutboxMessage.meeting_id == startup["id"]))
            return list(rows.all())

    rows = await outbox()
    invitations = [r for r in rows if r.kind == "invitation"]
    assert {r.recipient_contact_id for r in invitations} == {p["contact_id"] for p in startup["participants"]}
    assert all(r.meeting_sequence == 0 for r in invitations)
    assert any(r.kind == "reminder" for r in rows)
    new_start = datetime.fromisoformat(startup["start"]) + timedelta(days=1)
    moved = await client.put(url, json={"start": new_start.isoformat()}, headers=headers)
    assert moved.status_code == 200, moved.text
    assert moved.json()["sequence"] == 1 and moved.json()["pinned"] is True
    rows = await outbox()
    old_reminders = [r for r in rows if r.kind == "reminder" and r.meeting_sequence == 0]
    assert old_reminders and all(r.status == "suppressed" for r in old_reminders)
    assert all(r.status == "pending" for r in rows if r.kind == "update")
    assert {r.due_at for r in rows if r.kind == "reminder" and r.status == "pending"} == {
        new_start - timedelta(hours=48), new_start - timedelta(hours=3)}
    cancelled = await client.post(f"{url}/cancel", headers=headers)
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["sequence"] == 2
    rows = await outbox()
    assert {r.kind for r in rows if r.status == "pending"} == {"cancellation"}
    # A revision leaves the cancelled meeting as it is and plans a new start-up in its place.
    again = await client.put(f"/cases/{team.case_id}/plan", json=plan_body(team), headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["revision"] == 2
    kept = next(m for m in again.json()["meetings"] if m["id"] == startup["id"])
    assert kept["status"] == "cancelled" and kept["sequence"] == 2
    assert [m["status"] for m in again.json()["meetings"] if m["kind"] == "startup"].count("proposed") == 1


async def test_revision_replans_only_future_unheld_meetings(
    client: Client, people: Any, team: Any, service: Any
) -> None:
    headers = people.coordinator.headers
    await _caseworker(client, people, team)
    first = (await client.put(f"/cases/{team.case_id}/plan", json=plan_body(team), headers=headers)).json()
    startup = next(m for m in first["meetings"] if m["kind"] == "startup")
    service.clock.set(datetime.fromisoformat(startup["end"]) + timedelta(hours=1))
    held = await client.post(f"/cases/{team.case_id}/meetings/{startup['id']}/held", headers=headers)
    assert held.status_code == 200
    revised = await client.put(f"/cases/{team.case_id}/plan",
                               json=plan_body(team, expected_end="2027-06-30"), headers=headers)
    assert revised.status_code == 200, revised.text
    meetings = revised.json()["meetings"]
    kept = next(m for m in meetings if m["id"] == startup["id"])
    assert kept["status"] == "held" and kept["start"] == startup["start"]
    live = [m for m in meetings if m["status"] != "cancelled"]
    assert max(datetime.fromisoformat(m["start"]) for m in live) < datetime(2027, 7, 1, tzinfo=UTC)
    assert any(m["status"] == "cancelled" for m in meetings)  # the dropped later evaluations


async def test_slot_search_explains_an_infeasible_request(client: Client, people: Any, team: Any) -> None:
    headers = people.coordinator.headers
    worker = await _caseworker(client, people, team)
    # The teacher is only available on Saturdays; office hours rule out weekends.
    await client.patch(f"/cases/{team.case_id}/contacts/{team.teacher}", headers=headers,
                       json={"availability": [{"weekday": 5, "start": "10:00", "end": "12:00"}]})
    body = {"window_start": "2027-02-01T07:00:00+00:00", "window_end": "2027-02-05T16:00:00+00:00",
            "duration_minutes": 60, "participant_ids": [worker, team.mother]}
    ok = await client.post(f"/cases/{team.case_id}/slots", json=body, headers=headers)
    assert ok.status_code == 200 and ok.json()["feasible"] is True
    blocked = await client.post(f"/cases/{team.case_id}/slots", headers=headers,
                                json={**body, "participant_ids": [worker, team.teacher, team.mother]})
    result = blocked.json()
    assert blocked.status_code == 200, blocked.text
    # The teacher is optional: a slot is found without her, and she is named as absent.
    assert result["feasible"] is True and result["absent"] == [team.teacher]


async def test_bad_plans_and_meetings_are_refused(client: Client, people: Any, team: Any, case_body: Any) -> None:
    headers = people.coordinator.headers
    await _caseworker(client, people, team)
    bad_plans: list[tuple[dict[str, Any], str]] = [
        ({"expected_end": "2027-01-01"}, "expected_end"),
        ({"member_ids": [999999]}, "member_ids"),
        ({"child_wishes": {"not_after": "25:00"}}, "not_after"),
        ({"measures": [{"what": "X", "weekly": [{"weekday": 9, "start": "17:00", "end": "18:00"}]}]}, "weekday"),
        ({"closures": [{"first": "2027-07-10", "last": "2027-07-01"}]}, "closures[0].last"),
    ]
    for change, field in bad_plans:
        response = await client.put(f"/cases/{team.case_id}/plan", json=plan_body(team, **change), headers=headers)
        assert response.status_code == 400, (change, response.text)
        assert field in (response.json().get("field") or "") + response.json()["detail"], response.json()
    assert (await client.get(f"/cases/{team.case_id}/plan", headers=headers)).status_code == 404
    # An ordered measure may not be planned past one year after the order.
    ordered = await client.post("/cases", headers=headers, json=case_body(
        reference="BV-ORD-1", measure_type="ordered", order_date="2026-06-01"))
    assert ordered.status_code == 201, ordered.text
    oid = ordered.json()["id"]
    await client.post(f"/cases/{oid}/contacts", headers=headers, json={"name": "M", "role": "parent",
                                                                         "daily_care": True})
    too_long = await client.put(f"/cases/{oid}/plan", json=plan_body(team, measures=[]), headers=headers)
    assert too_long.status_code == 400 and too_long.json()["field"] == "expected_end"
    ok = await client.put(f"/cases/{team.case_id}/plan", json=plan_body(team), headers=headers)
    assert ok.status_code == 200
    start = "2027-02-02T09:00:00+01:00"
    bad_meetings: list[tuple[dict[str, Any], str]] = [
        ({"start": start, "end": "2027-02-02T08:00:00+01:00", "participant_ids": [team.mother]}, "end"),
        ({"start": "2028-02-02T09:00:00+01:00", "end": "2028-02-02T10:00:00+01:00",
          "participant_ids": [team.mother]}, "start"),
        ({"start": start, "end": "2027-02-02T10:00:00+01:00", "participant_ids": [999999]}, "participant_ids"),
        ({"start": "2027-02-02T09:00:00", "end": "2027-02-02T10:00:00", "participant_ids": [team.mother]},
         "start"),
        ({"start": start, "end": "2027-02-02T10:00:00+01:00", "participant_ids": [team.mother],
          "place": "Rom 1\r\nBcc: x@y.no"}, "place"),
    ]
    for body, field in bad_meetings:
        response = await client.post(f"/cases/{team.case_id}/meetings", json=body, headers=headers)
        assert response.status_code == 400, (body, response.text)
        assert field in (response.json().get("field") or "") + response.json()["detail"], response.json()
    past = {"window_start": "2026-01-01T07:00:00+00:00", "window_end": "2026-01-05T16:00:00+00:00",
            "duration_minutes": 60, "participant_ids": [team.mother]}
    assert (await client.post(f"/cases/{team.case_id}/slots", json=past, headers=headers)).status_code == 400
    long = {**past, "window_start": "2027-02-01T07:00:00+00:00", "window_end": "2028-06-01T07:00:00+00:00"}
    assert (await client.post(f"/cases/{team.case_id}/slots", json=long, headers=headers)).status_code == 400


async def test_slot_search_keeps_clear_of_the_plans_measures(client: Client, people: Any, team: Any) -> None:
    headers = people.coordinator.headers
    worker = await _caseworker(client, people, team)
    plan = await client.put(f"/cases/{team.case_id}/plan", json=plan_body(
        team, rules={"office_hours": [{"weekday": d, "start": "08:00", "end": "20:00"} for d in range(5)]}),
        headers=headers)
    assert plan.status_code == 200, plan.text
    # Tuesday 2 February 2027, 15:00–19:00: the home milieu therapy (17–18) is in the way.
    body = {"window_start": "2027-02-02T15:00:00+01:00", "window_end": "2027-02-02T19:00:00+01:00",
            "duration_minutes": 180, "participant_ids": [worker, team.mother, team.child]}
    result = (await client.post(f"/cases/{team.case_id}/slots", json=body, headers=headers)).json()
    assert result["feasible"] is False
    rules = {(b["rule"], b.get("participant")) for b in result["explanation"]["blockers"]}
    assert ("busy", str(team.mother)) in rules and ("busy", str(team.child)) in rules
    assert len(result["explanation"]["alternatives"]) == 3
    assert any("opptatt" in line for line in result["explanation_text"])


async def test_plan_goals_as_the_guides_template_has_them(client: Client, people: Any, team: Any) -> None:
    """Each goal with its indicator, today's level, the target and the deadline; the deadline
    lies within the plan, and the goals come back as they were given."""
    headers = people.coordinator.headers
    await _caseworker(client, people, team)
    goal = {"goal": "Skoleoppmøte", "indicator": "Dager på skolen", "level_now": "60 %", "target": "90 %",
            "deadline": "2027-04-01"}
    late = await client.put(f"/cases/{team.case_id}/plan", headers=headers,
                            json=plan_body(team, smart_goals=[goal, {**goal, "deadline": "2028-01-10"}]))
    assert late.status_code == 400 and late.json()["field"] == "smart_goals[1].deadline", late.text
    assert (await client.get(f"/cases/{team.case_id}/plan", headers=headers)).status_code == 404
    saved = await client.put(f"/cases/{team.case_id}/plan", headers=headers,
                             json=plan_body(team, smart_goals=[goal, {"goal": "Trygg leggetid"}]))
    assert saved.status_code == 200, saved.text
    read = (await client.get(f"/cases/{team.case_id}/plan", headers=headers)).json()
    assert read["smart_goals"] == [goal, {"goal": "Trygg leggetid", "indicator": "", "level_now": "",
                                          "target": "", "deadline": None}]
