"""Sign-in, the session cookie and CSRF protection for the server-rendered pages.

The user signs in with the municipality's identity provider (``web.oidc``) or, where none is
configured (the demo), with their API token, which the cookie never holds: signing in starts a
server-side session (a ``WebSession`` row) and the cookie holds only its random id, stored
in the database as a hash, so neither a stolen cookie nor a database copy yields a
credential for the API. Every page request looks the session up (any number of instances
share it through the database) and accepts it only while it has not been ended, its user is
active, the last page view was less than ``SAMHANDLING_SESSION_IDLE_MINUTES`` ago and
sign-in less than ``SAMHANDLING_SESSION_MAX_HOURS`` ago, all by the service clock. To spare
a write per page view, the last view is recorded only when the stored one is more than a
minute old, so the idle limit may end a session up to a minute early, never late.

A session ends at sign-out, when its user is deactivated (``users.deactivate_user``), and
when the same browser signs in again (a fresh id each time: an id planted before sign-in is
never adopted). A replayed cookie of an ended or expired session only leads to the sign-in
page. A session belongs to its user, not to the API token typed in: nothing in the service
replaces a user's token except the demo's start, and a token someone saw is revoked by
deactivating the user, which ends the sessions too. Rows are deleted by the background job a
day after they ended (``delete_old_sessions``).

CSRF: a random per-browser token, kept in its own cookie and repeated in a hidden field of
every form (double submit); a POST is refused unless the two match and any ``Origin``
header names this service. With an https base address both cookies carry the ``__Host-``
prefix, so a neighbouring subdomain cannot plant them. The JSON API is untouched: it
authenticates by the ``Authorization`` header, which a cross-site form can never send, and
ignores these cookies.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from litestar import Request
from litestar.datastructures import Cookie, State
from litestar.di import NamedDependency
from sqlmodel import col, delete, or_, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination.context import ServiceContext
from coordination.models import User, WebSession
from coordination.security import hash_token, new_token
from coordination.settings import Settings

CSRF_FIELD = "_csrf"
_SESSION = "samhandling_okt"
_CSRF = "samhandling_csrf"


#: A page view records itself only when the stored one is older than this.
LAST_SEEN_STEP = timedelta(minutes=1)
#: How long a session's row is kept after it ended, before the background job deletes it.
KEEP_ENDED = timedelta(days=1)


class SignInRequired(Exception):
    """No valid session: the page answers with a redirect to the sign-in page.

    ``expired`` when the browser did present a session that is no longer valid, so that the
    sign-in page can say why the user must sign in again.
    """

    def __init__(self, expired: bool = False) -> None:
        super().__init__("expired session" if expired else "no session")
        self.expired = expired


class CsrfRejected(Exception):
    """A form came without the right CSRF token, or from another site."""


def secure_cookies(settings: Settings) -> bool:
    """``Secure`` only when the service is reached over https, so that plain-http localhost works."""
    return settings.public_base_url.lower().startswith("https://")


def _name(base: str, settings: Settings) -> str:
    return f"__Host-{base}" if secure_cookies(settings) else base


def session_cookie_name(settings: Settings) -> str:
    return _name(_SESSION, settings)


def csrf_cookie_name(settings: Settings) -> str:
    return _name(_CSRF, settings)


def _cookie(settings: Settings, key: str, value: str, *, same_site: str, delete: bool = False) -> Cookie:
    return Cookie(
        key=key,
        value=value,
        path="/",
        httponly=True,
        secure=secure_cookies(settings),
        samesite=same_site,  # type: ignore[arg-type]
        max_age=0 if delete else None,
        expires=0 if delete else None,
    )


def session_cookies(settings: Settings, session_id: str) -> list[Cookie]:
    """Signed in: the session, and a fresh CSRF token (never one from before sign-in).

    ``Lax`` so that a link from an alert e-mail opens the page signed in; every state change
    is a POST, which ``Lax`` never sends cross-site, and the CSRF check stands behind it.
    """
    return [
        _cookie(settings, session_cookie_name(settings), session_id, same_site="lax"),
        _cookie(settings, csrf_cookie_name(settings), new_csrf_token(), same_site="strict"),
    ]


def expired_session_cookie(settings: Settings) -> Cookie:
    """Drops a session cookie that no longer opens anything (the CSRF cookie stays for the form)."""
    return _cookie(settings, session_cookie_name(settings), "", same_site="lax", delete=True)


def signed_out_cookies(settings: Settings) -> list[Cookie]:
    return [
        _cookie(settings, session_cookie_name(settings), "", same_site="lax", delete=True),
        _cookie(settings, csrf_cookie_name(settings), "", same_site="strict", delete=True),
    ]


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_cookie(settings: Settings, token: str) -> Cookie:
    return _cookie(settings, csrf_cookie_name(settings), token, same_site="strict")


def csrf_token_of(request: Request[Any, Any, State], settings: Settings) -> str | None:
    value = request.cookies.get(csrf_cookie_name(settings))
    return value if value and 20 <= len(value) <= 100 else None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_csrf(request: Request[Any, Any, State], settings: Settings, submitted: str | None) -> None:
    """Raise ``CsrfRejected`` unless the form's token matches the cookie and the form came from here."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        allowed = {_origin(settings.public_base_url), _origin(str(request.base_url))}
        if origin.lower().rstrip("/") not in allowed:
            raise CsrfRejected("cross-site form")
    expected = csrf_token_of(request, settings)
    if not expected or not submitted or not hmac.compare_digest(expected, submitted):
        raise CsrfRejected("missing or wrong CSRF token")


def session_id_of(request: Request[Any, Any, State], settings: Settings) -> str | None:
    """The session id the browser presents, if any."""
    value = request.cookies.get(session_cookie_name(settings))
    return value if value and len(value) <= 200 else None


def _limits(settings: Settings) -> tuple[timedelta, timedelta]:
    return timedelta(minutes=settings.session_idle_minutes), timedelta(hours=settings.session_max_hours)


def _lasts_until(row: WebSession, settings: Settings) -> datetime:
    """When the session ends at the latest: its idle or its absolute limit, whichever is first."""
    idle, longest = _limits(settings)
    return min(row.last_seen_at + idle, row.created_at + longest)


async def start_session(ctx: ServiceContext, user: User, previous: str | None, id_token: str | None = None) -> str:
    """A new session for ``user``; ends the browser's ``previous`` one. Returns the id for the cookie.
    ``id_token``: the identity provider's, kept for signing out there too (``web.oidc``)."""
    assert user.id is not None
    session_id = new_token()
    now = ctx.now()
    async with ctx.transaction() as session:
        if previous:
            await _end(session, previous, now)
        session.add(WebSession(token_hash=hash_token(session_id), user_id=user.id, created_at=now,
                               last_seen_at=now, id_token=id_token))
    return session_id


async def end_session(ctx: ServiceContext, session_id: str | None) -> None:
    """Sign-out: the id stops working at once, whoever still holds a copy of the cookie."""
    if session_id:
        async with ctx.transaction() as session:
            await _end(session, session_id, ctx.now())


async def _end(session: AsyncSession, session_id: str, now: datetime) -> None:
    await session.exec(update(WebSession).where(
        col(WebSession.token_hash) == hash_token(session_id), col(WebSession.ended_at).is_(None),
    ).values(ended_at=now))


async def resume_session(ctx: ServiceContext, session_id: str) -> User | None:
    """The user of a valid session (recording this page view), or None when it is not valid."""
    now = ctx.now()
    async with ctx.transaction() as session:
        found = (await session.exec(
            select(WebSession, User).join(User, col(User.id) == WebSession.user_id)
            .where(col(WebSession.token_hash) == hash_token(session_id))
        )).first()
        if found is None:
            return None
        row, user = found
        if row.ended_at is not None or not user.active or now >= _lasts_until(row, ctx.settings):
            return None
        if now - row.last_seen_at > LAST_SEEN_STEP:
            row.last_seen_at = now
            session.add(row)
        return user


async def delete_old_sessions(session: AsyncSession, settings: Settings, now: datetime) -> int:
    """Deletes the rows of sessions that ended (or expired) more than ``KEEP_ENDED`` ago."""
    idle, longest = _limits(settings)
    cutoff = now - KEEP_ENDED
    result = await session.exec(delete(WebSession).where(or_(
        col(WebSession.ended_at) < cutoff,
        col(WebSession.last_seen_at) < cutoff - idle,
        col(WebSession.created_at) < cutoff - longest,
    )))
    return int(result.rowcount or 0)


async def provide_web_user(request: Request[Any, Any, State]) -> User:
    """The signed-in user of a page; without one the page redirects to the sign-in form."""
    ctx: ServiceContext = request.app.state.service
    session_id = session_id_of(request, ctx.settings)
    if session_id is None:
        raise SignInRequired()
    user = await resume_session(ctx, session_id)
    if user is None:
        raise SignInRequired(expired=True)
    return user


#: A page handler's parameter that Litestar fills with the signed-in user.
Viewer = NamedDependency[User]


def safe_next(path: str | None) -> str:
    """Only a local path may follow sign-in (never another site)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path
