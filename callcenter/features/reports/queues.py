"""The queue report: each queue's figures per interval (docs/reports.md "Queues").

GET /api/reports/queues (and .csv, .xlsx, .png): from the quarter-hour aggregates (and, in the
center's zone, the day rows for whole local days), added up into the period's intervals in
the report's time zone by the database (``ReportAggregates.rolled_up``). The figures are
core/queue_figures.py's ``QueueCounts`` and its rates, the same code the simulator reports
with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import attrgetter
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from callcenter.core.queue_figures import QueueCounts, total
from callcenter.core.report_contributions import QUEUE_TABLE, ReportRules
from callcenter.core.report_periods import Group, ReportInterval, ReportPeriod
from callcenter.core.report_table import CellKind, Column, table_from_records
from callcenter.features.reports.aggregates import ReportAggregates
from callcenter.features.reports.framework import (
    REPORT_AGGREGATES,
    BuiltReport,
    ReportSpec,
    period_of,
    queue_names,
)
from callcenter.features.reports.render import Chart, Series
from callcenter.features.reports.schemas import QueueFiguresRow, QueuesQuery, QueuesReport
from callcenter.web.params import iso

ALL_QUEUES = "*"
TOTAL = "total"

C = CellKind
COLUMNS = (
    Column("start", "Start (UTC)", C.TIME),
    Column("end", "End (UTC)", C.TIME),
    Column("label", "Interval", C.TEXT),
    Column("queue", "Queue", C.TEXT),
    Column("service_level_seconds", "T (s)", C.SECONDS, "the queue's service-level threshold"),
    Column("offered", "Offered", C.COUNT),
    Column("answered", "Answered", C.COUNT),
    Column("abandoned", "Abandoned", C.COUNT),
    Column("short_abandons", "Short abandons", C.COUNT),
    Column("answered_within", "Answered within T", C.COUNT),
    Column("abandoned_after", "Abandoned after T", C.COUNT),
    Column("not_served", "Not served", C.COUNT),
    Column("callbacks_requested", "Callbacks requested", C.COUNT),
    Column("transfers_to_queue", "Transfers to a queue", C.COUNT),
    Column("handled", "Handled", C.COUNT),
    Column("service_level", "Service level", C.RATIO),
    Column("asa", "ASA (s)", C.SECONDS),
    Column("aht", "AHT (s)", C.SECONDS),
    Column("acw", "ACW (s)", C.SECONDS, "after-call work: wrap-up / handled"),
    Column("abandon_rate", "Abandon rate", C.RATIO),
    Column("longest_wait", "Longest wait (s)", C.SECONDS),
    Column("talk_seconds", "Talk (s)", C.SECONDS),
    Column("hold_seconds", "Hold (s)", C.SECONDS),
    Column("wrap_up_seconds", "Wrap-up (s)", C.SECONDS),
    Column("wrapped_calls", "Calls with wrap-up", C.COUNT,
           "handled calls with an ended wrap-up counted"),
)
NOTES = (
    "Offered: calls that entered the queue (a callback's own call is not offered again).",
    "Service level: answered within T / (answered + abandoned after T).",
    "ASA: total wait of answered calls / answered. AHT: (talk + hold + wrap-up) / handled; "
    "ACW: wrap-up / handled. A wrap-up counts once it has ended, in its call's interval.",
    "Abandon rate: abandoned / offered; short abandons (before the queue's "
    "short_abandon_seconds) are part of abandoned.",
    "Calls count in the interval in which they entered the queue. See docs/reports.md.",
)
CHART = Chart("Queues: service level and volume", "label", (
    ("Service level (%)", (Series("service_level", "line"),)),
    ("Calls", (Series("offered"), Series("answered"), Series("abandoned"))),
))


_COUNTED = ("offered", "answered", "abandoned", "short_abandons", "answered_within",
            "abandoned_after", "not_served", "callbacks_requested", "transfers_to_queue",
            "handled")
_counted = attrgetter(*_COUNTED)


def figures_record(counts: QueueCounts, *, start: str | None, end: str | None, label: str,
                   queue: str, threshold: float | None) -> dict[str, Any]:
    """One row of the report (``start``, ``end``: ISO 8601 UTC): the counts, and the rates
    core/queue_figures.py defines."""
    return {
        "start": start, "end": end, "label": label, "queue": queue,
        "service_level_seconds": threshold,
        **dict(zip(_COUNTED, _counted(counts), strict=True)),
        "service_level": counts.service_level, "asa": counts.asa, "aht": counts.aht,
        "acw": counts.acw,
        "abandon_rate": counts.abandon_rate, "longest_wait": counts.longest_wait,
        "talk_seconds": counts.talk_ms / 1000, "hold_seconds": counts.hold_ms / 1000,
        "wrap_up_seconds": counts.wrap_up_ms / 1000, "wrapped_calls": counts.wrapped_calls,
    }


def queue_counts(grouped: Mapping[Group, Mapping[str, int]],
                 ) -> dict[tuple[int, str], QueueCounts]:
    """Rolled-up queue rows (``ReportAggregates.rolled_up`` by queue) as counts per
    (interval index, queue)."""
    return {(index, queue): QueueCounts(**values)
            for (index, (queue,)), values in grouped.items()}


async def read_queue_counts(aggregates: ReportAggregates, intervals: Sequence[ReportInterval],
                            queues: Sequence[str], zone: ZoneInfo | None = None,
                            ) -> dict[tuple[int, str], QueueCounts]:
    """The queues' counts per interval, added up in the database; ``zone``: the intervals'
    (in the center's zone, whole local days are read from the day rows)."""
    return queue_counts(await aggregates.rolled_up(QUEUE_TABLE, intervals, by=("queue",),
                                                   only={"queue": queues}, zone=zone))


def queue_report_records(period: ReportPeriod, intervals: Sequence[ReportInterval],
                         queues: Sequence[str], rules: ReportRules,
                         counts: Mapping[tuple[int, str], QueueCounts],
                         ) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                    list[dict[str, Any]]]:
    """(rows per interval and queue, overall per interval, totals per queue then overall),
    from the counts per (index in ``intervals``, queue)."""
    thresholds = {queue: rules.threshold(queue) for queue in queues}
    together = next(iter(set(thresholds.values()))) if len(set(thresholds.values())) == 1 \
        else None
    empty = QueueCounts()
    per_queue, overall = [], []
    by_queue: dict[str, list[QueueCounts]] = {queue: [] for queue in queues}
    for index, interval in enumerate(intervals):
        span = {"start": iso(interval.start), "end": iso(interval.end), "label": interval.label}
        here = []
        for queue in queues:
            found = counts.get((index, queue))
            if found is not None:
                here.append(found)
                by_queue[queue].append(found)
            per_queue.append(figures_record(found or empty, **span, queue=queue,
                                            threshold=thresholds[queue]))
        overall.append(figures_record(total(here), **span, queue=ALL_QUEUES,
                                      threshold=together))
    whole = {"start": iso(period.since), "end": iso(period.until), "label": TOTAL}
    totals = [figures_record(total(by_queue[queue]), **whole, queue=queue,
                             threshold=thresholds[queue])
              for queue in queues]
    totals.append(figures_record(total([value for values in by_queue.values()
                                           for value in values]),
                                 **whole, queue=ALL_QUEUES, threshold=together))
    return per_queue, overall, totals


async def build_queue_report(request: web.Request, query: QueuesQuery) -> BuiltReport:
    period = period_of(request, query)
    queues = queue_names(request, query.queue)
    aggregates = request.app[REPORT_AGGREGATES]
    intervals = period.intervals()
    counts = await read_queue_counts(aggregates, intervals, queues, period.zone)
    per_queue, overall, totals = queue_report_records(period, intervals, queues,
                                                      aggregates.rules, counts)
    answer = QueuesReport(
        since=iso(period.since) or "", until=iso(period.until) or "",
        interval=period.interval.value, time_zone=period.zone.key, queues=list(queues),
        rows=[QueueFiguresRow(**record) for record in per_queue],
        overall=[QueueFiguresRow(**record) for record in overall],
        totals=[QueueFiguresRow(**record) for record in totals])
    table = table_from_records("queues", "Queues", COLUMNS, [*per_queue, *totals], NOTES)
    chart = table_from_records("queues", "Queues", COLUMNS, overall)
    return BuiltReport(answer, table, period, chart)


QUEUES_REPORT = ReportSpec(
    path="/api/reports/queues", name="queues",
    summary="Queue figures per interval",
    description="Offered, answered, abandoned, service level, ASA, AHT, ACW... per queue and "
                "interval, from the quarter-hour aggregates (docs/reports.md). Calls count in "
                "the interval in which they entered the queue; only calls that ended count.",
    query=QueuesQuery, answer=QueuesReport, build=build_queue_report, chart=CHART)

