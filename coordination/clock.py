"""The one clock of the service.

Every "now" in coordination comes from here, so that tests (and the demo) can set the
time and consent decisions can be checked at a chosen moment.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    """Wall-clock time in UTC, with an optional offset or a frozen instant for tests."""

    def __init__(self, frozen: datetime | None = None) -> None:
        self._frozen = frozen.astimezone(UTC) if frozen else None
        self._offset = timedelta(0)

    def now(self) -> datetime:
        if self._frozen is not None:
            return self._frozen
        return datetime.now(UTC) + self._offset

    def set(self, instant: datetime) -> None:
        """Freeze the clock at ``instant`` (aware)."""
        if instant.tzinfo is None:
            raise ValueError("the clock needs an aware datetime")
        self._frozen = instant.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        """Move time forward, frozen or not."""
        if self._frozen is not None:
            self._frozen += delta
        else:
            self._offset += delta
