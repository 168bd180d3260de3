"""The unit's data version: bumped in the same transaction as every change that can alter
what a feed shows, so that every instance's feed cache knows when to render again."""

from __future__ import annotations

from sqlmodel import col, update
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination.models import Unit


async def bump(session: AsyncSession, unit_id: int) -> None:
    await session.exec(
        update(Unit).where(col(Unit.id) == unit_id).values(data_version=col(Unit.data_version) + 1)
    )
