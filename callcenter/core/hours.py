"""Time conditions for IVR flows: is the call center open at a given instant, and why.

Pure: the instant comes in as POSIX seconds (from the service's ``Clock``) and every answer
is computed from the ``Schedule`` alone; the wall clock is never read.

What decides, strongest first:

1. an admin override (force open, force closed, 24x7): the one passed to ``decide`` wins
   over the one written in the schedule;
2. special hours for a date (e.g. Christmas Eve 08:00-12:00): they replace everything else
   for that date, closed dates and holidays included;
3. the flow's own closed dates and date ranges;
4. public holidays of a country (and subdivision) from the ``holidays`` package;
5. the weekly hours.

Opening hours are wall-clock times in the schedule's time zone, open at the opening time and
closed from the closing time on. ``22:00-06:00`` crosses midnight: it opens at 22:00 and
closes at 06:00 the next day. An interval belongs to the day it opens on: a closed date or a
holiday cancels the intervals that open on it, after-midnight part included, while a night
interval opened the day before still runs into it until its closing time.

Daylight saving time: each interval is one stretch of real time, from the instant it opens
to the instant it closes.

- A time that happens twice (autumn, clocks go back) means its first occurrence:
  ``00:00-01:30`` closes at the first 01:30 and stays closed through the repeated hour;
  ``01:30-08:00`` opens at the first 01:30 and stays open through it.
- A time that does not exist (spring, clocks jump forward) means the moment of the jump:
  ``02:30-05:00`` opens at 03:00 when the clocks go from 02:00 to 03:00; an interval lying
  wholly inside the skipped hour does not open at all.

The YAML admins write (``parse_schedule`` reads it once loaded into plain Python values)::

    timezone: America/Sao_Paulo          # required, an IANA time zone key
    weekly:                              # required; days not listed are closed
      mon-fri: ["08:00-18:00"]           # mon..sun, ranges (sun-thu wraps), lists (mon,wed)
      sat: ["09:00-13:00"]               # several intervals per day allowed, no overlaps
    holidays: {country: BR, subdivision: SP}
    closed: ["2026-12-24..2026-12-26", "2027-01-01"]   # dates and inclusive ranges
    special: {"2026-12-31": ["08:00-12:00"]}
    override: none                       # none, force_open, force_closed, always_open
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from functools import lru_cache
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import holidays as holiday_calendars

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = date.weekday()
MINUTES_PER_DAY = 24 * 60
SEARCH_DAYS = 14  # how far ahead next_change looks
# Instants decide() accepts: far beyond any real use, well inside what datetime can hold.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC).timestamp()
LATEST = datetime(3000, 1, 1, tzinfo=UTC).timestamp()

_HOURS_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_HOURS_EXAMPLE = "'08:00-18:00'"


# --------------------------------------------------------------------------- the model


def _clock_text(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class OpeningHours:
    """One opening interval, in wall-clock minutes after local midnight.

    ``closes`` earlier than ``opens`` means the interval crosses midnight and closes on the
    next day; ``closes`` is 1440 for an interval that ends at midnight (24:00).
    """

    opens: int  # 0..1439
    closes: int  # 1..1440

    def __post_init__(self) -> None:
        if not 0 <= self.opens < MINUTES_PER_DAY:
            raise ValueError(f"opening minute {self.opens} is outside 0..1439")
        if not 0 < self.closes <= MINUTES_PER_DAY:
            raise ValueError(f"closing minute {self.closes} is outside 1..1440")
        if self.opens == self.closes:
            raise ValueError(f"{self} opens and closes at the same time")

    @property
    def crosses_midnight(self) -> bool:
        return self.closes < self.opens

    @property
    def end(self) -> int:
        """The closing time in minutes after the opening day's midnight (past 1440 overnight)."""
        return self.closes + MINUTES_PER_DAY if self.crosses_midnight else self.closes

    def __str__(self) -> str:
        return f"{_clock_text(self.opens)}-{_clock_text(self.closes)}"

    @classmethod
    def parse(cls, text: str) -> OpeningHours:
        """``"08:00-18:00"``, ``"22:00-06:00"`` (overnight), ``"18:00-24:00"``.

        A closing time of ``00:00`` means midnight at the end of the day, like ``24:00``.
        """
        match = _HOURS_RE.fullmatch(text)
        if match is None:
            raise ValueError(f"expected opening hours like {_HOURS_EXAMPLE}, got {text!r}")
        open_h, open_m, close_h, close_m = (int(part) for part in match.groups())
        opening = f"{match.group(1)}:{match.group(2)}"
        closing = f"{match.group(3)}:{match.group(4)}"
        if open_h > 23 or open_m > 59:
            raise ValueError(f"{opening!r} is not a time of day (00:00-23:59)")
        if close_m > 59 or close_h > 24 or (close_h == 24 and close_m != 0):
            raise ValueError(
                f"{closing!r} is not a time of day (00:00-23:59, or 24:00 to close at midnight)"
            )
        opens = open_h * 60 + open_m
        closes = close_h * 60 + close_m
        if opens == closes:
            raise ValueError(
                f"{text.strip()!r} opens and closes at the same time "
                "(for the whole day write '00:00-24:00')"
            )
        return cls(opens, closes or MINUTES_PER_DAY)


def _parse_date(text: str) -> date:
    if _DATE_RE.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)")


@dataclass(frozen=True)
class DateRange:
    """Dates from ``first`` to ``last``, both included."""

    first: date
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"range {self.first}..{self.last} ends before it starts")

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.first <= day <= self.last

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}..{self.last}"

    @classmethod
    def parse(cls, text: str) -> DateRange:
        """``"2027-01-01"`` or ``"2026-12-24..2026-12-26"``."""
        if ".." not in text:
            day = _parse_date(text.strip())
            return cls(day, day)
        first_text, last_text = (part.strip() for part in text.split("..", 1))
        first, last = _parse_date(first_text), _parse_date(last_text)
        if last < first:
            raise ValueError(f"range {text.strip()!r} ends before it starts")
        return cls(first, last)


def _supported_countries() -> Mapping[str, Sequence[str]]:
    return holiday_calendars.list_supported_countries()


@lru_cache(maxsize=1024)
def _holidays_in(country: str, subdivision: str | None, year: int) -> Mapping[date, str]:
    """The public holidays of one year, built once per (country, subdivision, year)."""
    calendar = holiday_calendars.country_holidays(country, subdiv=subdivision, years=year)
    return MappingProxyType(dict(calendar.items()))


@dataclass(frozen=True)
class HolidayRegion:
    """Where public holidays come from: an ISO country code and an optional subdivision."""

    country: str
    subdivision: str | None = None

    def __post_init__(self) -> None:
        problem = _holiday_region_problem(self.country, self.subdivision)
        if problem is not None:
            raise ValueError(problem[1])

    def name_on(self, day: date) -> str | None:
        """The holiday's name (several joined by '; '), or None on an ordinary day."""
        return _holidays_in(self.country, self.subdivision, day.year).get(day)


def _holiday_region_problem(country: str, subdivision: str | None) -> tuple[str, str] | None:
    """(which key, what is wrong) when the holidays package does not know the region."""
    supported = _supported_countries()
    if country not in supported:
        hint = (
            f" (did you mean {country.upper()!r}?)"
            if country.upper() in supported
            else " (an ISO 3166-1 alpha-2 code the holidays package supports, such as BR, US, GB)"
        )
        return "country", f"unknown country {country!r} for public holidays{hint}"
    if subdivision is not None and subdivision not in supported[country]:
        known = ", ".join(supported[country])
        if not known:
            return "subdivision", f"{country} has no subdivisions for public holidays"
        return "subdivision", f"unknown subdivision {subdivision!r} of {country} (known: {known})"
    return None


@lru_cache(maxsize=1)
def known_time_zones() -> frozenset[str]:
    """The IANA zone names this system knows (read once): business hours, calling hours and
    call lists' time-zone columns accept these."""
    return frozenset(available_timezones()) | {"UTC"}


def zone_problem(key: str) -> str | None:
    """None for a zone name this system knows; else what is wrong, with the nearest name.
    Every place that takes a zone name checks it here (hours, flows, reports, costs)."""
    if key in known_time_zones():
        return None
    by_case = {zone.lower(): zone for zone in known_time_zones()}
    close = by_case.get(key.lower()) or next(
        iter(difflib.get_close_matches(key, known_time_zones(), n=1)), None
    )
    hint = f" (did you mean {close!r}?)" if close else " (an IANA key like 'America/Sao_Paulo')"
    return f"unknown time zone {key[:40]!r}{hint}"


class Override(Enum):
    """The admin switch; it takes effect on the next ``decide``."""

    NONE = "none"
    FORCE_OPEN = "force_open"
    FORCE_CLOSED = "force_closed"
    ALWAYS_OPEN = "always_open"  # 24x7


_OVERRIDE_REASONS = {
    Override.FORCE_OPEN: "forced open by an admin",
    Override.FORCE_CLOSED: "forced closed by an admin",
    Override.ALWAYS_OPEN: "open 24x7 by an admin",
}


def _no_special_hours() -> Mapping[date, tuple[OpeningHours, ...]]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Schedule:
    """When a flow's callers find the call center open. Build it with ``parse_schedule``."""

    timezone: str  # IANA key, e.g. "America/Sao_Paulo"
    weekly: tuple[tuple[OpeningHours, ...], ...] = ((),) * 7  # Monday first
    holidays: HolidayRegion | None = None
    closed: tuple[DateRange, ...] = ()
    special: Mapping[date, tuple[OpeningHours, ...]] = field(
        default_factory=_no_special_hours, hash=False
    )
    override: Override = Override.NONE

    def __post_init__(self) -> None:
        if len(self.weekly) != len(WEEKDAYS):
            raise ValueError(f"weekly hours need 7 days (Monday first), got {len(self.weekly)}")
        problem = zone_problem(self.timezone)
        if problem is not None:
            raise ValueError(problem)
        # Read-only copies, so a frozen schedule cannot change under a running flow.
        object.__setattr__(self, "weekly", tuple(tuple(day) for day in self.weekly))
        object.__setattr__(self, "closed", tuple(self.closed))
        object.__setattr__(
            self, "special", MappingProxyType({d: tuple(h) for d, h in self.special.items()})
        )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)  # ZoneInfo keeps one instance per key


@dataclass(frozen=True)
class Decision:
    open: bool
    reason: str  # "weekly hours mon 08:00-18:00", "holiday: Christmas Day", ...
    local_time: datetime  # ``at`` in the schedule's time zone (aware)


# --------------------------------------------------------------------------- deciding


@dataclass(frozen=True)
class _DayPlan:
    """What one local date's rule says: its opening intervals, and why it is closed."""

    hours: tuple[OpeningHours, ...]
    source: str  # "weekly hours mon", "special hours 2026-12-31", or the closing reason
    closes_whole_day: bool = False

    def opening_reason(self, hours: OpeningHours) -> str:
        return f"{self.source} {hours}"

    @property
    def closed_reason(self) -> str:
        if self.closes_whole_day:
            return self.source
        if not self.hours:
            return f"{self.source}: closed"
        return f"outside {self.source} ({', '.join(str(h) for h in self.hours)})"


def _plan(schedule: Schedule, day: date) -> _DayPlan:
    special = schedule.special.get(day)
    if special is not None:
        return _DayPlan(special, f"special hours {day}")
    for dates in schedule.closed:
        if day in dates:
            within = "" if dates.first == dates.last else f" (closed {dates})"
            return _DayPlan((), f"closed date {day}{within}", closes_whole_day=True)
    if schedule.holidays is not None:
        name = schedule.holidays.name_on(day)
        if name:
            return _DayPlan((), f"holiday: {name}", closes_whole_day=True)
    weekday = day.weekday()
    return _DayPlan(schedule.weekly[weekday], f"weekly hours {WEEKDAYS[weekday]}")


def _wall(instant: float, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(instant, zone).replace(tzinfo=None)


def _instant(wall: datetime, zone: ZoneInfo) -> float:
    """The instant a local wall-clock time first shows, or when the clocks jump past it."""
    first = wall.replace(tzinfo=zone, fold=0).timestamp()  # first of two, or past a gap
    if _wall(first, zone) == wall:
        return first
    # The time was skipped. fold=1 reads it with the offset after the jump, which lands
    # before the jump; the jump happens on a whole second in between.
    before = math.floor(wall.replace(tzinfo=zone, fold=1).timestamp())
    after = math.ceil(first)
    while after - before > 1:
        middle = (before + after) // 2
        if _wall(middle, zone) >= wall:
            after = middle
        else:
            before = middle
    return float(after)


@dataclass(frozen=True)
class _Stretch:
    """An opening interval placed in real time: open from ``start`` until ``end``."""

    start: float
    end: float
    reason: str


def _placed(
    zone: ZoneInfo, day: date, hours_of_day: Sequence[OpeningHours]
) -> Iterator[tuple[OpeningHours, float, float]]:
    """Intervals opening on the local date ``day``, with the instants they open and close."""
    midnight = datetime.combine(day, time())
    for hours in hours_of_day:
        start = _instant(midnight + timedelta(minutes=hours.opens), zone)
        end = _instant(midnight + timedelta(minutes=hours.end), zone)
        if start < end:  # an interval wholly inside a skipped hour never opens
            yield hours, start, end


def _stretches(schedule: Schedule, day: date) -> Iterator[_Stretch]:
    """The intervals that open on the local date ``day``, as instants."""
    plan = _plan(schedule, day)
    for hours, start, end in _placed(schedule.zone, day, plan.hours):
        yield _Stretch(start, end, plan.opening_reason(hours))


def _closed_reason(schedule: Schedule, today: date, at: float) -> str:
    """Why it is closed now; a night cancelled by yesterday's closed date or holiday says so."""
    plan = _plan(schedule, today)
    if plan.closes_whole_day:
        return plan.closed_reason
    yesterday = today - timedelta(days=1)
    cancelled = _plan(schedule, yesterday)
    if cancelled.closes_whole_day:
        usual = schedule.weekly[yesterday.weekday()]
        if any(start <= at < end for _, start, end in _placed(schedule.zone, yesterday, usual)):
            return cancelled.closed_reason
    return plan.closed_reason


def _local_time(schedule: Schedule, at: float) -> datetime:
    if not (math.isfinite(at) and EARLIEST <= at <= LATEST):
        raise ValueError(f"at={at!r} is not an instant between 1900 and 3000 (POSIX seconds)")
    return datetime.fromtimestamp(at, schedule.zone)


def _effective(schedule: Schedule, override: Override) -> Override:
    return override if override is not Override.NONE else schedule.override


def decide(schedule: Schedule, at: float, override: Override = Override.NONE) -> Decision:
    """Open or closed at ``at`` (POSIX seconds, UTC), and why.

    ``override`` is the admin switch as it is now; when NONE, the schedule's own applies.
    """
    local = _local_time(schedule, at)
    effective = _effective(schedule, override)
    if effective is not Override.NONE:
        return Decision(effective is not Override.FORCE_CLOSED, _OVERRIDE_REASONS[effective], local)
    today = local.date()
    one_day = timedelta(days=1)
    # Today's own intervals first (for the reason), then last night's, then the odd case of
    # a zone whose clocks go back across midnight into tomorrow's first minutes.
    for day in (today, today - one_day, today + one_day):
        for stretch in _stretches(schedule, day):
            if stretch.start <= at < stretch.end:
                return Decision(True, stretch.reason, local)
    return Decision(False, _closed_reason(schedule, today, at), local)


def next_change(schedule: Schedule, at: float, override: Override = Override.NONE) -> float | None:
    """When ``decide`` next flips from open to closed or back, as POSIX seconds after ``at``.

    None under an override, or when nothing changes within ``SEARCH_DAYS`` days. Intervals
    that touch (12:00 close, 12:00 open) or overlap count as one opening.
    """
    local = _local_time(schedule, at)
    if _effective(schedule, override) is not Override.NONE:
        return None
    horizon = at + SEARCH_DAYS * 86400
    today = local.date()
    stretches: list[_Stretch] = []
    for offset in range(-2, SEARCH_DAYS + 3):  # a margin for overnight and DST
        stretches.extend(_stretches(schedule, today + timedelta(days=offset)))
    for start, end in _merged(stretches):
        if end <= at:
            continue
        flip = end if start <= at else start  # open now: closes at end; else opens at start
        return flip if flip <= horizon else None
    return None


def _merged(stretches: Sequence[_Stretch]) -> Iterator[tuple[float, float]]:
    """Disjoint, non-touching (start, end) spans covering the stretches, in time order."""
    current: tuple[float, float] | None = None
    for stretch in sorted(stretches, key=lambda s: s.start):
        if current is not None and stretch.start <= current[1]:
            current = (current[0], max(current[1], stretch.end))
            continue
        if current is not None:
            yield current
        current = (stretch.start, stretch.end)
    if current is not None:
        yield current


def open_spans(schedule: Schedule, start: float, end: float) -> Iterator[tuple[float, float]]:
    """The schedule's openings that overlap ``[start, end)``, merged, in time order.

    Shared with the outbound calling rules (core/dial_rules.py), which intersect the spans
    of several time zones. Overrides are not applied: the weekly hours, closed dates, special
    hours and holidays are.
    """
    first = _local_time(schedule, start).date()
    last = _local_time(schedule, end).date()
    stretches: list[_Stretch] = []
    for offset in range(-2, (last - first).days + 3):  # a margin for overnight and DST
        stretches.extend(_stretches(schedule, first + timedelta(days=offset)))
    for span_start, span_end in _merged(stretches):
        if span_end > start and span_start < end:
            yield span_start, span_end


def local_instant(wall: datetime, zone: ZoneInfo) -> float:
    """The instant a naive local wall-clock time first shows, or when the clocks jump past it."""
    return _instant(wall, zone)


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class ScheduleProblem:
    """One thing wrong in a schedule.

    ``path`` reads like ``hours.weekly.mon-fri[0]`` (``where`` first, then the keys as the
    admin wrote them, list positions in brackets); ``steps`` are the same keys and positions
    inside the parsed data, for finding the YAML node without parsing the path back.
    """

    path: str
    message: str
    steps: tuple[str | int, ...] = ()

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ScheduleError(ValueError):
    """A schedule is not valid; ``problems`` lists every problem found."""

    def __init__(self, problems: Sequence[ScheduleProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


_TOP_KEYS = ("timezone", "weekly", "holidays", "closed", "special", "override")
_REQUIRED_KEYS = ("timezone", "weekly")
_HOLIDAY_KEYS = ("country", "subdivision")
_WEEKDAY_HELP = "use mon, tue, wed, thu, fri, sat, sun and ranges like mon-fri"

Steps = tuple[str | int, ...]
_Placed = tuple[OpeningHours, Steps]  # parsed hours and where they were written


def parse_schedule(data: Mapping[str, Any], where: str = "hours") -> Schedule:
    """Build a ``Schedule`` from the YAML-shaped mapping, or raise ``ScheduleError``."""
    parser = _Parser(where)
    schedule = parser.schedule(data)
    if parser.problems or schedule is None:
        raise ScheduleError(parser.problems)
    return schedule


def _describe(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a yes/no value)"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, datetime):
        return f"the date and time {value.isoformat()}"
    if isinstance(value, date):
        return f"the date {value}"
    return type(value).__name__


def _key_text(key: object) -> str:
    return str(key) if isinstance(key, str | date) else repr(key)


class _Parser:
    def __init__(self, where: str) -> None:
        self.where = where
        self.problems: list[ScheduleProblem] = []

    def problem(self, steps: Steps, message: str) -> None:
        path = self.where
        for step in steps:
            path += f"[{step}]" if isinstance(step, int) else (f".{step}" if path else step)
        self.problems.append(ScheduleProblem(path, message, steps))

    # -- the whole schedule

    def schedule(self, data: object) -> Schedule | None:
        if not isinstance(data, Mapping):
            self.problem((), f"expected a mapping with timezone and weekly, got {_describe(data)}")
            return None
        for key in data:
            if key not in _TOP_KEYS:
                known = ", ".join(_TOP_KEYS)
                self.problem((_key_text(key),), f"unknown key {key!r} (known: {known})")
        for key in _REQUIRED_KEYS:
            if key not in data:
                self.problem((), f"missing required key {key!r}")
        timezone = self.timezone(data["timezone"]) if "timezone" in data else None
        weekly = self.weekly(data["weekly"]) if "weekly" in data else ((),) * 7
        region = self.holiday_region(data["holidays"]) if "holidays" in data else None
        closed = self.closed(data["closed"]) if "closed" in data else ()
        special = self.special(data["special"]) if "special" in data else {}
        override = self.override(data["override"]) if "override" in data else Override.NONE
        if self.problems or timezone is None:
            return None
        return Schedule(
            timezone=timezone,
            weekly=weekly,
            holidays=region,
            closed=closed,
            special=MappingProxyType(special),
            override=override,
        )

    def timezone(self, value: object) -> str | None:
        if not isinstance(value, str) or not value:
            self.problem(
                ("timezone",),
                f"expected a time zone like 'America/Sao_Paulo', got {_describe(value)}",
            )
            return None
        problem = zone_problem(value)
        if problem is not None:
            self.problem(("timezone",), problem)
            return None
        return value

    def override(self, value: object) -> Override:
        choices = ", ".join(o.value for o in Override)
        if isinstance(value, str) and value in {o.value for o in Override}:
            return Override(value)
        self.problem(("override",), f"unknown override {_describe(value)} (one of: {choices})")
        return Override.NONE

    # -- weekly hours

    def weekly(self, value: object) -> tuple[tuple[OpeningHours, ...], ...]:
        steps: Steps = ("weekly",)
        days: list[list[_Placed]] = [[] for _ in WEEKDAYS]
        if not isinstance(value, Mapping):
            self.problem(
                steps,
                "expected weekdays with their opening hours, like "
                f"{{mon-fri: [{_HOURS_EXAMPLE}]}}, got {_describe(value)}",
            )
            return ((),) * 7
        given_by: dict[int, str] = {}
        for key, hours_value in value.items():
            key_steps = (*steps, _key_text(key))
            weekdays = self.weekdays(key, key_steps)
            placed = self.hours_list(hours_value, key_steps)
            for weekday in weekdays:
                if weekday in given_by:
                    self.problem(
                        key_steps,
                        f"{WEEKDAYS[weekday]} already has hours from {given_by[weekday]!r}",
                    )
                    continue
                given_by[weekday] = _key_text(key)
                days[weekday] = placed
        self.overnight_overlaps(days)
        return tuple(tuple(hours for hours, _ in day) for day in days)

    def weekdays(self, key: object, steps: Steps) -> list[int]:
        if not isinstance(key, str):
            self.problem(steps, f"{_describe(key)} is not a weekday ({_WEEKDAY_HELP})")
            return []
        found: list[int] = []
        for part in key.split(","):
            names = [name.strip().lower() for name in part.split("-")]
            unknown = [name for name in names if name not in WEEKDAYS]
            if unknown or len(names) > 2:
                bad = unknown[0] if unknown else part.strip()
                self.problem(steps, f"unknown weekday {bad!r} in {key!r} ({_WEEKDAY_HELP})")
                return []
            first, last = WEEKDAYS.index(names[0]), WEEKDAYS.index(names[-1])
            day = first
            while True:  # ranges may wrap past Sunday: sun-thu, fri-mon
                if day in found:
                    self.problem(steps, f"{WEEKDAYS[day]} appears twice in {key!r}")
                    return []
                found.append(day)
                if day == last:
                    break
                day = (day + 1) % len(WEEKDAYS)
        return found

    def hours_list(self, value: object, steps: Steps) -> list[_Placed]:
        if not isinstance(value, list | tuple):
            self.problem(
                steps,
                f"expected a list of opening hours like [{_HOURS_EXAMPLE}] ([] for closed), "
                f"got {_describe(value)}",
            )
            return []
        placed: list[_Placed] = []
        for index, item in enumerate(value):
            item_steps = (*steps, index)
            if not isinstance(item, str):
                quote = (
                    "; put times in quotes, YAML reads 9:30 as a number"
                    if isinstance(item, int) and not isinstance(item, bool)
                    else ""
                )
                self.problem(
                    item_steps,
                    f"expected opening hours like {_HOURS_EXAMPLE}, got {_describe(item)}{quote}",
                )
                continue
            try:
                placed.append((OpeningHours.parse(item), item_steps))
            except ValueError as error:
                self.problem(item_steps, str(error))
        latest: OpeningHours | None = None  # the interval reaching furthest so far
        for hours, item_steps in sorted(placed, key=lambda p: p[0].opens):
            if latest is not None and hours.opens < latest.end:
                self.problem(item_steps, f"{hours} overlaps {latest}")
            if latest is None or hours.end > latest.end:
                latest = hours
        return placed

    def overnight_overlaps(self, days: list[list[_Placed]]) -> None:
        """A night interval must not run into the next day's own hours."""
        reported: set[tuple[Steps, Steps]] = set()
        for weekday, day in enumerate(days):
            following = days[(weekday + 1) % len(WEEKDAYS)]
            for night, night_steps in day:
                if not night.crosses_midnight:
                    continue
                for hours, steps in following:
                    if hours.opens < night.closes and (steps, night_steps) not in reported:
                        reported.add((steps, night_steps))
                        self.problem(
                            steps,
                            f"{hours} overlaps {WEEKDAYS[weekday]} {night}, "
                            "which runs past midnight",
                        )

    # -- holidays, closed dates, special hours

    def holiday_region(self, value: object) -> HolidayRegion | None:
        steps: Steps = ("holidays",)
        if not isinstance(value, Mapping):
            self.problem(
                steps,
                f"expected {{country: XX}} with an optional subdivision, got {_describe(value)}",
            )
            return None
        for key in value:
            if key not in _HOLIDAY_KEYS:
                known = ", ".join(_HOLIDAY_KEYS)
                self.problem((*steps, _key_text(key)), f"unknown key {key!r} (known: {known})")
        if "country" not in value:
            self.problem(steps, "missing required key 'country'")
            return None
        country = value["country"]
        subdivision = value.get("subdivision")
        if not isinstance(country, str):
            self.problem((*steps, "country"), f"expected a country code, got {_describe(country)}")
            return None
        if subdivision is not None and not isinstance(subdivision, str):
            self.problem(
                (*steps, "subdivision"),
                f"expected a subdivision code in quotes, got {_describe(subdivision)}",
            )
            return None
        problem = _holiday_region_problem(country, subdivision)
        if problem is not None:
            key, message = problem
            self.problem((*steps, key), message)
            return None
        return HolidayRegion(country, subdivision)

    def day(self, value: object, steps: Steps) -> date | None:
        if isinstance(value, date) and not isinstance(value, datetime):
            return value  # YAML reads an unquoted 2026-12-25 as a date
        if isinstance(value, str):
            try:
                return _parse_date(value.strip())
            except ValueError as error:
                self.problem(steps, str(error))
                return None
        self.problem(steps, f"expected a date (YYYY-MM-DD), got {_describe(value)}")
        return None

    def closed(self, value: object) -> tuple[DateRange, ...]:
        steps: Steps = ("closed",)
        if not isinstance(value, list | tuple):
            self.problem(
                steps,
                "expected a list of dates like '2026-12-25' and ranges like "
                f"'2026-12-24..2026-12-26', got {_describe(value)}",
            )
            return ()
        ranges: list[DateRange] = []
        for index, item in enumerate(value):
            item_steps = (*steps, index)
            if isinstance(item, str) and ".." in item:
                try:
                    ranges.append(DateRange.parse(item))
                except ValueError as error:
                    self.problem(item_steps, str(error))
                continue
            day = self.day(item, item_steps)
            if day is not None:
                ranges.append(DateRange(day, day))
        return tuple(ranges)

    def special(self, value: object) -> dict[date, tuple[OpeningHours, ...]]:
        steps: Steps = ("special",)
        if not isinstance(value, Mapping):
            self.problem(
                steps,
                f"expected dates with their opening hours, like "
                f"{{'2026-12-24': [{_HOURS_EXAMPLE}]}}, got {_describe(value)}",
            )
            return {}
        special: dict[date, tuple[OpeningHours, ...]] = {}
        for key, hours_value in value.items():
            key_steps = (*steps, _key_text(key))
            day = self.day(key, key_steps)
            placed = self.hours_list(hours_value, key_steps)
            if isinstance(hours_value, list | tuple) and not hours_value:
                self.problem(key_steps, "no hours given; to close that day list it under closed")
                continue
            if day is None:
                continue
            if day in special:
                self.problem(key_steps, f"{day} has special hours twice")
                continue
            special[day] = tuple(hours for hours, _ in placed)
        return special
