"""Answers through the link in an invitation: the participant's capability to accept or
decline one meeting. The page shows nothing beyond the meeting's time and place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination import audit
from coordination.changes import Change
from coordination.consent.disclosure import Reader, level_for
from coordination.consent.facts import load_policy_facts
from coordination.domain import AuditAction, Language
from coordination.errors import Gone, InputError, NotFound
from coordination.models import AnswerToken, Case, Contact, Meeting, MeetingParticipant
from coordination.scheduling.enums import OPEN_STATUSES, AnswerChannel, MeetingStatus, ParticipantAnswer
from coordination.scheduling.meetings import record_answer
from coordination.security import hash_token

ANSWERS = (ParticipantAnswer.ACCEPTED, ParticipantAnswer.DECLINED, ParticipantAnswer.TENTATIVE)


@dataclass(frozen=True, slots=True)
class AnswerView:
    start: datetime
    end: datetime
    place: str
    status: MeetingStatus
    answer: ParticipantAnswer
    language: Language


async def _lookup(session: AsyncSession, token: str, now: datetime
                  ) -> tuple[AnswerToken, Meeting, Contact, MeetingParticipant, Case]:
    """The link's meeting and holder. The page tells when and where the meeting is, a disclosure
    like any other (DESIGN.md rule 1): the link works only while its holder is invited and may
    know of the meeting now; a withdrawn consent or a removal makes it gone."""
    found = (await session.exec(select(AnswerToken).where(AnswerToken.token_hash == hash_token(token)))).first()
    if found is None:
        raise NotFound("unknown answer link")
    if found.revoked_at is not None:
        raise Gone("this answer link has been withdrawn")
    meeting = await session.get(Meeting, found.meeting_id)
    contact = await session.get(Contact, found.contact_id)
    if meeting is None or contact is None or not contact.active:
        raise Gone("this answer link is no longer valid")
    participant = await session.get(MeetingParticipant, (meeting.id, contact.id))
    case = await session.get(Case, meeting.case_id)
    if participant is None or case is None:
        raise Gone("this answer link is no longer valid")
    facts = await load_policy_facts(session, case)
    reader = Reader(contact=facts.contact(contact.id or 0), language=contact.language)
    decision = level_for(reader, facts, meeting, now)
    if not decision.allowed:
        raise Gone("this answer link is no longer valid")
    audit.record(session, unit_id=case.unit_id, case_id=case.id, actor=audit.SYSTEM,
                 action=AuditAction.DISCLOSURE_ALLOWED, subject=f"contact:{contact.id}", at=now,
                 detail={"meeting": meeting.id, "contact": contact.id, "channel": "answer_page",
                         "level": "logistics", "reasons": [r.code for r in decision.reasons],
                         "consent_records": list(decision.consent_record_ids)})
    return found, meeting, contact, participant, case


def _view(meeting: Meeting, contact: Contact, participant: MeetingParticipant) -> AnswerView:
    return AnswerView(meeting.start, meeting.end, meeting.place or meeting.video_link, meeting.status,
                      participant.partstat, contact.language)


async def view(session: AsyncSession, token: str, now: datetime) -> AnswerView:
    _, meeting, contact, participant, _ = await _lookup(session, token, now)
    return _view(meeting, contact, participant)


async def answer(session: AsyncSession, token: str, value: str, now: datetime) -> AnswerView:
    if value not in ANSWERS:
        raise InputError("answer", "answer must be accepted, declined or tentative")
    found, meeting, contact, participant, case = await _lookup(session, token, now)
    if meeting.status not in OPEN_STATUSES:
        raise InputError("answer", f"the meeting is {meeting.status} and takes no answers")
    await record_answer(session, meeting, contact.id or 0, ParticipantAnswer(value), now, f"answer-link:{found.id}",
                        via=AnswerChannel.LINK)
    change = Change.in_case(session, case, f"contact:{contact.id}", now)
    change.record(AuditAction.ANSWER_LINK_USED, f"meeting:{meeting.id}", feeds=False)
    return _view(meeting, contact, participant)
