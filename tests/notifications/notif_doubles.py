"""Test doubles of our own ports (an in-memory outbox and a scripted gate), a settable
clock, a literal iTIP builder, and a real SMTP server (aiosmtpd) that can be told to
greylist, refuse, or be down.

The real outbox and gate are ``coordination``'s and are tested end-to-end there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from notifications.dispatcher import Dispatcher
from notifications.ports import (
    Decisions,
    DisclosureLevel,
    Language,
    MeetingDetails,
    MeetingKind,
    MessageKind,
    OutboxMessage,
    Prepared,
    Recipient,
    RecipientKind,
    Settle,
    Settlement,
    Suppressed,
    SuppressionCode,
)

SENDER = "moter@kommune.example"
#: Monday 4 January 2027, 11:00 in Oslo: daytime, so quiet hours do not apply.
NOW = datetime(2027, 1, 4, 10, 0, tzinfo=UTC)
#: The meeting: Monday 11 January 2027, 09:00–10:00 in Oslo (winter time, UTC+1).
MEETING_START = datetime(2027, 1, 11, 8, 0, tzinfo=UTC)
MEETING_END = MEETING_START + timedelta(hours=1)
ANSWER_URL = "https://samhandling.example/svar/tok-123"


class Clock:
    """Aware UTC time that only moves when a test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Row:
    message: OutboxMessage
    next_attempt_at: datetime
    status: str = "pending"
    lease_until: datetime | None = None
    last_error: str | None = None
    suppressed: tuple[SuppressionCode, str] | None = None
    level: DisclosureLevel | None = None
    history: list[tuple[str, datetime]] = field(default_factory=list)


class MemoryOutbox:
    """The outbox contract from ``notifications.ports.OutboxStore``, in memory."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}

    def add(
        self,
        outbox_id: str,
        *,
        due_at: datetime,
        kind: MessageKind = MessageKind.INVITATION,
    ) -> OutboxMessage:
        message = OutboxMessage(
            id=outbox_id,
            idempotency_key=f"m1:{outbox_id}:{kind.value}",
            kind=kind,
            recipient_id=f"contact-{outbox_id}",
            due_at=due_at,
            attempts=0,
            message_id=f"<{outbox_id}.outbox@samhandling.example>",
            subject_id="m1",
        )
        self.rows[outbox_id] = Row(message=message, next_attempt_at=due_at)
        return message

    def status(self, outbox_id: str) -> str:
        return self.rows[outbox_id].status

    async def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[OutboxMessage]:
        due = [
            row
            for row in self.rows.values()
            if (row.status == "pending" and row.next_attempt_at <= now)
            or (row.status == "sending" and row.lease_until is not None and row.lease_until <= now)
        ]
        due.sort(key=lambda row: (row.next_attempt_at, row.message.id))
        claimed = []
        for row in due[:limit]:
            row.status = "sending"
            row.lease_until = now + lease
            claimed.append(row.message)
        return claimed

    def _settle(self, outbox_id: str, status: str, now: datetime) -> Row:
        row = self.rows[outbox_id]
        assert row.status == "sending", f"{outbox_id} settled while {row.status}"
        row.status = status
        row.lease_until = None
        row.history.append((status, now))
        return row

    async def mark_sent(self, outbox_id: str, level: DisclosureLevel, now: datetime) -> None:
        self._settle(outbox_id, "sent", now).level = level

    async def mark_suppressed(
        self, outbox_id: str, code: SuppressionCode, reason: str, now: datetime
    ) -> None:
        self._settle(outbox_id, "suppressed", now).suppressed = (code, reason)

    async def schedule_retry(
        self, outbox_id: str, attempts: int, next_attempt_at: datetime, error: str, now: datetime
    ) -> None:
        row = self._settle(outbox_id, "pending", now)
        row.message = replace(row.message, attempts=attempts)
        row.next_attempt_at = next_attempt_at
        row.last_error = error

    async def defer(self, outbox_id: str, until: datetime, reason: str, now: datetime) -> None:
        self._settle(outbox_id, "pending", now).next_attempt_at = until

    async def mark_dead(self, outbox_id: str, attempts: int, error: str, now: datetime) -> None:
        row = self._settle(outbox_id, "dead", now)
        row.message = replace(row.message, attempts=attempts)
        row.last_error = error

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        for s in settlements:
            match s.kind:
                case Settle.SENT:
                    await self.mark_sent(s.outbox_id, s.level, s.at)
                case Settle.SUPPRESSED:
                    await self.mark_suppressed(s.outbox_id, s.code, s.text, s.at)
                case Settle.RETRY:
                    assert s.until is not None
                    await self.schedule_retry(s.outbox_id, s.attempts, s.until, s.text, s.at)
                case Settle.DEFERRED:
                    assert s.until is not None
                    await self.defer(s.outbox_id, s.until, s.text, s.at)
                case Settle.DEAD:
                    await self.mark_dead(s.outbox_id, s.attempts, s.text, s.at)


Decision = Prepared | Suppressed


class ScriptedGate:
    """Answers per outbox id; a callable answer sees the send time, so a test can say
    "consent is withdrawn from 10:00" and watch a 10:01 reminder stop."""

    def __init__(self) -> None:
        self.answers: dict[str, Decision | Callable[[datetime], Decision]] = {}
        self.asked: list[tuple[str, datetime]] = []
        #: what the answers rest on; a test bumps it to stand for a consent change committing
        self.version = 0
        #: run when the dispatcher checks, just before sending, whether the answers still hold
        self.before_check: Callable[[], None] | None = None

    async def prepare(self, message: OutboxMessage, now: datetime) -> Decision:
        self.asked.append((message.id, now))
        answer = self.answers[message.id]
        return answer(now) if callable(answer) else answer

    async def prepare_batch(self, messages: Sequence[OutboxMessage], now: datetime) -> Decisions:
        answers = tuple([await self.prepare(message, now) for message in messages])
        return Decisions(answers, tuple(("gate", self.version) for _ in messages))

    async def moved(self, decisions: Decisions) -> frozenset[int]:
        if self.before_check is not None:
            check, self.before_check = self.before_check, None
            check()
        return frozenset(i for i, (_, version) in enumerate(decisions.basis) if version != self.version)


def withdrawn_from(moment: datetime, prepared: Prepared) -> Callable[[datetime], Decision]:
    def decide(now: datetime) -> Decision:
        if now >= moment:
            return Suppressed(SuppressionCode.CONSENT_WITHDRAWN, "consent c-7 withdrawn")
        return prepared

    return decide


def _ics_time(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def make_itip(
    *,
    method: str = "REQUEST",
    uid: str = "m-1@samhandling.example",
    sequence: int = 0,
    organizer: str = SENDER,
    attendee: str = "mor@familie.example",
    start: datetime,
    end: datetime,
    summary: str = "Møte",
    location: str = "Rådhuset\\, møterom 3",
) -> bytes:
    """A literal iTIP object, independent of ``calendars.ical``."""
    status = "CANCELLED" if method == "CANCEL" else "CONFIRMED"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Samhandling tests//EN",
        f"METHOD:{method}",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{_ics_time(start - timedelta(days=7))}",
        f"SEQUENCE:{sequence}",
        f"DTSTART:{_ics_time(start)}",
        f"DTEND:{_ics_time(end)}",
        f"SUMMARY:{summary}",
        f"LOCATION:{location}",
        f"STATUS:{status}",
        f"ORGANIZER:mailto:{organizer}",
        f"ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{attendee}",
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
    return "\r\n".join(lines).encode("utf-8")


def meeting(**changes: Any) -> MeetingDetails:
    base = MeetingDetails(
        uid="m-1@samhandling.example",
        sequence=0,
        start=MEETING_START,
        end=MEETING_END,
        place="Rådhuset, møterom 3",
        organiser_phone="12 34 56 78",
        kind=MeetingKind.STARTUP,
    )
    return replace(base, **changes)


def prepared(
    *,
    email: str = "mor@familie.example",
    language: Language = Language.NB,
    level: DisclosureLevel = DisclosureLevel.LOGISTICS,
    method: str | None = "REQUEST",
    details: MeetingDetails | None = None,
    **changes: Any,
) -> Prepared:
    """What the gate hands over for an invitation to one parent, with its iTIP object."""
    details = details or meeting()
    calendar = (
        make_itip(
            method=method,
            uid=details.uid,
            sequence=details.sequence,
            attendee=email,
            start=details.start,
            end=details.end,
        )
        if method is not None
        else None
    )
    base = Prepared(
        recipient=Recipient(email=email, language=language),
        allowed_level=level,
        recipient_kind=RecipientKind.PARENT,
        meeting=details,
        answer_url=ANSWER_URL,
        calendar=calendar,
    )
    return replace(base, **changes)


from smtp_server import Arrival, Mailbox, SmtpServer, free_port  # noqa: E402,F401  (shared with coordination tests)

#: A factory building a dispatcher on the real SMTP server (the ``make_dispatcher`` fixture).
DispatcherFactory = Callable[..., Dispatcher]
