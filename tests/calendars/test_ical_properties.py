"""Whatever text users type, every line stays a valid content line and a parser
reads back the same text (after sanitize_text)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import icalendar
from hypothesis import given
from hypothesis import strategies as st

from calendars.events import Attendee, CalendarEvent
from calendars.ical import render_event, render_feed, sanitize_text

# Any code point, including controls and lone surrogates, with the troublemakers
# for content lines drawn more often than chance would.
# Long texts are drawn on purpose: a line needs over 150 octets to fold twice.
TRICKY = list("\r\n\x00\x0b\x1b\x7f\x85\x9b\u2028\u2029\\;,:\"'^n \tæøÅ\u200f\u202e🙂\ud800")
chars = st.one_of(st.characters(exclude_categories=()), st.sampled_from(TRICKY))
texts = st.one_of(st.text(chars, max_size=30), st.text(chars, min_size=150, max_size=400))


def event_with(summary: str, location: str, description: str, name: str) -> CalendarEvent:
    return CalendarEvent(
        uid="m-1@samhandling.example",
        sequence=1,
        last_modified=datetime(2026, 1, 5, 8, 30, tzinfo=UTC),
        summary=summary,
        start=datetime(2026, 3, 30, 7, tzinfo=UTC),
        end=datetime(2026, 3, 30, 8, tzinfo=UTC),
        location=location,
        description=description,
        organizer_email="saksbehandler@kommune.example",
        organizer_name=name,
        attendees=(Attendee(name, "a@familie.example"), Attendee(name)),
    )


def param_text(name: str) -> str:
    """The documented replacements for what a parameter value cannot carry."""
    return sanitize_text(name).replace("\n", " ").replace('"', "'").replace("\\", "/")


@given(summary=texts, location=texts, description=texts, name=texts)
def test_any_text_gives_valid_lines_that_read_back(
    summary: str, location: str, description: str, name: str
) -> None:
    event = event_with(summary, location, description, name)
    data = render_feed("Feed", [render_event(event)])

    assert data.endswith(b"\r\n")
    assert b"\x00" not in data
    lines = data[:-2].split(b"\r\n")
    for line in lines:
        assert len(line) <= 75, line
        assert b"\r" not in line and b"\n" not in line, line
        line.decode("utf-8")  # folding never splits a character
    begins = [line for line in lines if line.startswith(b"BEGIN:")]
    assert begins == [
        b"BEGIN:VCALENDAR",
        b"BEGIN:VTIMEZONE",
        b"BEGIN:DAYLIGHT",
        b"BEGIN:STANDARD",
        b"BEGIN:VEVENT",
    ]

    vevent: Any
    (vevent,) = icalendar.Calendar.from_ical(data).walk("VEVENT")
    assert str(vevent["SUMMARY"]) == sanitize_text(summary)
    assert str(vevent.get("LOCATION", "")) == sanitize_text(location)
    assert str(vevent.get("DESCRIPTION", "")) == sanitize_text(description)
    if name:
        organizer = vevent["ORGANIZER"]
        assert str(organizer) == "mailto:saksbehandler@kommune.example"
        assert organizer.params["CN"] == param_text(name)
        assert [a.params["CN"] for a in vevent["ATTENDEE"]] == [param_text(name)] * 2


@given(text=texts)
def test_sanitize_text_keeps_what_is_printable(text: str) -> None:
    clean = sanitize_text(text)
    assert sanitize_text(clean) == clean
    assert not any(ord(c) < 0x20 and c not in "\t\n" for c in clean)
    assert not any(0x7F <= ord(c) <= 0x9F for c in clean)
    assert not any(0xD800 <= ord(c) <= 0xDFFF for c in clean)
    printable = [c for c in text if c.isprintable() and c != "\ufffd"]
    assert [c for c in clean if c.isprintable() and c != "\ufffd"] == printable
