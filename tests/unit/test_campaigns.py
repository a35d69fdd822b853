"""Outbound campaigns: the life table (core/campaigns.py), the store on both databases, and
/api/campaigns with its roles, its refusals naming the field, and its state changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.campaigns import (
    ALLOWED,
    EDITABLE,
    Campaign,
    CampaignMode,
    CampaignState,
    CampaignStateError,
    Outcome,
    check_editable,
    next_state,
)
from callcenter.core.clock import VirtualClock
from callcenter.features.accounts.store import Role
from callcenter.features.calls.store import CallRepository
from callcenter.features.campaigns.store import (
    CampaignExists,
    CampaignNotFound,
    CampaignRepository,
)
from callcenter.web.app import WebServices, make_app
from tests.support.web import accounts_for, client_signed_as, health_probe
from tests.unit.test_web_acd import answer_schema, check_against

T0 = 1_795_000_000.0
HOURS = {"mon-fri": ["09:00-20:00"], "sat": ["10:00-14:00"]}
NEW = {"name": "renewals", "mode": "predictive", "queue": "sales",
       "caller_id": "+551130000000", "default_region": "BR", "hours": HOURS}


def campaign(name: str = "renewals", **changes: Any) -> Campaign:
    settings: dict[str, Any] = {"mode": CampaignMode.PREDICTIVE, "queue": "sales",
                                "caller_id": "+551130000000", "default_region": "BR",
                                "hours": HOURS}
    return Campaign(name=name, **{**settings, **changes})


# --------------------------------------------------------------------------- the life table


@pytest.mark.parametrize("current", list(CampaignState))
@pytest.mark.parametrize("wanted", list(CampaignState))
def test_every_state_change_is_allowed_by_the_table_or_refused_with_the_reason(
        current: CampaignState, wanted: CampaignState):
    if wanted in ALLOWED[current]:
        assert next_state("c", current, wanted) is wanted
    else:
        with pytest.raises(CampaignStateError, match="campaign 'c' is"):
            next_state("c", current, wanted)


def test_a_stopped_campaign_never_runs_again_and_says_to_create_a_new_one():
    with pytest.raises(CampaignStateError, match="stopped for good; create a new one"):
        next_state("c", CampaignState.STOPPED, CampaignState.RUNNING)
    assert not ALLOWED[CampaignState.STOPPED]


@pytest.mark.parametrize("state", list(CampaignState))
def test_settings_change_only_while_nothing_is_dialed(state: CampaignState):
    if state in EDITABLE:
        check_editable("c", state)
    else:
        with pytest.raises(CampaignStateError, match="settings cannot change"):
            check_editable("c", state)


# --------------------------------------------------------------------------- the store


@pytest.fixture
def store(sessions: async_sessionmaker[AsyncSession]) -> CampaignRepository:
    return CampaignRepository(sessions, VirtualClock(T0))


async def test_a_campaign_is_stored_whole_and_read_back_equal(store: CampaignRepository):
    added = await store.add(campaign(script="Hello {name}", max_attempts=5,
                                     retry_minutes={Outcome.BUSY: 7}, ahead_of_inbound=True))
    assert added.id is not None and added.state is CampaignState.CREATED
    assert added.created_at == T0
    assert await store.get("renewals") == added
    assert await store.list() == [added]


async def test_a_taken_name_is_refused_and_the_first_campaign_stays(store: CampaignRepository):
    first = await store.add(campaign())
    with pytest.raises(CampaignExists, match="'renewals' exists already"):
        await store.add(campaign(queue="support"))
    assert await store.get("renewals") == first


async def test_an_unknown_campaign_is_not_found(store: CampaignRepository):
    with pytest.raises(CampaignNotFound, match="'nope': no such campaign"):
        await store.get("nope")


async def test_settings_change_while_paused_not_while_running(store: CampaignRepository):
    await store.add(campaign())
    changed = await store.change("renewals", {"max_attempts": 4})
    assert (await store.get("renewals")).max_attempts == 4 == changed.max_attempts
    running = await store.set_state("renewals", CampaignState.RUNNING, "ana")
    assert (running.state, running.state_reason) == (CampaignState.RUNNING, "ana")
    with pytest.raises(CampaignStateError, match="pause it first"):
        await store.change("renewals", {"max_attempts": 9})
    assert (await store.get("renewals")).max_attempts == 4
    await store.set_state("renewals", CampaignState.PAUSED, "dialer: no agent logged in")
    assert (await store.get("renewals")).state_reason == "dialer: no agent logged in"


async def test_a_state_change_made_meanwhile_wins_and_the_late_one_is_refused(
        store: CampaignRepository):
    await store.add(campaign())
    stale = await store.get("renewals")
    await store.set_state("renewals", CampaignState.RUNNING, "ana")
    with pytest.raises(ValueError, match="changed meanwhile"):
        await store._update_in_state(stale, {"max_attempts": 9})
    assert (await store.get("renewals")).max_attempts == stale.max_attempts


async def test_only_settings_may_be_changed(store: CampaignRepository):
    await store.add(campaign())
    with pytest.raises(ValueError, match="not a campaign setting: name, state"):
        await store.change("renewals", {"state": "running", "name": "x"})


# --------------------------------------------------------------------------- the API


@pytest.fixture
async def server(sqlite_sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Any]:
    accounts = accounts_for(sqlite_sessions)
    services = WebServices(CallRepository(sqlite_sessions), health_probe(), accounts,
                           VirtualClock(T0),
                           campaigns=CampaignRepository(sqlite_sessions, VirtualClock(T0)),
                           queue_names=("sales", "support"))
    server = TestServer(make_app(services))
    await server.start_server()
    yield server, accounts
    await server.close()


async def client_as(server: Any, *roles: Role) -> TestClient:
    test_server, accounts = server
    return await client_signed_as(test_server, accounts, roles)


async def test_a_campaign_manager_creates_starts_pauses_and_stops_a_campaign(server: Any):
    manager = await client_as(server, Role.CAMPAIGN_MANAGER)
    created = await manager.post("/api/campaigns", json=NEW)
    body = await created.json()
    assert created.status == 201, body
    check_against(answer_schema("POST", "/api/campaigns", 201), body)
    assert (body["state"], body["created_by"], body["abandon_cap_percent"],
            body["ring_seconds"], body["max_attempts"]) == ("created", "campaign_manager", 3.0,
                                                            20, 5)
    assert body["retry_minutes"] == {"busy": 15, "no_answer": 60, "machine": 240,
                                     "failed": 30, "dropped": 60, "human": 240}
    assert body["ahead_of_inbound"] is False  # inbound callers keep priority by default
    for state in ("running", "paused", "running", "stopped"):
        answer = await manager.post("/api/campaigns/renewals/state",
                                    json={"state": state, "reason": "test"})
        assert answer.status == 200, await answer.text()
    again = await manager.post("/api/campaigns/renewals/state", json={"state": "running"})
    assert again.status == 409
    assert (await again.json())["error"].endswith("stopped for good; create a new one")
    shown = await (await manager.get("/api/campaigns/renewals")).json()
    assert (shown["state"], shown["state_reason"]) == ("stopped", "campaign_manager: test")
    await manager.close()


async def test_supervisors_read_campaigns_agents_do_not_and_only_managers_change_them(
        server: Any):
    admin = await client_as(server, Role.ADMIN)
    assert (await admin.post("/api/campaigns", json=NEW)).status == 201
    supervisor = await client_as(server, Role.SUPERVISOR)
    listed = await supervisor.get("/api/campaigns")
    assert listed.status == 200
    check_against(answer_schema("GET", "/api/campaigns", 200), await listed.json())
    assert (await supervisor.post("/api/campaigns/renewals/state",
                                  json={"state": "running"})).status == 403
    assert (await supervisor.patch("/api/campaigns/renewals",
                                   json={"max_attempts": 2})).status == 403
    agent = await client_as(server, Role.AGENT)
    assert (await agent.get("/api/campaigns")).status == 403
    for client in (admin, supervisor, agent):
        await client.close()


@pytest.mark.parametrize(("change", "error"), [
    ({"name": "Renewals"}, "body: name: 'Renewals' is not a campaign name"),
    ({"mode": "robocall"}, "body: mode: 'robocall' is not one of preview, progressive, "
                           "predictive"),
    ({"queue": "billing"}, "body: queue: 'billing' is not a configured queue; use one of "
                           "sales, support"),
    ({"caller_id": "1130000000"}, "body: caller_id: '1130000000' is not an E.164 number"),
    ({"caller_id": None}, "body: caller_id: expected text, got null"),
    ({"default_region": "bra"}, "body: default_region: 'bra' is not a two-letter country"),
    ({"hours": {"mon-fri": ["25:00-26:00"]}}, "body: hours: mon-fri[0]:"),
    ({"hours": {"funday": ["09:00-10:00"]}}, "body: hours: funday:"),
    ({"hours": {}}, "body: hours: expected an object such as"),
    ({"abandon_cap_percent": 5}, "body: abandon_cap_percent: expected a percentage above 0 "
                                 "and at most 3 (the legal cap), got a number"),
    ({"abandon_cap_percent": 0}, "body: abandon_cap_percent: expected a percentage above 0"),
    ({"ring_seconds": 10}, "body: ring_seconds: expected a whole number from 15 to 120"),
    ({"max_attempts": 0}, "body: max_attempts: expected a whole number from 1 to 20"),
    ({"max_attempts": True}, "body: max_attempts: expected a whole number from 1 to 20"),
    ({"retry_minutes": {"busy": 0}}, "body: retry_minutes.busy: expected a whole number of "
                                     "minutes from 1"),
    ({"retry_minutes": {"later": 5}}, "body: retry_minutes: 'later' is not one of busy"),
    ({"dispositions": []}, "body: dispositions: expected a list of 1 to 50 dispositions"),
    ({"dispositions": [{"code": "sale", "label": "Sale", "kind": "final"},
                       {"code": "sale", "label": "Again", "kind": "final"}]},
     "body: dispositions[1].code: 'sale' is listed twice"),
    ({"dispositions": [{"code": "sale", "label": "Sale", "kind": "maybe"}]},
     "body: dispositions[0].kind: 'maybe' is not one of final, retry, do_not_call"),
    ({"machine_action": "shout"}, "body: machine_action: 'shout' is not one of hang_up"),
    ({"safe_harbor_prompt": "../etc/passwd"}, "body: safe_harbor_prompt: '../etc/passwd' is "
                                              "not a prompt name"),
    ({"script": "x" * 20_001}, "body: script: expected text of at most 20000 characters"),
    ({"script": "hello\x00"}, "body: script: contains a NUL character, which cannot be stored"),
    ({"dispositions": [{"code": "sale", "label": "S\x00", "kind": "final"}]},
     "body: dispositions[0].label: contains a NUL character"),
    ({"dialer": "fast"}, "body: unknown field 'dialer'"),
])
async def test_a_bad_campaign_is_refused_naming_the_field_and_nothing_is_stored(
        server: Any, change: dict[str, Any], error: str):
    manager = await client_as(server, Role.CAMPAIGN_MANAGER)
    answer = await manager.post("/api/campaigns", json={**NEW, **change})
    body = await answer.json()
    assert answer.status == 400, body
    assert body["error"].startswith(error), body["error"]
    assert (await (await manager.get("/api/campaigns")).json())["campaigns"] == []
    await manager.close()


async def test_settings_change_while_paused_and_a_running_campaign_refuses_with_409(
        server: Any):
    manager = await client_as(server, Role.CAMPAIGN_MANAGER)
    await manager.post("/api/campaigns", json=NEW)
    changed = await manager.patch("/api/campaigns/renewals",
                                  json={"max_attempts": 5, "hours": {"mon-sun": ["10:00-18:00"]}})
    body = await changed.json()
    assert changed.status == 200, body
    assert (body["max_attempts"], body["hours"]) == (5, {"mon-sun": ["10:00-18:00"]})
    assert body["mode"] == "predictive"  # what was not given stays
    await manager.post("/api/campaigns/renewals/state", json={"state": "running"})
    refused = await manager.patch("/api/campaigns/renewals", json={"max_attempts": 6})
    assert refused.status == 409
    assert "pause it first" in (await refused.json())["error"]
    empty = await manager.patch("/api/campaigns/renewals", json={})
    assert empty.status == 400
    assert (await empty.json())["error"].startswith("body: nothing to change")
    await manager.close()


async def test_unknown_campaigns_are_404_and_a_taken_name_409(server: Any):
    manager = await client_as(server, Role.CAMPAIGN_MANAGER)
    assert (await manager.get("/api/campaigns/nope")).status == 404
    assert (await manager.post("/api/campaigns/nope/state",
                               json={"state": "running"})).status == 404
    assert (await manager.post("/api/campaigns", json=NEW)).status == 201
    taken = await manager.post("/api/campaigns", json=NEW)
    assert taken.status == 409
    assert (await taken.json())["error"] == "campaign 'renewals' exists already"
    bad_path = await manager.get("/api/campaigns/Bad%20Name")
    assert bad_path.status == 400
    await manager.close()


async def test_a_state_request_names_only_what_a_manager_may_ask(server: Any):
    manager = await client_as(server, Role.CAMPAIGN_MANAGER)
    await manager.post("/api/campaigns", json=NEW)
    for sent, error in [({"state": "created"}, "body: state: 'created' is not one of running, "
                                               "paused, stopped"),
                        ({"state": "running", "reason": "x" * 201}, "body: reason: at most 200"),
                        ({"state": "running", "reason": "a\x00b"}, "body: reason: contains a NUL"),
                        ({}, "state: is required")]:
        answer = await manager.post("/api/campaigns/renewals/state", json=sent)
        assert answer.status == 400
        assert (await answer.json())["error"].startswith(error)
    await manager.close()


async def test_without_an_outbound_trunk_a_campaign_cannot_start(
        sqlite_sessions: async_sessionmaker[AsyncSession]):
    accounts = accounts_for(sqlite_sessions)
    services = WebServices(CallRepository(sqlite_sessions), health_probe(), accounts,
                           VirtualClock(T0), campaigns=CampaignRepository(sqlite_sessions,
                                                                          VirtualClock(T0)),
                           queue_names=("sales",), can_dial=False)
    server = TestServer(make_app(services))
    await server.start_server()
    manager = await client_signed_as(server, accounts, (Role.CAMPAIGN_MANAGER,))
    assert (await manager.post("/api/campaigns", json=NEW)).status == 201
    refused = await manager.post("/api/campaigns/renewals/state", json={"state": "running"})
    assert refused.status == 409
    assert "no outbound trunk is configured" in (await refused.json())["error"]
    shown = await (await manager.get("/api/campaigns/renewals")).json()
    assert shown["state"] == "created"
    assert (await manager.post("/api/campaigns/renewals/state",
                               json={"state": "stopped"})).status == 200
    await manager.close()
    await server.close()
