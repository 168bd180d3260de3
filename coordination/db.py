"""Database access: the async engine, sessions, and the UTC datetime column type.

SQLite (aiosqlite) is the embedded default; PostgreSQL (asyncpg) is the production path.
Both store instants as UTC; the column type below hands back aware UTC datetimes on
either backend, so no code path ever sees a naive time.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator
from sqlmodel.ext.asyncio.session import AsyncSession


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in and out; stored as timezone-aware on PostgreSQL, naive UTC on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An engine with the per-backend settings the service relies on.

    Parameters are never part of a database error's text nor of SQLAlchemy's statement log:
    they are the names, birth dates, addresses and phone numbers the service keeps, and an
    error is logged (the migration command, every service instance and the tests all come here).
    """
    kwargs["hide_parameters"] = True
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    engine = create_async_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine)
    return engine


#: A pooled connection unused for this long is pinged before it is handed out (see below).
PING_AFTER_IDLE_SECONDS = 1.0
_IDLE_SINCE = "samhandling.idle_since"


def _ping_when_idle(engine: AsyncEngine) -> None:
    """``pool_pre_ping`` pings at every checkout: on asyncpg a BEGIN, a ``;`` and a ROLLBACK, three
    round trips before every request's own (issue 17). A connection in steady use needs none: it
    was fine a moment ago, and should the database have restarted in that moment, the request
    meets a dead connection, answers 503, and its disconnect error invalidates the whole pool.
    One left idle is where a restart goes unnoticed (a nightly upgrade), so it is pinged first
    and, if dead, replaced before the request sees it (tests/reliability/test_restart_while_idle)."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:  # the pool disposes of it and connects anew
            raise DisconnectionError("a pooled connection died while idle") from error


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on any error, so no change is half-written."""
    async with sessions() as session, session.begin():
        yield session
