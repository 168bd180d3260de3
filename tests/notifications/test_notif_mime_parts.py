"""The parts ``build_email`` writes itself (its headers parsed once for all messages) are the ones
the standard library's ``set_content`` writes: same headers, same encoded bodies, for text with
long lines, non-ASCII, stray CR/LF and characters quoted-printable must escape."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage

import pytest

from notifications.email import CalendarPart, ItipMethod, MailSettings, build_email
from notifications.messages import RenderedMessage
from notifications.ports import DisclosureLevel, Language, Recipient

ICS = ("BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:u1\r\nSEQUENCE:2\r\n"
       "ORGANIZER;CN=\"Samhandling: post\":mailto:post@samhandling.example.org\r\n"
       f"DESCRIPTION:{'Møte på Rådhuset, ' * 12}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n").encode()

TEXTS = [
    "",
    "Hei,\n\nDu er invitert til møte på Rådhuset.\n",
    "line with trailing space \nand tab\t\r\nCRLF\rCR only\n.\nFrom the start\n=3D equals\n",
    "x" * 200 + "\n" + "æøå" * 60,
    "<p>Svar: <a href=\"https://e.org/answer/Ab_-9\">her</a> &amp; 😀</p>",
]


def reference(text: str, subtype: str) -> EmailMessage:
    part = EmailMessage(policy=policy.SMTP)
    part.set_content(text, subtype=subtype, charset="utf-8", cte="quoted-printable")
    del part["MIME-Version"]
    return part


@pytest.mark.parametrize("text", TEXTS)
def test_the_text_parts_are_what_set_content_writes(text: str) -> None:
    rendered = RenderedMessage(subject="Invitasjon", text=text, html=text, level=DisclosureLevel.CONTENT)
    msg = build_email(rendered, settings=MailSettings(sender_address="post@samhandling.example.org"),
                      recipient=Recipient(email="mona@example.org", language=Language.NB),
                      message_id="<m1@samhandling.example.org>", date=datetime(2027, 1, 11, 9, tzinfo=UTC),
                      calendar=CalendarPart(ICS, ItipMethod.REQUEST, uid="u1", sequence=2))
    plain, html, calendar = msg.iter_parts()
    assert plain.as_bytes() == reference(text, "plain").as_bytes()
    assert html.as_bytes() == reference(text, "html").as_bytes()
    assert plain.get_content() == reference(text, "plain").get_content()

    expected = EmailMessage(policy=policy.SMTP)
    expected.set_content(ICS, maintype="text", subtype="calendar", cte="base64")
    expected.replace_header("Content-Type", "text/calendar; charset=utf-8; method=REQUEST")
    del expected["MIME-Version"]
    assert calendar.as_bytes() == expected.as_bytes()
    assert calendar.get_content() == ICS.decode()
    assert [name for name, _ in msg.items()][-3:] == ["MIME-Version", "Content-Type", "Content-Language"]
