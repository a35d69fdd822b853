"""The queue report over a month of a big center: the quarter-hour aggregates added up in the
database against a GROUP BY over the raw records, side by side, on a real PostgreSQL.

    .venv/bin/python bench/big_reports.py [--calls 10000000] [--days 365] [--queues 50]
                                          [--agents 300] [--rounds 20] [--seed 1]

- history, made in SQL (``INSERT ... SELECT`` over ``generate_series``, seeded): ``--calls``
  closed inbound calls over ``--days`` days ending 2026-12-01 (local midnight in
  America/Sao_Paulo), 85 % of them between 08:00 and 20:00 local, in ``--queues`` queues,
  answered by ``--agents`` agents: 85 % answered (wait exponential, mean 25 s; talk mean
  240 s), 10 % abandoned, 3 % left for a callback, 2 % not served. Straight into the real
  ``calls`` table (no IVR steps, attempts, holds or transfers: the figures need none).
- aggregates: ``report_queue_buckets`` filled by one ``INSERT ... SELECT ... GROUP BY`` over
  those rows (what the follower would have added call by call), and the day rows
  (``report_queue_days``, local days of America/Sao_Paulo, the center's zone) by another
  from the quarter hours, the zone recorded; then checked: the records of one random day,
  read back through ``CallRepository``, are counted by core/report_contributions.py (the
  follower's own code) and must equal the SQL-made rows, quarter hours and day.
- ours: what ``GET /api/reports/queues`` does for November 2026 in America/Sao_Paulo, all
  queues, by day, week, hour and 15 minutes (``--intervals``): the intervals,
  ``ReportAggregates.rolled_up`` (the database adds the day rows of the whole local days and
  the other quarter hours up per interval and queue), the figure records
  (``queue_report_records``). Then, apart, the JSON answer of the same report
  (``build_queue_report`` without HTTP: the pydantic models, the CSV/XLSX table and the
  ``json_response`` body).
- baseline: the same report by one GROUP BY over ``calls`` per queue and local interval
  (``date_trunc`` / 15-minute floors in the zone), every count the report shows (offered,
  answered, abandoned, short abandons, within and after T, not served, callbacks, handled,
  wait, talk, longest wait), then the same figure records. It gets a covering index on
  ``queued_at`` so that it reads only the month. Its records must equal ours.

Rounds alternate (baseline, ours, ours, baseline, ...); the summary gives p50 and p95 and the
ratio of the p50s and of the p95s.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select, text

from callcenter.core.queue_figures import (
    DEFAULT_SERVICE_LEVEL_SECONDS,
    DEFAULT_SHORT_ABANDON_SECONDS,
    QueueCounts,
)
from callcenter.core.report_contributions import (
    QUEUE_DAY_TABLE,
    QUEUE_TABLE,
    ReportRules,
    contribution,
)
from callcenter.core.report_periods import (
    Interval,
    ReportInterval,
    ReportPeriod,
    interval_index,
    time_zone,
)
from callcenter.features.calls.store import CallRepository
from callcenter.features.reports.aggregates import TABLES, ReportAggregates
from callcenter.features.reports.framework import (
    REPORT_AGGREGATES,
    REPORT_CONTEXT,
    ReportContext,
)
from callcenter.features.reports.models import QUEUE_COLUMNS, day_zone
from callcenter.features.reports.queues import (
    build_queue_report,
    queue_report_records,
    read_queue_counts,
)
from callcenter.features.reports.schemas import QueuesQuery
from callcenter.store import create_engine, session_factory, upgrade
from tests.support.postgres import running_postgres

ZONE = "America/Sao_Paulo"
END = datetime(2026, 12, 1, tzinfo=ZoneInfo(ZONE)).timestamp()  # 2026-12-01T03:00Z
MONTH = (datetime(2026, 11, 1, tzinfo=ZoneInfo(ZONE)).timestamp(), END)
T = DEFAULT_SERVICE_LEVEL_SECONDS
SHORT = DEFAULT_SHORT_ABANDON_SECONDS

# One draw per call, then the record's columns from it; times in whole milliseconds so that
# the figures' milliseconds (round(seconds * 1000)) are exact.
GENERATE = """
INSERT INTO calls (call_id, started_at, answered_at, ended_at, ivr_path, queue, queued_at,
                   wait_seconds, agent_id, agent_answered_at, talk_seconds, disposition,
                   updated_at, source, direction)
SELECT 'big-' || n, started, started + interval '1 second', queued + wait + talk,
       CAST('[]' AS json), queue, queued, extract(epoch FROM wait),
       CASE WHEN disposition = 'answered' THEN agent END,
       CASE WHEN disposition = 'answered' THEN queued + wait END,
       CASE WHEN disposition = 'answered' THEN extract(epoch FROM talk) END,
       disposition, now(), 'service', 'inbound'
FROM (
    SELECT n, started, started + make_interval(secs => (5000 + floor(r_queue_delay * 40000)) / 1000)
               AS queued,
           make_interval(secs => floor(-25000 * ln(1 - r_wait)) / 1000) AS wait,
           CASE WHEN r_outcome < 0.85 THEN make_interval(secs => floor(-240000 * ln(1 - r_talk))
                                                          / 1000)
                ELSE interval '0' END AS talk,
           'q' || floor(r_queue * CAST(:queues AS INTEGER)) AS queue,
           'agent' || floor(r_agent * CAST(:agents AS INTEGER)) AS agent,
           CASE WHEN r_outcome < 0.85 THEN 'answered'
                WHEN r_outcome < 0.95 THEN 'abandoned_in_queue'
                WHEN r_outcome < 0.98 THEN 'callback_requested'
                ELSE 'no_agent' END AS disposition
    FROM (
        SELECT n, r_queue_delay, r_wait, r_talk, r_outcome, r_queue, r_agent,
               to_timestamp(CAST(:first_day AS DOUBLE PRECISION)
                            + floor(r_day * CAST(:days AS INTEGER)) * 86400
                            + CASE WHEN r_busy < 0.85 THEN 11 * 3600 + r_time * 12 * 3600
                                   ELSE r_time * 86400 END) AS started
        FROM (SELECT n, random() AS r_day, random() AS r_busy, random() AS r_time,
                     random() AS r_queue_delay, random() AS r_wait, random() AS r_talk,
                     random() AS r_outcome, random() AS r_queue, random() AS r_agent
              FROM generate_series(CAST(:first AS BIGINT),
                                              CAST(:last AS BIGINT)) AS n) AS draws
    ) AS timed
) AS calls_drawn
"""

# What each call adds to its queue's quarter hour, as core/queue_figures.counts_of says for
# these calls (inbound, closed, no callback_of, no attempts, holds or transfers).
_MS = "round(wait_seconds * 1000)"
FIGURES = {
    "offered": "count(*)",
    "answered": "count(*) FILTER (WHERE disposition = 'answered')",
    "abandoned": "count(*) FILTER (WHERE disposition = 'abandoned_in_queue')",
    "short_abandons": f"count(*) FILTER (WHERE disposition = 'abandoned_in_queue' "
                      f"AND wait_seconds < {SHORT})",
    "answered_within": f"count(*) FILTER (WHERE disposition = 'answered' "
                       f"AND wait_seconds <= {T})",
    "abandoned_after": f"count(*) FILTER (WHERE disposition = 'abandoned_in_queue' "
                       f"AND wait_seconds > {T})",
    "not_served": "count(*) FILTER (WHERE disposition = 'no_agent')",
    "callbacks_requested": "count(*) FILTER (WHERE disposition = 'callback_requested')",
    "handled": "count(*) FILTER (WHERE disposition = 'answered')",
    "answered_wait_ms": f"coalesce(sum({_MS}) FILTER (WHERE disposition = 'answered'), 0)",
    "talk_ms": "coalesce(sum(round(talk_seconds * 1000)) "
               "FILTER (WHERE disposition = 'answered'), 0)",
    "longest_wait_ms": f"max({_MS})",
}  # every other column (overflowed, transfers, hold, wrap-up): 0 for these calls
CALL_FILTER = ("ended_at IS NOT NULL AND queue IS NOT NULL AND queued_at IS NOT NULL "
               "AND direction = 'inbound' AND callback_of IS NULL")


def figures_sql() -> str:
    return ", ".join(f"CAST({FIGURES.get(name, '0')} AS BIGINT) AS {name}"
                     for name in QUEUE_COLUMNS)


async def generate(url: str, args: argparse.Namespace) -> None:
    engine = create_engine(url)
    first_day = END - args.days * 86400
    async with engine.connect() as connection:
        await connection.exec_driver_sql("SELECT setseed(%s)" % (args.seed / 1000))
        step = 1_000_000  # a few statements: each a transaction the server can digest
        for first in range(1, args.calls + 1, step):
            await connection.execute(text(GENERATE), {
                "queues": args.queues, "agents": args.agents, "days": args.days,
                "first_day": first_day, "first": first,
                "last": min(args.calls, first + step - 1)})
            await connection.commit()
        table = TABLES[QUEUE_TABLE].table.name
        await connection.execute(text(
            f"INSERT INTO {table} (bucket, queue, {', '.join(QUEUE_COLUMNS)}) "
            f"SELECT CAST(floor(extract(epoch FROM queued_at) / 900) * 900 AS BIGINT), queue, "
            f"{figures_sql()} FROM calls WHERE {CALL_FILTER} GROUP BY 1, 2"))
        # The day rows: the quarter hours added up per local day of the zone (its midnight).
        maxima = TABLES[QUEUE_TABLE].maxima
        local = "(to_timestamp(bucket) AT TIME ZONE CAST(:zone AS TEXT))"
        await connection.execute(text(
            f"INSERT INTO {TABLES[QUEUE_DAY_TABLE].table.name} "
            f"(day, queue, {', '.join(QUEUE_COLUMNS)}) "
            f"SELECT CAST(extract(epoch FROM date_trunc('day', {local}) "
            f"AT TIME ZONE CAST(:zone AS TEXT)) AS BIGINT), queue, "
            + ", ".join(f"CAST({'max' if name in maxima else 'sum'}({name}) AS BIGINT)"
                        for name in QUEUE_COLUMNS)
            + f" FROM {table} GROUP BY 1, 2"), {"zone": ZONE})
        await connection.execute(insert(day_zone), [{"zone": ZONE}])
        # The baseline's best case: the month's calls found by queued_at, every column it
        # reads in the index (an index-only scan once vacuumed).
        await connection.exec_driver_sql(
            "CREATE INDEX bench_calls_queued_at ON calls (queued_at) INCLUDE "
            "(queue, disposition, wait_seconds, talk_seconds, ended_at, direction, "
            "callback_of)")
        await connection.commit()
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.exec_driver_sql("VACUUM ANALYZE")
    await engine.dispose()


async def check_sample(url: str, rules: ReportRules, days: int, seed: int) -> int:
    """One random day's SQL-made quarter-hour rows and day rows == what the follower's code
    makes of that day's records; how many records were compared."""
    engine = create_engine(url)
    sessions = session_factory(engine)
    calls = CallRepository(sessions)
    day = END - (random.Random(seed).randrange(days) + 1) * 86400
    spec, days = TABLES[QUEUE_TABLE], TABLES[QUEUE_DAY_TABLE]
    expected: dict[tuple[Any, ...], dict[str, int]] = {}
    expected_day: dict[tuple[Any, ...], dict[str, int]] = {}
    after: int | None = None
    read = 0
    while True:  # calls queue under a minute after they start: an hour either side is ample
        page = await calls.records_by_pk(since=day - 3600, until=day + 86400 + 3600,
                                         after_pk=after, limit=2000)
        if not page:
            break
        after, read = page[-1][0], read + len(page)
        for _pk, record in page:
            for row in contribution(record, rules):
                if not day <= row.key[0] < day + 86400:
                    continue
                if row.table == QUEUE_DAY_TABLE:
                    assert row.key[0] == day  # END is a local midnight, the zone has no DST
                    found = expected_day.setdefault(row.key, dict.fromkeys(days.values, 0))
                    for name, value in row.values.items():
                        found[name] = max(found[name], value) if name in days.maxima \
                            else found[name] + value
                    continue
                values = expected.setdefault(row.key, dict.fromkeys(spec.values, 0))
                for name, value in row.values.items():
                    values[name] = max(values[name], value) if name in spec.maxima \
                        else values[name] + value
    async with sessions() as session:
        stored = {(row.bucket, row.queue): {name: getattr(row, name) for name in spec.values}
                  for row in await session.execute(select(spec.table).where(
                      spec.table.c.bucket >= int(day), spec.table.c.bucket < int(day + 86400)))}
        stored_day = {(row.day, row.queue): {name: getattr(row, name) for name in days.values}
                      for row in await session.execute(select(days.table).where(
                          days.table.c.day == int(day)))}
    await engine.dispose()
    assert stored == expected, "the SQL-made aggregates differ from the follower's count"
    assert stored_day == expected_day, "the SQL-made day rows differ from the follower's"
    assert expected_day, "no day rows compared"
    return read


def baseline_sql(interval: Interval) -> str:
    """One GROUP BY over calls: each queue's counts per local interval, keyed by the
    interval's start (POSIX seconds)."""
    local = "(queued_at AT TIME ZONE CAST(:zone AS TEXT))"
    start = {Interval.DAY: f"date_trunc('day', {local})",
             Interval.WEEK: f"date_trunc('week', {local})",
             Interval.MINUTES_60: f"date_trunc('hour', {local})",
             Interval.MINUTES_15: f"date_bin('15 minutes', {local}, TIMESTAMP '2000-01-01')",
             }[interval]
    since = "to_timestamp(CAST(:since AS DOUBLE PRECISION))"
    until = "to_timestamp(CAST(:until AS DOUBLE PRECISION))"
    return (f"SELECT CAST(extract(epoch FROM ({start}) AT TIME ZONE CAST(:zone AS TEXT)) "
            f"AS BIGINT) AS start, queue, {figures_sql()} FROM calls "
            f"WHERE queued_at >= {since} AND queued_at < {until} "
            f"AND {CALL_FILTER} GROUP BY 1, 2")


async def baseline_counts(sessions: Any, period: ReportPeriod,
                          intervals: Sequence[ReportInterval],
                          ) -> dict[tuple[int, str], QueueCounts]:
    async with sessions() as session:
        result = await session.execute(text(baseline_sql(period.interval)), {
            "zone": period.zone.key, "since": period.since, "until": period.until})
        # A week begun before the period is the period's first interval.
        return {(interval_index(intervals, max(row[0], period.since)), row[1]):
                QueueCounts(**dict(zip(QUEUE_COLUMNS, row[2:], strict=True)))
                for row in result}


HOURS = "bench_queue_hours"


async def make_hourly(url: str) -> None:
    """The what-if coarser level: ``report_queue_buckets`` added up per UTC hour and queue
    (the service has no such table: see docs/PERFORMANCE.md)."""
    engine = create_engine(url)
    maxima = TABLES[QUEUE_TABLE].maxima
    sums = ", ".join(f"{'max' if name in maxima else 'sum'}({name}) AS {name}"
                     for name in QUEUE_COLUMNS)
    async with engine.begin() as connection:
        await connection.exec_driver_sql(
            f"CREATE TABLE {HOURS} AS SELECT bucket / 3600 * 3600 AS hour, queue, {sums} "
            f"FROM report_queue_buckets GROUP BY 1, 2")
        await connection.exec_driver_sql(f"ALTER TABLE {HOURS} ADD PRIMARY KEY (hour, queue)")
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.exec_driver_sql(f"VACUUM ANALYZE {HOURS}")
    await engine.dispose()


async def hourly_counts(sessions: Any, intervals: Sequence[ReportInterval],
                        queues: Sequence[str]) -> dict[tuple[int, str], QueueCounts]:
    """``rolled_up``'s PostgreSQL shape over the hourly rows (every interval whole hours)."""
    positions = []
    for index, interval in enumerate(intervals):
        assert interval.start % 3600 == 0 and interval.end % 3600 == 0
        positions += [index] * int((interval.end - interval.start) // 3600)
    maxima = TABLES[QUEUE_TABLE].maxima
    figures = ", ".join(f"CAST({'max' if name in maxima else 'sum'}({name}) AS BIGINT)"
                        for name in QUEUE_COLUMNS)
    sql = (f"SELECT (CAST(:positions AS INTEGER[]))[(hour - :since) / 3600 + 1], queue, "
           f"{figures} FROM {HOURS} WHERE hour >= :since AND hour < :until "
           f"AND queue = ANY(CAST(:queues AS TEXT[])) GROUP BY 1, 2")
    async with sessions() as session:
        result = await session.execute(text(sql), {
            "positions": positions, "since": int(intervals[0].start),
            "until": int(intervals[-1].end), "queues": list(queues)})
        return {(row[0], row[1]): QueueCounts(**dict(zip(QUEUE_COLUMNS, row[2:], strict=True)))
                for row in result}


async def timed(action: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = await action()
    return time.perf_counter() - began, result


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


async def compare(url: str, queues: list[str], rules: ReportRules, rounds: int,
                  with_hours: bool, intervals_wanted: Sequence[Interval]) -> None:
    engine = create_engine(url)
    sessions = session_factory(engine)
    aggregates = ReportAggregates(sessions, rules)
    zone = time_zone(ZONE)
    request = SimpleNamespace(app={REPORT_CONTEXT: ReportContext(ZONE, tuple(queues)),
                                   REPORT_AGGREGATES: aggregates})
    for interval in intervals_wanted:
        period = ReportPeriod(*MONTH, interval, zone)

        database_part: list[float] = []

        async def ours(period: ReportPeriod = period,
                       database_part: list[float] = database_part) -> Any:
            intervals = period.intervals()
            began = time.perf_counter()
            counts = await read_queue_counts(aggregates, intervals, queues, period.zone)
            database_part.append(time.perf_counter() - began)
            return queue_report_records(period, intervals, queues, rules, counts)

        async def hourly(period: ReportPeriod = period) -> Any:
            intervals = period.intervals()
            counts = await hourly_counts(sessions, intervals, queues)
            return queue_report_records(period, intervals, queues, rules, counts)

        async def baseline(period: ReportPeriod = period) -> Any:
            intervals = period.intervals()
            counts = await baseline_counts(sessions, period, intervals)
            return queue_report_records(period, intervals, queues, rules, counts)

        async def answer(interval: Interval = interval) -> Any:
            query = QueuesQuery.model_validate({
                "since": datetime.fromtimestamp(MONTH[0], UTC).isoformat(),
                "until": datetime.fromtimestamp(MONTH[1], UTC).isoformat(),
                "interval": interval.value})
            built = await build_queue_report(request, query)  # type: ignore[arg-type]
            return built.answer.response().body

        times: dict[str, list[float]] = {"baseline": [], "ours": [], "answer": [],
                                         "ours: the database's part": database_part,
                                         "hourly": []}
        results: dict[str, Any] = {}
        whole_hours = interval is not Interval.MINUTES_15  # this zone's hours are UTC hours
        for round_ in range(rounds):
            order = (("baseline", baseline), ("ours", ours),
                     *((("hourly", hourly),) if whole_hours and with_hours else ()))
            for name, action in order if round_ % 2 == 0 else order[::-1]:
                seconds, results[name] = await timed(action)
                times[name].append(seconds)
        assert results["ours"] == results["baseline"], f"{interval}: the reports differ"
        if "hourly" in results:
            assert results["hourly"] == results["ours"], f"{interval}: hourly rows differ"
        for _ in range(max(3, rounds // 4)):
            seconds, body = await timed(answer)
            times["answer"].append(seconds)
        per_queue, _, totals = results["ours"]
        ms = {name: (statistics.median(values) * 1000, p95(values) * 1000)
              for name, values in times.items() if values}
        print(f"month by {interval.value:>3}: {len(per_queue):>7} rows, "
              f"{totals[-1]['offered']:>8} calls | rolled up in SQL p50 {ms['ours'][0]:7.1f} "
              f"p95 {ms['ours'][1]:7.1f} ms | GROUP BY over calls p50 {ms['baseline'][0]:7.1f} "
              f"p95 {ms['baseline'][1]:7.1f} ms | x{ms['baseline'][0] / ms['ours'][0]:5.1f} "
              f"(p95 x{ms['baseline'][1] / ms['ours'][1]:5.1f}) | JSON answer "
              f"{len(body) / 1e6:6.1f} MB p50 {ms['answer'][0]:7.1f} ms "
              f"p95 {ms['answer'][1]:7.1f} ms", flush=True)
        sql = ms["ours: the database's part"]
        print(f"{'':14}of ours, the database's part p50 {sql[0]:7.1f} p95 {sql[1]:7.1f} ms",
              flush=True)
        if times["hourly"]:
            hours = ms["hourly"]
            print(f"{'':14}what-if, from hourly rows: p50 {hours[0]:7.1f} p95 {hours[1]:7.1f} ms"
                  f" | x{ms['baseline'][0] / hours[0]:5.1f} (p95 x"
                  f"{ms['baseline'][1] / hours[1]:5.1f}) against the GROUP BY", flush=True)
    await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--queues", type=int, default=50)
    parser.add_argument("--agents", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hourly", action="store_true",
                        help="also time a what-if second level of UTC-hour rows (made in SQL "
                             "from the quarter hours; the service keeps none)")
    parser.add_argument("--intervals", default="day,week,60m,15m",
                        help="the month's intervals to time (comma-separated: "
                             f"{', '.join(i.value for i in Interval)})")
    args = parser.parse_args()
    intervals_wanted = [Interval(name) for name in args.intervals.split(",")]
    if args.days < 30:
        parser.error("--days: at least 30 (the report is November 2026)")
    queues = [f"q{n}" for n in range(args.queues)]
    rules = ReportRules(service_level_seconds=dict.fromkeys(queues, float(T)),
                        short_abandon_seconds=dict.fromkeys(queues, float(SHORT)),
                        day_zone=time_zone(ZONE))
    with running_postgres() as server:
        url = server.create_database("bench_big_reports")
        await upgrade(url)
        began = time.perf_counter()
        await generate(url, args)
        made = time.perf_counter() - began
        began = time.perf_counter()
        compared = await check_sample(url, rules, args.days, args.seed)
        print(f"{args.calls} calls over {args.days} days in {args.queues} queues for "
              f"{args.agents} agents: made in SQL with their aggregates in {made:.0f} s; "
              f"one day's aggregates equal the follower's count of its {compared} records "
              f"({time.perf_counter() - began:.0f} s); zone {ZONE}", flush=True)
        if args.hourly:
            began = time.perf_counter()
            await make_hourly(url)
            print(f"what-if hourly rows made from the quarter hours in "
                  f"{time.perf_counter() - began:.0f} s", flush=True)
        await compare(url, queues, rules, args.rounds, args.hourly, intervals_wanted)


if __name__ == "__main__":
    asyncio.run(main())
