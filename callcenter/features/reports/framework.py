"""What every report's HTTP face shares: the period query, and one report served as JSON,
CSV, XLSX and PNG from one build (docs/reports.md).

A report declares a ``ReportSpec``: its path, its query model (a ``PeriodQuery``), its JSON
answer model, and ``build``, which turns the parsed query into the JSON answer and the
``ReportTable`` behind it. ``report_endpoints`` makes the routes:

    GET <path>        the JSON answer
    GET <path>.csv    the table as CSV        GET <path>.xlsx   as a workbook
    GET <path>.png    its chart (when the spec has one)

so the four are always the same figures. The agent and outbound reports use the same.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BeforeValidator, Field
from pydantic.json_schema import WithJsonSchema

from callcenter.core.report_periods import (
    INTERVALS,
    Interval,
    PeriodError,
    ReportPeriod,
    time_zone,
)
from callcenter.core.report_table import ReportTable
from callcenter.features.accounts.store import Role
from callcenter.features.reports.aggregates import ReportAggregates
from callcenter.features.reports.render import (
    CSV_TYPE,
    PNG_TYPE,
    XLSX_TYPE,
    Chart,
    download,
    to_csv,
    to_png,
    to_xlsx,
)
from callcenter.web.auth import STAFF
from callcenter.web.contract import (
    TIME_SCHEMA,
    Answer,
    Endpoint,
    Query,
    Reply,
    TimeParam,
    fail,
    ok,
    one_of,
)
from callcenter.web.params import bad_request


@dataclass(frozen=True)
class ReportContext:
    """What the reports need to know about the center (from the settings)."""

    time_zone: str = "UTC"  # [center] time_zone: the default zone of every report
    queues: tuple[str, ...] = ()  # the configured queues: any other is refused


REPORT_CONTEXT = web.AppKey("report_context", ReportContext)
REPORT_AGGREGATES = web.AppKey("report_aggregates", ReportAggregates)


def _required_time(raw: object) -> object:
    if raw is None or raw == "":
        fail("is required (an ISO 8601 time on a quarter hour, e.g. 2026-11-28T00:00:00Z)")
    return raw


RequiredTime = Annotated[TimeParam, BeforeValidator(_required_time),
                         WithJsonSchema(TIME_SCHEMA)]


def _zone_name(raw: object) -> object:
    if raw is None or raw == "":
        return None
    try:
        time_zone(raw)  # type: ignore[arg-type]
    except PeriodError as exc:
        fail(str(exc))
    return raw


ZoneName = Annotated[str | None, BeforeValidator(_zone_name),
                     WithJsonSchema({"type": "string", "example": "America/Sao_Paulo"})]


class PeriodQuery(Query):
    """``[since, until)`` on quarter hours, at most a year, cut into ``interval``s of
    ``tz`` (default: the center's zone)."""

    # Declared with a default that is checked, so that a missing one gets our own words.
    since: Annotated[RequiredTime, Field(description="the period's start (on a quarter hour)",
                                         validate_default=True)] = None
    until: Annotated[RequiredTime, Field(description="the period's end, excluded (after "
                                                     "since, at most 367 days later)",
                                         validate_default=True)] = None
    interval: Annotated[one_of(INTERVALS), Field(description="the rows' length: local clock "
                                                 "(15m, 30m, 60m) or calendar (day, week, "
                                                 "month)")] = Interval.DAY.value
    tz: Annotated[ZoneName, Field(description="IANA time zone of the intervals; default: "
                                              "the center's ([center] time_zone)")] = None


def period_of(request: web.Request, query: PeriodQuery) -> ReportPeriod:
    """The query's period, or a 400 saying what is wrong with it."""
    zone_name = query.tz or request.app[REPORT_CONTEXT].time_zone
    try:
        return ReportPeriod(since=query.since, until=query.until,  # type: ignore[arg-type]
                            interval=Interval(query.interval), zone=time_zone(zone_name))
    except PeriodError as exc:
        raise bad_request(str(exc)) from None


def queue_names(request: web.Request, raw: str | None) -> tuple[str, ...]:
    """``queue=a,b`` as known queue names (none: every queue), or a 400 naming the unknown."""
    known = request.app[REPORT_CONTEXT].queues
    if raw is None or raw == "":
        return known
    names = tuple(dict.fromkeys(name.strip() for name in raw.split(",")))
    for name in names:
        if name not in known:
            shown = ", ".join(known) or "none configured"
            raise bad_request(f"queue: {name[:40]!r} is not a queue (known: {shown})")
    return names


def local_day(instant: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(instant, tz=zone).strftime("%Y%m%d")


@dataclass(frozen=True)
class BuiltReport:
    """One report, made once per request, for any of its formats."""

    answer: Answer  # the JSON
    table: ReportTable  # the CSV and XLSX
    period: ReportPeriod
    chart_table: ReportTable | None = None  # what the PNG draws; None: ``table``


Build = Callable[[web.Request, Any], Awaitable[BuiltReport]]


@dataclass(frozen=True)
class ReportSpec:
    path: str  # e.g. /api/reports/queues
    name: str  # file names: <name>-<first day>-<last day>.<ext>
    summary: str
    description: str
    query: type[PeriodQuery]
    answer: type[Answer]
    build: Build
    chart: Chart | None = None
    roles: frozenset[Role] | tuple[Role, ...] = STAFF


def _filename(spec: ReportSpec, period: ReportPeriod, extension: str) -> str:
    first = local_day(period.since, period.zone)
    last = local_day(period.until - 1, period.zone)
    return f"{spec.name}-{first}-{last}.{extension}"


def report_endpoints(spec: ReportSpec) -> tuple[Endpoint, ...]:
    """The report's JSON route and its downloads (see the module's docstring)."""

    async def as_json(request: web.Request, query: PeriodQuery) -> web.Response:
        return (await spec.build(request, query)).answer.response()

    async def as_csv(request: web.Request, query: PeriodQuery) -> web.Response:
        built = await spec.build(request, query)
        return download(to_csv(built.table), CSV_TYPE, _filename(spec, built.period, "csv"))

    async def as_xlsx(request: web.Request, query: PeriodQuery) -> web.Response:
        built = await spec.build(request, query)
        return download(to_xlsx(built.table), XLSX_TYPE,
                        _filename(spec, built.period, "xlsx"))

    async def as_png(request: web.Request, query: PeriodQuery) -> web.Response:
        assert spec.chart is not None
        built = await spec.build(request, query)
        image = to_png(built.chart_table or built.table, spec.chart)
        return download(image, PNG_TYPE, _filename(spec, built.period, "png"))

    def endpoint(suffix: str, handler: Any, reply: Reply, what: str) -> Endpoint:
        return Endpoint("GET", spec.path + suffix, handler, spec.roles,
                        f"{spec.summary}{what}", "reports",
                        {200: reply, 400: Reply("The period, interval, zone or a filter is "
                                                "wrong (the message says which)")},
                        query=spec.query, description=spec.description)

    binary = {"type": "string", "format": "binary"}
    endpoints = [
        endpoint("", as_json, ok(spec.answer), ""),
        endpoint(".csv", as_csv, Reply("A CSV download", binary, CSV_TYPE), " (CSV)"),
        endpoint(".xlsx", as_xlsx, Reply("An XLSX download", binary, XLSX_TYPE), " (XLSX)"),
    ]
    if spec.chart is not None:
        endpoints.append(endpoint(".png", as_png, Reply("A PNG chart", binary, PNG_TYPE),
                                  " (PNG chart)"))
    return tuple(endpoints)
