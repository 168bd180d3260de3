"""Which databases the suite runs on. A module of its own (not conftest) so that test files
in any folder can import it: ``from conftest import`` is ambiguous with several conftests."""

from __future__ import annotations

import os
from datetime import UTC, datetime

POSTGRES_ADMIN_URL = os.environ.get(
    "SAMHANDLING_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
POSTGRES_ENABLED = os.environ.get("SAMHANDLING_TEST_POSTGRES", "on").lower() != "off"
BACKENDS = ["sqlite", "postgresql"] if POSTGRES_ENABLED else ["sqlite"]
#: A Monday in winter time, so tests read the same whatever day they run.
START = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)
