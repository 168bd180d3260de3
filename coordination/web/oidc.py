"""Signing in and out with the municipality's identity provider (DESIGN.md "Signing in").

``GET /logg-inn/start`` keeps what the answer must match in an ``OidcLogin`` row (``state``,
``nonce``, the PKCE verifier and the page to return to), gives the browser a random id for it
in a short-lived HttpOnly cookie, and sends it to the provider. ``GET /logg-inn/callback`` takes
the row (deleting it: an answer is taken once), checks that the answer's ``state`` is the one
this browser was given, redeems the code, verifies the ID token (``oidc_client``), finds the
user (``access.oidc.match_user``) and starts a server-side session as the token sign-in does.

``POST /logg-ut`` ends the session here and, for a session that began at the provider, sends
the browser on to the provider's ``end_session_endpoint`` with ``id_token_hint`` and
``post_logout_redirect_uri`` (back to ``/logget-ut``). It goes on by a page that moves at once
(``meta refresh``, with a link), not by a redirect: a form's redirect to another site is
refused by the pages' ``form-action 'self'`` in Chromium.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from datetime import timedelta
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie, State
from litestar.response import Redirect, Template
from sqlmodel import col, delete, select, update

from coordination.access.oidc import Identity, Refusal, SignInRefused, match_user
from coordination.api.deps import Ctx
from coordination.context import ServiceContext
from coordination.errors import not_found
from coordination.models import OidcLogin, WebSession
from coordination.security import hash_token, new_token
from coordination.web.oidc_client import (
    OidcClient,
    ProviderUnavailable,
    SignInFailed,
    client_for,
)
from coordination.web.pages import read_form, render
from coordination.web.session import (
    end_session,
    safe_next,
    secure_cookies,
    session_cookies,
    session_id_of,
    signed_out_cookies,
    start_session,
)

log = logging.getLogger("samhandling.oidc")

#: How long the browser has to come back from the provider.
PENDING_FOR = timedelta(minutes=10)
_PENDING = "samhandling_innlogging"
LONGEST_NEXT = 1000

REFUSALS = {
    Refusal.UNKNOWN: (
        "Du har ingen bruker i Samhandling",
        "Du er logget inn hos kommunen, men ingen bruker i Samhandling hører til deg. Be den som "
        "administrerer Samhandling i enheten din om å opprette en bruker med e-postadressen din.",
    ),
    Refusal.EMAIL_NOT_VERIFIED: (
        "E-postadressen din er ikke bekreftet",
        "Innloggingstjenesten bekrefter ikke at e-postadressen er din, så Samhandling kan ikke finne "
        "brukeren din med den. Be den som administrerer Samhandling i enheten din om hjelp.",
    ),
    Refusal.AMBIGUOUS: (
        "Flere brukere har denne e-postadressen",
        "Samhandling kan ikke vite hvilken av dem du er. Be den som administrerer Samhandling i "
        "enheten din om å rette det.",
    ),
    Refusal.DEACTIVATED: (
        "Brukeren din er deaktivert",
        "Du kan ikke logge inn i Samhandling. Ta kontakt med den som administrerer Samhandling i "
        "enheten din hvis du trenger tilgang igjen.",
    ),
}


def _pending_cookie(ctx: ServiceContext, value: str = "", *, delete: bool = False) -> Cookie:
    """``Lax``: the provider's redirect back is a top-level GET, which carries it."""
    secure = secure_cookies(ctx.settings)
    return Cookie(key=f"__Host-{_PENDING}" if secure else _PENDING, value=value, path="/", httponly=True,
                  secure=secure, samesite="lax", max_age=0 if delete else int(PENDING_FOR.total_seconds()))


def _client(ctx: ServiceContext) -> OidcClient:
    client = client_for(ctx.settings)
    if client is None:  # the demo signs in by token: these pages do not exist there
        raise not_found("page", 0)
    return client


def _failed(request: Request[Any, Any, State], ctx: ServiceContext, why: str, status: int = 400) -> Template:
    """The sign-in did not complete; the browser starts again (its pending cookie dropped)."""
    log.warning("sign-in failed: %s", why)
    page = render(request, "error.html", status=status, title="Innloggingen ble ikke fullført",
                  text="Innloggingen kunne ikke fullføres. Gå til forsiden og logg inn på nytt.")
    page.cookies.append(_pending_cookie(ctx, delete=True))
    return page


def _unavailable(request: Request[Any, Any, State], ctx: ServiceContext, error: Exception) -> Template:
    log.warning("identity provider unavailable: %s", error)
    page = render(request, "error.html", status=503, title="Innloggingstjenesten svarer ikke",
                  text="Kommunens innloggingstjeneste svarer ikke akkurat nå. Prøv igjen om litt.")
    page.cookies.append(_pending_cookie(ctx, delete=True))
    return page


async def _take_pending(ctx: ServiceContext, login_id: str | None) -> OidcLogin | None:
    """The browser's sign-in under way, deleted as it is read; None when missing or too old."""
    if not login_id or len(login_id) > 200:
        return None
    async with ctx.transaction() as session:
        row = (await session.exec(select(OidcLogin).where(OidcLogin.token_hash == hash_token(login_id)))).first()
        if row is None:
            return None
        await session.delete(row)
    return row if ctx.now() - row.created_at < PENDING_FOR else None


class OidcPages(Controller):
    path = ""

    @get("/logg-inn/start")
    async def start(self, request: Request[Any, Any, State], ctx: Ctx) -> Response[Any]:
        client = _client(ctx)
        target = safe_next(request.query_params.get("neste"))
        login_id, state, nonce = new_token(), secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)
        try:
            url = await client.authorization_url(state, nonce, verifier)
        except ProviderUnavailable as error:
            return _unavailable(request, ctx, error)
        except SignInFailed as error:
            return _failed(request, ctx, str(error), status=502)
        now = ctx.now()
        async with ctx.transaction() as session:
            await session.exec(delete(OidcLogin).where(col(OidcLogin.created_at) < now - PENDING_FOR))
            session.add(OidcLogin(token_hash=hash_token(login_id), state=state, nonce=nonce, code_verifier=verifier,
                                  next_path=target if len(target) <= LONGEST_NEXT else "/", created_at=now))
        return Redirect(path=url, status_code=303, cookies=[_pending_cookie(ctx, login_id)])

    @get("/logg-inn/callback")
    async def callback(self, request: Request[Any, Any, State], ctx: Ctx) -> Response[Any]:
        client = _client(ctx)
        params = request.query_params
        pending_cookie = _pending_cookie(ctx)
        pending = await _take_pending(ctx, request.cookies.get(pending_cookie.key))
        if pending is None:
            return _failed(request, ctx, "no sign-in under way in this browser (or it took too long)")
        if not hmac.compare_digest(pending.state, params.get("state") or ""):
            return _failed(request, ctx, "the answer's state is not this browser's")
        if params.get("error"):
            return _failed(request, ctx, f"the provider answered {params.get('error')!r}")
        if params.get("iss") not in (None, client.settings.issuer):  # RFC 9207: a mix-up of providers
            return _failed(request, ctx, "the answer names another issuer")
        try:
            claims, id_token = await client.redeem(params.get("code") or "", pending.code_verifier, pending.nonce)
        except ProviderUnavailable as error:
            return _unavailable(request, ctx, error)
        except SignInFailed as error:
            return _failed(request, ctx, str(error))
        try:
            async with ctx.transaction() as session:
                user = await match_user(session, Identity.from_claims(client.settings.issuer, claims), ctx.now())
        except SignInRefused as refused:
            log.info("sign-in refused: %s", refused.reason.value)
            title, text = REFUSALS[refused.reason]
            page = render(request, "error.html", status=403, title=title, text=text)
            page.cookies.append(_pending_cookie(ctx, delete=True))
            return page
        session_id = await start_session(ctx, user, session_id_of(request, ctx.settings), id_token)
        return Redirect(path=pending.next_path, status_code=303,
                        cookies=[*session_cookies(ctx.settings, session_id), _pending_cookie(ctx, delete=True)])

    @post("/logg-ut")
    async def sign_out(self, request: Request[Any, Any, State], ctx: Ctx) -> Response[Any]:
        await read_form(request)
        session_id = session_id_of(request, ctx.settings)
        at_provider = await _provider_sign_out(ctx, session_id)
        await end_session(ctx, session_id)
        if at_provider is None:
            return Redirect(path="/logg-inn?melding=logget-ut", status_code=303,
                            cookies=signed_out_cookies(ctx.settings))
        page = render(request, "signing_out.html", provider_url=at_provider)
        page.cookies.extend(signed_out_cookies(ctx.settings))
        return page

    @get("/logget-ut")
    async def signed_out(self) -> Redirect:
        """Where the provider sends the browser back after signing out there."""
        return Redirect(path="/logg-inn?melding=logget-ut", status_code=303)


async def _provider_sign_out(ctx: ServiceContext, session_id: str | None) -> str | None:
    """Where to sign out at the provider, for a session that began there; its ID token is erased here."""
    client = client_for(ctx.settings)
    if client is None or not session_id:
        return None
    async with ctx.transaction() as session:
        id_token = (await session.exec(select(WebSession.id_token).where(
            WebSession.token_hash == hash_token(session_id)))).first()
        if not id_token:
            return None
        await session.exec(update(WebSession).where(col(WebSession.token_hash) == hash_token(session_id))
                           .values(id_token=None))
    try:
        return await client.logout_url(id_token)
    except (ProviderUnavailable, SignInFailed) as error:
        log.warning("no sign-out at the identity provider: %s", error)
        return None

