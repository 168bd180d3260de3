"""``coordination``'s side of the dispatcher: the SQL outbox store and the consent gate.

The gate asks the policy at the moment of sending (DESIGN.md rule 1), so a consent
withdrawn at 10:00 stops a reminder due at 10:01 that was queued last week. Every
decision, allow or deny, is written to the audit log with its reasons and the consent
records it rested on (rule 9). The store claims rows with ``FOR UPDATE SKIP LOCKED`` and
a lease on PostgreSQL, so two instances never send one message (rule 6).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hmac
import logging
import os
import secrets
import socket
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from calendars.events import CalendarEvent
from calendars.ical import render_itip
from calendars.schedule import MeetingKind
from coordination import alerts, audit
from coordination.access import visible_cases
from coordination.cases import PolicyFacts, contact_facts, load_policy_facts
from coordination.context import ServiceContext
from coordination.disclosure import Reader, level_for, to_event, visible_for
from coordination.domain import Language, Role, Sector
from coordination.levels import Level
from coordination.meetings import participants_of
from coordination.models import (
    Alert,
    AnswerToken,
    Case,
    Contact,
    Meeting,
    MeetingParticipant,
    OutboxMessage,
    Plan,
    Unit,
    User,
)
from coordination.outbox import recipient_kind
from coordination.policy import Decision
from coordination.security import hash_token
from coordination.settings import Settings
from notifications.dispatcher import Dispatcher, DispatchSettings
from notifications.email import MailSettings
from notifications.messages import message_level
from notifications.ports import (
    AlertDetails,
    AlertKind,
    MeetingDetails,
    MessageKind,
    Prepared,
    Recipient,
    RecipientKind,
    Suppressed,
    SuppressionCode,
)
from notifications.ports import (
    OutboxMessage as PortMessage,
)
from notifications.transport import Transport, select_transport

log = logging.getLogger(__name__)

_SENT_KINDS = {MessageKind.INVITATION, MessageKind.UPDATE}


def instance_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _port(row: OutboxMessage) -> PortMessage:
    recipient = row.recipient_contact_id if row.recipient_contact_id is not None else row.recipient_user_id
    return PortMessage(
        id=str(row.id), idempotency_key=row.idempotency_key, kind=MessageKind(row.kind),
        recipient_id=str(recipient), due_at=row.due_at,
        attempts=row.attempts, message_id=row.message_id,
        subject_id=str(row.meeting_id if row.meeting_id is not None else row.alert_id),
    )


class SqlOutboxStore:
    """The outbox table as the dispatcher's ``OutboxStore``."""

    def __init__(self, ctx: ServiceContext, instance: str | None = None) -> None:
        self._ctx = ctx
        self._instance = instance or instance_name()

    async def claim_due(self, now: datetime, limit: int, lease: timedelta) -> Sequence[PortMessage]:
        async with self._ctx.transaction() as session:
            # Two statements rather than one with OR, so each can use the (status, next_attempt_at)
            # index: expired leases first (an instance died holding them), then due rows.
            rows: list[OutboxMessage] = []
            for condition, order in (
                ((col(OutboxMessage.status) == "sending") & (col(OutboxMessage.lease_until) < now),
                 col(OutboxMessage.lease_until)),
                ((col(OutboxMessage.status) == "pending") & (col(OutboxMessage.next_attempt_at) <= now),
                 col(OutboxMessage.next_attempt_at)),
            ):
                if len(rows) >= limit:
                    break
                query = select(OutboxMessage).where(condition).order_by(order, col(OutboxMessage.id))
                query = query.limit(limit - len(rows))
                if not self._ctx.settings.is_sqlite:
                    query = query.with_for_update(skip_locked=True)
                rows.extend((await session.exec(query)).all())
            for row in rows:
                row.status = "sending"
                row.lease_until = now + lease
                row.claimed_by = self._instance
                row.updated_at = now
                session.add(row)
            return [_port(row) for row in rows]

    async def _finish(self, session: AsyncSession, outbox_id: str, **values: object) -> OutboxMessage | None:
        """End our claim; a row whose lease another instance has taken over is left alone."""
        row = await session.get(OutboxMessage, int(outbox_id), with_for_update=not self._ctx.settings.is_sqlite)
        if row is None or row.status != "sending" or row.claimed_by != self._instance:
            log.warning("outbox %s: claim lost before its outcome was recorded", outbox_id)
            return None
        for key, value in values.items():
            setattr(row, key, value)
        row.lease_until = None
        session.add(row)
        return row

    def _audit(self, session: AsyncSession, row: OutboxMessage, action: str, now: datetime,
               **detail: object) -> None:
        audit.record(session, unit_id=row.unit_id, case_id=row.case_id, actor=audit.SYSTEM, action=action,
                     subject=f"outbox:{row.id}", at=now,
                     detail={"kind": row.kind, "contact": row.recipient_contact_id, "user": row.recipient_user_id,
                             "meeting": row.meeting_id, "sequence": row.meeting_sequence, **detail})

    async def mark_sent(self, outbox_id: str, level: Level, now: datetime) -> None:
        async with self._ctx.transaction() as session:
            row = await self._finish(session, outbox_id, status="sent", sent_at=now, level=level.value,
                                     updated_at=now)
            if row is not None:
                self._audit(session, row, "notification.sent", now, level=level.value,
                            message_id=row.message_id)

    async def mark_suppressed(self, outbox_id: str, code: SuppressionCode, reason: str, now: datetime) -> None:
        async with self._ctx.transaction() as session:
            row = await self._finish(session, outbox_id, status="suppressed", suppressed_code=code.value,
                                     suppressed_reason=reason[:500], updated_at=now)
            if row is None:
                return
            self._audit(session, row, "notification.suppressed", now, code=code.value, reason=reason[:500])
            if code in (SuppressionCode.NO_ADDRESS,) and row.case_id is not None:
                case = await session.get(Case, row.case_id)
                assert case is not None
                await alerts.raise_alert(
                    session, case, AlertKind.NOTIFICATION_FAILED.value,
                    f"case:{case.id}:no_address:{row.recipient_contact_id or row.recipient_user_id}", now,
                    detail={"outbox": row.id, "contact": row.recipient_contact_id, "code": code.value},
                )

    async def schedule_retry(self, outbox_id: str, attempts: int, next_attempt_at: datetime, error: str,
                             now: datetime) -> None:
        async with self._ctx.transaction() as session:
            row = await self._finish(session, outbox_id, status="pending", attempts=attempts,
                                     next_attempt_at=next_attempt_at, last_error=error[:500], updated_at=now)
            if row is not None:
                self._audit(session, row, "notification.retry", now, attempts=attempts, error=error[:200],
                            next_attempt_at=next_attempt_at.isoformat())

    async def defer(self, outbox_id: str, until: datetime, reason: str, now: datetime) -> None:
        async with self._ctx.transaction() as session:
            await self._finish(session, outbox_id, status="pending", next_attempt_at=until, updated_at=now)

    async def mark_dead(self, outbox_id: str, attempts: int, error: str, now: datetime) -> None:
        async with self._ctx.transaction() as session:
            row = await self._finish(session, outbox_id, status="dead", attempts=attempts, last_error=error[:500],
                                     updated_at=now)
            if row is None:
                return
            self._audit(session, row, "notification.dead", now, attempts=attempts, error=error[:200])
            if row.case_id is not None and row.kind != MessageKind.ALERT.value:
                case = await session.get(Case, row.case_id)
                assert case is not None
                await alerts.raise_alert(session, case, AlertKind.NOTIFICATION_FAILED.value,
                                         f"outbox:{row.id}:dead", now,
                                         detail={"outbox": row.id, "contact": row.recipient_contact_id,
                                                 "error": error[:200]})


def _suppression(decision: Decision) -> SuppressionCode:
    codes = {r.code for r in decision.reasons}
    if "withdrawn" in codes:
        return SuppressionCode.CONSENT_WITHDRAWN
    if "child_talk_private" in codes:
        return SuppressionCode.NOT_TOLD
    return SuppressionCode.NO_CONSENT


def _reason_text(decision: Decision) -> str:
    """Ids and rule codes only: this text is stored and shown, and must name nobody."""
    parts = []
    for reason in decision.reasons:
        text = reason.code
        if reason.contact_id is not None:
            text += f" contact={reason.contact_id}"
        if reason.sector is not None:
            text += f" sector={reason.sector.value}"
        parts.append(text)
    return "; ".join(parts) or "no consent"


class ConsentGate:
    """``DisclosureGate``: the policy, asked at send time, and the message data it allows."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    async def prepare(self, message: PortMessage, now: datetime) -> Prepared | Suppressed:
        async with self._ctx.transaction() as session:
            row = await session.get(OutboxMessage, int(message.id))
            if row is None:
                return Suppressed(SuppressionCode.OBSOLETE, "the outbox row is gone")
            if row.kind == MessageKind.ALERT.value:
                return await self._prepare_alert(session, row)
            return await self._prepare_meeting(session, row, now)

    async def _prepare_alert(self, session: AsyncSession, row: OutboxMessage) -> Prepared | Suppressed:
        user = await session.get(User, row.recipient_user_id) if row.recipient_user_id else None
        alert = await session.get(Alert, row.alert_id) if row.alert_id else None
        if user is None or alert is None or not user.active:
            return Suppressed(SuppressionCode.OBSOLETE, "the coordinator or the alert is gone")
        if not user.email:
            return Suppressed(SuppressionCode.NO_ADDRESS, f"user {user.id} has no e-mail address")
        case = None
        if alert.case_id is not None:
            # Rule 11: an alert queued while the user was on the case is not mailed once they are off it.
            case = (await session.exec(visible_cases(user).where(Case.id == alert.case_id))).first()
            if case is None:
                return Suppressed(SuppressionCode.OBSOLETE, f"user {user.id} no longer sees the alert's case")
        kind = AlertKind(alert.kind) if alert.kind in AlertKind.__members__.values() else AlertKind.OTHER
        return Prepared(
            recipient=Recipient(email=user.email, language=Language.NB),
            recipient_kind=RecipientKind.COORDINATOR,
            allowed_level=min(Level.CONTENT, self._ctx.settings.email_level_cap),
            alert=AlertDetails(kind=kind, case_reference=case.reference if case else None),
            link_url=f"{self._ctx.settings.public_base_url}/",
        )

    async def _prepare_meeting(self, session: AsyncSession, row: OutboxMessage, now: datetime
                               ) -> Prepared | Suppressed:
        meeting = await session.get(Meeting, row.meeting_id) if row.meeting_id else None
        contact = await session.get(Contact, row.recipient_contact_id) if row.recipient_contact_id else None
        if meeting is None or contact is None:
            return Suppressed(SuppressionCode.OBSOLETE, "the meeting or the recipient is gone")
        kind = MessageKind(row.kind)
        if row.meeting_sequence != meeting.ical_sequence:
            return Suppressed(SuppressionCode.OBSOLETE,
                              f"superseded: sequence {row.meeting_sequence} is now {meeting.ical_sequence}")
        if kind is not MessageKind.CANCELLATION and meeting.status != "confirmed":
            return Suppressed(SuppressionCode.OBSOLETE, f"the meeting is {meeting.status}")
        if not contact.active:
            return Suppressed(SuppressionCode.OBSOLETE, f"contact {contact.id} is no longer active")
        if await session.get(MeetingParticipant, (meeting.id, contact.id)) is None:
            return Suppressed(SuppressionCode.OBSOLETE, f"contact {contact.id} is no longer invited")
        case = await session.get(Case, meeting.case_id)
        unit = await session.get(Unit, case.unit_id) if case else None
        assert case is not None and unit is not None
        facts = await load_policy_facts(session, case)
        reader = Reader(contact=contact_facts(contact), language=Language(contact.language),
                        cap=self._ctx.settings.email_level_cap)
        decision = level_for(reader, facts, meeting, now)
        decided = {"outbox": row.id, "meeting": meeting.id, "contact": contact.id, "channel": "email",
                   "level": decision.level.value if decision.allowed else "none",
                   "reasons": [r.code for r in decision.reasons],
                   "consent_records": list(decision.consent_record_ids)}
        if not decision.allowed:
            audit.record(session, unit_id=case.unit_id, case_id=case.id, actor=audit.SYSTEM,
                         action="disclosure.denied", subject=f"contact:{contact.id}", at=now, detail=decided)
            return Suppressed(_suppression(decision), _reason_text(decision))
        audit.record(session, unit_id=case.unit_id, case_id=case.id, actor=audit.SYSTEM,
                     action="disclosure.allowed", subject=f"contact:{contact.id}", at=now, detail=decided)
        if not contact.email:
            return Suppressed(SuppressionCode.NO_ADDRESS, f"contact {contact.id} has no e-mail address")
        # One level for the whole message — text, HTML and the calendar part — which the
        # dispatcher renders and audits as sent (rules 3 and 9).
        level = message_level(kind, decision.level)
        return await self._prepared(session, row, kind, case, unit, meeting, contact, reader, facts, level, now)

    async def _prepared(self, session: AsyncSession, row: OutboxMessage, kind: MessageKind, case: Case,
                        unit: Unit, meeting: Meeting, contact: Contact, reader: Reader, facts: PolicyFacts,
                        level: Level, now: datetime) -> Prepared:
        settings = self._ctx.settings
        people = (await participants_of(session, [meeting.id or 0])).get(meeting.id or 0, [])
        plan = (await session.exec(select(Plan).where(Plan.case_id == case.id))).first()
        visible = visible_for(reader, facts, now)
        answer_url = None
        if kind in _SENT_KINDS:
            answer_url = await answer_link(session, self._ctx, meeting, contact, now)
        calendar = None
        if kind in (MessageKind.INVITATION, MessageKind.UPDATE, MessageKind.CANCELLATION):
            event = to_event(case, meeting, people, level, reader, visible, organizer_email=settings.mail_from,
                             url=answer_url, plan_text=plan.goals if plan else None)
            event = _neutral_organizer(event, settings.mail_from_name)
            calendar = render_itip("CANCEL" if kind is MessageKind.CANCELLATION else "REQUEST", event)
        return Prepared(
            recipient=Recipient(email=contact.email, language=Language(contact.language)),
            recipient_kind=recipient_kind(contact),
            allowed_level=level,
            meeting=MeetingDetails(
                uid=meeting.uid, sequence=meeting.ical_sequence, start=meeting.start, end=meeting.end,
                place=_place(meeting), organiser_phone=unit.phone or None,
                kind=MeetingKind(meeting.kind), agenda_headline=meeting.agenda or None,
                content_text=plan.goals if plan and plan.goals and level >= Level.CONTENT else None,
            ),
            answer_url=answer_url,
            calendar=calendar,
            withheld_terms=_withheld(case, contact, people, visible, plan, level),
        )


def _place(meeting: Meeting) -> str | None:
    if meeting.place and meeting.video_link:
        return f"{meeting.place} ({meeting.video_link})"
    return meeting.place or meeting.video_link or None


def _neutral_organizer(event: CalendarEvent, name: str) -> CalendarEvent:
    """The caseworker's name must not travel in the iTIP object: the organiser is neutral."""
    return replace(event, organizer_name=name)


def _withheld(case: Case, reader: Contact, people: Sequence[tuple[object, Contact]], visible: frozenset[Sector],
              plan: Plan | None, level: Level) -> tuple[str, ...]:
    """Words this recipient may not read: a last guard against a leaking place or agenda.
    The child is named to the family and the service, as the attendee list does."""
    terms: list[str] = []
    if Sector(reader.sector).needs_consent:
        child_names = [c.name for _, c in people if c.role == Role.CHILD]
        terms += [case.child_given_name, *child_names]
    for _, other in people:
        if other.id != reader.id and (Sector(other.sector) not in visible or level < Level.PURPOSE):
            terms.append(other.name)
    if plan is not None and level < Level.CONTENT:
        terms += [str(m.get("what", "")) for m in plan.measures]
    own = reader.name.casefold()
    return tuple(sorted({t for t in terms if t and len(t) >= 3 and t.casefold() not in own}))


def answer_link_key(settings: Settings) -> bytes:
    """The server secret answer links are derived from: SAMHANDLING_LINK_SECRET; for a SQLite
    database without it, a secret generated once into a file beside the database (so that a copy
    of the database alone, a backup say, holds no working link)."""
    if settings.link_secret:
        return settings.link_secret.encode("utf-8")
    database = make_url(settings.database_url).database if settings.is_sqlite else None
    if database and database != ":memory:" and not database.startswith("file:"):
        return _key_file(Path(database + ".link-secret").resolve())
    return _process_key()


@functools.cache
def _process_key() -> bytes:
    """Without a configured secret and a database file to keep one beside (PostgreSQL, say), a
    key of this process: links then stay the same only while it runs, which is worth a warning."""
    log.warning("SAMHANDLING_LINK_SECRET is not set: an answer link sent again by another instance "
                "or after a restart is a new one, and the earlier copy's link stops working")
    return secrets.token_urlsafe(32).encode("ascii")


@functools.cache
def _key_file(path: Path) -> bytes:
    """Read the secret, or write a new one (readable by the service's user only). Written under a
    temporary name and linked into place, so that two processes starting at once agree on one."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".link-secret-")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(32) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):  # another process was first: use theirs
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise RuntimeError(f"the answer link secret in {path.name} is too short")
    return secret.encode("utf-8")


def _answer_token(key: bytes, row: AnswerToken) -> str:
    message = f"answer-link\0{row.meeting_id}\0{row.contact_id}\0{row.salt}".encode()
    return base64.urlsafe_b64encode(hmac.digest(key, message, "sha256")).rstrip(b"=").decode("ascii")


async def answer_link(session: AsyncSession, ctx: ServiceContext, meeting: Meeting, contact: Contact,
                      now: datetime) -> str:
    """The invitation's accept/decline link: one for its life, so that the link in every copy —
    a retry, a resend after a crash, an update — works, including in the copy that arrived first.

    The token is derived from the server secret and a random salt kept in its row; the row holds
    only the salt and the token's hash. A new salt (a new link) only for a new invitation, a
    revoked one, or when the secret has changed, since an old token cannot be derived again then."""
    key = answer_link_key(ctx.settings)
    row = (await session.exec(select(AnswerToken).where(
        AnswerToken.meeting_id == meeting.id, AnswerToken.contact_id == contact.id))).first()
    if row is not None and row.revoked_at is None and row.salt:
        token = _answer_token(key, row)
        if hmac.compare_digest(hash_token(token), row.token_hash):
            return f"{ctx.settings.public_base_url}/answer/{token}"
    if row is None:
        row = AnswerToken(meeting_id=meeting.id or 0, contact_id=contact.id or 0, token_hash="", created_at=now)
    row.salt = secrets.token_urlsafe(16)
    token = _answer_token(key, row)
    row.token_hash = hash_token(token)
    row.created_at = now
    row.revoked_at = None
    session.add(row)
    return f"{ctx.settings.public_base_url}/answer/{token}"


async def release_claims(ctx: ServiceContext, instance: str) -> None:
    """At a clean shutdown, hand this instance's unfinished claims back at once."""
    async with ctx.transaction() as session:
        await session.exec(
            update(OutboxMessage)
            .where(col(OutboxMessage.status) == "sending", col(OutboxMessage.claimed_by) == instance)
            .values(status="pending", lease_until=None)
        )


def build_dispatcher(ctx: ServiceContext, transport: Transport | None = None, *,
                     dispatch_settings: DispatchSettings | None = None) -> Dispatcher:
    """The dispatcher over this service's outbox, gate and configured transport."""
    settings = ctx.settings
    lease = timedelta(seconds=settings.dispatch_lease_seconds)
    return Dispatcher(
        SqlOutboxStore(ctx),
        ConsentGate(ctx),
        transport or select_transport(settings.smtp, settings.mail_folder),
        ctx.now,
        dispatch_settings or DispatchSettings(
            mail=MailSettings(sender_address=settings.mail_from, sender_name=settings.mail_from_name),
            interval=timedelta(seconds=settings.dispatch_interval_seconds),
            lease=lease,
            # Stop using a claim well before another instance may take it over.
            lease_margin=min(timedelta(seconds=60), lease / 5),
        ),
    )
