"""Slowing down anyone who guesses capability tokens (feed addresses, answer links).

The tokens are 256 random bits, so guessing cannot succeed; what this stops is someone
hammering the lookups. Per client address, a miss is an unknown token (a ``404`` from
``/feeds/…`` or ``/answer/…``). After :data:`MISSES` misses within :data:`WINDOW`, every
feed and answer request from that address gets ``429`` with ``Retry-After`` until the
oldest miss has left the window; the lookup is not even made. Hits and revoked tokens
(``410``) are never counted, so an office behind one address polling its valid feeds is
left alone unless someone there guesses.

The state is per process and bounded (:data:`MAX_CLIENTS` addresses, the least recently
seen forgotten first); with several instances each keeps its own count. Behind a reverse
proxy the client address is the proxy's unless the server is told to trust its
``X-Forwarded-For`` (uvicorn's ``--forwarded-allow-ips``).
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable
from datetime import datetime, timedelta

from litestar import Request, Response
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

MISSES = 20
WINDOW = timedelta(minutes=1)
MAX_CLIENTS = 10_000
#: The capability lookups: the feed itself (GET/HEAD) and the answer page (GET/POST).
GUARDED = {"/feeds/": ("GET", "HEAD"), "/answer/": ("GET", "POST")}
TEXT = b"Too many unknown addresses from your network. Try again later.\n"


class MissLimiter:
    """Recent misses per client address; ``clock`` returns aware times."""

    def __init__(self, clock: Callable[[], datetime], *, misses: int = MISSES, window: timedelta = WINDOW,
                 max_clients: int = MAX_CLIENTS) -> None:
        self._clock = clock
        self._misses = misses
        self._window = window
        self._max_clients = max_clients
        self._seen: OrderedDict[str, deque[datetime]] = OrderedDict()

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may look up tokens again, or None when it may now."""
        times = self._seen.get(client)
        if times is None:
            return None
        now = self._clock()
        while times and times[0] <= now - self._window:
            times.popleft()
        if len(times) < self._misses:
            return None
        return max(1, math.ceil((times[0] + self._window - now).total_seconds()))

    def miss(self, client: str) -> None:
        times = self._seen.pop(client, None) or deque(maxlen=self._misses)
        times.append(self._clock())
        self._seen[client] = times
        while len(self._seen) > self._max_clients:
            self._seen.popitem(last=False)


class MissLimitMiddleware(ASGIMiddleware):
    """Applies a :class:`MissLimiter` to the capability lookups."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, limiter: MissLimiter) -> None:
        self.limiter = limiter

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        path, method = scope["path"], scope.get("method", "GET")
        if not any(path.startswith(prefix) and method in methods for prefix, methods in GUARDED.items()):
            await next_app(scope, receive, send)
            return
        peer = scope.get("client")
        client = peer[0] if peer else "unknown"
        wait = self.limiter.retry_after(client)
        if wait is not None:
            headers = {"Retry-After": str(wait), "Cache-Control": "no-store"}
            refusal = Response(TEXT, status_code=429, media_type="text/plain", headers=headers)
            await refusal.to_asgi_response(app=None, request=Request(scope))(scope, receive, send)
            return
        status = 0

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await next_app(scope, receive, noting_status)
        if status == 404:
            self.limiter.miss(client)
