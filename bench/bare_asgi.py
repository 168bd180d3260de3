"""The floor under the service's ``304``: a bare ASGI callable that answers every request
with a fixed ``304`` carrying the headers the feed's ``304`` carries (ETag, Cache-Control,
and whatever else the service adds, copied from one of its answers), run by the same server
with the same options as ``samhandling serve``. No framework, no routing, no token or cache
look-up: what is left is the server's own cost per request.

    python -m bench.bare_asgi --port 8123 --header 'etag: "abc"' --header 'cache-control: no-cache'

``bench.bare_asgi:from_env`` is the same app as a factory for a server's own command line
(the server comparison, bench/servers.py), its headers a JSON list of pairs in
``BENCH_BARE_HEADERS``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Message, Receive, Send], Awaitable[None]]

#: Set by the server itself on every answer.
SERVER_HEADERS = frozenset({"date", "server", "connection", "content-length", "transfer-encoding"})


def replayable(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """The headers of one of the service's answers that the app sends itself."""
    return [(k.lower(), v) for k, v in headers.items() if k.lower() not in SERVER_HEADERS]


def not_modified_app(headers: Iterable[tuple[str, str]]) -> App:
    """An ASGI app whose every HTTP answer is the same ``304``; it takes part in lifespan."""
    start = {"type": "http.response.start", "status": 304,
             "headers": [(k.encode(), v.encode()) for k, v in headers]}
    end = {"type": "http.response.body", "body": b""}

    async def app(scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        elif scope["type"] == "http":
            await send(start)
            await send(end)

    return app


def from_env() -> App:
    return not_modified_app((k, v) for k, v in json.loads(os.environ["BENCH_BARE_HEADERS"]))


def main() -> None:
    from coordination.cli import run_server
    from coordination.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--header", action="append", default=[], help="'name: value', as the service's 304 has it")
    args = parser.parse_args()
    headers = [(name.strip().lower(), value.strip()) for name, value in (h.split(":", 1) for h in args.header)]
    run_server(not_modified_app(headers), Settings.from_env(), args.host, args.port)


if __name__ == "__main__":
    main()
