"""Message texts and message building without a server: levels, updates, alerts, and
that no input can put a line break into a header."""

from __future__ import annotations

from datetime import timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from notif_doubles import NOW, SENDER, meeting, prepared

from notifications.email import MailSettings, build_email, stable_message_id
from notifications.messages import one_line, render
from notifications.ports import (
    AlertDetails,
    AlertKind,
    DisclosureLevel,
    Language,
    MeetingKind,
    MessageKind,
    Prepared,
    Recipient,
    RecipientKind,
    lowest,
)
from notifications.transport import FolderTransport, SmtpSettings, SmtpTransport, select_transport


def test_levels_order_by_rank_not_by_alphabet() -> None:
    assert DisclosureLevel.NONE < DisclosureLevel.LOGISTICS < DisclosureLevel.PURPOSE
    assert DisclosureLevel.PURPOSE < DisclosureLevel.CONTENT
    assert lowest(DisclosureLevel.CONTENT, DisclosureLevel.LOGISTICS) is DisclosureLevel.LOGISTICS


@pytest.mark.parametrize(
    ("language", "new", "old"),
    [
        (Language.NB, "Ny tid: onsdag 13. januar 2027 kl. 10:00–11:00", "Tidligere tid: mandag"),
        (Language.NN, "Ny tid: onsdag 13. januar 2027 kl. 10:00–11:00", "Tidlegare tid: måndag"),
        (Language.EN, "New time: Wednesday 13 January 2027, 10:00–11:00", "Previous time: Monday"),
    ],
)
def test_a_moved_meeting_shows_the_new_time_first(language: Language, new: str, old: str) -> None:
    original = meeting()
    moved = meeting(
        start=original.start + timedelta(days=2, hours=1),
        end=original.end + timedelta(days=2, hours=1),
        previous_start=original.start,
        previous_end=original.end,
        sequence=1,
    )
    rendered = render(
        MessageKind.UPDATE,
        RecipientKind.PARENT,
        prepared(details=moved, language=language),
        sender_name="Samhandling",
    )

    assert new in rendered.text
    assert old in rendered.text
    assert rendered.text.index(new) < rendered.text.index(old)
    assert "13" in rendered.subject and "10:00" in rendered.subject


def test_the_childs_own_conversation_is_named_for_the_child() -> None:
    data = prepared(details=meeting(kind=MeetingKind.CHILD_TALK), level=DisclosureLevel.PURPOSE)

    to_child = render(MessageKind.INVITATION, RecipientKind.CHILD, data, sender_name="S")
    to_partner = render(MessageKind.INVITATION, RecipientKind.PARTNER, data, sender_name="S")

    assert "Møte: Samtale med deg" in to_child.text
    assert "vi håper du vil komme" in to_child.text
    assert "Møte: Samtale med barnet" in to_partner.text
    assert "Godta eller avslå:" in to_partner.text
    assert "Svar om du kan komme:" in to_child.text


def test_a_reminder_never_carries_content_even_when_allowed() -> None:
    data = prepared(
        details=meeting(content_text="Mål: trygg skolevei"),
        level=DisclosureLevel.CONTENT,
        method=None,
    )

    rendered = render(MessageKind.REMINDER, RecipientKind.PARENT, data, sender_name="S")

    assert "trygg skolevei" not in rendered.text
    assert rendered.level is DisclosureLevel.PURPOSE


@pytest.mark.parametrize(
    ("level", "shown", "hidden"),
    [
        (DisclosureLevel.LOGISTICS, [], ["2027-0042", "Et samtykke utløper snart", "Lærer"]),
        (DisclosureLevel.PURPOSE, ["Sak: 2027-0042", "Et samtykke utløper snart"], ["Lærer"]),
        (DisclosureLevel.CONTENT, ["Sak: 2027-0042", "Lærer Per Hansen"], []),
    ],
)
def test_alert_text_grows_with_the_level(level: DisclosureLevel, shown: list[str], hidden: list[str]) -> None:
    data = Prepared(
        recipient=Recipient(email="saksbehandler@kommune.example"),
        allowed_level=level,
        recipient_kind=RecipientKind.COORDINATOR,
        alert=AlertDetails(AlertKind.CONSENT_EXPIRING, "2027-0042", "Lærer Per Hansen"),
        link_url="https://samhandling.example/varsler",
    )

    rendered = render(MessageKind.ALERT, RecipientKind.COORDINATOR, data, sender_name="S")

    assert "Du har et nytt varsel i Samhandling." in rendered.text
    assert rendered.subject == "Nytt varsel i Samhandling"
    for phrase in shown:
        assert phrase in rendered.text
    for phrase in hidden:
        assert phrase not in rendered.text


def test_a_link_that_is_not_http_is_refused() -> None:
    from notifications.messages import RenderError

    data = prepared(answer_url="javascript:alert(1)")
    with pytest.raises(RenderError):
        render(MessageKind.INVITATION, RecipientKind.PARENT, data, sender_name="S")


@given(st.text(max_size=300))
def test_one_line_never_keeps_a_line_break(value: str) -> None:
    line = one_line(value, 120)
    assert "\r" not in line and "\n" not in line
    assert len(line) <= 120


@given(name=st.text(max_size=200), place=st.text(max_size=200))
def test_no_input_adds_a_header(name: str, place: str) -> None:
    data = prepared(
        recipient=Recipient(email="mor@familie.example", display_name=name),
        details=meeting(place=place),
    )
    rendered = render(MessageKind.INVITATION, RecipientKind.PARENT, data, sender_name=name)
    msg = build_email(
        rendered,
        settings=MailSettings(sender_address=SENDER, sender_name=name or "Samhandling"),
        recipient=data.recipient,
        message_id="<o1@samhandling.example>",
        date=NOW,
    )

    parsed = BytesParser(policy=policy.default).parsebytes(msg.as_bytes())

    assert sorted(parsed.keys()) == sorted(
        ["From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type",
         "Content-Language"]
    )  # fmt: skip
    assert [a.addr_spec for a in parsed["To"].addresses] == ["mor@familie.example"]


def test_stable_message_id_depends_only_on_the_key() -> None:
    first = stable_message_id("m1:c1:invitation:0", "samhandling.example")
    assert first == stable_message_id("m1:c1:invitation:0", "samhandling.example")
    assert first != stable_message_id("m1:c1:invitation:1", "samhandling.example")
    assert first.startswith("<") and first.endswith("@samhandling.example>")


def _mail(message_id: str, place: str) -> EmailMessage:
    data = prepared(details=meeting(place=place))
    rendered = render(MessageKind.INVITATION, RecipientKind.PARENT, data, sender_name="S")
    return build_email(
        rendered,
        settings=MailSettings(sender_address=SENDER),
        recipient=data.recipient,
        message_id=message_id,
        date=NOW,
    )


def _plain_bodies(folder: Path) -> dict[str, str]:
    parsed = {}
    for path in folder.iterdir():
        raw = path.read_bytes()
        assert path.suffix == ".eml" and b"\r\n" in raw
        message = BytesParser(policy=policy.default).parsebytes(raw)
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        parsed[str(message["Message-ID"])] = body.get_content()
    return parsed


async def test_folder_transport_overwrites_by_message_id(tmp_path: Path) -> None:
    transport = FolderTransport(tmp_path)

    await transport.send(_mail("<a/b@x.example>", "Først"))
    await transport.send(_mail("<a/b@x.example>", "Sist"))
    await transport.send(_mail("<a_b@x.example>", "Annen"))

    parsed = _plain_bodies(tmp_path)
    assert sorted(parsed) == ["<a/b@x.example>", "<a_b@x.example>"]
    assert "Sist" in parsed["<a/b@x.example>"] and "Først" not in parsed["<a/b@x.example>"]


def test_without_an_smtp_host_mail_goes_to_the_folder(tmp_path: Path) -> None:
    assert isinstance(select_transport(None, tmp_path), FolderTransport)
    assert isinstance(select_transport(SmtpSettings(host=""), tmp_path), FolderTransport)
    assert isinstance(select_transport(SmtpSettings(host="smtp.example"), tmp_path), SmtpTransport)
