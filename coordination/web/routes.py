"""Everything the composition root needs to serve the pages: the router with its own
error pages and security headers, the static files and the template engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Request, Response, Router
from litestar.datastructures import CacheControlHeader, ResponseHeader, State
from litestar.di import Provide
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig
from litestar.types import ControllerRouterHandler

from coordination.errors import InputError
from coordination.problems import HANDLED, Kind, note, problem_of
from coordination.web.case_setup import CaseSetupPages, NewCasePages
from coordination.web.new_meeting import NewMeetingPages
from coordination.web.oidc import OidcPages
from coordination.web.pages import CasePages, HomePages, SignInPages, render, service
from coordination.web.plan_pages import PlanPages
from coordination.web.record_pages import RecordPages
from coordination.web.session import CsrfRejected, SignInRequired, expired_session_cookie, provide_web_user
from coordination.web.texts import error_text
from coordination.web.unit_pages import UnitPages

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


#: The page's heading and words for each kind of problem (``coordination.problems``).
PAGE_WORDS: dict[Kind, tuple[str, str]] = {
    Kind.INPUT: ("Kunne ikke lagre", ""),
    Kind.INVALID: ("Ugyldig adresse eller skjema", "Kontroller adressen og prøv igjen."),
    Kind.NOT_FOUND: ("Fant ikke siden", "Siden finnes ikke, eller du har ikke tilgang til den."),
    Kind.FORBIDDEN: ("Ikke tilgang", "Rollen din gir ikke tilgang til dette."),
    Kind.GONE: ("Ikke lenger gyldig", "Dette er trukket tilbake og kan ikke brukes lenger."),
    Kind.CONFLICT: ("Noen andre endret det samme",
                    "Endringen kolliderte med en annen. Last siden på nytt og prøv igjen."),
    Kind.UNAVAILABLE: ("Tjenesten er midlertidig utilgjengelig",
                       "Databasen svarer ikke akkurat nå. Prøv igjen om litt."),
    Kind.INTERNAL: ("Noe gikk galt", "Prøv igjen, eller gå tilbake til forsiden."),
    Kind.OTHER: ("Noe gikk galt", "Prøv igjen, eller gå tilbake til forsiden."),
}


def _problem(request: Request[Any, Any, State], exc: Exception) -> Response[Any]:
    """Any error as an error page, from the one map the API uses too."""
    problem = problem_of(exc)
    note(request, exc, problem)
    title, text = PAGE_WORDS[problem.kind]
    if problem.kind is Kind.INPUT:
        text = error_text(exc if isinstance(exc, InputError) else InputError(problem.field or "", problem.detail))
    response = _error_page(request, problem.status, title, text)
    response.headers.update(problem.headers)
    return response


def web_routes() -> list[ControllerRouterHandler]:
    """The pages, under Norwegian paths that never meet the API's English ones."""
    pages = Router(
        path="/",
        route_handlers=[SignInPages, OidcPages, HomePages, CasePages, NewCasePages, CaseSetupPages, PlanPages,
                        NewMeetingPages, UnitPages, RecordPages],
        dependencies={"viewer": Provide(provide_web_user)},
        exception_handlers={
            SignInRequired: _sign_in,
            CsrfRejected: _csrf,
            **dict.fromkeys(HANDLED, _problem),
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
