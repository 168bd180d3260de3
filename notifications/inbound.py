"""Reading what comes back to the ORGANIZER mailbox: calendar answers (iTIP ``REPLY`` and
``COUNTER``, RFC 5546, carried by iMIP, RFC 6047), delivery status notifications (RFC 3464
bounces) and automatic replies. Pure: bytes in, plain data out; what to do with it is
``coordination.replies``' business.

A message is read in this order, since one message may look like several things: a calendar
part makes it an answer (Gmail marks its answers ``Auto-Submitted: auto-generated``); a
``multipart/report`` of type ``delivery-status`` makes it a bounce (bounces say
``Auto-Submitted: auto-replied`` too); then the marks of automatic replies; anything else is
no business of ours.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from email.utils import getaddresses

import icalendar

from calendars.zone import OSLO

#: A Message-ID longer than this is kept as its hash (the column's size).
MESSAGE_KEY_LENGTH = 200


class InboundKind(enum.StrEnum):
    """What a message in the ORGANIZER mailbox is."""

    REPLY = "reply"  # iTIP REPLY: accepted, declined, tentative ...
    COUNTER = "counter"  # iTIP COUNTER: another time proposed
    BOUNCE = "bounce"  # RFC 3464 delivery status notification
    AUTO_REPLY = "auto_reply"  # out of office and the like
    OTHER = "other"  # a person writing, a newsletter: not for the service
    UNREADABLE = "unreadable"  # a calendar part or a report that cannot be parsed


@dataclass(frozen=True, slots=True)
class CalendarAnswer:
    """One attendee's answer as the calendar sent it. ``attendee`` is the casefolded address;
    ``sequence`` is 0 when the client left SEQUENCE out (RFC 5545's default)."""

    uid: str
    attendee: str
    partstat: str
    sequence: int
    proposed_start: datetime | None = None  # COUNTER only (aware)
    proposed_end: datetime | None = None


@dataclass(frozen=True, slots=True)
class Bounce:
    """A delivery status notification: which of our messages (its Message-ID) failed, and the
    status code (such as ``5.1.1``). ``failed`` is False for a report of delay or delivery."""

    original_message_id: str | None
    failed: bool
    status: str


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message, read. ``key`` is its Message-ID (or a hash of the bytes when it has none):
    what makes "this message was handled" unique. ``auth_failed`` is set when the receiving
    server's ``Authentication-Results`` say DMARC or SPF failed."""

    key: str
    kind: InboundKind
    sender: str  # the From address, casefolded; "" when there is none
    auth_failed: bool = False
    answer: CalendarAnswer | None = None
    bounce: Bounce | None = None


_AUTH_FAILED = re.compile(r"\b(?:dmarc|spf)\s*=\s*fail\b", re.IGNORECASE)
_AUTO_SUBJECTS = ("automatic reply", "auto reply", "autoreply", "autosvar", "automatisk svar", "fraværsmelding",
                  "out of office", "abwesenheitsnotiz")
_MAILTO = re.compile(r"^mailto:", re.IGNORECASE)


def message_key(message_id: str | None, raw: bytes) -> str:
    """The Message-ID without its brackets, or a hash when it is missing or too long."""
    found = (message_id or "").strip().strip("<>").strip()
    if found and len(found) <= MESSAGE_KEY_LENGTH:
        return found
    return "sha256:" + hashlib.sha256(found.encode() if found else raw).hexdigest()


def bare_message_id(value: str | None) -> str | None:
    """``<abc@host>`` → ``abc@host``; the outbox keeps ids with brackets, compare bare."""
    found = (value or "").strip()
    match = re.search(r"<([^<>]+)>", found)
    return (match.group(1) if match else found).strip() or None


def parse_inbound(raw: bytes) -> Inbound:
    """Read one message as it came from the mailbox."""
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    key = message_key(_header(message, "Message-ID"), raw)
    sender = _sender(message)
    auth_failed = any(_AUTH_FAILED.search(str(v)) for v in message.get_all("Authentication-Results") or ())
    calendar = _calendar_part(message)
    if calendar is not None:
        try:
            kind, answer = _answer(calendar)
        except (ValueError, KeyError, TypeError, IndexError):
            return Inbound(key, InboundKind.UNREADABLE, sender, auth_failed)
        if kind is not None:
            return Inbound(key, kind, sender, auth_failed, answer=answer)
    if message.get_content_type() == "multipart/report" and \
            str(message.get_param("report-type", "")).lower() == "delivery-status":
        bounce = _bounce(message)
        kind = InboundKind.BOUNCE if bounce is not None else InboundKind.UNREADABLE
        return Inbound(key, kind, sender, auth_failed, bounce=bounce)
    if _automatic(message):
        return Inbound(key, InboundKind.AUTO_REPLY, sender, auth_failed)
    return Inbound(key, InboundKind.OTHER, sender, auth_failed)


def _header(message: Message, name: str) -> str | None:
    value = message.get(name)
    return None if value is None else str(value)


def _sender(message: Message) -> str:
    found = getaddresses([_header(message, "From") or ""])
    return found[0][1].strip().casefold() if found and found[0][1] else ""


def _calendar_part(message: EmailMessage) -> bytes | None:
    """The iTIP object: the ``text/calendar`` part that says its method, else any calendar
    part (Gmail and Thunderbird add the same object as an ``invite.ics`` attachment too)."""
    found: list[tuple[int, bytes]] = []
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type not in ("text/calendar", "application/ics"):
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes) and payload:
            rank = 0 if content_type == "text/calendar" and part.get_param("method") else 1
            found.append((rank, payload))
    return min(found, key=lambda item: item[0])[1] if found else None


def _answer(data: bytes) -> tuple[InboundKind | None, CalendarAnswer | None]:
    calendar = icalendar.Calendar.from_ical(data)
    method = str(calendar.get("METHOD", "")).upper()
    kind = {"REPLY": InboundKind.REPLY, "COUNTER": InboundKind.COUNTER}.get(method)
    if kind is None:
        return None, None  # a REQUEST forwarded to us, say: not an answer
    events = calendar.walk("VEVENT")
    if not events:
        raise ValueError("no VEVENT")
    event = events[0]
    attendee = event.get("ATTENDEE")
    if isinstance(attendee, list):  # a COUNTER may repeat every attendee; the first is the sender's
        attendee = attendee[0]
    if attendee is None:
        raise ValueError("no ATTENDEE")
    partstat = str(attendee.params.get("PARTSTAT", "NEEDS-ACTION")).upper()
    start = end = None
    if kind is InboundKind.COUNTER:
        start, end = _aware(event.decoded("DTSTART")), _aware(event.decoded("DTEND"))
    return kind, CalendarAnswer(
        uid=str(event.get("UID", "")).strip(),
        attendee=_MAILTO.sub("", str(attendee)).strip().casefold(),
        partstat=partstat,
        sequence=int(event.get("SEQUENCE", 0)),
        proposed_start=start,
        proposed_end=end,
    )


def _aware(value: object) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError("a proposed time must be a date-time")
    return value if value.tzinfo is not None else value.replace(tzinfo=OSLO)


def _bounce(message: EmailMessage) -> Bounce | None:
    status_part = next((p for p in message.walk() if p.get_content_type() == "message/delivery-status"), None)
    if status_part is None:
        return None
    blocks = status_part.get_payload()
    recipients = [b for b in blocks[1:] if isinstance(b, Message)] if isinstance(blocks, list) else []
    actions = [str(b.get("Action", "")).strip().lower() for b in recipients]
    statuses = [str(b.get("Status", "")).strip() for b in recipients]
    failed = any(a == "failed" for a in actions) or any(s.startswith("5") for s in statuses)
    return Bounce(original_message_id=_original_id(message), failed=failed,
                  status=next((s for s in statuses if s), ""))


def _original_id(message: EmailMessage) -> str | None:
    """The Message-ID of the message that bounced: from the returned message or its headers,
    else from ``In-Reply-To`` (Exchange's NDRs carry it there too)."""
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type == "message/rfc822":
            inner = part.get_payload()
            returned = inner[0] if isinstance(inner, list) and inner else None
            if isinstance(returned, Message) and returned.get("Message-ID"):
                return bare_message_id(str(returned.get("Message-ID")))
        elif content_type == "text/rfc822-headers":
            headers = HeaderParser().parsestr(str(part.get_content()))
            if headers.get("Message-ID"):
                return bare_message_id(str(headers.get("Message-ID")))
    return bare_message_id(_header(message, "In-Reply-To"))


def _automatic(message: Message) -> bool:
    """RFC 3834's Auto-Submitted, and the marks Exchange, Apple and others put on out-of-office
    answers instead of (or beside) it."""
    submitted = (_header(message, "Auto-Submitted") or "no").strip().lower()
    if submitted != "no":
        return True
    if any(message.get(name) for name in ("X-Autoreply", "X-Autorespond", "X-MS-Exchange-Inbox-Rules-Loop")):
        return True
    if (_header(message, "Precedence") or "").strip().lower() == "auto_reply":
        return True
    if (_header(message, "X-Apple-Action") or "").strip().upper() == "VACATION":
        return True
    subject = (_header(message, "Subject") or "").strip().casefold()
    return subject.startswith(_AUTO_SUBJECTS)
