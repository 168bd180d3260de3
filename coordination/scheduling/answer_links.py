"""Answer links: one stable accept/decline link per invitation."""

from __future__ import annotations

import base64
import contextlib
import functools
import hmac
import logging
import os
import secrets
import tempfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination.context import ServiceContext
from coordination.models import (
    AnswerToken,
    Contact,
    Meeting,
)
from coordination.security import hash_token
from coordination.settings import Settings

log = logging.getLogger(__name__)


def answer_link_key(settings: Settings) -> bytes:
    """The server secret answer links are derived from: SAMHANDLING_LINK_SECRET; for a SQLite
    database without it, a secret generated once into a file beside the database (so that a copy
    of the database alone, a backup say, holds no working link)."""
    if settings.link_secret:
        return settings.link_secret.encode("utf-8")
    database = make_url(settings.database_url).database if settings.is_sqlite else None
    if database and database != ":memory:" and not database.startswith("file:"):
        return _key_file(Path(database + ".link-secret").resolve())
    return _process_key()


@functools.cache
def _process_key() -> bytes:
    """Without a configured secret and a database file to keep one beside (PostgreSQL, say), a
    key of this process: links then stay the same only while it runs, which is worth a warning."""
    log.warning("SAMHANDLING_LINK_SECRET is not set: an answer link sent again by another instance "
                "or after a restart is a new one, and the earlier copy's link stops working")
    return secrets.token_urlsafe(32).encode("ascii")


@functools.cache
def _key_file(path: Path) -> bytes:
    """Read the secret, or write a new one (readable by the service's user only). Written under a
    temporary name and linked into place, so that two processes starting at once agree on one."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".link-secret-")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(32) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):  # another process was first: use theirs
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise RuntimeError(f"the answer link secret in {path.name} is too short")
    return secret.encode("utf-8")


def _answer_token(key: bytes, row: AnswerToken) -> str:
    message = f"answer-link\0{row.meeting_id}\0{row.contact_id}\0{row.salt}".encode()
    return base64.urlsafe_b64encode(hmac.digest(key, message, "sha256")).rstrip(b"=").decode("ascii")


#: A chunk's answer-link rows by (meeting, contact), read at once; ``None``: read, and there is none.
KnownLinks = dict[tuple[int, int], AnswerToken | None]


async def known_answer_links(session: AsyncSession, pairs: Iterable[tuple[int, int]]) -> KnownLinks:
    """The answer-link rows of these (meeting, contact) pairs in one statement, so that a chunk of
    invitations makes its links without a select each (:func:`answer_link`'s ``known``)."""
    wanted = set(pairs)
    if not wanted:
        return {}
    known: KnownLinks = dict.fromkeys(wanted)
    rows = await session.exec(select(AnswerToken).where(
        col(AnswerToken.meeting_id).in_(sorted({meeting for meeting, _ in wanted})),
        col(AnswerToken.contact_id).in_(sorted({contact for _, contact in wanted}))))
    for row in rows.all():
        if (row.meeting_id, row.contact_id) in wanted:
            known[row.meeting_id, row.contact_id] = row
    return known


async def answer_link(session: AsyncSession, ctx: ServiceContext, meeting: Meeting, contact: Contact,
                      now: datetime, *, known: KnownLinks | None = None) -> str:
    """The invitation's accept/decline link: one for its life, so that the link in every copy —
    a retry, a resend after a crash, an update — works, including in the copy that arrived first.

    The token is derived from the server secret and a random salt kept in its row; the row holds
    only the salt and the token's hash. A new salt (a new link) only for a new invitation, a
    revoked one, or when the secret has changed, since an old token cannot be derived again then.
    ``known`` (from :func:`known_answer_links`) stands for the select when it holds the pair, and
    is given the row made here, so a second message to the same pair gets the same link."""
    key = answer_link_key(ctx.settings)
    pair = (meeting.id or 0, contact.id or 0)
    if known is not None and pair in known:
        row = known[pair]
    else:
        row = (await session.exec(select(AnswerToken).where(
            AnswerToken.meeting_id == meeting.id, AnswerToken.contact_id == contact.id))).first()
    if row is not None and row.revoked_at is None and row.salt:
        token = _answer_token(key, row)
        if hmac.compare_digest(hash_token(token), row.token_hash):
            return f"{ctx.settings.public_base_url}/answer/{token}"
    if row is None:
        row = AnswerToken(meeting_id=pair[0], contact_id=pair[1], token_hash="", created_at=now)
    row.salt = secrets.token_urlsafe(16)
    token = _answer_token(key, row)
    row.token_hash = hash_token(token)
    row.created_at = now
    row.revoked_at = None
    session.add(row)
    if known is not None:
        known[pair] = row
    return f"{ctx.settings.public_base_url}/answer/{token}"
