"""Writing to the outbox: the messages a change causes, queued in the same transaction as
the change (DESIGN.md rule 6). Whether each may be sent is decided later, at send time,
by the gate in ``coordination.dispatch`` — queuing decides nothing about consent.

Idempotency keys make a message unique per cause, so no change can queue it twice:
invitations and updates per meeting, SEQUENCE and recipient; reminders per meeting,
SEQUENCE, start time, recipient and offset (a moved or changed meeting gets new reminders,
and the old ones are withdrawn here and, as a last guard, refused by the gate).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import exists
from sqlalchemy.orm import aliased
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination.context import WAKE_DISPATCHER
from coordination.domain import NotifyBy, Role, Sector
from coordination.models import Alert, Case, Contact, Meeting, MeetingParticipant, OutboxMessage, Plan
from coordination.outbox.enums import OutboxStatus
from coordination.scheduling.enums import MeetingStatus
from coordination.schemas import OutboxOut
from notifications.ports import Channel, MessageKind, RecipientKind, SuppressionCode

#: The messages that tell a recipient of a meeting (its time and place).
TELLS_OF_MEETING = (MessageKind.INVITATION, MessageKind.UPDATE)
#: Reminders before each confirmed meeting unless the plan says otherwise (hours).
DEFAULT_REMINDER_OFFSETS_HOURS = (48, 3)



def recipient_kind(contact: Contact) -> RecipientKind:
    """Who the contact is as a recipient: the gate asks this of the contact as it is at send
    time (DESIGN.md rule 10: quiet hours for families), so a corrected role counts at once."""
    role = contact.role
    if role is Role.PARENT:
        return RecipientKind.PARENT
    if role is Role.CHILD:
        return RecipientKind.CHILD
    if role is Role.TRUSTED_PERSON:
        return RecipientKind.TRUSTED_PERSON
    return RecipientKind.PARTNER if contact.sector is not Sector.FAMILY else RecipientKind.PARENT


def new_message_id() -> str:
    return f"<{uuid.uuid4().hex}@samhandling>"


def channels_of(contact: Contact) -> tuple[Channel, ...]:
    """How the contact wants to be told (``notify_by``); SMS only with a mobile number."""
    wanted = {NotifyBy.EMAIL: (Channel.EMAIL,), NotifyBy.SMS: (Channel.SMS,),
              NotifyBy.BOTH: (Channel.EMAIL, Channel.SMS)}[contact.notify_by]
    return tuple(c for c in wanted if c is Channel.EMAIL or contact.mobile) or (Channel.EMAIL,)


def meeting_message(case: Case, meeting: Meeting, contact: Contact, kind: MessageKind, key: str,
                    due: datetime, now: datetime, channel: Channel = Channel.EMAIL) -> OutboxMessage:
    """One message about a meeting to one contact, due at ``due``. An SMS row's key is the
    e-mail's with ``:sms``, so each is queued once."""
    return OutboxMessage(
        idempotency_key=key if channel is Channel.EMAIL else f"{key}:sms", channel=channel,
        unit_id=case.unit_id, case_id=case.id, kind=kind,
        # The kind when queued, for the record only: sending decides it anew from the contact.
        recipient_contact_id=contact.id, recipient_kind=recipient_kind(contact),
        meeting_id=meeting.id, meeting_sequence=meeting.ical_sequence, due_at=due, next_attempt_at=due,
        message_id=new_message_id(), created_at=now, updated_at=now,
    )


def alert_message(case: Case, alert: Alert, user_id: int, now: datetime) -> OutboxMessage:
    """A coordinator alert to one of the case's coordinators, due at once."""
    return OutboxMessage(
        idempotency_key=f"alert:{alert.id}:user:{user_id}", unit_id=case.unit_id, case_id=case.id,
        kind=MessageKind.ALERT, recipient_user_id=user_id, recipient_kind=RecipientKind.COORDINATOR,
        alert_id=alert.id, due_at=now, next_attempt_at=now, message_id=new_message_id(), created_at=now,
        updated_at=now,
    )


async def enqueue(session: AsyncSession, row: OutboxMessage) -> None:
    """The one way a row enters the outbox: inserted unless its idempotency key is already queued."""
    found = await session.exec(
        select(OutboxMessage.id).where(OutboxMessage.idempotency_key == row.idempotency_key)
    )
    if found.first() is None:
        session.add(row)
        session.info[WAKE_DISPATCHER] = True


async def _participants(session: AsyncSession, meeting: Meeting) -> list[Contact]:
    rows = await session.exec(
        select(Contact)
        .join(MeetingParticipant, col(MeetingParticipant.contact_id) == Contact.id)
        .where(MeetingParticipant.meeting_id == meeting.id)
        .order_by(col(Contact.id))
    )
    return list(rows.all())


async def _queue(
    session: AsyncSession,
    case: Case,
    meeting: Meeting,
    kind: MessageKind,
    recipients: Sequence[Contact],
    now: datetime,
) -> None:
    for contact in recipients:
        for channel in channels_of(contact):
            await enqueue(
                session,
                meeting_message(case, meeting, contact, kind,
                                f"meeting:{meeting.id}:seq:{meeting.ical_sequence}:contact:{contact.id}:{kind.value}",
                                now, now, channel),
            )


async def reminder_offsets(session: AsyncSession, case_id: int) -> tuple[timedelta, ...]:
    """The plan's reminder offsets, or the defaults."""
    plan = (await session.exec(select(Plan).where(Plan.case_id == case_id))).first()
    raw = plan.rules.get("reminder_offsets_hours") if plan else None
    hours = raw if isinstance(raw, list) and raw else DEFAULT_REMINDER_OFFSETS_HOURS
    return tuple(timedelta(hours=int(h)) for h in hours)


async def _queue_reminders(
    session: AsyncSession, case: Case, meeting: Meeting, recipients: Sequence[Contact], now: datetime
) -> None:
    start = meeting.start.astimezone(UTC).isoformat()
    for offset in await reminder_offsets(session, case.id or 0):
        due = meeting.start - offset
        if due <= now:
            continue
        hours = int(offset.total_seconds() // 3600)
        for contact in recipients:
            for channel in channels_of(contact):
                await enqueue(
                    session,
                    meeting_message(case, meeting, contact, MessageKind.REMINDER,
                                    f"meeting:{meeting.id}:seq:{meeting.ical_sequence}:start:{start}"
                                    f":contact:{contact.id}:reminder:{hours}h", due, now, channel),
                )


async def withdraw_pending(
    session: AsyncSession,
    meeting: Meeting,
    now: datetime,
    reason: str,
    kinds: Sequence[MessageKind] | None = None,
) -> None:
    """Pending messages about a meeting that a change has made obsolete never go out."""
    query = update(OutboxMessage).where(
        col(OutboxMessage.meeting_id) == meeting.id, col(OutboxMessage.status) == OutboxStatus.PENDING
    )
    if kinds is not None:
        query = query.where(col(OutboxMessage.kind).in_(kinds))
    await session.exec(
        query.values(
            status=OutboxStatus.SUPPRESSED,
            suppressed_code=SuppressionCode.OBSOLETE,
            suppressed_reason=reason,
            updated_at=now,
        )
    )


async def withdraw_case_pending(session: AsyncSession, case_id: int, now: datetime, reason: str, *,
                                keep: Sequence[MessageKind] = ()) -> int:
    """Every pending message of a case that has closed, but those of the kinds in ``keep`` (the
    cancellations its closing queued); returns how many were withdrawn."""
    result = await session.exec(
        update(OutboxMessage)
        .where(col(OutboxMessage.case_id) == case_id, col(OutboxMessage.status) == OutboxStatus.PENDING,
               col(OutboxMessage.kind).not_in(keep))
        .values(status=OutboxStatus.SUPPRESSED, suppressed_code=SuppressionCode.OBSOLETE, suppressed_reason=reason,
                updated_at=now)
    )
    return int(result.rowcount)


async def meeting_announced(session: AsyncSession, case: Case, meeting: Meeting, now: datetime) -> None:
    """A confirmed meeting: invitations to everyone invited, and their reminders."""
    recipients = await _participants(session, meeting)
    await _queue(session, case, meeting, MessageKind.INVITATION, recipients, now)
    await _queue_reminders(session, case, meeting, recipients, now)


async def meeting_updated(session: AsyncSession, case: Case, meeting: Meeting, now: datetime) -> None:
    """Moved or changed: an update (REQUEST with a higher SEQUENCE); reminders follow the new time."""
    await withdraw_pending(
        session,
        meeting,
        now,
        "superseded by a later change",
        kinds=(MessageKind.INVITATION, MessageKind.UPDATE, MessageKind.REMINDER),
    )
    recipients = await _participants(session, meeting)
    await _queue(session, case, meeting, MessageKind.UPDATE, recipients, now)
    await _queue_reminders(session, case, meeting, recipients, now)


async def meeting_cancelled(session: AsyncSession, case: Case, meeting: Meeting, now: datetime) -> None:
    await withdraw_pending(session, meeting, now, "the meeting was cancelled")
    await _queue(session, case, meeting, MessageKind.CANCELLATION, await _participants(session, meeting), now)


async def requeue_after_consent(session: AsyncSession, case: Case, sector: Sector, cause: str,
                                now: datetime) -> int:
    """A sector's consent now in force: invitations held back for want of it go out after all.

    Suppressions stay as they were (they were right when decided); a new row per held-back
    invitation carries the current SEQUENCE, and the gate decides again when it is sent.
    Nobody is invited twice: a meeting whose current SEQUENCE already has an invitation or
    update to that person queued, in flight or sent is left alone. ``cause`` (the consent
    record, or the change, that brought consent into force) makes the rows' keys, so that the
    same cause seen again — by another instance too — queues nothing more.
    """
    told = aliased(OutboxMessage)
    rows = await session.exec(
        select(OutboxMessage, Meeting, Contact)
        .join(Meeting, col(Meeting.id) == OutboxMessage.meeting_id)
        .join(Contact, col(Contact.id) == OutboxMessage.recipient_contact_id)
        # Only those still invited: someone taken off the meeting since is not told of it now.
        .join(MeetingParticipant, (col(MeetingParticipant.meeting_id) == Meeting.id)
              & (col(MeetingParticipant.contact_id) == Contact.id))
        .where(OutboxMessage.case_id == case.id, col(OutboxMessage.kind).in_(TELLS_OF_MEETING),
               OutboxMessage.status == OutboxStatus.SUPPRESSED,
               col(OutboxMessage.suppressed_code).in_([SuppressionCode.NO_CONSENT, SuppressionCode.CONSENT_WITHDRAWN]),
               Contact.sector == sector, Contact.active == True,  # noqa: E712
               Meeting.status == MeetingStatus.CONFIRMED, col(Meeting.start) > now,
               ~exists().where(col(told.meeting_id) == Meeting.id, col(told.recipient_contact_id) == Contact.id,
                               col(told.meeting_sequence) == Meeting.ical_sequence,
                               col(told.kind).in_(TELLS_OF_MEETING), col(told.status) != OutboxStatus.SUPPRESSED))
    )
    queued = 0
    seen: set[tuple[int, int]] = set()
    for _, meeting, contact in rows.all():
        key = (meeting.id or 0, contact.id or 0)
        if key in seen:
            continue
        seen.add(key)
        await enqueue(session, meeting_message(
            case, meeting, contact, MessageKind.INVITATION,
            f"meeting:{meeting.id}:seq:{meeting.ical_sequence}:contact:{contact.id}:invitation:after-consent:{cause}",
            now, now))
        queued += 1
    return queued


async def list_outbox(session: AsyncSession, case_id: int, limit: int = 500) -> list[OutboxOut]:
    rows = await session.exec(
        select(OutboxMessage).where(OutboxMessage.case_id == case_id)
        .order_by(col(OutboxMessage.due_at).desc(), col(OutboxMessage.id).desc()).limit(limit)
    )
    return [
        OutboxOut(id=r.id or 0, kind=r.kind, channel=r.channel, recipient_contact_id=r.recipient_contact_id,
                  recipient_user_id=r.recipient_user_id, meeting_id=r.meeting_id, due_at=r.due_at,
                  status=r.status, attempts=r.attempts, level=r.level, suppressed_code=r.suppressed_code,
                  suppressed_reason=r.suppressed_reason, last_error=r.last_error, sent_at=r.sent_at)
        for r in rows.all()
    ]
