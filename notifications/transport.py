"""Handing a built message to the world: an SMTP relay, or a local mail folder.

Transports raise only the two typed failures below, so that the dispatcher decides
retry or give-up from the kind of failure and never from a library's exception class.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import aiosmtplib

from notifications.metrics import SMTP_LATENCY


class TransportError(Exception):
    """A failed hand-over. ``code`` is the SMTP reply code when there was one.
    ``server_level`` means the failure was not about this message (the relay is down,
    refuses us, or our login fails), so the next message would fail the same way."""

    def __init__(self, detail: str, *, code: int | None = None, server_level: bool = False):
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.server_level = server_level


class TemporaryFailure(TransportError):
    """Worth retrying: connection refused or lost, time-out, a 4xx reply (greylisting)."""


class PermanentFailure(TransportError):
    """Retrying gives the same answer: a 5xx reply about this message or recipient."""


class Transport(Protocol):
    async def send(self, message: EmailMessage) -> None:
        """Deliver one message to the next hop, or raise a :class:`TransportError`."""
        ...


class SmtpSecurity(enum.StrEnum):
    STARTTLS = "starttls"
    TLS = "tls"  # implicit TLS, usually port 465
    NONE = "none"  # only for a relay on localhost or a test server


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int = 587
    security: SmtpSecurity = SmtpSecurity.STARTTLS
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    validate_certs: bool = True
    #: relays limit the messages of one session; after this many the session is closed and a new one opened
    max_messages_per_connection: int = 100
    #: a session unused this long is not reused: relays time idle sessions out (RFC 5321: 5 min)
    idle_seconds: float = 30.0


_ADDRESS_LIKE = re.compile(r"<?[^\s<>@]+@[^\s<>]+>?")


def _scrub(text: str) -> str:
    """Reply texts often quote the recipient address; errors are stored and logged."""
    return _ADDRESS_LIKE.sub("<address>", " ".join(text.split()))[:300]


def _by_code(code: int, text: str, *, server_level: bool) -> TransportError:
    detail = f"SMTP {code}: {_scrub(text)}"
    if 400 <= code < 500:
        return TemporaryFailure(detail, code=code, server_level=server_level)
    return PermanentFailure(detail, code=code, server_level=server_level)


class SmtpTransport:
    """SMTP sessions kept open and reused for many messages, one per message in flight: a relay
    counts connections, and setting one up (TCP, EHLO, STARTTLS, AUTH) costs more than a message.

    A session carries at most ``max_messages_per_connection`` messages (relays limit it) and is
    not reused after ``idle_seconds`` without use (relays time idle sessions out). A session the
    relay has closed, or that answers ``MAIL FROM`` with 421 (closing), is replaced and the
    message tried once more on a fresh one: nothing of it went across before ``MAIL FROM``
    was accepted. Any other failure closes the session, so a broken one never carries the next.
    """

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings
        self._idle: list[_Session] = []

    async def send(self, message: EmailMessage) -> None:
        started = time.perf_counter()
        session = self._take()
        try:
            await self._send_on(session, message)
        except BaseException:
            await session.close()
            raise
        SMTP_LATENCY.observe(time.perf_counter() - started)
        session.sent += 1
        session.last_used = time.monotonic()
        if session.sent >= self._settings.max_messages_per_connection:
            await session.close()
        else:
            self._idle.append(session)

    async def close(self) -> None:
        """Say QUIT on every idle session (at shutdown)."""
        idle, self._idle = self._idle, []
        for session in idle:
            await session.close()

    def _take(self) -> _Session:
        now = time.monotonic()
        loop = asyncio.get_running_loop()
        while self._idle:
            session = self._idle.pop()
            if session.loop is not loop:
                continue  # opened under an event loop that has ended: its socket went with it
            if session.client.is_connected and now - session.last_used < self._settings.idle_seconds:
                return session
            session.client.close()  # gone quiet too long: dropped without a goodbye
        return _Session(self._client(), loop)

    def _client(self) -> aiosmtplib.SMTP:
        s = self._settings
        return aiosmtplib.SMTP(
            hostname=s.host, port=s.port, username=s.username, password=s.password,
            use_tls=s.security is SmtpSecurity.TLS, start_tls=s.security is SmtpSecurity.STARTTLS,
            timeout=s.timeout, validate_certs=s.validate_certs,
        )

    async def _send_on(self, session: _Session, message: EmailMessage) -> None:
        reused = session.sent > 0
        try:
            await session.deliver(message)
        except aiosmtplib.SMTPSenderRefused as exc:
            if not (reused and exc.code == 421):
                raise _typed(exc) from exc
        except Exception as exc:
            raise _typed(exc) from exc
        else:
            return
        # The relay closes a session it has had enough of with 421 at MAIL FROM: a fresh one.
        await session.close()
        session.client = self._client()
        session.sent = 0
        try:
            await session.deliver(message)
        except Exception as exc:
            raise _typed(exc) from exc


@dataclass(slots=True)
class _Session:
    client: aiosmtplib.SMTP
    loop: asyncio.AbstractEventLoop
    sent: int = 0
    last_used: float = 0.0

    async def deliver(self, message: EmailMessage) -> None:
        if not self.client.is_connected:
            await self.client.connect()
        await self.client.send_message(message)

    async def close(self) -> None:
        client = self.client
        if not client.is_connected:
            return
        try:
            await client.quit()
        except Exception:  # a session that fails to say goodbye is dropped all the same
            client.close()


def _typed(exc: Exception) -> TransportError:
    """A library's failure as one of the two typed failures the dispatcher understands."""
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        # One recipient per message, so "all refused" is this message's verdict;
        # retry only if every refusal was temporary.
        codes = [refused.code for refused in exc.recipients]
        text = "; ".join(refused.message for refused in exc.recipients)
        return _by_code(max(codes) if codes else 550, text, server_level=False)
    if isinstance(exc, aiosmtplib.SMTPDataError | aiosmtplib.SMTPRecipientRefused):
        return _by_code(exc.code, exc.message, server_level=False)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        # Greeting, EHLO, AUTH or MAIL FROM refused: the relay's or our set-up's
        # problem, not this message's. Retried (and given up after max attempts),
        # so that a misconfiguration does not kill every queued message at once.
        return TemporaryFailure(f"SMTP {exc.code}: {_scrub(exc.message)}", code=exc.code, server_level=True)
    if isinstance(exc, aiosmtplib.SMTPException):
        return TemporaryFailure(f"SMTP: {type(exc).__name__}", server_level=True)
    if isinstance(exc, OSError | TimeoutError):
        return TemporaryFailure(f"connection: {type(exc).__name__}", server_level=True)
    raise exc


def eml_file_name(message_id: str) -> str:
    """A file name that is a pure function of the Message-ID: readable, safe on any file
    system, and with a hash so that ids differing only in unsafe characters differ."""
    readable = re.sub(r"[^A-Za-z0-9._@-]", "_", message_id.strip().strip("<>"))[:100]
    digest = hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:12]
    return f"{readable}-{digest}.eml"


class FolderTransport:
    """Writes each message to ``<folder>/<name>.eml``: the embedded default when no SMTP
    host is configured. Writing the same Message-ID again replaces the file (written to
    a temporary name and renamed), so a retried row never leaves two copies."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def send(self, message: EmailMessage) -> None:
        message_id = message.get("Message-ID")
        if not message_id:
            raise PermanentFailure("message has no Message-ID")
        data = message.as_bytes(policy=policy.SMTP)
        try:
            await asyncio.to_thread(self._write, eml_file_name(str(message_id)), data)
        except OSError as exc:
            raise TemporaryFailure(f"mail folder: {type(exc).__name__}", server_level=True) from exc

    def _write(self, name: str, data: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=".writing-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.folder / name)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def select_transport(smtp: SmtpSettings | None, folder: Path) -> Transport:
    """SMTP when a host is configured, else the local mail folder."""
    if smtp is not None and smtp.host:
        return SmtpTransport(smtp)
    return FolderTransport(folder)
