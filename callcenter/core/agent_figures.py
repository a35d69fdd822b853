"""Agents' figures per 15-minute UTC bucket (issue 14's agent reports), pure.

Two sources feed them, each into its own counters:

- the state log (``agent_state_changes``): the time between one change and the next is
  spent in the first change's state; it is split over the 15-minute buckets it crosses
  (``state_time``). Paused time keeps its reason; other states do not (a login's "login"
  reason is not a kind of time). The last change of an agent opens a span that has no end
  yet: it is not in the aggregates, and a report adds it up to "now" (``open_span_time``).
- the call records: each answered agent leg is a call handled (in the bucket of its answer),
  each completed transfer an agent made counts for them (in the bucket it was asked for),
  holds are hold time, and each counts productivity points (``call_credits``). Campaign
  dispositions give points too, in the bucket the agent disposed the call
  (``disposition_credit``).

Times are whole microseconds (``micros``): sums of integers do not depend on their order,
so figures kept up to date piece by piece equal a rebuild from the raw data exactly.

The figures (DOMAIN.md "Figures"), from the sums over any set of buckets:

    handle      = on call + wrap-up            (talk + hold + wrap-up; hold is part of a call)
    talk        = on call - hold
    idle        = ready + ringing              (logged in, not paused, not working a call)
    occupancy   = handle / (handle + idle)     paused time is in neither
    utilisation = handle / logged in           logged in: every state but logged_out
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from callcenter.core.acd_actions import AgentState
from callcenter.core.agent_intervals import agent_intervals
from callcenter.core.records import CallRecord, Direction, HoldBy, TransferOutcome

BUCKET_SECONDS = 900
MICROS = 1_000_000
BUCKET_MICROS = BUCKET_SECONDS * MICROS
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICRO = timedelta(microseconds=1)

# The states an agent's time is counted in, as columns; paused time is further by reason.
WORK_STATES = (AgentState.READY, AgentState.RINGING, AgentState.ON_CALL, AgentState.WRAP_UP)


def micros(seconds: float) -> int:
    """POSIX seconds to whole microseconds (what the database keeps of a time)."""
    return round(seconds * MICROS)


def micros_of(value: datetime) -> int:
    """An aware (or naive UTC) datetime to whole microseconds since the epoch, exactly."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // _ONE_MICRO


def bucket_of(at_micros: int) -> int:
    """The start of the 15-minute UTC bucket holding this instant (microseconds)."""
    return at_micros - at_micros % BUCKET_MICROS


# --------------------------------------------------------------------------- state time


@dataclass(frozen=True, slots=True)
class LoggedChange:
    """One stored state change: enough to lay an agent's time out. Its time is in whole
    microseconds, and ``agent_intervals`` (core/agent_intervals.py) takes it as it is:
    integers compare and subtract exactly."""

    agent_id: str
    at: int
    state: str
    reason: str | None
    previous: str = AgentState.LOGGED_OUT.value


@dataclass(frozen=True, slots=True)
class StateKey:
    """One counter of agent time: an agent, a bucket, a state and (paused only) a reason."""

    agent_id: str
    bucket: int  # microseconds
    state: str
    reason: str = ""


def add_span(totals: dict[StateKey, int], agent_id: str, state: str, reason: str | None,
             start: int, end: int) -> None:
    """Add the time [start, end) in ``state`` to the buckets it crosses."""
    if state == AgentState.LOGGED_OUT or end <= start:
        return  # logged-out time is nobody's time
    kept_reason = (reason or "") if state == AgentState.PAUSED else ""
    bucket = bucket_of(start)
    while bucket < end:
        piece = min(end, bucket + BUCKET_MICROS) - max(start, bucket)
        if piece > 0:
            key = StateKey(agent_id, bucket, state, kept_reason)
            totals[key] = totals.get(key, 0) + piece
        bucket += BUCKET_MICROS


def _add_intervals(totals: dict[StateKey, int], changes: Sequence[LoggedChange],
                   since: int, until: int) -> None:
    for interval in agent_intervals(changes, since, until, until):
        add_span(totals, interval.agent_id, interval.state, interval.reason,
                 int(interval.start), int(interval.end))


def state_time(changes: Sequence[LoggedChange], *, since: int | None = None,
               ) -> dict[StateKey, int]:
    """The time between the first and the last of these changes (of ONE agent, in logged
    order), per bucket, state and reason; with ``since`` (a bucket start), only from then on.
    Nothing is known before the first change, and the last one's state has no end yet."""
    totals: dict[StateKey, int] = {}
    if changes:
        start = changes[0].at if since is None else max(since, changes[0].at)
        if changes[-1].at > start:
            _add_intervals(totals, changes, start, changes[-1].at)
    return totals


def open_span_time(last: LoggedChange, until: int) -> dict[StateKey, int]:
    """The time from an agent's last change (no later one yet) to ``until``: what the
    aggregates cannot hold yet and a report of the present adds."""
    totals: dict[StateKey, int] = {}
    if until > last.at:
        _add_intervals(totals, [last], last.at, until)
    return totals


# --------------------------------------------------------------------------- productivity


@dataclass(frozen=True)
class ProductivityPoints:
    """Points an agent earns, for productivity-based pay (whole numbers, may be negative:
    a campaign can take points off for a disposition it wants less of).

    ``inbound_call`` / ``outbound_call``: each call the agent answered (handled);
    ``transfer``: each transfer they made that the target took; ``dispositions``: each
    campaign call they disposed with that name (say ``sale = 10``)."""

    inbound_call: int = 1
    outbound_call: int = 1
    transfer: int = 0
    dispositions: Mapping[str, int] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        for name in ("inbound_call", "outbound_call", "transfer"):
            _whole(f"productivity.{name}", getattr(self, name))
        for name, points in self.dispositions.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"productivity.dispositions: {name!r} is not a name")
            _whole(f"productivity.dispositions[{name!r}]", points)
        object.__setattr__(self, "dispositions", MappingProxyType(dict(self.dispositions)))

    def for_call(self, direction: Direction) -> int:
        return self.outbound_call if direction is Direction.OUTBOUND else self.inbound_call

    def for_disposition(self, name: str) -> int:
        return self.dispositions.get(name, 0)


DISPOSITION_POINTS_RE = re.compile(r"(?P<name>[a-z][a-z0-9_]{0,31})=(?P<points>-?[0-9]{1,7})")


def points_from_settings(inbound_call: int, outbound_call: int, transfer: int,
                         dispositions: Sequence[str]) -> ProductivityPoints:
    """``[reports] points_*`` as ``ProductivityPoints``; ValueError naming the bad key."""
    per_disposition: dict[str, int] = {}
    for index, text in enumerate(dispositions):
        where = f"reports.points_dispositions[{index}]"
        found = DISPOSITION_POINTS_RE.fullmatch(text.strip())
        if found is None:
            raise ValueError(f"{where}: {text[:40]!r} is not name=points (e.g. sale=10)")
        if found["name"] in per_disposition:
            raise ValueError(f"{where}: {found['name']!r} is given twice")
        per_disposition[found["name"]] = int(found["points"])
    try:
        return ProductivityPoints(inbound_call, outbound_call, transfer, per_disposition)
    except ValueError as exc:
        raise ValueError(f"reports.points_{str(exc).removeprefix('productivity.')}") from None


def _whole(where: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > 1_000_000:
        raise ValueError(f"{where}: {value!r} is not a whole number of points "
                         "(-1000000 to 1000000)")


# --------------------------------------------------------------------------- call credits


@dataclass(frozen=True, slots=True)
class CallCredit:
    """What one call (or one disposition) adds to one agent's bucket."""

    agent_id: str
    bucket: int  # microseconds
    handled: int = 0
    transfers: int = 0
    points: int = 0
    hold: int = 0  # microseconds

    def plus(self, other: CallCredit) -> CallCredit:
        return CallCredit(self.agent_id, self.bucket, self.handled + other.handled,
                          self.transfers + other.transfers, self.points + other.points,
                          self.hold + other.hold)


def holds(record: CallRecord) -> Iterable[tuple[str, float, float]]:
    """(agent, start, end) of each time an agent held this caller: the one place hold time
    is read from a record. A hold still open ends with the call (an open record: not yet
    counted). A caller who held the agent is no agent's hold time."""
    for hold in record.holds:
        end = hold.ended_at if hold.ended_at is not None else record.ended_at
        if hold.held_by is HoldBy.AGENT and hold.agent_id and end is not None:
            yield hold.agent_id, hold.started_at, end


def call_credits(record: CallRecord, points: ProductivityPoints) -> list[CallCredit]:
    """Per agent and bucket: calls handled (an answered leg, at its answer), completed
    transfers made (when asked for), hold time, and the points for those. Open records
    count what already happened; storing the record again replaces it all."""
    credits: dict[tuple[str, int], CallCredit] = {}

    def add(credit: CallCredit) -> None:
        key = (credit.agent_id, credit.bucket)
        credits[key] = credits[key].plus(credit) if key in credits else credit

    per_call = points.for_call(record.direction)
    for attempt in record.attempts:
        if attempt.answered_at is not None:
            add(CallCredit(attempt.agent_id, bucket_of(micros(attempt.answered_at)),
                           handled=1, points=per_call))
    for transfer in record.transfers:
        if transfer.outcome is TransferOutcome.COMPLETED:
            add(CallCredit(transfer.from_agent, bucket_of(micros(transfer.requested_at)),
                           transfers=1, points=points.transfer))
    for agent_id, start, end in holds(record):
        span: dict[StateKey, int] = {}
        add_span(span, agent_id, AgentState.ON_CALL, None, micros(start), micros(end))
        for key, seconds in span.items():
            add(CallCredit(agent_id, key.bucket, hold=seconds))
    return sorted(credits.values(), key=lambda c: (c.agent_id, c.bucket))


def disposition_credit(agent_id: str, disposition: str, disposed_at: float,
                       points: ProductivityPoints) -> CallCredit:
    """The points one campaign disposition earns the agent whose call it was."""
    return CallCredit(agent_id, bucket_of(micros(disposed_at)),
                      points=points.for_disposition(disposition))


# --------------------------------------------------------------------------- the figures


@dataclass
class AgentTotals:
    """Sums over a set of buckets (times in microseconds) and the figures made from them."""

    ready: int = 0
    ringing: int = 0
    on_call: int = 0
    wrap_up: int = 0
    paused: dict[str, int] = field(default_factory=dict)  # by reason ("" when none given)
    hold: int = 0
    handled: int = 0
    transfers: int = 0
    points: int = 0

    def add_state(self, state: str, reason: str, amount: int) -> None:
        if state == AgentState.PAUSED:
            self.paused[reason] = self.paused.get(reason, 0) + amount
        elif state in WORK_STATES:
            setattr(self, str(state), getattr(self, str(state)) + amount)
        # Unknown states (written by a newer version): counted in no column.

    def add_credit(self, handled: int, transfers: int, points: int, hold: int) -> None:
        self.handled += handled
        self.transfers += transfers
        self.points += points
        self.hold += hold

    def merge(self, other: AgentTotals) -> None:
        for name in ("ready", "ringing", "on_call", "wrap_up"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, amount in other.paused.items():
            self.paused[reason] = self.paused.get(reason, 0) + amount
        self.add_credit(other.handled, other.transfers, other.points, other.hold)

    @property
    def paused_total(self) -> int:
        return sum(self.paused.values())

    @property
    def logged_in(self) -> int:
        return self.ready + self.ringing + self.on_call + self.wrap_up + self.paused_total

    @property
    def handle(self) -> int:
        return self.on_call + self.wrap_up

    @property
    def talk(self) -> int:
        """On a call and not holding (hold is inside the on-call time)."""
        return max(0, self.on_call - self.hold)

    @property
    def idle(self) -> int:
        return self.ready + self.ringing

    @property
    def occupancy(self) -> float | None:
        """(talk + hold + wrap-up) / (that + ready idle time); None with no such time."""
        working = self.handle + self.idle
        return self.handle / working if working else None

    @property
    def utilisation(self) -> float | None:
        """Handle time / logged-in time; None when not logged in at all."""
        return self.handle / self.logged_in if self.logged_in else None
