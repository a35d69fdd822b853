"""The dialing routes: an agent's disposition of their call (once; do-not-call at once; "call
back at" in the callee's zone), a campaign's attempts and live figures, with their roles."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.campaigns import CampaignMode, CampaignState
from callcenter.core.clock import VirtualClock
from callcenter.core.consent import ConsentKind
from callcenter.core.dial_rules import Outcome
from callcenter.features.accounts.store import AccountRepository, Role
from callcenter.features.calls.store import CallRepository
from callcenter.features.campaigns.attempts import AttemptStore
from callcenter.features.campaigns.dispositions import Dispositions
from callcenter.features.campaigns.store import CampaignRepository
from callcenter.features.compliance.store import ComplianceStore
from callcenter.web.app import WebServices, make_app
from tests.support.calls import until
from tests.support.dialer import dialer_floor
from tests.support.web import accounts_for, client_signed_as, health_probe
from tests.unit.test_web_acd import answer_schema, check_against

T0 = 1_796_716_800.0  # 2026-12-08 08:00 UTC
NUMBERS = ["+12025550100", "+12025550101", "+12025550102"]
DISPOSE = "/api/campaigns/renewals/attempts/{}/disposition"


@dataclass
class Floor:
    server: TestServer
    accounts: AccountRepository
    attempts: AttemptStore
    compliance: ComplianceStore
    ids: dict[str, int]  # attempt id by number
    campaigns: CampaignRepository
    sent: list[dict[str, Any]]  # what the dialer sent to AMI

    async def client(self, *roles: Role, agent_id: str | None = None) -> TestClient:
        return await client_signed_as(self.server, self.accounts, roles, agent_id=agent_id)


@pytest.fixture
async def floor(sqlite_sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Floor]:
    dialing = await dialer_floor(sqlite_sessions, T0, NUMBERS, mode=CampaignMode.PREDICTIVE)
    attempts, campaigns = dialing.attempts, dialing.campaigns
    ids = {}
    entries = {e.number: e for e in await attempts.candidates(
        await campaigns.get("renewals"), limit=10)}
    for number, outcome, agent in ((NUMBERS[0], Outcome.HUMAN, "agent1"),
                                   (NUMBERS[1], Outcome.BUSY, None)):
        placed = await attempts.placed("renewals", entries[number], T0 - 600)
        if agent:
            await attempts.answered(placed.id, T0 - 590, f"call-{placed.id}")
        await attempts.ended(placed.id, outcome, T0 - 500, agent_id=agent)
        ids[number] = placed.id
    dispositions = Dispositions(attempts=attempts, campaigns=campaigns,
                                compliance=dialing.compliance, clock=dialing.clock)
    accounts = accounts_for(sqlite_sessions)
    server = TestServer(make_app(WebServices(
        CallRepository(sqlite_sessions), health_probe(), accounts, dialing.clock,
        campaigns=campaigns, compliance=dialing.compliance, queue_names=("sales",),
        dialer=dialing.dialer, dispositions=dispositions)))
    await server.start_server()
    yield Floor(server, accounts, attempts, dialing.compliance, ids, campaigns, dialing.sent)
    await server.close()


async def test_the_agent_who_took_the_call_sets_its_disposition_once(floor: Floor):
    agent = await floor.client(Role.AGENT, agent_id="agent1")
    other = await floor.client(Role.AGENT, agent_id="agent2")
    attempt = floor.ids[NUMBERS[0]]
    refused = await other.post(DISPOSE.format(attempt), json={"disposition": "sale"})
    assert refused.status == 403, await refused.text()
    answer = await agent.post(DISPOSE.format(attempt), json={
        "disposition": "sale", "notes": "gold plan, 12 months"})
    body = await answer.json()
    assert answer.status == 200, body
    check_against(answer_schema("POST", "/api/campaigns/{name}/attempts/{attempt_id}/"
                                        "disposition", 200), body)
    assert (body["disposition"], body["notes"], body["disposed_by"]) == (
        "sale", "gold plan, 12 months", "agentagent1")
    again = await agent.post(DISPOSE.format(attempt), json={"disposition": "not_interested"})
    assert again.status == 409
    assert "already has the disposition 'sale'" in (await again.json())["error"]
    for client in (agent, other):
        await client.close()


async def test_do_not_call_lists_the_number_and_revokes_consent_at_once(floor: Floor):
    manager = await floor.client(Role.CAMPAIGN_MANAGER)
    answer = await manager.post(DISPOSE.format(floor.ids[NUMBERS[0]]),
                                json={"disposition": "do_not_call"})
    assert answer.status == 200, await answer.text()
    assert await floor.compliance.blocked(NUMBERS[0], "renewals") is not None
    now = await floor.compliance.consent(NUMBERS[0], "renewals")
    assert now.revoked and now.entry is not None and now.entry.kind is ConsentKind.REVOKED
    await manager.close()


async def test_call_back_at_is_the_callee_s_wall_clock_time(floor: Floor):
    agent = await floor.client(Role.AGENT, agent_id="agent1")
    answer = await agent.post(DISPOSE.format(floor.ids[NUMBERS[0]]), json={
        "disposition": "call_back", "call_back_at": "2026-12-08T10:30", "personal": True})
    body = await answer.json()
    assert answer.status == 200, body
    # Washington, D.C. is UTC-5 in December.
    assert (body["call_back_at"], body["call_back_agent"]) == ("2026-12-08T15:30:00Z",
                                                               "agent1")
    await agent.close()


@pytest.mark.parametrize(("sent", "error"), [
    ({"disposition": "maybe"}, "body: disposition: 'maybe' is not one of campaign "
                               "'renewals''s: sale, call_back"),
    ({"disposition": "Sale"}, "body: disposition: expected a disposition name"),
    ({"disposition": "sale", "call_back_at": "2026-12-09T10:00"},
     "body: call_back_at: only a retry disposition calls back; 'sale' is final"),
    ({"disposition": "call_back", "call_back_at": "2026-12-08T01:00"},
     "body: call_back_at: 2026-12-08T01:00:00 in America/New_York has passed"),
    ({"disposition": "call_back", "call_back_at": "tomorrow"},
     "body: call_back_at: expected a wall-clock time in the callee's time zone"),
    ({"disposition": "call_back", "call_back_at": "2026-12-08T10:30+01:00"},
     "body: call_back_at: expected a wall-clock time"),
    ({"disposition": "call_back", "call_back_at": "2027-06-08T10:30"},
     "body: call_back_at: more than 90 days ahead"),
    ({"disposition": "call_back", "personal": True},
     "body: personal: only a call back at a time can be personal"),
    ({"disposition": "sale", "notes": "x\x00"}, "body: notes: contains a NUL character"),
    ({"disposition": "sale", "notes": "x" * 2001}, "body: notes: expected text of at most"),
])
async def test_bad_dispositions_are_refused_naming_the_field_and_nothing_is_stored(
        floor: Floor, sent: dict[str, Any], error: str):
    agent = await floor.client(Role.AGENT, agent_id="agent1")
    attempt = floor.ids[NUMBERS[0]]
    answer = await agent.post(DISPOSE.format(attempt), json=sent)
    assert answer.status == 400
    assert (await answer.json())["error"].startswith(error)
    stored = await floor.attempts.get("renewals", attempt)
    assert stored is not None and stored["disposition"] is None
    await agent.close()


async def test_unknown_attempts_and_calls_no_agent_took_are_refused(floor: Floor):
    manager = await floor.client(Role.CAMPAIGN_MANAGER)
    assert (await manager.post(DISPOSE.format(999), json={"disposition": "sale"})).status == 404
    assert (await manager.post("/api/campaigns/other/attempts/1/disposition",
                               json={"disposition": "sale"})).status == 404
    busy = await manager.post(DISPOSE.format(floor.ids[NUMBERS[1]]),
                              json={"disposition": "sale"})
    assert busy.status == 400
    assert "no agent took this call" in (await busy.json())["error"]
    await manager.close()


async def test_figures_and_attempts_for_the_people_over_the_campaign_only(floor: Floor):
    supervisor = await floor.client(Role.SUPERVISOR)
    answer = await supervisor.get("/api/campaigns/renewals/figures")
    figures = await answer.json()
    assert answer.status == 200, figures
    check_against(answer_schema("GET", "/api/campaigns/{name}/figures", 200), figures)
    assert (figures["today"]["placed"], figures["today"]["human"],
            figures["today"]["busy"]) == (2, 1, 1)
    assert figures["list"] == {"entries": 3, "called": 2, "done": 1, "remaining": 2,
                               "penetration_percent": 66.67}
    assert (figures["live_answers_today"], figures["abandon_percent_today"]) == (1, 0.0)
    assert (figures["agents"]["ready"], figures["agents"]["logged_out"]) == (1, 1)
    assert figures["minutes_to_finish"] == 60.0  # 2 calls in the last hour, 2 numbers left
    attempts = await (await supervisor.get("/api/campaigns/renewals/attempts",
                                           params={"limit": "1"})).json()
    assert [a["number"] for a in attempts["attempts"]] == [NUMBERS[1]]
    assert (await supervisor.get("/api/campaigns/nope/figures")).status == 404
    agent = await floor.client(Role.AGENT, agent_id="agent1")
    assert (await agent.get("/api/campaigns/renewals/figures")).status == 403
    assert (await agent.get("/api/campaigns/renewals/attempts")).status == 403
    for client in (supervisor, agent):
        await client.close()


async def test_in_preview_the_agent_sees_the_number_then_dials_or_skips_it(floor: Floor):
    await floor.campaigns.change("renewals", {"mode": "preview", "script": "Hello!"})
    await floor.campaigns.set_state("renewals", CampaignState.RUNNING, "test")
    agent = await floor.client(Role.AGENT, agent_id="agent1")
    other = await floor.client(Role.AGENT, agent_id="agent2")
    url = "/api/campaigns/renewals/preview"
    shown = await agent.post(url, json={"agent_id": "agent1"})
    body = await shown.json()
    assert shown.status == 200, body
    check_against(answer_schema("POST", "/api/campaigns/{name}/preview", 200), body)
    # The only number callable now: the first is final (a person answered), the second
    # waits for its busy retry.
    assert (body["number"], body["name"], body["script"], body["calls_made"]) == (
        NUMBERS[2], "C2", "Hello!", 0)
    assert (await (await agent.post(url, json={"agent_id": "agent1"})).json()) == body
    assert (await other.post(url, json={"agent_id": "agent1"})).status == 403
    entry = body["entry_id"]
    wrong = await agent.post(f"{url}/{entry + 100}", json={"agent_id": "agent1",
                                                          "action": "dial"})
    assert wrong.status == 409, await wrong.text()
    skipped = await agent.post(f"{url}/{entry}", json={"agent_id": "agent1", "action": "skip"})
    assert await skipped.json() == {"dialled": False, "attempt_id": None}
    assert floor.sent == []
    again = await (await agent.post(url, json={"agent_id": "agent1"})).json()
    dialled = await agent.post(f"{url}/{again['entry_id']}",
                               json={"agent_id": "agent1", "action": "dial"})
    chosen = await dialled.json()
    assert dialled.status == 200 and chosen["dialled"], chosen
    [originate] = floor.sent
    assert (originate["Channel"], originate["CallerID"]) == (
        f"PJSIP/{NUMBERS[2]}@callcenter-trunk", "<+12025550199>")

    async def ended() -> dict[str, Any] | None:
        attempt = await floor.attempts.get("renewals", chosen["attempt_id"])
        return attempt if attempt and attempt["outcome"] else None

    attempt = await until(ended, "the previewed call ended")
    assert attempt["outcome"] == "busy"
    for client in (agent, other):
        await client.close()


async def test_preview_is_only_for_running_preview_campaigns(floor: Floor):
    agent = await floor.client(Role.AGENT, agent_id="agent1")
    answer = await agent.post("/api/campaigns/renewals/preview", json={"agent_id": "agent1"})
    assert answer.status == 409
    assert "only a running preview campaign" in (await answer.json())["error"]
    await agent.close()


async def test_star_55_n_on_the_phone_disposes_of_the_agent_s_latest_call(floor: Floor):
    dispositions = Dispositions(attempts=floor.attempts, campaigns=floor.campaigns,
                                compliance=floor.compliance, clock=VirtualClock(T0))
    with pytest.raises(ValueError, match="has 1-5"):
        await dispositions.by_feature_code("agent1", 9)
    stored = await dispositions.by_feature_code("agent1", 1)  # the campaign's first: sale
    assert (stored["id"], stored["disposition"], stored["disposed_by"]) == (
        floor.ids[NUMBERS[0]], "sale", "agent agent1 (phone)")
    with pytest.raises(ValueError, match="no outbound call without a disposition"):
        await dispositions.by_feature_code("agent1", 1)
    with pytest.raises(ValueError, match="no outbound call without a disposition"):
        await dispositions.by_feature_code("agent2", 1)
