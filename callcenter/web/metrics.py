"""``GET /metrics``: the service's health and load for Prometheus (docs/operations-metrics.md).

One custom collector reads the live objects when Prometheus scrapes (calls up, queues,
agents, AMI, FastAGI, the record writer, the event stream): nothing is counted twice, no
global registry is touched from all over the code, and a scrape costs O(calls + agents +
queues). Only HTTP requests are counted as they happen (``RequestCounts``, a middleware),
by method, route template and status: never a path as sent, so no caller data and a bounded
number of series.

Access: like every other route, through the auth middleware: a signed-in admin or
supervisor, in practice an API token of a dedicated supervisor account given to Prometheus
as a bearer token. The figures hold no caller data (no numbers, no names, no call ids).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from callcenter.web.auth import STAFF
from callcenter.web.contract import Endpoint, Reply, register

# The text format Prometheus 2 and 3 both read (generate_latest writes it).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # any path no route serves (404/405): one series, not one per path


class RequestCounts:
    """HTTP requests answered, by (method, route template, status); a middleware."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, str]] = Counter()

    @web.middleware
    async def middleware(self, request: web.Request,
                         handler: Callable) -> web.StreamResponse:  # type: ignore[type-arg]
        status = 500  # an exception that is not an HTTP answer becomes a 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            self.counts[(_method(request), _route(request), str(status))] += 1


def _method(request: web.Request) -> str:
    return request.method if request.method in METHODS else "other"


def _route(request: web.Request) -> str:
    match_info = request.match_info
    if match_info.http_exception is not None:
        return UNMATCHED
    resource = match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


@dataclass(frozen=True)
class LiveReadings:
    """How to read each live figure at scrape time (the composition root passes lambdas
    over its objects; tests pass a known state)."""

    calls_up: Callable[[], Mapping[str, int]]  # direction -> calls in progress
    queue_waiting: Callable[[], Mapping[str, int]]  # queue -> callers in line
    agents_by_state: Callable[[], Mapping[str, int]]  # state -> agents
    ami_connected: Callable[[], bool]
    ami_logins: Callable[[], int]  # successful logins since start
    agi_sessions: Callable[[], int]
    agi_refused: Callable[[], int]  # sessions closed at once: max_sessions were open
    record_backlog: Callable[[], int]  # records handed over, not yet stored
    dead_letters: Callable[[], int]  # records moved aside since start
    event_subscribers: Callable[[], int]
    wallboard_snapshots: Callable[[], int] = lambda: 0


class CallCenterCollector(Collector):
    def __init__(self, readings: LiveReadings, requests: RequestCounts | None = None) -> None:
        self._readings = readings
        self._requests = requests

    def describe(self) -> list[Metric]:
        return []  # nothing read at registration: the objects may not be up yet

    def collect(self) -> Iterator[Metric]:
        r = self._readings
        yield _labelled(GaugeMetricFamily(
            "callcenter_calls_up", "Calls in progress now, by direction",
            labels=["direction"]), r.calls_up())
        yield _labelled(GaugeMetricFamily(
            "callcenter_queue_callers_waiting", "Callers in line now, by queue",
            labels=["queue"]), r.queue_waiting())
        yield _labelled(GaugeMetricFamily(
            "callcenter_agents", "Agents the ACD knows, by state", labels=["state"]),
            r.agents_by_state())
        yield GaugeMetricFamily("callcenter_ami_connected",
                                "1 while logged in to Asterisk's AMI and it is fully booted",
                                value=1 if r.ami_connected() else 0)
        yield CounterMetricFamily("callcenter_ami_reconnects",
                                  "AMI logins after the first since the service started",
                                  value=max(0, r.ami_logins() - 1))
        yield GaugeMetricFamily("callcenter_agi_sessions_active",
                                "FastAGI sessions open now (calls in a script)",
                                value=r.agi_sessions())
        yield CounterMetricFamily("callcenter_agi_sessions_refused",
                                  "FastAGI connections closed at once because "
                                  "agi_max_sessions were open", value=r.agi_refused())
        yield GaugeMetricFamily("callcenter_record_writer_backlog_records",
                                "Call records handed to the writer and not yet in the database",
                                value=r.record_backlog())
        yield CounterMetricFamily("callcenter_record_writer_dead_letters",
                                  "Call records the database refused for good, moved to the "
                                  "dead letters since start", value=r.dead_letters())
        yield GaugeMetricFamily("callcenter_event_stream_subscribers",
                                "Open live-event subscriptions (/api/events streams)",
                                value=r.event_subscribers())
        yield CounterMetricFamily("callcenter_wallboard_snapshots_published",
                                  "Wallboard snapshots published on the event stream",
                                  value=r.wallboard_snapshots())
        if self._requests is not None:
            family = CounterMetricFamily("callcenter_http_requests",
                                         "HTTP requests answered, by method, route and status",
                                         labels=["method", "route", "status"])
            for labels, count in sorted(self._requests.counts.items()):
                family.add_metric(list(labels), count)
            yield family


def _labelled(family: GaugeMetricFamily, values: Mapping[str, int]) -> GaugeMetricFamily:
    for label, value in sorted(values.items()):
        family.add_metric([label], value)
    return family


METRICS = web.AppKey("metrics", CollectorRegistry)


def install_metrics(app: web.Application, collector: CallCenterCollector) -> None:
    """``GET /metrics`` on ``app``, from a registry of its own holding ``collector``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    app[METRICS] = registry
    register(app, [METRICS_ENDPOINT])


async def show_metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


METRICS_ENDPOINT = Endpoint(
    "GET", "/metrics", show_metrics, STAFF, "Operational metrics for Prometheus", "live",
    {200: Reply("The Prometheus text format (docs/operations-metrics.md).",
                {"type": "string"}, media_type="text/plain")},
    takes_no_query=True,
    description="For an admin or supervisor: give Prometheus an API token of a dedicated "
                "supervisor account (`authorization: credentials_file`). No caller data.")
