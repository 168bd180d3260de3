"""Whose meetings a calendar feed shows."""

from __future__ import annotations

import enum


class FeedScope(enum.StrEnum):
    """``coordinator``: every case the owner may open; ``case``: the case team; ``contact``: one
    contact's own meetings, at their consent level."""

    COORDINATOR = "coordinator"
    CASE = "case"
    CONTACT = "contact"
