"""The API's request and response bodies (msgspec Structs).

Types and sizes are checked by msgspec as the body is decoded; the rules that need
the database or the clock are checked by the service and raise ``InputError``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from coordination.domain import (
    ConsentForm,
    ConsentStatus,
    Language,
    MeasureType,
    Role,
    Sector,
    UserRole,
)
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
    aimed_at_child: bool = True
    measure_type: MeasureType = MeasureType.VOLUNTARY
    order_date: date | None = None
    party_status_override: bool | None = None
    coordinator_ids: list[Id] = msgspec.field(default_factory=list)


class CasePatch(Struct, forbid_unknown_fields=True):
    child_given_name: ChildName | UnsetType = UNSET
    child_initials: Initials | UnsetType = UNSET
    child_birth_date: date | UnsetType = UNSET
    language: Language | UnsetType = UNSET
    aimed_at_child: bool | UnsetType = UNSET
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
    party_status: bool
    language: Language
    aimed_at_child: bool
    measure_type: MeasureType
    order_date: date | None
    party_status_override: bool | None
    coordinator_ids: list[int]


class ContactIn(Struct, forbid_unknown_fields=True):
    name: Name
    role: Role
    role_label: RoleLabel = ""
    sector: Sector | None = None
    organisation: Organisation = ""
    email: Email = ""
    phone: Phone = ""
    language: Language = Language.NB
    daily_care: bool = False
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
    language: Language | UnsetType = UNSET
    daily_care: bool | UnsetType = UNSET
    needs_interpreter: bool | UnsetType = UNSET
    interpreter_language: InterpreterLanguage | UnsetType = UNSET
    availability: Annotated[list[WeeklyWindow], Meta(max_length=50)] | UnsetType = UNSET
    active: bool | UnsetType = UNSET


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
    language: Language
    daily_care: bool
    needs_interpreter: bool
    interpreter_language: str
    availability: list[WeeklyWindow]
    active: bool


class ConsentIn(Struct, forbid_unknown_fields=True):
    grantor_contact_id: Id
    sector: Sector
    status: ConsentStatus
    form: ConsentForm
    level: Level | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
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
    contact_id: int | None  # None: the child with party status, who has no contact in the list
    name: str
    as_child: bool
    status: str
    level: Level
    consent_record_id: int | None
    valid_until: datetime | None


class LevelAt(Struct):
    at: datetime
    level: Level
    sector_state: str
    grantors: list[GrantorOut]
    reasons: list[str]


class ContactLoop(Struct):
    contact_id: int
    name: str
    role: Role
    sector: Sector
    needs_consent: bool
    now: LevelAt
    at: LevelAt | None


class InformationLoopsOut(Struct):
    case_id: int
    language: Language
    contacts: list[ContactLoop]


class AuditOut(Struct):
    id: int
    at: datetime
    actor: str
    action: str
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


class ErrorOut(Struct):
    status_code: int
    detail: str
    field: str | None = None


# --- plans and meetings ----------------------------------------------------------------

KIND_PATTERN = (
    r"^(startup|weekly_status|mini_evaluation|main_evaluation|child_talk|final_evaluation|ad_hoc)$"
)
MeetingKindName = Annotated[str, Meta(pattern=KIND_PATTERN)]
Hours = Annotated[int, Meta(ge=1, le=336)]
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
    durations: dict[MeetingKindName, Minutes] | UnsetType = UNSET
    office_hours: Annotated[list[WeeklyWindow], Meta(max_length=14)] | UnsetType = UNSET
    reminder_offsets_hours: Annotated[list[Hours], Meta(max_length=5)] | UnsetType = UNSET


class PlanIn(Struct, forbid_unknown_fields=True):
    start_date: date
    expected_end: date
    day_care: bool = False
    goals: Note = ""
    default_place: DefaultPlace = ""
    measures: Annotated[list[MeasureIn], Meta(max_length=20)] = msgspec.field(default_factory=list)
    member_ids: list[Id] | None = None
    child_takes_part: bool = True
    child_wishes: ChildWishesIn | None = None
    closures: Annotated[list[ClosureIn], Meta(max_length=20)] = msgspec.field(default_factory=list)
    rules: RulesIn = msgspec.field(default_factory=RulesIn)


class ParticipantOut(Struct):
    contact_id: int
    name: str
    role: Role
    sector: Sector
    answer: str


class MeetingOut(Struct):
    id: int
    uid: str
    kind: str
    series_key: str | None
    start: datetime
    end: datetime
    place: str
    video_link: str
    agenda: str
    status: str
    sequence: int
    parents_told: bool
    pinned: bool
    participants: list[ParticipantOut]


class UnschedulableOut(Struct):
    kind: str
    series_key: str
    window_start: datetime
    window_end: datetime
    reason: str
    explanation: dict[str, object] | None


class PlanOut(Struct):
    id: int
    case_id: int
    revision: int
    start_date: date
    expected_end: date
    day_care: bool
    goals: str
    default_place: str
    measures: list[MeasureIn]
    member_ids: list[int]
    child_takes_part: bool
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
    kind: MeetingKindName = "ad_hoc"
    place: ShortLine = ""
    video_link: Url = ""
    agenda: ShortLine = ""
    confirm: bool = True


class MeetingPatch(Struct, forbid_unknown_fields=True):
    start: datetime | UnsetType = UNSET
    end: datetime | UnsetType = UNSET
    place: ShortLine | UnsetType = UNSET
    video_link: Url | UnsetType = UNSET
    agenda: ShortLine | UnsetType = UNSET
    parents_told: bool | UnsetType = UNSET
    participant_ids: Annotated[list[Id], Meta(min_length=1, max_length=60)] | UnsetType = UNSET


class AnswerIn(Struct, forbid_unknown_fields=True):
    answer: Annotated[str, Meta(pattern=r"^(accepted|declined|tentative|needs_action)$")]


class SlotSearchIn(Struct, forbid_unknown_fields=True):
    window_start: datetime
    window_end: datetime
    duration_minutes: Minutes
    participant_ids: Annotated[list[Id], Meta(min_length=1, max_length=60)]


class SlotSearchOut(Struct):
    feasible: bool
    slot: dict[str, object] | None
    absent: list[int]
    explanation: dict[str, object] | None
    explanation_text: list[str]


# --- calendar feeds --------------------------------------------------------------------

FeedLabel = Annotated[str, Meta(max_length=FEED_LABEL_LENGTH, pattern=LINE_PATTERN)]


class CaseFeedIn(Struct, forbid_unknown_fields=True):
    """A subscription for the case team (``case``), or for one contact (``contact``: only the
    meetings they take part in, at their consent level)."""

    scope: Annotated[str, Meta(pattern=r"^(case|contact)$")]
    contact_id: Id | None = None
    label: FeedLabel = ""


class MyFeedIn(Struct, forbid_unknown_fields=True):
    """A subscription to the meetings of every case the signed-in user may open."""

    label: FeedLabel = ""


class FeedOut(Struct):
    """A subscription as listed: never its token, which is shown only once."""

    id: int
    scope: str
    label: str
    case_id: int | None
    contact_id: int | None
    user_id: int | None
    created_by_user_id: int
    created_at: datetime
    revoked_at: datetime | None
    last_seen_at: datetime | None


class FeedCreated(FeedOut):
    """The new subscription with its address; the token cannot be shown again."""

    url: str
    webcal_url: str
    token: str


class AlertOut(Struct):
    id: int
    case_id: int | None
    kind: str
    text: str
    detail: dict[str, object]
    due_at: datetime | None
    created_at: datetime
    resolved_at: datetime | None


class OutboxOut(Struct):
    id: int
    kind: str
    recipient_contact_id: int | None
    recipient_user_id: int | None
    meeting_id: int | None
    due_at: datetime
    status: str
    attempts: int
    level: str
    suppressed_code: str
    suppressed_reason: str
    last_error: str
    sent_at: datetime | None


class UnitPatch(Struct, forbid_unknown_fields=True):
    """The unit's own settings; admins change them."""

    phone: Phone | UnsetType = UNSET
    show_child_name_in_feeds: bool | UnsetType = UNSET
    closures: Annotated[list[ClosureIn], Meta(max_length=50)] | UnsetType = UNSET


class UnitOut(Struct):
    id: int
    name: str
    phone: str
    show_child_name_in_feeds: bool
    closures: list[ClosureIn]
