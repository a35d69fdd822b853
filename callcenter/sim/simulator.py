"""A discrete-event simulation of inbound calls driving the real ACD on a virtual clock.

Nothing here routes calls: the very ``Acd`` that production uses decides who answers whom;
the simulator only plays the world around it:
- callers arrive per queue as a Poisson process and wait; each has an exponential patience
  and hangs up (``caller_left``) if still unanswered when it runs out;
- agents log in at the start (one phone each), answer every offer at once or after the
  scenario's ring delay, talk for an exponential time, and wrap up by the queue's rule
  (the ACD's own wrap-up timer, fired by ``tick`` at the moment it is due);
- events sit in a heap ordered by (time, sequence); the ``VirtualClock`` jumps from one
  to the next. After the last arrival the run continues until every call has ended.

Calls arriving during the warm-up are simulated but not measured; agents' time is measured
from the end of the warm-up to the last arrival time (the drain after it is excluded: it
would count idle agents waiting for arrivals that never come).

Randomness: every draw comes from ``random.Random`` streams seeded from the scenario's seed
and a fixed name, one stream per queue (inter-arrival time, call type, talk time, patience,
drawn in that order for each caller) and one for the ACD. So the same seed gives the same
run, and a run with more agents meets exactly the same callers (common random numbers:
"what if I add five agents?" compares like with like).
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from callcenter.core.acd import (
    Acd,
    AgentSpec,
    AgentState,
    AgentStateChanged,
    NoAgentAvailable,
    OfferCall,
    Overflowed,
    QueueFull,
    QueueRules,
    QueueTimedOut,
)
from callcenter.core.clock import VirtualClock
from callcenter.sim.scenarios import CallType, QueueScenario, Scenario

SIMULATION_START = 1_700_000_000.0  # the virtual clock's first instant (POSIX seconds)
# The ACD wants a finite max_wait; a queue without one gets this (about 30,000 years).
NO_WAIT_LIMIT = 1e12


class Outcome(StrEnum):
    ANSWERED = "answered"
    ABANDONED = "abandoned"      # the caller hung up while waiting (or while it rang)
    TIMED_OUT = "timed_out"      # max_wait passed with no overflow queue
    QUEUE_FULL = "queue_full"    # max_length reached with no overflow queue
    NO_AGENT = "no_agent"        # no agent serves the queue at all


@dataclass(slots=True)
class CallRecord:
    """One simulated caller. Times are seconds since the start of the simulation."""

    call_id: str
    queue: str                   # the queue the caller entered (figures are counted there)
    call_type: int               # index into the queue's call types
    arrived: float
    talk_time: float             # drawn on arrival: how long the talk will last if answered
    patience: float              # drawn on arrival: how long the caller will wait
    final_queue: str = ""        # where it was when it ended (after overflows)
    overflowed: bool = False
    first_offered: float | None = None
    answered: float | None = None
    ended: float | None = None   # talk over, hung up, timed out or refused
    wrap_up: float = 0.0         # measured from the agent's WRAP_UP -> next state change
    agent_id: str | None = None
    outcome: Outcome | None = None

    @property
    def wait(self) -> float:
        """Seconds from arrival to being answered, or to leaving unanswered."""
        until = self.answered if self.answered is not None else self.ended
        return 0.0 if until is None else until - self.arrived

    @property
    def waited(self) -> bool:
        """True when no agent was free for this caller the moment it arrived."""
        return self.first_offered is None or self.first_offered > self.arrived


@dataclass
class AgentTimes:
    """Seconds spent per state by a group of agents inside the measured window."""

    seconds: dict[AgentState, float] = field(default_factory=dict)

    def add(self, state: AgentState, seconds: float) -> None:
        if seconds > 0:
            self.seconds[state] = self.seconds.get(state, 0.0) + seconds

    def __getitem__(self, state: AgentState) -> float:
        return self.seconds.get(state, 0.0)


@dataclass(frozen=True)
class SimulationResult:
    scenario: Scenario
    calls: tuple[CallRecord, ...]           # the measured calls (arrived after the warm-up)
    agent_times: Mapping[str, AgentTimes]   # by agent group name
    agent_groups: Mapping[str, str]         # agent id -> group name
    events: int                             # events processed, warm-up and drain included
    measured_from: float                    # seconds since start: the end of the warm-up
    measured_until: float                   # ... and the last arrival time


def queue_rules(queue: QueueScenario) -> QueueRules:
    """The ACD rules a simulated queue runs with."""
    return QueueRules(
        name=queue.name,
        strategy=queue.strategy,
        ring_timeout=queue.ring_timeout,
        max_wait=queue.max_wait if math.isfinite(queue.max_wait) else NO_WAIT_LIMIT,
        max_length=queue.max_length,
        overflow_to=queue.overflow_to,
        wrap_up=queue.wrap_up,
        default_handle_time=queue.handle_time,
    )


def simulate(scenario: Scenario) -> SimulationResult:
    """Run the scenario to the end and return every measured call and agent second."""
    return InboundSimulation(scenario).run()


Handler = Callable[[Any], None]


class InboundSimulation:
    """One run. ``run()`` once; the object is not reusable."""

    def __init__(self, scenario: Scenario, *, start: float = SIMULATION_START) -> None:
        self.scenario = scenario
        self.clock = VirtualClock(start)
        self.start = start
        self.measure_from = start + scenario.warm_up
        self.arrivals_end = self.measure_from + scenario.duration
        self.queues = {queue.name: queue for queue in scenario.queues}
        self.group_of: dict[str, str] = {}
        specs = []
        for group in scenario.agent_groups:
            for agent_id in group.agent_ids():
                self.group_of[agent_id] = group.name
                specs.append(AgentSpec(agent_id=agent_id, queues=group.queues,
                                       skills=dict(group.skills)))
        self.acd = Acd({queue.name: queue_rules(queue) for queue in scenario.queues}, specs,
                       start, rng=random.Random(f"{scenario.seed}:acd"))
        self.streams = {queue.name: random.Random(f"{scenario.seed}:queue:{queue.name}")
                        for queue in scenario.queues}
        self.type_weights = {queue.name: list(itertools.accumulate(
            call_type.share for call_type in queue.call_types)) for queue in scenario.queues}
        self._events: list[tuple[float, int, Handler, Any]] = []
        self._sequence = itertools.count()
        self._call_numbers = itertools.count(1)
        self.calls: dict[str, CallRecord] = {}
        self.unanswered: set[str] = set()         # waiting or ringing, in the ACD's line
        self.ringing: dict[str, str] = {}         # call id -> agent id being offered it
        self.last_call: dict[str, CallRecord] = {}  # agent id -> the call they handled last
        self.agent_since: dict[str, tuple[AgentState, float]] = {}
        self.agent_times = {group.name: AgentTimes() for group in scenario.agent_groups}
        self.events = 0

    # ------------------------------------------------------------------ the event loop

    def schedule(self, when: float, handler: Handler, argument: Any = None) -> None:
        heapq.heappush(self._events, (when, next(self._sequence), handler, argument))

    def run(self) -> SimulationResult:
        now = self.clock.now()
        for agent_id in self.group_of:
            self.agent_since[agent_id] = (AgentState.LOGGED_OUT, now)
            self.apply(self.acd.login(agent_id, now, phone=f"PJSIP/{agent_id}"))
        for name in self.queues:
            self.schedule(now + self._interarrival(name), self.arrival, name)
        events, pop, clock = self._events, heapq.heappop, self.clock
        while events:
            when, _, handler, argument = pop(events)
            clock.set(when)
            handler(argument)
            self.events += 1
        stuck = [call_id for call_id, record in self.calls.items() if record.outcome is None]
        if stuck:
            # Nothing is left to happen, yet callers wait: the ACD stopped offering them
            # (scenario checks rule out callers nobody could answer).
            raise RuntimeError(f"simulation stalled: {len(stuck)} caller(s) still waiting "
                               f"with no event left (first: {stuck[0]}); agents: "
                               f"{self._agent_summary()}")
        self._close_agent_times()
        measured = tuple(record for record in self.calls.values()
                         if record.arrived >= self.scenario.warm_up)
        return SimulationResult(
            scenario=self.scenario, calls=measured, agent_times=self.agent_times,
            agent_groups=dict(self.group_of), events=self.events,
            measured_from=self.scenario.warm_up,
            measured_until=self.scenario.warm_up + self.scenario.duration)

    def _interarrival(self, queue: str) -> float:
        return self.streams[queue].expovariate(self.queues[queue].arrivals_per_hour / 3600.0)

    # ------------------------------------------------------------------ world events

    def arrival(self, queue_name: str) -> None:
        now = self.clock.now()
        queue = self.queues[queue_name]
        stream = self.streams[queue_name]
        next_arrival = now + self._interarrival(queue_name)
        if next_arrival < self.arrivals_end:
            self.schedule(next_arrival, self.arrival, queue_name)
        weights = self.type_weights[queue_name]
        type_index = bisect.bisect_right(weights, stream.random() * weights[-1])
        type_index = min(type_index, len(weights) - 1)
        call_type: CallType = queue.call_types[type_index]
        talk_time = stream.expovariate(1.0 / queue.talk_time)
        patience = (math.inf if math.isinf(queue.patience)
                    else stream.expovariate(1.0 / queue.patience))
        call_id = f"{queue_name}-{next(self._call_numbers)}"
        record = CallRecord(call_id=call_id, queue=queue_name, call_type=type_index,
                            arrived=now - self.start, talk_time=talk_time, patience=patience,
                            final_queue=queue_name)
        self.calls[call_id] = record
        self.unanswered.add(call_id)
        if not math.isinf(patience):
            self.schedule(now + patience, self.caller_hangs_up, call_id)
        self._schedule_queue_deadlines(queue_name, now)
        self.apply(self.acd.enqueue(call_id, queue_name, now, priority=call_type.priority,
                                    skills=dict(call_type.skills)))

    def caller_hangs_up(self, call_id: str) -> None:
        if call_id not in self.unanswered:
            return  # answered, or already gone
        now = self.clock.now()
        self._finish(call_id, Outcome.ABANDONED, now)
        self.ringing.pop(call_id, None)
        self.apply(self.acd.caller_left(call_id, now))

    def agent_answers(self, offer: tuple[str, str]) -> None:
        call_id, agent_id = offer
        if self.ringing.get(call_id) != agent_id:
            return  # the caller hung up while it rang
        now = self.clock.now()
        del self.ringing[call_id]
        self.unanswered.discard(call_id)
        record = self.calls[call_id]
        record.answered = now - self.start
        record.agent_id = agent_id
        self.apply(self.acd.offer_answered(call_id, agent_id, now))
        self.schedule(now + record.talk_time, self.talk_ends, call_id)

    def talk_ends(self, call_id: str) -> None:
        now = self.clock.now()
        record = self.calls[call_id]
        record.ended = now - self.start
        record.outcome = Outcome.ANSWERED
        if record.agent_id is not None:
            self.last_call[record.agent_id] = record
        self.apply(self.acd.call_ended(call_id, now))
        wrap_up = self.queues[record.final_queue].wrap_up
        if wrap_up > 0:
            self.schedule(now + wrap_up, self.tick)

    def tick(self, _: object = None) -> None:
        self.apply(self.acd.tick(self.clock.now()))

    def _schedule_queue_deadlines(self, queue_name: str, since: float) -> None:
        """Ask the ACD to look again when a caller of this queue reaches its max wait."""
        max_wait = self.queues[queue_name].max_wait
        if not math.isinf(max_wait):
            self.schedule(since + max_wait, self.tick)

    def _finish(self, call_id: str, outcome: Outcome, now: float) -> None:
        record = self.calls[call_id]
        record.outcome = outcome
        record.ended = now - self.start
        self.unanswered.discard(call_id)

    # ------------------------------------------------------------------ ACD decisions

    def apply(self, actions: Iterable[object]) -> None:
        now = self.clock.now()
        for action in actions:
            match action:
                case OfferCall(call_id=call_id, agent_id=agent_id):
                    record = self.calls[call_id]
                    if record.first_offered is None:
                        record.first_offered = now - self.start
                    self.ringing[call_id] = agent_id
                    self.schedule(now + self.scenario.ring_delay, self.agent_answers,
                                  (call_id, agent_id))
                case AgentStateChanged():
                    self._agent_changed(action)
                case Overflowed(call_id=call_id, to_queue=to_queue):
                    record = self.calls[call_id]
                    record.overflowed = True
                    record.final_queue = to_queue
                    self._schedule_queue_deadlines(to_queue, now)  # a new wait there
                case QueueTimedOut(call_id=call_id):
                    self._finish(call_id, Outcome.TIMED_OUT, now)
                case QueueFull(call_id=call_id):
                    self._finish(call_id, Outcome.QUEUE_FULL, now)
                case NoAgentAvailable(call_id=call_id):
                    self._finish(call_id, Outcome.NO_AGENT, now)
                case _:
                    pass  # announcements and agents' deferred requests: nobody listens

    def _agent_changed(self, change: AgentStateChanged) -> None:
        previous, since = self.agent_since[change.agent_id]
        self._account(change.agent_id, previous, since, change.at)
        self.agent_since[change.agent_id] = (change.state, change.at)
        if previous is AgentState.WRAP_UP and change.agent_id in self.last_call:
            self.last_call[change.agent_id].wrap_up = change.at - since

    def _account(self, agent_id: str, state: AgentState, since: float, until: float) -> None:
        """Add the part of [since, until] inside the measured window to the agent's group."""
        seconds = min(until, self.arrivals_end) - max(since, self.measure_from)
        self.agent_times[self.group_of[agent_id]].add(state, seconds)

    def _agent_summary(self) -> str:
        states: dict[str, int] = {}
        for state, _ in self.agent_since.values():
            states[state.value] = states.get(state.value, 0) + 1
        return ", ".join(f"{count} {state}" for state, count in sorted(states.items()))

    def _close_agent_times(self) -> None:
        for agent_id, (state, since) in self.agent_since.items():
            self._account(agent_id, state, since, self.arrivals_end)
