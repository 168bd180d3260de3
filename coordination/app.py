"""The composition root: builds the Litestar app from settings, wires the database, the
clock, the controllers and (later) the dispatcher, and answers every error as JSON from the
one map in ``coordination.problems``. Nothing else in the code base constructs these parts."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, MediaType, Request, Response
from litestar.datastructures import State
from litestar.di import Provide
from litestar.logging import LoggingConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ControllerRouterHandler

from coordination import problems
from coordination.api import operations
from coordination.api.alerts import AlertController
from coordination.api.answers import AnswerController
from coordination.api.cases import CaseController
from coordination.api.deps import provide_context, provide_user
from coordination.api.feeds import FeedController
from coordination.api.meetings import MeetingController
from coordination.api.openapi import document_answers
from coordination.api.operations import observe_requests
from coordination.api.ratelimit import ClientAddress, MissLimiter, MissLimitMiddleware
from coordination.api.records import RecordController
from coordination.api.sms_reports import SmsReportController
from coordination.api.users import UnitController, UserController
from coordination.background import Background
from coordination.clock import Clock
from coordination.context import ServiceContext
from coordination.feeds.asgi import serve_feeds_lean
from coordination.feeds.runtime import FeedRuntime
from coordination.migrate import upgrade_async
from coordination.settings import Settings
from coordination.web.routes import template_config, web_routes


def _problem(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Any error as a JSON problem, from the one map the pages use too."""
    problem = problems.problem_of(exc)
    problems.note(request, exc, problem)
    body: dict[str, Any] = {"status_code": problem.status, "detail": problem.detail}
    if problem.field is not None:
        body["field"] = problem.field
    return Response(body, status_code=problem.status, media_type=MediaType.JSON, headers=dict(problem.headers) or None)


ROUTES: list[ControllerRouterHandler] = [
    *operations.ROUTES,
    CaseController,
    UserController,
    UnitController,
    MeetingController,
    FeedController,
    AnswerController,
    AlertController,
    RecordController,
    SmsReportController,
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
        # What start-up built lives as long as the process: keep it out of every later garbage
        # collection, whose full passes over it were a tail of the request latency (issue 17).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
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
        exception_handlers=dict.fromkeys(problems.HANDLED, _problem),
        lifespan=[lifespan],
        request_max_body_size=settings.max_body_bytes,
        # The root logger is the command line's (SAMHANDLING_LOG_LEVEL); Litestar's default
        # would set it to INFO and let every per-message line through.
        # Litestar's own exception log would print messages and tracebacks: problems.note does it.
        logging_config=LoggingConfig(configure_root_logger=False, log_exceptions="never"),
        openapi_config=OpenAPIConfig(
            title="Samhandling",
            version="0.1.0",
            description="Contacts, consent, meetings and iCalendar feeds for assistance measures.",
            path="/schema",
            use_handler_docstrings=True,  # each operation's description is its handler's docstring
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
    serve_feeds_lean(app)
    observe_requests(app)  # outermost: every request, on either path, timed and given its id once
    return app
