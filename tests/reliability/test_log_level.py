"""SAMHANDLING_LOG_LEVEL is what operators turn down when the log is too chatty: at WARNING
the per-message INFO lines of a running ``samhandling serve`` must be gone, at INFO there."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from processes import ServiceProcess, samhandling, wait_until


@pytest.mark.parametrize(("level", "shown"), [("INFO", True), ("WARNING", False)])
def test_the_log_level_decides_what_the_service_logs(tmp_path: Path, level: str, shown: bool) -> None:
    mail = tmp_path / "mail"
    env = {"SAMHANDLING_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'log.db'}",
           "SAMHANDLING_MAIL_FOLDER": str(mail), "SAMHANDLING_DISPATCHER_ENABLED": "true",
           "SAMHANDLING_DISPATCH_INTERVAL_SECONDS": "0.5", "SAMHANDLING_LOG_LEVEL": level}
    token = re.search(r"token: (\S+)", samhandling("create-user", "--unit", "Enhet", "--name", "Kari", env=env))
    assert token is not None
    log = tmp_path / "serve.log"
    service = ServiceProcess(env, log).start().wait_ready()
    try:
        with httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {token.group(1)}"}) as client:
            case = client.post("/cases", json={"reference": "BV-1", "child_given_name": "Sara",
                                               "child_initials": "S.H.", "child_birth_date": "2014-03-10"}).json()
            worker = client.post(f"/cases/{case['id']}/contacts", json={
                "name": "Ole", "role": "caseworker", "email": "ole@bv.example.org"}).json()
            created = client.post(f"/cases/{case['id']}/meetings", json={
                "start": "2030-01-07T09:00:00+01:00", "end": "2030-01-07T10:00:00+01:00",
                "participant_ids": [worker["id"]]})
            assert created.status_code == 201, created.text
        wait_until(lambda: mail.is_dir() and any(mail.iterdir()), "the invitation to be written")
    finally:
        service.stop()
    lines = log.read_text(errors="replace").splitlines()
    assert any(re.search(r"\bINFO\b.*outbox \d+ \(invitation, attempt 1\): sent", line) for line in lines) is shown
    if not shown:
        assert not [line for line in lines if re.search(r"\bINFO\b", line)], "\n".join(lines[:20])
