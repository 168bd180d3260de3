"""What a recipient's mail server receives: iMIP structure, headers, language and the
absence of anything the allowed level does not cover (DESIGN rules 3 and 4)."""

from __future__ import annotations

from dataclasses import replace
from email.message import EmailMessage

import pytest
from icalendar import Calendar
from notif_doubles import (
    ANSWER_URL,
    NOW,
    SENDER,
    DispatcherFactory,
    MemoryOutbox,
    ScriptedGate,
    SmtpServer,
    make_itip,
    meeting,
    prepared,
)

from notifications.dispatcher import Outcome
from notifications.email import MAX_MESSAGE_BYTES
from notifications.ports import (
    DisclosureLevel,
    Language,
    MeetingKind,
    MessageKind,
    Prepared,
    Recipient,
    RecipientKind,
    SuppressionCode,
)

CHILD = "Ola Nordmann"
MEASURE = "Foreldreveiledning"


def queue(
    outbox: MemoryOutbox,
    gate: ScriptedGate,
    outbox_id: str,
    decision: Prepared,
    *,
    kind: MessageKind = MessageKind.INVITATION,
    recipient_kind: RecipientKind = RecipientKind.PARENT,
) -> None:
    outbox.add(outbox_id, due_at=NOW, kind=kind)
    gate.answers[outbox_id] = replace(decision, recipient_kind=recipient_kind)


def readable(message: EmailMessage) -> str:
    """Everything a reader could see: all headers and every decoded body part."""
    parts = [f"{name}: {value}" for name, value in message.items()]
    for part in message.walk():
        if not part.is_multipart():
            assert isinstance(part, EmailMessage)
            parts.append(str(part.get_content()))
    return "\n".join(parts)


def parts_of(message: EmailMessage) -> list[EmailMessage]:
    found = []
    for part in message.iter_parts():
        assert isinstance(part, EmailMessage)
        found.append(part)
    return found


async def test_invitation_arrives_as_imip_with_stable_headers(
    smtp: SmtpServer, outbox: MemoryOutbox, gate: ScriptedGate, make_dispatcher: DispatcherFactory
) -> None:
    details = meeting(sequence=3)
    queue(outbox, gate, "o1", prepared(details=details))

    report = await make_dispatcher().drain_once()

    assert report.outcomes == (("o1", Outcome.SENT),)
    [arrival] = smtp.arrivals
    mail = arrival.message
    assert mail.get_content_type() == "multipart/alternative"
    text, html, calendar = parts_of(mail)
    assert [p.get_content_type() for p in (text, html, calendar)] == [
        "text/plain",
        "text/html",
        "text/calendar",
    ]
    assert calendar.get_param("method") == "REQUEST"
    assert calendar.get_content_charset() == "utf-8"
    ics = Calendar.from_ical(calendar.get_content())
    [event] = ics.walk("VEVENT")
    assert str(event["ORGANIZER"]).lower() == f"mailto:{SENDER}"
    assert mail["From"].addresses[0].addr_spec == SENDER
    assert arrival.mail_from == SENDER
    assert mail["From"].addresses[0].display_name == "Samhandling"
    assert int(str(event["SEQUENCE"])) == 3
    assert arrival.rcpt_tos == ("mor@familie.example",)
    assert mail["Message-ID"] == "<o1.outbox@samhandling.example>"
    assert mail["Date"] is not None
    assert mail["Auto-Submitted"] is None  # a person's invitation expects a person's answer
    assert mail["Subject"] == "Møte 11. januar kl. 09:00"
    assert ANSWER_URL in text.get_content()
    assert f'href="{ANSWER_URL}"' in html.get_content()
    assert outbox.rows["o1"].level is DisclosureLevel.LOGISTICS
    assert b"\r\n" in arrival.raw and b"\n" not in arrival.raw.replace(b"\r\n", b"")


async def test_cancellation_carries_method_cancel(
    smtp: SmtpServer, outbox: MemoryOutbox, gate: ScriptedGate, make_dispatcher: DispatcherFactory
) -> None:
    queue(
        outbox,
        gate,
        "o1",
        prepared(method="CANCEL", details=meeting(sequence=4)),
        kind=MessageKind.CANCELLATION,
    )

    await make_dispatcher().drain_once()

    [arrival] = smtp.arrivals
    calendar = parts_of(arrival.message)[2]
    assert calendar.get_param("method") == "CANCEL"
    assert "METHOD:CANCEL" in calendar.get_content()
    assert arrival.message["Subject"] == "Avlyst: møte 11. januar kl. 09:00"
    assert "Møtet er avlyst." in parts_of(arrival.message)[0].get_content()


async def test_reminder_is_text_and_html_marked_auto_generated(
    smtp: SmtpServer, outbox: MemoryOutbox, gate: ScriptedGate, make_dispatcher: DispatcherFactory
) -> None:
    queue(outbox, gate, "o1", prepared(method=None), kind=MessageKind.REMINDER)

    await make_dispatcher().drain_once()

    [arrival] = smtp.arrivals
    assert [p.get_content_type() for p in parts_of(arrival.message)] == ["text/plain", "text/html"]
    assert arrival.message["Auto-Submitted"] == "auto-generated"
    assert arrival.message["Subject"] == "Påminnelse: møte 11. januar kl. 09:00"


@pytest.mark.parametrize(
    ("language", "subject", "phrases"),
    [
        (
            Language.NB,
            "Møte 11. januar kl. 09:00",
            ["Du er invitert til et møte.", "mandag 11. januar 2027 kl. 09:00–10:00", "Sted:"],
        ),
        (
            Language.NN,
            "Møte 11. januar kl. 09:00",
            ["Du er invitert til eit møte.", "måndag 11. januar 2027 kl. 09:00–10:00", "Stad:"],
        ),
        (
            Language.EN,
            "Meeting 11 January at 09:00",
            ["You are invited to a meeting.", "Monday 11 January 2027, 09:00–10:00", "Place:"],
        ),
    ],
)
async def test_invitation_is_written_in_the_recipients_language(
    smtp: SmtpServer,
    outbox: MemoryOutbox,
    gate: ScriptedGate,
    make_dispatcher: DispatcherFactory,
    language: Language,
    subject: str,
    phrases: list[str],
) -> None:
    queue(outbox, gate, "o1", prepared(language=language))

    await make_dispatcher().drain_once()

    [arrival] = smtp.arrivals
    assert arrival.message["Subject"] == subject
    assert arrival.message["Content-Language"] == language.value
    text = parts_of(arrival.message)[0].get_content()
    for phrase in phrases:
        assert phrase in text
    assert "12 34 56 78" in text


async def test_logistics_level_leaves_out_purpose_and_content(
    smtp: SmtpServer, outbox: MemoryOutbox, gate: ScriptedGate, make_dispatcher: DispatcherFactory
) -> None:
    # The gate hands over richer data than the level allows; the mail must not use it.
    details = meeting(
        kind=MeetingKind.CHILD_TALK,
        agenda_headline="Oppfølging av hjelpetiltak",
        content_text=f"{MEASURE} hver uke for {CHILD}",
        case_reference="2027-0042",
    )
    queue(outbox, gate, "o1", prepared(details=details), recipient_kind=RecipientKind.PARTNER)

    await make_dispatcher().drain_once()

    [arrival] = smtp.arrivals
    seen = readable(arrival.message).casefold()
    for word in ("barnevern", "child welfare", CHILD, MEASURE, "tiltak", "samtale", "2027-0042"):
        assert word.casefold() not in seen
    assert "rådhuset, møterom 3" in seen


@pytest.mark.parametrize(
    ("level", "shown", "hidden", "recorded"),
    [
        (DisclosureLevel.PURPOSE, ["Oppstartsmøte", "Gjennomgang av planen"], [MEASURE], "purpose"),
        (DisclosureLevel.CONTENT, ["Oppstartsmøte", MEASURE], [], "content"),
    ],
)
async def test_higher_levels_add_purpose_then_content(
    smtp: SmtpServer,
    outbox: MemoryOutbox,
    gate: ScriptedGate,
    make_dispatcher: DispatcherFactory,
    level: DisclosureLevel,
    shown: list[str],
    hidden: list[str],
    recorded: str,
) -> None:
    details = meeting(agenda_headline="Gjennomgang av planen", content_text=f"Mål: {MEASURE}")
    queue(outbox, gate, "o1", prepared(details=details, level=level))

    await make_dispatcher().drain_once()

    text = parts_of(smtp.arrivals[0].message)[0].get_content()
    for phrase in shown:
        assert phrase in text
    for phrase in hidden:
        assert phrase not in text
    assert smtp.arrivals[0].message["Subject"] == "Møte 11. januar kl. 09:00"
    assert outbox.rows["o1"].level == recorded


async def test_a_place_naming_the_service_stops_the_mail_at_logistics(
    smtp: SmtpServer, outbox: MemoryOutbox, gate: ScriptedGate, make_dispatcher: DispatcherFactory
) -> None:
    queue(outbox, gate, "o1", prepared(details=meeting(place="Barneverntjenesten, Storgata 1")))
    named = prepared(withheld_terms=(CHILD,), details=meeting(place=f"Hjemme hos {CHILD}"))
    queue(outbox, gate, "o2", named)

    await make_dispatcher().drain_once()

    assert smtp.arrivals == []
    for outbox_id in ("o1", "o2"):
        row = outbox.rows[outbox_id]
        assert row.status == "dead"
        assert row.last_error is not None and "withheld" in row.last_error
        assert "barnevern" not in row.last_error.casefold() and CHILD not in row.last_error


async def test_cr_lf_in_names_and_places_never_reach_a_header(
    smtp: SmtpServer, outbox: MemoryOutbox, gate: ScriptedGate, make_dispatcher: DispatcherFactory
) -> None:
    hostile = prepared(
        recipient=Recipient(email="mor@familie.example", display_name="Kari\r\nBcc: spy@evil.example"),
        details=meeting(place="Storgata 1\r\nBcc: spy@evil.example\r\n\r\n<b>x</b>"),
    )
    queue(outbox, gate, "o1", hostile)

    await make_dispatcher().drain_once()

    [arrival] = smtp.arrivals
    assert arrival.rcpt_tos == ("mor@familie.example",)
    assert arrival.message["Bcc"] is None
    header_block = arrival.raw.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc" not in header_block and b"\nBcc" not in header_block
    [to] = arrival.message["To"].addresses
    assert to.addr_spec == "mor@familie.example"
    text, html = parts_of(arrival.message)[0].get_content(), parts_of(arrival.message)[1].get_content()
    assert "Sted: Storgata 1 Bcc: spy@evil.example <b>x</b>" in text
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


async def test_huge_place_and_notes_still_make_a_small_message(
    smtp: SmtpServer, outbox: MemoryOutbox, gate: ScriptedGate, make_dispatcher: DispatcherFactory
) -> None:
    details = meeting(place="Storgata " * 20_000, content_text="Mål\n" * 300_000)
    queue(outbox, gate, "o1", prepared(details=details, level=DisclosureLevel.CONTENT))

    await make_dispatcher().drain_once()

    [arrival] = smtp.arrivals
    assert len(arrival.raw) < MAX_MESSAGE_BYTES
    assert "Storgata Storgata" in parts_of(arrival.message)[0].get_content()
    assert "…" in parts_of(arrival.message)[0].get_content()


async def test_an_oversized_calendar_is_refused_not_sent(
    smtp: SmtpServer, outbox: MemoryOutbox, gate: ScriptedGate, make_dispatcher: DispatcherFactory
) -> None:
    ics = make_itip(start=meeting().start, end=meeting().end, location="x" * (MAX_MESSAGE_BYTES + 1))
    queue(outbox, gate, "o1", prepared(calendar=ics))

    await make_dispatcher().drain_once()

    assert smtp.arrivals == []
    assert outbox.status("o1") == "dead"


@pytest.mark.parametrize("address", ["ingen-adresse", "mor@familie.example\r\nRCPT TO:<x@y.z>", ""])
async def test_unusable_address_is_suppressed_not_retried(
    smtp: SmtpServer,
    outbox: MemoryOutbox,
    gate: ScriptedGate,
    make_dispatcher: DispatcherFactory,
    address: str,
) -> None:
    queue(outbox, gate, "o1", prepared(email=address, method=None))

    await make_dispatcher().drain_once()

    assert smtp.arrivals == []
    assert outbox.status("o1") == "suppressed"
    assert outbox.rows["o1"].suppressed is not None
    assert outbox.rows["o1"].suppressed[0] is SuppressionCode.NO_ADDRESS


@pytest.mark.parametrize(
    "ics_change",
    [{"organizer": "someone.else@kommune.example"}, {"sequence": 2}, {"method": "CANCEL"}],
)
async def test_an_itip_object_clients_would_misread_is_not_sent(
    smtp: SmtpServer,
    outbox: MemoryOutbox,
    gate: ScriptedGate,
    make_dispatcher: DispatcherFactory,
    ics_change: dict[str, object],
) -> None:
    details = meeting(sequence=3)
    fields: dict[str, object] = {"sequence": 3, "start": details.start, "end": details.end}
    fields.update(ics_change)
    queue(outbox, gate, "o1", prepared(details=details, calendar=make_itip(**fields)))  # type: ignore[arg-type]

    await make_dispatcher().drain_once()

    assert smtp.arrivals == []
    assert outbox.status("o1") == "dead"


async def test_coordinator_alert_says_only_open_samhandling_at_logistics(
    smtp: SmtpServer, outbox: MemoryOutbox, gate: ScriptedGate, make_dispatcher: DispatcherFactory
) -> None:
    from notifications.ports import AlertDetails, AlertKind

    alert = AlertDetails(AlertKind.CONSENT_WITHDRAWN, case_reference="2027-0042", detail="Lærer Per Hansen")
    base = Prepared(
        recipient=Recipient(email="saksbehandler@kommune.example"),
        allowed_level=DisclosureLevel.LOGISTICS,
        recipient_kind=RecipientKind.COORDINATOR,
        alert=alert,
        link_url="https://samhandling.example/varsler",
    )
    queue(outbox, gate, "o1", base, kind=MessageKind.ALERT, recipient_kind=RecipientKind.COORDINATOR)

    await make_dispatcher().drain_once()

    [arrival] = smtp.arrivals
    text = parts_of(arrival.message)[0].get_content()
    assert arrival.message["Subject"] == "Nytt varsel i Samhandling"
    assert "Du har et nytt varsel i Samhandling." in text
    assert "https://samhandling.example/varsler" in text
    assert "2027-0042" not in text and "Per Hansen" not in text and "Samtykke" not in text


async def test_an_itip_object_from_calendars_goes_out_unchanged(
    smtp: SmtpServer, outbox: MemoryOutbox, gate: ScriptedGate, make_dispatcher: DispatcherFactory
) -> None:
    from calendars.events import Attendee, CalendarEvent
    from calendars.ical import render_itip

    details = meeting(sequence=2)
    event = CalendarEvent(
        uid=details.uid,
        sequence=2,
        last_modified=NOW,
        summary="Møte",
        start=details.start,
        end=details.end,
        location=details.place,
        organizer_email=SENDER,
        organizer_name="Samhandling",
        attendees=(Attendee(name="Mor", email="mor@familie.example"),),
    )
    ics = render_itip("REQUEST", event)
    queue(outbox, gate, "o1", prepared(details=details, calendar=ics))

    await make_dispatcher().drain_once()

    [arrival] = smtp.arrivals
    calendar = parts_of(arrival.message)[2]
    assert calendar.get_content().encode("utf-8") == ics
    [event_seen] = Calendar.from_ical(calendar.get_content()).walk("VEVENT")
    assert "RSVP=TRUE" in calendar.get_content().replace("\r\n ", "")
    assert int(str(event_seen["SEQUENCE"])) == 2
