"""Page timings for a large case load (a measurement, not a test; nothing here asserts).

A coordinator with 200 cases (each with a family, a school and a health contact, consent
and a few meetings), one of which has 40 contacts and 60 meetings. Every page is fetched
in-process through the whole app (routing, session lookup, the services, the queries, the
templates), a few times, and the median and the slowest are printed.

    .venv/bin/python tests/web/timings.py                     # SQLite in a temporary folder
    .venv/bin/python tests/web/timings.py --postgres URL      # e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from coordination.access import users
from coordination.app import create_app
from coordination.cases import contacts as contact_service
from coordination.cases import service as case_service
from coordination.clock import Clock
from coordination.consent import register as consent_register
from coordination.context import ServiceContext
from coordination.domain import ConsentForm, ConsentStatus, Role, Sector, UserRole
from coordination.levels import Level
from coordination.migrate import upgrade
from coordination.models import User
from coordination.scheduling import meetings
from coordination.schemas import CaseIn, ConsentIn, ContactIn, MeetingIn, UserIn
from coordination.settings import Settings

NOW = datetime(2027, 1, 4, 7, 0, tzinfo=UTC)
ZONE = ZoneInfo("Europe/Oslo")
ROLES = [Role.SCHOOL_CONTACT, Role.PUBLIC_HEALTH_NURSE, Role.NAV_ADVISER, Role.GP, Role.PPT,
         Role.MILIEU_THERAPIST, Role.TRUSTED_PERSON, Role.OTHER]


def _weekday_at(day_offset: int, hour: int) -> datetime:
    day = NOW.date() + timedelta(days=day_offset)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour - 1, 0, tzinfo=UTC)


async def build(ctx: ServiceContext) -> tuple[str, int, int]:
    """The coordinator's token, the big case and one of its meetings."""
    async with ctx.transaction() as session:
        unit = await users.get_or_create_unit(session, "Målt enhet", NOW)
        assert unit.id is not None
        created = await users.create_user(session, unit.id, UserIn(name="Målt Koordinator",
                                                                   role=UserRole.COORDINATOR), NOW)
    token = created.token
    async with ctx.sessions() as session:
        coordinator = await session.get(User, created.user.id)
    assert coordinator is not None
    big_case = 0
    big_meeting = 0
    for number in range(200):
        big = number == 0
        async with ctx.transaction() as session:
            case = await case_service.create_case(session, coordinator, CaseIn(
                reference=f"M-{number:04d}", child_given_name="Barn", child_initials="B.B.",
                child_birth_date=date(2014, 1 + number % 12, 1 + number % 28)), NOW)
            mother = await contact_service.add_contact(session, coordinator, case.id, ContactIn(
                name=f"Mor {number}", role=Role.PARENT, daily_care=True, email=f"mor{number}@example.org"), NOW)
            father = await contact_service.add_contact(session, coordinator, case.id, ContactIn(
                name=f"Far {number}", role=Role.PARENT, daily_care=True, email=f"far{number}@example.org"), NOW)
            others = []
            for index in range(38 if big else 3):
                role = ROLES[index % len(ROLES)]
                added = await contact_service.add_contact(session, coordinator, case.id, ContactIn(
                    name=f"Kontakt {number}-{index}", role=role, email=f"k{number}-{index}@example.org"), NOW)
                others.append(added.id)
            for grantor in (mother.id, father.id):
                for sector in ("school", "health"):
                    await consent_register.record_consent(session, coordinator, case.id,
                                                          msgspec_consent(grantor, sector), NOW)
            participants = [mother.id, father.id, *others[:10]]
            for index in range(60 if big else 3):
                start = _weekday_at(1 + index * 5, 9 + index % 6)
                made = await meetings.create_meeting(session, coordinator, case.id, MeetingIn(
                    start=start, end=start + timedelta(hours=1), participant_ids=participants,
                    place="Rådhuset", confirm=index < 20), NOW)
                if big and index == 30:
                    big_meeting = made.id
            if big:
                big_case = case.id
    return token, big_case, big_meeting


def msgspec_consent(grantor: int, sector: str) -> ConsentIn:
    return ConsentIn(grantor_contact_id=grantor, sector=Sector(sector), status=ConsentStatus.GRANTED,
                     form=ConsentForm.WRITTEN, level=Level.PURPOSE)


async def measure(settings: Settings, rounds: int) -> None:
    clock = Clock(frozen=NOW)
    ctx = ServiceContext.create(settings, clock)
    started = time.perf_counter()
    token, case_id, meeting_id = await build(ctx)
    await ctx.engine.dispose()
    print(f"built 200 cases (one with 40 contacts and 60 meetings) in {time.perf_counter() - started:.1f} s")
    app = create_app(settings, clock)
    pages = ["/", f"/saker/{case_id}", f"/saker/{case_id}/samtykke", f"/saker/{case_id}/moter",
             f"/saker/{case_id}/moter/{meeting_id}", f"/saker/{case_id}/kalendere",
             f"/saker/{case_id}/utsendinger", f"/saker/{case_id}/logg", "/varsler"]
    async with AsyncTestClient(app=app) as client:
        form = await client.get("/logg-inn")
        csrf = re.search(r'name="_csrf" value="([^"]+)"', form.text)
        assert csrf
        signed = await client.post("/logg-inn", data={"_csrf": csrf.group(1), "token": token})
        assert signed.status_code == 200, signed.text[:300]
        print(f"{'page':45} {'median ms':>10} {'max ms':>8} {'kB':>6}")
        for page in pages:
            times = []
            size = 0
            for _ in range(rounds):
                begin = time.perf_counter()
                answer = await client.get(page)
                times.append((time.perf_counter() - begin) * 1000)
                assert answer.status_code == 200, (page, answer.status_code)
                size = len(answer.content)
            print(f"{page:45} {statistics.median(times):10.1f} {max(times):8.1f} {size / 1024:6.0f}")
        page = await client.get(f"/saker/{case_id}/moter/{meeting_id}")
        csrf = re.search(r'name="_csrf" value="([^"]+)"', page.text)
        assert csrf
        times = []
        for day in range(rounds):
            target = _weekday_at(2 + day, 13).astimezone(ZONE)
            begin = time.perf_counter()
            moved = await client.post(f"/saker/{case_id}/moter/{meeting_id}/flytt", data={
                "_csrf": csrf.group(1), "dato": target.date().isoformat(), "tid": f"{target:%H:%M}"})
            times.append((time.perf_counter() - begin) * 1000)
            assert moved.status_code == 200, moved.status_code
        print(f"{'POST move (slot check, then move or advice)':45} {statistics.median(times):10.1f} "
              f"{max(times):8.1f}")


async def _postgres_database(admin_url: str) -> str:
    name = f"samhandling_timings_{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + name


async def _drop(admin_url: str, url: str) -> None:
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    await engine.dispose()


def main() -> int:
    logging.disable(logging.INFO)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", help="an admin URL; a database is created beside it and dropped after")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.postgres:
            url = asyncio.run(_postgres_database(args.postgres))
        else:
            url = f"sqlite+aiosqlite:///{Path(folder) / 'timings.db'}"
        try:
            upgrade(url)
            settings = replace(Settings(), database_url=url, dispatcher_enabled=False,
                               mail_folder=Path(folder) / "mail", public_base_url="http://testserver")
            print(f"database: {'PostgreSQL' if args.postgres else 'SQLite'}")
            asyncio.run(measure(settings, args.rounds))
        finally:
            if args.postgres:
                asyncio.run(_drop(args.postgres, url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
