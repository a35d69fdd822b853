"""Random sequences of events against the ACD: the rules hold whatever happens.

Each event goes to two engines: ``Acd`` and the reference ``ScanAcd``, which decides by
scanning every agent and every waiting call. They must return the same actions (and refuse the
same requests with the same message). An observer replays the actions and checks:
- an agent is never offered two calls, and never rung while paused, logged out or unreachable;
- a caller is never skipped by a later one of the same priority in the same queue when the
  agent offered to the later one could take it;
- every AgentStateChanged starts from the state the previous one left (replaying them gives the
  engine's states), and is a real change;
- between events no waiting caller has an eligible ready agent, and a non-empty tried set
  always leaves someone untried who could take the call (else the round would have restarted).

The first test throws every kind of event at three queues; the second keeps many agents ready
in one queue, so that every strategy has real choices to make.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callcenter.core.acd import (
    Acd,
    AcdAction,
    AgentRequestDeferred,
    AgentSpec,
    AgentState,
    AgentStateChanged,
    Announce,
    CallbackUnanswered,
    ConnectMode,
    NoAgentAvailable,
    OfferCall,
    OfferFailure,
    Overflowed,
    OverflowTier,
    QueueFull,
    QueueRules,
    QueueTimedOut,
    SkillRelaxation,
    Strategy,
)
from callcenter.core.acd_reference import ScanAcd

T0 = 1_700_000_000.0
AGENT_IDS = ("a1", "a2", "a3", "a4", "a5")
QUEUES = ("q0", "q1", "q2")
SKILLS = ("fr", "de")
IN_ROUND = {AgentState.READY, AgentState.RINGING, AgentState.ON_CALL, AgentState.WRAP_UP}

# Strategies built once: building one per draw costs more than the engines' work.
AGENT = st.sampled_from(AGENT_IDS)
SECONDS = st.sampled_from([0, 1, 3, 10, 30])
ENQUEUE_TO = st.sampled_from(["q0", "q0", "q1", "q1", "q2"])
MOVE_TO = st.sampled_from(QUEUES)
CALL_SKILLS = st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 6), max_size=1)
AGENT_SKILLS = st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 10), min_size=1,
                               max_size=2)
AGENT_QUEUES = st.lists(st.sampled_from(QUEUES), unique=True, max_size=2).map(tuple)
PRIMARY_QUEUES = st.lists(st.sampled_from(QUEUES[:2]), unique=True, min_size=1,
                          max_size=2).map(tuple)
FAILURE = st.sampled_from(list(OfferFailure))
RING_FAILURE = st.sampled_from([OfferFailure.NO_ANSWER, OfferFailure.REJECTED])
MODE = st.sampled_from(list(ConnectMode))
PAUSE_REASON = st.sampled_from(["lunch", "break", "nap"])
STRATEGY = st.sampled_from(list(Strategy))
FLAG = st.booleans()
PRIORITY = st.integers(0, 1)
INDEXES = [st.integers(0, n - 1) for n in range(1, 64)]


def pick(data: st.DataObject, options: list[str]) -> str:
    return options[data.draw(INDEXES[len(options) - 1])]


@st.composite
def agent_specs(draw: st.DrawFn) -> list[AgentSpec]:
    count = draw(st.integers(1, len(AGENT_IDS)), label="agents")
    return [AgentSpec(agent_id, draw(PRIMARY_QUEUES), draw(AGENT_SKILLS))
            for agent_id in AGENT_IDS[:count]]


@st.composite
def queue_rules(draw: st.DrawFn, agent_ids: list[str]) -> dict[str, QueueRules]:
    rules = {}
    for name in QUEUES:
        tier_agents = draw(st.lists(st.sampled_from(agent_ids), unique=True, max_size=2))
        tiers = (OverflowTier(draw(st.sampled_from([0, 5, 20])), tuple(tier_agents)),) \
            if tier_agents else ()
        relax = (SkillRelaxation(10, draw(st.integers(1, 5))),) if draw(FLAG) else ()
        rules[name] = QueueRules(
            name,
            strategy=draw(STRATEGY),
            ring_timeout=15,
            max_wait=draw(st.sampled_from([30, 60, 600])),
            max_length=draw(st.sampled_from([None, None, 2])),
            overflow_to={"q0": "q1", "q1": None, "q2": "q0"}[name] if draw(FLAG) else None,
            tiers=tiers,
            relax=relax,
            wrap_up=draw(st.sampled_from([0, 0, 5, None])),
            announce_every=draw(st.sampled_from([None, 7])),
            rona_pause=draw(FLAG),
            default_handle_time=60,
        )
    return rules


@dataclass
class Observer:
    """What the outside world knows, rebuilt from the actions only."""

    agent_ids: list[str]
    rules: dict[str, QueueRules]
    states: dict[str, AgentState] = field(default_factory=dict)
    reasons: dict[str, str | None] = field(default_factory=dict)
    reachable: dict[str, bool] = field(default_factory=dict)
    queue_of: dict[str, str] = field(default_factory=dict)  # live calls
    requested: dict[str, dict[str, int]] = field(default_factory=dict)  # call -> skills asked
    virtual: set[str] = field(default_factory=set)
    ringing: dict[str, str] = field(default_factory=dict)  # call -> agent
    talking: dict[str, str] = field(default_factory=dict)  # call -> agent
    last_at: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for agent_id in self.agent_ids:
            self.states[agent_id] = AgentState.LOGGED_OUT
            self.reasons[agent_id] = None
            self.reachable[agent_id] = True

    def busy(self, agent_id: str) -> bool:
        return agent_id in self.ringing.values() or agent_id in self.talking.values()

    def forget(self, call_id: str) -> None:
        self.queue_of.pop(call_id, None)
        self.ringing.pop(call_id, None)
        self.talking.pop(call_id, None)
        self.virtual.discard(call_id)

    def apply(self, actions: list[AcdAction], now: float, snapshot: dict[str, Any],
              *, check_order: bool) -> None:
        offers: list[OfferCall] = []
        for action in actions:
            match action:
                case OfferCall(call_id=call_id, agent_id=agent_id):
                    assert call_id in self.queue_of and call_id not in self.ringing
                    assert call_id not in self.talking
                    assert not self.busy(agent_id), f"{agent_id} offered a second call"
                    assert self.states[agent_id] is AgentState.READY, (agent_id, self.states)
                    assert self.reachable[agent_id], f"{agent_id} is unreachable"
                    assert action.queue == self.queue_of[call_id]
                    assert action.virtual == (call_id in self.virtual)
                    assert action.ring_timeout == self.rules[action.queue].ring_timeout
                    self.ringing[call_id] = agent_id
                    offers.append(action)
                case AgentStateChanged(agent_id=agent_id, state=state, previous=previous):
                    assert previous is self.states[agent_id], (action, self.states[agent_id])
                    assert state is not previous or action.reason != self.reasons[agent_id]
                    assert self.last_at.get(agent_id, T0) <= action.at <= now
                    self.states[agent_id], self.reasons[agent_id] = state, action.reason
                    self.last_at[agent_id] = action.at
                case QueueTimedOut(call_id=call_id) | QueueFull(call_id=call_id) | \
                        NoAgentAvailable(call_id=call_id) | CallbackUnanswered(call_id=call_id):
                    assert call_id not in self.talking
                    self.forget(call_id)
                case Overflowed(call_id=call_id, to_queue=to_queue):
                    assert call_id not in self.ringing and call_id not in self.talking
                    self.queue_of[call_id] = to_queue
                case Announce(call_id=call_id, position=position, expected_wait=wait):
                    assert call_id in self.queue_of and call_id not in self.virtual
                    assert call_id not in self.ringing and call_id not in self.talking
                    assert position >= 1 and wait > 0
                case AgentRequestDeferred(agent_id=agent_id):
                    assert self.states[agent_id] in (AgentState.RINGING, AgentState.ON_CALL)
        if check_order:
            self.check_nobody_skipped(offers, now, snapshot)

    # -- eligibility as the rules define it, from the snapshot and the rules

    def open_tier(self, queue: str, call: dict[str, Any], now: float) -> int:
        waited = now - call["joined_at"]
        return sum(1 for tier in self.rules[queue].tiers if tier.after <= waited)

    def needed(self, queue: str, call: dict[str, Any], now: float) -> dict[str, int]:
        waited = now - call["joined_at"]
        lower = sum(s.lower_by for s in self.rules[queue].relax if s.after <= waited)
        return {skill: level - lower for skill, level in self.requested[call["call_id"]].items()
                if level - lower > 0}

    def tier_of(self, agent: dict[str, Any], agent_id: str, queue: str) -> int | None:
        if queue in agent["queues"]:
            return 0
        for number, tier in enumerate(self.rules[queue].tiers, start=1):
            if agent_id in tier.agents:
                return number
        return None

    def could_take(self, agent_id: str, agent: dict[str, Any], queue: str,
                   call: dict[str, Any], now: float) -> bool:
        """Eligible apart from being READY and untried."""
        tier = self.tier_of(agent, agent_id, queue)
        return (tier is not None and tier <= self.open_tier(queue, call, now)
                and agent["reachable"]
                and all(agent["skills"].get(skill, 0) >= level
                        for skill, level in self.needed(queue, call, now).items()))

    def check_nobody_skipped(self, offers: list[OfferCall], now: float,
                             snapshot: dict[str, Any]) -> None:
        offered_order = [offer.call_id for offer in offers]
        for offer in offers:
            queue = snapshot["queues"][offer.queue]
            line = queue["calls"]
            later = next(call for call in line if call["call_id"] == offer.call_id)
            agent = snapshot["agents"][offer.agent_id]
            for earlier in line:
                if earlier is later:
                    break
                if earlier["priority"] != later["priority"]:
                    continue
                if earlier["agent_id"] is None:  # still waiting: could it have had the agent?
                    assert not (offer.agent_id not in earlier["tried"] and self.could_take(
                        offer.agent_id, agent, offer.queue, earlier, now)), (earlier, offer)
                elif earlier["call_id"] in offered_order:  # offered in the same event: first
                    assert offered_order.index(earlier["call_id"]) < \
                        offered_order.index(offer.call_id)

    def check_state(self, center: Acd, snapshot: dict[str, Any], now: float) -> None:
        agents = snapshot["agents"]
        for agent_id, state in self.states.items():
            if agent_id in agents:
                assert center.agent_state(agent_id) is state, agent_id
                assert agents[agent_id]["reachable"] == self.reachable[agent_id]
                assert (state is AgentState.RINGING) == (agent_id in self.ringing.values())
                assert (state is AgentState.ON_CALL) == (agent_id in self.talking.values())
        for name in self.rules:
            line = snapshot["queues"][name]["calls"]
            assert {c["call_id"] for c in line} == {
                c for c, q in self.queue_of.items() if q == name and c not in self.talking}
            keys = [(-c["priority"], c["waiting_since"]) for c in line]
            assert keys == sorted(keys), "line out of order"
            staffed = sum(1 for agent in agents.values()
                          if name in agent["queues"] and agent["state"] in IN_ROUND)
            aht = snapshot["queues"][name]["aht"]
            for position, call in enumerate(line, start=1):
                assert call["expected_wait"] == position * aht / max(staffed, 1)
            for call in line:
                if call["agent_id"] is not None:
                    continue
                candidates = [a for a, agent in agents.items()
                              if self.could_take(a, agent, name, call, now)]
                ready_untried = [a for a in candidates if agents[a]["state"] == "ready"
                                 and a not in call["tried"]]
                assert not ready_untried, (call, ready_untried)
                if call["tried"]:
                    in_round = [a for a in candidates if agents[a]["state"] in IN_ROUND]
                    assert not set(in_round) <= set(call["tried"]), (call, in_round)


class Twins:
    """The engine and the reference, fed the same events; their answers must agree."""

    def __init__(self, rules: dict[str, QueueRules], specs: list[AgentSpec], seed: int) -> None:
        self.center = Acd(rules, specs, T0, rng=random.Random(seed))
        self.reference = ScanAcd(rules, specs, T0, rng=random.Random(seed))

    def __call__(self, method: str, *args: Any, **kwargs: Any) -> list[AcdAction] | None:
        outcomes = []
        for engine in (self.center, self.reference):
            try:
                outcomes.append(getattr(engine, method)(*args, **kwargs))
            except ValueError as error:
                outcomes.append((type(error), str(error)))
        assert outcomes[0] == outcomes[1], (method, args, outcomes)
        return outcomes[0] if isinstance(outcomes[0], list) else None


class Scenario:
    """Feeds events to the twins, keeping the observer's picture and the time."""

    def __init__(self, rules: dict[str, QueueRules], specs: list[AgentSpec], seed: int) -> None:
        self.twins = Twins(rules, specs, seed)
        self.seen = Observer([spec.agent_id for spec in specs], rules)
        self.now = T0
        self.calls = 0
        self.snapshot = self.twins.center.snapshot(self.now)

    def run(self, method: str, *args: Any, check_order: bool = True, **kwargs: Any) -> None:
        actions = self.twins(method, *args, **kwargs)
        self.snapshot = self.twins.center.snapshot(self.now)
        if actions is not None:
            self.seen.apply(actions, self.now, self.snapshot, check_order=check_order)

    def pass_time(self, seconds: float) -> None:
        """Time passes; the timers due fire on their own, so the next event has none."""
        self.now += seconds
        self.run("tick", self.now, check_order=False)

    def enqueue(self, data: st.DataObject, queue: str) -> None:
        call_id = f"c{self.calls}"
        self.calls += 1
        skills, virtual = data.draw(CALL_SKILLS), data.draw(FLAG)
        self.seen.queue_of[call_id] = queue
        self.seen.requested[call_id] = skills
        if virtual:
            self.seen.virtual.add(call_id)
        since = self.now - 50 if data.draw(FLAG) else None
        self.run("enqueue", call_id, queue, self.now, priority=data.draw(PRIORITY),
                 skills=skills, virtual=virtual, waiting_since=since)

    def answer(self, call_id: str) -> None:
        agent_id = self.seen.ringing.pop(call_id)
        self.seen.talking[call_id] = agent_id
        self.seen.virtual.discard(call_id)
        self.run("offer_answered", call_id, agent_id, self.now)

    def fail(self, call_id: str, failure: OfferFailure) -> None:
        if failure is OfferFailure.CUSTOMER_NO_ANSWER and call_id not in self.seen.virtual:
            failure = OfferFailure.REJECTED
        agent_id = self.seen.ringing.pop(call_id)
        if failure is OfferFailure.UNREACHABLE:
            self.seen.reachable[agent_id] = False
        self.run("offer_failed", call_id, agent_id, self.now, failure)

    def end(self, call_id: str) -> None:
        self.seen.forget(call_id)
        self.run("call_ended", call_id, self.now)


OPERATIONS = st.sampled_from(
    ["enqueue"] * 5 + ["answer", "fail", "end"] * 4 + ["login", "ready", "pause"] * 2
    + ["reachable"] * 2 + ["logout", "leave", "virtual", "move", "update", "remove", "add",
                           "bogus"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_any_events_keep_the_rules_and_match_the_reference(
    data: st.DataObject, seed: int
) -> None:
    specs = data.draw(agent_specs())
    scene = Scenario(data.draw(queue_rules([s.agent_id for s in specs])), specs, seed)
    seen, run = scene.seen, scene.run
    for spec in specs:  # most agents start logged in
        if data.draw(PRIORITY) or data.draw(FLAG):
            run("login", spec.agent_id, scene.now, phone=f"p-{spec.agent_id}")
    for _ in range(data.draw(st.integers(1, 40), label="events")):
        scene.pass_time(data.draw(SECONDS))
        now = scene.now
        operation = data.draw(OPERATIONS)
        agent_id = data.draw(AGENT)
        live = sorted(seen.queue_of)
        match operation:
            case "enqueue":
                scene.enqueue(data, data.draw(ENQUEUE_TO))
            case "answer" if seen.ringing:
                scene.answer(pick(data, sorted(seen.ringing)))
            case "fail" if seen.ringing:
                scene.fail(pick(data, sorted(seen.ringing)), data.draw(FAILURE))
            case "end" if seen.talking:
                scene.end(pick(data, sorted(seen.talking)))
            case "leave" if live:
                call_id = pick(data, live)
                seen.forget(call_id)
                run("caller_left", call_id, now)
            case "virtual" if live:
                call_id = pick(data, live)
                if call_id not in seen.ringing and call_id not in seen.talking:
                    seen.virtual.add(call_id)
                run("to_virtual_hold", call_id, now)
            case "move" if live:
                call_id = pick(data, live)
                queue = data.draw(MOVE_TO)
                if call_id not in seen.ringing:
                    if seen.talking.pop(call_id, None):
                        seen.virtual.discard(call_id)
                    seen.queue_of[call_id] = queue
                run("move", call_id, queue, now)
            case "login":
                phone = pick(data, ["p1", "p2", f"p-{agent_id}"])
                run("login", agent_id, now, phone=phone, mode=data.draw(MODE))
            case "logout":
                run("logout", agent_id, now)
            case "pause":
                run("pause", agent_id, data.draw(PAUSE_REASON), now)
            case "ready":
                run("ready", agent_id, now)
            case "reachable":
                reachable = data.draw(FLAG)
                if agent_id in scene.snapshot["agents"]:
                    seen.reachable[agent_id] = reachable
                run("set_reachable", agent_id, reachable, now)
            case "update":
                spec = AgentSpec(agent_id, data.draw(AGENT_QUEUES), data.draw(AGENT_SKILLS))
                run("update_agent", spec, now)
            case "remove" if data.draw(FLAG):
                run("remove_agent", agent_id, now)
            case "add" if agent_id not in scene.snapshot["agents"]:
                seen.states[agent_id] = AgentState.LOGGED_OUT
                seen.reasons[agent_id] = None
                seen.reachable[agent_id] = True
                seen.last_at.pop(agent_id, None)
                run("add_agent", AgentSpec(agent_id, data.draw(AGENT_QUEUES)), now)
            case _:
                run("caller_left", "ghost", now)
        seen.check_state(scene.twins.center, scene.snapshot, now)


BUSY_QUEUE_EVENTS = st.sampled_from(["enqueue"] * 4 + ["serve"] * 3 + ["fail", "wait"])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), seed=st.integers(0, 2**16), strategy=STRATEGY,
       agents=st.integers(3, 8), tier_agents=st.integers(0, 3))
def test_every_strategy_chooses_as_the_reference_among_many_ready_agents(
    data: st.DataObject, seed: int, strategy: Strategy, agents: int, tier_agents: int
) -> None:
    agent_ids = [f"b{n}" for n in range(agents)]
    specs = [AgentSpec(agent_id, ("q0",) if n >= tier_agents else (), data.draw(AGENT_SKILLS))
             for n, agent_id in enumerate(agent_ids)]
    tiers = (OverflowTier(data.draw(st.sampled_from([0, 10])), tuple(agent_ids[:tier_agents])),) \
        if tier_agents else ()
    relax = (SkillRelaxation(20, 3),) if data.draw(FLAG) else ()
    rules = {"q0": QueueRules("q0", strategy=strategy, tiers=tiers, relax=relax,
                              rona_pause=False, wrap_up=data.draw(st.sampled_from([0, 2])))}
    scene = Scenario(rules, specs, seed)
    seen = scene.seen
    for agent_id in agent_ids:  # logged in at different times: different idle times
        scene.pass_time(data.draw(SECONDS))
        scene.run("login", agent_id, scene.now, phone=agent_id)
    for _ in range(data.draw(st.integers(5, 40), label="events")):
        match data.draw(BUSY_QUEUE_EVENTS):
            case "enqueue":
                scene.enqueue(data, "q0")
            case "serve" if seen.ringing:  # answered, a short talk, over
                call_id = pick(data, sorted(seen.ringing))
                scene.answer(call_id)
                scene.pass_time(data.draw(SECONDS))
                scene.end(call_id)
            case "fail" if seen.ringing:
                scene.fail(pick(data, sorted(seen.ringing)), data.draw(RING_FAILURE))
            case _:
                scene.pass_time(data.draw(SECONDS))
        seen.check_state(scene.twins.center, scene.snapshot, scene.now)
