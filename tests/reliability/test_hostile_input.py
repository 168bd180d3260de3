"""Hostile text in names, places, agendas and goals: CR/LF and NUL are refused where a line is
expected, and whatever is accepted (right-to-left overrides, line and paragraph separators,
NEL, zero-width characters, iCalendar and MIME syntax, very long lines) reaches no mail header
and no iCalendar line unescaped. Request bodies over SAMHANDLING_MAX_BODY_BYTES are refused
with 413, with or without a Content-Length."""

from __future__ import annotations

import random
import re
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import ics
import pytest
from mail_fixtures import Client, make_dispatcher
from processes import ServiceProcess, samhandling
from smtp_server import SmtpServer

from coordination.context import ServiceContext
from coordination.levels import Level

#: Accepted by the API (no C0 control characters) and hostile downstream.
HOSTILE = [
    "Mona \u202eevil\u202c Hansen", "Per\u2028Bcc: victim@example.org", "Rom\u2029DTSTART:19700101T000000Z",
    "Nel\x85BEGIN:VEVENT", "Zero\u200b\u200d\ufeffwidth", "=?utf-8?q?Subject=3A_injected?=", 'a;b,c\\d:e"f',
    "<script>alert(1)</script>", "👨‍👩‍👧 e\u0301\u0308", "ø" * 199, "END:VCALENDAR", "\u0600\u06dd\u180e\u2066x\u2069",
]
#: Refused wherever one line is expected.
BROKEN = ["Mona\r\nBcc: victim@example.org", "Mona\nHansen", "Mona\x00", "Mona\rHansen", "Tab\there", "\x1b[31mred"]
#: Characters that split lines for some readers (Python's splitlines, some mail clients).
SPLITTERS = re.compile("[\x85\u2028\u2029\x0b\x0c\x1c-\x1e]")


def _random_texts(count: int, seed: int = 20270104) -> list[str]:
    """Random lines from the corners of Unicode, reproducible by seed."""
    rng = random.Random(seed)
    ranges = [(0x20, 0x7E), (0x80, 0x24F), (0x2000, 0x206F), (0x0590, 0x06FF), (0xFE00, 0xFEFF), (0x1F300, 0x1FAFF)]
    texts = []
    for _ in range(count):
        chars = [chr(rng.randint(*rng.choice(ranges))) for _ in range(rng.randint(1, 120))]
        texts.append("".join(c for c in chars if not 0xD800 <= ord(c) <= 0xDFFF) or "x")
    return texts


@pytest.mark.parametrize("text", BROKEN)
async def test_line_breaks_and_control_characters_are_refused(client: Client, people: Any, team: Any,
                                                             text: str) -> None:
    headers = people.coordinator.headers
    attempts = [
        ("POST", f"/cases/{team.case_id}/contacts", {"name": text, "role": "parent"}),
        ("PATCH", f"/cases/{team.case_id}/contacts/{team.mother}", {"role_label": text}),
        ("POST", f"/cases/{team.case_id}/meetings", {"start": "2027-01-11T09:00:00+01:00",
                                                      "end": "2027-01-11T10:00:00+01:00",
                                                      "participant_ids": [team.mother], "place": text}),
        ("PATCH", f"/cases/{team.case_id}", {"child_given_name": text}),
        ("POST", f"/cases/{team.case_id}/feeds", {"scope": "case", "label": text}),
    ]
    for method, url, body in attempts:
        response = await client.request(method, url, json=body, headers=headers)
        assert response.status_code == 400, (method, url, response.status_code)


def _check_headers(raw: bytes) -> None:
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\x00" not in head
    for line in head.split(b"\r\n"):
        assert b"\r" not in line and b"\n" not in line, line
        assert len(line) <= 998, line[:80]
        assert all(byte < 0x80 for byte in line), f"raw non-ASCII in a header: {line[:80]!r}"
    names = {line.split(b":", 1)[0].lower() for line in head.split(b"\r\n") if line and line[:1] not in b" \t"}
    assert names <= {b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type",
                     b"content-language", b"auto-submitted", b"x-auto-response-suppress"}, names


def _calendars(message: EmailMessage) -> list[bytes]:
    found = []
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found.append(payload)
    return found


def _check_calendar(data: bytes) -> ics.Component:
    calendar = ics.parse(data)  # strict: CRLF, folded at 75 octets, no control characters
    assert not SPLITTERS.search(data.decode()), "a line separator in an iCalendar line"
    assert len(calendar.walk("VCALENDAR")) == 0 and len(calendar.walk("VEVENT")) >= 1
    for event in calendar.walk("VEVENT"):
        assert len(event.all("DTSTART")) == 1 and len(event.all("UID")) == 1 and not event.walk("VALARM")
    return calendar


def _read_back(text: str) -> str:
    """What a calendar reader should get back: line breaks of any kind as LF, no controls."""
    text = re.sub("\r\n|[\r\n\x85\u2028\u2029]", "\n", text)
    return re.sub("[\x00-\x08\x0b-\x1f\x7f-\x84\x86-\x9f]", "", text)


async def test_hostile_text_reaches_no_header_and_no_calendar_line_unescaped(
    client: Client, people: Any, team: Any, service: ServiceContext, smtp: SmtpServer
) -> None:
    headers = people.coordinator.headers
    service.settings = replace(service.settings, email_level_cap=Level.CONTENT)
    texts = HOSTILE + _random_texts(12)
    for carer in (team.mother, team.father):
        await client.post(f"/cases/{team.case_id}/consents", headers=headers, json={
            "grantor_contact_id": carer, "sector": "school", "status": "granted", "level": "content", "form": "oral"})
    goals = "Mål:\r\nBEGIN:VALARM\r\nTRIGGER:-PT5M\r\n\u2028" + "\t".join(HOSTILE)
    plan = await client.put(f"/cases/{team.case_id}/plan", headers=headers,
                            json={"start_date": "2027-01-04", "expected_end": "2027-03-31", "goals": goals})
    assert plan.status_code == 200, plan.text[:300]
    accepted: list[str] = []
    feeds = [(await client.post(f"/cases/{team.case_id}/feeds", headers=headers, json={"scope": "case"})).json()]
    for number, text in enumerate(texts):
        contact = await client.post(f"/cases/{team.case_id}/contacts", headers=headers, json={
            "name": text[:200], "role": "caseworker" if number % 2 else "school_contact", "email": f"x{number}@bv.no"})
        assert contact.status_code in (201, 400), contact.text
        if contact.status_code == 400:
            continue
        accepted.append(text[:200])
        contact_id = contact.json()["id"]
        start = f"2027-01-{11 + number % 15:02d}T09:00:00+01:00"
        created = await client.post(f"/cases/{team.case_id}/meetings", headers=headers, json={
            "start": start, "end": start.replace("T09", "T10"), "place": text[:200], "agenda": text[::-1][:200],
            "participant_ids": [team.mother, team.teacher, contact_id]})
        assert created.status_code == 201, created.text[:300]
        if number % 5 == 0:
            feed = await client.post(f"/cases/{team.case_id}/feeds", headers=headers,
                                     json={"scope": "contact", "contact_id": contact_id})
            feeds.append(feed.json())
    assert len(accepted) >= len(HOSTILE)
    await client.patch(f"/cases/{team.case_id}/contacts/{team.mother}", headers=headers,
                       json={"email": "mona@example.org", "name": HOSTILE[0]})
    dispatcher = make_dispatcher(service, smtp.port, batch_size=500)
    report = await dispatcher.drain_once()
    assert report.claimed > 0
    assert len(smtp.arrivals) >= len(accepted)
    for arrival in smtp.arrivals:
        _check_headers(arrival.raw)
        for data in _calendars(arrival.message):
            _check_calendar(data)
    for feed in feeds:
        response = await client.get(f"/feeds/{feed['token']}.ics")
        assert response.status_code == 200
        _check_calendar(response.content)
    # Escaped, not mangled: the team's feed gives every place back as it was written.
    team_feed = _check_calendar((await client.get(f"/feeds/{feeds[0]['token']}.ics")).content)
    places = {e.get("LOCATION") for e in team_feed.walk("VEVENT")}
    assert places >= {_read_back(text) for text in accepted}
    # The answer pages show the places: as text, never as markup.
    pages = []
    for arrival in smtp.arrivals:
        text = arrival.message.get_body(preferencelist=("plain",))
        link = next((w for w in text.get_content().split() if "/answer/" in w), None) if text is not None else None
        if str(arrival.message["To"]) == "mona@example.org" and link is not None:
            page = await client.get(link[link.index("/answer/"):])
            assert page.status_code == 200
            pages.append(page.text)
    assert not any("<script>alert(1)</script>" in page for page in pages)
    assert any("&lt;script&gt;alert(1)&lt;/script&gt;" in page for page in pages)


def test_bodies_over_the_limit_are_refused(tmp_path: Path) -> None:
    """Over real HTTP (the test client cannot stream a body), with and without Content-Length."""
    limit = 65536  # the documented default of SAMHANDLING_MAX_BODY_BYTES
    env = {"SAMHANDLING_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'limit.db'}",
           "SAMHANDLING_DISPATCHER_ENABLED": "false", "SAMHANDLING_LOG_LEVEL": "WARNING"}
    printed = samhandling("create-user", "--unit", "Enhet", "--name", "Kari", "--role", "coordinator", env=env)
    token = printed.rsplit("token: ", 1)[1].split()[0]
    service = ServiceProcess(env, tmp_path / "serve.log").start().wait_ready()
    try:
        with httpx.Client(base_url=service.url, timeout=30) as client:
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            created = client.post("/cases", headers=headers, json={
                "reference": "BV-1", "child_given_name": "Sara", "child_initials": "S.H.",
                "child_birth_date": "2014-03-10"})
            assert created.status_code == 201, created.text
            url = f"/cases/{created.json()['id']}/contacts"
            body = b'{"name": "' + b"a" * limit + b'", "role": "parent"}'
            form = b"answer=" + b"a" * limit
            for chunked in (False, True):
                def send(data: bytes, chunked: bool = chunked) -> Any:
                    return iter([data[i:i + 8192] for i in range(0, len(data), 8192)]) if chunked else data

                assert client.post(url, content=send(body), headers=headers).status_code == 413
                answer = client.post("/answer/" + "A" * 43, content=send(form),
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
                assert answer.status_code == 413
            assert client.post(url, json={"name": "Liten", "role": "parent"}, headers=headers).status_code == 201
    finally:
        service.stop()


def test_create_user_refuses_what_the_api_would_refuse(tmp_path: Path) -> None:
    """The command line checks a user as the API does: a name longer than its column is refused
    by name before the database sees it (PostgreSQL would refuse it with the value in its error)."""
    env = {"SAMHANDLING_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'users.db'}",
           "SAMHANDLING_LOG_LEVEL": "WARNING"}
    for args, field in ((("--unit", "Enhet", "--name", "K" * 201), "name"),
                        (("--unit", "E" * 201, "--name", "Kari"), "--unit"),
                        (("--unit", "Enhet", "--name", "Kari", "--email", "ikke-en-adresse"), "email")):
        with pytest.raises(AssertionError) as refused:
            samhandling("create-user", *args, "--role", "coordinator", env=env)
        assert field in str(refused.value) and "Traceback" not in str(refused.value)
    assert "token: " in samhandling("create-user", "--unit", "Enhet", "--name", "K" * 200, env=env)
