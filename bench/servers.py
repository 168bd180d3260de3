"""ASGI servers for ``samhandling serve``, side by side on the same feed: the warm ``200``
and the ``304`` of the service, and the bare ``304`` app (bench/bare_asgi.py) as each
server's own floor, at c1 and c32, interleaved (one of each in turn) so that a busy
moment on the machine falls on all of them alike. Beside req/s and latency, the CPU time the
server's processes spent per answer: the figure least moved by other work on the machine.

    python3 bench/run.py --quick --parts servers

Every server runs one process with the app built by ``coordination.app:create_app`` (so the
lifespan runs, as in production) and no access log. ``samhandling serve`` itself runs beside
them: it should match the row of the server it uses.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench import wrk
from bench.calendar_data import seed_feed_calendars
from bench.common import (
    VENV_BIN,
    Proc,
    create_database,
    drop_database,
    dsn_for,
    free_port,
    http_get,
    sqlalchemy_url,
    tree_cpu_seconds,
    wait_http,
)
from bench.feed_serving import service_304_headers, service_proc

DATABASE = "samhandling_bench_servers"
SERVICE = "coordination.app:create_app"
BARE = "bench.bare_asgi:from_env"
SIZE = 500


def _uvicorn(http: str, loop: str) -> Callable[[str, int], list[str]]:
    def argv(factory: str, port: int) -> list[str]:
        return [str(VENV_BIN / "uvicorn"), "--factory", factory, "--host", "127.0.0.1", "--port", str(port),
                "--http", http, "--loop", loop, "--no-access-log", "--log-level", "warning"]
    return argv


def _granian(loop: str) -> Callable[[str, int], list[str]]:
    def argv(factory: str, port: int) -> list[str]:
        return [str(VENV_BIN / "granian"), "--interface", "asgi", "--factory", "--host", "127.0.0.1",
                "--port", str(port), "--workers", "1", "--loop", loop, "--http", "1", "--log-level", "warning",
                factory]
    return argv


#: (key, what it is, the command for a factory on a port)
SERVERS: tuple[tuple[str, str, Callable[[str, int], list[str]]], ...] = (
    ("uvicorn_h11_asyncio", "uvicorn, h11, asyncio loop", _uvicorn("h11", "asyncio")),
    ("uvicorn_httptools_uvloop", "uvicorn, httptools, uvloop", _uvicorn("httptools", "uvloop")),
    ("granian_asyncio", "granian, ASGI, 1 worker, asyncio loop", _granian("asyncio")),
    ("granian_uvloop", "granian, ASGI, 1 worker, uvloop", _granian("uvloop")),
)


@dataclass
class ServerResults:
    figures: dict[str, float] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _env(database_url: str, port: int, bare_headers: list[tuple[str, str]]) -> dict[str, str]:
    return {"SAMHANDLING_DATABASE_URL": database_url, "SAMHANDLING_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "SAMHANDLING_DISPATCHER_ENABLED": "false", "SAMHANDLING_LOG_LEVEL": "WARNING",
            "BENCH_BARE_HEADERS": json.dumps(bare_headers)}


def run(seconds: float, rounds: int, log: Callable[[str], None]) -> ServerResults:
    """Each server with the service and with the bare app; ``rounds`` interleaved passes,
    the best pass of each kept (the noise on a shared machine only ever slows a run)."""
    results = ServerResults()
    asyncio.run(create_database(DATABASE))
    url = sqlalchemy_url(DATABASE)
    procs: list[Proc] = []
    try:
        fixture = asyncio.run(seed_feed_calendars(dsn_for(DATABASE), (SIZE,), datetime.now(UTC)))[SIZE]
        feed_path = f"/feeds/{fixture.token}.ics"
        reference_port = free_port()
        reference = service_proc("servers-samhandling-serve", url, reference_port).start()
        procs.append(reference)
        wait_http(f"http://127.0.0.1:{reference_port}/health")
        status, _, headers = http_get(f"http://127.0.0.1:{reference_port}{feed_path}")
        assert status == 200, status
        etag = headers["etag"]
        bare_headers = service_304_headers(f"http://127.0.0.1:{reference_port}{feed_path}", etag)
        targets: list[tuple[str, str, dict[str, str], Proc]] = [
            ("samhandling_serve_warm", f"http://127.0.0.1:{reference_port}{feed_path}", {}, reference),
            ("samhandling_serve_304", f"http://127.0.0.1:{reference_port}{feed_path}", {"If-None-Match": etag},
             reference),
        ]
        for key, _, argv in SERVERS:
            service_port, bare_port = free_port(), free_port()
            service = Proc(f"servers-{key}", argv(SERVICE, service_port), _env(url, service_port, bare_headers)).start()
            bare = Proc(f"servers-{key}-bare", argv(BARE, bare_port), _env(url, bare_port, bare_headers)).start()
            procs += [service, bare]
            wait_http(f"http://127.0.0.1:{service_port}/health")
            feed_url = f"http://127.0.0.1:{service_port}{feed_path}"
            status, _, headers = http_get(feed_url)
            assert status == 200 and headers["etag"] == etag, (key, status)
            status, _, bare_answer = http_get(f"http://127.0.0.1:{bare_port}/", {"If-None-Match": etag})
            assert status == 304 and bare_answer["etag"] == etag, (key, status)
            targets += [(f"{key}_warm", feed_url, {}, service),
                        (f"{key}_304", feed_url, {"If-None-Match": etag}, service),
                        (f"{key}_bare_304", f"http://127.0.0.1:{bare_port}/", {"If-None-Match": etag}, bare)]
        f = results.figures
        for round_ in range(rounds):
            for connections in (1, 32):
                for label, target, headers, server in targets:
                    cpu = tree_cpu_seconds(server.pid)
                    result = wrk.run(f"{label}_c{connections}", target, connections=connections, seconds=seconds,
                                     headers=headers)
                    # CPU per answer (the server's processes and threads): steadier than req/s
                    # while other work shares the machine.
                    cpu_us = round((tree_cpu_seconds(server.pid) - cpu) / max(result.requests, 1) * 1e6, 1)
                    results.runs.append({**result.as_dict(), "round": round_, "server_cpu_us_per_request": cpu_us})
                    if result.errors:
                        results.notes.append(f"servers {label} c{connections}: {result.errors} errors")
                    prefix = f"servers_{label}"
                    f[f"{prefix}_cpu_us_c{connections}"] = min(cpu_us, f.get(f"{prefix}_cpu_us_c{connections}", cpu_us))
                    if result.rps > f.get(f"{prefix}_rps_c{connections}", 0.0):
                        f[f"{prefix}_rps_c{connections}"] = round(result.rps, 1)
                        f[f"{prefix}_p50_ms_c{connections}"] = result.p50_ms
                        f[f"{prefix}_p99_ms_c{connections}"] = result.p99_ms
                    log(f"  {label:36} c{connections:<2}: {result.rps:9.1f} req/s  p50 {result.p50_ms:7.2f} ms"
                        f"  p99 {result.p99_ms:7.2f} ms  server CPU {cpu_us:7.1f} µs/req")
        for key, _, _ in SERVERS:
            for connections in (1, 32):
                floor = f.get(f"servers_{key}_bare_304_rps_c{connections}")
                if floor:
                    f[f"servers_{key}_304_vs_bare_c{connections}"] = round(
                        f[f"servers_{key}_304_rps_c{connections}"] / floor, 3)
        for proc in procs:
            f[f"servers_peak_rss_mb_{proc.name.removeprefix('servers-')}"] = round(proc.peak_rss_mb(), 1)
    finally:
        for proc in reversed(procs):
            proc.stop()
        asyncio.run(drop_database(DATABASE))
    return results


def table(f: dict[str, float]) -> str:
    """The comparison as a Markdown table: one row per server and path."""
    from bench.common import fmt
    from bench.common import table as markdown

    rows = []
    names = [("samhandling_serve", "samhandling serve (as shipped)"), *((k, text) for k, text, _ in SERVERS)]
    for key, text in names:
        for path, what in (("warm", "warm 200"), ("304", "304"), ("bare_304", "bare app 304")):
            prefix = f"servers_{key}_{path}"
            if f"{prefix}_rps_c1" not in f:
                continue
            row = [text, what]
            for c in (1, 32):
                row += [fmt(f[f"{prefix}_rps_c{c}"]), fmt(f[f"{prefix}_p50_ms_c{c}"], 2),
                        fmt(f[f"{prefix}_p99_ms_c{c}"], 2)]
            rows.append([*row, fmt(f[f"{prefix}_cpu_us_c32"])])
    return markdown(rows, ["server", "path", "req/s c1", "p50 c1", "p99 c1", "req/s c32", "p50 c32", "p99 c32",
                           "server CPU µs/req c32"])
