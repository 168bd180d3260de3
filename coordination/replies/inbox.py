"""Where the ORGANIZER mailbox is read from: an IMAP folder (``SAMHANDLING_IMAP_*``), or in
the embedded default a local folder of ``.eml`` files (``SAMHANDLING_INBOX_FOLDER``).

Each message is handed to ``service.handle_message``, whose database claim makes it count
once however many instances read the mailbox. Only then is it put aside: the file is moved
into ``handled/``; the IMAP message gets a keyword, so that the mailbox itself is left as a
person would find it (read state untouched). A message whose handling failed (the database
was down, say) stays for the next round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from imap_tools import AND, BaseMailBox, MailBox, MailBoxStartTls, MailBoxUnencrypted

from coordination.channel_settings import ImapSecurity, ImapSettings
from coordination.context import ServiceContext
from coordination.replies.service import handle_message

log = logging.getLogger(__name__)

#: The IMAP keyword a handled message gets (RFC 3501 keywords are atoms; ``$`` marks a client's own).
HANDLED_KEYWORD = "$SamhandlingHandled"
#: A file younger than this may still be being written: it waits for the next round.
SETTLE_SECONDS = 1.0


class Inbox(Protocol):
    async def read_once(self, ctx: ServiceContext) -> int:
        """Handle what is waiting; returns how many messages were put aside."""
        ...


class FolderInbox:
    """``.eml`` files dropped in a folder (the demo copies an invitation there as a reply)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.handled = folder / "handled"

    async def read_once(self, ctx: ServiceContext) -> int:
        done = 0
        for path in await asyncio.to_thread(self._waiting):
            try:
                raw = await asyncio.to_thread(path.read_bytes)
            except FileNotFoundError:  # another instance put it aside first
                continue
            await handle_message(ctx, raw)
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(self._put_aside, path)
            done += 1
        return done

    def _waiting(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        settled = time.time() - SETTLE_SECONDS
        return sorted(p for p in self.folder.glob("*.eml") if p.is_file() and p.stat().st_mtime <= settled)

    def _put_aside(self, path: Path) -> None:
        self.handled.mkdir(parents=True, exist_ok=True)
        os.replace(path, self.handled / path.name)


@dataclass(frozen=True, slots=True)
class _Fetched:
    uid: str
    raw: bytes


class ImapInbox:
    """One IMAP folder, read by polling; a connection per round (imap-tools, in a thread)."""

    def __init__(self, settings: ImapSettings) -> None:
        self._settings = settings

    async def read_once(self, ctx: ServiceContext) -> int:
        mailbox = await asyncio.to_thread(self._login)
        try:
            waiting = await asyncio.to_thread(self._fetch, mailbox)
            handled: list[str] = []
            for message in waiting:
                await handle_message(ctx, message.raw)
                handled.append(message.uid)
            if handled:
                await asyncio.to_thread(mailbox.flag, handled, HANDLED_KEYWORD, True)
            return len(handled)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(mailbox.logout)

    def _login(self) -> BaseMailBox:
        s = self._settings
        context = ssl.create_default_context()
        mailbox: BaseMailBox
        if s.security is ImapSecurity.TLS:
            mailbox = MailBox(s.host, s.port, timeout=s.timeout, ssl_context=context)
        elif s.security is ImapSecurity.STARTTLS:
            mailbox = MailBoxStartTls(s.host, s.port, timeout=s.timeout, ssl_context=context)
        else:
            mailbox = MailBoxUnencrypted(s.host, s.port, timeout=s.timeout)
        return mailbox.login(s.username, s.password, initial_folder=s.folder)

    @staticmethod
    def _fetch(mailbox: BaseMailBox) -> Sequence[_Fetched]:
        """The messages not yet handled, as the bytes the server holds (``BODY.PEEK[]`` leaves
        them unread)."""
        fetched = []
        for uid in mailbox.uids(AND(no_keyword=HANDLED_KEYWORD)):
            status, data = mailbox.client.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((item[1] for item in data if isinstance(item, tuple)), None)
            if status == "OK" and isinstance(raw, bytes):
                fetched.append(_Fetched(uid, raw))
        return fetched


def select_inbox(ctx: ServiceContext) -> Inbox:
    """IMAP when a host is configured, else the local inbox folder."""
    imap = ctx.settings.imap
    if imap is not None:
        return ImapInbox(imap)
    return FolderInbox(ctx.settings.inbox_folder)


async def read_forever(ctx: ServiceContext, inbox: Inbox) -> None:
    """The background round: read, then wait; a failure (server or database down) waits too."""
    while True:
        try:
            await inbox.read_once(ctx)
        except Exception as error:
            log.warning("reading the inbox failed: %s", type(error).__name__)
        await asyncio.sleep(ctx.settings.inbox_interval_seconds)
