"""Time conditions: open or closed at an instant, why, and when that next changes.

Every instant is a plain float handed in; nothing here reads the wall clock or sleeps.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.core.hours import (
    SEARCH_DAYS,
    DateRange,
    HolidayRegion,
    OpeningHours,
    Override,
    Schedule,
    ScheduleError,
    decide,
    next_change,
    parse_schedule,
)

SAO_PAULO = "America/Sao_Paulo"
NEW_YORK = "America/New_York"
LONDON = "Europe/London"
HOUR = 3600.0
DAY = 86400.0

# 2026-12-21 is a Monday; 2026-12-25 a Friday (Christmas); 2026-12-31 a Thursday.
OFFICE: dict[str, Any] = {
    "timezone": SAO_PAULO,
    "weekly": {"mon-fri": ["08:00-18:00"], "sat": ["09:00-13:00"]},
}


def local(text: str, zone: str = SAO_PAULO) -> float:
    """A wall-clock time that happens once in ``zone``, as POSIX seconds."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def schedule(**changes: Any) -> Schedule:
    return parse_schedule({**OFFICE, **changes})


def is_open(plan: Schedule, at: float, override: Override = Override.NONE) -> bool:
    return decide(plan, at, override).open


# --------------------------------------------------------------------------- weekly hours


def test_a_weekday_is_open_during_its_hours_and_says_which_hours() -> None:
    decision = decide(schedule(), local("2026-12-21T10:00"))
    assert decision.open
    assert decision.reason == "weekly hours mon 08:00-18:00"
    assert decision.local_time == datetime(2026, 12, 21, 10, 0, tzinfo=ZoneInfo(SAO_PAULO))
    assert decision.local_time.utcoffset() == timedelta(hours=-3)


def test_outside_the_hours_of_a_weekday_it_is_closed() -> None:
    decision = decide(schedule(), local("2026-12-21T19:30"))
    assert not decision.open
    assert decision.reason == "outside weekly hours mon (08:00-18:00)"
    assert not is_open(schedule(), local("2026-12-21T07:59"))


def test_saturday_has_its_own_hours_and_sunday_none() -> None:
    plan = schedule()
    assert decide(plan, local("2026-12-26T09:30")).reason == "weekly hours sat 09:00-13:00"
    assert not is_open(plan, local("2026-12-26T14:00"))
    sunday = decide(plan, local("2026-12-27T10:00"))
    assert not sunday.open
    assert sunday.reason == "weekly hours sun: closed"


def test_exactly_at_opening_is_open_and_exactly_at_closing_is_closed() -> None:
    plan = schedule()
    opening = local("2026-12-21T08:00")
    closing = local("2026-12-21T18:00")
    assert not is_open(plan, opening - 0.001)
    assert is_open(plan, opening)
    assert is_open(plan, closing - 0.001)
    assert not is_open(plan, closing)


def test_several_intervals_a_day_leave_the_lunch_break_closed() -> None:
    plan = schedule(weekly={"mon-fri": ["08:00-12:00", "13:00-18:00"]})
    assert is_open(plan, local("2026-12-21T11:59"))
    lunch = decide(plan, local("2026-12-21T12:30"))
    assert not lunch.open
    assert lunch.reason == "outside weekly hours mon (08:00-12:00, 13:00-18:00)"
    assert decide(plan, local("2026-12-21T13:00")).reason == "weekly hours mon 13:00-18:00"


def test_weekday_ranges_wrap_past_sunday_and_lists_combine() -> None:
    plan = schedule(weekly={"sun-thu": ["08:00-17:00"], "Fri, sat": ["10:00-12:00"]})
    days = {day: is_open(plan, local(f"2026-12-{day}T09:00")) for day in range(20, 27)}
    # 20 is a Sunday, 25 a Friday, 26 a Saturday (no holidays configured here).
    assert days == {20: True, 21: True, 22: True, 23: True, 24: True, 25: False, 26: False}
    assert is_open(plan, local("2026-12-26T11:00"))


def test_an_interval_may_end_at_midnight() -> None:
    plan = schedule(weekly={"fri": ["18:00-24:00"], "sat": ["08:00-00:00"]})
    assert is_open(plan, local("2026-12-25T23:59:59"))
    assert not is_open(plan, local("2026-12-26T00:00"))
    assert is_open(plan, local("2026-12-26T23:59:59"))
    assert not is_open(plan, local("2026-12-27T00:00"))


# --------------------------------------------------------------------------- overnight


NIGHT_DESK: dict[str, Any] = {"timezone": SAO_PAULO, "weekly": {"mon-fri": ["22:00-06:00"]}}


def test_an_interval_crossing_midnight_runs_until_the_next_morning() -> None:
    plan = parse_schedule(NIGHT_DESK)
    tuesday_night = decide(plan, local("2026-12-22T03:00"))
    assert tuesday_night.open
    assert tuesday_night.reason == "weekly hours mon 22:00-06:00"
    assert is_open(plan, local("2026-12-21T22:00"))
    assert not is_open(plan, local("2026-12-21T21:59"))
    assert not is_open(plan, local("2026-12-22T06:00"))
    # Friday's night runs into Saturday; Sunday has no night, so Monday morning is closed.
    assert is_open(plan, local("2026-12-26T05:59"))
    assert not is_open(plan, local("2026-12-28T03:00"))


def test_a_closed_day_cancels_the_night_that_opens_on_it_but_not_last_nights_tail() -> None:
    plan = parse_schedule({**NIGHT_DESK, "closed": ["2026-12-22"]})  # a Tuesday
    assert is_open(plan, local("2026-12-22T05:00"))  # Monday's night
    assert not is_open(plan, local("2026-12-22T23:00"))
    assert decide(plan, local("2026-12-23T03:00")).reason == "closed date 2026-12-22"
    assert is_open(plan, local("2026-12-23T22:00"))


# --------------------------------------------------------------------------- holidays


def test_a_public_holiday_closes_a_normally_open_day() -> None:
    plan = schedule(holidays={"country": "BR"})
    christmas = decide(plan, local("2026-12-25T10:00"))  # a Friday
    assert not christmas.open
    assert christmas.reason == "holiday: Christmas Day"
    assert is_open(plan, local("2026-12-24T10:00"))


def test_a_subdivision_adds_its_own_holidays() -> None:
    # 9 July (a Thursday in 2026) is a holiday in the state of Sao Paulo only.
    national = schedule(holidays={"country": "BR"})
    sao_paulo = schedule(holidays={"country": "BR", "subdivision": "SP"})
    assert is_open(national, local("2026-07-09T10:00"))
    decision = decide(sao_paulo, local("2026-07-09T10:00"))
    assert not decision.open
    assert decision.reason.startswith("holiday: ")


def test_holidays_are_looked_up_for_the_year_of_the_instant() -> None:
    plan = schedule(holidays={"country": "US"})
    # Independence Day observed: 2026-07-03 (Friday) and 2027-07-05 (Monday).
    assert not is_open(plan, local("2026-07-03T10:00"))
    assert not is_open(plan, local("2027-07-05T10:00"))
    assert is_open(plan, local("2027-07-06T10:00"))


# --------------------------------------------------------------------------- closed dates


def test_closed_dates_and_ranges_close_whole_days() -> None:
    plan = schedule(closed=["2026-12-22..2026-12-23", "2026-12-28"])
    assert is_open(plan, local("2026-12-21T17:00"))
    in_range = decide(plan, local("2026-12-23T10:00"))
    assert not in_range.open
    assert in_range.reason == "closed date 2026-12-23 (closed 2026-12-22..2026-12-23)"
    assert is_open(plan, local("2026-12-24T10:00"))
    single = decide(plan, local("2026-12-28T10:00"))
    assert (single.open, single.reason) == (False, "closed date 2026-12-28")


def test_closed_dates_written_unquoted_in_yaml_are_read_as_dates() -> None:
    data = yaml.safe_load(
        """
        timezone: America/Sao_Paulo
        weekly: {mon-fri: ["08:00-18:00"]}
        closed: [2026-12-22, 2026-12-23..2026-12-24]
        special: {2026-12-26: ["10:00-12:00"]}
        """
    )
    assert isinstance(data["closed"][0], date)
    plan = parse_schedule(data)
    assert plan.closed == (
        DateRange(date(2026, 12, 22), date(2026, 12, 22)),
        DateRange(date(2026, 12, 23), date(2026, 12, 24)),
    )
    assert is_open(plan, local("2026-12-26T11:00"))


# --------------------------------------------------------------------------- special hours


def test_special_hours_beat_a_holiday() -> None:
    plan = schedule(holidays={"country": "BR"}, special={"2026-12-25": ["08:00-12:00"]})
    morning = decide(plan, local("2026-12-25T10:00"))
    assert morning.open
    assert morning.reason == "special hours 2026-12-25 08:00-12:00"
    afternoon = decide(plan, local("2026-12-25T15:00"))
    assert not afternoon.open
    assert afternoon.reason == "outside special hours 2026-12-25 (08:00-12:00)"


def test_special_hours_beat_weekly_hours_and_closed_ranges() -> None:
    plan = schedule(
        closed=["2026-12-24..2026-12-26"],
        special={"2026-12-24": ["08:00-12:00"], "2026-12-27": ["10:00-14:00"]},
    )
    assert is_open(plan, local("2026-12-24T11:00"))  # inside the closed range
    assert not is_open(plan, local("2026-12-24T15:00"))  # weekly would say open
    assert not is_open(plan, local("2026-12-25T11:00"))
    assert is_open(plan, local("2026-12-27T11:00"))  # a Sunday


# --------------------------------------------------------------------------- overrides


@pytest.mark.parametrize(
    ("override", "expected_open", "reason"),
    [
        (Override.FORCE_OPEN, True, "forced open by an admin"),
        (Override.FORCE_CLOSED, False, "forced closed by an admin"),
        (Override.ALWAYS_OPEN, True, "open 24x7 by an admin"),
    ],
)
def test_an_admin_override_wins_over_every_rule(
    override: Override, expected_open: bool, reason: str
) -> None:
    plan = schedule(holidays={"country": "BR"}, special={"2026-12-31": ["08:00-12:00"]})
    for when in ("2026-12-21T10:00", "2026-12-21T23:00", "2026-12-25T10:00", "2026-12-31T10:00"):
        decision = decide(plan, local(when), override)
        assert (decision.open, decision.reason) == (expected_open, reason), when
        assert next_change(plan, local(when), override) is None


def test_no_override_follows_the_schedule() -> None:
    plan = schedule()
    assert is_open(plan, local("2026-12-21T10:00"), Override.NONE)
    assert not is_open(plan, local("2026-12-21T20:00"), Override.NONE)


def test_the_override_in_the_schedule_applies_unless_the_admin_switch_says_otherwise() -> None:
    plan = schedule(override="force_closed")
    assert plan.override is Override.FORCE_CLOSED
    assert decide(plan, local("2026-12-21T10:00")).reason == "forced closed by an admin"
    assert is_open(plan, local("2026-12-21T10:00"), Override.FORCE_OPEN)
    assert next_change(plan, local("2026-12-21T10:00")) is None


# --------------------------------------------------------------------------- DST


def test_spring_forward_an_opening_time_that_never_happens_opens_at_the_jump() -> None:
    # New York, Sunday 2026-03-08: the clocks go from 02:00 EST to 03:00 EDT at 07:00 UTC.
    plan = parse_schedule({"timezone": NEW_YORK, "weekly": {"sun": ["02:30-05:00"]}})
    assert not is_open(plan, utc("2026-03-08T06:59:59"))
    jump = decide(plan, utc("2026-03-08T07:00"))
    assert jump.open
    assert jump.local_time.hour == 3
    assert jump.reason == "weekly hours sun 02:30-05:00"
    assert next_change(plan, utc("2026-03-08T05:00")) == utc("2026-03-08T07:00")
    assert next_change(plan, utc("2026-03-08T07:00")) == utc("2026-03-08T09:00")  # 05:00 EDT


def test_spring_forward_an_interval_inside_the_skipped_hour_never_opens() -> None:
    plan = parse_schedule({"timezone": NEW_YORK, "weekly": {"sun": ["02:00-02:45"]}})
    for minute in range(0, 120, 5):
        assert not is_open(plan, utc("2026-03-08T06:00") + minute * 60)
    assert next_change(plan, utc("2026-03-08T05:00")) == local("2026-03-15T02:00", NEW_YORK)


def test_spring_forward_a_day_of_weekly_hours_is_an_hour_shorter() -> None:
    plan = parse_schedule({"timezone": LONDON, "weekly": {"sun": ["00:00-24:00"]}})
    # Europe/London, Sunday 2026-03-29: 01:00 GMT becomes 02:00 BST.
    opening = local("2026-03-29T00:00", LONDON)
    assert next_change(plan, opening - 1) == opening
    assert next_change(plan, opening) == opening + 23 * HOUR


def test_fall_back_a_day_of_weekly_hours_is_an_hour_longer() -> None:
    plan = parse_schedule({"timezone": LONDON, "weekly": {"sun": ["00:00-24:00"]}})
    # Europe/London, Sunday 2026-10-25: 02:00 BST becomes 01:00 GMT.
    opening = local("2026-10-25T00:00", LONDON)
    assert next_change(plan, opening) == opening + 25 * HOUR


def test_fall_back_a_closing_time_that_happens_twice_closes_at_the_first() -> None:
    # New York, Sunday 2026-11-01: 01:00-02:00 happens at 05:00 UTC (EDT) and 06:00 UTC (EST).
    plan = parse_schedule({"timezone": NEW_YORK, "weekly": {"sun": ["00:00-01:30"]}})
    assert is_open(plan, utc("2026-11-01T05:15"))
    assert not is_open(plan, utc("2026-11-01T05:30"))
    repeated = decide(plan, utc("2026-11-01T06:15"))  # 01:15 again, now EST
    assert (repeated.local_time.hour, repeated.local_time.minute) == (1, 15)
    assert repeated.local_time.fold == 1
    assert repeated.local_time.utcoffset() == timedelta(hours=-5)
    assert not repeated.open
    assert next_change(plan, utc("2026-11-01T05:00")) == utc("2026-11-01T05:30")


def test_fall_back_an_opening_time_that_happens_twice_opens_at_the_first() -> None:
    plan = parse_schedule({"timezone": NEW_YORK, "weekly": {"sun": ["01:30-08:00"]}})
    assert not is_open(plan, utc("2026-11-01T05:29:59"))
    assert is_open(plan, utc("2026-11-01T05:30"))  # 01:30 EDT
    assert is_open(plan, utc("2026-11-01T06:15"))  # 01:15 EST: stays open
    assert is_open(plan, utc("2026-11-01T12:59:59"))
    assert not is_open(plan, utc("2026-11-01T13:00"))  # 08:00 EST
    assert next_change(plan, utc("2026-11-01T05:30")) == utc("2026-11-01T13:00")


def test_office_hours_keep_to_the_local_clock_across_the_change() -> None:
    plan = parse_schedule({"timezone": NEW_YORK, "weekly": {"mon-sun": ["08:00-18:00"]}})
    assert next_change(plan, utc("2026-03-07T00:00")) == utc("2026-03-07T13:00")  # EST
    assert next_change(plan, utc("2026-03-08T00:00")) == utc("2026-03-08T12:00")  # EDT


def test_clocks_that_go_back_at_midnight_repeat_the_evening_and_it_stays_open() -> None:
    # Sao Paulo left DST on 2019-02-17: 23:59:59 (-02) on the 16th became 23:00 (-03) again.
    plan = parse_schedule({"timezone": SAO_PAULO, "weekly": {"sat": ["23:30-24:00"]}})
    first_half_past = utc("2019-02-17T01:30")  # 23:30 -02
    assert not is_open(plan, first_half_past - 1)
    assert is_open(plan, first_half_past)
    repeated = decide(plan, utc("2019-02-17T02:15"))  # 23:15 -03, the second time
    assert (repeated.local_time.day, repeated.local_time.hour, repeated.local_time.fold) == (
        16,
        23,
        1,
    )
    assert repeated.open
    assert next_change(plan, first_half_past) == utc("2019-02-17T03:00")  # midnight -03


def test_clocks_that_jump_at_midnight_open_the_day_at_the_jump() -> None:
    # Sao Paulo entered DST on 2018-11-04: midnight (-03) became 01:00 (-02).
    plan = parse_schedule(
        {"timezone": SAO_PAULO, "weekly": {"sat": ["20:00-24:00"], "sun": ["00:00-02:00"]}}
    )
    jump = utc("2018-11-04T03:00")
    sunday = decide(plan, jump)
    assert (sunday.open, sunday.reason) == (True, "weekly hours sun 00:00-02:00")
    assert decide(plan, jump - 1).reason == "weekly hours sat 20:00-24:00"
    # Saturday closes and Sunday opens at the same instant: one opening, until 02:00 -02.
    assert next_change(plan, utc("2018-11-04T00:00")) == utc("2018-11-04T04:00")


# --------------------------------------------------------------------------- next change


def test_next_change_says_when_it_closes_and_when_it_opens() -> None:
    plan = schedule(holidays={"country": "BR"})
    assert next_change(plan, local("2026-12-21T10:00")) == local("2026-12-21T18:00")
    assert next_change(plan, local("2026-12-21T18:00")) == local("2026-12-22T08:00")
    assert next_change(plan, local("2026-12-21T07:00")) == local("2026-12-21T08:00")
    assert next_change(plan, local("2026-12-26T13:00")) == local("2026-12-28T08:00")
    # Thursday evening before Christmas: the next opening is Saturday morning.
    assert next_change(plan, local("2026-12-24T19:00")) == local("2026-12-26T09:00")


def test_next_change_treats_touching_intervals_as_one_opening() -> None:
    plan = schedule(weekly={"mon": ["08:00-12:00", "12:00-18:00"], "tue": ["00:00-06:00"]})
    assert decide(plan, local("2026-12-21T12:00")).reason == "weekly hours mon 12:00-18:00"
    assert next_change(plan, local("2026-12-21T09:00")) == local("2026-12-21T18:00")
    night = schedule(weekly={"mon": ["18:00-24:00"], "tue": ["00:00-06:00"]})
    assert next_change(night, local("2026-12-21T20:00")) == local("2026-12-22T06:00")


def test_next_change_looks_at_most_two_weeks_ahead() -> None:
    plan = schedule(closed=["2026-12-22..2027-01-10"])
    assert next_change(plan, local("2026-12-22T10:00")) is None  # reopens in 20 days
    assert next_change(plan, local("2026-12-30T10:00")) == local("2027-01-11T08:00")
    assert next_change(schedule(weekly={}), local("2026-12-22T10:00")) is None
    always = schedule(weekly={"mon-sun": ["00:00-24:00"]})
    assert next_change(always, local("2026-12-22T10:00")) is None
    assert SEARCH_DAYS == 14


def test_next_change_matches_decide_minute_by_minute_over_a_dst_week() -> None:
    plan = parse_schedule(
        {
            "timezone": NEW_YORK,
            "weekly": {
                "mon-fri": ["08:00-12:00", "12:00-17:45"],
                "sat": ["22:00-01:00"],
                "sun": ["01:15-01:45", "09:00-10:00"],
            },
            "holidays": {"country": "US"},
            "special": {"2026-11-03": ["10:00-11:00"]},
            "closed": ["2026-11-05"],
        }
    )
    start, end = utc("2026-10-30T00:00"), utc("2026-11-08T00:00")
    flips: list[float] = []
    cursor = start
    while (following := next_change(plan, cursor)) is not None and following < end:
        assert following > cursor
        flips.append(following)
        cursor = following
    assert len(flips) >= 16
    initially = is_open(plan, start)
    for step in range(int((end - start) // 300)):
        at = start + step * 300
        expected = initially ^ (sum(1 for flip in flips if flip <= at) % 2 == 1)
        assert is_open(plan, at) == expected, datetime.fromtimestamp(at, UTC)


# --------------------------------------------------------------------------- bad instants


@pytest.mark.parametrize("at", [math.nan, math.inf, -1e12, 1e12])
def test_an_instant_outside_the_supported_years_is_refused(at: float) -> None:
    with pytest.raises(ValueError, match="not an instant"):
        decide(schedule(), at)
    with pytest.raises(ValueError, match="not an instant"):
        next_change(schedule(), at)


# --------------------------------------------------------------------------- validation


def problems(data: Any, where: str = "hours") -> list[str]:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(data, where)
    return [str(problem) for problem in caught.value.problems]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"holiday": {}}, "hours.holiday: unknown key 'holiday' (known: timezone, weekly,"),
        (
            {"timezone": "America/Sao Paulo"},
            "hours.timezone: unknown time zone 'America/Sao Paulo'"
            " (did you mean 'America/Sao_Paulo'?)",
        ),
        ({"timezone": "europe/london"}, "(did you mean 'Europe/London'?)"),
        ({"timezone": "Mars/Olympus"}, "hours.timezone: unknown time zone 'Mars/Olympus'"),
        ({"timezone": 3}, "hours.timezone: expected a time zone like 'America/Sao_Paulo'"),
        ({"weekly": ["08:00-18:00"]}, "hours.weekly: expected weekdays with their opening hours"),
        ({"weekly": {"mon": ["25:00-26:00"]}}, "hours.weekly.mon[0]: '25:00' is not a time of"),
        ({"weekly": {"mon": ["08:00-18:60"]}}, "hours.weekly.mon[0]: '18:60' is not a time of"),
        ({"weekly": {"mon": ["08:00-24:30"]}}, "hours.weekly.mon[0]: '24:30' is not a time of"),
        ({"weekly": {"mon": ["8-18"]}}, "hours.weekly.mon[0]: expected opening hours like"),
        ({"weekly": {"mon": ["08:00-08:00"]}}, "hours.weekly.mon[0]: '08:00-08:00' opens and"),
        (
            {"weekly": {"mon": [1080]}},
            "hours.weekly.mon[0]: expected opening hours like "
            "'08:00-18:00', got the number 1080; put times in quotes",
        ),
        ({"weekly": {"mon": "08:00-18:00"}}, "hours.weekly.mon: expected a list of opening hours"),
        (
            {"weekly": {"mon": ["08:00-12:00", "11:00-14:00"]}},
            "hours.weekly.mon[1]: 11:00-14:00 overlaps 08:00-12:00",
        ),
        (
            {"weekly": {"mon": ["20:00-10:00", "22:00-23:00"]}},
            "hours.weekly.mon[1]: 22:00-23:00 overlaps 20:00-10:00",
        ),
        (
            {"weekly": {"mon-fri": ["22:00-06:00"], "sat": ["05:00-10:00"]}},
            "hours.weekly.sat[0]: 05:00-10:00 overlaps fri 22:00-06:00, which runs past midnight",
        ),
        (
            {"weekly": {"sun": ["22:00-06:00"], "mon": ["05:00-10:00"]}},
            "hours.weekly.mon[0]: 05:00-10:00 overlaps sun 22:00-06:00",
        ),
        ({"weekly": {"funday": []}}, "hours.weekly.funday: unknown weekday 'funday' in 'funday'"),
        ({"weekly": {"monday": []}}, "hours.weekly.monday: unknown weekday 'monday'"),
        (
            {"weekly": {"mon-tue-wed": []}},
            "hours.weekly.mon-tue-wed: unknown weekday 'mon-tue-wed'",
        ),
        ({"weekly": {"mon,mon": []}}, "hours.weekly.mon,mon: mon appears twice in 'mon,mon'"),
        (
            {"weekly": {"mon-fri": [], "fri": []}},
            "hours.weekly.fri: fri already has hours from 'mon-fri'",
        ),
        ({"weekly": {1: []}}, "hours.weekly.1: the number 1 is not a weekday"),
        ({"holidays": "BR"}, "hours.holidays: expected {country: XX} with an optional subdivision"),
        ({"holidays": {"subdivision": "SP"}}, "hours.holidays: missing required key 'country'"),
        ({"holidays": {"country": "XX"}}, "hours.holidays.country: unknown country 'XX'"),
        (
            {"holidays": {"country": "br"}},
            "hours.holidays.country: unknown country 'br' for public holidays (did you mean 'BR'?)",
        ),
        (
            {"holidays": {"country": "BR", "subdivision": "XX"}},
            "hours.holidays.subdivision: unknown subdivision 'XX' of BR (known: AC, AL,",
        ),
        (
            {"holidays": {"country": "AF", "subdivision": "XX"}},
            "hours.holidays.subdivision: AF has no subdivisions",
        ),
        (
            {"holidays": {"country": "BR", "region": "SP"}},
            "hours.holidays.region: unknown key 'region' (known: country, subdivision)",
        ),
        (
            {"holidays": {"country": "FR", "subdivision": 971}},
            "hours.holidays.subdivision: expected a subdivision code in quotes",
        ),
        ({"closed": "2026-12-25"}, "hours.closed: expected a list of dates"),
        ({"closed": ["2026-02-30"]}, "hours.closed[0]: '2026-02-30' is not a date (YYYY-MM-DD)"),
        ({"closed": ["25/12/2026"]}, "hours.closed[0]: '25/12/2026' is not a date"),
        (
            {"closed": ["2026-12-26..2026-12-24"]},
            "hours.closed[0]: range '2026-12-26..2026-12-24' ends before it starts",
        ),
        ({"closed": ["2026-12-24..2026-13-01"]}, "hours.closed[0]: '2026-13-01' is not a date"),
        ({"closed": [20261225]}, "hours.closed[0]: expected a date (YYYY-MM-DD), got the number"),
        ({"closed": [datetime(2026, 12, 25, 10, 0)]}, "hours.closed[0]: expected a date"),
        ({"special": ["2026-12-24"]}, "hours.special: expected dates with their opening hours"),
        ({"special": {"24/12": ["08:00-12:00"]}}, "hours.special.24/12: '24/12' is not a date"),
        (
            {"special": {"2026-12-24": []}},
            "hours.special.2026-12-24: no hours given; to close that day list it under closed",
        ),
        (
            {"special": {"2026-12-24": ["08:00-12:00", "10:00-11:00"]}},
            "hours.special.2026-12-24[1]: 10:00-11:00 overlaps 08:00-12:00",
        ),
        (
            {"special": {"2026-12-24": ["08:00-12:00"], date(2026, 12, 24): ["09:00-10:00"]}},
            "hours.special.2026-12-24: 2026-12-24 has special hours twice",
        ),
        (
            {"override": "closed"},
            "hours.override: unknown override the text 'closed' (one of: "
            "none, force_open, force_closed, always_open)",
        ),
    ],
)
def test_each_mistake_is_reported_with_its_path(changes: dict[str, Any], expected: str) -> None:
    reported = problems({**OFFICE, **changes})
    assert any(expected in line for line in reported), reported


def test_a_schedule_that_is_not_a_mapping_or_misses_keys_is_refused() -> None:
    assert problems(["08:00-18:00"]) == [
        "hours: expected a mapping with timezone and weekly, got a list"
    ]
    assert problems({}) == [
        "hours: missing required key 'timezone'",
        "hours: missing required key 'weekly'",
    ]


def test_every_problem_is_reported_at_once_with_steps_into_the_data() -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(
            {
                "timezone": "Nowhere/City",
                "weekly": {"mon-fri": ["08:00-18:00", "25:00-26:00"], "sun": ["x"]},
                "holidays": {"country": "ZZ"},
                "closed": ["2026-12-26..2026-12-24"],
                "special": {"2026-12-31": ["08:00-12:00", "11:00-13:00"]},
                "override": "sometimes",
            },
            where="nodes.after_hours.hours",
        )
    found = [(p.path, p.steps) for p in caught.value.problems]
    assert found == [
        ("nodes.after_hours.hours.timezone", ("timezone",)),
        ("nodes.after_hours.hours.weekly.mon-fri[1]", ("weekly", "mon-fri", 1)),
        ("nodes.after_hours.hours.weekly.sun[0]", ("weekly", "sun", 0)),
        ("nodes.after_hours.hours.holidays.country", ("holidays", "country")),
        ("nodes.after_hours.hours.closed[0]", ("closed", 0)),
        ("nodes.after_hours.hours.special.2026-12-31[1]", ("special", "2026-12-31", 1)),
        ("nodes.after_hours.hours.override", ("override",)),
    ]
    assert str(caught.value).count("\n") == len(found) - 1


def test_an_overnight_overlap_in_a_weekday_group_is_reported_once() -> None:
    reported = problems({**OFFICE, "weekly": {"mon-sun": ["20:00-07:00", "06:00-09:00"]}})
    assert reported == [
        "hours.weekly.mon-sun[1]: 06:00-09:00 overlaps mon 20:00-07:00, which runs past midnight"
    ]


def test_with_no_prefix_the_path_starts_at_the_key() -> None:
    assert problems({**OFFICE, "weekly": {"mon": ["x"]}}, where="") == [
        "weekly.mon[0]: expected opening hours like '08:00-18:00', got 'x'"
    ]


def test_the_documented_example_parses_from_yaml() -> None:
    data = yaml.safe_load(
        """
        timezone: America/Sao_Paulo
        weekly:
          mon-fri: ["08:00-18:00"]
          sat: ["09:00-13:00"]
        holidays: {country: BR, subdivision: SP}
        closed: ["2026-12-24..2026-12-26", "2027-01-01"]
        special: {"2026-12-31": ["08:00-12:00"]}
        """
    )
    plan = parse_schedule(data)
    assert plan.timezone == SAO_PAULO
    assert plan.weekly[0] == (OpeningHours(8 * 60, 18 * 60),)
    assert plan.weekly[5] == (OpeningHours(9 * 60, 13 * 60),)
    assert plan.weekly[6] == ()
    assert plan.holidays == HolidayRegion("BR", "SP")
    assert plan.special == {date(2026, 12, 31): (OpeningHours(8 * 60, 12 * 60),)}
    assert plan.override is Override.NONE


def test_schedules_built_in_code_are_checked_too() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        Schedule(timezone="Nowhere/City")
    with pytest.raises(ValueError, match="7 days"):
        Schedule(timezone=SAO_PAULO, weekly=((),) * 6)
    with pytest.raises(ValueError, match="unknown subdivision"):
        HolidayRegion("BR", "XX")
    with pytest.raises(ValueError, match="same time"):
        OpeningHours(600, 600)
    with pytest.raises(ValueError, match="ends before it starts"):
        DateRange(date(2026, 12, 26), date(2026, 12, 24))
    assert str(OpeningHours.parse("22:00-06:00")) == "22:00-06:00"
    assert OpeningHours.parse("22:00-06:00").crosses_midnight
    assert str(OpeningHours.parse("18:00-00:00")) == "18:00-24:00"


# --------------------------------------------------------------------------- properties


ZONES = (NEW_YORK, LONDON, SAO_PAULO, "Australia/Lord_Howe", "America/Santiago", "UTC")
REGIONS = (None, HolidayRegion("BR", "SP"), HolidayRegion("US"), HolidayRegion("GB", "ENG"))
FIRST_DAY, LAST_DAY = date(2017, 1, 1), date(2028, 12, 31)


def _transitions(zone: str) -> list[float]:
    """The instants the zone's UTC offset changed in the years the properties cover."""
    tz = ZoneInfo(zone)
    found: list[float] = []
    at = datetime.combine(FIRST_DAY, datetime.min.time(), UTC).timestamp()
    end = datetime.combine(LAST_DAY, datetime.min.time(), UTC).timestamp()
    offset = datetime.fromtimestamp(at, tz).utcoffset()
    while at < end:
        following = datetime.fromtimestamp(at + 6 * HOUR, tz).utcoffset()
        if following != offset:
            low, high = int(at), int(at + 6 * HOUR)
            while high - low > 1:
                middle = (low + high) // 2
                if datetime.fromtimestamp(middle, tz).utcoffset() == offset:
                    low = middle
                else:
                    high = middle
            found.append(float(high))
            offset = following
        at += 6 * HOUR
    return found


TRANSITIONS = {zone: _transitions(zone) for zone in ZONES}

opening_hours = st.builds(
    lambda opens, length: OpeningHours(opens, (opens + length - 1) % 1440 + 1),
    st.integers(0, 1439),
    st.integers(1, 1439),
)
# Quarter hours make boundaries line up with the DST jumps, where the edge cases live.
quarter_hours = st.builds(
    lambda opens, length: OpeningHours(opens * 15, (opens * 15 + length * 15 - 1) % 1440 + 1),
    st.integers(0, 95),
    st.integers(1, 95),
)
day_hours = st.lists(st.one_of(opening_hours, quarter_hours), max_size=3).map(tuple)


@st.composite
def schedules_and_instants(draw: st.DrawFn) -> tuple[Schedule, float]:
    zone = draw(st.sampled_from(ZONES))
    near_change = draw(st.booleans()) and TRANSITIONS[zone]
    if near_change:
        at = draw(st.sampled_from(TRANSITIONS[zone])) + draw(st.floats(-2 * DAY, 2 * DAY))
    else:
        start = datetime.combine(FIRST_DAY, datetime.min.time(), UTC).timestamp()
        at = draw(st.floats(start, start + (LAST_DAY - FIRST_DAY).days * DAY))
    today = datetime.fromtimestamp(at, ZoneInfo(zone)).date()
    nearby = st.builds(lambda days: today + timedelta(days=days), st.integers(-3, 16))
    closed = draw(
        st.lists(
            st.builds(
                lambda first, length: DateRange(first, first + timedelta(days=length)),
                nearby,
                st.integers(0, 3),
            ),
            max_size=3,
        )
    )
    special = draw(st.dictionaries(nearby, day_hours.filter(bool), max_size=3))
    plan = Schedule(
        timezone=zone,
        weekly=tuple(draw(day_hours) for _ in range(7)),
        holidays=draw(st.sampled_from(REGIONS)),
        closed=tuple(closed),
        special=special,
    )
    return plan, at


@settings(max_examples=300, deadline=None)
@given(schedules_and_instants())
def test_decide_never_raises_and_next_change_is_a_real_flip(case: tuple[Schedule, float]) -> None:
    plan, at = case
    decision = decide(plan, at)
    assert decision.reason
    assert decision.local_time.tzinfo == plan.zone
    assert decision.local_time.timestamp() == pytest.approx(at)
    flip = next_change(plan, at)
    if flip is None:
        return
    assert at < flip <= at + SEARCH_DAYS * DAY
    assert is_open(plan, flip) != decision.open
    just_before = max(at, flip - 0.001)
    assert is_open(plan, just_before) == decision.open
    assert is_open(plan, (at + flip) / 2) == decision.open


@settings(max_examples=100, deadline=None)
@given(schedules_and_instants(), st.sampled_from(list(Override)))
def test_an_override_decides_alone_and_never_changes(
    case: tuple[Schedule, float], override: Override
) -> None:
    plan, at = case
    decision = decide(plan, at, override)
    if override is Override.NONE:
        assert decision == decide(plan, at)
        return
    assert decision.open == (override is not Override.FORCE_CLOSED)
    assert next_change(plan, at, override) is None
