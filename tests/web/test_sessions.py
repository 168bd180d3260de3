"""Browser sessions on SQLite and PostgreSQL (issue 12, hole 9; DESIGN.md "Signing in", rule 11).

The cookie holds a random session id, never the API token; the session lives in the database
and ends at sign-out, on deactivation, after the idle limit and after the absolute limit, all
by the service clock. A copy of an ended cookie opens nothing.

Decided here: a session belongs to its user, not to the API token typed in. Replacing a
user's token (only the demo's start does; ``users`` offers no rotation) ends no session and
only changes what the sign-in form accepts; a token someone saw is revoked by deactivating
the user, which ends every session of theirs.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlmodel import col, select
from test_pages import _csrf, submit, text_of

from coordination.app import create_app
from coordination.clock import Clock
from coordination.context import ServiceContext
from coordination.models import User, WebSession
from coordination.security import hash_token, new_token
from coordination.settings import Settings
from coordination.web.session import delete_old_sessions

Client = AsyncTestClient[Litestar]
COOKIE = "samhandling_okt"
EXPIRED = "Økten er utløpt. Logg inn på nytt."


async def sign_in(client: Client, token: str) -> str:
    """Signs in as a browser would, keeping whatever cookies it already has; returns the session cookie."""
    form = await client.get("/logg-inn")
    answer = await client.post("/logg-inn", data={"_csrf": _csrf(form.text), "token": token, "neste": "/"},
                               follow_redirects=False)
    assert answer.status_code == 303, answer.text
    value = client.cookies.get(COOKIE)
    assert value
    return value


def another_browser(settings: Settings, clock: Clock) -> Client:
    """A second browser, served by a second instance of the service on the same database."""
    return AsyncTestClient(app=create_app(settings, clock))


def plant(client: Client, value: str) -> None:
    """Puts a session cookie into the browser, as a copy kept or planted by someone would be."""
    client.cookies.set(COOKIE, value, domain="testserver.local")


async def opens(client: Client, path: str = "/") -> bool:
    """Whether the page opens signed in; otherwise it must send the browser to the sign-in form."""
    page = await client.get(path, follow_redirects=False)
    if page.status_code == 200:
        return True
    assert page.status_code == 303 and page.headers["location"].startswith("/logg-inn"), page.text
    return False


async def assert_expired(client: Client, path: str = "/") -> None:
    """The page sends the browser to sign in again, says why, and drops the dead cookie."""
    page = await client.get(path, follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == (f"/logg-inn?neste={path}&melding=utlopt" if path != "/"
                                        else "/logg-inn?melding=utlopt")
    assert client.cookies.get(COOKIE) is None, "the dead session cookie is deleted"
    form = await client.get(page.headers["location"])
    assert EXPIRED in text_of(form.text)


async def rows(service: ServiceContext, user_id: int) -> list[WebSession]:
    async with service.sessions() as session:
        found = await session.exec(select(WebSession).where(WebSession.user_id == user_id)
                                   .order_by(col(WebSession.id)))
        return list(found.all())


async def test_the_cookie_holds_a_random_session_id_never_the_api_token(
    client: Client, people: Any, service: ServiceContext
) -> None:
    token = people.coordinator.token
    form = await client.get("/logg-inn")
    answer = await client.post("/logg-inn", data={"_csrf": _csrf(form.text), "token": token},
                               follow_redirects=False)
    assert all(token not in header for header in answer.headers.get_list("set-cookie"))
    value = client.cookies.get(COOKIE)
    assert value and value != token and len(value) >= 43
    assert await opens(client)

    (stored,) = await rows(service, people.coordinator.id)
    assert stored.token_hash == hash_token(value) != value, "only the hash is stored"
    assert stored.created_at == stored.last_seen_at == service.now() and stored.ended_at is None

    # The session id is no credential for the API, and the API ignores the cookie.
    assert (await client.get("/cases", headers={"Authorization": f"Bearer {value}"})).status_code == 401
    assert (await client.get("/cases")).status_code == 401
    assert (await client.get("/cases", headers=people.coordinator.headers)).status_code == 200


async def test_a_session_ends_after_thirty_idle_minutes(
    client: Client, people: Any, team: Any, clock: Clock
) -> None:
    await sign_in(client, people.coordinator.token)
    case_page = f"/saker/{team.case_id}"
    clock.advance(timedelta(minutes=29, seconds=59))
    assert await opens(client, case_page)
    clock.advance(timedelta(minutes=29, seconds=59))
    assert await opens(client, case_page), "each page view starts the idle limit anew"
    clock.advance(timedelta(minutes=30))
    await assert_expired(client, case_page)

    await sign_in(client, people.coordinator.token)
    assert await opens(client, case_page), "signing in again opens the pages"


async def test_page_views_within_a_minute_write_nothing(
    client: Client, people: Any, service: ServiceContext, clock: Clock
) -> None:
    await sign_in(client, people.coordinator.token)
    signed_in = service.now()
    clock.advance(timedelta(seconds=60))
    assert await opens(client)
    assert [r.last_seen_at for r in await rows(service, people.coordinator.id)] == [signed_in]
    clock.advance(timedelta(seconds=1))
    assert await opens(client)
    assert [r.last_seen_at for r in await rows(service, people.coordinator.id)] == [service.now()]


async def test_a_session_ends_ten_hours_after_sign_in_however_active(
    client: Client, people: Any, clock: Clock
) -> None:
    await sign_in(client, people.coordinator.token)
    for _ in range(29):  # 9 h 40 min of work, a page every 20 minutes
        clock.advance(timedelta(minutes=20))
        assert await opens(client)
    clock.advance(timedelta(minutes=19, seconds=59))
    assert await opens(client)
    clock.advance(timedelta(seconds=1))
    await assert_expired(client)


async def test_the_limits_follow_the_settings(settings: Settings, clock: Clock, people: Any) -> None:
    short = replace(settings, session_idle_minutes=5, session_max_hours=1)
    async with AsyncTestClient(app=create_app(short, clock)) as client:
        form = await client.get("/logg-inn")
        assert "etter 5 minutter uten aktivitet, og senest 1 time etter" in text_of(form.text)
        await sign_in(client, people.coordinator.token)
        clock.advance(timedelta(minutes=4))
        assert await opens(client)
        clock.advance(timedelta(minutes=5))
        await assert_expired(client)

        await sign_in(client, people.coordinator.token)
        for _ in range(14):
            clock.advance(timedelta(minutes=4))
            assert await opens(client)
        clock.advance(timedelta(minutes=4))  # 60 minutes after sign-in
        await assert_expired(client)

    read = Settings.from_env({"SAMHANDLING_SESSION_IDLE_MINUTES": "15", "SAMHANDLING_SESSION_MAX_HOURS": "8"})
    assert (read.session_idle_minutes, read.session_max_hours) == (15, 8)
    assert (Settings.from_env({}).session_idle_minutes, Settings.from_env({}).session_max_hours) == (30, 10)
    for name, value in (("SESSION_IDLE_MINUTES", "0"), ("SESSION_IDLE_MINUTES", "ti"), ("SESSION_MAX_HOURS", "-1"),
                        ("SESSION_MAX_HOURS", "9000")):
        with pytest.raises(ValueError, match=f"SAMHANDLING_{name} must be a whole number"):
            Settings.from_env({f"SAMHANDLING_{name}": value})


async def test_sign_out_ends_the_session_and_a_replayed_cookie_opens_nothing(
    client: Client, people: Any, service: ServiceContext, settings: Settings, clock: Clock
) -> None:
    value = await sign_in(client, people.coordinator.token)
    clock.advance(timedelta(minutes=2))
    out = await submit(client, "/", "/logg-ut", {})
    assert out.status_code == 303 and out.headers["location"] == "/logg-inn?melding=logget-ut"
    assert client.cookies.get(COOKIE) is None, "the browser's cookie is deleted"

    plant(client, value)  # someone kept a copy of the cookie
    await assert_expired(client)
    async with another_browser(settings, clock) as other_browser:
        plant(other_browser, value)
        assert not await opens(other_browser)
    assert (await client.get("/cases", headers=people.coordinator.headers)).status_code == 200, (
        "signing out of the pages does not revoke the API token")
    (ended,) = await rows(service, people.coordinator.id)
    assert ended.ended_at == service.now()


async def test_every_sign_in_starts_a_fresh_session_and_ends_the_browsers_previous_one(
    client: Client, people: Any, service: ServiceContext
) -> None:
    planted = new_token()
    plant(client, planted)  # an id planted before sign-in is never adopted
    first = await sign_in(client, people.coordinator.token)
    assert first != planted
    second = await sign_in(client, people.coordinator.token)
    assert second != first
    assert await opens(client)
    plant(client, first)
    assert not await opens(client), "the previous session ended with the new sign-in"
    assert [r.ended_at is None for r in await rows(service, people.coordinator.id)] == [False, True]


async def test_deactivating_a_user_ends_their_sessions_for_good(
    client: Client, people: Any, service: ServiceContext, settings: Settings, clock: Clock
) -> None:
    value = await sign_in(client, people.coordinator.token)
    async with another_browser(settings, clock) as other_browser:
        await sign_in(other_browser, people.coordinator.token)
        gone = await client.delete(f"/users/{people.coordinator.id}", headers=people.admin.headers)
        assert gone.status_code == 200, gone.text
        assert not await opens(other_browser)
    deactivated = service.now()

    async with service.transaction() as session:  # taken back into service later
        user = await session.get(User, people.coordinator.id)
        assert user is not None
        user.active = True
        session.add(user)
    plant(client, value)
    assert not await opens(client), "an ended session never comes back"
    assert [r.ended_at for r in await rows(service, people.coordinator.id)] == [deactivated] * 2


async def test_replacing_the_api_token_ends_no_session(
    client: Client, people: Any, service: ServiceContext, settings: Settings, clock: Clock
) -> None:
    await sign_in(client, people.coordinator.token)
    fresh = new_token()
    async with service.transaction() as session:  # as the demo's start does
        user = await session.get(User, people.coordinator.id)
        assert user is not None
        user.token_hash = hash_token(fresh)
        session.add(user)
    assert await opens(client), "the session belongs to the user, not to the token typed in"

    async with another_browser(settings, clock) as other_browser:
        form = await other_browser.get("/logg-inn")
        old = await other_browser.post("/logg-inn", data={"_csrf": _csrf(form.text),
                                                          "token": people.coordinator.token})
        assert old.status_code == 400 and "Fant ingen aktiv bruker" in old.text
        await sign_in(other_browser, fresh)
        assert await opens(other_browser)


async def test_old_sessions_are_deleted_a_day_after_they_ended(
    client: Client, people: Any, service: ServiceContext, clock: Clock
) -> None:
    await sign_in(client, people.coordinator.token)
    await submit(client, "/", "/logg-ut", {})  # ended at once
    await sign_in(client, people.leader.token)
    client.cookies.clear()  # left to expire after 30 idle minutes
    clock.advance(timedelta(days=1, minutes=31))
    await sign_in(client, people.other_coordinator.token)  # live
    await submit(client, "/", "/logg-ut", {})  # ended just now: kept a while yet
    live = await sign_in(client, people.admin.token)

    async with service.transaction() as session:
        assert await delete_old_sessions(session, service.settings, service.now()) == 2
    async with service.sessions() as session:
        left = (await session.exec(select(WebSession.user_id))).all()
    assert sorted(left) == sorted([people.other_coordinator.id, people.admin.id])
    assert await opens(client)
    assert client.cookies.get(COOKIE) == live
