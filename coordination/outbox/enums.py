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


class SmsReportOutcome(enum.StrEnum):
    """What a delivery report from the SMS gateway did to the row it names."""

    DELIVERED = "delivered"
    FAILED = "failed"
    #: The row was no longer sent (given up, or reported before): nothing changed.
    UNCHANGED = "unchanged"
