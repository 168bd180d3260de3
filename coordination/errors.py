"""Errors the service raises for the API to turn into clear 4xx answers."""

from __future__ import annotations


class InputError(ValueError):
    """A request breaks a rule; ``field`` names the part of the body or query at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotFound(LookupError):
    """Unknown, or not visible to this user (we never tell the two apart)."""


def not_found(kind: str, given: int) -> NotFound:
    """The one answer for an id that names nothing this user may see (DESIGN.md rule 11): it
    names only the kind of thing and the id the caller gave, so that another unit's alert, a
    case the user is not assigned to, a contact of another case and an id that never existed
    all answer the same bytes."""
    return NotFound(f"{kind} {given} not found")


class Forbidden(PermissionError):
    """Visible, but this user's role may not do it."""


class Gone(LookupError):
    """A revoked capability (feed or answer link)."""
