"""Outbound: may this number be dialed now, and if not, why and from when.

Pure: the instant comes in as POSIX seconds, and the number's state (where the callee is, its
past attempts, do-not-call listings, consent records) as values read at dial time; nothing
here reads a clock or a store. The dialer asks ``may_dial`` right before every call, so a
do-not-call request or a consent revocation stored a second ago is already honoured.

What refuses, strongest first (the first that applies is the answer):

1. the number is on a do-not-call list (global or the campaign's);
2. the campaign needs consent and there is none for its scope, or it was revoked (a
   revocation wins over every grant made before it, or at the same second);
3. an earlier call ended in a final outcome (a person answered and the agent's disposition
   is final or "do not call"; a person answered and there is no disposition yet);
4. the number has had ``max_attempts`` calls already;
5. the retry delay of the last attempt's outcome (or the agent's "call back at" time, which
   replaces it) has not passed yet;
6. a public holiday in one of the callee's places;
7. outside the calling hours in one of the callee's places.

The calling hours are wall-clock hours per weekday in the CALLEE's time zone. A number whose
region spans several time zones lists them all, and each must be inside hours (the
strictest reading). The hours follow core/hours.py's rules: open at the opening time, closed
from the closing time on, a time skipped by a DST jump opens at the jump, a repeated time
means its first occurrence. Refusals 5-7 also say the next instant at which the number may be
called (for scheduling retries and callbacks): asked again at that instant with the same
history, the answer is "allowed", and at no instant in between would it have been.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from functools import lru_cache
from types import MappingProxyType
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from callcenter.core.consent import ConsentEntry, consent_now
from callcenter.core.hours import (
    WEEKDAYS,
    HolidayRegion,
    OpeningHours,
    Schedule,
    ScheduleError,
    decide,
    local_instant,
    open_spans,
    parse_schedule,
)
from callcenter.core.identifiers import E164_NUMBER

# Defaults after the US TCPA / Telemarketing Sales Rule (../shared/DOMAIN.md): every one is
# a campaign setting, because other countries differ.
MIN_RING_TIME = 15.0  # seconds: at least 15 s or 4 rings before giving up on an unanswered call
DEFAULT_RING_TIME = 20.0  # a margin over the minimum: carriers count rings differently
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_CALLING_HOURS: tuple[tuple[OpeningHours, ...], ...] = (
    (OpeningHours(8 * 60, 21 * 60),),  # 08:00-21:00 in the callee's local time, every day
) * 7

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0
# How far ahead the next allowed time is looked for: a year and a bit covers any weekly
# pattern with its holidays. A first short window keeps the common case (open later today
# or tomorrow) cheap.
SEARCH_HORIZON = 400 * DAY
_FIRST_WINDOW = 3 * DAY
_WINDOW = 31 * DAY


class Outcome(Enum):
    """How one call attempt ended, from the hangup cause and the AMD result."""

    BUSY = "busy"
    NO_ANSWER = "no_answer"  # rang for the whole ring time
    MACHINE = "machine"  # answering machine (AMD)
    FAILED = "failed"  # congestion, the trunk refused or failed the call
    DROPPED = "dropped"  # answered, then hung up before an agent (abandoned included)
    HUMAN = "human"  # a person talked to an agent: the disposition says what comes next


DEFAULT_RETRY_DELAYS: Mapping[Outcome, float] = MappingProxyType(
    {
        Outcome.BUSY: 15 * MINUTE,  # on the phone now; likely free soon
        Outcome.NO_ANSWER: 1 * HOUR,
        Outcome.MACHINE: 4 * HOUR,  # away; try at another time of day
        Outcome.FAILED: 30 * MINUTE,  # a network problem, not the callee
        Outcome.DROPPED: 1 * HOUR,  # hung up on us (or we abandoned them): not right away
        Outcome.HUMAN: 4 * HOUR,  # a "retry" disposition without a call-back time
    }
)


class DispositionKind(Enum):
    """What an agent's disposition means for the number (each disposition says which)."""

    FINAL = "final"  # sale, not interested, wrong number, ...: never called again
    RETRY = "retry"  # call back (at a time, or after the HUMAN retry delay)
    DO_NOT_CALL = "do_not_call"  # never called again (and added to the do-not-call list)


@dataclass(frozen=True)
class Disposition:
    name: str  # as the campaign calls it: "sale", "call_back", "wrong_number", ...
    kind: DispositionKind
    label: str = ""  # what agents read ("Call back"); the name when empty


@dataclass(frozen=True)
class Attempt:
    """One past call to the number.

    ``call_back_at`` is the agent's "call back at" (build it with ``call_back_time`` from the
    wall-clock time in the callee's zone): it replaces the outcome's retry delay, and the
    call still waits for the calling hours.
    """

    ended_at: float  # POSIX seconds
    outcome: Outcome
    disposition: Disposition | None = None
    call_back_at: float | None = None

    def __post_init__(self) -> None:
        _check_instant("ended_at", self.ended_at)
        if self.call_back_at is not None:
            _check_instant("call_back_at", self.call_back_at)

    @property
    def final_reason(self) -> str | None:
        """Why this attempt ends the number's calls for good, or None."""
        if self.disposition is not None and self.disposition.kind is not DispositionKind.RETRY:
            return f"disposition {self.disposition.name!r} ({self.disposition.kind.value})"
        if self.outcome is Outcome.HUMAN and self.disposition is None:
            return "answered by a person, disposition not set yet"
        return None


class DncList(Enum):
    GLOBAL = "global"
    CAMPAIGN = "campaign"




@dataclass(frozen=True)
class CalleePlace:
    """One place the callee may be: a time zone, and whose public holidays apply there."""

    zone: str  # IANA key, e.g. "America/Sao_Paulo"
    holidays: HolidayRegion | None = None  # e.g. HolidayRegion("BR", "SP")

    def __post_init__(self) -> None:
        Schedule(timezone=self.zone)  # raises ValueError naming an unknown zone


@dataclass(frozen=True)
class NumberStatus:
    """Everything known about one number at dial time."""

    places: tuple[CalleePlace, ...]  # one, or several when the number's region spans zones
    attempts: tuple[Attempt, ...] = ()
    do_not_call: frozenset[DncList] = frozenset()
    consent: tuple[ConsentEntry, ...] = ()  # the number's ledger entries (core/consent.py)

    def __post_init__(self) -> None:
        if not self.places:
            raise ValueError("places: a number needs at least one time zone")
        object.__setattr__(self, "places", tuple(self.places))
        object.__setattr__(self, "attempts", tuple(self.attempts))
        object.__setattr__(self, "do_not_call", frozenset(self.do_not_call))
        object.__setattr__(self, "consent", tuple(self.consent))


# --------------------------------------------------------------------------- the settings


@dataclass(frozen=True)
class RulesProblem:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class CallingRulesError(ValueError):
    """A campaign's calling rules are not valid; ``problems`` names each field."""

    def __init__(self, problems: Sequence[RulesProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def _no_delays() -> Mapping[Outcome, float]:
    return DEFAULT_RETRY_DELAYS


@dataclass(frozen=True)
class CallingRules:
    """One campaign's rules on whom it may call and when. Invalid values raise
    ``CallingRulesError`` listing every problem by field name.

    ``retry_delays`` may name only some outcomes; the others keep their defaults.
    ``consent_scope`` set means the campaign calls only numbers with recorded consent for it.
    """

    caller_id: str  # E.164; always sent
    calling_hours: tuple[tuple[OpeningHours, ...], ...] = DEFAULT_CALLING_HOURS  # Monday first
    ring_time: float = DEFAULT_RING_TIME  # seconds
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    retry_delays: Mapping[Outcome, float] = field(default_factory=_no_delays, hash=False)
    consent_scope: str | None = None

    def __post_init__(self) -> None:
        problems: list[RulesProblem] = []

        def problem(name: str, message: str) -> None:
            problems.append(RulesProblem(name, message))

        if not isinstance(self.caller_id, str) or not self.caller_id.strip():
            problem("caller_id", "required: every outbound call sends a caller ID")
        elif not E164_NUMBER.fullmatch(self.caller_id):
            shown = self.caller_id[:60]
            problem("caller_id", f"{shown!r} is not {E164_NUMBER.what} ({E164_NUMBER.wording})")
        if _not_a_number(self.ring_time):
            problem("ring_time", f"expected seconds, got {self.ring_time!r}")
        elif self.ring_time < MIN_RING_TIME:
            problem(
                "ring_time",
                f"{self.ring_time:g} s is too short: an unanswered call rings at least "
                f"{MIN_RING_TIME:g} s (4 rings)",
            )
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            problem("max_attempts", f"expected a whole number, got {self.max_attempts!r}")
        elif self.max_attempts < 1:
            problem("max_attempts", f"{self.max_attempts} must be 1 or more")
        if len(self.calling_hours) != len(WEEKDAYS):
            problem("calling_hours", f"need 7 days (Monday first), got {len(self.calling_hours)}")
        elif not any(self.calling_hours):
            problem("calling_hours", "no calling hours on any day: nobody could ever be called")
        delays = dict(DEFAULT_RETRY_DELAYS)
        for outcome, delay in self.retry_delays.items():
            where = f"retry_delays.{getattr(outcome, 'value', outcome)}"
            if not isinstance(outcome, Outcome):
                known = ", ".join(o.value for o in Outcome)
                problem(where, f"unknown outcome (known: {known})")
            elif _not_a_number(delay) or delay < 0:
                problem(where, f"expected seconds (0 or more), got {delay!r}")
            else:
                delays[outcome] = float(delay)
        if self.consent_scope is not None and not (
            isinstance(self.consent_scope, str) and self.consent_scope.strip()
        ):
            problem("consent_scope", "must name the scope, or be left out for no consent rule")
        if problems:
            raise CallingRulesError(problems)
        object.__setattr__(self, "retry_delays", MappingProxyType(delays))
        object.__setattr__(self, "calling_hours", tuple(tuple(d) for d in self.calling_hours))

    def retry_delay(self, outcome: Outcome) -> float:
        return self.retry_delays[outcome]


def _not_a_number(value: object) -> bool:
    return isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)


def parse_calling_hours(value: Any) -> tuple[tuple[OpeningHours, ...], ...]:
    """``{"mon-fri": ["09:00-20:00"], "sat": ["10:00-16:00"]}`` as weekly hours, Monday first.

    Read with core/hours.py's weekly rules (ranges like mon-fri, several intervals per day,
    no overlaps); days not listed are not called. Raises ``CallingRulesError`` naming each
    wrong entry (``calling_hours.sat[0]: ...``).
    """
    try:
        return parse_schedule({"timezone": "UTC", "weekly": value}, where="").weekly
    except ScheduleError as error:
        raise CallingRulesError(
            [
                RulesProblem(p.path.replace("weekly", "calling_hours", 1), p.message)
                for p in error.problems
            ]
        ) from None


def call_back_time(wall: datetime, zone: str) -> float:
    """The agent's "call back at" (a wall-clock time in the callee's zone) as POSIX seconds.

    A time the clocks skip means the moment of the jump; a repeated time its first occurrence.
    """
    if wall.tzinfo is not None:
        raise ValueError("call back at: give the wall-clock time without a time zone")
    return local_instant(wall, Schedule(timezone=zone).zone)


# --------------------------------------------------------------------------- the answers


class Decision:
    """Base of every answer; ``allowed`` says which kind it is."""

    allowed: ClassVar[bool] = False
    next_allowed_at: float | None = None

    @property
    def reason(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Allowed(Decision):
    allowed: ClassVar[bool] = True
    at: float

    @property
    def reason(self) -> str:
        return "allowed"


@dataclass(frozen=True)
class OnDoNotCallList(Decision):
    lists: frozenset[DncList]

    @property
    def reason(self) -> str:
        names = " and ".join(sorted(f"the {dnc.value}" for dnc in self.lists))
        return f"on {names} do-not-call list"


@dataclass(frozen=True)
class NoConsent(Decision):
    scope: str

    @property
    def reason(self) -> str:
        return f"no recorded consent for {self.scope!r}"


@dataclass(frozen=True)
class ConsentWithdrawn(Decision):
    scope: str
    revoked_at: float

    @property
    def reason(self) -> str:
        return f"consent for {self.scope!r} revoked at {_utc_text(self.revoked_at)}"


@dataclass(frozen=True)
class FinalOutcome(Decision):
    why: str
    attempt_ended_at: float

    @property
    def reason(self) -> str:
        return f"final outcome: {self.why} (call ended {_utc_text(self.attempt_ended_at)})"


@dataclass(frozen=True)
class MaxAttemptsReached(Decision):
    attempts: int
    max_attempts: int

    @property
    def reason(self) -> str:
        return f"called {self.attempts} times already (at most {self.max_attempts})"


@dataclass(frozen=True)
class RetryNotDue(Decision):
    due_at: float  # the retry delay or call-back time; calling hours may push it further
    next_allowed_at: float | None

    @property
    def reason(self) -> str:
        return f"retry not due until {_utc_text(self.due_at)}{_next_text(self.next_allowed_at)}"


@dataclass(frozen=True)
class Holiday(Decision):
    name: str
    zone: str
    next_allowed_at: float | None

    @property
    def reason(self) -> str:
        return f"public holiday in {self.zone}: {self.name}{_next_text(self.next_allowed_at)}"


@dataclass(frozen=True)
class OutsideHours(Decision):
    zone: str  # one of the callee's zones that is outside the calling hours now
    local_time: datetime
    next_allowed_at: float | None  # None: no time within SEARCH_HORIZON suits every zone

    @property
    def reason(self) -> str:
        local = self.local_time.strftime("%a %H:%M")
        return f"outside calling hours in {self.zone} ({local}){_next_text(self.next_allowed_at)}"


def _utc_text(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _next_text(at: float | None) -> str:
    return "; no allowed time ahead" if at is None else f"; next allowed {_utc_text(at)}"


# --------------------------------------------------------------------------- deciding


def may_dial(rules: CallingRules, number: NumberStatus, at: float) -> Decision:
    """Whether ``number`` may be dialed at ``at`` (POSIX seconds) under ``rules``, and why not."""
    _check_instant("at", at)
    if number.do_not_call:
        return OnDoNotCallList(number.do_not_call)
    if rules.consent_scope is not None:
        refused = _consent_refusal(rules.consent_scope, number.consent, at)
        if refused is not None:
            return refused
    for attempt in number.attempts:
        why = attempt.final_reason
        if why is not None:
            return FinalOutcome(why, attempt.ended_at)
    if len(number.attempts) >= rules.max_attempts:
        return MaxAttemptsReached(len(number.attempts), rules.max_attempts)
    schedules = _schedules(rules.calling_hours, number.places)
    due = _retry_due(rules, number.attempts)
    if due is not None and at < due:
        return RetryNotDue(due, _first_allowed(schedules, due))
    next_allowed = _first_allowed(schedules, at)
    if next_allowed == at:
        return Allowed(at)
    return _closed_refusal(rules, number.places, at, next_allowed)


def next_allowed_time(rules: CallingRules, number: NumberStatus, at: float) -> float | None:
    """The first instant from ``at`` on at which ``may_dial`` allows the number, if any."""
    decision = may_dial(rules, number, at)
    return at if decision.allowed else decision.next_allowed_at


def _consent_refusal(scope: str, records: Sequence[ConsentEntry], at: float
                     ) -> Decision | None:
    now = consent_now(records, scope, at)
    if now.revoked:
        assert now.entry is not None
        return ConsentWithdrawn(scope, now.entry.at)
    return None if now.granted else NoConsent(scope)


def _retry_due(rules: CallingRules, attempts: Sequence[Attempt]) -> float | None:
    if not attempts:
        return None
    last = max(attempts, key=lambda attempt: attempt.ended_at)
    if last.call_back_at is not None:
        return last.call_back_at
    return last.ended_at + rules.retry_delay(last.outcome)


@lru_cache(maxsize=4096)
def _schedule(
    hours: tuple[tuple[OpeningHours, ...], ...], place: CalleePlace, with_holidays: bool
) -> Schedule:
    return Schedule(
        timezone=place.zone, weekly=hours, holidays=place.holidays if with_holidays else None
    )


def _schedules(
    hours: tuple[tuple[OpeningHours, ...], ...], places: Sequence[CalleePlace]
) -> list[Schedule]:
    return [_schedule(hours, place, True) for place in places]


def _first_allowed(schedules: Sequence[Schedule], start: float) -> float | None:
    """The first instant from ``start`` on inside every schedule's hours, or None."""
    window_start = start
    window_end = start + _FIRST_WINDOW
    while window_start < start + SEARCH_HORIZON:
        for span_start, span_end in _common_spans(schedules, window_start, window_end):
            if span_end > start:
                return max(span_start, start)
        window_start, window_end = window_end, window_end + _WINDOW
    return None


def _common_spans(
    schedules: Sequence[Schedule], start: float, end: float
) -> Iterator[tuple[float, float]]:
    """Where every schedule is open, among their openings that overlap ``[start, end)``."""
    common = [(-math.inf, math.inf)]
    for schedule in schedules:
        common = list(_intersect(common, list(open_spans(schedule, start, end))))
        if not common:
            break
    return iter(common)


def _intersect(
    first: Sequence[tuple[float, float]], second: Sequence[tuple[float, float]]
) -> Iterator[tuple[float, float]]:
    """The overlaps of two sorted lists of disjoint spans (the classic two-pointer merge)."""
    i = j = 0
    while i < len(first) and j < len(second):
        start = max(first[i][0], second[j][0])
        end = min(first[i][1], second[j][1])
        if start < end:
            yield start, end
        if first[i][1] < second[j][1]:
            i += 1
        else:
            j += 1


def _closed_refusal(
    rules: CallingRules, places: Sequence[CalleePlace], at: float, next_allowed: float | None
) -> Decision:
    """Which place is closed at ``at``: a holiday there is named before plain hours."""
    closed: CalleePlace | None = None
    for place in places:
        if decide(_schedule(rules.calling_hours, place, True), at).open:
            continue
        if (
            place.holidays is not None
            and decide(_schedule(rules.calling_hours, place, False), at).open
        ):
            return Holiday(_holiday_name(place, at), place.zone, next_allowed)
        closed = closed or place
    # Every place open on its own but never together cannot happen at one instant; the
    # fallback keeps the answer honest if it ever did.
    place = closed or places[0]
    local = datetime.fromtimestamp(at, ZoneInfo(place.zone))
    return OutsideHours(place.zone, local, next_allowed)


def _holiday_name(place: CalleePlace, at: float) -> str:
    """The holiday that closed ``place``: today's, or yesterday's for a night it cancelled."""
    assert place.holidays is not None
    today = datetime.fromtimestamp(at, ZoneInfo(place.zone)).date()
    return (
        place.holidays.name_on(today)
        or place.holidays.name_on(today - timedelta(days=1))
        or "public holiday"
    )


def _check_instant(name: str, value: float) -> None:
    if _not_a_number(value):
        raise ValueError(f"{name}: expected POSIX seconds, got {value!r}")
