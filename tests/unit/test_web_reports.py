"""GET /api/reports/queues, /ivr and /surveys: JSON, CSV, XLSX and PNG of the same figures,
and clear 400s for a bad period, interval, zone or queue (SQLite: the subject is the web
face; the aggregates run on both backends in test_report_aggregates.py)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.clock import VirtualClock
from callcenter.core.records import (
    CallRecord,
    Disposition,
    FaqOutcome,
    FaqResult,
    IvrStep,
    SurveyAnswer,
)
from callcenter.core.report_contributions import ReportRules
from callcenter.features.accounts.store import Role
from callcenter.features.calls.store import CallRepository
from callcenter.features.reports.aggregates import ReportAggregates
from callcenter.features.reports.framework import ReportContext
from callcenter.web.app import WebServices
from tests.support.web import accounts_for, health_probe, signed_in_client

T0 = datetime.fromisoformat("2026-11-18T12:00:00+00:00").timestamp()
DAY = "since=2026-11-18T00:00:00Z&until=2026-11-19T00:00:00Z"
RULES = ReportRules(service_level_seconds={"sales": 20.0, "support": 20.0})


@pytest.fixture
async def client(sqlite_sessions: async_sessionmaker[AsyncSession]
                 ) -> AsyncIterator[TestClient]:
    aggregates = ReportAggregates(sqlite_sessions, RULES)
    calls = CallRepository(sqlite_sessions, followers=[aggregates])
    base = CallRecord(call_id="a", started_at=T0, answered_at=T0 + 1, ended_at=T0 + 300,
                      ivr_path=[IvrStep("welcome", T0 + 1), IvrStep("main", T0 + 3, "1")],
                      queue="sales", queued_at=T0 + 5, wait_seconds=10.0, agent_id="agent1",
                      agent_answered_at=T0 + 15, talk_seconds=120.0,
                      disposition=Disposition.ANSWERED,
                      survey_answers=[SurveyAnswer("csat", "agent-rating", "5", T0 + 290)])
    await calls.save(base)
    await calls.save(replace(base, call_id="b", wait_seconds=50.0,
                             disposition=Disposition.ABANDONED_IN_QUEUE, agent_id=None,
                             talk_seconds=None, survey_answers=[]))
    await calls.save(replace(base, call_id="c", queue=None, queued_at=None,
                             disposition=Disposition.COMPLETED_IN_IVR, survey_answers=[],
                             faq_outcomes=[FaqOutcome("main", "hours", T0 + 20,
                                                      FaqResult.SOLVED)]))
    await calls.save(replace(base, call_id="d", queue=None, queued_at=None,
                             disposition=Disposition.ABANDONED_IN_IVR, survey_answers=[]))
    services = WebServices(calls, health_probe(), accounts_for(sqlite_sessions),
                           VirtualClock(), report_aggregates=aggregates,
                           report_context=ReportContext("America/Sao_Paulo",
                                                        ("sales", "support")))
    async with signed_in_client(services, [Role.SUPERVISOR]) as started:
        yield started


async def test_the_queue_report_in_json_per_interval_queue_and_in_all(
        client: TestClient) -> None:
    response = await client.get(f"/api/reports/queues?{DAY}&interval=60m&queue=sales")
    assert response.status == 200, await response.text()
    report = await response.json()
    assert report["time_zone"] == "America/Sao_Paulo" and report["queues"] == ["sales"]
    assert len(report["rows"]) == 24 and report["rows"][0]["label"] == "2026-11-17T21:00-03:00"
    busy = [row for row in report["rows"] if row["offered"]]
    assert [(row["label"], row["offered"], row["answered"], row["abandoned"]) for row in busy] \
        == [("2026-11-18T09:00-03:00", 2, 1, 1)]
    (total, together) = report["totals"]
    assert total["service_level"] == 0.5  # 1 within 20 s / (1 answered + 1 abandoned after)
    assert total["asa"] == 10.0 and total["aht"] == 120.0 and total["longest_wait"] == 50.0
    assert together["queue"] == "*" and together["offered"] == 2


async def test_the_report_takes_another_zone_and_whole_days(client: TestClient) -> None:
    response = await client.get(f"/api/reports/queues?{DAY}&tz=UTC")
    report = await response.json()
    assert [row["label"] for row in report["overall"]] == ["2026-11-18"]
    assert report["overall"][0]["offered"] == 2


async def test_the_queue_report_as_csv_and_xlsx_holds_the_same_rows(client: TestClient) -> None:
    response = await client.get(f"/api/reports/queues.csv?{DAY}&tz=UTC&queue=sales,support")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert 'filename="queues-20261118-20261118.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO((await response.text()).removeprefix("\ufeff"))))
    assert [(r["label"], r["queue"], r["offered"]) for r in rows] == [
        ("2026-11-18", "sales", "2"), ("2026-11-18", "support", "0"),
        ("total", "sales", "2"), ("total", "support", "0"), ("total", "*", "2")]
    from openpyxl import load_workbook

    response = await client.get(f"/api/reports/queues.xlsx?{DAY}&tz=UTC")
    sheet = load_workbook(io.BytesIO(await response.read())).active
    assert sheet is not None
    header = [cell.value for cell in sheet[1]]
    assert header[:4] == ["Start (UTC)", "End (UTC)", "Interval", "Queue"]
    offered = header.index("Offered")
    assert [row[offered] for row in sheet.iter_rows(min_row=2, max_row=3, values_only=True)] \
        == [2, 0]


async def test_charts_are_pngs(client: TestClient) -> None:
    for report in ("queues", "ivr", "surveys"):
        response = await client.get(f"/api/reports/{report}.png?{DAY}&interval=60m")
        assert response.status == 200, report
        assert response.headers["Content-Type"] == "image/png"
        assert (await response.read()).startswith(b"\x89PNG\r\n\x1a\n")


async def test_the_ivr_report_counts_containment_drop_off_and_faq(client: TestClient) -> None:
    report = await (await client.get(f"/api/reports/ivr?{DAY}")).json()
    total = report["total"]
    assert (total["ivr_calls"], total["contained"], total["abandoned_in_ivr"],
            total["reached_queue"]) == (4, 1, 1, 2)
    assert total["containment_rate"] == 0.25 and total["self_service_rate"] == 1.0
    assert report["drop_offs"] == [{"node": "main", "abandoned": 1, "share": 1.0}]
    assert [(t["topic"], t["solved"]) for t in report["faq_topics"]] == [("hours", 1)]


async def test_the_survey_report_rates_agents(client: TestClient) -> None:
    report = await (await client.get(f"/api/reports/surveys?{DAY}&queue=sales")).json()
    assert [(r["queue"], r["agent_id"], r["csat_answers"], r["csat"], r["csat_average"])
            for r in report["by_agent"]] == [("sales", "agent1", 1, 1.0, 5.0)]
    assert report["total"]["nps"] is None


@pytest.mark.parametrize(("query", "message"), [
    ("until=2026-11-19T00:00:00Z", "since: is required"),
    ("since=2026-11-19T00:00:00Z&until=2026-11-18T00:00:00Z", "since must be before until"),
    ("since=2026-11-18T00:00:05Z&until=2026-11-19T00:00:00Z", "is not on a quarter hour"),
    ("since=2025-01-01T00:00:00Z&until=2026-11-19T00:00:00Z", "longer than 367 days"),
    (f"{DAY}&interval=2h", "interval: '2h' is not one of 15m, 30m, 60m, day, week, month"),
    (f"{DAY}&tz=Mars/Olympus", "tz: unknown time zone 'Mars/Olympus'"),
    (f"{DAY}&queue=sales,nowhere", "queue: 'nowhere' is not a queue (known: sales, support)"),
    (f"{DAY}&queue=sales&queue=support", "parameter 'queue' is given more than once"),
    (f"{DAY}&colour=red", "unknown parameter 'colour'"),
])
async def test_a_bad_request_is_refused_saying_what_is_wrong(
        client: TestClient, query: str, message: str) -> None:
    for suffix in ("", ".csv"):
        response = await client.get(f"/api/reports/queues{suffix}?{query}")
        assert response.status == 400
        assert message in (await response.json())["error"]


async def test_an_empty_period_has_its_intervals_with_nothing_in_them(
        client: TestClient) -> None:
    response = await client.get("/api/reports/queues?since=2026-01-01T00:00:00Z"
                                "&until=2026-12-31T00:00:00Z&interval=month&tz=UTC")
    report = await response.json()
    assert len(report["overall"]) == 12
    assert report["totals"][-1]["offered"] == 2  # November's calls, the rest empty
    january = report["overall"][0]
    assert january["offered"] == 0 and january["service_level"] is None
