"""Routing decisions of the ACD under load: the indexed engine against a scan of everything.

    .venv/bin/python bench/routing.py [--agents 1000] [--queues 50] [--load 0.97]
                                      [--warm-up 900] [--measure 900] [--rounds 3] [--seed 1]

A discrete-event run on virtual time drives the engine as a busy centre would: callers
arrive (Poisson, spread over the queues, most asking for one or two skills at a level),
agents answer after a few seconds (some let it ring out, some reject), talk for an
exponential time, wrap up, sometimes take a break; callers lose patience and hang up; the
engine ticks once a virtual second. Every queue has an overflow tier (after 30 s), two skill
relaxation steps, announcements every 30 s, and a max wait, half of them with an overflow
queue; the six strategies take turns across the queues. Agents serve 3 queues each and have
3 of 8 skills at levels 1..10.

- ours: ``Acd``, per-queue lines and per-queue per-tier ready lists, only what an event touched;
- baseline: ``ScanAcd`` (callcenter/core/acd_reference.py), the same engine whose every
  dispatch scans every waiting call of every queue and, for each, every agent.

Both engines see the same events and make the same decisions (the run checks it: a digest of
every action). Each engine call in the measured window (after the warm-up) is timed with
perf_counter_ns. A "decision" is a call that routes: enqueue, offer_answered/failed,
call_ended, caller_left, an agent's ready/pause, and a tick that had something due (ticks
with nothing due are counted apart). Rounds alternate (baseline, ours, ours, baseline, ...)
so that the machine's load drifting weighs on both alike; the summary gives the medians.
Python's collector runs as in a service (``gc.freeze()`` after start-up).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import heapq
import itertools
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from callcenter.core.acd import (
    Acd,
    AcdAction,
    AgentSpec,
    AgentStateChanged,
    CallbackUnanswered,
    NoAgentAvailable,
    OfferCall,
    OfferFailure,
    OverflowTier,
    QueueFull,
    QueueRules,
    QueueTimedOut,
    SkillRelaxation,
    Strategy,
)
from callcenter.core.acd_reference import ScanAcd

T0 = 1_700_000_000.0
SKILLS = ("en", "fr", "de", "es", "billing", "tech", "sales", "vip")
TALK_MEAN = 180.0
WRAP_UP = 10.0
ANSWER_DELAY = (1.0, 6.0)
PATIENCE_MEAN = 240.0
BREAK_EVERY = 10.0  # seconds of virtual time between two agents going on a break
BREAK_LENGTH = 300.0


def build_config(agents: int, queues: int, rng: random.Random
                 ) -> tuple[dict[str, QueueRules], list[AgentSpec]]:
    names = [f"q{n:02d}" for n in range(queues)]
    agent_ids = [f"agent{n:04d}" for n in range(agents)]
    strategies = list(Strategy)
    rules = {}
    for n, name in enumerate(names):
        overflow = names[n + 1] if n % 2 == 0 and n + 1 < queues else None
        rules[name] = QueueRules(
            name,
            strategy=strategies[n % len(strategies)],
            max_wait=300,
            overflow_to=overflow,
            tiers=(OverflowTier(30, tuple(rng.sample(agent_ids, 20))),),
            relax=(SkillRelaxation(45, 2), SkillRelaxation(90, 3)),
            wrap_up=None if n % 10 == 9 else WRAP_UP,  # a few queues: manual wrap-up
            announce_every=30,
        )
    specs = [AgentSpec(agent_id, tuple(rng.sample(names, 3)),
                       {skill: rng.randint(1, 10) for skill in rng.sample(SKILLS, 3)})
             for agent_id in agent_ids]
    return rules, specs


@dataclass
class Timing:
    decisions: list[int] = field(default_factory=list)  # ns per routing call
    idle_ticks: list[int] = field(default_factory=list)  # ns per tick with nothing due
    by_method: dict[str, list[int]] = field(default_factory=dict)
    offers: int = 0
    digest: Any = field(default_factory=hashlib.sha256)


class Run:
    """The simulated centre around one engine."""

    def __init__(self, engine_class: type[Acd], agents: int, queues: int, load: float,
                 seed: int) -> None:
        setup = random.Random(seed)
        self.rules, self.specs = build_config(agents, queues, setup)
        self.queues = list(self.rules)
        self.engine = engine_class(self.rules, self.specs, T0, rng=random.Random(seed))
        self.arrivals = random.Random(seed + 1)  # callers: their own stream
        self.people = random.Random(seed + 2)  # agents and patience
        handle = TALK_MEAN + WRAP_UP + sum(ANSWER_DELAY) / 2
        self.rate = load * agents / handle  # calls per second
        self.events: list[tuple[float, int, str, tuple[Any, ...]]] = []
        self.seq = itertools.count()
        self.state: dict[str, str] = {}  # call -> waiting | ringing | talking
        self.offered_from: dict[str, str] = {}  # agent -> queue of their last offer
        self.calls = itertools.count()
        self.timing = Timing()
        self.measuring = False
        self.now = T0
        for n, spec in enumerate(self.specs):
            self.at(T0 + 60 * n / len(self.specs), "login", spec.agent_id)
        self.at(T0, "arrival")
        self.at(T0 + 1, "tick")
        self.at(T0 + BREAK_EVERY, "break")

    def at(self, when: float, kind: str, *payload: Any) -> None:
        heapq.heappush(self.events, (when, next(self.seq), kind, payload))

    def call(self, method: str, *args: Any, **kwargs: Any) -> list[AcdAction]:
        started = time.perf_counter_ns()
        actions: list[AcdAction] = getattr(self.engine, method)(*args, **kwargs)
        spent = time.perf_counter_ns() - started
        if self.measuring:
            timing = self.timing
            if method == "tick" and not actions:
                timing.idle_ticks.append(spent)
            else:
                timing.decisions.append(spent)
                timing.by_method.setdefault(method, []).append(spent)
            timing.digest.update(repr(actions).encode())
        self.handle(actions)
        return actions

    def run_until(self, end: float) -> None:
        while self.events and self.events[0][0] <= end:
            self.now, _, kind, payload = heapq.heappop(self.events)
            getattr(self, f"on_{kind}")(*payload)

    # -- the world

    def on_login(self, agent_id: str) -> None:
        self.call("login", agent_id, self.now, phone=f"phone-{agent_id}")

    def on_tick(self) -> None:
        self.call("tick", self.now)
        self.at(self.now + 1, "tick")

    def on_arrival(self) -> None:
        self.at(self.now + self.arrivals.expovariate(self.rate), "arrival")
        call_id = f"c{next(self.calls)}"
        draw = self.arrivals.random()
        count = 0 if draw < 0.3 else 1 if draw < 0.85 else 2
        skills = {skill: self.arrivals.randint(1, 5)
                  for skill in self.arrivals.sample(SKILLS, count)}
        priority = 1 if self.arrivals.random() < 0.1 else 0
        queue = self.arrivals.choice(self.queues)
        self.state[call_id] = "waiting"
        self.at(self.now + self.people.expovariate(1 / PATIENCE_MEAN), "patience", call_id)
        self.call("enqueue", call_id, queue, self.now, priority=priority, skills=skills)

    def on_patience(self, call_id: str) -> None:
        if self.state.get(call_id) in ("waiting", "ringing"):
            self.call("caller_left", call_id, self.now)
            self.state.pop(call_id, None)

    def on_ring_ends(self, call_id: str, agent_id: str, outcome: str) -> None:
        if self.state.get(call_id) != "ringing":
            return  # the caller hung up meanwhile
        if outcome == "answer":
            self.state[call_id] = "talking"
            self.call("offer_answered", call_id, agent_id, self.now)
            self.at(self.now + max(5.0, self.people.expovariate(1 / TALK_MEAN)), "hang_up",
                    call_id)
        else:
            self.state[call_id] = "waiting"
            self.call("offer_failed", call_id, agent_id, self.now, OfferFailure(outcome))

    def on_hang_up(self, call_id: str) -> None:
        if self.state.pop(call_id, None) == "talking":
            self.call("call_ended", call_id, self.now)

    def on_ready(self, agent_id: str, state: str, reason: str) -> None:
        """The agent is back from a RONA pause, a break or a manual wrap-up (if still in it)."""
        view = self.engine.agent(agent_id)
        if (view.state.value, view.reason) == (state, reason):
            self.call("ready", agent_id, self.now)

    def on_break(self) -> None:
        self.at(self.now + BREAK_EVERY, "break")
        agent_id = self.people.choice(self.specs).agent_id
        if self.engine.agent_state(agent_id).value != "logged_out":
            self.call("pause", agent_id, "break", self.now)
            self.at(self.now + BREAK_LENGTH, "ready", agent_id, "paused", "break")

    def handle(self, actions: list[AcdAction]) -> None:
        for action in actions:
            match action:
                case OfferCall(call_id=call_id, agent_id=agent_id, ring_timeout=ring_timeout):
                    self.timing.offers += self.measuring
                    self.state[call_id] = "ringing"
                    self.offered_from[agent_id] = action.queue
                    draw = self.people.random()
                    if draw < 0.92:
                        self.at(self.now + self.people.uniform(*ANSWER_DELAY), "ring_ends",
                                call_id, agent_id, "answer")
                    elif draw < 0.97:
                        self.at(self.now + ring_timeout, "ring_ends", call_id, agent_id,
                                OfferFailure.NO_ANSWER.value)
                    else:
                        self.at(self.now + 2, "ring_ends", call_id, agent_id,
                                OfferFailure.REJECTED.value)
                case AgentStateChanged(agent_id=agent_id, state=state, reason=reason):
                    if state.value == "paused" and reason == "RONA":
                        self.at(self.now + 20, "ready", agent_id, "paused", "RONA")
                    elif state.value == "wrap_up" and \
                            self.rules[self.offered_from[agent_id]].wrap_up is None:
                        self.at(self.now + 15, "ready", agent_id, "wrap_up", reason)
                case QueueTimedOut(call_id=call_id) | QueueFull(call_id=call_id) | \
                        NoAgentAvailable(call_id=call_id) | CallbackUnanswered(call_id=call_id):
                    self.state.pop(call_id, None)


def measure(engine_class: type[Acd], args: argparse.Namespace) -> tuple[Run, float]:
    run = Run(engine_class, args.agents, args.queues, args.load, args.seed)
    run.run_until(T0 + args.warm_up)
    gc.collect()
    gc.freeze()  # start-up is over, as a service would do
    run.measuring = True
    started = time.perf_counter()
    run.run_until(T0 + args.warm_up + args.measure)
    wall = time.perf_counter() - started
    gc.unfreeze()
    return run, wall


def percentile(values: list[int], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] / 1000  # µs


def report(kind: str, run: Run) -> dict[str, float]:
    timing = run.timing
    decisions = timing.decisions
    total = sum(decisions) / 1e9
    waiting = sum(1 for state in run.state.values() if state == "waiting")
    figures = {"rate": len(decisions) / total, "p50": percentile(decisions, 50),
               "p99": percentile(decisions, 99), "max": max(decisions) / 1000,
               "idle": percentile(timing.idle_ticks, 99) if timing.idle_ticks else 0.0}
    print(f"{kind:>9} {len(decisions):>9} {timing.offers:>7} {figures['rate']:>12,.0f} "
          f"{figures['p50']:>8.1f} {figures['p99']:>9.1f} {figures['max']:>9.1f} "
          f"{figures['idle']:>9.2f} {waiting:>7}", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--queues", type=int, default=50)
    parser.add_argument("--load", type=float, default=0.97,
                        help="offered load as a share of the agents' capacity")
    parser.add_argument("--warm-up", type=float, default=900, help="virtual seconds")
    parser.add_argument("--measure", type=float, default=900, help="virtual seconds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ours-only", action="store_true", help="skip the baseline")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile one measured run of ours and print the top functions")
    args = parser.parse_args()
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        measure(Acd, args)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return
    print(f"{args.agents} agents, {args.queues} queues, load {args.load:.2f}; "
          f"{args.warm_up:.0f} s warm-up, {args.measure:.0f} s measured (virtual); "
          f"{args.rounds} rounds of each engine, interleaved")
    print(f"{'engine':>9} {'decisions':>9} {'offers':>7} {'decisions/s':>12} {'p50 µs':>8} "
          f"{'p99 µs':>9} {'max µs':>9} {'idle tick':>9} {'waiting':>7}")
    kinds = {"ours": Acd} if args.ours_only else {"baseline": ScanAcd, "ours": Acd}
    results: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
    digests: set[str] = set()
    by_method: dict[str, Counter[str]] = {}
    for index in range(args.rounds):
        order = list(kinds) if index % 2 == 0 else list(reversed(kinds))
        for kind in order:
            run, _wall = measure(kinds[kind], args)
            results[kind].append(report(kind, run))
            digests.add(run.timing.digest.hexdigest())
            by_method[kind] = Counter({method: len(times) for method, times
                                       in run.timing.by_method.items()})
            if kind == "ours" and index == 0:
                ours_methods = {method: (percentile(times, 50), percentile(times, 99))
                                for method, times in run.timing.by_method.items()}
    print()
    print("same decisions in every run:", "yes" if len(digests) == 1 else "NO")
    print("decisions by kind:", ", ".join(f"{m} {n}" for m, n in by_method["ours"].items()))
    print("ours per kind, p50/p99 µs:", ", ".join(
        f"{m} {p50:.1f}/{p99:.1f}" for m, (p50, p99) in ours_methods.items()))
    print()
    print("medians over the rounds")
    print(f"{'engine':>9} {'decisions/s':>12} {'p50 µs':>8} {'p99 µs':>9} {'max µs':>9}")
    medians = {}
    for kind, rounds in results.items():
        medians[kind] = {key: statistics.median(r[key] for r in rounds)
                         for key in ("rate", "p50", "p99", "max")}
        m = medians[kind]
        print(f"{kind:>9} {m['rate']:>12,.0f} {m['p50']:>8.1f} {m['p99']:>9.1f} "
              f"{m['max']:>9.1f}")
    if "baseline" in medians:
        ours, base = medians["ours"], medians["baseline"]
        print(f"{'ratio':>9} {ours['rate'] / base['rate']:>11.1f}x "
              f"{base['p50'] / ours['p50']:>7.1f}x {base['p99'] / ours['p99']:>8.1f}x "
              f"(baseline / ours for times)")
    verdict = "met" if medians["ours"]["p99"] < 100 else "NOT met"
    print(f"target p99 < 100 µs per decision: {verdict}")


if __name__ == "__main__":
    main()
