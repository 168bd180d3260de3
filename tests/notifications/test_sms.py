"""SMS words, segments and gateways. The Sveve adapter is tested against a local HTTP server
that implements Sveve's published SendMessage contract (no provider can be reached from here):
form fields in, the JSON answer out, with its fatal and per-number errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from notifications.ports import DisclosureLevel, Language, MessageKind
from notifications.sms import FolderSmsGateway, Sms, SveveGateway, SveveSettings, is_gsm7, segments, sms_text
from notifications.transport import PermanentFailure, TemporaryFailure

LINK = "https://samhandling.kommune.example.no/answer/" + "A" * 43
START = datetime(2027, 1, 11, 9, 0, tzinfo=UTC)  # 10:00 in Oslo


@pytest.mark.parametrize("by_email", [True, False])
@pytest.mark.parametrize("language", list(Language))
@pytest.mark.parametrize("kind", [MessageKind.INVITATION, MessageKind.UPDATE, MessageKind.CANCELLATION,
                                  MessageKind.REMINDER])
def test_every_sms_is_one_gsm7_segment_and_names_no_service_child_or_measure(kind: MessageKind,
                                                                             language: Language,
                                                                             by_email: bool) -> None:
    made = sms_text(kind, language, DisclosureLevel.CONTENT, DisclosureLevel.LOGISTICS, answer_url=LINK,
                    start=START, place="Rådhuset, Storgata 1, møterom 2", phone="+47 22 00 00 00",
                    by_email=by_email)
    assert made is not None
    assert is_gsm7(made.text) and made.segments == 1, made.text
    assert not any(word in made.text.casefold() for word in ("barnevern", "child welfare", "tiltak", "sara"))
    assert made.level <= DisclosureLevel.LOGISTICS


@pytest.mark.parametrize("language", list(Language))
@pytest.mark.parametrize("kind", [MessageKind.INVITATION, MessageKind.UPDATE, MessageKind.CANCELLATION])
def test_a_notice_points_to_the_email_only_for_someone_who_gets_one(kind: MessageKind, language: Language) -> None:
    """notify_by=sms: no e-mail comes, so the SMS must not send the person looking for one."""
    def text(by_email: bool) -> str:
        made = sms_text(kind, language, DisclosureLevel.CONTENT, DisclosureLevel.LOGISTICS, answer_url=LINK,
                        by_email=by_email)
        assert made is not None and made.level is DisclosureLevel.NONE
        return made.text.casefold()
    sms_only, beside_mail = text(False), text(True)
    assert "e-post" not in sms_only and "e-mail" not in sms_only, sms_only
    assert "e-post" in beside_mail or "e-mail" in beside_mail, beside_mail
    assert (LINK.casefold() in sms_only) is (kind is not MessageKind.CANCELLATION)
    nb_cancel = sms_text(MessageKind.CANCELLATION, Language.NB, DisclosureLevel.CONTENT, DisclosureLevel.LOGISTICS,
                         by_email=False)
    assert nb_cancel is not None and nb_cancel.text == "Et møte du var invitert til, er avlyst."


def test_a_reminder_says_time_place_and_phone_and_never_goes_above_the_cap() -> None:
    reminder = sms_text(MessageKind.REMINDER, Language.NB, DisclosureLevel.PURPOSE, DisclosureLevel.LOGISTICS,
                        start=START, place="Rådhuset", phone="+47 22 00 00 00")
    assert reminder is not None
    assert reminder.text == "Påminnelse: møte 11.01. kl. 10:00, Rådhuset. Spørsmål: +47 22 00 00 00"
    assert sms_text(MessageKind.REMINDER, Language.NB, DisclosureLevel.PURPOSE, DisclosureLevel.NONE,
                    start=START, place="Rådhuset") is None  # a cap of none: no reminder by SMS
    invitation = sms_text(MessageKind.INVITATION, Language.NB, DisclosureLevel.CONTENT, DisclosureLevel.CONTENT,
                          answer_url=LINK)
    assert invitation is not None and invitation.level is DisclosureLevel.NONE and LINK in invitation.text
    assert sms_text(MessageKind.ALERT, Language.NB, DisclosureLevel.CONTENT, DisclosureLevel.CONTENT) is None


def test_segments_are_counted_as_phones_count_them() -> None:
    assert segments("æøå ÆØÅ" * 20) == 1 and segments("x" * 160) == 1 and segments("x" * 161) == 2
    assert segments("€" * 80) == 1 and segments("€" * 81) == 2  # the extension table costs two septets
    assert segments("ok 😊") == 1 and segments("ø" * 69 + "😊") == 2  # outside GSM-7: UCS-2, 70 a segment


async def test_the_folder_gateway_writes_one_file_per_message(tmp_path: Path) -> None:
    gateway = FolderSmsGateway(tmp_path / "sms")
    sms = Sms(to="+4740000001", text="Du har fått en møteinnkalling.", reference="abc@samhandling")
    await gateway.send(sms)
    await gateway.send(sms)  # a retry replaces the file
    written = list((tmp_path / "sms").glob("*.txt"))
    assert len(written) == 1
    assert written[0].read_text() == "To: +4740000001\nSegments: 1\n\nDu har fått en møteinnkalling.\n"


class SveveLike(BaseHTTPRequestHandler):
    """Sveve's SendMessage as its API documentation describes it: form fields user, passwd, to,
    msg, from, f=json (and ref); JSON ``{"response": {...}}``."""

    received: list[dict[str, str]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode("utf-8")).items()}
        SveveLike.received.append(form)
        if form.get("to") == "+4799999999":
            self.send_response(503)
            self.end_headers()
            return
        if (form.get("user"), form.get("passwd")) != ("kommune", "hemmelig") or form.get("f") != "json":
            body: dict[str, object] = {"fatalError": "Feil brukernavn/passord"}
        elif form.get("to") == "+4712":
            body = {"msgOkCount": 0, "stdSMSCount": 0, "errors": [{"number": "+4712", "message": "Ugyldig nummer"}]}
        else:
            body = {"msgOkCount": 1, "stdSMSCount": 1, "ids": [4242]}
        data = json.dumps({"response": body}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def sveve() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), SveveLike)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    SveveLike.received = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/SMS/SendMessage"
    finally:
        server.shutdown()
        server.server_close()


async def test_the_sveve_adapter_follows_its_published_contract(sveve: str) -> None:
    gateway = SveveGateway(SveveSettings(url=sveve, user="kommune", password="hemmelig", sender="Moter"))
    text = "Du har fått en møteinnkalling. Se e-post eller svar her: " + LINK
    assert await gateway.send(Sms(to="+4740000001", text=text, reference="row-1@samhandling")) == "4242"
    assert SveveLike.received[-1] == {"user": "kommune", "passwd": "hemmelig", "to": "+4740000001", "msg": text,
                                      "from": "Moter", "ref": "row-1@samhandling", "f": "json"}
    with pytest.raises(PermanentFailure):  # this number: never worth retrying
        await gateway.send(Sms(to="+4712", text="x", reference="row-2"))
    with pytest.raises(TemporaryFailure) as down:  # the gateway is down: retried with backoff
        await gateway.send(Sms(to="+4799999999", text="x", reference="row-3"))
    assert down.value.server_level
    wrong = SveveGateway(SveveSettings(url=sveve, user="kommune", password="feil"))
    with pytest.raises(TemporaryFailure) as refused:  # a set-up fault: every message alike
        await wrong.send(Sms(to="+4740000001", text="x", reference="row-4"))
    assert refused.value.server_level and "hemmelig" not in str(refused.value)
