"""Shared fixtures: the same API tests run on SQLite and on the real PostgreSQL.

PostgreSQL is required, not optional: if it cannot be reached the PostgreSQL half of the
suite errors (it is never skipped), unless SAMHANDLING_TEST_POSTGRES=off says on purpose
that this run covers SQLite only.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from db_backends import BACKENDS, POSTGRES_ADMIN_URL, POSTGRES_ENABLED, START  # noqa: F401
from hypothesis import settings as hypothesis_settings
from litestar import Litestar
from litestar.testing import AsyncTestClient
from smtp_server import SmtpServer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from coordination.access import users
from coordination.app import create_app
from coordination.clock import Clock
from coordination.context import ServiceContext
from coordination.domain import UserRole
from coordination.migrate import upgrade
from coordination.schemas import UserIn
from coordination.settings import Settings

# Property tests judge behaviour, not speed: a loaded CI machine must not fail them on time.
hypothesis_settings.register_profile("samhandling", deadline=None)
hypothesis_settings.load_profile("samhandling")


def _with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


async def _admin(sql: str) -> None:
    engine = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(sql))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database for this test run, migrated once, dropped at the end."""
    name = f"samhandling_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    url = _with_database(POSTGRES_ADMIN_URL, name)
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


TABLES_QUERY = (
    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
)


async def _truncate_postgres(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            tables = [row[0] for row in (await connection.execute(text(TABLES_QUERY))).all()]
            if tables:
                quoted = ", ".join(f'"{t}"' for t in tables)
                await connection.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "samhandling.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    asyncio.run(_truncate_postgres(url))
    return url


@pytest.fixture
def clock() -> Clock:
    return Clock(frozen=START)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return replace(
        Settings(),
        database_url=database_url,
        dispatcher_enabled=False,
        mail_folder=tmp_path / "mail",
        public_base_url="http://testserver",
    )


@pytest.fixture
def app(settings: Settings, clock: Clock) -> Litestar:
    return create_app(settings, clock)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture
async def service(settings: Settings, clock: Clock) -> AsyncIterator[ServiceContext]:
    """Direct access to the service for setting up and checking, on the test's own connections
    (the app under test keeps its own pool) and sharing the app's clock."""
    context = ServiceContext.create(settings, clock)
    try:
        yield context
    finally:
        await context.engine.dispose()


@dataclass
class Person:
    id: int
    unit_id: int
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class People:
    """Users to act as: two coordinators and a leader in one unit, and a stranger elsewhere."""

    coordinator: Person
    other_coordinator: Person
    leader: Person
    admin: Person
    stranger: Person


@pytest.fixture
async def people(client: AsyncTestClient[Litestar], service: ServiceContext) -> People:
    async def make(unit: str, name: str, role: UserRole) -> Person:
        async with service.transaction() as session:
            found = await users.get_or_create_unit(session, unit, service.now())
            assert found.id is not None
            created = await users.create_user(session, found.id, UserIn(name=name, role=role),
                                              service.now())
        return Person(created.user.id, found.id, created.token)

    return People(
        coordinator=await make("Enhet A", "Kari", UserRole.COORDINATOR),
        other_coordinator=await make("Enhet A", "Knut", UserRole.COORDINATOR),
        leader=await make("Enhet A", "Lise", UserRole.LEADER),
        admin=await make("Enhet A", "Arne", UserRole.ADMIN),
        stranger=await make("Enhet B", "Stine", UserRole.LEADER),
    )


def _case_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "reference": "BV-2027-17",
        "child_given_name": "Sara",
        "child_initials": "S.H.",
        "child_birth_date": "2012-03-10",
        "language": "nb",
        "aimed_at_child": True,
    }
    body.update(overrides)
    return body


@pytest.fixture
def case_body() -> Any:
    """A valid case body; keyword arguments override fields."""
    return _case_body


@dataclass
class CaseTeam:
    """A case with the usual people around the child, created through the API."""

    case_id: int
    child: int
    mother: int
    father: int
    teacher: int
    nurse: int
    nav: int


@pytest.fixture
async def team(client: AsyncTestClient[Litestar], people: People) -> CaseTeam:
    headers = people.coordinator.headers
    response = await client.post("/cases", json=_case_body(), headers=headers)
    assert response.status_code == 201, response.text
    case_id = response.json()["id"]

    async def add(**body: Any) -> int:
        added = await client.post(f"/cases/{case_id}/contacts", json=body, headers=headers)
        assert added.status_code == 201, added.text
        return int(added.json()["id"])

    return CaseTeam(
        case_id=case_id,
        child=await add(name="Sara Hansen", role="child"),
        mother=await add(name="Mona Hansen", role="parent", role_label="mor", daily_care=True,
                         email="mona@example.org"),
        father=await add(name="Per Hansen", role="parent", role_label="far", daily_care=True),
        teacher=await add(name="Siri Lærer", role="school_contact", email="siri@skole.example.org"),
        nurse=await add(name="Hanne Helse", role="public_health_nurse"),
        nav=await add(name="Nils NAV", role="nav_adviser", phone="+47 400 00 000"),
    )


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on a free port, for any test that sends mail."""
    server = SmtpServer()
    server.up()
    try:
        yield server
    finally:
        server.down()
