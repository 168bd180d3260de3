"""The plan (tiltaksplan) and new meetings in the pages, on SQLite and PostgreSQL: the plan made
through the form, the preview of a revision (meetings kept, moved, added and cancelled; who is
told, and what the consent gate will stop), that the preview writes nothing, that the save
queues exactly what the preview promised, a bad field named beside it with nothing written, a
new meeting made with the slot finder's advice, CSRF and access.

Forms are filled in as a browser without JavaScript does: every field the page holds, with
its value, as the page gave it (``form_fields``), then changed where the caseworker types.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlmodel import col, select
from test_pages import grant_school, sign_in, text_of

from coordination.consent.texts import contact_label
from coordination.context import ServiceContext
from coordination.domain import Language
from coordination.models import (
    Alert,
    AuditEntry,
    Contact,
    Meeting,
    MeetingParticipant,
    OutboxMessage,
    Plan,
    PlanRevision,
    Unit,
)
from coordination.web.texts import MESSAGE_KIND

Client = AsyncTestClient[Litestar]
Fields = list[tuple[str, str]]


class _FormReader(HTMLParser):
    """The fields a form with ``action`` sends, as a browser sends them: text, date, time and
    hidden inputs, ticked boxes, the selected option, textareas. Submit buttons are not sent."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action, self.inside, self.fields = action, False, []
        self._select: str | None = None
        self._first_option: tuple[str, str] | None = None
        self._chosen = False
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("action") == self.action and not self.fields
        if not self.inside:
            return
        if tag == "input" and a.get("type") not in ("submit", "checkbox", "radio") and "name" in a:
            self.fields.append((a["name"], a.get("value", "")))
        elif tag == "input" and "checked" in a and "name" in a:
            self.fields.append((a["name"], a.get("value", "on")))
        elif tag == "select":
            self._select, self._first_option, self._chosen = a["name"], None, False
        elif tag == "option" and self._select is not None:
            if self._first_option is None:
                self._first_option = (self._select, a.get("value", ""))
            if "selected" in a:
                self.fields.append((self._select, a.get("value", "")))
                self._chosen = True
        elif tag == "textarea":
            self._textarea = a["name"]
            self.fields.append((a["name"], ""))

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self.fields[-1] = (self._textarea, self.fields[-1][1] + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self._select is not None:
            if not self._chosen and self._first_option is not None:
                self.fields.append(self._first_option)
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "form":
            self.inside = False


def form_fields(page: str, action: str) -> Fields:
    reader = _FormReader(action)
    reader.feed(page)
    assert reader.fields, f"no form posting to {action}"
    return reader.fields


def change(fields: Fields, **values: str | list[str]) -> Fields:
    """The fields with some typed over (names with "-" given with "__"); a list sets every value
    of a name (ticked boxes)."""
    names = {k.replace("__", "-"): v for k, v in values.items()}
    kept = [(k, v) for k, v in fields if k not in names]
    for name, value in names.items():
        kept += [(name, v) for v in value] if isinstance(value, list) else [(name, value)]
    return kept


async def post(client: Client, action: str, fields: Fields, handling: str) -> Any:
    return await client.post(action, content=_encode([*fields, ("handling", handling)]),
                             headers={"Content-Type": "application/x-www-form-urlencoded"}, follow_redirects=False)


def _encode(fields: Fields) -> bytes:
    return urlencode(fields).encode()


async def _caseworker(client: Client, people: Any, team: Any) -> int:
    added = await client.post(f"/cases/{team.case_id}/contacts", headers=people.coordinator.headers, json={
        "name": "Kari Koordinator", "role": "caseworker", "email": "kari@bv.example.org"})
    assert added.status_code == 201, added.text
    return int(added.json()["id"])


async def written(service: ServiceContext) -> dict[str, Any]:
    """Everything a plan's save could write: if this is unchanged, nothing was."""
    async with service.sessions() as session:
        async def rows(query: Any) -> list[Any]:
            return [tuple(r) for r in (await session.exec(query)).all()]
        return {
            "audit": await rows(select(AuditEntry.id, AuditEntry.action)),
            "outbox": await rows(select(OutboxMessage.id, OutboxMessage.status)),
            "meetings": await rows(select(Meeting.id, Meeting.start, Meeting.end, Meeting.status,
                                          Meeting.ical_sequence, Meeting.series_key).order_by(col(Meeting.id))),
            "participants": await rows(select(MeetingParticipant.meeting_id, MeetingParticipant.contact_id)),
            "plans": await rows(select(Plan.id, Plan.revision, Plan.expected_end)),
            "revisions": await rows(select(PlanRevision.id, PlanRevision.revision)),
            "alerts": await rows(select(Alert.id, Alert.key)),
            "versions": await rows(select(Unit.id, Unit.data_version)),
        }


def promised_messages(page: str) -> list[tuple[str, str, int]]:
    """(kind, recipient, meeting id) of every message the preview's table lists."""
    table = re.search(r'<table id="meldinger".*?<tbody>(.*?)</tbody>', page, re.S)
    assert table, "the preview lists the messages"
    lines = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table.group(1), re.S):
        kind = text_of(re.search(r"<td>(.*?)</td>", row, re.S).group(0))  # type: ignore[union-attr]
        recipient = text_of(re.search(r"<th[^>]*>(.*?)</th>", row, re.S).group(0))  # type: ignore[union-attr]
        meeting = re.search(r'href="/saker/\d+/moter/(\d+)"', row)
        lines.append((kind, recipient, int(meeting.group(1)) if meeting else 0))
    return sorted(lines)


NEW_PLAN = {
    "start_date": "2027-01-11", "expected_end": "2027-06-30", "goals": "Sara skal trives på skolen.",
    "smart_goals__0__goal": "Skoleoppmøte", "smart_goals__0__indicator": "Dager på skolen",
    "smart_goals__0__level_now": "60 %", "smart_goals__0__target": "90 %", "smart_goals__0__deadline": "2027-04-01",
    "measures__0__what": "Miljøterapeut hjemme", "measures__0__how_often": "2x/uke, 60 min",
    "measures__0__weekly__0__weekday": "1", "measures__0__weekly__0__start": "17:00",
    "measures__0__weekly__0__end": "18:00", "measures__0__weekly__1__weekday": "3",
    "measures__0__weekly__1__start": "17:00", "measures__0__weekly__1__end": "18:00",
    "child_wishes__not_after": "19:00", "default_place": "Familiesenteret, Storgata 1",
    "rules__reminder_offsets_hours": "24",
}


async def test_a_plan_made_through_the_page_is_the_apis_plan(client: Client, people: Any, team: Any,
                                                              service: ServiceContext) -> None:
    await sign_in(client, people.coordinator.token)
    page = f"/saker/{team.case_id}/plan"
    shown = await client.get(page)
    assert shown.status_code == 200 and "Lag tiltaksplan" in text_of(shown.text)
    assert 'aria-current="page">Tiltaksplan' in shown.text
    fields = change(form_fields(shown.text, page), **NEW_PLAN,
                    measures__0__contact_ids=[str(team.mother), str(team.child)])

    # Without JavaScript a row is added by a button that shows the form again, as typed, with one more.
    more = await post(client, page, fields, "legg-til:measures-0-weekly")
    assert more.status_code == 200 and 'name="measures-0-weekly-2-start"' in more.text
    assert 'value="Miljøterapeut hjemme"' in more.text and "Skoleoppmøte" in more.text
    more_goals = await post(client, page, fields, "legg-til:smart_goals")
    assert 'name="smart_goals-3-goal"' in more_goals.text

    before = await written(service)
    preview = await post(client, page, form_fields(more.text, page), "forhandsvis")
    assert preview.status_code == 200, text_of(preview.text)
    summary = text_of(preview.text, "oppsummering")
    assert "Planen blir versjon 1" in summary and "0 flyttes" in summary and "0 avlyses" in summary
    added = text_of(preview.text, "legges-til")
    assert "Oppstartsmøte mandag 11. januar 2027" in added and "Sluttevaluering" in added
    assert "Ingen får beskjed nå" in text_of(preview.text)
    assert await written(service) == before, "the preview writes nothing"

    saved = await post(client, page, form_fields(preview.text, page), "lagre")
    assert saved.status_code == 303 and saved.headers["location"] == f"/saker/{team.case_id}/moter?melding=plan-lagret"
    assert "Tiltaksplanen er lagret" in (await client.get(saved.headers["location"])).text
    plan = (await client.get(f"/cases/{team.case_id}/plan", headers=people.coordinator.headers)).json()
    assert plan["revision"] == 1 and plan["goals"] == "Sara skal trives på skolen."
    assert plan["smart_goals"] == [{"goal": "Skoleoppmøte", "indicator": "Dager på skolen", "level_now": "60 %",
                                    "target": "90 %", "deadline": "2027-04-01"}]
    assert plan["measures"] == [{"what": "Miljøterapeut hjemme", "how_often": "2x/uke, 60 min", "weekly": [
        {"weekday": 1, "start": "17:00", "end": "18:00"}, {"weekday": 3, "start": "17:00", "end": "18:00"}],
        "contact_ids": sorted([team.mother, team.child])}], "in the order the form lists them"
    assert plan["child_wishes"] == {"not_before": None, "not_after": "19:00", "after_school": None}
    assert plan["default_place"] == "Familiesenteret, Storgata 1"
    assert plan["rules"] == {"reminder_offsets_hours": [24]}, "office hours left as the default stay unset"
    assert sorted(plan["member_ids"]) == sorted([team.child, team.mother, team.father, team.teacher, team.nurse,
                                                 team.nav])
    assert [m["kind"] for m in plan["meetings"]][:1] == ["startup"]

    # The form shows the plan as saved, ready for a revision.
    again = await client.get(page)
    assert "Revider tiltaksplanen (nå versjon 1)" in text_of(again.text)
    assert 'value="Dager på skolen"' in again.text and 'value="2027-04-01"' in again.text


async def _planned_and_confirmed(client: Client, people: Any, team: Any) -> dict[str, Any]:
    """A year's plan by the API, the school's consent granted, the start-up meeting and the
    second main evaluation (July) confirmed: their invitations and reminders are queued."""
    headers = people.coordinator.headers
    await _caseworker(client, people, team)
    await grant_school(client, people, team)
    plan = await client.put(f"/cases/{team.case_id}/plan", headers=headers, json={
        "start_date": "2027-01-11", "expected_end": "2027-12-17", "child_takes_part": False,
        "rules": {"main_evaluation_months": 3, "durations": {"startup": 90}}})
    assert plan.status_code == 200, plan.text
    meetings = plan.json()["meetings"]
    startup = meetings[0]
    july = [m for m in meetings if m["kind"] == "main_evaluation"][1]
    for meeting in (startup, july):
        confirmed = await client.post(f"/cases/{team.case_id}/meetings/{meeting['id']}/confirm", headers=headers)
        assert confirmed.status_code == 200
    return {"meetings": meetings, "startup": startup, "july": july}


async def test_the_preview_of_a_revision_is_what_the_save_does(client: Client, people: Any, team: Any,
                                                                service: ServiceContext) -> None:
    setup = await _planned_and_confirmed(client, people, team)
    await sign_in(client, people.coordinator.token)
    page = f"/saker/{team.case_id}/plan"
    # The plan ends in June instead of December, and now the child takes part (child talks).
    fields = change(form_fields((await client.get(page)).text, page), expected_end="2027-06-30",
                    child_takes_part="ja")
    before = await written(service)
    preview = await post(client, page, fields, "forhandsvis")
    assert preview.status_code == 200, text_of(preview.text)
    assert await written(service) == before, "no plan, meeting, outbox row, audit entry or version bump stays"

    moved = text_of(preview.text, "flyttes")
    assert "Sluttevaluering fredag 3. desember 2027" in moved, "the final evaluation moves to the new end"
    cancelled = text_of(preview.text, "avlyses")
    july = setup["july"]
    assert "Evalueringsmøte mandag 12. juli 2027" in cancelled
    assert "Evalueringsmøte mandag 11. oktober 2027" in cancelled
    assert "Samtale med barnet" in text_of(preview.text, "legges-til")
    kept = text_of(preview.text, "beholdes")
    assert "Oppstartsmøte mandag 11. januar 2027" in kept and "Låst" in kept

    # Who is told: a cancellation to everyone invited to the confirmed July meeting, with the gate's verdict.
    messages = text_of(preview.text, "meldinger")
    assert "Avlysning Mona Hansen (mor)" in messages and "Avlysning Siri Lærer (skolekontakt)" in messages
    row_of = {text_of(re.search(r"<th[^>]*>.*?</th>", row, re.S).group(0)).split(" (")[0]: text_of(row)  # type: ignore[union-attr]
              for row in re.findall(r"<tr[^>]*>.*?</tr>", preview.text.split('id="meldinger"', 1)[1], re.S)
              if "Avlysning" in row}
    assert "Stoppes ved utsending: samtykket gjelder ikke" in row_of["Hanne Helse"], "no consent for health"
    assert "ingen e-postadresse" in row_of["Per Hansen"]
    assert "Sendes" in row_of["Siri Lærer"], "the school's consent covers it"
    assert "ventende utsendinger om gamle tider sendes ikke" in text_of(preview.text, "oppsummering")
    promised = promised_messages(preview.text)
    assert promised and all(meeting == july["id"] for _, _, meeting in promised)

    saved = await post(client, page, form_fields(preview.text, page), "lagre")
    assert saved.status_code == 303, text_of(saved.text)
    after = await written(service)
    async with service.sessions() as session:
        new_ids = {i for i, _ in after["outbox"]} - {i for i, _ in before["outbox"]}
        rows = (await session.exec(select(OutboxMessage).where(col(OutboxMessage.id).in_(new_ids)))).all()
        contacts = {c.id: contact_label(c.name, c.role, c.role_label, Language.NB)
                    for c in await _contacts(session, team.case_id)}
    sent = sorted((MESSAGE_KIND[r.kind], contacts[r.recipient_contact_id], r.meeting_id or 0) for r in rows)
    assert sent == promised, "the save queued exactly the messages the preview promised"
    assert [rev for _, rev, _ in after["plans"]] == [2]
    rules = (await client.get(f"/cases/{team.case_id}/plan", headers=people.coordinator.headers)).json()["rules"]
    assert rules == {"main_evaluation_months": 3, "durations": {"startup": 90}}, "rules the form does not show stay"


async def _contacts(session: Any, case_id: int) -> list[Contact]:
    return list((await session.exec(select(Contact).where(Contact.case_id == case_id))).all())


async def test_a_save_that_would_do_other_than_the_preview_saves_nothing(client: Client, people: Any, team: Any,
                                                                          service: ServiceContext) -> None:
    setup = await _planned_and_confirmed(client, people, team)
    await sign_in(client, people.coordinator.token)
    page = f"/saker/{team.case_id}/plan"
    fields = change(form_fields((await client.get(page)).text, page), expected_end="2027-06-30")
    preview = await post(client, page, fields, "forhandsvis")
    # Meanwhile someone confirms the October evaluation: the save would now cancel it too, and tell its invitees.
    october = [m for m in setup["meetings"] if m["kind"] == "main_evaluation"][2]
    confirmed = await client.post(f"/cases/{team.case_id}/meetings/{october['id']}/confirm",
                                  headers=people.coordinator.headers)
    assert confirmed.status_code == 200
    before = await written(service)
    stale = await post(client, page, form_fields(preview.text, page), "lagre")
    assert stale.status_code == 200 and "Noe er endret siden forhåndsvisningen" in text_of(stale.text)
    assert await written(service) == before, "nothing is saved"
    assert {m for _, _, m in promised_messages(stale.text)} == {setup["july"]["id"], october["id"]}
    saved = await post(client, page, form_fields(stale.text, page), "lagre")
    assert saved.status_code == 303


async def test_a_bad_field_is_named_beside_it_and_nothing_is_written(client: Client, people: Any, team: Any,
                                                                     service: ServiceContext) -> None:
    await sign_in(client, people.coordinator.token)
    page = f"/saker/{team.case_id}/plan"
    blank = form_fields((await client.get(page)).text, page)
    good = change(blank, **NEW_PLAN)
    cases: list[tuple[Fields, str, str]] = [
        (change(good, expected_end=""), "expected_end", "Skriv når planen forventes å slutte."),
        (change(good, smart_goals__0__deadline="2027-09-01"), "smart_goals-0-deadline",
         "Fristen må ligge innenfor planen: 11. januar 2027 – 30. juni 2027."),
        # The first time row left empty: the API's weekly[0] is the form's row 1, and the error is marked there.
        (change(good, measures__0__weekly__0__start="", measures__0__weekly__0__end="",
                measures__0__weekly__1__start="18:00", measures__0__weekly__1__end="17:00"),
         "measures-0-weekly-1-end", "Til-tiden må være etter fra-tiden."),
        (change(good, smart_goals__1__indicator="Kvelder med fast leggetid"), "smart_goals-1-goal",
         "Skriv hva målet er, eller tøm hele raden."),
        (change(good, member_ids=["999999"]), "member_ids", "Velg bare aktive kontakter i saken."),
        (change(good, rules__reminder_offsets_hours="48, 400"), "rules-reminder_offsets_hours",
         "Skriv antall timer før møtet, fra 1 til 336"),
        (change(good, start_date="2011-01-01"), "start_date", "Planen kan ikke starte før barnet ble født."),
    ]
    before = await written(service)
    for fields, field_id, words in cases:
        for handling in ("forhandsvis", "lagre"):
            refused = await post(client, page, fields, handling)
            assert refused.status_code == 400, (field_id, text_of(refused.text)[:400])
            assert f'<a href="#{field_id}">' in refused.text and words in text_of(refused.text), field_id
            assert f'id="{field_id}-feil"' in refused.text, "the reason stands beside the field"
            assert "autofocus" in refused.text.split('class="error-summary"', 1)[1][:120], "focus on the summary"
            assert "Miljøterapeut hjemme" in refused.text, "what was typed is kept"
    assert await written(service) == before


async def test_a_new_meeting_with_the_slot_finders_advice(client: Client, people: Any, team: Any,
                                                          service: ServiceContext) -> None:
    await sign_in(client, people.coordinator.token)
    page = f"/saker/{team.case_id}/moter/nytt"
    shown = await client.get(page)
    assert shown.status_code == 200 and "Nytt møte utenfor planen" in text_of(shown.text)
    fields = change(form_fields(shown.text, page), agenda="Skolevegring", place="Rådhuset", varighet="60",
                    participant_ids=[str(team.mother), str(team.teacher)], fra="2027-01-16", til="2027-01-22")

    none = await post(client, page, change(fields, participant_ids=[]), "finn")
    assert none.status_code == 400 and '<a href="#participant_ids">' in none.text
    assert "Velg minst én deltaker" in text_of(none.text)
    link = await post(client, page, change(fields, video_link="http://video.example/x"), "opprett")
    assert link.status_code == 400 and '<a href="#dato">' in link.text, "the time comes first"

    found = await post(client, page, fields, "finn")
    assert found.status_code == 200, text_of(found.text)
    advice = text_of(found.text, "slot-suggestion")
    assert "Første tid som passer: mandag 18. januar 2027 kl. 08:00–09:00" in advice, advice

    # A time typed by hand on a Saturday: why it does not suit, the nearest times, and "create all the same".
    saturday = await post(client, page, change(fields, dato="2027-01-16", tid="10:00"), "opprett")
    assert saturday.status_code == 200
    assert "passer ikke" in text_of(saturday.text, "slot-advice") and "Opprett likevel" in saturday.text
    listed = (await client.get(f"/cases/{team.case_id}/meetings", headers=people.coordinator.headers)).json()
    assert listed == [], "nothing is made until the caseworker chooses"

    offered = form_fields(found.text.split('id="slot-suggestion"', 1)[1], page)
    created = await client.post(page, content=_encode(offered),
                                headers={"Content-Type": "application/x-www-form-urlencoded"}, follow_redirects=False)
    assert created.status_code == 303 and created.headers["location"].endswith("?melding=mote-opprettet")
    meeting = (await client.get(f"/cases/{team.case_id}/meetings", headers=people.coordinator.headers)).json()[0]
    assert meeting["kind"] == "ad_hoc" and meeting["agenda"] == "Skolevegring" and meeting["place"] == "Rådhuset"
    assert meeting["status"] == "confirmed" and meeting["start"].startswith("2027-01-18T07:00")
    assert sorted(p["contact_id"] for p in meeting["participants"]) == sorted([team.mother, team.teacher])
    async with service.sessions() as session:
        kinds = (await session.exec(select(OutboxMessage.kind).where(OutboxMessage.meeting_id == meeting["id"]))).all()
    assert sorted(kinds).count("invitation") == 2, "the invitations are queued as the API's would be"
    assert "Møtet er opprettet og bekreftet" in (await client.get(created.headers["location"])).text


async def test_forms_need_the_csrf_token_and_others_see_nothing(client: Client, people: Any, team: Any,
                                                                 service: ServiceContext) -> None:
    await sign_in(client, people.coordinator.token)
    plan_page, meeting_page = f"/saker/{team.case_id}/plan", f"/saker/{team.case_id}/moter/nytt"
    plan_fields = change(form_fields((await client.get(plan_page)).text, plan_page), **NEW_PLAN)
    meeting_fields = change(form_fields((await client.get(meeting_page)).text, meeting_page),
                            participant_ids=[str(team.mother)], dato="2027-01-18", tid="10:00")
    before = await written(service)
    for page, fields, handling in ((plan_page, plan_fields, "lagre"), (meeting_page, meeting_fields, "opprett")):
        without = [(k, v) for k, v in fields if k != "_csrf"]
        assert (await post(client, page, without, handling)).status_code == 403
        assert (await post(client, page, change(fields, _csrf="x" * 43), handling)).status_code == 403
        foreign = await client.post(page, content=_encode([*fields, ("handling", handling)]), headers={
            "Content-Type": "application/x-www-form-urlencoded", "Origin": "https://evil.example"})
        assert foreign.status_code == 403 and "Skjemaet kunne ikke sendes" in foreign.text
    assert await written(service) == before

    for person in (people.other_coordinator, people.stranger, people.admin):
        await sign_in(client, person.token)
        for page in (plan_page, meeting_page):
            shown = await client.get(page)
            assert shown.status_code == 404 and "Sara" not in shown.text and "Mona" not in shown.text
        token = form_fields((await client.get("/")).text, "/logg-ut")
        for page, fields, handling in ((plan_page, plan_fields, "forhandsvis"), (plan_page, plan_fields, "lagre"),
                                       (meeting_page, meeting_fields, "finn"),
                                       (meeting_page, meeting_fields, "opprett")):
            refused = await post(client, page, change(fields, _csrf=dict(token)["_csrf"]), handling)
            assert refused.status_code == 404 and "Mona" not in refused.text, (person, page, handling)
    assert await written(service) == before

    # A leader sees the unit's cases, and may plan them as the API lets them.
    await sign_in(client, people.leader.token)
    assert (await client.get(plan_page)).status_code == 200
