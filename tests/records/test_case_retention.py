"""Retention, on SQLite and PostgreSQL: once the retention period after closing has passed, the
purge deletes the case's personal data from every table — the test reads every table the models
declare and finds no name, address or number of the case — and touches nothing of another case;
``samhandling purge --dry-run`` lists what would go; the alerts before and after a plan's end."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from record_scene import Client, Demo, send_due
from sqlalchemy import select as select_rows
from sqlmodel import SQLModel, col, select

from coordination.background import scan_once
from coordination.context import ServiceContext
from coordination.models import Alert, Case, Contact, Meeting, Plan, User
from coordination.records import retention
from notifications.ports import AlertKind

ROOT = Path(__file__).resolve().parents[2]


async def _tables(service: ServiceContext) -> dict[str, set[str]]:
    """Every row of every table, each as one string of its values."""
    found: dict[str, set[str]] = {}
    async with service.engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            rows = (await connection.execute(select_rows(table))).all()
            found[table.name] = {" | ".join(str(value) for value in row) for row in rows}
    return found


async def _personal_data(service: ServiceContext, case_id: int) -> set[str]:
    """What the case holds of people: its contacts' names, addresses and numbers (but the staff's,
    which belong to the unit's user list), the child's name and birth date, and the meeting place."""
    async with service.transaction() as session:
        staff = set((await session.exec(select(User.email))).all())
        contacts = (await session.exec(select(Contact).where(Contact.case_id == case_id))).all()
        case = await session.get(Case, case_id)
        plan = (await session.exec(select(Plan).where(Plan.case_id == case_id))).one()
        places = set((await session.exec(select(Meeting.place).where(Meeting.case_id == case_id))).all())
    assert case is not None
    values = {case.child_given_name, str(case.child_birth_date), plan.default_place, plan.goals, *places}
    for contact in contacts:
        if contact.email not in staff:
            values |= {contact.name, contact.email, contact.phone, contact.organisation}
    return {v for v in values if v}


async def _other_case(client: Client, demo_case: Demo) -> int:
    """Another family of the same unit, with consent, a sent invitation and a feed."""
    who = demo_case.coordinator
    case = (await client.post("/cases", headers=who, json={
        "reference": "BV-ANNEN", "child_given_name": "Ola", "child_initials": "O.N.",
        "child_birth_date": "2015-05-05"})).json()["id"]
    parent = (await client.post(f"/cases/{case}/contacts", headers=who, json={
        "name": "Kari Nordmann", "role": "parent", "daily_care": True, "email": "kari.nordmann@example.org",
        "phone": "+47 411 11 111"})).json()["id"]
    teacher = (await client.post(f"/cases/{case}/contacts", headers=who, json={
        "name": "Per Skole", "role": "school_contact", "email": "per.skole@example.org"})).json()["id"]
    await client.post(f"/cases/{case}/consents", headers=who, json={
        "grantor_contact_id": parent, "sector": "school", "status": "granted", "form": "written",
        "level": "purpose"})
    made = await client.post(f"/cases/{case}/meetings", headers=who, json={
        "start": "2027-06-14T09:00:00+02:00", "end": "2027-06-14T10:00:00+02:00", "place": "Nordmanns vei 3",
        "participant_ids": [parent, teacher], "confirm": True})
    assert made.status_code == 201, made.text
    await client.post(f"/cases/{case}/feeds", headers=who, json={"scope": "contact", "contact_id": teacher})
    return int(case)


async def _views(client: Client, who: dict[str, str], case: int) -> list[Any]:
    return [(await client.get(f"/cases/{case}/{part}", headers=who)).json()
            for part in ("contacts", "consents", "meetings", "feeds", "plan")]


async def test_the_purge_leaves_no_personal_data_and_touches_no_other_case(
    client: Client, demo_case: Demo, service: ServiceContext
) -> None:
    case, who = demo_case.case_id, demo_case.coordinator
    other = await _other_case(client, demo_case)
    await send_due(service)
    personal = await _personal_data(service, case)
    assert {"Mona Hansen", "mona.hansen@example.org", "Rådhuset, Storgata 1, møterom 2"} <= personal
    assert (await client.post(f"/cases/{case}/close", headers=who)).status_code == 200
    await send_due(service)
    other_before = await _views(client, who, other)
    async with service.transaction() as session:
        assert await retention.due_cases(session, service.now(), 90) == [], "nothing due yet"
    service.clock.advance(timedelta(days=90))
    before = await _tables(service)

    purged = await retention.purge_due(service)
    after = await _tables(service)

    assert [p.case_id for p in purged] == [case] and purged[0].done
    everything = "\n".join(row for rows in after.values() for row in rows)
    left = sorted(value for value in personal if value in everything)
    assert left == [], f"personal data of the case left after the purge: {left}"
    changed = {name for name in after if after[name] - before[name]}
    assert changed <= {"case", "auditentry", "unit"}, "only the tombstone, the log and the feeds' version change"
    gone = {name: len(before[name] - after[name]) for name in before if before[name] - after[name]}
    assert {name: gone[name] for name in purged[0].rows} == purged[0].rows
    assert await _views(client, who, other) == other_before
    assert any("Kari Nordmann" in row for row in after["contact"]) and any("BV-ANNEN" in row for row in after["case"])

    async with service.transaction() as session:
        tombstone = await session.get(Case, case)
        assert tombstone is not None and tombstone.status == "purged" and tombstone.reference == "DEMO-2026-001"
        assert tombstone.closed_at and tombstone.record_produced_at and tombstone.purged_at == service.now()
        assert tombstone.created_at and tombstone.child_given_name == ""
    assert (await client.get(f"/cases/{case}", headers=who)).status_code == 404
    assert await retention.purge_due(service) == [], "a purge with nothing due does nothing"


def _purge_command(service: ServiceContext, *args: str) -> str:
    env = {**os.environ, "SAMHANDLING_DATABASE_URL": service.settings.database_url,
           "SAMHANDLING_CLOCK_START": service.now().isoformat(), "SAMHANDLING_LOG_LEVEL": "WARNING"}
    done = subprocess.run([sys.executable, "-m", "coordination.cli", "purge", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_purge_dry_run_lists_what_would_go_and_deletes_nothing(
    client: Client, demo_case: Demo, service: ServiceContext
) -> None:
    case = demo_case.case_id
    assert "nothing is due for deletion" in _purge_command(service, "--dry-run")
    assert (await client.post(f"/cases/{case}/close", headers=demo_case.coordinator)).status_code == 200
    service.clock.advance(timedelta(days=91))
    listed = _purge_command(service, "--dry-run")
    assert f"case {case} DEMO-2026-001: closed 2027-01-04, due 2027-04-04; would delete:" in listed
    assert "  contact: 10 row(s)" in listed and "  consentrecord: 6 row(s)" in listed
    assert "dry run: nothing was deleted" in listed
    async with service.transaction() as session:
        assert (await session.get(Case, case)).status == "closed"  # type: ignore[union-attr]
    assert "deleted:" in _purge_command(service)
    assert "nothing is due for deletion" in _purge_command(service)


async def test_alerts_tell_of_a_plan_past_its_end_and_of_a_deletion_due(
    client: Client, demo_case: Demo, service: ServiceContext
) -> None:
    case = demo_case.case_id

    async def open_alerts() -> set[AlertKind]:
        async with service.transaction() as session:
            kinds = await session.exec(select(Alert.kind).where(Alert.case_id == case,
                                                                col(Alert.resolved_at).is_(None)))
            return set(kinds.all())

    plan = (await client.get(f"/cases/{case}/plan", headers=demo_case.coordinator)).json()
    service.clock.set(service.now() + timedelta(days=372))  # the plan ended yesterday or so
    assert plan["expected_end"] < service.now().date().isoformat()
    await scan_once(service)
    assert AlertKind.PLAN_ENDED in await open_alerts()
    assert (await client.post(f"/cases/{case}/close", headers=demo_case.coordinator)).status_code == 200
    assert await open_alerts() == set(), "closing resolves the case's alerts"
    service.clock.advance(timedelta(days=77))
    await scan_once(service)
    assert await open_alerts() == {AlertKind.DELETION_DUE}
    assert (await client.post(f"/cases/{case}/reopen", headers=demo_case.leader)).status_code == 200
    assert await open_alerts() == set(), "reopened, its deletion is no longer due"
