"""The caseworker's pages over HTTP, without a browser, on SQLite and PostgreSQL: sign-in and
its cookie (the session's lifetime is in test_sessions.py), CSRF, the API's access rules, and
every form doing what the API would do.

The pages are plain HTML forms, so these requests are exactly what a browser without
JavaScript sends. The real browser, axe-core and the keyboard are in test_browser.py.
"""

from __future__ import annotations

import html
import re
from dataclasses import replace
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlmodel import select

from coordination.access import users
from coordination.app import create_app
from coordination.clock import Clock
from coordination.context import ServiceContext
from coordination.domain import UserRole
from coordination.models import Case, User
from coordination.outbox import alerts
from coordination.schemas import UserIn
from coordination.settings import Settings

Client = AsyncTestClient[Litestar]
CSRF = re.compile(r'name="_csrf" value="([^"]+)"')


def text_of(page: str, element_id: str | None = None) -> str:
    """What a reader sees: the element's text (or the page's main), tags dropped, spaces joined."""
    if element_id is not None:
        match = re.search(rf'<(\w+)[^>]*\bid="{re.escape(element_id)}"[^>]*>(.*?)</\1>', page, re.S)
        assert match, f"no element #{element_id}"
        page = match.group(2)
    elif "<main" in page:
        page = page[page.index("<main"):page.index("</main>")]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


async def sign_in(client: Client, token: str) -> None:
    client.cookies.clear()
    form = await client.get("/logg-inn")
    answer = await client.post("/logg-inn", data={"_csrf": _csrf(form.text), "token": token, "neste": "/"},
                               follow_redirects=False)
    assert answer.status_code == 303, answer.text


def _csrf(page: str) -> str:
    match = CSRF.search(page)
    assert match, "the page has a form with a CSRF token"
    return match.group(1)


async def submit(client: Client, page: str, action: str, data: dict[str, str]) -> Any:
    """Fill in a form on ``page`` and send it, as the browser would (redirects not followed)."""
    shown = await client.get(page)
    assert shown.status_code == 200, shown.text
    return await client.post(action, data={"_csrf": _csrf(shown.text), **data}, follow_redirects=False)


async def grant_school(client: Client, people: Any, team: Any) -> None:
    for grantor in (team.mother, team.father):
        granted = await client.post(f"/cases/{team.case_id}/consents", headers=people.coordinator.headers, json={
            "grantor_contact_id": grantor, "sector": "school", "status": "granted", "form": "written",
            "level": "purpose"})
        assert granted.status_code == 201, granted.text


async def meeting(client: Client, people: Any, team: Any, start: str, end: str, *, confirm: bool) -> int:
    created = await client.post(f"/cases/{team.case_id}/meetings", headers=people.coordinator.headers, json={
        "start": start, "end": end, "participant_ids": [team.mother, team.teacher], "place": "Rådhuset",
        "confirm": confirm})
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


async def test_sign_in_sets_a_safe_session_cookie_and_sign_out_clears_it(
    client: Client, people: Any, service: ServiceContext
) -> None:
    first = await client.get("/", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/logg-inn"
    deep = await client.get("/saker/1/samtykke", follow_redirects=False)
    assert deep.headers["location"] == "/logg-inn?neste=/saker/1/samtykke"

    form = await client.get("/logg-inn")
    assert "Tilgangsnøkkel" in form.text and 'lang="nb"' in form.text
    wrong = await client.post("/logg-inn", data={"_csrf": _csrf(form.text), "token": "not-a-token"})
    assert wrong.status_code == 400 and "Fant ingen aktiv bruker" in wrong.text
    assert 'aria-invalid="true"' in wrong.text

    answer = await client.post("/logg-inn", data={"_csrf": _csrf(form.text), "token": people.coordinator.token,
                                                  "neste": "https://evil.example/"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/", "never off to another site"
    session = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("samhandling_okt="))
    attributes = session.lower()
    assert "httponly" in attributes and "samesite=lax" in attributes and "path=/" in attributes
    assert "secure" not in attributes, "plain-http localhost must work"

    home = await client.get("/")
    assert home.status_code == 200 and "Mine saker" in text_of(home.text) and "Kari" in home.text
    assert "frame-ancestors 'none'" in home.headers["content-security-policy"]
    assert "no-store" in home.headers["cache-control"]

    out = await submit(client, "/", "/logg-ut", {})
    assert out.status_code == 303 and out.headers["location"].startswith("/logg-inn")
    assert (await client.get("/", follow_redirects=False)).status_code == 303

    # An inactive user is signed out at the next click, however the flag was set (test_sessions.py
    # has the expiry, the revocation and what the cookie holds).
    await sign_in(client, people.coordinator.token)
    async with service.transaction() as session_:
        user = await session_.get(User, people.coordinator.id)
        assert user is not None
        user.active = False
        session_.add(user)
    assert (await client.get("/", follow_redirects=False)).headers["location"] == "/logg-inn?melding=utlopt"


async def test_behind_https_the_cookies_are_secure_and_host_only(settings: Settings, clock: Clock,
                                                                 service: ServiceContext) -> None:
    async with service.transaction() as session:
        unit = await users.get_or_create_unit(session, "Enhet S", service.now())
        assert unit.id is not None
        created = await users.create_user(session, unit.id, UserIn(name="Siv", role=UserRole.COORDINATOR),
                                          service.now())
    app = create_app(replace(settings, public_base_url="https://samhandling.example.no"), clock)
    async with AsyncTestClient(app=app, base_url="https://samhandling.example.no") as client:
        form = await client.get("/logg-inn")
        answer = await client.post("/logg-inn", data={"_csrf": _csrf(form.text), "token": created.token},
                                   follow_redirects=False)
        cookies = answer.headers.get_list("set-cookie")
        session_cookie = next(c for c in cookies if c.startswith("__Host-samhandling_okt="))
        assert "secure" in session_cookie.lower() and "httponly" in session_cookie.lower()
        assert all("secure" in c.lower() for c in cookies)
        assert (await client.get("/")).status_code == 200


async def test_forms_need_the_csrf_token_the_api_does_not(client: Client, people: Any, team: Any) -> None:
    await sign_in(client, people.coordinator.token)
    consent = {"grantor": str(team.mother), "sector": "school", "status": "granted", "level": "purpose",
               "form": "written"}
    page = await client.get(f"/saker/{team.case_id}/samtykke")
    token = _csrf(page.text)
    action = f"/saker/{team.case_id}/samtykke"
    for data, headers in (
        (consent, {}),
        ({**consent, "_csrf": "x" * 43}, {}),
        ({**consent, "_csrf": token}, {"Origin": "https://evil.example"}),
    ):
        refused = await client.post(action, data=data, headers=headers)
        assert refused.status_code == 403 and "Skjemaet kunne ikke sendes" in refused.text
    listed = await client.get(f"/cases/{team.case_id}/consents", headers=people.coordinator.headers)
    assert listed.json() == [], "a refused form records nothing"

    accepted = await client.post(action, data={**consent, "_csrf": token}, follow_redirects=False)
    assert accepted.status_code == 303

    # The JSON API with a bearer token needs no CSRF token; the session cookie alone opens no API.
    api = await client.post(f"/cases/{team.case_id}/consents", headers=people.coordinator.headers, json={
        "grantor_contact_id": team.father, "sector": "school", "status": "granted", "form": "written",
        "level": "purpose"})
    assert api.status_code == 201, api.text
    assert (await client.get("/cases")).status_code == 401


async def test_a_page_never_shows_what_the_api_refuses(client: Client, people: Any, team: Any) -> None:
    pages = ["", "/samtykke", "/moter", "/kalendere", "/utsendinger", "/logg"]
    for person in (people.other_coordinator, people.stranger, people.admin):
        api = await client.get(f"/cases/{team.case_id}", headers=person.headers)
        assert api.status_code == 404
        await sign_in(client, person.token)
        for suffix in pages:
            page = await client.get(f"/saker/{team.case_id}{suffix}")
            assert page.status_code == 404 and "Fant ikke siden" in page.text, suffix
            assert "Sara" not in page.text and "BV-2027-17" not in page.text
        assert "BV-2027-17" not in (await client.get("/")).text
        refused = await submit(client, "/", f"/saker/{team.case_id}/samtykke", {
            "grantor": str(team.mother), "sector": "school", "status": "withdrawn", "form": "oral"})
        assert refused.status_code == 404
    assert (await client.get(f"/cases/{team.case_id}/consents", headers=people.coordinator.headers)).json() == []
    admin_home = await client.get("/")
    assert "ikke tilgang til saker" in admin_home.text

    await sign_in(client, people.leader.token)
    assert "BV-2027-17" in text_of((await client.get("/")).text)
    for suffix in pages:
        assert (await client.get(f"/saker/{team.case_id}{suffix}")).status_code == 200, suffix


async def test_withdrawal_changes_the_loops_the_badges_and_the_queued_reminders(
    client: Client, people: Any, team: Any
) -> None:
    await grant_school(client, people, team)
    await meeting(client, people, team, "2027-01-12T09:00:00+01:00", "2027-01-12T10:00:00+01:00", confirm=True)
    await sign_in(client, people.coordinator.token)
    case_page = f"/saker/{team.case_id}"

    before = await client.get(case_page)
    teacher = text_of(before.text, f"sloyfe-{team.teacher}")
    assert "Siri Lærer" in teacher and "Formål" in teacher and "Praktisk (tid og sted)" in teacher
    assert "Gitt" in text_of((await client.get("/")).text)
    waiting = text_of((await client.get(f"{case_page}/utsendinger?status=venter")).text)
    assert waiting.count("Påminnelse Siri Lærer") == 2 and "Venter til" in waiting

    done = await submit(client, f"{case_page}/samtykke", f"{case_page}/samtykke", {
        "grantor": str(team.mother), "sector": "school", "status": "withdrawn", "form": "oral",
        "note": "Ringte i dag"})
    assert done.status_code == 303 and done.headers["location"] == f"{case_page}?melding=samtykke"

    after = await client.get(done.headers["location"])
    assert "Samtykket er registrert" in after.text
    teacher = text_of(after.text, f"sloyfe-{team.teacher}")
    assert teacher.count("Ingenting") == 4
    assert "Mona Hansen (mor) har trukket tilbake samtykket til deling med skole" in teacher
    assert "Trukket tilbake" in text_of((await client.get("/")).text)
    stopped = text_of((await client.get(f"{case_page}/utsendinger?status=stoppet")).text)
    assert stopped.count("Stoppes ved utsending") >= 2 and "Påminnelse Siri Lærer" in stopped
    assert "Påminnelse Siri Lærer" not in text_of((await client.get(f"{case_page}/utsendinger?status=venter")).text)
    history = text_of((await client.get(f"{case_page}/samtykke")).text, "historikk")
    assert history.index("Trukket tilbake") < history.index("Samtykke gitt"), "newest first"
    assert "Muntlig" in history and "Ringte i dag" in history

    # The API sees the same record the form made.
    records = (await client.get(f"/cases/{team.case_id}/consents", headers=people.coordinator.headers)).json()
    assert records[-1]["status"] == "withdrawn" and records[-1]["form"] == "oral"

    # A grant without a level comes back with the reason beside the field, and the values kept.
    wrong = await submit(client, f"{case_page}/samtykke", f"{case_page}/samtykke", {
        "grantor": str(team.father), "sector": "health", "status": "granted", "form": "written",
        "note": "Kladd"})
    assert wrong.status_code == 400
    assert 'href="#level"' in wrong.text and "Velg hvor mye som kan deles" in wrong.text
    assert 'id="level" name="level" aria-invalid="true"' in wrong.text and "Kladd" in wrong.text


async def test_moving_a_meeting_explains_a_time_that_does_not_fit(client: Client, people: Any, team: Any) -> None:
    meeting_id = await meeting(client, people, team, "2027-01-12T09:00:00+01:00", "2027-01-12T10:00:00+01:00",
                               confirm=False)
    await sign_in(client, people.coordinator.token)
    page = f"/saker/{team.case_id}/moter/{meeting_id}"
    shown = await client.get(page)
    assert "tirsdag 12. januar 2027 kl. 09:00–10:00" in text_of(shown.text)

    saturday = await submit(client, page, f"{page}/flytt", {"dato": "2027-01-16", "tid": "10:00"})
    assert saturday.status_code == 200
    advice = text_of(saturday.text, "slot-advice")
    assert "passer ikke" in advice and "helg" in advice and "Flytt til" in advice
    unchanged = (await client.get(f"/cases/{team.case_id}/meetings", headers=people.coordinator.headers)).json()
    assert unchanged[0]["start"].startswith("2027-01-12T08:00"), "nothing moves until the caseworker decides"

    anyway = await submit(client, page, f"{page}/flytt", {"dato": "2027-01-16", "tid": "10:00", "likevel": "ja"})
    assert anyway.status_code == 303 and anyway.headers["location"].endswith(f"#mote-{meeting_id}")
    schedule = text_of((await client.get(f"/saker/{team.case_id}/moter")).text)
    assert "lørdag 16. januar 2027 kl. 10:00–11:00" in schedule and "Møtet er flyttet" not in schedule

    fits = await submit(client, page, f"{page}/flytt", {"dato": "2027-01-13", "tid": "10:00"})
    assert fits.status_code == 303
    moved = await client.get(fits.headers["location"])
    assert "onsdag 13. januar 2027 kl. 10:00–11:00" in text_of(moved.text) and "Møtet er flyttet" in moved.text

    found = await submit(client, page, f"{page}/forslag", {"fra": "2027-01-18", "til": "2027-01-22"})
    assert "Første tid som passer: mandag 18. januar 2027" in text_of(found.text, "slot-suggestion")

    bad = await submit(client, page, f"{page}/flytt", {"dato": "13.01.2027", "tid": "10:00"})
    assert bad.status_code == 400 and "Skriv datoen som åååå-mm-dd" in bad.text

    confirmed = await submit(client, page, f"{page}/bekreft", {})
    assert confirmed.status_code == 303
    unticked = await submit(client, page, f"{page}/avlys", {})
    assert unticked.status_code == 400 and "Kryss av for at du vil avlyse" in unticked.text
    cancelled = await submit(client, page, f"{page}/avlys", {"bekreft": "ja"})
    assert cancelled.status_code == 303
    assert "Avlyst" in text_of((await client.get(f"/saker/{team.case_id}/moter")).text, f"mote-{meeting_id}")
    listed = (await client.get(f"/cases/{team.case_id}/meetings", headers=people.coordinator.headers)).json()
    assert listed[0]["status"] == "cancelled"


async def test_a_calendar_address_is_shown_once_with_subscribe_links(client: Client, people: Any,
                                                                      team: Any) -> None:
    await sign_in(client, people.coordinator.token)
    page = f"/saker/{team.case_id}/kalendere"
    created = await submit(client, page, page, {"scope": "case", "label": "Teamet"})
    assert created.status_code == 200
    address = re.search(r'id="feed-url" type="text" readonly value="([^"]+)"', created.text)
    assert address and address.group(1).startswith("http://testserver/feeds/")
    assert "webcal://testserver/feeds/" in created.text
    assert "https://outlook.office.com/calendar/0/addfromweb?url=http%3A%2F%2Ftestserver%2Ffeeds%2F" in created.text
    assert "https://calendar.google.com/calendar/render?cid=webcal%3A%2F%2Ftestserver" in created.text

    listed = await client.get(page)
    assert "/feeds/" not in listed.text, "the address is shown only once"
    assert "Teamet" in text_of(listed.text)
    feed = await client.get(address.group(1).removeprefix("http://testserver"))
    assert feed.status_code == 200 and b"BEGIN:VCALENDAR" in feed.content
    log = text_of((await client.get(f"/saker/{team.case_id}/logg")).text)
    assert "Saksteamet" in log, "the access report accounts for the calendar served"
    assert "Lest: siden Kalendere" in log and "Kari" in log, "reading a page is audited as the API's reads are"

    feed_id = re.search(r'/kalendere/(\d+)/stopp', listed.text)
    assert feed_id
    revoked = await submit(client, page, f"{page}/{feed_id.group(1)}/stopp", {})
    assert revoked.status_code == 303
    assert "Trukket tilbake" in text_of((await client.get(page)).text)
    assert (await client.get(address.group(1).removeprefix("http://testserver"))).status_code == 410

    contact_feed = await submit(client, page, page, {"scope": "contact", "kontakt": ""})
    assert contact_feed.status_code == 400 and "Velg hvilken kontakt" in contact_feed.text


async def test_alerts_link_to_where_they_are_resolved(client: Client, people: Any, team: Any,
                                                      service: ServiceContext) -> None:
    async with service.transaction() as session:
        case = (await session.exec(select(Case).where(Case.id == team.case_id))).one()
        alert = await alerts.raise_alert(session, case, "consent_expiring", "test:expiring", service.now())
        assert alert is not None
        alert_id = alert.id
    await sign_in(client, people.other_coordinator.token)
    assert "utløper" not in text_of((await client.get("/varsler")).text)
    refused = await submit(client, "/varsler", f"/varsler/{alert_id}/lost", {"tilbake": "/varsler"})
    assert refused.status_code == 404

    await sign_in(client, people.coordinator.token)
    listed = await client.get("/varsler")
    assert "Et samtykke utløper innen 14 dager" in text_of(listed.text)
    assert f'href="/saker/{team.case_id}/samtykke"' in listed.text
    assert "Et samtykke utløper" in text_of((await client.get(f"/saker/{team.case_id}")).text)
    resolved = await submit(client, "/varsler", f"/varsler/{alert_id}/lost", {"tilbake": "/varsler"})
    assert resolved.status_code == 303 and resolved.headers["location"] == "/varsler?melding=varsel-lost"
    assert "Ingen åpne varsler" in text_of((await client.get("/varsler")).text)
    assert "Løst" in text_of((await client.get("/varsler?vis=alle")).text)


async def test_pages_escape_what_people_type(client: Client, people: Any, team: Any) -> None:
    added = await client.post(f"/cases/{team.case_id}/contacts", headers=people.coordinator.headers, json={
        "name": "<script>alert(1)</script>", "role": "other", "organisation": "\"><img src=x onerror=1>"})
    assert added.status_code == 201, added.text
    await sign_in(client, people.coordinator.token)
    page = await client.get(f"/saker/{team.case_id}")
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<img src=x" not in page.text


async def test_a_broken_answer_link_is_a_page_in_both_languages(client: Client) -> None:
    unknown = await client.get("/answer/not-a-token")
    assert unknown.status_code == 404 and "text/html" in unknown.headers["content-type"]
    assert "Lenken virker ikke" in unknown.text and 'lang="en"' in unknown.text
    refused = await client.post("/answer/not-a-token", data={"answer": "accepted"})
    assert refused.status_code == 404 and "Link not valid" in refused.text
