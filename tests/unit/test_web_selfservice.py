"""The HTTP API of the IVR's self-service facts: FAQ outcomes and survey answers in
/api/calls, the FAQ report, and callback requests; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.clock import VirtualClock
from callcenter.core.records import (
    CallbackRequest,
    CallbackStatus,
    CallRecord,
    Disposition,
    FaqOutcome,
    FaqResult,
    SurveyAnswer,
)
from callcenter.features.accounts.store import AccountRepository, Role
from callcenter.features.callbacks.store import CallbackRepository
from callcenter.features.calls.store import CallRepository
from callcenter.web.app import WebServices
from tests.support.web import accounts_for, health_probe, signed_in_client

T0 = 1_795_000_000.0  # 2026-11-18T11:06:40Z


@dataclass
class Stores:
    calls: CallRepository
    callbacks: CallbackRepository
    accounts: AccountRepository


@pytest.fixture
def stores(sessions: async_sessionmaker[AsyncSession]) -> Stores:
    return Stores(CallRepository(sessions), CallbackRepository(sessions), accounts_for(sessions))


HEALTH = health_probe()


@pytest.fixture
async def client(stores: Stores) -> AsyncIterator[TestClient]:
    services = WebServices(stores.calls, HEALTH, stores.accounts, VirtualClock(),
                           callbacks=stores.callbacks)
    async with signed_in_client(services, [Role.SUPERVISOR]) as started:
        yield started


def call_with_faqs(
    call_id: str, at: float, *results: FaqResult, flow: str = "support"
) -> CallRecord:
    return CallRecord(
        call_id=call_id, started_at=at, answered_at=at + 0.5, ended_at=at + 120,
        disposition=Disposition.COMPLETED_IN_IVR,
        faq_outcomes=[
            FaqOutcome(flow, "opening_hours", at + 10 * (n + 1), result,
                       None if result is FaqResult.HUNG_UP else at + 10 * (n + 1) + 4.5)
            for n, result in enumerate(results)
        ],
    )


def callback_for(call_id: str, at: float, queue: str = "support") -> CallbackRequest:
    return CallbackRequest(call_id=call_id, queue=queue, number="5511987654321",
                           requested_at=at, flow="support", protocol="20261118110640000001")


# --------------------------------------------------------------------------- /api/calls


async def test_calls_carry_their_faq_outcomes_and_survey_answers(
    stores: Stores, client: TestClient
) -> None:
    record = call_with_faqs("a.1", T0, FaqResult.SOLVED, FaqResult.HUNG_UP)
    record.survey_answers = [SurveyAnswer("csat", "overall", "5", T0 + 100.25)]
    await stores.calls.save(record)
    response = await client.get("/api/calls")
    assert response.status == 200
    call = (await response.json())["calls"][0]
    assert call["faq_outcomes"] == [
        {"flow": "support", "topic": "opening_hours", "heard_at": "2026-11-18T11:06:50Z",
         "result": "solved", "answered_at": "2026-11-18T11:06:54.500000Z"},
        {"flow": "support", "topic": "opening_hours", "heard_at": "2026-11-18T11:07:00Z",
         "result": "hung_up", "answered_at": None},
    ]
    assert call["survey_answers"] == [
        {"survey": "csat", "question": "overall", "answer": "5",
         "answered_at": "2026-11-18T11:08:20.250000Z"},
    ]


# --------------------------------------------------------------------------- FAQ report


async def test_the_faq_report_counts_outcomes_per_flow_and_topic(
    stores: Stores, client: TestClient
) -> None:
    await stores.calls.save(call_with_faqs("b.1", T0, FaqResult.SOLVED, FaqResult.NOT_SOLVED))
    await stores.calls.save(call_with_faqs("b.2", T0 + 600, FaqResult.SOLVED, FaqResult.NO_ANSWER,
                                           FaqResult.HUNG_UP))
    await stores.calls.save(call_with_faqs("b.3", T0, FaqResult.NOT_SOLVED, flow="sales"))

    response = await client.get("/api/reports/faq")
    assert response.status == 200
    body = await response.json()
    assert body == {
        "since": None, "until": None, "flow": None,
        "topics": [
            {"flow": "sales", "topic": "opening_hours", "heard": 1, "solved": 0,
             "not_solved": 1, "no_answer": 0, "hung_up": 0, "self_service_rate": 0.0},
            {"flow": "support", "topic": "opening_hours", "heard": 5, "solved": 2,
             "not_solved": 1, "no_answer": 1, "hung_up": 1, "self_service_rate": 0.4},
        ],
    }

    # b.2's answers were heard ten minutes later; since is inclusive, until exclusive.
    response = await client.get("/api/reports/faq", params={
        "since": "2026-11-18T11:16:50Z", "until": "2026-11-18T11:17:10Z", "flow": "support"})
    body = await response.json()
    assert body["since"] == "2026-11-18T11:16:50Z" and body["flow"] == "support"
    assert [(t["heard"], t["solved"], t["no_answer"]) for t in body["topics"]] == [(2, 1, 1)]

    empty = await (await client.get("/api/reports/faq", params={"flow": "billing"})).json()
    assert empty["topics"] == []


@pytest.mark.parametrize(("params", "says"), [
    ({"flow": "Support; DROP TABLE calls"}, "flow: 'Support; DROP TABLE calls' is not a flow"),
    ({"since": "2026-11-19T00:00:00Z", "until": "2026-11-18T00:00:00Z"},
     "since must be before until"),
    ({"since": "9999-12-31T23:59:59-23:59"}, "since: '9999-12-31T23:59:59-23:59' is out of range"),
    ({"until": "last week"}, "until: 'last week' is not an ISO 8601 time"),
    ({"flow": "support\n"}, "flow: 'support\\n' is not a flow name"),
    ({"topic": "x"}, "unknown parameter 'topic'"),
    ([("flow", "support"), ("flow", "sales")], "parameter 'flow' is given more than once"),
])
async def test_bad_report_queries_get_a_400_that_says_what_is_wrong(
    client: TestClient, params: object, says: str
) -> None:
    response = await client.get("/api/reports/faq", params=params)
    assert response.status == 400
    assert says in (await response.json())["error"]


# --------------------------------------------------------------------------- callbacks


async def test_callbacks_are_listed_pending_first_oldest_first_and_filtered(
    stores: Stores, client: TestClient
) -> None:
    newer = await stores.callbacks.add(callback_for("c.1", T0 + 60))
    older = await stores.callbacks.add(callback_for("c.2", T0))
    sales = await stores.callbacks.add(callback_for("c.3", T0 + 30, queue="sales"))
    closed = await stores.callbacks.add(callback_for("c.4", T0 - 60))
    await stores.callbacks.set_status(closed.id, "failed")

    body = await (await client.get("/api/callbacks")).json()
    assert body["total"] == 4 and body["limit"] == 50 and body["offset"] == 0
    assert [c["id"] for c in body["callbacks"]] == [older.id, sales.id, newer.id, closed.id]
    assert body["callbacks"][0] == {
        "id": older.id, "call_id": "c.2", "queue": "support", "number": "5511987654321",
        "requested_at": "2026-11-18T11:06:40Z", "flow": "support",
        "protocol": "20261118110640000001", "caller_name": None, "name_recording": None,
        "status": "pending", "queued_at": None,
    }

    body = await (await client.get("/api/callbacks", params={
        "status": "pending", "queue": "support", "limit": "1", "offset": "1"})).json()
    assert body["total"] == 2
    assert [c["id"] for c in body["callbacks"]] == [newer.id]
    body = await (await client.get("/api/callbacks", params={"status": "failed"})).json()
    assert [(c["id"], c["status"]) for c in body["callbacks"]] == [(closed.id, "failed")]


@pytest.mark.parametrize(("params", "says"), [
    ({"limit": "501"}, "limit: 501 is outside 1..500"),
    ({"limit": "99999999999999999999"}, "limit: '99999999999999999999' is not a whole number"),
    ({"offset": "-3"}, "offset: '-3' is not a whole number"),
    ({"status": "PENDING"}, "status: 'PENDING' is not one of pending, done, cancelled, failed"),
    ({"status": "pending\n"}, "status: 'pending\\n' is not one of pending, done"),
    ({"queue": "sales' OR '1'='1"}, "is not a queue name"),
    ({"queue": "sales\n"}, "queue: 'sales\\n' is not a queue name"),
    ({"sort": "number"}, "unknown parameter 'sort'"),
])
async def test_bad_callback_queries_get_a_400_that_says_what_is_wrong(
    client: TestClient, params: dict[str, str], says: str
) -> None:
    response = await client.get("/api/callbacks", params=params)
    assert response.status == 400
    assert says in (await response.json())["error"]


async def test_a_pending_callback_is_closed_once_and_only_once(
    stores: Stores, client: TestClient
) -> None:
    stored = await stores.callbacks.add(callback_for("d.1", T0))
    response = await client.post(f"/api/callbacks/{stored.id}", json={"status": "cancelled"})
    assert response.status == 200
    body = await response.json()
    assert (body["id"], body["status"], body["call_id"]) == (stored.id, "cancelled", "d.1")
    assert (await stores.callbacks.get(stored.id)).status is CallbackStatus.CANCELLED

    again = await client.post(f"/api/callbacks/{stored.id}", json={"status": "done"})
    assert again.status == 400
    assert "cannot change from cancelled to done" in (await again.json())["error"]
    assert (await stores.callbacks.get(stored.id)).status is CallbackStatus.CANCELLED


async def test_an_unknown_callback_is_a_json_404(client: TestClient) -> None:
    response = await client.post("/api/callbacks/4242", json={"status": "done"})
    assert response.status == 404
    assert await response.json() == {"error": "callback request 4242: no such request",
                                     "status": 404}


@pytest.mark.parametrize("bad_id", ["abc", "0", "-1", "1e3", "1.0", "9223372036854775808",
                                    "12345678901234567890123", "%20"])
async def test_a_malformed_callback_id_is_a_400(
    stores: Stores, client: TestClient, bad_id: str
) -> None:
    stored = await stores.callbacks.add(callback_for("e.1", T0))
    response = await client.post(f"/api/callbacks/{bad_id}", json={"status": "done"})
    assert response.status == 400
    assert "is not a callback request id" in (await response.json())["error"]
    assert (await stores.callbacks.get(stored.id)).status is CallbackStatus.PENDING


@pytest.mark.parametrize(("body", "says"), [
    (b"status=cancelled", "body: is not JSON"),
    (b"", "body: is not JSON"),
    (b"\xff\xfe{}", "body: is not UTF-8 text"),
    (b'["cancelled"]', "body: expected a JSON object"),
    (b"{}", "body: status: expected one of pending, done, cancelled, failed, got nothing"),
    (b'{"status": 3}', "got a number"),
    (b'{"status": {"$ne": null}}', "got an object"),
    (b'{"status": "closed"}', "body: status: 'closed' is not one of pending, done"),
    (b'{"status": "pending"}', "cannot change from pending to pending"),
    (b'{"status": "done", "number": "190"}', "body: unknown field 'number'"),
    (b"[" * 20_000 + b"]" * 20_000, "body: is not JSON"),  # nested too deep to parse
])
async def test_a_malformed_body_is_a_400_and_changes_nothing(
    stores: Stores, client: TestClient, body: bytes, says: str
) -> None:
    stored = await stores.callbacks.add(callback_for("f.1", T0))
    response = await client.post(f"/api/callbacks/{stored.id}", data=body,
                                  headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert says in (await response.json())["error"]
    assert (await stores.callbacks.get(stored.id)).status is CallbackStatus.PENDING


async def test_a_body_that_is_not_declared_json_is_refused(
    stores: Stores, client: TestClient
) -> None:
    stored = await stores.callbacks.add(callback_for("g.1", T0))
    response = await client.post(f"/api/callbacks/{stored.id}", data=b'{"status": "done"}',
                                 headers={"Content-Type": "text/plain"})
    assert response.status == 415
    assert "send Content-Type: application/json" in (await response.json())["error"]
    assert (await stores.callbacks.get(stored.id)).status is CallbackStatus.PENDING


async def test_a_huge_body_is_refused_before_it_is_read(stores: Stores, client: TestClient) -> None:
    stored = await stores.callbacks.add(callback_for("h.1", T0))
    huge = b'{"status": "done", "pad": "' + b"x" * 200_000 + b'"}'
    response = await client.post(f"/api/callbacks/{stored.id}", data=huge,
                                 headers={"Content-Type": "application/json"})
    assert response.status == 413
    assert await response.json() == {
        "error": "body: larger than the 65536 bytes this server accepts",
        "status": 413, "limit_bytes": 65536}
    assert (await stores.callbacks.get(stored.id)).status is CallbackStatus.PENDING


async def test_without_a_callback_repository_there_are_no_callback_routes(
    stores: Stores,
) -> None:
    services = WebServices(stores.calls, HEALTH, stores.accounts, VirtualClock())
    async with signed_in_client(services, [Role.SUPERVISOR]) as client:
        assert (await client.get("/api/callbacks")).status == 404
        assert (await client.post("/api/callbacks/1", json={"status": "done"})).status == 404
        assert (await client.get("/api/reports/faq")).status == 200
