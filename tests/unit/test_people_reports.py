"""The agent and campaign reports: campaign counters kept up as the dialer writes its
attempts (hand-worked attempt sets, a rebuild that gives the same rows) on SQLite and
PostgreSQL; and GET /api/reports/agents and /api/reports/campaigns with their downloads,
roles and bad input."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.agent_figures import ProductivityPoints, micros_of
from callcenter.core.call_lists import ColumnMapping
from callcenter.core.campaigns import Campaign, CampaignMode
from callcenter.core.clock import VirtualClock
from callcenter.core.dial_rules import Outcome
from callcenter.core.records import AgentAttempt, AttemptOutcome, CallRecord
from callcenter.features.accounts.store import Role
from callcenter.features.agents.store import AgentDirectory, NewAgent, StateChange
from callcenter.features.calls.store import CallRepository
from callcenter.features.campaigns.attempts import AttemptStore, DialEntry
from callcenter.features.campaigns.list_files import ListFormat, read_call_list
from callcenter.features.campaigns.lists import CallLists
from callcenter.features.campaigns.models import (
    CallListEntryRow,
    CampaignAttemptRow,
    CampaignRow,
)
from callcenter.features.campaigns.store import CampaignRepository
from callcenter.features.reports.agent_store import AgentAggregates
from callcenter.features.reports.agents import AgentReportServices
from callcenter.features.reports.campaign_models import CampaignCountRow
from callcenter.features.reports.campaign_store import CampaignAggregates
from callcenter.features.reports.campaigns import CampaignReportServices
from callcenter.features.reports.framework import ReportContext
from callcenter.web.app import WebServices, make_app
from tests.support.web import accounts_for, client_signed_as, health_probe

DAY = datetime(2026, 12, 8, tzinfo=UTC).timestamp()
NUMBERS = [f"+1202555010{i}" for i in range(8)]
POINTS = ProductivityPoints(dispositions={"sale": 10})


def at(clock: str, day: float = DAY) -> float:
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    return day + hours * 3600 + minutes * 60 + seconds


@dataclass
class Outbound:
    sessions: async_sessionmaker[AsyncSession]
    agents: AgentAggregates
    aggregates: CampaignAggregates
    attempts: AttemptStore
    directory: AgentDirectory
    campaigns: CampaignRepository
    calls: CallRepository
    clock: VirtualClock


async def outbound(sessions: async_sessionmaker[AsyncSession]) -> Outbound:
    """Campaign renewals (queue sales, served by agent1 and agent2; agent3 serves support)
    with one list, every write followed by the aggregates."""
    clock = VirtualClock(at("23:00:00"))
    agents = AgentAggregates(sessions, POINTS)
    aggregates = CampaignAggregates(sessions, agents)
    directory = AgentDirectory(sessions, clock, followers=[agents])
    for agent_id, queue in (("agent1", "sales"), ("agent2", "sales"), ("agent3", "support")):
        await directory.create(NewAgent(id=agent_id, name=agent_id.title(), queues={queue: 0}))
    campaigns = CampaignRepository(sessions, clock)
    await campaigns.add(Campaign(name="renewals", mode=CampaignMode.PROGRESSIVE, queue="sales",
                                 caller_id="+551130000000", default_region="US",
                                 hours={"mon-sun": ["00:00-23:59"]}))
    text = "phone,name\n" + "".join(f"{n},N{i}\n" for i, n in enumerate(NUMBERS))
    upload = read_call_list(io.BytesIO(text.encode()), ListFormat.CSV,
                            ColumnMapping(phone="phone", name="name"), "US")
    await CallLists(sessions, clock).import_list("renewals", "december", upload.outcomes,
                                                 upload.summary)
    return Outbound(sessions, agents, aggregates, AttemptStore(sessions, [aggregates]),
                    directory, campaigns, CallRepository(sessions, followers=[agents]), clock)


async def hand_worked_day(floor: Outbound) -> None:
    """Seven calls of 2026-12-08 and one abandoned the day before; agent1 works 08:00-09:00.

        1  08:00  answered 08:00:10, a person, agent1, disposed "sale" at 08:05
        2  08:01  answered 08:01:05, dropped: abandoned (nobody within 2 s)
        3  08:02  answered 08:02:08 by a machine
        4  08:03  no answer
        5  08:20  answered 08:20:03, a person, agent2, disposed "no_interest" at 08:24
        6  08:30  still ringing
        7  12-07 10:00, answered 10:00:04, dropped: abandoned
    """
    async with floor.sessions() as session:  # any entry, whatever its past
        entries = [DialEntry(row.id, row.list_id, row.number, row.name, (), (), 0)
                   for row in await session.scalars(
                       select(CallListEntryRow).order_by(CallListEntryRow.id))]
    store = floor.attempts

    async def call(entry: int, placed: str, *, answered: str | None = None,
                   outcome: Outcome | None = None, day: float = DAY, **fields: Any) -> int:
        attempt = await store.placed("renewals", entries[entry], at(placed, day))
        if answered is not None:
            await store.answered(attempt.id, at(answered, day), f"call-{attempt.id}")
        if outcome is not None:
            await store.ended(attempt.id, outcome, at(placed, day) + 60, **fields)
        return attempt.id

    first = await call(0, "08:00:00", answered="08:00:10", outcome=Outcome.HUMAN,
                       agent_id="agent1")
    await call(1, "08:01:00", answered="08:01:05", outcome=Outcome.DROPPED, abandoned=True)
    await call(2, "08:02:00", answered="08:02:08", outcome=Outcome.MACHINE)
    await call(3, "08:03:00", outcome=Outcome.NO_ANSWER)
    fifth = await call(4, "08:20:00", answered="08:20:03", outcome=Outcome.HUMAN,
                       agent_id="agent2")
    await call(5, "08:30:00")
    await call(6, "10:00:00", answered="10:00:04", outcome=Outcome.DROPPED, abandoned=True,
               day=DAY - 86400)
    for attempt_id, disposition, agent, when in ((first, "sale", "agent1", "08:05:00"),
                                                 (fifth, "no_interest", "agent2", "08:24:00")):
        assert await store.dispose(attempt_id, disposition=disposition, notes=None,
                                   call_back_at=None, call_back_agent=None, by=agent,
                                   at=at(when))
    await floor.directory.record_state_changes([
        StateChange("agent1", "ready", "login", at("08:00:00"), "logged_out"),
        StateChange("agent1", "logged_out", None, at("09:00:00"), "ready")])
    await floor.calls.save(CallRecord(
        call_id=f"call-{first}", started_at=at("08:00:00"), ended_at=at("08:01:00"),
        attempts=[AgentAttempt("agent1", at("08:00:09"), at("08:01:00"),
                               AttemptOutcome.ANSWERED, at("08:00:10"), 50.0)]))


async def counter_rows(sessions: async_sessionmaker[AsyncSession]) -> set[tuple[Any, ...]]:
    async with sessions() as session:
        return {(r.campaign, micros_of(r.bucket), r.counter, r.count)
                for r in await session.scalars(select(CampaignCountRow))}


async def test_a_hand_worked_attempt_set_counts_and_rebuilds_the_same(
        sessions: async_sessionmaker[AsyncSession]):
    floor = await outbound(sessions)
    await hand_worked_day(floor)
    day = (await floor.aggregates.totals(DAY, DAY + 86400, ["renewals"]))["renewals"]
    summed: dict[str, int] = {}
    for counters in day.values():
        for name, amount in counters.items():
            summed[name] = summed.get(name, 0) + amount
    assert summed == {"placed": 6, "outcome:human": 2, "outcome:dropped": 1,
                      "outcome:machine": 1, "outcome:no_answer": 1, "live_answer": 3,
                      "abandoned": 1, "contact": 2, "disposition:sale": 1,
                      "disposition:no_interest": 1}
    kept = await counter_rows(sessions)
    assert await floor.aggregates.rebuild() == 7
    assert await counter_rows(sessions) == kept
    # The left-open one, closed as failed when the service starts again: counted so.
    await floor.attempts.close_left_open(at("23:00:00"))
    day = (await floor.aggregates.totals(DAY, DAY + 86400, ["renewals"]))["renewals"]
    assert sum(c["outcome:failed"] for c in day.values()) == 1
    kept = await counter_rows(sessions)
    await floor.aggregates.rebuild()
    assert await counter_rows(sessions) == kept


async def test_a_disposition_earns_the_agent_its_points_and_rebuilds_the_same(
        sessions: async_sessionmaker[AsyncSession]):
    floor = await outbound(sessions)
    await hand_worked_day(floor)
    totals = await floor.agents.totals(DAY, DAY + 86400, now=at("23:00:00"))
    points = {agent: sum(cell.points for cell in cells.values())
              for agent, cells in totals.items()}
    assert points == {"agent1": 1 + 10}  # a call handled, a sale; "no_interest" earns none
    before = await floor.agents.totals(DAY, DAY + 86400, now=at("23:00:00"))
    counts = await floor.agents.rebuild()
    assert (counts.dispositions, counts.calls) == (2, 1)
    assert await floor.agents.totals(DAY, DAY + 86400, now=at("23:00:00")) == before


# --------------------------------------------------------------------------- HTTP


@dataclass
class Served:
    server: TestServer
    floor: Outbound
    clients: list[TestClient]

    async def client(self, *roles: Role) -> TestClient:
        accounts = accounts_for(self.floor.sessions)
        client = await client_signed_as(self.server, accounts, roles)
        self.clients.append(client)
        return client


@pytest.fixture
async def served(sqlite_sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Served]:
    floor = await outbound(sqlite_sessions)
    await hand_worked_day(floor)
    services = WebServices(
        CallRepository(sqlite_sessions), health_probe(), accounts_for(sqlite_sessions),
        floor.clock, queue_names=("sales", "support"),
        agent_reports=AgentReportServices(floor.agents, floor.directory, floor.clock),
        campaign_reports=CampaignReportServices(floor.aggregates, floor.agents,
                                                floor.directory, floor.campaigns,
                                                floor.clock),
        report_context=ReportContext(time_zone="UTC", queues=("sales", "support")))
    server = TestServer(make_app(services))
    await server.start_server()
    served = Served(server, floor, [])
    yield served
    for client in served.clients:
        await client.close()
    await server.close()


DAY_QUERY = {"since": "2026-12-08T00:00:00Z", "until": "2026-12-09T00:00:00Z"}


async def test_the_campaign_report_of_a_hand_worked_day(served: Served):
    client = await served.client(Role.SUPERVISOR)
    answer = await (await client.get("/api/reports/campaigns", params=DAY_QUERY)).json()
    [day] = answer["rows"]
    assert (day["label"], day["attempts"], day["live_answers"], day["contacts"],
            day["abandoned"]) == ("2026-12-08", 6, 3, 2, 1)
    assert day["outcomes"] == {"busy": 0, "no_answer": 1, "machine": 1, "failed": 0,
                               "dropped": 1, "human": 2}
    assert day["abandon_rate"] == pytest.approx(1 / 3)  # the machine is no live answer
    assert day["abandon_rate_30_days"] == pytest.approx(2 / 4)  # yesterday's abandon too
    assert day["agent_hours"] == 1.0  # agent1, 08:00-09:00; agent3 serves another queue
    assert day["contacts_per_agent_hour"] == 2.0
    assert day["dispositions"] == {"no_interest": 1, "sale": 1}
    assert day["conversion"] == {"no_interest": 0.5, "sale": 0.5}
    assert day["cost"] is None  # rating not wired in
    assert answer["totals"][0]["attempts"] == 6
    quarters = await (await client.get("/api/reports/campaigns", params={
        **DAY_QUERY, "interval": "15m", "tz": "America/Sao_Paulo"})).json()
    assert [(r["label"], r["attempts"], r["contacts"]) for r in quarters["rows"]] == [
        ("2026-12-08T05:00-03:00", 4, 1), ("2026-12-08T05:15-03:00", 1, 1),
        ("2026-12-08T05:30-03:00", 1, 0), ("2026-12-08T05:45-03:00", 0, 0)]
    assert quarters["rows"][-1]["agent_hours"] == 0.25  # staffed, no calls: still a row


async def test_the_agent_report_of_a_hand_worked_day(served: Served):
    client = await served.client(Role.ADMIN)
    answer = await (await client.get("/api/reports/agents", params={
        **DAY_QUERY, "interval": "60m", "queue": "sales"})).json()
    assert [(r["label"], r["agent_id"]) for r in answer["rows"]] == [
        ("2026-12-08T08:00+00:00", "agent1")]
    [hour] = answer["rows"]
    assert (hour["logged_in_seconds"], hour["ready_seconds"], hour["calls_handled"],
            hour["points"], hour["occupancy"]) == (3600.0, 3600.0, 1, 11, 0.0)
    assert [t["agent_id"] for t in answer["totals"]] == ["agent1", "agent2"]
    assert answer["totals"][1]["logged_in_seconds"] == 0  # asked for, nothing: zeros
    assert answer["totals"][1]["occupancy"] is None


async def test_an_empty_period_is_zeros_not_an_error(served: Served):
    client = await served.client(Role.SUPERVISOR)
    quiet = {"since": "2026-11-01T00:00:00Z", "until": "2026-11-02T00:00:00Z"}
    agents = await (await client.get("/api/reports/agents", params=quiet)).json()
    assert agents["rows"] == [] and len(agents["totals"]) == 3
    assert {t["calls_handled"] for t in agents["totals"]} == {0}
    campaigns = await (await client.get("/api/reports/campaigns", params=quiet)).json()
    assert campaigns["rows"] == []
    assert campaigns["totals"][0]["attempts"] == 0
    assert campaigns["totals"][0]["abandon_rate"] == 0.0


async def test_downloads_are_the_same_figures(served: Served):
    client = await served.client(Role.SUPERVISOR)
    csv = await client.get("/api/reports/agents.csv", params={**DAY_QUERY, "agent": "agent1"})
    assert csv.status == 200
    text = (await csv.read()).decode("utf-8-sig").splitlines()
    assert text[0].startswith("start,label,agent_id,agent_name,logged_in_seconds")
    assert text[1].split(",")[1:5] == ["2026-12-08", "agent1", "Agent1", "3600.0"]
    assert csv.headers["Content-Disposition"] == (
        'attachment; filename="agents-20261208-20261208.csv"')
    xlsx = await client.get("/api/reports/campaigns.xlsx", params=DAY_QUERY)
    assert xlsx.status == 200 and (await xlsx.read())[:2] == b"PK"
    png = await client.get("/api/reports/agents.png", params={**DAY_QUERY, "interval": "60m"})
    assert png.status == 200 and (await png.read())[:8] == b"\x89PNG\r\n\x1a\n"
    ccsv = await client.get("/api/reports/campaigns.csv", params=DAY_QUERY)
    header = (await ccsv.read()).decode("utf-8-sig").splitlines()[0]
    assert "disposition_sale" in header and "conversion_sale" in header


@pytest.mark.parametrize("path, params, message", [
    ("/api/reports/agents", {"agent": "agent1,ghost"}, "agent: 'ghost' is not an agent"),
    ("/api/reports/agents", {"queue": "billing"}, "queue: 'billing' is not a queue"),
    ("/api/reports/agents", {"agent": "bad name!"}, "'bad name!' is not an agent id"),
    ("/api/reports/campaigns", {"campaign": "ghost"}, "campaign: 'ghost' is not a campaign"),
    ("/api/reports/campaigns", {"interval": "2h"}, "interval"),
    ("/api/reports/campaigns", {"since": "2026-12-08T00:05:00Z"}, "not on a quarter hour"),
    ("/api/reports/agents", {"tz": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
    ("/api/reports/agents", {"until": "2026-12-07T00:00:00Z"}, "since must be before until"),
    ("/api/reports/agents", {"since": "2025-12-09T00:00:00Z", "interval": "15m"},
     "35040 intervals x 3 agents is more than one answer holds"),
])
async def test_bad_input_is_a_400_naming_it(served: Served, path: str,
                                            params: dict[str, str], message: str):
    client = await served.client(Role.ADMIN)
    response = await client.get(path, params={**DAY_QUERY, **params})
    assert response.status == 400
    assert message in (await response.json())["error"]


async def test_who_may_read_which_report(served: Served):
    agent = await served.client(Role.AGENT)
    manager = await served.client(Role.CAMPAIGN_MANAGER)
    for path, client, status in (("/api/reports/agents", agent, 403),
                                 ("/api/reports/agents.png", agent, 403),
                                 ("/api/reports/campaigns", agent, 403),
                                 ("/api/reports/agents", manager, 403),
                                 ("/api/reports/campaigns", manager, 200),
                                 ("/api/reports/campaigns.csv", manager, 200)):
        response = await client.get(path, params=DAY_QUERY)
        assert (path, response.status) == (path, status)
    anonymous = TestClient(served.server)
    served.clients.append(anonymous)
    await anonymous.start_server()
    assert (await anonymous.get("/api/reports/agents", params=DAY_QUERY)).status == 401


# --------------------------------------------------------------------------- properties

operations = st.lists(st.tuples(
    st.integers(0, len(NUMBERS) - 1),  # which number
    st.integers(0, 3 * 86400),  # placed, seconds after the day before began
    st.sampled_from([None, *Outcome]),  # how it ended (None: still in flight)
    st.booleans(),  # answered (a person, a machine or a drop)
    st.booleans(),  # abandoned
    st.sampled_from([None, "sale", "no_interest"])),  # the disposition, if a person
    max_size=12)


async def brute_force_counts(sessions: async_sessionmaker[AsyncSession],
                             ) -> set[tuple[Any, ...]]:
    """Straight from campaign_attempts: each attempt's counters, added up."""
    found: dict[tuple[str, int, str], int] = {}

    def add(campaign: str, when: datetime, counter: str) -> None:
        bucket = micros_of(when) - micros_of(when) % (900 * 1_000_000)
        found[(campaign, bucket, counter)] = found.get((campaign, bucket, counter), 0) + 1

    async with sessions() as session:
        rows = (await session.scalars(select(CampaignAttemptRow))).all()
    for row in rows:
        add(row.campaign, row.placed_at, "placed")
        if row.outcome:
            add(row.campaign, row.placed_at, f"outcome:{row.outcome}")
        if row.outcome in ("human", "dropped") and row.answered_at is not None:
            add(row.campaign, row.answered_at, "live_answer")
            if row.abandoned:
                add(row.campaign, row.answered_at, "abandoned")
            if row.outcome == "human":
                add(row.campaign, row.answered_at, "contact")
                if row.disposition:
                    add(row.campaign, row.answered_at, f"disposition:{row.disposition}")
    return {(*key, count) for key, count in found.items()}


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=operations)
async def test_campaign_counters_equal_a_count_of_the_attempts_and_their_rebuild(
        sessions: async_sessionmaker[AsyncSession], operations):
    async with sessions() as session:  # examples share the database: set it up once
        ready = await session.scalar(select(CampaignRow.id).where(
            CampaignRow.name == "renewals"))
    floor = await outbound(sessions) if ready is None else await outbound_again(sessions)
    async with sessions() as session:  # any entry, whatever its past: the dialer's choice
        entries = [DialEntry(row.id, row.list_id, row.number, row.name, (), (), 0)
                   for row in await session.scalars(
                       select(CallListEntryRow).order_by(CallListEntryRow.id))]
    store = floor.attempts
    for number, placed, outcome, answered, abandoned, disposition in operations:
        entry = entries[number]
        when = DAY - 86400 + placed
        attempt = await store.placed("renewals", entry, when)
        if answered:
            await store.answered(attempt.id, when + 3, f"c-{attempt.id}")
        if outcome is not None:
            await store.ended(attempt.id, outcome, when + 60, abandoned=abandoned,
                              agent_id="agent1" if outcome is Outcome.HUMAN else None)
            if outcome is Outcome.HUMAN and disposition:
                await store.dispose(attempt.id, disposition=disposition, notes=None,
                                    call_back_at=None, call_back_agent=None, by="agent1",
                                    at=when + 90)
    kept = await counter_rows(sessions)
    assert kept == await brute_force_counts(sessions)
    await floor.aggregates.rebuild()
    assert await counter_rows(sessions) == kept
    agents_kept = await floor.agents.totals(DAY - 86400, DAY + 3 * 86400, now=DAY)
    await floor.agents.rebuild()
    assert await floor.agents.totals(DAY - 86400, DAY + 3 * 86400, now=DAY) == agents_kept


async def outbound_again(sessions: async_sessionmaker[AsyncSession]) -> Outbound:
    """The campaign made by an earlier example, with fresh followers."""
    clock = VirtualClock(at("23:00:00"))
    agents = AgentAggregates(sessions, POINTS)
    aggregates = CampaignAggregates(sessions, agents)
    return Outbound(sessions, agents, aggregates, AttemptStore(sessions, [aggregates]),
                    AgentDirectory(sessions, clock, followers=[agents]),
                    CampaignRepository(sessions, clock),
                    CallRepository(sessions, followers=[agents]), clock)
