"""The outbox dispatcher: claim due rows, ask the gate, render, send, record the outcome.

The durable state is ``coordination``'s outbox table; the scheduler here only decides
*when* to look (a short interval, and at once when woken after an enqueue), so it uses
APScheduler's in-memory job store and loses nothing on a restart.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import partial

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from calendars.zone import local_instant, wall_time
from notifications.email import (
    CalendarPart,
    InvalidAddress,
    InvalidMessage,
    ItipMethod,
    MailSettings,
    build_email,
    checked_address,
    find_terms,
)
from notifications.messages import SERVICE_TERMS, RenderedMessage, RenderError, render
from notifications.metrics import dispatch_outcome
from notifications.ports import (
    Channel,
    Decisions,
    DisclosureGate,
    DisclosureLevel,
    MessageKind,
    OutboxMessage,
    OutboxStore,
    Prepared,
    Settle,
    Settlement,
    Suppressed,
    SuppressionCode,
)
from notifications.sms import Sms, SmsGateway, sms_text, withheld_in
from notifications.transport import PermanentFailure, TemporaryFailure, Transport

log = logging.getLogger(__name__)

_METHOD: dict[MessageKind, ItipMethod] = {
    MessageKind.INVITATION: ItipMethod.REQUEST,
    MessageKind.UPDATE: ItipMethod.REQUEST,
    MessageKind.CANCELLATION: ItipMethod.CANCEL,
}
#: how often a chunk is decided again when what its answers rested on keeps changing
_DECIDE_ROUNDS = 3
#: rendered texts kept for reuse (a chunk's reminders about one meeting share one)
_RENDERED_KEPT = 256


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    """Defaults: a retry after about 30 s, doubling to at most 2 h, and give up after
    12 attempts (about ten hours of outage), with up to 25 % jitter so that a queue held
    back by an outage does not hit the relay in one burst when it comes back."""

    mail: MailSettings
    batch_size: int = 50
    #: messages handed to the relay at once (and so, at most, sent twice after a crash): a
    #: chunk is decided, checked and sent together, and its outcomes written in one transaction
    in_flight: int = 8
    lease: timedelta = timedelta(minutes=5)
    #: a claimed row is left alone once its lease is this close to running out, so that
    #: another instance that re-claims it never sends it at the same time as we do
    lease_margin: timedelta = timedelta(seconds=60)
    max_attempts: int = 12
    backoff_base: timedelta = timedelta(seconds=30)
    backoff_factor: float = 2.0
    backoff_max: timedelta = timedelta(hours=2)
    jitter: float = 0.25
    interval: timedelta = timedelta(seconds=5)
    quiet_start: time = time(21, 0)  # Oslo wall clock
    quiet_end: time = time(7, 0)
    #: SMS go only in the daytime, to everyone (DESIGN.md rule 10), and say at most this much.
    sms_day_start: time = time(8, 0)
    sms_day_end: time = time(20, 0)
    sms_level_cap: DisclosureLevel = DisclosureLevel.LOGISTICS


class Outcome(enum.StrEnum):
    SENT = "sent"
    SUPPRESSED = "suppressed"
    DEFERRED = "deferred"
    RETRY = "retry"
    DEAD = "dead"
    LEFT = "left"  # claim too old to use safely; the lease will release it
    ERROR = "error"  # the outcome could not be recorded; the lease will release it


@dataclass(frozen=True, slots=True)
class DrainReport:
    outcomes: tuple[tuple[str, Outcome], ...] = field(default_factory=tuple)

    @property
    def claimed(self) -> int:
        return len(self.outcomes)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for _, seen in self.outcomes if seen is outcome)


def quiet_until(now: datetime, start: time, end: time) -> datetime | None:
    """The end of the quiet hours ``now`` falls in (aware UTC), or None when it is day.
    Works on Oslo wall-clock time, so it follows summer time."""
    local = wall_time(now)
    clock = local.time().replace(tzinfo=None)
    if start > end:  # spans midnight, e.g. 21:00–07:00
        if clock >= start:
            day = local.date() + timedelta(days=1)
        elif clock < end:
            day = local.date()
        else:
            return None
    elif start <= clock < end:
        day = local.date()
    else:
        return None
    return local_instant(day, end).astimezone(now.tzinfo)


def retry_delay(attempt: int, settings: DispatchSettings, rng: random.Random) -> timedelta:
    """Exponential backoff for the ``attempt``-th failure (1-based), capped, minus up to
    ``jitter`` of itself so that the cap stays a cap."""
    raw = settings.backoff_base * settings.backoff_factor ** max(attempt - 1, 0)
    capped = min(raw, settings.backoff_max)
    return capped * (1.0 - settings.jitter * rng.random())


class Dispatcher:
    """Drains the outbox. ``clock`` returns aware UTC; ``rng`` makes jitter repeatable."""

    def __init__(
        self,
        store: OutboxStore,
        gate: DisclosureGate,
        transport: Transport,
        clock: Callable[[], datetime],
        settings: DispatchSettings,
        *,
        rng: random.Random | None = None,
        sms: SmsGateway | None = None,
    ) -> None:
        sender = f"{settings.mail.sender_name} {settings.mail.sender_address}".casefold()
        if any(term in sender for term in SERVICE_TERMS):
            raise ValueError("the sender name and address must be neutral (DESIGN rule 4)")
        checked_address(settings.mail.sender_address)
        self._store = store
        self._gate = gate
        self._transport = transport
        self._sms = sms
        self._clock = clock
        self._settings = settings
        self._rng = rng if rng is not None else random.Random()
        self._lock = asyncio.Lock()
        self._scheduler: AsyncIOScheduler | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake_pending = False
        self._running = False
        #: sends the relay took whose "sent" could not be written (the store failed just
        #: then): written first thing on the next drain, before the lease lets the row go out again
        self._unrecorded: dict[str, tuple[DisclosureLevel, datetime]] = {}
        #: False until a message has gone through, and again after the relay failed at server
        #: level: then one message goes alone first, so a stuck relay is asked once, not once per
        #: message in flight.
        self._relay_answers = False
        self._rendered: dict[object, RenderedMessage] = {}

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the clock must return aware times")
        return now

    # --- running ----------------------------------------------------------------------

    async def start(self) -> None:
        """Start the interval job on the running loop, and drain once at once."""
        if self._running:
            return
        self._running = True
        scheduler = AsyncIOScheduler(jobstores={"default": MemoryJobStore()}, timezone="UTC")
        scheduler.add_job(
            self._tick,
            IntervalTrigger(seconds=self._settings.interval.total_seconds()),
            id="notifications-drain",
            max_instances=1,
            coalesce=True,
            replace_existing=True,
        )
        scheduler.start()
        self._scheduler = scheduler
        self.wake()

    async def stop(self) -> None:
        """Stop the job and let a drain in progress finish, so that no claim is left
        to wait for its lease."""
        if not self._running:
            return
        self._running = False
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        await self.wait_idle()

    def wake(self) -> None:
        """Drain now (call it after committing an enqueue). Cheap and safe to call often:
        a wake during a drain makes that drain look once more when it ends."""
        if not self._running:
            return
        self._wake_pending = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain_while_woken())

    async def wait_idle(self) -> None:
        """Wait until no woken drain is running."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def _tick(self) -> None:
        self.wake()

    async def _drain_while_woken(self) -> None:
        while self._wake_pending and self._running:
            self._wake_pending = False
            try:
                report = await self.drain_once()
            except Exception as exc:  # the store itself failed: wait for the next tick
                log.warning("outbox drain failed: %s", type(exc).__name__)
                return
            if report.claimed >= self._settings.batch_size:
                self._wake_pending = True

    # --- draining ---------------------------------------------------------------------

    async def drain_once(self) -> DrainReport:
        """Claim one batch of due rows and settle each of them, a chunk of ``in_flight`` at a time."""
        async with self._lock:
            await self._record_unrecorded()
            claimed_at = self._now()
            batch = await self._store.claim_due(claimed_at, self._settings.batch_size, self._settings.lease)
            return await self._settle(batch, claimed_at)

    async def _settle(self, batch: Sequence[OutboxMessage], claimed_at: datetime) -> DrainReport:
        outcomes: list[tuple[str, Outcome]] = []
        usable_until = claimed_at + self._settings.lease - self._settings.lease_margin
        relay_down: str | None = None
        size = max(self._settings.in_flight, 1)
        for start in range(0, len(batch), size):
            chunk = batch[start:start + size]
            if self._now() >= usable_until:
                outcomes += [(message.id, Outcome.LEFT) for message in batch[start:]]
                break
            settled, relay_down = await self._settle_chunk(chunk, relay_down, usable_until)
            outcomes += settled
        claimed = {message.id: message for message in batch}
        for message_id, outcome in outcomes:
            message = claimed[message_id]
            log.info("outbox %s (%s, attempt %d): %s", message_id, message.kind.value, message.attempts + 1,
                     outcome.value)
        return DrainReport(tuple(outcomes))

    async def _settle_chunk(self, chunk: Sequence[OutboxMessage], relay_down: str | None,
                            usable_until: datetime) -> tuple[list[tuple[str, Outcome]], str | None]:
        """Decide, build, check that nothing the decisions rested on has moved, send all at once,
        and record every outcome in one transaction."""
        outcomes: list[tuple[str, Outcome]] = []
        settlements: list[Settlement] = []
        todo: list[OutboxMessage] = []
        now = self._now()
        for message in chunk:
            if message.id in self._unrecorded:
                # We sent it and could not yet say so; its lease ran out and we claimed it
                # again. Never send it twice: record the first send instead.
                outcomes.append((message.id, await self._record_late(message.id)))
            elif relay_down is not None:
                # The relay just failed for a reason that is not this message's: count
                # the attempt for the rest of the batch instead of waiting on each.
                settlements.append(self._temporary(message, now, relay_down))
            else:
                todo.append(message)
        ready = await self._decide(todo, now, settlements)
        if ready and self._now() >= usable_until:
            # Deciding took so long that another instance may soon claim these: leave them.
            outcomes += [(item.message.id, Outcome.LEFT) for item in ready]
            ready = []
        relay_down = await self._send_all(ready, settlements) or relay_down
        outcomes += await self._record(settlements)
        return outcomes, relay_down

    async def _decide(self, todo: Sequence[OutboxMessage], now: datetime,
                      settlements: list[Settlement]) -> list[_Ready]:
        """Ask the gate about ``todo``, build what it allows, then ask whether anything the answers
        rested on changed meanwhile (rule 1): those are decided again, and sent only on an answer
        that has not moved since it was given; one that keeps moving waits for the next drain."""
        ready: list[_Ready] = []
        for _ in range(_DECIDE_ROUNDS):
            if not todo:
                return ready
            todo, decisions = await self._ask(list(todo), now, settlements)
            built = [self._build(message, answer, now) for message, answer in zip(todo, decisions.answers,
                                                                                   strict=True)]
            moved = await self._gate.moved(decisions)
            for index, item in enumerate(built):
                if index in moved:
                    continue
                if isinstance(item, _Ready):
                    ready.append(item)
                else:
                    settlements.append(item)
            todo = [todo[index] for index in sorted(moved)]
            now = self._now()
        settlements += [Settlement(m.id, Settle.DEFERRED, now, m.channel, until=now, text="consent changed")
                        for m in todo]
        return ready

    async def _ask(self, todo: list[OutboxMessage], now: datetime, settlements: list[Settlement]
                   ) -> tuple[list[OutboxMessage], Decisions]:
        """The gate's answers for ``todo`` in one go; if that fails, each message alone, so that one
        row the gate cannot decide (counted as a failed attempt) does not hold up the others."""
        try:
            return todo, await self._gate.prepare_batch(todo, now)
        except Exception as exc:
            if len(todo) == 1:
                log.warning("outbox %s: %s", todo[0].id, type(exc).__name__)
                settlements.append(self._temporary(todo[0], now, f"internal: {type(exc).__name__}"))
                return [], Decisions((), ())
        asked: list[OutboxMessage] = []
        answers: list[Prepared | Suppressed] = []
        basis: list[tuple[str, int]] = []
        for message in todo:
            alone, decided = await self._ask([message], now, settlements)
            asked += alone
            answers += decided.answers
            basis += decided.basis
        return asked, Decisions(tuple(answers), tuple(basis))

    async def _send_all(self, ready: Sequence[_Ready], settlements: list[Settlement]) -> str | None:
        """Hand every built message over at once (at most ``in_flight``); the relay's answer to
        each becomes its settlement. Returns the error when the relay failed at server level."""
        results: list[tuple[Settlement, str | None]] = []
        rest = list(ready)
        if rest and not self._relay_answers:
            results.append(await self._send_one(rest.pop(0)))
            failed = results[0][1]
            if failed is not None:
                now = self._now()
                results += [(self._temporary(item.message, now, failed), failed) for item in rest]
                rest = []
        results += await asyncio.gather(*(self._send_one(item) for item in rest))
        relay_down = None
        for settlement, server_error in results:
            settlements.append(settlement)
            relay_down = relay_down or server_error
        went = any(settlement.kind is Settle.SENT for settlement, _ in results)
        self._relay_answers = relay_down is None and (self._relay_answers or went)
        return relay_down

    async def _send_one(self, item: _Ready) -> tuple[Settlement, str | None]:
        message = item.message
        now = self._now()
        if item.valid_until is not None and now >= item.valid_until:
            # A grant ended, the child turned 15 or the quiet hours began since the decision
            # (rule 1: consent at the moment of disclosure): decided again at the next drain.
            return Settlement(message.id, Settle.DEFERRED, now, message.channel, until=now,
                              text="decided before a change of consent or hours"), None
        try:
            await item.send()
        except PermanentFailure as exc:
            return self._dead(message, self._now(), exc.detail), None
        except TemporaryFailure as exc:
            return self._temporary(message, self._now(), exc.detail), exc.detail if exc.server_level else None
        except Exception as exc:
            log.warning("outbox %s: %s", message.id, type(exc).__name__)
            return self._temporary(message, self._now(), f"internal: {type(exc).__name__}"), None
        # The disclosure happened when the relay took the message (its 250), not when the
        # gate decided: that is the time recorded, so the audit shows which came first.
        return Settlement(message.id, Settle.SENT, self._now(), message.channel, level=item.level), None

    async def _record(self, settlements: Sequence[Settlement]) -> list[tuple[str, Outcome]]:
        """All outcomes of a chunk in one transaction. When it fails, a send the relay took is kept
        to record on the next drain (retrying would send it twice; only if this process dies first
        does the lease release the row, and the same Message-ID lets clients fold the repeat)."""
        if not settlements:
            return []
        try:
            await self._store.settle(settlements)
        except Exception as exc:
            log.warning("outbox: recording %d outcomes failed: %s", len(settlements), type(exc).__name__)
            for settlement in settlements:
                if settlement.kind is Settle.SENT:
                    self._unrecorded[settlement.outbox_id] = (settlement.level, settlement.at)
            return [(settlement.outbox_id, Outcome.ERROR) for settlement in settlements]
        for settlement in settlements:
            dispatch_outcome(settlement.channel.value, settlement.kind.value)
        return [(settlement.outbox_id, Outcome(settlement.kind.value)) for settlement in settlements]

    async def _record_unrecorded(self) -> None:
        """Write the "sent" of deliveries whose recording failed. One that fails again stays
        for the next drain; it never blocks the rest of the outbox."""
        for outbox_id in list(self._unrecorded):
            await self._record_late(outbox_id)

    async def _record_late(self, outbox_id: str) -> Outcome:
        level, sent_at = self._unrecorded[outbox_id]
        try:
            await self._store.mark_sent(outbox_id, level, sent_at)
        except Exception as exc:
            log.warning("outbox %s: recording the send failed again: %s", outbox_id, type(exc).__name__)
            return Outcome.ERROR
        del self._unrecorded[outbox_id]
        log.info("outbox %s: sent, recorded late", outbox_id)
        return Outcome.SENT

    # --- building -----------------------------------------------------------------------

    def _build(self, message: OutboxMessage, decision: Prepared | Suppressed, now: datetime
               ) -> _Ready | Settlement:
        """What to send for one row, or how to settle it unsent: no database, no network."""
        if isinstance(decision, Suppressed):
            return self._suppress(message, now, decision.code, decision.reason)
        if message.channel is Channel.SMS:
            return self._build_sms(message, decision, now)
        valid_until = decision.valid_until
        if decision.recipient_kind.is_family:
            # Who is family is the gate's answer from the contact as it is now, not what
            # they were when the message was queued (DESIGN.md rule 10). The gate's
            # recorded decision is no disclosure: nothing is sent or marked sent.
            until = quiet_until(now, self._settings.quiet_start, self._settings.quiet_end)
            if until is not None:
                return Settlement(message.id, Settle.DEFERRED, now, message.channel, until=until, text="quiet hours")
            valid_until = _earliest(valid_until, next_wall_time(now, self._settings.quiet_start))
        refusal = self._refusal(message, decision, now)
        if refusal is not None:
            return self._suppress(message, now, *refusal)
        try:
            rendered = self._render(message.kind, decision)
            email = build_email(
                rendered,
                settings=self._settings.mail,
                recipient=decision.recipient,
                message_id=message.message_id,
                date=now,
                calendar=self._calendar_part(message, decision),
                auto_generated=message.kind in (MessageKind.REMINDER, MessageKind.ALERT),
            )
        except InvalidAddress:
            return self._suppress(message, now, SuppressionCode.NO_ADDRESS, "unusable e-mail address")
        except (RenderError, InvalidMessage) as exc:
            return self._dead(message, now, f"cannot build message: {exc}")
        service = SERVICE_TERMS if decision.allowed_level < DisclosureLevel.PURPOSE else ()
        leaked = find_terms(email, substrings=service, words=decision.withheld_terms)
        if leaked:
            # Never name the terms: they are exactly what must not be written down.
            return self._dead(message, now, f"mail would disclose {len(leaked)} withheld term(s)")
        return _Ready(message, rendered.level, partial(self._transport.send, email), valid_until)

    def _render(self, kind: MessageKind, decision: Prepared) -> RenderedMessage:
        """The text of a message; the same (kind, recipient kind, details) give the same text, so a
        chunk of reminders about one meeting renders it once."""
        key = (kind, decision.recipient_kind, decision.allowed_level, decision.recipient.language,
               decision.meeting, decision.alert, decision.answer_url, decision.link_url, decision.calendar is None)
        rendered = self._rendered.get(key)
        if rendered is None:
            rendered = render(kind, decision.recipient_kind, decision, sender_name=self._settings.mail.sender_name)
            if len(self._rendered) >= _RENDERED_KEPT:
                self._rendered.clear()
            self._rendered[key] = rendered
        return rendered

    def _build_sms(self, message: OutboxMessage, prepared: Prepared, now: datetime) -> _Ready | Settlement:
        """An SMS row: in the daytime only, content-free or at ``logistics`` at most, through the
        gateway; failures retried or given up as for mail."""
        s = self._settings
        until = quiet_until(now, s.sms_day_end, s.sms_day_start)
        if until is not None:
            return Settlement(message.id, Settle.DEFERRED, now, message.channel, until=until,
                              text="outside the SMS hours")
        refusal = self._refusal(message, prepared, now)
        if refusal is not None:
            return self._suppress(message, now, *refusal)
        meeting = prepared.meeting
        made = sms_text(message.kind, prepared.recipient.language, prepared.allowed_level, s.sms_level_cap,
                        answer_url=prepared.answer_url, start=meeting.start if meeting else None,
                        place=meeting.place if meeting else None, phone=meeting.organiser_phone if meeting else None,
                        by_email=prepared.recipient.by_email)
        if made is None:
            return self._suppress(message, now, SuppressionCode.LEVEL_NONE, "nothing may be said by SMS")
        if not prepared.recipient.mobile:
            return self._suppress(message, now, SuppressionCode.NO_ADDRESS, "no mobile number")
        if withheld_in(made.text, prepared.withheld_terms):
            return self._dead(message, now, "SMS would disclose a withheld term")
        sms = Sms(prepared.recipient.mobile, made.text, message.message_id.strip("<>"))
        return _Ready(message, made.level, partial(self._sms_send, sms),
                      _earliest(prepared.valid_until, next_wall_time(now, s.sms_day_end)))

    async def _sms_send(self, sms: Sms) -> None:
        if self._sms is None:
            raise PermanentFailure("no SMS gateway is configured")
        await self._sms.send(sms)

    def _refusal(
        self, message: OutboxMessage, prepared: Prepared, now: datetime
    ) -> tuple[SuppressionCode, str] | None:
        if prepared.allowed_level is DisclosureLevel.NONE:
            return SuppressionCode.LEVEL_NONE, "allowed level is none"
        meeting = prepared.meeting
        if meeting is not None and message.kind is not MessageKind.ALERT:
            over = meeting.start if message.kind is MessageKind.REMINDER else meeting.end
            if over <= now:
                return SuppressionCode.TOO_LATE, "the meeting has already started or ended"
        return None

    def _calendar_part(self, message: OutboxMessage, prepared: Prepared) -> CalendarPart | None:
        method = _METHOD.get(message.kind)
        if method is None or prepared.calendar is None:
            return None
        meeting = prepared.meeting
        return CalendarPart(
            ics=prepared.calendar,
            method=method,
            uid=meeting.uid if meeting is not None else None,
            sequence=meeting.sequence if meeting is not None else None,
        )

    # --- outcomes -----------------------------------------------------------------------

    @staticmethod
    def _suppress(message: OutboxMessage, now: datetime, code: SuppressionCode, reason: str) -> Settlement:
        return Settlement(message.id, Settle.SUPPRESSED, now, message.channel, code=code, text=reason)

    @staticmethod
    def _dead(message: OutboxMessage, now: datetime, error: str) -> Settlement:
        return Settlement(message.id, Settle.DEAD, now, message.channel, attempts=message.attempts + 1, text=error)

    def _temporary(self, message: OutboxMessage, now: datetime, error: str) -> Settlement:
        attempt = message.attempts + 1
        if attempt >= self._settings.max_attempts:
            return Settlement(message.id, Settle.DEAD, now, message.channel, attempts=attempt,
                              text=f"gave up after {attempt} attempts: {error}")
        delay = retry_delay(attempt, self._settings, self._rng)
        return Settlement(message.id, Settle.RETRY, now, message.channel, attempts=attempt, until=now + delay,
                          text=error)


@dataclass(frozen=True, slots=True)
class _Ready:
    """A message built and allowed, waiting for its turn on the wire."""

    message: OutboxMessage
    level: DisclosureLevel
    send: Callable[[], Awaitable[None]]
    #: The decision and the hours it was built under hold until then (None: no such bound).
    valid_until: datetime | None = None


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min((x for x in (a, b) if x is not None), default=None)


def next_wall_time(now: datetime, at: time) -> datetime:
    """The next instant after ``now`` at which Oslo's wall clock shows ``at``."""
    local = wall_time(now)
    instant = local_instant(local.date(), at)
    return instant if instant > now else local_instant(local.date() + timedelta(days=1), at)
