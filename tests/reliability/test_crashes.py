"""Nothing lost, nothing doubled (DESIGN.md rule 6) when the process dies: ``samhandling
serve`` on PostgreSQL sends due reminders to aiosmtpd and is killed with SIGKILL at random
moments, then started again, until every reminder has arrived.

A message handed to the relay just before a kill, whose "sent" was never written, goes
out again once its lease has run out: those are the only duplicates a kill can cause. The
dispatcher hands a chunk of up to ``in_flight`` messages over at once and writes their
outcomes together, so a kill can interrupt up to that many: the test checks that every first
copy was among the last ``in_flight`` arrivals before a kill, and each repeat must carry the
Message-ID of the first copy so that mail clients fold the two.

CI: 200 reminders and 3 kills. The long form (README): SAMHANDLING_CRASH_REMINDERS=2000
SAMHANDLING_CRASH_KILLS=20.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path

import pytest
from db_backends import POSTGRES_ENABLED
from processes import (
    ServiceProcess,
    first_copies_of_duplicates,
    outbox_counts,
    postgres_database,
    seed_reminders,
    service_env,
    tally,
    wait_until,
)
from smtp_server import SmtpServer

from notifications.dispatcher import DispatchSettings

REMINDERS = int(os.environ.get("SAMHANDLING_CRASH_REMINDERS", "200"))
#: the messages one instance has in flight at most (DispatchSettings.in_flight, the default)
IN_FLIGHT = DispatchSettings.__dataclass_fields__["in_flight"].default
KILLS = int(os.environ.get("SAMHANDLING_CRASH_KILLS", "3"))

pytestmark = pytest.mark.skipif(not POSTGRES_ENABLED, reason="SAMHANDLING_TEST_POSTGRES=off: PostgreSQL only")


def test_sigkill_at_random_moments_loses_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed = int(os.environ.get("SAMHANDLING_CRASH_SEED", str(random.SystemRandom().randrange(10**6))))
    rng = random.Random(seed)
    smtp = SmtpServer()
    smtp.up()
    log = tmp_path / "serve.log"
    moments: list[str] = []
    exited: list[str] = []  # a service that stopped before we killed it is a finding of its own
    arrived_at_kill: list[int] = []
    try:
        with postgres_database() as url:
            seeded = asyncio.run(seed_reminders(url, REMINDERS))
            env = service_env(url, smtp.port)
            for kill in range(KILLS):
                process = ServiceProcess(env, log).start()
                if rng.random() < 0.25:
                    # While it starts: before, during or just after the first drain.
                    time.sleep(rng.uniform(0.2, 2.5))
                    moments.append("while starting")
                else:
                    share = REMINDERS * (kill + 1) // (KILLS + 1)
                    target = min(REMINDERS, max(len(smtp.arrivals) + 1, share + rng.randint(-5, 5)))
                    wait_until(lambda t=target, p=process: len(smtp.arrivals) >= t or not p.running,
                               "reminders to arrive before the kill")
                    time.sleep(rng.uniform(0, 0.3))  # anywhere in the drain, not just after an arrival
                    moments.append(f"after {len(smtp.arrivals)} arrivals")
                if not process.running:
                    exited.append(f"before kill {kill + 1}: {process.tail(15)}")
                process.kill()
                time.sleep(0.05)  # let the SMTP server finish a DATA it already had
                arrived_at_kill.append(len(smtp.arrivals))
            final = ServiceProcess(env, log).start()
            try:
                wait_until(lambda: asyncio.run(outbox_counts(url)).get("sent") == REMINDERS,
                           "every reminder to be sent", limit=60 + REMINDERS / 5, step=0.5)
            finally:
                final.stop()
            counts = asyncio.run(outbox_counts(url))
    finally:
        smtp.down()
    result = tally(seeded, smtp.arrivals)
    with capsys.disabled():
        print(f"\ncrash test (seed {seed}): {REMINDERS} reminders, {KILLS} SIGKILLs ({'; '.join(moments)}): "
              f"{result.line()}")
    assert not exited, "the service exited by itself\n" + "\n".join(exited)
    assert counts == {"sent": REMINDERS}, counts
    assert result.lost == 0, result
    assert result.foreign_ids == 0, result
    # A kill can interrupt at most the chunk being handed over at that moment: every first
    # copy of a duplicate is among the last IN_FLIGHT mails that arrived before some kill.
    assert result.duplicates <= KILLS * IN_FLIGHT, result
    last_before_kill = {count - 1 - n for count in arrived_at_kill for n in range(IN_FLIGHT)}
    assert all(first in last_before_kill for first in first_copies_of_duplicates(smtp.arrivals)), \
        (arrived_at_kill, first_copies_of_duplicates(smtp.arrivals))
