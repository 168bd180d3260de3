"""The warm feed poll reads nothing from the database, and is still never stale: every change
that takes a feed away or drops a meeting is seen at the next poll, on both databases — in
this process at once, from other instances by NOTIFY on PostgreSQL, and by reading the
database on every poll while that channel is down.

Each test first shows that the feed is warm (a poll that sends no SQL statement at all), so
that the change meets a cached state; the last test checks what migration 0010 announces.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from db_backends import POSTGRES_ENABLED
from litestar import Litestar
from mail_fixtures import Client, consent, meeting, new_feed
from prometheus_client import REGISTRY
from sqlalchemy import event
from sqlalchemy.engine import make_url

from coordination.feeds import invalidation
from coordination.feeds.listener import APPLICATION_NAME, CHANNEL
from coordination.feeds.runtime import FeedRuntime
from coordination.settings import Settings

#: Bound on waiting for something asynchronous (a notice, a reconnection) to happen.
PATIENCE = 5.0


@contextmanager
def statements_of(app: Litestar) -> Iterator[list[str]]:
    """Every SQL statement the app sends while the block runs."""
    sent: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    engine = app.state.service.engine.sync_engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", note)


async def poll(client: Client, feed: dict[str, Any], etag: str | None = None) -> httpx.Response:
    headers = {"If-None-Match": etag} if etag else {}
    return await client.get(f"/feeds/{feed['token']}.ics", headers=headers)


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(int(PATIENCE / 0.02)):
        if await condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {PATIENCE} s: {what}")


async def warm(client: Client, app: Litestar, feed: dict[str, Any]) -> httpx.Response:
    """Poll until a poll sends no statement (on PostgreSQL the channel connects at start, and
    the notice of the feed's own first render comes back through it); then a plain and a
    conditional poll send none either."""
    with statements_of(app) as sent:
        async def quiet() -> bool:
            await asyncio.sleep(0.05)  # the notice of a render just made may be on its way
            sent.clear()
            assert (await poll(client, feed)).status_code == 200
            return not sent

        for _ in range(2):  # twice in a row
            await until(quiet, "a poll that reads nothing")
        answer = await poll(client, feed)
        assert (await poll(client, feed, answer.headers["etag"])).status_code == 304
        assert sent == [], "a warm poll sent SQL"
    return answer


def runtime(app: Litestar) -> FeedRuntime:
    feeds: FeedRuntime = app.state.feeds
    return feeds


# --- in this process, both databases ------------------------------------------------------------


async def test_a_warm_poll_sends_no_statement_and_a_304_neither(
    client: Client, app: Litestar, people: Any, team: Any
) -> None:
    feed = await new_feed(client, people.coordinator, team.case_id)
    own = (await client.post("/users/me/feeds", json={}, headers=people.coordinator.headers)).json()
    for each in (feed, own):
        first = await warm(client, app, each)
        before = {status: answered(status) for status in ("200", "304")}
        with statements_of(app) as sent:
            for _ in range(5):
                again = await poll(client, each)
                assert again.status_code == 200 and again.content == first.content
                assert again.headers["etag"] == first.headers["etag"]
                assert again.headers["content-type"] == "text/calendar; charset=utf-8"
                assert (await poll(client, each, first.headers["etag"])).status_code == 304
        assert sent == []
        # Counted for /metrics all the same.
        assert {status: answered(status) - count for status, count in before.items()} == {"200": 5, "304": 5}


def answered(status: str) -> float:
    return REGISTRY.get_sample_value("samhandling_feed_answers_total", {"status": status}) or 0.0


CHANGES = ["revoke", "owner leaves", "coordinator taken off", "contact deactivated", "consent withdrawn"]


@pytest.mark.parametrize("change", CHANGES)
async def test_a_change_on_this_instance_is_served_at_the_very_next_poll(
    client: Client, app: Litestar, people: Any, team: Any, change: str
) -> None:
    """The writer's answer has left: the next poll on the same instance must not be the old 200."""
    for carer in (team.mother, team.father):
        await consent(client, people, team, carer, "school")
    held = await meeting(client, people, team, [team.mother, team.teacher])
    feed = await new_feed(client, people.coordinator, team.case_id, "contact", team.teacher)
    old = await warm(client, app, feed)
    assert held["uid"].encode() in old.content
    coordinator, leader, admin = (people.coordinator.headers, people.leader.headers, people.admin.headers)
    if change == "consent withdrawn":
        await consent(client, people, team, team.father, "school", status="withdrawn")
    else:
        done = await {
            "revoke": lambda: client.delete(f"/feeds/{feed['id']}", headers=coordinator),
            "owner leaves": lambda: client.delete(f"/users/{people.coordinator.id}", headers=admin),
            "coordinator taken off": lambda: client.put(f"/cases/{team.case_id}/coordinators",
                                                        json=[people.other_coordinator.id], headers=leader),
            "contact deactivated": lambda: client.patch(f"/cases/{team.case_id}/contacts/{team.teacher}",
                                                        json={"active": False}, headers=coordinator),
        }[change]()
        assert done.status_code == 200, done.text
    for etag in (None, old.headers["etag"]):
        answer = await poll(client, feed, etag)
        if change == "consent withdrawn":
            assert answer.status_code == 200 and held["uid"].encode() not in answer.content
        else:
            assert answer.status_code == 410, answer.status_code
            assert b"BEGIN:VCALENDAR" not in answer.content


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_on_sqlite_a_command_run_beside_the_service_is_seen_at_the_next_poll(
    client: Client, app: Litestar, people: Any, team: Any, settings: Settings
) -> None:
    """Another process (``samhandling purge``, say) writes the file: no event of this process
    sees it, the file's data version does."""
    feed = await new_feed(client, people.coordinator, team.case_id)
    await warm(client, app, feed)
    elsewhere = sqlite3.connect(make_url(settings.database_url).database or "", isolation_level=None)
    try:
        elsewhere.execute("UPDATE feedtoken SET revoked_at = '2027-01-04 08:00:00.000000' WHERE id = ?",
                          (feed["id"],))
    finally:
        elsewhere.close()
    assert (await poll(client, feed)).status_code == 410


# --- other instances: PostgreSQL's NOTIFY, and the channel down ------------------------------


def postgres_only(test: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """NOTIFY is PostgreSQL's: the test runs there only."""
    on_postgres = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)(test)
    return pytest.mark.skipif(not POSTGRES_ENABLED, reason="PostgreSQL only")(on_postgres)


def _dsn(settings: Settings) -> str:
    return make_url(settings.database_url).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def other_instance(settings: Settings) -> AsyncIterator[Any]:
    """A connection of its own, outside SQLAlchemy: what another instance's commit looks like
    to this process (no event here sees it; only the database can tell)."""
    connection = await asyncpg.connect(_dsn(settings))
    try:
        yield connection
    finally:
        await connection.close()


async def listener_pids(settings: Settings) -> list[int]:
    async with other_instance(settings) as connection:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()",
            APPLICATION_NAME)
        return [row["pid"] for row in rows]


@postgres_only
async def test_a_change_committed_elsewhere_is_served_once_its_notice_arrives(
    client: Client, app: Litestar, people: Any, team: Any, settings: Settings
) -> None:
    for carer in (team.mother, team.father):
        await consent(client, people, team, carer, "school")
    held = await meeting(client, people, team, [team.mother, team.teacher])
    teachers = await new_feed(client, people.coordinator, team.case_id, "contact", team.teacher)
    mothers = await new_feed(client, people.coordinator, team.case_id, "contact", team.mother)
    await warm(client, app, teachers)
    await warm(client, app, mothers)
    generation = invalidation.generation()

    async with other_instance(settings) as elsewhere:
        await elsewhere.execute("UPDATE contact SET active = false WHERE id = $1", team.teacher)

        async def gone() -> bool:
            return (await poll(client, teachers)).status_code == 410

        await until(gone, "the deactivated contact's feed answers 410")
        assert invalidation.generation() == generation, "the notice, not this process, told"
        # The notice was for the unit: the mother's feed reads its state once again, and stays
        # warm through a last-seen write, which announces nothing.
        await warm(client, app, mothers)
        await elsewhere.execute("UPDATE feedtoken SET last_seen_at = now() WHERE id = $1", mothers["id"])
        await asyncio.sleep(0.2)
        with statements_of(app) as sent:
            answer = await poll(client, mothers)
        assert answer.status_code == 200 and held["uid"].encode() in answer.content and sent == []


@postgres_only
async def test_with_the_channel_down_every_poll_reads_the_database(
    client: Client, app: Litestar, people: Any, team: Any, settings: Settings
) -> None:
    feed = await new_feed(client, people.coordinator, team.case_id)
    other = await new_feed(client, people.coordinator, team.case_id)
    await warm(client, app, feed)
    await warm(client, app, other)
    [pid] = await listener_pids(settings)
    async with other_instance(settings) as elsewhere:
        assert await elsewhere.fetchval("SELECT pg_terminate_backend($1)", pid)

        async def down() -> bool:
            return not runtime(app).notices.up

        await until(down, "the runtime notices its channel is gone")
        assert REGISTRY.get_sample_value("samhandling_feed_cache_trusted") == 0, "/metrics shows the fallback"
        # At once: without any change, the poll reads the token again.
        with statements_of(app) as sent:
            assert (await poll(client, feed)).status_code == 200
        assert sent, "a cached state was used with the channel down"
        # A revocation committed while nobody can tell this instance is never served as 200.
        if runtime(app).notices.up:
            pytest.skip("the listener came back before the revocation could be made")
        await elsewhere.execute("UPDATE feedtoken SET revoked_at = now() WHERE id = $1", other["id"])
        assert (await poll(client, other)).status_code == 410

        async def back() -> bool:
            return runtime(app).notices.up

        await until(back, "the listener reconnects")
        assert REGISTRY.get_sample_value("samhandling_feed_cache_trusted") == 1
        assert await listener_pids(settings) not in ([], [pid])
    # Back up, everything read before was given up; then the cache serves again.
    await warm(client, app, feed)
    assert (await poll(client, other)).status_code == 410


@postgres_only
async def test_migration_0010_announces_state_changes_but_not_last_seen_times(
    client: Client, people: Any, team: Any, settings: Settings
) -> None:
    feed = await new_feed(client, people.coordinator, team.case_id)
    heard: list[str] = []
    async with other_instance(settings) as listening, other_instance(settings) as writer:
        await listening.add_listener(CHANNEL, lambda *args: heard.append(args[-1]))
        unit = await writer.fetchval("SELECT unit_id FROM feedtoken WHERE id = $1", feed["id"])
        await writer.execute("UPDATE feedtoken SET last_seen_at = now() WHERE id = $1", feed["id"])
        await asyncio.sleep(0.2)
        assert heard == []
        statements = [
            ("UPDATE feedtoken SET label = 'x' WHERE id = $1", feed["id"], str(unit)),
            ("UPDATE unit SET data_version = data_version + 1 WHERE id = $1", unit, str(unit)),
            ('UPDATE "case" SET updated_at = now() WHERE id = $1', team.case_id, str(unit)),
            ("UPDATE contact SET active = false WHERE id = $1", team.teacher, str(unit)),
            ('UPDATE "user" SET active = false WHERE id = $1', people.other_coordinator.id, ""),
            ("DELETE FROM casecoordinator WHERE case_id = $1", team.case_id, ""),
        ]
        for sql, argument, payload in statements:
            heard.clear()
            await writer.execute(sql, argument)

            async def told(expected: str = payload) -> bool:
                return expected in heard

            await until(told, sql)
