"""PostgreSQL restarted while the service is idle (a nightly minor upgrade): every pooled
connection is dead, and nothing noticed. The requests that come after answer 200 or, if one
meets a dead connection, 503 with Retry-After (never 500); the service recovers by itself at
the first such request, without a restart (DESIGN.md rule 6; the pool settings in
coordination/db.py)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pgcluster import Cluster
from processes import ServiceProcess, postgres_database, samhandling, service_env

from coordination.db import PING_AFTER_IDLE_SECONDS


@pytest.fixture(scope="module")
def cluster() -> Any:
    made = Cluster().init()
    made.start()
    try:
        yield made
    finally:
        made.remove()


@pytest.mark.parametrize("mode", ["immediate", "fast"])
def test_requests_after_a_restart_while_idle(cluster: Cluster, tmp_path: Path, mode: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    with postgres_database(cluster.url) as url:
        env = service_env(url, 1, SAMHANDLING_DISPATCHER_ENABLED="false")
        printed = samhandling("create-user", "--unit", "Natt", "--name", "Kari", "--role", "coordinator",
                              env={**env, "SAMHANDLING_LOG_LEVEL": "WARNING"})
        token = re.search(r"token: (\S+)", printed)
        assert token is not None
        service = ServiceProcess(env, tmp_path / "serve.log").start().wait_ready()
        try:
            with httpx.Client(base_url=service.url, timeout=30,
                              headers={"Authorization": f"Bearer {token.group(1)}"}) as client:
                for _ in range(5):  # connections in the pool
                    assert client.get("/cases").status_code == 200
                cluster.stop(mode)
                cluster.start()
                time.sleep(PING_AFTER_IDLE_SECONDS + 0.5)  # the service stays idle a little longer
                answers = [client.get("/cases") for _ in range(4)]
        finally:
            service.stop()
    statuses = [a.status_code for a in answers]
    with capsys.disabled():
        print(f"\nrestart while idle ({mode} stop): answers after it {statuses}")
    assert set(statuses) <= {200, 503}, [(a.status_code, a.text[:120]) for a in answers]
    assert all("Retry-After" in a.headers for a in answers if a.status_code == 503)
    # A connection idle that long is pinged and replaced before a request can meet it dead.
    assert statuses == [200, 200, 200, 200], statuses
