"""The benchmark calendar: one coordinator's feed of N meetings over two years, each with a
~200-character description and 3 attendees, written straight into PostgreSQL with COPY.

The same bytes are then served by the service, by nginx (as a static file) and by
Radicale (as a collection of one item per event), so every server answers with the same
calendar.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.common import copy_rows, reset_sequences

OSLO = ZoneInfo("Europe/Oslo")
FIRST_DAY = date(2027, 1, 4)
MEETINGS_PER_CASE = 20
KINDS = ("startup", "weekly_status", "mini_evaluation", "main_evaluation", "child_talk", "final_evaluation")
AGENDA = (
    "Gjennomgang av tiltaksplanen: mål for skole, fritid og helse; oppfølging av avtaler fra "
    "forrige møte, fordeling av oppgaver mellom skole, helsestasjon og familien, og plan for "
    "neste evaluering (møte nr. {n})."
)


@dataclass(frozen=True)
class FeedFixture:
    """A coordinator's feed token and what it holds."""

    meetings: int
    user_id: int
    token: str


def oslo(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=OSLO).astimezone(UTC)


def working_day(offset: int) -> date:
    day = FIRST_DAY + timedelta(days=offset)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


async def seed_feed_calendars(dsn: str, sizes: tuple[int, ...], now: datetime) -> dict[int, FeedFixture]:
    """One unit; per size a coordinator whose cases hold exactly ``size`` meetings."""
    import asyncpg

    from coordination.models import (
        Case,
        CaseCoordinator,
        Contact,
        FeedToken,
        Meeting,
        MeetingParticipant,
        Unit,
        User,
    )
    from coordination.security import hash_token, new_token

    connection = await asyncpg.connect(dsn)
    fixtures: dict[int, FeedFixture] = {}
    try:
        await copy_rows(connection, Unit, [{"id": 1, "name": "Bench-enhet", "phone": "+47 22 00 00 00",
                                            "created_at": now}])
        users: list[dict[str, Any]] = []
        cases: list[dict[str, Any]] = []
        links: list[dict[str, Any]] = []
        contacts: list[dict[str, Any]] = []
        meetings: list[dict[str, Any]] = []
        participants: list[dict[str, Any]] = []
        feeds: list[dict[str, Any]] = []
        case_id = contact_id = meeting_id = 0
        for index, size in enumerate(sizes, start=1):
            token = new_token()
            users.append({"id": index, "unit_id": 1, "name": f"Koordinator {index}", "email": "",
                          "role": "coordinator", "token_hash": hash_token(new_token()), "created_at": now})
            feeds.append({"id": index, "token_hash": hash_token(token), "unit_id": 1, "scope": "coordinator",
                          "user_id": index, "label": f"{size} møter", "created_by_user_id": index,
                          "created_at": now})
            fixtures[size] = FeedFixture(size, index, token)
            for c in range(size // MEETINGS_PER_CASE):
                case_id += 1
                cases.append({"id": case_id, "unit_id": 1, "reference": f"BV-{size}-{c + 1:04d}",
                              "child_given_name": "Sara", "child_initials": "S.H.",
                              "child_birth_date": date(2013, 1 + c % 12, 1 + c % 28), "created_at": now,
                              "updated_at": now})
                links.append({"case_id": case_id, "user_id": index})
                people = []
                for name, role, sector, care in (("Mona Hansen", "parent", "family", True),
                                                 ("Siri Lærer", "school_contact", "school", False),
                                                 ("Hanne Helse", "public_health_nurse", "health", False)):
                    contact_id += 1
                    people.append(contact_id)
                    contacts.append({"id": contact_id, "case_id": case_id, "name": name, "role": role,
                                     "sector": sector, "daily_care": care,
                                     "email": f"kontakt{contact_id}@example.org", "created_at": now,
                                     "updated_at": now})
                for m in range(MEETINGS_PER_CASE):
                    meeting_id += 1
                    day = working_day((m * 36 + c * 7) % 728)
                    start = oslo(day, 8 + c % 7, 15 * (m % 4))
                    meetings.append({
                        "id": meeting_id, "case_id": case_id, "uid": f"bench-{meeting_id}@samhandling.invalid",
                        "kind": KINDS[m % len(KINDS)], "series_key": f"bench#{m}", "series_no": m,
                        "start": start, "end": start + timedelta(minutes=90),
                        "place": "Familiens hus, møterom 2", "agenda": AGENDA.format(n=m + 1),
                        "status": "confirmed", "ical_sequence": 1, "created_at": now, "updated_at": now,
                    })
                    participants += [{"meeting_id": meeting_id, "contact_id": p, "partstat": "accepted"}
                                     for p in people]
        await copy_rows(connection, User, users)
        await copy_rows(connection, Case, cases)
        await copy_rows(connection, CaseCoordinator, links)
        await copy_rows(connection, Contact, contacts)
        await copy_rows(connection, Meeting, meetings)
        await copy_rows(connection, MeetingParticipant, participants)
        await copy_rows(connection, FeedToken, feeds)
        await reset_sequences(connection, [Unit, User, Case, Contact, Meeting, FeedToken])
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    return fixtures


def split_events(body: bytes) -> tuple[bytes, bytes, list[bytes]]:
    """The calendar head, the VTIMEZONE block and each VEVENT block of a feed."""
    tz_start = body.index(b"BEGIN:VTIMEZONE\r\n")
    tz_end = body.index(b"END:VTIMEZONE\r\n") + len(b"END:VTIMEZONE\r\n")
    events: list[bytes] = []
    position = tz_end
    while True:
        start = body.find(b"BEGIN:VEVENT\r\n", position)
        if start < 0:
            break
        end = body.index(b"END:VEVENT\r\n", start) + len(b"END:VEVENT\r\n")
        events.append(body[start:end])
        position = end
    return body[:tz_start], body[tz_start:tz_end], events


def write_radicale_collection(body: bytes, root: Path, user: str, name: str) -> str:
    """The feed as a Radicale 3 calendar collection (one item per event, the way a CalDAV
    client would have stored it); returns the collection's path."""
    _, vtimezone, events = split_events(body)
    folder = root / "collection-root" / user / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".Radicale.props").write_text(json.dumps({"tag": "VCALENDAR", "D:displayname": name}))
    head = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Samhandling//Samhandling//NB\r\n"
    for i, event in enumerate(events):
        (folder / f"event-{i:05d}.ics").write_bytes(head + vtimezone + event + b"END:VCALENDAR\r\n")
    return f"/{user}/{name}/"
