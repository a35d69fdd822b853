"""Agents' softphones that register, as a person's would after ``./run.sh``, end to end.

The agents here have no static contact: Asterisk learns where a phone is only from its
REGISTER (digest auth, user = agent id, the agent's password from the settings). The service
learns from AMI device states whether a phone is reachable, and rings only those that are.
The phones are real SIPp processes (``RegisteringAgentPlan``), the calls real SIPp callers.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from callcenter.app import CallCenter
from callcenter.core.records import AttemptOutcome, CallRecord, Disposition, HangupBy
from tests.support.calls import (
    DEMO_HOURS_OPEN,
    MENU_DIGIT_MS,
    call_center,
    caller,
    finished,
    ivr_inputs,
    prompt_seconds,
    sip_target,
    talk_seconds_measured_by,
    the_only_closed_call,
)
from tests.support.sipp import (
    AgentPlan,
    CallerPlan,
    RegisteringAgentPlan,
    SippProcess,
    SippResult,
    registering_agent_phone,
)

pytestmark = pytest.mark.asterisk

WAIT_IN_QUEUE_MS = 4000  # how long the callers of an agent-less queue wait before hanging up


def softphone_agent(agent_id: str, queues: tuple[str, ...] = ("support",)) -> dict[str, Any]:
    """An [[agents]] table without ``contact``: the agent's phone has to REGISTER."""
    return {"id": agent_id, "name": agent_id.capitalize(), "queues": list(queues)}


def credentials(center: CallCenter, agent_id: str) -> tuple[str, str]:
    """The SIP user and password ``./run.sh`` prints for the agent (generated when empty)."""
    agent = next(a for a in center.settings.agents if a.id == agent_id)
    assert agent.password, f"{agent_id} has no SIP password"
    return agent.id, agent.password


async def reachable_becomes(center: CallCenter, agent_id: str, expected: bool,
                            timeout: float = 15) -> None:
    """Wait for the service to see the agent's phone (un)reachable, as AMI tells it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while center.acd.reachable(agent_id) is not expected:
        assert asyncio.get_running_loop().time() < deadline, (
            f"{agent_id}: the service still sees the phone "
            f"{'un' if expected else ''}reachable after {timeout} s")
        await asyncio.sleep(0.1)


async def event_seen(phone: SippProcess, prefix: str, timeout: float = 15) -> str:
    """Wait until the phone logs an event starting with prefix; return its full name."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        for event in phone.events_so_far():
            if event.name.startswith(prefix):
                return event.name
        assert phone.running(), f"{phone.name} ended without {prefix!r}:\n" + (
            phone.result().describe())
        assert asyncio.get_running_loop().time() < deadline, (
            f"{phone.name}: no {prefix!r} after {timeout} s; events "
            f"{[e.name for e in phone.events_so_far()]}")
        await asyncio.sleep(0.1)


async def closed_calls(center: CallCenter, count: int, timeout: float = 15) -> list[CallRecord]:
    """Wait until ``count`` calls are stored and closed; return them oldest first."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        await center.writer.flush(timeout)
        records, total = await center.calls.list()
        if total == count and not any(record.is_open for record in records):
            return sorted(records, key=lambda record: record.started_at)
        assert asyncio.get_running_loop().time() < deadline, f"not {count} closed: {records}"
        await asyncio.sleep(0.2)


def caller_waiting_in_support() -> CallerPlan:
    """Presses 2 (support) and hangs up after waiting WAIT_IN_QUEUE_MS there."""
    return CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),),
                      hangup_after_ms=MENU_DIGIT_MS + WAIT_IN_QUEUE_MS)


def assert_abandoned_in_support_untried(record: CallRecord, caller_result: SippResult) -> None:
    """Nobody was offered the call; the caller waited in support until hanging up."""
    assert record.disposition is Disposition.ABANDONED_IN_QUEUE, record
    assert record.queue == "support"
    assert record.hangup_by is HangupBy.CALLER
    assert record.agent_id is None and record.attempts == [], record.attempts
    at = {event.name: event.at_ms for event in caller_result.events}
    real_wait = (at["local-bye"] - at["dtmf 2"]) / 1000
    assert record.wait_seconds is not None
    assert abs(record.wait_seconds - real_wait) < 1.0, (record.wait_seconds, real_wait)


async def test_the_registered_softphone_gets_the_call_the_unregistered_one_is_never_tried(
        tmp_path):
    agents = [softphone_agent("agent1"), softphone_agent("agent2")]
    async with call_center(tmp_path, agents) as center:
        # Before any REGISTER, AMI reports both phones unreachable.
        await reachable_becomes(center, "agent1", False)
        await reachable_becomes(center, "agent2", False)
        user, password = credentials(center, "agent2")
        plan = RegisteringAgentPlan(user, password, sip_target(center),
                                    answer=AgentPlan(answer_after_ms=1000))
        with registering_agent_phone(plan) as phone:
            await reachable_becomes(center, "agent2", True)
            assert not center.acd.reachable("agent1")  # agent1's phone never registers
            talk_ms = 3000
            hangup_ms = (MENU_DIGIT_MS + int(prompt_seconds("please-hold") * 1000)
                         + 1000 + 1500 + talk_ms)
            call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),),
                                             hangup_after_ms=hangup_ms))
            caller_result, phone_result = await asyncio.gather(finished(call), finished(phone))
        record = await the_only_closed_call(center)
        # Its last step unregistered the phone: the service sees that too.
        await reachable_becomes(center, "agent2", False)

    assert phone_result.names() == [
        "registered", "invite", "answered", "remote-bye", "unregistered"], phone_result.describe()
    assert caller_result.ended_by == "us"
    assert [(a.agent_id, a.outcome) for a in record.attempts] == [
        ("agent2", AttemptOutcome.ANSWERED)]
    assert record.disposition is Disposition.ANSWERED
    assert record.queue == "support"
    assert record.agent_id == "agent2"
    assert record.hangup_by is HangupBy.CALLER
    assert ivr_inputs(record) == [DEMO_HOURS_OPEN, ("welcome", None), ("main_menu", "2")]
    real_talk = talk_seconds_measured_by(phone_result)
    assert real_talk > 2
    assert abs(record.talk_seconds - real_talk) < 1.0, (record.talk_seconds, real_talk)


async def test_a_softphone_with_a_wrong_password_is_refused_and_never_rung(tmp_path):
    agents = [softphone_agent("agent2")]
    async with call_center(tmp_path, agents) as center:
        await reachable_becomes(center, "agent2", False)
        user, password = credentials(center, "agent2")
        # The phone stays on its port while the caller waits, so a call would reach it.
        listen_ms = MENU_DIGIT_MS + WAIT_IN_QUEUE_MS + 6000
        plan = RegisteringAgentPlan(user, f"wrong-{password}", sip_target(center), calls=0,
                                    expect_refused=True, listen_after_ms=listen_ms,
                                    answer=AgentPlan(answer_after_ms=500))
        with registering_agent_phone(plan) as phone:
            refusal = await event_seen(phone, "register-refused")
            assert not center.acd.reachable("agent2")
            call = caller(center, caller_waiting_in_support())
            caller_result = await finished(call)
            record = await the_only_closed_call(center)
            assert not center.acd.reachable("agent2")
            phone_result = await finished(phone, listen_ms / 1000 + 30)

    assert refusal in ("register-refused 401", "register-refused 403"), refusal
    assert phone_result.names() == [refusal], phone_result.describe()  # no invite: never rung
    assert_abandoned_in_support_untried(record, caller_result)


async def test_after_the_softphone_unregisters_the_next_caller_is_not_offered_to_it(tmp_path):
    agents = [softphone_agent("agent2")]
    async with call_center(tmp_path, agents) as center:
        await reachable_becomes(center, "agent2", False)
        user, password = credentials(center, "agent2")
        # One call while registered, then Expires: 0, then the phone keeps listening.
        listen_ms = MENU_DIGIT_MS + WAIT_IN_QUEUE_MS + 8000
        plan = RegisteringAgentPlan(user, password, sip_target(center), calls=1,
                                    answer=AgentPlan(answer_after_ms=500, hangup_after_ms=2000),
                                    unregister=True, listen_after_ms=listen_ms)
        with registering_agent_phone(plan) as phone:
            await reachable_becomes(center, "agent2", True)
            first = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),)))
            await finished(first)
            await event_seen(phone, "unregistered")
            await reachable_becomes(center, "agent2", False)
            second = caller(center, caller_waiting_in_support())
            second_result = await finished(second)
            answered, abandoned = await closed_calls(center, 2)
            phone_result = await finished(phone, listen_ms / 1000 + 30)

    assert phone_result.names() == [
        "registered", "invite", "answered", "local-bye", "unregistered"], phone_result.describe()
    assert [(a.agent_id, a.outcome) for a in answered.attempts] == [
        ("agent2", AttemptOutcome.ANSWERED)]
    assert answered.disposition is Disposition.ANSWERED
    assert answered.agent_id == "agent2"
    assert answered.hangup_by is HangupBy.AGENT
    assert_abandoned_in_support_untried(abandoned, second_result)


async def test_a_softphone_that_hangs_up_three_calls_in_a_row_ends_each_on_time(tmp_path):
    """Each BYE the phone sends is a new transaction: had it reused a branch (sipp's own
    [branch] does for out-of-call scenarios), Asterisk would take the second for a
    retransmission of the first and keep that call up about 23 s longer."""
    agents = [softphone_agent("agent2")]
    talk_ms = 2000
    async with call_center(tmp_path, agents) as center:
        user, password = credentials(center, "agent2")
        plan = RegisteringAgentPlan(user, password, sip_target(center), calls=3,
                                    answer=AgentPlan(answer_after_ms=300,
                                                     hangup_after_ms=talk_ms))
        with registering_agent_phone(plan) as phone:
            await reachable_becomes(center, "agent2", True)
            callers = []
            for _ in range(3):  # one after the other, all within Asterisk's 32 s memory
                call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),),
                                                 max_call_ms=60_000))
                callers.append(await finished(call))
            records = await closed_calls(center, 3)
            phone_result = await finished(phone)

    assert phone_result.names() == [
        "registered", *["invite", "answered", "local-bye"] * 3, "unregistered",
    ], phone_result.describe()
    assert [result.ended_by for result in callers] == ["them"] * 3
    for record in records:
        assert record.disposition is Disposition.ANSWERED
        assert record.hangup_by is HangupBy.AGENT, record
        assert abs(record.talk_seconds - talk_ms / 1000) < 1.0, record.talk_seconds
