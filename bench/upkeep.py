"""What the record followers (the queue/IVR/survey aggregates, the agent aggregates, the
call pricer) add to storing a call's end, on a real PostgreSQL; baseline: the same saves
without followers, in the same run.

    .venv/bin/python bench/upkeep.py [--calls 200] [--load 1000] [--rounds 3] [--seed 1]

- one by one: ``--calls`` calls, each saved open then closed (``CallRepository.save``,
  two transactions, as the service does when nothing else is waiting), with each follower
  alone, all of them (the service's set) and none, in alternating blocks; the median per
  call, the difference to none and the statements each needs. The queue/IVR/survey
  follower keeps the day rows of America/Sao_Paulo, as the service does; the same without
  them is timed beside it (alone, with the others, and batched).
- writer under load: ``--load`` calls whose open records are stored, then their closed
  records handed to a ``RecordWriter`` at once (call ends arriving faster than they are
  stored); the time until all are flushed, per call. The writer stores the records waiting
  in batches (``save_many``: one transaction of up to ``MAX_BATCH``); for comparison also
  through a store without ``save_many`` (one record, one transaction, as before). With
  all followers and none, alternating, ``--rounds`` times; medians.
- the state changes: one change (what the desk flushes when it is quiet), then one change
  of each of 20 agents flushed at once (a busy desk), with the agent aggregates following
  and without, alternating.

Statements are counted with an engine event (an executemany is one statement).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event, insert

from callcenter.core.clock import to_datetime
from callcenter.core.records import (
    AgentAttempt,
    AttemptOutcome,
    CallRecord,
    Disposition,
    HangupBy,
    IvrStep,
    SurveyAnswer,
)
from callcenter.core.report_contributions import ReportRules
from callcenter.features.agents.models import AgentRow
from callcenter.features.agents.store import AgentDirectory, StateChange
from callcenter.features.calls.recorder import RecordWriter
from callcenter.features.calls.store import CallRepository
from callcenter.features.rating.store import CallPricer, TariffStore, Trunks
from callcenter.features.reports.agent_store import AgentAggregates
from callcenter.features.reports.aggregates import ReportAggregates
from callcenter.store import create_engine, session_factory, upgrade
from tests.support.postgres import running_postgres

START = datetime(2026, 12, 1, 8, tzinfo=UTC).timestamp()
QUEUES = ["sales", "support"]
AGENTS = [f"agent{n:02d}" for n in range(20)]
TARIFF = (b"prefix,direction,trunk,per_minute,connection_fee,increments,minimum,currency,"
          b"decimals,rounding,effective_from,description\n"
          b"55,inbound,,0.02,0,60/60,0,BRL,2,half_up,2026-01-01,Brazil toll-free\n")


def call_end(call_id: str, rng: random.Random, at: float) -> tuple[CallRecord, CallRecord]:
    """A call's open record (in the queue) and its closed one: IVR, queue, an agent's
    answer after a missed ring, talk, a survey answer; over the trunk (priced)."""
    queue, agent, other = rng.choice(QUEUES), *rng.sample(AGENTS, 2)
    queued = at + rng.uniform(5, 30)
    wait = round(rng.expovariate(1 / 25), 3)
    talk = round(rng.expovariate(1 / 240), 3)
    answered = queued + wait
    common: dict[str, Any] = dict(
        call_id=call_id, started_at=at, answered_at=at + 0.5, channel=f"PJSIP/trunk-{call_id}",
        caller_number=f"+55119{rng.randrange(10**8):08d}", dialed_number="0800",
        ivr_path=[IvrStep("welcome", at + 0.5), IvrStep("main", at + 3, "1")],
        queue=queue, queued_at=queued)
    opened = CallRecord(**common, attempts=[AgentAttempt(other, queued + 1)])
    closed = CallRecord(
        **common, ended_at=answered + talk + 20, wait_seconds=wait, agent_id=agent,
        agent_answered_at=answered, talk_seconds=talk, hangup_by=HangupBy.CALLER,
        hangup_cause="16", disposition=Disposition.ANSWERED,
        attempts=[AgentAttempt(other, queued + 1, queued + 6, AttemptOutcome.NO_ANSWER),
                  AgentAttempt(agent, answered - 3, answered + talk, AttemptOutcome.ANSWERED,
                               answered, talk)],
        survey_answers=[SurveyAnswer("csat", "agent-rating", str(rng.randint(1, 5)),
                                     answered + talk + 10)])
    return opened, closed


@dataclass
class Statements:
    count: int = 0


def median_ms(values: Sequence[float]) -> float:
    return statistics.median(values) * 1000


class OneByOne:
    """A store without ``save_many``: the writer stores each record in its own transaction."""

    def __init__(self, repository: CallRepository) -> None:
        self._repository = repository

    async def save(self, record: CallRecord) -> None:
        await self._repository.save(record)


async def run(url: str, calls: int, load: int, rounds: int, seed: int) -> None:
    rng = random.Random(seed)
    engine = create_engine(url)
    statements = Statements()

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def count(*_: object) -> None:
        statements.count += 1

    sessions = session_factory(engine)
    async with sessions.begin() as session:
        await session.execute(insert(AgentRow), [
            {"id": agent, "name": agent, "sip_digest": "0" * 32, "contact": None,
             "active": True, "created_at": to_datetime(START),
             "updated_at": to_datetime(START)}
            for agent in AGENTS])
    tariffs = TariffStore(sessions)
    await tariffs.import_file("carrier.csv", TARIFF, "bench")
    pricer = CallPricer(sessions, tariffs, Trunks(frozenset({"trunk"}), "trunk"))
    rules = ReportRules(service_level_seconds=dict.fromkeys(QUEUES, 20.0),
                        csat_questions=frozenset({"agent-rating"}),
                        day_zone=ZoneInfo("America/Sao_Paulo"))  # the service keeps day rows
    report = ReportAggregates(sessions, rules)
    # For comparison: the queue rows per quarter hour only (no day rows).
    report_without_days = ReportAggregates(sessions, replace(rules, day_zone=None))
    agents = AgentAggregates(sessions)
    variants = {"none": [], "queue/IVR/survey": [report], "agent": [agents],
                "pricer": [pricer], "all three": [pricer, report, agents],
                "queue/IVR/survey, no day rows": [report_without_days],
                "all three, no day rows": [pricer, report_without_days, agents]}
    repositories = {name: CallRepository(sessions, followers=followers)
                    for name, followers in variants.items()}
    serial = 0
    at = START

    def next_call() -> tuple[CallRecord, CallRecord]:
        nonlocal serial, at
        serial += 1
        at += rng.uniform(0.5, 3)
        return call_end(f"bench-{serial}", rng, at)

    # Warm up every path (statement caches, the tariff book), untimed.
    for repository in repositories.values():
        opened, closed = next_call()
        await repository.save(opened)
        await repository.save(closed)
        await repository.save_many([next_call()[1], next_call()[1]])

    # ------------------------------------------------------------- one by one
    times: dict[str, list[float]] = {name: [] for name in variants}
    counts: dict[str, list[int]] = {name: [] for name in variants}
    block = 10
    names = list(variants)
    for index in range(calls * len(names)):
        name = names[(index // block) % len(names)]
        opened, closed = next_call()
        statements.count = 0
        began = time.perf_counter()
        await repositories[name].save(opened)
        await repositories[name].save(closed)
        times[name].append(time.perf_counter() - began)
        counts[name].append(statements.count)
    base = median_ms(times["none"])
    print(f"one by one ({calls} calls each, saved open then closed; median per call):")
    for name in names:
        ms = median_ms(times[name])
        print(f"  {name:>29}: {ms:6.2f} ms  (+{ms - base:5.2f} ms, x{ms / base:4.2f}), "
              f"{statistics.median(counts[name]):.0f} statements")

    # ------------------------------------------------------------- writer under load
    load_times: dict[str, list[float]] = {}
    load_counts: dict[str, list[int]] = {}
    cases = [("batched", "none"), ("batched", "all three"),
             ("batched", "all three, no day rows"),
             ("one by one", "none"), ("one by one", "all three")]
    for round_ in range(rounds):
        for how, name in (cases if round_ % 2 == 0 else cases[::-1]):
            pairs = [next_call() for _ in range(load)]
            repository = repositories[name]
            await repository.save_many([opened for opened, _ in pairs])  # untimed
            store: Any = repository if how == "batched" else OneByOne(repository)
            writer = RecordWriter(store)
            writer.start()
            statements.count = 0
            began = time.perf_counter()
            writer.submit([closed for _, closed in pairs])
            await writer.flush()
            load_times.setdefault(f"{how}, {name}", []).append(
                (time.perf_counter() - began) / load)
            load_counts.setdefault(f"{how}, {name}", []).append(statements.count)
            await writer.stop()
    print(f"writer under load ({load} call ends handed over at once, {rounds} rounds; "
          f"median per call):")
    for how in ("batched", "one by one"):
        plain = median_ms(load_times[f"{how}, none"])
        followed = median_ms(load_times[f"{how}, all three"])
        print(f"  {how:>10}: {plain:6.2f} ms without followers, {followed:6.2f} ms with all "
              f"three (+{followed - plain:5.2f} ms, x{followed / plain:4.2f}); statements "
              f"{statistics.median(load_counts[f'{how}, none']):.0f} / "
              f"{statistics.median(load_counts[f'{how}, all three']):.0f}")
    plain = median_ms(load_times["batched, none"])
    without_days = median_ms(load_times["batched, all three, no day rows"])
    print(f"     batched, all three without the day rows: {without_days:6.2f} ms "
          f"(+{without_days - plain:5.2f} ms); statements "
          f"{statistics.median(load_counts['batched, all three, no day rows']):.0f}")

    # ------------------------------------------------------------- state changes
    directories = {"without": AgentDirectory(sessions),
                   "following": AgentDirectory(sessions, followers=[agents])}
    state_times: dict[str, list[float]] = {"without": [], "following": []}
    state_counts: dict[str, list[int]] = {"without": [], "following": []}
    states = ["ready", "ringing", "on_call", "wrap_up"]
    for index in range(calls * 2):
        name = "following" if (index // block) % 2 else "without"
        at += rng.uniform(0.5, 5)  # 20 agents: each changes about once a minute
        change = StateChange(rng.choice(AGENTS), states[index % 4], None, at,
                             states[(index - 1) % 4])
        statements.count = 0
        began = time.perf_counter()
        await directories[name].record_state_changes([change])
        state_times[name].append(time.perf_counter() - began)
        state_counts[name].append(statements.count)
    plain, followed = median_ms(state_times["without"]), median_ms(state_times["following"])
    print(f"one state change ({calls} each): {plain:6.2f} ms without, {followed:6.2f} ms with "
          f"the agent aggregates (+{followed - plain:5.2f} ms); statements "
          f"{statistics.median(state_counts['without']):.0f} / "
          f"{statistics.median(state_counts['following']):.0f}")
    # A busy desk's flush: one change of each of the 20 agents at once; time per change.
    state_times = {"without": [], "following": []}
    state_counts = {"without": [], "following": []}
    for index in range(max(2, calls // 10)):
        name = "following" if index % 2 else "without"
        batch = []
        for agent in AGENTS:
            at += rng.uniform(1.5, 3)  # each agent changes about once a minute
            batch.append(StateChange(agent, states[index % 4], None, at,
                                     states[(index - 1) % 4]))
        statements.count = 0
        began = time.perf_counter()
        await directories[name].record_state_changes(batch)
        state_times[name].append((time.perf_counter() - began) / len(batch))
        state_counts[name].append(statements.count)
    plain, followed = median_ms(state_times["without"]), median_ms(state_times["following"])
    print(f"{len(AGENTS)} agents' changes flushed at once ({max(2, calls // 10) // 2} flushes "
          f"each; per change): {plain:6.2f} ms without, {followed:6.2f} ms with the agent "
          f"aggregates (+{followed - plain:5.2f} ms); statements per flush "
          f"{statistics.median(state_counts['without']):.0f} / "
          f"{statistics.median(state_counts['following']):.0f}")
    await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--load", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with running_postgres() as server:
        url = server.create_database("bench_upkeep")
        await upgrade(url)
        await run(url, args.calls, args.load, args.rounds, args.seed)


if __name__ == "__main__":
    asyncio.run(main())
