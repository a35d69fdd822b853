"""/api/queues and /api/agents over real HTTP: who may do what, what bad input gets, and
every answer checked against the OpenAPI document. A real directory and ACD behind them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.acd import AgentState, OfferFailure
from callcenter.core.callback_offers import NoOfferReason
from callcenter.core.clock import VirtualClock
from callcenter.features.accounts.store import Role
from callcenter.features.agents.schemas import HistoryQuery
from callcenter.features.callbacks.store import CallbackRepository
from callcenter.features.calls.store import CallRepository
from callcenter.web.app import WebServices, make_app
from callcenter.web.events import EventHub
from callcenter.web.openapi import build_document
from tests.support.agent_floor import Floor, build_floor
from tests.support.web import accounts_for, bearer_headers, health_probe

T0 = 1_795_000_000.0  # 2026-11-18T11:06:40Z
DOCUMENT = build_document()
ADMIN, SUPERVISOR, AGENT, CAMPAIGNS = "admin", "supervisor", "alice", "campaigns"
NOBODY = "nobody"  # no credentials at all
# Who signs requests: role, and the agent a user acts for.
USERS = {ADMIN: (Role.ADMIN, None), SUPERVISOR: (Role.SUPERVISOR, None),
         AGENT: (Role.AGENT, "alice"), CAMPAIGNS: (Role.CAMPAIGN_MANAGER, None)}


@dataclass
class Site:
    client: TestClient
    floor: Floor
    headers: dict[str, dict[str, str]]
    services: WebServices

    async def call(self, who: str, method: str, path: str, body: Any = None,
                   **kwargs: Any) -> tuple[int, Any]:
        if body is not None:
            kwargs["json"] = body
        response = await self.client.request(method, path, headers=self.headers.get(who, {}),
                                              **kwargs)
        return response.status, await response.json()


@pytest.fixture
async def site(sqlite_sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Site]:
    sessions = sqlite_sessions
    clock = VirtualClock(T0)
    floor = await build_floor(sessions, clock)

    accounts = accounts_for(sessions, clock)
    services = WebServices(
        CallRepository(sessions), health_probe(),
        accounts, clock, callbacks=CallbackRepository(sessions, clock),
        events=EventHub(clock), agents=floor.admin)
    headers = {who: await bearer_headers(accounts, [role], username=who, agent_id=agent_id)
               for who, (role, agent_id) in USERS.items()}
    async with TestClient(TestServer(make_app(services))) as client:
        yield Site(client, floor, headers, services)


def answer_schema(method: str, path: str, status: int) -> dict[str, Any]:
    answer = DOCUMENT["paths"][path][method.lower()]["responses"][str(status)]
    if "$ref" in answer:
        answer = DOCUMENT["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    return answer["content"]["application/json"]["schema"]


def check_against(schema: dict[str, Any], body: Any) -> None:
    validator = Draft202012Validator({"components": DOCUMENT["components"], **schema},
                                     format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, errors


def documented(method: str, route: str, status: int, body: Any) -> Any:
    """``body`` is what the document says ``method route`` answers with ``status``."""
    check_against(answer_schema(method, route, status), body)
    return body


def request_body_schema(method: str, route: str) -> dict[str, Any]:
    operation = DOCUMENT["paths"][route][method.lower()]
    return operation["requestBody"]["content"]["application/json"]["schema"]


# --------------------------------------------------------------------------- the routes


def test_the_history_parameters_are_exactly_those_the_handler_accepts():
    operation = DOCUMENT["paths"]["/api/agents/{id}/history"]["get"]
    assert {p["name"] for p in operation["parameters"] if p["in"] == "query"} == \
        set(HistoryQuery.model_fields)


# (method, route as documented, path sent, body, roles allowed, own agent only)
ROUTES = [
    ("GET", "/api/queues", "/api/queues", None, {ADMIN, SUPERVISOR, AGENT}),
    ("GET", "/api/queues/{name}", "/api/queues/sales", None, {ADMIN, SUPERVISOR, AGENT}),
    ("GET", "/api/agents", "/api/agents", None, {ADMIN, SUPERVISOR, AGENT}),
    ("GET", "/api/agents/{id}", "/api/agents/bob", None, {ADMIN, SUPERVISOR, AGENT}),
    ("POST", "/api/agents", "/api/agents", {"id": "dave", "name": "Dave Roy"}, {ADMIN}),
    ("PATCH", "/api/agents/{id}", "/api/agents/bob", {"skills": {"german": 4}}, {ADMIN}),
    ("POST", "/api/agents/{id}/secret", "/api/agents/bob/secret", None, {ADMIN}),
    ("POST", "/api/agents/{id}/state", "/api/agents/alice/state", {"state": "logged_in"},
     {ADMIN, SUPERVISOR, AGENT}),
    ("POST", "/api/agents/{id}/state", "/api/agents/bob/state", {"state": "logged_in"},
     {ADMIN, SUPERVISOR}),
    ("GET", "/api/agents/{id}/history", "/api/agents/alice/history", None,
     {ADMIN, SUPERVISOR, AGENT}),
    ("GET", "/api/agents/{id}/history", "/api/agents/bob/history", None, {ADMIN, SUPERVISOR}),
]


@pytest.mark.parametrize(("method", "route", "path", "body", "allowed"), ROUTES,
                         ids=[f"{m} {p}" for m, _, p, _, _ in ROUTES])
async def test_each_route_lets_in_exactly_the_roles_it_documents(site: Site, method, route,
                                                                 path, body, allowed):
    operation = DOCUMENT["paths"][route][method.lower()]
    assert allowed <= {ADMIN, SUPERVISOR, AGENT}
    assert {USERS[who][0].value for who in allowed} <= set(operation["x-roles"])
    status, answer = await site.call(NOBODY, method, path, body)
    assert status == 401
    documented(method, route, 401, answer)
    for who in (CAMPAIGNS, AGENT, SUPERVISOR, ADMIN):
        status, answer = await site.call(who, method, path, body)
        if who in allowed:  # let in: what follows is the route's business (a 409 here)
            assert status in (200, 201, 409), (who, answer)
            documented(method, route, status, answer)
        else:
            assert status == 403, (who, answer)
            documented(method, route, 403, answer)
            if USERS[who][0].value in operation["x-roles"]:  # the role may, not for others
                assert answer["error"] == ("agent 'bob': you may act only for your own; your "
                                           "agent is 'alice'")


async def test_an_agent_user_without_an_agent_may_not_change_any_state(site: Site):
    site.headers["loose"] = await bearer_headers(site.services.accounts, [Role.AGENT],
                                                 username="loose")
    status, answer = await site.call("loose", "POST", "/api/agents/alice/state",
                                     {"state": "logged_in"})
    assert (status, answer["error"]) == (403, "agent 'alice': you may act only for your own; "
                                              "you are no agent")


# --------------------------------------------------------------------------- reading


async def test_queues_show_their_rules_callers_in_line_and_members(site: Site):
    floor = site.floor
    await site.call(AGENT, "POST", "/api/agents/alice/state", {"state": "logged_in"})
    floor.driver.enqueue("call-1", "sales")  # rings alice
    floor.clock.advance(5)
    floor.driver.enqueue("call-2", "sales", skills={"french": 5})
    floor.clock.advance(3)
    status, body = await site.call(SUPERVISOR, "GET", "/api/queues")
    documented("GET", "/api/queues", status, body)
    assert [q["name"] for q in body["queues"]] == ["sales", "support"]
    status, sales = await site.call(AGENT, "GET", "/api/queues/sales")
    assert sales == documented("GET", "/api/queues/{name}", status, sales)
    assert sales == body["queues"][0]
    assert (sales["strategy"], sales["waiting"], sales["busy"], sales["ready"]) == (
        "longest_idle", 2, 1, 0)
    assert sales["longest_wait"] == 8
    assert sales["rules"]["wrap_up"] == 10
    assert sales["rules"]["overflow_to"] == "support"
    assert sales["rules"]["tier_delays"] == [30]
    ringing, waiting = sales["calls"]
    assert (ringing["call_id"], ringing["state"], ringing["agent_id"], ringing["position"]) == (
        "call-1", "ringing", "alice", 1)
    assert (waiting["call_id"], waiting["state"], waiting["position"]) == ("call-2", "waiting", 2)
    assert waiting["waiting_since"] == "2026-11-18T11:06:45Z"
    assert waiting["skills"] == {"french": 5}
    assert list(waiting) == [  # the order the ACD's snapshot has always had
        "call_id", "state", "position", "expected_wait", "priority", "virtual", "waiting_since",
        "joined_at", "skills", "needed", "agent_id", "for_agent", "tried", "last_failure"]
    assert sales["members"] == [
        {"agent_id": "alice", "name": "Alice Moreau", "tier": 0, "state": "ringing"},
        {"agent_id": "bob", "name": "Bob Stone", "tier": 1, "state": "logged_out"}]
    assert sales["callbacks_not_offered"] == {"waiting": 0, "last_day": 0, "reasons": []}


async def test_a_queue_counts_the_callers_it_could_not_offer_a_callback(site: Site):
    tally, clock = site.floor.not_offered, site.floor.clock
    tally.not_offered("call-1", "support", NoOfferReason.NUMBER_NOT_ALLOWED, clock.now())
    tally.not_offered("call-2", "support", NoOfferReason.NO_NUMBER, clock.now())
    tally.not_offered("call-3", "support", NoOfferReason.NUMBER_NOT_ALLOWED, clock.now())
    tally.left("call-3")
    status, support = await site.call(SUPERVISOR, "GET", "/api/queues/support")
    documented("GET", "/api/queues/{name}", status, support)
    assert support["callbacks_not_offered"] == {"waiting": 2, "last_day": 3, "reasons": [
        {"reason": "no_number", "text": "no number (anonymous or withheld caller ID)",
         "waiting": 1, "last_day": 1},
        {"reason": "number_not_allowed", "text": "number not allowed by the outbound rules",
         "waiting": 1, "last_day": 2}]}


async def test_agents_show_their_directory_entry_live_state_and_registration(site: Site):
    floor = site.floor
    floor.registrations.set_static_contact("bob", "sip:bob@192.0.2.7:5060", T0)
    await site.call(SUPERVISOR, "POST", "/api/agents/bob/state", {"state": "logged_in"})
    status, body = await site.call(AGENT, "GET", "/api/agents")
    documented("GET", "/api/agents", status, body)
    assert [a["id"] for a in body["agents"]] == ["alice", "bob", "carol"]
    alice, bob, carol = body["agents"]
    assert alice["queues"] == {"sales": 0}
    assert alice["skills"] == {"french": 9}
    assert alice["state"]["state"] == "logged_out"
    assert alice["registration"] == {"registered": False, "reachable": False,
                                     "changed_at": None, "roundtrip_usec": None}
    assert bob["state"]["state"] == "ready"
    assert bob["state"]["phone"] == "bob"
    assert bob["state"]["mode"] == "ring"
    assert bob["registration"]["registered"] is True
    assert (carol["active"], carol["state"]) == (False, None)
    status, one = await site.call(AGENT, "GET", "/api/agents/bob")
    assert documented("GET", "/api/agents/{id}", status, one) == bob


async def test_a_sip_secret_is_shown_only_when_it_is_made(site: Site):
    status, created = await site.call(ADMIN, "POST", "/api/agents",
                                      {"id": "dave", "name": "Dave Roy"})
    documented("POST", "/api/agents", status, created)
    secret = created["sip_secret"]
    status, rotated = await site.call(ADMIN, "POST", "/api/agents/dave/secret")
    documented("POST", "/api/agents/{id}/secret", status, rotated)
    assert set(rotated) == {"agent_id", "sip_secret", "warnings"}  # the name creation uses
    assert rotated["sip_secret"] != secret
    for path in ("/api/agents", "/api/agents/dave", "/api/queues"):
        response = await site.client.get(path, headers=site.headers[ADMIN])
        text = await response.text()
        assert "secret" not in text, path
        assert secret not in text and rotated["sip_secret"] not in text, path
    status, changed = await site.call(ADMIN, "PATCH", "/api/agents/dave", {"name": "Dave R."})
    assert "sip_secret" not in documented("PATCH", "/api/agents/{id}", status, changed)


@pytest.mark.parametrize(("path", "status", "error"), [
    ("/api/queues/billing", 404, "queue 'billing': no such queue; known: sales, support"),
    ("/api/queues/Sales", 400, "name: 'Sales' is not a queue name"),
    ("/api/agents/zoe", 404, "agent 'zoe': no such agent"),
    ("/api/agents/zoe/history", 404, "agent 'zoe': no such agent"),
    ("/api/agents/a%20b", 400, "id: 'a b' is not an agent id (1-40 letters, digits, '-' or "
                               "'_')"),
    ("/api/agents?active=1", 400, "unknown parameter 'active': this route takes none"),
    ("/api/queues?x=1", 400, "unknown parameter 'x': this route takes none"),
])
async def test_unknown_or_malformed_names_in_reads(site: Site, path, status, error):
    route = {"/api/queues/billing": "/api/queues/{name}", "/api/queues/Sales":
             "/api/queues/{name}", "/api/agents/zoe": "/api/agents/{id}",
             "/api/agents/zoe/history": "/api/agents/{id}/history",
             "/api/agents/a%20b": "/api/agents/{id}"}.get(path, path.split("?")[0])
    got, body = await site.call(ADMIN, "GET", path)
    assert (got, body["error"]) == (status, error)
    documented("GET", route, status, body)


# --------------------------------------------------------------------------- agents' accounts


async def test_an_admin_creates_an_agent_who_is_stored_routed_and_listed(site: Site):
    sent = {"id": "dave", "name": "Dave Roy", "queues": {"sales": 0, "support": 0},
            "skills": {"spanish": 6}}
    check_against(request_body_schema("POST", "/api/agents"), sent)
    status, created = await site.call(ADMIN, "POST", "/api/agents", sent)
    assert status == 201
    documented("POST", "/api/agents", 201, created)
    assert (created["id"], created["queues"], created["skills"], created["warnings"]) == (
        "dave", {"sales": 0, "support": 0}, {"spanish": 6}, [])
    assert created["state"]["state"] == "logged_out"
    assert created["created_at"] == "2026-11-18T11:06:40Z"
    assert site.floor.outside.applied == [T0]
    status, again = await site.call(ADMIN, "POST", "/api/agents", sent)
    assert (status, again["error"]) == (409, "agent 'dave': already exists")
    documented("POST", "/api/agents", 409, again)
    status, listed = await site.call(ADMIN, "GET", "/api/agents/dave")
    assert listed == {key: value for key, value in created.items()
                      if key not in ("sip_secret", "warnings")}


async def test_when_asterisk_cannot_be_told_the_agent_is_created_with_a_warning(site: Site):
    site.floor.outside.fail_apply = True
    status, created = await site.call(ADMIN, "POST", "/api/agents",
                                      {"id": "dave", "name": "Dave Roy", "queues": {"sales": 1}})
    assert status == 201
    documented("POST", "/api/agents", 201, created)
    assert len(created["warnings"]) == 2
    assert "overflow tier" in created["warnings"][0]
    assert created["warnings"][1].startswith("Asterisk was not updated (ApplyFailed: AMI is not "
                                             "connected)")


async def test_an_admin_changes_an_agent_and_deactivates_them(site: Site):
    sent = {"name": "Alice M.", "queues": {"support": 0}, "skills": {}}
    check_against(request_body_schema("PATCH", "/api/agents/{id}"), sent)
    status, changed = await site.call(ADMIN, "PATCH", "/api/agents/alice", sent)
    documented("PATCH", "/api/agents/{id}", status, changed)
    assert (changed["name"], changed["queues"], changed["skills"]) == ("Alice M.",
                                                                       {"support": 0}, {})
    await site.call(AGENT, "POST", "/api/agents/alice/state", {"state": "logged_in"})
    status, changed = await site.call(ADMIN, "PATCH", "/api/agents/alice", {"active": False})
    documented("PATCH", "/api/agents/{id}", status, changed)
    assert (changed["active"], changed["state"]) == (False, None)
    status, refused = await site.call(AGENT, "POST", "/api/agents/alice/state",
                                      {"state": "logged_in"})
    assert (status, refused["error"]) == (409, "agent 'alice' is inactive: an admin must "
                                               "activate them first")


async def test_an_agent_on_a_call_is_not_deactivated(site: Site):
    await site.call(AGENT, "POST", "/api/agents/alice/state", {"state": "logged_in"})
    site.floor.driver.enqueue("call-1", "sales")
    site.floor.driver.answered("call-1", "alice")
    status, refused = await site.call(ADMIN, "PATCH", "/api/agents/alice", {"active": False})
    assert (status, refused["error"]) == (409, "agent 'alice' is on_call: they can be "
                                               "deactivated after the call")
    documented("PATCH", "/api/agents/{id}", 409, refused)
    _, alice = await site.call(ADMIN, "GET", "/api/agents/alice")
    assert alice["active"] is True


CREATE_ERRORS = [
    ({"id": "dave"}, "name: is required"),
    ([], "body: expected a JSON object like "),
    ({"id": "dave", "name": "Dave", "colour": "red"},
     "body: unknown field 'colour'; use id, name, queues, skills"),
    ({"id": 5, "name": "Dave"}, "body: id: expected text, got a number"),
    ({"id": "dave", "name": None}, "body: name: expected text, got null"),
    ({"id": "dave", "name": "Dave", "queues": ["sales"]},
     "body: queues: expected an object, got a list"),
    ({"id": "dave", "name": "Dave", "queues": {"billing": 0}},
     "body: queues['billing']: no such queue; known: sales, support"),
    ({"id": "dave", "name": "Dave", "queues": {"sales": 2}},
     "body: queues['sales']: tier 2 is not a whole number from 0 to 1 (queue 'sales' has 1 "
     "overflow tier(s): its tier_delays)"),
    ({"id": "dave", "name": "Dave", "skills": {"french": 12}},
     "body: skills['french']: level 12 is not a whole number from 1 to 10"),
    ({"id": "dave", "name": "Dave", "skills": {"french": "9"}},
     "body: skills['french']: level '9' is not a whole number from 1 to 10"),
    ({"id": "dave", "name": "Dave", "skills": {"french": 0}},
     "body: skills['french']: level 0 is not a whole number from 1 to 10"),
    ({"id": "dave", "name": "Dave", "skills": {"French": 5}},
     "body: skills['French']: not a skill name"),
    ({"id": "dave", "name": "Dave", "skills": ["french"]},
     "body: skills: expected an object, got a list"),
    ({"id": "Dave", "name": "Dave"}, "body: id: 'Dave' is not an agent id"),
    ({"id": "1dave", "name": "Dave"}, "body: id: '1dave' is not an agent id"),
    ({"id": "dave", "name": "Dave;Roy"}, "body: agent 'dave': name: 'Dave;Roy' contains ';'"),
]


@pytest.mark.parametrize(("sent", "error"), CREATE_ERRORS)
async def test_a_bad_new_agent_is_a_400_saying_what_and_where_and_nothing_is_stored(
        site: Site, sent, error):
    _, before = await site.call(ADMIN, "GET", "/api/agents")
    status, body = await site.call(ADMIN, "POST", "/api/agents", sent)
    assert status == 400
    documented("POST", "/api/agents", 400, body)
    assert body["error"].startswith(error)
    _, after = await site.call(ADMIN, "GET", "/api/agents")
    assert after == before
    assert site.floor.outside.applied == []


async def test_a_body_that_is_not_json_is_refused(site: Site):
    headers = {**site.headers[ADMIN], "Content-Type": "application/json"}
    response = await site.client.post("/api/agents", data="{id: dave", headers=headers)
    assert response.status == 400
    assert (await response.json())["error"].startswith("body: is not JSON; send e.g. ")
    response = await site.client.post("/api/agents", data="id=dave", headers=site.headers[ADMIN])
    assert response.status == 415
    documented("POST", "/api/agents", 415, await response.json())


@pytest.mark.parametrize(("sent", "status", "error"), [
    ({}, 400, "body: give at least one of active, name, queues, skills"),
    ({"active": "no"}, 400, "body: active: expected true or false, got text"),
    ({"queues": {"nowhere": 1}}, 400, "body: queues['nowhere']: no such queue"),
    ({"skills": {"french": 0}}, 400, "body: skills['french']: level 0 is not"),
    ({"name": ""}, 400, "body: agent 'alice': name"),
])
async def test_a_bad_change_is_a_400_and_the_agent_stays_as_they_were(site: Site, sent, status,
                                                                      error):
    _, before = await site.call(ADMIN, "GET", "/api/agents/alice")
    got, body = await site.call(ADMIN, "PATCH", "/api/agents/alice", sent)
    assert got == status
    assert body["error"].startswith(error)
    documented("PATCH", "/api/agents/{id}", status, body)
    _, after = await site.call(ADMIN, "GET", "/api/agents/alice")
    assert after == before


async def test_changing_or_rekeying_an_unknown_agent_is_a_404(site: Site):
    status, body = await site.call(ADMIN, "PATCH", "/api/agents/zoe", {"name": "Zoe"})
    assert (status, body["error"]) == (404, "agent 'zoe': no such agent")
    documented("PATCH", "/api/agents/{id}", 404, body)
    status, body = await site.call(ADMIN, "POST", "/api/agents/zoe/secret")
    assert status == 404
    documented("POST", "/api/agents/{id}/secret", 404, body)


# --------------------------------------------------------------------------- states


async def test_an_agent_logs_in_pauses_and_logs_out_and_the_history_has_it_all(site: Site):
    floor = site.floor
    for sent in ({"state": "logged_in"}, {"state": "paused", "reason": "lunch"},
                 {"state": "ready"}, {"state": "logged_out"}):
        check_against(request_body_schema("POST", "/api/agents/{id}/state"), sent)
        status, body = await site.call(AGENT, "POST", "/api/agents/alice/state", sent)
        assert status == 200, body
        documented("POST", "/api/agents/{id}/state", 200, body)
        now_in = {"logged_in": "ready"}.get(sent["state"], sent["state"])
        assert (body["requested"], body["deferred"], body["state"]["state"]) == (
            sent["state"], False, now_in)
        floor.clock.advance(60)
    await floor.desk.flush()
    status, history = await site.call(AGENT, "GET", "/api/agents/alice/history")
    documented("GET", "/api/agents/{id}/history", status, history)
    assert [(c["state"], c["reason"], c["at"]) for c in history["changes"]] == [
        ("ready", "login", "2026-11-18T11:06:40Z"),
        ("paused", "lunch", "2026-11-18T11:07:40Z"),
        ("ready", "ready", "2026-11-18T11:08:40Z"),
        ("logged_out", "logout", "2026-11-18T11:09:40Z")]
    assert history["since"] == "2026-11-17T11:10:40Z"  # a day before now
    assert history["truncated"] is False
    status, part = await site.call(SUPERVISOR, "GET", "/api/agents/alice/history", params={
        "since": "2026-11-18T11:07:00Z", "until": "2026-11-18T11:09:00Z", "limit": "1"})
    documented("GET", "/api/agents/{id}/history", status, part)
    assert [c["state"] for c in part["changes"]] == ["paused"]
    assert (part["until"], part["limit"], part["truncated"]) == ("2026-11-18T11:09:00Z", 1, True)


@pytest.mark.parametrize(("query", "error"), [
    ({"since": "yesterday"}, "since: 'yesterday' is not an ISO 8601 time"),
    ({"since": "2026-11-18T12:00:00Z", "until": "2026-11-18T11:00:00Z"},
     "since must be before until"),
    ({"limit": "0"}, "limit: 0 is outside 1..500"),
    ({"agent": "bob"}, "unknown parameter 'agent'; use limit, since, until"),
])
async def test_bad_history_parameters_are_a_400(site: Site, query, error):
    status, body = await site.call(ADMIN, "GET", "/api/agents/alice/history", params=query)
    assert status == 400
    assert body["error"].startswith(error)
    documented("GET", "/api/agents/{id}/history", 400, body)


async def test_a_pause_while_ringing_is_accepted_deferred_and_applied_after_the_ring(site: Site):
    floor = site.floor
    await site.call(AGENT, "POST", "/api/agents/alice/state", {"state": "logged_in"})
    floor.driver.enqueue("call-1", "sales")
    status, body = await site.call(AGENT, "POST", "/api/agents/alice/state",
                                   {"state": "paused", "reason": "break"})
    assert status == 202
    documented("POST", "/api/agents/{id}/state", 202, body)
    assert body["deferred"] is True
    assert body["message"] == "agent 'alice' is ringing: the pause applies when the call ends"
    assert (body["state"]["state"], body["state"]["deferred"], body["state"]["call_id"]) == (
        "ringing", "pause", "call-1")
    floor.driver.failed("call-1", "alice", OfferFailure.REJECTED)
    _, alice = await site.call(AGENT, "GET", "/api/agents/alice")
    assert (alice["state"]["state"], alice["state"]["reason"]) == ("paused", "break")


async def test_a_second_login_from_another_phone_is_a_409_and_the_first_stands(site: Site):
    status, body = await site.call(AGENT, "POST", "/api/agents/alice/state",
                                   {"state": "logged_in", "phone": "desk-7"})
    assert (status, body["state"]["phone"]) == (200, "desk-7")
    status, body = await site.call(SUPERVISOR, "POST", "/api/agents/alice/state",
                                   {"state": "logged_in", "phone": "softphone"})
    assert (status, body["error"]) == (409, "agent 'alice' is logged in on phone 'desk-7': "
                                            "log out there first")
    documented("POST", "/api/agents/{id}/state", 409, body)
    assert site.floor.driver.acd.agent("alice").phone == "desk-7"
    assert site.floor.driver.acd.agent_state("alice") is AgentState.READY


@pytest.mark.parametrize(("sent", "status", "error"), [
    ({}, 400, "state: is required"),
    ({"state": 1}, 400, "body: state: expected text, got a number"),
    ({"state": "asleep"}, 400, "body: state: 'asleep' is not one of logged_in, ready, paused, "
                               "logged_out"),
    ({"state": "paused"}, 400, "body: reason: required to pause; one of break, lunch, RONA"),
    ({"state": "paused", "reason": "nap"}, 400, "body: reason: 'nap' is not a pause reason; "
                                                "use one of break, lunch, RONA"),
    ({"state": "logged_in", "mode": "telepathy"}, 400,
     "body: mode: 'telepathy' is not one of ring, nailed"),
    ({"state": "logged_in", "phone": "desk 1"}, 400, "body: phone: 'desk 1' is not a phone name "
     "(1-64 letters, digits, '.', '_', '-', '+' or '~')"),
    ({"state": "logged_in", "phone": None}, 400, "body: phone: expected text, got null"),
    ({"state": "ready", "mood": "good"}, 400, "body: unknown field 'mood'; use mode, phone, "
                                              "reason, state"),
    ({"state": "paused", "reason": "lunch"}, 409, "agent 'alice' is logged out: log in first"),
    ({"state": "logged_out"}, 409, "agent 'alice' is already logged out"),
    ({"state": "logged_in", "mode": "nailed"}, 409, "agent 'alice': a nailed-up login must "
                                                    "come from the agent's phone: dial *50"),
])
async def test_refused_state_requests_say_why_and_the_state_log_stays_as_it_was(
        site: Site, sent, status, error):
    got, body = await site.call(AGENT, "POST", "/api/agents/alice/state", sent)
    assert got == status
    assert body["error"].startswith(error)
    documented("POST", "/api/agents/{id}/state", status, body)
    await site.floor.desk.flush()
    assert await site.floor.directory.state_history("alice") == []
    assert site.floor.driver.acd.agent_state("alice") is AgentState.LOGGED_OUT


async def test_a_state_request_for_an_unknown_agent_is_a_404(site: Site):
    status, body = await site.call(ADMIN, "POST", "/api/agents/zoe/state", {"state": "ready"})
    assert (status, body["error"]) == (404, "agent 'zoe': no such agent")
    documented("POST", "/api/agents/{id}/state", 404, body)


async def test_changes_reach_the_live_event_stream_publisher(site: Site):
    await site.call(ADMIN, "POST", "/api/agents", {"id": "dave", "name": "Dave Roy",
                                                   "queues": {"support": 0}})
    await site.call(ADMIN, "POST", "/api/agents/dave/state", {"state": "logged_in"})
    kinds = [(kind, json.dumps(data, sort_keys=True)) for kind, data in site.floor.outside.events]
    assert kinds[:2] == [
        ("agent", '{"agent_id": "dave", "change": "created"}'),
        ("queue", '{"agent_id": "dave", "change": "members", "queue": "support", "tier": 0}')]
    assert kinds[2][0] == "agent"
    assert '"state": "ready"' in kinds[2][1]
