"""Sveve's delivery reports: whether a sent SMS reached the phone.

Sveve calls an address we give it, by GET or POST, with ``number``, ``status`` (``true``: sent
ok, ``false``: could not be sent), ``id`` (Sveve's message id), ``ref`` (ours, sent with the
message: the outbox row's Message-ID), ``errorCode`` and ``errorDesc``
(https://sveve.se/apidok/dlr/, the same API as sveve.no). A report that the SMS did not
arrive is handled as an e-mail bounce is (``outbox.undelivered``); one that it arrived is
audited. Logs carry ids only; the number is never read beyond its shape.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination import audit
from coordination.changes import Change
from coordination.domain import AuditAction
from coordination.errors import InputError, NotFound
from coordination.models import Case, OutboxMessage
from coordination.outbox.enums import OutboxStatus, SmsReportOutcome
from coordination.outbox.undelivered import mark_undelivered
from notifications.ports import Channel

log = logging.getLogger(__name__)

_STATUS = {"true": True, "false": False}
_TEXT_LIMIT = 200


@dataclass(frozen=True, slots=True)
class SmsReport:
    ref: str
    delivered: bool
    gateway_id: str
    #: Sveve's code only: its description (``errorDesc``) is free text and is not kept.
    error_code: str


def _one(params: Mapping[str, str], name: str, *, required: bool = False) -> str:
    value = (params.get(name) or "").strip()
    if required and not value:
        raise InputError(name, "required in a delivery report")
    if len(value) > _TEXT_LIMIT:
        raise InputError(name, f"at most {_TEXT_LIMIT} characters")
    return value


def parse_report(params: Mapping[str, str]) -> SmsReport:
    """The report's parameters as Sveve documents them; a bad one is refused by name."""
    status = _one(params, "status", required=True).lower()
    if status not in _STATUS:
        raise InputError("status", "must be true or false")
    gateway_id = _one(params, "id")
    if gateway_id and not gateway_id.isdigit():
        raise InputError("id", "must be Sveve's message id (digits)")
    number = _one(params, "number")
    if number and not re.fullmatch(r"\+?\d{4,20}", number):
        raise InputError("number", "must be a phone number (digits)")
    return SmsReport(ref=_one(params, "ref", required=True), delivered=_STATUS[status], gateway_id=gateway_id,
                     error_code=_one(params, "errorCode"))


async def apply_report(session: AsyncSession, report: SmsReport, now: datetime) -> SmsReportOutcome:
    """Mark the SMS the report is about. A report on a row that is not sent (given up, or
    reported failed before) changes nothing, so a failure is acted on once."""
    sent = (await session.exec(select(OutboxMessage).where(
        OutboxMessage.channel == Channel.SMS,
        col(OutboxMessage.message_id).in_([f"<{report.ref}>", report.ref])))).first()
    if sent is None or sent.case_id is None:
        raise NotFound("no SMS with this ref")
    case = await session.get(Case, sent.case_id)
    assert case is not None
    if sent.status not in (OutboxStatus.SENT, OutboxStatus.SENDING):
        outcome = SmsReportOutcome.UNCHANGED
    elif report.delivered:
        Change.in_case(session, case, audit.SYSTEM, now).record(
            AuditAction.NOTIFICATION_DELIVERED, f"outbox:{sent.id}",
            {"contact": sent.recipient_contact_id, "gateway_id": report.gateway_id}, feeds=False)
        outcome = SmsReportOutcome.DELIVERED
    else:
        await mark_undelivered(session, sent, case, report.error_code, now, {"gateway_id": report.gateway_id})
        outcome = SmsReportOutcome.FAILED
    log.info("sms report for outbox %s (gateway id %s): %s", sent.id, report.gateway_id or "-", outcome.value)
    return outcome
