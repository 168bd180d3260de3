"""The relay misbehaving, as the notifications issue specifies: a 421 (at the greeting or for a
recipient) and a time-out are temporary — retried with backoff, the rest of the batch spared
the wait when the relay itself is at fault — and each message still arrives exactly once, with
its Message-ID, when the relay is back. (Refused connections, 451 and 550 are covered in
tests/coordination/test_dispatch.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from mail_fixtures import Client, make_dispatcher, meeting
from smtp_server import SmtpServer
from sqlmodel import select

from coordination.context import ServiceContext
from coordination.models import OutboxMessage
from notifications.dispatcher import Outcome

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def misbehaving(port: int, handler: Handler) -> AsyncIterator[list[int]]:
    """A TCP server on the relay's port that answers with ``handler``; yields the count of
    connections it took."""
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", port)
    try:
        yield connections
    finally:
        server.close()
        await server.wait_closed()


async def refuse_greeting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"421 4.3.2 Service not available, closing transmission channel\r\n")
    await writer.drain()


async def say_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # until the client gives up and closes


async def _rows(service: ServiceContext) -> list[OutboxMessage]:
    async with service.transaction() as session:
        return list((await session.exec(select(OutboxMessage).order_by(OutboxMessage.id))).all())


async def _four_invitations(client: Client, people: Any, team: Any) -> None:
    for contact, email in ((team.father, "per@example.org"), (team.child, "sara@example.org")):
        await client.patch(f"/cases/{team.case_id}/contacts/{contact}", headers=people.coordinator.headers,
                           json={"email": email})
    added = await client.post(f"/cases/{team.case_id}/contacts", headers=people.coordinator.headers, json={
        "name": "Kari Koordinator", "role": "caseworker", "email": "kari@bv.example.org"})
    await meeting(client, people, team, [team.mother, team.father, team.child, added.json()["id"]])


async def _recovers_once(service: ServiceContext, smtp: SmtpServer, dispatcher: Any) -> None:
    """The relay is back: after the backoff every invitation arrives once, with its own Message-ID."""
    smtp.up()
    for _ in range(6):
        service.clock.advance(timedelta(minutes=10))
        await dispatcher.drain_once()
    invitations = [r for r in await _rows(service) if r.kind == "invitation"]
    assert {r.status for r in invitations} == {"sent"}
    arrived = [str(a.message["Message-ID"]) for a in smtp.arrivals]
    assert sorted(arrived) == sorted(r.message_id for r in invitations)


async def test_421_at_the_greeting_is_retried_once_for_the_batch(
    client: Client, people: Any, team: Any, service: ServiceContext, smtp: SmtpServer
) -> None:
    smtp.down()
    await _four_invitations(client, people, team)
    dispatcher = make_dispatcher(service, smtp.port)
    async with misbehaving(smtp.port, refuse_greeting) as connections:
        report = await dispatcher.drain_once()
    assert report.count(Outcome.RETRY) == 4
    assert len(connections) == 1  # the relay said it is closing: nobody else asked it again
    rows = [r for r in await _rows(service) if r.kind == "invitation"]
    assert all(r.status == "pending" and r.attempts == 1 and "421" in r.last_error for r in rows[:1])
    assert all(r.next_attempt_at > service.now() for r in rows)
    await _recovers_once(service, smtp, dispatcher)


async def test_421_for_a_recipient_is_retried(
    client: Client, people: Any, team: Any, service: ServiceContext, smtp: SmtpServer
) -> None:
    await _four_invitations(client, people, team)
    dispatcher = make_dispatcher(service, smtp.port)
    smtp.mailbox.rcpt_reply = "421 4.7.0 Too many connections, try again later"
    report = await dispatcher.drain_once()
    assert report.count(Outcome.RETRY) == 4 and smtp.arrivals == []
    assert {r.status for r in await _rows(service) if r.kind == "invitation"} == {"pending"}
    smtp.mailbox.rcpt_reply = None
    await _recovers_once(service, smtp, dispatcher)


async def test_a_relay_that_never_answers_times_out_and_is_retried(
    client: Client, people: Any, team: Any, service: ServiceContext, smtp: SmtpServer
) -> None:
    smtp.down()
    await _four_invitations(client, people, team)
    dispatcher = make_dispatcher(service, smtp.port, timeout=0.5)
    async with misbehaving(smtp.port, say_nothing) as connections:
        report = await dispatcher.drain_once()
    assert report.count(Outcome.RETRY) == 4
    assert len(connections) == 1  # one time-out is enough to know the relay is stuck
    rows = [r for r in await _rows(service) if r.kind == "invitation"]
    assert all(r.status == "pending" and r.attempts == 1 for r in rows)
    assert any("Timeout" in r.last_error or "timed out" in r.last_error.lower() for r in rows), \
        [r.last_error for r in rows]
    await _recovers_once(service, smtp, dispatcher)
