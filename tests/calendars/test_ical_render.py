"""What feed subscribers and invitees notice in single properties; the golden files
and parser agreement tests cover whole calendars."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
import vobject

from calendars import vtimezone
from calendars.events import Attendee, CalendarEvent, EventStatus, PartStat
from calendars.ical import (
    EUROPE_OSLO_VTIMEZONE,
    render_event,
    render_feed,
    render_itip,
)

CHANGED = datetime(2026, 1, 5, 8, 30, tzinfo=UTC)
EVENT = CalendarEvent(
    uid="m-1@samhandling.example",
    sequence=4,
    last_modified=CHANGED,
    summary="Hovedevaluering",
    start=datetime(2026, 3, 30, 7, tzinfo=UTC),
    end=datetime(2026, 3, 30, 8, tzinfo=UTC),
    organizer_email="saksbehandler@kommune.example",
    organizer_name="Kari Nordmann",
    attendees=(
        Attendee("Mor", "mor@familie.example", PartStat.ACCEPTED),
        Attendee("Lærer", "laerer@skole.example", rsvp=True),
        Attendee("Tolk"),
    ),
)


def lines(data: bytes) -> list[str]:
    """Unfolded content lines."""
    return data.decode().replace("\r\n ", "").split("\r\n")[:-1]


def with_prefix(data: bytes, prefix: str) -> list[str]:
    return [line for line in lines(data) if line.startswith(prefix)]


# --- feeds -------------------------------------------------------------------------


def test_feed_is_one_subscribable_calendar_without_method() -> None:
    data = render_feed("Sak 2026/17", [render_event(EVENT)])
    text = lines(data)
    assert text[:4] == [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Samhandling//Samhandling//NB",
        "CALSCALE:GREGORIAN",
    ]
    assert text[-1] == "END:VCALENDAR"
    assert text.count("BEGIN:VCALENDAR") == 1
    assert not with_prefix(data, "METHOD")
    assert "X-WR-CALNAME:Sak 2026/17" in text
    assert "X-WR-TIMEZONE:Europe/Oslo" in text
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT1H" in text
    assert "X-PUBLISHED-TTL:PT1H" in text
    assert data.index(EUROPE_OSLO_VTIMEZONE) < data.index(b"BEGIN:VEVENT")


def test_empty_feed_is_still_a_valid_calendar() -> None:
    """A partner without consent gets this; RFC 5545 wants at least one component."""
    data = render_feed("Ingen møter", [])
    assert EUROPE_OSLO_VTIMEZONE in data
    assert not with_prefix(data, "BEGIN:VEVENT")


@pytest.mark.parametrize(
    ("refresh", "duration"),
    [
        (timedelta(minutes=30), "PT30M"),
        (timedelta(days=1), "P1D"),
        (timedelta(days=1, hours=2, seconds=5), "P1DT2H5S"),
    ],
)
def test_refresh_interval_is_an_rfc5545_duration(refresh: timedelta, duration: str) -> None:
    text = lines(render_feed("F", [], refresh=refresh))
    assert f"REFRESH-INTERVAL;VALUE=DURATION:{duration}" in text
    assert f"X-PUBLISHED-TTL:{duration}" in text


@pytest.mark.parametrize("refresh", [timedelta(0), timedelta(hours=-1), timedelta(seconds=0.5)])
def test_refresh_interval_must_be_positive_whole_seconds(refresh: timedelta) -> None:
    with pytest.raises(ValueError, match="refresh"):
        render_feed("F", [], refresh=refresh)


def test_feed_description_is_shown_by_apple_and_rfc7986_clients() -> None:
    text = lines(render_feed("F", [], description="Møter i saken, 2026"))
    assert "X-WR-CALDESC:Møter i saken\\, 2026" in text
    assert "DESCRIPTION:Møter i saken\\, 2026" in text


def test_feed_is_assembled_from_cached_fragments() -> None:
    fragment = render_event(EVENT)
    other = render_event(replace(EVENT, uid="m-2@samhandling.example"))
    assert render_feed("F", [fragment, other]) == render_feed(
        "F", [render_event(EVENT), render_event(replace(EVENT, uid="m-2@samhandling.example"))]
    )
    assert render_feed("F", [fragment, other]).count(fragment) == 1


def test_feed_refuses_anything_but_event_fragments() -> None:
    with pytest.raises(ValueError, match="render_event"):
        render_feed("F", [render_itip("REQUEST", EVENT)])


# --- events ------------------------------------------------------------------------


def test_timed_event_is_in_oslo_time_with_utc_stamps() -> None:
    text = lines(render_event(EVENT))
    assert text[0] == "BEGIN:VEVENT" and text[-1] == "END:VEVENT"
    assert "UID:m-1@samhandling.example" in text
    assert "DTSTART;TZID=Europe/Oslo:20260330T090000" in text
    assert "DTEND;TZID=Europe/Oslo:20260330T100000" in text
    assert "DTSTAMP:20260105T083000Z" in text
    assert "LAST-MODIFIED:20260105T083000Z" in text
    assert "SEQUENCE:4" in text
    assert "STATUS:CONFIRMED" in text
    assert "TRANSP:OPAQUE" in text
    assert "CLASS:PRIVATE" in text


def test_all_day_deadline_spans_one_date_and_does_not_block_time() -> None:
    deadline = CalendarEvent(
        uid="d-1", sequence=0, last_modified=CHANGED, summary="Frist", all_day=date(2026, 12, 31)
    )
    text = lines(render_event(deadline))
    assert "DTSTART;VALUE=DATE:20261231" in text
    assert "DTEND;VALUE=DATE:20270101" in text
    assert "TRANSP:TRANSPARENT" in text


def test_cancelled_event_stays_visible_but_frees_the_time() -> None:
    text = lines(render_event(replace(EVENT, status=EventStatus.CANCELLED)))
    assert "STATUS:CANCELLED" in text
    assert "TRANSP:TRANSPARENT" in text


def test_optional_text_properties_are_left_out_when_empty() -> None:
    text = "\n".join(lines(render_event(EVENT)))
    assert "LOCATION" not in text and "DESCRIPTION" not in text and "URL" not in text


def test_organizer_is_a_bare_mailto_with_quoted_name() -> None:
    assert with_prefix(render_event(EVENT), "ORGANIZER") == [
        'ORGANIZER;CN="Kari Nordmann":mailto:saksbehandler@kommune.example'
    ]
    assert not with_prefix(render_event(replace(EVENT, organizer_email=None)), "ORGANIZER")


def test_attendees_carry_answer_role_and_rsvp_only_when_asked() -> None:
    attendees = with_prefix(render_event(EVENT), "ATTENDEE")
    assert attendees[0] == (
        'ATTENDEE;CN="Mor";ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED:mailto:mor@familie.example'
    )
    assert attendees[1] == (
        'ATTENDEE;CN="Lærer";ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:laerer@skole.example'
    )


def test_attendees_without_address_get_distinct_stable_urns() -> None:
    """Thunderbird keeps only one attendee per address, so two interpreters without
    e-mail must not share one."""
    two = replace(EVENT, attendees=(Attendee("Tolk"), Attendee("Tolk")))
    first = with_prefix(render_event(two), "ATTENDEE")
    assert all(line.split(":", 1)[1].startswith("urn:uuid:") for line in first)
    assert len(set(first)) == 2
    assert with_prefix(render_event(two), "ATTENDEE") == first
    moved = replace(two, uid="m-other@samhandling.example")
    assert set(with_prefix(render_event(moved), "ATTENDEE")).isdisjoint(first)


def test_names_cannot_break_out_of_their_parameter() -> None:
    hostile = replace(EVENT, organizer_name='Kari "K"\r\nATTENDEE:mailto:evil@x; a, b: c')
    organizer = with_prefix(render_event(hostile), "ORGANIZER")
    assert organizer == [
        "ORGANIZER;CN=\"Kari 'K' ATTENDEE:mailto:evil@x; a, b: c\":mailto:saksbehandler@kommune.example"
    ]
    assert len(with_prefix(render_event(hostile), "ATTENDEE")) == 3


def test_text_cannot_inject_lines_or_components() -> None:
    hostile = replace(EVENT, description="a\r\nEND:VEVENT\r\nBEGIN:VEVENT\nUID:evil\rX\x00Y; z, \\")
    data = render_event(hostile)
    assert with_prefix(data, "BEGIN:VEVENT") == ["BEGIN:VEVENT"]
    assert with_prefix(data, "DESCRIPTION") == [
        "DESCRIPTION:a\\nEND:VEVENT\\nBEGIN:VEVENT\\nUID:evil\\nXY\\; z\\, \\\\"
    ]


def test_url_is_percent_encoded_not_text_escaped() -> None:
    data = render_event(replace(EVENT, url="https://møte.example/rom 1?a=b,c;d"))
    assert with_prefix(data, "URL") == ["URL:https://m%C3%B8te.example/rom%201?a=b,c;d"]


def test_lines_fold_at_75_octets() -> None:
    exact = replace(EVENT, summary="x" * 67)  # "SUMMARY:" + 67 = 75 octets
    assert b"\r\nSUMMARY:" + b"x" * 67 + b"\r\n" in render_event(exact)
    longer = replace(EVENT, summary="x" * 68)
    assert b"\r\nSUMMARY:" + b"x" * 67 + b"\r\n x\r\n" in render_event(longer)
    wide = replace(EVENT, summary="ø" * 40)  # 2 octets each: never cut in half
    assert b"\r\nSUMMARY:" + "ø".encode() * 33 + b"\r\n " + "ø".encode() * 7 + b"\r\n" in (render_event(wide))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"start": datetime(2026, 3, 30, 9), "end": datetime(2026, 3, 30, 10)}, "aware"),
        ({"last_modified": datetime(2026, 1, 5)}, "aware"),
        ({"all_day": date(2026, 3, 30)}, "all-day and timed"),
        ({"start": None}, "needs start and end"),
        ({"end": datetime(2026, 3, 30, 6, tzinfo=UTC)}, "end after"),
        ({"end": datetime(2026, 3, 30, 7, tzinfo=UTC)}, "end after"),
        ({"sequence": -1}, "SEQUENCE"),
        ({"uid": ""}, "UID"),
    ],
)
def test_inconsistent_events_are_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render_event(replace(EVENT, **change))  # type: ignore[arg-type]


# --- time zone ---------------------------------------------------------------------


def test_vtimezone_is_the_yearly_rrule_form_outlook_reads() -> None:
    text = lines(EUROPE_OSLO_VTIMEZONE)
    assert "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU" in text
    assert "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU" in text
    assert "TZID:Europe/Oslo" in text and "X-LIC-LOCATION:Europe/Oslo" in text
    assert not [line for line in text if line.startswith("RDATE")]


def test_vtimezone_rules_agree_with_the_tz_database() -> None:
    """Expanded by vobject (with dateutil's rrule), independently of our own code,
    around every transition and at noon each day from 2024 to 2035."""
    calendar = vobject.readOne(render_feed("F", []).decode())
    ours = calendar.vtimezone.gettzinfo()
    instants = [datetime(2024, 1, 1, 12, tzinfo=UTC) + timedelta(days=d) for d in range(4383)]
    for year in range(2024, 2036):
        for begin in vtimezone._summer_time(year):
            instants += [begin + timedelta(minutes=m) for m in range(-180, 181, 15)]
    for instant in instants:
        assert instant.astimezone(ours).utcoffset() == instant.astimezone(vtimezone.OSLO).utcoffset(), instant


def test_repeated_october_hour_is_written_in_utc() -> None:
    first = replace(
        EVENT,
        start=datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # 02:30 summer time
        end=datetime(2026, 10, 25, 1, 30, tzinfo=UTC),  # 02:30 winter time
    )
    text = lines(render_event(first))
    assert "DTSTART:20261025T003000Z" in text
    assert "DTEND:20261025T013000Z" in text


def test_times_fall_back_to_utc_if_the_tz_database_leaves_our_rules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Should Norway stop changing clocks, a summer meeting must keep its instant
    rather than follow a stale VTIMEZONE."""
    monkeypatch.setattr(vtimezone, "OSLO", timezone(timedelta(hours=1)))
    summer = replace(
        EVENT,
        start=datetime(2026, 7, 1, 7, tzinfo=UTC),
        end=datetime(2026, 7, 1, 8, tzinfo=UTC),
    )
    assert "DTSTART:20260701T070000Z" in lines(render_event(summer))
    winter = replace(
        EVENT,
        start=datetime(2026, 1, 30, 8, tzinfo=UTC),
        end=datetime(2026, 1, 30, 9, tzinfo=UTC),
    )
    assert "DTSTART;TZID=Europe/Oslo:20260130T090000" in lines(render_event(winter))


# --- iTIP --------------------------------------------------------------------------


def test_request_asks_every_addressed_attendee_to_answer() -> None:
    data = render_itip("REQUEST", EVENT)
    text = lines(data)
    assert text[:5] == [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Samhandling//Samhandling//NB",
        "CALSCALE:GREGORIAN",
        "METHOD:REQUEST",
    ]
    assert text.count("BEGIN:VEVENT") == 1
    assert "SEQUENCE:4" in text
    assert with_prefix(data, "ORGANIZER") == [
        'ORGANIZER;CN="Kari Nordmann":mailto:saksbehandler@kommune.example'
    ]
    attendees = with_prefix(data, "ATTENDEE")
    assert [("RSVP=TRUE" in line) for line in attendees] == [True, True, False]
    assert EUROPE_OSLO_VTIMEZONE in data


def test_cancel_says_cancelled_whatever_the_event_says() -> None:
    text = lines(render_itip("CANCEL", replace(EVENT, sequence=5)))
    assert "METHOD:CANCEL" in text
    assert "STATUS:CANCELLED" in text
    assert "SEQUENCE:5" in text


def test_all_day_invitation_needs_no_timezone() -> None:
    deadline = replace(EVENT, start=None, end=None, all_day=date(2026, 4, 15))
    assert EUROPE_OSLO_VTIMEZONE not in render_itip("REQUEST", deadline)


@pytest.mark.parametrize(
    ("method", "event", "message"),
    [
        ("REQUEST", replace(EVENT, organizer_email=None), "organizer"),
        ("CANCEL", replace(EVENT, organizer_email=None), "organizer"),
        ("REQUEST", replace(EVENT, status=EventStatus.CANCELLED), "CANCEL"),
        ("REQUEST", replace(EVENT, attendees=(Attendee("Tolk"),)), "attendee"),
        ("PUBLISH", EVENT, "method"),
    ],
)
def test_invitations_that_clients_would_mishandle_are_refused(
    method: str, event: CalendarEvent, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        render_itip(method, event)  # type: ignore[arg-type]
