"""One predictive pacing decision for a 200-agent campaign: how long it takes.

    .venv/bin/python bench/pacing.py [--agents 200] [--states 2000] [--rounds 3] [--seed 1]

Builds ``--states`` moments of a busy predictive campaign with AMD (a few agents ready, the
others on a call or in wrap-up for a random while, 50 to 300 calls ringing for up to 25 s,
some in the AMD, a live answer or two waiting), with figures measured from 5,000 simulated
calls and a budget partly used, and times ``decide`` on each with perf_counter_ns. The
baseline, in the same run and the same loop, is the trivial progressive rule (ready agents
minus calls in flight) behind a function call with the same arguments: what the loop and the
call cost by themselves. Rounds alternate (baseline, ours, ours, baseline, ...) so that the
machine's load drifting weighs on both alike; the summary gives each round's p50 / p99 / max
in µs and the medians. Target (issue 13): p99 < 1 ms for 200 agents, beside the one-second tick.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from callcenter.core.pacing import (
    AgentPhase,
    BudgetStanding,
    BusyAgent,
    DialerStats,
    DialResult,
    InFlight,
    PacingDecision,
    PacingRules,
    WindowCounts,
    decide,
)

T0 = 1_700_000_000.0
RULES = PacingRules(amd=True)  # predictive with AMD: the scenario (25% machines)


@dataclass(frozen=True)
class State:
    now: float
    ready: int
    busy: tuple[BusyAgent, ...]
    in_flight: InFlight


def measured_stats(rng: random.Random) -> DialerStats:
    stats = DialerStats()
    for n in range(5000):
        at = T0 - 5000 + n
        draw = rng.random()
        outcome = (DialResult.LIVE if draw < 0.30 else DialResult.MACHINE if draw < 0.40
                   else DialResult.UNANSWERED)
        answered = outcome is not DialResult.UNANSWERED
        stats.call_ended(at, outcome, ring_seconds=rng.uniform(3, 20) if answered else None,
                         amd_seconds=rng.uniform(1.5, 3.5) if answered else None)
        if outcome is DialResult.LIVE:
            stats.talk_ended(at, rng.lognormvariate(4.9, 0.7))
            stats.wrap_up_ended(at, rng.uniform(5, 25))
    return stats


def campaign_states(agents: int, count: int, rng: random.Random) -> list[State]:
    states = []
    for n in range(count):
        now = T0 + n
        ready = rng.randint(0, max(1, agents // 12))
        busy = tuple(
            BusyAgent(AgentPhase.TALKING, now - rng.uniform(0, 600)) if rng.random() < 0.85
            else BusyAgent(AgentPhase.WRAP_UP, now - rng.uniform(0, 20))
            for _ in range(agents - ready))
        ringing = tuple(now - rng.uniform(0, 25) for _ in range(rng.randint(50, 300)))
        states.append(State(now, ready, busy, InFlight(ringing, rng.randint(0, 10),
                                                       rng.randint(0, 3))))
    return states


def progressive_only(now: float, rules: PacingRules, *, ready_agents: int,
                     busy_agents: Sequence[BusyAgent], in_flight: InFlight,
                     stats: DialerStats, budget: BudgetStanding) -> int:
    return max(0, ready_agents - in_flight.total)


def time_round(decider: Callable[..., PacingDecision | int], states: list[State],
               stats: DialerStats, budget: BudgetStanding) -> list[float]:
    rules = RULES
    timings = []
    clock = time.perf_counter_ns
    for state in states:
        start = clock()
        decider(state.now, rules, ready_agents=state.ready, busy_agents=state.busy,
                in_flight=state.in_flight, stats=stats, budget=budget)
        timings.append((clock() - start) / 1000.0)
    return timings


def summary(timings: list[float]) -> tuple[float, float, float]:
    ordered = sorted(timings)
    return (statistics.median(ordered), ordered[int(0.99 * (len(ordered) - 1))], ordered[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--states", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    stats = measured_stats(rng)
    budget = BudgetStanding(0.03, WindowCounts(4000, 50), WindowCounts(90_000, 1300))
    states = campaign_states(args.agents, args.states, rng)
    decisions = [decide(s.now, RULES, ready_agents=s.ready, busy_agents=s.busy,
                        in_flight=s.in_flight, stats=stats, budget=budget) for s in states]
    predictive = sum(1 for d in decisions if d.calls > d.progressive_calls)
    gc.freeze()  # as the service does after start-up
    results: dict[str, list[tuple[float, float, float]]] = {"baseline": [], "ours": []}
    order = ["baseline", "ours"]
    for round_number in range(args.rounds):
        for name in order if round_number % 2 == 0 else order[::-1]:
            decider = progressive_only if name == "baseline" else decide
            results[name].append(summary(time_round(decider, states, stats, budget)))
    print(f"{args.agents} agents, {args.states} campaign states, {args.rounds} rounds; "
          f"{predictive} decisions above progressive, mean "
          f"{statistics.fmean(d.calls for d in decisions):.1f} calls, ringing "
          f"{statistics.fmean(len(s.in_flight.ringing_since) for s in states):.0f}")
    for name, rounds in results.items():
        cells = ", ".join(f"{p50:.1f} / {p99:.1f} / {top:.1f}" for p50, p99, top in rounds)
        medians = [statistics.median(column) for column in zip(*rounds, strict=True)]
        print(f"{name:>8}: p50 / p99 / max µs per round: {cells}; medians "
              f"{medians[0]:.1f} / {medians[1]:.1f} / {medians[2]:.1f}")


if __name__ == "__main__":
    main()
