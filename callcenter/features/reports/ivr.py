"""The IVR report: containment, drop-off per node, attendant requests and FAQ resolution per
interval (docs/reports.md "IVR").

GET /api/reports/ivr (and .csv, .xlsx, .png), from the quarter-hour aggregates added up into
the intervals by the database (``ReportAggregates.rolled_up``); the FAQ
topics of the period come from the FAQ report's own count (GET /api/reports/faq).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from callcenter.core.report_contributions import IVR_COLUMNS, IVR_DROPOFF_TABLE, IVR_TABLE
from callcenter.core.report_periods import ReportInterval
from callcenter.core.report_table import CellKind, Column, ratio, table_from_records
from callcenter.features.calls.http import CALLS
from callcenter.features.reports.framework import (
    REPORT_AGGREGATES,
    BuiltReport,
    PeriodQuery,
    ReportSpec,
    period_of,
)
from callcenter.features.reports.render import Chart, Series
from callcenter.features.reports.schemas import DropOff, FaqTopic, IvrReport, IvrRow
from callcenter.web.params import bad_request, iso

C = CellKind
COLUMNS = (
    Column("start", "Start (UTC)", C.TIME),
    Column("end", "End (UTC)", C.TIME),
    Column("label", "Interval", C.TEXT),
    Column("ivr_calls", "Calls in the IVR", C.COUNT),
    Column("contained", "Contained", C.COUNT),
    Column("containment_rate", "Containment", C.RATIO),
    Column("abandoned_in_ivr", "Abandoned in the IVR", C.COUNT),
    Column("reached_queue", "Reached a queue", C.COUNT),
    Column("callbacks_requested", "Callbacks asked in the IVR", C.COUNT),
    Column("attendant_requests", "Asked for a person (SAC)", C.COUNT),
    Column("faq_heard", "FAQ answers heard", C.COUNT),
    Column("faq_solved", "FAQ answers solved", C.COUNT),
    Column("self_service_rate", "Self-service resolution", C.RATIO),
)
NOTES = (
    "Calls in the IVR: ended inbound calls with at least one IVR step, by their start.",
    "Contained: ended by the flow itself (completed_in_ivr): no agent, no queue, "
    "no hang-up in the menus. Containment: contained / calls in the IVR.",
    "Asked for a person: calls in which the SAC attendant key was pressed at least once.",
    "Self-service resolution: FAQ answers rated solved / heard, by when they were heard.",
)
CHART = Chart("IVR: containment and volume", "label", (
    ("Rates (%)", (Series("containment_rate", "line"), Series("self_service_rate", "line"))),
    ("Calls", (Series("ivr_calls"), Series("contained"), Series("abandoned_in_ivr"))),
))


def ivr_record(values: Mapping[str, int], *, start: float, end: float,
               label: str) -> dict[str, Any]:
    counts = {name: int(values.get(name, 0)) for name in IVR_COLUMNS}
    return {"start": iso(start), "end": iso(end), "label": label, **counts,
            "containment_rate": ratio(counts["contained"], counts["ivr_calls"]),
            "self_service_rate": ratio(counts["faq_solved"], counts["faq_heard"])}


async def build_ivr_report(request: web.Request, query: PeriodQuery) -> BuiltReport:
    period = period_of(request, query)
    aggregates = request.app[REPORT_AGGREGATES]
    intervals = period.intervals()
    per_interval = await aggregates.rolled_up(IVR_TABLE, intervals)
    records = [ivr_record(per_interval.get((index, ()), {}), start=interval.start,
                          end=interval.end, label=interval.label)
               for index, interval in enumerate(intervals)]
    whole: dict[str, int] = {}
    for values in per_interval.values():
        for name, value in values.items():
            whole[name] = whole.get(name, 0) + value
    total = ivr_record(whole, start=period.since, end=period.until, label="total")
    whole_period = [ReportInterval(period.since, period.until, "total")]
    drops = {node: values["abandoned"] for (_, (node,)), values
             in (await aggregates.rolled_up(IVR_DROPOFF_TABLE, whole_period,
                                            by=("node",))).items()}
    abandoned = sum(drops.values())
    drop_offs = [DropOff(node=node, abandoned=count, share=ratio(count, abandoned))
                 for node, count in sorted(drops.items(), key=lambda item: (-item[1], item[0]))
                 if count]
    try:
        topics = await request.app[CALLS].faq_report(period.since, period.until)
    except ValueError as exc:  # the store's own checks: still the client's mistake
        raise bad_request(str(exc)) from None
    answer = IvrReport(
        since=iso(period.since) or "", until=iso(period.until) or "",
        interval=period.interval.value, time_zone=period.zone.key,
        rows=[IvrRow(**record) for record in records], total=IvrRow(**total),
        drop_offs=drop_offs, faq_topics=[FaqTopic.of(topic) for topic in topics])
    table = table_from_records("ivr", "IVR", COLUMNS, [*records, total], NOTES)
    return BuiltReport(answer, table, period,
                       table_from_records("ivr", "IVR", COLUMNS, records))


IVR_REPORT = ReportSpec(
    path="/api/reports/ivr", name="ivr",
    summary="IVR containment, drop-off and self-service per interval",
    description="From the quarter-hour aggregates (docs/reports.md): calls count by their "
                "start, FAQ answers by when they were heard; only calls that ended count. "
                "`drop_offs`: the last node of calls abandoned in the IVR.",
    query=PeriodQuery, answer=IvrReport, build=build_ivr_report, chart=CHART)
