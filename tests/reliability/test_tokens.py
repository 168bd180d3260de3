"""Capability tokens (feed addresses, answer links, API tokens): unknown is 404, revoked is 410,
only a hash is stored and looked up, and guessing is slowed down per client address — the
real client's behind a trusted proxy — without ever refusing a valid token."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any, cast

import httpx
import mail_fixtures
import pytest
import uvicorn
import yaml
from litestar.testing import transport as testing_transport
from litestar.types import Scope
from mail_fixtures import Client, meeting, to
from smtp_server import SmtpServer
from sqlalchemy import text

from coordination import cli
from coordination.api.ratelimit import MISSES, ClientAddress, MissLimiter
from coordination.context import ServiceContext
from coordination.settings import Settings
from notifications.dispatcher import Dispatcher

dispatcher = mail_fixtures.dispatcher
#: The reverse proxy this module's app trusts to name its clients in X-Forwarded-For.
PROXY = "10.0.0.7"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, trusted_proxies=(PROXY,))


async def _rows_containing(service: ServiceContext, table: str, secret: str) -> int:
    """How many rows of ``table`` hold ``secret`` anywhere in them (as text)."""
    async with service.engine.connect() as connection:
        rows = (await connection.execute(text(f'SELECT * FROM "{table}"'))).all()
    return sum(1 for row in rows if any(secret in str(value) for value in row))


async def test_feed_tokens_unknown_revoked_and_stored_hashed(
    client: Client, people: Any, team: Any, service: ServiceContext
) -> None:
    headers = people.coordinator.headers
    created = (await client.post(f"/cases/{team.case_id}/feeds", headers=headers, json={"scope": "case"})).json()
    token = created["token"]
    assert (await client.get(f"/feeds/{token}.ics")).status_code == 200
    assert await _rows_containing(service, "feedtoken", token) == 0
    assert await _rows_containing(service, "feedtoken", hashlib.sha256(token.encode()).hexdigest()) == 1
    for unknown in (token[:-1] + ("A" if token[-1] != "A" else "B"), "x" * 43, "short", "../../etc/passwd"):
        assert (await client.get(f"/feeds/{unknown}.ics")).status_code == 404
    assert (await client.delete(f"/feeds/{created['id']}", headers=headers)).status_code == 200
    gone = await client.get(f"/feeds/{token}.ics")
    assert gone.status_code == 410 and b"BEGIN:VCALENDAR" not in gone.content


async def test_api_tokens_are_stored_hashed(people: Any, service: ServiceContext) -> None:
    assert await _rows_containing(service, "user", people.coordinator.token) == 0
    digest = hashlib.sha256(people.coordinator.token.encode()).hexdigest()
    assert await _rows_containing(service, "user", digest) == 1


async def test_answer_links_unknown_revoked_and_stored_hashed(
    client: Client, people: Any, team: Any, service: ServiceContext, smtp: SmtpServer, dispatcher: Dispatcher
) -> None:
    await meeting(client, people, team, [team.mother])
    await dispatcher.drain_once()
    mail = next(a.message for a in smtp.arrivals if to(a) == "mona@example.org")
    link = next(w for w in mail.get_body(preferencelist=("plain",)).get_content().split() if "/answer/" in w)
    path = link[link.index("/answer/"):]
    token = path.removeprefix("/answer/")
    assert (await client.get(path)).status_code == 200
    assert await _rows_containing(service, "answertoken", token) == 0
    assert await _rows_containing(service, "answertoken", hashlib.sha256(token.encode()).hexdigest()) == 1
    assert (await client.get("/answer/" + "A" * 43)).status_code == 404
    assert (await client.post("/answer/" + "A" * 43, data={"answer": "accepted"})).status_code == 404
    async with service.transaction() as session:
        await session.exec(text("UPDATE answertoken SET revoked_at = :now"),  # type: ignore[call-overload]
                           params={"now": service.now()})
    assert (await client.get(path)).status_code == 410
    assert (await client.post(path, data={"answer": "accepted"})).status_code == 410


async def _answer_path(client: Client, people: Any, team: Any, smtp: SmtpServer, dispatcher: Dispatcher) -> str:
    """The answer link of an invitation as it arrived by mail."""
    await meeting(client, people, team, [team.mother])
    await dispatcher.drain_once()
    mail = next(a.message for a in smtp.arrivals if to(a) == "mona@example.org")
    link = next(w for w in mail.get_body(preferencelist=("plain",)).get_content().split() if "/answer/" in w)
    return str(link[link.index("/answer/"):])


async def _guess(client: Client | httpx.AsyncClient, n: int, **headers: str) -> int:
    return (await client.get(f"/feeds/guess{n:038d}.ics", headers=headers)).status_code


async def test_guessing_never_takes_valid_tokens_offline(
    client: Client, people: Any, team: Any, service: ServiceContext, smtp: SmtpServer, dispatcher: Dispatcher
) -> None:
    """Everyone behind one address (an office's NAT, the reverse proxy) shares its count: a
    guesser there must not be able to take the others' calendars and answer links offline."""
    headers = people.coordinator.headers
    feeds = f"/cases/{team.case_id}/feeds"
    token = (await client.post(feeds, headers=headers, json={"scope": "case"})).json()["token"]
    revoked = (await client.post(feeds, headers=headers, json={"scope": "case"})).json()
    assert (await client.delete(f"/feeds/{revoked['id']}", headers=headers)).status_code == 200
    answer = await _answer_path(client, people, team, smtp, dispatcher)
    for _ in range(50):  # polling a real feed is never held back, nor counted
        assert (await client.get(f"/feeds/{token}.ics")).status_code == 200
    for n in range(25):
        assert await _guess(client, n) == (404 if n < MISSES else 429)
    polled = await client.get(f"/feeds/{token}.ics")
    assert polled.status_code == 200 and b"BEGIN:VCALENDAR" in polled.content
    unchanged = await client.get(f"/feeds/{token}.ics", headers={"If-None-Match": polled.headers["etag"]})
    assert unchanged.status_code == 304
    assert (await client.get(answer)).status_code == 200
    assert (await client.get(f"/feeds/{revoked['token']}.ics")).status_code == 410
    for path in ("/answer/" + "B" * 43, f"/feeds/guess{'9' * 38}.ics"):
        held = await client.get(path)
        assert held.status_code == 429, path
        assert 1 <= int(held.headers["Retry-After"]) <= 60 and held.headers["Cache-Control"] == "no-store"
        assert b"BEGIN:VCALENDAR" not in held.content
    held = await client.post("/answer/" + "B" * 43, data={"answer": "accepted"})
    assert held.status_code == 429
    # The API itself is not affected, and a minute after the last miss unknown is 404 again.
    assert (await client.get(f"/cases/{team.case_id}", headers=headers)).status_code == 200
    service.clock.advance(timedelta(seconds=61))
    assert await _guess(client, 99) == 404
    assert (await client.get(f"/feeds/{token}.ics")).status_code == 200


class _FromPeer(testing_transport.TestClientTransport[Client], httpx.AsyncBaseTransport):
    """The test client's transport (the app runs in its event loop), with requests arriving
    from ``peer`` instead of "testclient"."""

    def __init__(self, client: Client, peer: str) -> None:
        super().__init__(client)
        self.peer = peer

    def parse_request(self, request: httpx.Request) -> dict[str, Any]:
        scope = super().parse_request(request)
        scope["client"] = (self.peer, 40000)
        return scope


def _through(client: Client, peer: str) -> httpx.AsyncClient:
    """A client whose requests reach the (started) app from ``peer``."""
    return httpx.AsyncClient(transport=_FromPeer(client, peer), base_url="http://testserver")


async def test_misses_behind_the_trusted_proxy_are_counted_per_client(
    client: Client, people: Any, team: Any
) -> None:
    token = (await client.post(f"/cases/{team.case_id}/feeds", headers=people.coordinator.headers,
                               json={"scope": "case"})).json()["token"]
    async with _through(client, PROXY) as proxy:
        for n in range(MISSES):
            assert await _guess(proxy, n, **{"X-Forwarded-For": "203.0.113.5"}) == 404
        assert await _guess(proxy, 0, **{"X-Forwarded-For": "203.0.113.5"}) == 429
        # What the client wrote itself (left of the address the proxy appended) is not believed.
        assert await _guess(proxy, 0, **{"X-Forwarded-For": "198.51.100.1, 203.0.113.5"}) == 429
        assert await _guess(proxy, 0, **{"X-Forwarded-For": "203.0.113.5, 198.51.100.1"}) == 404
        # Another client behind the same proxy, and the proxy's own requests, are not held.
        assert await _guess(proxy, 0, **{"X-Forwarded-For": "203.0.113.6"}) == 404
        assert await _guess(proxy, 0) == 404
        polled = await proxy.get(f"/feeds/{token}.ics", headers={"X-Forwarded-For": "203.0.113.5"})
        assert polled.status_code == 200
    assert await _guess(client, 0) == 404


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(client: Client) -> None:
    async with _through(client, "192.0.2.50") as peer:
        for n in range(MISSES):
            assert await _guess(peer, n, **{"X-Forwarded-For": f"203.0.113.{n}"}) == 404
        assert await _guess(peer, 0, **{"X-Forwarded-For": "203.0.113.200"}) == 429
        assert await _guess(peer, 0) == 429
    async with _through(client, PROXY) as proxy:  # the clients it named were never counted
        assert await _guess(proxy, 0, **{"X-Forwarded-For": "203.0.113.1"}) == 404


def test_the_client_is_the_right_most_address_not_a_trusted_proxy() -> None:
    address = ClientAddress(["10.0.0.0/24", "2001:db8::/64"])

    def scope(peer: str | None, *forwarded: str) -> Scope:
        headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
        return cast("Scope", {"type": "http", "client": (peer, 1) if peer else None, "headers": headers})

    def client(peer: str | None, *forwarded: str) -> str:
        return address(scope(peer, *forwarded))

    assert client("192.0.2.1", "203.0.113.9") == "192.0.2.1"
    assert client("10.0.0.2") == "10.0.0.2"
    assert client("10.0.0.2", "203.0.113.9") == "203.0.113.9"
    assert client("10.0.0.2", "198.51.100.1, 203.0.113.9:5555, 10.0.0.3") == "203.0.113.9"
    assert client("10.0.0.2", "198.51.100.1", "203.0.113.9, 10.0.0.7") == "203.0.113.9"  # two headers
    assert client("2001:db8::5", "[2001:db8:1::9]:443") == "2001:db8:1::9"
    assert client("10.0.0.2", "10.0.0.4, 10.0.0.3") == "10.0.0.4"  # it began at a proxy
    assert client("10.0.0.2", "") == "10.0.0.2"
    assert client(None) == "unknown"
    assert ClientAddress()(scope("10.0.0.2", "203.0.113.9")) == "10.0.0.2"  # trusting nobody


def test_trusted_proxies_setting_parses_and_reaches_uvicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env({}).trusted_proxies == ()
    parsed = Settings.from_env({"SAMHANDLING_TRUSTED_PROXIES": " 172.30.89.10, 10.1.0.0/16,2001:db8::/64 "})
    assert parsed.trusted_proxies == ("172.30.89.10/32", "10.1.0.0/16", "2001:db8::/64")
    with pytest.raises(ValueError, match=r"SAMHANDLING_TRUSTED_PROXIES.*'proxy'"):
        Settings.from_env({"SAMHANDLING_TRUSTED_PROXIES": "10.0.0.1,proxy"})
    # One place decides: uvicorn trusts exactly these, not its own default (127.0.0.1).
    started: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.update(options))
    monkeypatch.setenv("SAMHANDLING_TRUSTED_PROXIES", "172.30.89.10")
    assert cli.main(["serve"]) == 0
    assert started["forwarded_allow_ips"] == ["172.30.89.10/32"]
    monkeypatch.setenv("SAMHANDLING_TRUSTED_PROXIES", "")
    assert cli.main(["serve"]) == 0
    assert started["forwarded_allow_ips"] == []


def test_compose_trusts_its_reverse_proxy_and_only_it() -> None:
    compose = yaml.safe_load((Path(__file__).parents[2] / "compose.yaml").read_text())
    settings = Settings.from_env({k: str(v) for k, v in compose["services"]["app"]["environment"].items()})
    proxy = ip_address(compose["services"]["proxy"]["networks"]["default"]["ipv4_address"])
    assert settings.trusted_proxies == (f"{proxy}/32",)
    [pool] = compose["networks"]["default"]["ipam"]["config"]
    # The proxy's fixed address lies in the network but outside the range handed out to others.
    assert proxy in ip_network(pool["subnet"]) and proxy not in ip_network(pool["ip_range"])


def test_misses_are_counted_per_address_and_forgotten() -> None:
    now = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)
    clock = [now]
    limiter = MissLimiter(lambda: clock[0], misses=3, window=timedelta(minutes=1), max_clients=2)
    for _ in range(3):
        assert limiter.retry_after("10.0.0.1") is None
        limiter.miss("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == 60
    assert limiter.retry_after("10.0.0.2") is None
    clock[0] = now + timedelta(seconds=45)
    assert limiter.retry_after("10.0.0.1") == 15
    clock[0] = now + timedelta(seconds=60)
    assert limiter.retry_after("10.0.0.1") is None
    for address in ("10.0.0.3", "10.0.0.4", "10.0.0.5"):
        limiter.miss(address)
    assert len(limiter._seen) == 2  # bounded: the least recently seen address is forgotten
