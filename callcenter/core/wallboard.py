"""The live wallboard's figures: today's calls per queue, agents' states, threshold alerts.

Pure and sans-I/O: it is told what happened (a call's progress in a queue, an agent's state
change, what a queue holds now) with times as values, and answers with alerts. The service
(features/wallboard/service.py) feeds it from the ACD's agent changes and the call records
the ledger hands to the record writer, and publishes what it returns.

Each update costs O(1): a call's contribution to its queue's tally is kept per call, and a
new version of the call (it was answered, it ended) replaces the old contribution. That is
also why the tally can be rebuilt at start from today's stored records and then go on live
with the same result: a call counts once, by its latest version.

Figures (docs/wallboard.md, after DOMAIN.md "Figures"), for calls that entered a queue on
the center's current day (by the time they joined their first queue, in the center's time
zone), per the queue their record names (the call record's rule: the last queue it
overflowed to; after a transfer, still the queue it first waited in); a call that
overflows moves from one queue's counts to the other's:

- offered: every such call; answered: an agent answered it; answered in time: within T
  seconds (the queue's ``service_level_seconds``) of joining;
- abandoned: the caller hung up while waiting; those within ``short_abandon_seconds`` are
  also short abandons (a part of abandoned, shown apart);
- service level = answered in time / (answered + abandoned after T); None with no such call;
- abandon rate = abandoned / offered; None with no call.

These are the reports' and the simulator's definitions: the counting is core/queue_figures.py's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from callcenter.core.acd_actions import AgentState
from callcenter.core.queue_figures import QueueCall, QueueCounts, QueueOutcome, counts_of
from callcenter.core.records import CallRecord, Direction, Disposition


class Figure(StrEnum):
    SERVICE_LEVEL = "service_level"
    ABANDON_RATE = "abandon_rate"


@dataclass(frozen=True)
class QueueTargets:
    """What a queue's figures are measured against. Ratios are fractions (0.8 = 80 %)."""

    service_level_seconds: float = 20.0  # T
    short_abandon_seconds: float = 5.0  # abandons shorter than this are short abandons
    service_level_below: float | None = 0.8  # alert when SL falls below; None: never
    abandon_rate_above: float | None = 0.1  # alert when the abandon rate rises above; None: never
    hysteresis: float = 0.05  # an alert clears only this far back on the good side
    min_calls: int = 10  # a ratio alerts only once this many calls are in its denominator

    def __post_init__(self) -> None:
        if self.service_level_seconds <= 0:
            raise ValueError(f"service_level_seconds: {self.service_level_seconds} must be "
                             "more than 0")
        if self.short_abandon_seconds < 0:
            raise ValueError(f"short_abandon_seconds: {self.short_abandon_seconds} must not "
                             "be negative")
        for name in ("service_level_below", "abandon_rate_above"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: {value} must be a fraction from 0 to 1")
        if not 0.0 <= self.hysteresis <= 1.0:
            raise ValueError(f"hysteresis: {self.hysteresis} must be a fraction from 0 to 1")
        if self.min_calls < 1:
            raise ValueError(f"min_calls: {self.min_calls} must be at least 1")


# --------------------------------------------------------------------------- what comes in


@dataclass(frozen=True)
class CallProgress:
    """A call's state as far as a queue's figures go: when it joined its first queue, and
    how long it had waited when an agent answered, or when the caller hung up waiting."""

    call_id: str
    queue: str
    queued_at: float
    answered_after: float | None = None  # seconds from joining to the first agent's answer
    abandoned_after: float | None = None  # seconds from joining to the caller's hang-up


def progress_of(record: CallRecord) -> CallProgress | None:
    """What a call record tells the board; None for a call that never waited in a queue, and
    for calls the dialer made (campaign calls, callbacks: the call that asked is counted)."""
    queue = record.entered_queue  # where the reports count it too (an overflow keeps it there)
    if (queue is None or record.queued_at is None
            or record.direction is not Direction.INBOUND or record.callback_of is not None):
        return None
    answered = abandoned = None
    if record.agent_answered_at is not None:
        answered = max(0.0, record.agent_answered_at - record.queued_at)
    elif record.disposition is Disposition.ABANDONED_IN_QUEUE and record.ended_at is not None:
        abandoned = max(0.0, record.ended_at - record.queued_at)
    return CallProgress(record.call_id, queue, record.queued_at, answered, abandoned)


@dataclass(frozen=True)
class AgentOnBoard:
    """An agent's state as the board shows it (from the ACD's views and changes)."""

    agent_id: str
    state: AgentState
    reason: str | None  # the pause reason (None unless paused)
    since: float
    queues: tuple[str, ...]  # tier-0 queues


@dataclass(frozen=True)
class QueueNow:
    """What a queue holds now (from the ACD's view): callers in line, and since when the
    longest-waiting one waits (None: nobody)."""

    waiting: int
    longest_waiting_since: float | None


# --------------------------------------------------------------------------- what goes out


@dataclass(frozen=True)
class AlertRaised:
    queue: str
    figure: Figure
    value: float
    threshold: float
    at: float


@dataclass(frozen=True)
class AlertCleared:
    queue: str
    figure: Figure
    value: float | None  # None: a new day began (the figures started again)
    threshold: float
    at: float


Alert = AlertRaised | AlertCleared


@dataclass
class Tally:
    """Today's counts of one queue."""

    offered: int = 0
    answered: int = 0
    answered_in_time: int = 0
    abandoned: int = 0
    abandoned_after_t: int = 0
    short_abandoned: int = 0

    def counts(self) -> QueueCounts:
        return QueueCounts(offered=self.offered, answered=self.answered,
                           answered_within=self.answered_in_time, abandoned=self.abandoned,
                           abandoned_after=self.abandoned_after_t,
                           short_abandons=self.short_abandoned)

    @property
    def service_level(self) -> float | None:
        return self.counts().service_level

    @property
    def abandon_rate(self) -> float | None:
        return self.counts().abandon_rate

    def base(self, figure: Figure) -> int:
        """The calls a figure's ratio is over: no alert before enough of them."""
        if figure is Figure.SERVICE_LEVEL:
            return self.answered + self.abandoned_after_t
        return self.offered

    def value(self, figure: Figure) -> float | None:
        return self.service_level if figure is Figure.SERVICE_LEVEL else self.abandon_rate


# (offered, answered, answered_in_time, abandoned, abandoned_after_t, short_abandoned)
Contribution = tuple[int, int, int, int, int, int]


def contribution(progress: CallProgress, targets: QueueTargets) -> Contribution:
    """The call's counts as core/queue_figures.py counts them (a caller still waiting: only
    offered)."""
    if progress.answered_after is not None:
        call = QueueCall(QueueOutcome.ANSWERED, progress.answered_after)
    elif progress.abandoned_after is not None:
        call = QueueCall(QueueOutcome.ABANDONED, progress.abandoned_after)
    else:
        return (1, 0, 0, 0, 0, 0)
    c = counts_of(call, service_level_seconds=targets.service_level_seconds,
                  short_abandon_seconds=targets.short_abandon_seconds)
    return (c.offered, c.answered, c.answered_within, c.abandoned, c.abandoned_after,
            c.short_abandons)


@dataclass(frozen=True)
class CenterDay:
    """One day of the center, as [start, end) in POSIX seconds (23 or 25 hours across a
    daylight-saving change)."""

    day: date
    start: float
    end: float

    @classmethod
    def containing(cls, at: float, zone: ZoneInfo) -> CenterDay:
        day = datetime.fromtimestamp(at, zone).date()
        start = datetime.combine(day, time(0), zone).timestamp()
        end = datetime.combine(day + timedelta(days=1), time(0), zone).timestamp()
        return cls(day, start, end)


@dataclass
class _QueueBoard:
    targets: QueueTargets
    tally: Tally = field(default_factory=Tally)
    now: QueueNow = QueueNow(0, None)
    alerts: dict[Figure, bool] = field(default_factory=lambda: dict.fromkeys(Figure, False))


class Wallboard:
    """Today's figures of every queue, the agents' states and the alerts, kept up to date.

    ``changed`` is True after anything the board shows changed, until ``take_changed()``;
    the time in a state or in line grows by itself and is not a change (the board shows the
    instant it began).
    """

    def __init__(self, queues: Mapping[str, QueueTargets], zone: ZoneInfo, now: float) -> None:
        self.zone = zone
        self._queues = {name: _QueueBoard(targets) for name, targets in queues.items()}
        self._calls: dict[str, tuple[str, Contribution]] = {}  # today's calls, by id
        self._agents: dict[str, AgentOnBoard] = {}
        self.day = CenterDay.containing(now, zone)
        self.changed = True

    # ------------------------------------------------------------------ updates

    def call(self, progress: CallProgress, now: float) -> list[Alert]:
        """A call's latest state (any version, any number of times). Calls that joined a
        queue on another day than today, or a queue the board does not know, are ignored."""
        alerts = self.advance(now)
        board = self._queues.get(progress.queue)
        if board is None or not self.day.start <= progress.queued_at < self.day.end:
            return alerts
        new = contribution(progress, board.targets)
        old = self._calls.get(progress.call_id)
        if old == (progress.queue, new):
            return alerts
        if old is not None:  # its latest version replaces it (in another queue: overflowed)
            self._add(self._queues[old[0]].tally, old[1], -1)
            if old[0] != progress.queue:
                alerts += self._check(old[0], now)
        self._calls[progress.call_id] = (progress.queue, new)
        self._add(board.tally, new, +1)
        self.changed = True
        return alerts + self._check(progress.queue, now)

    def agent(self, agent: AgentOnBoard) -> None:
        """An agent's state now (a change from the ACD, or its view at start)."""
        if self._agents.get(agent.agent_id) != agent:
            self._agents[agent.agent_id] = agent
            self.changed = True

    def agent_gone(self, agent_id: str) -> None:
        if self._agents.pop(agent_id, None) is not None:
            self.changed = True

    def queue_now(self, queue: str, now_in_queue: QueueNow) -> None:
        board = self._queues.get(queue)
        if board is not None and board.now != now_in_queue:
            board.now = now_in_queue
            self.changed = True

    def advance(self, now: float) -> list[Alert]:
        """Time passed: at the center's midnight the figures start again, and any alert
        still raised is cleared (a new day has no figures yet)."""
        if now < self.day.end:
            return []
        self.day = CenterDay.containing(now, self.zone)
        self._calls.clear()
        alerts: list[Alert] = []
        for name, board in self._queues.items():
            board.tally = Tally()
            for figure, raised in board.alerts.items():
                if raised:
                    board.alerts[figure] = False
                    alerts.append(AlertCleared(name, figure, None,
                                               _threshold(board.targets, figure), now))
        self.changed = True
        return alerts

    def take_changed(self) -> bool:
        changed, self.changed = self.changed, False
        return changed

    # ------------------------------------------------------------------ reading

    @property
    def queue_names(self) -> list[str]:
        return list(self._queues)

    def tally(self, queue: str) -> Tally:
        return self._queues[queue].tally

    def targets(self, queue: str) -> QueueTargets:
        return self._queues[queue].targets

    def waiting(self, queue: str) -> QueueNow:
        return self._queues[queue].now

    def alerts_raised(self, queue: str) -> list[Figure]:
        return [figure for figure, raised in self._queues[queue].alerts.items() if raised]

    def agents(self) -> list[AgentOnBoard]:
        return list(self._agents.values())

    # ------------------------------------------------------------------ inside

    @staticmethod
    def _add(tally: Tally, counts: Contribution, sign: int) -> None:
        tally.offered += sign * counts[0]
        tally.answered += sign * counts[1]
        tally.answered_in_time += sign * counts[2]
        tally.abandoned += sign * counts[3]
        tally.abandoned_after_t += sign * counts[4]
        tally.short_abandoned += sign * counts[5]

    def _check(self, queue: str, now: float) -> list[Alert]:
        """Raise an alert when a figure crosses its threshold to the bad side, clear it once
        the figure is ``hysteresis`` back on the good side: one of each per crossing."""
        board = self._queues[queue]
        alerts: list[Alert] = []
        for figure in Figure:
            threshold = _threshold(board.targets, figure)
            if threshold is None:
                continue
            value = board.tally.value(figure)
            raised = board.alerts[figure]
            if not raised and value is not None and board.tally.base(figure) >= (
                    board.targets.min_calls) and _bad(figure, value, threshold):
                board.alerts[figure] = True
                alerts.append(AlertRaised(queue, figure, value, threshold, now))
            elif raised and (value is None or _recovered(figure, value, threshold,
                                                         board.targets.hysteresis)):
                board.alerts[figure] = False
                alerts.append(AlertCleared(queue, figure, value, threshold, now))
        if alerts:
            self.changed = True
        return alerts


def _threshold(targets: QueueTargets, figure: Figure) -> float | None:
    if figure is Figure.SERVICE_LEVEL:
        return targets.service_level_below
    return targets.abandon_rate_above


def _bad(figure: Figure, value: float, threshold: float) -> bool:
    return value < threshold if figure is Figure.SERVICE_LEVEL else value > threshold


def _recovered(figure: Figure, value: float, threshold: float, hysteresis: float) -> bool:
    """Back far enough on the good side (never asking more than 100 % or less than 0 %)."""
    if figure is Figure.SERVICE_LEVEL:
        return value >= min(1.0, threshold + hysteresis)
    return value <= max(0.0, threshold - hysteresis)


def rebuild(board: Wallboard, records: Iterable[CallRecord], now: float) -> list[Alert]:
    """Feed ``board`` the calls of stored records (at start), oldest version first."""
    alerts: list[Alert] = []
    for record in records:
        progress = progress_of(record)
        if progress is not None:
            alerts += board.call(progress, now)
    return alerts
