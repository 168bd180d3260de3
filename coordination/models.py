"""The tables. Consent and audit are append-only: the service never updates or deletes
their rows, a change is a new row."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Literal, TypeVar

from sqlalchemy import JSON as SAJSON
from sqlalchemy import Column, Index, String, Text, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from calendars.schedule import MeetingKind
from coordination.db import UTCDateTime
from coordination.domain import (
    AuditAction,
    CaseStatus,
    ConsentForm,
    ConsentStatus,
    Language,
    MeasureType,
    NotifyBy,
    Role,
    Sector,
    UserRole,
)
from coordination.feeds.enums import FeedScope
from coordination.outbox.enums import OutboxStatus
from coordination.replies.enums import ReplyOutcome
from coordination.scheduling.enums import AnswerChannel, MeetingStatus, ParticipantAnswer
from notifications.inbound import MESSAGE_KEY_LENGTH, InboundKind
from notifications.ports import AlertKind, Channel, DisclosureLevel, MessageKind, RecipientKind, SuppressionCode

#: Sizes of the columns that hold what people type. The request schemas (``schemas.py``) take
#: their limits from here, so that a value too long for its column is refused with a 400 naming
#: the field, never sent to the database (PostgreSQL refuses it with the row in its error;
#: SQLite would keep it). Changing one changes a column: it needs a migration.
NAME_LENGTH = 200
REFERENCE_LENGTH = 40
CHILD_NAME_LENGTH = 100
INITIALS_LENGTH = 10
ROLE_LABEL_LENGTH = 100
ORGANISATION_LENGTH = 200
EMAIL_LENGTH = 254
PHONE_LENGTH = 40
#: E.164: a plus and at most 15 digits.
MOBILE_LENGTH = 16
INTERPRETER_LANGUAGE_LENGTH = 50
DEFAULT_PLACE_LENGTH = 200
VIDEO_LINK_LENGTH = 500
FEED_LABEL_LENGTH = 100
#: An OpenID Connect issuer or subject (subjects are at most 255 ASCII characters, OIDC Core 2).
OIDC_ID_LENGTH = 255


def _utc(nullable: bool = False, index: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable, index=index)


E = TypeVar("E", bound=enum.StrEnum)


class EnumString(TypeDecorator[E | Literal[""]]):
    """A state stored as its plain string value in a VARCHAR of the given length, read back as
    the enum member: the rows and the migrations are those of a string column, while the code
    sees members. A value outside the enum is refused before it reaches the database.

    ``allows_empty``: the column holds "" while the state does not apply yet (an outbox row not
    yet sent has no level), and the code sees "" too."""

    impl = String
    cache_ok = True

    def __init__(self, enum_type: type[E], length: int, *, allows_empty: bool = False) -> None:
        super().__init__(length)
        self.enum_type = enum_type
        self.length = length
        self.allows_empty = allows_empty

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        member = self.member(value)
        return member.value if isinstance(member, enum.Enum) else member

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | Literal[""] | None:
        return self.member(value)

    def member(self, value: E | str | None) -> E | Literal[""] | None:
        if value is None:
            return None
        if self.allows_empty and value == "":
            return ""
        return self.enum_type(value)


class _Row(SQLModel):
    """A table whose states are members from the moment they are set, not only once read back:
    a row made with a plain string (a test, say) compares as the code expects (``is``)."""

    def __setattr__(self, name: str, value: object) -> None:
        column = self.__table__.columns.get(name)  # type: ignore[attr-defined]
        if column is not None and isinstance(column.type, EnumString):
            value = column.type.member(value)
        super().__setattr__(name, value)


class Unit(SQLModel, table=True):
    """A child welfare service (barneverntjeneste)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=NAME_LENGTH)
    phone: str = Field(default="", max_length=PHONE_LENGTH)
    show_child_name_in_feeds: bool = False
    #: Bumped by every change that can alter a feed, so feed caches know when to refresh.
    data_version: int = 0
    #: The unit's closures (e.g. summer), [{"first": "2027-07-05", "last": "2027-07-30"}].
    closures: list[dict[str, object]] = Field(default_factory=list, sa_type=SAJSON)
    created_at: datetime = Field(sa_column=_utc())


class User(_Row, table=True):
    #: One person at the identity provider is one user: a subject is unique within its issuer.
    __table_args__ = (Index("ix_user_oidc_identity", "oidc_issuer", "oidc_subject", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    name: str = Field(max_length=NAME_LENGTH)
    email: str = Field(default="", max_length=EMAIL_LENGTH)
    role: UserRole = Field(sa_type=EnumString(UserRole, 20))
    token_hash: str = Field(sa_type=String(64), unique=True)
    active: bool = True
    created_at: datetime = Field(sa_column=_utc())
    #: The OpenID Connect identity (issuer and subject) this user signs in with, linked at the
    #: first sign-in (``access.oidc.match_user``).
    oidc_issuer: str | None = Field(default=None, sa_type=String(OIDC_ID_LENGTH))
    oidc_subject: str | None = Field(default=None, sa_type=String(OIDC_ID_LENGTH))
    #: The national identity number that ID-porten and Ansattporten send (as ``pid``, with no
    #: e-mail), for the first sign-in only: erased once the identity is linked.
    pending_pid: str | None = Field(default=None, sa_type=String(11))


class Case(_Row, table=True):
    __table_args__ = (UniqueConstraint("unit_id", "reference"),)

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    reference: str = Field(max_length=REFERENCE_LENGTH)
    child_given_name: str = Field(max_length=CHILD_NAME_LENGTH)
    child_initials: str = Field(max_length=INITIALS_LENGTH)
    child_birth_date: date
    language: Language = Field(default=Language.NB, sa_type=EnumString(Language, 5))
    aimed_at_child: bool = True
    measure_type: MeasureType = Field(default=MeasureType.VOLUNTARY, sa_type=EnumString(MeasureType, 20))
    order_date: date | None = None
    party_status_override: bool | None = None
    created_at: datetime = Field(sa_column=_utc())
    updated_at: datetime = Field(sa_column=_utc())
    closed_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    status: CaseStatus = Field(default=CaseStatus.OPEN, sa_type=EnumString(CaseStatus, 10))
    #: When the case record (for the journal) was last produced; kept in the tombstone.
    record_produced_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    #: When its personal data was deleted (``records.retention``); the row is then a tombstone.
    purged_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class CaseCoordinator(SQLModel, table=True):
    case_id: int = Field(foreign_key="case.id", primary_key=True)
    user_id: int = Field(foreign_key="user.id", primary_key=True, index=True)


class Contact(_Row, table=True):
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    name: str = Field(max_length=NAME_LENGTH)
    role: Role = Field(sa_type=EnumString(Role, 30))
    role_label: str = Field(default="", max_length=ROLE_LABEL_LENGTH)
    sector: Sector = Field(sa_type=EnumString(Sector, 20))
    organisation: str = Field(default="", max_length=ORGANISATION_LENGTH)
    email: str = Field(default="", max_length=EMAIL_LENGTH)
    phone: str = Field(default="", max_length=PHONE_LENGTH)
    #: ``phone`` in E.164 when it is a mobile number (parsed with ``phonenumbers``, region NO): where SMS go.
    mobile: str = Field(default="", max_length=MOBILE_LENGTH)
    notify_by: NotifyBy = Field(default=NotifyBy.EMAIL, sa_type=EnumString(NotifyBy, 10))
    language: Language = Field(default=Language.NB, sa_type=EnumString(Language, 5))
    daily_care: bool = False
    needs_interpreter: bool = False
    interpreter_language: str = Field(default="", max_length=INTERPRETER_LANGUAGE_LENGTH)
    availability: list[dict[str, object]] = Field(default_factory=list, sa_type=SAJSON)
    active: bool = True
    created_at: datetime = Field(sa_column=_utc())
    updated_at: datetime = Field(sa_column=_utc())


class ConsentRecord(_Row, table=True):
    """One act of consent: granted, refused or withdrawn, by one grantor for one sector."""

    __table_args__ = (Index("ix_consent_case_sector", "case_id", "sector"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id")
    grantor_contact_id: int = Field(foreign_key="contact.id", index=True)
    sector: Sector = Field(sa_type=EnumString(Sector, 20))
    status: ConsentStatus = Field(sa_type=EnumString(ConsentStatus, 20))
    level: DisclosureLevel = Field(default=DisclosureLevel.NONE, sa_type=EnumString(DisclosureLevel, 20))
    valid_from: datetime = Field(sa_column=_utc())
    valid_until: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    form: ConsentForm = Field(sa_type=EnumString(ConsentForm, 10))
    recorded_by_user_id: int = Field(foreign_key="user.id")
    recorded_at: datetime = Field(sa_column=_utc())
    note: str = Field(default="", sa_type=Text)


class AuditEntry(_Row, table=True):
    """Who changed, read or was told what; never updated or deleted."""

    __table_args__ = (Index("ix_audit_case_at", "case_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    case_id: int | None = Field(default=None, foreign_key="case.id")
    actor: str = Field(max_length=60)
    action: AuditAction = Field(sa_type=EnumString(AuditAction, 60))
    subject: str = Field(default="", max_length=120)
    detail: dict[str, object] = Field(default_factory=dict, sa_type=SAJSON)
    at: datetime = Field(sa_column=_utc())


class Plan(SQLModel, table=True):
    """The case's tiltaksplan as it stands now; every change also appends a PlanRevision."""

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", unique=True)
    revision: int = 1
    start_date: date
    expected_end: date
    day_care: bool = False
    goals: str = Field(default="", sa_type=Text)
    #: The goals one by one (``schemas.GoalIn``): indicator, today's level, target, deadline.
    smart_goals: list[dict[str, object]] = Field(default_factory=list, sa_type=SAJSON)
    #: Where planned meetings are held unless moved; a neutral address (it is sent by e-mail).
    default_place: str = Field(default="", max_length=DEFAULT_PLACE_LENGTH)
    measures: list[dict[str, object]] = Field(default_factory=list, sa_type=SAJSON)
    member_ids: list[int] = Field(default_factory=list, sa_type=SAJSON)
    child_takes_part: bool = True
    child_wishes: dict[str, object] = Field(default_factory=dict, sa_type=SAJSON)
    closures: list[dict[str, object]] = Field(default_factory=list, sa_type=SAJSON)
    rules: dict[str, object] = Field(default_factory=dict, sa_type=SAJSON)
    created_at: datetime = Field(sa_column=_utc())
    updated_at: datetime = Field(sa_column=_utc())


class PlanRevision(SQLModel, table=True):
    """An append-only snapshot of the plan at each revision."""

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="plan.id", index=True)
    revision: int
    snapshot: dict[str, object] = Field(default_factory=dict, sa_type=SAJSON)
    recorded_by_user_id: int = Field(foreign_key="user.id")
    recorded_at: datetime = Field(sa_column=_utc())


class Meeting(_Row, table=True):
    """One meeting. ``series_key`` ties a planned meeting to its place in the plan's series
    (e.g. ``main_evaluation#2``) so that a revision re-plans it rather than adding a twin."""

    __table_args__ = (
        Index("ix_meeting_case_start", "case_id", "start"),
        UniqueConstraint("case_id", "series_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id")
    uid: str = Field(max_length=120, unique=True)
    kind: MeetingKind = Field(sa_type=EnumString(MeetingKind, 30))
    series_key: str | None = Field(default=None, max_length=80)
    series_no: int = 0
    before_key: str | None = Field(default=None, max_length=80)
    start: datetime = Field(sa_column=_utc())
    end: datetime = Field(sa_column=_utc())
    place: str = Field(default="", max_length=300)
    video_link: str = Field(default="", max_length=VIDEO_LINK_LENGTH)
    agenda: str = Field(default="", max_length=300)
    status: MeetingStatus = Field(default=MeetingStatus.PROPOSED, sa_type=EnumString(MeetingStatus, 20))
    ical_sequence: int = 0
    parents_told: bool = False
    #: Moved or confirmed by a coordinator: a plan revision keeps it where it is.
    pinned: bool = False
    cancelled_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    created_at: datetime = Field(sa_column=_utc())
    updated_at: datetime = Field(sa_column=_utc())


class MeetingParticipant(_Row, table=True):
    meeting_id: int = Field(foreign_key="meeting.id", primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", primary_key=True, index=True)
    partstat: ParticipantAnswer = Field(
        default=ParticipantAnswer.NEEDS_ACTION, sa_type=EnumString(ParticipantAnswer, 20))
    answered_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    #: How the answer came; empty until there is one.
    answered_via: AnswerChannel | Literal[""] = Field(
        default="", sa_type=EnumString(AnswerChannel, 20, allows_empty=True))


class FeedToken(_Row, table=True):
    """A calendar subscription: a capability URL whose token is stored only as a hash."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(sa_type=String(64), unique=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    scope: FeedScope = Field(sa_type=EnumString(FeedScope, 20))
    user_id: int | None = Field(default=None, foreign_key="user.id")
    case_id: int | None = Field(default=None, foreign_key="case.id", index=True)
    contact_id: int | None = Field(default=None, foreign_key="contact.id")
    label: str = Field(default="", max_length=FEED_LABEL_LENGTH)
    created_by_user_id: int = Field(foreign_key="user.id")
    created_at: datetime = Field(sa_column=_utc())
    revoked_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    last_etag: str = Field(default="", max_length=80)
    last_modified: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    last_seen_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class WebSession(SQLModel, table=True):
    """A signed-in browser: the cookie holds a random session id, stored here only as a hash."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(sa_type=String(64), unique=True, index=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    created_at: datetime = Field(sa_column=_utc())
    last_seen_at: datetime = Field(sa_column=_utc())
    ended_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    #: The identity provider's ID token of this sign-in, sent back as ``id_token_hint`` at sign-out.
    id_token: str | None = Field(default=None, sa_type=Text)


class OidcLogin(SQLModel, table=True):
    """A sign-in under way at the identity provider, for ten minutes at most: what the callback
    checks (``state``, ``nonce``) and proves (the PKCE ``code_verifier``). The browser holds a
    random id in a cookie, stored here only as a hash, so that the answer is taken only in the
    browser that asked; the row is deleted when the answer comes."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(sa_type=String(64), unique=True)
    state: str = Field(sa_type=String(64))
    nonce: str = Field(sa_type=String(64))
    code_verifier: str = Field(sa_type=String(128))
    next_path: str = Field(sa_type=Text)
    created_at: datetime = Field(sa_column=_utc())


class AnswerToken(SQLModel, table=True):
    """The accept/decline link in an invitation: one per participant and meeting, for its life.
    The token is derived from the server secret and ``salt`` (``dispatch.answer_link``), so every
    copy of the invitation carries the same link; only its hash is stored."""

    __table_args__ = (UniqueConstraint("meeting_id", "contact_id"),)

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(sa_type=String(64), unique=True)
    salt: str = Field(default="", sa_type=String(32))
    meeting_id: int = Field(foreign_key="meeting.id")
    contact_id: int = Field(foreign_key="contact.id", index=True)
    created_at: datetime = Field(sa_column=_utc())
    revoked_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class OutboxMessage(_Row, table=True):
    """A message to send, written in the same transaction as the change that causes it."""

    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=200, unique=True)
    unit_id: int = Field(foreign_key="unit.id")
    case_id: int | None = Field(default=None, foreign_key="case.id", index=True)
    kind: MessageKind = Field(sa_type=EnumString(MessageKind, 20))
    channel: Channel = Field(default=Channel.EMAIL, sa_type=EnumString(Channel, 10))
    recipient_contact_id: int | None = Field(default=None, foreign_key="contact.id", index=True)
    recipient_user_id: int | None = Field(default=None, foreign_key="user.id")
    recipient_kind: RecipientKind = Field(sa_type=EnumString(RecipientKind, 20))
    meeting_id: int | None = Field(default=None, foreign_key="meeting.id", index=True)
    meeting_sequence: int | None = None
    alert_id: int | None = Field(default=None, foreign_key="alert.id", index=True)
    due_at: datetime = Field(sa_column=_utc())
    next_attempt_at: datetime = Field(sa_column=_utc())
    status: OutboxStatus = Field(default=OutboxStatus.PENDING, sa_type=EnumString(OutboxStatus, 20))
    attempts: int = 0
    lease_until: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    claimed_by: str = Field(default="", max_length=80)
    last_error: str = Field(default="", max_length=500)
    #: Empty unless the row was suppressed.
    suppressed_code: SuppressionCode | Literal[""] = Field(
        default="", sa_type=EnumString(SuppressionCode, 40, allows_empty=True))
    suppressed_reason: str = Field(default="", max_length=500)
    #: The consent policy's reasons when it stopped the row, typed (``outbox.store.reasons_of``):
    #: rule codes and ids, never a name.
    suppressed_reasons: list[dict[str, object]] = Field(default_factory=list, sa_type=SAJSON)
    #: The level it was sent at; empty until then.
    level: DisclosureLevel | Literal[""] = Field(default="", sa_type=EnumString(DisclosureLevel, 20, allows_empty=True))
    message_id: str = Field(max_length=200)
    #: The address (e-mail, or mobile number for an SMS) the gate last prepared the message for:
    #: a calendar's reply is matched against it, not against the contact's address of today.
    sent_to: str = Field(default="", max_length=EMAIL_LENGTH)
    created_at: datetime = Field(sa_column=_utc())
    sent_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    updated_at: datetime = Field(sa_column=_utc())


class Alert(_Row, table=True):
    """Something the coordinator must act on; ``key`` keeps one alert per cause."""

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    case_id: int | None = Field(default=None, foreign_key="case.id", index=True)
    kind: AlertKind = Field(sa_type=EnumString(AlertKind, 40))
    key: str = Field(max_length=200, unique=True)
    detail: dict[str, object] = Field(default_factory=dict, sa_type=SAJSON)
    due_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    created_at: datetime = Field(sa_column=_utc())
    resolved_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class InboundMessage(_Row, table=True):
    """A message read from the ORGANIZER mailbox, once: ``message_key`` (its Message-ID) is
    unique, and the row is written in the same transaction as what the message changes, so that
    two instances reading one mailbox never apply one answer twice. It keeps what became of the
    message and the ids it concerned, never its text or addresses."""

    id: int | None = Field(default=None, primary_key=True)
    message_key: str = Field(sa_type=String(MESSAGE_KEY_LENGTH), unique=True)
    kind: InboundKind = Field(sa_type=EnumString(InboundKind, 20))
    outcome: ReplyOutcome = Field(sa_type=EnumString(ReplyOutcome, 30))
    case_id: int | None = Field(default=None, foreign_key="case.id", index=True)
    meeting_id: int | None = Field(default=None, foreign_key="meeting.id")
    contact_id: int | None = Field(default=None, foreign_key="contact.id")
    outbox_id: int | None = Field(default=None, foreign_key="outboxmessage.id")
    received_at: datetime = Field(sa_column=_utc())
