"""The pages in a real browser: Debian's Chromium, driven by playwright-core from npm, against
``samhandling serve --demo`` running with its dispatcher on a temporary SQLite database.

The scenario is the one in issue 8: sign in with the printed token, open the demo case,
record that the mother withdraws the school's consent, see the information loops change
and the school's queued reminders become "stopped at sending", move a meeting (first to a
Saturday, which the slot finder explains, then to one of its alternatives) and see the new
time; make a calendar, read the log, the alerts, answer an invitation as a parent, and do
the consent form and a move again with JavaScript off. axe-core runs on every page; any
serious or critical violation fails. Every page is walked with the Tab key: each stop
must show a visible focus ring.

Screenshots of the main pages land in tests/artifacts/. Chromium is installed by dev.py
(apt's ``chromium``); where it is missing the test fails in CI and is skipped elsewhere.
"""

from __future__ import annotations

import email
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email import policy
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("browser_check.mjs")
NODE_MODULES = ROOT / "tests" / "js" / "node_modules"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = os.environ.get("SAMHANDLING_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = [
    "01-logg-inn.png", "02-mine-saker.png", "03-sak-oversikt.png", "04-samtykke-skjema.png",
    "05-sak-etter-tilbaketrekking.png", "06-utsendinger-stoppet.png", "07-moteplan.png",
    "08-flytt-passer-ikke.png", "09-kalendere.png", "10-logg-og-innsyn.png", "11-varsler.png",
    "12-svar-pa-invitasjon.png",
    # Setting a case up and the unit's pages (issue 14).
    "20-ny-sak.png", "21-ny-sak-feil.png", "22-kontaktskjema.png", "23-kontaktskjema-feil.png", "24-kontakter.png",
    "25-enhetens-saker.png", "26-til-oppfolging.png", "27-koordinatorer.png", "28-brukere.png",
    "29-innstillinger-feil.png",
    # The plan with its preview, and a meeting outside it (issue 14).
    "30-tiltaksplan.png", "31-tiltaksplan-feil.png", "32-forhandsvisning.png", "33-nytt-mote-forslag.png",
]
PAGES = {"sign-in", "my cases", "case overview", "consent", "outbox", "schedule", "meeting",
         "meeting: time does not fit", "feeds", "log", "alerts", "not found", "answer", "answer: broken link",
         "new case", "new case: error", "contacts: empty", "contact form", "contact form: error", "contacts",
         "unit cases", "unit cases: search", "attention", "coordinators", "users", "users: error", "users: created",
         "unit settings", "unit settings: error",
         "plan form", "plan form: error", "plan preview", "new meeting", "new meeting: error", "new meeting: advice"}


def _missing(what: str) -> None:
    """In CI a missing browser is a failure, never a skip that could pass for a success."""
    message = f"{what}; dev.py installs it (apt-get install chromium; npm ci --prefix tests/js)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    """``samhandling serve --demo`` in a subprocess, its output read line by line."""

    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.mail = workdir / "mail"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAMHANDLING_")}
        env.update({
            "SAMHANDLING_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'demo.db'}",
            "SAMHANDLING_MAIL_FOLDER": str(self.mail),
            "SAMHANDLING_DISPATCHER_ENABLED": "true",
            # A Monday morning in Oslo, whatever the hour of the run: mail to families waits
            # through the night (21–07), and the test reads the mother's invitation.
            "SAMHANDLING_CLOCK_START": "2027-01-04T10:00:00+01:00",
            "SAMHANDLING_DISPATCH_INTERVAL_SECONDS": "1",
            "SAMHANDLING_LOG_LEVEL": "WARNING",
        })
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "coordination.cli", "serve", "--demo", "--host", "127.0.0.1",
             "--port", str(self.port)],
            cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, what: str, found: Any, seconds: float) -> Any:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = found()
            if value:
                return value
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        pytest.fail(f"{what} did not happen; server output:\n" + "\n".join(self.lines[-40:]))

    def printed(self, label: str) -> str | None:
        for line in self.lines:
            if label in line:
                return line.split(label, 1)[1].strip()
        return None

    def answer_path(self) -> str | None:
        """The accept/decline link in an invitation the dispatcher mailed to the mother."""
        for path in sorted(self.mail.glob("*.eml")) if self.mail.exists() else []:
            message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            if "mona.hansen@" not in str(message["To"]):
                continue
            for part in message.walk():
                if part.get_content_type() == "text/plain":
                    for word in part.get_content().split():
                        if "/answer/" in word:
                            return "/answer/" + word.split("/answer/", 1)[1].strip(".,)>")
        return None

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def _run_browser(server: Server) -> dict[str, Any]:
    token = server.wait_for("the demo token", lambda: server.printed("Token (koordinator):"), 90)
    assert server.printed("Nettsiden:"), "serve --demo prints the address of the pages"
    answer = server.wait_for("an invitation to the mother", server.answer_path, 60)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS:  # only this test's own: the whole-case test keeps its screenshots here too
        (ARTIFACTS / old).unlink(missing_ok=True)
    arguments = {"base": server.base, "token": token, "answerPath": answer, "chromium": CHROMIUM,
                 "artifacts": str(ARTIFACTS), "leaderToken": server.printed("Token (leder):"),
                 "adminToken": server.printed("Token (admin):")}
    done = subprocess.run(["node", str(SCRIPT), json.dumps(arguments)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert done.returncode == 0, f"the browser script crashed:\n{done.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(done.stdout)
    (ARTIFACTS / "browser-result.json").write_text(json.dumps(result, indent=1, ensure_ascii=False))
    return result


@pytest.fixture
def browser_ready() -> None:
    """Checked before the server starts: the browser, node and the npm packages are there."""
    if not Path(CHROMIUM).exists():
        _missing(f"Chromium is not installed at {CHROMIUM}")
    if shutil.which("node") is None or not (NODE_MODULES / "playwright-core").exists() or \
            not (NODE_MODULES / "axe-core").exists():
        _missing("node with playwright-core and axe-core from tests/js is needed")


def test_caseworker_in_a_real_browser(browser_ready: None, server: Server) -> None:
    result = _run_browser(server)
    seen = result["observations"]
    assert result["errors"] == [], json.dumps(result["errors"], indent=1, ensure_ascii=False)

    # Sign-in, keyboard first: the first Tab reaches the skip link, which leads to the content.
    assert seen["signInUrl"] == "/logg-inn"
    assert seen["firstTab"] == "Hopp til innholdet" and seen["afterSkipLink"] == "innhold"
    assert seen["afterSignIn"] == "/"
    assert "DEMO-2026-001" in seen["casesRow"] and "Gitt" in seen["casesRow"] and "Mangler" in seen["casesRow"]

    # The school may learn the purpose; e-mail carries no more than time and place.
    assert "Formål" in seen["schoolLoopBefore"] and "Praktisk (tid og sted)" in seen["schoolLoopBefore"]
    assert seen["schoolRemindersBefore"] > 0 and "Venter til" in seen["schoolReminderBefore"]

    # The mother withdraws the school's consent: the loops, the badges and the outbox follow at once.
    assert "Samtykket er registrert" in seen["messageAfterWithdrawal"]
    assert seen["schoolLoopAfter"].count("Ingenting") == 4, seen["schoolLoopAfter"]
    assert "Mona Hansen (mor) har trukket tilbake samtykket til deling med skole" in seen["schoolReasonAfter"]
    assert "Trukket tilbake" in seen["schoolContactConsent"] and "Trukket tilbake" in seen["schoolCard"]
    assert "Siri Lærer" in seen["alertsOnCase"], "the coordinator is told who still holds invitations"
    assert "Muntlig" in seen["latestConsent"] and "Trukket tilbake" in seen["latestConsent"]
    assert seen["schoolRemindersStopped"] == seen["schoolRemindersBefore"]
    assert "Stoppes ved utsending" in seen["schoolReminderAfter"]
    assert "trukket tilbake samtykket til deling med skole" in seen["schoolReminderAfter"]
    assert seen["schoolRemindersStillWaiting"] == 0

    # Moving to a Saturday is explained; one of the nearest times is taken, and shown.
    assert "passer ikke" in seen["advice"] and "helg" in seen["advice"]
    assert "flyttet" in seen["messageAfterMove"]
    assert (seen["movedDate"], seen["movedTime"]) == (seen["alternativeDate"], seen["alternativeTime"])
    assert seen["meetingAfter"] != seen["meetingBefore"]
    assert f"kl. {seen['alternativeTime']}" in seen["meetingAfter"]

    # A contact's calendar: subscribe links for Outlook, Google and Apple, a working copy button.
    links = seen["feedLinks"]
    assert any(link.startswith("https://outlook.office.com/calendar/") for link in links)
    assert any(link.startswith("https://calendar.google.com/calendar/") for link in links)
    assert any(link.startswith("webcal://") for link in links)
    assert seen["copyButtonVisible"] and "kopiert" in seen["copyStatus"] and seen["clipboard"] == seen["feedUrl"]
    assert seen["feedStatus"] == 200 and "BEGIN:VCALENDAR" in seen["feedBody"]

    assert seen["sharedRows"] > 0, "the access report lists what was shared"
    assert "Samtykke trukket tilbake" in seen["alerts"]
    assert seen["notFoundStatus"] == 404 and seen["notFound"] == "Fant ikke siden"

    # Signing out ends the session: the case page asks for sign-in again.
    assert "Du er logget ut" in seen["afterSignOut"] and seen["caseAfterSignOut"] == "/logg-inn"
    assert "samhandling_okt" not in seen["cookiesAfterSignOut"]

    # The family's page: time and place in their language, and nothing about the case.
    assert seen["answerLang"] == "nb" and "Tid:" in seen["answerPage"]
    assert "Sara" not in seen["answerPage"] and "barnevern" not in seen["answerPage"].casefold()
    assert "Du kommer" in seen["answerAfter"]
    assert seen["brokenAnswerStatus"] == 404

    # Without JavaScript the forms work too.
    assert "Formål" in seen["noJsSchoolLoop"], "consent granted again with JavaScript off"
    assert "flyttet" in seen["noJsMessage"], "a meeting moved to the slot finder's time with JavaScript off"
    assert seen["cspErrors"] == []

    # A new case and its contacts: a refused field is named, linked and focused (with script and without).
    assert "Fødselsdatoen kan ikke være fram i tid" in seen["newCaseError"]
    assert seen["newCaseErrorLink"] == "#child_birth_date" and "error-summary" in seen["newCaseErrorFocus"]
    assert "error-summary" in seen["noJsErrorFocus"], "autofocus moves focus to the summary without JavaScript"
    assert "Saken er opprettet" in seen["newCaseMessage"]
    assert "Bare en i familien kan ha daglig omsorg" in seen["contactError"]
    assert seen["contactErrorLink"] == "#daily_care" and "error-summary" in seen["contactErrorFocus"]
    assert seen["contactKeptEmail"] == "nora@skole.example.org", "what was typed is kept"
    assert "Skole" in seen["contactRow"] and "man 08:00–15:00" in seen["contactRow"]
    # The leader finds the new case; the admin's forms name their fields too.
    assert "Viser 1–1 av 1 sak" in seen["unitSearch"] and "NY-2027-1" in seen["unitSearchRows"][0]
    assert "Skriv en gyldig e-postadresse" in seen["userError"] and "Nina Ny er lagt til" in seen["userCreated"]
    assert "Siste dag må være samme dag som første dag" in seen["settingsError"]

    # The plan: a refused field named and focused; the preview of a plan without the child talks cancels
    # them, the confirmed one too, and says who is told; the save; rows added without JavaScript.
    assert "Skriv når planen forventes å slutte" in seen["planError"]
    assert seen["planErrorLink"] == "#expected_end" and "error-summary" in seen["planErrorFocus"]
    assert "avlyses" in seen["planPreview"] and seen["planPreviewCancelled"] > 0
    assert seen["planPreviewMessages"] > 0, "the confirmed meetings' invitees are told of the cancellation"
    assert "Tiltaksplanen er lagret" in seen["planSaved"]
    assert seen["noJsGoalRowsAfter"] == seen["noJsGoalRowsBefore"] + 1
    # A meeting outside the plan, at the time the slot finder offers.
    assert "Velg minst én deltaker" in seen["newMeetingError"]
    assert seen["newMeetingAdvice"].startswith("Første tid som passer")
    assert "Møtet er opprettet" in seen["newMeetingCreated"]
    assert seen["newMeetingAdvice"].removeprefix("Første tid som passer: ") in seen["newMeetingWhen"]

    # Universal design: axe on every page, no serious or critical violation; visible focus everywhere.
    assert {p["name"] for p in result["pages"]} >= PAGES
    serious = [(p["name"], v["id"], v["help"], v["nodes"]) for p in result["pages"] for v in p["violations"]
               if v["impact"] in ("serious", "critical")]
    assert serious == [], json.dumps(serious, indent=1, ensure_ascii=False)
    for walk in result["focus"]:
        assert walk["reached"] > 0, f"{walk['name']}: the Tab key reached nothing"
        assert walk["problems"] == [], f"{walk['name']}: no visible focus on {walk['problems']}"

    assert sorted(result["screenshots"]) == SCREENSHOTS
    assert all((ARTIFACTS / name).stat().st_size > 0 for name in SCREENSHOTS)
