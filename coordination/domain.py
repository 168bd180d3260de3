"""The vocabulary of the domain: roles, sectors, consent states, languages, audit actions.

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


class NotifyBy(enum.StrEnum):
    """How a contact wants to be told: e-mail (the default), SMS, or both (the default for a
    family member with a mobile number)."""

    EMAIL = "email"
    SMS = "sms"
    BOTH = "both"


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


class CaseStatus(enum.StrEnum):
    """A case's life: open while the service works for the child; closed when the plan ends or
    the measures stop (its record produced, reopenable within the retention period); purged when
    that period has passed and its personal data is deleted, the row left as a tombstone."""

    OPEN = "open"
    CLOSED = "closed"
    PURGED = "purged"


class AuditAction(enum.StrEnum):
    """What an audit entry records (DESIGN.md rule 9). The values are stored: never rename one."""

    CASE_CREATED = "case.created"
    CASE_UPDATED = "case.updated"
    CASE_COORDINATORS = "case.coordinators"
    CONTACT_ADDED = "contact.added"
    CONTACT_UPDATED = "contact.updated"
    CONSENT_GRANTED = "consent.granted"
    CONSENT_REFUSED = "consent.refused"
    CONSENT_WITHDRAWN = "consent.withdrawn"
    INFORMATION_LOOPS_READ = "information_loops.read"
    PLAN_CREATED = "plan.created"
    PLAN_REVISED = "plan.revised"
    MEETING_CREATED = "meeting.created"
    MEETING_MOVED = "meeting.moved"
    MEETING_UPDATED = "meeting.updated"
    MEETING_CONFIRMED = "meeting.confirmed"
    MEETING_CANCELLED = "meeting.cancelled"
    MEETING_HELD = "meeting.held"
    MEETING_ANSWERED = "meeting.answered"
    ANSWER_LINK_USED = "answer.link_used"
    DISCLOSURE_ALLOWED = "disclosure.allowed"
    DISCLOSURE_DENIED = "disclosure.denied"
    NOTIFICATION_SENT = "notification.sent"
    NOTIFICATION_SUPPRESSED = "notification.suppressed"
    NOTIFICATION_RETRY = "notification.retry"
    NOTIFICATION_DEAD = "notification.dead"
    #: A sent message came back as undeliverable (an RFC 3464 bounce read from the mailbox).
    NOTIFICATION_BOUNCED = "notification.bounced"
    #: The SMS gateway reported a sent SMS as delivered to the phone (Sveve's delivery report).
    NOTIFICATION_DELIVERED = "notification.delivered"
    #: A calendar's answer (iTIP REPLY) read from the mailbox and recorded (coordination.replies).
    REPLY_APPLIED = "reply.applied"
    #: A calendar's answer that changed nothing, with its typed reason (replies.enums.ReplyOutcome).
    REPLY_IGNORED = "reply.ignored"
    #: Another time proposed in a calendar (iTIP COUNTER), shown to the coordinator.
    COUNTER_RECEIVED = "reply.counter"
    FEED_CREATED = "feed.created"
    FEED_REVOKED = "feed.revoked"
    FEED_SERVED = "feed.served"
    ALERT_RAISED = "alert.raised"
    ALERT_RESOLVED = "alert.resolved"
    USER_CREATED = "user.created"
    USER_DEACTIVATED = "user.deactivated"
    #: A user's first sign-in with OpenID Connect linked the provider's identity (access.oidc).
    USER_IDENTITY_LINKED = "user.identity_linked"
    UNIT_UPDATED = "unit.updated"
    CASE_CLOSED = "case.closed"
    CASE_REOPENED = "case.reopened"
    #: The retention period ended: the case's personal data was deleted (``records.retention``).
    CASE_PURGED = "case.purged"
    #: The case record (for the journal) or the family's access report was produced.
    RECORD_PRODUCED = "record.produced"
    ACCESS_REPORT_PRODUCED = "record.access_report"
    # A user was shown a case's data: one entry per API request or page (``audit.record_read``).
    READ_CASE = "read.case"
    READ_CONTACTS = "read.contacts"
    READ_CONSENTS = "read.consents"
    READ_AUDIT = "read.audit"
    READ_PLAN = "read.plan"
    READ_MEETINGS = "read.meetings"
    READ_OUTBOX = "read.outbox"
    READ_PAGE_CONSENT = "read.page.samtykke"
    READ_PAGE_MEETINGS = "read.page.moter"
    READ_PAGE_PLAN = "read.page.plan"
    READ_PAGE_NEW_MEETING = "read.page.nytt-mote"
    READ_PAGE_FEEDS = "read.page.kalendere"
    READ_PAGE_OUTBOX = "read.page.utsendinger"
    READ_PAGE_LOG = "read.page.logg"
    READ_PAGE_RECORD = "read.page.journal"
    READ_PAGE_ACCESS_REPORT = "read.page.innsyn"


#: Age from which a child as a rule has party status (partsstatus).
PARTY_STATUS_AGE = 15
#: Child welfare measures (aftercare included) end when the young person turns 25.
MEASURES_END_AGE = 25
