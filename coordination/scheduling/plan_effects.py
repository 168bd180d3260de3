"""What saving a plan does: the meetings it keeps, moves, adds and cancels, and the messages
it queues — read from what ``plans.upsert_plan`` itself writes, not worked out beside it.

``apply_plan`` runs ``upsert_plan`` and records its effects in the same unit of work. Run in
a rehearsal (``ServiceContext.rehearsal``, always rolled back) it is the plan page's preview;
run in a real transaction it is the save, and its ``promise`` tells whether the save did what
the preview showed: the same meetings moved, added and cancelled, and the same messages to the
same people about the same meetings.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from calendars.schedule import MeetingKind
from coordination.models import Alert, Meeting, OutboxMessage, User
from coordination.outbox.enums import OutboxStatus
from coordination.scheduling.enums import OPEN_STATUSES, MeetingStatus
from coordination.scheduling.meetings import case_meetings
from coordination.scheduling.plans import upsert_plan
from coordination.schemas import PlanIn, PlanOut
from notifications.ports import MessageKind


class MeetingEffect(enum.StrEnum):
    """What a plan revision does to one of the case's meetings."""

    KEPT = "kept"
    MOVED = "moved"
    ADDED = "added"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class MeetingChange:
    """One meeting before and after. ``ref`` names it the same way in a rehearsal and in the
    save: an existing meeting by its id, an added one by its place in the plan's series."""

    effect: MeetingEffect
    meeting_id: int
    ref: str
    kind: MeetingKind
    status: MeetingStatus
    start: datetime
    end: datetime
    was_start: datetime | None
    was_end: datetime | None
    pinned: bool


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A message the change queued (``row``, as ``outbox.queue.enqueue`` wrote it), and what it
    is about: a meeting's ``ref``, or an alert's key."""

    row: OutboxMessage
    about: str

    @property
    def kind(self) -> MessageKind:
        return self.row.kind


@dataclass(frozen=True, slots=True)
class PlanEffects:
    plan: PlanOut
    meetings: list[MeetingChange]
    messages: list[QueuedMessage]
    #: Messages that were waiting and will not go out now (superseded or cancelled meetings).
    withdrawn: list[int]

    def promise(self) -> str:
        """A fingerprint of what the change does, equal for a rehearsal and a save that do the
        same: the plan's revision, each meeting's effect and new time, each message's kind,
        recipient and subject (and a reminder's due time), and the messages withdrawn."""
        changes = sorted([m.effect.value, m.ref, m.kind.value, m.start.isoformat(), m.end.isoformat()]
                         for m in self.meetings if m.effect is not MeetingEffect.KEPT)
        messages = sorted([m.kind.value, m.row.recipient_contact_id or 0, m.row.recipient_user_id or 0, m.about,
                           m.row.due_at.isoformat() if m.kind is MessageKind.REMINDER else ""]
                          for m in self.messages)
        facts: dict[str, Any] = {"revision": self.plan.revision, "meetings": changes, "messages": messages,
                                 "withdrawn": sorted(self.withdrawn)}
        return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


async def apply_plan(session: AsyncSession, user: User, case_id: int, data: PlanIn, now: datetime) -> PlanEffects:
    """``upsert_plan`` in the caller's unit of work, with a record of what it changed."""
    before = {m.id: _snapshot(m) for m in await case_meetings(session, case_id)}
    waiting = await _pending_ids(session, case_id)
    with _new_outbox_rows(session) as queued:
        plan = await upsert_plan(session, user, case_id, data, now)
        await session.flush()
    after = await case_meetings(session, case_id)
    changes = [change for m in after if (change := _change(before.get(m.id), m)) is not None]
    refs = {c.meeting_id: c.ref for c in changes}
    still_queued = await _still_pending(session, [r.id for r in queued if r.id is not None])
    messages = [QueuedMessage(row, await _about(session, row, refs)) for row in queued if row.id in still_queued]
    withdrawn = sorted(waiting - await _pending_ids(session, case_id))
    return PlanEffects(plan, changes, messages, withdrawn)


@dataclass(frozen=True, slots=True)
class _Before:
    start: datetime
    end: datetime
    status: MeetingStatus


def _snapshot(meeting: Meeting) -> _Before:
    return _Before(meeting.start, meeting.end, meeting.status)


def _change(before: _Before | None, meeting: Meeting) -> MeetingChange | None:
    """The meeting's effect, or None for one the plan neither had open nor touched."""
    assert meeting.id is not None
    if before is None:
        effect = MeetingEffect.ADDED
    elif before.status not in OPEN_STATUSES:
        return None
    elif meeting.status is MeetingStatus.CANCELLED:
        effect = MeetingEffect.CANCELLED
    elif (before.start, before.end) != (meeting.start, meeting.end):
        effect = MeetingEffect.MOVED
    else:
        effect = MeetingEffect.KEPT
    added = effect is MeetingEffect.ADDED
    return MeetingChange(
        effect=effect, meeting_id=meeting.id,
        ref=f"new:{meeting.series_key}" if added else str(meeting.id),
        kind=meeting.kind, status=meeting.status, start=meeting.start, end=meeting.end,
        was_start=None if added or before is None else before.start,
        was_end=None if added or before is None else before.end, pinned=meeting.pinned,
    )


@contextmanager
def _new_outbox_rows(session: AsyncSession) -> Iterator[list[OutboxMessage]]:
    """The outbox rows the session inserts while the block runs (``enqueue`` adds them)."""
    rows: list[OutboxMessage] = []

    def collect(sync_session: Any, _context: Any, _instances: Any) -> None:
        rows.extend(o for o in sync_session.new if isinstance(o, OutboxMessage))

    event.listen(session.sync_session, "before_flush", collect)
    try:
        yield rows
    finally:
        event.remove(session.sync_session, "before_flush", collect)


async def _pending_ids(session: AsyncSession, case_id: int) -> set[int]:
    found = await session.exec(select(OutboxMessage.id).where(
        OutboxMessage.case_id == case_id, OutboxMessage.status == OutboxStatus.PENDING))
    return {i for i in found.all() if i is not None}


async def _still_pending(session: AsyncSession, ids: Sequence[int]) -> set[int]:
    """Of the rows just queued, those the change did not withdraw again before it ended."""
    if not ids:
        return set()
    found = await session.exec(select(OutboxMessage.id).where(
        col(OutboxMessage.id).in_(ids), OutboxMessage.status == OutboxStatus.PENDING))
    return {i for i in found.all() if i is not None}


async def _about(session: AsyncSession, row: OutboxMessage, refs: dict[int, str]) -> str:
    if row.meeting_id is not None:
        return refs.get(row.meeting_id, str(row.meeting_id))
    alert = await session.get(Alert, row.alert_id) if row.alert_id is not None else None
    return f"alert:{alert.key}" if alert is not None else ""
