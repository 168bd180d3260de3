"""Sign-in, the session cookie and CSRF protection for the server-rendered pages.

The session cookie holds the user's own API token. Every request checks it exactly as the
API checks a bearer token (``access.user_for_token``: a lookup by its hash), so a page can
never outlive a revoked token, and any number of instances can serve the pages without a
shared secret or a session store. Signing out deletes the cookie; the token stays the
user's credential, as a password stays valid after a browser signs out.

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
from typing import Any
from urllib.parse import urlsplit

from litestar import Request
from litestar.datastructures import Cookie, State
from litestar.di import NamedDependency

from coordination.access import user_for_token
from coordination.context import ServiceContext
from coordination.models import User
from coordination.settings import Settings

CSRF_FIELD = "_csrf"
_SESSION = "samhandling_okt"
_CSRF = "samhandling_csrf"


class SignInRequired(Exception):
    """No valid session: the page answers with a redirect to the sign-in page."""


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


def session_cookies(settings: Settings, token: str) -> list[Cookie]:
    """Signed in: the session, and a fresh CSRF token (never one from before sign-in).

    ``Lax`` so that a link from an alert e-mail opens the page signed in; every state change
    is a POST, which ``Lax`` never sends cross-site, and the CSRF check stands behind it.
    """
    return [
        _cookie(settings, session_cookie_name(settings), token, same_site="lax"),
        _cookie(settings, csrf_cookie_name(settings), new_csrf_token(), same_site="strict"),
    ]


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


async def user_of_session(request: Request[Any, Any, State], ctx: ServiceContext) -> User | None:
    token = request.cookies.get(session_cookie_name(ctx.settings))
    if not token or len(token) > 200:
        return None
    async with ctx.sessions() as session:
        return await user_for_token(session, token)


async def provide_web_user(request: Request[Any, Any, State]) -> User:
    """The signed-in user of a page; without one the page redirects to the sign-in form."""
    ctx: ServiceContext = request.app.state.service
    user = await user_of_session(request, ctx)
    if user is None:
        raise SignInRequired()
    return user


#: A page handler's parameter that Litestar fills with the signed-in user.
Viewer = NamedDependency[User]


def safe_next(path: str | None) -> str:
    """Only a local path may follow sign-in (never another site)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path
