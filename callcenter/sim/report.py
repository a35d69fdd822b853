"""The figures of a simulated run, computed the way DOMAIN.md defines them.

Per queue (the queue a caller entered; a caller that overflowed is still counted there, once),
counted by core/queue_figures.py, the same code that counts the live reports (docs/reports.md):
- offered: callers that entered the queue after the warm-up;
- answered, abandoned (hung up while waiting or ringing), short abandons (abandoned before
  the scenario's ``short_abandon`` seconds: a subset of abandoned, shown apart), timed out
  (max wait passed, no overflow queue), refused (queue full or no agent at all);
- service level: answered within T / (answered + abandoned after T), T per queue;
- ASA: mean wait of answered calls; AHT: mean talk + wrap-up of answered calls; ACW: mean
  wrap-up of answered calls (the live reports' ACW: the agent's wrap_up to their next change);
- abandon rate: abandoned / offered; waited: share of offered callers no agent was free for
  on arrival (Erlang's "probability of waiting"); longest wait of any caller.
Per agent group: occupancy = (talk + wrap-up) / (talk + wrap-up + ready + ringing), i.e.
handle time over the time agents were available for calls (paused time is out of both);
utilisation = (talk + wrap-up) / logged-in time; both over the measured window only.

For a single queue answered by every agent, with callers that need no skills, the report also
gives what Erlang C (patience infinite) or Erlang A predicts for the same figures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from callcenter.core.acd import AgentState
from callcenter.core.erlang import erlang_a, offered_load
from callcenter.core.queue_figures import QueueCall, QueueOutcome, counts_of, total
from callcenter.sim.scenarios import Scenario
from callcenter.sim.simulator import CallRecord, Outcome, SimulationResult

_BUSY = (AgentState.ON_CALL, AgentState.WRAP_UP)
_AVAILABLE = (AgentState.READY, AgentState.RINGING)
_LOGGED_IN = (*_BUSY, *_AVAILABLE, AgentState.PAUSED)


@dataclass(frozen=True)
class QueueFigures:
    queue: str                         # a queue's name, or "overall"
    service_level_seconds: float | None  # T; None on the overall row when queues differ
    offered: int
    answered: int
    abandoned: int
    short_abandons: int
    timed_out: int
    refused: int
    overflowed: int
    answered_within: int               # answered with wait <= T
    abandoned_after: int               # abandoned with wait > T
    service_level: float | None        # fraction; None without answered or late abandons
    asa: float | None                  # seconds
    aht: float | None                  # seconds: talk + wrap-up per answered call
    acw: float | None                  # seconds: wrap-up per answered call (part of the AHT)
    abandon_rate: float | None         # fraction of offered
    waited: float | None               # fraction of offered
    longest_wait: float | None         # seconds


@dataclass(frozen=True)
class AgentFigures:
    group: str                         # an agent group's name, or "overall"
    agents: int
    handled: int                       # calls answered (after the warm-up) by these agents
    occupancy: float | None
    utilisation: float | None


@dataclass(frozen=True)
class ModelFigures:
    """What the textbook model predicts for the same single-queue scenario."""

    model: str                         # "Erlang C" or "Erlang A"
    agents: int
    offered_load: float                # Erlangs
    service_level: float
    asa: float | None                  # None when the queue is unstable (Erlang C, A >= N)
    abandon_rate: float
    waited: float
    occupancy: float


@dataclass(frozen=True)
class Report:
    duration: float
    warm_up: float
    seed: int
    agents: int
    queues: tuple[QueueFigures, ...]
    overall: QueueFigures
    agent_groups: tuple[AgentFigures, ...]
    agents_overall: AgentFigures
    model: ModelFigures | None
    events: int

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: fractions for rates (0..1), seconds for times, null when undefined."""
        return {
            "duration_seconds": self.duration,
            "warm_up_seconds": self.warm_up,
            "seed": self.seed,
            "agents": self.agents,
            "queues": [asdict(figures) for figures in self.queues],
            "overall": asdict(self.overall),
            "agent_groups": [asdict(figures) for figures in self.agent_groups],
            "agents_overall": asdict(self.agents_overall),
            "model": None if self.model is None else asdict(self.model),
            "events": self.events,
        }


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


_OUTCOMES = {Outcome.ANSWERED: QueueOutcome.ANSWERED,
             Outcome.ABANDONED: QueueOutcome.ABANDONED,
             Outcome.TIMED_OUT: QueueOutcome.NOT_SERVED,
             Outcome.QUEUE_FULL: QueueOutcome.NOT_SERVED,
             Outcome.NO_AGENT: QueueOutcome.NOT_SERVED}


def queue_figures(name: str, calls: Sequence[CallRecord], scenario: Scenario) -> QueueFigures:
    """The figures of ``calls``, each measured against its own queue's threshold, counted by
    core/queue_figures.py exactly as the live reports count stored records."""
    thresholds = {call.queue: scenario.queue(call.queue).service_level_seconds
                  for call in calls}
    counts = total([
        counts_of(QueueCall(_OUTCOMES[call.outcome], call.wait, talk=call.talk_time,
                            wrap_up=call.wrap_up, overflowed=call.overflowed),
                  service_level_seconds=thresholds[call.queue],
                  short_abandon_seconds=scenario.short_abandon)
        for call in calls if call.outcome is not None])
    distinct = set(thresholds.values())
    if name != "overall":
        distinct = {scenario.queue(name).service_level_seconds}
    return QueueFigures(
        queue=name,
        service_level_seconds=distinct.pop() if len(distinct) == 1 else None,
        offered=len(calls),
        answered=counts.answered,
        abandoned=counts.abandoned,
        short_abandons=counts.short_abandons,
        timed_out=sum(call.outcome is Outcome.TIMED_OUT for call in calls),
        refused=sum(call.outcome in (Outcome.QUEUE_FULL, Outcome.NO_AGENT) for call in calls),
        overflowed=counts.overflowed,
        answered_within=counts.answered_within,
        abandoned_after=counts.abandoned_after,
        service_level=counts.service_level,
        asa=counts.asa,
        aht=counts.aht,
        acw=counts.acw,
        abandon_rate=_ratio(counts.abandoned, len(calls)),
        waited=_ratio(sum(call.waited for call in calls), len(calls)),
        longest_wait=max((call.wait for call in calls), default=None),
    )


def _agent_figures(name: str, agents: int, handled: int,
                   seconds: Iterable[tuple[AgentState, float]]) -> AgentFigures:
    totals: dict[AgentState, float] = {}
    for state, value in seconds:
        totals[state] = totals.get(state, 0.0) + value
    busy = math.fsum(totals.get(state, 0.0) for state in _BUSY)
    available = math.fsum(totals.get(state, 0.0) for state in _AVAILABLE)
    logged_in = math.fsum(totals.get(state, 0.0) for state in _LOGGED_IN)
    return AgentFigures(group=name, agents=agents, handled=handled,
                        occupancy=_ratio(busy, busy + available),
                        utilisation=_ratio(busy, logged_in))


def model_figures(scenario: Scenario) -> ModelFigures | None:
    """Erlang C / Erlang A for a scenario they describe: one queue, every agent answering
    only it, callers needing no skills. None otherwise."""
    if len(scenario.queues) != 1:
        return None
    queue = scenario.queues[0]
    if any(call_type.skills for call_type in queue.call_types):
        return None
    if any(group.queues != (queue.name,) for group in scenario.agent_groups if group.count):
        return None
    agents = scenario.agent_count
    if agents == 0 or not math.isinf(queue.max_wait) or queue.max_length is not None:
        return None
    load = offered_load(queue.arrivals_per_hour, queue.handle_time)
    model = erlang_a(agents, load, queue.handle_time, queue.patience,
                     queue.service_level_seconds)
    return ModelFigures(
        model="Erlang C" if math.isinf(queue.patience) else "Erlang A",
        agents=agents, offered_load=load, service_level=model.service_level,
        asa=model.asa if math.isfinite(model.asa) else None,
        abandon_rate=model.p_abandon, waited=model.p_wait, occupancy=model.occupancy)


def build_report(result: SimulationResult) -> Report:
    scenario = result.scenario
    by_queue = {queue.name: [call for call in result.calls if call.queue == queue.name]
                for queue in scenario.queues}
    handled_by: dict[str, int] = {}
    for call in result.calls:
        if call.outcome is Outcome.ANSWERED and call.agent_id is not None:
            group = result.agent_groups[call.agent_id]
            handled_by[group] = handled_by.get(group, 0) + 1
    groups = tuple(
        _agent_figures(group.name, group.count, handled_by.get(group.name, 0),
                       result.agent_times[group.name].seconds.items())
        for group in scenario.agent_groups)
    return Report(
        duration=scenario.duration,
        warm_up=scenario.warm_up,
        seed=scenario.seed,
        agents=scenario.agent_count,
        queues=tuple(queue_figures(name, calls, scenario) for name, calls in by_queue.items()),
        overall=queue_figures("overall", list(result.calls), scenario),
        agent_groups=groups,
        agents_overall=_agent_figures(
            "overall", scenario.agent_count, sum(handled_by.values()),
            [item for group in scenario.agent_groups
             for item in result.agent_times[group.name].seconds.items()]),
        model=model_figures(scenario),
        events=result.events,
    )


# --------------------------------------------------------------------------- text


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 900 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns padded to their widest cell: the first left-aligned, the rest right."""
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    return [line(headers), *(line(row) for row in rows)]


def _queue_row(figures: QueueFigures, with_overflow: bool) -> list[str]:
    threshold = figures.service_level_seconds
    level = _percent(figures.service_level)
    if threshold is not None:
        level = f"{level} in {threshold:g}s"
    overflow = [str(figures.overflowed)] if with_overflow else []
    return [figures.queue, str(figures.offered), str(figures.answered),
            str(figures.abandoned), str(figures.short_abandons),
            str(figures.timed_out + figures.refused), *overflow, level,
            _seconds(figures.asa), _seconds(figures.aht), _percent(figures.abandon_rate),
            _percent(figures.waited), _seconds(figures.longest_wait)]


def format_report(report: Report) -> str:
    """A readable, aligned text report."""
    lines = [f"Simulated {_duration(report.duration)} after a {_duration(report.warm_up)} "
             f"warm-up (seed {report.seed}): {report.overall.offered} calls offered, "
             f"{report.agents} agents.", ""]
    with_overflow = report.overall.overflowed > 0
    rows = [_queue_row(figures, with_overflow) for figures in report.queues]
    if len(report.queues) > 1:
        rows.append(_queue_row(report.overall, with_overflow))
    overflow_header = ["overflowed"] if with_overflow else []
    lines += _table(["queue", "offered", "answered", "abandoned", "short", "lost",
                     *overflow_header, "service level %", "ASA s", "AHT s", "abandon %",
                     "waited %", "longest s"], rows)
    lines.append("")
    agent_rows = [[g.group, str(g.agents), str(g.handled), _percent(g.occupancy),
                   _percent(g.utilisation)] for g in report.agent_groups]
    if len(report.agent_groups) > 1:
        overall = report.agents_overall
        agent_rows.append([overall.group, str(overall.agents), str(overall.handled),
                           _percent(overall.occupancy), _percent(overall.utilisation)])
    lines += _table(["agents", "count", "handled", "occupancy %", "utilisation %"],
                    agent_rows)
    if report.model is not None:
        model = report.model
        lines += ["", f"{model.model} for {model.agents} agents and "
                  f"{model.offered_load:.2f} Erlangs offered (exponential talk + wrap-up) "
                  f"predicts: service level {_percent(model.service_level)} %, "
                  f"ASA {_seconds(model.asa)} s, abandon {_percent(model.abandon_rate)} %, "
                  f"waited {_percent(model.waited)} %, "
                  f"occupancy {_percent(model.occupancy)} %."]
    lines += ["", "short: abandoned before the short-abandon limit (part of abandoned); "
              "lost: timed out or refused (queue full, no agent)."]
    if with_overflow:
        lines.append("overflowed: went on waiting in another queue (counted here, once).")
    return "\n".join(lines)
