"""Everything the composition root needs to serve the pages: the router with its own
error pages and security headers, the static files and the template engine."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Request, Response, Router
from litestar.datastructures import CacheControlHeader, ResponseHeader, State
from litestar.di import Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig
from litestar.types import ControllerRouterHandler
from sqlalchemy.exc import DBAPIError, IntegrityError

from coordination.errors import Forbidden, Gone, InputError, NotFound
from coordination.web.pages import CasePages, HomePages, SignInPages, render, service
from coordination.web.session import CsrfRejected, SignInRequired, expired_session_cookie, provide_web_user
from coordination.web.texts import error_text

log = logging.getLogger("samhandling.web")

PACKAGE = Path(__file__).resolve().parent.parent
STATIC = PACKAGE / "static"
TEMPLATES = PACKAGE / "templates"

#: No inline script or style anywhere, no framing, forms only to ourselves, and nothing
#: sent in a Referer (addresses hold case ids).
SECURITY_HEADERS = [
    ResponseHeader(name="Content-Security-Policy", value=(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'; object-src 'none'")),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="X-Frame-Options", value="DENY"),
    ResponseHeader(name="Referrer-Policy", value="no-referrer"),
]


def _error_page(request: Request[Any, Any, State], status: int, title: str, text: str) -> Response[Any]:
    return render(request, "error.html", status=status, title=title, text=text)


def _sign_in(request: Request[Any, Any, State], reason: SignInRequired) -> Response[Any]:
    """To the sign-in form, back here afterwards; an expired session is told so, and its cookie dropped."""
    target = request.url.path if request.method == "GET" else "/"
    query = [f"neste={target}"] if target != "/" else []
    cookies = []
    if reason.expired:
        query.append("melding=utlopt")
        cookies.append(expired_session_cookie(service(request).settings))
    return Redirect(path="/logg-inn" + ("?" + "&".join(query) if query else ""), status_code=303, cookies=cookies)


def _csrf(request: Request[Any, Any, State], _: CsrfRejected) -> Response[Any]:
    return _error_page(request, 403, "Skjemaet kunne ikke sendes",
                       "Siden var for gammel, eller skjemaet kom fra et annet nettsted. "
                       "Gå tilbake, last siden på nytt og prøv igjen.")


def _not_found(request: Request[Any, Any, State], _: Exception) -> Response[Any]:
    return _error_page(request, 404, "Fant ikke siden",
                       "Siden finnes ikke, eller du har ikke tilgang til den.")


def _forbidden(request: Request[Any, Any, State], _: Forbidden) -> Response[Any]:
    return _error_page(request, 403, "Ikke tilgang", "Rollen din gir ikke tilgang til dette.")


def _gone(request: Request[Any, Any, State], _: Gone) -> Response[Any]:
    return _error_page(request, 410, "Ikke lenger gyldig", "Dette er trukket tilbake og kan ikke brukes lenger.")


def _input(request: Request[Any, Any, State], error: InputError) -> Response[Any]:
    return _error_page(request, 400, "Kunne ikke lagre", error_text(error))


def _invalid(request: Request[Any, Any, State], _: ValidationException) -> Response[Any]:
    return _error_page(request, 400, "Ugyldig adresse eller skjema", "Kontroller adressen og prøv igjen.")


def _conflict(request: Request[Any, Any, State], _: IntegrityError) -> Response[Any]:
    return _error_page(request, 409, "Noen andre endret det samme",
                       "Endringen kolliderte med en annen. Last siden på nytt og prøv igjen.")


def _unavailable(request: Request[Any, Any, State], error: Exception) -> Response[Any]:
    log.warning("page unavailable: %s", type(error).__name__)
    response = _error_page(request, 503, "Tjenesten er midlertidig utilgjengelig",
                           "Databasen svarer ikke akkurat nå. Prøv igjen om litt.")
    response.headers["Retry-After"] = "10"
    return response


def _http(request: Request[Any, Any, State], error: HTTPException) -> Response[Any]:
    if error.status_code == 404:
        return _not_found(request, error)
    return _error_page(request, error.status_code, "Noe gikk galt", "Prøv igjen, eller gå tilbake til forsiden.")


def web_routes() -> list[ControllerRouterHandler]:
    """The pages, under Norwegian paths that never meet the API's English ones."""
    pages = Router(
        path="/",
        route_handlers=[SignInPages, HomePages, CasePages],
        dependencies={"viewer": Provide(provide_web_user)},
        exception_handlers={
            SignInRequired: _sign_in,
            CsrfRejected: _csrf,
            NotFound: _not_found,
            Forbidden: _forbidden,
            Gone: _gone,
            InputError: _input,
            ValidationException: _invalid,
            IntegrityError: _conflict,
            DBAPIError: _unavailable,
            OSError: _unavailable,
            TimeoutError: _unavailable,
            HTTPException: _http,
        },
        response_headers=SECURITY_HEADERS,
        cache_control=CacheControlHeader(no_store=True),
        include_in_schema=False,
        tags=["pages"],
    )
    static = create_static_files_router(
        path="/static", directories=[STATIC], include_in_schema=False,
        cache_control=CacheControlHeader(max_age=3600, public=True),
    )
    return [pages, static]


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    """Jinja with autoescaping everywhere, and an error on any name a template misspells."""
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment))
