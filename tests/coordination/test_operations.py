"""What an operator runs the service by, on SQLite and PostgreSQL: ``/metrics`` a Prometheus
server can read (and that names no one), ``/health/live`` and ``/health/ready``, and log lines
that carry the request's id."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from db_backends import POSTGRES_ADMIN_URL, POSTGRES_ENABLED
from litestar import Litestar, get
from litestar.testing import AsyncTestClient
from mail_fixtures import meeting, new_feed
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from coordination import cli, logs
from coordination.api.operations import migration_heads
from coordination.app import create_app
from coordination.clock import Clock
from coordination.context import ServiceContext
from coordination.metrics import GROUPS, ROUTE_GROUPS
from coordination.migrate import alembic_config
from coordination.settings import Settings

Client = AsyncTestClient[Litestar]
ROOT = Path(__file__).resolve().parents[2]
FAMILIES = {
    "samhandling_outbox_depth", "samhandling_outbox_oldest_due_age_seconds", "samhandling_database_up",
    "samhandling_dispatch_outcomes", "samhandling_smtp_send_seconds", "samhandling_feed_answers",
    "samhandling_feed_renders", "samhandling_request_seconds", "samhandling_db_pool_size",
    "samhandling_db_pool_checked_out", "samhandling_db_pool_overflow",
}
SCHEMA_BEHIND = {"status": "database schema not at the migrations' head"}
UNAVAILABLE = {"status": "database unavailable"}


async def scrape(client: Client, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics`` as parsed by prometheus-client's own parser."""
    answer = await client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(answer.text) for sample in family.samples}


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# --- /metrics ----------------------------------------------------------------------------------


async def test_metrics_parse_and_hold_every_family(client: Client) -> None:
    answer = await client.get("/metrics")
    families = {family.name for family in text_string_to_metric_families(answer.text)}
    assert families >= FAMILIES, FAMILIES - families
    samples = await scrape(client)
    assert value(samples, "samhandling_database_up") == 1
    assert value(samples, "samhandling_db_pool_size") >= 1
    assert value(samples, "samhandling_outbox_depth", status="pending", channel="email") == 0


async def test_requests_are_timed_by_route_group(client: Client, people: Any, team: Any) -> None:
    before = await scrape(client)
    await client.get(f"/cases/{team.case_id}", headers=people.coordinator.headers)
    await client.get("/health/live")
    missing = await client.get("/no-such-page", headers={"X-Request-ID": "lost-1"})
    assert missing.status_code == 404 and missing.headers["x-request-id"] == "lost-1"  # no route, still seen
    after = await scrape(client)
    for group, at_least in (("api", 1), ("health", 1), ("metrics", 1), ("other", 1)):
        grown = (value(after, "samhandling_request_seconds_count", group=group)
                 - value(before, "samhandling_request_seconds_count", group=group))
        assert grown >= at_least, group
    buckets = sorted((float(dict(labels)["le"]), count) for (name, labels), count in after.items()
                     if name == "samhandling_request_seconds_bucket" and dict(labels)["group"] == "api")
    assert [count for _, count in buckets] == sorted(count for _, count in buckets)  # cumulative
    assert buckets[-1] == (float("inf"), value(after, "samhandling_request_seconds_count", group="api"))


def test_every_route_belongs_to_a_named_group(app: Litestar) -> None:
    """A new route lands in a group of its own kind, not in ``other`` by being forgotten."""
    firsts = {route.path[1:].split("/", 1)[0] for route in app.routes}
    assert firsts - set(ROUTE_GROUPS) == set()
    assert set(ROUTE_GROUPS.values()) <= set(GROUPS)


async def test_a_feed_poll_counts_under_its_status(client: Client, people: Any, team: Any) -> None:
    feed = await new_feed(client, people.coordinator, team.case_id)
    path = f"/feeds/{feed['token']}.ics"
    before = await scrape(client)
    served = await client.get(path, headers={"X-Request-ID": "calendar-poll-1"})
    assert served.status_code == 200 and served.headers["x-request-id"] == "calendar-poll-1"
    assert (await client.get(path, headers={"If-None-Match": served.headers["etag"]})).status_code == 304
    revoked = await client.delete(f"/feeds/{feed['id']}", headers=people.coordinator.headers)
    assert revoked.status_code in (200, 204), revoked.text
    assert (await client.get(path)).status_code == 410
    after = await scrape(client)
    for status in ("200", "304", "410"):
        grown = (value(after, "samhandling_feed_answers_total", status=status)
                 - value(before, "samhandling_feed_answers_total", status=status))
        assert grown == 1, status
    assert value(after, "samhandling_request_seconds_count", group="feeds") >= 3


async def test_a_queued_message_shows_in_the_outbox_depth_and_its_lag(
    client: Client, people: Any, team: Any, clock: Clock
) -> None:
    await meeting(client, people, team, [team.mother])  # an invitation to the mother, by e-mail
    samples = await scrape(client)
    assert value(samples, "samhandling_outbox_depth", status="pending", channel="email") >= 1
    assert value(samples, "samhandling_outbox_depth", status="pending", channel="sms") == 0
    assert value(samples, "samhandling_outbox_oldest_due_age_seconds") == 0  # due now, not late yet
    clock.advance(timedelta(minutes=10))  # no dispatcher runs in these tests: it falls behind
    samples = await scrape(client)
    assert value(samples, "samhandling_outbox_oldest_due_age_seconds") == pytest.approx(600, abs=1)


async def test_metrics_name_no_one(client: Client, people: Any, case_body: Any) -> None:
    """A case, contact and feed with words found nowhere else, then everything that moves a
    metric: the whole text holds none of them, and no label holds an id."""
    headers = people.coordinator.headers
    created = await client.post("/cases", headers=headers, json=case_body(
        reference="BV-QX-90417", child_given_name="Zebulonia", child_initials="Z.Q."))
    assert created.status_code == 201, created.text
    case_id = created.json()["id"]
    contact = await client.post(f"/cases/{case_id}/contacts", headers=headers, json={
        "name": "Quirinus Vandelbrot", "role": "parent", "daily_care": True, "email": "quirinus@vandel.example.org"})
    assert contact.status_code == 201, contact.text
    feed = await new_feed(client, people.coordinator, case_id)
    await client.get(f"/feeds/{feed['token']}.ics")
    await client.get(f"/feeds/{feed['token'][:-2]}xx.ics")  # a miss
    await client.get(f"/cases/{case_id}/contacts/{contact.json()['id']}", headers=headers)
    await client.get("/cases/987654", headers=headers)
    answer = await client.get("/metrics")
    for word in ("Zebulonia", "Z.Q.", "QX-90417", "Quirinus", "Vandelbrot", "vandel.example.org", feed["token"],
                 feed["token"][:12], people.coordinator.token, "/cases/", "/feeds/", "987654"):
        assert word not in answer.text, word
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            for name, label in sample.labels.items():
                numeric = name in {"le", "quantile"} or (name == "status" and re.fullmatch(r"[1-5]\d\d", label))
                assert numeric or not re.search(r"\d{3,}|@|/", label) or family.name == "python_info", (
                    sample.name, name, label)


async def test_metrics_take_the_token_when_one_is_set(settings: Settings, clock: Clock) -> None:
    token = "m" * 40
    app = create_app(replace(settings, metrics_token=token), clock)
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/metrics")).status_code == 401
        assert (await client.get("/metrics", headers={"Authorization": "Bearer " + "n" * 40})).status_code == 401
        assert (await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})).status_code == 200


def test_a_short_metrics_token_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="SAMHANDLING_METRICS_TOKEN must be at least 32"):
        Settings.from_env({"SAMHANDLING_METRICS_TOKEN": "secret"})


# --- health --------------------------------------------------------------------------------


async def test_ready_when_the_database_answers_at_the_head(client: Client) -> None:
    for path in ("/health/live", "/health/ready", "/health"):
        answer = await client.get(path)
        assert (answer.status_code, answer.json()) == (200, {"status": "ok"}), path


def _previous_revision() -> str:
    from alembic.script import ScriptDirectory

    (head,) = migration_heads()
    down = ScriptDirectory.from_config(alembic_config("")).get_revision(head).down_revision
    assert isinstance(down, str)
    return down


async def test_not_ready_while_the_schema_is_behind(client: Client, service: ServiceContext) -> None:
    (head,) = migration_heads()
    async with service.engine.begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": _previous_revision()})
    try:
        ready = await client.get("/health/ready")
        assert (ready.status_code, ready.json()) == (503, SCHEMA_BEHIND)
        assert (await client.get("/health")).status_code == 503
        assert (await client.get("/health/live")).status_code == 200
    finally:
        async with service.engine.begin() as connection:
            await connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
    assert (await client.get("/health/ready")).status_code == 200


needs_postgres = pytest.mark.skipif(not POSTGRES_ENABLED, reason="SAMHANDLING_TEST_POSTGRES=off")


@needs_postgres
async def test_not_ready_on_a_database_never_migrated(tmp_path: Path) -> None:
    name = f"samhandling_empty_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
        settings = replace(Settings(), database_url=url, dispatcher_enabled=False, mail_folder=tmp_path)
        async with AsyncTestClient(app=create_app(settings)) as client:
            ready = await client.get("/health/ready")
            assert (ready.status_code, ready.json()) == (503, SCHEMA_BEHIND)
            assert (await client.get("/health/live")).status_code == 200
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@needs_postgres
async def test_not_ready_when_the_database_is_unreachable(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://samhandling@127.0.0.1:1/samhandling"  # nothing listens on port 1
    settings = replace(Settings(), database_url=url, dispatcher_enabled=False, mail_folder=tmp_path)
    async with AsyncTestClient(app=create_app(settings)) as client:
        for path in ("/health/ready", "/health"):
            answer = await client.get(path)
            assert (answer.status_code, answer.json()) == (503, UNAVAILABLE), path
        assert (await client.get("/health/live")).status_code == 200
        samples = await scrape(client)  # the scrape still answers, and says the database is down
        assert value(samples, "samhandling_database_up") == 0
        assert not [key for key in samples if key[0] == "samhandling_outbox_depth"]


def test_compose_and_the_image_check_health() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    assert "/health/ready" in " ".join(compose["app"]["healthcheck"]["test"])
    assert compose["app"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert compose["proxy"]["depends_on"]["app"]["condition"] == "service_healthy"
    assert "/health/live" in (ROOT / "Dockerfile").read_text()


# --- logs ----------------------------------------------------------------------------------


@get("/test-logs-a-line", sync_to_thread=False)
def logs_a_line() -> str:
    logging.getLogger("samhandling.test").warning("a line while serving")
    return "ok"


@get("/test-fails", sync_to_thread=False)
def fails() -> str:
    raise RuntimeError("Kari Nordmann, 010203 12345")


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the JSON set-up writes, caught from the root logger."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.formatter(logs.LogFormat.JSON))
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_log_lines_carry_the_request_id(settings: Settings, clock: Clock, json_lines: io.StringIO) -> None:
    app = create_app(settings, clock, extra_routes=[logs_a_line, fails])
    async with AsyncTestClient(app=app) as client:
        given = await client.get("/test-logs-a-line", headers={"X-Request-ID": "req-7f3a.42"})
        failed = await client.get("/test-fails", headers={"X-Request-ID": "req-failing"})
        odd = await client.get("/test-logs-a-line", headers={"X-Request-ID": "<script>"})
        made = await client.get("/health/live")
    logging.getLogger("samhandling.test").warning("a line outside any request")
    assert given.headers["x-request-id"] == "req-7f3a.42"
    assert failed.status_code == 500 and failed.headers["x-request-id"] == "req-failing"
    assert re.fullmatch(r"[0-9a-f]{12}-[0-9a-f]+", odd.headers["x-request-id"])
    assert re.fullmatch(r"[0-9a-f]{12}-[0-9a-f]+", made.headers["x-request-id"]) and made.headers["x-request-id"] != (
        odd.headers["x-request-id"])
    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    ours = {(line["message"], line.get("request_id")) for line in lines if line["logger"].startswith("samhandling")}
    assert ("a line while serving", "req-7f3a.42") in ours
    assert ("a line while serving", odd.headers["x-request-id"]) in ours
    assert ("a line outside any request", None) in ours
    (error,) = [line for line in lines if line.get("request_id") == "req-failing"]
    assert error["level"] == "ERROR" and "RuntimeError" in error["message"]
    assert "Kari" not in json_lines.getvalue() and "12345" not in json_lines.getvalue()
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])


def test_json_lines_name_an_exception_without_its_text() -> None:
    try:
        raise ValueError("Key (email)=(kari@example.org) already exists")
    except ValueError:
        record = logging.LogRecord("samhandling", logging.ERROR, __file__, 1, "insert failed", (), None)
        import sys

        record.exc_info = sys.exc_info()
    line = json.loads(logs.formatter(logs.LogFormat.JSON).format(record))
    assert line["exception"] == "ValueError" and line["message"] == "insert failed"
    assert "kari" not in json.dumps(line)
    assert any("test_operations.py" in frame for frame in line["at"])


def test_the_text_format_is_unchanged() -> None:
    record = logging.LogRecord("samhandling.outbox", logging.INFO, __file__, 1, "outbox %d: sent", (7,), None)
    line = logs.formatter(logs.LogFormat.TEXT).format(record)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO samhandling.outbox outbox 7: sent", line), line
    assert Settings.from_env({}).log_format is logs.LogFormat.TEXT


def test_an_unknown_log_format_stops_the_start(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SAMHANDLING_LOG_FORMAT", "xml")
    with pytest.raises(SystemExit) as stopped:
        cli.main(["migrate"])
    assert stopped.value.code == 2
    assert "SAMHANDLING_LOG_FORMAT must be text or json, not 'xml'" in capsys.readouterr().err
