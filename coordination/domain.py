"""The vocabulary of the domain: roles, sectors, consent states, languages.

Kept apart from the tables so that the policy, the API and the texts share one spelling.
"""

from __future__ import annotations

import enum

from notifications.ports import Language as MessageLanguage


class Sector(enum.StrEnum):
    FAMILY = "family"
    CHILD_WELFARE = "child_welfare"
    SCHOOL = "school"
    HEALTH = "health"
    NAV = "nav"
    OTHER = "other"

    @property
    def needs_consent(self) -> bool:
        """Families are parties and the service itself needs no consent; every outside sector does."""
        return self not in (Sector.FAMILY, Sector.CHILD_WELFARE)


#: The outside sectors that consent is recorded for.
PARTNER_SECTORS = tuple(s for s in Sector if s.needs_consent)


class Role(enum.StrEnum):
    PARENT = "parent"
    CHILD = "child"
    TRUSTED_PERSON = "trusted_person"
    SCHOOL_CONTACT = "school_contact"
    PRINCIPAL = "principal"
    KINDERGARTEN = "kindergarten"
    AFTER_SCHOOL_CARE = "after_school_care"
    PPT = "ppt"
    PUBLIC_HEALTH_NURSE = "public_health_nurse"
    GP = "gp"
    CHILD_PSYCHIATRY = "child_psychiatry"
    MENTAL_HEALTH = "mental_health"
    NAV_ADVISER = "nav_adviser"
    SUPPORT_CONTACT = "support_contact"
    MILIEU_THERAPIST = "milieu_therapist"
    FAMILY_THERAPIST = "family_therapist"
    INTERPRETER = "interpreter"
    CASEWORKER = "caseworker"
    OTHER = "other"


DEFAULT_SECTOR: dict[Role, Sector] = {
    Role.PARENT: Sector.FAMILY,
    Role.CHILD: Sector.FAMILY,
    Role.TRUSTED_PERSON: Sector.FAMILY,
    Role.SCHOOL_CONTACT: Sector.SCHOOL,
    Role.PRINCIPAL: Sector.SCHOOL,
    Role.KINDERGARTEN: Sector.SCHOOL,
    Role.AFTER_SCHOOL_CARE: Sector.SCHOOL,
    Role.PPT: Sector.SCHOOL,
    Role.PUBLIC_HEALTH_NURSE: Sector.HEALTH,
    Role.GP: Sector.HEALTH,
    Role.CHILD_PSYCHIATRY: Sector.HEALTH,
    Role.MENTAL_HEALTH: Sector.HEALTH,
    Role.NAV_ADVISER: Sector.NAV,
    # Support contacts and milieu therapists are engaged by the service as part of the measure.
    Role.SUPPORT_CONTACT: Sector.CHILD_WELFARE,
    Role.MILIEU_THERAPIST: Sector.CHILD_WELFARE,
    Role.FAMILY_THERAPIST: Sector.OTHER,
    Role.INTERPRETER: Sector.CHILD_WELFARE,
    Role.CASEWORKER: Sector.CHILD_WELFARE,
    Role.OTHER: Sector.OTHER,
}


class ConsentStatus(enum.StrEnum):
    GRANTED = "granted"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"


class ConsentForm(enum.StrEnum):
    WRITTEN = "written"
    ORAL = "oral"


#: Bokmål (the default), nynorsk, English; one enum shared with the message texts.
Language = MessageLanguage


class UserRole(enum.StrEnum):
    COORDINATOR = "coordinator"
    LEADER = "leader"
    ADMIN = "admin"


class MeasureType(enum.StrEnum):
    VOLUNTARY = "voluntary"
    ORDERED = "ordered"


#: Age from which a child as a rule has party status (partsstatus).
PARTY_STATUS_AGE = 15
#: Child welfare measures (aftercare included) end when the young person turns 25.
MEASURES_END_AGE = 25
