"""The lean path for ``GET /feeds/{token}.ics``, the service's hottest request.

Calendar clients poll every feed every few minutes. Such a poll is taken before the
framework's routing, dependency injection and response building: it passes through the
app's own middleware (request id and timing), the feed runtime answers with header lines
built once per version of the feed, and a miss (``404``) goes through the miss limiter that
slows down token guessing — which acts on misses only, so a found feed skips it. Every other
request — other methods and paths under ``/feeds/`` included — goes to the framework as
before; the answers are the same either way (``FeedController.serve_feed`` remains the
documented route).
"""

from __future__ import annotations

from collections.abc import Sequence

from litestar import Litestar
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from coordination.api.ratelimit import MissLimitMiddleware
from coordination.context import ServiceContext
from coordination.feeds.http import FeedAnswer
from coordination.feeds.runtime import FeedRuntime

PREFIX = "/feeds/"
SUFFIX = ".ics"


def _through(layer: ASGIMiddleware, next_app: ASGIApp) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await layer.handle(scope, receive, send, next_app)

    return app


class LeanFeeds:
    """Takes feed polls off the framework's path and hands on everything else."""

    def __init__(self, inner: ASGIApp, runtime: FeedRuntime, ctx: ServiceContext,
                 middleware: Sequence[ASGIMiddleware]) -> None:
        self._inner = inner
        self._runtime = runtime
        self._ctx = ctx
        feed: ASGIApp = self._answer
        miss: ASGIApp = _send_answer
        for layer in reversed(middleware):
            if isinstance(layer, MissLimitMiddleware):
                miss = _through(layer, miss)
            else:
                feed = _through(layer, feed)
        self._feed = feed
        self._miss = miss

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope["method"] == "GET":
            path = scope["path"]
            if path.startswith(PREFIX) and path.endswith(SUFFIX) and path.count("/") == 2:
                await self._feed(scope, receive, send)
                return
        await self._inner(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        if_none_match = if_modified_since = None
        for name, value in scope["headers"]:
            if name == b"if-none-match" and if_none_match is None:
                if_none_match = value.decode("latin-1")
            elif name == b"if-modified-since" and if_modified_since is None:
                if_modified_since = value.decode("latin-1")
        token = scope["path"][len(PREFIX):-len(SUFFIX)]
        answer = await self._runtime.poll(self._ctx, token, if_none_match, if_modified_since)
        if answer.status == 404:
            scope["state"][_ANSWER] = answer
            await self._miss(scope, receive, send)
        else:
            await _send(answer, send)


#: In the scope's state: the answer a miss limiter passes on (or replaces by a 429).
_ANSWER = "samhandling.feed_answer"


async def _send(answer: FeedAnswer, send: Send) -> None:
    await send({"type": "http.response.start", "status": answer.status, "headers": list(answer.raw_headers)})
    await send({"type": "http.response.body", "body": answer.body, "more_body": False})


async def _send_answer(scope: Scope, _receive: Receive, send: Send) -> None:
    await _send(scope["state"].pop(_ANSWER), send)


def serve_feeds_lean(app: Litestar) -> None:
    """Put the lean path in front of ``app`` (built by ``create_app``, whose state holds the
    feed runtime and the service context), through the app's own middleware."""
    layers = []
    for middleware in app.middleware:
        if not isinstance(middleware, ASGIMiddleware):
            raise TypeError(f"the lean feed path passes only through ASGIMiddleware, not {middleware!r}")
        layers.append(middleware)
    app.asgi_handler = LeanFeeds(app.asgi_handler, app.state.feeds, app.state.service, layers)
