"""GET /api/calls and /healthz over real HTTP, on each database backend."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.clock import VirtualClock
from callcenter.core.records import (
    AgentAttempt,
    AttemptOutcome,
    CallRecord,
    Disposition,
    FaqOutcome,
    FaqResult,
    HangupBy,
    IvrStep,
    SurveyAnswer,
    Transfer,
    TransferMode,
    TransferOutcome,
)
from callcenter.features.accounts.store import AccountRepository, Role
from callcenter.features.calls.schemas import record_json
from callcenter.features.calls.store import CallRepository, DeadLetter, DeadLetterRepository
from callcenter.web.app import WebServices, make_app
from tests.support.web import accounts_for, bearer_headers, health_probe

T0 = 1_795_000_000.0  # 2026-11-18T11:06:40Z


def answered(call_id: str, at: float, queue: str) -> CallRecord:
    return CallRecord(
        call_id=call_id, started_at=at, caller_number="5551234", dialed_number="100",
        answered_at=at + 0.1, ended_at=at + 20, queue=queue, queued_at=at + 5,
        wait_seconds=3.25, agent_id="agent1", agent_answered_at=at + 8.25, talk_seconds=11.75,
        hangup_by=HangupBy.CALLER, disposition=Disposition.ANSWERED,
        ivr_path=[IvrStep("welcome", at + 0.1), IvrStep("main_menu", at + 3, "2")],
        attempts=[AgentAttempt("agent1", at + 5, at + 8.25, AttemptOutcome.ANSWERED)],
    )


@dataclass(frozen=True)
class Repos:
    calls: CallRepository
    accounts: AccountRepository


@pytest.fixture
def repo(sessions: async_sessionmaker[AsyncSession]) -> Repos:
    return Repos(CallRepository(sessions), accounts_for(sessions))


async def client_for(repo: Repos, *, ami: bool = True, signed_in: bool = True) -> TestClient:
    """A started client of the app, signed in as a supervisor (who may read calls)."""
    app = make_app(WebServices(repo.calls, health_probe(ami=ami), repo.accounts, VirtualClock()))
    headers = {}
    if signed_in:
        username = f"supervisor{len(await repo.accounts.list_users())}"
        headers = await bearer_headers(repo.accounts, [Role.SUPERVISOR], username=username)
    client = TestClient(TestServer(app), headers=headers)
    await client.start_server()
    return client


async def test_calls_are_listed_newest_first_with_times_in_utc(repo: Repos):
    await repo.calls.save(answered("a.1", T0, "sales"))
    await repo.calls.save(answered("a.2", T0 + 60, "support"))
    client = await client_for(repo)
    try:
        response = await client.get("/api/calls")
        assert response.status == 200
        body = await response.json()
        assert body["total"] == 2
        assert [c["call_id"] for c in body["calls"]] == ["a.2", "a.1"]
        call = body["calls"][1]
        assert call["started_at"] == "2026-11-18T11:06:40Z"
        assert call["queue"] == "sales"
        assert call["disposition"] == "answered"
        assert call["talk_seconds"] == 11.75
        assert call["ivr_path"][1] == {"node": "main_menu", "at": "2026-11-18T11:06:43Z",
                                       "input": "2"}
        assert call["attempts"][0]["outcome"] == "answered"
        assert call["open"] is False
    finally:
        await client.close()


async def test_filters_by_time_range_and_queue_and_pages(repo: Repos):
    for i in range(5):
        await repo.calls.save(answered(f"b.{i}", T0 + i * 60, "sales" if i % 2 else "support"))
    client = await client_for(repo)
    try:
        body = await (await client.get("/api/calls", params={"queue": "sales"})).json()
        assert [c["call_id"] for c in body["calls"]] == ["b.3", "b.1"]
        body = await (await client.get("/api/calls", params={
            "since": "2026-11-18T11:07:40Z", "until": "2026-11-18T11:09:40Z"})).json()
        assert [c["call_id"] for c in body["calls"]] == ["b.2", "b.1"]
        body = await (await client.get("/api/calls", params={"protocol": "2026"})).json()
        assert body["total"] == 0  # not digits would be a 400; unknown digits: nothing
        body = await (await client.get("/api/calls", params={"limit": "2", "offset": "2"})).json()
        assert body["total"] == 5
        assert [c["call_id"] for c in body["calls"]] == ["b.2", "b.1"]
    finally:
        await client.close()


@pytest.mark.parametrize(("params", "says"), [
    ({"since": "yesterday"}, "since: 'yesterday' is not an ISO 8601 time"),
    ({"limit": "0"}, "limit: 0 is outside 1..500"),
    ({"limit": "-1"}, "limit: '-1' is not a whole number"),
    ({"offset": "1e9"}, "offset: '1e9' is not a whole number"),
    ({"queue": "x'; DROP TABLE calls;--"}, "is not a queue name"),
    ({"queue": "sales\n"}, "queue: 'sales\\n' is not a queue name"),  # the whole text
    ({"sort": "caller"}, "unknown parameter 'sort'"),
    ({"protocol": "12ab"}, "protocol: '12ab' is not a protocol number"),
    ({"protocol": "12\n"}, "protocol: '12\\n' is not a protocol number"),
    ({"since": "2026-11-19T00:00:00Z", "until": "2026-11-18T00:00:00Z"},
     "since must be before until"),
])
async def test_bad_queries_get_a_400_that_says_what_is_wrong(repo, params, says):
    await repo.calls.save(answered("c.1", T0, "sales"))
    client = await client_for(repo)
    try:
        response = await client.get("/api/calls", params=params)
        assert response.status == 400
        assert says in (await response.json())["error"]
        assert (await repo.calls.get("c.1")) is not None  # nothing stored was touched
    finally:
        await client.close()


async def test_unknown_paths_answer_json_404(repo: Repos):
    client = await client_for(repo)
    try:
        response = await client.get("/api/nothing-here")
        assert response.status == 404
        assert (await response.json())["status"] == 404
    finally:
        await client.close()


async def test_healthz_reports_each_part_and_503_when_one_is_down(repo: Repos):
    client = await client_for(repo, ami=False)
    try:
        response = await client.get("/healthz")
        assert response.status == 503
        assert await response.json() == {"status": "degraded", "ami": "down",
                                         "fastagi": "up", "database": "up"}
    finally:
        await client.close()
    client = await client_for(repo, ami=True)
    try:
        response = await client.get("/healthz")
        assert response.status == 200
        assert (await response.json())["status"] == "ok"
    finally:
        await client.close()


async def test_calls_need_a_signed_in_supervisor_or_admin(repo: Repos):
    client = await client_for(repo, signed_in=False)
    try:
        response = await client.get("/api/calls")
        assert response.status == 401
        assert (await response.json())["error"].startswith("sign in first")
        agent = await bearer_headers(repo.accounts, [Role.AGENT], username="agent")
        response = await client.get("/api/calls", headers=agent)
        assert response.status == 403
        assert set((await response.json())["allowed_roles"]) == {"admin", "supervisor"}
        assert (await client.get("/healthz")).status == 200  # public
    finally:
        await client.close()


async def test_an_admin_reads_the_records_the_database_refused_and_a_supervisor_cannot(
        repo: Repos, sessions: async_sessionmaker[AsyncSession]):
    letters = DeadLetterRepository(sessions)
    await letters.add(DeadLetter(call_id="x.1", record='{"caller_name": "a\\u0000b"}',
                                 reason="a NUL in the caller name", at=T0))
    await letters.add(DeadLetter(call_id="x.2", record="{}", reason="later", at=T0 + 60))

    app = make_app(WebServices(repo.calls, health_probe(), repo.accounts, VirtualClock(),
                               dead_letters=letters))
    admin = await bearer_headers(repo.accounts, [Role.ADMIN], username="root2")
    supervisor = await bearer_headers(repo.accounts, [Role.SUPERVISOR], username="sup2")
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        response = await client.get("/api/records/dead-letters?limit=10", headers=admin)
        assert response.status == 200
        body = await response.json()
        assert [d["call_id"] for d in body["dead_letters"]] == ["x.2", "x.1"]
        assert body["dead_letters"][1]["reason"] == "a NUL in the caller name"
        assert body["dead_letters"][1]["at"] == "2026-11-18T11:06:40Z"
        refused = await client.get("/api/records/dead-letters", headers=supervisor)
        assert refused.status == 403
        bad = await client.get("/api/records/dead-letters?limit=0", headers=admin)
        assert bad.status == 400
    finally:
        await client.close()


def test_a_call_record_is_written_as_it_always_was_byte_for_byte() -> None:
    """The JSON text of a record, key order and number forms included (a whole number of
    seconds stays an int; times are ISO text ending in Z), as clients have always seen it."""
    record = answered("a.1", T0, "sales")
    record.wait_seconds = 3
    record.transfers = [Transfer(TransferMode.BLIND, "agent1", T0 + 15, None, "support",
                                 TransferOutcome.COMPLETED, T0 + 16.5)]
    record.faq_outcomes = [FaqOutcome("support", "hours", T0 + 2, FaqResult.SOLVED, T0 + 3)]
    record.survey_answers = [SurveyAnswer("nps", "score", "9", T0 + 19)]
    record.callback_request_id = 7
    assert json.dumps(record_json(record)) == (
        '{"call_id": "a.1", "started_at": "2026-11-18T11:06:40Z", "protocol": null, '
        '"linked_id": null, "channel": null, "caller_number": "5551234", "caller_name": null, '
        '"caller_id_raw": null, "dialed_number": "100", '
        '"answered_at": "2026-11-18T11:06:40.100000Z", "ended_at": "2026-11-18T11:07:00Z", '
        '"ivr_path": [{"node": "welcome", "at": "2026-11-18T11:06:40.100000Z", "input": null}, '
        '{"node": "main_menu", "at": "2026-11-18T11:06:43Z", "input": "2"}], '
        '"queue": "sales", "queued_at": "2026-11-18T11:06:45Z", "overflowed_from": null, '
        '"wait_seconds": 3, '
        '"agent_id": "agent1", "agent_answered_at": "2026-11-18T11:06:48.250000Z", '
        '"talk_seconds": 11.75, "hangup_by": "caller", "hangup_cause": null, '
        '"disposition": "answered", "attempts": [{"agent_id": "agent1", '
        '"started_at": "2026-11-18T11:06:45Z", "ended_at": "2026-11-18T11:06:48.250000Z", '
        '"outcome": "answered", "answered_at": null, "talk_seconds": null}], '
        '"faq_outcomes": [{"flow": "support", "topic": "hours", '
        '"heard_at": "2026-11-18T11:06:42Z", "result": "solved", '
        '"answered_at": "2026-11-18T11:06:43Z"}], '
        '"survey_answers": [{"survey": "nps", "question": "score", "answer": "9", '
        '"answered_at": "2026-11-18T11:06:59Z"}], '
        '"transfers": [{"mode": "blind", "from_agent": "agent1", '
        '"requested_at": "2026-11-18T11:06:55Z", "to_agent": null, "to_queue": "support", '
        '"outcome": "completed", "ended_at": "2026-11-18T11:06:56.500000Z", "reason": null}], '
        '"holds": [], "outside_legs": [], '
        '"note": null, "source": "service", "callback_request_id": 7, "callback_of": null, '
        '"direction": "inbound", "campaign": null, "campaign_attempt_id": null, '
        '"open": false}')
