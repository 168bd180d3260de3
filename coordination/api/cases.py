"""Cases, contacts, consent, information loops and the audit log."""

from __future__ import annotations

from datetime import datetime

from litestar import Controller, Request, get, patch, post, put
from litestar.datastructures import State
from litestar.params import JSONBody, Parameter

from coordination import audit
from coordination.access.rules import case_for
from coordination.api.deps import Ctx, CurrentUser, PathId, required_token, signed_in
from coordination.cases import contacts as contact_service
from coordination.cases import service as case_service
from coordination.consent import loops as consent_loops
from coordination.consent import register as consent_register
from coordination.domain import Language
from coordination.errors import InputError
from coordination.schemas import (
    MAX_ID,
    AuditOut,
    CaseIn,
    CaseOut,
    CasePatch,
    ConsentIn,
    ConsentOut,
    ContactIn,
    ContactOut,
    ContactPatch,
    Id,
    InformationLoopsOut,
)


class CaseController(Controller):
    path = "/cases"
    tags = ["cases"]

    @post("/")
    async def create_case(self, ctx: Ctx, user: CurrentUser, data: JSONBody[CaseIn]) -> CaseOut:
        """Open a case for a child. A coordinator who opens it is always among its coordinators,
        with any others named in ``coordinator_ids``."""
        async with ctx.transaction() as session:
            return await case_service.create_case(session, user, data, ctx.now())

    @get("/")
    async def list_cases(self, ctx: Ctx, user: CurrentUser) -> list[CaseOut]:
        """The cases the signed-in user may see: a coordinator those assigned to them, a leader every
        case of the unit."""
        async with ctx.transaction() as session:
            return await case_service.list_cases(session, user, ctx.now())

    @get("/{case_id:int}")
    async def get_case(self, ctx: Ctx, user: CurrentUser, case_id: PathId) -> CaseOut:
        """One case, with the child's age and party status as of today. The read is audited."""
        async with ctx.transaction() as session:
            found = await case_service.get_case(session, user, case_id, ctx.now())
            audit.record_read(session, user.id or 0, user.unit_id, case_id, "case", ctx.now())
            return found

    @patch("/{case_id:int}")
    async def update_case(
        self, ctx: Ctx, user: CurrentUser, case_id: PathId, data: JSONBody[CasePatch]
    ) -> CaseOut:
        """Change the case's facts; fields left out keep their value."""
        async with ctx.transaction() as session:
            return await case_service.update_case(session, user, case_id, data, ctx.now())

    @put("/{case_id:int}/coordinators")
    async def assign_coordinators(
        self, ctx: Ctx, user: CurrentUser, case_id: PathId, data: JSONBody[list[Id]]
    ) -> CaseOut:
        """Replace the case's coordinators with these coordinators of the unit (at least one).
        Leaders only."""
        async with ctx.transaction() as session:
            return await case_service.assign_coordinators(session, user, case_id, data, ctx.now())

    @post("/{case_id:int}/contacts")
    async def add_contact(
        self, ctx: Ctx, user: CurrentUser, case_id: PathId, data: JSONBody[ContactIn]
    ) -> ContactOut:
        """Add a person to the case: family, the child, or someone from a partner sector."""
        async with ctx.transaction() as session:
            return await contact_service.add_contact(session, user, case_id, data, ctx.now())

    @get("/{case_id:int}/contacts")
    async def list_contacts(self, ctx: Ctx, user: CurrentUser, case_id: PathId) -> list[ContactOut]:
        """Everyone on the case, inactive contacts included. The read is audited."""
        async with ctx.transaction() as session:
            contacts = await contact_service.list_contacts(session, user, case_id)
            audit.record_read(session, user.id or 0, user.unit_id, case_id, "contacts", ctx.now())
            return contacts

    @patch("/{case_id:int}/contacts/{contact_id:int}")
    async def update_contact(
        self, ctx: Ctx, user: CurrentUser, case_id: PathId, contact_id: PathId,
        data: JSONBody[ContactPatch],
    ) -> ContactOut:
        """Correct or deactivate a contact; fields left out keep their value."""
        async with ctx.transaction() as session:
            return await contact_service.update_contact(session, user, case_id, contact_id, data, ctx.now())

    @post("/{case_id:int}/consents")
    async def record_consent(
        self, ctx: Ctx, user: CurrentUser, case_id: PathId, data: JSONBody[ConsentIn]
    ) -> ConsentOut:
        """Record an act of consent (granted, refused or withdrawn) by one grantor for one sector.
        Consent is never edited: a change is a new record."""
        async with ctx.transaction() as session:
            return await consent_register.record_consent(session, user, case_id, data, ctx.now())

    @get("/{case_id:int}/consents")
    async def list_consents(self, ctx: Ctx, user: CurrentUser, case_id: PathId) -> list[ConsentOut]:
        """Every consent record of the case, in the order recorded. The read is audited."""
        async with ctx.transaction() as session:
            consents = await consent_register.list_consents(session, user, case_id)
            audit.record_read(session, user.id or 0, user.unit_id, case_id, "consents", ctx.now())
            return consents

    @get("/{case_id:int}/information-loops")
    async def information_loops(
        self,
        ctx: Ctx,
        request: Request[object, object, State],
        case_id: PathId,
        at: datetime | None = Parameter(
            default=None, description="Also evaluate at this instant (ISO 8601 with offset)"
        ),
        lang: Language = Parameter(default=Language.NB, description="Language of the reasons"),
    ) -> InformationLoopsOut:
        """What each contact may learn now (and at ``at``, if given), and why: the coordinator's
        check before any meeting. The read is audited.

        The signed-in user is read on the read's own connection (one checkout, issue 17)."""
        token = required_token(request)
        async with ctx.audited_read() as session:
            user = await signed_in(session, token)
            if at is not None and at.tzinfo is None:
                raise InputError("at", "give a time zone offset, e.g. 2027-03-01T09:00:00+01:00")
            return await consent_loops.information_loops(session, user, case_id, ctx.now(), at, lang)

    @get("/{case_id:int}/audit")
    async def audit_log(
        self,
        ctx: Ctx,
        user: CurrentUser,
        case_id: PathId,
        before_id: int | None = Parameter(default=None, ge=1, le=MAX_ID),
        limit: int = Parameter(default=200, ge=1, le=1000),
    ) -> list[AuditOut]:
        """The case's audit log, newest first: who changed, read or was told what. For older
        entries, pass the smallest ``id`` seen as ``before_id``. The read is audited."""
        async with ctx.transaction() as session:
            await case_for(session, user, case_id)
            entries = await audit.entries_for_case(session, case_id, limit, before_id)
            audit.record_read(session, user.id or 0, user.unit_id, case_id, "audit", ctx.now())
            return [
                AuditOut(id=e.id or 0, at=e.at, actor=e.actor, action=e.action, subject=e.subject,
                         detail=e.detail)
                for e in entries
            ]
