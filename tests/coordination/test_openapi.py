"""The OpenAPI document is a newcomer's map of the API: every operation says what it does, and
every state field lists the values it takes, the same values as the enum the code uses."""

from __future__ import annotations

import enum
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from calendars.schedule import MeetingKind, Reason
from coordination.consent.policy import GrantorState, SectorState
from coordination.domain import AuditAction, ConsentForm, ConsentStatus, Language, MeasureType, Role, Sector, UserRole
from coordination.feeds.enums import FeedScope
from coordination.outbox.enums import OutboxStatus
from coordination.scheduling.enums import MeetingStatus, ParticipantAnswer
from notifications.ports import AlertKind, DisclosureLevel, MessageKind, SuppressionCode

Client = AsyncTestClient[Litestar]
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

#: (component, field) -> the enum whose values the field takes.
STATE_FIELDS: dict[tuple[str, str], type[enum.StrEnum]] = {
    ("MeetingOut", "status"): MeetingStatus,
    ("MeetingOut", "kind"): MeetingKind,
    ("ParticipantOut", "answer"): ParticipantAnswer,
    ("OutboxOut", "kind"): MessageKind,
    ("OutboxOut", "status"): OutboxStatus,
    ("AlertOut", "kind"): AlertKind,
    ("AuditOut", "action"): AuditAction,
    ("ContactOut", "role"): Role,
    ("ContactOut", "sector"): Sector,
    ("ContactIn", "role"): Role,
    ("ConsentOut", "sector"): Sector,
    ("ConsentOut", "status"): ConsentStatus,
    ("ConsentOut", "form"): ConsentForm,
    ("UserOut", "role"): UserRole,
    ("FeedOut", "scope"): FeedScope,
    ("AnswerIn", "answer"): ParticipantAnswer,
    ("MeetingIn", "kind"): MeetingKind,
    ("UnschedulableOut", "reason"): Reason,
    ("ConsentOut", "level"): DisclosureLevel,
    ("GrantorOut", "status"): GrantorState,
    ("LevelAt", "sector_state"): SectorState,
    ("CaseOut", "measure_type"): MeasureType,
    ("CaseOut", "language"): Language,
}
#: Fields that take some of the enum's values only.
STATE_SUBSETS: dict[tuple[str, str], list[enum.StrEnum]] = {
    ("CaseFeedIn", "scope"): [FeedScope.CASE, FeedScope.CONTACT],
}
#: Fields that are empty ("") until the state applies, then take the enum's values.
EMPTY_OR_STATE: dict[tuple[str, str], type[enum.StrEnum]] = {
    ("OutboxOut", "suppressed_code"): SuppressionCode,
    ("OutboxOut", "level"): DisclosureLevel,
}
#: Fields whose meaning their name does not give away.
EXPLAINED = [("MeetingOut", "parents_told"), ("MeetingOut", "pinned"), ("MeetingPatch", "parents_told"),
             ("MeetingIn", "confirm"), ("SlotSearchOut", "absent")]


async def _document(client: Client) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def _allowed(document: dict[str, Any], schema: dict[str, Any]) -> list[str] | None:
    """The values a field's schema allows, following references (``$ref``, ``allOf``, or a
    ``oneOf`` with null); None when it lists none."""
    if "enum" in schema:
        return list(schema["enum"])
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        return _allowed(document, document["components"]["schemas"][name])
    for key in ("allOf", "oneOf", "anyOf"):
        options = [o for o in schema.get(key, []) if o.get("type") != "null"]
        if len(options) == 1:
            return _allowed(document, options[0])
    return None


def _field(document: dict[str, Any], component: str, field: str) -> dict[str, Any]:
    found: dict[str, Any] = document["components"]["schemas"][component]["properties"][field]
    return found


async def test_every_operation_says_what_it_does(client: Client) -> None:
    document = await _document(client)
    bare = [f"{method.upper()} {path}" for path, item in document["paths"].items()
            for method, operation in item.items()
            if method in METHODS and not (operation.get("description") or "").strip()]
    assert bare == []


async def test_every_state_field_lists_the_values_of_its_enum(client: Client) -> None:
    document = await _document(client)
    wrong = {}
    for (component, field), states in STATE_FIELDS.items():
        allowed = _allowed(document, _field(document, component, field))
        if allowed != [s.value for s in states]:
            wrong[f"{component}.{field}"] = allowed
    for (component, field), members in STATE_SUBSETS.items():
        allowed = _allowed(document, _field(document, component, field))
        if allowed != [m.value for m in members]:
            wrong[f"{component}.{field}"] = allowed
    for (component, field), states in EMPTY_OR_STATE.items():
        allowed = _allowed(document, _field(document, component, field))
        if allowed != ["", *(s.value for s in states)]:
            wrong[f"{component}.{field}"] = allowed
    assert wrong == {}


async def test_fields_a_newcomer_cannot_guess_are_explained(client: Client) -> None:
    document = await _document(client)
    unexplained = [f"{c}.{f}" for c, f in EXPLAINED if not _field(document, c, f).get("description")]
    assert unexplained == []
