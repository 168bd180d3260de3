"""What an operator runs the service by: ``/metrics`` (Prometheus), ``/health/live`` and
``/health/ready``, and the request middleware that times every request by route group and
gives it an id for the log (``X-Request-ID``).

``/metrics`` is open unless ``SAMHANDLING_METRICS_TOKEN`` is set, then it takes that token as
a bearer token: it is meant for the scraper on the inside network. Nothing it shows names a
person, a case or a token (``coordination.metrics``).
"""

from __future__ import annotations

import asyncio
import enum
import hmac
import time
from functools import cache
from typing import Any

from alembic.script import ScriptDirectory
from litestar import Litestar, Request, Response, get
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import col

from coordination import metrics
from coordination.api.deps import Ctx
from coordination.context import ServiceContext
from coordination.logs import REQUEST_ID, request_id_from
from coordination.migrate import alembic_config
from coordination.models import OutboxMessage
from coordination.outbox.enums import OutboxStatus
from notifications.ports import Channel

#: A health or metrics query gives up after this long: an orchestrator's check waits about 3 s.
QUERY_TIMEOUT_SECONDS = 2.5
#: The outbox rows the depth gauge counts: those still to do, and those given up.
COUNTED = (OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.DEAD)
DATABASE_ERRORS = (OSError, DBAPIError, TimeoutError)


class Readiness(enum.StrEnum):
    """Why the service is, or is not, ready for requests (the answer's ``status``)."""

    OK = "ok"
    DATABASE_UNAVAILABLE = "database unavailable"
    SCHEMA_BEHIND = "database schema not at the migrations' head"


@cache
def migration_heads() -> frozenset[str]:
    """The revisions a current database is at (read once from the migration scripts)."""
    return frozenset(ScriptDirectory.from_config(alembic_config("")).get_heads())


async def readiness(ctx: ServiceContext) -> Readiness:
    """One query answers both questions: does the database answer, and is its schema current.
    A database that answers but refuses the query has no version table: never migrated."""
    try:
        async with asyncio.timeout(QUERY_TIMEOUT_SECONDS), ctx.engine.connect() as connection:
            try:
                result = await connection.execute(text("SELECT version_num FROM alembic_version"))
            except DBAPIError as error:
                if _no_such_table(error):
                    return Readiness.SCHEMA_BEHIND
                raise
            versions = frozenset(result.scalars().all())
    except DATABASE_ERRORS:
        return Readiness.DATABASE_UNAVAILABLE
    return Readiness.OK if versions == migration_heads() else Readiness.SCHEMA_BEHIND


def _no_such_table(error: DBAPIError) -> bool:
    """PostgreSQL's undefined_table (42P01), or SQLite's words for it; any other error of the
    query counts as the database being unavailable."""
    return getattr(error.orig, "sqlstate", None) == "42P01" or "no such table" in str(error.orig)


def _health_answer(state: Readiness) -> Response[dict[str, str]]:
    return Response({"status": state.value}, status_code=200 if state is Readiness.OK else 503,
                    headers={"Cache-Control": "no-store"})


@get("/health/live", tags=["service"], security=[{}], sync_to_thread=False)
def health_live() -> Response[dict[str, str]]:
    """Liveness: the process answers. Nothing else is asked, so a database outage never gets a
    healthy process restarted."""
    return _health_answer(Readiness.OK)


@get("/health/ready", tags=["service"], security=[{}])
async def health_ready(ctx: Ctx) -> Response[dict[str, str]]:
    """Readiness: 200 when the database answers and its schema is at the migrations' head,
    else 503 with a short reason."""
    return _health_answer(await readiness(ctx))


@get("/health", tags=["service"], security=[{}])
async def health(ctx: Ctx) -> Response[dict[str, str]]:
    """The same as ``/health/ready`` (the older address, kept for existing checks)."""
    return _health_answer(await readiness(ctx))


async def _observe_outbox(ctx: ServiceContext) -> None:
    query = (select(col(OutboxMessage.status), col(OutboxMessage.channel), func.count(),
                    func.min(col(OutboxMessage.next_attempt_at)))
             .where(col(OutboxMessage.status).in_(COUNTED))
             .group_by(col(OutboxMessage.status), col(OutboxMessage.channel)))
    try:
        async with asyncio.timeout(QUERY_TIMEOUT_SECONDS), ctx.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
    except DATABASE_ERRORS:
        metrics.database_down()
        return
    groups = [metrics.OutboxGroup(str(status), str(channel), int(count), earliest)
              for status, channel, count, earliest in rows]
    metrics.observe_outbox(groups, [str(s) for s in COUNTED], [str(c) for c in Channel], ctx.now())


def _authorized(header: str | None, token: str) -> bool:
    if not token:
        return True
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@get("/metrics", include_in_schema=False)
async def metrics_endpoint(ctx: Ctx, request: Request[Any, Any, Any]) -> Response[bytes]:
    """The Prometheus text format; the outbox and pool gauges are read at the scrape."""
    if not _authorized(request.headers.get("authorization"), ctx.settings.metrics_token):
        raise NotAuthorizedException("give SAMHANDLING_METRICS_TOKEN as a bearer token",
                                     headers={"WWW-Authenticate": "Bearer"})
    await _observe_outbox(ctx)
    metrics.observe_pool(ctx.engine.pool)
    # The format the scraper asks for (Prometheus text, or OpenMetrics); the type is given whole,
    # as Litestar would add a second charset to a text/ media type.
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(REGISTRY), headers={"content-type": content_type, "cache-control": "no-store"})


ROUTES = [health, health_live, health_ready, metrics_endpoint]


class RequestMiddleware:
    """Around the whole app, so that every request passes once, whichever path answers it (the
    framework, the lean feed path, or a 404 no route matched): times it into its route group's
    histogram and gives it an id, the caller's ``X-Request-ID`` when it is a sane token, else a
    new one, set for the log lines written while serving it (``logs.REQUEST_ID``) and echoed in
    the answer."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:  # a websocket (the framework answers lifespan itself)
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        given = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = value
                break
        request_id = request_id_from(given)
        header = (b"x-request-id", request_id.encode("latin-1"))

        async def answering(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        reset = REQUEST_ID.set(request_id)
        try:
            await self._app(scope, receive, answering)
        finally:
            REQUEST_ID.reset(reset)
            metrics.request_latency(metrics.route_group(scope["path"]), time.perf_counter() - started)


def observe_requests(app: Litestar) -> None:
    """Put :class:`RequestMiddleware` around everything ``app`` answers (call it last)."""
    app.asgi_handler = RequestMiddleware(app.asgi_handler)
