"""GET /api/reports/agents (.csv, .xlsx, .png): agents' time and calls per interval, from
the aggregates (features/reports/agent_store.py), figures as docs/reports.md defines them.

The rows are per interval and agent where the agent has anything in it; the totals are per
agent over the period, every agent asked for (zeros for one with nothing). The PNG is the
agent state stack: per interval, the hours of the agents asked for, by state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aiohttp import web

from callcenter.core.agent_figures import MICROS, AgentTotals
from callcenter.core.clock import Clock
from callcenter.core.report_periods import ReportPeriod
from callcenter.core.report_table import Cell, CellKind, Column, ReportTable
from callcenter.features.agents.store import AgentAccount, AgentDirectory
from callcenter.features.reports.agent_schemas import (
    AgentFigures,
    AgentReport,
    AgentReportQuery,
)
from callcenter.features.reports.agent_store import AgentAggregates
from callcenter.features.reports.framework import (
    BuiltReport,
    ReportSpec,
    period_of,
    queue_names,
    report_endpoints,
)
from callcenter.features.reports.render import Chart, Series
from callcenter.web.auth import STAFF
from callcenter.web.contract import Endpoint
from callcenter.web.params import bad_request, iso


@dataclass(frozen=True)
class AgentReportServices:
    aggregates: AgentAggregates
    directory: AgentDirectory
    clock: Clock  # "now": where each agent's still-open state ends


AGENT_REPORTS = web.AppKey("agent_reports", AgentReportServices)
MAX_CELLS = 100_000  # rows of one answer: intervals x agents (or campaigns)

COLUMNS = (
    Column("start", "Start (UTC)", CellKind.TIME),
    Column("label", "Interval", CellKind.TEXT),
    Column("agent_id", "Agent", CellKind.TEXT),
    Column("agent_name", "Name", CellKind.TEXT),
    Column("logged_in_seconds", "Logged in (s)", CellKind.SECONDS),
    Column("ready_seconds", "Ready (s)", CellKind.SECONDS),
    Column("ringing_seconds", "Ringing (s)", CellKind.SECONDS),
    Column("talk_seconds", "Talk (s)", CellKind.SECONDS),
    Column("hold_seconds", "Hold (s)", CellKind.SECONDS),
    Column("wrap_up_seconds", "Wrap-up (s)", CellKind.SECONDS),
    Column("handle_seconds", "Handle (s)", CellKind.SECONDS),
    Column("paused_seconds", "Paused (s)", CellKind.SECONDS),
    Column("occupancy", "Occupancy", CellKind.RATIO),
    Column("utilisation", "Utilisation", CellKind.RATIO),
    Column("calls_handled", "Calls handled", CellKind.COUNT),
    Column("transfers", "Transfers", CellKind.COUNT),
    Column("points", "Points", CellKind.COUNT),
)
NOTES = (
    "Handle = talk + hold + wrap-up. Occupancy = handle / (handle + ready + ringing): "
    "paused time is in neither. Utilisation = handle / logged-in time.",
    "Times are the agents' states as logged, cut at the interval's edges; a state still "
    "going on counts up to the time of the report.",
)
STACK = (("ready", "Ready"), ("ringing", "Ringing"), ("talk", "Talk"), ("hold", "Hold"),
         ("wrap_up", "Wrap-up"), ("paused", "Paused"))
STACK_CHART = Chart("Agent states", "label", (
    ("Agent hours by state", tuple(Series(f"{key}_hours", "stack") for key, _ in STACK)),))


def figures(totals: AgentTotals, start: float, end: float, label: str,
            agent: AgentAccount) -> AgentFigures:
    def seconds(amount: int) -> float:
        return amount / MICROS

    return AgentFigures(
        start=iso(start), end=iso(end), label=label, agent_id=agent.id, agent_name=agent.name,
        logged_in_seconds=seconds(totals.logged_in), ready_seconds=seconds(totals.ready),
        ringing_seconds=seconds(totals.ringing), talk_seconds=seconds(totals.talk),
        hold_seconds=seconds(totals.hold), wrap_up_seconds=seconds(totals.wrap_up),
        handle_seconds=seconds(totals.handle), paused_seconds=seconds(totals.paused_total),
        paused_by_reason={reason or "none": seconds(amount)
                          for reason, amount in sorted(totals.paused.items())},
        occupancy=totals.occupancy, utilisation=totals.utilisation,
        calls_handled=totals.handled, transfers=totals.transfers, points=totals.points)


async def chosen_agents(request: web.Request, directory: AgentDirectory,
                        query: AgentReportQuery) -> list[AgentAccount]:
    """The agents the query names (all by default), narrowed to the queues it names; a 400
    naming an agent or queue that does not exist."""
    everyone = {agent.id: agent for agent in await directory.list(active_only=False)}
    if query.agent:
        for name in query.agent.split(","):
            if name not in everyone:
                raise bad_request(f"agent: {name!r} is not an agent")
        chosen = [everyone[name] for name in query.agent.split(",")]
    else:
        chosen = list(everyone.values())
    if query.queue:
        queues = set(queue_names(request, query.queue))
        chosen = [agent for agent in chosen if queues & set(agent.queues)]
    return sorted(chosen, key=lambda agent: agent.id)


async def build(request: web.Request, query: AgentReportQuery) -> BuiltReport:
    answer, stack, period = await _build(request, query)
    return BuiltReport(answer, table_of(answer), period, stack_table(period, stack))


async def _build(request: web.Request, query: AgentReportQuery,
                 ) -> tuple[AgentReport, dict[int, AgentTotals], ReportPeriod]:
    services = request.app[AGENT_REPORTS]
    period = period_of(request, query)
    agents = await chosen_agents(request, services.directory, query)
    intervals = period.intervals()
    check_size(len(intervals), len(agents), "agents")
    sums = await services.aggregates.interval_totals(
        [interval.start for interval in intervals], period.until, now=services.clock.now(),
        agents=[agent.id for agent in agents])
    rows: list[tuple[int, AgentFigures]] = []
    totals: list[AgentFigures] = []
    stack: dict[int, AgentTotals] = {}
    for agent in agents:
        overall = AgentTotals()
        for index, cell in sorted(sums.get(agent.id, {}).items()):
            interval = intervals[index]
            rows.append((index, figures(cell, interval.start, interval.end, interval.label,
                                        agent)))
            overall.merge(cell)
            stack.setdefault(index, AgentTotals()).merge(cell)
        totals.append(figures(overall, period.since, period.until, "total", agent))
    rows.sort(key=lambda item: (item[0], item[1].agent_id))  # by interval, then agent
    answer = AgentReport(since=iso(period.since), until=iso(period.until),
                         interval=period.interval.value, time_zone=period.zone.key,
                         rows=[row for _, row in rows], totals=totals)
    return answer, stack, period


def check_size(intervals: int, subjects: int, what: str) -> None:
    """A 400 for a report too big to answer at once (a year of quarter hours for hundreds
    of agents): the client asks for less."""
    if intervals * subjects > MAX_CELLS:
        raise bad_request(f"{intervals} intervals x {subjects} {what} is more than one answer "
                          f"holds ({MAX_CELLS} rows): ask for longer intervals, a shorter "
                          f"period or fewer {what}")


def column_name(reason: str) -> str:
    """A pause reason as part of a column's key: lowercase letters, digits and '_'."""
    return re.sub(r"[^a-z0-9_]", "_", reason.lower())[:40]


def table_of(answer: AgentReport) -> ReportTable:
    """The rows, then the totals, with a column per pause reason found."""
    reasons = sorted({reason for row in [*answer.rows, *answer.totals]
                      for reason in row.paused_by_reason})
    columns = (*COLUMNS, *(Column(f"paused_{column_name(reason)}_seconds",
                                  f"Paused: {column_name(reason)} (s)", CellKind.SECONDS)
                           for reason in reasons))
    records: list[tuple[Cell, ...]] = []
    for row in [*answer.rows, *answer.totals]:
        values = row.model_dump()
        records.append((*(values[column.key] for column in COLUMNS),
                        *(row.paused_by_reason.get(reason, 0.0) for reason in reasons)))
    return ReportTable("agents", "Agents", columns, tuple(records), NOTES)


def stack_table(period: ReportPeriod, stack: dict[int, AgentTotals]) -> ReportTable:
    """Per interval, the chosen agents' hours in each state (the PNG's table)."""
    columns = (Column("label", "Interval", CellKind.TEXT),
               *(Column(f"{key}_hours", title, CellKind.NUMBER) for key, title in STACK))
    rows = []
    for index, interval in enumerate(period.intervals()):
        cell = stack.get(index, AgentTotals())
        hours = [cell.ready, cell.ringing, cell.talk, cell.hold, cell.wrap_up,
                 cell.paused_total]
        rows.append((interval.label, *(amount / MICROS / 3600 for amount in hours)))
    return ReportTable("agents", "Agent states", columns, tuple(rows))


SPEC = ReportSpec(
    path="/api/reports/agents", name="agents",
    summary="Agents' time and calls per interval",
    description=("Logged-in, ready, ringing, talk, hold, wrap-up and paused time (by reason), "
                 "occupancy, utilisation, calls handled, transfers and productivity points "
                 "per agent and interval, and per agent over the period (docs/reports.md)."),
    query=AgentReportQuery, answer=AgentReport, build=build, chart=STACK_CHART, roles=STAFF)
ENDPOINTS: tuple[Endpoint, ...] = report_endpoints(SPEC)
