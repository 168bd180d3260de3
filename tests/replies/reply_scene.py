"""The scene the reply tests share: a confirmed meeting whose invitations went out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mail_fixtures import Client, consent

from coordination.context import ServiceContext
from coordination.models import MeetingParticipant
from coordination.outbox.dispatcher import build_dispatcher
from notifications.transport import FolderTransport

ORGANIZER = "noreply@samhandling.invalid"
MOTHER = "mona@example.org"
PARTSTAT = {"outlook": "ACCEPTED", "gmail": "DECLINED", "apple": "TENTATIVE", "thunderbird": "ACCEPTED"}


@dataclass
class Sent:
    """A confirmed meeting whose invitations went out (to the mail folder)."""

    team: Any
    meeting_id: int
    uid: str
    sequence: int


async def send_due(service: ServiceContext, mail_folder: Path) -> None:
    await build_dispatcher(service, FolderTransport(mail_folder)).drain_once()


@pytest.fixture
async def sent(client: Client, people: Any, team: Any, service: ServiceContext, settings: Any) -> Sent:
    """Mother, father, the child, the teacher (school consent from both carers) and NAV (no
    consent: never told) invited to a meeting a week ahead; the invitations sent."""
    headers = people.coordinator.headers
    for email, contact in (("per@example.org", team.father), ("sara@example.org", team.child),
                           ("nils@nav.example.org", team.nav)):
        patched = await client.patch(f"/cases/{team.case_id}/contacts/{contact}", headers=headers,
                                     json={"email": email})
        assert patched.status_code == 200
    for carer in (team.mother, team.father):
        await consent(client, people, team, carer, "school")
    created = await client.post(f"/cases/{team.case_id}/meetings", headers=headers, json={
        "start": "2027-01-11T10:00:00+01:00", "end": "2027-01-11T11:00:00+01:00", "place": "Rådhuset",
        "participant_ids": [team.mother, team.father, team.child, team.teacher, team.nav]})
    assert created.status_code == 201, created.text
    await send_due(service, settings.mail_folder)
    meeting = created.json()
    return Sent(team, meeting["id"], meeting["uid"], meeting["sequence"])


async def answer_of(service: ServiceContext, sent: Sent, contact_id: int) -> MeetingParticipant:
    async with service.transaction() as session:
        found = await session.get(MeetingParticipant, (sent.meeting_id, contact_id))
        assert found is not None
        return found


