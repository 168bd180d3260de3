"""A caseworker's whole job in a real browser, signed in with the municipality's identity
(issue 14, "Checked by a real browser").

``samhandling serve`` runs as its own process on a temporary SQLite database, configured for
OpenID Connect against panva's ``oidc-provider`` (tests/js/oidc_provider.mjs, on a free port),
with the dispatcher on and mail to a folder. The admin has created the coordinator with her
e-mail (``samhandling create-user --email``); Chromium (whole_case.mjs) clicks "Logg inn med
kommunens innlogging", passes the provider and comes back signed in, then does the job in the
pages only: a new case, its contacts, the mother's consent for the school, the plan with its
preview, the first meetings confirmed, and a revision of the plan after its preview.

What the browser saw is then held against what really left, read from the mail folder (each
.eml's recipient, its iTIP method and the meeting's UID) and the API: the invitations went to
every participant consent allows and never to the health nurse, for whom there is no consent;
the revision sent exactly the messages its preview said would be sent, to the same people about
the same meetings, and none that it said consent would stop.

Every step's page goes through axe-core (no serious or critical WCAG 2.1 AA violation) and
leaves a screenshot in tests/artifacts/ (40-… to 53-…). Chromium is installed by
dev.py; where it is missing the test fails in CI and is skipped elsewhere (as test_browser.py).
"""

from __future__ import annotations

import email
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from oidc_fixture import CLIENT, SCRIPT, _issuer
from test_browser import ARTIFACTS, CHROMIUM, NODE_MODULES, _free_port, _missing

from coordination.consent.texts import contact_label
from coordination.domain import Language, Role

ROOT = Path(__file__).resolve().parents[2]
BROWSER_SCRIPT = Path(__file__).with_name("whole_case.mjs")
#: The coordinator as the provider knows her, and the address the admin gave her user.
ACCOUNT = {"kari-sub": {"email": "kari.koordinator@kommune.example.org", "email_verified": True,
                        "name": "Kari Koordinator"}}
SCREENSHOTS = [
    "40-logg-inn-kommunen.png", "41-ny-sak.png", "42-kontakt-mor.png", "43-kontakter.png", "44-samtykke.png",
    "45-sak-med-samtykke.png", "46-tiltaksplan.png", "47-forhandsvisning-ny-plan.png", "48-moteplan-forslag.png",
    "49-moteplan-bekreftet.png", "50-utsendinger-invitasjoner.png", "51-forhandsvisning-revisjon.png",
    "52-moteplan-revidert.png", "53-utsendinger-avlysninger.png",
]
#: The message's kind as the pages name it, from the mail's subject (notifications.messages, bokmål).
KIND_BY_SUBJECT = {"Møte ": "Invitasjon", "Endret: ": "Endring", "Avlyst: ": "Avlysning", "Påminnelse: ": "Påminnelse",
                   "Nytt varsel": "Varsel til koordinator"}
NURSE = "hanne@helse.example.org"


class Process:
    """A child process whose output is read line by line in the background."""

    def __init__(self, command: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Service:
    """The identity provider, then ``samhandling serve`` pointed at it, on loopback ports."""

    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.mail = workdir / "mail"
        client = {**CLIENT, "redirect_uri": f"{self.base}/logg-inn/callback",
                  "post_logout_redirect_uri": f"{self.base}/logget-ut"}
        provider_env = {**os.environ, "OIDC_CLIENT": json.dumps(client), "OIDC_ACCOUNTS": json.dumps(ACCOUNT),
                        "OIDC_LOGIN_AS": "kari-sub"}
        log = workdir / "provider.log"
        with log.open("w") as errors:
            self.provider = subprocess.Popen(["node", str(SCRIPT)], cwd=SCRIPT.parent, env=provider_env,
                                             stdout=subprocess.PIPE, stderr=errors, text=True)
        self.issuer = _issuer(self.provider, log)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SAMHANDLING_")}
        self.env.update({
            "SAMHANDLING_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'service.db'}",
            "SAMHANDLING_MAIL_FOLDER": str(self.mail),
            "SAMHANDLING_DISPATCHER_ENABLED": "true",
            "SAMHANDLING_DISPATCH_INTERVAL_SECONDS": "1",
            # A Monday morning in Oslo: mail to families is not held for the night.
            "SAMHANDLING_CLOCK_START": "2027-01-04T10:00:00+01:00",
            "SAMHANDLING_LOG_LEVEL": "WARNING",
            "SAMHANDLING_OIDC_ISSUER": self.issuer,
            "SAMHANDLING_OIDC_CLIENT_ID": CLIENT["client_id"],
            "SAMHANDLING_OIDC_CLIENT_SECRET": CLIENT["client_secret"],
        })
        self.token = self._create_coordinator(workdir)
        self.server = Process([sys.executable, "-m", "coordination.cli", "serve", "--host", "127.0.0.1",
                               "--port", str(self.port)], workdir, self.env)
        self._wait_until_up()

    def _create_coordinator(self, workdir: Path) -> str:
        """As the unit's admin would: a user with the e-mail the provider vouches for."""
        done = subprocess.run([sys.executable, "-m", "coordination.cli", "create-user", "--unit", "Barneverntjenesten",
                               "--name", "Kari Koordinator", "--role", "coordinator", "--email",
                               ACCOUNT["kari-sub"]["email"]], cwd=workdir, env=self.env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        found = re.search(r"^token: (\S+)$", done.stdout, re.M)
        assert found, done.stdout
        return found.group(1)

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.server.process.poll() is None:
            try:
                if httpx.get(self.base + "/logg-inn", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        pytest.fail("the service did not start:\n" + "\n".join(self.server.lines[-40:]))

    def api(self, path: str) -> Any:
        answer = httpx.get(self.base + path, headers={"Authorization": f"Bearer {self.token}"}, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def stop(self) -> None:
        self.server.stop()
        self.provider.terminate()
        try:
            self.provider.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.provider.kill()
            self.provider.wait()
        if self.provider.stdout is not None:
            self.provider.stdout.close()


@pytest.fixture
def browser_ready() -> None:
    """Checked before anything starts: the browser, node and the npm packages are there."""
    if not Path(CHROMIUM).exists():
        _missing(f"Chromium is not installed at {CHROMIUM}")
    if shutil.which("node") is None or not (NODE_MODULES / "playwright-core").exists() or \
            not (NODE_MODULES / "oidc-provider").exists() or not (NODE_MODULES / "axe-core").exists():
        _missing("node with playwright-core, axe-core and oidc-provider from tests/js is needed")


@pytest.fixture
def service(browser_ready: None, tmp_path: Path) -> Iterator[Service]:
    running = Service(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def _run_browser(service: Service) -> dict[str, Any]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in [*SCREENSHOTS, "whole-case-result.json"]:
        (ARTIFACTS / old).unlink(missing_ok=True)
    arguments = {"base": service.base, "issuer": service.issuer, "chromium": CHROMIUM,
                 "artifacts": str(ARTIFACTS), "mail": str(service.mail)}
    done = subprocess.run(["node", str(BROWSER_SCRIPT), json.dumps(arguments)], capture_output=True, text=True,
                          timeout=180, cwd=ROOT)
    assert done.returncode == 0, f"the browser script crashed:\n{done.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(done.stdout)
    (ARTIFACTS / "whole-case-result.json").write_text(json.dumps(result, indent=1, ensure_ascii=False))
    return result


Sent = tuple[str, str, int]


def _sent(service: Service, files: list[str], case_id: int) -> list[Sent]:
    """(kind, recipient as the pages name them, meeting id) of each mail: the kind from the subject
    and the iTIP method, the meeting from the calendar part's UID, the recipient from To."""
    meetings = {m["uid"]: m["id"] for m in service.api(f"/cases/{case_id}/meetings")}
    labels = {c["email"]: contact_label(c["name"], Role(c["role"]), c["role_label"], Language.NB)
              for c in service.api(f"/cases/{case_id}/contacts") if c["email"]}
    sent = []
    for name in files:
        message = email.message_from_bytes((service.mail / name).read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        subject = str(message["Subject"])
        kind = next(k for prefix, k in KIND_BY_SUBJECT.items() if subject.startswith(prefix))
        address = message["To"].addresses[0].addr_spec
        calendars = [part.get_content() for part in message.walk() if part.get_content_type() == "text/calendar"]
        if not calendars:  # an alert to a coordinator: about no meeting
            sent.append((kind, labels.get(address, address), 0))
            continue
        method = re.search(r"^METHOD:(\w+)", calendars[0], re.M)
        uid = re.search(r"^UID:(\S+)", calendars[0], re.M)
        assert method and uid, calendars[0]
        assert method.group(1) == ("CANCEL" if kind == "Avlysning" else "REQUEST"), (subject, method.group(1))
        sent.append((kind, labels.get(address, address), meetings[uid.group(1)]))
    return sorted(sent)


def test_a_whole_case_in_the_pages_signed_in_through_the_provider(service: Service) -> None:
    result = _run_browser(service)
    seen = result["observations"]
    assert result["errors"] == [], json.dumps(result["errors"], indent=1, ensure_ascii=False)
    assert result["screenshots"] == SCREENSHOTS
    case_id = seen["caseId"]

    # Signed in at the provider: the button, the provider's pages, our callback, then the front page.
    assert seen["signInPage"] == "/logg-inn" and seen["signedInAs"] == "Kari Koordinator"
    hops = seen["navigations"]
    at_provider = [i for i, url in enumerate(hops) if url.startswith(service.issuer)]
    callback = hops.index(f"{service.base}/logg-inn/callback")
    assert at_provider and hops.index(f"{service.base}/logg-inn/start") < at_provider[0] < callback

    # The case, its people and the consent, each made in the pages.
    assert "Saken er opprettet" in seen["newCaseNotice"]
    assert len(seen["contactRows"]) == 4
    case = service.api(f"/cases/{case_id}")
    assert (case["reference"], case["child_initials"], case["measure_type"]) == ("BV-2027-40", "O.N.", "voluntary")
    assert "Samtykket er registrert" in seen["consentNotice"]
    assert "Formål" in seen["schoolLoop"] and "Ingenting" in seen["nurseLoop"]

    # The new plan's preview: meetings proposed, nobody told until they are confirmed.
    assert "Planen blir versjon 1" in seen["planPreview"] and seen["planPreviewMessages"] == []
    assert seen["planPreviewAdded"] and "Tiltaksplanen er lagret" in seen["planSaved"]
    plan = service.api(f"/cases/{case_id}/plan")  # as the revision below left it
    assert (plan["revision"], plan["start_date"], plan["expected_end"]) == (2, "2027-01-11", "2027-03-31")
    assert plan["smart_goals"][0]["target"] == "90 %" and plan["default_place"] == "Familiesenteret, Storgata 1"
    assert plan["measures"][0]["weekly"] == [{"weekday": 1, "start": "17:00", "end": "18:00"}]

    # The invitations of the confirmed meetings went to every participant consent allows: the
    # family, and the school (the mother's consent); never to the health nurse (no consent).
    confirmed = {c["id"] for c in seen["confirmed"]}
    assert [c["kind"] for c in seen["confirmed"]][:1] == ["Oppstartsmøte"] and len(confirmed) >= 4
    meetings = {m["id"]: m for m in service.api(f"/cases/{case_id}/meetings")}
    contacts = {c["id"]: c for c in service.api(f"/cases/{case_id}/contacts")}
    invitations = _sent(service, seen["mailBeforeRevision"], case_id)
    expected = sorted(("Invitasjon", contact_label(c["name"], Role(c["role"]), c["role_label"], Language.NB), m)
                      for m in confirmed for p in meetings[m]["participants"]
                      if (c := contacts[p["contact_id"]])["email"] != NURSE)
    assert invitations == expected
    assert any("Nora Lærer" in who for _, who, _ in invitations), "the school is invited where it takes part"
    nurse_id = next(i for i, c in contacts.items() if c["email"] == NURSE)
    assert any(p["contact_id"] == nurse_id for m in confirmed for p in meetings[m]["participants"])
    outbox = service.api(f"/cases/{case_id}/outbox")
    to_nurse = [o for o in outbox if o["recipient_contact_id"] == nurse_id and o["kind"] == "invitation"]
    assert to_nurse and {(o["status"], o["suppressed_code"]) for o in to_nurse} == {("suppressed", "no_consent")}

    # The revision: the measure ends in March, so the confirmed April evaluation and its child
    # talk are cancelled; the preview says who is told and what consent stops.
    assert "Revider tiltaksplanen (nå versjon 1)" in seen["revisionHeading"]
    cancelled = {line["meeting"] for line in seen["revisionCancelled"]}
    assert cancelled and cancelled <= confirmed
    assert "Tiltaksplanen er lagret" in seen["revisionSaved"]
    promised = seen["revisionMessages"]
    assert promised and all(line["due"] == "Nå" for line in promised)
    will_send = sorted((p["kind"], p["recipient"], p["meeting"]) for p in promised if p["verdict"] == "Sendes")
    stopped = [p for p in promised if p["verdict"] != "Sendes"]
    nurse = contacts[nurse_id]
    nurse_label = contact_label(nurse["name"], Role(nurse["role"]), nurse["role_label"], Language.NB)
    assert stopped, "the preview shows the nurse's cancellation stopped by consent"
    assert {(p["recipient"], p["verdict"]) for p in stopped} == \
        {(nurse_label, "Stoppes ved utsending: samtykket gjelder ikke")}
    assert {m for _, _, m in will_send} == cancelled
    # The reminders still waiting for the cancelled meetings are withdrawn, as many as the preview said.
    withdrawn = re.search(r"(\d+) ventende utsendinger om gamle tider sendes ikke", seen["revisionPreview"])
    assert withdrawn, seen["revisionPreview"]
    reminders = [o for o in service.api(f"/cases/{case_id}/outbox")
                 if o["kind"] == "reminder" and o["meeting_id"] in cancelled]
    assert len(reminders) == int(withdrawn.group(1)) and all(o["status"] == "suppressed" for o in reminders)

    # Exactly what the preview promised went out: the same kind, to the same people, about the same meetings.
    new_files = sorted(set(seen["mailAfterRevision"]) - set(seen["mailBeforeRevision"]))
    assert _sent(service, new_files, case_id) == will_send
    everything = _sent(service, seen["mailAfterRevision"], case_id)
    assert nurse_label not in {who for _, who, _ in everything}, "nothing ever reached the nurse"
    assert all((ARTIFACTS / name).stat().st_size > 0 for name in SCREENSHOTS)
    serious = [(p["file"], v["id"], v["help"], v["nodes"]) for p in result["pages"] for v in p["violations"]
               if v["impact"] in ("serious", "critical")]
    assert serious == [], json.dumps(serious, indent=1, ensure_ascii=False)
