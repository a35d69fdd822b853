"""The survey report: CSAT and NPS per queue and rated agent, and per interval (docs/reports.md
"Surveys").

GET /api/reports/surveys (and .csv, .xlsx, .png), from the quarter-hour aggregates added up
into the intervals by the database (``ReportAggregates.rolled_up``). Which
questions count and how is set in [reports] (csat_questions, csat_satisfied_from,
nps_questions); answers count by when they were given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from callcenter.core.report_contributions import SURVEY_COLUMNS, SURVEY_TABLE
from callcenter.core.report_table import CellKind, Column, ratio, table_from_records
from callcenter.features.reports.framework import (
    REPORT_AGGREGATES,
    BuiltReport,
    ReportSpec,
    period_of,
    queue_names,
)
from callcenter.features.reports.render import Chart, Series
from callcenter.features.reports.schemas import SurveyRow, SurveysQuery, SurveysReport
from callcenter.web.params import iso

EVERY = "*"
C = CellKind
COLUMNS = (
    Column("start", "Start (UTC)", C.TIME),
    Column("end", "End (UTC)", C.TIME),
    Column("label", "Interval", C.TEXT),
    Column("queue", "Queue", C.TEXT),
    Column("agent_id", "Agent", C.TEXT),
    Column("csat_answers", "CSAT answers", C.COUNT),
    Column("csat_satisfied", "Satisfied", C.COUNT),
    Column("csat_score_sum", "CSAT answers added up", C.COUNT),
    Column("csat", "CSAT", C.RATIO),
    Column("csat_average", "CSAT average (1-5)", C.NUMBER),
    Column("nps_answers", "NPS answers", C.COUNT),
    Column("nps_promoters", "Promoters (9-10)", C.COUNT),
    Column("nps_passives", "Passives (7-8)", C.COUNT),
    Column("nps_detractors", "Detractors (0-6)", C.COUNT),
    Column("nps", "NPS", C.NUMBER),
)
NOTES = (
    "CSAT: answers at or above [reports] csat_satisfied_from / CSAT answers (1-5).",
    "NPS: (promoters - detractors) / NPS answers x 100, answers 0-10.",
    "Rated agent: the last agent who answered the call. Answers count when given.",
)
CHART = Chart("Surveys: CSAT and NPS", "label", (
    ("CSAT (%)", (Series("csat", "line"),)),
    ("NPS", (Series("nps", "line"),)),
    ("Answers", (Series("csat_answers"), Series("nps_answers"))),
))


def survey_record(values: Mapping[str, int], *, start: float, end: float, label: str,
                  queue: str, agent_id: str) -> dict[str, Any]:
    counts = {name: int(values.get(name, 0)) for name in SURVEY_COLUMNS}
    nps = ratio(counts["nps_promoters"] - counts["nps_detractors"], counts["nps_answers"])
    average = ratio(counts["csat_score_sum"], counts["csat_answers"])
    return {"start": iso(start), "end": iso(end), "label": label, "queue": queue,
            "agent_id": agent_id, **counts,
            "csat": ratio(counts["csat_satisfied"], counts["csat_answers"]),
            "csat_average": average, "nps": None if nps is None else 100 * nps}


def _added(groups: list[Mapping[str, int]]) -> dict[str, int]:
    whole: dict[str, int] = {}
    for values in groups:
        for name, value in values.items():
            whole[name] = whole.get(name, 0) + value
    return whole


async def build_survey_report(request: web.Request, query: SurveysQuery) -> BuiltReport:
    period = period_of(request, query)
    only = None if not query.queue else {"queue": queue_names(request, query.queue)}
    intervals = period.intervals()
    grouped = await request.app[REPORT_AGGREGATES].rolled_up(
        SURVEY_TABLE, intervals, by=("queue", "agent_id"), only=only)
    by_agent: dict[tuple[str, str], list[Mapping[str, int]]] = {}
    by_interval: dict[int, list[Mapping[str, int]]] = {}
    for (index, (queue, agent)), values in grouped.items():
        by_agent.setdefault((queue, agent), []).append(values)
        by_interval.setdefault(index, []).append(values)
    whole = {"start": period.since, "end": period.until, "label": "total"}
    agents = [survey_record(_added(groups), **whole, queue=queue, agent_id=agent)
              for (queue, agent), groups in sorted(by_agent.items())]
    overall = [survey_record(_added(by_interval.get(index, [])), start=interval.start,
                             end=interval.end, label=interval.label, queue=EVERY,
                             agent_id=EVERY)
               for index, interval in enumerate(intervals)]
    total = survey_record(_added(list(grouped.values())), **whole, queue=EVERY,
                          agent_id=EVERY)
    answer = SurveysReport(
        since=iso(period.since) or "", until=iso(period.until) or "",
        interval=period.interval.value, time_zone=period.zone.key,
        by_agent=[SurveyRow(**record) for record in agents],
        overall=[SurveyRow(**record) for record in overall], total=SurveyRow(**total))
    table = table_from_records("surveys", "Surveys", COLUMNS, [*agents, *overall, total],
                               NOTES)
    return BuiltReport(answer, table, period,
                       table_from_records("surveys", "Surveys", COLUMNS, overall))


SURVEYS_REPORT = ReportSpec(
    path="/api/reports/surveys", name="surveys",
    summary="CSAT and NPS per queue and agent",
    description="From the quarter-hour aggregates (docs/reports.md): which questions count "
                "is set in [reports]; answers count by when they were given, only from "
                "calls that ended. `queue` '' and `agent_id` '': calls without one.",
    query=SurveysQuery, answer=SurveysReport, build=build_survey_report, chart=CHART)
