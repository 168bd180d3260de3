"""What every request handler and background job shares: settings, sessions, the clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination.clock import Clock
from coordination.db import make_engine, make_sessionmaker
from coordination.settings import Settings

#: Set in ``session.info`` by whatever queues an outbox row, so the dispatcher is woken
#: right after the commit instead of at its next tick.
WAKE_DISPATCHER = "samhandling.wake_dispatcher"


def _no_dispatcher() -> None:
    """Nothing to wake when this instance runs no dispatcher."""


@dataclass
class ServiceContext:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    wake_dispatcher: Callable[[], None] = _no_dispatcher
    _autocommit: AsyncEngine = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    @classmethod
    def create(cls, settings: Settings, clock: Clock | None = None) -> ServiceContext:
        engine = make_engine(settings.database_url)
        if clock is None:
            clock = Clock()
            if settings.clock_start is not None:
                clock.advance(settings.clock_start - clock.now())
        return cls(settings, engine, make_sessionmaker(engine), clock)

    def now(self) -> datetime:
        return self.clock.now()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commit on success, roll back on any error."""
        async with self.sessions() as session:
            async with session.begin():
                yield session
            if session.info.pop(WAKE_DISPATCHER, False):
                self.wake_dispatcher()

    @asynccontextmanager
    async def single_read(self) -> AsyncIterator[AsyncSession]:
        """A session for one read that needs no transaction (the signed-in user): in autocommit
        the driver sends no BEGIN and ROLLBACK around it, two of its three round trips. What it
        returns is detached once it ends, as after ``transaction``; it must not write."""
        async with self.sessions(bind=self._autocommit) as session:
            yield session

    @asynccontextmanager
    async def audited_read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads whose one write is their audit entry, in autocommit: every
        statement is a transaction of its own, so the driver sends no BEGIN and COMMIT, two
        round trips of a hot read (issue 17). The entry is one INSERT, flushed when the block
        ends without error, before the answer leaves; nothing else may be written here."""
        async with self.sessions(bind=self._autocommit) as session:
            yield session
            await session.flush()

    @asynccontextmanager
    async def rehearsal(self) -> AsyncIterator[AsyncSession]:
        """A unit of work that is always rolled back: to show what a change would do by doing
        it, with the very functions that do it, and keeping nothing (no audit entry, no
        outbox row, no version bump, and no dispatcher woken)."""
        async with self.sessions() as session:
            transaction = await session.begin()
            try:
                yield session
            finally:
                await transaction.rollback()
                session.info.pop(WAKE_DISPATCHER, None)
