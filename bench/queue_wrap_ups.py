"""What keeping the queues' wrap-up costs (features/reports/wrap_ups.py), on a real
PostgreSQL: an agent's whole call, with and without the follower.

    .venv/bin/python bench/queue_wrap_ups.py [--agents 20] [--history 3000] [--cycles 400]
                                             [--load 1000] [--rounds 3] [--flushes 40]
                                             [--seed 1]

- history: ``--history`` calls already handled (records and state changes, stored with the
  follower), so the log and the legs it looks through are not empty;
- a cycle: one agent's call as the service stores it: state changes ringing, on_call (two
  batches), the record saved open, the wrap_up change, the record saved closed, the ready
  change that ends the wrap-up: four state batches and two saves;
- baseline: the same cycle with no follower; cycles alternate in blocks (with, without), the
  medians and the difference are printed. Every "with" cycle's wrap-up is checked counted.
- writer under load: ``--load`` calls of the agents (each agent's one after another), their
  open records stored and their changes logged up to the end of the wrap-up (untimed), then
  the closed records handed to a ``RecordWriter`` at once (``save_many`` batches:
  ``follow_many``); the time until all are flushed, per call end. With the follower and
  without, alternating, ``--rounds`` times; medians.
- a busy desk: ``--flushes`` flushes of one change of each agent at once (ringing, on_call,
  wrap_up, ready: each agent's call, its closed records stored untimed before the wrap_up
  flush, so the wrap_up and ready flushes work the calls out again); per state change,
  with the follower and without, alternating by call; medians.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.records import AgentAttempt, AttemptOutcome, CallRecord, Disposition
from callcenter.features.agents.store import AgentDirectory, NewAgent, StateChange
from callcenter.features.calls.recorder import RecordWriter
from callcenter.features.calls.store import CallRepository
from callcenter.features.reports.models import call_wrap_ups
from callcenter.features.reports.wrap_ups import QueueWrapUps
from callcenter.store import create_engine, session_factory, upgrade
from tests.support.postgres import running_postgres

START = datetime(2026, 11, 2, 8, tzinfo=UTC).timestamp()


class Floor:
    def __init__(self, directory: AgentDirectory, calls: CallRepository) -> None:
        self.directory = directory
        self.calls = calls

    async def cycle(self, call_id: str, agent: str, at: float, rng: random.Random) -> None:
        talk, wrap = rng.uniform(30, 300), rng.uniform(5, 60)
        answered, ended = at + 3, at + 3 + talk
        record = CallRecord(call_id=call_id, started_at=at - 20, answered_at=at - 19,
                            queue="q0", queued_at=at - 10, wait_seconds=10.0,
                            agent_id=agent, agent_answered_at=answered)
        log = self.directory.record_state_changes
        await log([StateChange(agent, "ringing", None, at, "ready")])
        await log([StateChange(agent, "on_call", None, answered, "ringing")])
        await self.calls.save(record)
        await log([StateChange(agent, "wrap_up", "call ended", ended + 0.2, "on_call")])
        await self.calls.save(CallRecord(**{
            **record.__dict__, "ended_at": ended + 0.1, "talk_seconds": talk,
            "disposition": Disposition.ANSWERED,
            "attempts": [AgentAttempt(agent, at, ended, AttemptOutcome.ANSWERED, answered,
                                      talk)]}))
        await log([StateChange(agent, "ready", None, ended + 0.2 + wrap, "wrap_up")])


async def run(url: str, agents: int, history: int, cycles: int, seed: int, load: int,
              rounds: int, flushes: int) -> None:
    rng = random.Random(seed)
    engine = create_engine(url)
    sessions = session_factory(engine)
    follower = QueueWrapUps(sessions)
    with_follower = Floor(AgentDirectory(sessions, followers=[follower]),
                          CallRepository(sessions, followers=[follower]))
    without = Floor(AgentDirectory(sessions), CallRepository(sessions))
    names = [f"agent{n:03d}" for n in range(agents)]
    for name in names:
        await without.directory.create(NewAgent(id=name, name=name))
        await without.directory.record_state_changes(
            [StateChange(name, "ready", "login", START - 60, "logged_out")])
    clock = dict.fromkeys(names, START)
    began = time.perf_counter()
    for index in range(history):
        agent = names[index % agents]
        clock[agent] += 400
        await with_follower.cycle(f"history-{index}", agent, clock[agent], rng)
    print(f"{history} calls of {agents} agents stored with the follower in "
          f"{time.perf_counter() - began:.0f} s")
    block = max(1, min(25, cycles // 8))
    times: dict[str, list[float]] = {"without": [], "with": []}
    counted = []
    for index in range(cycles):
        name = "with" if (index // block) % 2 else "without"
        agent = names[index % agents]
        clock[agent] += 400
        floor = with_follower if name == "with" else without
        call_id = f"bench-{index}"
        began = time.perf_counter()
        await floor.cycle(call_id, agent, clock[agent], rng)
        times[name].append(time.perf_counter() - began)
        if name == "with":
            counted.append(call_id)
    async with sessions() as session:  # each call stored with the follower has its wrap-up
        credits = await session.scalar(select(func.count()).select_from(call_wrap_ups))
    assert credits == history + len(counted), (credits, history, len(counted))
    plain, followed = (statistics.median(times[n]) * 1000 for n in ("without", "with"))
    print(f"a call (4 state batches, 2 saves): {plain:6.2f} ms without, {followed:6.2f} ms "
          f"with the wrap-up follower (+{followed - plain:.2f} ms, x{followed / plain:.2f}); "
          f"p90 {statistics.quantiles(times['without'], n=10)[-1] * 1000:.2f} / "
          f"{statistics.quantiles(times['with'], n=10)[-1] * 1000:.2f} ms")
    await under_load(sessions, follower, names, clock, rng, load, rounds, flushes)
    await engine.dispose()


async def under_load(sessions: async_sessionmaker[AsyncSession], follower: QueueWrapUps,
                     names: list[str], clock: dict[str, float], rng: random.Random,
                     load: int, rounds: int, flushes: int) -> None:
    modes = {"without": (AgentDirectory(sessions), CallRepository(sessions)),
             "with": (AgentDirectory(sessions, followers=[follower]),
                      CallRepository(sessions, followers=[follower]))}
    made = 0

    def next_call(agent: str) -> tuple[CallRecord, list[StateChange], CallRecord]:
        """(open record, the agent's changes to the wrap-up's end, closed record)."""
        nonlocal made
        made += 1
        clock[agent] += 400
        at = clock[agent]
        talk, wrap = rng.uniform(30, 300), rng.uniform(5, 60)
        answered, ended = at + 3, at + 3 + talk
        opened = CallRecord(call_id=f"load-{made}", started_at=at - 20, answered_at=at - 19,
                            queue="q0", queued_at=at - 10, wait_seconds=10.0, agent_id=agent,
                            agent_answered_at=answered)
        closed = CallRecord(**{
            **opened.__dict__, "ended_at": ended + 0.1, "talk_seconds": talk,
            "disposition": Disposition.ANSWERED,
            "attempts": [AgentAttempt(agent, at, ended, AttemptOutcome.ANSWERED, answered,
                                      talk)]})
        changes = [StateChange(agent, "ringing", None, at, "ready"),
                   StateChange(agent, "on_call", None, answered, "ringing"),
                   StateChange(agent, "wrap_up", "call ended", ended + 0.2, "on_call"),
                   StateChange(agent, "ready", None, ended + 0.2 + wrap, "wrap_up")]
        return opened, changes, closed

    times: dict[str, list[float]] = {"without": [], "with": []}
    for round_ in range(rounds):
        for name in ("without", "with") if round_ % 2 == 0 else ("with", "without"):
            directory, repository = modes[name]
            calls = [next_call(names[index % len(names)]) for index in range(load)]
            await repository.save_many([opened for opened, _, _ in calls])  # untimed
            for step in range(4):  # untimed; each agent's changes in logged order
                await directory.record_state_changes([changes[step]
                                                      for _, changes, _ in calls])
            writer = RecordWriter(repository)
            writer.start()
            began = time.perf_counter()
            writer.submit([closed for _, _, closed in calls])
            await writer.flush()
            times[name].append((time.perf_counter() - began) / load)
            await writer.stop()
    plain, followed = (statistics.median(times[n]) * 1000 for n in ("without", "with"))
    print(f"writer under load ({load} call ends handed over at once, {rounds} rounds; per "
          f"call end): {plain:6.3f} ms without, {followed:6.3f} ms with the wrap-up follower "
          f"(+{followed - plain:.3f} ms, x{followed / plain:.2f})")

    state_times: dict[str, list[float]] = {"without": [], "with": []}
    for index in range(max(2, flushes // 4)):
        name = "with" if index % 2 else "without"
        directory, repository = modes[name]
        calls = [next_call(agent) for agent in names]
        await repository.save_many([opened for opened, _, _ in calls])  # untimed
        for step in range(4):
            if step == 2:  # the calls end, then their agents' wrap-ups begin
                await repository.save_many([closed for _, _, closed in calls])  # untimed
            began = time.perf_counter()
            await directory.record_state_changes([changes[step] for _, changes, _ in calls])
            state_times[name].append((time.perf_counter() - began) / len(calls))
    plain, followed = (statistics.median(state_times[n]) * 1000 for n in ("without", "with"))
    print(f"{len(names)} agents' changes flushed at once ({len(state_times['with'])} flushes "
          f"each; per change): {plain:6.3f} ms without, {followed:6.3f} ms with the wrap-up "
          f"follower (+{followed - plain:.3f} ms, x{followed / plain:.2f})")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--history", type=int, default=3000)
    parser.add_argument("--cycles", type=int, default=400)
    parser.add_argument("--load", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--flushes", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with running_postgres() as server:
        url = server.create_database("bench_queue_wrap_ups")
        await upgrade(url)
        await run(url, args.agents, args.history, args.cycles, args.seed, args.load,
                  args.rounds, args.flushes)


if __name__ == "__main__":
    asyncio.run(main())
