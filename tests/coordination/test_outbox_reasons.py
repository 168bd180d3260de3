"""The outbox page and the consent gate decide by one function: what the page says a waiting
message will meet is what the gate does when the dispatcher sends it, in the same words. The
gate's reasons are kept as typed values (ids and rule codes, no names), and rows stopped
before they were typed still show theirs."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mail_fixtures
import msgspec
from mail_fixtures import Client, consent
from sqlmodel import col, select

from coordination.consent.policy import Reason
from coordination.context import ServiceContext
from coordination.domain import Sector
from coordination.levels import Level
from coordination.migrate import upgrade
from coordination.models import OutboxMessage, User
from coordination.outbox.store import reasons_of, stored_reasons
from coordination.web.views.outbox import OutboxRow, outbox_rows
from notifications.dispatcher import Dispatcher

dispatcher = mail_fixtures.dispatcher

NAMES = ("Sara", "Mona", "Per", "Siri", "Hanne", "Nils", "Hansen")


async def _page(service: ServiceContext, people: Any, case_id: int) -> dict[int, OutboxRow]:
    async with service.transaction() as session:
        user = await session.get(User, people.coordinator.id)
        assert user is not None
        rows = await outbox_rows(session, user, case_id, service.now(), service.settings.email_level_cap, "")
    return {r.id: r for r in rows}


async def test_the_outbox_page_says_what_the_gate_then_does(
    client: Client, people: Any, team: Any, service: ServiceContext, dispatcher: Dispatcher
) -> None:
    """Every way a queued invitation ends at the gate — sent, stopped for consent (refused and
    withdrawn), stopped for want of an address — previewed, then sent."""
    headers = people.coordinator.headers
    for contact, email in ((team.father, "per@example.org"), (team.nurse, "hanne@helse.example.org"),
                           (team.nav, "nils@nav.example.org")):
        patched = await client.patch(f"/cases/{team.case_id}/contacts/{contact}", headers=headers,
                                     json={"email": email})
        assert patched.status_code == 200, patched.text
    for carer in (team.mother, team.father):
        await consent(client, people, team, carer, "school")
    await mail_fixtures.meeting(client, people, team, [team.mother, team.father, team.child, team.teacher,
                                                       team.nurse, team.nav])
    await consent(client, people, team, team.father, "school", "withdrawn")

    async with service.transaction() as session:
        queued = (await session.exec(select(OutboxMessage).where(
            OutboxMessage.case_id == team.case_id, col(OutboxMessage.meeting_id).is_not(None),
            OutboxMessage.status == "pending", col(OutboxMessage.due_at) <= service.now()))).all()
        due = {row.id: row.recipient_contact_id for row in queued}
    preview = await _page(service, people, team.case_id)
    await dispatcher.drain_once()
    after = await _page(service, people, team.case_id)

    seen = set()
    for row_id, contact in due.items():
        before, then = preview[row_id], after[row_id]
        if before.status.startswith("Venter til"):
            assert then.status.startswith(("Sendt", "Venter til")), (contact, before, then)  # or held for the night
            seen.add("sent")
        else:
            assert before.status.startswith(("Stoppes ved utsending", "Blir ikke sendt")), before
            assert then.status.startswith("Stoppet:"), (contact, before, then)
            assert then.details == before.details, (contact, before, then)
            seen.add(before.status)
    assert seen == {"sent", "Stoppes ved utsending: samtykket gjelder ikke nå", "Blir ikke sendt: ingen e-postadresse"}
    teacher = next(r for i, r in after.items() if due.get(i) == team.teacher)
    assert teacher.details == ["Per Hansen (far) har trukket tilbake samtykket til deling med skole"]


async def test_a_stored_reason_round_trips_as_a_typed_value(
    client: Client, people: Any, team: Any, service: ServiceContext
) -> None:
    await mail_fixtures.meeting(client, people, team, [team.mother])
    reasons = [Reason("expired", team.mother, Sector.SCHOOL, Level.PURPOSE, datetime(2027, 1, 1, 12, tzinfo=UTC)),
               Reason("child_not_consented", None, Sector.HEALTH), Reason("no_daily_care")]
    async with service.transaction() as session:
        row = (await session.exec(select(OutboxMessage).where(OutboxMessage.case_id == team.case_id))).first()
        assert row is not None
        row.suppressed_reasons = stored_reasons(reasons)
        session.add(row)
        row_id = row.id
    async with service.transaction() as session:
        stored = await session.get(OutboxMessage, row_id)
        assert stored is not None
        assert reasons_of(stored) == reasons
        kept = json.dumps(stored.suppressed_reasons)
    assert not [name for name in NAMES if name in kept], kept


def test_a_reason_stopped_as_text_reads_as_a_typed_value_after_the_migration(tmp_path: Path) -> None:
    """Rows the gate stopped before its reasons were typed: the migration reads their text the
    way the page used to, and keeps what the page could show."""
    path = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url, "0003")
    texts = {1: "withdrawn contact=3 sector=school; not_consented contact=4 sector=health",
             2: "superseded: sequence 1 is now 2", 3: "no_daily_care; made_up contact=5; refused sector=moon"}
    with sqlite3.connect(path) as db:
        columns = db.execute("PRAGMA table_info(outboxmessage)").fetchall()
        for row_id, text in texts.items():
            values: dict[str, object] = {
                name: 1 if "INT" in kind.upper() else "2027-01-01 00:00:00.000000" if "DATE" in kind.upper() else "x"
                for _, name, kind, notnull, default, _ in columns if notnull and default is None}
            values.update(id=row_id, idempotency_key=f"old-{row_id}", status="suppressed", suppressed_reason=text)
            db.execute(f"INSERT INTO outboxmessage ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                       list(values.values()))
    upgrade(url)
    with sqlite3.connect(path) as db:
        kept = dict(db.execute("SELECT id, suppressed_reasons FROM outboxmessage").fetchall())
    typed = {row_id: msgspec.convert(json.loads(kept[row_id]), list[Reason]) for row_id in texts}
    assert typed == {1: [Reason("withdrawn", 3, Sector.SCHOOL), Reason("not_consented", 4, Sector.HEALTH)],
                     2: [], 3: [Reason("no_daily_care")]}
