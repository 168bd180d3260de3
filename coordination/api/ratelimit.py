"""Slowing down anyone who guesses capability tokens (feed addresses, answer links), without
ever taking a valid feed offline.

The tokens are 256 random bits, so guessing cannot succeed; what this does is mark and slow
down whoever hammers the lookups. Per client address, a miss is an unknown token (a ``404``
from ``/feeds/…`` or ``/answer/…``). After :data:`MISSES` misses within :data:`WINDOW`, the
client's further misses answer ``429`` with ``Retry-After`` instead of ``404``, until the
oldest miss has left the window. The lookup is always made: a valid token gets its feed or
answer page and a revoked one its ``410``, whoever else shares the address — a municipality's
NAT, or the reverse proxy — and however much they guessed (issue 12, hole 8).

The client address is the direct peer's, unless that peer is a trusted reverse proxy
(``SAMHANDLING_TRUSTED_PROXIES``): then it is the right-most address in ``X-Forwarded-For``
that is not itself a trusted proxy (each proxy appends the address it was reached from, so
what lies to the left of the last untrusted hop could be made up by the client). The same
setting is handed to uvicorn as ``forwarded_allow_ips`` (:mod:`coordination.cli`), so the
server and this middleware agree on who the client is; applying the rule again to an address
uvicorn has already resolved leaves it unchanged.

The state is per process and bounded (:data:`MAX_CLIENTS` addresses, the least recently
seen forgotten first); with several instances each keeps its own count.
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
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
TEXT = "For mange ukjente adresser på kort tid. Prøv igjen om litt.\n".encode()


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
        """Seconds until ``client``'s unknown tokens are answered ``404`` again, or None when
        they are now."""
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


def _host(value: str) -> str:
    """The address of one ``X-Forwarded-For`` entry, without a port (``1.2.3.4:5``,
    ``[2001:db8::1]:5``)."""
    value = value.strip()
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else value
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


class ClientAddress:
    """Who a request comes from: the peer, or behind trusted proxies the client they name."""

    def __init__(self, trusted_proxies: Sequence[str] = ()) -> None:
        """``trusted_proxies``: addresses or CIDR networks, as Settings.trusted_proxies has them."""
        self._trusted = tuple(ipaddress.ip_network(network, strict=False) for network in trusted_proxies)

    def trusts(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._trusted)

    def __call__(self, scope: Scope) -> str:
        peer = scope.get("client")
        host = peer[0] if peer else ""
        if not self._trusted or not self.trusts(host):
            return host or "unknown"
        hops = [_host(part) for name, value in scope["headers"] if name == b"x-forwarded-for"
                for part in value.decode("latin-1").split(",")]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop or host
        # Every hop is a trusted proxy: the request began at one of them.
        return hops[0] if hops and hops[0] else host


class MissLimitMiddleware(ASGIMiddleware):
    """Applies a :class:`MissLimiter` to the capability lookups."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, limiter: MissLimiter, client_address: ClientAddress | None = None) -> None:
        self.limiter = limiter
        self.client_address = client_address or ClientAddress()

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        path, method = scope["path"], scope.get("method", "GET")
        if not any(path.startswith(prefix) and method in methods for prefix, methods in GUARDED.items()):
            await next_app(scope, receive, send)
            return
        client = self.client_address(scope)
        wait = self.limiter.retry_after(client)
        status = 0
        refused = False

        async def answering(message: Message) -> None:
            """Passes every answer on, except a miss from a client over the limit."""
            nonlocal status, refused
            if message["type"] == "http.response.start":
                status = message["status"]
                refused = status == 404 and wait is not None
            if not refused:
                await send(message)

        await next_app(scope, receive, answering)
        if status == 404:
            self.limiter.miss(client)
        if refused:
            assert wait is not None
            headers = {"Retry-After": str(wait), "Cache-Control": "no-store"}
            refusal = Response(TEXT, status_code=429, media_type="text/plain", headers=headers)
            await refusal.to_asgi_response(app=None, request=Request(scope))(scope, receive, send)
