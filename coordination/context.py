"""What every request handler and background job shares: settings, sessions, the clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination.clock import Clock
from coordination.db import make_engine, make_sessionmaker
from coordination.settings import Settings


@dataclass
class ServiceContext:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock

    @classmethod
    def create(cls, settings: Settings, clock: Clock | None = None) -> ServiceContext:
        engine = make_engine(settings.database_url)
        return cls(settings, engine, make_sessionmaker(engine), clock or Clock())

    def now(self) -> datetime:
        return self.clock.now()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commit on success, roll back on any error."""
        async with self.sessions() as session, session.begin():
            yield session
