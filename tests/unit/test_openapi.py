"""The OpenAPI document: valid OpenAPI 3.1, complete per operation, true to what the
handlers really answer, and compared route by route with an application."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from referencing.exceptions import Unresolvable
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.clock import VirtualClock
from callcenter.core.records import (
    AgentAttempt,
    AttemptOutcome,
    CallbackRequest,
    CallRecord,
    Disposition,
    FaqOutcome,
    FaqResult,
    HangupBy,
    IvrStep,
    SurveyAnswer,
)
from callcenter.features.accounts import http as accounts
from callcenter.features.accounts import schemas as account_schemas
from callcenter.features.accounts.store import ApiToken, Role, User
from callcenter.features.callbacks import http as callbacks
from callcenter.features.callbacks.store import CallbackRepository
from callcenter.features.calls import http as calls
from callcenter.features.calls.store import CallRepository
from callcenter.features.reports import http as reports
from callcenter.web import auth, events
from callcenter.web.app import WebServices, make_app
from callcenter.web.events import EventHub
from callcenter.web.openapi import (
    all_endpoints,
    build_document,
    documented_but_missing,
    serve_openapi,
    undocumented_routes,
)
from tests.support.web import accounts_for, health_probe, signed_in_client

T0 = 1_795_000_000.0
DOCUMENT = build_document()
METHODS = {"get", "post", "put", "patch", "delete", "head", "options", "trace"}


def operations(document: dict[str, Any] = DOCUMENT) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, operation)
            for path, item in document["paths"].items()
            for method, operation in item.items() if method in METHODS]


def operation(method: str, path: str) -> dict[str, Any]:
    return DOCUMENT["paths"][path][method.lower()]


def answer_schema(method: str, path: str, status: int) -> dict[str, Any]:
    answer = operation(method, path)["responses"][str(status)]
    if "$ref" in answer:
        answer = DOCUMENT["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    return answer["content"]["application/json"]["schema"]


def check_against(schema: dict[str, Any], body: Any) -> None:
    """Validate ``body`` with the document's components in reach of its ``$ref``s."""
    validator = Draft202012Validator(
        {"components": DOCUMENT["components"], **schema},
        format_checker=Draft202012Validator.FORMAT_CHECKER,  # date-time: real RFC 3339 times
    )
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, errors


# ----------------------------------------------------------------------- the document itself


def test_the_document_is_valid_openapi_3_1():
    validate(DOCUMENT)
    assert DOCUMENT["openapi"] == "3.1.0"


def _path_parameter_optional(document: dict[str, Any]) -> None:
    document["paths"]["/api/users/{id}"]["patch"]["parameters"][0]["required"] = False


def _path_parameter_undeclared(document: dict[str, Any]) -> None:
    del document["paths"]["/api/users/{id}"]["patch"]["parameters"]


def _no_such_type(document: dict[str, Any]) -> None:
    document["components"]["schemas"]["User"]["type"] = "person"


def _reference_to_nowhere(document: dict[str, Any]) -> None:
    answer = document["paths"]["/api/me"]["get"]["responses"]["200"]
    answer["content"]["application/json"]["schema"] = {"$ref": "#/components/schemas/Nobody"}


@pytest.mark.parametrize("breakage", [_path_parameter_optional, _path_parameter_undeclared,
                                      _no_such_type, _reference_to_nowhere])
def test_the_validator_would_notice_a_broken_document(breakage):
    # Only the two paths the breakages touch (with every component): validating the whole
    # document takes seconds, and the unbroken part must pass for the test to mean anything.
    small = copy.deepcopy(DOCUMENT)
    small["paths"] = {path: small["paths"][path] for path in ("/api/users/{id}", "/api/me")}
    validate(small)
    broken = copy.deepcopy(small)
    breakage(broken)
    with pytest.raises((OpenAPIValidationError, Unresolvable)):
        validate(broken)


def test_every_component_schema_is_valid_json_schema_and_every_reference_resolves():
    for schema in DOCUMENT["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    text = json.dumps(DOCUMENT)
    for kind, name in re.findall(r'"#/components/(schemas|responses)/([A-Za-z]+)"', text):
        assert name in DOCUMENT["components"][kind], f"#/components/{kind}/{name}"


def test_every_operation_says_what_it_does_who_may_call_it_and_what_it_answers():
    ids = [op["operationId"] for _, _, op in operations()]
    assert len(ids) == len(set(ids))
    roles = {role.value for role in Role}
    for method, path, op in operations():
        where = f"{method} {path}"
        assert op["summary"].strip(), where
        assert op["responses"], where
        assert isinstance(op["x-roles"], list), where
        assert set(op["x-roles"]) <= roles, where
        if op["x-roles"]:
            assert op["security"] == [{"session": []}, {"bearer": []}], where
            assert {"401", "403"} <= set(op["responses"]), where
        else:
            assert op["security"] == [], where
        if "requestBody" in op:
            assert {"400", "413", "415"} <= set(op["responses"]), where


def test_path_placeholders_and_path_parameters_agree():
    for method, path, op in operations():
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert declared == set(re.findall(r"\{([^}]+)\}", path)), f"{method} {path}"


def test_who_may_call_what():
    def roles(method: str, path: str) -> set[str]:
        return set(operation(method, path)["x-roles"])

    public = {f"{m} {p}" for m, p, op in operations() if not op["x-roles"]}
    assert public == {"GET /healthz", "POST /api/login", "GET /api/openapi.json",
                      "GET /demo/orders"}
    everyone = {role.value for role in Role}
    for method, path in [("GET", "/api/me"), ("POST", "/api/logout"), ("GET", "/api/tokens"),
                         ("POST", "/api/tokens"), ("DELETE", "/api/tokens/{id}"),
                         ("GET", "/api/events")]:
        assert roles(method, path) == everyone, f"{method} {path}"
    for method, path in [("GET", "/api/calls"), ("GET", "/api/reports/faq")]:
        assert roles(method, path) == {"admin", "supervisor"}
    for method, path in [("GET", "/api/users"), ("POST", "/api/users"),
                         ("PATCH", "/api/users/{id}"), ("POST", "/api/agents"),
                         ("PATCH", "/api/agents/{id}"), ("POST", "/api/agents/{id}/secret")]:
        assert roles(method, path) == {"admin"}, f"{method} {path}"
    for method, path in [("GET", "/api/callbacks"), ("POST", "/api/callbacks/{id}"),
                         ("GET", "/api/queues"), ("GET", "/api/queues/{name}"),
                         ("GET", "/api/agents"), ("GET", "/api/agents/{id}"),
                         ("GET", "/api/agents/{id}/history"), ("POST", "/api/agents/{id}/state")]:
        assert roles(method, path) == {"admin", "supervisor", "agent"}, f"{method} {path}"
    assert operation("POST", "/api/agents/{id}/state")["x-own-only"] == ["agent"]


@pytest.mark.parametrize(("method", "path", "accepted"), [
    ("GET", "/api/calls", set(calls.CallsQuery.model_fields)),
    ("GET", "/api/callbacks", set(callbacks.CallbackList.model_fields)),
    ("GET", "/api/reports/faq", set(reports.FaqQuery.model_fields)),
    ("GET", "/api/events", events.STREAM_PARAMS),
])
def test_the_query_parameters_are_exactly_those_the_handler_accepts(method, path, accepted):
    documented = {p["name"] for p in operation(method, path)["parameters"] if p["in"] == "query"}
    assert documented == accepted


def test_the_event_kinds_filter_is_documented_from_the_hub():
    (kinds,) = [p for p in operation("GET", "/api/events")["parameters"] if p["name"] == "kinds"]
    pattern = re.compile(kinds["schema"]["pattern"])
    assert pattern.search("agent,queue")
    assert not pattern.search("agent,bogus")
    assert not pattern.search("")
    assert "text/event-stream" in operation("GET", "/api/events")["responses"]["200"]["content"]


def test_a_route_listed_twice_is_refused():
    me = next(e for e in accounts.ENDPOINTS if e.path == "/api/me")
    with pytest.raises(ValueError, match="GET /api/me is in the table twice"):
        build_document((*all_endpoints(), me))
    with pytest.raises(ValueError, match="GET /api/calls is in the table twice"):
        build_document((*all_endpoints(), calls.CALLS_ENDPOINT))


# ----------------------------------------------------------------------- compared with an app


async def ok(request: web.Request) -> web.Response:
    return web.json_response({})


def small_app(tmp_path: Path) -> web.Application:
    app = web.Application()
    app.router.add_get("/healthz", ok)
    app.router.add_get("/api/calls", ok)
    app.router.add_post(r"/api/callbacks/{callback_id:\d+}", ok)  # another name, a regex
    app.router.add_get("/api/agents/{agent}/history", ok)
    app.router.add_get("/api/extra", ok)  # served, not documented
    app.router.add_delete("/api/calls", ok)  # a documented path, an undocumented method
    app.router.add_static("/static", tmp_path)  # files, not operations
    return app


def test_the_comparison_finds_a_route_served_but_not_documented_and_one_missing(tmp_path):
    wanted = {"GET /healthz", "GET /api/calls", "POST /api/callbacks/{id}",
              "GET /api/agents/{id}/history", "GET /api/queues"}
    declared = tuple(e for e in all_endpoints() if f"{e.method} {e.path}" in wanted)
    assert len(declared) == 5
    app = small_app(tmp_path)
    assert undocumented_routes(app, declared) == ["DELETE /api/calls", "GET /api/extra"]
    assert documented_but_missing(app, declared) == ["GET /api/queues"]


def test_against_the_whole_document_a_small_app_misses_most_routes(tmp_path):
    app = small_app(tmp_path)
    assert undocumented_routes(app) == ["DELETE /api/calls", "GET /api/extra"]
    missing = documented_but_missing(app)
    assert "POST /api/login" in missing
    assert "GET /api/calls" not in missing
    assert len(missing) == len(all_endpoints()) - 4


def test_every_route_the_application_serves_today_is_documented():
    clock = VirtualClock()
    app = make_app(WebServices(  # type: ignore[arg-type]
        calls=None, health=None, accounts=None, clock=clock, callbacks=object(),
        events=EventHub(clock)))
    assert undocumented_routes(app) == []


async def test_the_document_is_served_as_json():
    app = web.Application()
    app.router.add_get("/api/openapi.json", serve_openapi)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/api/openapi.json")
        assert response.status == 200
        assert response.content_type == "application/json"
        assert await response.json() == DOCUMENT


# ----------------------------------------------------------------------- true to the handlers


@pytest.fixture
async def client(sqlite_sessions: async_sessionmaker[AsyncSession],
                 ) -> AsyncIterator[TestClient]:
    sessions = sqlite_sessions
    call_repo, callback_repo = CallRepository(sessions), CallbackRepository(sessions)
    await call_repo.save(CallRecord(
        call_id="a.1", started_at=T0, protocol="20261118000001", caller_number="5551234",
        dialed_number="100", answered_at=T0 + 0.1, ended_at=T0 + 90, queue="sales",
        queued_at=T0 + 5, wait_seconds=3.25, agent_id="alice", agent_answered_at=T0 + 8.25,
        talk_seconds=11.75, hangup_by=HangupBy.CALLER, disposition=Disposition.ANSWERED,
        ivr_path=[IvrStep("welcome", T0 + 0.1), IvrStep("menu", T0 + 3, "2")],
        attempts=[AgentAttempt("bob", T0 + 5, T0 + 7, AttemptOutcome.NO_ANSWER),
                  AgentAttempt("alice", T0 + 7, T0 + 8.25, AttemptOutcome.ANSWERED)],
        faq_outcomes=[FaqOutcome("support", "hours", T0 + 2, FaqResult.SOLVED, T0 + 3)],
        survey_answers=[SurveyAnswer("nps", "score", "9", T0 + 80)],
    ))
    await call_repo.save(CallRecord(call_id="a.2", started_at=T0 + 100))  # still open
    await callback_repo.add(CallbackRequest(
        call_id="a.3", queue="sales", number="5551234", requested_at=T0 + 200, flow="main",
    ))

    services = WebServices(call_repo, health_probe(agi=False), accounts_for(sessions),
                           VirtualClock(), callbacks=callback_repo)
    async with signed_in_client(services) as started:
        yield started


@pytest.mark.parametrize(("path", "query", "status"), [
    ("/api/calls", {}, 200),
    ("/api/calls", {"queue": "sales", "limit": "1"}, 200),
    ("/api/calls", {"limit": "0"}, 400),
    ("/api/reports/faq", {}, 200),
    ("/api/reports/faq", {"flow": "support", "since": "2026-11-01T00:00:00Z"}, 200),
    ("/api/callbacks", {}, 200),
    ("/api/callbacks", {"status": "lost"}, 400),
    ("/healthz", {}, 503),
    ("/demo/orders", {"order": "1248"}, 200),
    ("/demo/orders", {"order": "1"}, 404),
])
async def test_what_the_handlers_answer_matches_the_document(client, path, query, status):
    response = await client.get(path, params=query)
    assert response.status == status
    body = await response.json()
    check_against(answer_schema("GET", path, status), body)


async def test_the_callback_change_matches_the_document(client):
    change = "/api/callbacks/{id}"
    body_schema = operation("POST", change)["requestBody"]["content"]["application/json"]
    sent = {"status": "done"}
    check_against(body_schema["schema"], sent)
    response = await client.post("/api/callbacks/1", json=sent)
    assert response.status == 200
    check_against(answer_schema("POST", change, 200), await response.json())
    again = await client.post("/api/callbacks/1", json=sent)  # no longer pending
    assert again.status == 400
    check_against(answer_schema("POST", change, 400), await again.json())
    missing = await client.post("/api/callbacks/99", json=sent)
    assert missing.status == 404
    check_against(answer_schema("POST", change, 404), await missing.json())
    not_json = await client.post("/api/callbacks/1", data="status=done")
    assert not_json.status == 415
    check_against(answer_schema("POST", change, 415), await not_json.json())


def test_users_and_tokens_as_the_auth_handlers_write_them_match_the_document():
    user = User(id=7, username="ada", roles=frozenset({Role.AGENT, Role.SUPERVISOR}),
                display_name="Ada L.", agent_id="ada", active=True, created_at=T0)
    check_against({"$ref": "#/components/schemas/User"},
                  account_schemas.user_answer(user).model_dump(mode="json"))
    token = ApiToken(id=3, user_id=7, username="ada", name="nightly report", created_at=T0,
                     last_used_at=None, expires_at=T0 + 86400)
    answer = account_schemas.token_answer(token).model_dump(mode="json")
    check_against({"$ref": "#/components/schemas/ApiToken"}, answer)
    issued = {**answer, "token": "cc_" + "x" * 43}  # as create_token answers
    check_against(answer_schema("POST", "/api/tokens", 201), issued)


def test_a_call_record_with_a_field_the_document_lacks_would_be_caught():
    with pytest.raises(AssertionError, match="Additional properties"):
        check_against({"$ref": "#/components/schemas/IvrStep"},
                      {"node": "menu", "at": "2026-11-18T11:06:40Z", "input": None, "x": 1})


# ----------------------------------------------------------------------- nothing lost

BEFORE = json.loads((Path(__file__).parent / "data" / "openapi_before_i12.json").read_text())


def test_the_generated_document_keeps_every_operation_and_answer_of_the_hand_written_one():
    """The document as it was written by hand (saved before issue 12): every operation, its
    roles and every status it answered are still there."""
    for path, item in BEFORE["paths"].items():
        for method, before in item.items():
            now = DOCUMENT["paths"].get(path, {}).get(method)
            assert now is not None, f"{method.upper()} {path}"
            assert set(before["responses"]) <= set(now["responses"]), f"{method} {path}"
            assert now["x-roles"] == before["x-roles"], f"{method} {path}"
            assert now.get("x-own-only") == before.get("x-own-only"), f"{method} {path}"
            assert ({p["name"] for p in before.get("parameters", [])}
                    <= {p["name"] for p in now.get("parameters", [])}), f"{method} {path}"
            assert ("requestBody" in before) == ("requestBody" in now), f"{method} {path}"


def test_every_live_route_is_documented_with_the_roles_the_application_enforces():
    """The roles in the document are the ones the access policies hold, route by route:
    both come from one declaration now (for the routes described by hand, they must agree)."""
    clock = VirtualClock()
    app = make_app(WebServices(  # type: ignore[arg-type]
        calls=None, health=None, accounts=None, clock=clock, callbacks=object(),
        events=EventHub(clock), agents=object(), supervision=object(), transfers=object(),
        dead_letters=object(), campaigns=object(), compliance=object(), dialer=object(),
        dispositions=object(), uploads=object(), wallboard=object(), metrics=object(),
        recordings=object(), recording_store=object(), evaluations=object(),
        report_aggregates=object(), agent_reports=object(), campaign_reports=object(),
        rating=object()))
    assert undocumented_routes(app) == []
    assert documented_but_missing(app) == []
    policies = app[auth.ACCESS_POLICIES]
    for method, path, op in operations():
        enforced = policies.lookup(method, path)
        assert enforced is not None, f"{method} {path}"
        expected = set() if enforced is auth.PUBLIC else {role.value for role in enforced}
        assert set(op["x-roles"]) == expected, f"{method} {path}"


def _request_body(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    schema = document["paths"][path][method]["requestBody"]["content"]["application/json"][
        "schema"]
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return {key: value for key, value in schema.items()
            if key != "title" and (key, value) != ("required", [])}


@pytest.mark.parametrize(("method", "path"), [
    ("post", "/api/login"), ("post", "/api/tokens"), ("post", "/api/users"),
    ("patch", "/api/users/{id}"),
])
def test_the_account_bodies_models_describe_them_as_the_hand_written_schemas_did(
    method: str, path: str
) -> None:
    """The account routes' bodies are models now: what the document says they take is what
    it said when they were read by hand."""
    assert _request_body(DOCUMENT, method, path) == _request_body(BEFORE, method, path)
