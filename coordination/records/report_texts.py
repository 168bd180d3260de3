"""The family's access report in bokmål, nynorsk and English: plain sentences, no codes."""

from __future__ import annotations

from calendars.schedule import MeetingKind
from coordination.domain import ConsentForm, Language, Sector
from coordination.levels import Level
from coordination.records.record import ConsentEvent
from notifications.ports import MessageKind

NB, NN, EN = Language.NB, Language.NN, Language.EN

#: Who learned something, as the start of a sentence; a person is named after it in brackets.
SUBJECT: dict[Language, dict[Sector, str]] = {
    NB: {Sector.SCHOOL: "Skolen", Sector.HEALTH: "Helsetjenesten", Sector.NAV: "NAV",
         Sector.OTHER: "En samarbeidspartner", Sector.CHILD_WELFARE: "Barneverntjenesten"},
    NN: {Sector.SCHOOL: "Skulen", Sector.HEALTH: "Helsetenesta", Sector.NAV: "NAV",
         Sector.OTHER: "Ein samarbeidspartnar", Sector.CHILD_WELFARE: "Barnevernstenesta"},
    EN: {Sector.SCHOOL: "The school", Sector.HEALTH: "The health service", Sector.NAV: "NAV",
         Sector.OTHER: "A partner", Sector.CHILD_WELFARE: "The child welfare service"},
}

#: A sector as the object of a consent.
OBJECT: dict[Language, dict[Sector, str]] = {
    NB: {Sector.SCHOOL: "skolen", Sector.HEALTH: "helsetjenesten", Sector.NAV: "NAV",
         Sector.OTHER: "andre samarbeidspartnere"},
    NN: {Sector.SCHOOL: "skulen", Sector.HEALTH: "helsetenesta", Sector.NAV: "NAV",
         Sector.OTHER: "andre samarbeidspartnarar"},
    EN: {Sector.SCHOOL: "the school", Sector.HEALTH: "the health service", Sector.NAV: "NAV",
         Sector.OTHER: "other partners"},
}

#: What a level lets a recipient learn of a meeting.
WHAT: dict[Language, dict[Level, str]] = {
    NB: {Level.LOGISTICS: "tid og sted", Level.PURPOSE: "tid, sted og hva møtet gjaldt",
         Level.CONTENT: "tid, sted, hva møtet gjaldt og målene i planen"},
    NN: {Level.LOGISTICS: "tid og stad", Level.PURPOSE: "tid, stad og kva møtet galdt",
         Level.CONTENT: "tid, stad, kva møtet galdt og måla i planen"},
    EN: {Level.LOGISTICS: "the time and place", Level.PURPOSE: "the time, place and purpose",
         Level.CONTENT: "the time, place, purpose and the plan's goals"},
}

#: A meeting in its definite form, as in "for oppstartsmøtet 30. november".
MEETING: dict[Language, dict[MeetingKind, str]] = {
    NB: {MeetingKind.STARTUP: "oppstartsmøtet", MeetingKind.WEEKLY_STATUS: "statusmøtet",
         MeetingKind.MINI_EVALUATION: "den første evalueringen", MeetingKind.MAIN_EVALUATION: "evalueringsmøtet",
         MeetingKind.FINAL_EVALUATION: "sluttevalueringen", MeetingKind.CHILD_TALK: "samtalen med barnet",
         MeetingKind.AD_HOC: "møtet"},
    NN: {MeetingKind.STARTUP: "oppstartsmøtet", MeetingKind.WEEKLY_STATUS: "statusmøtet",
         MeetingKind.MINI_EVALUATION: "den første evalueringa", MeetingKind.MAIN_EVALUATION: "evalueringsmøtet",
         MeetingKind.FINAL_EVALUATION: "sluttevalueringa", MeetingKind.CHILD_TALK: "samtalen med barnet",
         MeetingKind.AD_HOC: "møtet"},
    EN: {MeetingKind.STARTUP: "the start-up meeting", MeetingKind.WEEKLY_STATUS: "the status meeting",
         MeetingKind.MINI_EVALUATION: "the first evaluation", MeetingKind.MAIN_EVALUATION: "the evaluation meeting",
         MeetingKind.FINAL_EVALUATION: "the final evaluation", MeetingKind.CHILD_TALK: "the talk with the child",
         MeetingKind.AD_HOC: "the meeting"},
}

#: A message about a meeting: {who}, {what}, {meeting} (kind and date).
SENT: dict[Language, dict[MessageKind, str]] = {
    NB: {MessageKind.INVITATION: "{who} fikk vite {what} for {meeting}",
         MessageKind.UPDATE: "{who} fikk vite {what} for {meeting} etter en endring",
         MessageKind.REMINDER: "{who} fikk en påminnelse om {meeting} ({what})",
         MessageKind.CANCELLATION: "{who} fikk vite at {meeting} ble avlyst"},
    NN: {MessageKind.INVITATION: "{who} fekk vite {what} for {meeting}",
         MessageKind.UPDATE: "{who} fekk vite {what} for {meeting} etter ei endring",
         MessageKind.REMINDER: "{who} fekk ei påminning om {meeting} ({what})",
         MessageKind.CANCELLATION: "{who} fekk vite at {meeting} vart avlyst"},
    EN: {MessageKind.INVITATION: "{who} was told {what} of {meeting}",
         MessageKind.UPDATE: "{who} was told {what} of {meeting} after a change",
         MessageKind.REMINDER: "{who} was reminded of {meeting} ({what})",
         MessageKind.CANCELLATION: "{who} was told that {meeting} was cancelled"},
}

#: The rest of the sentences: a feed, the answer page, a meeting's date, the consent behind it.
PHRASES: dict[Language, dict[str, str]] = {
    NB: {"feed": "{who} så {what} for {meetings} i kalenderen sin", "answer_page": "{who} så {what} for {meeting} "
         "på svarsiden", "meetings": "{n} møter", "on": "{meeting} {date}", "because": ", fordi dere samtykket {date}",
         "date": "d. MMMM", "date_year": "d. MMMM y"},
    NN: {"feed": "{who} såg {what} for {meetings} i kalenderen sin", "answer_page": "{who} såg {what} for "
         "{meeting} på svarsida", "meetings": "{n} møte", "on": "{meeting} {date}", "because": ", fordi de samtykte "
         "{date}", "date": "d. MMMM", "date_year": "d. MMMM y"},
    EN: {"feed": "{who} saw {what} of {meetings} in their calendar", "answer_page": "{who} saw {what} of {meeting} "
         "on the answer page", "meetings": "{n} meetings", "on": "{meeting} on {date}", "because": ", because you "
         "consented on {date}", "date": "d MMMM", "date_year": "d MMMM y"},
}

#: The family's own acts of consent: {grantor}, {sector}, {what}, {form}.
CONSENT: dict[Language, dict[ConsentEvent, str]] = {
    NB: {ConsentEvent.GRANTED: "{grantor} samtykket {form} til at {sector} kan få vite {what}.",
         ConsentEvent.REFUSED: "{grantor} sa nei til at {sector} får vite noe.",
         ConsentEvent.WITHDRAWN: "{grantor} trakk tilbake samtykket til {sector}.",
         ConsentEvent.EXPIRED: "Samtykket fra {grantor} til {sector} gikk ut."},
    NN: {ConsentEvent.GRANTED: "{grantor} samtykte {form} til at {sector} kan få vite {what}.",
         ConsentEvent.REFUSED: "{grantor} sa nei til at {sector} får vite noko.",
         ConsentEvent.WITHDRAWN: "{grantor} trekte tilbake samtykket til {sector}.",
         ConsentEvent.EXPIRED: "Samtykket frå {grantor} til {sector} gjekk ut."},
    EN: {ConsentEvent.GRANTED: "{grantor} consented {form} that {sector} may learn {what}.",
         ConsentEvent.REFUSED: "{grantor} refused that {sector} learn anything.",
         ConsentEvent.WITHDRAWN: "{grantor} withdrew the consent for {sector}.",
         ConsentEvent.EXPIRED: "The consent from {grantor} for {sector} expired."},
}

FORM: dict[Language, dict[ConsentForm, str]] = {
    NB: {ConsentForm.WRITTEN: "skriftlig", ConsentForm.ORAL: "muntlig"},
    NN: {ConsentForm.WRITTEN: "skriftleg", ConsentForm.ORAL: "munnleg"},
    EN: {ConsentForm.WRITTEN: "in writing", ConsentForm.ORAL: "orally"},
}

#: The report's headings and fixed sentences.
WORDS: dict[Language, dict[str, str]] = {
    NB: {"title": "Innsyn: hva som er delt om dere", "case": "Sak", "produced": "Laget {date}",
         "intro": "Her står hva Samhandling har delt om dere, med hvem og når, fra saken ble opprettet {opened} til "
                  "{produced}. Interne notater er ikke med.",
         "shared": "Hva som er delt, og med hvem", "consents": "Samtykkene dere har gitt", "date": "Dato",
         "nothing": "Ingenting er delt med andre.", "no_consents": "Ingen samtykker er registrert.",
         "questions": "Har dere spørsmål, kontakt saksbehandleren deres i barneverntjenesten."},
    NN: {"title": "Innsyn: kva som er delt om dykk", "case": "Sak", "produced": "Laga {date}",
         "intro": "Her står kva Samhandling har delt om dykk, med kven og når, frå saka vart oppretta {opened} til "
                  "{produced}. Interne notat er ikkje med.",
         "shared": "Kva som er delt, og med kven", "consents": "Samtykka de har gitt", "date": "Dato",
         "nothing": "Ingenting er delt med andre.", "no_consents": "Ingen samtykke er registrerte.",
         "questions": "Har de spørsmål, kontakt sakshandsamaren dykkar i barnevernstenesta."},
    EN: {"title": "Access report: what was shared about you", "case": "Case", "produced": "Produced {date}",
         "intro": "This is what Samhandling shared about you, with whom and when, from the case was opened on "
                  "{opened} until {produced}. Internal notes are not included.",
         "shared": "What was shared, and with whom", "consents": "The consents you gave", "date": "Date",
         "nothing": "Nothing was shared with others.", "no_consents": "No consents are recorded.",
         "questions": "If you have questions, contact your caseworker at the child welfare service."},
}
