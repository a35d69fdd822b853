"""Attended transfers on a real Asterisk 22, with SIPp phones.

A caller presses 2 (support) and agent1's phone answers. An attended transfer to agent2 then
rings agent2's phone while the caller is on hold (music); agent2 answers (the consult), agent1
hangs up and the caller is bridged with agent2 until hanging up. If agent2's phone refuses,
agent1 keeps the caller. The record's legs are checked against what the phones measured.
"""

from __future__ import annotations

import asyncio

import pytest

from callcenter.app import CallCenter
from callcenter.asterisk.ami import AmiClient
from callcenter.asterisk.events import AmiEvent, MusicOnHoldStart, OtherEvent
from callcenter.asterisk.sandbox import Sandbox
from callcenter.core.acd import AgentState
from callcenter.core.records import AttemptOutcome, Disposition, HangupBy, TransferOutcome
from callcenter.features.agent_transfers.service import TransferTarget
from tests.support.asterisk import phone_agent
from tests.support.calls import (
    MENU_DIGIT_MS,
    agent_phone,
    call_center,
    caller,
    finished,
    talk_seconds_measured_by,
    the_only_closed_call,
)
from tests.support.sipp import AgentPlan, CallerPlan, SippProcess, free_port

pytestmark = pytest.mark.asterisk

ANSWER_MS = 500
# agent1 talks, consults agent2, and hangs up this long after answering: the handover.
FIRST_AGENT_HANGS_UP_MS = 9_000
CALLER_HANGS_UP_MS = MENU_DIGIT_MS + 25_000


async def until(condition, what: str, call: SippProcess, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert call.running(), f"the caller's call ended before {what}"
        assert asyncio.get_running_loop().time() < deadline, f"never: {what}"
        await asyncio.sleep(0.1)


def on_call(center: CallCenter, agent_id: str, call_id: str | None = None) -> bool:
    view = center.acd.acd.agent(agent_id)
    return view.state is AgentState.ON_CALL and (call_id is None or view.call_id == call_id)


async def bridged_together(center: CallCenter, call_id: str, agent_id: str) -> bool:
    """Whether `core show channels` has the caller's channel in one bridge with the agent's
    phone leg, directly or through the pair of Local channels of the consult (;1 with the
    caller, ;2 with the agent) if Asterisk has not optimised them away."""
    channels = await center.ami.core_show_channels()
    bridges = {c.channel: c.bridge_id for c in channels if c.bridge_id}
    caller_bridge = next((c.bridge_id for c in channels if c.uniqueid == call_id), "")
    reached = {caller_bridge} if caller_bridge else set()
    for name, bridge in list(bridges.items()):
        if bridge == caller_bridge and name.startswith("Local/") and name.endswith(";1"):
            reached.add(bridges.get(name[:-1] + "2", ""))
    return any(bridge in reached and name.startswith(f"PJSIP/{agent_id}-")
               for name, bridge in bridges.items())


async def until_bridged(center: CallCenter, call_id: str, agent_id: str, call: SippProcess,
                        timeout: float = 20) -> None:
    """Wait until the caller and the agent's phone are in one bridge again."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await bridged_together(center, call_id, agent_id):
        assert call.running(), f"the caller's call ended before {agent_id} had them back"
        assert asyncio.get_running_loop().time() < deadline, f"{agent_id} never had them back"
        await asyncio.sleep(0.1)


async def ami_watcher(center: CallCenter, events: list[AmiEvent]) -> AmiClient:
    a = center.settings.asterisk
    watcher = AmiClient(a.host, a.ami_port, a.ami_username, a.ami_secret,
                        on_event=events.append)
    await watcher.start()
    await watcher.wait_ready(30)
    return watcher


async def test_an_attended_transfer_consults_agent2_and_hands_the_caller_over(tmp_path):
    port1, port2 = free_port(), free_port()
    agents = [phone_agent("agent1", port1, queues=["support"]),
              phone_agent("agent2", port2, queues=["sales"])]
    async with call_center(tmp_path, agents) as center:
        events: list[AmiEvent] = []
        watcher = await ami_watcher(center, events)
        first = agent_phone("agent1", port1, AgentPlan(answer_after_ms=ANSWER_MS,
                                                       hangup_after_ms=FIRST_AGENT_HANGS_UP_MS))
        second = agent_phone("agent2", port2, AgentPlan(answer_after_ms=ANSWER_MS))
        call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),),
                                         hangup_after_ms=CALLER_HANGS_UP_MS))
        await until(lambda: on_call(center, "agent1"), "agent1 answered", call, 40)
        call_id = center.acd.acd.agent("agent1").call_id
        assert call_id is not None
        await asyncio.sleep(1)  # a little talk first
        seen_before = len(events)
        started = await center.transfers.transfer(call_id, TransferTarget(agent="agent2"),
                                                  "attended")
        # The consult: agent2 is held for this call at once, while agent1 still has it.
        assert on_call(center, "agent2", call_id) and on_call(center, "agent1", call_id)
        assert center.transfers.consulting(call_id) == "agent2"
        first_result = await finished(first, 30)  # agent1 hangs up: the handover
        await until(lambda: not on_call(center, "agent1"), "agent1's call ended", call)
        assert on_call(center, "agent2", call_id)
        assert await bridged_together(center, call_id, "agent2")
        caller_result, second_result = await asyncio.gather(finished(call), finished(second))
        record = await the_only_closed_call(center)
        await until_released(center, "agent2")
        features = Sandbox(center.settings).cli("features show")
        await watcher.stop()

    assert started.from_agent == "agent1" and started.mode.value == "attended"
    later = events[seen_before:]
    transfers = [e for e in later if isinstance(e, OtherEvent) and e.name == "AttendedTransfer"]
    assert [e.headers.get("Result") for e in transfers] == ["Success"], transfers
    # The caller heard hold music while the agents talked.
    assert any(isinstance(e, MusicOnHoldStart) and e.uniqueid == call_id for e in later)
    assert first_result.names() == ["invite", "answered", "local-bye"], first_result.describe()
    assert second_result.names() == ["invite", "answered", "remote-bye"], (
        second_result.describe())
    assert caller_result.ended_by == "us"  # the caller talked to agent2 until hanging up
    assert [(a.agent_id, a.outcome) for a in record.attempts] == [
        ("agent1", AttemptOutcome.ANSWERED), ("agent2", AttemptOutcome.ANSWERED)]
    assert record.agent_id == "agent1" and record.disposition is Disposition.ANSWERED
    assert record.hangup_by is HangupBy.CALLER
    assert record.queue == "support"  # where the caller first waited
    # Each agent's leg as their phone measured it: agent1 from their answer to their hang-up
    # (the handover), agent2 from answering the consult to the caller's hang-up.
    leg1, leg2 = record.attempts
    talk1, talk2 = talk_seconds_measured_by(first_result), talk_seconds_measured_by(second_result)
    assert abs(leg1.talk_seconds - talk1) < 1.0, (leg1, talk1)
    assert abs(leg2.talk_seconds - talk2) < 1.0, (leg2, talk2)
    # agent1's talk, until the handover: not the whole call.
    assert record.talk_seconds == pytest.approx(leg1.talk_seconds, abs=0.5)
    assert record.talk_seconds < 12, record.talk_seconds
    [transfer] = record.transfers
    assert (transfer.mode, transfer.from_agent, transfer.to_agent, transfer.to_queue,
            transfer.outcome) == ("attended", "agent1", "agent2", None, TransferOutcome.COMPLETED)
    # The two agents overlap during the consult only: agent2 answers while agent1 still has
    # the caller, agent1's leg ends at the handover, agent2's at the end of the call.
    assert leg1.answered_at < transfer.requested_at <= leg2.started_at < leg2.answered_at
    assert leg2.answered_at < leg1.ended_at == pytest.approx(transfer.ended_at, abs=0.5)
    assert leg2.ended_at == pytest.approx(record.ended_at, abs=0.5)
    assert "*2" in features and "Attended Transfer" in features, features
    # No blind transfer key for agents' legs (option t would enable the default #): the
    # line shows the default only, its current key column is empty.
    blind = [line.split() for line in features.splitlines() if "Blind Transfer" in line]
    assert blind == [["Blind", "Transfer", "#"]], blind


async def until_released(center: CallCenter, agent_id: str, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while on_call(center, agent_id):
        assert asyncio.get_running_loop().time() < deadline, f"{agent_id} is still on call"
        await asyncio.sleep(0.1)


async def test_a_refused_consult_gives_agent1_the_caller_back_and_frees_agent2(tmp_path):
    port1, port2 = free_port(), free_port()
    agents = [phone_agent("agent1", port1, queues=["support"]),
              phone_agent("agent2", port2, queues=["sales"])]
    async with call_center(tmp_path, agents) as center:
        first = agent_phone("agent1", port1, AgentPlan(answer_after_ms=ANSWER_MS))
        second = agent_phone("agent2", port2, AgentPlan(busy=True))
        call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),),
                                         hangup_after_ms=MENU_DIGIT_MS + 15_000))
        await until(lambda: on_call(center, "agent1"), "agent1 answered", call, 40)
        call_id = center.acd.acd.agent("agent1").call_id
        assert call_id is not None
        await center.transfers.transfer(call_id, TransferTarget(agent="agent2"), "attended")
        await until(lambda: center.transfers.consulting(call_id) is None,
                    "the consult ended", call)
        assert not on_call(center, "agent2")  # free again for other callers
        assert on_call(center, "agent1", call_id)
        await until_bridged(center, call_id, "agent1", call)
        caller_result, first_result = await asyncio.gather(finished(call), finished(first))
        second.stop()
        record = await the_only_closed_call(center)

    assert caller_result.ended_by == "us"
    assert first_result.names() == ["invite", "answered", "remote-bye"]
    assert [(a.agent_id, a.outcome) for a in record.attempts] == [
        ("agent1", AttemptOutcome.ANSWERED), ("agent2", AttemptOutcome.BUSY)]
    assert record.agent_id == "agent1"
    assert [(t.to_agent, t.outcome, t.reason) for t in record.transfers] == [
        ("agent2", TransferOutcome.DECLINED, "busy")]
    # agent1 talked with the caller from their answer to the caller's hang-up, consult or not.
    leg1 = record.attempts[0]
    assert abs(leg1.talk_seconds - talk_seconds_measured_by(first_result)) < 1.0, leg1
    assert record.attempts[1].talk_seconds is None


async def test_an_attended_transfer_to_a_queue_consults_its_free_agent_who_gets_the_caller(
        tmp_path):
    port1, port2 = free_port(), free_port()
    agents = [phone_agent("agent1", port1, queues=["support"]),
              phone_agent("agent2", port2, queues=["sales"])]
    async with call_center(tmp_path, agents) as center:
        first = agent_phone("agent1", port1, AgentPlan(answer_after_ms=ANSWER_MS,
                                                       hangup_after_ms=FIRST_AGENT_HANGS_UP_MS))
        second = agent_phone("agent2", port2, AgentPlan(answer_after_ms=ANSWER_MS))
        call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),),
                                         hangup_after_ms=CALLER_HANGS_UP_MS))
        await until(lambda: on_call(center, "agent1"), "agent1 answered", call, 40)
        call_id = center.acd.acd.agent("agent1").call_id
        assert call_id is not None
        await asyncio.sleep(1)  # a little talk first
        started = await center.transfers.transfer(call_id, TransferTarget(queue="sales"),
                                                  "attended")
        # sales' only free agent is consulted; the caller does not wait in sales' line.
        assert started.target == TransferTarget(agent="agent2")
        assert center.transfers.consulting(call_id) == "agent2"
        assert on_call(center, "agent2", call_id) and on_call(center, "agent1", call_id)
        assert center.acd.acd.waiting("sales") == []
        first_result = await finished(first, 30)  # agent1 hangs up: the handover
        await until(lambda: not on_call(center, "agent1"), "agent1's call ended", call)
        assert on_call(center, "agent2", call_id)
        assert await bridged_together(center, call_id, "agent2")
        caller_result, second_result = await asyncio.gather(finished(call), finished(second))
        record = await the_only_closed_call(center)
        await until_released(center, "agent2")

    assert first_result.names() == ["invite", "answered", "local-bye"], first_result.describe()
    assert second_result.names() == ["invite", "answered", "remote-bye"], (
        second_result.describe())
    assert caller_result.ended_by == "us"  # the caller talked to agent2 until hanging up
    assert [(a.agent_id, a.outcome) for a in record.attempts] == [
        ("agent1", AttemptOutcome.ANSWERED), ("agent2", AttemptOutcome.ANSWERED)]
    assert record.agent_id == "agent1" and record.hangup_by is HangupBy.CALLER
    assert record.queue == "support"
    assert [(t.to_queue, t.to_agent, t.outcome) for t in record.transfers] == [
        ("sales", "agent2", TransferOutcome.COMPLETED)]
    assert abs(record.attempts[1].talk_seconds - talk_seconds_measured_by(second_result)) < 1.0
