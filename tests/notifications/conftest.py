"""Fixtures for the notifications tests (the real SMTP server is the root conftest's): the outbox and gate
doubles, a settable clock and a dispatcher wired to all of them."""

from __future__ import annotations

import random
from typing import Any

import pytest
from notif_doubles import NOW, SENDER, Clock, DispatcherFactory, MemoryOutbox, ScriptedGate, SmtpServer

from notifications.dispatcher import Dispatcher, DispatchSettings
from notifications.email import MailSettings
from notifications.transport import SmtpSecurity, SmtpSettings, SmtpTransport, Transport


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def outbox() -> MemoryOutbox:
    return MemoryOutbox()


@pytest.fixture
def gate() -> ScriptedGate:
    return ScriptedGate()


@pytest.fixture
def smtp_transport(smtp: SmtpServer) -> SmtpTransport:
    return SmtpTransport(
        SmtpSettings(host="127.0.0.1", port=smtp.port, security=SmtpSecurity.NONE, timeout=5)
    )


@pytest.fixture
def make_dispatcher(
    smtp_transport: SmtpTransport, outbox: MemoryOutbox, gate: ScriptedGate, clock: Clock
) -> DispatcherFactory:
    """A dispatcher on the real SMTP server; keyword arguments override settings."""

    def build(*, transport: Transport | None = None, **overrides: Any) -> Dispatcher:
        settings = DispatchSettings(mail=MailSettings(sender_address=SENDER), **overrides)
        return Dispatcher(
            outbox,
            gate,
            transport or smtp_transport,
            clock,
            settings,
            rng=random.Random(7),
        )

    return build
