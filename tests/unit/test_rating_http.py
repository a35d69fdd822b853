"""The tariff and cost routes: admins import and re-rate, staff read, nobody else; hostile
uploads (too big, not CSV, not text, broken lines) are refused and store nothing; answers
match the OpenAPI document."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.clock import VirtualClock
from callcenter.features.accounts.store import Role
from callcenter.features.calls.store import CallRepository
from callcenter.features.rating.http import MAX_TARIFF_BYTES
from callcenter.features.rating.service import rating_services
from callcenter.web.app import WebServices, make_app
from tests.support.web import accounts_for, client_signed_as, health_probe
from tests.unit.test_rating_store import TARIFF, at, campaign_call
from tests.unit.test_web_acd import answer_schema, check_against

CSV = {"Content-Type": "text/csv"}


@dataclass
class Site:
    admin: TestClient
    supervisor: TestClient
    agent: TestClient
    calls: CallRepository


@pytest.fixture
async def site(sqlite_sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Site]:
    clock = VirtualClock(at("2026-12-01T00:00:00Z"))
    rating = rating_services(sqlite_sessions, clock)
    calls = CallRepository(sqlite_sessions, clock, followers=[rating.pricer])
    accounts = accounts_for(sqlite_sessions, clock)
    server = TestServer(make_app(WebServices(calls, health_probe(), accounts, clock,
                                             rating=rating)))
    admin = await client_signed_as(server, accounts, [Role.ADMIN])
    supervisor = await client_signed_as(server, accounts, [Role.SUPERVISOR])
    agent = await client_signed_as(server, accounts, [Role.AGENT], agent_id="agent1")
    try:
        yield Site(admin, supervisor, agent, calls)
    finally:
        for client in (admin, supervisor, agent):
            await client.close()


async def answered(response: Any, status: int, method: str, path: str) -> Any:
    body = await response.json()
    assert response.status == status, body
    check_against(answer_schema(method, path, status), body)
    return body


async def test_an_admin_imports_a_tariff_and_staff_read_it(site: Site) -> None:
    imported = await answered(
        await site.admin.post("/api/tariffs", params={"name": "carrier 2026.csv"},
                              data=TARIFF.encode(), headers=CSV),
        201, "POST", "/api/tariffs")
    assert (imported["name"], imported["currencies"], imported["rate_count"],
            imported["imported_by"]) == ("carrier 2026.csv", ["BRL", "USD"], 7, "admin")
    listed = await answered(await site.supervisor.get("/api/tariffs"), 200, "GET",
                            "/api/tariffs")
    assert [t["id"] for t in listed["tariffs"]] == [imported["id"]]
    rates = await answered(
        await site.supervisor.get(f"/api/tariffs/{imported['id']}/rates",
                                  params={"limit": "2", "offset": "1"}),
        200, "GET", "/api/tariffs/{tariff_id}/rates")
    assert [(r["line"], r["prefix"], r["per_minute"], r["connection_fee"], r["increments"])
            for r in rates["rates"]] == [(3, "5511", "0.10", "0.05", "60/60"),
                                         (4, "5511", "0.20", "0.05", "60/60")]
    missing = await site.supervisor.get("/api/tariffs/999/rates")
    assert missing.status == 404


async def test_a_bad_file_is_a_400_naming_its_lines_and_nothing_is_imported(site: Site) -> None:
    bad = TARIFF + ("5541,outbound,,abc,0,1/1,0,BRL,2,up,2026-01-01,x\n"
                    "55,sideways,,1,0,1/1,0,BRL,2,up,2026-01-01,y\n")
    response = await site.admin.post("/api/tariffs", data=bad.encode(), headers=CSV)
    body = await answered(response, 400, "POST", "/api/tariffs")
    assert body["error"] == ("tariff file: 2 problems, nothing imported: line 9: per_minute "
                             "'abc': an amount such as 0.12; line 10: direction 'sideways': "
                             "inbound or outbound")
    assert (await (await site.admin.get("/api/tariffs")).json())["tariffs"] == []


@pytest.mark.parametrize(("data", "headers", "status", "error"), [
    (b"x" * (MAX_TARIFF_BYTES + 1), CSV, 413, "larger than"),
    (TARIFF.encode(), {"Content-Type": "application/json"}, 415, "text/csv"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", CSV, 400, "line 1: not UTF-8 text"),
    (b'{"prefix": "55"}', CSV, 400, "line 1: unknown column(s)"),
    (b"", CSV, 400, "line 1: the file is empty"),
])
async def test_hostile_uploads_are_refused(site: Site, data: bytes, headers: dict[str, str],
                                           status: int, error: str) -> None:
    response = await site.admin.post("/api/tariffs", data=data, headers=headers)
    body = await response.json()
    assert response.status == status and error in body["error"], body
    assert (await (await site.admin.get("/api/tariffs")).json())["tariffs"] == []


async def test_only_admins_import_and_re_rate_and_only_staff_read_costs(site: Site) -> None:
    assert (await site.supervisor.post("/api/tariffs", data=TARIFF.encode(),
                                       headers=CSV)).status == 403
    assert (await site.supervisor.post("/api/costs/rerate", json={
        "since": "2026-06-01T00:00:00Z", "until": "2026-06-02T00:00:00Z"})).status == 403
    for path in ("/api/tariffs", "/api/costs/calls/x"):
        assert (await site.agent.get(path)).status == 403
    assert (await site.agent.get("/api/costs", params={
        "since": "2026-06-01T00:00:00Z", "until": "2026-06-02T00:00:00Z"})).status == 403


async def test_costs_of_a_call_and_totals_and_a_re_rating_through_the_api(site: Site) -> None:
    await site.admin.post("/api/tariffs", data=TARIFF.encode(), headers=CSV)
    await site.calls.save(campaign_call("1790000000.1", "+5511999990000",
                                        "2026-06-01T10:05:00Z", 61))
    await site.calls.save(campaign_call("1790000000.2", "+4930123456", "2026-06-01T11:00:00Z",
                                        60))
    cost = await answered(await site.supervisor.get("/api/costs/calls/1790000000.1"), 200,
                          "GET", "/api/costs/calls/{call_id}")
    assert (cost["totals"], cost["unpriced_legs"]) == ({"BRL": "0.25"}, 0)
    [leg] = cost["legs"]
    assert (leg["cost"], leg["currency"], leg["billed_seconds"], leg["prefix"],
            leg["trunk"]) == ("0.25", "BRL", 120, "5511", "callcenter-trunk")
    assert (await site.supervisor.get("/api/costs/calls/nope")).status == 404

    totals = await answered(await site.supervisor.get("/api/costs", params={
        "by": "campaign", "since": "2026-06-01T00:00:00Z", "until": "2026-06-02T00:00:00Z",
        "tz": "America/Sao_Paulo"}), 200, "GET", "/api/costs")
    assert [(t["key"], t["currency"], t["legs"], t["cost"]) for t in totals["totals"]] == [
        ("renewals", "BRL", 1, "0.25"), ("renewals", None, 1, None)]
    assert totals["time_zone"] == "America/Sao_Paulo", "named as the reports name it"

    fix = ("prefix,direction,per_minute,connection_fee,currency,effective_from\n"
           "5511,outbound,0.15,0.05,BRL,2026-01-01\n")
    await site.admin.post("/api/tariffs", data=fix.encode(), headers=CSV)
    period = {"since": "2026-06-01T00:00:00Z", "until": "2026-06-02T00:00:00Z"}
    dry = await answered(await site.admin.post("/api/costs/rerate", json=period), 200,
                         "POST", "/api/costs/rerate")
    assert (dry["applied"], dry["calls_checked"], dry["calls_changed"]) == (False, 2, 1)
    assert [(line["currency"], line["old_total"], line["new_total"], line["difference"])
            for line in dry["lines"]] == [("BRL", "0.25", "0.35", "0.10"),
                                          (None, None, None, None)]
    applied = await answered(await site.admin.post("/api/costs/rerate",
                                                   json={**period, "apply": True}),
                             200, "POST", "/api/costs/rerate")
    assert applied["calls_changed"] == 1
    again = await (await site.admin.post("/api/costs/rerate", json=period)).json()
    assert again["calls_changed"] == 0
    assert [line["difference"] for line in again["lines"]] == ["0.00", None]


@pytest.mark.parametrize(("query", "error"), [
    ({"until": "2026-06-02T00:00:00Z"}, "since and until are both required"),
    ({"since": "2026-06-02T00:00:00Z", "until": "2026-06-01T00:00:00Z"},
     "since must be before until"),
    ({"since": "2026-06-01T00:00:00Z", "until": "2026-06-02T00:00:00Z", "tz": "Mars/Base"},
     "unknown time zone 'Mars/Base'"),
    ({"since": "2025-01-01T00:00:00Z", "until": "2027-01-01T00:00:00Z"}, "at most 400"),
    ({"since": "2026-06-01T00:00:00Z", "until": "2026-06-02T00:00:00Z", "by": "colour"},
     "'colour' is not one of"),
])
async def test_bad_cost_queries_are_a_clear_400(site: Site, query: dict[str, str],
                                                error: str) -> None:
    response = await site.supervisor.get("/api/costs", params=query)
    body = await response.json()
    assert response.status == 400 and error in body["error"], body
