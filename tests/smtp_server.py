"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, able to go down, come back on the
same port, and answer RCPT or DATA with a chosen reply (451 greylisting, 550, ...)."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Arrival:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    message: EmailMessage


class Mailbox:
    """The aiosmtpd handler. ``rcpt_reply``/``data_reply`` override the answer to RCPT
    or DATA (e.g. ``"451 4.7.1 Greylisted"``); None accepts."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self.rcpt_reply: str | None = None
        self.data_reply: str | None = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self.rcpt_reply is not None:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply is not None:
            return self.data_reply
        raw = bytes(envelope.original_content)
        message = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(message, EmailMessage)
        self.arrivals.append(Arrival(envelope.mail_from, tuple(envelope.rcpt_tos), raw, message))
        return "250 OK"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class SmtpServer:
    """aiosmtpd on 127.0.0.1 at a fixed free port, so that it can go down and come
    back where the transport expects it."""

    def __init__(self) -> None:
        self.mailbox = Mailbox()
        self.port = free_port()
        self._controller: Controller | None = None

    def up(self) -> None:
        if self._controller is None:
            self._controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
            self._controller.start()

    def down(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def arrivals(self) -> list[Arrival]:
        return self.mailbox.arrivals
