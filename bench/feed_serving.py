"""Feed serving: the service's coordinator feed (warm, 304, cold) next to Radicale 3.9 and
nginx serving the same bytes, and its 304 next to a bare ASGI app answering a fixed 304 on
the same server, under wrk; and the cold render next to icalendar's own parse and
serialisation of the same calendar, in the same run."""

from __future__ import annotations

import asyncio
import base64
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import wrk
from bench.calendar_data import seed_feed_calendars, write_radicale_collection
from bench.common import (
    VENV_BIN,
    WORK,
    Proc,
    create_database,
    drop_database,
    dsn_for,
    free_port,
    http_get,
    median,
    percentile,
    sqlalchemy_url,
    wait_http,
)

DATABASE = "samhandling_bench_feeds"
RADICALE_USER = "bench"
#: ``samhandling serve`` runs one process; nginx gets as many workers.
SERVICE_PROCESSES = 1


@dataclass
class FeedResults:
    figures: dict[str, float] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def service_proc(name: str, database_url: str, port: int, **env: str) -> Proc:
    """``samhandling serve``: the command production runs (one uvicorn process, httptools, uvloop)."""
    return Proc(name, [str(VENV_BIN / "samhandling"), "serve", "--host", "127.0.0.1", "--port", str(port)], env={
        "SAMHANDLING_DATABASE_URL": database_url,
        "SAMHANDLING_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "SAMHANDLING_DISPATCHER_ENABLED": "false",
        "SAMHANDLING_LOG_LEVEL": "WARNING",
        **env,
    })


def workers_proc(name: str, database_url: str, port: int, workers: int) -> Proc:
    """The same app under ``uvicorn --workers N``: not how ``samhandling serve`` runs, shown
    beside it to say what more processes on this machine would give."""
    return Proc(name, [str(VENV_BIN / "uvicorn"), "--factory", "coordination.app:create_app", "--host", "127.0.0.1",
                       "--port", str(port), "--workers", str(workers), "--http", "httptools", "--loop", "uvloop",
                       "--no-access-log", "--log-level", "warning"],
                env={"SAMHANDLING_DATABASE_URL": database_url, "SAMHANDLING_DISPATCHER_ENABLED": "false",
                     "SAMHANDLING_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", "SAMHANDLING_LOG_LEVEL": "WARNING"})


def bare_proc(port: int, headers: Sequence[tuple[str, str]]) -> Proc:
    """bench/bare_asgi.py: a fixed ``304`` with the headers of the service's, run by the server
    and options of ``samhandling serve`` (its ``run_server``): the floor under the service's 304."""
    argv = [str(VENV_BIN / "python"), "-m", "bench.bare_asgi", "--host", "127.0.0.1", "--port", str(port)]
    for name, value in headers:
        argv += ["--header", f"{name}: {value}"]
    return Proc("bare-asgi-304", argv, env={"SAMHANDLING_LOG_LEVEL": "WARNING"})


def service_304_headers(url: str, etag: str) -> list[tuple[str, str]]:
    """The headers the service's own 304 carries, for the bare app to send the same."""
    from bench.bare_asgi import replayable

    status, _, headers = http_get(url, {"If-None-Match": etag})
    assert status == 304, status
    return replayable(headers)


def nginx_proc(root: Path, port: int, workers: int) -> Proc:
    """nginx as Debian ships it, with one static root and ``workers`` worker processes (as
    many as the service has): the ceiling for this machine."""
    conf = WORK / "nginx.conf"
    conf.write_text(f"""
daemon off;
worker_processes {workers};
pid {WORK}/nginx.pid;
error_log {WORK}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    types {{ text/calendar ics; }}
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {WORK}/nginx-tmp;
    proxy_temp_path {WORK}/nginx-tmp;
    fastcgi_temp_path {WORK}/nginx-tmp;
    uwsgi_temp_path {WORK}/nginx-tmp;
    scgi_temp_path {WORK}/nginx-tmp;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        etag on;
    }}
}}
""")
    (WORK / "nginx-tmp").mkdir(parents=True, exist_ok=True)
    return Proc("nginx", [shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(conf), "-p", str(WORK)])


def radicale_proc(storage: Path, port: int) -> Proc:
    """Radicale 3.9 with its defaults, but no authentication cost (any login accepted)."""
    conf = WORK / "radicale.conf"
    conf.write_text(f"""
[server]
hosts = 127.0.0.1:{port}
[auth]
type = none
[rights]
type = owner_only
[storage]
filesystem_folder = {storage}
[web]
type = none
[logging]
level = warning
""")
    return Proc("radicale", [str(VENV_BIN / "python"), "-m", "radicale", "--config", str(conf)])


def _basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:x".encode()).decode()


# --- in-process: cold render and icalendar ---------------------------------------------


async def cold_render(database_url: str, token: str, repeat: int) -> tuple[list[float], list[float], bytes]:
    """Full cold serves (token query, meetings, participants, disclosure, every event
    rendered, body hashed) with an empty fragment cache each time, and the pure rendering
    part of them (render_event for every event and render_feed)."""
    from calendars.ical import render_event, render_feed
    from coordination.context import ServiceContext
    from coordination.feeds.render import FragmentCache
    from coordination.feeds.runtime import FeedRuntime
    from coordination.settings import Settings

    events: list[Any] = []

    class Recording(FragmentCache):
        def get(self, event: Any) -> bytes:
            events.append(event)
            return super().get(event)

    ctx = ServiceContext.create(Settings(database_url=database_url, dispatcher_enabled=False))
    full: list[float] = []
    pure: list[float] = []
    body = b""
    try:
        for _ in range(repeat + 1):  # the first warms the pool and SQLAlchemy's statement cache
            runtime = FeedRuntime()
            runtime.fragments = Recording()
            events.clear()
            t0 = time.perf_counter()
            answer = await runtime.serve(ctx, token)
            full.append(time.perf_counter() - t0)
            assert answer.status == 200, answer
            body = answer.body
            captured = list(events)
            t0 = time.perf_counter()
            render_feed("Samhandling – mine saker", [render_event(e) for e in captured])
            pure.append(time.perf_counter() - t0)
    finally:
        await ctx.engine.dispose()
    return full[1:], pure[1:], body


def icalendar_times(body: bytes, repeat: int) -> tuple[list[float], list[float]]:
    """icalendar 7's own parse (from_ical) and serialisation (to_ical) of the same bytes."""
    import icalendar

    parse: list[float] = []
    serialise: list[float] = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        calendar = icalendar.Calendar.from_ical(body)
        parse.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        calendar.to_ical()
        serialise.append(time.perf_counter() - t0)
    return parse, serialise


async def bump_version(dsn: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("UPDATE unit SET data_version = data_version + 1")
    finally:
        await connection.close()


def profile_cold(database_url: str, token: str, out: Path) -> None:
    """A pyinstrument profile of cold serves, for the notes."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        return
    profiler = Profiler(interval=0.0005)
    profiler.start()
    asyncio.run(cold_render(database_url, token, 3))
    profiler.stop()
    out.write_text(profiler.output_text(unicode=True, color=False, show_all=False))


# --- the run -------------------------------------------------------------------------------


def run(sizes: tuple[int, ...], seconds: float, log: Callable[[str], None]) -> FeedResults:
    results = FeedResults()
    asyncio.run(create_database(DATABASE))
    url = sqlalchemy_url(DATABASE)
    procs: list[Proc] = []
    try:
        fixtures = asyncio.run(seed_feed_calendars(dsn_for(DATABASE), sizes, datetime.now(UTC)))
        service_port, nginx_port, radicale_port, workers_port = free_port(), free_port(), free_port(), free_port()
        service = service_proc("service-feeds", url, service_port).start()
        workers = workers_proc("service-feeds-2workers", url, workers_port, 2).start()
        procs += [service, workers]
        wait_http(f"http://127.0.0.1:{service_port}/health")
        wait_http(f"http://127.0.0.1:{workers_port}/health")
        static = WORK / "static"
        static.mkdir(parents=True, exist_ok=True)
        storage = WORK / "radicale"
        bodies: dict[int, bytes] = {}
        etags: dict[int, str] = {}
        paths: dict[int, str] = {}
        for size, fixture in fixtures.items():
            status, body, headers = http_get(f"http://127.0.0.1:{service_port}/feeds/{fixture.token}.ics")
            assert status == 200, (status, body[:200])
            assert body.count(b"BEGIN:VEVENT") == size, "the feed must hold every meeting"
            bodies[size], etags[size] = body, headers["etag"]
            (static / f"feed-{size}.ics").write_bytes(body)
            paths[size] = write_radicale_collection(body, storage, RADICALE_USER, f"feed-{size}")
            results.figures[f"feed_bytes_{size}"] = len(body)
        nginx = nginx_proc(static, nginx_port, SERVICE_PROCESSES).start()
        radicale = radicale_proc(storage, radicale_port).start()
        bare_port = free_port()
        first_url = f"http://127.0.0.1:{service_port}/feeds/{fixtures[sizes[0]].token}.ics"
        bare = bare_proc(bare_port, service_304_headers(first_url, etags[sizes[0]])).start()
        procs += [nginx, radicale, bare]
        results.figures["nginx_workers"] = SERVICE_PROCESSES
        wait_http(f"http://127.0.0.1:{nginx_port}/feed-{sizes[0]}.ics")
        wait_http(f"http://127.0.0.1:{bare_port}/", status=304)
        auth = {"Authorization": _basic(RADICALE_USER)}
        for size in sizes:  # Radicale builds its item cache on the first read
            wait_http(f"http://127.0.0.1:{radicale_port}{paths[size]}", timeout=300, headers=auth)
            status, body, _ = http_get(f"http://127.0.0.1:{radicale_port}{paths[size]}", auth)
            assert status == 200 and body.count(b"BEGIN:VEVENT") == size, "Radicale must serve every event"

        for size, fixture in fixtures.items():
            repeat = 7 if size <= 1000 else 3
            full, pure, body = asyncio.run(cold_render(url, fixture.token, repeat))
            assert body == bodies[size], "the in-process render must give the served bytes"
            parse, serialise = icalendar_times(body, repeat)
            results.figures[f"feed_cold_render_ms_{size}"] = round(median(full) * 1000, 2)
            results.figures[f"feed_pure_render_ms_{size}"] = round(median(pure) * 1000, 2)
            results.figures[f"icalendar_to_ical_ms_{size}"] = round(median(serialise) * 1000, 2)
            results.figures[f"icalendar_from_ical_ms_{size}"] = round(median(parse) * 1000, 2)
            log(f"  {size}: cold serve {median(full) * 1000:.1f} ms (render alone {median(pure) * 1000:.1f} ms); "
                f"icalendar from_ical {median(parse) * 1000:.1f} ms, to_ical {median(serialise) * 1000:.1f} ms")
            # Over HTTP: the first request after a change (the fragment cache stays warm).
            latencies = []
            for _ in range(20 if size <= 1000 else 8):
                asyncio.run(bump_version(dsn_for(DATABASE)))
                t0 = time.perf_counter()
                status, _, _ = http_get(f"http://127.0.0.1:{service_port}/feeds/{fixture.token}.ics")
                latencies.append(time.perf_counter() - t0)
                assert status == 200
            results.figures[f"feed_after_change_p50_ms_{size}"] = round(percentile(latencies, 50) * 1000, 2)
            results.figures[f"feed_after_change_p99_ms_{size}"] = round(percentile(latencies, 99) * 1000, 2)
        profile_cold(url, fixtures[sizes[0]].token, WORK / f"profile-cold-{sizes[0]}.txt")

        for size, fixture in fixtures.items():
            feed_url = f"http://127.0.0.1:{service_port}/feeds/{fixture.token}.ics"
            workers_url = f"http://127.0.0.1:{workers_port}/feeds/{fixture.token}.ics"
            http_get(feed_url)  # warm again after the cold runs
            for _ in range(4):  # each worker process keeps its own cache
                http_get(workers_url)
            targets: list[tuple[str, str, dict[str, str]]] = [
                ("nginx", f"http://127.0.0.1:{nginx_port}/feed-{size}.ics", {}),
                ("feed_warm", feed_url, {}),
                ("feed_304", feed_url, {"If-None-Match": etags[size]}),
                ("radicale", f"http://127.0.0.1:{radicale_port}{paths[size]}", auth),
            ]
            if size == sizes[0]:  # the bare app's answer does not depend on the calendar
                targets.insert(3, ("bare_304", f"http://127.0.0.1:{bare_port}/", {"If-None-Match": etags[size]}))
            for connections in (1, 32):
                extra: list[tuple[str, str, dict[str, str]]] = (
                    [("feed_warm_2workers", workers_url, {})] if connections == 32 else [])
                for label, target, headers in targets + extra:  # interleaved: one of each in turn
                    result = wrk.run(f"{label}_{size}", target, connections=connections, seconds=seconds,
                                     headers=headers)
                    results.runs.append(result.as_dict())
                    results.figures[f"{label}_rps_c{connections}_{size}"] = round(result.rps, 1)
                    results.figures[f"{label}_p50_ms_c{connections}_{size}"] = result.p50_ms
                    results.figures[f"{label}_p99_ms_c{connections}_{size}"] = result.p99_ms
                    if result.errors:
                        results.notes.append(f"{label} {size} c{connections}: {result.errors} errors")
                    log(f"  {label:9} {size:5} c{connections:<2}: {result.rps:9.1f} req/s  p50 {result.p50_ms:8.2f} ms"
                        f"  p99 {result.p99_ms:8.2f} ms  errors {result.errors}")
        results.figures["service_peak_rss_mb_feeds"] = round(service.peak_rss_mb(), 1)
    finally:
        for proc in reversed(procs):
            proc.stop()
        asyncio.run(drop_database(DATABASE))
    first = sizes[0]
    f = results.figures
    for key in ("rps_c32", "rps_c1", "p50_ms_c32", "p99_ms_c32"):
        for label in ("feed_warm", "feed_304", "bare_304", "nginx", "radicale", "feed_warm_2workers"):
            if f"{label}_{key}_{first}" in f:
                f[f"{label}_{key}"] = f[f"{label}_{key}_{first}"]
    if f.get("bare_304_rps_c32"):
        f["feed_304_ratio_vs_bare"] = round(f["feed_304_rps_c32"] / f["bare_304_rps_c32"], 4)
    return results


def summary_ratios(f: dict[str, float], size: int) -> dict[str, float]:
    """The goals' ratios for one calendar size."""
    out: dict[str, float] = {}
    if f.get(f"nginx_rps_c32_{size}"):
        out[f"feed_warm_vs_nginx_c32_{size}"] = round(f[f"feed_warm_rps_c32_{size}"] / f[f"nginx_rps_c32_{size}"], 4)
    if f.get(f"radicale_rps_c32_{size}"):
        out[f"feed_warm_vs_radicale_c32_{size}"] = round(
            f[f"feed_warm_rps_c32_{size}"] / f[f"radicale_rps_c32_{size}"], 1)
    if f.get(f"icalendar_to_ical_ms_{size}"):
        out[f"cold_render_vs_to_ical_{size}"] = round(
            f[f"feed_cold_render_ms_{size}"] / f[f"icalendar_to_ical_ms_{size}"], 3)
    return out

