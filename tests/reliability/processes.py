"""The service as users run it: ``samhandling serve`` in its own process, a database of its
own on the PostgreSQL server, and reminders made due by writing outbox rows directly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from db_backends import POSTGRES_ADMIN_URL
from smtp_server import Arrival, free_port
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from coordination.context import ServiceContext
from coordination.models import Case, Contact, Meeting, MeetingParticipant, Unit
from coordination.outbox.queue import meeting_message
from coordination.settings import Settings
from notifications.ports import MessageKind

BIN = Path(sys.executable).parent
#: Participants per seeded meeting (and contacts per seeded case).
PER_MEETING = 20


def wait_until(condition: Callable[[], bool], what: str, limit: float = 120.0, step: float = 0.1) -> None:
    """Poll ``condition`` until it holds; give up after ``limit`` seconds (a bound, not a measure)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(step)


def samhandling(*args: str, env: Mapping[str, str], timeout: float = 120) -> str:
    """Run one ``samhandling`` command to the end and return what it printed."""
    result = subprocess.run([str(BIN / "samhandling"), *args], env={**os.environ, **env}, capture_output=True,
                            text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise AssertionError(f"samhandling {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


class ServiceProcess:
    """``samhandling serve`` on a free loopback port; its log goes to ``log``."""

    def __init__(self, env: Mapping[str, str], log: Path) -> None:
        self.port = free_port()
        self.env = {**os.environ, **env, "SAMHANDLING_HOST": "127.0.0.1", "SAMHANDLING_PORT": str(self.port)}
        self.log = log
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen([str(BIN / "samhandling"), "serve"], env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait_ready(self) -> ServiceProcess:
        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"the service exited with {self.process.returncode}:\n{self.tail()}")
            try:
                return httpx.get(self.url + "/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, "the service to answer /health", limit=60)
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: no lifespan, no clean-up, claims left as they are."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""


def service_env(database_url: str, smtp_port: int, **extra: str) -> dict[str, str]:
    return {
        "SAMHANDLING_DATABASE_URL": database_url,
        "SAMHANDLING_SMTP_HOST": "127.0.0.1",
        "SAMHANDLING_SMTP_PORT": str(smtp_port),
        "SAMHANDLING_SMTP_SECURITY": "none",
        "SAMHANDLING_SMTP_TIMEOUT_SECONDS": "10",
        "SAMHANDLING_DISPATCHER_ENABLED": "true",
        "SAMHANDLING_DISPATCH_INTERVAL_SECONDS": "0.5",
        "SAMHANDLING_DISPATCH_LEASE_SECONDS": "6",
        "SAMHANDLING_LOG_LEVEL": "WARNING",
        "SAMHANDLING_PUBLIC_BASE_URL": "http://127.0.0.1",
        **extra,
    }


async def _admin(url: str, sql: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(sql))
    finally:
        await engine.dispose()


@contextmanager
def postgres_database(admin_url: str = POSTGRES_ADMIN_URL) -> Iterator[str]:
    """A new, migrated database beside ``admin_url``'s (by ``samhandling migrate``), dropped after."""
    name = f"samhandling_rel_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        samhandling("migrate", env={"SAMHANDLING_DATABASE_URL": url})
        yield url
    finally:
        asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass(frozen=True)
class Seeded:
    """``recipients`` maps each reminder's address to the Message-ID its row carries."""

    recipients: dict[str, str]


async def seed_reminders(database_url: str, count: int) -> Seeded:
    """``count`` reminders due now, one per recipient, for meetings three days ahead; every
    recipient is a caseworker, who needs no consent and is never held back by quiet hours."""
    ctx = ServiceContext.create(Settings(database_url=database_url))
    now = datetime.now(UTC)
    recipients: dict[str, str] = {}
    try:
        async with ctx.transaction() as session:
            unit = Unit(name="Enhet", created_at=now)
            session.add(unit)
            await session.flush()
            assert unit.id is not None
            cases = (count + PER_MEETING - 1) // PER_MEETING
            for number in range(cases):
                case = Case(unit_id=unit.id, reference=f"BV-{number}", child_given_name="Barn", child_initials="B.",
                            child_birth_date=datetime(2015, 5, 5).date(), created_at=now, updated_at=now)
                session.add(case)
                await session.flush()
                start = now + timedelta(days=3)
                meeting = Meeting(case_id=case.id or 0, uid=f"{uuid.uuid4()}@samhandling", kind="ad_hoc",
                                  start=start, end=start + timedelta(hours=1), place="Rådhuset", status="confirmed",
                                  created_at=now, updated_at=now)
                contacts = [Contact(case_id=case.id or 0, name=f"Saksbehandler {number}-{i}", role="caseworker",
                                    sector="child_welfare", email=f"r{number}-{i}@bv.example.org", created_at=now,
                                    updated_at=now)
                            for i in range(min(PER_MEETING, count - number * PER_MEETING))]
                session.add(meeting)
                session.add_all(contacts)
                await session.flush()
                for contact in contacts:
                    session.add(MeetingParticipant(meeting_id=meeting.id or 0, contact_id=contact.id or 0))
                    row = meeting_message(case, meeting, contact, MessageKind.REMINDER,
                                          f"reliability:{meeting.id}:{contact.id}", now - timedelta(minutes=1), now)
                    session.add(row)
                    recipients[contact.email] = row.message_id
    finally:
        await ctx.engine.dispose()
    return Seeded(recipients)


async def outbox_counts(database_url: str) -> dict[str, int]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT status, count(*) FROM outboxmessage GROUP BY status"))
            return {status: n for status, n in rows.all()}
    finally:
        await engine.dispose()


async def claimed_by(database_url: str) -> dict[str, int]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(text(
                "SELECT claimed_by, count(*) FROM outboxmessage WHERE status = 'sent' GROUP BY claimed_by"))
            return {who: n for who, n in rows.all()}
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class Tally:
    """What arrived, against what was seeded."""

    arrived: int
    unique: int
    lost: int
    duplicates: int
    foreign_ids: int  # a copy whose Message-ID is not its reminder's

    def line(self) -> str:
        return (f"{self.arrived} mails arrived, {self.unique} distinct reminders, {self.lost} lost, "
                f"{self.duplicates} duplicates, {self.foreign_ids} with another Message-ID")


def tally(seeded: Seeded, arrivals: list[Arrival]) -> Tally:
    by_recipient: dict[str, list[str]] = {}
    for arrival in arrivals:
        address = arrival.message["To"].addresses[0].addr_spec
        by_recipient.setdefault(address, []).append(str(arrival.message["Message-ID"]))
    unique = sum(1 for address in seeded.recipients if address in by_recipient)
    foreign = sum(1 for address, ids in by_recipient.items() for i in ids if seeded.recipients.get(address) != i)
    return Tally(arrived=len(arrivals), unique=unique, lost=len(seeded.recipients) - unique,
                 duplicates=len(arrivals) - len(by_recipient), foreign_ids=foreign)


def first_copies_of_duplicates(arrivals: list[Arrival]) -> list[int]:
    """The arrival index of the first copy of every mail that came again (by Message-ID)."""
    first: dict[str, int] = {}
    repeated: list[int] = []
    for index, arrival in enumerate(arrivals):
        key = str(arrival.message["Message-ID"])
        if key in first:
            repeated.append(first[key])
        else:
            first[key] = index
    return repeated
