"""Schemathesis against the service's own OpenAPI document (``/schema/openapi.json``): every
operation, signed in as the case's coordinator, with generated requests (random ids, and the
ids of a real case half of the time). No answer may be a 5xx, and every answer must match
the document: status code, content type, headers and body schema.

The service runs as users run it (``samhandling serve``, SQLite). CI: 12 cases per operation;
the long form (README): SAMHANDLING_SCHEMA_CASES=500.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from processes import ServiceProcess, samhandling
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.failures import FailureGroup

CASES = int(os.environ.get("SAMHANDLING_SCHEMA_CASES", "12"))


def _seed(url: str, headers: dict[str, str]) -> dict[str, int]:
    """A case with contacts, a meeting and a feed, so that generated requests can reach real rows."""
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        case = client.post("/cases", json={"reference": "BV-1", "child_given_name": "Sara", "child_initials": "S.H.",
                                           "child_birth_date": "2014-03-10"}).json()
        ids = {"case_id": case["id"]}
        mother = client.post(f"/cases/{case['id']}/contacts", json={
            "name": "Mona Hansen", "role": "parent", "daily_care": True, "email": "mona@example.org"}).json()
        client.post(f"/cases/{case['id']}/contacts", json={"name": "Siri Lærer", "role": "school_contact"})
        ids["contact_id"] = mother["id"]
        meeting = client.post(f"/cases/{case['id']}/meetings", json={
            "start": "2030-01-07T09:00:00+01:00", "end": "2030-01-07T10:00:00+01:00", "participant_ids": [mother["id"]],
            "confirm": False}).json()
        ids["meeting_id"] = meeting["id"]
        ids["feed_id"] = client.post(f"/cases/{case['id']}/feeds", json={"scope": "case"}).json()["id"]
    return ids


def _exercise(strategy: Any, label: str, ran: dict[str, int], url: str, headers: dict[str, str]) -> None:
    @given(case=strategy)
    @settings(max_examples=CASES, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    def exercise(case: Any) -> None:
        ran[label] = ran.get(label, 0) + 1
        response = case.call(base_url=url, headers=headers)
        # Schema-valid requests may still break the service's rules (a meeting in the past, a
        # birth date 30 years back, a cancelled meeting confirmed): those 400s are by design.
        # But the decoder itself must accept whatever the document allows.
        case.validate_response(response, excluded_checks=[positive_data_acceptance])
        if response.status_code == 400 and "json" in response.headers.get("content-type", ""):
            detail = str(response.json().get("detail", ""))
            assert not detail.startswith("invalid request"), f"the document allowed what the decoder refused: {detail}"

    exercise()


def test_every_operation_answers_as_documented(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = {"SAMHANDLING_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'fuzz.db'}",
           "SAMHANDLING_MAIL_FOLDER": str(tmp_path / "mail"), "SAMHANDLING_DISPATCHER_ENABLED": "false",
           "SAMHANDLING_LOG_LEVEL": "WARNING"}
    printed = samhandling("create-user", "--unit", "Enhet", "--name", "Kari", "--role", "coordinator", env=env)
    token = re.search(r"token: (\S+)", printed)
    assert token is not None, printed
    headers = {"Authorization": f"Bearer {token.group(1)}"}
    service = ServiceProcess(env, tmp_path / "serve.log").start().wait_ready()
    try:
        ids = _seed(service.url, headers)
        schema = schemathesis.openapi.from_url(f"{service.url}/schema/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        ran: dict[str, int] = {}
        failures: dict[str, str] = {}
        for operation in operations:
            label = f"{operation.method.upper()} {operation.path}"
            known = {name: ids[name] for name in ids if any(p.name == name for p in operation.path_parameters)}
            strategy = st.one_of(operation.as_strategy(), operation.as_strategy(path_parameters=known))

            try:
                _exercise(strategy, label, ran, service.url, headers)
            except (AssertionError, FailureGroup) as error:
                failures[label] = str(error)[:2000]
    finally:
        service.stop()
    with capsys.disabled():
        print(f"\nschemathesis: {sum(ran.values())} cases over {len(operations)} operations, "
              f"{len(failures)} operations failing")
    assert len(operations) >= 20
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
