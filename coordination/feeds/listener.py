"""What the database tells this process of changes committed by others (PostgreSQL
LISTEN/NOTIFY on the channel of migration 0010), and whether it can be told at all.

A cached token state is used only while the channel is up and no notice for its unit (or
for every unit) has come since it was read. While the channel is down — not yet connected,
lost, reconnecting — nothing cached is used: every poll reads the database. Notices may
have been missed while it was down, so on coming up again everything read before is given up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

from coordination import metrics

log = logging.getLogger("samhandling.feeds")

#: Migration 0010's channel; its payload is a unit id, or '' for every unit.
CHANNEL = "samhandling_feeds"

#: How the listener's connection is named in ``pg_stat_activity``.
APPLICATION_NAME = "samhandling-feed-listener"


class Notices:
    """Sequence numbers of the notices received: a state read after mark ``m`` is current
    while no notice for its unit, nor for all, has come after ``m``."""

    def __init__(self) -> None:
        self.up = False
        self._sequence = 0
        self._all = 0
        self._units: dict[int, int] = {}

    def mark(self) -> int:
        """Take before reading a state."""
        return self._sequence

    def current(self, mark: int, unit_id: int) -> bool:
        return self.up and mark >= self._all and mark >= self._units.get(unit_id, 0)

    def changed(self, unit_id: int | None) -> None:
        """Something of ``unit_id`` (of every unit, for None) changed: give up what was read."""
        self._sequence += 1
        if unit_id is None:
            self._all = self._sequence
            self._units.clear()
        else:
            self._units[unit_id] = self._sequence

    def listening(self) -> None:
        """The channel is up; whatever was read before may have missed a notice."""
        self.changed(None)
        self.up = True
        metrics.FEED_CACHE_TRUSTED.set(1)

    def lost(self) -> None:
        self.up = False
        metrics.FEED_CACHE_TRUSTED.set(0)
        self.changed(None)


def _payload_unit(payload: str) -> int | None:
    try:
        return int(payload)
    except ValueError:
        return None


class Listener:
    """One connection of its own, LISTENing; reconnects after a loss, and probes the
    connection now and then so that a silently dead one is noticed (a half-open TCP
    connection delivers nothing and reports nothing)."""

    def __init__(self, database_url: str, notices: Notices, *, retry_seconds: float = 1.0,
                 probe_seconds: float = 10.0) -> None:
        self._dsn = make_url(database_url).set(drivername="postgresql").render_as_string(
            hide_password=False)
        self._notices = notices
        self._retry = retry_seconds
        self._probe = probe_seconds
        self._task: asyncio.Task[None] | None = None
        self._gone = asyncio.Event()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="feed-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._notices.lost()

    def _notified(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        self._notices.changed(_payload_unit(payload))

    def _terminated(self, _connection: object) -> None:
        # Called as soon as asyncpg sees the connection go: from now on every poll queries.
        self._notices.lost()
        self._gone.set()

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
                log.warning("feed change channel lost; polls read the database")
            except Exception as error:  # whatever it was, try again: down is safe, but slow
                log.warning("feed change channel down: %s; polls read the database", type(error).__name__)
            self._notices.lost()
            await asyncio.sleep(self._retry)

    async def _listen(self) -> None:
        connection = await asyncpg.connect(self._dsn, timeout=self._probe,
                                           server_settings={"application_name": APPLICATION_NAME})
        self._gone.clear()
        try:
            connection.add_termination_listener(self._terminated)
            await connection.add_listener(CHANNEL, self._notified)
            self._notices.listening()
            log.info("feed change channel up")
            while not self._gone.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._gone.wait(), self._probe)
                    return
                await asyncio.wait_for(connection.fetchval("SELECT 1"), self._probe)
        finally:
            self._notices.lost()
            connection.terminate()
