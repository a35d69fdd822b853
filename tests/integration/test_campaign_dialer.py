"""Outbound campaigns on a real Asterisk 22: the dialer calls a list through the trunk (a SIPp
carrier playing the customers) and joins each person who answers to a nailed-up agent (a
SIPp phone that dialled in with *50); busy and unanswered numbers end with those outcomes,
and every answered call is on record as outbound, naming its campaign and attempt."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from callcenter.app import CallCenter
from callcenter.core.acd import AgentState
from callcenter.core.call_lists import ColumnMapping
from callcenter.core.campaigns import Campaign, CampaignMode, CampaignState, MachineAction
from callcenter.core.records import Direction
from callcenter.features.campaigns.list_files import ListFormat, read_call_list
from callcenter.features.campaigns.lists import CallLists
from callcenter.store.db import session_factory
from tests.support.asterisk import phone_agent
from tests.support.calls import (
    agent_dials,
    agent_phone,
    call_center,
    finished,
    prompt_seconds,
    until,
)
from tests.support.carrier import GREETING_MS, Behaviour, Carrier, CarrierPlan
from tests.support.sipp import AgentPlan, CallerPlan, SippProcess, agent_scenario, free_port

pytestmark = pytest.mark.asterisk

OUR_NUMBER = "+12025550199"
QUEUES = ({"name": "sales"}, {"name": "support"}, {"name": "operator"})


@asynccontextmanager
async def dialing_center(tmp_path: Path, carrier_port: int, agents: list[dict[str, Any]]
                         ) -> AsyncIterator[CallCenter]:
    env = {
        "CALLCENTER_OUTBOUND__TRUNK_HOST": f"127.0.0.1:{carrier_port}",
        "CALLCENTER_OUTBOUND__TRUNK_MATCH": f"127.0.0.1:{carrier_port}",
        "CALLCENTER_OUTBOUND__CALLER_ID": OUR_NUMBER,
    }
    async with call_center(tmp_path, agents, env=env, queues=QUEUES) as center:
        yield center


def carrier(port: int, plan: AgentPlan, calls: int) -> SippProcess:
    return SippProcess(agent_scenario(plan), port=port, name="carrier", calls=calls).start()


async def campaign_with_list(center: CallCenter, numbers: list[str], **settings: Any
                             ) -> Campaign:
    chosen = {"name": "renewals", "mode": CampaignMode.PROGRESSIVE, "queue": "sales",
              "caller_id": OUR_NUMBER, "default_region": "US",
              "hours": {"mon-sun": ["00:00-23:59"]}, "skip_holidays": False,
              "ring_seconds": 15, **settings}
    campaign = await center.campaigns.add(Campaign(**chosen))
    text = "phone,name\n" + "".join(f"{n},Customer {i}\n" for i, n in enumerate(numbers))
    upload = read_call_list(io.BytesIO(text.encode()), ListFormat.CSV,
                            ColumnMapping(phone="phone", name="name"), "US")
    await CallLists(session_factory(center.engine), center.clock).import_list(
        campaign.name, "first", upload.outcomes, upload.summary)
    return campaign


async def running_campaign(center: CallCenter, numbers: list[str], **settings: Any
                           ) -> Campaign:
    campaign = await campaign_with_list(center, numbers, **settings)
    return await center.campaigns.set_state(campaign.name, CampaignState.RUNNING, "test")


async def nailed_up(center: CallCenter, agent_id: str, stay_ms: int = 60_000) -> SippProcess:
    """The agent's phone dials *50 and stays on the line (``stay_ms`` at most): ready."""
    phone = agent_dials(center, agent_id, None, "*50",
                        CallerPlan(hangup_after_ms=stay_ms, max_call_ms=stay_ms + 30_000))
    await until(lambda: center.desk.nailed_channel(agent_id) is not None,
                f"{agent_id}'s nailed-up channel is known")
    await until(lambda: center.acd.acd.agent_state(agent_id) is AgentState.READY,
                f"{agent_id} ready")
    return phone


async def attempts_settle(center: CallCenter, count: int,
                          done: Callable[[list[dict[str, Any]]], bool] | None = None,
                          timeout: float = 90) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    async def settled() -> bool:
        found[:] = await center.attempts.attempts("renewals")
        ended = [a for a in found if a["outcome"] is not None]
        return len(ended) >= count and (done is None or done(found))

    try:
        await until(settled, f"{count} attempts ended", timeout)
    except AssertionError as exc:
        seen = Counter(a["outcome"] or "in flight" for a in found)
        campaign = await center.campaigns.get("renewals")
        raise AssertionError(f"{exc}: {len(found)} placed, {dict(seen)}; campaign "
                             f"{campaign.state.value} ({campaign.state_reason}); agents "
                             f"{[(v.agent_id, v.state.value) for v in center.acd.agents()]}"
                             ) from None
    return sorted(found, key=lambda a: a["id"])


async def test_a_progressive_campaign_joins_each_answer_to_the_nailed_up_agent(tmp_path):
    agent = phone_agent("agent1", free_port(), queues=["sales"], password="agent1-secret",
                        logged_in=False)
    carrier_port = free_port()
    numbers = ["+12025550101", "+12025550102", "+12025550103"]
    async with dialing_center(tmp_path, carrier_port, [agent]) as center:
        customers = carrier(carrier_port, AgentPlan(answer_after_ms=300, hangup_after_ms=2500),
                            calls=len(numbers))
        nailed = await nailed_up(center, "agent1")
        live = center.events.subscribe(frozenset({"campaign"}))
        await running_campaign(center, numbers)
        attempts = await attempts_settle(center, len(numbers))
        await finished(customers, timeout=60)
        events = [event.data for event in [await live.get(0) for _ in range(live.pending)]]
        await center.writer.flush(10)
        records = [r for r in (await center.calls.list(limit=50))[0]
                   if r.direction is Direction.OUTBOUND]
        nailed.stop()

    assert sorted(a["number"] for a in attempts) == numbers
    assert {(a["outcome"], a["agent_id"], a["abandoned"]) for a in attempts} == {
        ("human", "agent1", False)}, attempts
    by_attempt = {r.campaign_attempt_id: r for r in records}
    assert set(by_attempt) == {a["id"] for a in attempts}
    # The agent's screen learns each call as it connects, with the attempt to dispose of.
    connected = [e for e in events if e["change"] == "connected"]
    assert sorted((e["attempt_id"], e["agent_id"], e["number"]) for e in connected) == sorted(
        (a["id"], "agent1", a["number"]) for a in attempts)
    assert {e["name"] for e in connected} == {"Customer 0", "Customer 1", "Customer 2"}
    ended = [e["attempt_id"] for e in events if e["change"] == "call_ended"]
    assert sorted(ended) == sorted(a["id"] for a in attempts)
    for attempt in attempts:
        record = by_attempt[attempt["id"]]
        assert (record.campaign, record.caller_number, record.agent_id) == (
            "renewals", attempt["number"], "agent1")
        assert record.call_id == attempt["call_id"]
        assert record.talk_seconds is not None and record.talk_seconds > 1.5, record


async def test_busy_numbers_are_retried_later_and_no_agent_pauses_the_campaign(tmp_path):
    agent = phone_agent("agent1", free_port(), queues=["sales"], password="agent1-secret",
                        logged_in=False)
    carrier_port = free_port()
    numbers = ["+12025550111", "+12025550112"]
    async with dialing_center(tmp_path, carrier_port, [agent]) as center:
        busy = carrier(carrier_port, AgentPlan(busy=True), calls=len(numbers))
        nailed = await nailed_up(center, "agent1")
        await running_campaign(center, numbers)
        attempts = await attempts_settle(center, len(numbers))
        await finished(busy, timeout=30)
        # The agent hangs up the nailed-up line and logs out: nobody can take an answer.
        nailed.stop()
        center.desk.request("agent1", "logout")

        async def paused() -> Campaign | None:
            campaign = await center.campaigns.get("renewals")
            return campaign if campaign.state is CampaignState.PAUSED else None

        campaign = await until(paused, "the campaign paused itself")
        placed = len(await center.attempts.attempts("renewals"))

    assert {(a["outcome"], a["agent_id"], a["answered_at"]) for a in attempts} == {
        ("busy", None, None)}, [(a["outcome"], a["hangup_cause"]) for a in attempts]
    assert sorted(a["number"] for a in attempts) == numbers
    # Busy numbers wait for their retry delay (15 min): nothing was dialled twice.
    assert placed == len(numbers)
    assert campaign.state_reason == "dialer: no agent of queue sales is logged in"


async def test_an_answer_no_agent_takes_within_2_s_hears_the_safe_harbor_message(tmp_path):
    # A ring-mode agent whose phone rings 5 s before it answers: too late for the rule.
    agent_port, carrier_port = free_port(), free_port()
    agent = phone_agent("agent1", agent_port, queues=["sales"])
    async with dialing_center(tmp_path, carrier_port, [agent]) as center:
        phone = agent_phone("agent1", agent_port, AgentPlan(answer_after_ms=5000))
        customer = carrier(carrier_port, AgentPlan(answer_after_ms=300), calls=1)
        await until(lambda: center.acd.acd.agent_state("agent1") is AgentState.READY,
                    "agent1 ready")
        await running_campaign(center, ["+12025550121"])
        [attempt] = await attempts_settle(center, 1)
        heard = await finished(customer, timeout=60)
        figures = await center.dialer.figures("renewals")

    assert (attempt["outcome"], attempt["abandoned"], attempt["agent_id"]) == (
        "dropped", True, None), attempt
    assert heard.ended_by == "them", heard.describe()  # we hung up, after the message
    at = {event.name: event.at_ms for event in heard.events}
    # Answered, 2 s for an agent, then the whole message (the carrier's clock; margin for
    # the AMI and FastAGI round trips).
    listened = (at["remote-bye"] - at["answered"]) / 1000
    assert 2 + prompt_seconds("safe-harbor") - 0.5 < listened < 2 + prompt_seconds(
        "safe-harbor") + 3, listened
    assert phone.events_so_far()[0].name == "invite"
    assert (figures["abandoned_today"], figures["live_answers_today"]) == (1, 1)
    assert figures["abandon_percent_today"] == 100.0


async def test_an_answering_machine_gets_the_campaign_s_message_after_its_greeting(tmp_path):
    plan = CarrierPlan({"+12025550131": Behaviour.MACHINE})
    carrier_port = free_port()
    agent = phone_agent("agent1", free_port(), queues=["sales"], password="agent1-secret",
                        logged_in=False)
    async with dialing_center(tmp_path, carrier_port, [agent]) as center:
        with Carrier(plan, port=carrier_port) as carrier:
            nailed = await nailed_up(center, "agent1")
            await running_campaign(center, list(plan.numbers), amd=True,
                                   machine_action=MachineAction.LEAVE_MESSAGE)
            [attempt] = await attempts_settle(center, 1)
            [call] = await carrier.wait_for_calls(1, timeout=60)
            nailed.stop()

    assert (attempt["outcome"], attempt["amd_status"], attempt["agent_id"]) == (
        "machine", "MACHINE", None), attempt
    assert attempt["hangup_cause"] == "machine: leave_message"
    # We hung up, after the greeting and the beep, then the whole message.
    assert call.ended_by == "caller"
    message_ms = prompt_seconds("campaign-machine-message") * 1000
    assert call.talk_ms is not None and call.talk_ms > GREETING_MS + message_ms, call
