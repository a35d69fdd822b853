"""The queue report from the quarter-hour aggregates against a GROUP BY over the raw records,
on a real PostgreSQL with a synthetic history; and what keeping the aggregates costs a save.

    .venv/bin/python bench/reports.py [--calls 200000] [--days 90] [--queues 5] [--rounds 5]
                                      [--saves 500] [--seed 1]

- history: ``--calls`` closed inbound calls over ``--days`` days (busier by day than by
  night), spread over ``--queues`` queues; answered (waits exponential, mean 25 s; talk mean
  240 s), abandoned, callbacks, not served. Raw rows are bulk-inserted; the aggregates are
  made from the same records by core/report_contributions.py (the follower's own code) and
  bulk-inserted, then checked against the GROUP BY's counts.
- ours: ``GET /api/reports/queues``' work without HTTP: the database adds the period's
  quarter-hour rows up into the intervals of America/Sao_Paulo (``rolled_up``), then the
  figures;
- baseline: one GROUP BY over ``calls`` per queue and UTC hour or day (``date_trunc``) with
  the same counts in SQL (offered, answered, abandoned, within T, after T, waits, talk,
  longest wait): no time zone, no figures; what a report without aggregates would run.

Both answer the same periods: the last 30 days by day, the last 7 days by hour, the whole
history by day. Rounds alternate (baseline, ours, ours, baseline, ...); the summary gives
the medians. Then ``--saves`` new calls are each saved open then closed (two saves, as the
service does), with the follower and without, alternating in blocks: the follower's cost
per call.
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

from sqlalchemy import Float, case, cast, func, insert, select

from callcenter.core.records import CallRecord, Disposition
from callcenter.core.report_contributions import (
    ReportRules,
    contribution,
)
from callcenter.core.report_periods import Interval, ReportPeriod, time_zone
from callcenter.features.calls.models import CallRow
from callcenter.features.calls.store import CallRepository, _call_values
from callcenter.features.reports.aggregates import TABLES, ReportAggregates
from callcenter.features.reports.queues import queue_report_records, read_queue_counts
from callcenter.store import create_engine, session_factory, upgrade
from tests.support.postgres import running_postgres

END = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
ZONE = "America/Sao_Paulo"


def history(count: int, days: int, queues: list[str], seed: int) -> list[CallRecord]:
    rng = random.Random(seed)
    start = END - days * 86400
    records = []
    for n in range(count):
        at = start + rng.random() * days * 86400
        hour = datetime.fromtimestamp(at, UTC).hour
        if hour < 10 and rng.random() < 0.7:  # fewer calls at night (UTC-3: before 07:00)
            at = start + rng.random() * days * 86400
        queued = at + rng.uniform(5, 60)
        wait = round(rng.expovariate(1 / 25), 3)
        roll = rng.random()
        disposition = (Disposition.ANSWERED if roll < 0.85 else
                       Disposition.ABANDONED_IN_QUEUE if roll < 0.95 else
                       Disposition.CALLBACK_REQUESTED if roll < 0.98 else Disposition.NO_AGENT)
        answered = disposition is Disposition.ANSWERED
        talk = round(rng.expovariate(1 / 240), 3) if answered else None
        records.append(CallRecord(
            call_id=f"bench-{n}", started_at=at, answered_at=at + 1,
            ended_at=queued + wait + (talk or 0) + 1, queue=rng.choice(queues),
            queued_at=queued, wait_seconds=wait, agent_id="agent1" if answered else None,
            agent_answered_at=queued + wait if answered else None, talk_seconds=talk,
            disposition=disposition))
    return records


async def fill(url: str, records: list[CallRecord], rules: ReportRules) -> None:
    engine = create_engine(url)
    sessions = session_factory(engine)
    merged: dict[tuple[str, Any], dict[str, int]] = {}
    for record in records:
        for row in contribution(record, rules):
            spec = TABLES[row.table]
            values = merged.setdefault((row.table, row.key), dict.fromkeys(spec.values, 0))
            for name, value in row.values.items():
                values[name] = max(values[name], value) if name in spec.maxima \
                    else values[name] + value
    now = datetime.now(UTC)
    async with sessions.begin() as session:
        for start in range(0, len(records), 5000):
            rows = [{**_call_values(r), "updated_at": now} for r in records[start:start + 5000]]
            await session.execute(insert(CallRow), rows)
        for name, spec in TABLES.items():
            rows = [{**dict(zip(spec.keys, key, strict=True)), **values}
                    for (table, key), values in merged.items() if table == name]
            for start in range(0, len(rows), 5000):
                await session.execute(insert(spec.table), rows[start:start + 5000])
    async with engine.connect() as connection:
        await connection.exec_driver_sql("ANALYZE")
    await engine.dispose()


def group_by_query(since: float, until: float, unit: str, threshold: float) -> Any:
    """The baseline: the report's counts straight from ``calls``, per queue and UTC unit."""
    c = CallRow
    answered = c.disposition == Disposition.ANSWERED.value
    abandoned = c.disposition == Disposition.ABANDONED_IN_QUEUE.value
    bucket = func.date_trunc(unit, c.queued_at)
    one = lambda condition: func.sum(case((condition, 1), else_=0))  # noqa: E731
    return (select(c.queue, bucket.label("bucket"),
                   func.count().label("offered"), one(answered).label("answered"),
                   one(abandoned).label("abandoned"),
                   one(answered & (c.wait_seconds <= threshold)).label("within"),
                   one(abandoned & (c.wait_seconds > threshold)).label("after"),
                   func.sum(case((answered, c.wait_seconds), else_=0)).label("waits"),
                   func.sum(cast(func.coalesce(c.talk_seconds, 0), Float)).label("talk"),
                   func.max(c.wait_seconds).label("longest"))
            .where(c.queued_at >= datetime.fromtimestamp(since, UTC),
                   c.queued_at < datetime.fromtimestamp(until, UTC),
                   c.ended_at.is_not(None), c.queue.is_not(None))
            .group_by(c.queue, bucket))


async def timed(action: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = await action()
    return time.perf_counter() - began, result


async def compare(url: str, queues: list[str], rules: ReportRules, days: int,
                  rounds: int) -> None:
    engine = create_engine(url)
    sessions = session_factory(engine)
    aggregates = ReportAggregates(sessions, rules)
    zone = time_zone(ZONE)
    periods = [("30 days by day", 30, Interval.DAY, "day"),
               ("7 days by hour", 7, Interval.MINUTES_60, "hour"),
               (f"{days} days by day", days, Interval.DAY, "day")]

    for title, span, interval, unit in periods:
        since = END - span * 86400
        period = ReportPeriod(since, END, interval, zone)

        async def ours(period: ReportPeriod = period) -> Any:
            intervals = period.intervals()
            counts = await read_queue_counts(aggregates, intervals, queues)
            return queue_report_records(period, intervals, queues, rules, counts)

        async def baseline(since: float = since, unit: str = unit) -> Any:
            async with sessions() as session:
                return (await session.execute(group_by_query(since, END, unit, 20.0))).all()

        times: dict[str, list[float]] = {"baseline": [], "ours": []}
        ours_total = baseline_offered = 0
        for round_ in range(rounds):
            order = (("baseline", baseline), ("ours", ours))
            for name, action in order if round_ % 2 == 0 else order[::-1]:
                seconds, result = await timed(action)
                times[name].append(seconds)
                if name == "ours":
                    ours_total = result[2][-1]["offered"]
                else:
                    baseline_offered = sum(row.offered for row in result)
        assert ours_total == baseline_offered, (title, ours_total, baseline_offered)
        ours_ms = statistics.median(times["ours"]) * 1000
        base_ms = statistics.median(times["baseline"]) * 1000
        print(f"{title:>18}: {ours_total:>7} calls  aggregates {ours_ms:8.1f} ms   "
              f"GROUP BY {base_ms:8.1f} ms   x{base_ms / ours_ms:5.1f}")
    await engine.dispose()


async def save_cost(url: str, rules: ReportRules, saves: int, seed: int) -> None:
    engine = create_engine(url)
    sessions = session_factory(engine)
    plain = CallRepository(sessions)
    followed = CallRepository(sessions, followers=[ReportAggregates(sessions, rules)])
    records = history(saves * 2, 1, ["q0", "q1"], seed + 1)
    times: dict[str, list[float]] = {"without": [], "with the follower": []}
    block = max(1, min(50, len(records) // 4))  # alternate, so load drifts on both
    for index in range(0, len(records), block):
        name = "with the follower" if (index // block) % 2 else "without"
        repository = followed if name != "without" else plain
        for record in records[index:index + block]:
            opened = CallRecord(call_id=f"{record.call_id}-s", started_at=record.started_at,
                                queue=record.queue, queued_at=record.queued_at)
            began = time.perf_counter()
            await repository.save(opened)
            await repository.save(CallRecord(**{**record.__dict__,
                                                "call_id": opened.call_id}))
            times[name].append(time.perf_counter() - began)
    for name, values in times.items():
        print(f"open + close saves, {name:>17}: median {statistics.median(values) * 1000:6.2f}"
              f" ms, p90 {statistics.quantiles(values, n=10)[-1] * 1000:6.2f} ms per call")
    await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--queues", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--saves", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    queues = [f"q{n}" for n in range(args.queues)]
    rules = ReportRules(service_level_seconds=dict.fromkeys(queues, 20.0))
    with running_postgres() as server:
        url = server.create_database("bench_reports")
        await upgrade(url)
        began = time.perf_counter()
        records = history(args.calls, args.days, queues, args.seed)
        await fill(url, records, rules)
        print(f"{args.calls} calls over {args.days} days in {args.queues} queues, stored in "
              f"{time.perf_counter() - began:.0f} s; periods end {END:.0f}, zone {ZONE}")
        await compare(url, queues, rules, args.days, args.rounds)
        await save_cost(url, rules, args.saves, args.seed)


if __name__ == "__main__":
    asyncio.run(main())
