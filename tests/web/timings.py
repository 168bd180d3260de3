"""Page timings for a large case load (a measurement, not a test; nothing here asserts).

A coordinator with 200 cases (each with a family, a school and a health contact, consent
and a few meetings), one of which has 40 contacts and 60 meetings; a leader of the same unit
with 3,000 cases in all (the 200 and 2,800 more, spread over 20 coordinators, each with a
meeting ahead and every tenth with an open alert). Every page is fetched in-process through
the whole app (routing, session lookup, the services, the queries, the templates), a number
of times, and the median, the 95th percentile and the slowest are printed.

    .venv/bin/python tests/web/timings.py                     # SQLite in a temporary folder
    .venv/bin/python tests/web/timings.py --postgres URL      # e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import html
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
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from calendars.schedule import MeetingKind
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
from coordination.models import Alert, Case, CaseCoordinator, Meeting, User
from coordination.scheduling import meetings
from coordination.schemas import CaseIn, ConsentIn, ContactIn, MeetingIn, UserIn
from coordination.settings import Settings
from notifications.ports import AlertKind

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


#: The leader's unit has this many cases in all (the coordinator's 200 among them).
LEADER_CASES = 3000
COORDINATORS = 20


async def add_leader_load(ctx: ServiceContext) -> str:
    """A leader of the coordinator's unit, 20 more coordinators and the cases that make 3,000,
    inserted in bulk (the pages only read them; how they came is beside the point)."""
    async with ctx.transaction() as session:
        unit = await users.get_or_create_unit(session, "Målt enhet", NOW)
        assert unit.id is not None
        leader = await users.create_user(session, unit.id, UserIn(name="Målt Leder", role=UserRole.LEADER), NOW)
        coordinators = [(await users.create_user(session, unit.id, UserIn(
            name=f"Koordinator {n:02d}", role=UserRole.COORDINATOR), NOW)).user.id for n in range(COORDINATORS)]
        cases = [Case(unit_id=unit.id, reference=f"L-{n:05d}", child_given_name="Barn",
                      child_initials=f"{chr(65 + n % 26)}.{chr(65 + n // 26 % 26)}.",
                      child_birth_date=date(2010 + n % 12, 1 + n % 12, 1 + n % 28), created_at=NOW, updated_at=NOW)
                 for n in range(LEADER_CASES - 200)]
        session.add_all(cases)
        await session.flush()
        for n, case in enumerate(cases):
            assert case.id is not None
            session.add(CaseCoordinator(case_id=case.id, user_id=coordinators[n % COORDINATORS]))
            start = _weekday_at(1 + n % 40, 9 + n % 6)
            session.add(Meeting(case_id=case.id, uid=f"timing-{case.id}@samhandling", kind=MeetingKind.AD_HOC,
                                start=start, end=start + timedelta(hours=1), created_at=NOW, updated_at=NOW))
            if n % 10 == 0:
                session.add(Alert(unit_id=unit.id, case_id=case.id, kind=AlertKind.CONSENT_EXPIRING,
                                  key=f"timing:{case.id}", due_at=NOW + timedelta(days=5 + n % 9), created_at=NOW))
    return leader.token


def _p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=20, method="inclusive")[-1] if len(times) > 1 else times[0]


def _row(label: str, times: list[float], size: int | None = None) -> None:
    kilobytes = f"{size / 1024:6.0f}" if size is not None else ""
    print(f"{label:48} {statistics.median(times):10.1f} {_p95(times):8.1f} {max(times):8.1f} {kilobytes}")


async def _signed_in(client: AsyncTestClient[Any], token: str) -> str:
    """Signs ``client`` in; returns the CSRF token its forms send."""
    form = await client.get("/logg-inn")
    csrf = re.search(r'name="_csrf" value="([^"]+)"', form.text)
    assert csrf
    signed = await client.post("/logg-inn", data={"_csrf": csrf.group(1), "token": token})
    assert signed.status_code == 200, signed.text[:300]
    page = await client.get("/")
    found = re.search(r'name="_csrf" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


async def _time_pages(client: AsyncTestClient[Any], pages: list[str], rounds: int) -> None:
    for page in pages:
        times = []
        size = 0
        for _ in range(rounds):
            begin = time.perf_counter()
            answer = await client.get(page)
            times.append((time.perf_counter() - begin) * 1000)
            assert answer.status_code == 200, (page, answer.status_code)
            size = len(answer.content)
        _row(page, times, size)


async def _time_move(client: AsyncTestClient[Any], csrf: str, case_id: int, meeting_id: int, rounds: int) -> None:
    times = []
    for day in range(rounds):
        target = _weekday_at(2 + day, 13).astimezone(ZONE)
        begin = time.perf_counter()
        moved = await client.post(f"/saker/{case_id}/moter/{meeting_id}/flytt", data={
            "_csrf": csrf, "dato": target.date().isoformat(), "tid": f"{target:%H:%M}"})
        times.append((time.perf_counter() - begin) * 1000)
        assert moved.status_code == 200, moved.status_code
    _row("POST move (slot check, then move or advice)", times)


async def _time_contact_form(client: AsyncTestClient[Any], csrf: str, case_id: int, rounds: int) -> None:
    """The contact list and form of the case with 40 contacts, and saving one changed field."""
    listed = await client.get(f"/saker/{case_id}/kontakter")
    contact_id = int(re.findall(rf"/saker/{case_id}/kontakter/(\d+)", listed.text)[5])
    edit = f"/saker/{case_id}/kontakter/{contact_id}"
    await _time_pages(client, [f"/saker/{case_id}/kontakter", f"/saker/{case_id}/kontakter/ny", edit], rounds)
    shown = await client.get(edit)
    fields = dict(re.findall(r'<input type="(?:text|email|tel|hidden)" id="[^"]*" name="([^"]+)" value="([^"]*)"',
                             shown.text))
    fields.update(re.findall(r'<select id="[^"]*" name="([^"]+)"[^>]*>(?:(?!</select>).)*?<option value="([^"]*)" '
                             r'selected', shown.text, re.S))
    rows = re.search(r'name="rows" value="(\d+)"', shown.text)
    assert rows
    fields["rows"] = rows.group(1)
    times = []
    for round_ in range(rounds):
        begin = time.perf_counter()
        saved = await client.post(edit, data={**fields, "_csrf": csrf, "phone": f"+47 400 00 {round_:03d}"},
                                  follow_redirects=False)
        times.append((time.perf_counter() - begin) * 1000)
        assert saved.status_code == 303, (saved.status_code, saved.text[:500])
    _row("POST contact form (one field changed)", times)


def _hidden(page: str) -> list[tuple[str, str]]:
    """The hidden fields a page's forms post back (the plan preview's "Lagre" sends them all)."""
    return [(name, html.unescape(value))
            for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)]


async def _post_timed(client: AsyncTestClient[Any], path: str, fields: list[tuple[str, str]], expected: int
                      ) -> tuple[float, Any]:
    begin = time.perf_counter()
    answer = await client.post(path, content=urlencode(fields).encode(), follow_redirects=False,
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
    elapsed = (time.perf_counter() - begin) * 1000
    assert answer.status_code == expected, (path, answer.status_code, answer.text[-800:])
    return elapsed, answer


async def _time_plan(client: AsyncTestClient[Any], csrf: str, case_id: int, rounds: int) -> None:
    """The plan form of the case with 40 contacts and 60 meetings, its preview (the plan's
    upsert run in a rolled-back transaction, read back, each message judged by the gate),
    and the save: a first plan, then a revision that ends the plan in June."""
    path = f"/saker/{case_id}/plan"
    page = await client.get(path)
    members = re.findall(r'name="member_ids" value="(\d+)"', page.text)
    plan = [("_csrf", csrf), ("start_date", "2027-01-11"), ("expected_end", "2027-12-17"),
            ("goals", "Oppmøte på skolen"), ("smart_goals-0-goal", "Skoleoppmøte"),
            ("smart_goals-0-indicator", "Dager på skolen"), ("smart_goals-0-level_now", "60 %"),
            ("smart_goals-0-target", "90 %"), ("smart_goals-0-deadline", "2027-04-01"),
            ("measures-0-what", "Miljøterapeut hjemme"), ("measures-0-weekly-0-weekday", "1"),
            ("measures-0-weekly-0-start", "17:00"), ("measures-0-weekly-0-end", "18:00"),
            ("measures-0-contact_ids", members[0]), ("measures-0-contact_ids", members[1]),
            *(("member_ids", m) for m in members), ("child_takes_part", "ja"),
            *((f"rules-office_hours-{d}-{part}", value) for d in range(5)
              for part, value in (("weekday", str(d)), ("start", "08:00"), ("end", "16:00"))),
            ("rules-reminder_offsets_hours", "48, 3")]
    first = [await _post_timed(client, path, [*plan, ("handling", "forhandsvis")], 200) for _ in range(rounds)]
    _row("POST plan preview (a first plan, 60 meetings)", [t for t, _ in first], len(first[-1][1].content))
    await _post_timed(client, path, [*_hidden(first[-1][1].text), ("handling", "lagre")], 303)
    await _time_pages(client, [path], rounds)
    adding = [(await _post_timed(client, path, [*plan, ("handling", "legg-til:measures")], 200))[0]
              for _ in range(rounds)]
    _row("POST plan form: add a row", adding)
    revised = [*[(k, v) for k, v in plan if k != "expected_end"], ("expected_end", "2027-06-30")]
    previews, saves = [], []
    for _ in range(rounds):
        elapsed, preview = await _post_timed(client, path, [*revised, ("handling", "forhandsvis")], 200)
        previews.append(elapsed)
        saves.append((await _post_timed(client, path, [*_hidden(preview.text), ("handling", "lagre")], 303))[0])
    _row("POST plan preview (a revision)", previews, len(preview.content))
    _row("POST plan save (as previewed)", saves)


async def measure(settings: Settings, rounds: int) -> None:
    clock = Clock(frozen=NOW)
    ctx = ServiceContext.create(settings, clock)
    started = time.perf_counter()
    token, case_id, meeting_id = await build(ctx)
    leader_token = await add_leader_load(ctx)
    await ctx.engine.dispose()
    print(f"built 200 cases (one with 40 contacts and 60 meetings) and {LEADER_CASES - 200} more for the leader "
          f"in {time.perf_counter() - started:.1f} s; {rounds} rounds a page")
    app = create_app(settings, clock)
    print(f"{'page':48} {'median ms':>10} {'p95 ms':>8} {'max ms':>8} {'kB':>6}")
    async with AsyncTestClient(app=app) as client:
        csrf = await _signed_in(client, token)
        print("coordinator with 200 cases:")
        await _time_pages(client, ["/", f"/saker/{case_id}", f"/saker/{case_id}/samtykke", f"/saker/{case_id}/moter",
                                   f"/saker/{case_id}/moter/{meeting_id}", f"/saker/{case_id}/kalendere",
                                   f"/saker/{case_id}/utsendinger", f"/saker/{case_id}/logg", "/varsler"], rounds)
        await _time_move(client, csrf, case_id, meeting_id, rounds)
        print("the case with 40 contacts:")
        await _time_contact_form(client, csrf, case_id, rounds)
        await _time_plan(client, csrf, case_id, rounds)
    async with AsyncTestClient(app=app) as client:
        await _signed_in(client, leader_token)
        print(f"leader of {LEADER_CASES} cases:")
        await _time_pages(client, ["/enhet/saker", "/enhet/saker?sok=l-012", "/enhet/saker?sok=ab",
                                   "/enhet/saker?koordinator=ingen", "/enhet/saker?side=60", "/enhet/oppfolging",
                                   "/"], rounds)


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
    parser.add_argument("--rounds", type=int, default=20)
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
