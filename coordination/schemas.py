"""The API's request and response bodies (msgspec Structs).

Types and sizes are checked by msgspec as the body is decoded; the rules that need
the database or the clock are checked by the service and raise ``InputError``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from calendars.schedule import MeetingKind, Reason
from coordination.consent.policy import GrantorState, SectorState
from coordination.domain import (
    AuditAction,
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
from coordination.levels import Level
from coordination.models import (
    CHILD_NAME_LENGTH,
    DEFAULT_PLACE_LENGTH,
    EMAIL_LENGTH,
    FEED_LABEL_LENGTH,
    INITIALS_LENGTH,
    INTERPRETER_LANGUAGE_LENGTH,
    NAME_LENGTH,
    ORGANISATION_LENGTH,
    PHONE_LENGTH,
    REFERENCE_LENGTH,
    ROLE_LABEL_LENGTH,
    VIDEO_LINK_LENGTH,
)
from coordination.outbox.enums import OutboxStatus
from coordination.scheduling.enums import MeetingStatus, ParticipantAnswer
from notifications.ports import AlertKind, Channel, MessageKind, SuppressionCode

#: A single line of text: no control characters at all (they end up in mail headers and
#: calendar lines), so CR, LF, NUL and TAB are refused.
LINE_PATTERN = r"^[^\x00-\x1f\x7f]*$"
#: Free text may hold line breaks and tabs, but no other control characters.
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"

# Strings stored in a column take their limit from the column's size (models.py), so that a
# value too long for it is a 400 naming the field; ShortLine is for text kept in JSON or in a
# wider column.
Name = Annotated[str, Meta(min_length=1, max_length=NAME_LENGTH, pattern=LINE_PATTERN)]
ChildName = Annotated[str, Meta(min_length=1, max_length=CHILD_NAME_LENGTH, pattern=LINE_PATTERN)]
ShortLine = Annotated[str, Meta(max_length=200, pattern=LINE_PATTERN)]
RoleLabel = Annotated[str, Meta(max_length=ROLE_LABEL_LENGTH, pattern=LINE_PATTERN)]
Organisation = Annotated[str, Meta(max_length=ORGANISATION_LENGTH, pattern=LINE_PATTERN)]
InterpreterLanguage = Annotated[str, Meta(max_length=INTERPRETER_LANGUAGE_LENGTH, pattern=LINE_PATTERN)]
DefaultPlace = Annotated[str, Meta(max_length=DEFAULT_PLACE_LENGTH, pattern=LINE_PATTERN)]
Reference = Annotated[str, Meta(min_length=1, max_length=REFERENCE_LENGTH, pattern=r"^[A-Za-z0-9ÆØÅæøå._/-]+$")]
Initials = Annotated[str, Meta(min_length=1, max_length=INITIALS_LENGTH, pattern=r"^[A-Za-zÆØÅæøåÉéÜü. -]+$")]
EMAIL_PATTERN = r"^$|^[^@\s\x00-\x1f\x7f<>(),;:\"]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$"
Email = Annotated[str, Meta(max_length=EMAIL_LENGTH, pattern=EMAIL_PATTERN)]
Phone = Annotated[str, Meta(max_length=PHONE_LENGTH, pattern=r"^$|^\+?[0-9][0-9 ()-]{2,30}$")]
Note = Annotated[str, Meta(max_length=4000, pattern=TEXT_PATTERN)]
#: The largest row id any table can hold (PostgreSQL ``integer``): an id beyond it names nothing,
#: and must be refused here rather than reach the database as a value it cannot bind.
MAX_ID = 2**31 - 1
Id = Annotated[int, Meta(ge=1, le=MAX_ID)]
ClockTime = Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")]

# Descriptions of fields whose meaning their name does not give away (the OpenAPI document shows them).
AimedAtChild = Annotated[bool, Meta(
    description="The measure is aimed at the child: a child with party status must then consent too.")]
PartyStatusOverride = Annotated[bool | None, Meta(
    description="Party status decided by the coordinator; null: it follows the child's age (15).")]
OrderDate = Annotated[date | None, Meta(
    description="When the county board ordered the measure: required for an ordered measure, else null.")]
DailyCare = Annotated[bool, Meta(
    description="Has daily care of the child (daglig omsorg): their consent is needed for partner sectors.")]
Active = Annotated[bool, Meta(description="False deactivates the contact: nothing more is sent to them.")]
ParentsTold = Annotated[bool, Meta(
    description="For a child talk (barnesamtale): the parents may learn when it is. It belongs to the child, "
                "so they are not told unless the coordinator says so.")]


class WeeklyWindow(Struct, frozen=True, forbid_unknown_fields=True):
    """A recurring window, local time: weekday 0 = Monday."""

    weekday: Annotated[int, Meta(ge=0, le=6)]
    start: ClockTime
    end: ClockTime


class CaseIn(Struct, forbid_unknown_fields=True):
    reference: Reference
    child_given_name: ChildName
    child_initials: Initials
    child_birth_date: date
    language: Language = Language.NB
    aimed_at_child: AimedAtChild = True
    measure_type: MeasureType = MeasureType.VOLUNTARY
    order_date: OrderDate = None
    party_status_override: PartyStatusOverride = None
    coordinator_ids: list[Id] = msgspec.field(default_factory=list)


class CasePatch(Struct, forbid_unknown_fields=True):
    child_given_name: ChildName | UnsetType = UNSET
    child_initials: Initials | UnsetType = UNSET
    child_birth_date: date | UnsetType = UNSET
    language: Language | UnsetType = UNSET
    aimed_at_child: AimedAtChild | UnsetType = UNSET
    measure_type: MeasureType | UnsetType = UNSET
    order_date: date | UnsetType | None = UNSET
    party_status_override: bool | UnsetType | None = UNSET


class CaseOut(Struct):
    id: int
    reference: str
    child_given_name: str
    child_initials: str
    child_birth_date: date
    child_age: int
    party_status: Annotated[bool, Meta(description="The child has party status today (by age or override).")]
    language: Language
    aimed_at_child: AimedAtChild
    measure_type: MeasureType
    order_date: OrderDate
    party_status_override: PartyStatusOverride
    coordinator_ids: list[int]


class ContactIn(Struct, forbid_unknown_fields=True):
    name: Name
    role: Role
    role_label: RoleLabel = ""
    sector: Annotated[Sector | None, Meta(description="Null: the role's default sector.")] = None
    organisation: Organisation = ""
    email: Email = ""
    phone: Phone = ""
    notify_by: Annotated[NotifyBy | None, Meta(
        description="How to tell them: email, sms or both. Null: both for a family member with a mobile "
                    "number, else email. SMS needs a mobile number.")] = None
    language: Language = Language.NB
    daily_care: DailyCare = False
    needs_interpreter: bool = False
    interpreter_language: InterpreterLanguage = ""
    availability: Annotated[list[WeeklyWindow], Meta(max_length=50)] = msgspec.field(
        default_factory=list
    )


class ContactPatch(Struct, forbid_unknown_fields=True):
    name: Name | UnsetType = UNSET
    role: Role | UnsetType = UNSET
    role_label: RoleLabel | UnsetType = UNSET
    sector: Sector | UnsetType = UNSET
    organisation: Organisation | UnsetType = UNSET
    email: Email | UnsetType = UNSET
    phone: Phone | UnsetType = UNSET
    notify_by: NotifyBy | UnsetType = UNSET
    language: Language | UnsetType = UNSET
    daily_care: DailyCare | UnsetType = UNSET
    needs_interpreter: bool | UnsetType = UNSET
    interpreter_language: InterpreterLanguage | UnsetType = UNSET
    availability: Annotated[list[WeeklyWindow], Meta(max_length=50)] | UnsetType = UNSET
    active: Active | UnsetType = UNSET


class ContactOut(Struct):
    id: int
    case_id: int
    name: str
    role: Role
    role_label: str
    sector: Sector
    organisation: str
    email: str
    phone: str
    mobile: Annotated[str, Meta(description="The phone number in E.164 when it is a mobile number; empty otherwise.")]
    notify_by: NotifyBy
    language: Language
    daily_care: DailyCare
    needs_interpreter: bool
    interpreter_language: str
    availability: list[WeeklyWindow]
    active: Active


class ConsentIn(Struct, forbid_unknown_fields=True):
    grantor_contact_id: Annotated[Id, Meta(description="Who consents: a contact with daily care, or the child.")]
    sector: Sector
    status: ConsentStatus
    form: ConsentForm
    level: Annotated[Level | None, Meta(
        description="The most a grant lets the sector learn (required for a grant); none or null otherwise.")] = None
    valid_from: Annotated[datetime | None, Meta(description="Null: from now.")] = None
    valid_until: Annotated[datetime | None, Meta(description="Null: until withdrawn (grants only).")] = None
    note: Note = ""


class ConsentOut(Struct):
    id: int
    case_id: int
    grantor_contact_id: int
    sector: Sector
    status: ConsentStatus
    level: Level
    valid_from: datetime
    valid_until: datetime | None
    form: ConsentForm
    recorded_by_user_id: int
    recorded_at: datetime
    note: str


class GrantorOut(Struct):
    contact_id: Annotated[int | None, Meta(
        description="Null: the child with party status, who has no contact in the list.")]
    name: str
    as_child: Annotated[bool, Meta(description="Asked of the child, because of party status.")]
    status: GrantorState
    level: Level
    consent_record_id: int | None
    valid_until: datetime | None


class LevelAt(Struct):
    at: datetime
    level: Level
    sector_state: SectorState
    grantors: list[GrantorOut]
    reasons: list[str]


class ContactLoop(Struct):
    contact_id: int
    name: str
    role: Role
    sector: Sector
    needs_consent: Annotated[bool, Meta(
        description="The contact's sector is an outside one; the family and the service need no consent.")]
    now: LevelAt
    at: Annotated[LevelAt | None, Meta(description="At the instant asked for with ``at``, if any.")]


class InformationLoopsOut(Struct):
    case_id: int
    language: Language
    contacts: list[ContactLoop]


class AuditOut(Struct):
    id: int
    at: datetime
    actor: str
    action: AuditAction
    subject: str
    detail: dict[str, object]


class UserIn(Struct, forbid_unknown_fields=True):
    name: Name
    role: UserRole
    email: Email = ""


class UserOut(Struct):
    id: int
    unit_id: int
    name: str
    role: UserRole
    email: str
    active: bool


class UserCreated(Struct):
    user: UserOut
    token: str


# --- plans and meetings ----------------------------------------------------------------

Hours = Annotated[int, Meta(ge=1, le=336)]
ChildTakesPart = Annotated[bool, Meta(
    description="The child takes part: child talks are planned, and the child's wishes bound their meetings.")]
Minutes = Annotated[int, Meta(ge=5, le=720)]
Url = Annotated[str, Meta(max_length=VIDEO_LINK_LENGTH, pattern=r"^$|^https://[^\s\x00-\x1f\x7f\"<>]+$")]


class MeasureIn(Struct, forbid_unknown_fields=True):
    """A measure of the plan, e.g. "milieu therapist at home 2×/week, 60 min, Tue/Thu 17:00".
    ``contact_ids`` are the people busy while it runs (the schedule keeps clear of it)."""

    what: Name
    how_often: ShortLine = ""
    weekly: Annotated[list[WeeklyWindow], Meta(max_length=14)] = msgspec.field(default_factory=list)
    contact_ids: list[Id] = msgspec.field(default_factory=list)


class ChildWishesIn(Struct, forbid_unknown_fields=True):
    """The child's wishes for meetings they attend: "not after 19:00" means over by 19:00."""

    not_before: ClockTime | None = None
    not_after: ClockTime | None = None
    after_school: ClockTime | None = None


class ClosureIn(Struct, forbid_unknown_fields=True):
    first: date
    last: date
    label: ShortLine = ""


class RulesIn(Struct, forbid_unknown_fields=True):
    """Overrides of the schedule's defaults (DESIGN.md); anything left out keeps its default."""

    startup_within_days: Annotated[int, Meta(ge=0, le=90)] | UnsetType = UNSET
    weekly_status: bool | UnsetType = UNSET
    mini_evaluation_weeks: tuple[int, int] | UnsetType = UNSET
    main_evaluation_months: Annotated[int, Meta(ge=1, le=12)] | UnsetType = UNSET
    child_talks: bool | UnsetType = UNSET
    child_talk_days_before: tuple[int, int] | UnsetType = UNSET
    durations: dict[MeetingKind, Minutes] | UnsetType = UNSET
    office_hours: Annotated[list[WeeklyWindow], Meta(max_length=14)] | UnsetType = UNSET
    reminder_offsets_hours: Annotated[list[Hours], Meta(max_length=5)] | UnsetType = UNSET


class GoalIn(Struct, forbid_unknown_fields=True):
    """A goal as the practice guide's plan template has it (SMART): what is to change, the
    indicator it is seen by, the level today, the level aimed at, and by when."""

    goal: Annotated[str, Meta(min_length=1, max_length=200, pattern=LINE_PATTERN)]
    indicator: ShortLine = ""
    level_now: ShortLine = ""
    target: ShortLine = ""
    deadline: Annotated[date | None, Meta(description="Within the plan's period; null: the plan's end.")] = None


PlanGoals = Annotated[str, Meta(
    max_length=4000, pattern=TEXT_PATTERN,
    description="The purpose and goals in words the child understands; content level in messages.")]
SmartGoals = Annotated[list[GoalIn], Meta(
    max_length=10, description="The goals one by one, with indicator, today's level, target and deadline.")]


class PlanIn(Struct, forbid_unknown_fields=True):
    start_date: date
    expected_end: date
    day_care: bool = False
    goals: PlanGoals = ""
    smart_goals: SmartGoals = msgspec.field(default_factory=list)
    default_place: DefaultPlace = ""
    measures: Annotated[list[MeasureIn], Meta(max_length=20)] = msgspec.field(default_factory=list)
    member_ids: Annotated[list[Id] | None, Meta(
        description="The contacts in the planned meetings; null: every active contact of the case.")] = None
    child_takes_part: ChildTakesPart = True
    child_wishes: ChildWishesIn | None = None
    closures: Annotated[list[ClosureIn], Meta(max_length=20)] = msgspec.field(default_factory=list)
    rules: RulesIn = msgspec.field(default_factory=RulesIn)


class ParticipantOut(Struct):
    contact_id: int
    name: str
    role: Role
    sector: Sector
    answer: ParticipantAnswer


class MeetingOut(Struct):
    id: int
    uid: str
    kind: MeetingKind
    series_key: Annotated[str | None, Meta(
        description="Its place in the plan's series, e.g. main_evaluation#2; null for a meeting added by hand.")]
    start: datetime
    end: datetime
    place: str
    video_link: str
    agenda: str
    status: MeetingStatus
    sequence: Annotated[int, Meta(description="The iCalendar SEQUENCE: raised by every change invitees are told of.")]
    parents_told: ParentsTold
    pinned: Annotated[bool, Meta(
        description="Moved or confirmed by a coordinator: a plan revision leaves it where it is.")]
    participants: list[ParticipantOut]


Explanation = Annotated[dict[str, object] | None, Meta(
    description="When no slot fits: which constraint blocks, and the nearest alternatives.")]


class UnschedulableOut(Struct):
    kind: MeetingKind
    series_key: str
    window_start: datetime
    window_end: datetime
    reason: Reason
    explanation: Explanation


class PlanOut(Struct):
    id: int
    case_id: int
    revision: int
    start_date: date
    expected_end: date
    day_care: bool
    goals: str
    smart_goals: list[GoalIn]
    default_place: str
    measures: list[MeasureIn]
    member_ids: list[int]
    child_takes_part: ChildTakesPart
    child_wishes: ChildWishesIn | None
    closures: list[ClosureIn]
    rules: RulesIn
    meetings: list[MeetingOut]
    unschedulable: list[UnschedulableOut]


class MeetingIn(Struct, forbid_unknown_fields=True):
    """An ad hoc meeting, or one the coordinator places by hand."""

    start: datetime
    end: datetime
    participant_ids: Annotated[list[Id], Meta(min_length=1, max_length=60)]
    kind: Annotated[MeetingKind, Meta(description="Default: ad_hoc.")] = MeetingKind.AD_HOC
    place: ShortLine = ""
    video_link: Url = ""
    agenda: ShortLine = ""
    confirm: Annotated[bool, Meta(description="Confirm at once, sending the invitations; false leaves it proposed.")
                       ] = True


class MeetingPatch(Struct, forbid_unknown_fields=True):
    start: datetime | UnsetType = UNSET
    end: datetime | UnsetType = UNSET
    place: ShortLine | UnsetType = UNSET
    video_link: Url | UnsetType = UNSET
    agenda: ShortLine | UnsetType = UNSET
    parents_told: ParentsTold | UnsetType = UNSET
    participant_ids: Annotated[list[Id], Meta(min_length=1, max_length=60)] | UnsetType = UNSET


class AnswerIn(Struct, forbid_unknown_fields=True):
    answer: ParticipantAnswer


class SlotSearchIn(Struct, forbid_unknown_fields=True):
    window_start: datetime
    window_end: datetime
    duration_minutes: Minutes
    participant_ids: Annotated[list[Id], Meta(min_length=1, max_length=60)]


class SlotSearchOut(Struct):
    feasible: bool
    slot: dict[str, object] | None
    absent: Annotated[list[int], Meta(
        description="Contacts left out of the slot: optional participants, only when no time suits everyone.")]
    explanation: Explanation
    explanation_text: Annotated[list[str], Meta(description="The explanation in words (bokmål).")]


# --- calendar feeds --------------------------------------------------------------------

FeedLabel = Annotated[str, Meta(max_length=FEED_LABEL_LENGTH, pattern=LINE_PATTERN)]


class CaseFeedIn(Struct, forbid_unknown_fields=True):
    """A subscription for the case team (``case``), or for one contact (``contact``: only the
    meetings they take part in, at their consent level)."""

    #: The ``FeedScope`` values a case feed may have (msgspec takes no enum members in a Literal).
    scope: Literal["case", "contact"]
    contact_id: Id | None = None
    label: FeedLabel = ""


class MyFeedIn(Struct, forbid_unknown_fields=True):
    """A subscription to the meetings of every case the signed-in user may open."""

    label: FeedLabel = ""


class FeedOut(Struct):
    """A subscription as listed: never its token, which is shown only once."""

    id: int
    scope: FeedScope
    label: str
    case_id: int | None
    contact_id: int | None
    user_id: int | None
    created_by_user_id: int
    created_at: datetime
    revoked_at: datetime | None
    last_seen_at: Annotated[datetime | None, Meta(description="When a calendar client last fetched it.")]


class FeedCreated(FeedOut):
    """The new subscription with its address; the token cannot be shown again."""

    url: str
    webcal_url: Annotated[str, Meta(description="The same address as webcal://, which calendar apps subscribe to.")]
    token: str


class AlertOut(Struct):
    id: int
    case_id: int | None
    kind: AlertKind
    text: Annotated[str, Meta(description="What happened, in bokmål, naming the people concerned.")]
    detail: Annotated[dict[str, object], Meta(description="The ids, dates and codes behind the alert.")]
    due_at: Annotated[datetime | None, Meta(description="The deadline it warns of, if any.")]
    created_at: datetime
    resolved_at: datetime | None


#: An outbox row has no level until it is sent and no suppression code unless it is suppressed;
#: the answer then says "" (msgspec cannot type "a member or empty"), so the allowed values are
#: listed for the document (Litestar takes ``extra`` into the field's schema).
SentLevel = Annotated[str, Meta(
    description="The level the message was sent at; empty until it is sent.",
    extra_json_schema={"extra": {"enum": ["", *Level]}})]
SuppressedCode = Annotated[str, Meta(
    description="Why the message was not sent; empty unless it was suppressed.",
    extra_json_schema={"extra": {"enum": ["", *SuppressionCode]}})]


class OutboxOut(Struct):
    id: int
    kind: MessageKind
    channel: Annotated[Channel, Meta(description="email (iMIP), or sms (a content-free notice or a reminder).")]
    recipient_contact_id: int | None
    recipient_user_id: int | None
    meeting_id: int | None
    due_at: datetime
    status: OutboxStatus
    attempts: Annotated[int, Meta(description="Failed delivery attempts so far.")]
    level: SentLevel
    suppressed_code: SuppressedCode
    suppressed_reason: Annotated[str, Meta(description="Why it was not sent, in rules and ids (never names).")]
    last_error: str
    sent_at: datetime | None


ShowChildName = Annotated[bool, Meta(
    description="The child's given name in the feeds of the case's own coordinators (never a leader's).")]


class UnitPatch(Struct, forbid_unknown_fields=True):
    """The unit's own settings; admins change them."""

    phone: Phone | UnsetType = UNSET
    show_child_name_in_feeds: ShowChildName | UnsetType = UNSET
    closures: Annotated[list[ClosureIn], Meta(max_length=50)] | UnsetType = UNSET


class UnitOut(Struct):
    id: int
    name: str
    phone: str
    show_child_name_in_feeds: ShowChildName
    closures: list[ClosureIn]
