"""A report's period and its intervals, in the center's time zone (pure).

Figures are kept per **quarter hour of UTC** (a bucket: ``[b, b + 900)`` with ``b`` a
multiple of 900 POSIX seconds). Every offset a time zone uses today is a whole number of
quarter hours, so every local quarter hour, hour, day, week and month starts on a bucket:
a report over any of them is a sum of whole buckets, whatever the zone asked for.

A report covers the period ``[since, until)`` (both on a bucket) cut into intervals. An
interval is a maximal run of consecutive buckets that share their local label, which gives
the calendar its due without special cases:

- ``day``, ``week`` (ISO, Monday first) and ``month`` follow the local date: a day with a
  DST change has 23 or 25 hours; a zone that changed its offset during the period changes
  the length of that one day;
- ``15m``, ``30m`` and ``60m`` follow the local clock *and its offset*: the hour repeated
  when clocks go back is two intervals (01:00-05:00 then 01:00-06:00), the skipped hour is
  none; a 30-minute change (Lord Howe) makes an interval of 30 or 90 minutes.

The first and last intervals are cut by the period (a period from 10:15 in hours starts with
10:15-11:00). Nothing here reads the clock or the database.

The queue figures are also kept per local day of the center's zone (a day row, keyed by
``local_day_start``). ``day_plan`` says which of a report's local days can be read from
their day row (the day wholly inside one interval and the period) and which quarter hours
must be read one by one (the rest).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callcenter.core.hours import zone_problem

BUCKET_SECONDS = 900
# A year (leap, in any zone) and a day to spare: reports are kept per quarter hour, and a
# year of them is 35,136 buckets per queue, enough for one answer.
MAX_PERIOD_SECONDS = 367 * 86400


class PeriodError(ValueError):
    """A period, interval or zone the report cannot use; the message says which and why."""


class Interval(StrEnum):
    MINUTES_15 = "15m"
    MINUTES_30 = "30m"
    MINUTES_60 = "60m"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


INTERVALS = tuple(interval.value for interval in Interval)


def bucket_of(instant: float) -> int:
    """The start of the UTC quarter hour ``instant`` falls in."""
    return int(instant // BUCKET_SECONDS) * BUCKET_SECONDS


def local_day_start(instant: float, zone: ZoneInfo) -> int:
    """The local day ``instant`` falls in, named by the POSIX second of its midnight in
    ``zone`` (a midnight that clocks skip: the instant they skip it at)."""
    day = datetime.fromtimestamp(instant, tz=zone).date()
    return int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp())


# How far beyond a period's edges a local day's quarter hours may lie: a local date lasts at
# most 25 hours (a zone that crossed the date line once lived one twice: 48).
_DAY_REACH = 2 * 86400 + 3600


@dataclass(frozen=True)
class DayPlan:
    """How to read a period in a zone that has day rows: ``days`` (a day's start, its
    interval's index) read from the day rows, and the quarter hours of ``runs`` (``[start,
    end)``, in order, apart) from the quarter-hour rows. Together they cover the period's
    quarter hours once each."""

    days: tuple[tuple[int, int], ...]
    runs: tuple[tuple[int, int], ...]


def day_plan(intervals: Sequence[ReportInterval], zone: ZoneInfo) -> DayPlan:
    """Which local days of ``zone`` lie wholly inside one of ``intervals`` (in order,
    contiguous, on quarter hours), and the quarter hours left over."""
    if not intervals:
        return DayPlan((), ())
    since, until = int(intervals[0].start), int(intervals[-1].end)
    days: dict[int, int] = {}  # midnight (fold 0) of a local date -> its start
    outside = -1

    def day_of(bucket: int) -> int:
        # Whole quarter-hour offsets: a bucket's local date is its start's, and the dates of
        # the buckets of one local day share a midnight.
        local = datetime.fromtimestamp(bucket, tz=zone)
        key = local.toordinal()
        start = days.get(key)
        if start is None:
            start = days[key] = local_day_start(bucket, zone)
        return start

    where: dict[int, set[int]] = defaultdict(set)  # day -> the intervals its buckets are in
    for bucket in (*range(since - _DAY_REACH, since, BUCKET_SECONDS),
                   *range(until, until + _DAY_REACH, BUCKET_SECONDS)):
        where[day_of(bucket)].add(outside)
    covered: list[int] = []  # each bucket of the period: its day, or -1 when read alone
    for index, interval in enumerate(intervals):
        for bucket in range(int(interval.start), int(interval.end), BUCKET_SECONDS):
            day = day_of(bucket)
            where[day].add(index)
            covered.append(day)
    whole = {day: next(iter(found)) for day, found in where.items()
             if len(found) == 1 and outside not in found}
    runs: list[tuple[int, int]] = []
    for position, day in enumerate(covered):
        if day in whole:
            continue
        bucket = since + position * BUCKET_SECONDS
        if runs and runs[-1][1] == bucket:
            runs[-1] = (runs[-1][0], bucket + BUCKET_SECONDS)
        else:
            runs.append((bucket, bucket + BUCKET_SECONDS))
    assert not runs or runs[-1][1] <= until
    return DayPlan(tuple(sorted(whole.items())), tuple(runs))


def time_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (e.g. ``America/Sao_Paulo``), or PeriodError."""
    # Paths and odd names never reach the file system: only names the zone database lists.
    if not isinstance(name, str):
        raise PeriodError(f"{str(name)[:40]!r} is not a time zone name")
    problem = zone_problem(name)
    if problem is not None:
        raise PeriodError(problem)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PeriodError(f"{name[:40]!r} is not a time zone this system knows") from None


@dataclass(frozen=True)
class ReportInterval:
    """One row's time span: ``[start, end)`` in POSIX seconds and how people name it."""

    start: float
    end: float
    label: str  # local: 2026-03-08T01:00-05:00, 2026-03-08, 2026-W10, 2026-03

    @property
    def seconds(self) -> float:
        return self.end - self.start


def _label(interval: Interval, local: datetime) -> str:
    match interval:
        case Interval.DAY:
            return local.date().isoformat()
        case Interval.WEEK:
            year, week, _ = local.isocalendar()
            return f"{year}-W{week:02d}"
        case Interval.MONTH:
            return f"{local.year:04d}-{local.month:02d}"
        case _:
            minutes = {Interval.MINUTES_15: 15, Interval.MINUTES_30: 30,
                       Interval.MINUTES_60: 60}[interval]
            start = local.replace(minute=local.minute - local.minute % minutes)
            return start.isoformat(timespec="minutes")


@dataclass(frozen=True)
class ReportPeriod:
    """``[since, until)`` cut into ``interval``s of the zone ``zone``; checked when made."""

    since: float
    until: float
    interval: Interval
    zone: ZoneInfo

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value % BUCKET_SECONDS:
                raise PeriodError(f"{name}: {_iso(value)} is not on a quarter hour (figures "
                                  "are kept per 15 minutes)")
        if self.since >= self.until:
            raise PeriodError("since must be before until")
        if self.until - self.since > MAX_PERIOD_SECONDS:
            raise PeriodError(f"the period is longer than {MAX_PERIOD_SECONDS // 86400} days: "
                              "ask for a year or less at a time")

    @property
    def buckets(self) -> range:
        return range(int(self.since), int(self.until), BUCKET_SECONDS)

    def bucket_positions(self, intervals: Sequence[ReportInterval]) -> dict[int, int]:
        """Each bucket of the period -> the index of its interval in ``intervals``."""
        positions: dict[int, int] = {}
        for index, interval in enumerate(intervals):
            for bucket in range(int(interval.start), int(interval.end), BUCKET_SECONDS):
                positions[bucket] = index
        return positions

    def intervals(self) -> list[ReportInterval]:
        """The period's intervals, in order, covering it without gaps or overlap."""
        found: list[ReportInterval] = []
        label: str | None = None
        start = self.since
        for bucket in self.buckets:
            local = datetime.fromtimestamp(bucket, tz=self.zone)
            if local.utcoffset() is None or local.utcoffset() % timedelta(  # type: ignore[operator]
                    seconds=BUCKET_SECONDS):
                raise PeriodError(f"time zone {self.zone.key}: its offset at {_iso(bucket)} "
                                  "is not a whole number of quarter hours")
            # A clock time's label carries its offset: the repeated hour is two intervals.
            this = _label(self.interval, local)
            if this != label and label is not None:
                found.append(ReportInterval(start, bucket, label))
                start = bucket
            label = this
        assert label is not None  # since < until: at least one bucket
        found.append(ReportInterval(start, self.until, label))
        return found


def interval_index(intervals: Sequence[ReportInterval], instant: float) -> int | None:
    """Which of ``intervals`` (in order, contiguous) ``instant`` falls in; None: outside."""
    if not intervals or not intervals[0].start <= instant < intervals[-1].end:
        return None
    return bisect.bisect_right([interval.start for interval in intervals], instant) - 1


def _iso(instant: float) -> str:
    return datetime.fromtimestamp(instant, tz=UTC).isoformat().replace("+00:00", "Z")


Group = tuple[int, tuple[Any, ...]]  # (interval index, the grouping columns' values)
