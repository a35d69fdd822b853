"""GET /api/reports/campaigns (.csv, .xlsx): outbound figures per campaign and
interval, from the campaign aggregates (features/reports/campaign_store.py).

The abandon rate is the dialer's own (core/pacing.py ``WindowCounts``): abandoned live
answers / live answers, machines excluded, in the interval and over the 30 days that end
with it (the rolling window of the abandon rule). Contacts per agent hour divide the
contacts by the logged-in hours of the agents who serve the campaign's queue (as
configured now), from the agent aggregates.

Cost: ``CampaignCosts`` is the seam to rating (features/rating); without it the cost is
null, never 0.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from aiohttp import web

from callcenter.core.agent_figures import MICROS, AgentTotals
from callcenter.core.campaign_figures import ABANDONED, LIVE_ANSWER, CampaignTotals
from callcenter.core.campaigns import Campaign
from callcenter.core.clock import Clock
from callcenter.core.pacing import ROLLING_DAYS, WindowCounts
from callcenter.core.report_table import Cell, CellKind, Column, ReportTable
from callcenter.features.agents.store import AgentDirectory
from callcenter.features.campaigns.store import CampaignRepository
from callcenter.features.reports.agent_schemas import (
    Amount,
    CampaignFiguresRow,
    CampaignReport,
    CampaignReportQuery,
)
from callcenter.features.reports.agent_store import AgentAggregates
from callcenter.features.reports.agents import check_size
from callcenter.features.reports.campaign_store import CampaignAggregates
from callcenter.features.reports.framework import (
    BuiltReport,
    ReportSpec,
    period_of,
    report_endpoints,
)
from callcenter.web.auth import CAMPAIGN_READERS
from callcenter.web.contract import Endpoint
from callcenter.web.params import bad_request, iso

ROLLING_SECONDS = ROLLING_DAYS * 86400


class CampaignCosts(Protocol):
    """What a campaign's calls answered in [since, until) cost, per currency (rating's
    ``CostQueries.totals(CostGrouping.CAMPAIGN, since, until, campaign=name)`` gives it)."""

    async def campaign_cost(self, campaign: str, since: float, until: float,
                            ) -> list[tuple[str, Decimal]]:
        ...


@dataclass(frozen=True)
class CampaignReportServices:
    aggregates: CampaignAggregates
    agents: AgentAggregates
    directory: AgentDirectory
    campaigns: CampaignRepository
    clock: Clock
    costs: CampaignCosts | None = None  # rating not set up: no cost column figures


CAMPAIGN_REPORTS = web.AppKey("campaign_reports", CampaignReportServices)

COLUMNS = (
    Column("start", "Start (UTC)", CellKind.TIME),
    Column("label", "Interval", CellKind.TEXT),
    Column("campaign", "Campaign", CellKind.TEXT),
    Column("attempts", "Attempts", CellKind.COUNT),
    Column("live_answers", "Live answers", CellKind.COUNT),
    Column("contacts", "Contacts", CellKind.COUNT),
    Column("abandoned", "Abandoned", CellKind.COUNT),
    Column("abandon_rate", "Abandon rate", CellKind.RATIO),
    Column("abandon_rate_30_days", "Abandon rate, 30 days", CellKind.RATIO),
    Column("agent_hours", "Agent hours", CellKind.NUMBER),
    Column("contacts_per_agent_hour", "Contacts per agent hour", CellKind.NUMBER),
)
NOTES = (
    "Abandon rate = abandoned live answers / live answers (machines excluded), in the "
    "interval and over the 30 days ending with it.",
    "Contacts: a person talked to an agent. Conversion: a disposition's contacts / contacts.",
)


async def chosen_campaigns(repository: CampaignRepository, query: CampaignReportQuery,
                           ) -> list[Campaign]:
    everyone = {campaign.name: campaign for campaign in await repository.list()}
    if not query.campaign:
        return list(everyone.values())
    for name in query.campaign.split(","):
        if name not in everyone:
            raise bad_request(f"campaign: {name!r} is not a campaign")
    return sorted((everyone[name] for name in query.campaign.split(",")),
                  key=lambda campaign: campaign.name)


class RollingAbandons:
    """Live answers and abandons over the 30 days before any instant, by prefix sums."""

    def __init__(self, buckets: dict[int, Counter[str]]) -> None:
        self._starts = sorted(buckets)
        live = [buckets[start][LIVE_ANSWER] for start in self._starts]
        abandoned = [buckets[start][ABANDONED] for start in self._starts]
        self._live = [0, *itertools.accumulate(live)]
        self._abandoned = [0, *itertools.accumulate(abandoned)]

    def ending(self, end: float) -> WindowCounts:
        low = bisect.bisect_left(self._starts, int((end - ROLLING_SECONDS) * MICROS))
        high = bisect.bisect_left(self._starts, int(end * MICROS))
        return WindowCounts(self._live[high] - self._live[low],
                            self._abandoned[high] - self._abandoned[low])


def row(campaign: str, start: float, end: float, label: str, totals: CampaignTotals,
        rolling: WindowCounts, agent_seconds: float, cost: list[Amount] | None,
        ) -> CampaignFiguresRow:
    hours = agent_seconds / 3600
    return CampaignFiguresRow(
        start=iso(start), end=iso(end), label=label, campaign=campaign,
        attempts=totals.placed, outcomes=totals.outcomes(), live_answers=totals.live_answers,
        contacts=totals.contacts, abandoned=totals.abandoned, abandon_rate=totals.abandon_rate,
        abandon_rate_30_days=rolling.rate, agent_hours=hours,
        contacts_per_agent_hour=totals.contacts / hours if hours else None,
        dispositions=totals.dispositions(), conversion=totals.conversion(), cost=cost)


async def build(request: web.Request, query: CampaignReportQuery) -> BuiltReport:
    services = request.app[CAMPAIGN_REPORTS]
    period = period_of(request, query)
    campaigns = await chosen_campaigns(services.campaigns, query)
    intervals = period.intervals()
    check_size(len(intervals), len(campaigns), "campaigns")
    positions = period.bucket_positions(intervals)
    counters = await services.aggregates.totals(period.since - ROLLING_SECONDS, period.until,
                                                [c.name for c in campaigns])
    accounts = await services.directory.list(active_only=False)
    queues = sorted({campaign.queue for campaign in campaigns})
    members = {queue: [a.id for a in accounts if queue in a.queues] for queue in queues}
    agent_sums = await services.agents.interval_totals(
        [interval.start for interval in intervals], period.until, now=services.clock.now(),
        agents={agent for ids in members.values() for agent in ids})
    rows: list[tuple[int, CampaignFiguresRow]] = []
    totals: list[CampaignFiguresRow] = []
    for campaign in campaigns:
        buckets = counters.get(campaign.name, {})
        rolling = RollingAbandons(buckets)
        per: dict[int, CampaignTotals] = {}
        for bucket, counts in buckets.items():
            index = positions.get(bucket // MICROS)
            if index is not None:
                per.setdefault(index, CampaignTotals.of()).merge(CampaignTotals.of(counts))
        staffed: dict[int, AgentTotals] = {}
        for agent_id in members[campaign.queue]:
            for index, cell in agent_sums.get(agent_id, {}).items():
                staffed.setdefault(index, AgentTotals()).merge(cell)
        overall, overall_staff = CampaignTotals.of(), 0
        for index, interval in enumerate(intervals):
            counts = per.get(index, CampaignTotals.of())
            staff = staffed.get(index, AgentTotals()).logged_in / MICROS
            overall.merge(counts)
            overall_staff += staff
            if not counts.counters and not staff:
                continue  # nothing happened: no row (the totals show the zeros)
            cost = await _cost(services.costs, campaign.name, interval.start, interval.end)
            rows.append((index, row(campaign.name, interval.start, interval.end,
                                    interval.label, counts, rolling.ending(interval.end),
                                    staff, cost)))
        cost = await _cost(services.costs, campaign.name, period.since, period.until)
        totals.append(row(campaign.name, period.since, period.until, "total", overall,
                          rolling.ending(period.until), overall_staff, cost))
    rows.sort(key=lambda item: (item[0], item[1].campaign))
    answer = CampaignReport(since=iso(period.since), until=iso(period.until),
                            interval=period.interval.value, time_zone=period.zone.key,
                            rows=[r for _, r in rows], totals=totals)
    return BuiltReport(answer, table_of(answer), period)


async def _cost(costs: CampaignCosts | None, campaign: str, since: float, until: float,
                ) -> list[Amount] | None:
    if costs is None:
        return None
    return [Amount(currency=currency, amount=str(amount))
            for currency, amount in await costs.campaign_cost(campaign, since, until)]


def table_of(answer: CampaignReport) -> ReportTable:
    """The rows then the totals; a column per outcome, per disposition (count and
    conversion) found, and the cost per currency found."""
    every = [*answer.rows, *answer.totals]
    outcomes = sorted({name for r in every for name in r.outcomes})
    dispositions = sorted({name for r in every for name in r.dispositions})
    currencies = sorted({amount.currency for r in every for amount in r.cost or ()})
    columns = (
        *COLUMNS,
        *(Column(f"outcome_{name}", f"Outcome: {name}", CellKind.COUNT) for name in outcomes),
        *(Column(f"disposition_{name}", f"Disposition: {name}", CellKind.COUNT)
          for name in dispositions),
        *(Column(f"conversion_{name}", f"Conversion: {name}", CellKind.RATIO)
          for name in dispositions),
        *(Column(f"cost_{currency}", f"Cost ({currency})", CellKind.NUMBER)
          for currency in currencies),
    )
    records: list[tuple[Cell, ...]] = []
    for r in every:
        values = r.model_dump()
        costs = {amount.currency: float(amount.amount) for amount in r.cost or ()}
        records.append((
            *(values[column.key] for column in COLUMNS),
            *(r.outcomes.get(name, 0) for name in outcomes),
            *(r.dispositions.get(name, 0) for name in dispositions),
            *(r.conversion.get(name, 0.0) for name in dispositions),
            *(costs.get(currency) for currency in currencies)))
    return ReportTable("campaigns", "Campaigns", columns, tuple(records), NOTES)


SPEC = ReportSpec(
    path="/api/reports/campaigns", name="campaigns",
    summary="Outbound figures per campaign and interval",
    description=("Attempts, outcomes, live answers, contacts, abandons and the abandon rate "
                 "(the interval's and the 30 days' ending with it), contacts per agent hour, "
                 "dispositions and conversion, and cost, per campaign and interval and over "
                 "the period (docs/reports.md)."),
    query=CampaignReportQuery, answer=CampaignReport, build=build,
    roles=CAMPAIGN_READERS)
ENDPOINTS: tuple[Endpoint, ...] = report_endpoints(SPEC)
