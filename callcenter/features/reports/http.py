"""GET /api/reports/faq: how each IVR FAQ answer did, per flow and topic.

``self_service_rate`` is solved ÷ heard (DOMAIN.md's self-service resolution), null when
nothing was heard. Answers count by the time they were heard, in [since, until).
"""

from __future__ import annotations

from aiohttp import web

from callcenter.features.calls.http import CALLS
from callcenter.features.reports.aggregates import ReportAggregates
from callcenter.features.reports.framework import (
    REPORT_AGGREGATES,
    REPORT_CONTEXT,
    ReportContext,
    report_endpoints,
)
from callcenter.features.reports.ivr import IVR_REPORT
from callcenter.features.reports.queues import QUEUES_REPORT
from callcenter.features.reports.schemas import (
    FaqQuery,
    FaqReport,
    FaqTopic,
)
from callcenter.features.reports.surveys import SURVEYS_REPORT
from callcenter.web.auth import STAFF
from callcenter.web.contract import Endpoint, ok, register
from callcenter.web.params import bad_request, iso


async def faq_report(request: web.Request, query: FaqQuery) -> web.Response:
    try:
        topics = await request.app[CALLS].faq_report(query.since, query.until, query.flow)
    except ValueError as exc:  # the store's own checks: still the client's mistake
        raise bad_request(str(exc)) from None
    return FaqReport(since=iso(query.since), until=iso(query.until), flow=query.flow,
                     topics=[FaqTopic.of(t) for t in topics]).response()


FAQ_ENDPOINT = Endpoint(
    "GET", "/api/reports/faq", faq_report, STAFF,
    "How each IVR FAQ answer did, per flow and topic", "reports", {200: ok(FaqReport)},
    query=FaqQuery,
    description="Answers count by the time they were heard, in [since, until). "
                "`self_service_rate` is solved / heard, null when nothing was heard.")


# The reports made from the quarter-hour aggregates, each as JSON, CSV, XLSX and PNG.
AGGREGATE_ENDPOINTS = (*report_endpoints(QUEUES_REPORT), *report_endpoints(IVR_REPORT),
                       *report_endpoints(SURVEYS_REPORT))


def install_report_routes(app: web.Application, aggregates: ReportAggregates,
                          context: ReportContext) -> None:
    app[REPORT_AGGREGATES] = aggregates
    app[REPORT_CONTEXT] = context
    register(app, AGGREGATE_ENDPOINTS)
