"""Outbound calling rules: who may be dialed now, why not, and from when.

Every instant is a plain float handed in; nothing here reads the wall clock or sleeps.
Hand-worked examples first (each figure worked out from a calendar), then hypothesis
properties over random times, zones, hours and histories, checked against core/hours.py's
own ``decide`` and ``next_change`` as independent oracles.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from callcenter.core.consent import ConsentEntry, ConsentKind, ConsentSource
from callcenter.core.dial_rules import (
    DEFAULT_CALLING_HOURS,
    DEFAULT_RETRY_DELAYS,
    Allowed,
    Attempt,
    CalleePlace,
    CallingRules,
    CallingRulesError,
    ConsentWithdrawn,
    Decision,
    Disposition,
    DispositionKind,
    DncList,
    FinalOutcome,
    Holiday,
    MaxAttemptsReached,
    NoConsent,
    NumberStatus,
    OnDoNotCallList,
    Outcome,
    OutsideHours,
    RetryNotDue,
    call_back_time,
    may_dial,
    next_allowed_time,
    parse_calling_hours,
)
from callcenter.core.hours import (
    SEARCH_DAYS,
    HolidayRegion,
    OpeningHours,
    Schedule,
    decide,
    next_change,
)

SAO_PAULO = "America/Sao_Paulo"
NEW_YORK = "America/New_York"
CHICAGO = "America/Chicago"
MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0
CALLER_ID = "+551130000000"

# Mon-Fri 09:00-20:00, Sat 10:00-16:00, Sunday not called.
WEEK = parse_calling_hours({"mon-fri": ["09:00-20:00"], "sat": ["10:00-16:00"]})
RULES = CallingRules(CALLER_ID, calling_hours=WEEK)

SP_MOBILE = NumberStatus((CalleePlace(SAO_PAULO, HolidayRegion("BR", "SP")),))  # +55 11 9....
RJ_MOBILE = NumberStatus((CalleePlace(SAO_PAULO, HolidayRegion("BR", "RJ")),))  # +55 21 9....
NY_NUMBER = NumberStatus((CalleePlace(NEW_YORK, HolidayRegion("US", "NY")),))


def local(text: str, zone: str) -> float:
    """A wall-clock time that happens once in ``zone``, as POSIX seconds."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def with_attempts(number: NumberStatus, *attempts: Attempt) -> NumberStatus:
    return NumberStatus(number.places, attempts, number.do_not_call, number.consent)


def retry(name: str = "call back") -> Disposition:
    return Disposition(name, DispositionKind.RETRY)


# --------------------------------------------------------------------------- calling hours


def test_a_sao_paulo_mobile_is_not_called_on_a_sao_paulo_state_holiday() -> None:
    # 2026-07-09 (a Thursday) is the Constitutionalist Revolution, a holiday of SP state only.
    at = local("2026-07-09T10:00", SAO_PAULO)
    decision = may_dial(RULES, SP_MOBILE, at)
    assert isinstance(decision, Holiday)
    assert decision.name == "Constitutionalist Revolution"
    assert decision.zone == SAO_PAULO
    # Friday 09:00 in São Paulo (UTC-3, no DST since 2019) is 12:00 UTC.
    assert decision.next_allowed_at == utc("2026-07-10T12:00")
    assert "public holiday" in decision.reason and "2026-07-10 12:00:00 UTC" in decision.reason
    assert may_dial(RULES, SP_MOBILE, utc("2026-07-10T12:00")) == Allowed(utc("2026-07-10T12:00"))
    # The same instant, a Rio de Janeiro mobile in the same time zone: an ordinary Thursday.
    assert may_dial(RULES, RJ_MOBILE, at).allowed


def test_a_holiday_is_told_apart_from_a_day_without_calling_hours() -> None:
    # 2026-12-25 is a Friday (Christmas); 2026-12-27 a Sunday, which this campaign never calls.
    assert isinstance(may_dial(RULES, SP_MOBILE, local("2026-12-25T12:00", SAO_PAULO)), Holiday)
    sunday = may_dial(RULES, SP_MOBILE, local("2026-12-27T12:00", SAO_PAULO))
    assert isinstance(sunday, OutsideHours)
    assert sunday.next_allowed_at == local("2026-12-28T09:00", SAO_PAULO)
    # At 21:00 on Christmas the campaign would be outside hours anyway: not a holiday refusal.
    assert isinstance(
        may_dial(RULES, SP_MOBILE, local("2026-12-25T21:00", SAO_PAULO)), OutsideHours
    )


def test_saturday_hours_and_the_night_before() -> None:
    # 2026-12-05 is a Saturday: 10:00-16:00.
    before = may_dial(RULES, SP_MOBILE, local("2026-12-05T09:59", SAO_PAULO))
    assert isinstance(before, OutsideHours)
    assert before.next_allowed_at == local("2026-12-05T10:00", SAO_PAULO)
    assert before.local_time.strftime("%a %H:%M") == "Sat 09:59"
    assert may_dial(RULES, SP_MOBILE, local("2026-12-05T10:00", SAO_PAULO)).allowed
    assert may_dial(RULES, SP_MOBILE, local("2026-12-05T15:59:59", SAO_PAULO)).allowed
    closing = may_dial(RULES, SP_MOBILE, local("2026-12-05T16:00", SAO_PAULO))
    assert closing.next_allowed_at == local("2026-12-07T09:00", SAO_PAULO)  # Monday
    # Friday night, across midnight into Saturday.
    friday_night = may_dial(RULES, SP_MOBILE, local("2026-12-04T23:30", SAO_PAULO))
    assert friday_night.next_allowed_at == local("2026-12-05T10:00", SAO_PAULO)


def test_a_us_number_across_the_spring_dst_change() -> None:
    # New York springs forward on Sunday 2026-03-08, 02:00 EST -> 03:00 EDT.
    every_day = CallingRules(CALLER_ID)  # the default, 08:00-21:00 every day
    saturday_night = may_dial(every_day, NY_NUMBER, local("2026-03-07T21:30", NEW_YORK))
    assert isinstance(saturday_night, OutsideHours)
    # Sunday 08:00 is EDT (UTC-4): 12:00 UTC, where Saturday's 08:00 EST was 13:00 UTC.
    assert saturday_night.next_allowed_at == utc("2026-03-08T12:00")
    assert may_dial(every_day, NY_NUMBER, utc("2026-03-07T13:00")).allowed
    assert not may_dial(every_day, NY_NUMBER, utc("2026-03-08T11:59:59")).allowed
    assert may_dial(every_day, NY_NUMBER, utc("2026-03-08T12:00")).allowed
    # The Saturday hours of WEEK end on Sunday-less weeks: Monday 09:00 EDT = 13:00 UTC.
    assert may_dial(RULES, NY_NUMBER, local("2026-03-07T21:30", NEW_YORK)).next_allowed_at == (
        utc("2026-03-09T13:00")
    )


def test_a_us_number_across_the_autumn_dst_change() -> None:
    # New York falls back on Sunday 2026-11-01, 02:00 EDT -> 01:00 EST; 21:00 is EST (UTC-5).
    every_day = CallingRules(CALLER_ID)
    assert may_dial(every_day, NY_NUMBER, utc("2026-11-02T01:59:59")).allowed  # 20:59:59 EST
    closed = may_dial(every_day, NY_NUMBER, utc("2026-11-02T02:00"))  # 21:00 EST
    assert closed.next_allowed_at == utc("2026-11-02T13:00")  # Monday 08:00 EST


def test_a_number_whose_region_spans_two_zones_is_called_only_when_both_are_inside() -> None:
    # An area code across Eastern and Central time: 09:00-20:00 must hold in both.
    both = NumberStatus((CalleePlace(NEW_YORK), CalleePlace(CHICAGO)))
    morning = may_dial(RULES, both, local("2026-12-07T09:30", NEW_YORK))  # 08:30 in Chicago
    assert isinstance(morning, OutsideHours)
    assert morning.zone == CHICAGO
    assert morning.next_allowed_at == local("2026-12-07T10:00", NEW_YORK)
    assert may_dial(RULES, both, local("2026-12-07T19:59", NEW_YORK)).allowed
    evening = may_dial(RULES, both, local("2026-12-07T20:00", NEW_YORK))  # 19:00 in Chicago
    assert isinstance(evening, OutsideHours) and evening.zone == NEW_YORK
    assert evening.next_allowed_at == local("2026-12-08T10:00", NEW_YORK)


def test_zones_whose_hours_never_meet_have_no_next_time() -> None:
    # 09:00-10:00 in Tokyo is 19:00-20:00 or 18:00-19:00 in São Paulo (never both inside).
    short = CallingRules(CALLER_ID, calling_hours=parse_calling_hours({"mon-sun": ["09:00-10:00"]}))
    apart = NumberStatus((CalleePlace("Asia/Tokyo"), CalleePlace(SAO_PAULO)))
    decision = may_dial(short, apart, utc("2026-12-07T12:00"))
    assert isinstance(decision, OutsideHours)
    assert decision.next_allowed_at is None
    assert "no allowed time ahead" in decision.reason


# --------------------------------------------------------------------------- attempts


MONDAY_NOON = local("2026-12-07T12:00", SAO_PAULO)


@pytest.mark.parametrize("outcome", [o for o in Outcome if o is not Outcome.HUMAN])
def test_each_outcome_waits_its_retry_delay(outcome: Outcome) -> None:
    number = with_attempts(SP_MOBILE, Attempt(MONDAY_NOON, outcome))
    delay = DEFAULT_RETRY_DELAYS[outcome]
    early = may_dial(RULES, number, MONDAY_NOON + delay - 1)
    assert isinstance(early, RetryNotDue)
    assert early.due_at == early.next_allowed_at == MONDAY_NOON + delay
    assert may_dial(RULES, number, MONDAY_NOON + delay).allowed


def test_a_retry_due_after_hours_waits_for_the_next_opening() -> None:
    # Busy at 19:50 Monday: due 20:05, after the 20:00 close; next Tuesday 09:00.
    at = local("2026-12-07T19:50", SAO_PAULO)
    number = with_attempts(SP_MOBILE, Attempt(at, Outcome.BUSY))
    decision = may_dial(RULES, number, at + MINUTE)
    assert isinstance(decision, RetryNotDue)
    assert decision.due_at == at + 15 * MINUTE
    assert decision.next_allowed_at == local("2026-12-08T09:00", SAO_PAULO)
    assert isinstance(may_dial(RULES, number, at + 15 * MINUTE), OutsideHours)


def test_retry_delays_are_per_campaign() -> None:
    rules = CallingRules(CALLER_ID, calling_hours=WEEK, retry_delays={Outcome.BUSY: 2 * MINUTE})
    assert rules.retry_delay(Outcome.BUSY) == 2 * MINUTE
    assert rules.retry_delay(Outcome.MACHINE) == DEFAULT_RETRY_DELAYS[Outcome.MACHINE]
    number = with_attempts(SP_MOBILE, Attempt(MONDAY_NOON, Outcome.BUSY))
    assert may_dial(rules, number, MONDAY_NOON + 2 * MINUTE).allowed


def test_the_last_attempt_decides_the_delay_whatever_the_order_given() -> None:
    number = with_attempts(
        SP_MOBILE,
        Attempt(MONDAY_NOON, Outcome.BUSY),
        Attempt(MONDAY_NOON - 2 * HOUR, Outcome.MACHINE),
    )
    assert may_dial(RULES, number, MONDAY_NOON + 15 * MINUTE).allowed


def test_a_call_back_time_replaces_the_delay_and_still_waits_for_calling_hours() -> None:
    # The person asked to be called back Tuesday at 08:00 their time: before the 09:00 start.
    wanted = call_back_time(datetime(2026, 12, 8, 8, 0), SAO_PAULO)
    human = Attempt(MONDAY_NOON, Outcome.HUMAN, retry(), call_back_at=wanted)
    number = with_attempts(SP_MOBILE, human)
    decision = may_dial(RULES, number, MONDAY_NOON + 5 * HOUR)  # past the 4 h HUMAN delay
    assert isinstance(decision, RetryNotDue)
    assert decision.due_at == wanted
    assert decision.next_allowed_at == local("2026-12-08T09:00", SAO_PAULO)
    # Sooner than the delay: "call me back in 10 minutes" is honoured.
    soon = Attempt(MONDAY_NOON, Outcome.HUMAN, retry(), call_back_at=MONDAY_NOON + 10 * MINUTE)
    assert may_dial(RULES, with_attempts(SP_MOBILE, soon), MONDAY_NOON + 10 * MINUTE).allowed
    # Without a time, a retry disposition waits the HUMAN delay.
    plain = with_attempts(SP_MOBILE, Attempt(MONDAY_NOON, Outcome.HUMAN, retry()))
    assert may_dial(RULES, plain, MONDAY_NOON + 4 * HOUR - 1).next_allowed_at == (
        MONDAY_NOON + 4 * HOUR
    )


def test_a_call_back_time_in_the_skipped_hour_means_the_jump() -> None:
    # 02:30 on 2026-03-08 does not exist in New York: the clocks go to 03:00 EDT (07:00 UTC).
    assert call_back_time(datetime(2026, 3, 8, 2, 30), NEW_YORK) == utc("2026-03-08T07:00")
    # 01:30 on 2026-11-01 happens twice: the first, EDT (05:30 UTC).
    assert call_back_time(datetime(2026, 11, 1, 1, 30), NEW_YORK) == utc("2026-11-01T05:30")
    with pytest.raises(ValueError, match="without a time zone"):
        call_back_time(datetime(2026, 3, 8, 2, 30, tzinfo=UTC), NEW_YORK)
    with pytest.raises(ValueError, match="unknown time zone"):
        call_back_time(datetime(2026, 3, 8, 2, 30), "America/Nowhere")


def test_max_attempts_stops_the_number() -> None:
    rules = CallingRules(CALLER_ID, calling_hours=WEEK, max_attempts=2)
    one = with_attempts(SP_MOBILE, Attempt(MONDAY_NOON - DAY, Outcome.NO_ANSWER))
    assert may_dial(rules, one, MONDAY_NOON).allowed
    two = with_attempts(one, *one.attempts, Attempt(MONDAY_NOON - HOUR * 2, Outcome.NO_ANSWER))
    decision = may_dial(rules, two, MONDAY_NOON)
    assert decision == MaxAttemptsReached(2, 2)
    assert decision.next_allowed_at is None
    assert decision.reason == "called 2 times already (at most 2)"


@pytest.mark.parametrize(
    "attempt",
    [
        Attempt(MONDAY_NOON - DAY, Outcome.HUMAN, Disposition("sale", DispositionKind.FINAL)),
        Attempt(
            MONDAY_NOON - DAY, Outcome.HUMAN, Disposition("wrong number", DispositionKind.FINAL)
        ),
        Attempt(MONDAY_NOON - DAY, Outcome.HUMAN, Disposition("dnc", DispositionKind.DO_NOT_CALL)),
        Attempt(MONDAY_NOON - DAY, Outcome.HUMAN),  # the agent has not set it yet
        # An agent may close a number the dialer only reached as a machine ("wrong number").
        Attempt(MONDAY_NOON - DAY, Outcome.MACHINE, Disposition("wrong", DispositionKind.FINAL)),
    ],
)
def test_a_final_outcome_is_never_retried(attempt: Attempt) -> None:
    later = with_attempts(SP_MOBILE, attempt, Attempt(MONDAY_NOON - 2 * DAY, Outcome.BUSY))
    decision = may_dial(RULES, later, MONDAY_NOON)
    assert isinstance(decision, FinalOutcome)
    assert decision.next_allowed_at is None
    assert decision.reason.startswith("final outcome: ")


# --------------------------------------------------------------------------- DNC and consent


def test_do_not_call_refuses_before_anything_else() -> None:
    listed = NumberStatus(SP_MOBILE.places, do_not_call=frozenset({DncList.CAMPAIGN}))
    decision = may_dial(RULES, listed, MONDAY_NOON)
    assert decision == OnDoNotCallList(frozenset({DncList.CAMPAIGN}))
    assert decision.reason == "on the campaign do-not-call list"
    both = NumberStatus(SP_MOBILE.places, do_not_call=frozenset(DncList))
    assert may_dial(RULES, both, MONDAY_NOON).reason == (
        "on the campaign and the global do-not-call list"
    )


def grant_at(at: float, scope: str) -> ConsentEntry:
    return ConsentEntry("+5511999990000", scope, ConsentKind.GRANTED, at, ConsentSource.API,
                        "test")


def revocation_at(at: float, scope: str | None = None) -> ConsentEntry:
    return ConsentEntry("+5511999990000", scope, ConsentKind.REVOKED, at, ConsentSource.IVR,
                        "test")


CONSENTING = CallingRules(CALLER_ID, calling_hours=WEEK, consent_scope="reminders")


def consent(*records: ConsentEntry) -> NumberStatus:
    return NumberStatus(SP_MOBILE.places, consent=records)


def test_consent_is_needed_only_when_the_campaign_says_so() -> None:
    assert may_dial(RULES, SP_MOBILE, MONDAY_NOON).allowed
    assert may_dial(CONSENTING, SP_MOBILE, MONDAY_NOON) == NoConsent("reminders")
    granted = consent(grant_at(MONDAY_NOON - DAY, "reminders"))
    assert may_dial(CONSENTING, granted, MONDAY_NOON).allowed
    other_scope = consent(grant_at(MONDAY_NOON - DAY, "marketing"))
    assert may_dial(CONSENTING, other_scope, MONDAY_NOON) == NoConsent("reminders")
    # A grant dated after now (a skewed clock) does not count yet.
    future = consent(grant_at(MONDAY_NOON + 1, "reminders"))
    assert may_dial(CONSENTING, future, MONDAY_NOON) == NoConsent("reminders")


def test_a_revocation_wins_over_every_earlier_grant() -> None:
    granted = grant_at(MONDAY_NOON - DAY, "reminders")
    revoked = revocation_at(MONDAY_NOON - HOUR)  # "press 9 to stop these calls": every scope
    decision = may_dial(CONSENTING, consent(granted, revoked), MONDAY_NOON)
    assert decision == ConsentWithdrawn("reminders", MONDAY_NOON - HOUR)
    assert "revoked at" in decision.reason
    # Given in either order; at the same second the revocation wins.
    assert not may_dial(CONSENTING, consent(revoked, granted), MONDAY_NOON).allowed
    same_second = consent(grant_at(MONDAY_NOON - HOUR, "reminders"), revoked)
    assert not may_dial(CONSENTING, same_second, MONDAY_NOON).allowed
    # A revocation stamped a little after now (clock skew) still counts.
    skewed = consent(granted, revocation_at(MONDAY_NOON + 5))
    assert not may_dial(CONSENTING, skewed, MONDAY_NOON).allowed
    # Revoking another scope leaves this one; a new grant after a revocation counts.
    assert may_dial(
        CONSENTING, consent(granted, revocation_at(MONDAY_NOON - HOUR, "marketing")), MONDAY_NOON
    ).allowed
    regranted = consent(granted, revoked, grant_at(MONDAY_NOON - MINUTE, "reminders"))
    assert may_dial(CONSENTING, regranted, MONDAY_NOON).allowed


def test_a_revocation_without_a_grant_says_revoked() -> None:
    decision = may_dial(CONSENTING, consent(revocation_at(MONDAY_NOON - DAY)), MONDAY_NOON)
    assert isinstance(decision, ConsentWithdrawn)


# --------------------------------------------------------------------------- settings


def test_defaults_follow_the_strictest_common_rules() -> None:
    rules = CallingRules(CALLER_ID)
    assert rules.ring_time >= 15
    assert rules.calling_hours == DEFAULT_CALLING_HOURS
    assert all(day == (OpeningHours(8 * 60, 21 * 60),) for day in rules.calling_hours)
    assert rules.consent_scope is None


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"ring_time": 14.9}, "ring_time", "at least 15 s (4 rings)"),
        ({"ring_time": float("nan")}, "ring_time", "expected seconds"),
        ({"caller_id": ""}, "caller_id", "required"),
        ({"caller_id": "   "}, "caller_id", "required"),
        ({"caller_id": "0800 123"}, "caller_id", "is not an E.164 number"),
        ({"max_attempts": 0}, "max_attempts", "1 or more"),
        ({"max_attempts": 2.5}, "max_attempts", "whole number"),
        ({"retry_delays": {Outcome.BUSY: -1}}, "retry_delays.busy", "0 or more"),
        ({"retry_delays": {"busy": 60}}, "retry_delays.busy", "unknown outcome"),
        ({"calling_hours": ((),) * 7}, "calling_hours", "no calling hours"),
        ({"calling_hours": ((),) * 6}, "calling_hours", "need 7 days"),
        ({"consent_scope": ""}, "consent_scope", "must name the scope"),
    ],
)
def test_invalid_settings_are_refused_naming_the_field(
    changes: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(CallingRulesError) as raised:
        CallingRules(**{"caller_id": CALLER_ID, **changes})
    [problem] = raised.value.problems
    assert problem.field == field
    assert words in problem.message
    assert str(raised.value).startswith(f"{field}: ")


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(CallingRulesError) as raised:
        CallingRules("", ring_time=10, max_attempts=0)
    assert [p.field for p in raised.value.problems] == ["caller_id", "ring_time", "max_attempts"]


def test_calling_hours_are_read_like_business_hours() -> None:
    assert WEEK[5] == (OpeningHours(10 * 60, 16 * 60),)
    assert WEEK[6] == ()
    with pytest.raises(CallingRulesError) as raised:
        parse_calling_hours({"sat": ["10:00-26:00"], "sundays": []})
    assert [p.field for p in raised.value.problems] == [
        "calling_hours.sat[0]",
        "calling_hours.sundays",
    ]
    with pytest.raises(CallingRulesError, match=r"^calling_hours: expected weekdays"):
        parse_calling_hours(["09:00-20:00"])


def test_a_number_needs_a_known_zone() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        CalleePlace("America/Sao_Paolo")
    with pytest.raises(ValueError, match="at least one time zone"):
        NumberStatus(())
    with pytest.raises(ValueError, match="at: expected POSIX seconds"):
        may_dial(RULES, SP_MOBILE, float("inf"))


# --------------------------------------------------------------------------- properties

# Zones with DST north and south, half-hour and 45-minute offsets, a 30-minute DST shift
# (Lord Howe), and one (Santiago) whose clocks change at midnight; each with the holidays of
# a region there.
PLACES = [
    CalleePlace(SAO_PAULO, HolidayRegion("BR", "SP")),
    CalleePlace(NEW_YORK, HolidayRegion("US", "NY")),
    CalleePlace(CHICAGO, HolidayRegion("US", "IL")),
    CalleePlace("America/Denver"),
    CalleePlace("America/Los_Angeles", HolidayRegion("US", "CA")),
    CalleePlace("Europe/London", HolidayRegion("GB", "ENG")),
    CalleePlace("Australia/Lord_Howe"),
    CalleePlace("Asia/Kolkata", HolidayRegion("IN")),
    CalleePlace("Asia/Kathmandu"),
    CalleePlace("America/Santiago", HolidayRegion("CL")),
    CalleePlace("Europe/Berlin", HolidayRegion("DE", "BY")),
]
# Instants near the DST changes of 2026 in those zones, where mistakes hide.
DST_CHANGES = [
    utc("2026-03-08T07:00"),  # US spring
    utc("2026-11-01T06:00"),  # US autumn
    utc("2026-03-29T01:00"),  # EU spring
    utc("2026-10-25T01:00"),  # EU autumn
    utc("2026-04-05T03:00"),  # Santiago autumn (midnight)
    utc("2026-09-06T04:00"),  # Santiago spring (midnight)
    utc("2026-04-04T15:00"),  # Lord Howe autumn (30 min)
    utc("2026-10-03T15:30"),  # Lord Howe spring
]
# Public holidays of those regions (noon UTC), where a calling day is cancelled.
HOLIDAYS = [
    utc("2026-07-09T12:00"),  # BR-SP: Constitutionalist Revolution (Thursday)
    utc("2026-11-26T12:00"),  # US: Thanksgiving (Thursday)
    utc("2026-12-25T12:00"),  # everywhere here but IN and NP: Christmas (Friday)
    utc("2026-08-15T12:00"),  # IN: Independence Day (Saturday)
    utc("2026-09-18T12:00"),  # CL: Independence (Friday)
    utc("2026-08-31T12:00"),  # GB-ENG: Summer bank holiday (Monday)
    utc("2026-03-31T12:00"),  # US-CA: Cesar Chavez Day (Tuesday)
]
START = utc("2026-01-01T00:00")
END = utc("2027-12-31T00:00")

instants = st.one_of(
    st.floats(START, END).map(float.__floor__).map(float),
    st.builds(
        lambda change, offset: change + offset,
        st.sampled_from(DST_CHANGES),
        st.integers(-2 * 86400, 2 * 86400).map(float),
    ),
    st.builds(
        lambda holiday, offset: holiday + offset,
        st.sampled_from(HOLIDAYS),
        st.integers(-12 * 3600, 12 * 3600).map(float),
    ),
)


@st.composite
def calling_hours(draw: st.DrawFn) -> tuple[tuple[OpeningHours, ...], ...]:
    """One or two daytime intervals per day, quarter-hour aligned; some days none."""
    week: list[tuple[OpeningHours, ...]] = []
    for _ in range(7):
        count = draw(st.sampled_from([0, 1, 1, 1, 1, 2]))
        if count == 1 and draw(st.booleans()):  # a working day, like the real ones
            week.append(
                (OpeningHours(draw(st.integers(0, 40)) * 15, draw(st.integers(72, 96)) * 15),)
            )
            continue
        marks = sorted(draw(st.sets(st.integers(0, 96), min_size=2 * count, max_size=2 * count)))
        week.append(
            tuple(OpeningHours(marks[i] * 15, marks[i + 1] * 15) for i in range(0, len(marks), 2))
        )
    assume(any(week))
    return tuple(week)


@st.composite
def rules_strategy(draw: st.DrawFn) -> CallingRules:
    delays = {
        outcome: draw(st.sampled_from([0.0, 5 * MINUTE, HOUR, 9 * HOUR, 2 * DAY]))
        for outcome in draw(st.sets(st.sampled_from(list(Outcome))))
    }
    return CallingRules(
        CALLER_ID,
        calling_hours=draw(calling_hours()),
        max_attempts=draw(st.integers(1, 6)),
        retry_delays=delays,
        consent_scope=draw(st.sampled_from([None, None, "reminders"])),
    )


# Weighted towards histories that still allow calls, so that the hours and the retry
# delays get exercised, not only the refusals that come first.
dispositions = st.sampled_from(
    [None] * 6
    + [Disposition("call back", DispositionKind.RETRY)] * 3
    + [Disposition("sale", DispositionKind.FINAL), Disposition("dnc", DispositionKind.DO_NOT_CALL)]
)
outcomes = st.sampled_from([o for o in Outcome if o is not Outcome.HUMAN] * 2 + [Outcome.HUMAN])


@st.composite
def numbers(draw: st.DrawFn, at: float) -> NumberStatus:
    count = draw(st.sampled_from([1, 1, 1, 2, 3]))
    places = tuple(
        draw(st.lists(st.sampled_from(PLACES), min_size=count, max_size=count, unique=True))
    )
    attempts = tuple(
        Attempt(
            at - draw(st.floats(0, 3 * DAY)),
            draw(outcomes),
            draw(dispositions),
            draw(st.one_of(st.none(), st.none(), st.floats(at - DAY, at + 3 * DAY))),
        )
        for _ in range(draw(st.integers(0, 3)))
    )
    do_not_call = draw(st.sampled_from([frozenset()] * 7 + [frozenset(DncList)]))
    records: list[ConsentEntry] = []
    if draw(st.integers(0, 3)):  # usually a grant for the campaign's scope
        records.append(grant_at(at - draw(st.floats(0, 30 * DAY)), "reminders"))
    for _ in range(draw(st.integers(0, 2))):
        when = at + draw(st.floats(-3 * DAY, DAY))
        if draw(st.booleans()):
            records.append(grant_at(when, draw(st.sampled_from(["reminders", "marketing"]))))
        else:
            records.append(revocation_at(when, draw(st.sampled_from([None, "reminders"]))))
    return NumberStatus(places, attempts, do_not_call, tuple(draw(st.permutations(records))))


Scenario = tuple[CallingRules, NumberStatus, float]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """Campaign rules, one number's state, and the instant the dialer asks at."""
    at = draw(instants)
    return draw(rules_strategy()), draw(numbers(at)), at


def hours_schedule(rules: CallingRules, place: CalleePlace) -> Schedule:
    return Schedule(timezone=place.zone, weekly=rules.calling_hours, holidays=place.holidays)


def must_not_be_allowed(rules: CallingRules, number: NumberStatus, at: float) -> str | None:
    """Why the rules forbid dialing at ``at``, worked out without dial_rules' own code."""
    if number.do_not_call:
        return "do not call"
    if rules.consent_scope is not None:
        grants = [
            r.at
            for r in number.consent
            if r.kind is ConsentKind.GRANTED and r.campaign == rules.consent_scope
            and r.at <= at
        ]
        revocations = [
            r.at
            for r in number.consent
            if r.kind is ConsentKind.REVOKED and r.campaign in (None, rules.consent_scope)
        ]
        if not grants or any(revoked >= max(grants) for revoked in revocations):
            return "no consent or revoked"
    if len(number.attempts) >= rules.max_attempts:
        return "max attempts"
    for attempt in number.attempts:
        kind = attempt.disposition.kind if attempt.disposition else None
        if kind in (DispositionKind.FINAL, DispositionKind.DO_NOT_CALL):
            return "final"
        if attempt.outcome is Outcome.HUMAN and kind is None:
            return "final"
    for place in number.places:
        if not decide(hours_schedule(rules, place), at).open:
            return f"outside hours in {place.zone}"
        if place.holidays is not None:
            today = datetime.fromtimestamp(at, ZoneInfo(place.zone)).date()
            if place.holidays.name_on(today):
                return f"holiday in {place.zone}"
    return None


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_never_allowed_against_the_rules(scenario: Scenario) -> None:
    rules, number, at = scenario
    decision = may_dial(rules, number, at)
    if decision.allowed:
        assert must_not_be_allowed(rules, number, at) is None
        last = max(number.attempts, key=lambda a: a.ended_at, default=None)
        if last is not None:
            due = last.call_back_at or last.ended_at + rules.retry_delay(last.outcome)
            assert at >= due
    if number.do_not_call:
        assert isinstance(decision, OnDoNotCallList)


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.lists(st.floats(0, 1, exclude_max=True), max_size=5))
def test_the_next_allowed_time_is_allowed_and_nothing_before_it_is(
    scenario: Scenario, fractions: list[float]
) -> None:
    rules, number, at = scenario
    decision = may_dial(rules, number, at)
    following = decision.next_allowed_at
    if decision.allowed or following is None:
        assert not decision.allowed or following is None
        return
    assert isinstance(decision, RetryNotDue | Holiday | OutsideHours)
    assert following > at
    assert may_dial(rules, number, following) == Allowed(following)
    assert next_allowed_time(rules, number, at) == following
    # Nothing earlier: just before it, and at random instants in between.
    between = [following - 1, *(at + part * (following - at) for part in fractions)]
    for instant in between:
        if at <= instant < following:
            earlier: Decision = may_dial(rules, number, instant)
            assert not earlier.allowed
            assert earlier.next_allowed_at == following


@settings(max_examples=200, deadline=None)
@given(rules_strategy(), instants, st.sampled_from(PLACES))
def test_one_zone_agrees_with_the_business_hours_evaluation(
    rules: CallingRules, at: float, place: CalleePlace
) -> None:
    """With one place and no history, dial_rules and core/hours.py say the same."""
    number = NumberStatus((place,), consent=(grant_at(at - DAY, "reminders"),))
    schedule = hours_schedule(rules, place)
    decision = may_dial(rules, number, at)
    assert decision.allowed == decide(schedule, at).open
    if not decision.allowed:
        opens = next_change(schedule, at)
        if opens is not None:  # found within hours.py's shorter look-ahead
            assert decision.next_allowed_at == opens
        elif decision.next_allowed_at is not None:
            assert decision.next_allowed_at > at + SEARCH_DAYS * DAY


@settings(max_examples=100, deadline=None)
@given(scenarios(), st.lists(st.floats(0, 30 * DAY), min_size=1, max_size=3))
def test_beyond_max_attempts_a_final_outcome_or_dnc_is_never_allowed_later(
    scenario: Scenario, waits: list[float]
) -> None:
    """(A revocation is not in the list: a new grant after it may allow the number again.)"""
    rules, number, at = scenario
    refused = may_dial(rules, number, at)
    if isinstance(refused, MaxAttemptsReached | FinalOutcome | OnDoNotCallList):
        for later in (at + wait for wait in waits):
            assert not may_dial(rules, number, later).allowed


@settings(max_examples=200, deadline=None)
@given(rules_strategy(), st.sampled_from(HOLIDAYS), st.integers(-DAY // 2, DAY // 2))
def test_never_allowed_on_a_holiday_of_any_place(
    rules: CallingRules, holiday: float, offset: int
) -> None:
    at = holiday + offset
    holiday_places = [
        place
        for place in PLACES
        if place.holidays is not None
        and place.holidays.name_on(datetime.fromtimestamp(at, ZoneInfo(place.zone)).date())
    ]
    assume(holiday_places)
    number = NumberStatus(
        (PLACES[0], holiday_places[-1]), consent=(grant_at(at - DAY, "reminders"),)
    )
    decision = may_dial(rules, number, at)
    assert not decision.allowed
    assert isinstance(decision, Holiday | OutsideHours)
