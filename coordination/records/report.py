"""The family's access report (innsyn): the case record as the family sees it, in their language
and in plain words — "Skolen (Siri Lærer) fikk vite tid og sted for oppstartsmøtet 30. november,
fordi dere samtykket 29. november."

Made from the same record as the journal's copy, so that the two never disagree. It leaves out
internal notes, what the service told its own staff, and every partner the family's consent
never covered: a partner is named only for a disclosure that rests on a grant for their sector.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime

from babel.dates import format_date
from msgspec import Struct

from calendars.schedule import MeetingKind
from calendars.zone import local_date
from coordination.consent.texts import contact_label
from coordination.domain import Language, Sector
from coordination.errors import InputError
from coordination.levels import Level
from coordination.records import report_texts as words
from coordination.records.disclosures import Channel
from coordination.records.record import (
    CaseRecord,
    ConsentEvent,
    RecordConsent,
    RecordContact,
    RecordDisclosure,
    RecordMeeting,
)


class ReportLine(Struct, frozen=True):
    at: datetime
    day: str
    text: str


class FamilyReport(Struct, frozen=True):
    language: Language
    reference: str
    produced_at: datetime
    #: Headings and fixed sentences in the report's language.
    words: dict[str, str]
    shared: list[ReportLine]
    consents: list[ReportLine]


class _Words:
    """The record's people, meetings and consents, put in words in one language."""

    def __init__(self, record: CaseRecord, language: Language) -> None:
        self.language = language
        self.year = local_date(record.produced_at).year
        self.contacts = {c.id: c for c in record.contacts}
        self.meetings = {m.id: m for m in record.meetings}
        self.consents = {c.record_id: c for c in record.consents if c.event is ConsentEvent.GRANTED}

    def day(self, value: date | datetime, *, year: bool = False) -> str:
        day = local_date(value) if isinstance(value, datetime) else value
        pattern = words.PHRASES[self.language]["date_year" if year or day.year != self.year else "date"]
        return format_date(day, pattern, locale=self.language.value)

    def person(self, contact: RecordContact) -> str:
        return contact_label(contact.name, contact.role, contact.role_label, self.language)

    def who(self, contact: RecordContact) -> str:
        if contact.sector is Sector.FAMILY:
            return self.person(contact)
        return f"{words.SUBJECT[self.language][contact.sector]} ({contact.name})"

    def meeting(self, meeting: RecordMeeting) -> str:
        return words.PHRASES[self.language]["on"].format(meeting=words.MEETING[self.language][meeting.kind],
                                                         date=self.day(meeting.start))


def family_report(record: CaseRecord, language: Language) -> FamilyReport:
    """The report in ``language`` (nb, nn or en)."""
    said = _Words(record, language)
    opened, produced = said.day(record.case.opened_at, year=True), said.day(record.produced_at, year=True)
    fixed = {key: text.format(opened=opened, produced=produced, date=produced)
             for key, text in words.WORDS[language].items()}
    shared: list[ReportLine] = []
    for disclosure in record.disclosures:
        text = _sentence(disclosure, said)
        line = ReportLine(disclosure.at, said.day(disclosure.at, year=True), text) if text else None
        if line is not None and not (shared and (shared[-1].day, shared[-1].text) == (line.day, line.text)):
            shared.append(line)  # a feed served again after an unrelated change says nothing new
    return FamilyReport(language=language, reference=record.case.reference, produced_at=record.produced_at,
                        words=fixed, shared=shared, consents=_consents(record.consents, said))


def _covered(disclosure: RecordDisclosure, contact: RecordContact, said: _Words) -> Sequence[RecordConsent] | None:
    """The grants a disclosure to a partner rests on, all for the partner's sector; None if it
    rests on none (then the partner is not named at all)."""
    grants = [said.consents.get(i) for i in disclosure.consent_record_ids]
    if not grants or any(g is None or g.sector != contact.sector for g in grants):
        return None
    return [g for g in grants if g is not None]


def _sentence(disclosure: RecordDisclosure, said: _Words) -> str | None:
    """One disclosure to a contact in words, or None for what the family is not told of here."""
    contact = said.contacts.get(disclosure.recipient_contact_id or 0)
    if contact is None or disclosure.level is Level.NONE:
        return None  # the service's own staff and calendars, and feeds that showed nothing
    because = ""
    if contact.sector.needs_consent:
        grants = _covered(disclosure, contact, said)
        if grants is None:
            return None
        since = max(g.valid_from for g in grants)
        because = words.PHRASES[said.language]["because"].format(date=said.day(since))
    what = words.WHAT[said.language][disclosure.level]
    meetings = [said.meetings[i] for i in disclosure.meeting_ids if i in said.meetings]
    phrases = words.PHRASES[said.language]
    meeting = said.meeting(meetings[0]) if meetings else words.MEETING[said.language][MeetingKind.AD_HOC]
    if disclosure.channel is Channel.FEED:
        several = phrases["meetings"].format(n=len(meetings))
        text = phrases["feed"].format(who=said.who(contact), what=what,
                                      meetings=meeting if len(meetings) == 1 else several)
    elif disclosure.channel is Channel.ANSWER_PAGE:
        text = phrases["answer_page"].format(who=said.who(contact), what=what, meeting=meeting)
    elif disclosure.message_kind in words.SENT[said.language]:
        text = words.SENT[said.language][disclosure.message_kind].format(who=said.who(contact), what=what,
                                                                         meeting=meeting)
    else:
        return None
    return text + because + "."


def _consents(events: Sequence[RecordConsent], said: _Words) -> list[ReportLine]:
    """The family's own acts of consent, for the sectors they ever granted (a sector they never
    consented to is not named); notes are left out."""
    covered = {e.sector for e in events if e.event is ConsentEvent.GRANTED}
    lines = []
    for event in events:
        grantor = said.contacts.get(event.grantor_contact_id)
        if event.sector not in covered or grantor is None:
            continue
        text = words.CONSENT[said.language][event.event].format(
            grantor=said.person(grantor), sector=words.OBJECT[said.language].get(event.sector, ""),
            form=words.FORM[said.language][event.form],
            what=words.WHAT[said.language].get(event.level, words.WHAT[said.language][Level.LOGISTICS]))
        lines.append(ReportLine(event.at, said.day(event.at, year=True), text))
    return lines


def language_of(value: str | None, default: Language, field: str = "lang") -> Language:
    """A language asked for by its code, or the case's."""
    if not value:
        return default
    choices: Mapping[str, Language] = {lang.value: lang for lang in Language}
    if value not in choices:
        raise InputError(field, f"choose one of {', '.join(choices)}")
    return choices[value]
