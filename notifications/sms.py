"""SMS to families: the words, how many segments they cost, and the gateways that carry them.

What goes by SMS is content-free (DESIGN.md "Channels: out and back", as Helsenorge, Altinn
and Digipost notify by SMS): that an invitation, an update or a cancellation was sent, with
the answer link, and reminders at the ``logistics`` level at most — time, place and the
service's phone number; never the child welfare service, the child, the measure or anyone
else invited. One segment where possible: GSM-7 holds æ, ø and å, so the texts avoid
characters outside it.

Gateways raise the transport's two typed failures, so that the dispatcher decides retry or
give-up the same way for SMS as for mail.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import tempfile
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

import httpx2

from calendars.zone import wall_time
from notifications.ports import DisclosureLevel, Language, MessageKind
from notifications.transport import PermanentFailure, TemporaryFailure

#: GSM 03.38's basic character set (one septet each) and its extension table (two each).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in text)


def segments(text: str) -> int:
    """How many SMS the text is sent as: 160 GSM-7 septets in one (153 a part when split), or
    70 UCS-2 characters (67 a part) as soon as one character is outside GSM-7."""
    if is_gsm7(text):
        septets = sum(2 if c in GSM7_EXTENDED else 1 for c in text)
        return 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)


_NOTICES: dict[Language, dict[MessageKind, str]] = {
    Language.NB: {
        MessageKind.INVITATION: "Du har fått en møteinnkalling. Se e-post eller svar her: {link}",
        MessageKind.UPDATE: "Et møte du er invitert til, er endret. Se e-post eller svar: {link}",
        MessageKind.CANCELLATION: "Et møte du var invitert til, er avlyst. Se e-posten for mer.",
        MessageKind.REMINDER: "Påminnelse: møte {day} kl. {time}{place}.{phone}",
    },
    Language.NN: {
        MessageKind.INVITATION: "Du har fått ei møteinnkalling. Sjå e-post eller svar her: {link}",
        MessageKind.UPDATE: "Eit møte du er invitert til, er endra. Sjå e-post eller svar: {link}",
        MessageKind.CANCELLATION: "Eit møte du var invitert til, er avlyst. Sjå e-posten for meir.",
        MessageKind.REMINDER: "Påminning: møte {day} kl. {time}{place}.{phone}",
    },
    Language.EN: {
        MessageKind.INVITATION: "You have a meeting invitation. See your e-mail or answer here: {link}",
        MessageKind.UPDATE: "A meeting you are invited to has changed. See e-mail or answer: {link}",
        MessageKind.CANCELLATION: "A meeting you were invited to is cancelled. See your e-mail.",
        MessageKind.REMINDER: "Reminder: meeting {day} at {time}{place}.{phone}",
    },
}
#: The notices to someone told by SMS only: nothing points to an e-mail that never comes.
_NOTICES_SMS_ONLY: dict[Language, dict[MessageKind, str]] = {
    Language.NB: {
        MessageKind.INVITATION: "Du har fått en møteinnkalling. Se den og svar her: {link}",
        MessageKind.UPDATE: "Et møte du er invitert til, er endret. Se endringen og svar: {link}",
        MessageKind.CANCELLATION: "Et møte du var invitert til, er avlyst.",
    },
    Language.NN: {
        MessageKind.INVITATION: "Du har fått ei møteinnkalling. Sjå ho og svar her: {link}",
        MessageKind.UPDATE: "Eit møte du er invitert til, er endra. Sjå endringa og svar: {link}",
        MessageKind.CANCELLATION: "Eit møte du var invitert til, er avlyst.",
    },
    Language.EN: {
        MessageKind.INVITATION: "You have a meeting invitation. See it and answer here: {link}",
        MessageKind.UPDATE: "A meeting you are invited to has changed. See it and answer: {link}",
        MessageKind.CANCELLATION: "A meeting you were invited to is cancelled.",
    },
}
_PLACE = {Language.NB: ", {place}", Language.NN: ", {place}", Language.EN: ", {place}"}
_PHONE = {Language.NB: " Spørsmål: {phone}", Language.NN: " Spørsmål: {phone}", Language.EN: " Questions: {phone}"}


def withheld_in(text: str, words: Sequence[str]) -> list[str]:
    """The withheld words (names) the SMS would show: whole words, case- and width-insensitive;
    the last guard, as for mail."""
    haystack = unicodedata.normalize("NFKC", text).casefold()
    return [w for w in words if w.strip() and re.search(
        rf"(?<!\w){re.escape(unicodedata.normalize('NFKC', w).casefold())}(?!\w)", haystack)]


@dataclass(frozen=True, slots=True)
class SmsText:
    text: str
    level: DisclosureLevel
    segments: int


def sms_text(kind: MessageKind, language: Language, allowed: DisclosureLevel, cap: DisclosureLevel, *,
             answer_url: str | None = None, start: datetime | None = None, place: str | None = None,
             phone: str | None = None, by_email: bool = True) -> SmsText | None:
    """The SMS for this message, or None when nothing may be said by SMS (an alert, or a
    reminder when the level allowed is below ``logistics``). The notices carry no content at
    all (level ``none`` beyond that a message exists); a reminder is at ``logistics`` at most,
    and never above ``cap`` (SAMHANDLING_SMS_LEVEL_CAP). ``by_email``: whether the person is
    told by e-mail too, which a notice then points to."""
    level = min(allowed, cap, DisclosureLevel.LOGISTICS, key=lambda lvl: lvl.rank)
    texts = _NOTICES[language] if by_email else {**_NOTICES[language], **_NOTICES_SMS_ONLY[language]}
    if kind not in texts:
        return None
    if kind is MessageKind.REMINDER:
        if level < DisclosureLevel.LOGISTICS or start is None:
            return None
        local = wall_time(start)
        text = texts[kind].format(day=f"{local:%d.%m.}", time=f"{local:%H:%M}",
                                  place=_PLACE[language].format(place=place) if place else "",
                                  phone=_PHONE[language].format(phone=phone) if phone else "")
    else:
        if kind is not MessageKind.CANCELLATION and not answer_url:
            return None
        level = DisclosureLevel.NONE  # a notice says only that a message was sent
        text = texts[kind].format(link=answer_url or "")
    return SmsText(text, level, segments(text))


@dataclass(frozen=True, slots=True)
class Sms:
    """One SMS to send. ``reference`` is ours (the outbox row's Message-ID, without brackets):
    the same on every retry, so a gateway or a folder never holds two copies."""

    to: str  # E.164
    text: str
    reference: str


class SmsGateway(Protocol):
    async def send(self, sms: Sms) -> str:
        """Hand the SMS to the gateway; returns the gateway's id for it. Raises
        ``TemporaryFailure`` or ``PermanentFailure``."""
        ...


def _file_name(reference: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@-]", "_", reference)[:120] + ".txt"


class FolderSmsGateway:
    """The embedded default: each SMS written to ``<folder>/<reference>.txt`` (a retry replaces
    it), for the demo and for reading what would have been sent."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def send(self, sms: Sms) -> str:
        body = f"To: {sms.to}\nSegments: {segments(sms.text)}\n\n{sms.text}\n"
        try:
            await asyncio.to_thread(self._write, _file_name(sms.reference), body.encode("utf-8"))
        except OSError as exc:
            raise TemporaryFailure(f"sms folder: {type(exc).__name__}", server_level=True) from exc
        return sms.reference

    def _write(self, name: str, data: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=".writing-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temporary, self.folder / name)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


@dataclass(frozen=True, slots=True)
class SveveSettings:
    """Sveve's HTTP API (sveve.no, a Norwegian SMS provider): ``SendMessage`` with the account's
    user and password, the sender name (3–11 letters or digits) and ``f=json``."""

    url: str = "https://sveve.no/SMS/SendMessage"
    user: str = ""
    password: str = field(default="", repr=False)
    sender: str = "Moter"
    timeout: float = 20.0


class SveveGateway:
    """Sends through Sveve's published ``SendMessage`` call: a form POST of ``user``, ``passwd``,
    ``to``, ``msg``, ``from``, ``ref`` (our reference, echoed in Sveve's delivery reports) and
    ``f=json``; the answer is ``{"response": {"msgOkCount": 1, "stdSMSCount": 1, "ids": [...]}}``,
    or carries ``fatalError`` (the request as a whole: login, sender) or ``errors`` (per number)."""

    def __init__(self, settings: SveveSettings) -> None:
        self._settings = settings

    async def send(self, sms: Sms) -> str:
        s = self._settings
        form = {"user": s.user, "passwd": s.password, "to": sms.to, "msg": sms.text, "from": s.sender,
                "ref": sms.reference, "f": "json"}
        try:
            async with httpx2.AsyncClient(timeout=s.timeout) as client:
                answer = await client.post(s.url, data=form)
        except httpx2.HTTPError as exc:
            raise TemporaryFailure(f"sms gateway: {type(exc).__name__}", server_level=True) from exc
        if answer.status_code >= 500 or answer.status_code == 429:
            raise TemporaryFailure(f"sms gateway: HTTP {answer.status_code}", server_level=True)
        try:
            body = answer.json()["response"]
        except (ValueError, KeyError, TypeError) as exc:
            raise TemporaryFailure(f"sms gateway: unreadable answer (HTTP {answer.status_code})",
                                   server_level=True) from exc
        if body.get("fatalError"):
            # The whole request was refused (login, sender): every message would fail alike.
            raise TemporaryFailure("sms gateway: refused the request", server_level=True)
        ids = body.get("ids") or []
        if int(body.get("msgOkCount", 0)) < 1 or not ids:
            # Per number: an invalid or unknown number is this message's verdict (no number in the text).
            raise PermanentFailure("sms gateway: the number was refused")
        return str(ids[0])
