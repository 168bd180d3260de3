"""A country-sized data set on PostgreSQL, written with COPY so that it loads in minutes:
by default 45,000 cases in 225 units, ≈400,000 contacts, ≈600,000 meetings with their
participants, consent histories, a coordinator feed per coordinator, and (on request) an
outbox backlog. Scaled down with ``cases`` for the dispatch benchmark and --quick.

Tokens are derived from ids and a per-run salt, so the benchmark can use any user's API
token or feed address without keeping a list.
"""

from __future__ import annotations

import hashlib
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bench.common import copy_rows, reset_sequences

OSLO = ZoneInfo("Europe/Oslo")
CASES_PER_UNIT = 200
CASES_PER_COORDINATOR = 25
PARTNER_SECTORS = ("school", "health", "nav")
KINDS_YEAR = (  # a year of a plan: 13⅓ meetings on average with the extra weekly status below
    "startup", "weekly_status", "weekly_status", "weekly_status", "child_talk", "mini_evaluation",
    "child_talk", "main_evaluation", "child_talk", "main_evaluation", "child_talk", "main_evaluation",
    "final_evaluation",
)
AGENDA = "Evaluering av tiltaksplanen: mål, tiltak og ansvar; hva har fungert, hva må endres, og neste steg."


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass
class National:
    """What was generated: counts, and how to reach users, feeds and cases."""

    salt: str
    counts: dict[str, int] = field(default_factory=dict)
    coordinators: list[int] = field(default_factory=list)
    cases_of: dict[int, list[int]] = field(default_factory=dict)
    partner_participations: list[tuple[int, int, int, int, int]] = field(default_factory=list)

    def user_token(self, user_id: int) -> str:
        return f"benchuser{user_id:08d}{self.salt}"

    def feed_token(self, user_id: int) -> str:
        return f"benchfeed{user_id:08d}{self.salt}"


def oslo(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=OSLO).astimezone(UTC)


def _working(day: date) -> date:
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


async def generate(dsn: str, cases: int, now: datetime, log: Callable[[str], None], *, seed: int = 11,
                   complete_consent: bool = False) -> National:
    """Fill an empty, migrated database. Meetings spread over the year around ``now``:
    the past ones held, the future ones confirmed. ``complete_consent`` grants every
    partner sector in every case (no gaps, no withdrawals), so that every message is sent."""
    import asyncpg

    from coordination.models import (
        Case,
        CaseCoordinator,
        ConsentRecord,
        Contact,
        FeedToken,
        Meeting,
        MeetingParticipant,
        Unit,
        User,
    )

    rng = random.Random(seed)
    national = National(salt=secrets.token_hex(8))
    units: list[dict[str, Any]] = []
    users: list[dict[str, Any]] = []
    feeds: list[dict[str, Any]] = []
    case_rows: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    contacts: list[dict[str, Any]] = []
    consents: list[dict[str, Any]] = []
    meetings: list[dict[str, Any]] = []
    participants: list[dict[str, Any]] = []
    user_id = contact_id = consent_id = meeting_id = 0
    today = now.astimezone(OSLO).date()
    n_units = max(1, -(-cases // CASES_PER_UNIT))
    case_id = 0
    for unit_no in range(1, n_units + 1):
        units.append({"id": unit_no, "name": f"Barneverntjenesten {unit_no}", "phone": "+47 22 00 00 00",
                      "created_at": now})
        in_unit = min(CASES_PER_UNIT, cases - case_id)
        user_id += 1
        leader = user_id
        users.append({"id": leader, "unit_id": unit_no, "name": f"Leder {unit_no}", "role": "leader",
                      "token_hash": _hash(national.user_token(leader)), "created_at": now})
        coordinators = []
        for _ in range(max(1, in_unit // CASES_PER_COORDINATOR)):
            user_id += 1
            coordinators.append(user_id)
            national.coordinators.append(user_id)
            users.append({"id": user_id, "unit_id": unit_no, "name": f"Koordinator {user_id}",
                          "email": f"koordinator{user_id}@kommune.example.org", "role": "coordinator",
                          "token_hash": _hash(national.user_token(user_id)), "created_at": now})
            feeds.append({"id": user_id, "token_hash": _hash(national.feed_token(user_id)), "unit_id": unit_no,
                          "scope": "coordinator", "user_id": user_id, "label": "mine saker",
                          "created_by_user_id": user_id, "created_at": now})
        for i in range(in_unit):
            case_id += 1
            coordinator = coordinators[i % len(coordinators)]
            national.cases_of.setdefault(coordinator, []).append(case_id)
            birth = date(2008 + rng.randrange(17), 1 + rng.randrange(12), 1 + rng.randrange(28))
            opened = now - timedelta(days=rng.randrange(30, 700))
            case_rows.append({"id": case_id, "unit_id": unit_no, "reference": f"BV-{unit_no}-{i + 1:05d}",
                              "child_given_name": "Barn", "child_initials": "B.B.", "child_birth_date": birth,
                              "created_at": opened, "updated_at": opened})
            links.append({"case_id": case_id, "user_id": coordinator})
            people: list[tuple[int, str, str, bool]] = []
            roster = [("child", "family", False), ("parent", "family", True),
                      ("parent", "family", rng.random() < 0.7), ("school_contact", "school", False),
                      ("principal", "school", False), ("public_health_nurse", "health", False),
                      ("gp", "health", False), ("nav_adviser", "nav", False)]
            if rng.random() < 0.5:
                roster.append(("child_psychiatry", "health", False))
            if rng.random() < 0.4:
                roster.append(("trusted_person", "family", False))
            for role, sector, care in roster:
                contact_id += 1
                people.append((contact_id, role, sector, care))
                contacts.append({"id": contact_id, "case_id": case_id, "name": f"Kontakt {contact_id}",
                                 "role": role, "sector": sector, "daily_care": care,
                                 "email": "" if role == "child" else f"kontakt{contact_id}@example.org",
                                 "created_at": opened, "updated_at": opened})
            grantors = [p for p in people if p[3]]
            child = people[0][0]
            party = (today.year - birth.year) >= 15
            for sector in PARTNER_SECTORS:
                if not complete_consent and rng.random() < 0.15:
                    continue  # no consent for this sector yet
                for grantor in [g[0] for g in grantors] + ([child] if party else []):
                    consent_id += 1
                    start = opened + timedelta(days=rng.randrange(1, 20))
                    level = rng.choice(("logistics", "purpose", "content"))
                    consents.append({"id": consent_id, "case_id": case_id, "grantor_contact_id": grantor,
                                     "sector": sector, "status": "granted", "level": level, "valid_from": start,
                                     "valid_until": start + timedelta(days=365 * 2), "form": "written",
                                     "recorded_by_user_id": coordinator, "recorded_at": start})
                    if not complete_consent and rng.random() < 0.08:
                        consent_id += 1
                        withdrawn = start + timedelta(days=rng.randrange(20, 200))
                        consents.append({"id": consent_id, "case_id": case_id, "grantor_contact_id": grantor,
                                         "sector": sector, "status": "withdrawn", "level": "none",
                                         "valid_from": withdrawn, "form": "oral",
                                         "recorded_by_user_id": coordinator, "recorded_at": withdrawn})
            family = [p[0] for p in people if p[2] == "family" and p[1] != "trusted_person"]
            parents = [p[0] for p in people if p[1] == "parent"]
            partners = [p for p in people if p[2] in PARTNER_SECTORS]
            start_day = today - timedelta(days=rng.randrange(0, 330))
            kinds = list(KINDS_YEAR) + (["weekly_status"] if rng.random() < 0.33 else [])
            for m, kind in enumerate(kinds):
                meeting_id += 1
                day = _working(start_day + timedelta(days=m * 28 + rng.randrange(0, 5)))
                start = oslo(day, 8 + rng.randrange(7), 15 * rng.randrange(4))
                past = start < now
                meetings.append({"id": meeting_id, "case_id": case_id, "uid": f"m{meeting_id}@samhandling.invalid",
                                 "kind": kind, "series_key": f"{kind}#{m}", "series_no": m, "start": start,
                                 "end": start + timedelta(minutes=60), "place": "Familiens hus",
                                 "agenda": AGENDA, "status": "held" if past else "confirmed",
                                 "ical_sequence": 1, "pinned": past, "created_at": opened,
                                 "updated_at": opened})
                if kind == "child_talk":
                    invited = [child]
                elif kind == "weekly_status":
                    invited = family
                else:
                    invited = parents + [p[0] for p in partners]
                participants += [{"meeting_id": meeting_id, "contact_id": c, "partstat": "accepted"}
                                 for c in invited]
                if not past and kind not in ("child_talk", "weekly_status"):
                    national.partner_participations += [(case_id, unit_no, meeting_id, p[0], 1)
                                                        for p in partners]
        if unit_no % 25 == 0:
            log(f"    generated {case_id} cases")
    connection = await asyncpg.connect(dsn)
    try:
        for model, rows in ((Unit, units), (User, users), (Case, case_rows), (CaseCoordinator, links),
                            (Contact, contacts), (ConsentRecord, consents), (Meeting, meetings),
                            (MeetingParticipant, participants), (FeedToken, feeds)):
            national.counts[model.__table__.name] = await copy_rows(connection, model, rows)
            rows.clear()
            log(f"    copied {national.counts[model.__table__.name]:>9} rows into {model.__table__.name}")
        await reset_sequences(connection, [Unit, User, Case, Contact, ConsentRecord, Meeting, FeedToken])
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    return national


async def add_backlog(dsn: str, national: National, count: int, now: datetime, seed: int = 5) -> int:
    """``count`` invitations and reminders to partners about future meetings, all due now:
    an outbox backlog as after a long SMTP outage. Partners only, so that the figure does
    not depend on the time of day (families wait for 07:00)."""
    import asyncpg

    from coordination.models import OutboxMessage

    rng = random.Random(seed)
    pool = national.partner_participations
    chosen = rng.sample(range(len(pool)), min(count, len(pool)))
    rows = []
    for n, index in enumerate(chosen):
        case_id, unit_id, meeting_id, contact_id, sequence = pool[index]
        kind = "invitation" if n % 2 == 0 else "reminder"
        due = now - timedelta(seconds=rng.randrange(0, 3600))
        rows.append({"idempotency_key": f"bench:{meeting_id}:{contact_id}:{kind}", "unit_id": unit_id,
                     "case_id": case_id, "kind": kind, "recipient_contact_id": contact_id,
                     "recipient_kind": "partner", "meeting_id": meeting_id, "meeting_sequence": sequence,
                     "due_at": due, "next_attempt_at": due, "message_id": f"<bench{n}.{national.salt}@samhandling>",
                     "created_at": due, "updated_at": due})
    connection = await asyncpg.connect(dsn)
    try:
        # Ids from the table's own sequence: the running service may be writing rows too.
        copied = await copy_rows(connection, OutboxMessage, rows, omit=("id",))
        await connection.execute('ANALYZE "outboxmessage"')
    finally:
        await connection.close()
    return copied
