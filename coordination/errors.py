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


class Forbidden(PermissionError):
    """Visible, but this user's role may not do it."""


class Gone(LookupError):
    """A revoked capability (feed or answer link)."""
