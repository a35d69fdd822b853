"""The queue report: each queue's figures per interval (docs/reports.md "Queues").

GET /api/reports/queues (and .csv, .xlsx, .png): from the quarter-hour aggregates, added up
into the period's intervals in the report's time zone. The figures are core/queue_figures.py's
``QueueCounts`` and its rates, the same code the simulator reports with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from callcenter.core.queue_figures import QueueCounts, total
from callcenter.core.report_contributions import MAXIMA, QUEUE_TABLE, ReportRules
from callcenter.core.report_periods import ReportInterval, ReportPeriod, roll_up
from callcenter.core.report_table import CellKind, Column, table_from_records
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


def figures_record(counts: QueueCounts, *, start: float, end: float, label: str, queue: str,
                   threshold: float | None) -> dict[str, Any]:
    """One row of the report: the counts, and the rates core/queue_figures.py defines."""
    return {
        "start": iso(start), "end": iso(end), "label": label, "queue": queue,
        "service_level_seconds": threshold,
        **{name: getattr(counts, name) for name in (
            "offered", "answered", "abandoned", "short_abandons", "answered_within",
            "abandoned_after", "not_served", "callbacks_requested", "transfers_to_queue",
            "handled")},
        "service_level": counts.service_level, "asa": counts.asa, "aht": counts.aht,
        "acw": counts.acw,
        "abandon_rate": counts.abandon_rate, "longest_wait": counts.longest_wait,
        "talk_seconds": counts.talk_ms / 1000, "hold_seconds": counts.hold_ms / 1000,
        "wrap_up_seconds": counts.wrap_up_ms / 1000, "wrapped_calls": counts.wrapped_calls,
    }


def queue_counts(period: ReportPeriod, intervals: Sequence[ReportInterval],
                 rows: Sequence[dict[str, Any]]) -> dict[tuple[int, str], QueueCounts]:
    """The quarter-hour rows added up per (interval index, queue)."""
    totals = roll_up(period.bucket_positions(intervals), rows, by=("queue",),
                     maxima=MAXIMA[QUEUE_TABLE])
    return {(index, queue): QueueCounts(**values)
            for (index, (queue,)), values in totals.items()}


def queue_report_records(period: ReportPeriod, queues: Sequence[str], rules: ReportRules,
                         rows: Sequence[dict[str, Any]],
                         ) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                    list[dict[str, Any]]]:
    """(rows per interval and queue, overall per interval, totals per queue then overall)."""
    intervals = period.intervals()
    counts = queue_counts(period, intervals, rows)
    thresholds = {queue: rules.threshold(queue) for queue in queues}
    together = next(iter(set(thresholds.values()))) if len(set(thresholds.values())) == 1 \
        else None
    per_queue, overall = [], []
    for index, interval in enumerate(intervals):
        span = {"start": interval.start, "end": interval.end, "label": interval.label}
        for queue in queues:
            per_queue.append(figures_record(counts.get((index, queue), QueueCounts()),
                                            **span, queue=queue, threshold=thresholds[queue]))
        overall.append(figures_record(
            total([counts.get((index, queue), QueueCounts()) for queue in queues]),
            **span, queue=ALL_QUEUES, threshold=together))
    whole = {"start": period.since, "end": period.until, "label": TOTAL}
    totals = [figures_record(total([counts.get((index, queue), QueueCounts())
                                    for index in range(len(intervals))]),
                             **whole, queue=queue, threshold=thresholds[queue])
              for queue in queues]
    totals.append(figures_record(total([value for (_, queue), value in counts.items()
                                        if queue in thresholds]),
                                 **whole, queue=ALL_QUEUES, threshold=together))
    return per_queue, overall, totals


async def build_queue_report(request: web.Request, query: QueuesQuery) -> BuiltReport:
    period = period_of(request, query)
    queues = queue_names(request, query.queue)
    aggregates = request.app[REPORT_AGGREGATES]
    rows = await aggregates.read(QUEUE_TABLE, period.since, period.until,
                                 only={"queue": queues})
    per_queue, overall, totals = queue_report_records(period, queues, aggregates.rules, rows)
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

