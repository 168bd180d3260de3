"""Acting on one message from the ORGANIZER mailbox, once.

A calendar's answer is recorded only when it answers an invitation that was really sent to
that address (DESIGN.md "Channels: out and back"): the meeting's UID, an invited contact's
address, an invitation or update sent to them, a SEQUENCE not older than the one last sent,
the From address equal to the attendee's, no failed DMARC or SPF verdict from the receiving
server, and consent that still lets them know of the meeting. The answer is then recorded as
the answer link records it (``scheduling.meetings.record_answer``). A proposed time is shown
to the coordinator, never applied. A bounce marks our message failed and names the address
that did not work. Everything else changes nothing, and is audited with its reason when the
meeting is known.

The message's row (``InboundMessage``, unique by Message-ID) is written in the same
transaction as the change, so two instances reading one mailbox apply an answer once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, and_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination import audit
from coordination.changes import Change
from coordination.consent.disclosure import Reader, level_for
from coordination.consent.facts import load_policy_facts
from coordination.context import ServiceContext
from coordination.domain import AuditAction
from coordination.models import Case, Contact, InboundMessage, Meeting, MeetingParticipant, OutboxMessage
from coordination.outbox.alerts import raise_alert
from coordination.outbox.enums import OutboxStatus
from coordination.outbox.queue import TELLS_OF_MEETING
from coordination.outbox.undelivered import mark_undelivered
from coordination.replies.enums import ReplyOutcome
from coordination.scheduling.enums import OPEN_STATUSES, AnswerChannel, ParticipantAnswer
from coordination.scheduling.meetings import record_answer
from notifications.inbound import Inbound, InboundKind, parse_inbound
from notifications.ports import AlertKind, Channel

log = logging.getLogger(__name__)

#: iCalendar PARTSTAT → the service's answer (the ones a participant may give).
PARTSTATS = {"ACCEPTED": ParticipantAnswer.ACCEPTED, "DECLINED": ParticipantAnswer.DECLINED,
             "TENTATIVE": ParticipantAnswer.TENTATIVE}

_PLAIN = {InboundKind.AUTO_REPLY: ReplyOutcome.AUTO_REPLY, InboundKind.OTHER: ReplyOutcome.NOT_FOR_US,
          InboundKind.UNREADABLE: ReplyOutcome.UNREADABLE}


async def handle_message(ctx: ServiceContext, raw: bytes) -> ReplyOutcome | None:
    """Read one message and act on it; None when it was handled before (by this instance or
    another). Logs ids and outcomes only: a message's addresses and text stay out of logs."""
    inbound = parse_inbound(raw)
    try:
        async with ctx.transaction() as session:
            done = await session.exec(select(InboundMessage.id).where(InboundMessage.message_key == inbound.key))
            if done.first() is not None:
                return None
            row = InboundMessage(message_key=inbound.key, kind=inbound.kind, outcome=ReplyOutcome.UNREADABLE,
                                 received_at=ctx.now())
            session.add(row)
            await session.flush()  # the claim: another instance's insert of the same key waits or fails here
            outcome = await _act(session, inbound, row, ctx.now())
            row.outcome = outcome
            session.add(row)
    except IntegrityError:
        return None
    log.info("inbound %s (%s): %s", row.id, inbound.kind.value, outcome.value)
    return outcome


async def _act(session: AsyncSession, inbound: Inbound, row: InboundMessage, now: datetime) -> ReplyOutcome:
    if inbound.kind in (InboundKind.REPLY, InboundKind.COUNTER):
        return await _answer(session, inbound, row, now)
    if inbound.kind is InboundKind.BOUNCE:
        return await _bounce(session, inbound, row, now)
    return _PLAIN[inbound.kind]


@dataclass(frozen=True, slots=True)
class _Found:
    meeting: Meeting
    case: Case
    contact: Contact | None


async def _answer(session: AsyncSession, inbound: Inbound, row: InboundMessage, now: datetime) -> ReplyOutcome:
    answer = inbound.answer
    assert answer is not None
    meeting = (await session.exec(select(Meeting).where(Meeting.uid == answer.uid))).first()
    if meeting is None:
        return ReplyOutcome.UNKNOWN_UID
    case = await session.get(Case, meeting.case_id)
    assert case is not None
    contact = await _attendee(session, meeting, answer.attendee)
    row.case_id, row.meeting_id = case.id, meeting.id
    row.contact_id = contact.id if contact is not None else None
    found = _Found(meeting, case, contact)
    outcome = await _check(session, inbound, found, now)
    if outcome is None and inbound.kind is InboundKind.COUNTER:
        return await _counter(session, inbound, row, found, now)
    if outcome is None:
        partstat = PARTSTATS.get(answer.partstat)
        outcome = ReplyOutcome.UNSUPPORTED_ANSWER if partstat is None else None
    change = Change.in_case(session, case, audit.SYSTEM, now)
    detail = {"inbound": row.id, "contact": row.contact_id, "kind": inbound.kind.value,
              "sequence": answer.sequence}
    if outcome is not None:
        change.record(AuditAction.REPLY_IGNORED, f"meeting:{meeting.id}", {**detail, "reason": outcome.value},
                      feeds=False)
        return outcome
    assert contact is not None and contact.id is not None and partstat is not None
    await record_answer(session, meeting, contact.id, partstat, now, f"calendar-reply:{row.id}",
                        via=AnswerChannel.CALENDAR)
    change.record(AuditAction.REPLY_APPLIED, f"meeting:{meeting.id}", {**detail, "answer": partstat.value},
                  feeds=False)
    return ReplyOutcome.APPLIED


def _told_at(meeting: Meeting, address: str) -> ColumnElement[bool]:
    """Our invitations and updates of the meeting that were sent to ``address`` (casefolded)."""
    return and_(col(OutboxMessage.meeting_id) == meeting.id, col(OutboxMessage.kind).in_(TELLS_OF_MEETING),
                col(OutboxMessage.status) == OutboxStatus.SENT, col(OutboxMessage.channel) == Channel.EMAIL,
                func.lower(OutboxMessage.sent_to) == address)


async def _attendee(session: AsyncSession, meeting: Meeting, address: str) -> Contact | None:
    """The invited contact the answering address belongs to: the one an invitation of the meeting
    was sent to at that address (it may since have changed), else the one whose address it is
    now — whose answer ``_check`` then finds was never sent there."""
    invited = select(Contact).join(MeetingParticipant, col(MeetingParticipant.contact_id) == Contact.id).where(
        MeetingParticipant.meeting_id == meeting.id).order_by(col(Contact.id))
    told = (await session.exec(invited.join(OutboxMessage, col(OutboxMessage.recipient_contact_id) == Contact.id)
                               .where(_told_at(meeting, address)))).first()
    if told is not None:
        return told
    return (await session.exec(invited.where(func.lower(Contact.email) == address))).first()


async def _check(session: AsyncSession, inbound: Inbound, found: _Found, now: datetime) -> ReplyOutcome | None:
    """The first rule the answer breaks, or None when it may be acted on."""
    answer, meeting, contact = inbound.answer, found.meeting, found.contact
    assert answer is not None
    if contact is None:
        return ReplyOutcome.UNKNOWN_ATTENDEE
    sent = (await session.exec(
        select(func.max(OutboxMessage.meeting_sequence)).where(
            OutboxMessage.recipient_contact_id == contact.id, _told_at(meeting, answer.attendee)))).first()
    if sent is None:
        return ReplyOutcome.NOT_SENT
    if inbound.sender != answer.attendee:
        return ReplyOutcome.SENDER_MISMATCH
    if inbound.auth_failed:
        return ReplyOutcome.AUTHENTICATION_FAILED
    if answer.sequence < sent:
        return ReplyOutcome.STALE_SEQUENCE
    if meeting.status not in OPEN_STATUSES:
        return ReplyOutcome.MEETING_CLOSED
    if not contact.active:
        return ReplyOutcome.NO_CONSENT
    # The consent policy, asked as the answer link asks it: may this person know of the meeting now?
    facts = await load_policy_facts(session, found.case)
    reader = Reader(contact=facts.contact(contact.id or 0), language=contact.language)
    if not level_for(reader, facts, meeting, now).allowed:
        return ReplyOutcome.NO_CONSENT
    return None


async def _counter(session: AsyncSession, inbound: Inbound, row: InboundMessage, found: _Found,
                   now: datetime) -> ReplyOutcome:
    """Another time proposed: an alert for the coordinator, shown on the meeting's page too."""
    answer = inbound.answer
    assert answer is not None and answer.proposed_start is not None and answer.proposed_end is not None
    detail: dict[str, object] = {
        "meeting": found.meeting.id, "contact": row.contact_id, "inbound": row.id,
        "start": answer.proposed_start.astimezone(UTC).isoformat(),
        "end": answer.proposed_end.astimezone(UTC).isoformat()}
    await raise_alert(session, found.case, AlertKind.COUNTER_PROPOSED, f"counter:{row.id}", now, detail=detail)
    Change.in_case(session, found.case, audit.SYSTEM, now).record(
        AuditAction.COUNTER_RECEIVED, f"meeting:{found.meeting.id}",
        {"inbound": row.id, "contact": row.contact_id, "start": detail["start"], "end": detail["end"]}, feeds=False)
    return ReplyOutcome.COUNTER_SHOWN


async def _bounce(session: AsyncSession, inbound: Inbound, row: InboundMessage, now: datetime) -> ReplyOutcome:
    """Our message did not arrive: the row is marked failed (dead, since it will not arrive by
    trying again), and the coordinator is told whose address did not work."""
    bounce = inbound.bounce
    assert bounce is not None
    if not bounce.failed or bounce.original_message_id is None:
        return ReplyOutcome.BOUNCE_UNMATCHED
    sent = (await session.exec(select(OutboxMessage).where(
        col(OutboxMessage.message_id).in_([f"<{bounce.original_message_id}>", bounce.original_message_id])))).first()
    if sent is None or sent.case_id is None:
        return ReplyOutcome.BOUNCE_UNMATCHED
    case = await session.get(Case, sent.case_id)
    assert case is not None
    row.case_id, row.meeting_id, row.contact_id, row.outbox_id = case.id, sent.meeting_id, \
        sent.recipient_contact_id, sent.id
    await mark_undelivered(session, sent, case, bounce.status, now, {"inbound": row.id})
    return ReplyOutcome.BOUNCE_RECORDED
