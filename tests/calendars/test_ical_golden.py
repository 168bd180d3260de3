"""Golden files and independent-parser agreement, over the same representative cases.

The golden files are the exact bytes clients receive, reviewed in diffs; rerun with
``UPDATE_GOLDEN=1`` to rewrite them after an intended change. Every golden file is
then read by three parsers that share no code with us or each other: ical.js (the
parser Thunderbird uses, run with Node), vobject (Radicale's) and icalendar. Each
must see exactly the events we meant: UIDs, instants in UTC, status, text, SEQUENCE
and attendee count.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import icalendar
import pytest
import vobject

from calendars.events import Attendee, CalendarEvent, EventStatus, PartStat
from calendars.ical import render_event, render_feed, render_itip, sanitize_text

GOLDEN_DIR = Path(__file__).parent / "golden"
OSLO = ZoneInfo("Europe/Oslo")
CHANGED = datetime(2026, 1, 5, 8, 30, tzinfo=UTC)
ORGANIZER = "saksbehandler@kommune.example"


def oslo(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """An Oslo wall time as the UTC instant the service stores."""
    return datetime(year, month, day, hour, minute, tzinfo=OSLO).astimezone(UTC)


def meeting(uid: str, summary: str, start: datetime, end: datetime, **fields: object) -> CalendarEvent:
    event = CalendarEvent(
        uid=uid,
        sequence=0,
        last_modified=CHANGED,
        summary=summary,
        start=start,
        end=end,
        organizer_email=ORGANIZER,
        organizer_name="Kari Nordmann",
    )
    return replace(event, **fields)  # type: ignore[arg-type]


def deadline(uid: str, summary: str, day: date) -> CalendarEvent:
    return CalendarEvent(uid=uid, sequence=0, last_modified=CHANGED, summary=summary, all_day=day)


TEAM = (
    Attendee("Kari Nordmann", ORGANIZER, PartStat.ACCEPTED),
    Attendee("Mor (A.B.)", "mor@familie.example", PartStat.ACCEPTED),
    Attendee("Kontaktlærer", "laerer@skole.example", PartStat.NEEDS_ACTION, rsvp=True),
    Attendee("Tolk"),
    Attendee("Tillitsperson", partstat=PartStat.TENTATIVE),
)

CASE_FEED = [
    meeting(
        "m-0001@samhandling.example",
        "Oppstartsmøte – sak 2026/17 (A.B.)",
        oslo(2026, 3, 27, 9),
        oslo(2026, 3, 27, 10, 30),
        location="Familiens hjem",
        attendees=TEAM,
    ),
    # The Monday after the last Sunday of March: the first working day of summer time.
    meeting(
        "m-0002@samhandling.example",
        "Tett oppfølging – sak 2026/17 (A.B.)",
        oslo(2026, 3, 30, 9),
        oslo(2026, 3, 30, 9, 30),
        location="Videomøte",
        url="https://mote.kommune.example/rom/2026-17",
        sequence=1,
        attendees=TEAM[:3],
    ),
    meeting(
        "m-0003@samhandling.example",
        "Mini-evaluering – sak 2026/17 (A.B.)",
        oslo(2026, 5, 17, 9),
        oslo(2026, 5, 17, 10),
        status=EventStatus.TENTATIVE,
    ),
    meeting(
        "m-0004@samhandling.example",
        "Barnesamtale – sak 2026/17 (A.B.)",
        oslo(2026, 6, 10, 13),
        oslo(2026, 6, 10, 13, 45),
        status=EventStatus.CANCELLED,
        sequence=3,
        last_modified=datetime(2026, 6, 1, 12, 0, 5, tzinfo=UTC),
    ),
    meeting(
        "m-0005@samhandling.example",
        "Hovedevaluering – sak 2026/17 (A.B.)",
        oslo(2026, 10, 23, 9),
        oslo(2026, 10, 23, 11),
        attendees=TEAM,
    ),
    # The Monday after the last Sunday of October: the first working day of winter time.
    meeting(
        "m-0006@samhandling.example",
        "Hovedevaluering – sak 2026/17 (A.B.)",
        oslo(2026, 10, 26, 9),
        oslo(2026, 10, 26, 11),
        sequence=2,
        attendees=TEAM,
    ),
]

COORDINATOR_FEED = [
    CASE_FEED[1],
    deadline("d-0001@samhandling.example", "Frist: samtykke skole utløper (sak 2026/17)", date(2026, 4, 15)),
    CASE_FEED[5],
    deadline(
        "d-0002@samhandling.example", "Pålagt tiltak når ettårsgrensen (sak 2026/9)", date(2026, 12, 31)
    ),
]

HOSTILE = "Linje 1\r\nLinje 2\rLinje 3\nNUL:\x00; komma, semikolon; bakstrek\\ og \\n bokstavelig"
HOSTILE_FEED = [
    meeting(
        "m-0100@samhandling.example",
        HOSTILE,
        oslo(2026, 2, 3, 14),
        oslo(2026, 2, 3, 15),
        location="Møterom «Fjord» – " + "æøå ÆØÅ " * 40,
        description=(
            "RTL: \u200fمرحبا\u200e / \u202eevil\u202c; emoji: 🙂👩\u200d👧🇳🇴👍🏽; "
            "kombinert: e\u0301; tab:\tslutt; DEL:\x7f C1:\x85\x9b; LS:\u2028PS:\u2029; "
            "injeksjon:\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:evil\r\n"
            "surrogat:\ud800; " + "🙂" * 60
        ),
        url='https://møte.kommune.example/rom 1?navn=Kari Nordmann&sak=2026/17#"x"',
        organizer_name='Kari "Kaja" Nordmann; Barnevern: Vest, Team 2',
        attendees=(
            Attendee('Ola "Olsen"\r\nBCC: x@y', "ola@familie.example", PartStat.DECLINED, rsvp=True),
            Attendee("Trine ^n Tolk ^' ^^", None),
            Attendee("\u200fمحمد\u200e 🙂", None),
        ),
    ),
]

EDGE_FEED = [
    # 02:30 on the night summer time ends exists twice; both must keep their instant.
    meeting(
        "m-0201@samhandling.example", "Første 02:30", oslo(2026, 10, 25, 2, 30), oslo(2026, 10, 25, 2, 45)
    ),
    meeting(
        "m-0202@samhandling.example",
        "Andre 02:30",
        datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
        datetime(2026, 10, 25, 1, 45, tzinfo=UTC),
    ),
    # Spans the hour that does not exist when summer time begins.
    meeting(
        "m-0203@samhandling.example",
        "Over vårskiftet",
        datetime(2026, 3, 29, 0, 30, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
    ),
    meeting("m-0204@samhandling.example", "Over midnatt", oslo(2026, 12, 31, 23), oslo(2027, 1, 1, 1)),
    meeting("m-0205@samhandling.example", "Før reglene", oslo(1990, 9, 20, 9), oslo(1990, 9, 20, 10)),
    meeting("m-0206@samhandling.example", "Langt fram", oslo(2040, 7, 2, 9), oslo(2040, 7, 2, 10)),
    # An aware but non-UTC input is converted, not trusted as UTC.
    meeting(
        "m-0207@samhandling.example",
        "Oslo-tid inn",
        datetime(2026, 8, 12, 9, tzinfo=OSLO),
        datetime(2026, 8, 12, 10, tzinfo=OSLO),
    ),
]

INVITATION = meeting(
    "m-0006@samhandling.example",
    "Møte 26. oktober kl. 09.00",
    oslo(2026, 10, 26, 9),
    oslo(2026, 10, 26, 11),
    location="Rådhuset, møterom 3",
    description="Ring 12 34 56 78 ved spørsmål.\nSvar: https://samhandling.example/svar/abc",
    sequence=2,
    attendees=(Attendee("Mor (A.B.)", "mor@familie.example"), Attendee("Tolk")),
)


@dataclass(frozen=True)
class GoldenCase:
    name: str
    method: Literal["REQUEST", "CANCEL"] | None  # None: a feed
    events: list[CalendarEvent]
    render: Callable[[], bytes]

    @property
    def path(self) -> Path:
        return GOLDEN_DIR / f"{self.name}.ics"


def _feed(name: str, events: list[CalendarEvent], description: str | None = None) -> Callable[[], bytes]:
    return lambda: render_feed(name, [render_event(e) for e in events], description=description)


_CANCELLED = replace(INVITATION, sequence=3, last_modified=datetime(2026, 10, 1, 7, tzinfo=UTC))

CASES = [
    GoldenCase("feed_case", None, CASE_FEED, _feed("Sak 2026/17 (A.B.)", CASE_FEED, "Møter i saken")),
    GoldenCase(
        "feed_coordinator", None, COORDINATOR_FEED, _feed("Kari Nordmann – mine saker", COORDINATOR_FEED)
    ),
    GoldenCase(
        "feed_hostile", None, HOSTILE_FEED, _feed("Fiendtlig; tekst,\r\n\x00" + "x" * 90, HOSTILE_FEED)
    ),
    GoldenCase("feed_dst_edges", None, EDGE_FEED, _feed("Tidssonekanter", EDGE_FEED)),
    GoldenCase("feed_empty", None, [], _feed("Ingen møter", [])),
    GoldenCase("itip_request", "REQUEST", [INVITATION], lambda: render_itip("REQUEST", INVITATION)),
    GoldenCase("itip_cancel", "CANCEL", [_CANCELLED], lambda: render_itip("CANCEL", _CANCELLED)),
]


CASE_IDS = [case.name for case in CASES]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_output_matches_golden_file(case: GoldenCase) -> None:
    rendered = case.render()
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN_DIR.mkdir(exist_ok=True)
        case.path.write_bytes(rendered)
    assert case.path.exists(), f"{case.path} is missing; create it with UPDATE_GOLDEN=1"
    assert rendered == case.path.read_bytes(), (
        f"{case.path.name} changed; review the diff and rerun with UPDATE_GOLDEN=1"
    )


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_same_input_gives_same_bytes(case: GoldenCase) -> None:
    assert case.render() == case.render()


# --- agreement -------------------------------------------------------------------

JS_DIR = Path(__file__).parents[1] / "js"
NPM_CI = "npm ci --prefix tests/js"


@dataclass(frozen=True)
class Seen:
    """What a parser made of one VEVENT; dates for all-day events, UTC otherwise."""

    uid: str
    start: date
    end: date
    status: str
    summary: str
    location: str | None
    description: str | None
    sequence: int
    attendees: int


@dataclass(frozen=True)
class Parsed:
    method: str | None
    events: list[Seen]


def _instant(value: date) -> date:
    if isinstance(value, datetime):
        assert value.utcoffset() is not None, f"floating time {value}"
        return value.astimezone(UTC)
    return value


def expected(case: GoldenCase) -> Parsed:
    seen = []
    for event in case.events:
        if event.all_day is not None:
            start: date = event.all_day
            end: date = event.all_day + timedelta(days=1)
        else:
            assert event.start is not None and event.end is not None
            start, end = event.start.astimezone(UTC), event.end.astimezone(UTC)
        seen.append(
            Seen(
                uid=event.uid,
                start=start,
                end=end,
                status="CANCELLED" if case.method == "CANCEL" else event.status.value,
                summary=sanitize_text(event.summary),
                location=sanitize_text(event.location) if event.location else None,
                description=sanitize_text(event.description) if event.description else None,
                sequence=event.sequence,
                attendees=len(event.attendees),
            )
        )
    return Parsed(case.method, seen)


def golden_bytes(case: GoldenCase) -> bytes:
    if not case.path.exists():
        pytest.fail(f"{case.path} is missing; create it with UPDATE_GOLDEN=1")
    return case.path.read_bytes()


def parse_with_icaljs(data: bytes) -> Parsed:
    if not (JS_DIR / "node_modules" / "ical.js").is_dir():
        pytest.fail(f"ical.js is not installed: run `{NPM_CI}` in the project root first")
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js (`node` on PATH) is needed to run ical.js")
    result = subprocess.run(
        [node, str(JS_DIR / "parse_ics.mjs")], input=data, capture_output=True, check=False
    )
    if result.returncode != 0:
        pytest.fail("ical.js could not read the calendar:\n" + result.stderr.decode())
    out: dict[str, Any] = json.loads(result.stdout)

    def when(value: str, all_day: bool) -> date:
        return date.fromisoformat(value) if all_day else datetime.fromisoformat(value)

    events = [
        Seen(
            uid=e["uid"],
            start=when(e["start"], e["allDay"]),
            end=when(e["end"], e["allDay"]),
            status=e["status"],
            summary=e["summary"],
            location=e["location"],
            description=e["description"],
            sequence=e["sequence"],
            attendees=e["attendees"],
        )
        for e in out["events"]
    ]
    return Parsed(out["method"], events)


def parse_with_vobject(data: bytes) -> Parsed:
    calendar = vobject.readOne(data.decode("utf-8"))

    def text(vevent: Any, name: str) -> str | None:
        lines = vevent.contents.get(name)
        return None if lines is None else str(lines[0].value)

    events = [
        Seen(
            uid=vevent.uid.value,
            start=_instant(vevent.dtstart.value),
            end=_instant(vevent.dtend.value),
            status=vevent.status.value,
            summary=vevent.summary.value,
            location=text(vevent, "location"),
            description=text(vevent, "description"),
            sequence=int(vevent.sequence.value),
            attendees=len(vevent.contents.get("attendee", [])),
        )
        for vevent in calendar.contents.get("vevent", [])
    ]
    method = calendar.contents.get("method")
    return Parsed(None if method is None else method[0].value, events)


def parse_with_icalendar(data: bytes) -> Parsed:
    calendar = icalendar.Calendar.from_ical(data)

    def seen(vevent: Any) -> Seen:
        def text(name: str) -> str | None:
            value = vevent.get(name)
            return None if value is None else str(value)

        attendees = vevent.get("ATTENDEE", [])
        return Seen(
            uid=str(vevent["UID"]),
            start=_instant(vevent.decoded("DTSTART")),
            end=_instant(vevent.decoded("DTEND")),
            status=str(vevent["STATUS"]),
            summary=str(vevent["SUMMARY"]),
            location=text("LOCATION"),
            description=text("DESCRIPTION"),
            sequence=int(vevent["SEQUENCE"]),
            attendees=len(attendees) if isinstance(attendees, list) else 1,
        )

    method = calendar.get("METHOD")
    events = [seen(vevent) for vevent in calendar.walk("VEVENT")]
    return Parsed(None if method is None else str(method), events)


PARSERS: dict[str, Callable[[bytes], Parsed]] = {
    "ical.js": parse_with_icaljs,
    "vobject": parse_with_vobject,
    "icalendar": parse_with_icalendar,
}


@pytest.mark.parametrize("parser", PARSERS.values(), ids=PARSERS.keys())
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_independent_parser_reads_what_we_meant(case: GoldenCase, parser: Callable[[bytes], Parsed]) -> None:
    assert parser(golden_bytes(case)) == expected(case)


def test_icaljs_reads_times_through_our_vtimezone_not_as_floating() -> None:
    """Guards the guard: without the VTIMEZONE, ical.js must refuse rather than
    silently read Oslo wall time as UTC, or the agreement test would prove nothing."""
    data = golden_bytes(CASES[0])
    start = data.index(b"BEGIN:VTIMEZONE")
    end = data.index(b"END:VTIMEZONE\r\n") + len(b"END:VTIMEZONE\r\n")
    node = shutil.which("node")
    assert node is not None and (JS_DIR / "node_modules" / "ical.js").is_dir(), f"run `{NPM_CI}` first"
    result = subprocess.run(
        [node, str(JS_DIR / "parse_ics.mjs")],
        input=data[:start] + data[end:],
        capture_output=True,
        check=False,
    )
    assert result.returncode != 0
    assert b"did not resolve" in result.stderr
