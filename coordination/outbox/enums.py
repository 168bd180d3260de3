"""The states of an outbox row (the message itself is ``notifications.ports.MessageKind``)."""

from __future__ import annotations

import enum


class OutboxStatus(enum.StrEnum):
    """Pending until due, sending while a dispatcher holds its lease, then one of the final
    states: sent, suppressed (not sent, by decision) or dead (given up after failures)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    SUPPRESSED = "suppressed"
    DEAD = "dead"
