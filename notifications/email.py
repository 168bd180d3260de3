"""iMIP e-mail (RFC 6047) built as an ``EmailMessage`` with CRLF line ends.

An invitation is ``multipart/alternative``: text, HTML, and the iTIP object as
``text/calendar; method=REQUEST`` (or ``CANCEL``), the last and richest alternative so
that calendar clients show their accept/decline buttons while the text and HTML carry
the answer link for those that show none. Reminders and alerts are text and HTML only.

Nothing from input reaches a header unchecked: names and subjects pass through
:func:`notifications.messages.one_line`, addresses and the Message-ID are validated, and
a message over :data:`MAX_MESSAGE_BYTES` is refused rather than sent.
"""

from __future__ import annotations

import base64
import enum
import functools
import hashlib
import html
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email import policy, quoprimime
from email.headerregistry import Address, BaseHeader
from email.message import EmailMessage, MIMEPart
from email.utils import format_datetime

from notifications.messages import RenderedMessage, one_line
from notifications.ports import Recipient

#: Upper bound for one serialised message. The text fields are capped in ``messages``
#: (a few KiB even when every field is full); the rest is room for the iTIP part. A
#: message above it is refused, never truncated mid-calendar.
MAX_MESSAGE_BYTES = 64 * 1024

#: The neutral sender display name when none is configured.
DEFAULT_SENDER_NAME = "Samhandling"


class ItipMethod(enum.StrEnum):
    REQUEST = "REQUEST"
    CANCEL = "CANCEL"


class InvalidMessage(ValueError):
    """The message cannot be built safely; retrying would give the same result."""


class InvalidAddress(InvalidMessage):
    """An e-mail address that cannot be used: report it, do not retry."""


@dataclass(frozen=True, slots=True)
class MailSettings:
    """The sending identity. ``sender_address`` is also the ORGANIZER of every iTIP
    object, so replies from calendar clients come back to it."""

    sender_address: str
    sender_name: str = DEFAULT_SENDER_NAME
    max_bytes: int = MAX_MESSAGE_BYTES


@dataclass(frozen=True, slots=True)
class CalendarPart:
    """The iTIP object to attach and what it must say. ``uid``/``sequence``, when given,
    are checked against the object, so that an update never goes out with a stale
    SEQUENCE that clients would ignore."""

    ics: bytes
    method: ItipMethod
    uid: str | None = None
    sequence: int | None = None


#: The line length of ``policy.SMTP``, the one ``set_content`` encodes bodies to.
_MAX_LINE_LENGTH: int = policy.SMTP.max_line_length or 78

_ATOM_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")
_MESSAGE_ID = re.compile(r"<[!-;=?-~]{1,200}@[A-Za-z0-9.-]{1,200}>")


def checked_address(value: str) -> Address:
    """Parse an address for a header and an SMTP envelope, refusing anything that is not
    a plain ``local@domain`` (no display part, no whitespace, no CR/LF)."""
    candidate = value.strip()
    if "@" not in candidate:
        raise InvalidAddress("address has no domain")
    local, _, domain = candidate.rpartition("@")
    try:
        ascii_domain = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError as exc:
        raise InvalidAddress("address domain is not a valid name") from exc
    address = f"{local}@{ascii_domain}"
    if (
        len(address) > 254
        or not _ATOM_ADDRESS.fullmatch(address)
        or "." not in ascii_domain
        or ascii_domain.startswith((".", "-"))
        or ascii_domain.endswith((".", "-"))
        or ".." in address
        or local.startswith(".")
        or local.endswith(".")
    ):
        raise InvalidAddress("address is not a plain local@domain")
    return Address(addr_spec=address)


@functools.lru_cache(maxsize=16)
def _checked_sender(value: str) -> Address:
    """The configured sender, checked once: it is the same in every message."""
    return checked_address(value)


def checked_message_id(value: str) -> str:
    """A Message-ID is an ``<id@domain>`` with no spaces, so that it is a safe header
    and a stable key (the folder transport names files by it)."""
    if not _MESSAGE_ID.fullmatch(value):
        raise InvalidMessage("Message-ID is not of the form <id@domain>")
    return value


def stable_message_id(key: str, domain: str) -> str:
    """A Message-ID derived from an outbox row's idempotency key, for callers that want
    the same id for the same row without storing a random one first."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return checked_message_id(f"<{digest}@{domain}>")


def _organizer_address(value: object) -> str:
    text = str(value)
    if text.lower().startswith("mailto:"):
        text = text[len("mailto:") :]
    return text.strip().lower()


_FOLD = re.compile(r"\r?\n[ \t]")
_NAME_AND_PARAMETERS = re.compile(r'((?:[^":]|"[^"]*")*):')


def check_itip(part: CalendarPart, organizer: str) -> None:
    """Refuse an iTIP object that clients would misread: a METHOD that differs from the
    MIME method, no VEVENT, an ORGANIZER that is not the sending address, or a UID or
    SEQUENCE other than the meeting's. Read from the content lines (RFC 5545 3.1) rather than
    by building the whole calendar: the check runs for every invitation sent."""
    try:
        lines = _content_lines(part.ics)
    except ValueError as exc:
        raise InvalidMessage("calendar part does not parse") from exc
    if not lines or lines[0] != ("BEGIN", "VCALENDAR"):
        raise InvalidMessage("calendar part does not parse")
    path: list[str] = []
    method = ""
    events: list[dict[str, str]] = []
    for name, value in lines:
        if name == "BEGIN":
            path.append(value.upper())
            if path[-2:] == ["VCALENDAR", "VEVENT"]:
                events.append({})
        elif name == "END":
            if not path or path.pop() != value.upper():
                raise InvalidMessage("calendar part does not parse")
        elif path == ["VCALENDAR"] and name == "METHOD":
            method = value.upper()
        elif path == ["VCALENDAR", "VEVENT"]:
            events[-1].setdefault(name, value)
    if path:
        raise InvalidMessage("calendar part does not parse")
    if method != part.method.value:
        raise InvalidMessage("calendar METHOD differs from the message's method")
    if not events:
        raise InvalidMessage("calendar part has no VEVENT")
    for event in events:
        if _organizer_address(event.get("ORGANIZER", "")) != organizer.lower():
            raise InvalidMessage("ORGANIZER is not the sending address")
        if part.uid is not None and _unescape(event.get("UID", "")) != part.uid:
            raise InvalidMessage("calendar UID is not the meeting's")
        try:
            sequence = int(event.get("SEQUENCE", "0"))
        except ValueError as exc:
            raise InvalidMessage("calendar part does not parse") from exc
        if part.sequence is not None and sequence != part.sequence:
            raise InvalidMessage("calendar SEQUENCE is not the meeting's")


def _content_lines(ics: bytes) -> list[tuple[str, str]]:
    """(NAME, value) of every unfolded content line; parameters dropped, a ``:`` inside a quoted
    parameter value (``CN="a:b"``) not taken for the value's start."""
    text = _FOLD.sub("", ics.decode("utf-8"))
    lines = []
    for line in text.splitlines():
        if not line:
            continue
        head = _NAME_AND_PARAMETERS.match(line)
        if head is None:
            raise ValueError("a content line without a value")
        lines.append((head.group(1).split(";", 1)[0].strip().upper(), line[head.end():]))
    return lines


def _unescape(text: str) -> str:
    """A TEXT value as written, without RFC 5545's escapes."""
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), text)


def build_email(
    rendered: RenderedMessage,
    *,
    settings: MailSettings,
    recipient: Recipient,
    message_id: str,
    date: datetime,
    calendar: CalendarPart | None = None,
    auto_generated: bool = False,
) -> EmailMessage:
    """Build the message. ``auto_generated`` marks reminders and alerts with
    ``Auto-Submitted: auto-generated`` (RFC 3834) so that out-of-office replies stay
    away; invitations go without it, since they stand for a coordinator's decision and
    expect a human answer."""
    if date.tzinfo is None:
        raise InvalidMessage("the Date header needs an aware time")
    sender = _checked_sender(settings.sender_address)
    to = checked_address(recipient.email)
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = _sender_header(settings.sender_name, sender.addr_spec)
    msg["To"] = Address(display_name=one_line(recipient.display_name or "", 100), addr_spec=to.addr_spec)
    msg["Subject"] = one_line(rendered.subject, 200)
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = checked_message_id(message_id)
    if auto_generated:
        msg["Auto-Submitted"] = _constant_header("Auto-Submitted", "auto-generated")
        msg["X-Auto-Response-Suppress"] = _constant_header("X-Auto-Response-Suppress", "OOF, AutoReply")
    msg["MIME-Version"] = _constant_header("MIME-Version", "1.0")
    msg["Content-Type"] = _constant_header("Content-Type", "multipart/alternative")
    msg.attach(_text_part(rendered.text, "plain"))
    msg.attach(_text_part(rendered.html, "html"))
    if calendar is not None:
        if len(calendar.ics) > settings.max_bytes:
            raise InvalidMessage("calendar part is larger than the message limit")
        check_itip(calendar, sender.addr_spec)
        msg.attach(_calendar_part(calendar))
    msg["Content-Language"] = _constant_header("Content-Language", recipient.language.value)
    if _size_bound(rendered, calendar, msg) > settings.max_bytes and len(msg.as_bytes()) > settings.max_bytes:
        raise InvalidMessage("message is larger than the limit")
    return msg


def _text_part(text: str, subtype: str) -> EmailMessage:
    """A text alternative as ``set_content(text, subtype=..., charset="utf-8",
    cte="quoted-printable")`` writes it — line ends normalised, the same encoder — with its two
    headers parsed once for all messages."""
    part = EmailMessage(policy=policy.SMTP)
    part["Content-Type"] = _constant_header("Content-Type", f'text/{subtype}; charset="utf-8"')
    part["Content-Transfer-Encoding"] = _constant_header("Content-Transfer-Encoding", "quoted-printable")
    body = b"\n".join(text.encode("utf-8").splitlines()) + b"\n"
    part.set_payload(quoprimime.body_encode(body.decode("latin-1"), _MAX_LINE_LENGTH))
    return part


def _calendar_part(calendar: CalendarPart) -> EmailMessage:
    """The iTIP object in base64 (lines of 76, as ``set_content`` of bytes writes them): the
    object's CRLF line ends go across untouched."""
    part = EmailMessage(policy=policy.SMTP)
    part["Content-Type"] = _constant_header(
        "Content-Type", f"text/calendar; charset=utf-8; method={calendar.method.value}")
    part["Content-Transfer-Encoding"] = _constant_header("Content-Transfer-Encoding", "base64")
    part.set_payload(base64.encodebytes(calendar.ics).decode("ascii"))
    return part


@functools.lru_cache(maxsize=64)
def _constant_header(name: str, value: str) -> BaseHeader:
    """A header every message of its kind carries alike, parsed once: the header registry's parse is
    most of the cost of setting a header, and a parsed header is not changed by writing it out."""
    header: BaseHeader = policy.SMTP.header_factory(name, value)
    return header


@functools.lru_cache(maxsize=16)
def _sender_header(name: str, address: str) -> BaseHeader:
    """The From header, the same in every message of a configuration: built once, as before from an
    ``Address``."""
    header: BaseHeader = policy.SMTP.header_factory(
        "From", Address(display_name=one_line(name, 100), addr_spec=address))
    return header


def _size_bound(rendered: RenderedMessage, calendar: CalendarPart | None, msg: EmailMessage) -> int:
    """More than the message can take on the wire, without writing it out: quoted-printable at
    most triples a byte (plus soft breaks), base64 adds a third (plus line ends), an encoded
    header at most quadruples; a kilobyte per part for boundaries and part headers. Only when this
    passes the limit is the message written out to measure it exactly."""
    body = len(rendered.text.encode("utf-8")) + len(rendered.html.encode("utf-8"))
    headers = sum(len(name) + len(str(value)) for name, value in msg.items())
    ics = len(calendar.ics) if calendar is not None else 0
    return body * 7 // 2 + ics * 3 // 2 + headers * 4 + 4096


def _normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _unfold_ics(text: str) -> str:
    return text.replace("\r\n ", "").replace("\r\n\t", "").replace("\n ", "").replace("\\,", ",")


def readable_texts(msg: EmailMessage) -> list[str]:
    """What a reader of the mail can see: subject, sender name, and every body part
    (HTML unescaped, the calendar unfolded). The To header is left out: it is the
    reader's own name and address."""
    texts = [str(msg.get("Subject", ""))]
    sender = msg.get("From")
    if sender is not None:
        texts.extend(addr.display_name for addr in sender.addresses)
    for part in msg.walk():
        if part.is_multipart() or not isinstance(part, EmailMessage | MIMEPart):
            continue
        content = part.get_content()
        if isinstance(content, bytes):
            content = content.decode("utf-8", "replace")
        if part.get_content_subtype() == "html":
            content = html.unescape(content)
        elif part.get_content_subtype() == "calendar":
            content = _unfold_ics(content)
        texts.append(str(content))
    return texts


def find_terms(msg: EmailMessage, *, substrings: Iterable[str] = (), words: Iterable[str] = ()) -> list[str]:
    """The terms the mail would show. ``substrings`` match anywhere (service names in
    any inflection); ``words`` match whole words (names), case- and width-insensitive."""
    haystack = "\n".join(_normalise(text) for text in readable_texts(msg))
    found = [term for term in substrings if term.strip() and _normalise(term) in haystack]
    for term in words:
        needle = _normalise(term)
        # The substring test first: only a name the text holds at all is searched for as a word.
        if needle and needle in haystack and re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", haystack):
            found.append(term)
    return found
