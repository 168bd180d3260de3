"""Sign-in with OpenID Connect against a real provider (panva's oidc-provider, see
oidc_fixture.py), on SQLite and PostgreSQL (issue 14; DESIGN.md "Signing in").

The test plays the browser: the test client is its side at the service, ``Browser`` its side
at the provider. Covered: a whole sign-in and the matching rule of ``access.oidc`` (a verified
e-mail, Entra ID's ``xms_edov``, ID-porten's ``pid``, then the subject alone), a wrong
``state``, an answer without the browser's pending sign-in, a replayed code, the idle limit by
the service clock, sign-out here and at the provider, an unknown person, an address not vouched
for and a deactivated user (refused, nothing written), and the token form gone.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from oidc_fixture import CLIENT, Browser, Provider, local, oidc_provider
from sqlmodel import col, func, select, update
from test_pages import _csrf, text_of

from coordination.access import users
from coordination.app import create_app
from coordination.clock import Clock
from coordination.context import ServiceContext
from coordination.domain import UserRole
from coordination.models import AuditEntry, OidcLogin, User, WebSession
from coordination.schemas import UserIn
from coordination.settings import OidcSettings, Settings

Client = AsyncTestClient[Litestar]
SESSION = "samhandling_okt"
PENDING = "samhandling_innlogging"
assert oidc_provider  # the session fixture, imported for the tests here


@pytest.fixture
def oidc_settings(settings: Settings, oidc_provider: Provider) -> Settings:
    return replace(settings, oidc=OidcSettings(issuer=oidc_provider.issuer, client_id=CLIENT["client_id"],
                                               client_secret=CLIENT["client_secret"]))


@pytest.fixture
async def client(oidc_settings: Settings, clock: Clock) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(oidc_settings, clock)) as test_client:
        yield test_client


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with Browser() as at_provider:
        yield at_provider


async def make_user(service: ServiceContext, name: str, email: str = "", *, active: bool = True,
                    pid: str = "") -> int:
    async with service.transaction() as session:
        unit = await users.get_or_create_unit(session, "Enhet A", service.now())
        assert unit.id is not None
        created = await users.create_user(session, unit.id, UserIn(name=name, role=UserRole.COORDINATOR,
                                                                    email=email), service.now())
        await session.exec(update(User).where(col(User.id) == created.user.id)
                           .values(active=active, pending_pid=pid or None))
    return created.user.id


async def start(client: Client, next_page: str = "/") -> str:
    """Click the sign-in button; returns the provider's authorization address."""
    form = await client.get("/logg-inn" + (f"?neste={next_page}" if next_page != "/" else ""))
    button = re.search(r'<a class="button" href="([^"]+)">Logg inn med kommunens innlogging</a>', form.text)
    assert button, form.text
    started = await client.get(html.unescape(button.group(1)), follow_redirects=False)
    assert started.status_code == 303, started.text
    assert client.cookies.get(PENDING)
    return started.headers["location"]


async def sign_in(client: Client, browser: Browser, account: str, next_page: str = "/") -> Any:
    """The whole round: the service, the provider, and the service's answer to the callback."""
    back = await browser.authorize(await start(client, next_page), account)
    return await client.get(local(back), follow_redirects=False)


async def user(service: ServiceContext, user_id: int) -> User:
    async with service.sessions() as session:
        found = await session.get(User, user_id)
        assert found is not None
        return found


async def count(service: ServiceContext, table: Any) -> int:
    async with service.sessions() as session:
        return int((await session.exec(select(func.count()).select_from(table))).one())


async def test_a_whole_sign_in_links_the_identity_and_then_matches_by_subject_alone(
    client: Client, browser: Browser, service: ServiceContext, oidc_provider: Provider
) -> None:
    kari = await make_user(service, "Kari Koordinator", "kari.koordinator@kommune.example.org")
    url = await start(client, "/varsler")
    authorization = urlsplit(url)
    asked = parse_qs(authorization.query)
    assert f"{authorization.scheme}://{authorization.netloc}" == oidc_provider.issuer
    assert asked["response_type"] == ["code"] and asked["code_challenge_method"] == ["S256"]
    assert asked["scope"] == ["openid email profile"] and asked["client_id"] == [CLIENT["client_id"]]
    assert asked["redirect_uri"] == ["http://testserver/logg-inn/callback"]
    assert all(len(asked[name][0]) >= 32 for name in ("state", "nonce", "code_challenge"))

    answer = await client.get(local(await browser.authorize(url, "kari-sub")), follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/varsler", answer.text
    assert client.cookies.get(PENDING) is None, "the pending sign-in's cookie is dropped"
    page = await client.get("/")
    assert page.status_code == 200 and "Kari Koordinator" in page.text
    linked = await user(service, kari)
    assert (linked.oidc_issuer, linked.oidc_subject) == (oidc_provider.issuer, "kari-sub")
    async with service.sessions() as session:
        (row,) = (await session.exec(select(WebSession))).all()
        (entry,) = (await session.exec(select(AuditEntry).where(AuditEntry.action == "user.identity_linked"))).all()
    assert row.user_id == kari and row.id_token and row.id_token.count(".") == 2
    assert entry.subject == f"user:{kari}" and entry.detail == {"by": "email"}
    assert await count(service, OidcLogin) == 0, "an answer is taken once"

    # Once linked, the subject alone decides: a changed address at either end changes nothing.
    async with service.transaction() as session:
        await session.exec(update(User).where(col(User.id) == kari).values(email="ny@kommune.example.org"))
    client.cookies.clear()
    async with Browser() as another:
        again = await sign_in(client, another, "kari-sub")
    assert again.status_code == 303 and again.headers["location"] == "/"
    assert (await client.get("/")).status_code == 200


async def test_the_token_form_is_gone_with_oidc(client: Client, service: ServiceContext) -> None:
    async with service.transaction() as session:
        unit = await users.get_or_create_unit(session, "Enhet A", service.now())
        assert unit.id is not None
        created = await users.create_user(session, unit.id, UserIn(name="Kari", role=UserRole.COORDINATOR),
                                          service.now())
    form = await client.get("/logg-inn")
    assert 'name="token"' not in form.text and "Logg inn med kommunens innlogging" in text_of(form.text)
    csrf = client.cookies.get("samhandling_csrf")
    assert csrf
    # Even a form posted by hand with a valid API token signs nobody in.
    tried = await client.post("/logg-inn", data={"_csrf": csrf, "token": created.token}, follow_redirects=False)
    assert tried.status_code == 303 and tried.headers["location"] == "/logg-inn"
    assert client.cookies.get(SESSION) is None
    assert await count(service, WebSession) == 0


def with_param(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return f"{parts.path}?{urlencode({**query, name: value})}"


async def assert_refused(answer: Any, client: Client, service: ServiceContext, title: str, status: int = 400) -> None:
    """A page that says why, no session, and no sign-in left under way in this browser."""
    assert answer.status_code == status, answer.text
    assert title in text_of(answer.text)
    assert client.cookies.get(SESSION) is None and client.cookies.get(PENDING) is None
    assert await count(service, WebSession) == 0


async def test_an_answer_with_another_state_is_refused_and_spends_the_sign_in(
    client: Client, browser: Browser, service: ServiceContext
) -> None:
    await make_user(service, "Kari Koordinator", "kari.koordinator@kommune.example.org")
    back = local(await browser.authorize(await start(client), "kari-sub"))
    wrong = await client.get(with_param(back, "state", "x" * 43), follow_redirects=False)
    await assert_refused(wrong, client, service, "Innloggingen ble ikke fullført")
    # The real answer after it finds no sign-in under way: the browser starts again.
    late = await client.get(back, follow_redirects=False)
    await assert_refused(late, client, service, "Innloggingen ble ikke fullført")
    assert await count(service, OidcLogin) == 0


async def test_an_answer_in_a_browser_that_did_not_ask_is_refused(
    client: Client, browser: Browser, service: ServiceContext, oidc_settings: Settings, clock: Clock
) -> None:
    """Login CSRF: someone's callback address, opened in another browser, signs nobody in there."""
    await make_user(service, "Kari Koordinator", "kari.koordinator@kommune.example.org")
    back = local(await browser.authorize(await start(client), "kari-sub"))
    async with AsyncTestClient(app=create_app(oidc_settings, clock)) as victim:
        planted = await victim.get(back, follow_redirects=False)
        await assert_refused(planted, victim, service, "Innloggingen ble ikke fullført")
    assert (await client.get(back, follow_redirects=False)).status_code == 303, "the asking browser still can"


async def test_a_replayed_code_is_refused(client: Client, browser: Browser, service: ServiceContext) -> None:
    await make_user(service, "Kari Koordinator", "kari.koordinator@kommune.example.org")
    back = local(await browser.authorize(await start(client), "kari-sub"))
    assert (await client.get(back, follow_redirects=False)).status_code == 303
    client.cookies.clear()
    assert await count(service, WebSession) == 1

    # The same address again: its sign-in was taken.
    replayed = await client.get(back, follow_redirects=False)
    assert replayed.status_code == 400 and client.cookies.get(SESSION) is None
    # The old code with a fresh sign-in's state: the provider refuses the code a second time.
    fresh = await start(client)
    stolen = await client.get(with_param(back, "state", parse_qs(urlsplit(fresh).query)["state"][0]),
                              follow_redirects=False)
    assert stolen.status_code == 400 and "Innloggingen ble ikke fullført" in text_of(stolen.text)
    assert client.cookies.get(SESSION) is None
    assert await count(service, WebSession) == 1


async def test_a_session_begun_at_the_provider_ends_after_the_idle_limit(
    client: Client, browser: Browser, service: ServiceContext, clock: Clock
) -> None:
    await make_user(service, "Kari Koordinator", "kari.koordinator@kommune.example.org")
    assert (await sign_in(client, browser, "kari-sub")).status_code == 303
    clock.advance(timedelta(minutes=29, seconds=59))
    assert (await client.get("/varsler", follow_redirects=False)).status_code == 200
    clock.advance(timedelta(minutes=30))
    expired = await client.get("/varsler", follow_redirects=False)
    assert expired.status_code == 303 and expired.headers["location"] == "/logg-inn?neste=/varsler&melding=utlopt"
    page = await client.get(expired.headers["location"])
    assert "Økten er utløpt" in text_of(page.text) and "Logg inn med kommunens innlogging" in page.text
    assert 'href="/logg-inn/start?neste=/varsler"' in page.text


async def test_sign_out_ends_the_session_here_and_at_the_provider(
    client: Client, browser: Browser, service: ServiceContext, oidc_provider: Provider
) -> None:
    await make_user(service, "Kari Koordinator", "kari.koordinator@kommune.example.org")
    assert (await sign_in(client, browser, "kari-sub")).status_code == 303
    async with service.sessions() as session:
        (row,) = (await session.exec(select(WebSession))).all()
    home = await client.get("/")
    out = await client.post("/logg-ut", data={"_csrf": _csrf(home.text)}, follow_redirects=False)

    assert out.status_code == 200 and "Du er logget ut av Samhandling" in text_of(out.text)
    refresh = re.search(r'<meta http-equiv="refresh" content="0; url=([^"]+)">', out.text)
    assert refresh
    end_session = html.unescape(refresh.group(1))
    parts = urlsplit(end_session)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{oidc_provider.issuer}/session/end"
    assert parse_qs(parts.query) == {"client_id": [CLIENT["client_id"]], "id_token_hint": [row.id_token],
                                     "post_logout_redirect_uri": ["http://testserver/logget-ut"]}
    assert client.cookies.get(SESSION) is None
    async with service.sessions() as session:
        (ended,) = (await session.exec(select(WebSession))).all()
    assert ended.ended_at == service.now() and ended.id_token is None, "ended here, its ID token erased"
    assert (await client.get("/", follow_redirects=False)).status_code == 303

    # At the provider: it asks to confirm, then sends the browser back to us.
    confirm = await browser.follow(end_session)
    form = re.search(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', confirm.text, re.S)
    assert form, confirm.text
    fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form.group(2)))
    done = await browser.http.post(confirm.url.join(form.group(1)), data={**fields, "logout": "yes"})
    assert done.is_redirect and done.headers["location"].startswith("http://testserver/logget-ut")
    back = await client.get(local(done.headers["location"]), follow_redirects=False)
    assert back.headers["location"] == "/logg-inn?melding=logget-ut"
    assert "Du er logget ut" in text_of((await client.get(back.headers["location"])).text)
    # The provider's session is gone too: without naming an account, nobody is signed in there.
    again = await browser.http.get(await start(client))
    assert again.is_redirect and "/interaction/" in again.headers["location"]


async def test_an_unknown_person_gets_a_clear_page_and_no_account(
    client: Client, browser: Browser, service: ServiceContext
) -> None:
    await make_user(service, "Kari Koordinator", "kari.koordinator@kommune.example.org")
    answer = await sign_in(client, browser, "ukjent-sub")
    await assert_refused(answer, client, service, "Du har ingen bruker i Samhandling", status=403)
    assert "Be den som administrerer Samhandling" in text_of(answer.text)
    assert await count(service, User) == 1
    async with service.sessions() as session:
        assert (await session.exec(select(User.oidc_subject))).all() == [None]


async def test_an_address_the_provider_does_not_vouch_for_matches_nobody(
    client: Client, browser: Browser, service: ServiceContext
) -> None:
    lise = await make_user(service, "Lise Leder", "lise@kommune.example.org")
    answer = await sign_in(client, browser, "lise-sub")
    await assert_refused(answer, client, service, "E-postadressen din er ikke bekreftet", status=403)
    assert (await user(service, lise)).oidc_subject is None


async def test_entra_ids_domain_verified_address_and_id_portens_pid_match_at_the_first_sign_in(
    client: Client, browser: Browser, service: ServiceContext, oidc_provider: Provider
) -> None:
    elin = await make_user(service, "Elin", "elin@kommune.example.org")
    per = await make_user(service, "Per", pid="01017012345")
    assert (await sign_in(client, browser, "entra-sub")).status_code == 303
    assert (await user(service, elin)).oidc_subject == "entra-sub"
    client.cookies.clear()
    async with Browser() as another:
        assert (await sign_in(client, another, "idporten-sub")).status_code == 303
    linked = await user(service, per)
    assert (linked.oidc_issuer, linked.oidc_subject, linked.pending_pid) == (oidc_provider.issuer,
                                                                             "idporten-sub", None)
    async with service.sessions() as session:
        entries = (await session.exec(select(AuditEntry.detail).where(
            AuditEntry.action == "user.identity_linked").order_by(col(AuditEntry.id)))).all()
    assert entries == [{"by": "email"}, {"by": "pid"}]


async def test_a_deactivated_user_is_refused_before_and_after_linking(
    client: Client, browser: Browser, service: ServiceContext
) -> None:
    kari = await make_user(service, "Kari Koordinator", "kari.koordinator@kommune.example.org", active=False)
    answer = await sign_in(client, browser, "kari-sub")
    await assert_refused(answer, client, service, "Brukeren din er deaktivert", status=403)
    assert (await user(service, kari)).oidc_subject is None, "not linked while deactivated"

    async with service.transaction() as session:
        await session.exec(update(User).where(col(User.id) == kari).values(active=True))
    async with Browser() as another:
        assert (await sign_in(client, another, "kari-sub")).status_code == 303
    async with service.transaction() as session:
        await session.exec(update(User).where(col(User.id) == kari).values(active=False))
        await session.exec(update(WebSession).values(ended_at=service.now()))
    client.cookies.clear()
    async with Browser() as another:
        again = await sign_in(client, another, "kari-sub")
    assert again.status_code == 403 and "Brukeren din er deaktivert" in text_of(again.text)
    assert client.cookies.get(SESSION) is None


def test_the_oidc_settings_are_checked() -> None:
    read = Settings.from_env({"SAMHANDLING_OIDC_ISSUER": "https://login.example.org/realms/kommune",
                              "SAMHANDLING_OIDC_CLIENT_ID": "samhandling", "SAMHANDLING_OIDC_CLIENT_SECRET": "s"})
    assert read.oidc == OidcSettings("https://login.example.org/realms/kommune", "samhandling", "s",
                                     "openid email profile")
    assert "client_secret" not in repr(read.oidc), "the secret stays out of logs"
    assert Settings.from_env({}).oidc is None, "the demo signs in by token"
    for env, message in (
        ({"SAMHANDLING_OIDC_ISSUER": "http://login.example.org"}, "must be an https address"),
        ({"SAMHANDLING_OIDC_ISSUER": "https://login.example.org"}, "OIDC_CLIENT_ID is needed"),
        ({"SAMHANDLING_OIDC_ISSUER": "https://login.example.org", "SAMHANDLING_OIDC_CLIENT_ID": "x",
          "SAMHANDLING_OIDC_SCOPES": "email"}, "must include openid"),
    ):
        with pytest.raises(ValueError, match=message):
            Settings.from_env(env)


async def test_without_oidc_the_demo_keeps_the_token_form_and_has_no_provider_pages(
    settings: Settings, clock: Clock
) -> None:
    async with AsyncTestClient(app=create_app(settings, clock)) as demo:
        form = await demo.get("/logg-inn")
        assert 'name="token"' in form.text and "kommunens innlogging" not in form.text
        for page in ("/logg-inn/start", "/logg-inn/callback?code=x&state=y"):
            assert (await demo.get(page, follow_redirects=False)).status_code == 404, page
