"""The database going away under a running service (DESIGN.md rule 6, and "never a 200 with an
empty calendar"): ``samhandling serve`` runs on a PostgreSQL cluster of the test's own, sending
reminders, when the cluster is stopped — once as a crash, once as a clean shutdown. While it is
down every answer is 503 with Retry-After (the feed and /health too); when it is back the
service recovers by itself, and no reminder is lost or sent twice."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from pgcluster import Cluster
from processes import (
    ServiceProcess,
    outbox_counts,
    postgres_database,
    samhandling,
    seed_reminders,
    service_env,
    tally,
    wait_until,
)
from smtp_server import SmtpServer

REMINDERS = 150


@pytest.fixture(scope="module")
def cluster() -> Any:
    made = Cluster().init()
    made.start()
    try:
        yield made
    finally:
        made.remove()


def _while_down(client: httpx.Client, case_id: int, feed: str, participant: int) -> list[str]:
    """Every kind of request once; what came back that is not a proper 503."""
    wrong = []
    requests = [("GET", "/health", None), ("GET", "/cases", None), ("GET", f"/cases/{case_id}", None),
                ("GET", f"/cases/{case_id}/meetings", None), ("GET", f"/feeds/{feed}.ics", None),
                ("POST", f"/cases/{case_id}/meetings", {
                    "start": "2030-01-08T09:00:00+01:00", "end": "2030-01-08T10:00:00+01:00",
                    "participant_ids": [participant]})]
    for method, path, body in requests:
        response = client.request(method, path, json=body)
        if response.status_code != 503 or ("Retry-After" not in response.headers and path != "/health"):
            wrong.append(f"{method} {path}: {response.status_code} {response.text[:120]}")
        if b"BEGIN:VCALENDAR" in response.content:
            wrong.append(f"{method} {path}: a calendar while the database is down")
    return wrong


@pytest.mark.parametrize("mode", ["immediate", "fast"])
def test_the_database_going_away_and_coming_back(cluster: Cluster, tmp_path: Path, mode: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    smtp = SmtpServer()
    smtp.up()
    try:
        with postgres_database(cluster.url) as url:
            seeded = asyncio.run(seed_reminders(url, REMINDERS))
            env = service_env(url, smtp.port)
            printed = samhandling("create-user", "--unit", "Utfall", "--name", "Kari", "--role", "coordinator",
                                  env={**env, "SAMHANDLING_LOG_LEVEL": "WARNING"})
            token = re.search(r"token: (\S+)", printed)
            assert token is not None
            service = ServiceProcess(env, tmp_path / "serve.log").start().wait_ready()
            headers = {"Authorization": f"Bearer {token.group(1)}"}
            try:
                with httpx.Client(base_url=service.url, headers=headers, timeout=30) as client:
                    case = client.post("/cases", json={"reference": "BV-9", "child_given_name": "Sara",
                                                       "child_initials": "S.H.", "child_birth_date": "2014-03-10"})
                    case_id = case.json()["id"]
                    mother = client.post(f"/cases/{case_id}/contacts", json={
                        "name": "Mona", "role": "caseworker", "email": "mona@bv.example.org"}).json()["id"]
                    feed = client.post(f"/cases/{case_id}/feeds", json={"scope": "case"}).json()["token"]
                    created = client.post(f"/cases/{case_id}/meetings", json={
                        "start": "2030-01-07T09:00:00+01:00", "end": "2030-01-07T10:00:00+01:00",
                        "participant_ids": [mother]})
                    assert created.status_code == 201
                    before = client.get(f"/feeds/{feed}.ics")
                    assert before.status_code == 200 and created.json()["uid"] in before.text
                    wait_until(lambda: len(smtp.arrivals) >= REMINDERS // 3, "reminders before the outage")
                    cluster.stop(mode)
                    wrong = [w for _ in range(3) for w in _while_down(client, case_id, feed, mother)]
                    assert service.running, service.tail()
                    assert not wrong, "\n".join(wrong)
                    cluster.start()
                    wait_until(lambda: client.get("/health").status_code == 200, "the service to recover",
                               limit=60, step=0.5)
                    after = client.get(f"/feeds/{feed}.ics")
                    assert after.status_code == 200 and created.json()["uid"] in after.text
                    again = client.post(f"/cases/{case_id}/meetings", json={
                        "start": "2030-01-08T09:00:00+01:00", "end": "2030-01-08T10:00:00+01:00",
                        "participant_ids": [mother]})
                    assert again.status_code == 201, again.text
                    total = REMINDERS + 2  # and the two invitations
                    wait_until(lambda: asyncio.run(outbox_counts(url)).get("sent") == total,
                               "everything to be sent after the outage", limit=120, step=0.5)
            finally:
                service.stop()
    finally:
        smtp.down()
    reminders = [a for a in smtp.arrivals if a.message["To"].addresses[0].addr_spec in seeded.recipients]
    result = tally(seeded, reminders)
    with capsys.disabled():
        print(f"\noutage ({mode} stop of PostgreSQL mid-run): {result.line()}")
    assert result.lost == 0 and result.foreign_ids == 0, result
    # The one being handed over as the database went is recorded when it is back, not sent again.
    assert result.duplicates == 0, result
