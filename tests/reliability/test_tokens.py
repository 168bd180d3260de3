"""Capability tokens (feed addresses, answer links, API tokens): unknown is 404, revoked is 410,
only a hash is stored and looked up, and guessing is slowed down per client address."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import mail_fixtures
from mail_fixtures import Client, meeting, to
from smtp_server import SmtpServer
from sqlalchemy import text

from coordination.context import ServiceContext
from coordination.ratelimit import MISSES, MissLimiter
from notifications.dispatcher import Dispatcher

dispatcher = mail_fixtures.dispatcher


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


async def test_guessing_is_slowed_down_per_client(
    client: Client, people: Any, team: Any, service: ServiceContext
) -> None:
    headers = people.coordinator.headers
    token = (await client.post(f"/cases/{team.case_id}/feeds", headers=headers, json={"scope": "case"})).json()["token"]
    for _ in range(50):  # polling a real feed is never held back
        assert (await client.get(f"/feeds/{token}.ics")).status_code == 200
    for n in range(MISSES):
        assert (await client.get(f"/feeds/guess{n:040d}.ics")).status_code == 404
    for path in (f"/feeds/{token}.ics", "/answer/" + "B" * 43, f"/feeds/guess{'9' * 39}.ics"):
        held = await client.get(path)
        assert held.status_code == 429, path
        assert 1 <= int(held.headers["Retry-After"]) <= 60
    # The API itself is not affected, and after a minute the client may look again.
    assert (await client.get(f"/cases/{team.case_id}", headers=headers)).status_code == 200
    service.clock.advance(timedelta(seconds=61))
    assert (await client.get(f"/feeds/{token}.ics")).status_code == 200


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
