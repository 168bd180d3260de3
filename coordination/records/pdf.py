"""The record and the family's report as PDF/A documents for the journal: an HTML template
rendered by WeasyPrint as PDF/A-3b, every font embedded (DejaVu, from Debian's fonts-dejavu-core
through fontconfig), with the record's JSON attached to the journal's copy so that an archive can
read it back. Nothing is fetched while rendering: the template holds everything it shows."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

import msgspec
import weasyprint
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from weasyprint.urls import URLFetcher

from coordination.records.disclosures import Channel
from coordination.records.record import CaseRecord, ConsentEvent
from coordination.records.report import FamilyReport
from coordination.web import texts as t
from notifications.messages import meeting_kind_name

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "records"
#: PDF/A-3: archival like PDF/A-2, and it may carry the record's JSON as an attached file.
PDF_VARIANT = "pdf/a-3b"
MEDIA_TYPE = "application/pdf"

_CHANNEL = {Channel.EMAIL: "E-post", Channel.SMS: "SMS", Channel.FEED: "Kalenderabonnement",
            Channel.ANSWER_PAGE: "Svarside"}
_CONSENT_EVENT = {ConsentEvent.GRANTED: "Gitt", ConsentEvent.REFUSED: "Nektet", ConsentEvent.WITHDRAWN:
                  "Trukket tilbake", ConsentEvent.EXPIRED: "Utløpt"}
_MEASURE = {"voluntary": "Frivillig hjelpetiltak", "ordered": "Pålagt hjelpetiltak"}
_STATUS = {"open": "Åpen", "closed": "Avsluttet", "purged": "Slettet"}
_ANSWER_VIA = {"link": "svarlenke", "calendar": "svar fra kalenderen", "coordinator": "registrert av koordinator"}


def _environment() -> Environment:
    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                              undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.globals.update(
        when=t.when, day=t.day, level=t.level_name, sector=t.sector_name, role=t.role_name,
        meeting_kind=lambda kind: meeting_kind_name(kind, t.NB), meeting_status=t.MEETING_STATUS,
        answer=t.ANSWER, message_kind=t.MESSAGE_KIND, suppression=t.SUPPRESSION, consent_form=t.CONSENT_FORM,
        channel=_CHANNEL, consent_event=_CONSENT_EVENT, measure=_MEASURE, case_status=_STATUS,
        answer_via=_ANSWER_VIA)
    return environment


_TEMPLATES = _environment()


def record_html(record: CaseRecord) -> str:
    return _TEMPLATES.get_template("journal.html").render(record=record)


def report_html(report: FamilyReport) -> str:
    return _TEMPLATES.get_template("access_report.html").render(report=report)


def _pdf(html: str, attachments: Mapping[str, str]) -> bytes:
    files = [weasyprint.Attachment(string=data, name=name) for name, data in attachments.items()]
    document = weasyprint.HTML(string=html, url_fetcher=URLFetcher(allowed_protocols=()))
    pdf: bytes = document.write_pdf(pdf_variant=PDF_VARIANT, attachments=files)
    return pdf


async def record_pdf(record: CaseRecord) -> bytes:
    """The journal's copy, with ``journalutskrift.json`` (the same record) attached. Rendering takes
    a moment of CPU, so it runs beside the event loop."""
    data = msgspec.json.encode(record).decode("utf-8")
    return await asyncio.to_thread(_pdf, record_html(record), {"journalutskrift.json": data})


async def report_pdf(report: FamilyReport) -> bytes:
    return await asyncio.to_thread(_pdf, report_html(report), {})


def filename(kind: str, reference: str) -> str:
    """A download's name: the kind and the case reference, in characters every system keeps."""
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "-" for ch in reference)
    return f"{kind}-{safe}.pdf"
