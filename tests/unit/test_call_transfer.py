"""Transfers of a talking caller to a queue or an agent: the Redirect sent, what is refused,
the transferred caller's new FastAGI session, and the HTTP route with its roles."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.asterisk.agi import AgiEnvironment, AgiHangup
from callcenter.asterisk.agi_server import AgiSession
from callcenter.asterisk.ami import AmiNotConnected
from callcenter.asterisk.events import DialBegin, DialEnd, Hangup, OtherEvent
from callcenter.core.acd import AgentState, ConnectMode, OfferCall
from callcenter.core.records import (
    AgentAttempt,
    AttemptOutcome,
    HangupBy,
    Transfer,
    TransferMode,
    TransferOutcome,
)
from callcenter.features.accounts.store import AccountRepository, Role
from callcenter.features.agent_transfers.http import install_transfer_routes
from callcenter.features.agent_transfers.service import (
    NAILED_REFUSAL,
    AsteriskUnavailable,
    AttendedNotSupported,
    CallNotFound,
    CallTransfers,
    NotTransferable,
    TargetNotFound,
    TransferTarget,
)
from callcenter.features.queues.waiting import QueueRequest, WaitOutcome
from callcenter.features.supervision.dialplan import (
    TRANSFER_CONTEXT,
    agent_transfer_extension,
    consult_token,
    queue_transfer_extension,
    supervision_contexts,
)
from callcenter.features.supervision.http import install_supervision_routes
from callcenter.features.supervision.service import Supervision
from callcenter.web.app import WebServices, make_app
from tests.support.call_floor import CallFloor, call_floor
from tests.support.web import accounts_for, client_signed_as

CALLER_CHANNEL = "PJSIP/anonymous-call-1"


@dataclass
class FakeSession:
    """The AGI side of the transferred caller: what the handler asked of it."""

    env: AgiEnvironment
    variables: dict[str, str] = field(default_factory=dict)
    played: list[str] = field(default_factory=list)
    hung_up: bool = False

    async def get_variable(self, name: str) -> str | None:
        return self.variables.get(name)

    async def stream_file(self, name: str, escape_digits: str = "") -> str | None:
        self.played.append(name)
        return None

    async def hangup(self) -> None:
        self.hung_up = True


def transferred_session(call_id: str, *args: str, priority: str | None = None) -> FakeSession:
    lines = {"agi_uniqueid": call_id, "agi_channel": CALLER_CHANNEL, "agi_callerid": "5551234",
             "agi_calleridname": "unknown", "agi_extension": "q-sales",
             "agi_network_script": "transfer"}
    lines.update({f"agi_arg_{number}": value for number, value in enumerate(args, start=1)})
    variables = {"QUEUE_PRIO": priority} if priority is not None else {}
    return FakeSession(AgiEnvironment.from_lines(lines), variables)


@dataclass
class FakeQueues:
    """Stands for QueueCalls.wait: records the request, then plays ``script``."""

    floor: CallFloor
    active: dict[str, AgiSession]
    outcome: WaitOutcome = WaitOutcome.TALKED
    caller_hangs_up_while_talking: bool = False
    requests: list[QueueRequest] = field(default_factory=list)
    active_during_wait: list[bool] = field(default_factory=list)

    async def wait(self, session: AgiSession, call_id: str,
                   request: QueueRequest) -> WaitOutcome:
        self.requests.append(request)
        self.active_during_wait.append(self.active.get(call_id) is session)
        floor = self.floor
        floor.writer.apply(floor.ledger.queued(call_id, request.queue, floor.clock.now()))
        inbox = floor.acd.enqueue(call_id, request.queue, priority=request.priority,
                                  for_agent=request.for_agent)
        offer = inbox.get_nowait()
        assert isinstance(offer, OfferCall), offer
        floor.ledger.attempt_started(call_id, offer.agent_id, floor.clock.now())
        floor.acd.answered(call_id, offer.agent_id)  # what AMI's DialEnd does via `active`
        floor.clock.advance(30)
        if self.caller_hangs_up_while_talking:
            raise AgiHangup("caller hung up")
        floor.writer.apply(floor.ledger.attempt_ended(call_id, offer.agent_id, "ANSWER",
                                                      floor.clock.now()))
        return self.outcome


def transfers(floor: CallFloor, queues: FakeQueues | None = None,
              active: dict[str, AgiSession] | None = None,
              sleep=None, consult_start_seconds: float = 600.0) -> CallTransfers:
    active = active if active is not None else (queues.active if queues else {})

    async def no_sleep(seconds: float) -> None:
        raise AssertionError("nothing to wait for")

    return CallTransfers(settings=floor.settings, clock=floor.clock, acd=floor.acd,
                         queues=queues,  # type: ignore[arg-type]
                         ledger=floor.ledger, writer=floor.writer, send=floor.ami.send,
                         active=active, handover_seconds=1.0, sleep=sleep or no_sleep,
                         consult_start_seconds=consult_start_seconds)


def first_session_ended(floor: CallFloor, call_id: str) -> None:
    """What the call's first (IVR) session does when the Redirect takes the caller away."""
    floor.acd.left(call_id)
    floor.writer.apply(floor.ledger.handler_finished(call_id, floor.clock.now(),
                                                     hangup_by=HangupBy.CALLER))


# --------------------------------------------------------------------------- the request


async def test_a_blind_transfer_to_a_queue_redirects_the_caller_into_the_transfer_context():
    floor = call_floor()
    floor.caller_talks_to("call-1", "agent1")

    started = await transfers(floor).transfer("call-1", TransferTarget(queue="sales"))

    assert floor.ami.sent == [{"Action": "Redirect", "Channel": CALLER_CHANNEL,
                               "Context": TRANSFER_CONTEXT, "Exten": "q-sales", "Priority": 1}]
    assert (started.call_id, started.from_agent, started.mode.value) == (
        "call-1", "agent1", "blind")
    # The ACD learns of the end of agent1's talk from the call's first session, not here.
    assert floor.acd.acd.agent("agent1").state is AgentState.ON_CALL


async def test_a_call_on_its_way_is_not_transferred_twice_until_its_caller_arrives():
    floor = call_floor()
    floor.caller_talks_to("call-1", "agent1")
    retransferred: list[str] = []

    class TransferredAgainWhileTalking(FakeQueues):
        async def wait(self, session, call_id, request):  # type: ignore[no-untyped-def]
            inbox = self.floor.acd.enqueue(call_id, request.queue)
            offer = inbox.get_nowait()
            self.floor.acd.answered(call_id, offer.agent_id)
            started = await service.transfer(call_id, TransferTarget(queue="support"))
            retransferred.append(started.from_agent)
            raise AgiHangup("the second Redirect took the caller away")

    service = transfers(floor, TransferredAgainWhileTalking(floor, active={}))
    await service.transfer("call-1", TransferTarget(queue="sales"))
    # Until the caller arrives in the transfer script, the ACD still has agent1 talking.
    with pytest.raises(NotTransferable, match="already being transferred"):
        await service.transfer("call-1", TransferTarget(agent="agent3"))
    first_session_ended(floor, "call-1")
    await service.handle(transferred_session("call-1", "queue", "sales"))  # type: ignore[arg-type]
    assert retransferred == ["agent2"]  # once arrived, the caller could be moved on again
    assert [a["Exten"] for a in floor.ami.sent] == ["q-sales", "q-support"]


async def test_a_blind_transfer_to_an_agent_redirects_to_that_agents_extension():
    floor = call_floor()
    floor.caller_talks_to("call-1", "agent1")
    await transfers(floor).transfer("call-1", TransferTarget(agent="agent3"))
    assert [a["Exten"] for a in floor.ami.sent] == ["a-agent3"]


async def test_only_a_call_an_agent_is_talking_to_can_be_transferred():
    floor = call_floor()
    floor.caller_arrives("call-ivr")
    floor.caller_waits("call-waiting", "operator")
    service = transfers(floor)

    with pytest.raises(CallNotFound, match="call 'call-9': no such call"):
        await service.transfer("call-9", TransferTarget(queue="sales"))
    for call_id in ("call-ivr", "call-waiting"):
        with pytest.raises(NotTransferable, match="not talking to an agent now"):
            await service.transfer(call_id, TransferTarget(queue="sales"))
    assert floor.ami.sent == []


async def test_targets_nobody_could_answer_are_refused_before_the_caller_is_moved():
    floor = call_floor(logged_in=("agent1", "agent2"))
    floor.caller_talks_to("call-1", "agent1")
    service = transfers(floor)

    cases = [
        (TransferTarget(queue="billing"), TargetNotFound, "queue 'billing': no such queue"),
        (TransferTarget(agent="agent9"), TargetNotFound, "agent 'agent9': no such agent"),
        (TransferTarget(queue="operator"), NotTransferable,
         r"queue 'operator': no agent there could answer the caller \(sup1 is logged out\)"),
        (TransferTarget(agent="agent3"), NotTransferable, "agent 'agent3' is logged out"),
        (TransferTarget(agent="agent1"), NotTransferable, "'agent1' already has this call"),
    ]
    for target, error, message in cases:
        with pytest.raises(error, match=message):
            await service.transfer("call-1", target)
    assert floor.ami.sent == []


@pytest.mark.parametrize("mode", ["blind", "attended"])
async def test_an_agent_who_is_ready_but_unreachable_paused_or_leaving_is_refused_in_both_modes(
        mode: str):
    floor = call_floor()
    floor.caller_talks_to("call-1", "agent1")
    floor.caller_talks_to("call-2", "agent2", "sales")
    floor.acd.acd.set_reachable("agent3", False, floor.clock.now())  # READY, not registered
    service = transfers(floor)
    leg_answered(service, "call-1", "agent1")
    with pytest.raises(NotTransferable, match="agent 'agent3' has no reachable phone "
                       r"\(not registered\): nobody would answer the caller"):
        await service.transfer("call-1", TransferTarget(agent="agent3"), mode)
    # sales: agent2 leaves after their call, agent3 cannot be reached: nobody could answer.
    floor.acd.pause("agent2", "lunch")
    with pytest.raises(NotTransferable, match=r"queue 'sales': no agent there could answer "
                       r"the caller \(agent2 asked to pause once their current call ends; "
                       r"agent3 has no reachable phone \(not registered\)\)"):
        await service.transfer("call-1", TransferTarget(queue="sales"), mode)
    floor.acd.acd.set_reachable("agent3", True, floor.clock.now())
    floor.acd.pause("agent3", "lunch")
    with pytest.raises(NotTransferable, match=r"agent 'agent3' is paused \(lunch\)"):
        await service.transfer("call-1", TransferTarget(agent="agent3"), mode)
    assert floor.ami.sent == []  # the caller never moved: agent1 still has them
    assert floor.acd.acd.agent("agent1").state is AgentState.ON_CALL
    assert service.agent_on("call-1") == "agent1"


async def test_a_blind_transfer_waits_for_a_busy_agent_an_attended_one_cannot():
    floor = call_floor()
    floor.caller_talks_to("call-1", "agent1")
    floor.caller_talks_to("call-2", "agent2", "sales")
    service = transfers(floor)
    leg_answered(service, "call-1", "agent1")
    with pytest.raises(NotTransferable, match="cannot take it now: they are on_call"):
        await service.transfer("call-1", TransferTarget(agent="agent2"), "attended")
    await service.transfer("call-1", TransferTarget(agent="agent2"))  # waits for agent2
    assert [a["Exten"] for a in floor.ami.sent] == ["a-agent2"]


async def test_a_caller_gone_meanwhile_or_asterisk_down_is_said_as_such():
    floor = call_floor()
    floor.caller_talks_to("call-1", "agent1")
    floor.ami.refuse = "Channel specified does not exist"
    with pytest.raises(NotTransferable, match="could not move the caller \\(Channel specified"):
        await transfers(floor).transfer("call-1", TransferTarget(queue="sales"))
    floor.ami.refuse, floor.ami.error = None, AmiNotConnected("not connected to AMI")
    with pytest.raises(AsteriskUnavailable, match="Asterisk cannot be reached"):
        await transfers(floor).transfer("call-1", TransferTarget(queue="sales"))


def test_the_transfer_context_hands_the_caller_to_the_transfer_script_with_a_fallback():
    _, _, context = supervision_contexts("agi://127.0.0.1:4573", "callcenter-fallback")
    assert queue_transfer_extension("sales") == "q-sales"
    assert agent_transfer_extension("agent2") == "a-agent2"
    lines = context.splitlines()
    assert lines[2:lines.index("[callcenter-consult]") - 3] == [
        "[callcenter-transfer]",
        r"exten => _q-.,1,Set(CALLCENTER_QUEUE=${FILTER(a-z0-9_\-,${EXTEN:2})})",
        " same => n,Set(CALLCENTER_STAGE=transferred)",
        " same => n,AGI(agi://127.0.0.1:4573/transfer,queue,${CALLCENTER_QUEUE})",
        " same => n,Goto(callcenter-fallback,s,1)",
        "exten => _a-.,1,Set(CALLCENTER_STAGE=transferred)",
        r" same => n,AGI(agi://127.0.0.1:4573/transfer,agent,${FILTER(a-z0-9_\-,${EXTEN:2})})",
        " same => n,Goto(callcenter-fallback,s,1)",
    ]


# --------------------------------------------------------------------------- the new session


async def test_the_transferred_caller_waits_for_the_first_session_then_queues_again():
    floor = call_floor()
    floor.caller_talks_to("call-1", "agent1")
    first = transferred_session("call-1")
    queues = FakeQueues(floor, active={"call-1": first})  # type: ignore[dict-item]
    polls = 0

    async def first_session_still_ending(seconds: float) -> None:
        nonlocal polls
        polls += 1
        if polls == 3:
            del queues.active["call-1"]
            first_session_ended(floor, "call-1")

    service = transfers(floor, queues, sleep=first_session_still_ending)
    session = transferred_session("call-1", "queue", "sales", priority="5")
    await service.handle(session)  # type: ignore[arg-type]

    assert polls == 3
    assert queues.requests == [QueueRequest("sales", priority=5)]
    assert queues.active_during_wait == [True]  # AMI's answers reach the ACD meanwhile
    assert queues.active == {}
    assert session.hung_up and session.played == []
    # agent1's talk ended at the transfer (wrap-up 0: ready); the new agent's too at the end.
    assert floor.acd.acd.agent("agent1").state is AgentState.READY
    assert not floor.acd.holds("call-1")
    record = floor.writer.records["call-1"]  # one record, on through the transfer
    assert floor.ledger.get("call-1") is None and record.ended_at is not None
    assert record.hangup_by is HangupBy.AGENT
    assert record.queue == "sales"
    assert record.agent_id == "agent1"  # the first agent who answered
    assert [(a.agent_id, a.outcome) for a in record.attempts] == [
        ("agent1", AttemptOutcome.ANSWERED), ("agent2", AttemptOutcome.ANSWERED)]


async def test_a_caller_transferred_to_an_agent_waits_under_that_agents_queue_for_them():
    floor = call_floor()
    floor.caller_talks_to("call-1", "agent1")
    first_session_ended(floor, "call-1")
    queues = FakeQueues(floor, active={})
    await transfers(floor, queues).handle(
        transferred_session("call-1", "agent", "agent3"))  # type: ignore[arg-type]
    assert queues.requests == [QueueRequest("sales", for_agent="agent3")]


async def test_the_caller_hanging_up_on_the_new_agent_leaves_that_attempt_answered():
    floor = call_floor()
    floor.caller_talks_to("call-1", "agent1")
    first_session_ended(floor, "call-1")
    queues = FakeQueues(floor, active={}, caller_hangs_up_while_talking=True)
    session = transferred_session("call-1", "agent", "agent2")
    await transfers(floor, queues).handle(session)  # type: ignore[arg-type]

    record = floor.ledger.get("call-1")
    assert record is not None  # closed when AMI reports the caller's hangup
    assert [(a.agent_id, a.outcome) for a in record.attempts] == [
        ("agent1", AttemptOutcome.ANSWERED), ("agent2", AttemptOutcome.ANSWERED)]
    assert record.hangup_by is HangupBy.CALLER
    assert floor.acd.acd.agent("agent2").state is AgentState.READY  # wrap-up 0
    assert not session.hung_up  # already gone


@pytest.mark.parametrize("args", [(), ("queue",), ("queue", "billing"), ("agent", "agent9"),
                                  ("elsewhere", "sales"), ("queue", "Sales;x")])
async def test_unusable_arguments_end_the_call_with_an_apology_not_silence(args):
    floor = call_floor()
    queues = FakeQueues(floor, active={})
    session = transferred_session("call-1", *args)
    await transfers(floor, queues).handle(session)  # type: ignore[arg-type]
    assert queues.requests == []
    assert session.played == ["callcenter/sorry-no-agent"] and session.hung_up


async def test_a_first_session_that_never_ends_is_given_up_on_with_an_apology():
    floor = call_floor()
    floor.caller_talks_to("call-1", "agent1")
    queues = FakeQueues(floor, active={"call-1": transferred_session("call-1")})  # type: ignore[dict-item]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    service = transfers(floor, queues, sleep=sleep)
    await service.transfer("call-1", TransferTarget(queue="sales"))
    session = transferred_session("call-1", "queue", "sales")
    await service.handle(session)  # type: ignore[arg-type]
    assert queues.requests == []
    assert session.played == ["callcenter/sorry-no-agent"] and session.hung_up
    assert sum(slept) == pytest.approx(1.0)  # handover_seconds
    record = floor.ledger.get("call-1")
    assert record is not None
    assert [(t.outcome, t.reason) for t in record.transfers] == [
        (TransferOutcome.FAILED, "the call's first session did not let it go")]


# --------------------------------------------------------------------------- over HTTP


@dataclass
class Site:
    floor: CallFloor
    accounts: AccountRepository
    server: TestServer
    service: CallTransfers

    async def client(self, roles: tuple[Role, ...], *, agent_id: str | None = None,
                     ) -> TestClient:
        return await client_signed_as(self.server, self.accounts, roles, agent_id=agent_id)


@pytest.fixture
async def site(sqlite_sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Site]:
    accounts = accounts_for(sqlite_sessions)
    floor = call_floor()
    app = make_app(WebServices(None, None, accounts, floor.clock))  # type: ignore[arg-type]
    service = transfers(floor)
    install_supervision_routes(app, Supervision(acd=floor.acd, send=floor.ami.send))
    install_transfer_routes(app, service)
    server = TestServer(app)
    await server.start_server()
    yield Site(floor, accounts, server, service)
    await server.close()


async def test_the_agent_on_the_call_transfers_it_to_a_queue(site: Site):
    site.floor.caller_talks_to("1764745200.42", "agent1")
    client = await site.client((Role.AGENT,), agent_id="agent1")
    response = await client.post("/api/calls/1764745200.42/transfer",
                                 json={"to": {"queue": "sales"}, "mode": "blind"})
    assert response.status == 202, await response.text()
    assert await response.json() == {"call_id": "1764745200.42", "from_agent": "agent1",
                                     "to": {"queue": "sales"}, "mode": "blind",
                                     "consulting": None}
    assert [a["Exten"] for a in site.floor.ami.sent] == ["q-sales"]


async def test_another_agent_may_not_transfer_the_call_but_a_supervisor_may(site: Site):
    site.floor.caller_talks_to("1764745200.42", "agent1")
    other = await site.client((Role.AGENT,), agent_id="agent2")
    response = await other.post("/api/calls/1764745200.42/transfer",
                                json={"to": {"agent": "agent3"}})
    assert response.status == 403
    assert "you may act only for your own" in (await response.json())["error"]
    assert site.floor.ami.sent == []
    supervisor = await site.client((Role.SUPERVISOR,))
    response = await supervisor.post("/api/calls/1764745200.42/transfer",
                                     json={"to": {"agent": "agent3"}})  # blind by default
    assert response.status == 202, await response.text()
    assert (await response.json())["to"] == {"agent": "agent3"}
    assert [a["Exten"] for a in site.floor.ami.sent] == ["a-agent3"]


async def test_a_campaign_manager_may_not_transfer_calls(site: Site):
    site.floor.caller_talks_to("1764745200.42", "agent1")
    client = await site.client((Role.CAMPAIGN_MANAGER,))
    response = await client.post("/api/calls/1764745200.42/transfer",
                                 json={"to": {"queue": "sales"}})
    assert response.status == 403


async def test_unknown_calls_and_targets_are_404_calls_not_talking_409(site: Site):
    site.floor.caller_talks_to("1764745200.42", "agent1")
    site.floor.caller_waits("1764745200.43", "operator")
    client = await site.client((Role.SUPERVISOR,))
    cases = [
        ("1764745200.99", {"queue": "sales"}, 404, "no such call"),
        ("1764745200.42", {"queue": "billing"}, 404, "queue 'billing': no such queue"),
        ("1764745200.42", {"agent": "agent9"}, 404, "agent 'agent9': no such agent"),
        ("1764745200.43", {"queue": "sales"}, 409, "not talking to an agent now"),
        ("1764745200.42", {"agent": "agent1"}, 409, "already has this call"),
    ]
    for call_id, to, status, error in cases:
        response = await client.post(f"/api/calls/{call_id}/transfer", json={"to": to})
        assert response.status == status, (to, await response.text())
        assert error in (await response.json())["error"]
    assert site.floor.ami.sent == []


async def test_an_agent_asks_for_an_attended_transfer_over_http(site: Site):
    site.floor.caller_talks_to("1764745200.42", "agent1")
    leg_answered(site.service, "1764745200.42", "agent1")
    client = await site.client((Role.AGENT,), agent_id="agent1")
    response = await client.post("/api/calls/1764745200.42/transfer",
                                 json={"to": {"agent": "agent2"}, "mode": "attended"})
    assert response.status == 202, await response.text()
    assert await response.json() == {"call_id": "1764745200.42", "from_agent": "agent1",
                                     "to": {"agent": "agent2"}, "mode": "attended",
                                     "consulting": "agent2"}
    assert [a["Action"] for a in site.floor.ami.sent] == ["Setvar", "Atxfer"]


async def test_an_attended_transfer_from_a_nailed_up_agent_is_501_with_the_reason(site: Site):
    floor = site.floor
    floor.acd.acd.switch_mode("agent1", ConnectMode.NAILED, floor.clock.now())
    floor.caller_talks_to("1764745200.42", "agent1")
    client = await site.client((Role.SUPERVISOR,))
    response = await client.post("/api/calls/1764745200.42/transfer",
                                 json={"to": {"agent": "agent2"}, "mode": "attended"})
    assert response.status == 501
    assert (await response.json())["error"] == NAILED_REFUSAL
    assert floor.ami.sent == []


@pytest.mark.parametrize(("body", "error"), [
    ({}, "to: is required"),
    ({"to": "sales"}, 'to: expected {"queue": "<name>"} or {"agent": "<agent id>"}, '
                      "got 'sales'"),
    ({"to": {"queue": "sales", "agent": "agent2"}}, "to: expected"),
    ({"to": {}}, "to: expected"),
    ({"to": {"team": "x"}}, "to: expected"),
    ({"to": {"queue": "Sales Team"}}, "to.queue: 'Sales Team' is not a queue name"),
    ({"to": {"agent": None}}, "to.agent: expected an agent id, got null"),
    ({"to": {"queue": "sales"}, "mode": "warm"}, "mode: expected one of blind, attended, "
                                                 "got 'warm'"),
    ({"to": {"queue": "sales"}, "when": "now"}, "body: unknown field 'when'"),
])
async def test_a_malformed_body_is_400_saying_what_is_wrong(site: Site, body, error):
    site.floor.caller_talks_to("1764745200.42", "agent1")
    client = await site.client((Role.SUPERVISOR,))
    response = await client.post("/api/calls/1764745200.42/transfer", json=body)
    assert response.status == 400
    assert error in (await response.json())["error"]
    assert site.floor.ami.sent == []


async def test_a_call_id_that_is_no_uniqueid_is_400(site: Site):
    client = await site.client((Role.SUPERVISOR,))
    response = await client.post("/api/calls/a%20b/transfer", json={"to": {"queue": "sales"}})
    assert response.status == 400
    assert "is not a call id" in (await response.json())["error"]


async def test_a_blind_transfer_is_recorded_leg_by_leg_and_the_call_keeps_its_first_queue():
    floor = call_floor()
    floor.caller_talks_to("call-1", "agent1")  # queued at T0, rung at T0, answered at T0 + 2
    t0 = floor.clock.now() - 2
    floor.clock.advance(10)
    service = transfers(floor, FakeQueues(floor, active={}))
    refused = TransferTarget(agent="agent1")
    with pytest.raises(NotTransferable):
        await service.transfer("call-1", refused)
    await service.transfer("call-1", TransferTarget(queue="sales"))
    first_session_ended(floor, "call-1")
    floor.clock.advance(1)  # the caller arrives in the transfer script, agent2 answers at once
    await service.handle(transferred_session("call-1", "queue", "sales"))  # type: ignore[arg-type]

    record = floor.writer.records["call-1"]
    assert record.ended_at == t0 + 43
    assert record.queue == "support"  # where the caller first waited: per-queue figures
    assert record.agent_id == "agent1" and record.talk_seconds == 11
    assert record.transfers == [
        Transfer(TransferMode.BLIND, "agent1", t0 + 12, to_agent="agent1",
                 outcome=TransferOutcome.REFUSED, ended_at=t0 + 12,
                 reason="agent 'agent1' already has this call"),
        Transfer(TransferMode.BLIND, "agent1", t0 + 12, to_queue="sales",
                 outcome=TransferOutcome.COMPLETED, ended_at=t0 + 13)]
    assert record.attempts == [
        AgentAttempt("agent1", t0, t0 + 13, AttemptOutcome.ANSWERED, t0 + 2, 11),
        AgentAttempt("agent2", t0 + 13, t0 + 43, AttemptOutcome.ANSWERED, t0 + 13, 30)]


async def test_a_blind_transfer_the_caller_hangs_up_on_while_waiting_is_abandoned():
    floor = call_floor()
    floor.caller_talks_to("call-1", "agent1")

    class HangsUpWaiting(FakeQueues):
        async def wait(self, session, call_id, request):  # type: ignore[no-untyped-def]
            self.floor.writer.apply(self.floor.ledger.queued(call_id, "operator",
                                                             self.floor.clock.now()))
            raise AgiHangup("caller hung up while waiting in queue")

    service = transfers(floor, HangsUpWaiting(floor, active={}))
    await service.transfer("call-1", TransferTarget(agent="agent3"))
    first_session_ended(floor, "call-1")
    await service.handle(transferred_session("call-1", "agent", "agent3"))  # type: ignore[arg-type]
    floor.writer.apply(floor.ledger.on_event(
        Hangup(uniqueid="call-1", linkedid="call-1", channel=CALLER_CHANNEL,
               cause=16, cause_text="Normal Clearing"), floor.clock.now()))
    record = floor.writer.records["call-1"]
    assert record.queue == "support"
    assert [(t.to_agent, t.outcome) for t in record.transfers] == [
        ("agent3", TransferOutcome.ABANDONED)]


async def test_the_transferred_caller_hangs_up_while_waiting_and_the_agent_is_freed():
    floor = call_floor()
    floor.caller_talks_to("call-1", "agent1")
    first_session_ended(floor, "call-1")

    class HangsUpWaiting(FakeQueues):
        async def wait(self, session, call_id, request):  # type: ignore[no-untyped-def]
            inbox = self.floor.acd.enqueue(call_id, "operator")  # sup1 is logged out: waits
            await asyncio.sleep(0)
            assert inbox.empty()
            raise AgiHangup("caller hung up while waiting in queue")

    queues = HangsUpWaiting(floor, active={})
    await transfers(floor, queues).handle(
        transferred_session("call-1", "queue", "operator"))  # type: ignore[arg-type]
    assert not floor.acd.holds("call-1")
    assert floor.acd.acd.waiting("operator") == []


# --------------------------------------------------------------------------- attended

AGENT1_LEG = "PJSIP/agent1-00000001"
AGENT2_LEG = "PJSIP/agent2-00000002"


def leg_answered(service: CallTransfers, call_id: str, agent_id: str) -> None:
    """AMI's DialEnd of the caller's Dial to the agent (what call_floor feeds the ledger)."""
    service.on_event(DialEnd(uniqueid=call_id, linkedid=call_id,
                             channel=f"PJSIP/anonymous-{call_id}",
                             dest_uniqueid=f"{call_id}-{agent_id}",
                             dest_channel=f"PJSIP/{agent_id}-00000001", dial_status="ANSWER"))


def consult_dial_ended(service: CallTransfers, token: str, status: str) -> None:
    """The consult's Local channel's Dial to agent2 ended with ``status``."""
    service.on_event(DialEnd(uniqueid="local-2", linkedid="call-1",
                             channel=f"Local/{token}@callcenter-consult-00000000;2",
                             dest_uniqueid="agent2-leg", dest_channel=AGENT2_LEG,
                             dial_status=status))


def hung_up(service: CallTransfers, uniqueid: str, channel: str) -> None:
    service.on_event(Hangup(uniqueid=uniqueid, linkedid="call-1", channel=channel, cause=16,
                            cause_text="Normal Clearing"))


def transfer_done(service: CallTransfers, result: str = "Success") -> None:
    service.on_event(OtherEvent(name="AttendedTransfer", headers={
        "Result": result, "OrigTransfererChannel": AGENT1_LEG, "TransfereeUniqueid": "call-1",
        "DestType": "Link"}))


async def consulting_floor() -> tuple[CallFloor, CallTransfers, str]:
    """agent1 talks with call-1's caller and asked to consult agent2; the token."""
    floor = call_floor()
    floor.caller_talks_to("call-1", "agent1")
    service = transfers(floor)
    leg_answered(service, "call-1", "agent1")
    started = await service.transfer("call-1", TransferTarget(agent="agent2"), "attended")
    assert (started.from_agent, started.mode.value) == ("agent1", "attended")
    _, atxfer = floor.ami.sent
    token = atxfer["Exten"]
    return floor, service, token


def attempts(floor: CallFloor) -> list[tuple[str, AttemptOutcome | None]]:
    record = floor.ledger.get("call-1")
    assert record is not None
    return [(a.agent_id, a.outcome) for a in record.attempts]


async def test_an_attended_transfer_registers_the_consult_and_asks_asterisk_for_it():
    floor, service, token = await consulting_floor()
    assert len(token) == 6 and token.isdigit()
    assert floor.ami.sent == [
        {"Action": "Setvar", "Variable": f"CC_CONSULT_{token}", "Value": "agent2/15"},
        {"Action": "Atxfer", "Channel": AGENT1_LEG, "Context": "callcenter-consult",
         "Exten": token, "Async": "false"}]
    # agent2 is held for the call (no other offer) while agent1 still talks with the caller.
    assert floor.acd.acd.agent("agent2").state is AgentState.ON_CALL
    assert floor.acd.acd.agent("agent2").call_id == "call-1"
    assert floor.acd.acd.agent("agent1").state is AgentState.ON_CALL
    assert service.consulting("call-1") == "agent2"
    assert service.agent_on("call-1") == "agent1"  # the one talking with the caller
    assert attempts(floor)[-1][0] == "agent2"
    floor.caller_waits("call-2", "sales")  # agent2's queue: nobody to offer it to now
    assert floor.acd.acd.agent("agent3").call_id == "call-2"


async def test_the_first_agent_hanging_up_hands_the_caller_to_the_second():
    floor, service, token = await consulting_floor()
    consult_dial_ended(service, token, "ANSWER")
    transfer_done(service)

    assert service.consulting("call-1") is None
    assert floor.acd.acd.agent("agent1").state is not AgentState.ON_CALL  # wrap-up or ready
    assert not floor.acd.holds("call-1")
    assert floor.acd.acd.agent("agent2").state is AgentState.ON_CALL
    assert attempts(floor) == [("agent1", AttemptOutcome.ANSWERED),
                               ("agent2", AttemptOutcome.ANSWERED)]
    record = floor.ledger.get("call-1")
    assert record is not None and record.agent_id == "agent1"
    hung_up(service, "agent2-leg", AGENT2_LEG)  # the talk with agent2 is over
    assert floor.acd.acd.agent("agent2").state is not AgentState.ON_CALL


async def test_the_second_agent_can_hand_the_caller_on_again():
    floor, service, token = await consulting_floor()
    consult_dial_ended(service, token, "ANSWER")
    transfer_done(service)
    floor.ami.sent.clear()
    await service.transfer("call-1", TransferTarget(agent="agent3"), "attended")
    assert floor.ami.sent[1]["Channel"] == AGENT2_LEG
    service.on_event(OtherEvent(name="AttendedTransfer", headers={
        "Result": "Success", "OrigTransfererChannel": AGENT2_LEG,
        "TransfereeUniqueid": "call-1"}))
    assert floor.acd.acd.agent("agent2").state is not AgentState.ON_CALL
    assert floor.acd.acd.agent("agent3").state is AgentState.ON_CALL


async def test_a_consult_the_second_agent_ends_themselves_gives_the_caller_back():
    floor, service, token = await consulting_floor()
    consult_dial_ended(service, token, "ANSWER")
    hung_up(service, "agent2-leg", AGENT2_LEG)
    assert floor.acd.acd.agent("agent2").state is AgentState.READY
    assert floor.acd.acd.agent("agent1").state is AgentState.ON_CALL
    # agent2 answered and talked with agent1, then ended it: their leg was answered, the
    # transfer declined.
    assert attempts(floor)[-1] == ("agent2", AttemptOutcome.ANSWERED)
    record = floor.ledger.get("call-1")
    assert record is not None
    assert [(t.to_agent, t.outcome, t.reason) for t in record.transfers] == [
        ("agent2", TransferOutcome.DECLINED, "declined")]


async def test_a_handover_while_the_consult_rings_holds_the_second_agent_until_it_ends():
    floor, service, token = await consulting_floor()
    transfer_done(service)  # agent1 hung up while agent2's phone still rang
    assert floor.acd.acd.agent("agent1").state is not AgentState.ON_CALL
    assert floor.acd.acd.agent("agent2").state is AgentState.ON_CALL  # rung for the caller
    consult_dial_ended(service, token, "NOANSWER")
    assert floor.acd.acd.agent("agent2").state is AgentState.READY
    assert attempts(floor)[-1] == ("agent2", AttemptOutcome.NO_ANSWER)
    record = floor.ledger.get("call-1")
    assert record is not None
    assert [t.outcome for t in record.transfers] == [TransferOutcome.COMPLETED]


async def test_attended_transfers_that_cannot_be_done_are_refused_before_anything_is_sent():
    floor = call_floor(logged_in=("agent1", "agent2", "agent3"))
    floor.caller_talks_to("call-1", "agent1")
    floor.caller_waits("call-2", "sales")  # agent2 (or agent3) is ringing for it
    ringing = (floor.acd.acd.agent("agent2").call_id and "agent2") or "agent3"
    service = transfers(floor)
    with pytest.raises(NotTransferable, match="the phone leg of agent 'agent1' is not known"):
        await service.transfer("call-1", TransferTarget(agent="agent2"), "attended")
    leg_answered(service, "call-1", "agent1")
    cases = [
        (TransferTarget(queue="operator"), NotTransferable,
         r"queue 'operator': no agent there could answer the caller \(sup1 is logged out\)"),
        (TransferTarget(queue="billing"), TargetNotFound, "queue 'billing': no such queue"),
        (TransferTarget(agent="agent1"), NotTransferable, "already has this call"),
        (TransferTarget(agent="sup1"), NotTransferable, "is logged out"),
        (TransferTarget(agent=ringing), NotTransferable, "cannot take it now"),
        (TransferTarget(agent="agent9"), TargetNotFound, "no such agent"),
    ]
    for target, error, message in cases:
        with pytest.raises(error, match=message):
            await service.transfer("call-1", target, "attended")
    assert floor.ami.sent == []


async def test_a_second_transfer_during_a_consult_is_refused():
    floor = call_floor(logged_in=("agent1", "agent3"))
    floor.caller_talks_to("call-1", "agent3", "sales")
    service = transfers(floor)
    leg_answered(service, "call-1", "agent3")
    # The consulted agent comes first in the ACD's list; the one talking is still agent3.
    await service.transfer("call-1", TransferTarget(agent="agent1"), "attended")
    assert service.agent_on("call-1") == "agent3"
    with pytest.raises(NotTransferable, match="already being transferred"):
        await service.transfer("call-1", TransferTarget(agent="agent2"), "attended")
    with pytest.raises(NotTransferable, match="being transferred \\(attended\\)"):
        await service.transfer("call-1", TransferTarget(queue="sales"))
    assert len(floor.ami.sent) == 2


async def test_a_nailed_up_agents_call_is_not_transferred_attended():
    floor = call_floor()
    floor.acd.acd.switch_mode("agent1", ConnectMode.NAILED, floor.clock.now())
    floor.caller_talks_to("call-1", "agent1")
    with pytest.raises(AttendedNotSupported, match="nailed-up agent"):
        await transfers(floor).transfer("call-1", TransferTarget(agent="agent2"), "attended")
    assert floor.ami.sent == []


async def test_asterisk_refusing_the_consult_frees_the_second_agent():
    floor = call_floor()
    floor.caller_talks_to("call-1", "agent1")
    service = transfers(floor)
    leg_answered(service, "call-1", "agent1")
    floor.ami.refuse = "Channel specified does not exist"
    with pytest.raises(NotTransferable, match="could not start the consult"):
        await service.transfer("call-1", TransferTarget(agent="agent2"), "attended")
    assert floor.acd.acd.agent("agent2").state is AgentState.READY
    floor.ami.refuse, floor.ami.error = None, AmiNotConnected("not connected to AMI")
    with pytest.raises(AsteriskUnavailable):
        await service.transfer("call-1", TransferTarget(agent="agent2"), "attended")
    assert floor.acd.acd.agent("agent2").state is AgentState.READY
    assert service.consulting("call-1") is None


def test_the_consult_context_rings_the_registered_agent_once():
    _, _, context = supervision_contexts("agi://127.0.0.1:4573", "callcenter-fallback")
    consult = context[context.index("[callcenter-consult]"):].splitlines()
    assert consult[1:] == [
        "exten => _XXXXXX,1,Set(TARGET=${CC_CONSULT_${EXTEN}})",
        " same => n,Set(GLOBAL(CC_CONSULT_${EXTEN})=)",
        r" same => n,Set(CONSULTED=${FILTER(a-z0-9_\-,${CUT(TARGET,/,1)})})",
        " same => n,Set(RING=${FILTER(0-9,${CUT(TARGET,/,2)})})",
        ' same => n,GotoIf($["${CONSULTED}" = "" | "${RING}" = ""]?unknown)',
        " same => n,Dial(PJSIP/${CONSULTED},${RING},tb(callcenter-consult^leg^1))",
        " same => n(unknown),Hangup()",
        "exten => leg,1,Set(TRANSFER_CONTEXT=callcenter-consult)",
        " same => n,Return()",
    ]
    assert consult_token(7) == "000007" and consult_token(10**6 + 3) == "000003"


async def test_a_consult_that_never_starts_dialling_lets_the_second_agent_go():
    for dialling in (False, True):
        floor = call_floor()
        floor.caller_talks_to("call-1", "agent1")
        service = transfers(floor, consult_start_seconds=0.0)
        leg_answered(service, "call-1", "agent1")
        await service.transfer("call-1", TransferTarget(agent="agent2"), "attended")
        if dialling:
            token = floor.ami.sent[-1]["Exten"]
            service.on_event(DialBegin(uniqueid="local-2", linkedid="call-1",
                                       channel=f"Local/{token}@callcenter-consult-00000000;2",
                                       dest_uniqueid="agent2-leg", dest_channel=AGENT2_LEG,
                                       dial_string="agent2"))
        for _ in range(3):  # the check is due at once (a delay of 0): let it run
            await asyncio.sleep(0)
        assert (service.consulting("call-1") == "agent2") is dialling
        assert (floor.acd.acd.agent("agent2").state is AgentState.ON_CALL) is dialling


# --------------------------------------------------------------------------- attended, to a queue


async def queue_consult(floor: CallFloor) -> tuple[CallTransfers, str]:
    """agent1 talks with call-1's caller and asks for an attended transfer to sales: the
    service and the agent consulted."""
    floor.caller_talks_to("call-1", "agent1")
    service = transfers(floor)
    leg_answered(service, "call-1", "agent1")
    started = await service.transfer("call-1", TransferTarget(queue="sales"), "attended")
    assert (started.from_agent, started.mode.value) == ("agent1", "attended")
    assert started.target.agent is not None
    return service, started.target.agent


async def test_an_attended_transfer_to_a_queue_consults_the_agent_its_routing_picks_now():
    floor = call_floor()
    service, picked = await queue_consult(floor)
    assert picked == "agent2"  # sales routes by longest idle: agent2 logged in first
    assert service.consulting("call-1") == "agent2"
    setvar, atxfer = floor.ami.sent
    assert setvar["Value"] == "agent2/15" and atxfer["Channel"] == AGENT1_LEG
    assert floor.acd.acd.agent("agent2").state is AgentState.ON_CALL  # held for the consult
    assert floor.acd.acd.agent("agent3").state is AgentState.READY
    consult_dial_ended(service, atxfer["Exten"], "ANSWER")
    transfer_done(service)
    assert floor.acd.acd.agent("agent2").call_id == "call-1"
    assert floor.acd.acd.agent("agent1").state is not AgentState.ON_CALL


async def test_a_queue_consult_passes_over_agents_who_cannot_take_it():
    floor = call_floor()
    floor.acd.pause("agent2", "break")
    assert (await queue_consult(floor))[1] == "agent3"
    floor = call_floor()
    floor.acd.switch_mode("agent2", ConnectMode.NAILED)  # no phone to ring for a consult
    assert (await queue_consult(floor))[1] == "agent3"


async def test_a_queue_consult_that_is_declined_gives_the_caller_back_not_to_the_queue():
    floor = call_floor()
    service, picked = await queue_consult(floor)
    consult_dial_ended(service, floor.ami.sent[-1]["Exten"], "NOANSWER")
    assert floor.acd.acd.agent(picked).state is AgentState.READY
    assert floor.acd.acd.agent("agent1").state is AgentState.ON_CALL
    assert floor.acd.acd.waiting("sales") == []


async def test_a_queue_with_nobody_free_now_is_409_saying_a_blind_transfer_waits(site: Site):
    # sales' agents are busy: they will be free later (a blind transfer would wait), not now.
    site.floor.caller_talks_to("1764745200.40", "agent2", "sales")
    site.floor.caller_talks_to("1764745200.41", "agent3", "sales")
    site.floor.caller_talks_to("1764745200.42", "agent1")
    leg_answered(site.service, "1764745200.42", "agent1")
    client = await site.client((Role.AGENT,), agent_id="agent1")
    for to, status, error in [
            ({"queue": "sales"}, 409,
             "nobody in queue 'sales' is free now; a blind transfer waits in line"),
            ({"queue": "billing"}, 404, "queue 'billing': no such queue")]:
        response = await client.post("/api/calls/1764745200.42/transfer",
                                     json={"to": to, "mode": "attended"})
        assert response.status == status, await response.text()
        assert error in (await response.json())["error"]
    assert site.floor.ami.sent == []
    assert site.floor.acd.acd.agent("agent1").state is AgentState.ON_CALL
    site.floor.acd.left("1764745200.40")  # agent2's call ends (no wrap-up): ready
    response = await client.post("/api/calls/1764745200.42/transfer",
                                 json={"to": {"queue": "sales"}, "mode": "attended"})
    assert response.status == 202, await response.text()
    assert (await response.json())["consulting"] == "agent2"  # the queue's routing chose
    assert site.service.consulting("1764745200.42") == "agent2"
