"""The ACD's hot path: per-queue lines of callers and per-queue, per-tier lists of ready agents.

A queue keeps
- its line: unanswered calls (waiting, ringing, virtual) sorted by (priority desc, waiting
  since asc, arrival asc), so a caller's position is a bisection away;
- for each tier, its READY and reachable members sorted by the queue's strategy key, so the
  best eligible agent is usually the first one looked at (SKILLS and RANDOM look at all).

An agent is in a queue at one tier: 0 when the queue is in its ``AgentSpec.queues``, else the
first overflow tier naming them. The engine (acd.py) keeps these lists up to date; this module
only reads and sorts them.
"""

from __future__ import annotations

import random
from bisect import bisect_left, insort
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import chain
from operator import attrgetter

from callcenter.core.acd_actions import AgentState, CallState, ConnectMode
from callcenter.core.acd_config import AgentSpec, QueueRules, Strategy

# States in which an agent counts for a call's round (they will get their chance): logged in,
# not paused. A round is over when all of these (reachable, in an open tier, skilled) are tried.
IN_ROUND = frozenset({AgentState.READY, AgentState.RINGING, AgentState.ON_CALL,
                      AgentState.WRAP_UP})
HANDLE_TIME_WEIGHT = 0.2  # weight of the newest call in the queue's average handle time


@dataclass(eq=False, slots=True)
class AgentRecord:
    agent_id: str  # spec.agent_id, kept at hand: the hot path reads it all the time
    spec: AgentSpec
    since: float  # time of the last state change
    idle_since: float
    skills: dict[str, int]
    state: AgentState = AgentState.LOGGED_OUT
    reason: str | None = None
    phone: str | None = None
    mode: ConnectMode | None = None
    reachable: bool = True
    call: CallEntry | None = None  # ringing them or talking to them
    deferred: str | None = None  # "pause" | "logout", applied when the call (and wrap-up) ends
    deferred_reason: str | None = None
    calls_answered: int = 0  # since login
    answered_from: dict[str, int] = field(default_factory=dict)  # queue -> calls since login
    talk_time: float = 0.0  # since login
    wrap_token: int = 0  # bumped whenever a wrap-up ends: older wrap-up timers are stale
    wrap_started: float = 0.0
    wrap_queue: str | None = None  # the queue whose handle time this wrap-up completes
    wrap_talk: float = 0.0
    serves: dict[str, int] = field(default_factory=dict)  # queue -> tier (0 = primary)
    ready_keys: dict[str, tuple[int, tuple[object, ...]]] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        """May be offered a call right now (before tiers, tried sets and skills)."""
        return self.state is AgentState.READY and self.reachable


@dataclass(eq=False, slots=True)
class CallEntry:
    call_id: str
    queue: str
    priority: int
    skills: dict[str, int]  # required skill -> minimum level, as asked
    virtual: bool
    waiting_since: float  # orders the line; kept across overflows and virtual hold
    arrival: int  # ties between equal waiting times
    joined_at: float = 0.0  # entered this queue: tiers, relaxation, max_wait, announcements
    entry: int = 0  # bumped at every placement in a queue: older timers are stale
    key: tuple[int, float, int] = (0, 0.0, 0)
    open_tier: int = 0  # tiers 0..open_tier serve it
    relax_steps: int = 0  # relaxation steps passed
    needed: tuple[tuple[str, int], ...] = ()  # skills required now (after relaxation)
    state: CallState = CallState.WAITING
    agent: AgentRecord | None = None
    tried: set[str] = field(default_factory=set)  # agents offered it in this round
    answered_at: float = 0.0
    overdue: bool = False  # max_wait passed while ringing: expires if the ring fails
    in_line: bool = False
    last_failure: str | None = None
    agenda: list[tuple[float, int, int]] = field(default_factory=list)  # see acd.py: timers
    for_agent: str | None = None  # only this agent may take it (a flow's {agent: X})

    def place(self, queue: QueueIndex, at: float) -> None:
        """Start a new wait in ``queue`` (tiers and relaxation open by the time spent there)."""
        self.queue = queue.name
        self.entry += 1
        self.joined_at = at
        self.key = (-self.priority, self.waiting_since, self.arrival)
        self.state, self.agent, self.overdue = CallState.WAITING, None, False
        self.tried.clear()
        self.open_tier = queue.tiers_open_at_once
        self.relax(queue.relax_steps_at_once, queue)
        queue.insert(self)

    def relax(self, steps: int, queue: QueueIndex) -> None:
        self.relax_steps = steps
        lower = queue.lowered_by[steps]
        self.needed = tuple((skill, level - lower) for skill, level in self.skills.items()
                            if level - lower > 0)


def has_skills(agent: AgentRecord, needed: tuple[tuple[str, int], ...]) -> bool:
    skills = agent.skills
    for skill, level in needed:  # noqa: SIM110 - a plain loop: the hot path, no generator
        if skills.get(skill, 0) < level:
            return False
    return True


def skill_score(agent: AgentRecord, call: CallEntry) -> int:
    """SKILLS ranks by the agent's levels in every skill the call asked for (a requirement
    dropped by relaxation still counts: the better match is preferred)."""
    skills = agent.skills
    return sum(skills.get(skill, 0) for skill in call.skills)


_call_key = attrgetter("key")


class QueueIndex:
    def __init__(self, rules: QueueRules, *, keep_ready: bool = True) -> None:
        self.rules = rules
        self.name = rules.name
        self.strategy = rules.strategy
        self.line: list[CallEntry] = []
        self.members: dict[str, AgentRecord] = {}  # in member order (tier 0, then tiers)
        self.tier_of: dict[str, int] = {}
        self.position: dict[str, int] = {}
        self.primary: list[AgentRecord] = []  # tier-0 members
        self.ready: list[list[tuple[tuple[object, ...], AgentRecord]]] = [
            [] for _ in range(len(rules.tiers) + 1)
        ]
        self.keep_ready = keep_ready  # False: the reference engine scans instead
        self.rr_last = -1  # ROUND_ROBIN: position of the agent offered last
        self.aht = rules.default_handle_time
        self.staffed = 0  # tier-0 members logged in and not paused: the EWT's agent count
        self.tiers_open_at_once = sum(1 for tier in rules.tiers if tier.after <= 0)
        self.relax_steps_at_once = sum(1 for step in rules.relax if step.after <= 0)
        self.lowered_by = [0]  # after n relaxation steps, levels are lower by lowered_by[n]
        for step in rules.relax:
            self.lowered_by.append(self.lowered_by[-1] + step.lower_by)

    # -- membership

    def rebuild(self, agents: Iterable[AgentRecord]) -> None:
        """Recompute who serves this queue at which tier from ``agents`` (in their order)."""
        for agent in self.members.values():
            agent.serves.pop(self.name, None)
            agent.ready_keys.pop(self.name, None)
        by_id = {agent.agent_id: agent for agent in agents}
        members = [(agent, 0) for agent in by_id.values() if self.name in agent.spec.queues]
        seen = {agent.agent_id for agent, _ in members}
        for tier_number, tier in enumerate(self.rules.tiers, start=1):
            for agent_id in tier.agents:
                if agent_id in by_id and agent_id not in seen:  # a removed agent: dormant
                    seen.add(agent_id)
                    members.append((by_id[agent_id], tier_number))
        self.members = {agent.agent_id: agent for agent, _ in members}
        self.tier_of = {agent.agent_id: tier for agent, tier in members}
        self.position = {agent.agent_id: index for index, (agent, _) in enumerate(members)}
        self.primary = [agent for agent, tier in members if tier == 0]
        self.staffed = sum(1 for agent in self.primary if agent.state in IN_ROUND)
        self.ready = [[] for _ in self.ready]
        for agent, tier in members:
            agent.serves[self.name] = tier
            if agent.available:
                self.add_ready(agent)

    # -- the line

    def insert(self, call: CallEntry) -> None:
        insort(self.line, call, key=_call_key)
        call.in_line = True

    def remove(self, call: CallEntry) -> None:
        del self.line[self._index(call)]
        call.in_line = False

    def position_of(self, call: CallEntry) -> int:
        return self._index(call) + 1

    def _index(self, call: CallEntry) -> int:
        index = bisect_left(self.line, call.key, key=_call_key)
        if index == len(self.line) or self.line[index] is not call:
            raise RuntimeError(f"call {call.call_id!r} is not in line in queue {self.name!r}")
        return index

    # -- ready agents

    def ready_key(self, agent: AgentRecord) -> tuple[object, ...]:
        match self.strategy:
            case Strategy.ROUND_ROBIN | Strategy.RANDOM:
                return (self.position[agent.agent_id],)
            case Strategy.FEWEST_CALLS:
                return (agent.answered_from.get(self.name, 0), agent.idle_since, agent.agent_id)
            case Strategy.LEAST_TALK_TIME:
                return (agent.talk_time, agent.idle_since, agent.agent_id)
            case _:  # LONGEST_IDLE, SKILLS (whose score depends on the call)
                return (agent.idle_since, agent.agent_id)

    def add_ready(self, agent: AgentRecord) -> None:
        if not self.keep_ready:
            return
        tier = self.tier_of[agent.agent_id]
        key = self.ready_key(agent)
        agent.ready_keys[self.name] = (tier, key)
        insort(self.ready[tier], (key, agent))

    def remove_ready(self, agent: AgentRecord) -> None:
        if not self.keep_ready:
            return
        tier, key = agent.ready_keys.pop(self.name)
        ready = self.ready[tier]
        index = bisect_left(ready, (key,))
        if index == len(ready) or ready[index][1] is not agent:
            raise RuntimeError(f"agent {agent.agent_id!r} is not ready in queue {self.name!r}")
        del ready[index]

    # -- decisions

    def select(self, call: CallEntry, rng: random.Random) -> AgentRecord | None:
        """The agent the strategy gives ``call`` among the eligible ready agents, if any."""
        tried, needed = call.tried, call.needed
        lists = self.ready[: call.open_tier + 1]
        if call.for_agent is not None:  # a personal call: that agent or nobody
            for ready in lists:
                for _, agent in ready:
                    if (agent.agent_id == call.for_agent and agent.agent_id not in tried
                            and has_skills(agent, needed)):
                        return agent
            return None
        match self.strategy:
            case Strategy.SKILLS:
                best: tuple[object, ...] | None = None
                chosen = None
                for ready in lists:
                    for key, agent in ready:
                        if agent.agent_id not in tried and has_skills(agent, needed):
                            rank = (-skill_score(agent, call), key)
                            if best is None or rank < best:
                                best, chosen = rank, agent
                return chosen
            case Strategy.RANDOM:
                eligible = [agent for ready in lists for _, agent in ready
                            if agent.agent_id not in tried and has_skills(agent, needed)]
                return eligible[rng.randrange(len(eligible))] if eligible else None
            case Strategy.ROUND_ROBIN:
                return self._next_in_turn(lists, tried, needed)
            case _:
                best = None
                chosen = None
                for ready in lists:
                    for key, agent in ready:
                        if agent.agent_id not in tried and has_skills(agent, needed):
                            if best is None or key < best:
                                best, chosen = key, agent
                            break
                return chosen

    def _next_in_turn(self, lists: list[list[tuple[tuple[object, ...], AgentRecord]]],
                      tried: set[str], needed: tuple[tuple[str, int], ...]) -> AgentRecord | None:
        """The eligible agent next after ``rr_last`` in member order, wrapping around."""
        size = len(self.position)
        start = self.rr_last + 1
        best_distance = size
        chosen = None
        for ready in lists:
            split = bisect_left(ready, ((start,),))
            for index in chain(range(split, len(ready)), range(split)):
                key, agent = ready[index]
                if agent.agent_id not in tried and has_skills(agent, needed):
                    distance = (key[0] - start) % size  # type: ignore[operator]
                    if distance < best_distance:
                        best_distance, chosen = distance, agent
                    break
        return chosen

    def first_call_for(self, agent: AgentRecord, tier: int,
                       done: set[CallEntry]) -> CallEntry | None:
        """The first waiting (not ringing) call in line that ``agent`` may take."""
        agent_id = agent.agent_id
        for call in self.line:
            if (call.agent is None and call.open_tier >= tier and agent_id not in call.tried
                    and (call.for_agent is None or call.for_agent == agent_id)
                    and has_skills(agent, call.needed) and call not in done):
                return call
        return None

    def round_over(self, call: CallEntry) -> bool:
        """Every agent who could take ``call`` (logged in, not paused, reachable, in an open
        tier, skilled) has been tried in this round."""
        tried = call.tried
        for agent_id, agent in self.members.items():
            if call.for_agent is not None and agent_id != call.for_agent:
                continue
            if (agent_id not in tried and agent.state in IN_ROUND and agent.reachable
                    and self.tier_of[agent_id] <= call.open_tier
                    and has_skills(agent, call.needed)):
                return False
        return True

    # -- measures

    def record_handle_time(self, seconds: float) -> None:
        self.aht += HANDLE_TIME_WEIGHT * (seconds - self.aht)

    def expected_wait(self, position: int) -> float:
        # With nobody logged in, n counts as 1: the wait is at least one handle time per caller.
        return position * self.aht / max(self.staffed, 1)
