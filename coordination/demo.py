"""The demo case, from the mini-template in the practice guide (seeds/002):
a 15-year-old with party status who does not want meetings after 19:00, an aunt as
trusted person, mother and father with daily care, a school contact and a public health
nurse with consent, a NAV adviser without consent, a home milieu therapist (Tue/Thu 17:00)
and COS-P parent guidance (Wed 19:00)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from calendars.zone import local_date
from coordination.access import users
from coordination.cases import contacts as contact_service
from coordination.cases import service as case_service
from coordination.consent import register as consent_register
from coordination.domain import ConsentForm, ConsentStatus, Role, Sector, UserRole
from coordination.levels import Level
from coordination.models import Case, User
from coordination.scheduling import meetings, plans
from coordination.scheduling.enums import MeetingStatus
from coordination.schemas import (
    CaseIn,
    ChildWishesIn,
    ConsentIn,
    ContactIn,
    MeasureIn,
    PlanIn,
    RulesIn,
    UserIn,
    WeeklyWindow,
)
from coordination.security import hash_token, new_token

DEMO_UNIT = "Demo barneverntjeneste"
DEMO_REFERENCE = "DEMO-2026-001"


@dataclass(frozen=True)
class DemoInfo:
    case_id: int
    coordinator_token: str
    leader_token: str
    admin_token: str


def _birth_date_of_fifteen_year_old(today: date) -> date:
    """Fifteen years and about four months old, whatever day the demo starts."""
    year = today.year - 15
    month = today.month - 4
    if month < 1:
        month, year = month + 12, year - 1
    return date(year, month, min(today.day, 28))


async def _rotate_token(session: AsyncSession, user: User) -> str:
    token = new_token()
    user.token_hash = hash_token(token)
    session.add(user)
    return token


async def seed(session: AsyncSession, now: datetime) -> DemoInfo:
    """Create the demo unit, users and case once; later starts only hand out fresh tokens."""
    unit = await users.get_or_create_unit(session, DEMO_UNIT, now)
    unit.phone = "+47 22 00 00 00"
    session.add(unit)
    assert unit.id is not None
    staff = await _staff(session, unit.id, now)
    coordinator, leader = staff[UserRole.COORDINATOR], staff[UserRole.LEADER]
    coordinator_token = await _rotate_token(session, coordinator)
    leader_token = await _rotate_token(session, leader)
    admin_token = await _rotate_token(session, staff[UserRole.ADMIN])

    existing = (await session.exec(
        select(Case).where(Case.unit_id == unit.id, Case.reference == DEMO_REFERENCE)
    )).first()
    if existing is not None:
        assert existing.id is not None
        return DemoInfo(existing.id, coordinator_token, leader_token, admin_token)

    today = local_date(now)
    case = await case_service.create_case(session, coordinator, CaseIn(
        reference=DEMO_REFERENCE, child_given_name="Sara", child_initials="S.H.",
        child_birth_date=_birth_date_of_fifteen_year_old(today),
    ), now)
    people = await _add_contacts(session, coordinator, case.id, now)
    await _record_consents(session, coordinator, case.id, people, now)
    await _plan_and_confirm_first_weeks(session, coordinator, case.id, people, today, now)
    return DemoInfo(case.id, coordinator_token, leader_token, admin_token)


async def _staff(session: AsyncSession, unit_id: int, now: datetime) -> dict[UserRole, User]:
    """The unit's coordinator, leader and admin, created the first time (the first of each role,
    whatever users the admin has added since)."""
    found = await session.exec(select(User).where(User.unit_id == unit_id).order_by(col(User.id)))
    staff: dict[UserRole, User] = {}
    for user in found.all():
        staff.setdefault(user.role, user)
    if UserRole.COORDINATOR not in staff:
        await users.create_user(session, unit_id, UserIn(name="Kari Koordinator", role=UserRole.COORDINATOR,
                                                         email="kari.koordinator@example.org"), now)
        await users.create_user(session, unit_id, UserIn(name="Lars Leder", role=UserRole.LEADER), now)
        await users.create_user(session, unit_id, UserIn(name="Ada Admin", role=UserRole.ADMIN), now)
        found = await session.exec(select(User).where(User.unit_id == unit_id).order_by(col(User.id)))
        staff = {u.role: u for u in found.all()}
    return staff


@dataclass(frozen=True)
class _People:
    """The contacts the consents and the plan's measures name."""

    child: int
    mother: int
    father: int
    therapist: int
    guide: int


async def _add_contacts(session: AsyncSession, coordinator: User, case_id: int, now: datetime) -> _People:
    async def contact(**fields: object) -> int:
        created = await contact_service.add_contact(session, coordinator, case_id, ContactIn(**fields), now)  # type: ignore[arg-type]
        return created.id

    school_day = [WeeklyWindow(weekday=d, start="08:00", end="17:00") for d in range(5)]
    long_days = [WeeklyWindow(weekday=d, start="08:00", end="20:00" if d < 4 else "16:00") for d in range(5)]
    child = await contact(name="Sara Hansen", role=Role.CHILD, phone="+47 400 00 001",
                          email="sara.hansen@example.org")
    mother = await contact(name="Mona Hansen", role=Role.PARENT, role_label="mor", daily_care=True,
                           email="mona.hansen@example.org", phone="+47 400 00 002")
    father = await contact(name="Per Hansen", role=Role.PARENT, role_label="far", daily_care=True,
                           email="per.hansen@example.org", phone="+47 400 00 003",
                           needs_interpreter=True, interpreter_language="polsk")
    await contact(name="Tone Hansen", role=Role.TRUSTED_PERSON, role_label="tante",
                  email="tone.hansen@example.org")
    await contact(name="Siri Lærer", role=Role.SCHOOL_CONTACT, organisation="Eksempel skole",
                  email="siri.laerer@skole.example.org", availability=school_day)
    await contact(name="Hanne Helsesykepleier", role=Role.PUBLIC_HEALTH_NURSE,
                  organisation="Helsestasjon for ungdom", email="hanne@helse.example.org",
                  availability=school_day)
    await contact(name="Nils NAV", role=Role.NAV_ADVISER, organisation="NAV Eksempel",
                  email="nils.nav@nav.example.org")
    therapist = await contact(name="Mia Miljøterapeut", role=Role.MILIEU_THERAPIST,
                  email="mia@bv.example.org",
                  availability=[WeeklyWindow(weekday=1, start="16:00", end="20:00"),
                                WeeklyWindow(weekday=3, start="16:00", end="20:00")])
    guide = await contact(name="Ole COS-P", role=Role.OTHER, role_label="COS-P-veileder",
                  sector=Sector.CHILD_WELFARE, email="ole@bv.example.org")
    await contact(name="Kari Koordinator", role=Role.CASEWORKER, email="kari.koordinator@example.org",
                  phone="+47 22 00 00 01", availability=long_days)
    return _People(child=child, mother=mother, father=father, therapist=therapist, guide=guide)


async def _record_consents(session: AsyncSession, coordinator: User, case_id: int, people: _People,
                           now: datetime) -> None:
    """Mother, father and child consent in writing to school and health at ``purpose``."""
    consent_from = now - timedelta(days=1)
    for grantor in (people.mother, people.father, people.child):
        for sector, level in ((Sector.SCHOOL, Level.PURPOSE), (Sector.HEALTH, Level.PURPOSE)):
            await consent_register.record_consent(session, coordinator, case_id, ConsentIn(
                grantor_contact_id=grantor, sector=sector, status=ConsentStatus.GRANTED,
                form=ConsentForm.WRITTEN, level=level, valid_from=consent_from,
                valid_until=consent_from + timedelta(days=400),
                note="Samtykkeerklæring signert på oppstartsmøtet",
            ), now)


async def _plan_and_confirm_first_weeks(session: AsyncSession, coordinator: User, case_id: int,
                                        people: _People, today: date, now: datetime) -> None:
    """A year's plan from next Monday with the two measures; its first seven weeks confirmed."""
    plan_start = today + timedelta(days=7 - today.weekday())  # next Monday
    evenings = [WeeklyWindow(weekday=d, start="08:00", end="20:00") for d in range(5)]
    plan = await plans.upsert_plan(session, coordinator, case_id, PlanIn(
        start_date=plan_start,
        expected_end=plan_start + timedelta(days=364),
        default_place="Rådhuset, Storgata 1, møterom 2",
        goals="Oppmøte på skolen minst 90 % de neste 12 ukene; en fast trygg voksen ved leggetid.",
        measures=[
            MeasureIn(what="Miljøterapeut hjemme", how_often="2x/uke, 60 min (tir/tor kl. 17)",
                      weekly=[WeeklyWindow(weekday=1, start="17:00", end="18:00"),
                              WeeklyWindow(weekday=3, start="17:00", end="18:00")],
                      contact_ids=[people.mother, people.father, people.child, people.therapist]),
            MeasureIn(what="Foreldreveiledning COS-P", how_often="8 ganger, onsdager kl. 19",
                      weekly=[WeeklyWindow(weekday=2, start="19:00", end="20:00")],
                      contact_ids=[people.mother, people.father, people.guide]),
        ],
        child_wishes=ChildWishesIn(not_after="19:00", after_school="15:00"),
        rules=RulesIn(office_hours=evenings),
    ), now)
    # The coordinator confirms the first weeks at once; later meetings stay proposed until then.
    first_weeks = plan_start + timedelta(days=49)
    for meeting in plan.meetings:
        if meeting.status is MeetingStatus.PROPOSED and local_date(meeting.start) <= first_weeks:
            await meetings.set_status(session, coordinator, case_id, meeting.id, MeetingStatus.CONFIRMED, now)
