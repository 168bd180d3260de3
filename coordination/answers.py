"""Answers through the link in an invitation: the participant's capability to accept or
decline one meeting. The page shows nothing beyond the meeting's time and place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination import audit
from coordination.domain import Language
from coordination.errors import Gone, InputError, NotFound
from coordination.meetings import record_answer
from coordination.models import AnswerToken, Case, Contact, Meeting, MeetingParticipant
from coordination.security import hash_token

ANSWERS = ("accepted", "declined", "tentative")


@dataclass(frozen=True, slots=True)
class AnswerView:
    start: datetime
    end: datetime
    place: str
    status: str
    answer: str
    language: Language


async def _lookup(session: AsyncSession, token: str) -> tuple[AnswerToken, Meeting, Contact]:
    found = (await session.exec(select(AnswerToken).where(AnswerToken.token_hash == hash_token(token)))).first()
    if found is None:
        raise NotFound("unknown answer link")
    if found.revoked_at is not None:
        raise Gone("this answer link has been withdrawn")
    meeting = await session.get(Meeting, found.meeting_id)
    contact = await session.get(Contact, found.contact_id)
    if meeting is None or contact is None or not contact.active:
        raise Gone("this answer link is no longer valid")
    return found, meeting, contact


async def view(session: AsyncSession, token: str) -> AnswerView:
    _, meeting, contact = await _lookup(session, token)
    participant = await session.get(MeetingParticipant, (meeting.id, contact.id))
    return AnswerView(meeting.start, meeting.end, meeting.place or meeting.video_link, meeting.status,
                      participant.partstat if participant else "needs_action", Language(contact.language))


async def answer(session: AsyncSession, token: str, value: str, now: datetime) -> AnswerView:
    if value not in ANSWERS:
        raise InputError("answer", "answer must be accepted, declined or tentative")
    found, meeting, contact = await _lookup(session, token)
    if meeting.status not in ("confirmed", "proposed"):
        raise InputError("answer", f"the meeting is {meeting.status} and takes no answers")
    await record_answer(session, meeting, contact.id or 0, value, now, f"answer-link:{found.id}")
    audit.record(session, unit_id=(await _unit_of(session, meeting)), case_id=meeting.case_id,
                 actor=f"contact:{contact.id}", action="answer.link_used", subject=f"meeting:{meeting.id}", at=now)
    return await view(session, token)


async def _unit_of(session: AsyncSession, meeting: Meeting) -> int:
    case = await session.get(Case, meeting.case_id)
    assert case is not None
    return case.unit_id
