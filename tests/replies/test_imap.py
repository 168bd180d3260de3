"""The ORGANIZER mailbox over IMAP, against a real server: Dovecot from Debian, started by the
test with its own configuration (imap_server.py). Replies are delivered by IMAP APPEND; the
service reads them with imap-tools, records each once and marks it handled with a keyword,
leaving it unread. Two instances reading the one mailbox apply a reply once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from imap_server import PASSWORD, USERNAME, Dovecot
from reply_samples import reply
from reply_scene import MOTHER, ORGANIZER, Sent, answer_of
from sqlmodel import col, select

from coordination.channel_settings import ImapSecurity, ImapSettings
from coordination.context import ServiceContext
from coordination.models import AuditEntry
from coordination.replies.inbox import HANDLED_KEYWORD, ImapInbox, select_inbox
from coordination.scheduling.enums import AnswerChannel, ParticipantAnswer


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    server = Dovecot().start()
    try:
        yield server
    finally:
        server.stop()


def imap_settings(server: Dovecot) -> ImapSettings:
    return ImapSettings(host="127.0.0.1", port=server.port, security=ImapSecurity.NONE, username=USERNAME,
                        password=PASSWORD, timeout=5)


async def test_replies_in_the_imap_mailbox_are_read_once_by_two_instances(
        sent: Sent, service: ServiceContext, settings: Any, dovecot: Dovecot) -> None:
    dovecot.append(reply("outlook", uid=sent.uid, attendee=MOTHER, organizer=ORGANIZER,
                         message_id=f"imap-{sent.uid}@example.org", sequence=sent.sequence))
    other = ServiceContext.create(replace(settings, imap=imap_settings(dovecot)), service.clock)
    try:
        assert isinstance(select_inbox(other), ImapInbox)
        first, second = ImapInbox(imap_settings(dovecot)), ImapInbox(imap_settings(dovecot))
        await asyncio.gather(first.read_once(service), second.read_once(other))
        assert await first.read_once(service) == 0  # marked handled: not read again
    finally:
        await other.engine.dispose()
    answered = await answer_of(service, sent, sent.team.mother)
    assert (answered.partstat, answered.answered_via) == (ParticipantAnswer.ACCEPTED, AnswerChannel.CALENDAR)
    async with service.transaction() as session:
        applied = (await session.exec(select(AuditEntry).where(col(AuditEntry.action) == "reply.applied"))).all()
    assert len(applied) == 1
    flags = dovecot.keywords()[-1]
    assert HANDLED_KEYWORD.encode() in flags and b"\\Seen" not in flags
