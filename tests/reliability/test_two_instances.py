"""Two instances, one database (DESIGN.md rule 6): two ``samhandling serve`` processes on one
PostgreSQL drain the same due reminders together. None may be lost, none sent twice, and
both must have done part of the work (counted by the instance that claimed each row).

CI: 400 reminders. The long form (README): SAMHANDLING_TWO_INSTANCE_REMINDERS=10000.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from db_backends import POSTGRES_ENABLED
from processes import (
    ServiceProcess,
    claimed_by,
    outbox_counts,
    postgres_database,
    seed_reminders,
    service_env,
    tally,
    wait_until,
)
from smtp_server import SmtpServer

REMINDERS = int(os.environ.get("SAMHANDLING_TWO_INSTANCE_REMINDERS", "400"))

pytestmark = pytest.mark.skipif(not POSTGRES_ENABLED, reason="SAMHANDLING_TEST_POSTGRES=off: PostgreSQL only")


def test_two_instances_send_each_reminder_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    smtp = SmtpServer()
    smtp.up()
    try:
        with postgres_database() as url:
            seeded = asyncio.run(seed_reminders(url, REMINDERS))
            env = service_env(url, smtp.port)
            instances = [ServiceProcess(env, tmp_path / f"serve-{n}.log") for n in (1, 2)]
            for instance in instances:
                instance.start()
            try:
                wait_until(lambda: asyncio.run(outbox_counts(url)).get("sent") == REMINDERS,
                           "every reminder to be sent", limit=60 + REMINDERS / 10, step=0.5)
            finally:
                for instance in instances:
                    instance.stop()
            counts = asyncio.run(outbox_counts(url))
            work = asyncio.run(claimed_by(url))
    finally:
        smtp.down()
    result = tally(seeded, smtp.arrivals)
    pids = {str(i.pid) for i in instances}
    with capsys.disabled():
        shares = ", ".join(f"pid {who.rsplit(':', 1)[-1]}: {n}" for who, n in sorted(work.items()))
        print(f"\ntwo instances: {REMINDERS} reminders, {result.line()}; sent by {shares}")
    assert counts == {"sent": REMINDERS}, counts
    assert result.lost == 0 and result.duplicates == 0 and result.foreign_ids == 0, result
    assert {who.rsplit(":", 1)[-1] for who in work} == pids, work
    assert all(n > 0 for n in work.values()), work
