"""Hand-computed examples from DESIGN.md for the oracle."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from oracle import (
    Act,
    Feed,
    L,
    Meet,
    Person,
    Staff,
    World,
    age_on,
    attendee_sector_shown_at_least,
    attendee_sector_shown_at_most,
    attendee_shown_at_most,
    contact_feed,
    feed_alive,
    grant,
    in_feeds,
    mail_level,
    may_know,
    party_status,
    quiet_hours,
    quiet_hours_end,
    required_grantors,
    sector_change_allowed,
    sector_level,
    sms_daytime,
    staff_feed,
)


def u(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=UTC)


MOM = Person(1, "parent", "family", "mom@x.no", "Mor", daily_care=True)
DAD = Person(2, "parent", "family", "dad@x.no", "Far", daily_care=True)
KID = Person(3, "child", "family", "kid@x.no", "Barn")
TEACHER = Person(4, "school_contact", "school", "t@school.no", "Lærer")
NURSE = Person(5, "public_health_nurse", "health", "n@health.no", "Helsesykepleier")
CW = Person(6, "caseworker", "child_welfare", "cw@bv.no", "Saksbehandler")
T0 = u(2025, 1, 1)


def act(order: int, grantor: int, sector: str, status: str, level: L, vf: datetime,
        until: datetime | None = None, rec: datetime | None = None) -> Act:
    return Act(order, grantor, sector, status, level, vf, until, rec if rec is not None else vf)


def meet(mid: int, kind: str = "startup", parts: frozenset[int] = frozenset({1, 2, 3, 4, 5, 6}),
         status: str = "confirmed", told: bool = False, cancelled_at: datetime | None = None) -> Meet:
    return Meet(mid, f"uid-{mid}", kind, u(2025, 6, 2, 8), u(2025, 6, 2, 9), status, 0, parts, told,
                "agenda", "place", cancelled_at)


def world(people: tuple[Person, ...] = (MOM, DAD, KID, TEACHER, NURSE, CW), acts: tuple[Act, ...] = (),
          birth: date = date(2015, 5, 5), aimed: bool = True, override: bool | None = None,
          meetings: tuple[Meet, ...] = ()) -> World:
    return World("BV-1", "Kari Nordmann", birth, aimed, override, people, acts, meetings,
                 (Staff(10, "coordinator"), Staff(11, "leader"), Staff(12, "coordinator", active=False)),
                 frozenset({10, 12}))


BOTH_SCHOOL_CONTENT = (act(1, 1, "school", "granted", L.CONTENT, T0), act(2, 2, "school", "granted", L.CONTENT, T0))


# --- rule 2: acts in force ---------------------------------------------------------------

def test_narrowest_of_grants() -> None:
    w = world(acts=(act(1, 1, "school", "granted", L.CONTENT, T0), act(2, 2, "school", "granted", L.LOGISTICS, T0)))
    assert sector_level(w, "school", u(2025, 2, 1)) == L.LOGISTICS


def test_one_carer_missing_gives_none() -> None:
    w = world(acts=(act(1, 1, "school", "granted", L.CONTENT, T0),))
    assert sector_level(w, "school", u(2025, 2, 1)) == L.NONE


def test_withdrawal_stops_a_reminder_one_minute_later() -> None:
    w = world(acts=(*BOTH_SCHOOL_CONTENT, act(3, 2, "school", "withdrawn", L.NONE, u(2025, 3, 1, 9))))
    assert sector_level(w, "school", u(2025, 3, 1, 8, 59)) == L.CONTENT
    assert sector_level(w, "school", u(2025, 3, 1, 9, 1)) == L.NONE


def test_valid_until_exactly_at_t_is_expired() -> None:
    w = world(acts=(act(1, 1, "school", "granted", L.PURPOSE, T0, until=u(2025, 4, 1)),
                    act(2, 2, "school", "granted", L.PURPOSE, T0)))
    assert sector_level(w, "school", u(2025, 3, 31, 23, 59, 59)) == L.PURPOSE
    assert sector_level(w, "school", u(2025, 4, 1)) == L.NONE


def test_withdrawal_recorded_before_grant_with_later_valid_from() -> None:
    acts = (
        *BOTH_SCHOOL_CONTENT,
        act(3, 1, "school", "withdrawn", L.NONE, u(2025, 2, 1)),
        act(4, 1, "school", "granted", L.PURPOSE, u(2025, 3, 1), rec=u(2025, 2, 2)),
    )
    w = world(acts=acts)
    assert grant(w, 1, "school", u(2025, 2, 15)) == L.NONE
    assert grant(w, 1, "school", u(2025, 3, 1)) == L.PURPOSE
    assert sector_level(w, "school", u(2025, 3, 2)) == L.PURPOSE


def test_withdrawal_recorded_after_a_future_grant_cancels_it() -> None:
    w = world(acts=(act(1, 1, "school", "granted", L.CONTENT, u(2025, 3, 1), rec=u(2025, 2, 1)),
                    act(2, 1, "school", "withdrawn", L.NONE, u(2025, 2, 10))))
    assert grant(w, 1, "school", u(2025, 3, 15)) == L.NONE


def test_act_recorded_after_t_is_unknown_at_t() -> None:
    # a grant back-dated to 1 Feb but recorded on 1 Mar does not count on 15 Feb
    w = world(acts=(act(1, 1, "school", "granted", L.CONTENT, u(2025, 2, 1), rec=u(2025, 3, 1)),))
    assert grant(w, 1, "school", u(2025, 2, 15)) == L.NONE
    assert grant(w, 1, "school", u(2025, 3, 1)) == L.CONTENT


def test_expired_successor_does_not_revive_predecessor() -> None:
    w = world(acts=(act(1, 1, "school", "granted", L.CONTENT, T0),
                    act(2, 1, "school", "granted", L.LOGISTICS, u(2025, 2, 1), until=u(2025, 3, 1))))
    assert grant(w, 1, "school", u(2025, 2, 15)) == L.LOGISTICS
    assert grant(w, 1, "school", u(2025, 3, 15)) == L.NONE


def test_scheduled_withdrawal_then_new_grant_is_min_of_readings() -> None:
    w = world(acts=(act(1, 1, "school", "withdrawn", L.NONE, u(2025, 3, 1), rec=u(2025, 2, 1)),
                    act(2, 1, "school", "granted", L.CONTENT, u(2025, 2, 5))))
    assert grant(w, 1, "school", u(2025, 2, 20)) == L.CONTENT
    assert grant(w, 1, "school", u(2025, 3, 15)) == L.NONE


def test_refusal_gives_none_and_other_sector_unaffected() -> None:
    w = world(acts=(*BOTH_SCHOOL_CONTENT, act(3, 1, "health", "refused", L.NONE, T0)))
    assert sector_level(w, "health", u(2025, 2, 1)) == L.NONE
    assert sector_level(w, "school", u(2025, 2, 1)) == L.CONTENT


# --- rule 2: required grantors -----------------------------------------------------------

def test_inactive_carer_still_required() -> None:
    w = world(people=(MOM, replace(DAD, active=False), KID, TEACHER),
              acts=(act(1, 1, "school", "granted", L.CONTENT, T0),))
    assert required_grantors(w, u(2025, 2, 1)) == [1, 2]
    assert sector_level(w, "school", u(2025, 2, 1)) == L.NONE


def test_non_parent_with_daily_care_counts() -> None:
    gran = Person(7, "other", "family", "g@x.no", "Bestemor", daily_care=True)
    w = world(people=(MOM, gran, TEACHER), acts=(act(1, 1, "school", "granted", L.CONTENT, T0),))
    assert required_grantors(w, u(2025, 2, 1)) == [1, 7]
    assert sector_level(w, "school", u(2025, 2, 1)) == L.NONE


def test_no_grantor_at_all_is_none() -> None:
    w = world(people=(TEACHER, CW))
    assert sector_level(w, "school", u(2025, 2, 1)) == L.NONE
    assert sector_level(w, "family", u(2025, 2, 1)) == L.CONTENT
    assert sector_level(w, "child_welfare", u(2025, 2, 1)) == L.CONTENT


def test_child_with_party_status_but_no_row_blocks() -> None:
    w = world(people=(MOM, DAD, TEACHER), acts=BOTH_SCHOOL_CONTENT, birth=date(2008, 1, 1))
    assert required_grantors(w, u(2025, 2, 1)) == [1, 2, None]
    assert sector_level(w, "school", u(2025, 2, 1)) == L.NONE


def test_child_inactive_row_still_required() -> None:
    w = world(people=(MOM, DAD, replace(KID, active=False), TEACHER), acts=BOTH_SCHOOL_CONTENT, birth=date(2008, 1, 1))
    assert sector_level(w, "school", u(2025, 2, 1)) == L.NONE
    w2 = replace(w, acts=(*w.acts, act(3, 3, "school", "granted", L.PURPOSE, T0)))
    assert sector_level(w2, "school", u(2025, 2, 1)) == L.PURPOSE


def test_child_not_required_when_measure_not_aimed_at_child() -> None:
    w = world(people=(MOM, DAD, TEACHER), acts=BOTH_SCHOOL_CONTENT, birth=date(2008, 1, 1), aimed=False)
    assert sector_level(w, "school", u(2025, 2, 1)) == L.CONTENT


def test_override_true_gives_party_status_young_child() -> None:
    w = world(acts=BOTH_SCHOOL_CONTENT, override=True)
    assert party_status(w, u(2025, 2, 1))
    assert sector_level(w, "school", u(2025, 2, 1)) == L.NONE


def test_override_false_does_not_remove_party_status_at_15() -> None:
    w = world(birth=date(2008, 1, 1), override=False)
    assert party_status(w, u(2025, 2, 1))


# --- party status dates ------------------------------------------------------------------

def test_15th_birthday_midnight_oslo_winter() -> None:
    w = world(birth=date(2010, 1, 10))  # CET, UTC+1: Oslo midnight = 23:00 UTC the day before
    assert not party_status(w, u(2025, 1, 9, 22, 59, 59))
    assert party_status(w, u(2025, 1, 9, 23, 0))


def test_15th_birthday_midnight_oslo_summer() -> None:
    w = world(birth=date(2010, 7, 10))  # CEST, UTC+2
    assert not party_status(w, u(2025, 7, 9, 21, 59, 59))
    assert party_status(w, u(2025, 7, 9, 22, 0))


def test_29_february_birthday() -> None:
    assert age_on(date(2012, 2, 29), date(2027, 2, 27)) == 14
    assert age_on(date(2012, 2, 29), date(2027, 2, 28)) == 15  # non-leap year: counted on 28 Feb
    assert age_on(date(2012, 2, 29), date(2028, 2, 28)) == 15  # leap year: not yet 16
    assert age_on(date(2012, 2, 29), date(2028, 2, 29)) == 16
    w = world(birth=date(2012, 2, 29))
    assert party_status(w, u(2027, 2, 27, 23, 0))  # 00:00 Oslo on 28 Feb 2027


# --- rules 1, 3, 4, 5: readers -----------------------------------------------------------

def test_partner_without_consent_knows_nothing_family_everything() -> None:
    m = meet(1)
    w = world(meetings=(m,))
    at = u(2025, 5, 1)
    assert may_know(w, TEACHER, m, at) == L.NONE
    assert may_know(w, MOM, m, at) == L.CONTENT
    assert may_know(w, KID, m, at) == L.CONTENT
    assert may_know(w, CW, m, at) == L.CONTENT


def test_non_participant_and_inactive_reader_know_nothing() -> None:
    m = meet(1, parts=frozenset({1, 6}))
    w = world(acts=BOTH_SCHOOL_CONTENT, meetings=(m,))
    assert may_know(w, TEACHER, m, u(2025, 5, 1)) == L.NONE
    m2 = meet(2)
    w2 = world(people=(replace(MOM, active=False), DAD, KID, TEACHER), meetings=(m2,))
    assert may_know(w2, replace(MOM, active=False), m2, u(2025, 5, 1)) == L.NONE


def test_child_talk_parents_not_told() -> None:
    talk = meet(1, kind="child_talk", parts=frozenset({1, 3, 6}))
    w = world(meetings=(talk,))
    at = u(2025, 5, 1)
    assert may_know(w, MOM, talk, at) == L.NONE
    assert may_know(w, KID, talk, at) == L.CONTENT
    told = replace(talk, parents_told=True)
    assert may_know(replace(w, meetings=(told,)), MOM, told, at) == L.LOGISTICS
    assert contact_feed(replace(w, meetings=(told,)), DAD, at) == {}  # told but not a participant


def test_mail_level_capped_at_logistics_by_default() -> None:
    m = meet(1)
    w = world(acts=BOTH_SCHOOL_CONTENT, meetings=(m,))
    at = u(2025, 5, 1)
    assert mail_level(w, TEACHER, m, at, L.LOGISTICS) == L.LOGISTICS
    assert mail_level(w, MOM, m, at, L.LOGISTICS) == L.LOGISTICS
    assert mail_level(w, TEACHER, m, at, L.PURPOSE) == L.PURPOSE
    assert mail_level(w, NURSE, m, at, L.PURPOSE) == L.NONE


# --- rule 8 ------------------------------------------------------------------------------

def test_attendees_at_logistics_only_self() -> None:
    w = world(acts=(act(1, 1, "school", "granted", L.LOGISTICS, T0), act(2, 2, "school", "granted", L.LOGISTICS, T0)))
    at = u(2025, 5, 1)
    for s in ("school", "family", "child_welfare", "health"):
        assert not attendee_sector_shown_at_most(w, TEACHER, s, L.LOGISTICS, at)
    assert attendee_shown_at_most(w, TEACHER, TEACHER, L.LOGISTICS, at)
    assert not attendee_sector_shown_at_least(TEACHER, "family", L.LOGISTICS)


def test_attendees_at_purpose_need_both_sectors() -> None:
    acts = (act(1, 1, "school", "granted", L.PURPOSE, T0), act(2, 2, "school", "granted", L.PURPOSE, T0),
            act(3, 1, "health", "granted", L.LOGISTICS, T0), act(4, 2, "health", "granted", L.LOGISTICS, T0))
    w = world(acts=acts)
    at = u(2025, 5, 1)
    assert attendee_sector_shown_at_most(w, TEACHER, "family", L.PURPOSE, at)
    assert attendee_sector_shown_at_most(w, TEACHER, "child_welfare", L.PURPOSE, at)
    assert attendee_sector_shown_at_most(w, TEACHER, "school", L.PURPOSE, at)
    assert not attendee_sector_shown_at_most(w, TEACHER, "health", L.PURPOSE, at)
    assert not attendee_sector_shown_at_most(w, MOM, "health", L.PURPOSE, at)
    assert attendee_sector_shown_at_most(w, MOM, "school", L.PURPOSE, at)
    assert not attendee_sector_shown_at_most(w, TEACHER, "school", L.CONTENT, at)  # above own consent
    assert attendee_sector_shown_at_least(TEACHER, "child_welfare", L.PURPOSE)
    assert not attendee_sector_shown_at_least(TEACHER, "health", L.CONTENT)


# --- rule 10 -----------------------------------------------------------------------------

def test_quiet_hours_bounds_winter() -> None:
    assert not quiet_hours(u(2025, 1, 15, 19, 59, 59))  # 20:59:59 Oslo
    assert quiet_hours(u(2025, 1, 15, 20, 0))  # 21:00 Oslo
    assert quiet_hours(u(2025, 1, 16, 5, 59, 59))  # 06:59:59
    assert not quiet_hours(u(2025, 1, 16, 6, 0))  # 07:00


def test_quiet_hours_dst_spring_forward_day() -> None:
    # 30 March 2025: clocks 02:00 -> 03:00; 07:00 CEST = 05:00 UTC
    assert quiet_hours(u(2025, 3, 30, 4, 59))
    assert not quiet_hours(u(2025, 3, 30, 5, 0))
    assert quiet_hours(u(2025, 3, 30, 19, 0))  # 21:00 CEST
    assert quiet_hours_end(u(2025, 3, 29, 21, 0)) == u(2025, 3, 30, 5, 0)


def test_quiet_hours_dst_fall_back_day() -> None:
    # 26 October 2025: clocks 03:00 -> 02:00; 07:00 CET = 06:00 UTC
    assert quiet_hours(u(2025, 10, 26, 5, 30))
    assert not quiet_hours(u(2025, 10, 26, 6, 0))
    assert quiet_hours(u(2025, 10, 26, 20, 0))  # 21:00 CET
    assert not quiet_hours(u(2025, 10, 26, 19, 59))


def test_who_is_family_and_sms_window() -> None:
    assert MOM.is_family_recipient and KID.is_family_recipient
    assert Person(8, "trusted_person", "family", "", "").is_family_recipient
    assert Person(9, "other", "family", "", "").is_family_recipient
    assert not TEACHER.is_family_recipient and not CW.is_family_recipient
    assert sms_daytime(u(2025, 1, 15, 7, 0)) and not sms_daytime(u(2025, 1, 15, 19, 0))
    assert not sms_daytime(u(2025, 1, 15, 6, 59))


# --- feeds and rule 11 -------------------------------------------------------------------

def test_cancelled_kept_30_days() -> None:
    m = meet(1, status="cancelled", cancelled_at=u(2025, 5, 1))
    assert in_feeds(m, u(2025, 5, 30, 23, 59))
    assert not in_feeds(m, u(2025, 5, 31))
    assert not in_feeds(replace(m, cancelled_at=None), u(2025, 5, 2))
    w = world(meetings=(m, meet(2)))
    assert staff_feed(w, u(2025, 6, 1)) == {"uid-2"}


def test_contact_feed_drops_after_withdrawal() -> None:
    m = meet(1)
    w = world(acts=(*BOTH_SCHOOL_CONTENT, act(3, 1, "school", "withdrawn", L.NONE, u(2025, 5, 1))), meetings=(m,))
    assert contact_feed(w, TEACHER, u(2025, 4, 30)) == {"uid-1": L.PURPOSE}
    assert contact_feed(w, TEACHER, u(2025, 5, 1)) == {}
    assert contact_feed(w, MOM, u(2025, 5, 1)) == {"uid-1": L.PURPOSE}


def test_feed_alive() -> None:
    w = world()
    at = u(2025, 5, 1)
    assert feed_alive(w, Feed(1, "case", 10), at)
    assert not feed_alive(w, Feed(2, "case", 10, revoked=True), at)
    assert not feed_alive(w, Feed(3, "case", 11), at)  # leader not assigned
    assert feed_alive(w, Feed(4, "coordinator", 11), at)
    assert not feed_alive(w, Feed(5, "case", 12), at)  # owner left
    assert not feed_alive(w, Feed(6, "coordinator", 99), at)
    assert feed_alive(w, Feed(7, "contact", 10, contact=4), at)
    w2 = replace(w, people=(MOM, DAD, KID, replace(TEACHER, active=False)))
    assert not feed_alive(w2, Feed(7, "contact", 10, contact=4), at)
    assert not feed_alive(replace(w, coordinators=frozenset({12})), Feed(7, "contact", 10, contact=4), at)


def test_sector_changes() -> None:
    assert not sector_change_allowed("school_contact", "family")
    assert not sector_change_allowed("gp", "child_welfare")
    assert not sector_change_allowed("nav_adviser", "family")
    assert not sector_change_allowed("family_therapist", "family")
    assert sector_change_allowed("public_health_nurse", "school")
    assert sector_change_allowed("other", "family")
    assert sector_change_allowed("other", "child_welfare")
    assert sector_change_allowed("parent", "child_welfare")
    assert sector_change_allowed("caseworker", "family")
    assert not sector_change_allowed("other", "mars")


def test_level_of() -> None:
    assert L.of("purpose") == L.PURPOSE and L.of("NONE") == L.NONE
