"""Which commits in this process may have changed a feed token's state: a generation counter
that goes up after every such commit, on any engine of the process.

A feed runtime keeps the token states it has read, each with the generation it was read
under, and uses one only while the generation is unchanged. The counter goes up when a
connection that wrote to a watched table goes back to its pool, which is after its
transaction committed (or rolled back) and before the code that wrote carries on: so a
writer's answer (a revocation, say) never leaves before every cached state read before its
commit is given up. A state read while the commit was under way is given up too, as it was
read under the older generation. On PostgreSQL the other instances learn of the commit by
NOTIFY (``listener``); on SQLite the service is one process, and a command run beside it
(``samhandling purge``, say) is seen by the file's data version (:class:`FileVersion`).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, ExecutionContext
from sqlalchemy.pool import ConnectionPoolEntry, Pool
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import UpdateBase

#: What ``tokens.token_state`` reads (and, through ``unit.data_version``, what a feed shows):
#: the tables migration 0010 watches on PostgreSQL.
WATCHED_TABLES = frozenset({"feedtoken", "unit", "user", "case", "casecoordinator", "contact"})

#: Execution option for a write that alters no token's state (the last-seen times, or the
#: runtime's own record of what it served, which it accounts for itself).
NO_STATE_CHANGE = "samhandling_feeds_no_state_change"

#: Statements that read or steer a transaction without writing (for SQL given as text).
_NOT_WRITES = ("SELECT", "PRAGMA", "SHOW", "SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT")

#: In the pool entry's ``info``: this connection wrote to a watched table since it was taken.
_WROTE = "samhandling.feeds_wrote"


class _Generation:
    value = 0


def generation() -> int:
    return _Generation.value


def bump() -> None:
    """Every state read so far may be stale."""
    _Generation.value += 1


def _may_change_states(context: ExecutionContext, statement: str) -> bool:
    if context.execution_options.get(NO_STATE_CHANGE):
        return False
    compiled = context.compiled
    element = compiled.statement if compiled is not None else None
    if isinstance(element, Select):
        return False
    if isinstance(element, UpdateBase):
        table = getattr(element, "table", None)
        return getattr(table, "name", None) in WATCHED_TABLES or table is None
    # Text, driver SQL and DDL: a write unless it plainly is not (erring on the safe side).
    return not statement.lstrip()[:9].upper().startswith(_NOT_WRITES)


@event.listens_for(Engine, "before_cursor_execute")
def _note_write(connection: Connection, _cursor: Any, statement: str, _parameters: Any,
                context: ExecutionContext | None, _executemany: bool) -> None:
    if context is not None and _may_change_states(context, statement):
        connection.info[_WROTE] = True


@event.listens_for(Pool, "checkin")
def _released(_dbapi_connection: Any, entry: ConnectionPoolEntry | None) -> None:
    if entry is not None and entry.info.pop(_WROTE, False):
        bump()


@event.listens_for(Pool, "invalidate")
def _lost(_dbapi_connection: Any, entry: ConnectionPoolEntry, _error: BaseException | None) -> None:
    """A connection dropped after a commit would never be checked in: count it here."""
    if entry.info.pop(_WROTE, False):
        bump()


class FileVersion:
    """SQLite's count of commits made to the file by any other connection — another process's
    included, which no event here sees. ``PRAGMA data_version`` on a connection of its own:
    a few microseconds, no I/O beyond the WAL index."""

    def __init__(self, path: str) -> None:
        self._connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5)

    def value(self) -> int:
        return int(self._connection.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        self._connection.close()
