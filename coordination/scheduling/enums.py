"""The states of a meeting and of a participant's answer, as stored and as the API shows them."""

from __future__ import annotations

import enum


class MeetingStatus(enum.StrEnum):
    """Where a meeting is in its life: proposed by the schedule (or by hand, unconfirmed), confirmed
    (invitations go out), held, or cancelled. Held and cancelled are final."""

    PROPOSED = "proposed"
    CONFIRMED = "confirmed"
    HELD = "held"
    CANCELLED = "cancelled"


#: A meeting still to come: it may be confirmed, moved or cancelled, and it keeps people busy.
OPEN_STATUSES = (MeetingStatus.PROPOSED, MeetingStatus.CONFIRMED)


class ParticipantAnswer(enum.StrEnum):
    """A participant's answer to an invitation (iCalendar PARTSTAT, spelled the service's way)."""

    NEEDS_ACTION = "needs_action"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    TENTATIVE = "tentative"


class AnswerChannel(enum.StrEnum):
    """How a participant's answer came: by the link in the invitation, by their calendar's reply
    (iTIP REPLY read from the mailbox), or recorded by the coordinator (by phone, say)."""

    LINK = "link"
    CALENDAR = "calendar"
    COORDINATOR = "coordinator"
