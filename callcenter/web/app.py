"""The aiohttp application: thin handlers over the services the composition root gives it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from callcenter.core.clock import Clock
from callcenter.features.accounts import http as accounts
from callcenter.features.accounts.store import AccountRepository
from callcenter.features.agent_transfers.http import install_transfer_routes
from callcenter.features.agent_transfers.service import CallTransfers
from callcenter.features.agents import http as agents_http
from callcenter.features.agents.admin import AgentAdmin
from callcenter.features.agents.http import AGENTS
from callcenter.features.callbacks import http as callbacks
from callcenter.features.callbacks.http import CALLBACKS
from callcenter.features.callbacks.store import CallbackRepository
from callcenter.features.calls import http as calls
from callcenter.features.calls.http import CALLS, DEAD_LETTERS
from callcenter.features.calls.store import CallRepository, DeadLetterRepository
from callcenter.features.calls.timelines import CallTimelines, StateHistory
from callcenter.features.campaigns.dialer import CampaignDialer
from callcenter.features.campaigns.dialing_http import install_dialing_routes
from callcenter.features.campaigns.dispositions import Dispositions
from callcenter.features.campaigns.http import install_campaign_routes
from callcenter.features.campaigns.imports import UploadServices
from callcenter.features.campaigns.store import CampaignRepository
from callcenter.features.compliance.http import install_compliance_routes
from callcenter.features.compliance.store import ComplianceStore
from callcenter.features.evaluations.http import install_evaluation_routes
from callcenter.features.evaluations.store import EvaluationStore
from callcenter.features.queues import http as queues_http
from callcenter.features.rating.http import install_rating_routes
from callcenter.features.rating.service import TRUNKS, RatingServices
from callcenter.features.recordings.http import install_recording_routes
from callcenter.features.recordings.service import CallRecordings
from callcenter.features.recordings.store import RecordingStore
from callcenter.features.reports import agents as agent_reports
from callcenter.features.reports import campaigns as campaign_reports
from callcenter.features.reports import http as reports
from callcenter.features.reports.agents import AGENT_REPORTS, AgentReportServices
from callcenter.features.reports.aggregates import ReportAggregates
from callcenter.features.reports.campaigns import CAMPAIGN_REPORTS, CampaignReportServices
from callcenter.features.reports.framework import REPORT_CONTEXT, ReportContext
from callcenter.features.supervision.http import install_supervision_routes
from callcenter.features.supervision.service import Supervision
from callcenter.features.wallboard.http import install_wallboard_routes
from callcenter.features.wallboard.service import WallboardService
from callcenter.store.db_errors import describe, is_unavailable
from callcenter.web.auth import install_auth
from callcenter.web.contract import register
from callcenter.web.demo import DEMO_ENDPOINT
from callcenter.web.events import EventHub, StreamSettings, install_events
from callcenter.web.health import HEALTH, HEALTH_ENDPOINT, HealthProbe
from callcenter.web.metrics import CallCenterCollector, LiveReadings, RequestCounts, install_metrics
from callcenter.web.openapi import OPENAPI_ENDPOINT

log = logging.getLogger(__name__)


@web.middleware
async def json_errors(request: web.Request, handler: Callable) -> web.StreamResponse:
    """Every error leaves as JSON that says what is wrong, never as a stack trace."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json":
            raise
        return web.json_response({"error": exc.reason, "status": exc.status}, status=exc.status)


@web.middleware
async def database_unavailable(request: web.Request, handler: Callable) -> web.StreamResponse:
    """An API call that finds the database away is answered 503 in JSON, not 500."""
    try:
        return await handler(request)
    except Exception as exc:
        if not request.path.startswith("/api/") or not is_unavailable(exc):
            raise
        log.warning("%s %s: the database is unavailable: %s", request.method, request.path,
                    describe(exc))
        # The driver's message may name the host and user: it stays in the log.
        return web.json_response(
            {"error": "database unavailable", "status": 503,
             "detail": "the database cannot be reached; try again shortly"},
            status=503, headers={"Retry-After": "5"})


@dataclass(frozen=True)
class WebServices:
    """What the composition root hands to the web application."""

    calls: CallRepository
    health: HealthProbe
    accounts: AccountRepository
    clock: Clock
    callbacks: CallbackRepository | None = None  # no callback routes without it
    secure_cookies: bool = False  # session cookies only over HTTPS (behind a TLS proxy)
    trusted_proxies: tuple[str, ...] = ()  # whose X-Forwarded-For names the client
    events: EventHub | None = None  # no /api/events without it
    event_stream: StreamSettings | None = None
    agents: AgentAdmin | None = None  # no /api/queues and /api/agents without it
    supervision: Supervision | None = None  # no /api/supervision nor transfers without both
    transfers: CallTransfers | None = None
    dead_letters: DeadLetterRepository | None = None  # no dead-letter route without it
    campaigns: CampaignRepository | None = None  # no /api/campaigns without it
    compliance: ComplianceStore | None = None  # no do-not-call and consent routes without it
    queue_names: tuple[str, ...] = ()  # the configured queues (a campaign names one)
    dialer: CampaignDialer | None = None  # no figures, attempts or dispositions without it
    can_dial: bool = True  # an outbound trunk is configured: campaigns may run
    dispositions: Dispositions | None = None
    uploads: UploadServices | None = None  # no call-list nor compliance uploads without it
    wallboard: WallboardService | None = None  # no /api/wallboard without it
    metrics: LiveReadings | None = None  # no /metrics without it
    agent_states: StateHistory | None = None  # the agents' logged states: call wrap-ups
    recordings: CallRecordings | None = None  # no /api/recordings without it and its store
    recording_store: RecordingStore | None = None
    evaluations: EvaluationStore | None = None  # no evaluations without it (and recordings)
    # No /api/reports/queues, ivr, surveys (the aggregate reports) without them.
    report_aggregates: ReportAggregates | None = None
    report_context: ReportContext = field(default_factory=ReportContext)
    # No /api/reports/agents nor /api/reports/campaigns without them (issue 14).
    agent_reports: AgentReportServices | None = None
    campaign_reports: CampaignReportServices | None = None
    rating: RatingServices | None = None  # no /api/tariffs and /api/costs without it


def make_app(services: WebServices) -> web.Application:
    """The application. Every route is added with the roles that may use it (deny by
    default: see web/auth.py)."""
    # Outermost, so it counts the status the client finally got.
    requests = RequestCounts() if services.metrics is not None else None
    app = web.Application(middlewares=[*([requests.middleware] if requests else []),
                                       json_errors, database_unavailable],
                          client_max_size=64 * 1024)
    app[CALLS] = services.calls
    app[HEALTH] = services.health
    install_auth(app, services.accounts, services.clock,
                 secure_cookies=services.secure_cookies,
                 trusted_proxies=services.trusted_proxies)
    register(app, accounts.ENDPOINTS)
    register(app, [HEALTH_ENDPOINT, OPENAPI_ENDPOINT])
    register(app, [calls.CALLS_ENDPOINT, reports.FAQ_ENDPOINT])
    app[calls.TIMELINES] = CallTimelines(services.calls, services.agent_states, services.clock,
                                         TRUNKS)
    register(app, [calls.TIMELINE_ENDPOINT])
    if services.dead_letters is not None:
        app[DEAD_LETTERS] = services.dead_letters
        register(app, [calls.DEAD_LETTERS_ENDPOINT])
    if services.callbacks is not None:
        app[CALLBACKS] = services.callbacks
        register(app, callbacks.ENDPOINTS)
    if services.agents is not None:
        add_acd_routes(app, services.agents)
    if services.events is not None:
        install_events(app, services.events, services.event_stream)
    if services.supervision is not None and services.transfers is not None:
        install_supervision_routes(app, services.supervision)
        install_transfer_routes(app, services.transfers)
    if services.campaigns is not None:
        install_campaign_routes(app, services.campaigns, services.queue_names,
                                services.uploads, can_dial=services.can_dial)
    if services.compliance is not None:
        install_compliance_routes(app, services.compliance, services.uploads)
    if services.dialer is not None and services.dispositions is not None:
        install_dialing_routes(app, services.dialer, services.dispositions)
    if services.wallboard is not None:
        install_wallboard_routes(app, services.wallboard)
    if services.metrics is not None:
        install_metrics(app, CallCenterCollector(services.metrics, requests))
    if services.recordings is not None and services.recording_store is not None:
        install_recording_routes(app, services.recordings, services.recording_store)
        if services.evaluations is not None:
            install_evaluation_routes(app, services.evaluations, services.recording_store,
                                      services.clock)
    if services.report_aggregates is not None:
        reports.install_report_routes(app, services.report_aggregates, services.report_context)
    if services.rating is not None:
        install_rating_routes(app, services.rating)
    register(app, [DEMO_ENDPOINT])  # the data-dip example's order system
    install_people_reports(app, services)
    return app


def install_people_reports(app: web.Application, services: WebServices) -> None:
    """The agent and campaign reports, when their services are given."""
    if services.agent_reports is None and services.campaign_reports is None:
        return
    if REPORT_CONTEXT not in app:  # the aggregate reports' routes may have set it
        app[REPORT_CONTEXT] = services.report_context
    if services.agent_reports is not None:
        app[AGENT_REPORTS] = services.agent_reports
        register(app, agent_reports.ENDPOINTS)
    if services.campaign_reports is not None:
        app[CAMPAIGN_REPORTS] = services.campaign_reports
        register(app, campaign_reports.ENDPOINTS)


def add_acd_routes(app: web.Application, agents: AgentAdmin) -> None:
    """Queues and agents, live. Agents change and read the history of only their own state
    (their endpoints say so: ``own_agent``)."""
    app[AGENTS] = agents
    register(app, queues_http.ENDPOINTS)
    register(app, agents_http.ENDPOINTS)
