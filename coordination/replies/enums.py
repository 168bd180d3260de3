"""Why a message read from the ORGANIZER mailbox did what it did. Stored (``InboundMessage``)
and audited: the values never change once used."""

from __future__ import annotations

import enum


class ReplyOutcome(enum.StrEnum):
    """What became of one message. Only ``APPLIED``, ``COUNTER_SHOWN`` and ``BOUNCE_RECORDED``
    change anything; every other outcome is the reason it changed nothing."""

    APPLIED = "applied"
    COUNTER_SHOWN = "counter_shown"
    BOUNCE_RECORDED = "bounce_recorded"
    #: The UID is none of our meetings'.
    UNKNOWN_UID = "unknown_uid"
    #: The attendee's address is not that of anyone invited to the meeting.
    UNKNOWN_ATTENDEE = "unknown_attendee"
    #: No invitation or update to the meeting was ever sent to that attendee.
    NOT_SENT = "not_sent"
    #: The From address is not the attendee's.
    SENDER_MISMATCH = "sender_mismatch"
    #: The receiving server's Authentication-Results say DMARC or SPF failed.
    AUTHENTICATION_FAILED = "authentication_failed"
    #: The answer is to an older SEQUENCE than the one last sent to the attendee.
    STALE_SEQUENCE = "stale_sequence"
    #: The meeting is held or cancelled: it takes no answers.
    MEETING_CLOSED = "meeting_closed"
    #: The attendee is no longer active, or consent no longer lets them know of the meeting.
    NO_CONSENT = "no_consent"
    #: PARTSTAT other than accepted, declined or tentative (delegated, needs-action).
    UNSUPPORTED_ANSWER = "unsupported_answer"
    #: A delivery report for none of our sent messages, or one that only reports a delay.
    BOUNCE_UNMATCHED = "bounce_unmatched"
    AUTO_REPLY = "auto_reply"
    NOT_FOR_US = "not_for_us"
    UNREADABLE = "unreadable"
