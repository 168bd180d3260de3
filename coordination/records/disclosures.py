"""What the service shared, read from the audit log (DESIGN.md rule 9): every message sent,
every new feed version served and every answer page shown, with its level and the consent
records it rested on. The one reading of the log that the access report on the log page, the
case record and the family's report all use."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination.domain import AuditAction
from coordination.feeds.enums import FeedScope
from coordination.levels import Level
from coordination.models import AuditEntry
from notifications.ports import MessageKind


class Channel(enum.StrEnum):
    """How something reached its recipient."""

    EMAIL = "email"
    SMS = "sms"
    FEED = "feed"
    ANSWER_PAGE = "answer_page"


#: The entries that record something shared; an allowed decision of the gate only says which
#: consent records a send rests on (the send itself is ``notification.sent``), except on the
#: answer page, where showing the meeting is the disclosure.
SHARED = (AuditAction.NOTIFICATION_SENT, AuditAction.FEED_SERVED, AuditAction.DISCLOSURE_ALLOWED)


@dataclass(frozen=True, slots=True)
class Shared:
    """One disclosure: to a contact or a staff user (or, for a case feed, the case team)."""

    at: datetime
    channel: Channel
    message_kind: MessageKind | None
    contact_id: int | None
    user_id: int | None
    feed_id: int | None
    feed_scope: FeedScope | None
    meeting_ids: tuple[int, ...]
    level: Level
    consent_record_ids: tuple[int, ...]


def ints(value: object) -> list[int]:
    """Ids from an audit entry's JSON detail."""
    return [v for v in value if isinstance(v, int)] if isinstance(value, list) else []


def _id(value: object) -> int | None:
    return value if isinstance(value, int) else int(value) if isinstance(value, str) and value.isdigit() else None


def _level(value: object) -> Level:
    return Level(value) if value in {v.value for v in Level} else Level.NONE


async def shared_of_case(session: AsyncSession, case_id: int, limit: int | None = None) -> list[Shared]:
    """Every disclosure of the case, newest first (``limit`` of the log's newest entries)."""
    query = (select(AuditEntry).where(AuditEntry.case_id == case_id, col(AuditEntry.action).in_(SHARED))
             .order_by(col(AuditEntry.id).desc()))
    entries = (await session.exec(query if limit is None else query.limit(limit))).all()
    decided: dict[str, tuple[list[int], Channel]] = {}
    for entry in entries:
        if entry.action is AuditAction.DISCLOSURE_ALLOWED:
            # Newest first: a row retried or held until morning was decided more than once, and
            # the send rests on the last decision before it (which also names its channel).
            channel = Channel.SMS if entry.detail.get("channel") == Channel.SMS.value else Channel.EMAIL
            decided.setdefault(str(entry.detail.get("outbox")), (ints(entry.detail.get("consent_records")), channel))
    shared = []
    for entry in entries:
        detail = entry.detail
        level = _level(detail.get("level"))
        if entry.action is AuditAction.NOTIFICATION_SENT:
            meeting = _id(detail.get("meeting"))
            records, channel = decided.get(entry.subject.removeprefix("outbox:"), ([], Channel.EMAIL))
            shared.append(Shared(
                entry.at, channel, MessageKind(str(detail.get("kind"))), _id(detail.get("contact")),
                _id(detail.get("user")), None, None, (meeting,) if meeting else (), level, tuple(records)))
        elif entry.action is AuditAction.FEED_SERVED:
            scope = detail.get("scope")
            shared.append(Shared(
                entry.at, Channel.FEED, None, _id(detail.get("contact")), _id(detail.get("user")),
                _id(detail.get("feed")), FeedScope(scope) if scope in {s.value for s in FeedScope} else None,
                tuple(ints(detail.get("meeting_ids"))), level, tuple(ints(detail.get("consent_record_ids")))))
        elif detail.get("channel") == Channel.ANSWER_PAGE.value:
            meeting = _id(detail.get("meeting"))
            shared.append(Shared(
                entry.at, Channel.ANSWER_PAGE, None, _id(detail.get("contact")), None, None, None,
                (meeting,) if meeting else (), level, tuple(ints(detail.get("consent_records")))))
    return shared
