"""The send path under load, from DESIGN.md alone (rules 1, 3, 6, 9, 10), written while the
dispatcher is being made fast (batches, reused SMTP sessions, several messages in flight,
rendering cached per meeting, level and language). Every change here is made *while the
dispatcher is running*: the relay (aiosmtpd) holds the N-th message at DATA, the test makes the
change through the HTTP API, notes that it has committed and lets the relay go on. Whatever the
relay is asked *after* that moment must follow the change:

- consent withdrawn for one sector: no message to that sector starts after the commit (the one
  in flight at DATA may finish — DESIGN.md keeps that window to one SMTP conversation), each
  stopped one is audited with its reason;
- an address changed: nothing more goes to the old one;
- the clock passes 21:00 Oslo: no family mail starts until 07:00.

And as a relay would behave: every message delivered once with its own Message-ID when the relay
closes the session after every k messages (421, or a dropped connection), one recipient refused
for good without harming the others; one meeting at two levels never leaks the higher into the
lower. Both databases.

CI form: 3 cases × 10 meetings × 5 partners and carers (300 messages: invitations and the 48-hour
reminders). Long form: SAMHANDLING_ORACLE_BACKLOG_CASES=30 (3,000 messages; more cases rather than
more meetings per case, so that each case's outbox page holds all its rows).
"""

from __future__ import annotations

import asyncio
import html
import os
import threading
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
from db_backends import POSTGRES_ENABLED
from litestar.testing import AsyncTestClient
from mail_fixtures import Client, make_dispatcher, to
from processes import ServiceProcess, postgres_database, service_env
from smtp_server import Mailbox, SmtpServer

from coordination.access import users
from coordination.app import create_app
from coordination.clock import Clock
from coordination.context import ServiceContext
from coordination.domain import UserRole
from coordination.levels import Level
from coordination.schemas import UserIn
from coordination.settings import Settings
from notifications.dispatcher import Dispatcher

OSLO = ZoneInfo("Europe/Oslo")
BACKLOG_CASES = int(os.environ.get("SAMHANDLING_ORACLE_BACKLOG_CASES", "3"))
MEETINGS_PER_CASE = 10
GOALS = "Oppmøte minst 90 prosent de neste tolv ukene"
MEASURE = "Miljøterapeut hjemme"
AGENDA = "Oppfølging av skolefravær"
ROLES = {"mother": ("parent", "mona"), "father": ("parent", "per"), "teacher": ("school_contact", "siri"),
         "nurse": ("public_health_nurse", "hanne"), "nav": ("nav_adviser", "nils")}
DOMAINS = {"mother": "example.org", "father": "example.org", "teacher": "skole.example.org",
           "nurse": "helse.example.org", "nav": "nav.example.org"}


def oslo(day: str, clock_time: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{clock_time}").replace(tzinfo=OSLO)


# --- a relay that can hold, count, refuse and hang up --------------------------------------------

@dataclass
class Asked:
    """One RCPT the relay was asked, and whether the test's change had committed by then."""

    address: str
    after_change: bool


@dataclass
class Relay(Mailbox):
    """The shared aiosmtpd handler with the hooks these tests need. The handler runs on the
    server's own thread and loop; its hold waits in a worker thread so that other sessions go on."""

    hold_at: int | None = None  # hold the DATA that would make this many arrivals
    held: bool = False
    release: threading.Event = field(default_factory=threading.Event)
    changed: bool = False  # set by the test once its change has committed
    asked: list[Asked] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)  # answered 550 at RCPT
    per_session: int | None = None  # hang up after this many messages in one session
    hang_up: str = "421"  # "421": refuse the next MAIL with 421 and close; "drop": close after DATA
    on_arrival: Any = None  # called with the arrival count after each accepted message
    hung_up: int = 0  # sessions the relay ended itself
    #: "drop": messages taken on a session the relay had already decided to close; its 250 may
    #: never leave, so the sender rightly tries again (SMTP's one ambiguity, like a relay crash)
    unacknowledged: set[str] = field(default_factory=set)
    on_mail: Any = None  # called at each MAIL; what it returns is kept for that message
    mail_marks: dict[str, Any] = field(default_factory=dict)  # Message-ID → what on_mail returned
    _marks: dict[int, Any] = field(default_factory=dict)
    _sessions: Counter[int] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        super().__init__()

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          mail_options: list[str]) -> str:
        if self.per_session is not None and self._sessions[id(session)] >= self.per_session \
                and self.hang_up == "421":
            self.hung_up += 1
            asyncio.get_running_loop().call_later(0.05, server.transport.close)
            return "421 4.7.0 Too many messages in one session, closing"
        if self.on_mail is not None:
            self._marks[id(session)] = self.on_mail()
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        self.asked.append(Asked(address.lower(), self.changed))
        if address.lower() in self.refuse:
            return "550 5.1.1 No such user here"
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.hold_at is not None and len(self.arrivals) + 1 >= self.hold_at and not self.release.is_set():
            self.held = True
            await asyncio.to_thread(self.release.wait, 30)  # other sessions go on meanwhile
        answer = await super().handle_DATA(server, session, envelope)
        if id(session) in self._marks:
            self.mail_marks[str(self.arrivals[-1].message["Message-ID"])] = self._marks[id(session)]
        self._sessions[id(session)] += 1
        if self.on_arrival is not None:
            self.on_arrival(len(self.arrivals))
        if self.per_session is not None and self.hang_up == "drop" \
                and self._sessions[id(session)] > self.per_session:
            self.unacknowledged.add(str(self.arrivals[-1].message["Message-ID"]))
        elif self.per_session is not None and self.hang_up == "drop" \
                and self._sessions[id(session)] == self.per_session:
            self.hung_up += 1
            asyncio.get_running_loop().call_later(0.05, server.transport.close)
        return answer


@pytest.fixture
def relay() -> Any:
    server = SmtpServer()
    server.mailbox = Relay()
    server.up()
    try:
        yield server
    finally:
        server.down()


async def drain_all(dispatcher: Dispatcher, rounds: int = 200) -> None:
    """Drain until nothing due is left (a bound on rounds, not on time)."""
    for _ in range(rounds):
        report = await dispatcher.drain_once()
        if not report.outcomes:
            return
    raise AssertionError(f"the dispatcher still had due messages after {rounds} rounds")


async def change_while_held(relay: Relay, drained: asyncio.Task[None], change: Any) -> None:
    """Wait until the relay holds a DATA, make ``change`` (an awaitable: committed when it
    returns), mark the moment and let the relay go on; then wait for the drain to end."""
    for _ in range(4000):
        if relay.held or drained.done():
            break
        await asyncio.sleep(0.005)
    assert relay.held, "the relay was never asked for the message it should hold"
    try:
        await change
        relay.changed = True
    finally:
        relay.release.set()
    await drained


# --- cases built through the API ----------------------------------------------------------------

@dataclass
class Team:
    case_id: int
    ids: dict[str, int]
    emails: dict[str, str]


async def build_team(client: Client, people: Any, number: int, *, sectors: tuple[str, ...] = ("school", "health",
                     "nav"), levels: dict[str, str] | None = None) -> Team:
    """A case whose carers granted ``sectors`` (at ``levels``, else purpose); every person has an
    address of their own in this case."""
    headers = people.coordinator.headers
    made = await client.post("/cases", headers=headers, json={
        "reference": f"BV-2027-{number:03d}", "child_given_name": "Sara", "child_initials": "S.H.",
        "child_birth_date": "2016-03-10", "language": "nb", "aimed_at_child": True})
    assert made.status_code == 201, made.text
    case_id = made.json()["id"]
    ids, emails = {}, {}
    for who, (role, local) in ROLES.items():
        emails[who] = f"{local}{number}@{DOMAINS[who]}"
        body: dict[str, Any] = {"name": f"{local.title()} {number}", "role": role, "email": emails[who]}
        if role == "parent":
            body["daily_care"] = True
        added = await client.post(f"/cases/{case_id}/contacts", headers=headers, json=body)
        assert added.status_code == 201, added.text
        ids[who] = added.json()["id"]
    for sector in sectors:
        for carer in ("mother", "father"):
            await record_consent(client, people, case_id, ids[carer], sector, "granted",
                                 (levels or {}).get(sector, "purpose"))
    return Team(case_id, ids, emails)


async def record_consent(client: Client, people: Any, case_id: int, grantor: int, sector: str, status: str,
                         level: str = "purpose") -> None:
    body: dict[str, Any] = {"grantor_contact_id": grantor, "sector": sector, "status": status, "form": "written"}
    if status == "granted":
        body["level"] = level
    answer = await client.post(f"/cases/{case_id}/consents", headers=people.coordinator.headers, json=body)
    assert answer.status_code == 201, answer.text


async def add_meeting(client: Client, people: Any, team: Team, start: datetime, who: list[str], *,
                      minutes: int = 30, **extra: Any) -> dict[str, Any]:
    answer = await client.post(f"/cases/{team.case_id}/meetings", headers=people.coordinator.headers, json={
        "start": start.isoformat(), "end": (start + timedelta(minutes=minutes)).isoformat(), "place": "Rådhuset",
        "participant_ids": [team.ids[w] for w in who], **extra})
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def outbox(client: Client, people: Any, team: Team) -> list[dict[str, Any]]:
    answer = await client.get(f"/cases/{team.case_id}/outbox", headers=people.coordinator.headers)
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()
    return rows


async def audit(client: Client, people: Any, team: Team, action: str) -> list[dict[str, Any]]:
    """Every audit entry of the case with ``action``, page by page (the API pages by ``before_id``)."""
    found: list[dict[str, Any]] = []
    params: dict[str, int] = {"limit": 1000}
    while True:
        answer = await client.get(f"/cases/{team.case_id}/audit", headers=people.coordinator.headers, params=params)
        assert answer.status_code == 200, answer.text
        page: list[dict[str, Any]] = answer.json()
        found.extend(e for e in page if e["action"] == action)
        if len(page) < params["limit"]:
            return found
        params["before_id"] = min(e["id"] for e in page)


def message_ids(relay: Relay) -> Counter[str]:
    return Counter(str(a.message["Message-ID"]) for a in relay.arrivals)


async def assert_each_sent_arrived_once(client: Client, people: Any, teams: list[Team], relay: Relay) -> None:
    """Rule 6: every row sent arrived once, with the Message-ID its audit names; nothing else
    arrived."""
    arrived = message_ids(relay)
    doubled = {m: n for m, n in arrived.items() if n > 1}
    assert not doubled, f"delivered more than once: {doubled}"
    audited = [e["detail"]["message_id"] for t in teams for e in await audit(client, people, t, "notification.sent")]
    assert Counter(audited) == arrived
    sent = len([row for t in teams for row in await outbox(client, people, t) if row["status"] == "sent"])
    assert sent == len(relay.arrivals)


def full_text(message: EmailMessage) -> str:
    """Every part decoded (text, HTML unescaped, the calendar) with folds joined."""
    texts = [f"{key}: {value}" for key, value in message.items()]
    for part in message.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        decoded = payload.decode("utf-8")
        if part.get_content_type() == "text/html":
            decoded = html.unescape(decoded)
        texts.append(decoded.replace("\r\n ", "").replace("\n ", ""))
    return "\n".join(texts)


# --- rule 1 under load: a withdrawal while the backlog drains ---------------------------------

async def test_a_withdrawal_while_the_backlog_drains_stops_every_later_message_to_that_sector(
    client: Client, people: Any, service: ServiceContext, relay: SmtpServer
) -> None:
    """300 messages (invitations and 48-hour reminders) over three cases (long form: more), to
    the family, school, health and NAV. After the 60th arrival, one carer in the second case withdraws school
    consent: from then on its teacher is asked for nothing, each of its stopped messages is
    suppressed and audited with the reason, and everyone else gets everything once."""
    mailbox: Relay = relay.mailbox  # type: ignore[assignment]
    teams = [await build_team(client, people, n) for n in range(1, BACKLOG_CASES + 1)]
    for team in teams:
        for i in range(MEETINGS_PER_CASE):
            await add_meeting(client, people, team, oslo("2027-01-06", "10:00") + timedelta(minutes=5 * i),
                              list(ROLES), minutes=5)
    now = oslo("2027-01-04", "19:00")  # every invitation and 48-hour reminder due, before quiet hours
    service.clock.set(now)
    withdrawn = teams[1]
    mailbox.hold_at = 60
    drained = asyncio.create_task(drain_all(make_dispatcher(service, relay.port)))
    await change_while_held(mailbox, drained, record_consent(client, people, withdrawn.case_id,
                                                             withdrawn.ids["father"], "school", "withdrawn"))

    teacher = withdrawn.emails["teacher"]
    late = [a for a in mailbox.asked if a.address == teacher and a.after_change]
    assert not late, f"{len(late)} messages to the school after the withdrawal had committed"
    due = [r for t in teams for r in await outbox(client, people, t)
           if datetime.fromisoformat(r["due_at"]) <= now and r["recipient_contact_id"] is not None]
    rows = [r for r in due if r["recipient_contact_id"] in withdrawn.ids.values()]
    stopped = [r for r in rows if r["recipient_contact_id"] == withdrawn.ids["teacher"] and r["status"] != "sent"]
    assert stopped, "the withdrawal came after every message to the school had gone (nothing tested)"
    assert all(r["status"] == "suppressed" and r["suppressed_code"] == "consent_withdrawn" for r in stopped), stopped
    audited = {e["subject"]: e["detail"] for e in await audit(client, people, withdrawn, "notification.suppressed")}
    for row in stopped:
        detail = audited.get(f"outbox:{row['id']}")
        assert detail is not None and detail["code"] == "consent_withdrawn" and detail["reason"], row
    # Rule 7: the coordinator is told that the teacher still holds invitations sent before.
    if any(r["kind"] == "invitation" and r["status"] == "sent" for r in rows
           if r["recipient_contact_id"] == withdrawn.ids["teacher"]):
        alerts = await client.get(f"/cases/{withdrawn.case_id}/alerts", headers=people.coordinator.headers)
        assert any(a["kind"] == "consent_withdrawn" and "Siri 2" in a["text"] for a in alerts.json()), alerts.text
    # Nobody else was stopped: every other row of every case went out, each once.
    others = [r for r in due if r not in stopped]
    assert len(others) + len(stopped) == 2 * BACKLOG_CASES * MEETINGS_PER_CASE * len(ROLES), [
        (r["kind"], r["recipient_contact_id"], r["recipient_user_id"], r["status"], r["due_at"]) for r in others
        if r["kind"] not in ("invitation", "reminder")]
    assert all(r["status"] == "sent" for r in others), Counter(r["status"] for r in others)
    await assert_each_sent_arrived_once(client, people, teams, mailbox)


# --- rule 10 (and the address): decided when the message is sent --------------------------------

async def test_an_address_changed_while_queued_is_used_for_every_later_message(
    client: Client, people: Any, service: ServiceContext, relay: SmtpServer
) -> None:
    """DESIGN.md: who the recipient is, is decided at send time. The mother's and the teacher's
    addresses change after the third arrival: nothing more is asked for the old ones, and their
    remaining messages go to the new ones."""
    mailbox: Relay = relay.mailbox  # type: ignore[assignment]
    team = await build_team(client, people, 1)
    for i in range(8):
        await add_meeting(client, people, team, oslo("2027-01-11", "09:00") + timedelta(hours=i), list(ROLES))
    mailbox.hold_at = 3
    new = {who: f"ny.{team.emails[who]}" for who in ("mother", "teacher")}

    async def move() -> None:
        for who, address in new.items():
            answer = await client.patch(f"/cases/{team.case_id}/contacts/{team.ids[who]}",
                                        headers=people.coordinator.headers, json={"email": address})
            assert answer.status_code == 200, answer.text

    drained = asyncio.create_task(drain_all(make_dispatcher(service, relay.port)))
    await change_while_held(mailbox, drained, move())
    for who, address in new.items():
        old = team.emails[who]
        assert not [a for a in mailbox.asked if a.address == old and a.after_change], f"{who}'s old address used"
        assert sum(1 for a in mailbox.arrivals if to(a) == address) >= 1, f"nothing reached {who}'s new address"
        assert sum(1 for a in mailbox.arrivals if to(a) in (old, address)) == 8, who
    await assert_each_sent_arrived_once(client, people, [team], mailbox)


async def test_family_mail_batched_with_partner_mail_at_20_59_waits_until_seven(
    client: Client, people: Any, service: ServiceContext, relay: SmtpServer, clock: Clock
) -> None:
    """Rule 10: invitations queued at 20:59 Oslo, partners' first and the family's after them,
    all due together. The first mail is accepted as the clock reaches 21:00: from then no
    family mail may start until 07:00, the partners' go on; at 07:00 the family's go, once."""
    mailbox: Relay = relay.mailbox  # type: ignore[assignment]
    team = await build_team(client, people, 1)
    clock.set(oslo("2027-01-04", "20:59"))
    for i in range(4):
        await add_meeting(client, people, team, oslo("2027-01-12", "09:00") + timedelta(hours=i),
                          ["teacher", "nurse", "nav"])
    family_meeting = await add_meeting(client, people, team, oslo("2027-01-12", "14:00"), list(ROLES))
    family = {team.emails["mother"], team.emails["father"]}
    nine_pm = oslo("2027-01-04", "21:00")
    flipped: list[int] = []

    def at_first_arrival(count: int) -> None:
        if not flipped:
            flipped.append(count)
            clock.set(nine_pm)
            mailbox.changed = True

    mailbox.on_arrival = at_first_arrival
    dispatcher = make_dispatcher(service, relay.port)
    await drain_all(dispatcher)
    assert not [a for a in mailbox.asked if a.address in family and a.after_change], "family mail after 21:00"
    held = [r for r in await outbox(client, people, team)
            if r["recipient_contact_id"] in (team.ids["mother"], team.ids["father"]) and r["status"] != "sent"]
    assert held, "every family mail went before 21:00 (nothing tested)"
    partners = {team.emails[w] for w in ("teacher", "nurse", "nav")}
    assert sum(1 for a in mailbox.arrivals if to(a) in partners) == 15
    clock.set(oslo("2027-01-05", "06:59:59"))
    await drain_all(dispatcher)
    assert not [a for a in mailbox.arrivals if to(a) in family], "family mail before 07:00"
    clock.set(oslo("2027-01-05", "07:00"))
    await drain_all(dispatcher)
    for address in family:
        assert sum(1 for a in mailbox.arrivals if to(a) == address) == 1, address
    assert family_meeting["uid"]
    await assert_each_sent_arrived_once(client, people, [team], mailbox)


async def test_a_grant_that_ends_while_the_backlog_drains_stops_every_later_message_to_that_sector(
    client: Client, people: Any, service: ServiceContext, relay: SmtpServer, clock: Clock
) -> None:
    """Rule 1 with only the clock moving: the mother's school grant is valid until 12:00 Oslo; 40
    invitations are due at 11:59. The first is accepted as the clock reaches 12:00: from then on
    nothing may start towards the school (the grant is no longer in force — half-open period),
    and the teacher's remaining invitations are stopped and audited; the others arrive once."""
    mailbox: Relay = relay.mailbox  # type: ignore[assignment]
    team = await build_team(client, people, 1, sectors=("health", "nav"))
    noon = oslo("2027-01-04", "12:00")
    await record_consent(client, people, team.case_id, team.ids["father"], "school", "granted")
    body = {"grantor_contact_id": team.ids["mother"], "sector": "school", "status": "granted", "form": "written",
            "level": "purpose", "valid_until": noon.isoformat()}
    granted = await client.post(f"/cases/{team.case_id}/consents", headers=people.coordinator.headers, json=body)
    assert granted.status_code == 201, granted.text
    clock.set(noon - timedelta(minutes=1))
    for i in range(8):
        await add_meeting(client, people, team, oslo("2027-01-12", "09:00") + timedelta(hours=i), list(ROLES))

    def at_first_arrival(count: int) -> None:
        if not mailbox.changed:
            clock.set(noon)
            mailbox.changed = True

    mailbox.on_arrival = at_first_arrival
    await drain_all(make_dispatcher(service, relay.port))
    late = [a for a in mailbox.asked if a.address == team.emails["teacher"] and a.after_change]
    assert not late, f"{len(late)} messages to the school after its consent had ended"
    rows = [r for r in await outbox(client, people, team) if r["kind"] == "invitation"]
    stopped = [r for r in rows if r["recipient_contact_id"] == team.ids["teacher"] and r["status"] != "sent"]
    assert stopped, "every message to the school went before noon (nothing tested)"
    assert all(r["status"] == "suppressed" and r["suppressed_code"] for r in stopped), stopped
    audited = {e["subject"] for e in await audit(client, people, team, "notification.suppressed")}
    assert {f"outbox:{r['id']}" for r in stopped} <= audited
    assert all(r["status"] == "sent" for r in rows if r not in stopped)
    await assert_each_sent_arrived_once(client, people, [team], mailbox)


async def test_the_audit_records_when_the_relay_took_each_message_not_when_the_batch_began(
    client: Client, people: Any, service: ServiceContext, relay: SmtpServer, clock: Clock
) -> None:
    """Rule 9 and issue 12 (hole 10): ``notification.sent`` carries the time the relay accepted the
    message. The relay moves the clock a minute on at every MAIL; each message's audit time (and
    its outbox ``sent_at``) can then be no earlier than the minute its own SMTP conversation
    began — a time taken when the batch was claimed or gated would be."""
    mailbox: Relay = relay.mailbox  # type: ignore[assignment]
    team = await build_team(client, people, 1)
    for i in range(4):
        await add_meeting(client, people, team, oslo("2027-01-11", "09:00") + timedelta(hours=i),
                          ["teacher", "nurse", "nav"])
    began = clock.now()

    def next_minute() -> datetime:
        clock.advance(timedelta(minutes=1))
        return clock.now()

    mailbox.on_mail = next_minute
    await drain_all(make_dispatcher(service, relay.port))
    assert len(mailbox.mail_marks) == 12
    sent = {e["detail"]["message_id"]: datetime.fromisoformat(e["at"])
            for e in await audit(client, people, team, "notification.sent")}
    rows = {r["id"]: r for r in await outbox(client, people, team)}
    by_outbox = {e["detail"]["message_id"]: rows[int(e["subject"].split(":")[1])]
                 for e in await audit(client, people, team, "notification.sent")}
    for message_id, mail_began in mailbox.mail_marks.items():
        assert sent[message_id] >= mail_began, (message_id, sent[message_id], mail_began, began)
        sent_at = by_outbox[message_id]["sent_at"]
        assert sent_at is not None and datetime.fromisoformat(sent_at) >= mail_began, (message_id, sent_at)


# --- rule 3: one meeting, three levels, rendered side by side ----------------------------------

async def test_one_meeting_at_three_levels_never_leaks_the_higher_text_into_the_lower(
    client: Client, people: Any, service: ServiceContext, relay: SmtpServer, clock: Clock
) -> None:
    """E-mail cap ``content``. School may learn content, NAV purpose, health logistics. The
    teacher's invitation (rendered first) holds the plan's goals; NAV's must hold no goal or
    measure; the nurse's not even the agenda headline or the kind of meeting. The same for the
    48-hour reminders, which need purpose at most. Every part of the mail, decoded."""
    mailbox: Relay = relay.mailbox  # type: ignore[assignment]
    team = await build_team(client, people, 1, levels={"school": "content", "nav": "purpose",
                                                       "health": "logistics"})
    plan = await client.put(f"/cases/{team.case_id}/plan", headers=people.coordinator.headers, json={
        "start_date": "2027-01-04", "expected_end": "2027-12-17", "goals": GOALS,
        "measures": [{"what": MEASURE, "how_often": "2x/uke"}], "member_ids": [team.ids["mother"]]})
    assert plan.status_code == 200, plan.text
    start = oslo("2027-01-11", "09:00")
    await add_meeting(client, people, team, start, ["teacher", "nav", "nurse", "mother"], agenda=AGENDA,
                      kind="startup")
    capped = ServiceContext(replace(service.settings, email_level_cap=Level("content")), service.engine,
                            service.sessions, service.clock)
    dispatcher = make_dispatcher(capped, relay.port)
    await drain_all(dispatcher)
    clock.set(start - timedelta(hours=47))
    await drain_all(dispatcher)

    def mails(who: str) -> list[str]:
        found = [full_text(a.message) for a in mailbox.arrivals if to(a) == team.emails[who]]
        assert len(found) == 2, (who, len(found))  # the invitation and the reminder
        return found

    teacher_invitation = mails("teacher")[0]
    assert GOALS in teacher_invitation, "the teacher's invitation was not at content (nothing tested)"
    for text in mails("nav"):
        assert GOALS not in text and MEASURE not in text
    assert AGENDA in mails("nav")[0], "NAV's invitation was not at purpose (nothing tested)"
    for text in mails("nurse"):
        for secret in (GOALS, MEASURE, AGENDA, "Siri 1", "Nils 1", "Mona 1"):  # rule 8: only themselves
            assert secret not in text, secret
        assert "oppstart" not in text.casefold()
    for text in mails("teacher")[1:]:
        assert GOALS not in text and MEASURE not in text, "a reminder above purpose"
    await assert_each_sent_arrived_once(client, people, [team], mailbox)


def answer_path(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    link = next(word for word in str(body.get_content()).split() if "/answer/" in word)
    return link[link.index("/answer/"):].rstrip(".,)>")


def calendar_of(message: EmailMessage) -> Any:
    for part in message.walk():
        payload = part.get_payload(decode=True)
        if part.get_content_type() == "text/calendar" and isinstance(payload, bytes):
            return icalendar.Calendar.from_ical(payload).walk("VEVENT")[0]
    raise AssertionError("no calendar part")


async def test_what_is_the_recipients_own_is_never_shared_by_a_cached_rendering(
    client: Client, people: Any, service: ServiceContext, relay: SmtpServer
) -> None:
    """Five recipients of one meeting at one level and language: each invitation has the
    recipient's own answer link and the recipient among the calendar's attendees with RSVP; the
    father's link answers for the father only. Then the place changes: every update carries the
    new place (text and LOCATION), not the old, with a higher SEQUENCE and the same answer link
    as the recipient's invitation (one link for the invitation's life)."""
    mailbox: Relay = relay.mailbox  # type: ignore[assignment]
    team = await build_team(client, people, 1)
    held = await add_meeting(client, people, team, oslo("2027-01-11", "09:00"), list(ROLES))
    dispatcher = make_dispatcher(service, relay.port)
    await drain_all(dispatcher)
    invitations = {to(a): a.message for a in mailbox.arrivals}
    assert set(invitations) == set(team.emails.values())
    links = {address: answer_path(m) for address, m in invitations.items()}
    assert len(set(links.values())) == len(links), "two recipients share an answer link"
    for address, message in invitations.items():
        attendees = calendar_of(message).get("ATTENDEE")
        mine = [a for a in (attendees if isinstance(attendees, list) else [attendees])
                if str(a).lower() == f"mailto:{address}"]
        assert mine and mine[0].params.get("RSVP") == "TRUE", address
    answered = await client.post(links[team.emails["father"]], data={"answer": "accepted"})
    assert answered.status_code == 200, answered.text
    listed = await client.get(f"/cases/{team.case_id}/meetings", headers=people.coordinator.headers)
    answers = {p["contact_id"]: p["answer"] for m in listed.json() if m["id"] == held["id"]
               for p in m["participants"]}
    assert answers[team.ids["father"]] == "accepted"
    assert [a for c, a in answers.items() if c != team.ids["father"]] == ["needs_action"] * 4, answers

    before = len(mailbox.arrivals)
    moved = await client.put(f"/cases/{team.case_id}/meetings/{held['id']}", headers=people.coordinator.headers,
                             json={"place": "Helsestasjonen, 2. etasje"})
    assert moved.status_code == 200, moved.text
    await drain_all(dispatcher)
    updates = {to(a): a.message for a in mailbox.arrivals[before:]}
    assert set(updates) == set(team.emails.values())
    for address, message in updates.items():
        event = calendar_of(message)
        assert "Helsestasjonen" in str(event["LOCATION"]) and "Helsestasjonen" in full_text(message)
        assert "Rådhuset" not in full_text(message), address
        assert int(event["SEQUENCE"]) > int(calendar_of(invitations[address])["SEQUENCE"])
        assert answer_path(message) == links[address], address
    await assert_each_sent_arrived_once(client, people, [team], mailbox)


# --- rule 6 against a relay with limits ----------------------------------------------------------

@pytest.mark.parametrize("hang_up", ["421", "drop"])
async def test_a_relay_that_hangs_up_every_few_messages_gets_each_message_once(
    client: Client, people: Any, service: ServiceContext, relay: SmtpServer, clock: Clock, hang_up: str
) -> None:
    """The relay takes 3 messages per session (fewer than the dispatcher was seen to send in one,
    4), then refuses the next MAIL with 421 and closes, or just closes. 30 invitations: each
    arrives once, with its own Message-ID, none dead."""
    mailbox: Relay = relay.mailbox  # type: ignore[assignment]
    mailbox.per_session, mailbox.hang_up = 3, hang_up
    team = await build_team(client, people, 1)
    for i in range(6):
        await add_meeting(client, people, team, oslo("2027-01-11", "09:00") + timedelta(hours=i), list(ROLES))
    dispatcher = make_dispatcher(service, relay.port)
    for _ in range(40):
        await drain_all(dispatcher)
        rows = await outbox(client, people, team)
        if all(r["status"] != "pending" for r in rows if r["kind"] == "invitation"):
            break
        clock.advance(timedelta(minutes=5))
    invitations = [r for r in await outbox(client, people, team) if r["kind"] == "invitation"]
    assert Counter(r["status"] for r in invitations) == {"sent": 30}
    arrived = message_ids(mailbox)
    assert len(arrived) == 30
    # Sent again only what the relay took and then hung up on before its 250 (same Message-ID).
    assert {m for m, n in arrived.items() if n > 1} <= mailbox.unacknowledged
    audited = [e["detail"]["message_id"] for e in await audit(client, people, team, "notification.sent")]
    assert Counter(audited) == Counter(set(arrived))


async def test_one_recipient_refused_for_good_is_dead_and_alerted_and_the_others_arrive(
    client: Client, people: Any, service: ServiceContext, relay: SmtpServer
) -> None:
    """The relay answers 550 for the nurse's address only, among 15 invitations: her three are
    dead, each with its own alert to the coordinator; the other twelve arrive once."""
    mailbox: Relay = relay.mailbox  # type: ignore[assignment]
    team = await build_team(client, people, 1)
    mailbox.refuse = {team.emails["nurse"]}
    for i in range(3):
        await add_meeting(client, people, team, oslo("2027-01-11", "09:00") + timedelta(hours=i), list(ROLES))
    await drain_all(make_dispatcher(service, relay.port))
    invitations = [r for r in await outbox(client, people, team) if r["kind"] == "invitation"]
    nurse = [r for r in invitations if r["recipient_contact_id"] == team.ids["nurse"]]
    assert [r["status"] for r in nurse] == ["dead"] * 3
    assert Counter(r["status"] for r in invitations if r not in nurse) == {"sent": 12}
    alerts = await client.get(f"/cases/{team.case_id}/alerts", headers=people.coordinator.headers)
    assert alerts.status_code == 200, alerts.text
    failed = [a["detail"]["outbox"] for a in alerts.json() if a["kind"] == "notification_failed"
              and a["detail"].get("contact") == team.ids["nurse"]]
    assert sorted(failed) == sorted(r["id"] for r in nurse), alerts.json()
    assert sorted(to(a) for a in mailbox.arrivals) == sorted(
        team.emails[w] for w in ROLES if w != "nurse" for _ in range(3))
    await assert_each_sent_arrived_once(client, people, [team], mailbox)


# --- rule 1 across instances: the change is made by another process -----------------------------

@pytest.mark.skipif(not POSTGRES_ENABLED, reason="SAMHANDLING_TEST_POSTGRES=off: PostgreSQL only")
def test_a_withdrawal_through_another_instance_stops_the_running_dispatcher(tmp_path: Path) -> None:
    """The dispatcher runs in ``samhandling serve`` (B, real clock); the withdrawal is made through
    another instance (A, an app in the test process) while B's relay holds its 20th message.
    Nothing more may start towards that sector after A's commit, whatever B holds in memory.
    Partners only (the real clock may be in the family's quiet hours): 3 cases × 10 meetings ×
    3 partners."""
    with postgres_database() as url:
        relay = SmtpServer()
        relay.mailbox = Relay(hold_at=20)
        relay.up()
        try:
            asyncio.run(_withdraw_through_a(url, relay, tmp_path))
        finally:
            relay.down()


async def _withdraw_through_a(url: str, relay: SmtpServer, tmp_path: Path) -> None:
    mailbox: Relay = relay.mailbox  # type: ignore[assignment]
    people = await _coordinator(url)
    settings = replace(Settings(), database_url=url, dispatcher_enabled=False, mail_folder=tmp_path / "mail",
                       public_base_url="http://testserver")
    async with AsyncTestClient(app=create_app(settings, Clock())) as a:
        teams = [await build_team(a, people, n) for n in (1, 2, 3)]
        for team in teams:
            for i in range(10):
                await add_meeting(a, people, team, oslo("2027-06-07", "09:00") + timedelta(hours=i),
                                  ["teacher", "nurse", "nav"])
        instance_b = ServiceProcess(service_env(url, relay.port), tmp_path / "b.log").start()
        try:
            for _ in range(1200):
                if mailbox.held:
                    break
                await asyncio.sleep(0.05)
            assert mailbox.held, f"B never reached the 20th message:\n{instance_b.tail()}"
            try:
                await record_consent(a, people, teams[1].case_id, teams[1].ids["father"], "school", "withdrawn")
                mailbox.changed = True
            finally:
                mailbox.release.set()
            for _ in range(1200):
                rows = [r for t in teams for r in await outbox(a, people, t) if r["kind"] == "invitation"]
                if all(r["status"] in ("sent", "suppressed", "dead") for r in rows):
                    break
                await asyncio.sleep(0.1)
        finally:
            instance_b.stop()
        teacher = teams[1].emails["teacher"]
        late = [x for x in mailbox.asked if x.address == teacher and x.after_change]
        assert not late, f"{len(late)} messages to the school after the withdrawal committed through A"
        stopped = [r for r in rows if r["recipient_contact_id"] == teams[1].ids["teacher"] and r["status"] != "sent"]
        assert stopped, "every message to the school went before the withdrawal (nothing tested)"
        assert all(r["status"] == "suppressed" for r in stopped), stopped
        assert all(r["status"] == "sent" for r in rows if r not in stopped), Counter(r["status"] for r in rows)
        await assert_each_sent_arrived_once(a, people, teams, mailbox)


async def _coordinator(url: str) -> Any:
    """A coordinator in a unit of a database the ``people`` fixture does not reach."""
    context = ServiceContext.create(Settings(database_url=url))
    try:
        async with context.transaction() as session:
            unit = await users.get_or_create_unit(session, "Enhet A", context.now())
            assert unit.id is not None
            made = await users.create_user(session, unit.id, UserIn(name="Kari", role=UserRole.COORDINATOR),
                                           context.now())
    finally:
        await context.engine.dispose()
    return SimpleNamespace(coordinator=SimpleNamespace(headers={"Authorization": f"Bearer {made.token}"}))
