"""The interfaces ``coordination`` implements for the dispatcher, and the plain data
crossing them.

The dispatcher owns *when* and *how* to send; ``coordination`` owns the outbox rows and
the consent decision. Everything here is plain data so that neither side imports the
other's internals, and so that tests can stand in for either side.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from calendars.schedule import MeetingKind as MeetingKind


class MessageKind(enum.StrEnum):
    INVITATION = "invitation"
    UPDATE = "update"
    CANCELLATION = "cancellation"
    REMINDER = "reminder"
    ALERT = "alert"


class Channel(enum.StrEnum):
    """How a message travels: e-mail (iMIP), or SMS (a content-free notice, or a reminder)."""

    EMAIL = "email"
    SMS = "sms"


class RecipientKind(enum.StrEnum):
    PARENT = "parent"
    CHILD = "child"
    TRUSTED_PERSON = "trusted_person"
    PARTNER = "partner"
    COORDINATOR = "coordinator"

    @property
    def is_family(self) -> bool:
        """Families are not woken (DESIGN rule 10), so the dispatcher must know them."""
        return self in _FAMILY


_FAMILY = frozenset({RecipientKind.PARENT, RecipientKind.CHILD, RecipientKind.TRUSTED_PERSON})


class Language(enum.StrEnum):
    NB = "nb"
    NN = "nn"
    EN = "en"


_LEVEL_RANK = {"none": 0, "logistics": 1, "purpose": 2, "content": 3}


class DisclosureLevel(enum.StrEnum):
    """DESIGN rule 3, ordered: ``none < logistics < purpose < content``.

    A string enum so that it stores readably, with comparisons by rank rather than by
    alphabet (``"content" < "logistics"`` as strings would be a disclosure bug)."""

    NONE = "none"
    LOGISTICS = "logistics"
    PURPOSE = "purpose"
    CONTENT = "content"

    @property
    def rank(self) -> int:
        return _LEVEL_RANK[self.value]

    def __lt__(self, other: str) -> bool:
        if not isinstance(other, DisclosureLevel):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: str) -> bool:
        if not isinstance(other, DisclosureLevel):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: str) -> bool:
        if not isinstance(other, DisclosureLevel):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: str) -> bool:
        if not isinstance(other, DisclosureLevel):
            return NotImplemented
        return self.rank >= other.rank


def lowest(*levels: DisclosureLevel) -> DisclosureLevel:
    """The narrowest of several levels: what a message may carry is capped by each."""
    return min(levels, key=lambda level: level.rank)


class AlertKind(enum.StrEnum):
    CONSENT_EXPIRING = "consent_expiring"
    CHILD_TURNING_15 = "child_turning_15"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    NO_FEASIBLE_SLOT = "no_feasible_slot"
    EVALUATION_OVERDUE = "evaluation_overdue"
    ORDERED_MEASURE_ENDING = "ordered_measure_ending"
    NOTIFICATION_FAILED = "notification_failed"
    #: A participant proposed another time in their calendar (iTIP COUNTER): never applied by itself.
    COUNTER_PROPOSED = "counter_proposed"
    #: A message to a contact bounced (RFC 3464): their address does not work.
    ADDRESS_BOUNCED = "address_bounced"
    #: The plan has passed its end and the case is still open: close it, or revise the plan.
    PLAN_ENDED = "plan_ended"
    #: A closed case's personal data is deleted within 14 days; after that it cannot be reopened.
    DELETION_DUE = "deletion_due"
    OTHER = "other"


class SuppressionCode(enum.StrEnum):
    """Why a message was not sent; stored and audited, shown to the coordinator."""

    NO_CONSENT = "no_consent"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    NOT_TOLD = "not_told"  # e.g. parents and a barnesamtale the coordinator keeps to the child
    NO_ADDRESS = "no_address"  # missing or unusable e-mail address: report, never retry
    OBSOLETE = "obsolete"  # superseded by a later change, or the meeting is gone
    TOO_LATE = "too_late"  # the meeting has already started
    LEVEL_NONE = "level_none"  # the allowed level is ``none``: nothing may be said
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One claimed outbox row, as much as the dispatcher needs before asking the gate.

    It carries no recipient kind: who is family is decided when the message is sent, from
    the contact as it is then (DESIGN.md rule 10), so it comes in :class:`Prepared`.
    ``attempts`` counts failed delivery attempts so far.
    ``message_id`` is the RFC 5322 Message-ID (``<...@domain>``) fixed at enqueue time,
    so that a re-sent copy carries the same id.
    """

    id: str
    idempotency_key: str
    kind: MessageKind
    recipient_id: str
    due_at: datetime
    attempts: int
    message_id: str
    subject_id: str | None = None  # the meeting or alert the row concerns
    channel: Channel = Channel.EMAIL


@dataclass(frozen=True, slots=True)
class Recipient:
    """Where and how to write. ``display_name`` goes into the To header only; leave it
    None when unsure (for a child, say) since the neutral mail needs no name."""

    email: str
    language: Language = Language.NB
    display_name: str | None = None
    mobile: str | None = None  # E.164, for SMS
    #: Whether this person is told by e-mail too: an SMS points to an e-mail only when one comes.
    by_email: bool = True


@dataclass(frozen=True, slots=True)
class MeetingDetails:
    """A meeting as this recipient may know it. Fields above ``logistics`` are only
    shown when the allowed level reaches them, so the gate may fill them regardless;
    still, leaving out what the recipient may not see is the safer habit."""

    uid: str
    sequence: int
    start: datetime  # aware
    end: datetime  # aware
    place: str | None = None  # logistics
    organiser_phone: str | None = None  # logistics
    previous_start: datetime | None = None  # updates: the time it was moved from
    previous_end: datetime | None = None
    kind: MeetingKind = MeetingKind.AD_HOC  # purpose
    agenda_headline: str | None = None  # purpose
    case_reference: str | None = None  # purpose, shown to coordinators only
    content_text: str | None = None  # content: goals and measures


@dataclass(frozen=True, slots=True)
class AlertDetails:
    """A coordinator alert. By e-mail: at ``logistics`` only "open Samhandling"; the
    case reference and headline at ``purpose``; ``detail`` at ``content``."""

    kind: AlertKind
    case_reference: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Prepared:
    """The gate's "yes": everything needed to render, already capped for this recipient.

    ``allowed_level`` is the consent level capped by the channel cap and by what the kind of
    message needs (``messages.message_level``): the one level at which the text, the HTML
    and ``calendar`` are all rendered, and which is audited as sent. ``calendar`` is the
    iTIP VCALENDAR (``METHOD:REQUEST`` for invitations and updates, ``METHOD:CANCEL`` for
    cancellations) as rendered by ``calendars`` after the attendee filter, with the
    ORGANIZER ``mailto:`` equal to the sending address; reminders and alerts carry none.
    ``withheld_terms`` are words this recipient may not read at this level (the child's
    full name, the measure, other participants' names): the dispatcher refuses to send a
    mail containing any of them, a last guard against a leaking place or agenda text.
    ``recipient_kind`` is read from the contact as it is now: it decides quiet hours and
    the wording, whatever the recipient was when the message was queued.
    """

    recipient: Recipient
    allowed_level: DisclosureLevel
    recipient_kind: RecipientKind
    meeting: MeetingDetails | None = None
    alert: AlertDetails | None = None
    answer_url: str | None = None  # accept/decline capability link
    link_url: str | None = None  # "open Samhandling" or the meeting page
    calendar: bytes | None = None
    withheld_terms: tuple[str, ...] = ()
    #: The first instant after the decision at which its answer could change by the clock alone
    #: (a grant coming into force or ending, the child's 15th birthday): not handed over from then on.
    valid_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Suppressed:
    """The gate's "no". ``reason`` is stored and audited: ids and rules, no names."""

    code: SuppressionCode
    reason: str


@dataclass(frozen=True, slots=True)
class Decisions:
    """The gate's answers for several messages, in their order, and what each rested on:
    ``basis[i]`` is opaque to the dispatcher (the data version of the message's unit, read before
    deciding) and handed back to :meth:`DisclosureGate.moved` just before sending."""

    answers: tuple[Prepared | Suppressed, ...]
    basis: tuple[tuple[str, int], ...]


class Settle(enum.StrEnum):
    """How the dispatcher finished with a row: the outcome :meth:`OutboxStore.settle` writes."""

    SENT = "sent"
    SUPPRESSED = "suppressed"
    RETRY = "retry"
    DEFERRED = "deferred"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Settlement:
    """One row's outcome, as the ``mark_*`` methods take it: ``level`` for sent, ``code`` and
    ``text`` (the reason) for suppressed, ``attempts``, ``text`` (the error) and ``until`` for a
    retry, ``until`` and ``text`` for deferred, ``attempts`` and ``text`` for dead."""

    outbox_id: str
    kind: Settle
    at: datetime
    channel: Channel = Channel.EMAIL
    level: DisclosureLevel = DisclosureLevel.NONE
    code: SuppressionCode = SuppressionCode.OTHER
    text: str = ""
    attempts: int = 0
    until: datetime | None = None


class OutboxStore(Protocol):
    """The outbox table, owned by ``coordination``.

    Every outcome method ends the claim (clears the lease). Times are aware UTC.
    """

    async def claim_due(self, now: datetime, limit: int, lease: timedelta) -> Sequence[OutboxMessage]:
        """Claim up to ``limit`` rows that are pending with ``next_attempt_at <= now``, or
        whose earlier claim's lease has run out, and hold them until ``now + lease``.
        On PostgreSQL ``FOR UPDATE SKIP LOCKED`` so that instances never share a row."""
        ...

    async def mark_sent(self, outbox_id: str, level: DisclosureLevel, now: datetime) -> None:
        """Delivered to the SMTP relay (or the mail folder) at ``level``; audit it. ``now`` is
        when the relay accepted it (read from the clock after its 250), not the gate's time."""
        ...

    async def mark_suppressed(
        self, outbox_id: str, code: SuppressionCode, reason: str, now: datetime
    ) -> None:
        """Not sent, by decision; terminal. Audit it and tell the coordinator."""
        ...

    async def schedule_retry(
        self, outbox_id: str, attempts: int, next_attempt_at: datetime, error: str, now: datetime
    ) -> None:
        """A temporary failure: store ``attempts`` (already counting this one), the error,
        and make the row due again at ``next_attempt_at``."""
        ...

    async def defer(self, outbox_id: str, until: datetime, reason: str, now: datetime) -> None:
        """Not now, and not a failure (quiet hours, an outage seen on an earlier row):
        make the row due again at ``until`` without counting an attempt."""
        ...

    async def mark_dead(self, outbox_id: str, attempts: int, error: str, now: datetime) -> None:
        """Given up: a permanent failure or too many attempts. Terminal; audit it and
        raise a coordinator alert."""
        ...

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        """Write several outcomes in one transaction, each as its ``mark_*`` method would."""
        ...


class DisclosureGate(Protocol):
    """``coordination``'s information-loop policy, asked at the moment of sending."""

    async def prepare(self, message: OutboxMessage, now: datetime) -> Prepared | Suppressed:
        """Decide, at ``now``, whether this recipient may receive this message, and at
        which level; record the decision. ``Prepared`` carries only what that level
        allows, and who the recipient is now; ``Suppressed`` says why not. A decision
        recorded here is not a disclosure: only ``OutboxStore.mark_sent`` records one."""
        ...

    async def prepare_batch(self, messages: Sequence[OutboxMessage], now: datetime) -> Decisions:
        """:meth:`prepare` for each message, in one go (one transaction, each case's consent
        facts read once), with the data versions the answers rested on."""
        ...

    async def moved(self, decisions: Decisions) -> frozenset[int]:
        """The positions of the answers whose basis has changed since they were given (a consent,
        contact or meeting change committed since): they must be decided again before sending."""
        ...
