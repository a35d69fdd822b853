"""A discrete-event simulation of an outbound campaign: pacing policies on a virtual clock.

The world: a call list whose rows are dialed once each, in order; customers who answer (a
person or a machine) with a probability that drifts over the day, after a time to answer,
within the ring time; an AMD that decides after its own time and is sometimes wrong; agents
who talk and wrap up. A live answer (what the AMD calls a person, or every answer without
AMD) is joined to a ready agent at once, or to the first agent ready within 2 seconds; after
that it hears the safe-harbor message and is **abandoned**.

A policy decides, once a second, how many calls to place. It sees only what a real dialer
knows (``DialerView``): agents and their phases, the calls in flight and their ages, the
measured figures (``DialerStats``) and the abandon budget. Never a customer's hidden draws:
whether a ringing call will be answered is decided by the customer, not told to the dialer.

Randomness: every customer (list row) has its own stream of uniform draws, derived from the
scenario's seed and the row's number alone: whether they answer (against the answer rate of
the moment they are called), after how long, person or machine, the AMD's verdict and time,
the talk, a quick hang-up, the wrap-up. So every policy meets the same customers in the same
order; a policy that places more calls only gets further down the list.

Events sit in a heap ordered by (time, sequence); the clock jumps from one to the next: no
sleeping and no asyncio, a day of 200 agents takes seconds.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from callcenter.core.campaigns import CampaignMode
from callcenter.core.dial_rules import DAY
from callcenter.core.pacing import (
    SAFE_HARBOR_SECONDS,
    AbandonBudget,
    AgentPhase,
    BudgetStanding,
    BusyAgent,
    DialerStats,
    DialResult,
    InFlight,
    PacingRules,
    decide,
)
from callcenter.sim.dialer_scenario import DialerScenario

# The first day starts at 09:00 UTC on a midnight-aligned date, so the budget's day (a date
# in UTC) is the simulated day.
FIRST_MIDNIGHT = 1_699_920_000.0  # 2023-11-14 00:00 UTC
SHIFT_START_HOUR = 9.0
TICK = 1.0  # seconds between two decisions, as the dialer service ticks
BIN_SECONDS = 900.0  # the timeline's resolution (occupancy and abandons over the day)
MACHINE_TALK_SECONDS = 5.0  # an agent handed a machine hangs up after this
QUICK_HANGUP_MAX = 15.0  # a customer who hangs up at once does so within 2 to 15 s
_ROW_DRAWS = 8  # uniform draws per customer, in a fixed order (see Customer)
_BLOCK_ROWS = 1024  # rows per seeded block of the call list

# Event kinds (ints: the heap compares tuples).
_TICK, _ANSWER, _NO_ANSWER, _AMD_DONE, _SAFE_HARBOR, _TALK_END, _WRAP_END = range(7)


class CallList:
    """The customers, row by row: eight uniform draws each from a stream that depends on the
    seed and the row only (rows come in seeded blocks, so a run costs a few draws per row)."""

    def __init__(self, seed: int, size: int) -> None:
        self.seed, self.size = seed, size
        self._block = -1
        self._draws: list[float] = []

    def draws(self, row: int) -> list[float]:
        block, offset = divmod(row, _BLOCK_ROWS)
        if block != self._block:
            stream = random.Random(f"dialer-sim/{self.seed}/{block}")
            self._draws = [stream.random() for _ in range(_BLOCK_ROWS * _ROW_DRAWS)]
            self._block = block
        start = offset * _ROW_DRAWS
        return self._draws[start:start + _ROW_DRAWS]


class Call:
    __slots__ = ("answered_at", "draws", "human", "ident", "live_at", "placed", "row",
                 "says_machine", "time_to_answer")

    def __init__(self, ident: int, row: int, placed: float, draws: list[float]) -> None:
        self.ident, self.row, self.placed, self.draws = ident, row, placed, draws
        self.answered_at = 0.0
        self.time_to_answer = 0.0
        self.live_at = 0.0
        self.human = True
        self.says_machine = False


@dataclass
class DayFigures:
    """What happened on one simulated day under one policy."""

    hours: float
    agents: int
    placed: int = 0
    answered: int = 0  # by a person or a machine
    machines: int = 0  # answers the AMD called machines (and hung up)
    humans_hung_up: int = 0  # of those, people the AMD took for machines
    live_answers: int = 0  # answers that needed an agent (the budget's live answers)
    abandoned: int = 0  # of those, no agent within 2 s: safe-harbor message
    contacts: int = 0  # people joined to an agent
    machines_to_agents: int = 0  # machines the AMD took for people (an agent hung up)
    talk_seconds: float = 0.0  # within the shift
    busy_seconds: float = 0.0  # talk + wrap-up within the shift
    busy_bins: list[float] = field(default_factory=list)  # per BIN_SECONDS of the shift
    live_minutes: list[int] = field(default_factory=list)  # live answers per minute
    abandoned_minutes: list[int] = field(default_factory=list)
    list_ran_out: bool = False  # no row left to dial: the day's figures are cut short

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.live_answers if self.live_answers else 0.0

    def worst_hour_rate(self) -> float:
        """The highest abandon rate over any 60 consecutive minutes of the day."""
        live, abandoned = self.live_minutes, self.abandoned_minutes
        width = min(60, len(live))
        window_live, window_abandoned = sum(live[:width]), sum(abandoned[:width])
        worst = window_abandoned / window_live if window_live else 0.0
        for end in range(width, len(live)):
            window_live += live[end] - live[end - width]
            window_abandoned += abandoned[end] - abandoned[end - width]
            if window_live:
                worst = max(worst, window_abandoned / window_live)
        return worst


# --------------------------------------------------------------------------- what a policy sees


class DialerView:
    """The dialer's knowledge at one instant, as a policy may read it (no customer draws)."""

    def __init__(self, run: CampaignRun) -> None:
        self._run = run

    @property
    def now(self) -> float:
        return self._run.now

    @property
    def logged_in(self) -> int:
        return self._run.logged_in

    @property
    def ready(self) -> int:
        return len(self._run.ready)

    @property
    def talking(self) -> int:
        return self._run.talking

    @property
    def live_waiting(self) -> int:
        return len(self._run.waiting)

    @property
    def calls_in_flight(self) -> int:
        """Placed and not yet with an agent: ringing, in the AMD, live and waiting."""
        run = self._run
        return len(run.ringing) + run.in_amd + len(run.waiting)

    def busy_agents(self) -> list[BusyAgent]:
        return list(self._run.busy.values())

    def in_flight(self) -> InFlight:
        run = self._run
        return InFlight(tuple(run.ringing.values()), run.in_amd, len(run.waiting))

    @property
    def stats(self) -> DialerStats:
        return self._run.stats

    def budget(self) -> BudgetStanding:
        return self._run.budget.standing(self._run.now)

    def last_minute(self) -> tuple[int, int]:
        """(live answers, abandoned) whose fate was known in the last 60 seconds."""
        return self._run.last_minute()

    @property
    def day_rate(self) -> float:
        day = self._run.day
        return day.abandon_rate if day is not None else 0.0


class Policy:
    """Decides how many calls to place now; may keep state between ticks of one run."""

    name = "policy"
    label = "policy"

    def start(self, scenario: DialerScenario) -> None:
        """Called once before a run (a fresh policy state)."""

    def calls(self, view: DialerView) -> int:
        raise NotImplementedError


class OurPacing(Policy):
    """callcenter/core/pacing.py's decide(), as the dialer service calls it."""

    name = "ours"
    label = "ours (predictive)"

    def __init__(self, rules: PacingRules | None = None) -> None:
        self.rules_given = rules
        self.rules = rules or PacingRules()

    def start(self, scenario: DialerScenario) -> None:
        if self.rules_given is None:
            self.rules = PacingRules(mode=CampaignMode.PREDICTIVE, amd=scenario.amd,
                                     ring_seconds=scenario.ring_time)

    def calls(self, view: DialerView) -> int:
        return decide(view.now, self.rules, ready_agents=view.ready,
                      busy_agents=view.busy_agents(), in_flight=view.in_flight(),
                      stats=view.stats, budget=view.budget()).calls


class Progressive(Policy):
    """One call per ready agent: ready agents minus calls in flight."""

    name = "progressive"
    label = "progressive"

    def calls(self, view: DialerView) -> int:
        return max(0, view.ready - view.calls_in_flight)


def calls_for_level(level: float, view: DialerView, *, available_only: bool = False) -> int:
    """A dial level as VICIdial turns it into calls: level x logged-in agents lines, less
    the campaign's calls in progress (in flight and talking to an agent). With
    ``available_only`` (VICIdial's "available only tally"): level x ready agents lines, less
    the calls in flight."""
    if available_only:
        return max(0, math.floor(level * view.ready + 1e-9) - view.calls_in_flight)
    return max(0, math.floor(level * view.logged_in + 1e-9)
               - view.calls_in_flight - view.talking)


class VicidialAdaptive(Policy):
    """The issue's VICIdial-style adaptive dial level, updated every second:
    level = level x (1 + (ready - waiting) / agents) x intensity, clamped to [1, max_level];
    halved when the last minute's drops exceed half its answers; forced to 1.0 while the
    day's drop rate is above the cap. Calls: ``calls_for_level``."""

    name = "vicidial"

    def __init__(self, max_level: float, intensity: float = 1.0, *,
                 available_only: bool = False) -> None:
        self.max_level = max_level
        self.intensity = intensity
        self.available_only = available_only
        self.level = 1.0
        self.cap = 0.03
        tally = ", ready only" if available_only else ""
        self.label = f"VICIdial-style, max level {max_level:g}{tally}"

    def start(self, scenario: DialerScenario) -> None:
        self.level = 1.0
        self.cap = scenario.abandon_cap

    def next_level(self, *, ready: int, waiting: int, agents: int, minute_live: int,
                   minute_dropped: int, day_rate: float) -> float:
        """One second's update of the level (pure: the rule, step by step)."""
        level = self.level
        if agents > 0:
            level = level * (1.0 + (ready - waiting) / agents) * self.intensity
        level = min(max(level, 1.0), self.max_level)
        if minute_dropped > minute_live / 2.0:
            level = max(1.0, level / 2.0)
        if day_rate > self.cap:
            level = 1.0
        self.level = level
        return level

    def calls(self, view: DialerView) -> int:
        minute_live, minute_dropped = view.last_minute()
        self.next_level(ready=view.ready, waiting=view.live_waiting, agents=view.logged_in,
                        minute_live=minute_live, minute_dropped=minute_dropped,
                        day_rate=view.day_rate)
        return calls_for_level(self.level, view, available_only=self.available_only)


class FixedRatio(Policy):
    """A fixed dial level (lines per logged-in agent), as ``calls_for_level``, and never
    fewer calls than progressive (below level 1 the level alone would leave ready agents
    without a call: the bound would be weaker than progressive)."""

    name = "fixed"

    def __init__(self, ratio: float, *, available_only: bool = False) -> None:
        self.ratio = ratio
        self.available_only = available_only
        tally = " x ready" if available_only else ""
        self.label = f"fixed level {ratio:.2f}{tally}"

    def calls(self, view: DialerView) -> int:
        return max(calls_for_level(self.ratio, view, available_only=self.available_only),
                   view.ready - view.calls_in_flight)


# --------------------------------------------------------------------------- the run


class CampaignRun:
    """One policy over the scenario's days, on the same customers as every other run."""

    def __init__(self, scenario: DialerScenario, policy: Policy, *,
                 trace: bool = False) -> None:
        self.scenario = scenario
        self.policy = policy
        self.calls_list = CallList(scenario.seed, scenario.list_size)
        self.stats = DialerStats()
        self.budget = AbandonBudget(scenario.abandon_cap)
        self.view = DialerView(self)
        self.now = 0.0
        self.next_row = 0
        self.heap: list[tuple[float, int, int, object]] = []
        self.sequence = 0
        self.ringing: dict[int, float] = {}  # call ident -> placed at (placing order)
        self.in_amd = 0
        self.waiting: dict[int, Call] = {}  # live answers waiting for an agent, oldest first
        self.ready: deque[int] = deque()  # agents, longest ready first
        self.busy: dict[int, BusyAgent] = {}
        self.busy_since: dict[int, float] = {}  # agent -> joined to their call at
        self.talking = 0
        self.logged_in = 0
        self.recent: deque[tuple[float, bool]] = deque()  # fates of the last minute
        self.recent_abandoned = 0
        self.day: DayFigures | None = None
        self.days: list[DayFigures] = []
        self.day_start = self.day_end = 0.0
        self.list_exhausted = False
        # With ``trace``: row -> what the customer did (answered, person, talk seconds when
        # joined to an agent), for tests of "the same customers for every policy".
        self.customers: dict[int, dict[str, object]] | None = {} if trace else None

    # ---- events
    def _push(self, at: float, kind: int, payload: object) -> None:
        self.sequence += 1
        heapq.heappush(self.heap, (at, self.sequence, kind, payload))

    def run(self) -> list[DayFigures]:
        self.policy.start(self.scenario)
        handlers: dict[int, Callable[[object], None]] = {
            _TICK: self._tick, _ANSWER: self._answer, _NO_ANSWER: self._no_answer,
            _AMD_DONE: self._amd_done, _SAFE_HARBOR: self._safe_harbor,
            _TALK_END: self._talk_end, _WRAP_END: self._wrap_end}
        scenario = self.scenario
        for day_number in range(scenario.days):
            self.day_start = FIRST_MIDNIGHT + day_number * DAY + SHIFT_START_HOUR * 3600.0
            self.day_end = self.day_start + scenario.hours * 3600.0
            bins = math.ceil(scenario.hours * 3600.0 / BIN_SECONDS)
            minutes = math.ceil(scenario.hours * 60.0) + 2  # answers after the end count
            self.day = DayFigures(scenario.hours, scenario.agents, busy_bins=[0.0] * bins,
                                  live_minutes=[0] * minutes, abandoned_minutes=[0] * minutes)
            self.days.append(self.day)
            self.logged_in = scenario.agents
            self.ready = deque(range(scenario.agents))
            self._push(self.day_start, _TICK, None)
            heap, pop = self.heap, heapq.heappop
            while heap:
                at, _, kind, payload = pop(heap)
                self.now = at
                handlers[kind](payload)
            self.logged_in = 0
            self.ready.clear()
        return self.days

    def _tick(self, _: object) -> None:
        now = self.now
        if now >= self.day_end or self.list_exhausted:
            return
        self._push(now + TICK, _TICK, None)
        count = self.policy.calls(self.view)
        for _ in range(count):
            self._place(now)

    def _place(self, now: float) -> None:
        if self.next_row >= self.scenario.list_size:
            self.list_exhausted = True
            assert self.day is not None
            self.day.list_ran_out = True
            return
        row = self.next_row
        self.next_row += 1
        self.sequence += 1
        call = Call(self.sequence, row, now, self.calls_list.draws(row))
        scenario = self.scenario
        assert self.day is not None
        self.day.placed += 1
        self.ringing[call.ident] = now
        probability = scenario.answer_probability((now - self.day_start) / 3600.0)
        answered = call.draws[0] < probability
        if self.customers is not None:
            self.customers[row] = {"answered": answered,
                                   "person": call.draws[2] >= scenario.machine_share}
        if answered:
            tta = scenario.time_to_answer
            # Answered within the ring time: the draw taken inside that part of the law.
            call.time_to_answer = min(
                tta.quantile(call.draws[1] * tta.cdf(scenario.ring_time)),
                scenario.ring_time - 0.1)
            self._push(now + call.time_to_answer, _ANSWER, call)
        else:
            self._push(now + scenario.ring_time, _NO_ANSWER, call)

    def _no_answer(self, payload: object) -> None:
        call = payload
        assert isinstance(call, Call)
        del self.ringing[call.ident]
        self.stats.call_ended(self.now, DialResult.UNANSWERED)

    def _answer(self, payload: object) -> None:
        call = payload
        assert isinstance(call, Call)
        del self.ringing[call.ident]
        scenario = self.scenario
        draws = call.draws
        assert self.day is not None
        self.day.answered += 1
        call.answered_at = self.now
        call.human = draws[2] >= scenario.machine_share
        if not scenario.amd:  # only the agent finds out it is a machine
            self._live(call, amd_seconds=None)
            return
        right = draws[3] < scenario.amd_accuracy
        call.says_machine = (not call.human) if right else call.human
        self.in_amd += 1
        self._push(self.now + scenario.amd_time.quantile(draws[4]), _AMD_DONE, call)

    def _amd_done(self, payload: object) -> None:
        call = payload
        assert isinstance(call, Call) and self.day is not None
        self.in_amd -= 1
        amd_seconds = self.now - call.answered_at
        if call.says_machine:
            self.day.machines += 1
            self.day.humans_hung_up += call.human
            self.stats.call_ended(self.now, DialResult.MACHINE,
                                  ring_seconds=call.time_to_answer, amd_seconds=amd_seconds)
            return
        self._live(call, amd_seconds=amd_seconds)

    def _live(self, call: Call, *, amd_seconds: float | None) -> None:
        self.stats.call_ended(self.now, DialResult.LIVE, ring_seconds=call.time_to_answer,
                              amd_seconds=amd_seconds)
        call.live_at = self.now
        if self.ready:
            self._join(call, self.ready.popleft())
        else:
            self.waiting[call.ident] = call
            self._push(self.now + SAFE_HARBOR_SECONDS, _SAFE_HARBOR, call)

    def _fate(self, call: Call, *, abandoned: bool) -> None:
        """A live answer's fate is known: the budget and the figures learn it."""
        assert self.day is not None
        self.budget.record(call.live_at, abandoned=abandoned)
        self.day.live_answers += 1
        self.day.abandoned += abandoned
        minute = min(max(0, int((call.live_at - self.day_start) // 60.0)),
                     len(self.day.live_minutes) - 1)
        self.day.live_minutes[minute] += 1
        self.day.abandoned_minutes[minute] += abandoned
        self.recent.append((self.now, abandoned))
        self.recent_abandoned += abandoned

    def last_minute(self) -> tuple[int, int]:
        horizon = self.now - 60.0
        recent = self.recent
        while recent and recent[0][0] <= horizon:
            self.recent_abandoned -= recent.popleft()[1]
        return len(recent), self.recent_abandoned

    def _join(self, call: Call, agent: int) -> None:
        assert self.day is not None
        self._fate(call, abandoned=False)
        draws = call.draws
        if not call.human:
            talk = MACHINE_TALK_SECONDS
            self.day.machines_to_agents += 1
        else:
            self.day.contacts += 1
            if draws[6] < self.scenario.hangup_share:
                talk = 2.0 + (QUICK_HANGUP_MAX - 2.0) * draws[5]
            else:
                talk = self.scenario.talk.quantile(draws[5])
        if self.customers is not None:
            self.customers[call.row]["talk"] = talk
        self.talking += 1
        self.busy[agent] = BusyAgent(AgentPhase.TALKING, self.now)
        self.busy_since[agent] = self.now
        self._push(self.now + talk, _TALK_END, (agent, call, talk))

    def _safe_harbor(self, payload: object) -> None:
        call = payload
        assert isinstance(call, Call)
        if self.waiting.pop(call.ident, None) is not None:
            self._fate(call, abandoned=True)

    def _talk_end(self, payload: object) -> None:
        agent, call, talk = payload  # type: ignore[misc]
        self.talking -= 1
        self.stats.talk_ended(self.now, talk)
        self._count_busy(self.busy_since[agent], self.now, talk_only=True)
        self.busy[agent] = BusyAgent(AgentPhase.WRAP_UP, self.now)
        wrap = self.scenario.wrap_up.quantile(call.draws[7])
        self._push(self.now + wrap, _WRAP_END, (agent, wrap))

    def _wrap_end(self, payload: object) -> None:
        agent, wrap = payload  # type: ignore[misc]
        self.stats.wrap_up_ended(self.now, wrap)
        del self.busy[agent]
        self._count_busy(self.busy_since.pop(agent), self.now, talk_only=False)
        if self.waiting:
            oldest = next(iter(self.waiting))
            self._join(self.waiting.pop(oldest), agent)
        elif self.now >= self.day_end:
            self.logged_in -= 1  # the shift is over and nobody waits: the agent logs out
        else:
            self.ready.append(agent)

    def _count_busy(self, start: float, end: float, *, talk_only: bool) -> None:
        """Talk (at the talk's end) or talk + wrap-up (at the wrap-up's end) within the
        shift, into the day's figures and, for the whole, its timeline."""
        day = self.day
        assert day is not None
        start, end = max(start, self.day_start), min(end, self.day_end)
        if end <= start:
            return
        if talk_only:
            day.talk_seconds += end - start
            return
        day.busy_seconds += end - start
        offset = start - self.day_start
        finish = end - self.day_start
        while offset < finish:
            index = int(offset // BIN_SECONDS)
            bin_end = min(finish, (index + 1) * BIN_SECONDS)
            day.busy_bins[min(index, len(day.busy_bins) - 1)] += bin_end - offset
            offset = bin_end


def run_policy(scenario: DialerScenario, policy: Policy) -> list[DayFigures]:
    """Simulate ``policy`` over every day of the scenario."""
    return CampaignRun(scenario, policy).run()
