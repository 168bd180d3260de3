"""Turning an invitation the service sent into the answer a calendar would send back, to try
the reply path without a mail client (``samhandling reply``; README "Answers that come back").
The answer is an iMIP REPLY as RFC 6047 describes it, from the invitation's addressee."""

from __future__ import annotations

import uuid
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path

import icalendar

from coordination.replies.service import PARTSTATS


def reply_to_invitation(invitation: bytes, partstat: str, now: datetime) -> bytes:
    """The REPLY to ``invitation`` (an ``.eml`` from the mail folder) with ``partstat``
    (ACCEPTED, DECLINED or TENTATIVE), from its addressee to its ORGANIZER."""
    if partstat.upper() not in PARTSTATS:
        raise ValueError(f"the answer must be one of {', '.join(PARTSTATS).lower()}, not {partstat!r}")
    message = message_from_bytes(invitation, policy=policy.default)
    assert isinstance(message, EmailMessage)
    part = next((p for p in message.walk() if p.get_content_type() == "text/calendar"), None)
    payload = part.get_payload(decode=True) if part is not None else None
    if not isinstance(payload, bytes):
        raise ValueError("this mail has no calendar part: choose an invitation or an update")
    event = icalendar.Calendar.from_ical(payload).walk("VEVENT")[0]
    attendee = parseaddr(str(message["To"]))[1]
    organizer = str(event.get("ORGANIZER", "")).removeprefix("mailto:").removeprefix("MAILTO:")
    answer = icalendar.Event()
    for name in ("UID", "SEQUENCE", "DTSTART", "DTEND", "ORGANIZER"):
        if name in event:
            answer.add(name, event.decoded(name) if name in ("DTSTART", "DTEND") else event[name])
    answer.add("DTSTAMP", now)
    answer.add("ATTENDEE", icalendar.vCalAddress(f"mailto:{attendee}"), parameters={"PARTSTAT": partstat.upper()})
    calendar = icalendar.Calendar()
    calendar.add("PRODID", "-//Samhandling//reply to try//EN")
    calendar.add("VERSION", "2.0")
    calendar.add("METHOD", "REPLY")
    calendar.add_component(answer)
    reply = EmailMessage()
    reply["From"] = attendee
    reply["To"] = organizer
    reply["Subject"] = f"{partstat.capitalize()}: {message['Subject']}"
    reply["Date"] = format_datetime(now)
    reply["Message-ID"] = f"<{uuid.uuid4().hex}@reply.example>"
    reply.set_content(f"{attendee} answered {partstat.lower()}.\n")
    reply.add_alternative(calendar.to_ical(), maintype="text", subtype="calendar", params={"method": "REPLY"})
    return reply.as_bytes(policy=policy.SMTP)


def write_reply(invitation: Path, partstat: str, inbox: Path, now: datetime) -> Path:
    """Write the answer into the inbox folder, under a temporary name first (a half-written file
    is never read)."""
    data = reply_to_invitation(invitation.read_bytes(), partstat, now)
    inbox.mkdir(parents=True, exist_ok=True)
    target = inbox / f"reply-{invitation.stem}-{partstat.lower()}.eml"
    temporary = inbox / f".{target.name}.tmp"
    temporary.write_bytes(data)
    temporary.replace(target)
    return target
