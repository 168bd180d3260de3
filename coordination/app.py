"""The composition root: builds the Litestar app from settings, wires the database, the
clock, the controllers and (later) the dispatcher, and maps service errors to clear 4xx/503
answers. Nothing else in the code base constructs these parts."""

from __future__ import annotations

import logging
import traceback
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from litestar import Litestar, MediaType, Request, Response, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.logging import LoggingConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ControllerRouterHandler
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from calendars.workdays import CalendarInputError
from coordination.api.alerts import AlertController
from coordination.api.answers import AnswerController
from coordination.api.cases import CaseController
from coordination.api.deps import Ctx, provide_context, provide_user
from coordination.api.feeds import FeedController
from coordination.api.meetings import MeetingController
from coordination.api.openapi import document_answers
from coordination.api.ratelimit import ClientAddress, MissLimiter, MissLimitMiddleware
from coordination.api.users import UnitController, UserController
from coordination.background import Background
from coordination.clock import Clock
from coordination.context import ServiceContext
from coordination.errors import Forbidden, Gone, InputError, NotFound
from coordination.feeds.runtime import FeedRuntime
from coordination.migrate import upgrade_async
from coordination.settings import Settings
from coordination.web.routes import template_config, web_routes

log = logging.getLogger("samhandling")


def _error(status: int, detail: str, field: str | None = None,
           headers: dict[str, str] | None = None) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {"status_code": status, "detail": detail}
    if field is not None:
        body["field"] = field
    return Response(body, status_code=status, media_type=MediaType.JSON, headers=headers)


def _input_error(_: Request[Any, Any, Any], exc: InputError) -> Response[dict[str, Any]]:
    return _error(400, exc.message, exc.field)


def _calendar_input_error(_: Request[Any, Any, Any], exc: CalendarInputError) -> Response[dict[str, Any]]:
    return _error(400, exc.detail, exc.field)


def _validation_error(_: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    problems = exc.extra if isinstance(exc.extra, list) else []
    parts = []
    field = None
    for problem in problems:
        if isinstance(problem, dict):
            key = problem.get("key") or ""
            field = field or (key or None)
            parts.append(f"{key}: {problem.get('message')}" if key else str(problem.get("message")))
    detail = "; ".join(parts) or exc.detail
    return _error(400, f"invalid request: {detail}", field)


def _not_found(_: Request[Any, Any, Any], exc: NotFound) -> Response[dict[str, Any]]:
    return _error(404, str(exc))


def _forbidden(_: Request[Any, Any, Any], exc: Forbidden) -> Response[dict[str, Any]]:
    return _error(403, str(exc))


def _gone(_: Request[Any, Any, Any], exc: Gone) -> Response[dict[str, Any]]:
    return _error(410, str(exc))


def _conflict(_: Request[Any, Any, Any], exc: IntegrityError) -> Response[dict[str, Any]]:
    log.info("integrity conflict: %s", type(exc.orig).__name__)
    return _error(409, "the change conflicts with data that already exists; reload and try again")


def _unavailable(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.warning("database unavailable: %s", type(exc).__name__)
    return _error(503, "the database cannot be reached right now; try again shortly",
                  headers={"Retry-After": "10"})


_PACKAGE = str(Path(__file__).resolve().parent)


def _log_internal(request: Request[Any, Any, Any], exc: BaseException, what: str) -> None:
    """An unexpected error, logged with what an operator needs and nothing a person typed: the
    route and its ids, the error's kind (and SQLSTATE), and the innermost line of our own code.
    Never the error's message or traceback: a database's message may hold the row it refused
    ("Failing row contains ...", "Key (...)=(...)"), and an exception's text anything at all."""
    ids = " ".join(f"{k}={v}" for k, v in request.path_params.items() if isinstance(v, int))
    cause: BaseException = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    code = getattr(cause, "sqlstate", None) or getattr(cause, "sqlite_errorname", None)
    while cause.__cause__ is not None:  # the driver's own error (asyncpg's) names the kind best
        cause = cause.__cause__
    ours = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(_PACKAGE)]
    where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno} in {ours[-1].name}" if ours else "?"
    log.error("%s: %s %s%s: %s%s at %s", what, request.method, request.scope.get("path_template", "?"),
              f" ({ids})" if ids else "", type(cause).__name__, f" ({code})" if code else "", where)


def _dbapi_error(request: Request[Any, Any, Any], exc: DBAPIError) -> Response[dict[str, Any]]:
    if exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError):
        return _unavailable(request, exc)
    _log_internal(request, exc, "database error")
    return _error(500, "internal error")


def _internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    _log_internal(request, exc, "internal error")
    return _error(500, "internal error")


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    return _error(exc.status_code, exc.detail, headers=exc.headers)


@get("/health", tags=["service"], security=[{}])
async def health(ctx: Ctx) -> Response[dict[str, str]]:
    """Liveness and readiness: 200 when the database answers, 503 when it does not."""
    try:
        async with ctx.sessions() as session:
            await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
    except (OSError, DBAPIError, TimeoutError):
        return Response({"status": "database unavailable"}, status_code=503)
    return Response({"status": "ok"})


ROUTES: list[ControllerRouterHandler] = [
    health,
    CaseController,
    UserController,
    UnitController,
    MeetingController,
    FeedController,
    AnswerController,
    AlertController,
]


def create_app(
    settings: Settings | None = None,
    clock: Clock | None = None,
    *,
    extra_routes: Sequence[ControllerRouterHandler] = (),
    on_startup: Sequence[Callable[[ServiceContext], Any]] = (),
) -> Litestar:
    """Build the app. SQLite databases are migrated at start; PostgreSQL by ``samhandling migrate``."""
    settings = settings or Settings.from_env()
    ctx = ServiceContext.create(settings, clock)
    feeds = FeedRuntime()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if settings.is_sqlite:
            await upgrade_async(settings.database_url)
        for hook in on_startup:
            result = hook(ctx)
            if hasattr(result, "__await__"):
                await result
        feeds.start(ctx)
        background = Background(ctx)
        await background.start()
        try:
            yield
        finally:
            await background.stop()
            await feeds.stop(ctx)
            await ctx.engine.dispose()

    app = Litestar(
        route_handlers=[*ROUTES, *web_routes(), *extra_routes],
        middleware=[MissLimitMiddleware(MissLimiter(ctx.now), ClientAddress(settings.trusted_proxies))],
        template_config=template_config(),
        state=State({"service": ctx, "feeds": feeds}),
        dependencies={
            "ctx": Provide(provide_context),
            "user": Provide(provide_user),
        },
        exception_handlers={
            InputError: _input_error,
            CalendarInputError: _calendar_input_error,
            ValidationException: _validation_error,
            NotFound: _not_found,
            Forbidden: _forbidden,
            Gone: _gone,
            IntegrityError: _conflict,
            DBAPIError: _dbapi_error,
            OSError: _unavailable,
            TimeoutError: _unavailable,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
        lifespan=[lifespan],
        request_max_body_size=settings.max_body_bytes,
        # The root logger is the command line's (SAMHANDLING_LOG_LEVEL); Litestar's default
        # would set it to INFO and let every per-message line through.
        # Litestar's own exception log would print messages and tracebacks: _log_internal does it.
        logging_config=LoggingConfig(configure_root_logger=False, log_exceptions="never"),
        openapi_config=OpenAPIConfig(
            title="Samhandling",
            version="0.1.0",
            description="Contacts, consent, meetings and iCalendar feeds for assistance measures.",
            path="/schema",
            security=[{"BearerToken": []}],
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(type="http", scheme="bearer",
                                                  description="API token from create-user")
                }
            ),
        ),
        debug=False,
    )
    document_answers(app)
    return app
