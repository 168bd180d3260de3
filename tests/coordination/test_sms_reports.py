"""Sveve's delivery reports, on SQLite and PostgreSQL: the SMS go out through the Sveve adapter
to a local server that answers as Sveve's SendMessage does and keeps what it was sent; the
reports then come back to our address with the parameters Sveve documents for them
(https://sveve.se/apidok/dlr/: number, status, id, ref, errorCode, errorDesc), by GET and POST.
No provider can be reached from here: the local server stands in for Sveve."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from mail_fixtures import Client
from sqlmodel import select
from test_sms_dispatch import MOTHERS_MOBILE, dispatcher, scene, sms_rows  # noqa: F401 (scene: a fixture)

from coordination.context import ServiceContext
from coordination.models import Alert
from coordination.outbox.enums import OutboxStatus
from coordination.settings import Settings
from notifications.ports import MessageKind
from notifications.sms import SveveGateway, SveveSettings

SECRET = "rapport-2f9c1d"
REPORTS = f"/sms/leveringsrapport/{SECRET}"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, sms=replace(settings.sms, report_secret=SECRET))


class FakeSveve(BaseHTTPRequestHandler):
    """SendMessage as Sveve documents it: a form in, ``{"response": {... "ids": [...]}}`` out."""

    sent: list[dict[str, str]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        self.sent.append(form)
        body = json.dumps({"response": {"msgOkCount": 1, "stdSMSCount": 1,
                                        "ids": [42824110 + len(self.sent)]}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def sveve() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """The local server's SendMessage address, and the forms it was sent."""
    sent: list[dict[str, str]] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Recording", (FakeSveve,), {"sent": sent}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/SMS/SendMessage", sent
    finally:
        server.shutdown()
        server.server_close()


async def test_delivery_reports_mark_the_sms(scene: Any, service: ServiceContext, client: Client, people: Any,  # noqa: F811
                                             tmp_path: Path, sveve: tuple[str, list[dict[str, str]]],
                                             caplog: pytest.LogCaptureFixture) -> None:
    url, sent = sveve
    gateway = SveveGateway(SveveSettings(url=url, user="kommune", password="hemmelig"))
    await dispatcher(service, tmp_path, sms=gateway).drain_once()
    rows = {r.recipient_contact_id: r for r in await sms_rows(service) if r.kind is MessageKind.INVITATION}
    assert all(r.status is OutboxStatus.SENT for r in rows.values()) and len(sent) == 2
    to_mother = next(s for s in sent if s["to"] == MOTHERS_MOBILE)
    to_teacher = next(s for s in sent if s["to"] != MOTHERS_MOBILE)
    caplog.set_level(logging.INFO)

    # Delivered, by GET as in Sveve's example: audited, the row stays sent.
    delivered = await client.get(REPORTS, params={
        "number": MOTHERS_MOBILE.lstrip("+"), "status": "true", "id": "42824111", "ref": to_mother["ref"],
        "errorCode": "", "errorDesc": ""})
    assert delivered.status_code == 200 and delivered.json() == {"outcome": "delivered"}, delivered.text

    # Not delivered, by POST: the row dead with Sveve's code, audited, the coordinator alerted.
    failed = {"number": to_teacher["to"].lstrip("+"), "status": "false", "id": "42824112",
              "ref": to_teacher["ref"], "errorCode": "1", "errorDesc": "Ugyldig mobilnummer"}
    answer = await client.post(REPORTS, data=failed)
    assert answer.status_code == 200 and answer.json() == {"outcome": "failed"}, answer.text
    again = await client.post(REPORTS, data=failed)  # Sveve retries: acted on once
    assert again.status_code == 200 and again.json() == {"outcome": "unchanged"}

    after = {r.recipient_contact_id: r for r in await sms_rows(service) if r.kind is MessageKind.INVITATION}
    assert after[scene.mother].status is OutboxStatus.SENT
    teachers = after[scene.teacher]
    assert teachers.status is OutboxStatus.DEAD and teachers.last_error == "not delivered: 1"
    log = (await client.get(f"/cases/{scene.case_id}/audit", headers=people.coordinator.headers)).json()
    assert {(e["action"], e["subject"]) for e in log} >= {
        ("notification.delivered", f"outbox:{after[scene.mother].id}"),
        ("notification.bounced", f"outbox:{teachers.id}")}
    alerts = (await client.get(f"/cases/{scene.case_id}/alerts", headers=people.coordinator.headers)).json()
    bounced = [a for a in alerts if a["kind"] == "address_bounced"]
    assert len(bounced) == 1 and bounced[0]["detail"] == {"outbox": teachers.id, "contact": scene.teacher,
                                                          "status": "1", "channel": "sms"}
    assert bounced[0]["text"].startswith("Mobilnummeret virket ikke")
    # Ids only in the service's logs (the test client's own request lines aside): neither the
    # number, nor the reference, nor Sveve's words.
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx"))
    assert "sms report for outbox" in ours
    for private in (MOTHERS_MOBILE.lstrip("+"), to_teacher["to"].lstrip("+"), to_mother["ref"], "Ugyldig", SECRET):
        assert private not in ours


async def test_bad_reports_are_refused_by_name(scene: Any, service: ServiceContext, client: Client,  # noqa: F811
                                               tmp_path: Path) -> None:
    await dispatcher(service, tmp_path).drain_once()
    before = [(r.id, r.status) for r in await sms_rows(service)]
    ref = (await sms_rows(service))[0].message_id.strip("<>")
    good = {"number": "4740000001", "status": "false", "id": "7", "ref": ref, "errorCode": "", "errorDesc": ""}
    wrong_secret = await client.get("/sms/leveringsrapport/gjettet", params=good)
    assert wrong_secret.status_code == 404
    for change, field in (({"status": "kanskje"}, "status"), ({"status": ""}, "status"), ({"ref": ""}, "ref"),
                          ({"id": "abc"}, "id"), ({"number": "ring meg"}, "number"), ({"ref": "x" * 300}, "ref")):
        refused = await client.get(REPORTS, params={**good, **change})
        assert refused.status_code == 400 and refused.json()["field"] == field, (change, refused.text)
    assert (await client.post(REPORTS, content=b"\xff\xfe", headers={"Content-Type": "application/json"})
            ).status_code == 400
    unknown = await client.get(REPORTS, params={**good, "ref": "ingen-slik@example.org"})
    assert unknown.status_code == 404 and "ref" in unknown.json()["detail"]
    assert [(r.id, r.status) for r in await sms_rows(service)] == before
    async with service.transaction() as session:
        assert not (await session.exec(select(Alert).where(Alert.kind == "address_bounced"))).all()
