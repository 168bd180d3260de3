"""One way to write a change: the audit entry is part of the write (DESIGN.md rule 9), and
the same call says whether the change alters what calendar feeds show, so that neither the
entry nor the feeds' data version can be forgotten.

Service functions make one ``Change`` per write — who, where, when — and record each thing
they change through it. Entries join the caller's transaction at once, in the order they
are recorded; the data version goes up once per unit as the transaction commits
(``coordination.versions``). Outbox rows have their own single writer,
``coordination.outbox.queue.enqueue``. Reads are logged by ``audit.record_read``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from coordination import audit, versions
from coordination.domain import AuditAction, CaseStatus
from coordination.errors import InputError
from coordination.models import Case, User


def actor_of(by: User | str) -> str:
    """The audit log's name for a user, or an actor already named (``audit.SYSTEM``, a link)."""
    if isinstance(by, str):
        return by
    assert by.id is not None
    return audit.actor_for_user(by.id)


@dataclass(frozen=True, slots=True)
class Change:
    """A write by ``actor`` at ``at`` in one unit, and mostly in one of its cases."""

    session: AsyncSession
    unit_id: int
    case_id: int | None
    actor: str
    at: datetime

    @classmethod
    def in_case(cls, session: AsyncSession, case: Case, by: User | str, at: datetime) -> Change:
        """A change to ``case``. A closed case takes no change from a person until it is reopened
        (``records.closing``); the service's own writes about it (a cancellation sent) go on."""
        if isinstance(by, User) and case.status is not CaseStatus.OPEN:
            raise InputError("status", f"case {case.id} is {case.status.value}: reopen it to change it")
        return cls(session, case.unit_id, case.id, actor_of(by), at)

    def record(self, action: AuditAction, subject: str, detail: Mapping[str, object] | None = None, *,
               feeds: bool) -> None:
        """Audit the change; ``feeds`` says whether it alters what a feed shows (then the unit's
        data version goes up with the commit)."""
        audit.record(self.session, unit_id=self.unit_id, case_id=self.case_id, actor=self.actor,
                     action=action, subject=subject, at=self.at, detail=detail)
        if feeds:
            versions.bump_at_commit(self.session, self.unit_id)
