"""Dispatch: messages per second from the PostgreSQL outbox to aiosmtpd through the real
dispatcher (claim with SKIP LOCKED, consent gate, audit, render, SMTP, outcome), next to a
bare aiosmtplib loop sending the very same messages to the same server: the ceiling.

Both use the service's connection policy: ``IN_FLIGHT`` messages handed over at once, each on
an SMTP session kept open for up to ``PER_CONNECTION`` messages (the dispatcher's defaults);
the two are run twice in alternating order and the totals compared.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from bench.common import (
    BENCH,
    VENV_BIN,
    Proc,
    create_database,
    drop_database,
    dsn_for,
    free_port,
    sqlalchemy_url,
)
from bench.national_data import add_backlog, generate

DATABASE = "samhandling_bench_dispatch"
#: the service's connection policy (DispatchSettings.in_flight, SmtpSettings.max_messages_per_connection)
IN_FLIGHT = 8
PER_CONNECTION = 100


@dataclass
class DispatchResults:
    figures: dict[str, float] = field(default_factory=dict)
    rounds: list[dict[str, float]] = field(default_factory=list)


def sink_proc(port: int, name: str = "smtp-sink") -> Proc:
    return Proc(name, [str(VENV_BIN / "python"), str(BENCH / "smtp_sink.py"), str(port)])


async def wait_smtp(port: int, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


class Recording:
    """The service's SMTP transport, keeping each message for the raw loop."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.sent: list[EmailMessage] = []
        self.cpu_seconds = 0.0

    async def send(self, message: EmailMessage) -> None:
        await self.inner.send(message)
        self.sent.append(message)


async def drain(database_url: str, port: int, transport: Recording) -> tuple[int, float]:
    """The dispatcher as the service builds it, drained until nothing is due."""
    from coordination.context import ServiceContext
    from coordination.outbox.dispatcher import build_dispatcher
    from coordination.settings import Settings

    settings = Settings(database_url=database_url, dispatcher_enabled=False,
                        mail_from="moter@kommune.example.org")
    ctx = ServiceContext.create(settings)
    try:
        dispatcher = build_dispatcher(ctx, transport)
        sent = 0
        t0, cpu0 = time.perf_counter(), time.process_time()
        while True:
            report = await dispatcher.drain_once()
            if not report.claimed:
                break
            sent += sum(1 for _, outcome in report.outcomes if outcome.value == "sent")
        transport.cpu_seconds = time.process_time() - cpu0
        return sent, time.perf_counter() - t0
    finally:
        await ctx.engine.dispose()


async def raw_loop(messages: list[EmailMessage], port: int) -> tuple[float, float]:
    """Wall and CPU seconds of sending ``messages`` with the dispatcher's connection policy:
    ``IN_FLIGHT`` sessions, each sending its share one after another and reconnecting after
    ``PER_CONNECTION`` messages."""
    import aiosmtplib

    async def worker(share: list[EmailMessage]) -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=20)
        for sent, message in enumerate(share, start=1):
            if not client.is_connected:
                await client.connect()
            await client.send_message(message)
            if sent % PER_CONNECTION == 0:
                await client.quit()
        if client.is_connected:
            await client.quit()

    t0, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(messages[n::IN_FLIGHT]) for n in range(IN_FLIGHT)))
    return time.perf_counter() - t0, time.process_time() - cpu0


async def reset_outbox(dsn: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "UPDATE outboxmessage SET status = 'pending', sent_at = NULL, lease_until = NULL, claimed_by = '', "
            "attempts = 0, level = ''")
    finally:
        await connection.close()


def run(quick: bool, log: Callable[[str], None]) -> DispatchResults:
    results = DispatchResults()
    count = 500 if quick else 2000
    asyncio.run(create_database(DATABASE))
    sink = sink_proc(free_port())
    port = int(sink.argv[-1])
    try:
        now = datetime.now(UTC)
        national = asyncio.run(generate(dsn_for(DATABASE), 400 if quick else 1000, now, lambda _: None,
                                            complete_consent=True))
        asyncio.run(add_backlog(dsn_for(DATABASE), national, count, now))
        sink.start()
        asyncio.run(wait_smtp(port))
        from notifications.transport import SmtpSecurity, SmtpSettings, SmtpTransport

        smtp = SmtpTransport(SmtpSettings(host="127.0.0.1", port=port, security=SmtpSecurity.NONE, timeout=20))
        url = sqlalchemy_url(DATABASE)
        messages: list[EmailMessage] = []
        totals = {"dispatch_n": 0.0, "dispatch_s": 0.0, "dispatch_cpu": 0.0, "raw_n": 0.0, "raw_s": 0.0,
                  "raw_cpu": 0.0}
        for round_no, order in enumerate((("dispatch", "raw"), ("raw", "dispatch")), start=1):
            if round_no > 1:
                asyncio.run(reset_outbox(dsn_for(DATABASE)))
            for what in order:
                if what == "dispatch":
                    recording = Recording(smtp)
                    sent, seconds = asyncio.run(drain(url, port, recording))
                    messages = messages or recording.sent
                    totals["dispatch_n"] += sent
                    totals["dispatch_s"] += seconds
                    totals["dispatch_cpu"] += recording.cpu_seconds
                    results.rounds.append({"round": round_no, "dispatch_msgs_per_s": round(sent / seconds, 1),
                                           "sent": sent})
                    log(f"  round {round_no}: dispatcher {sent} sent in {seconds:.1f} s = {sent / seconds:.1f} msgs/s")
                else:
                    if not messages:  # the raw loop needs the dispatcher's messages: take them first
                        recording = Recording(smtp)
                        asyncio.run(drain(url, port, recording))
                        messages = recording.sent
                        asyncio.run(reset_outbox(dsn_for(DATABASE)))
                    seconds, cpu = asyncio.run(raw_loop(messages, port))
                    totals["raw_n"] += len(messages)
                    totals["raw_s"] += seconds
                    totals["raw_cpu"] += cpu
                    results.rounds.append({"round": round_no, "raw_msgs_per_s": round(len(messages) / seconds, 1),
                                           "sent": len(messages)})
                    log(f"  round {round_no}: raw aiosmtplib {len(messages)} in {seconds:.1f} s = "
                        f"{len(messages) / seconds:.1f} msgs/s")
        dispatch_rate = totals["dispatch_n"] / totals["dispatch_s"]
        raw_rate = totals["raw_n"] / totals["raw_s"]
        results.figures["dispatch_backlog"] = count
        results.figures["dispatch_sent"] = totals["dispatch_n"] / 2
        results.figures["dispatch_msgs_per_s"] = round(dispatch_rate, 1)
        results.figures["raw_smtp_msgs_per_s"] = round(raw_rate, 1)
        results.figures["dispatch_ratio_vs_raw"] = round(dispatch_rate / raw_rate, 4)
        # CPU of the sending process per message: near the wall time means more concurrency
        # would not help; the work per message has to shrink.
        results.figures["dispatch_cpu_ms_per_msg"] = round(totals["dispatch_cpu"] / totals["dispatch_n"] * 1000, 2)
        results.figures["dispatch_wall_ms_per_msg"] = round(totals["dispatch_s"] / totals["dispatch_n"] * 1000, 2)
        results.figures["raw_cpu_ms_per_msg"] = round(totals["raw_cpu"] / totals["raw_n"] * 1000, 2)
        results.figures["raw_wall_ms_per_msg"] = round(totals["raw_s"] / totals["raw_n"] * 1000, 2)
    finally:
        sink.stop(timeout=10)
        asyncio.run(drop_database(DATABASE))
    return results


if __name__ == "__main__":
    print(run("--quick" in sys.argv, print).figures)
