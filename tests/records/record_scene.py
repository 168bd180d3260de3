"""The demo case (``samhandling serve --demo``) as the scene of the record, closing and retention
tests: seeded by the demo's own code on the test's database, its invitations sent through the
real dispatcher and consent gate (to the mail folder), then driven through the API."""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email import policy
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from coordination.context import ServiceContext
from coordination.outbox.dispatcher import build_dispatcher

Client = AsyncTestClient[Litestar]
ANSWER_LINK = re.compile(r"http://testserver/answer/([A-Za-z0-9_-]+)")


@dataclass
class Demo:
    case_id: int
    coordinator: dict[str, str]
    leader: dict[str, str]
    mail: Path

    async def contact(self, client: Client, name: str) -> int:
        listed = await client.get(f"/cases/{self.case_id}/contacts", headers=self.coordinator)
        return int(next(c["id"] for c in listed.json() if c["name"] == name))

    def answer_links(self) -> set[str]:
        """The answer links in the text of every mail sent so far."""
        links = set()
        for path in self.mail.rglob("*.eml"):
            body = email.message_from_bytes(path.read_bytes(), policy=policy.default).get_body(("plain",))
            if body is not None:
                links.update(ANSWER_LINK.findall(str(body.get_content())))  # type: ignore[attr-defined]
        return links


async def send_due(service: ServiceContext) -> Any:
    """What the dispatcher sends now, through the consent gate, to the mail folder."""
    return await build_dispatcher(service).drain_once()
