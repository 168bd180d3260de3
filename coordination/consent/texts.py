"""Words for the coordinator: policy reasons, roles and sectors in bokmål, nynorsk and English."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from calendars.zone import local_date
from coordination.consent.policy import Reason
from coordination.domain import Language, Role, Sector
from coordination.levels import Level

SECTOR_NAMES: dict[Language, dict[Sector, str]] = {
    Language.NB: {
        Sector.FAMILY: "familie", Sector.CHILD_WELFARE: "barnevern", Sector.SCHOOL: "skole",
        Sector.HEALTH: "helse", Sector.NAV: "NAV", Sector.OTHER: "andre",
    },
    Language.NN: {
        Sector.FAMILY: "familie", Sector.CHILD_WELFARE: "barnevern", Sector.SCHOOL: "skule",
        Sector.HEALTH: "helse", Sector.NAV: "NAV", Sector.OTHER: "andre",
    },
    Language.EN: {
        Sector.FAMILY: "family", Sector.CHILD_WELFARE: "child welfare", Sector.SCHOOL: "school",
        Sector.HEALTH: "health", Sector.NAV: "NAV", Sector.OTHER: "other",
    },
}

ROLE_NAMES: dict[Language, dict[Role, str]] = {
    Language.NB: {
        Role.PARENT: "forelder", Role.CHILD: "barnet", Role.TRUSTED_PERSON: "tillitsperson",
        Role.SCHOOL_CONTACT: "skolekontakt", Role.PRINCIPAL: "rektor",
        Role.KINDERGARTEN: "barnehage", Role.AFTER_SCHOOL_CARE: "SFO", Role.PPT: "PPT",
        Role.PUBLIC_HEALTH_NURSE: "helsesykepleier", Role.GP: "fastlege",
        Role.CHILD_PSYCHIATRY: "BUP", Role.MENTAL_HEALTH: "psykisk helse",
        Role.NAV_ADVISER: "NAV-veileder", Role.SUPPORT_CONTACT: "støttekontakt",
        Role.MILIEU_THERAPIST: "miljøterapeut", Role.FAMILY_THERAPIST: "familieterapeut",
        Role.INTERPRETER: "tolk", Role.CASEWORKER: "saksbehandler", Role.OTHER: "annen",
    },
    Language.NN: {
        Role.PARENT: "forelder", Role.CHILD: "barnet", Role.TRUSTED_PERSON: "tillitsperson",
        Role.SCHOOL_CONTACT: "skulekontakt", Role.PRINCIPAL: "rektor",
        Role.KINDERGARTEN: "barnehage", Role.AFTER_SCHOOL_CARE: "SFO", Role.PPT: "PPT",
        Role.PUBLIC_HEALTH_NURSE: "helsesjukepleiar", Role.GP: "fastlege",
        Role.CHILD_PSYCHIATRY: "BUP", Role.MENTAL_HEALTH: "psykisk helse",
        Role.NAV_ADVISER: "NAV-rettleiar", Role.SUPPORT_CONTACT: "støttekontakt",
        Role.MILIEU_THERAPIST: "miljøterapeut", Role.FAMILY_THERAPIST: "familieterapeut",
        Role.INTERPRETER: "tolk", Role.CASEWORKER: "sakshandsamar", Role.OTHER: "annan",
    },
    Language.EN: {
        Role.PARENT: "parent", Role.CHILD: "the child", Role.TRUSTED_PERSON: "trusted person",
        Role.SCHOOL_CONTACT: "school contact", Role.PRINCIPAL: "principal",
        Role.KINDERGARTEN: "kindergarten", Role.AFTER_SCHOOL_CARE: "after-school care",
        Role.PPT: "educational psychology service", Role.PUBLIC_HEALTH_NURSE: "public health nurse",
        Role.GP: "GP", Role.CHILD_PSYCHIATRY: "child psychiatry",
        Role.MENTAL_HEALTH: "mental health", Role.NAV_ADVISER: "NAV adviser",
        Role.SUPPORT_CONTACT: "support contact", Role.MILIEU_THERAPIST: "milieu therapist",
        Role.FAMILY_THERAPIST: "family therapist", Role.INTERPRETER: "interpreter",
        Role.CASEWORKER: "caseworker", Role.OTHER: "other",
    },
}

LEVEL_NAMES: dict[Language, dict[Level, str]] = {
    Language.NB: {Level.NONE: "ingenting", Level.LOGISTICS: "praktisk (tid og sted)",
                  Level.PURPOSE: "formål", Level.CONTENT: "innhold"},
    Language.NN: {Level.NONE: "ingenting", Level.LOGISTICS: "praktisk (tid og stad)",
                  Level.PURPOSE: "føremål", Level.CONTENT: "innhald"},
    Language.EN: {Level.NONE: "nothing", Level.LOGISTICS: "logistics (time and place)",
                  Level.PURPOSE: "purpose", Level.CONTENT: "content"},
}

_TEMPLATES: dict[Language, dict[str, str]] = {
    Language.NB: {
        "granted": "samtykke til {sector} gjelder på nivå {level}",
        "narrowed": "{who} har bare samtykket til {level} for {sector}",
        "not_consented": "{who} har ikke samtykket til deling med {sector}",
        "child_not_consented": "{who} har partsstatus og har ikke samtykket til deling med {sector}",
        "refused": "{who} har nektet samtykke til deling med {sector}",
        "withdrawn": "{who} har trukket tilbake samtykket til deling med {sector}",
        "expired": "samtykket fra {who} til {sector} utløp {on}",
        "no_daily_care": "ingen kontakt med daglig omsorg er registrert, så ingen kan samtykke",
        "party_or_service": "part i saken eller barneverntjenesten selv; trenger ikke samtykke",
        "child_talk_private": "barnesamtalen tilhører barnet; foreldrene får ikke vite om den",
        "child_talk_told": "foreldrene får vite når barnesamtalen er, ikke hva den handler om",
        "level_too_low": "samtykket til {sector} gjelder bare {level}",
        "contact_inactive": "kontakten er ikke lenger aktiv i saken",
    },
    Language.NN: {
        "granted": "samtykke til {sector} gjeld på nivå {level}",
        "narrowed": "{who} har berre samtykt til {level} for {sector}",
        "not_consented": "{who} har ikkje samtykt til deling med {sector}",
        "child_not_consented": "{who} har partsstatus og har ikkje samtykt til deling med {sector}",
        "refused": "{who} har nekta samtykke til deling med {sector}",
        "withdrawn": "{who} har trekt tilbake samtykket til deling med {sector}",
        "expired": "samtykket frå {who} til {sector} gjekk ut {on}",
        "no_daily_care": "ingen kontakt med dagleg omsorg er registrert, så ingen kan samtykke",
        "party_or_service": "part i saka eller barnevernstenesta sjølv; treng ikkje samtykke",
        "child_talk_private": "barnesamtalen høyrer barnet til; foreldra får ikkje vite om han",
        "child_talk_told": "foreldra får vite når barnesamtalen er, ikkje kva han handlar om",
        "level_too_low": "samtykket til {sector} gjeld berre {level}",
        "contact_inactive": "kontakten er ikkje lenger aktiv i saka",
    },
    Language.EN: {
        "granted": "consent to {sector} is in force at level {level}",
        "narrowed": "{who} has consented only to {level} for {sector}",
        "not_consented": "{who} has not consented to {sector}",
        "child_not_consented": "{who} has party status and has not consented to {sector}",
        "refused": "{who} has refused consent to {sector}",
        "withdrawn": "{who} has withdrawn consent to {sector}",
        "expired": "consent from {who} to {sector} expired {on}",
        "no_daily_care": "no contact with daily care is registered, so nobody can consent",
        "party_or_service": "a party or the service itself; needs no consent",
        "child_talk_private": "the child talk belongs to the child; the parents are not told",
        "child_talk_told": "the parents are told when the child talk is, not what it is about",
        "level_too_low": "consent to {sector} covers only {level}",
        "contact_inactive": "the contact is no longer active in the case",
    },
}


def describe(reason: Reason, language: Language, names: Mapping[int, str]) -> str:
    """One reason in words, naming people by their label in the contact list (the child, who
    may have party status without a contact in the list, by the word for the child)."""
    who = grantor_label(reason.contact_id, language, names)
    on = local_date(reason.on).isoformat() if isinstance(reason.on, datetime) else ""
    return _TEMPLATES[language][reason.code].format(
        who=who,
        sector=SECTOR_NAMES[language][reason.sector] if reason.sector else "",
        level=LEVEL_NAMES[language][reason.level] if reason.level else "",
        on=on,
    )


def contact_label(name: str, role: Role, role_label: str, language: Language) -> str:
    """"Ola Nordmann (far)": the free label wins over the role's name."""
    return f"{name} ({role_label or ROLE_NAMES[language][role]})"


def grantor_label(contact_id: int | None, language: Language, names: Mapping[int, str]) -> str:
    """A grantor by their label in the contact list; no contact id is the child without a row."""
    return ROLE_NAMES[language][Role.CHILD] if contact_id is None else names.get(contact_id, "?")
