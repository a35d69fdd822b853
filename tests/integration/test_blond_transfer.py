"""An attended transfer whose first agent hangs up while the consult still rings, on a real
Asterisk 22 with SIPp phones: Asterisk's "blond" transfer hands the caller to the ringing
phone. The second agent answers, talks with the caller, and is free again after the call."""

from __future__ import annotations

import asyncio

import pytest

from callcenter.asterisk.events import AmiEvent, OtherEvent
from callcenter.core.records import AttemptOutcome, HangupBy, TransferOutcome
from callcenter.features.agent_transfers.service import TransferTarget
from tests.integration.test_attended_transfer import (
    ami_watcher,
    on_call,
    until,
    until_bridged,
    until_released,
)
from tests.support.asterisk import phone_agent
from tests.support.calls import (
    MENU_DIGIT_MS,
    agent_phone,
    call_center,
    caller,
    finished,
    the_only_closed_call,
)
from tests.support.sipp import AgentPlan, CallerPlan, free_port

pytestmark = pytest.mark.asterisk

# agent1 hangs up 4 s after answering; agent2's phone rings 8 s before answering the consult.
FIRST_AGENT_HANGS_UP_MS = 4_000
SECOND_AGENT_ANSWERS_MS = 8_000
CALLER_HANGS_UP_MS = MENU_DIGIT_MS + 25_000


async def test_the_first_agent_hanging_up_during_the_ring_hands_the_caller_to_the_second(
        tmp_path):
    port1, port2 = free_port(), free_port()
    agents = [phone_agent("agent1", port1, queues=["support"]),
              phone_agent("agent2", port2, queues=["sales"])]
    async with call_center(tmp_path, agents) as center:
        events: list[AmiEvent] = []
        watcher = await ami_watcher(center, events)
        first = agent_phone("agent1", port1, AgentPlan(answer_after_ms=500,
                                                       hangup_after_ms=FIRST_AGENT_HANGS_UP_MS))
        second = agent_phone("agent2", port2,
                             AgentPlan(answer_after_ms=SECOND_AGENT_ANSWERS_MS))
        call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),),
                                         hangup_after_ms=CALLER_HANGS_UP_MS))
        await until(lambda: on_call(center, "agent1"), "agent1 answered", call, 40)
        call_id = center.acd.acd.agent("agent1").call_id
        assert call_id is not None
        await center.transfers.transfer(call_id, TransferTarget(agent="agent2"), "attended")
        first_result = await finished(first, 30)  # agent1 hangs up: agent2's phone rings on
        await until(lambda: not on_call(center, "agent1"), "agent1's call ended", call)
        assert on_call(center, "agent2", call_id)  # held for the caller while it rings
        await until_bridged(center, call_id, "agent2", call)  # agent2 answered: the caller's
        assert center.transfers.consulting(call_id) is None
        caller_result, second_result = await asyncio.gather(finished(call), finished(second))
        record = await the_only_closed_call(center)
        await until_released(center, "agent2")  # free for the next caller
        await watcher.stop()

    transfers = [e for e in events if isinstance(e, OtherEvent) and e.name == "AttendedTransfer"]
    assert [e.headers.get("Result") for e in transfers] == ["Success"], transfers
    assert first_result.names() == ["invite", "answered", "local-bye"], first_result.describe()
    assert second_result.names() == ["invite", "answered", "remote-bye"], (
        second_result.describe())
    assert caller_result.ended_by == "us"
    assert [(a.agent_id, a.outcome) for a in record.attempts] == [
        ("agent1", AttemptOutcome.ANSWERED), ("agent2", AttemptOutcome.ANSWERED)]
    assert record.agent_id == "agent1" and record.hangup_by is HangupBy.CALLER
    [transfer] = record.transfers
    assert (transfer.to_agent, transfer.outcome) == ("agent2", TransferOutcome.COMPLETED)
