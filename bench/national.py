"""National scale: one service instance (``samhandling serve``, one uvicorn process, the
dispatcher on) over a country's data on PostgreSQL — feeds and information loops under wrk,
then a 100,000-message outbox backlog drained to aiosmtpd — and its peak memory; then the same
backlog drained again by two instances on the same database."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench import wrk
from bench.common import (
    WORK,
    Proc,
    create_database,
    drop_database,
    dsn_for,
    free_port,
    http_get,
    percentile,
    sqlalchemy_url,
    wait_http,
)
from bench.dispatch_bench import sink_proc, wait_smtp
from bench.feed_serving import service_proc
from bench.national_data import National, add_backlog, generate

DATABASE = "samhandling_bench_national"
FULL = {"cases": 45_000, "backlog": 100_000, "drain_cap_s": 360.0, "feeds": 200, "cold": 60}
QUICK = {"cases": 4_500, "backlog": 10_000, "drain_cap_s": 45.0, "feeds": 50, "cold": 20}


@dataclass
class NationalResults:
    figures: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


async def outbox_state(dsn: str) -> dict[str, int]:
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        # The backlog's rows only: the instance's start-up alert scan queues mail of its own.
        rows = await connection.fetch(
            "SELECT status, count(*) FROM outboxmessage WHERE idempotency_key LIKE 'bench:%' GROUP BY status")
        return {r["status"]: int(r["count"]) for r in rows}
    finally:
        await connection.close()


async def explain_claim(dsn: str) -> str:
    """The claim query's plan on the full backlog, for the notes."""
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "EXPLAIN ANALYZE SELECT * FROM outboxmessage WHERE (status = 'pending' AND next_attempt_at <= now()) "
            "OR (status = 'sending' AND lease_until < now()) ORDER BY next_attempt_at, id LIMIT 50 "
            "FOR UPDATE SKIP LOCKED")
        return "\n".join(r[0] for r in rows)
    finally:
        await connection.close()


async def table_sizes(dsn: str) -> int:
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        value = await connection.fetchval("SELECT pg_database_size(current_database())")
        return int(value)
    finally:
        await connection.close()


async def reset_backlog(dsn: str) -> None:
    """The backlog's rows due again as when first written, and the answer links they made gone,
    so that a second drain does the same work as the first."""
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "UPDATE outboxmessage SET status = 'pending', sent_at = NULL, lease_until = NULL, claimed_by = '', "
            "attempts = 0, level = '', next_attempt_at = due_at WHERE idempotency_key LIKE 'bench:%'")
        await connection.execute("DELETE FROM answertoken")
    finally:
        await connection.close()


def _drain(dsn: str, backlog: int, cap_s: float) -> tuple[int, dict[str, Any], float]:
    """Wait (up to ``cap_s``) until no backlog row is pending or being sent: settled rows, the
    final count by status, and the seconds waited."""
    started = time.perf_counter()
    deadline = started + cap_s
    state: dict[str, Any] = {}
    while time.perf_counter() < deadline:
        time.sleep(2.0)
        state = asyncio.run(outbox_state(dsn))
        if not state.get("pending") and not state.get("sending"):
            break
    elapsed = time.perf_counter() - started
    return backlog - int(state.get("pending", 0)) - int(state.get("sending", 0)), state, elapsed


def _timed_gets(urls: list[tuple[str, dict[str, str]]]) -> tuple[list[float], int]:
    latencies: list[float] = []
    failures = 0
    for url, headers in urls:
        t0 = time.perf_counter()
        status, _, _ = http_get(url, headers)
        latencies.append(time.perf_counter() - t0)
        failures += status != 200
    return latencies, failures


def run(quick: bool, seconds: float, log: Callable[[str], None]) -> NationalResults:
    size = QUICK if quick else FULL
    results = NationalResults()
    f = results.figures
    asyncio.run(create_database(DATABASE))
    dsn = dsn_for(DATABASE)
    procs: list[Proc] = []
    try:
        now = datetime.now(UTC)
        t0 = time.perf_counter()
        national: National = asyncio.run(generate(dsn, int(size["cases"]), now, log))
        f["national_generate_s"] = round(time.perf_counter() - t0, 1)
        for table, count in national.counts.items():
            f[f"national_rows_{table}"] = count
        log(f"  generated in {f['national_generate_s']:.0f} s: " + ", ".join(
            f"{n} {t}" for t, n in national.counts.items()))

        sink = sink_proc(free_port(), "smtp-sink-national").start()
        procs.append(sink)
        asyncio.run(wait_smtp(int(sink.argv[-1])))
        port = free_port()
        service = service_proc("service-national", sqlalchemy_url(DATABASE), port, **{
            "SAMHANDLING_DISPATCHER_ENABLED": "true",
            "SAMHANDLING_DISPATCH_INTERVAL_SECONDS": "1",
            "SAMHANDLING_SMTP_HOST": "127.0.0.1",
            "SAMHANDLING_SMTP_PORT": sink.argv[-1],
            "SAMHANDLING_SMTP_SECURITY": "none",
            "SAMHANDLING_MAIL_FROM": "moter@kommune.example.org",
        }).start()
        procs.append(service)
        wait_http(f"http://127.0.0.1:{port}/health", timeout=120)
        base = f"http://127.0.0.1:{port}"
        rng = random.Random(3)

        # Feeds: the first request of each (cold), then wrk rotating over all of them (warm).
        coordinators = rng.sample(national.coordinators, min(int(size["feeds"]), len(national.coordinators)))
        cold, failures = _timed_gets([(f"{base}/feeds/{national.feed_token(u)}.ics", {})
                                      for u in coordinators[: int(size["cold"])]])
        _timed_gets([(f"{base}/feeds/{national.feed_token(u)}.ics", {}) for u in coordinators])
        f["national_feed_cold_p50_ms"] = round(percentile(cold, 50) * 1000, 2)
        f["national_feed_cold_p99_ms"] = round(percentile(cold, 99) * 1000, 2)
        if failures:
            results.notes.append(f"{failures} cold feed requests failed")
        feed_lua = wrk.script("national-feeds", [(f"/feeds/{national.feed_token(u)}.ics", "")
                                                 for u in coordinators])
        feed_run = wrk.run("national_feeds", f"{base}/", connections=32, seconds=seconds, lua=feed_lua)
        f["national_feed_rps"] = round(feed_run.rps, 1)
        f["national_feed_p50_ms"] = feed_run.p50_ms
        f["national_feed_p99_ms"] = feed_run.p99_ms
        f["national_feed_errors"] = feed_run.errors
        log(f"  feeds ({len(coordinators)} coordinators): cold p50 {f['national_feed_cold_p50_ms']} ms "
            f"p99 {f['national_feed_cold_p99_ms']} ms; wrk c32 {feed_run.rps:.0f} req/s p50 {feed_run.p50_ms} ms "
            f"p99 {feed_run.p99_ms} ms errors {feed_run.errors}")

        # Information loops: a coordinator's check of one of their cases, with their token.
        pairs: list[tuple[str, str]] = []
        for user in rng.sample(national.coordinators, min(300, len(national.coordinators))):
            case = rng.choice(national.cases_of[user])
            pairs.append((f"/cases/{case}/information-loops", f"Bearer {national.user_token(user)}"))
        status, _, _ = http_get(base + pairs[0][0], {"Authorization": pairs[0][1]})
        assert status == 200, f"information-loops answered {status}"
        loops_run = wrk.run("national_loops", f"{base}/", connections=32, seconds=seconds,
                            lua=wrk.script("national-loops", pairs))
        f["national_loops_rps"] = round(loops_run.rps, 1)
        f["national_loops_p50_ms"] = loops_run.p50_ms
        f["national_loops_p99_ms"] = loops_run.p99_ms
        f["national_loops_errors"] = loops_run.errors
        log(f"  information-loops: wrk c32 {loops_run.rps:.0f} req/s p50 {loops_run.p50_ms} ms "
            f"p99 {loops_run.p99_ms} ms errors {loops_run.errors}")

        # The backlog: written while the instance runs, as if an outage had just ended.
        backlog = asyncio.run(add_backlog(dsn, national, int(size["backlog"]), datetime.now(UTC)))
        f["national_backlog"] = backlog
        (WORK / "national-claim-plan.txt").write_text(asyncio.run(explain_claim(dsn)))
        settled, state, elapsed = _drain(dsn, backlog, float(size["drain_cap_s"]))
        f["national_backlog_settled"] = settled
        f["national_backlog_sent"] = int(state.get("sent", 0))
        f["national_backlog_seconds"] = round(elapsed, 1)
        f["national_backlog_msgs_per_s"] = round(settled / elapsed, 1)
        f["national_backlog_sent_per_s"] = round(int(state.get("sent", 0)) / elapsed, 1)
        f["national_backlog_drain_minutes_projected"] = round(backlog / max(settled / elapsed, 0.001) / 60, 1)
        if settled < backlog:
            results.notes.append(
                f"backlog drain stopped after {elapsed:.0f} s with {settled} of {backlog} settled; "
                f"at that rate all {backlog} take {f['national_backlog_drain_minutes_projected']} min")
        log(f"  backlog {backlog}: {settled} settled ({state.get('sent', 0)} sent, {state.get('suppressed', 0)} "
            f"suppressed) in {elapsed:.0f} s = {settled / elapsed:.1f} msgs/s")
        f["national_peak_rss_mb"] = round(service.peak_rss_mb(), 1)
        f["national_database_mb"] = round(asyncio.run(table_sizes(dsn)) / 1e6, 1)
        log(f"  peak RSS of the instance: {f['national_peak_rss_mb']} MB; database {f['national_database_mb']} MB")

        # The same backlog again, drained by two instances sharing the database (rule 6 at scale):
        # written back while no instance runs, counted from the moment both answer.
        service.stop()
        procs.remove(service)
        asyncio.run(reset_backlog(dsn))
        ports = [free_port(), free_port()]
        for n, port_n in enumerate(ports, start=1):
            env = {**service.env, "SAMHANDLING_PUBLIC_BASE_URL": f"http://127.0.0.1:{port_n}"}
            procs.append(Proc(f"service-national-{n}", [*service.argv[:-1], str(port_n)], env=env).start())
        for port_n in ports:
            wait_http(f"http://127.0.0.1:{port_n}/health", timeout=120)
        early = asyncio.run(outbox_state(dsn))
        before = backlog - int(early.get("pending", 0)) - int(early.get("sending", 0))
        settled, state, elapsed = _drain(dsn, backlog, float(size["drain_cap_s"]))
        settled -= before
        f["national_backlog_two_instances_settled"] = settled
        f["national_backlog_two_instances_msgs_per_s"] = round(settled / elapsed, 1)
        f["national_backlog_two_instances_vs_one"] = round(
            f["national_backlog_two_instances_msgs_per_s"] / max(f["national_backlog_msgs_per_s"], 0.001), 2)
        log(f"  backlog {backlog}, two instances: {settled} settled ({state.get('sent', 0)} sent) in {elapsed:.0f} s "
            f"= {settled / elapsed:.1f} msgs/s ({f['national_backlog_two_instances_vs_one']}× one instance)")
    finally:
        for proc in reversed(procs):
            proc.stop()
        asyncio.run(drop_database(DATABASE))
    return results
