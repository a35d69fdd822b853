"""The agent report from its aggregates against the same figures laid out from the raw state
log, on a real PostgreSQL with a synthetic history; and what keeping the aggregates costs.

    .venv/bin/python bench/agent_reports.py [--agents 100] [--days 30] [--rounds 5]
                                            [--saves 300] [--seed 1]

- history: ``--agents`` agents working 8-hour shifts for ``--days`` days, each day a run of
  ready / ringing / on_call / wrap_up cycles with pauses (about 200 changes an agent-day);
  the state log is bulk-inserted, then the aggregates rebuilt from it (timed).
- ours: ``GET /api/reports/agents``' store work without HTTP: every agent, the period by day
  in America/Sao_Paulo (``interval_totals``: summed by the database per interval);
- baseline: the same per-day state times from the raw log: each agent's changes of the
  period read and laid out (core/agent_intervals.py, the same cut into days).

Rounds alternate; the medians are printed. Then the upkeep: ``--saves`` state-change batches
of one change (what the desk flushes) with the aggregates following and without,
alternating in blocks, and as many call records saved open then closed, the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select

from callcenter.core.agent_figures import LoggedChange, micros_of, state_time
from callcenter.core.clock import to_datetime
from callcenter.core.records import AgentAttempt, AttemptOutcome, CallRecord
from callcenter.core.report_periods import Interval, ReportPeriod, time_zone
from callcenter.features.agents.models import AgentRow, AgentStateChangeRow
from callcenter.features.agents.store import AgentDirectory, StateChange
from callcenter.features.calls.store import CallRepository
from callcenter.features.reports.agent_store import AgentAggregates
from callcenter.store import create_engine, session_factory, upgrade
from tests.support.postgres import running_postgres

END = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
ZONE = "America/Sao_Paulo"


def agent_day(agent_id: str, start: float, rng: random.Random) -> list[dict[str, Any]]:
    """One 8-hour shift of state changes."""
    rows: list[dict[str, Any]] = []
    now, previous = start, "logged_out"

    def change(state: str, reason: str | None = None) -> None:
        nonlocal previous
        rows.append({"agent_id": agent_id, "state": state, "reason": reason,
                     "at": to_datetime(now), "previous": previous})
        previous = state

    change("ready", "login")
    while now < start + 8 * 3600:
        now += rng.expovariate(1 / 60)
        if rng.random() < 0.05:
            change("paused", rng.choice(["break", "lunch", "training"]))
            now += rng.expovariate(1 / 600)
            change("ready")
            continue
        change("ringing")
        now += rng.uniform(2, 12)
        change("on_call")
        now += rng.expovariate(1 / 240)
        change("wrap_up")
        now += rng.expovariate(1 / 30)
        change("ready")
    change("logged_out", "logout")
    return rows


async def fill(url: str, agents: list[str], days: int, seed: int) -> int:
    rng = random.Random(seed)
    engine = create_engine(url)
    sessions = session_factory(engine)
    async with sessions.begin() as session:
        await session.execute(insert(AgentRow), [
            {"id": agent, "name": agent, "sip_digest": "0" * 32, "contact": None,
             "active": True, "created_at": to_datetime(END), "updated_at": to_datetime(END)}
            for agent in agents])
    count = 0
    for day in range(days):
        day_start = END - (days - day) * 86400 + 11 * 3600  # 08:00 in Sao Paulo
        rows = [row for agent in agents
                for row in agent_day(agent, day_start + rng.uniform(0, 3600), rng)]
        async with sessions.begin() as session:
            await session.execute(insert(AgentStateChangeRow), rows)
        count += len(rows)
    began = time.perf_counter()
    await AgentAggregates(sessions).rebuild()
    print(f"{count} state changes of {len(agents)} agents over {days} days; aggregates "
          f"rebuilt in {time.perf_counter() - began:.1f} s")
    await engine.dispose()
    return count


async def timed(action: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = await action()
    return time.perf_counter() - began, result


async def compare(url: str, agents: list[str], days: int, rounds: int) -> None:
    engine = create_engine(url)
    sessions = session_factory(engine)
    aggregates = AgentAggregates(sessions)
    period = ReportPeriod(END - days * 86400 + 3 * 3600, END + 3 * 3600, Interval.DAY,
                          time_zone(ZONE))
    intervals = period.intervals()
    starts = [interval.start for interval in intervals]

    async def ours() -> Any:
        return await aggregates.interval_totals(starts, period.until, now=END + 86400,
                                                agents=agents)

    async def baseline() -> Any:
        log = AgentStateChangeRow
        found: dict[str, dict[int, int]] = {}
        async with sessions() as session:
            rows = (await session.execute(
                select(log.agent_id, log.at, log.state, log.reason, log.previous)
                .where(log.at >= to_datetime(period.since), log.at < to_datetime(period.until))
                .order_by(log.agent_id, log.at, log.id))).all()
        by_agent: dict[str, list[LoggedChange]] = {}
        for agent_id, at, state, reason, previous in rows:
            by_agent.setdefault(agent_id, []).append(
                LoggedChange(agent_id, micros_of(at), state, reason, previous))
        positions = period.bucket_positions(intervals)
        for agent_id, changes in by_agent.items():
            for key, amount in state_time(changes).items():
                index = positions[key.bucket // 1_000_000]
                cell = found.setdefault(agent_id, {})
                cell[index] = cell.get(index, 0) + amount
        return found

    times: dict[str, list[float]] = {"ours": [], "baseline": []}
    for round_ in range(rounds):
        order = (("baseline", baseline), ("ours", ours)) if round_ % 2 == 0 else (
            ("ours", ours), ("baseline", baseline))
        for name, action in order:
            seconds, result = await timed(action)
            times[name].append(seconds)
            if name == "ours":
                ours_logged = {agent: {index: cell.logged_in for index, cell in cells.items()}
                               for agent, cells in result.items()}
            else:
                base_logged = result
    assert ours_logged == base_logged, "the two ways disagree"
    ours_median = statistics.median(times["ours"])
    base_median = statistics.median(times["baseline"])
    print(f"{len(agents)} agents, {days} days by day: aggregates {ours_median * 1000:.1f} ms, "
          f"raw log {base_median * 1000:.1f} ms ({base_median / ours_median:.1f}x)")
    await engine.dispose()


async def upkeep(url: str, agents: list[str], saves: int, seed: int) -> None:
    rng = random.Random(seed)
    engine = create_engine(url)
    sessions = session_factory(engine)
    aggregates = AgentAggregates(sessions)
    directories = {"without": AgentDirectory(sessions),
                   "following": AgentDirectory(sessions, followers=[aggregates])}
    repositories = {"without": CallRepository(sessions),
                    "following": CallRepository(sessions, followers=[aggregates])}
    block = max(1, min(50, saves // 4))
    state_times: dict[str, list[float]] = {"without": [], "following": []}
    call_times: dict[str, list[float]] = {"without": [], "following": []}
    now = END + 3600
    states = ["ready", "ringing", "on_call", "wrap_up"]
    for index in range(saves):
        name = "following" if (index // block) % 2 else "without"
        agent = rng.choice(agents)
        now += rng.uniform(0.5, 5)
        change = StateChange(agent, states[index % 4], None, now, states[(index - 1) % 4])

        async def log(change: StateChange = change, name: str = name) -> None:
            await directories[name].record_state_changes([change])

        seconds, _ = await timed(log)
        state_times[name].append(seconds)
        record = CallRecord(call_id=f"bench-{index}", started_at=now, queue="q0",
                            queued_at=now + 1)
        closed = CallRecord(call_id=record.call_id, started_at=now, queue="q0",
                            queued_at=now + 1, ended_at=now + 200, attempts=[
                                AgentAttempt(agent, now + 5, now + 200,
                                             AttemptOutcome.ANSWERED, now + 8, 192.0)])

        async def both(open_: CallRecord = record, done: CallRecord = closed,
                       name: str = name) -> None:
            await repositories[name].save(open_)
            await repositories[name].save(done)

        seconds, _ = await timed(both)
        call_times[name].append(seconds)
    for what, values in (("one state change", state_times), ("a call, open + close", call_times)):
        plain, followed = (statistics.median(values[n]) * 1000 for n in ("without", "following"))
        print(f"{what:>22}: {plain:6.2f} ms without, {followed:6.2f} ms with the agent "
              f"aggregates (+{followed - plain:.2f} ms)")
    await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--saves", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    agents = [f"agent{n:03d}" for n in range(args.agents)]
    with running_postgres() as server:
        url = server.create_database("bench_agent_reports")
        await upgrade(url)
        await fill(url, agents, args.days, args.seed)
        await compare(url, agents, args.days, args.rounds)
        await upkeep(url, agents, args.saves, args.seed)


if __name__ == "__main__":
    asyncio.run(main())
