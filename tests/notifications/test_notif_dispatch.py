"""The dispatcher against a real SMTP server that greylists, refuses, or is down; the
consent gate asked at send time; quiet hours; one bad row not stopping the others."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from notif_doubles import (
    MEETING_START,
    NOW,
    SENDER,
    Clock,
    DispatcherFactory,
    MemoryOutbox,
    ScriptedGate,
    SmtpServer,
    prepared,
    withdrawn_from,
)

from notifications.dispatcher import (
    Dispatcher,
    DispatchSettings,
    Outcome,
    quiet_until,
    retry_delay,
)
from notifications.email import MailSettings
from notifications.ports import (
    DisclosureLevel,
    MessageKind,
    Prepared,
    Recipient,
    RecipientKind,
    Suppressed,
    SuppressionCode,
)
from notifications.transport import FolderTransport, SmtpTransport, Transport

GREYLIST = "451 4.7.1 <mor@familie.example>: Greylisted, please try again later"


def queue(
    outbox: MemoryOutbox,
    gate: ScriptedGate,
    outbox_id: str,
    decision: Prepared | Suppressed | None = None,
    *,
    due_at: datetime = NOW,
    kind: MessageKind = MessageKind.INVITATION,
    recipient_kind: RecipientKind = RecipientKind.PARENT,
) -> None:
    outbox.add(outbox_id, due_at=due_at, kind=kind)
    answer = decision or prepared(email=f"{outbox_id}@familie.example")
    gate.answers[outbox_id] = replace(answer, recipient_kind=recipient_kind) if isinstance(answer, Prepared) else answer


async def test_greylisting_is_retried_later_and_delivered_once(
    smtp: SmtpServer,
    outbox: MemoryOutbox,
    gate: ScriptedGate,
    clock: Clock,
    make_dispatcher: DispatcherFactory,
) -> None:
    queue(outbox, gate, "o1", prepared())
    dispatcher = make_dispatcher()
    smtp.mailbox.rcpt_reply = GREYLIST

    first = await dispatcher.drain_once()
    again = await dispatcher.drain_once()  # not due yet: nothing is claimed
    assert first.outcomes == (("o1", Outcome.RETRY),)
    assert again.claimed == 0
    row = outbox.rows["o1"]
    assert row.message.attempts == 1
    assert row.next_attempt_at > NOW
    assert row.last_error is not None and "451" in row.last_error
    assert "mor@familie.example" not in row.last_error

    smtp.mailbox.rcpt_reply = None
    clock.now = row.next_attempt_at
    second = await dispatcher.drain_once()

    assert second.outcomes == (("o1", Outcome.SENT),)
    assert len(smtp.arrivals) == 1
    assert smtp.arrivals[0].message["Message-ID"] == "<o1.outbox@samhandling.example>"
    assert [status for status, _ in row.history] == ["pending", "sent"]


async def test_rejection_550_ends_dead_without_retry(
    smtp: SmtpServer,
    outbox: MemoryOutbox,
    gate: ScriptedGate,
    clock: Clock,
    make_dispatcher: DispatcherFactory,
) -> None:
    queue(outbox, gate, "o1", prepared())
    queue(outbox, gate, "o2", prepared(email="far@familie.example"))
    smtp.mailbox.rcpt_reply = "550 5.1.1 <mor@familie.example>: Recipient address rejected"
    dispatcher = make_dispatcher()

    report = await dispatcher.drain_once()
    clock.advance(timedelta(days=1))
    later = await dispatcher.drain_once()

    assert report.count(Outcome.DEAD) == 2
    assert later.claimed == 0
    assert smtp.arrivals == []
    error = outbox.rows["o1"].last_error
    assert error is not None and "550" in error and "mor@familie.example" not in error


async def test_a_550_after_data_is_also_permanent(
    smtp: SmtpServer, outbox: MemoryOutbox, gate: ScriptedGate, make_dispatcher: DispatcherFactory
) -> None:
    queue(outbox, gate, "o1", prepared())
    smtp.mailbox.data_reply = "554 5.7.1 Message rejected"

    await make_dispatcher().drain_once()

    assert outbox.status("o1") == "dead"


async def test_server_down_then_back_delivers_each_message_once(
    smtp: SmtpServer,
    outbox: MemoryOutbox,
    gate: ScriptedGate,
    clock: Clock,
    make_dispatcher: DispatcherFactory,
) -> None:
    for outbox_id in ("o1", "o2", "o3"):
        queue(outbox, gate, outbox_id)
    dispatcher = make_dispatcher(in_flight=1)  # one at a time, so that the rest can be spared
    smtp.down()

    timeline: list[tuple[timedelta, dict[str, int]]] = []
    for _ in range(3):
        report = await dispatcher.drain_once()
        timeline.append((clock.now - NOW, {o.value: report.count(o) for o in Outcome}))
        clock.now = max(row.next_attempt_at for row in outbox.rows.values())

    assert all(counts["retry"] == 3 for _, counts in timeline)
    assert all(row.message.attempts == 3 for row in outbox.rows.values())
    # Only the first row of each batch met the closed port; the others were spared.
    assert len(gate.asked) == 3

    smtp.up()
    recovered = await dispatcher.drain_once()
    await dispatcher.drain_once()

    assert recovered.count(Outcome.SENT) == 3
    ids = sorted(str(arrival.message["Message-ID"]) for arrival in smtp.arrivals)
    assert ids == [f"<o{i}.outbox@samhandling.example>" for i in (1, 2, 3)]
    waits = [when for when, _ in timeline]
    assert waits[0] < waits[1] < waits[2]  # backing off


async def test_too_many_attempts_end_dead(
    smtp: SmtpServer,
    outbox: MemoryOutbox,
    gate: ScriptedGate,
    clock: Clock,
    make_dispatcher: DispatcherFactory,
) -> None:
    queue(outbox, gate, "o1")
    dispatcher = make_dispatcher(max_attempts=3)
    smtp.mailbox.rcpt_reply = GREYLIST

    outcomes: list[Outcome] = []
    for _ in range(4):
        report = await dispatcher.drain_once()
        outcomes.extend(outcome for _, outcome in report.outcomes)
        clock.now = outbox.rows["o1"].next_attempt_at

    assert outcomes == [Outcome.RETRY, Outcome.RETRY, Outcome.DEAD]
    assert outbox.rows["o1"].message.attempts == 3
    assert smtp.arrivals == []


async def test_consent_withdrawn_after_queuing_stops_the_reminder(
    smtp: SmtpServer,
    outbox: MemoryOutbox,
    gate: ScriptedGate,
    clock: Clock,
    make_dispatcher: DispatcherFactory,
) -> None:
    # Queued last week for 10:01; consent withdrawn at 10:00.
    due = datetime(2027, 1, 8, 9, 1, tzinfo=UTC)
    reminder = prepared(method=None)
    queue(
        outbox,
        gate,
        "o1",
        kind=MessageKind.REMINDER,
        recipient_kind=RecipientKind.PARTNER,
        due_at=due,
    )
    gate.answers["o1"] = withdrawn_from(due - timedelta(minutes=1), reminder)
    dispatcher = make_dispatcher()

    assert (await dispatcher.drain_once()).claimed == 0  # not due: the gate is not asked
    clock.now = due
    await dispatcher.drain_once()

    assert smtp.arrivals == []
    assert gate.asked == [("o1", due)]
    assert outbox.rows["o1"].suppressed == (
        SuppressionCode.CONSENT_WITHDRAWN,
        "consent c-7 withdrawn",
    )


async def test_quiet_hours_hold_family_mail_until_seven(
    smtp: SmtpServer,
    outbox: MemoryOutbox,
    gate: ScriptedGate,
    clock: Clock,
    make_dispatcher: DispatcherFactory,
) -> None:
    late = datetime(2027, 1, 5, 21, 30, tzinfo=UTC)  # 22:30 in Oslo
    clock.now = late
    queue(outbox, gate, "parent", due_at=late, recipient_kind=RecipientKind.PARENT)
    queue(outbox, gate, "child", due_at=late, recipient_kind=RecipientKind.CHILD)
    queue(outbox, gate, "teacher", due_at=late, recipient_kind=RecipientKind.PARTNER)
    dispatcher = make_dispatcher()

    night = await dispatcher.drain_once()

    assert dict(night.outcomes) == {
        "parent": Outcome.DEFERRED,
        "child": Outcome.DEFERRED,
        "teacher": Outcome.SENT,
    }
    assert [a.rcpt_tos for a in smtp.arrivals] == [("teacher@familie.example",)]
    seven_oslo = datetime(2027, 1, 6, 6, 0, tzinfo=UTC)
    assert outbox.rows["parent"].next_attempt_at == seven_oslo
    assert outbox.rows["parent"].message.attempts == 0  # waiting is not failing
    # Who is family is the gate's answer at send time (rule 10), so it is asked for each.
    assert sorted(outbox_id for outbox_id, _ in gate.asked) == ["child", "parent", "teacher"]

    clock.now = seven_oslo - timedelta(minutes=1)
    assert (await dispatcher.drain_once()).claimed == 0
    clock.now = seven_oslo
    morning = await dispatcher.drain_once()

    assert morning.count(Outcome.SENT) == 2
    assert len(smtp.arrivals) == 3


async def test_one_failing_row_does_not_stop_the_others(
    smtp: SmtpServer, outbox: MemoryOutbox, gate: ScriptedGate, make_dispatcher: DispatcherFactory
) -> None:
    def broken(now: datetime) -> Prepared:
        raise RuntimeError("policy crashed")

    queue(outbox, gate, "o1")
    gate.answers["o1"] = broken
    queue(outbox, gate, "o2")

    report = await make_dispatcher().drain_once()

    assert dict(report.outcomes) == {"o1": Outcome.RETRY, "o2": Outcome.SENT}
    assert outbox.rows["o1"].last_error == "internal: RuntimeError"
    assert [a.rcpt_tos for a in smtp.arrivals] == [("o2@familie.example",)]


async def test_reminder_after_the_meeting_started_is_suppressed(
    smtp: SmtpServer,
    outbox: MemoryOutbox,
    gate: ScriptedGate,
    clock: Clock,
    make_dispatcher: DispatcherFactory,
) -> None:
    clock.now = MEETING_START + timedelta(minutes=5)
    queue(outbox, gate, "o1", prepared(method=None), kind=MessageKind.REMINDER, due_at=clock.now)

    await make_dispatcher().drain_once()

    assert smtp.arrivals == []
    assert outbox.rows["o1"].suppressed is not None
    assert outbox.rows["o1"].suppressed[0] is SuppressionCode.TOO_LATE


async def test_level_none_is_never_sent(
    smtp: SmtpServer, outbox: MemoryOutbox, gate: ScriptedGate, make_dispatcher: DispatcherFactory
) -> None:
    queue(outbox, gate, "o1", prepared(level=DisclosureLevel.NONE))

    await make_dispatcher().drain_once()

    assert smtp.arrivals == []
    assert outbox.status("o1") == "suppressed"


async def test_wake_sends_at_once_and_stop_ends_the_job(
    smtp: SmtpServer,
    outbox: MemoryOutbox,
    gate: ScriptedGate,
    make_dispatcher: DispatcherFactory,
) -> None:
    dispatcher = make_dispatcher(interval=timedelta(hours=1))
    await dispatcher.start()
    await dispatcher.wait_idle()

    queue(outbox, gate, "o1")
    dispatcher.wake()
    await dispatcher.wait_idle()
    assert len(smtp.arrivals) == 1

    await dispatcher.stop()
    queue(outbox, gate, "o2")
    dispatcher.wake()
    await dispatcher.wait_idle()
    assert len(smtp.arrivals) == 1
    assert outbox.status("o2") == "pending"


async def test_logs_carry_ids_but_no_addresses(
    smtp: SmtpServer,
    outbox: MemoryOutbox,
    gate: ScriptedGate,
    clock: Clock,
    make_dispatcher: DispatcherFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    named = prepared(recipient=Recipient(email="mor@familie.example", display_name="Kari Nordmann"))
    queue(outbox, gate, "o1", named)
    smtp.mailbox.rcpt_reply = GREYLIST
    dispatcher = make_dispatcher()

    with caplog.at_level(logging.DEBUG, logger="notifications"):
        await dispatcher.drain_once()
        smtp.mailbox.rcpt_reply = None
        clock.now = outbox.rows["o1"].next_attempt_at
        await dispatcher.drain_once()

    # Our own loggers only: the test SMTP server (aiosmtpd's "mail.log") is not the service.
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(("notifications", "coordination")))
    assert "o1" in ours
    assert "familie.example" not in ours and "Kari" not in ours


async def test_folder_transport_is_a_drop_in_for_smtp(
    outbox: MemoryOutbox,
    gate: ScriptedGate,
    make_dispatcher: DispatcherFactory,
    tmp_path: Path,
) -> None:
    queue(outbox, gate, "o1")
    dispatcher = make_dispatcher(transport=FolderTransport(tmp_path / "mail"))

    await dispatcher.drain_once()

    assert [p.suffix for p in (tmp_path / "mail").iterdir()] == [".eml"]
    assert outbox.status("o1") == "sent"


def test_backoff_grows_to_the_cap_with_bounded_jitter() -> None:
    settings = DispatchSettings(
        mail=MailSettings(sender_address=SENDER),
        backoff_base=timedelta(seconds=10),
        backoff_factor=2.0,
        backoff_max=timedelta(minutes=5),
        jitter=0.25,
    )
    rng = random.Random(1)
    delays = [retry_delay(attempt, settings, rng) for attempt in range(1, 10)]

    for attempt, delay in enumerate(delays, start=1):
        nominal = min(timedelta(seconds=10 * 2 ** (attempt - 1)), timedelta(minutes=5))
        assert nominal * 0.75 <= delay <= nominal
    assert delays[-1] <= timedelta(minutes=5)
    assert retry_delay(3, settings, random.Random(1)) == retry_delay(3, settings, random.Random(1))


@pytest.mark.parametrize(
    ("now", "until"),
    [
        # 20:59 Oslo (winter): still day.
        (datetime(2027, 1, 5, 19, 59, tzinfo=UTC), None),
        # 21:00 Oslo: quiet until 07:00 Oslo the next morning.
        (datetime(2027, 1, 5, 20, 0, tzinfo=UTC), datetime(2027, 1, 6, 6, 0, tzinfo=UTC)),
        # 03:00 Oslo: quiet until 07:00 the same morning.
        (datetime(2027, 1, 6, 2, 0, tzinfo=UTC), datetime(2027, 1, 6, 6, 0, tzinfo=UTC)),
        # 07:00 Oslo: day again.
        (datetime(2027, 1, 6, 6, 0, tzinfo=UTC), None),
        # The night summer time starts: 07:00 Oslo is 05:00 UTC on 28 March.
        (datetime(2027, 3, 27, 21, 0, tzinfo=UTC), datetime(2027, 3, 28, 5, 0, tzinfo=UTC)),
    ],
)
def test_quiet_hours_follow_oslo_wall_clock(now: datetime, until: datetime | None) -> None:
    assert quiet_until(now, time(21, 0), time(7, 0)) == until


def test_a_sender_naming_the_service_is_refused(
    outbox: MemoryOutbox, gate: ScriptedGate, clock: Clock, tmp_path: Path
) -> None:
    settings = DispatchSettings(mail=MailSettings(sender_address="barnevernet@kommune.example"))
    with pytest.raises(ValueError, match="neutral"):
        Dispatcher(outbox, gate, FolderTransport(tmp_path), clock, settings)


class SlowTransport:
    """Each hand-over takes two minutes of (test) time, as a slow relay would."""

    def __init__(self, inner: Transport, clock: Clock) -> None:
        self.inner, self.clock = inner, clock

    async def send(self, message: EmailMessage) -> None:
        await self.inner.send(message)
        self.clock.advance(timedelta(minutes=2))


async def test_rows_whose_claim_grew_old_are_left_for_the_lease_to_release(
    smtp: SmtpServer,
    outbox: MemoryOutbox,
    gate: ScriptedGate,
    clock: Clock,
    make_dispatcher: DispatcherFactory,
    smtp_transport: SmtpTransport,
) -> None:
    for outbox_id in ("o1", "o2", "o3", "o4"):
        queue(outbox, gate, outbox_id)
    dispatcher = make_dispatcher(
        transport=SlowTransport(smtp_transport, clock),
        in_flight=1,  # the clock moves per message sent
        lease=timedelta(minutes=5),
        lease_margin=timedelta(minutes=1),
    )

    first = await dispatcher.drain_once()
    # Another instance would re-claim these once the lease runs out; so may we.
    clock.now = NOW + timedelta(minutes=5)
    second = await dispatcher.drain_once()

    assert [outcome for _, outcome in first.outcomes] == [
        Outcome.SENT,
        Outcome.SENT,
        Outcome.LEFT,
        Outcome.LEFT,
    ]
    assert second.count(Outcome.SENT) == 2
    ids = sorted(str(arrival.message["Message-ID"]) for arrival in smtp.arrivals)
    assert ids == [f"<o{i}.outbox@samhandling.example>" for i in (1, 2, 3, 4)]


async def test_a_send_the_store_could_not_record_is_recorded_later_not_sent_again(
    smtp: SmtpServer,
    outbox: MemoryOutbox,
    gate: ScriptedGate,
    clock: Clock,
    make_dispatcher: DispatcherFactory,
    smtp_transport: SmtpTransport,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The database goes away just after the relay took the mail: the "sent" is written
    when it is back, before the expired lease could let the row go out a second time."""
    for outbox_id in ("o1", "o2"):
        queue(outbox, gate, outbox_id)
    database = {"up": True}

    def failing_while_down(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def call(*args: Any) -> Any:
            if not database["up"]:
                raise ConnectionRefusedError("database down")
            return await method(*args)

        return call

    monkeypatch.setattr(outbox, "mark_sent", failing_while_down(outbox.mark_sent))
    monkeypatch.setattr(outbox, "claim_due", failing_while_down(outbox.claim_due))

    class DatabaseGoesAfterFirstSend:
        async def send(self, message: EmailMessage) -> None:
            await smtp_transport.send(message)
            database["up"] = False

    dispatcher = make_dispatcher(transport=DatabaseGoesAfterFirstSend(), lease=timedelta(minutes=5))
    first = await dispatcher.drain_once()
    clock.now = NOW + timedelta(minutes=10)  # every lease has run out
    with pytest.raises(ConnectionRefusedError):
        await dispatcher.drain_once()
    database["up"] = True
    await dispatcher.drain_once()
    await dispatcher.drain_once()

    assert [outcome for _, outcome in first.outcomes] == [Outcome.ERROR, Outcome.ERROR]
    assert [outbox.status(outbox_id) for outbox_id in ("o1", "o2")] == ["sent", "sent"]
    assert [row.history[-1][1] for row in outbox.rows.values()] == [NOW, NOW]  # when it was sent
    ids = sorted(str(arrival.message["Message-ID"]) for arrival in smtp.arrivals)
    assert ids == ["<o1.outbox@samhandling.example>", "<o2.outbox@samhandling.example>"]


async def test_a_send_that_cannot_be_recorded_blocks_nothing_and_is_not_sent_again(
    smtp: SmtpServer,
    outbox: MemoryOutbox,
    gate: ScriptedGate,
    clock: Clock,
    make_dispatcher: DispatcherFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Recording o1's send keeps failing (whatever the reason): mail queued after it still
    goes out, and when o1's lease runs out and it is claimed again, it is not re-sent."""
    queue(outbox, gate, "o1")
    mark_sent = outbox.mark_sent

    async def failing_for_o1(outbox_id: str, level: DisclosureLevel, now: datetime) -> None:
        if outbox_id == "o1":
            raise RuntimeError("cannot record")
        await mark_sent(outbox_id, level, now)

    monkeypatch.setattr(outbox, "mark_sent", failing_for_o1)
    dispatcher = make_dispatcher(lease=timedelta(minutes=5))
    await dispatcher.drain_once()
    queue(outbox, gate, "o2", due_at=NOW + timedelta(minutes=1))
    clock.now = NOW + timedelta(minutes=10)  # o1's lease has run out: it is claimed again
    again = await dispatcher.drain_once()

    assert dict(again.outcomes) == {"o1": Outcome.ERROR, "o2": Outcome.SENT}
    ids = sorted(str(arrival.message["Message-ID"]) for arrival in smtp.arrivals)
    assert ids == ["<o1.outbox@samhandling.example>", "<o2.outbox@samhandling.example>"]
