"""The dispatcher's chunks and the SMTP sessions it keeps: a consent change that commits between
the gate's decision and the hand-over still stops the mail (DESIGN.md rule 1), and one SMTP
session carries many messages within the relay's limits, replaced when the relay closes it."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

from notif_doubles import NOW, DispatcherFactory, MemoryOutbox, ScriptedGate, prepared
from smtp_server import Mailbox, SmtpServer
from test_notif_dispatch import queue

from notifications.email import MailSettings, build_email
from notifications.messages import render
from notifications.ports import MessageKind, RecipientKind, Suppressed, SuppressionCode
from notifications.transport import SmtpSecurity, SmtpSettings, SmtpTransport


async def test_consent_withdrawn_after_the_decision_but_before_the_send_stops_the_mail(
    smtp: SmtpServer, outbox: MemoryOutbox, gate: ScriptedGate, make_dispatcher: DispatcherFactory
) -> None:
    for outbox_id in ("o1", "o2"):
        queue(outbox, gate, outbox_id)

    def withdraw() -> None:
        # The withdrawal commits while the chunk is being built: its unit's version moves.
        gate.answers["o1"] = Suppressed(SuppressionCode.CONSENT_WITHDRAWN, "consent c-7 withdrawn")
        gate.version += 1

    gate.before_check = withdraw
    await make_dispatcher().drain_once()

    assert [str(a.message["Message-ID"]) for a in smtp.arrivals] == ["<o2.outbox@samhandling.example>"]
    assert outbox.status("o1") == "suppressed"
    assert [asked for asked, _ in gate.asked] == ["o1", "o2", "o1", "o2"]  # both decided again


class SessionMailbox(Mailbox):
    """Notes the SMTP session of every arrival, and can close a session at MAIL FROM with 421
    after ``per_session`` messages, as relays with a per-connection limit do."""

    def __init__(self, per_session: int | None = None) -> None:
        super().__init__()
        self.per_session = per_session
        self.sessions: list[int] = []
        self.counts: dict[int, int] = {}

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          mail_options: list[str]) -> str:
        if self.per_session is not None and self.counts.get(id(session), 0) >= self.per_session:
            return "421 4.7.0 Too many messages in this session, closing"
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.sessions.append(id(session))
        self.counts[id(session)] = self.counts.get(id(session), 0) + 1
        return await super().handle_DATA(server, session, envelope)


def _mails(count: int) -> list[EmailMessage]:
    decision = prepared(method=None)
    text = render(MessageKind.REMINDER, RecipientKind.PARTNER, decision, sender_name="Møter")
    return [build_email(text, settings=MailSettings(sender_address="moter@kommune.example"),
                        recipient=decision.recipient, message_id=f"<m{n}@samhandling.example>", date=NOW)
            for n in range(count)]


def _server(mailbox: SessionMailbox) -> SmtpServer:
    server = SmtpServer()
    server.mailbox = mailbox
    server.up()
    return server


async def test_one_session_carries_messages_up_to_the_limit() -> None:
    mailbox = SessionMailbox()
    server = _server(mailbox)
    try:
        transport = SmtpTransport(SmtpSettings(host="127.0.0.1", port=server.port, security=SmtpSecurity.NONE,
                                               timeout=5, max_messages_per_connection=3))
        for mail in _mails(7):
            await transport.send(mail)
        await transport.close()
    finally:
        server.down()
    assert len(mailbox.arrivals) == 7
    assert [mailbox.sessions.count(s) for s in dict.fromkeys(mailbox.sessions)] == [3, 3, 1]


async def test_a_session_the_relay_closes_with_421_is_replaced_and_nothing_is_lost_or_doubled() -> None:
    mailbox = SessionMailbox(per_session=2)  # the relay's limit is lower than ours
    server = _server(mailbox)
    try:
        transport = SmtpTransport(SmtpSettings(host="127.0.0.1", port=server.port, security=SmtpSecurity.NONE,
                                               timeout=5))
        for mail in _mails(5):
            await transport.send(mail)
        await transport.close()
    finally:
        server.down()
    ids = [str(a.message["Message-ID"]) for a in mailbox.arrivals]
    assert ids == [f"<m{n}@samhandling.example>" for n in range(5)]
    assert [mailbox.sessions.count(s) for s in dict.fromkeys(mailbox.sessions)] == [2, 2, 1]
