"""Helpers for tests that send through the real dispatcher to aiosmtpd (the ``smtp`` fixture
is in conftest.py; import ``dispatcher`` into a test module to use it as a fixture)."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from smtp_server import SmtpServer

from coordination.context import ServiceContext
from coordination.outbox.dispatcher import build_dispatcher
from notifications.dispatcher import Dispatcher, DispatchSettings
from notifications.email import MailSettings
from notifications.transport import SmtpSecurity, SmtpSettings, SmtpTransport

Client = AsyncTestClient[Litestar]
SENDER = "noreply@samhandling.invalid"


def make_dispatcher(service: ServiceContext, port: int, *, timeout: float = 5, **overrides: Any) -> Dispatcher:
    transport = SmtpTransport(SmtpSettings(host="127.0.0.1", port=port, security=SmtpSecurity.NONE,
                                           timeout=timeout))
    settings = DispatchSettings(mail=MailSettings(sender_address=SENDER, sender_name="Møteinnkalling"),
                                backoff_base=timedelta(seconds=30), max_attempts=5, **overrides)
    built = build_dispatcher(service, transport, dispatch_settings=settings)
    built._rng = random.Random(3)  # repeatable jitter
    return built


@pytest.fixture
def dispatcher(service: ServiceContext, smtp: SmtpServer) -> Dispatcher:
    return make_dispatcher(service, smtp.port)


def to(arrival: Any) -> str:
    return str(arrival.message["To"].addresses[0].addr_spec)


async def meeting(client: Client, people: Any, team: Any, participants: list[int], *,
                  start: str = "2027-01-11T09:00:00+01:00", end: str = "2027-01-11T10:00:00+01:00",
                  **extra: Any) -> dict[str, Any]:
    """A confirmed meeting (unless ``confirm=False``) in the team's case."""
    response = await client.post(f"/cases/{team.case_id}/meetings", headers=people.coordinator.headers, json={
        "start": start, "end": end, "place": "Rådhuset, rom 3", "participant_ids": participants, **extra})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def consent(client: Client, people: Any, team: Any, grantor: int, sector: str, status: str = "granted",
                  level: str | None = "purpose") -> None:
    body: dict[str, Any] = {"grantor_contact_id": grantor, "sector": sector, "status": status, "form": "written"}
    if status == "granted":
        body["level"] = level
    response = await client.post(f"/cases/{team.case_id}/consents", headers=people.coordinator.headers, json=body)
    assert response.status_code == 201, response.text


async def new_feed(client: Client, person: Any, case_id: int, scope: str = "case",
                   contact_id: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"scope": scope}
    if contact_id is not None:
        body["contact_id"] = contact_id
    answer = await client.post(f"/cases/{case_id}/feeds", json=body, headers=person.headers)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created
