"""Transfers on a real Asterisk 22.

Out of the IVR: a SIPp UAS plays the carrier behind the generated trunk, a SIPp caller reaches
our FastAGI, and ``transfer()`` dials out. Most of these tests run ``transfer()`` from a
FastAGI service of their own (``one_transfer_per_call``), so they need nothing from the
inbound handler; one goes through a flow ending in ``{external: ...}`` and the whole service.

Of a talking caller, by a supervisor over HTTP (``POST /api/calls/{id}/transfer``): the whole
service with SIPp agent phones (the end of this file).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from callcenter.app import CallCenter
from callcenter.asterisk.agi_server import AgiServer, AgiSession
from callcenter.asterisk.confgen import OUTBOUND_CONTEXT
from callcenter.config import Settings
from callcenter.core.acd import AgentState
from callcenter.core.records import AttemptOutcome, Disposition, HangupBy
from callcenter.features.accounts.store import Role
from callcenter.features.ivr.transfer_out import TransferOutcome, TransferResult, transfer
from tests.support.asterisk import phone_agent, running_asterisk, sandbox_settings
from tests.support.calls import (
    MENU_DIGIT_MS,
    agent_phone,
    call_center,
    caller,
    finished,
    talk_seconds_measured_by,
    the_only_closed_call,
    until,
)
from tests.support.sipp import (
    AgentPlan,
    CallerPlan,
    SippProcess,
    agent_scenario,
    caller_scenario,
    free_port,
)
from tests.support.web import bearer_headers

pytestmark = pytest.mark.asterisk

OUR_NUMBER = "+551130000000"
CUSTOMER = "+5511999990000"
CALLER_NUMBER = "5551234"  # the SIPp caller's own number (CallerPlan's default)


def outbound_env(carrier_port: int, dial_timeout: int = 10) -> dict[str, str]:
    """A trunk to the SIPp carrier on carrier_port. Its calls are identified by that port,
    not by 127.0.0.1 alone: the SIPp callers come from 127.0.0.1 too."""
    return {
        "CALLCENTER_OUTBOUND__TRUNK_HOST": f"127.0.0.1:{carrier_port}",
        "CALLCENTER_OUTBOUND__TRUNK_MATCH": f"127.0.0.1:{carrier_port}",
        "CALLCENTER_OUTBOUND__CALLER_ID": OUR_NUMBER,
        "CALLCENTER_OUTBOUND__ALLOWED_PREFIXES": "+55",
        "CALLCENTER_OUTBOUND__EXTENSION_PATTERNS": "2XXX",
        "CALLCENTER_OUTBOUND__DIAL_TIMEOUT": str(dial_timeout),
    }


CallScript = Callable[[AgiSession], Awaitable[object]]


class OneTransferPerCall:
    """A FastAGI service answering the IVR number: each call runs ``script`` (by default one
    ``transfer()`` to ``kind``/``destination``), reports its result, then hangs up."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.kind, self.destination = "external", CUSTOMER
        self.script: CallScript | None = None
        self.results: asyncio.Queue[object] = asyncio.Queue()
        self.server = AgiServer({"ivr": self._handle}, settings.service.agi_host,
                                settings.service.agi_port, secret=settings.service.agi_secret)

    async def _handle(self, session: AgiSession) -> None:
        try:
            if self.script is not None:
                result = await self.script(session)
            else:
                result = await transfer(session, self.kind, self.destination, self.settings)
        except Exception as exc:  # the test reads it as the call's result
            result = exc
        self.results.put_nowait(result)
        await session.hangup()

    async def result(self, timeout: float = 60) -> object:
        return await asyncio.wait_for(self.results.get(), timeout)

    def call(self) -> SippProcess:
        return SippProcess(caller_scenario(CallerPlan(max_call_ms=60_000)),
                           remote=("127.0.0.1", self.settings.asterisk.sip_port),
                           service=self.settings.ivr.number, name="caller").start()


@asynccontextmanager
async def one_transfer_per_call(tmp_path: Path, carrier_port: int,
                                **options: int) -> AsyncIterator[OneTransferPerCall]:
    settings = sandbox_settings(tmp_path, env=outbound_env(carrier_port, **options))
    with running_asterisk(settings):
        service = OneTransferPerCall(settings)
        await service.server.start()
        try:
            yield service
        finally:
            await service.server.stop()


def carrier(port: int, plan: AgentPlan) -> SippProcess:
    """The carrier behind the trunk; ``-trace_msg`` keeps the SIP messages it saw."""
    return SippProcess(agent_scenario(plan), port=port, name="carrier",
                       extra_args=["-trace_msg"])


def invite_received(carrier: SippProcess) -> tuple[str, str]:
    """(user of the Request-URI, From header) of the first INVITE the carrier got."""
    log = "".join(p.read_text(errors="replace") for p in carrier.workdir.glob("*_messages.log"))
    found = re.search(r"^INVITE sip:([^@ ]+)@\S+ SIP/2\.0$.*?^From: ([^\r\n]*)$", log,
                      re.MULTILINE | re.DOTALL)
    assert found, f"the carrier got no INVITE:\n{log[-3000:]}"
    return found.group(1), found.group(2)


async def test_an_outside_number_rings_at_the_carrier_with_our_number_until_it_hangs_up(
        tmp_path: Path) -> None:
    port = free_port()
    async with one_transfer_per_call(tmp_path, port) as service:
        with carrier(port, AgentPlan(answer_after_ms=500, hangup_after_ms=2000)) as far_end:
            call = service.call()
            outcome = await service.result()
            far_end_result, caller_result = await asyncio.gather(finished(far_end), finished(call))
            user, from_header = invite_received(far_end)

    assert isinstance(outcome, TransferOutcome), outcome
    assert (outcome.result, outcome.dial_status) == (TransferResult.ANSWERED, "ANSWER")
    assert outcome.hangup_by is HangupBy.AGENT
    assert far_end_result.names() == ["invite", "answered", "local-bye"]
    assert user == CUSTOMER
    assert f"<sip:{OUR_NUMBER}@" in from_header
    assert "Caller" not in from_header  # the caller's name stays private
    # Dial's g option: the caller was still ours when the carrier hung up; we ended the call.
    assert caller_result.ended_by == "them"


async def test_a_busy_number_then_one_that_never_answers(tmp_path: Path) -> None:
    port = free_port()
    async with one_transfer_per_call(tmp_path, port, dial_timeout=5) as service:
        with carrier(port, AgentPlan(busy=True)) as far_end:
            call = service.call()
            busy = await service.result()
            await asyncio.gather(finished(far_end), finished(call))
        with carrier(port, AgentPlan(answer_after_ms=None)) as far_end:
            started = asyncio.get_running_loop().time()
            call = service.call()
            unanswered = await service.result()
            rang_for = asyncio.get_running_loop().time() - started
            far_end_result, _ = await asyncio.gather(finished(far_end), finished(call))

    assert isinstance(busy, TransferOutcome) and isinstance(unanswered, TransferOutcome)
    assert (busy.result, busy.dial_status) == (TransferResult.BUSY, "BUSY")
    assert (unanswered.result, unanswered.dial_status) == (TransferResult.NO_ANSWER, "NOANSWER")
    assert far_end_result.names() == ["invite", "cancelled"]
    assert 5 <= rang_for < 15  # outbound.dial_timeout, not our own longer Dial() timeout


async def test_an_internal_extension_goes_through_the_trunk_with_the_callers_number(
        tmp_path: Path) -> None:
    port = free_port()
    async with one_transfer_per_call(tmp_path, port) as service:
        service.kind, service.destination = "extension", "2001"
        with carrier(port, AgentPlan(answer_after_ms=200, hangup_after_ms=1000)) as far_end:
            call = service.call()
            outcome = await service.result()
            await asyncio.gather(finished(far_end), finished(call))
            user, from_header = invite_received(far_end)

    assert isinstance(outcome, TransferOutcome), outcome
    assert outcome.result is TransferResult.ANSWERED
    assert user == "2001"
    assert f"<sip:{CALLER_NUMBER}@" in from_header


async def test_a_number_the_settings_refuse_reaches_neither_asterisk_nor_the_carrier(
        tmp_path: Path) -> None:
    port = free_port()
    forbidden = "+13105550100"
    async with one_transfer_per_call(tmp_path, port) as service:
        with carrier(port, AgentPlan(answer_after_ms=0)) as far_end:
            service.destination = forbidden
            await finished(service.call())
            refused = await service.result()

            async def straight_to_the_dialplan(session: AgiSession) -> str | None:
                # As if our own check were bypassed: Asterisk has no route for it either.
                await session.exec("Dial", f"Local/{forbidden}@{OUTBOUND_CONTEXT}/n,5,g")
                return await session.get_variable("DIALSTATUS")

            service.script = straight_to_the_dialplan
            await finished(service.call())
            dialled_anyway = await service.result()
            assert far_end.running() and far_end.events_so_far() == []

    assert isinstance(refused, TransferOutcome), refused
    assert refused.result is TransferResult.REFUSED and refused.dial_status is None
    assert "starts with none of outbound.allowed_prefixes (+55)" in refused.reason
    assert dialled_anyway == "CHANUNAVAIL"


TRANSFER_FLOW = f"""
name: main
start: welcome
nodes:
  welcome:
    type: play
    prompt: please-hold
    next: {{external: "{CUSTOMER}"}}
"""


def transfer_flow(tmp_path: Path) -> dict[str, str]:
    """The IVR settings serving TRANSFER_FLOW from a folder of its own."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "main.yaml").write_text(TRANSFER_FLOW)
    return {"dialplans_dir": str(flows)}


async def test_a_flow_ending_in_an_outside_number_transfers_the_caller(tmp_path: Path) -> None:
    port = free_port()
    async with call_center(tmp_path / "center", [], env=outbound_env(port),
                           service_ivr=transfer_flow(tmp_path)) as center:
        with carrier(port, AgentPlan(answer_after_ms=500, hangup_after_ms=1500)) as far_end:
            call = caller(center, CallerPlan(max_call_ms=60_000))
            caller_result = await finished(call)
            far_end_result = await finished(far_end, 10)  # its BYE ended the caller's call
            user, _ = invite_received(far_end)
        record = await the_only_closed_call(center)

    assert user == CUSTOMER
    assert far_end_result.names() == ["invite", "answered", "local-bye"]
    assert caller_result.ended_by == "them"
    assert record.hangup_by is HangupBy.AGENT
    assert record.caller_number == CALLER_NUMBER
    assert [step.node for step in record.ivr_path] == ["welcome"]
    # The leg it put on the trunk, as Asterisk timed it: what the rating prices.
    [leg] = record.outside_legs
    assert (leg.number, leg.dial_status) == (CUSTOMER, "ANSWER")
    assert leg.answered_at is not None and record.ended_at is not None
    assert 1.4 <= leg.ended_at - leg.answered_at <= 1.8, leg  # the far end talked 1.5 s
    assert abs(record.ended_at - leg.ended_at) < 1.0, (record, leg)


async def test_a_caller_who_hangs_up_on_the_transfer_ends_its_trunk_leg_then(
        tmp_path: Path) -> None:
    port = free_port()
    async with call_center(tmp_path / "center", [], env=outbound_env(port),
                           service_ivr=transfer_flow(tmp_path)) as center:
        with carrier(port, AgentPlan(answer_after_ms=300)) as far_end:  # talks until the BYE
            call = caller(center, CallerPlan(hangup_after_ms=9_000))
            await finished(call)
            far_end_result = await finished(far_end, 10)
        record = await the_only_closed_call(center)

    assert far_end_result.names()[:2] == ["invite", "answered"]
    assert record.hangup_by is HangupBy.CALLER
    [leg] = record.outside_legs
    assert leg.dial_status == "ANSWER" and leg.answered_at is not None, leg
    assert record.answered_at is not None and record.ended_at is not None
    # Answered after the greeting and the ring, ended with the caller's hang-up.
    assert record.answered_at < leg.answered_at < record.ended_at - 1, (record, leg)
    assert abs(record.ended_at - leg.ended_at) < 1.0, (record, leg)


# --------------------------------------------------------------------------- a talking caller

ANSWER_MS = 500


def on_call_with(center: CallCenter, agent_id: str) -> str | None:
    """The call ``agent_id`` is talking on, if any."""
    view = center.acd.acd.agent(agent_id)
    return view.call_id if view.state is AgentState.ON_CALL else None


async def transfer_over_http(center: CallCenter, headers: dict[str, str], call_id: str,
                             body: dict[str, object]) -> tuple[int, dict[str, object]]:
    """``POST /api/calls/{call_id}/transfer`` signed with ``headers``: (status, answer)."""
    service = center.settings.service
    url = f"http://{service.http_host}:{service.http_port}/api/calls/{call_id}/transfer"
    async with aiohttp.ClientSession() as http, http.post(url, json=body,
                                                          headers=headers) as answer:
        return answer.status, await answer.json()


@pytest.mark.parametrize("mode", ["blind", "attended"])
async def test_a_transfer_to_a_ready_agent_whose_phone_is_not_registered_is_refused_and_the_first_agent_keeps_the_caller(  # noqa: E501
        tmp_path: Path, mode: str) -> None:
    port1 = free_port()
    # agent3 is logged in and READY, but has no static contact and never registers.
    agents = [phone_agent("agent1", port1, queues=["support"]),
              {"id": "agent3", "name": "Agent3", "queues": ["sales"]}]
    async with call_center(tmp_path, agents) as center:
        first = agent_phone("agent1", port1, AgentPlan(answer_after_ms=ANSWER_MS,
                                                       hangup_after_ms=8_000))
        call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),),
                                         hangup_after_ms=MENU_DIGIT_MS + 40_000))
        call_id = await until(lambda: on_call_with(center, "agent1"), "agent1 answered", 40)
        agent3 = center.acd.acd.agent("agent3")
        assert (agent3.state, agent3.reachable) == (AgentState.READY, False)

        supervisor = await bearer_headers(center.accounts, [Role.SUPERVISOR], username="floor")
        status, answer = await transfer_over_http(
            center, supervisor, call_id, {"to": {"agent": "agent3"}, "mode": mode})
        refused_to_queue = await transfer_over_http(
            center, supervisor, call_id, {"to": {"queue": "sales"}, "mode": mode})
        # agent1 keeps the caller: still talking, and hangs up on them as planned.
        assert on_call_with(center, "agent1") == call_id
        first_result, caller_result = await asyncio.gather(finished(first), finished(call))
        record = await the_only_closed_call(center)

    assert (status, answer["error"]) == (409, ("agent 'agent3' has no reachable phone (not "
                                               "registered): nobody would answer the caller"))
    assert (refused_to_queue[0], refused_to_queue[1]["error"]) == (
        409, "queue 'sales': no agent there could answer the caller (agent3 has no reachable "
             "phone (not registered))")
    assert first_result.names() == ["invite", "answered", "local-bye"], first_result.describe()
    assert caller_result.ended_by == "them"
    assert [(a.agent_id, a.outcome) for a in record.attempts] == [
        ("agent1", AttemptOutcome.ANSWERED)]
    assert record.disposition is Disposition.ANSWERED and record.hangup_by is HangupBy.AGENT


async def test_a_blind_transfer_is_recorded_leg_by_leg_as_the_agents_phones_measured_it(
        tmp_path: Path) -> None:
    port1, port2 = free_port(), free_port()
    agents = [phone_agent("agent1", port1, queues=["support"]),
              phone_agent("agent2", port2, queues=["sales"])]
    async with call_center(tmp_path, agents) as center:
        first = agent_phone("agent1", port1, AgentPlan(answer_after_ms=ANSWER_MS))
        second = agent_phone("agent2", port2, AgentPlan(answer_after_ms=ANSWER_MS))
        call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),),
                                         hangup_after_ms=MENU_DIGIT_MS + 20_000))
        call_id = await until(lambda: on_call_with(center, "agent1"), "agent1 answered", 40)
        await until(lambda: center.clock.now() - center.acd.acd.agent("agent1").since > 3,
                    "agent1 talked 3 s")
        supervisor = await bearer_headers(center.accounts, [Role.SUPERVISOR], username="floor")
        status, answer = await transfer_over_http(center, supervisor, call_id,
                                                  {"to": {"agent": "agent2"}})
        assert status == 202, answer
        first_result = await finished(first)  # the transfer hangs up agent1's leg
        assert await until(lambda: on_call_with(center, "agent2"), "agent2 answered") == call_id
        caller_result, second_result = await asyncio.gather(finished(call), finished(second))
        record = await the_only_closed_call(center)

    assert first_result.names() == ["invite", "answered", "remote-bye"]
    assert second_result.names() == ["invite", "answered", "remote-bye"]
    assert caller_result.ended_by == "us"
    assert record.queue == "support"  # where the caller first waited, not the target's queue
    assert record.agent_id == "agent1" and record.disposition is Disposition.ANSWERED
    [transfer] = record.transfers
    assert (transfer.mode, transfer.from_agent, transfer.to_agent, transfer.to_queue,
            transfer.outcome) == ("blind", "agent1", "agent2", None, "completed")
    leg1, leg2 = record.attempts
    assert (leg1.agent_id, leg1.outcome, leg2.agent_id, leg2.outcome) == (
        "agent1", AttemptOutcome.ANSWERED, "agent2", AttemptOutcome.ANSWERED)
    talk1, talk2 = talk_seconds_measured_by(first_result), talk_seconds_measured_by(second_result)
    assert talk1 > 2.5 and talk2 > 5, (talk1, talk2)
    assert abs(leg1.talk_seconds - talk1) < 1.0, (leg1, talk1)
    assert abs(leg2.talk_seconds - talk2) < 1.0, (leg2, talk2)
    assert record.talk_seconds == pytest.approx(leg1.talk_seconds, abs=0.5)
    # One after the other: agent1's leg ends at the transfer, before agent2's phone rings,
    # which answers once the transfer completes; agent2 talks to the end of the call.
    assert leg1.started_at <= leg1.answered_at < leg1.ended_at <= transfer.requested_at + 1
    assert leg1.ended_at <= leg2.started_at <= leg2.answered_at == transfer.ended_at
    assert leg2.ended_at == pytest.approx(record.ended_at, abs=0.5)
