"""GET /api/calls/{call_id}/timeline over real HTTP, on each database backend: a closed call's
segments cover it and add up, its agents' wrap-ups follow; unknown 404, still open 409,
agents and anonymous refused."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.core.clock import VirtualClock
from callcenter.core.records import (
    AgentAttempt,
    AttemptOutcome,
    CallRecord,
    Disposition,
    HangupBy,
    Hold,
    HoldBy,
)
from callcenter.features.accounts.store import AccountRepository, Role
from callcenter.features.agents.store import StateChange
from callcenter.features.calls.store import CallRepository
from callcenter.web.app import WebServices, make_app
from tests.support.web import accounts_for, bearer_headers, health_probe

T0 = 1_795_000_000.0  # 2026-11-18T11:06:40Z


class LoggedStates:
    """The agents' state log as the directory answers it: [since, until), oldest first."""

    def __init__(self, changes: Sequence[StateChange]) -> None:
        self.changes = list(changes)

    async def state_history(self, agent_id: str, since: float | None = None,
                            until: float | None = None) -> list[StateChange]:
        return [c for c in self.changes if c.agent_id == agent_id
                and (since is None or c.at >= since) and (until is None or c.at < until)]


def held_call(call_id: str = "t.1", ended: float | None = T0 + 60) -> CallRecord:
    return CallRecord(
        call_id=call_id, started_at=T0, answered_at=T0 + 0.5, queue="sales", queued_at=T0 + 5,
        channel="PJSIP/callcenter-trunk-0000002a", caller_number="+5511987654321",
        ended_at=ended, agent_id="agent1", agent_answered_at=T0 + 8, talk_seconds=52,
        hangup_by=HangupBy.CALLER, disposition=Disposition.ANSWERED,
        attempts=[AgentAttempt("agent1", T0 + 6, ended, AttemptOutcome.ANSWERED, T0 + 8)],
        holds=[Hold(HoldBy.AGENT, T0 + 20, T0 + 30.25, "agent1")])


STATES = [StateChange("agent1", "on_call", None, T0 + 8, "ringing"),
          StateChange("agent1", "wrap_up", "call ended", T0 + 60.1, "on_call"),
          StateChange("agent1", "ready", "wrap-up ended", T0 + 75.1, "wrap_up")]


@pytest.fixture
def repos(sessions: async_sessionmaker[AsyncSession]) -> tuple[CallRepository,
                                                                  AccountRepository]:
    return CallRepository(sessions), accounts_for(sessions)


async def client_for(calls: CallRepository, accounts: AccountRepository,
                     role: Role | None = Role.SUPERVISOR) -> TestClient:
    app = make_app(WebServices(calls, health_probe(), accounts, VirtualClock(T0 + 100),
                               agent_states=LoggedStates(STATES)))
    headers = {}
    if role is not None:
        username = f"user{len(await accounts.list_users())}"
        headers = await bearer_headers(accounts, [role], username=username)
    client = TestClient(TestServer(app), headers=headers)
    await client.start_server()
    return client


async def test_a_closed_call_has_its_segments_then_its_agents_wrap_up(repos) -> None:
    calls, accounts = repos
    await calls.save(held_call())
    client = await client_for(calls, accounts)
    try:
        response = await client.get("/api/calls/t.1/timeline")
        assert response.status == 200
        body = await response.json()
    finally:
        await client.close()
    assert (body["call_id"], body["started_at"], body["ended_at"], body["seconds"]) == (
        "t.1", "2026-11-18T11:06:40Z", "2026-11-18T11:07:40Z", 60)
    assert [(s["kind"], s["seconds"], s["agent"]) for s in body["segments"]] == [
        ("setup", 0.5, None), ("ivr", 4.5, None), ("waiting", 1, None),
        ("ringing", 2, "agent1"), ("talk", 12, "agent1"), ("hold", 10.25, "agent1"),
        ("talk", 29.75, "agent1")]
    assert sum(s["seconds"] for s in body["segments"]) == body["seconds"]
    assert body["segments"][5]["start"] == "2026-11-18T11:07:00Z"
    assert body["segments"][5]["end"] == "2026-11-18T11:07:10.250000Z"
    assert body["wrap_ups"] == [{
        "kind": "wrap_up", "start": "2026-11-18T11:07:40.100000Z",
        "end": "2026-11-18T11:07:55.100000Z", "seconds": 15, "agent": "agent1",
        "ongoing": False}]
    # The caller came over the carrier's trunk: billable from our answer to the hang-up.
    assert body["trunk_legs"] == [{
        "kind": "caller", "direction": "inbound", "trunk": "callcenter-trunk",
        "number": "+5511987654321", "answered_at": "2026-11-18T11:06:40.500000Z",
        "ended_at": "2026-11-18T11:07:40Z", "billable_seconds": 59.5}]


async def test_unknown_open_and_unauthorised_asks_are_refused(repos) -> None:
    calls, accounts = repos
    await calls.save(held_call("t.2", ended=None))
    await calls.save(held_call("t.3", ended=T0 - 1))  # a clock stepped back, say
    client = await client_for(calls, accounts)
    agent = await client_for(calls, accounts, Role.AGENT)
    anonymous = await client_for(calls, accounts, None)
    try:
        unknown = await client.get("/api/calls/t.9/timeline")
        assert unknown.status == 404
        assert (await unknown.json())["error"] == "no call 't.9'"
        still_open = await client.get("/api/calls/t.2/timeline")
        assert still_open.status == 409
        assert "has not ended yet" in (await still_open.json())["error"]
        backwards = await client.get("/api/calls/t.3/timeline")
        assert backwards.status == 409
        assert (await backwards.json())["error"] == "call t.3: ends before it starts"
        bad = await client.get("/api/calls/a%20b/timeline")
        assert bad.status == 400
        query = await client.get("/api/calls/t.2/timeline?x=1")
        assert query.status == 400
        assert (await agent.get("/api/calls/t.2/timeline")).status == 403
        assert (await anonymous.get("/api/calls/t.2/timeline")).status == 401
    finally:
        for c in (client, agent, anonymous):
            await c.close()
