"""Keeps bench/ importable and its pieces working, in a few seconds: the statistics, wrk's
script and parsing, the Radicale collection, the scheduling plans, the result table, and
on PostgreSQL the COPY generators with one cold feed render and a small dispatch drain.
The benchmarks themselves (``python3 bench/run.py``) are too slow for CI."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import (  # noqa: E402
    bare_asgi,
    calendar_data,
    common,
    dispatch_bench,
    feed_serving,
    national,
    run,
    scheduling,
    wrk,
)
from bench.national_data import add_backlog, generate  # noqa: E402

POSTGRES_ENABLED = os.environ.get("SAMHANDLING_TEST_POSTGRES", "on").lower() != "off"


def test_statistics() -> None:
    xs = [2.0, 4.0, 8.0, 16.0]
    assert common.fit_exponent(xs, [x**1.5 for x in xs]) == pytest.approx(1.5)
    assert common.percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50) == 3.0
    assert common.percentile(list(range(1, 101)), 99) == 99


def test_wrk_script_and_parse() -> None:
    lua = wrk.script("smoke", [("/feeds/a.ics", ""), ("/cases/1/information-loops", 'Bearer "x"')])
    text = lua.read_text()
    assert "targets" in text and '\\"x\\"' in text and "done = function" in text
    line = ('WRKJSON {"requests":300,"duration_us":2000000,"bytes":9000,"status_errors":1,"connect_errors":0,'
            '"read_errors":0,"write_errors":0,"timeouts":0,"p50_us":1500,"p90_us":2500,"p99_us":9000,'
            '"max_us":12000,"mean_us":1700.0}')
    result = wrk.parse("smoke", 32, "Running 2s test\n" + line + "\n")
    assert result.rps == 150 and result.errors == 1 and result.p99_ms == 9.0
    with pytest.raises(ValueError):
        wrk.run("elsewhere", "http://192.0.2.1/", connections=1, seconds=1)


def test_radicale_collection_holds_every_event(tmp_path: Path) -> None:
    from calendars.events import CalendarEvent
    from calendars.ical import render_event, render_feed

    start = datetime(2027, 1, 4, 8, tzinfo=UTC)
    events = [CalendarEvent(uid=f"u{i}", sequence=0, last_modified=start, summary=f"Møte {i}",
                            start=start + timedelta(days=i), end=start + timedelta(days=i, hours=1))
              for i in range(3)]
    body = render_feed("Bench", [render_event(e) for e in events])
    head, vtimezone, parts = calendar_data.split_events(body)
    assert head.startswith(b"BEGIN:VCALENDAR") and vtimezone.startswith(b"BEGIN:VTIMEZONE") and len(parts) == 3
    path = calendar_data.write_radicale_collection(body, tmp_path, "bench", "feed-3")
    folder = tmp_path / "collection-root" / "bench" / "feed-3"
    assert path == "/bench/feed-3/" and len(list(folder.glob("*.ics"))) == 3
    assert (folder / ".Radicale.props").exists()


def test_scheduling_plans_are_feasible() -> None:
    from calendars.planner import plan_schedule

    spec = scheduling.plan(4, 30)
    assert len(spec.members) == 4 and all(len(m.participant.busy) == 30 for m in spec.members)
    schedule = plan_schedule(spec, now=scheduling.NOW)
    assert schedule.planned and not schedule.unschedulable
    seconds, placed, _ = scheduling.time_plan(spec, 0.0, 1)
    assert seconds > 0 and placed == len(schedule.planned)


def test_goals_and_tables() -> None:
    figures = {
        "feed_bytes_500": 400_000, "feed_warm_rps_c32": 800.0, "nginx_rps_c32": 8000.0, "radicale_rps_c32": 10.0,
        "feed_cold_render_ms_500": 40.0, "feed_pure_render_ms_500": 15.0, "icalendar_to_ical_ms_500": 120.0,
        "icalendar_from_ical_ms_500": 240.0, "feed_after_change_p50_ms_500": 50.0,
        "feed_warm_rps_c32_500": 800.0, "feed_warm_p50_ms_c32_500": 40.0, "feed_warm_p99_ms_c32_500": 90.0,
        "schedule_plans_per_s": 40.0, "schedule_exponent_participants": 0.5, "schedule_exponent_participants_tail": 0.6,
        "schedule_exponent_busy": 0.8, "schedule_exponent_busy_tail": 1.1, "dispatch_msgs_per_s": 40.0,
        "raw_smtp_msgs_per_s": 200.0, "dispatch_ratio_vs_raw": 0.2, "feed_304_ratio_vs_bare": 0.4,
    }
    national = {"national_backlog_msgs_per_s": 160.0, "national_backlog_two_instances_msgs_per_s": 280.0,
                "national_loops_p99_ms": 120.0, "national_feed_p99_ms": 60.0, "national_peak_rss_mb": 450.0}
    for key in ("rps_c1", "p50_ms_c1", "p99_ms_c1", "rps_c32", "p50_ms_c32", "p99_ms_c32", "cpu_us_c32"):
        figures[f"servers_uvicorn_httptools_uvloop_304_{key}"] = 1.0
    rows = {g["goal"]: g for g in run.goals(figures | national)}
    assert rows["304 ≥ 50 % of a bare ASGI app on the same server (c32)"]["met"] is False
    assert rows["national: 100,000-message backlog ≥ 150 msgs/s, one instance"]["met"] is True
    assert rows["national: two instances ≥ 1.8× one (backlog msgs/s)"]["met"] is False  # 1.75×
    assert rows["national: information loops p99 ≤ 150 ms (c32)"]["met"] is True
    assert rows["national: feed p99 ≤ 50 ms (c32)"]["met"] is False
    assert rows["national: peak RSS of one instance ≤ 500 MB"]["met"] is True
    assert rows["warm feed ≥ 100× Radicale req/s (c32, 500)"]["met"] is False
    assert rows["render alone ≤ 25 % of icalendar to_ical (500)"]["met"] is True
    assert rows["dispatch ≥ 80 % of bare aiosmtplib"]["met"] is False
    text = run.tables(figures, list(rows.values()), 15)
    assert "| 500" in text and "Goals" in text and "missed" in text
    assert "| uvicorn, httptools, uvloop | 304" in text


def test_bare_app_answers_the_service_304_with_its_headers() -> None:
    """The floor under the service's 304 sends what the service's 304 sends, less what the
    server adds itself."""
    service = {"ETag": '"abc"', "Cache-Control": "private, no-cache", "X-Request-Id": "r-1", "Date": "now",
               "Server": "uvicorn", "Connection": "keep-alive"}
    headers = bare_asgi.replayable(service)
    assert headers == [("etag", '"abc"'), ("cache-control", "private, no-cache"), ("x-request-id", "r-1")]
    app = bare_asgi.not_modified_app(headers)
    sent: list[bare_asgi.Message] = []
    lifespan = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> bare_asgi.Message:
        return next(lifespan)

    async def send(message: bare_asgi.Message) -> None:
        sent.append(message)

    async def serve() -> None:
        await app({"type": "lifespan"}, receive, send)
        await app({"type": "http", "method": "GET", "path": "/"}, receive, send)

    asyncio.run(serve())
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete",
                                         "http.response.start", "http.response.body"]
    assert sent[2]["status"] == 304
    assert sent[2]["headers"] == [(b"etag", b'"abc"'), (b"cache-control", b"private, no-cache"),
                                  (b"x-request-id", b"r-1")]


@pytest.mark.skipif(not POSTGRES_ENABLED, reason="SAMHANDLING_TEST_POSTGRES=off")
def test_generators_cold_render_and_dispatch_on_postgres(postgres_url: str) -> None:
    """COPY generators into the test database, one cold feed render, a five-message drain
    to a real aiosmtpd server."""
    from smtp_server import SmtpServer

    from notifications.transport import SmtpSecurity, SmtpSettings, SmtpTransport

    dsn = postgres_url.replace("postgresql+asyncpg://", "postgresql://", 1)

    async def truncate() -> None:
        import asyncpg

        connection = await asyncpg.connect(dsn)
        try:
            tables = [r[0] for r in await connection.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'")]
            await connection.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
        finally:
            await connection.close()

    now = datetime.now(UTC)
    asyncio.run(truncate())
    fixtures = asyncio.run(calendar_data.seed_feed_calendars(dsn, (20,), now))
    full, pure, body = asyncio.run(feed_serving.cold_render(postgres_url, fixtures[20].token, 1))
    assert body.count(b"BEGIN:VEVENT") == 20 and full and pure

    asyncio.run(truncate())
    data = asyncio.run(generate(dsn, 6, now, lambda _: None, complete_consent=True))
    assert data.counts["case"] == 6 and data.counts["meeting"] >= 6 * 12
    assert data.counts["contact"] >= 6 * 8 and data.counts["consentrecord"] > 0
    assert asyncio.run(add_backlog(dsn, data, 5, now)) == 5
    server = SmtpServer()
    server.up()
    try:
        transport = dispatch_bench.Recording(SmtpTransport(SmtpSettings(
            host="127.0.0.1", port=server.port, security=SmtpSecurity.NONE, timeout=10)))
        sent, seconds = asyncio.run(dispatch_bench.drain(postgres_url, server.port, transport))
    finally:
        server.down()
    assert sent == 5 and len(server.arrivals) == 5 and seconds > 0
    assert asyncio.run(national.outbox_state(dsn)) == {"sent": 5}
    asyncio.run(truncate())
