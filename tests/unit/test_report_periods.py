"""A report's period and intervals in the center's time zone (core/report_periods.py), and a
report table rendered as CSV and XLSX (features/reports/render.py)."""

from __future__ import annotations

import csv
import io
import itertools
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.core.report_periods import (
    BUCKET_SECONDS,
    Interval,
    PeriodError,
    ReportPeriod,
    bucket_of,
    day_plan,
    interval_index,
    local_day_start,
    time_zone,
)
from callcenter.core.report_table import CellKind, Column, ReportTable
from callcenter.features.reports.render import to_csv, to_xlsx

NEW_YORK = time_zone("America/New_York")
SAO_PAULO = time_zone("America/Sao_Paulo")


def local(zone_name: str, *args: int) -> float:
    return datetime(*args, tzinfo=time_zone(zone_name)).timestamp()  # type: ignore[misc]


def test_a_quarter_hour_bucket_is_the_utc_quarter_an_instant_falls_in() -> None:
    assert bucket_of(900.0) == 900
    assert bucket_of(1799.999) == 900
    assert bucket_of(-1.0) == -900


def test_the_day_clocks_go_back_has_25_hours_and_its_repeated_hour_is_two_intervals() -> None:
    since = local("America/New_York", 2026, 11, 1)
    until = local("America/New_York", 2026, 11, 2)
    hours = ReportPeriod(since, until, Interval.MINUTES_60, NEW_YORK).intervals()
    assert len(hours) == 25
    assert [h.label for h in hours[1:3]] == ["2026-11-01T01:00-04:00", "2026-11-01T01:00-05:00"]
    (day,) = ReportPeriod(since, until, Interval.DAY, NEW_YORK).intervals()
    assert (day.label, day.seconds) == ("2026-11-01", 25 * 3600)


def test_the_day_clocks_go_forward_has_23_hours() -> None:
    since = local("America/New_York", 2026, 3, 8)
    until = local("America/New_York", 2026, 3, 10)
    days = ReportPeriod(since, until, Interval.DAY, NEW_YORK).intervals()
    assert [(d.label, d.seconds / 3600) for d in days] == [("2026-03-08", 23), ("2026-03-09", 24)]
    hours = ReportPeriod(since, until, Interval.MINUTES_60, NEW_YORK).intervals()
    assert "2026-03-08T02:00-05:00" not in {h.label for h in hours}
    assert len(hours) == 47


def test_a_zone_that_changed_its_offset_has_one_odd_day() -> None:
    # Brazil's last DST ended on 2019-02-17 at 00:00 (-02:00 -> -03:00): the 16th had 25 hours.
    since = local("America/Sao_Paulo", 2019, 2, 15)
    until = local("America/Sao_Paulo", 2019, 2, 18)
    days = ReportPeriod(since, until, Interval.DAY, SAO_PAULO).intervals()
    assert [d.seconds / 3600 for d in days] == [24, 25, 24]


def test_weeks_are_iso_weeks_and_months_calendar_months_cut_by_the_period() -> None:
    since = datetime(2026, 1, 15, tzinfo=UTC).timestamp()
    until = datetime(2026, 3, 1, tzinfo=UTC).timestamp()
    months = ReportPeriod(since, until, Interval.MONTH, time_zone("UTC")).intervals()
    assert [(m.label, m.seconds / 86400) for m in months] == [("2026-01", 17), ("2026-02", 28)]
    weeks = ReportPeriod(since, until, Interval.WEEK, time_zone("UTC")).intervals()
    assert weeks[0].label == "2026-W03" and weeks[0].seconds == 4 * 86400  # Thu..Sun
    assert weeks[1].label == "2026-W04" and weeks[1].seconds == 7 * 86400


def test_an_hour_in_a_zone_three_quarters_off_utc_starts_at_a_quarter_past() -> None:
    kathmandu = time_zone("Asia/Kathmandu")  # +05:45
    since = local("Asia/Kathmandu", 2026, 5, 1, 10)
    hours = ReportPeriod(since, since + 3 * 3600, Interval.MINUTES_60, kathmandu).intervals()
    assert [h.label for h in hours] == ["2026-05-01T10:00+05:45", "2026-05-01T11:00+05:45",
                                        "2026-05-01T12:00+05:45"]
    assert datetime.fromtimestamp(hours[0].start, UTC).minute == 15


@pytest.mark.parametrize(("since", "until", "message"), [
    (0, 0, "since must be before until"),
    (900, 0, "since must be before until"),
    (10, 900, "since: 1970-01-01T00:00:10Z is not on a quarter hour"),
    (0, 368 * 86400, "longer than 367 days"),
])
def test_a_bad_period_is_refused_saying_why(since: float, until: float, message: str) -> None:
    with pytest.raises(PeriodError, match=message):
        ReportPeriod(since, until, Interval.DAY, time_zone("UTC"))


def test_a_year_is_a_period_and_an_unknown_zone_is_refused() -> None:
    since = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    days = ReportPeriod(since, since + 366 * 86400, Interval.DAY, time_zone("UTC")).intervals()
    assert len(days) == 366
    for name in ("Mars/Olympus", "../../etc/passwd", ""):
        with pytest.raises(PeriodError, match="unknown time zone"):
            time_zone(name)


ZONES = ["UTC", "America/New_York", "America/Sao_Paulo", "Europe/Lisbon", "Asia/Kolkata",
         "Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Chatham"]


@settings(max_examples=60, deadline=None)
@given(start=st.integers(1_500_000_000 // 900, 1_900_000_000 // 900),
       quarters=st.integers(1, 24 * 4 * 70), zone=st.sampled_from(ZONES),
       interval=st.sampled_from(list(Interval)),
       instants=st.lists(st.floats(0, 1), max_size=10))
def test_intervals_cover_the_period_in_order_and_each_instant_falls_in_one(
        start: int, quarters: int, zone: str, interval: Interval,
        instants: list[float]) -> None:
    since = start * BUCKET_SECONDS
    until = since + quarters * BUCKET_SECONDS
    period = ReportPeriod(since, until, interval, time_zone(zone))
    intervals = period.intervals()
    assert intervals[0].start == since and intervals[-1].end == until
    for before, after in itertools.pairwise(intervals):
        assert before.end == after.start and before.label != after.label
        assert before.start < before.end
    positions = period.bucket_positions(intervals)
    for fraction in instants:
        instant = since + fraction * (until - since - 1e-3)
        index = interval_index(intervals, instant)
        assert index is not None and intervals[index].start <= instant < intervals[index].end
        assert positions[bucket_of(instant)] == index
    assert interval_index(intervals, until) is None


TABLE = ReportTable("queues", "Queues", (
    Column("queue", "Queue", CellKind.TEXT), Column("offered", "Offered", CellKind.COUNT),
    Column("service_level", "Service level", CellKind.RATIO)),
    (("=HYPERLINK(\"x\")", 3, 0.5), ("sales", 0, None)), notes=("SL: answered within T",))


def test_csv_escapes_formula_looking_text_and_leaves_undefined_cells_empty() -> None:
    text = to_csv(TABLE).decode()
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows == [["queue", "offered", "service_level"], ["'=HYPERLINK(\"x\")", "3", "0.5"],
                    ["sales", "0", ""]]


def test_xlsx_keeps_numbers_as_numbers_and_escapes_formulas() -> None:
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(to_xlsx(TABLE))).active
    assert sheet is not None
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values[0] == ["Queue", "Offered", "Service level"]
    assert values[1] == ["'=HYPERLINK(\"x\")", 3, 0.5]
    assert values[2] == ["sales", 0, None]
    assert sheet["C2"].number_format == "0.0%"
    assert values[-1] == ["SL: answered within T", None, None]


@pytest.mark.parametrize(("env", "message"), [
    ({"CALLCENTER_CENTER__TIME_ZONE": "Mars/Olympus"},
     "center.time_zone: 'Mars/Olympus' is not a known time zone"),
    ({"CALLCENTER_REPORTS__CSAT_SATISFIED_FROM": "6"}, "reports.csat_satisfied_from"),
    ({"CALLCENTER_REPORTS__NPS_QUESTIONS": "agent-rating"},
     "a question cannot count for both CSAT and NPS"),
    ({"CALLCENTER_REPORTS__CSAT_QUESTIONS": "Bad Id"}, "reports.csat_questions[0]"),
])
def test_report_settings_are_checked(env: dict[str, str], message: str) -> None:
    from callcenter.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(env=env)


def test_the_center_zone_defaults_to_utc_and_takes_an_iana_name() -> None:
    from callcenter.config import load_settings

    assert load_settings(env={}).center.time_zone == "UTC"
    zone = load_settings(env={"CALLCENTER_CENTER__TIME_ZONE": "America/Sao_Paulo"})
    assert zone.center.time_zone == "America/Sao_Paulo"


def test_a_day_plan_reads_the_whole_local_days_from_day_rows_and_the_edges_by_quarter_hour(
        ) -> None:
    zone = time_zone("America/New_York")
    first = datetime(2026, 10, 31, 10, 15, tzinfo=zone).timestamp()  # a Saturday
    period = ReportPeriod(first, first + 3 * 86400, Interval.DAY, zone)
    plan = day_plan(period.intervals(), zone)
    sunday = datetime(2026, 11, 1, tzinfo=zone).timestamp()  # 25 hours: clocks go back
    monday = datetime(2026, 11, 2, tzinfo=zone).timestamp()
    assert monday - sunday == 25 * 3600
    assert plan.days == ((int(sunday), 1), (int(monday), 2))
    assert plan.runs == ((int(first), int(sunday)),
                         (int(monday + 86400), int(period.until)))
    assert local_day_start(sunday + 24.5 * 3600, zone) == sunday
    hours = ReportPeriod(sunday, monday, Interval.MINUTES_60, zone)
    assert day_plan(hours.intervals(), zone).days == ()  # no day lies in one hour
