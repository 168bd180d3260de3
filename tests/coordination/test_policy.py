"""The information-loop policy, decided without a database: DESIGN.md rules 1, 2, 3, 5, 8."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coordination.consent.policy import (
    CaseFacts,
    ConsentFact,
    ContactFacts,
    GrantorState,
    SectorState,
    age_on,
    decide,
    effective_consent,
    fifteenth_birthday,
    has_party_status,
    visible_sectors,
)
from coordination.domain import ConsentStatus, Role, Sector
from coordination.levels import Level

T0 = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
CHILD_14 = CaseFacts(birth_date=date(2012, 6, 1), aimed_at_child=True)
MOTHER = ContactFacts(1, Role.PARENT, Sector.FAMILY, daily_care=True)
FATHER = ContactFacts(2, Role.PARENT, Sector.FAMILY, daily_care=True)
CHILD = ContactFacts(3, Role.CHILD, Sector.FAMILY, daily_care=False)
TEACHER = ContactFacts(10, Role.SCHOOL_CONTACT, Sector.SCHOOL, daily_care=False)
NURSE = ContactFacts(11, Role.PUBLIC_HEALTH_NURSE, Sector.HEALTH, daily_care=False)
CASEWORKER = ContactFacts(12, Role.CASEWORKER, Sector.CHILD_WELFARE, daily_care=False)
TWO_CARERS = (MOTHER, FATHER, CHILD, TEACHER, NURSE, CASEWORKER)
ONE_CARER = (MOTHER, CHILD, TEACHER, NURSE, CASEWORKER)

_ids = iter(range(1000, 10**6))
LEVELS = [Level.LOGISTICS, Level.PURPOSE, Level.CONTENT]


def fact(
    grantor: ContactFacts,
    status: ConsentStatus = ConsentStatus.GRANTED,
    level: Level = Level.PURPOSE,
    sector: Sector = Sector.SCHOOL,
    valid_from: datetime = T0 - timedelta(days=30),
    valid_until: datetime | None = None,
    recorded_at: datetime | None = None,
) -> ConsentFact:
    return ConsentFact(
        id=next(_ids), grantor_id=grantor.id, sector=sector, status=status,
        level=level if status is ConsentStatus.GRANTED else Level.NONE,
        valid_from=valid_from, valid_until=valid_until,
        recorded_at=recorded_at or valid_from,
    )


def school(contacts: tuple[ContactFacts, ...], records: list[ConsentFact], at: datetime = T0,
           case: CaseFacts = CHILD_14) -> Level:
    return effective_consent(case, contacts, records, Sector.SCHOOL, at).level


def test_one_carer_grant_is_enough() -> None:
    assert school(ONE_CARER, [fact(MOTHER)]) is Level.PURPOSE


def test_two_carers_both_must_grant() -> None:
    only_mother = effective_consent(CHILD_14, TWO_CARERS, [fact(MOTHER)], Sector.SCHOOL, T0)
    assert only_mother.level is Level.NONE
    assert only_mother.state is SectorState.PARTIAL
    assert [r.code for r in only_mother.reasons] == ["not_consented"]
    assert only_mother.reasons[0].contact_id == FATHER.id
    assert school(TWO_CARERS, [fact(MOTHER), fact(FATHER)]) is Level.PURPOSE


def test_no_grant_at_all_is_missing() -> None:
    consent = effective_consent(CHILD_14, TWO_CARERS, [], Sector.HEALTH, T0)
    assert consent.level is Level.NONE and consent.state is SectorState.MISSING
    assert {g.state for g in consent.grantors} == {GrantorState.MISSING}


def test_a_refusal_blocks() -> None:
    consent = effective_consent(
        CHILD_14, TWO_CARERS, [fact(MOTHER), fact(FATHER, ConsentStatus.REFUSED)], Sector.SCHOOL, T0
    )
    assert consent.level is Level.NONE
    assert [r.code for r in consent.reasons] == ["refused"]


def test_withdrawal_takes_effect_from_its_moment() -> None:
    withdrawn_at = T0 + timedelta(hours=1)
    records = [fact(MOTHER), fact(FATHER),
               fact(FATHER, ConsentStatus.WITHDRAWN, valid_from=withdrawn_at)]
    assert school(TWO_CARERS, records, at=withdrawn_at - timedelta(minutes=1)) is Level.PURPOSE
    after = effective_consent(CHILD_14, TWO_CARERS, records, Sector.SCHOOL, withdrawn_at)
    assert after.level is Level.NONE and after.state is SectorState.WITHDRAWN
    assert school(TWO_CARERS, records, at=withdrawn_at + timedelta(minutes=1)) is Level.NONE


def test_a_withdrawal_not_yet_recorded_is_not_known() -> None:
    """Decisions use what was on record at the moment; a later backdated record counts after it is made."""
    records = [fact(MOTHER), fact(MOTHER, ConsentStatus.WITHDRAWN, valid_from=T0 - timedelta(days=1),
                                  recorded_at=T0 + timedelta(hours=2))]
    assert school(ONE_CARER, records, at=T0) is Level.PURPOSE
    assert school(ONE_CARER, records, at=T0 + timedelta(hours=2)) is Level.NONE


def test_a_new_grant_after_withdrawal_restores() -> None:
    records = [fact(MOTHER), fact(MOTHER, ConsentStatus.WITHDRAWN, valid_from=T0),
               fact(MOTHER, level=Level.LOGISTICS, valid_from=T0 + timedelta(days=2))]
    assert school(ONE_CARER, records, at=T0 + timedelta(days=1)) is Level.NONE
    assert school(ONE_CARER, records, at=T0 + timedelta(days=3)) is Level.LOGISTICS


def test_expiry() -> None:
    until = T0 + timedelta(days=10)
    records = [fact(MOTHER, valid_until=until)]
    assert school(ONE_CARER, records, at=until - timedelta(seconds=1)) is Level.PURPOSE
    expired = effective_consent(CHILD_14, ONE_CARER, records, Sector.SCHOOL, until)
    assert expired.level is Level.NONE and expired.state is SectorState.EXPIRED
    assert expired.reasons[0].code == "expired" and expired.reasons[0].on == until


def test_future_grant_not_yet_in_force() -> None:
    records = [fact(MOTHER, valid_from=T0 + timedelta(days=1), recorded_at=T0 - timedelta(days=1))]
    assert school(ONE_CARER, records) is Level.NONE
    assert school(ONE_CARER, records, at=T0 + timedelta(days=1)) is Level.PURPOSE


def test_scope_is_the_narrowest_grant() -> None:
    records = [fact(MOTHER, level=Level.CONTENT), fact(FATHER, level=Level.LOGISTICS)]
    consent = effective_consent(CHILD_14, TWO_CARERS, records, Sector.SCHOOL, T0)
    assert consent.level is Level.LOGISTICS
    assert [(r.code, r.contact_id) for r in consent.reasons] == [("granted", None),
                                                               ("narrowed", FATHER.id)]


def test_consent_is_per_sector() -> None:
    records = [fact(MOTHER, sector=Sector.HEALTH)]
    assert school(ONE_CARER, records) is Level.NONE
    assert effective_consent(CHILD_14, ONE_CARER, records, Sector.HEALTH, T0).level is Level.PURPOSE


def test_child_turning_15_mid_plan_must_consent_too() -> None:
    birthday = datetime(2027, 6, 1, tzinfo=UTC)  # 15th birthday (Oslo date 2027-06-01)
    records = [fact(MOTHER), fact(FATHER)]
    day_before = birthday - timedelta(days=1)
    assert not has_party_status(CHILD_14, day_before)
    assert school(TWO_CARERS, records, at=day_before) is Level.PURPOSE
    # Midnight in Oslo is 22:00 UTC the evening before: the rule follows the Oslo date.
    assert has_party_status(CHILD_14, datetime(2027, 5, 31, 22, 30, tzinfo=UTC))
    on_birthday = effective_consent(CHILD_14, TWO_CARERS, records, Sector.SCHOOL, birthday)
    assert on_birthday.level is Level.NONE
    assert [r.code for r in on_birthday.reasons] == ["child_not_consented"]
    with_child = [*records, fact(CHILD, valid_from=birthday)]
    assert school(TWO_CARERS, with_child, at=birthday) is Level.PURPOSE


def test_measure_not_aimed_at_child_needs_no_child_consent() -> None:
    case = CaseFacts(birth_date=date(2010, 1, 1), aimed_at_child=False)
    assert school(TWO_CARERS, [fact(MOTHER), fact(FATHER)], case=case) is Level.PURPOSE
    aimed = CaseFacts(birth_date=date(2010, 1, 1), aimed_at_child=True)
    assert school(TWO_CARERS, [fact(MOTHER), fact(FATHER)], case=aimed) is Level.NONE


def test_party_status_override() -> None:
    young = CaseFacts(birth_date=date(2016, 1, 1), aimed_at_child=True, party_status_override=True)
    assert school(TWO_CARERS, [fact(MOTHER), fact(FATHER)], case=young) is Level.NONE
    old = CaseFacts(birth_date=date(2008, 1, 1), aimed_at_child=True, party_status_override=False)
    assert school(TWO_CARERS, [fact(MOTHER), fact(FATHER)], case=old) is Level.PURPOSE


def test_carer_losing_daily_care() -> None:
    records = [fact(MOTHER)]
    assert school(TWO_CARERS, records) is Level.NONE
    father_without_care = ContactFacts(FATHER.id, Role.PARENT, Sector.FAMILY, daily_care=False)
    contacts = (MOTHER, father_without_care, CHILD, TEACHER)
    assert school(contacts, records) is Level.PURPOSE
    # And a former carer's earlier grant no longer counts for anything on its own.
    assert school((father_without_care, CHILD, TEACHER), [fact(FATHER)]) is Level.NONE


CHILD_16 = CaseFacts(birth_date=date(2010, 5, 1), aimed_at_child=True)


def test_party_status_needs_the_child_even_without_a_contact_row() -> None:
    """Rule 2: party status belongs to the child, not to a row in the contact list."""
    carers_only = (MOTHER, FATHER, TEACHER)
    consent = effective_consent(CHILD_16, carers_only, [fact(MOTHER), fact(FATHER)], Sector.SCHOOL, T0)
    assert consent.level is Level.NONE and consent.state is SectorState.PARTIAL
    assert [(r.code, r.contact_id) for r in consent.reasons] == [("child_not_consented", None)]
    child = consent.grantors[-1]
    assert child.as_child and child.contact_id is None and child.state is GrantorState.MISSING
    # Without party status nobody asks for the child.
    assert school(carers_only, [fact(MOTHER), fact(FATHER)]) is Level.PURPOSE


def test_an_inactive_child_is_still_a_grantor() -> None:
    gone = ContactFacts(CHILD.id, Role.CHILD, Sector.FAMILY, daily_care=False, active=False)
    records = [fact(MOTHER), fact(FATHER), fact(CHILD, ConsentStatus.REFUSED)]
    assert school((MOTHER, FATHER, gone, TEACHER), records, case=CHILD_16) is Level.NONE
    # Their grant, recorded through the inactive row, counts.
    later = fact(CHILD, level=Level.CONTENT, recorded_at=T0 - timedelta(days=1))
    assert school((MOTHER, FATHER, gone, TEACHER), [*records, later], case=CHILD_16) is Level.PURPOSE


def test_the_child_is_one_person_whatever_rows_the_list_has() -> None:
    """A child re-entered as a new row: the acts of every child row are the child's, the latest wins."""
    old = ContactFacts(CHILD.id, Role.CHILD, Sector.FAMILY, daily_care=False, active=False)
    new = ContactFacts(20, Role.CHILD, Sector.FAMILY, daily_care=False)
    refused = fact(old, ConsentStatus.REFUSED)
    contacts = (MOTHER, FATHER, old, new, TEACHER)
    consent = effective_consent(CHILD_16, contacts, [fact(MOTHER), fact(FATHER), refused], Sector.SCHOOL, T0)
    assert consent.level is Level.NONE
    assert (consent.grantors[-1].contact_id, consent.grantors[-1].state) == (old.id, GrantorState.REFUSED)
    fresh = effective_consent(CHILD_16, (MOTHER, FATHER, old, new), [fact(MOTHER), fact(FATHER)], Sector.SCHOOL, T0)
    assert fresh.grantors[-1].contact_id == new.id  # the active row is named while nobody has consented
    granted = fact(new, recorded_at=T0 - timedelta(days=1))
    assert school(contacts, [fact(MOTHER), fact(FATHER), refused, granted], case=CHILD_16) is Level.PURPOSE


def test_an_inactive_carer_is_still_a_grantor() -> None:
    gone = ContactFacts(FATHER.id, Role.PARENT, Sector.FAMILY, daily_care=True, active=False)
    assert school((MOTHER, gone, CHILD, TEACHER), [fact(MOTHER)]) is Level.NONE
    assert school((MOTHER, gone, CHILD, TEACHER), [fact(MOTHER), fact(FATHER, level=Level.LOGISTICS)]
                  ) is Level.LOGISTICS


@given(
    active=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    present=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    grants=st.lists(st.tuples(st.sampled_from([MOTHER, FATHER, CHILD]), st.sampled_from(list(ConsentStatus)),
                              st.sampled_from(LEVELS)), max_size=6),
)
def test_removing_or_deactivating_a_grantor_never_widens(
    active: tuple[bool, bool, bool], present: tuple[bool, bool, bool],
    grants: list[tuple[ContactFacts, ConsentStatus, Level]],
) -> None:
    records = [fact(who, status, level, recorded_at=T0 - timedelta(days=30 - i))
               for i, (who, status, level) in enumerate(grants)]
    everyone = (MOTHER, FATHER, CHILD, TEACHER)
    full = school(everyone, records, case=CHILD_16)
    changed = tuple(
        ContactFacts(c.id, c.role, c.sector, c.daily_care, active=flag)
        for c, flag, keep in zip((MOTHER, FATHER, CHILD), active, present, strict=True)
        if keep or c.role is not Role.CHILD  # a carer is never deleted; the child may have no row
    )
    assert school((*changed, TEACHER), records, case=CHILD_16) <= full


def test_no_carer_registered_means_no_consent() -> None:
    consent = effective_consent(CHILD_14, (CHILD, TEACHER), [], Sector.SCHOOL, T0)
    assert consent.level is Level.NONE and consent.reasons[0].code == "no_daily_care"


def test_family_and_service_need_no_consent() -> None:
    for sector in (Sector.FAMILY, Sector.CHILD_WELFARE):
        consent = effective_consent(CHILD_14, TWO_CARERS, [], sector, T0)
        assert consent.level is Level.CONTENT and consent.state is SectorState.NOT_NEEDED


def test_decide_for_partners_respects_level() -> None:
    records = [fact(MOTHER, level=Level.LOGISTICS)]
    assert decide(CHILD_14, ONE_CARER, records, TEACHER, Level.LOGISTICS, T0).allowed
    denied = decide(CHILD_14, ONE_CARER, records, TEACHER, Level.PURPOSE, T0)
    assert not denied.allowed and denied.reasons[0].code == "level_too_low"
    no_consent = decide(CHILD_14, ONE_CARER, records, NURSE, Level.LOGISTICS, T0)
    assert not no_consent.allowed and no_consent.level is Level.NONE
    allowed = decide(CHILD_14, ONE_CARER, records, TEACHER, Level.LOGISTICS, T0)
    assert allowed.consent_record_ids == (records[0].id,)


def test_families_are_parties_but_child_talk_belongs_to_the_child() -> None:
    assert decide(CHILD_14, TWO_CARERS, [], MOTHER, Level.CONTENT, T0).allowed
    assert decide(CHILD_14, TWO_CARERS, [], CHILD, Level.CONTENT, T0, child_talk=True).allowed
    hidden = decide(CHILD_14, TWO_CARERS, [], MOTHER, Level.LOGISTICS, T0, child_talk=True)
    assert not hidden.allowed and hidden.reasons[0].code == "child_talk_private"
    assert decide(CHILD_14, TWO_CARERS, [], MOTHER, Level.LOGISTICS, T0, child_talk=True,
                  parents_told_of_child_talk=True).allowed


def test_parents_told_of_a_child_talk_learn_when_it_is_not_what_it_is_about() -> None:
    """Rule 5: told, the parents learn that the talk takes place; its purpose stays the child's.
    Whoever has daily care counts as a parent here, whatever their role."""
    told = decide(CHILD_14, TWO_CARERS, [], MOTHER, Level.PURPOSE, T0, child_talk=True,
                  parents_told_of_child_talk=True)
    assert not told.allowed and told.level is Level.LOGISTICS
    foster = ContactFacts(40, Role.OTHER, Sector.FAMILY, daily_care=True)
    hidden = decide(CHILD_14, (*TWO_CARERS, foster), [], foster, Level.LOGISTICS, T0, child_talk=True)
    assert not hidden.allowed and hidden.reasons[0].code == "child_talk_private"
    assert decide(CHILD_14, TWO_CARERS, [], CHILD, Level.CONTENT, T0, child_talk=True,
                  parents_told_of_child_talk=True).allowed


def test_inactive_contact_learns_nothing() -> None:
    gone = ContactFacts(TEACHER.id, Role.SCHOOL_CONTACT, Sector.SCHOOL, False, active=False)
    assert not decide(CHILD_14, ONE_CARER, [fact(MOTHER)], gone, Level.LOGISTICS, T0).allowed


def test_attendee_visibility() -> None:
    health_purpose = fact(MOTHER, sector=Sector.HEALTH, level=Level.PURPOSE)
    school_logistics = fact(MOTHER, level=Level.LOGISTICS)
    records = [health_purpose, school_logistics]
    # The teacher (logistics only) may not learn that health takes part.
    assert visible_sectors(CHILD_14, ONE_CARER, records, TEACHER, T0) == {
        Sector.FAMILY, Sector.CHILD_WELFARE, Sector.SCHOOL}
    # The nurse has purpose, but school only logistics: school stays hidden from health.
    assert Sector.SCHOOL not in visible_sectors(CHILD_14, ONE_CARER, records, NURSE, T0)
    both = [health_purpose, fact(MOTHER, level=Level.PURPOSE)]
    assert Sector.SCHOOL in visible_sectors(CHILD_14, ONE_CARER, both, NURSE, T0)
    assert Sector.NAV not in visible_sectors(CHILD_14, ONE_CARER, both, NURSE, T0)
    # The service and the family see a partner sector once its consent reaches purpose
    # (rule 8: both sectors at least purpose; theirs needs none): health, not school.
    for reader in (CASEWORKER, MOTHER):
        seen = visible_sectors(CHILD_14, ONE_CARER, records, reader, T0)
        assert Sector.HEALTH in seen and Sector.SCHOOL not in seen




@given(
    grants=st.lists(st.tuples(st.sampled_from([MOTHER, FATHER]),
                              st.sampled_from(list(ConsentStatus)),
                              st.sampled_from(LEVELS),
                              st.integers(-20, 20), st.one_of(st.none(), st.integers(1, 40))),
                    max_size=8),
    offset=st.integers(-30, 30),
)
def test_effective_level_never_exceeds_any_required_grant(
    grants: list[tuple[ContactFacts, ConsentStatus, Level, int, int | None]], offset: int
) -> None:
    records = []
    for index, (who, status, level, start, length) in enumerate(grants):
        valid_from = T0 + timedelta(days=start)
        records.append(ConsentFact(
            id=index + 1, grantor_id=who.id, sector=Sector.SCHOOL, status=status,
            level=level if status is ConsentStatus.GRANTED else Level.NONE, valid_from=valid_from,
            valid_until=valid_from + timedelta(days=length) if length else None,
            recorded_at=T0 - timedelta(days=100) + timedelta(hours=index)))
    at = T0 + timedelta(days=offset)
    consent = effective_consent(CHILD_14, TWO_CARERS, records, Sector.SCHOOL, at)
    for carer in (MOTHER, FATHER):
        in_force = [r for r in records if r.grantor_id == carer.id and r.valid_from <= at]
        if not in_force:
            assert consent.level is Level.NONE
            continue
        latest = max(in_force, key=lambda r: (r.recorded_at, r.id))
        live = latest.status is ConsentStatus.GRANTED and (
            latest.valid_until is None or at < latest.valid_until)
        if not live:
            assert consent.level is Level.NONE
        else:
            assert consent.level <= latest.level


@pytest.mark.parametrize("level", LEVELS)
def test_levels_are_ordered(level: Level) -> None:
    assert Level.NONE < level <= Level.CONTENT


def test_a_child_born_on_29_february_turns_15_on_28_february_in_other_years() -> None:
    """Fristloven § 3: a period in years ends on the month's last day when the day does not
    exist; the earlier day is also the one that never widens consent. Oslo midnight counts."""
    leap = CaseFacts(birth_date=date(2012, 2, 29), aimed_at_child=True)
    assert fifteenth_birthday(leap.birth_date) == date(2027, 2, 28)
    assert age_on(leap.birth_date, date(2027, 2, 27)) == 14
    assert age_on(leap.birth_date, date(2027, 2, 28)) == 15
    assert age_on(leap.birth_date, date(2028, 2, 28)) == 15  # a leap year: 16 on 29 February
    assert age_on(leap.birth_date, date(2028, 2, 29)) == 16
    oslo_midnight = datetime(2027, 2, 27, 23, 0, tzinfo=UTC)
    assert not has_party_status(leap, oslo_midnight - timedelta(seconds=1))
    assert has_party_status(leap, oslo_midnight)
    records = [fact(MOTHER, level=Level.PURPOSE)]
    assert effective_consent(leap, ONE_CARER, records, Sector.SCHOOL, oslo_midnight - timedelta(minutes=1)
                             ).level is Level.PURPOSE
    assert effective_consent(leap, ONE_CARER, records, Sector.SCHOOL, oslo_midnight).level is Level.NONE
