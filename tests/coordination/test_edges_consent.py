"""Consent at the edges (issue 12): what a second reading of DESIGN.md rules 2, 7 and 11 found,
each through the HTTP API on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import mail_fixtures
from litestar import Litestar
from litestar.testing import AsyncTestClient
from mail_fixtures import meeting, to
from smtp_server import SmtpServer
from sqlmodel import select

from coordination.background import scan_once
from coordination.context import ServiceContext
from coordination.levels import Level
from coordination.models import User
from coordination.web.views import cases as case_views
from coordination.web.views import common as view_common
from coordination.web.views import consent as consent_views
from notifications.dispatcher import Dispatcher

Client = AsyncTestClient[Litestar]
dispatcher = mail_fixtures.dispatcher
#: 16 on the tests' clock (2027-01-04): the child has party status.
SIXTEEN = "2010-05-01"


async def consent(client: Client, people: Any, case_id: int, grantor: int, sector: str = "school",
                  status: str = "granted", level: str = "purpose", **extra: Any) -> Any:
    body: dict[str, Any] = {"grantor_contact_id": grantor, "sector": sector, "status": status, "form": "written",
                            **extra}
    if status == "granted":
        body["level"] = level
    return await client.post(f"/cases/{case_id}/consents", headers=people.coordinator.headers, json=body)


async def granted(client: Client, people: Any, case_id: int, grantor: int, sector: str = "school",
                  **extra: Any) -> None:
    response = await consent(client, people, case_id, grantor, sector, **extra)
    assert response.status_code == 201, response.text


async def patch_contact(client: Client, people: Any, case_id: int, contact_id: int, **body: Any) -> Any:
    return await client.patch(f"/cases/{case_id}/contacts/{contact_id}", headers=people.coordinator.headers,
                              json=body)


async def loop_of(client: Client, people: Any, case_id: int, contact_id: int) -> dict[str, Any]:
    loops = await client.get(f"/cases/{case_id}/information-loops", headers=people.coordinator.headers)
    assert loops.status_code == 200, loops.text
    found: dict[str, Any] = next(c for c in loops.json()["contacts"] if c["contact_id"] == contact_id)
    return found


async def sixteen(client: Client, people: Any, team: Any) -> None:
    changed = await client.patch(f"/cases/{team.case_id}", headers=people.coordinator.headers,
                                 json={"child_birth_date": SIXTEEN})
    assert changed.status_code == 200 and changed.json()["party_status"] is True, changed.text


async def background_round(service: ServiceContext, dispatcher: Dispatcher) -> None:
    """One round of what an instance does in the background, then the dispatcher's."""
    await scan_once(service)
    await dispatcher.drain_once()


async def coordinator(service: ServiceContext, people: Any) -> User:
    async with service.transaction() as session:
        user = (await session.exec(select(User).where(User.id == people.coordinator.id))).one()
    return user


# --- hole 1: party status belongs to the child, not to a contact row ------------------------------


async def test_deactivating_the_child_who_refused_does_not_open_the_sector(
    client: Client, people: Any, team: Any, service: ServiceContext
) -> None:
    await sixteen(client, people, team)
    for carer in (team.mother, team.father):
        await granted(client, people, team.case_id, carer)
    refused = await consent(client, people, team.case_id, team.child, status="refused")
    assert refused.status_code == 201, refused.text
    assert (await loop_of(client, people, team.case_id, team.teacher))["now"]["level"] == "none"
    gone = await patch_contact(client, people, team.case_id, team.child, active=False)
    assert gone.status_code == 200, gone.text
    teacher = await loop_of(client, people, team.case_id, team.teacher)
    assert teacher["now"]["level"] == "none"
    assert "Sara Hansen (barnet) har nektet samtykke til deling med skole" in teacher["now"]["reasons"]
    # The child can still consent although their row is inactive (the page offers them too),
    # and then the sector opens.
    async with service.transaction() as session:
        user = await coordinator(service, people)
        page = await consent_views.consent_page(session, user, team.case_id, service.now())
    assert view_common.Choice(str(team.child), "Sara Hansen (barnet) – ikke aktiv") in page.grantors
    await granted(client, people, team.case_id, team.child)
    assert (await loop_of(client, people, team.case_id, team.teacher))["now"]["level"] == "purpose"


async def test_without_a_child_contact_the_child_with_party_status_must_still_consent(
    client: Client, people: Any, case_body: Any, service: ServiceContext
) -> None:
    headers = people.coordinator.headers
    created = await client.post("/cases", headers=headers, json=case_body(child_birth_date=SIXTEEN))
    assert created.status_code == 201, created.text
    case_id = created.json()["id"]

    async def add(**body: Any) -> int:
        added = await client.post(f"/cases/{case_id}/contacts", headers=headers, json=body)
        assert added.status_code == 201, added.text
        return int(added.json()["id"])

    mother = await add(name="Mona Hansen", role="parent", daily_care=True)
    father = await add(name="Per Hansen", role="parent", daily_care=True)
    teacher = await add(name="Siri Lærer", role="school_contact")
    for carer in (mother, father):
        await granted(client, people, case_id, carer)
    loop = (await loop_of(client, people, case_id, teacher))["now"]
    assert loop["level"] == "none" and loop["sector_state"] == "partial"
    assert "barnet har partsstatus og har ikke samtykket til deling med skole" in loop["reasons"]
    child = next(g for g in loop["grantors"] if g["as_child"])
    assert child["contact_id"] is None and child["status"] == "missing" and child["name"] == "barnet"
    english = await client.get(f"/cases/{case_id}/information-loops", params={"lang": "en"}, headers=headers)
    reasons = next(c for c in english.json()["contacts"] if c["contact_id"] == teacher)["now"]["reasons"]
    assert "the child has party status and has not consented to school" in reasons
    # The coordinator's pages say the same in words, and do not fail on a grantor without a row.
    user = await coordinator(service, people)
    async with service.transaction() as session:
        page = await consent_views.consent_page(session, user, case_id, service.now())
        overview = await case_views.overview(session, user, case_id, service.now(), Level.LOGISTICS)
        rows = await case_views.my_cases(session, user, service.now())
    school = next(s for s in page.sectors if s.sector == "school")
    assert "barnet: har ikke samtykket" in school.grantors
    assert "barnet har partsstatus og har ikke samtykket til deling med skole" in school.reasons
    teacher_row = next(r for r in overview.loops if r.contact_id == teacher)
    assert any("barnet har partsstatus" in r for r in teacher_row.reasons)
    assert rows[0].sectors[0] is not None and rows[0].sectors[0].tone == "warn"
    # Once the child is in the list and consents, the sector opens.
    child_id = await add(name="Sara Hansen", role="child")
    assert (await loop_of(client, people, case_id, teacher))["now"]["level"] == "none"
    await granted(client, people, case_id, child_id)
    assert (await loop_of(client, people, case_id, teacher))["now"]["level"] == "purpose"


async def test_deactivating_a_carer_never_widens_what_partners_learn(
    client: Client, people: Any, team: Any
) -> None:
    await granted(client, people, team.case_id, team.mother)
    await granted(client, people, team.case_id, team.father, level="logistics")
    assert (await loop_of(client, people, team.case_id, team.teacher))["now"]["level"] == "logistics"
    withdrawn = await consent(client, people, team.case_id, team.father, status="withdrawn")
    assert withdrawn.status_code == 201
    assert (await loop_of(client, people, team.case_id, team.teacher))["now"]["level"] == "none"
    assert (await patch_contact(client, people, team.case_id, team.father, active=False)).status_code == 200
    teacher = await loop_of(client, people, team.case_id, team.teacher)
    assert teacher["now"]["level"] == "none"
    assert "Per Hansen (far) har trukket tilbake samtykket til deling med skole" in teacher["now"]["reasons"]
    # An inactive carer's acts are still recorded, a refusal as well as a grant.
    refused = await consent(client, people, team.case_id, team.father, "health", status="refused")
    assert refused.status_code == 201, refused.text
    await granted(client, people, team.case_id, team.father, level="logistics")
    assert (await loop_of(client, people, team.case_id, team.teacher))["now"]["level"] == "logistics"
    # Only taking away daily care makes someone no longer a grantor.
    await consent(client, people, team.case_id, team.father, status="withdrawn")
    assert (await patch_contact(client, people, team.case_id, team.father, daily_care=False)).status_code == 200
    assert (await loop_of(client, people, team.case_id, team.teacher))["now"]["level"] == "purpose"
    # A former carer may still take back what they gave, but no longer grant.
    assert (await consent(client, people, team.case_id, team.father, "health", status="withdrawn")).status_code == 201
    grant = await consent(client, people, team.case_id, team.father, "nav")
    assert grant.status_code == 400 and grant.json()["field"] == "grantor_contact_id"


# --- hole 7: a partner cannot be moved into the family or the service (rule 11) -------------------


async def test_a_partner_cannot_be_placed_in_the_family_or_the_service(
    client: Client, people: Any, team: Any
) -> None:
    headers = people.coordinator.headers
    for role in ("school_contact", "gp", "nav_adviser", "family_therapist"):
        for sector in ("family", "child_welfare"):
            added = await client.post(f"/cases/{team.case_id}/contacts", headers=headers,
                                      json={"name": "Siri Lærer", "role": role, "sector": sector})
            assert added.status_code == 400, (role, sector, added.text)
            assert added.json()["field"] == "sector" and "bypass consent" in added.json()["detail"]
    for body in ({"sector": "family"}, {"sector": "child_welfare"}, {"role": "principal", "sector": "family"}):
        moved = await patch_contact(client, people, team.case_id, team.teacher, **body)
        assert moved.status_code == 400, (body, moved.text)
        assert moved.json()["field"] == "sector"
    teacher = await loop_of(client, people, team.case_id, team.teacher)
    assert teacher["sector"] == "school" and teacher["now"]["level"] == "none"
    # Role other may be placed in any sector.
    other = await client.post(f"/cases/{team.case_id}/contacts", headers=headers,
                              json={"name": "Ola Nabo", "role": "other", "sector": "family"})
    assert other.status_code == 201, other.text


async def test_every_sector_change_is_audited_also_when_a_role_change_moves_it(
    client: Client, people: Any, team: Any
) -> None:
    headers = people.coordinator.headers
    other = await client.post(f"/cases/{team.case_id}/contacts", headers=headers,
                              json={"name": "Ola Nabo", "role": "other", "sector": "family"})
    contact_id = other.json()["id"]
    assert (await patch_contact(client, people, team.case_id, contact_id, role="gp")).json()["sector"] == "health"
    assert (await patch_contact(client, people, team.case_id, team.nurse, sector="school")).status_code == 200
    entries = (await client.get(f"/cases/{team.case_id}/audit", headers=headers)).json()
    changes = {e["subject"]: e["detail"]["changed"] for e in entries if e["action"] == "contact.updated"}
    assert changes[f"contact:{contact_id}"] == {"role": ["other", "gp"], "sector": ["family", "health"]}
    assert changes[f"contact:{team.nurse}"] == {"sector": ["health", "school"]}


# --- held-back invitations are sent once (found while checking suspected 1; rule 6) --------------


async def teacher_mails(smtp: SmtpServer) -> list[Any]:
    return [a for a in smtp.arrivals if to(a) == "siri@skole.example.org"]


async def test_a_further_grant_does_not_send_a_held_back_invitation_again(
    client: Client, people: Any, team: Any, smtp: SmtpServer, dispatcher: Dispatcher
) -> None:
    """Each grant queued the held-back invitation again, also when an earlier grant's copy had
    gone out: the teacher was invited twice to the same meeting."""
    await meeting(client, people, team, [team.mother, team.teacher])
    await dispatcher.drain_once()
    for carer in (team.mother, team.father):
        await granted(client, people, team.case_id, carer)
    await dispatcher.drain_once()
    assert len(await teacher_mails(smtp)) == 1
    await granted(client, people, team.case_id, team.mother, level="content")
    await dispatcher.drain_once()
    assert len(await teacher_mails(smtp)) == 1


# --- suspected 1: a grant dated in the future sends the held-back invitations when it comes into force -


async def test_held_back_invitations_go_out_when_a_future_grant_comes_into_force(
    client: Client, people: Any, team: Any, service: ServiceContext, smtp: SmtpServer, dispatcher: Dispatcher
) -> None:
    await meeting(client, people, team, [team.mother, team.teacher], start="2027-01-14T09:00:00+01:00",
                  end="2027-01-14T10:00:00+01:00")
    await dispatcher.drain_once()
    assert await teacher_mails(smtp) == []  # held back: no consent yet
    await granted(client, people, team.case_id, team.mother)
    await granted(client, people, team.case_id, team.father, valid_from="2027-01-06T08:00:00+01:00")
    await background_round(service, dispatcher)
    assert await teacher_mails(smtp) == []  # not yet in force
    service.clock.set(datetime(2027, 1, 6, 7, 1, tzinfo=UTC))
    await background_round(service, dispatcher)
    assert len(await teacher_mails(smtp)) == 1
    # Nothing doubles: later rounds, and a further grant, send it no more.
    await granted(client, people, team.case_id, team.mother, level="content")
    service.clock.advance(timedelta(hours=1))
    await background_round(service, dispatcher)
    assert len(await teacher_mails(smtp)) == 1


async def test_held_back_invitations_go_out_when_a_change_in_the_contact_list_brings_consent_into_force(
    client: Client, people: Any, team: Any, smtp: SmtpServer, dispatcher: Dispatcher
) -> None:
    await meeting(client, people, team, [team.mother, team.teacher])
    await granted(client, people, team.case_id, team.mother)
    await dispatcher.drain_once()
    assert await teacher_mails(smtp) == []  # the father has not consented
    assert (await patch_contact(client, people, team.case_id, team.father, daily_care=False)).status_code == 200
    await dispatcher.drain_once()
    assert len(await teacher_mails(smtp)) == 1


# --- suspected 2: every way consent ends tells the coordinator who holds invitations (rule 7) -----


async def school_meeting_held_by_the_teacher(
    client: Client, people: Any, team: Any, dispatcher: Dispatcher, smtp: SmtpServer, **grant: Any
) -> None:
    """School consent in force, and the teacher holding an invitation to a meeting in March."""
    await granted(client, people, team.case_id, team.mother)
    await granted(client, people, team.case_id, team.father, **grant)
    await meeting(client, people, team, [team.mother, team.teacher], start="2027-03-15T09:00:00+01:00",
                  end="2027-03-15T10:00:00+01:00")
    await dispatcher.drain_once()
    assert len(await teacher_mails(smtp)) == 1


async def lapse_alerts(client: Client, people: Any) -> list[dict[str, Any]]:
    listed = await client.get("/alerts", headers=people.coordinator.headers)
    assert listed.status_code == 200, listed.text
    return [a for a in listed.json() if a["kind"] == "consent_withdrawn"]


async def test_consent_expiring_tells_who_holds_invitations(
    client: Client, people: Any, team: Any, service: ServiceContext, smtp: SmtpServer, dispatcher: Dispatcher
) -> None:
    await school_meeting_held_by_the_teacher(client, people, team, dispatcher, smtp,
                                             valid_until="2027-01-20T00:00:00+01:00")
    await scan_once(service)
    assert await lapse_alerts(client, people) == []
    service.clock.set(datetime(2027, 1, 19, 23, 5, tzinfo=UTC))
    await scan_once(service)
    await scan_once(service)  # one alert per cause
    [alert] = await lapse_alerts(client, people)
    assert alert["text"] == ("Samtykke utløpt (skole): disse har fortsatt invitasjoner og må få beskjed personlig: "
                             "Siri Lærer")
    assert alert["detail"]["cause"] == "expired" and list(alert["detail"]["holders"]) == [str(team.teacher)]


async def test_a_new_carer_without_a_grant_tells_who_holds_invitations(
    client: Client, people: Any, team: Any, smtp: SmtpServer, dispatcher: Dispatcher
) -> None:
    await school_meeting_held_by_the_teacher(client, people, team, dispatcher, smtp)
    added = await client.post(f"/cases/{team.case_id}/contacts", headers=people.coordinator.headers,
                              json={"name": "Stig Ste", "role": "parent", "role_label": "stefar"})
    assert await lapse_alerts(client, people) == []  # no daily care: nothing changes
    assert (await patch_contact(client, people, team.case_id, added.json()["id"], daily_care=True)).status_code == 200
    [alert] = await lapse_alerts(client, people)
    assert alert["detail"]["cause"] == "contact_changed" and "Siri Lærer" in alert["text"]
    assert "en ny med daglig omsorg (skole)" in alert["text"]
    # Once the new carer consents, a further carer added with daily care is a cause of its own.
    await granted(client, people, team.case_id, added.json()["id"])
    another = await client.post(f"/cases/{team.case_id}/contacts", headers=people.coordinator.headers,
                                json={"name": "Eva Ste", "role": "parent", "daily_care": True})
    assert another.status_code == 201
    assert len(await lapse_alerts(client, people)) == 2


async def test_the_child_turning_15_without_consent_tells_who_holds_invitations(
    client: Client, people: Any, team: Any, service: ServiceContext, smtp: SmtpServer, dispatcher: Dispatcher
) -> None:
    await school_meeting_held_by_the_teacher(client, people, team, dispatcher, smtp)
    # Born 2012-03-10: 15 at midnight in Oslo, 2027-03-09 23:00 UTC.
    service.clock.set(datetime(2027, 3, 9, 22, 59, tzinfo=UTC))
    await scan_once(service)
    assert await lapse_alerts(client, people) == []
    service.clock.set(datetime(2027, 3, 9, 23, 10, tzinfo=UTC))
    await scan_once(service)
    await scan_once(service)
    [alert] = await lapse_alerts(client, people)
    assert alert["detail"]["cause"] == "party_status"
    assert alert["text"].startswith("Barnet har fått partsstatus og har ikke samtykket (skole)")


async def test_party_status_set_by_the_coordinator_tells_who_holds_invitations(
    client: Client, people: Any, team: Any, smtp: SmtpServer, dispatcher: Dispatcher
) -> None:
    await school_meeting_held_by_the_teacher(client, people, team, dispatcher, smtp)
    changed = await client.patch(f"/cases/{team.case_id}", headers=people.coordinator.headers,
                                 json={"party_status_override": True})
    assert changed.status_code == 200
    [alert] = await lapse_alerts(client, people)
    assert alert["detail"]["cause"] == "case_changed" and "Siri Lærer" in alert["text"]


async def test_a_grantor_deactivated_ends_no_consent_so_nothing_is_to_be_told(
    client: Client, people: Any, team: Any, service: ServiceContext, smtp: SmtpServer, dispatcher: Dispatcher
) -> None:
    await school_meeting_held_by_the_teacher(client, people, team, dispatcher, smtp)
    for grantor in (team.father, team.child):
        assert (await patch_contact(client, people, team.case_id, grantor, active=False)).status_code == 200
    await scan_once(service)
    assert await lapse_alerts(client, people) == []
    assert (await loop_of(client, people, team.case_id, team.teacher))["now"]["level"] == "purpose"


async def test_a_child_born_on_29_february_turning_15_is_noticed_on_28_february(
    client: Client, people: Any, team: Any, service: ServiceContext, smtp: SmtpServer, dispatcher: Dispatcher
) -> None:
    """fristloven § 3: in 2027 (no 29 February) the 15th birthday is 28 February, at midnight in Oslo."""
    await school_meeting_held_by_the_teacher(client, people, team, dispatcher, smtp)
    changed = await client.patch(f"/cases/{team.case_id}", headers=people.coordinator.headers,
                                 json={"child_birth_date": "2012-02-29"})
    assert changed.status_code == 200, changed.text
    service.clock.set(datetime(2027, 2, 27, 22, 59, tzinfo=UTC))
    await scan_once(service)
    assert await lapse_alerts(client, people) == []
    service.clock.set(datetime(2027, 2, 27, 23, 10, tzinfo=UTC))
    await scan_once(service)
    [alert] = await lapse_alerts(client, people)
    assert alert["detail"]["cause"] == "party_status"
