"""The call timeline on real calls: Asterisk 22, SIPp phones, the whole service.

A caller goes through the IVR (the welcome prompt, then presses 2 for support), waits in the
queue while the only support agent is paused for a known time, hears that agent's phone ring
for a known time, talks with them; the agent's SIPp phone puts the caller on hold for a known
time (a re-INVITE with a=sendonly, then a=sendrecv) and hangs up later; the queue's wrap-up
follows. GET /api/calls/{call_id}/timeline then shows each segment as long as the phones (and
the test's own pause) made it, to the second, and the segments add up to the call.

Then transfers (a blind transfer's wait in its target, an attended transfer's consult) and
the post-call survey, each segment against the phones' own clocks.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from callcenter.app import CallCenter
from callcenter.core.acd import AgentState
from callcenter.core.records import HoldBy
from callcenter.core.report_contributions import QUEUE_TABLE
from callcenter.core.report_periods import bucket_of
from callcenter.features.accounts.store import Role
from callcenter.features.agent_transfers.service import TransferTarget
from tests.support.asterisk import phone_agent
from tests.support.calls import (
    MENU_DIGIT_MS,
    agent_phone,
    call_center,
    caller,
    finished,
    prompt_seconds,
    the_only_closed_call,
    until,
)
from tests.support.sipp import AgentPlan, CallerPlan, SippResult, free_port
from tests.support.web import bearer_headers

pytestmark = pytest.mark.asterisk

WRAP_UP_S = 5  # the support queue's wrap-up
QUEUES = ({"name": "sales"}, {"name": "support", "wrap_up": WRAP_UP_S}, {"name": "operator"})
WAIT_S = 4.0  # the caller waits this long in the queue: the agent is paused until then
RING_MS = 2_000  # the agent's phone rings this long, then answers
HOLD_AT_MS, HOLD_MS = 3_000, 4_000  # after answering, the agent holds the caller this long
TALK_MS = 11_000  # after answering, the agent hangs up (the hold included)
TO_THE_SECOND = 1.0


def at(result: SippResult, name: str) -> float:
    """When the phone logged ``name``, in seconds of its own clock."""
    times = {event.name: event.at_ms for event in result.events}
    assert name in times, result.describe()
    return times[name] / 1000


async def timeline_of(center: CallCenter, call_id: str) -> dict[str, Any]:
    headers = await bearer_headers(center.accounts, [Role.SUPERVISOR], username="floor")
    service = center.settings.service
    url = f"http://{service.http_host}:{service.http_port}/api/calls/{call_id}/timeline"
    async with aiohttp.ClientSession(headers=headers) as http, http.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def test_ivr_wait_ring_talk_hold_and_wrap_up_last_what_the_phones_did(tmp_path):
    port = free_port()
    agents = [phone_agent("agent1", port, queues=["support"])]
    async with call_center(tmp_path, agents, queues=QUEUES) as center:
        await center.agent_admin.change_state("agent1", "paused", reason="break")
        phone = agent_phone("agent1", port, AgentPlan(
            answer_after_ms=RING_MS, hold=(HOLD_AT_MS, HOLD_MS), hangup_after_ms=TALK_MS))
        call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),), max_call_ms=60_000))
        queued = await until(lambda: next((r for r in center.ledger.open_calls()
                                           if r.queued_at is not None), None),
                             "the caller is in the queue")
        await asyncio.sleep(WAIT_S)
        readied_at = center.clock.now()
        await center.agent_admin.change_state("agent1", "ready")
        caller_result, agent_result = await asyncio.gather(finished(call), finished(phone))
        record = await the_only_closed_call(center)
        # The wrap-up ends by the queue's timer; its end is logged with the agent's states.
        await until(lambda: center.acd.acd.agent("agent1").state is AgentState.READY,
                    "agent1's wrap-up ended", timeout=WRAP_UP_S + 10)
        await center.desk.flush()
        body = await timeline_of(center, record.call_id)
        assert record.queued_at is not None
        bucket = bucket_of(record.queued_at)
        queue_rows = await center.report_aggregates.read(QUEUE_TABLE, bucket, bucket + 900,
                                                         only={"queue": ["support"]})

    assert record.call_id == queued.call_id
    expected = [("setup", None), ("ivr", None), ("waiting", None), ("ringing", "agent1"),
                ("talk", "agent1"), ("hold", "agent1"), ("talk", "agent1")]
    # The agent's BYE ends their talk; the caller's channel hangs up a moment later ("after").
    segments = [(s["kind"], s["agent"]) for s in body["segments"]]
    assert segments in (expected, [*expected, ("after", None)]), body
    seconds = {s["kind"]: s["seconds"] for s in body["segments"] if s["kind"] != "talk"}
    talk_before, talk_after = (s["seconds"] for s in body["segments"] if s["kind"] == "talk")
    assert seconds.get("after", 0) < 0.5, body
    # The caller's phone: the IVR answered it, it pressed 2 after MENU_DIGIT_MS.
    assert seconds["setup"] < TO_THE_SECOND, body
    assert abs(seconds["ivr"] - MENU_DIGIT_MS / 1000) < TO_THE_SECOND, body
    # The queue: from the caller's arrival to the agent's ring, the pause the test made.
    assert record.queued_at is not None
    assert abs(seconds["waiting"] - (readied_at - record.queued_at)) < 0.5, body
    assert abs(seconds["waiting"] - WAIT_S) < TO_THE_SECOND, body
    # The agent's phone: rang, answered, held, took off hold, hung up, by its own clock.
    rang = at(agent_result, "answered") - at(agent_result, "invite")
    held = at(agent_result, "unheld") - at(agent_result, "held")
    talked = at(agent_result, "local-bye") - at(agent_result, "answered")
    assert abs(rang - RING_MS / 1000) < 0.5 and abs(held - HOLD_MS / 1000) < 0.5
    assert abs(seconds["ringing"] - rang) < TO_THE_SECOND, (body, rang)
    assert abs(seconds["hold"] - held) < TO_THE_SECOND, (body, held)
    assert abs(talk_before + seconds["hold"] + talk_after - talked) < TO_THE_SECOND, (
        body, talked)
    assert abs(talk_before - HOLD_AT_MS / 1000) < TO_THE_SECOND, body
    # The record keeps the hold, with Asterisk's times, as the agent's.
    [hold] = record.holds
    assert (hold.held_by, hold.agent_id) == (HoldBy.AGENT, "agent1")
    assert hold.ended_at is not None and abs(hold.ended_at - hold.started_at - held) < 0.5
    # The segments add up to the call, and the call to what the caller's phone lived.
    assert sum(s["seconds"] for s in body["segments"]) == pytest.approx(body["seconds"],
                                                                        abs=0.01)
    lived = at(caller_result, "remote-bye") - at(caller_result, "answered")
    assert record.answered_at is not None and record.ended_at is not None
    assert abs((record.ended_at - record.answered_at) - lived) < TO_THE_SECOND, (record, lived)
    # The caller came in on the demo's trunk ("anonymous"): billable for what their phone lived.
    [leg] = body["trunk_legs"]
    assert (leg["kind"], leg["direction"], leg["trunk"]) == ("caller", "inbound", "anonymous")
    assert abs(leg["billable_seconds"] - lived) < TO_THE_SECOND, (leg, lived)
    # After the call: agent1's wrap-up, the queue's configured length, from their leg's end.
    [wrap_up] = body["wrap_ups"]
    assert (wrap_up["kind"], wrap_up["agent"], wrap_up["ongoing"]) == ("wrap_up", "agent1",
                                                                       False)
    assert abs(wrap_up["seconds"] - WRAP_UP_S) < 0.5, wrap_up
    assert wrap_up["start"] >= body["segments"][-1]["start"]
    # The queue report counts that very wrap-up for the call's queue: ACW and AHT have it.
    [support] = queue_rows
    assert (support["handled"], support["wrapped_calls"]) == (1, 1), support
    assert abs(support["wrap_up_ms"] - wrap_up["seconds"] * 1000) <= 1, (support, wrap_up)


def on_call_with(center: CallCenter, agent_id: str) -> str | None:
    view = center.acd.acd.agent(agent_id)
    return view.call_id if view.state is AgentState.ON_CALL else None


def lasting(body: dict[str, Any]) -> list[tuple[str, str | None]]:
    """The segments that last a moment at least (not the milliseconds between two steps of
    the service, e.g. a caller queued a few ms before a free agent's phone rings)."""
    return [(s["kind"], s["agent"]) for s in body["segments"] if s["seconds"] >= 0.3]


def seconds_of(body: dict[str, Any], kind: str, agent: str | None = None) -> float:
    [found] = [s["seconds"] for s in body["segments"]
               if s["kind"] == kind and s["agent"] == agent]
    return found


async def test_a_blind_transfer_waits_in_the_target_then_rings_and_talks_there(tmp_path):
    port1, port2 = free_port(), free_port()
    agents = [phone_agent("agent1", port1, queues=["support"]),
              phone_agent("agent2", port2, queues=["sales"])]
    async with call_center(tmp_path, agents) as center:  # no wrap-up in these queues
        first = agent_phone("agent1", port1, AgentPlan(answer_after_ms=500))
        second = agent_phone("agent2", port2, AgentPlan(answer_after_ms=RING_MS,
                                                        hangup_after_ms=5_000))
        call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),), max_call_ms=60_000))
        call_id = await until(lambda: on_call_with(center, "agent1"), "agent1 answered", 40)
        await asyncio.sleep(3)
        await center.transfers.transfer(call_id, TransferTarget(agent="agent2"), "blind")
        first_result, second_result, caller_result = await asyncio.gather(
            finished(first), finished(second), finished(call))
        record = await the_only_closed_call(center)
        body = await timeline_of(center, call_id)

    assert lasting(body) == [("ivr", None), ("ringing", "agent1"), ("talk", "agent1"),
                             ("ringing", "agent2"), ("talk", "agent2")], body
    # Between agent1's leg ending and agent2's phone ringing: the transfer's own wait.
    [moving] = [s for s in body["segments"] if s["kind"] == "transfer"]
    assert (moving["agent"], moving["seconds"] < 1.0) == ("agent2", True), body
    # Each phone's own measure: agent1 answered after 0.5 s and talked until the transfer;
    # agent2 rang RING_MS and talked 5 s.
    assert abs(seconds_of(body, "ringing", "agent1")
               - (at(first_result, "answered") - at(first_result, "invite"))) < TO_THE_SECOND
    assert abs(seconds_of(body, "talk", "agent1")
               - (at(first_result, "remote-bye") - at(first_result, "answered"))) < 0.5, body
    assert abs(seconds_of(body, "ringing", "agent2")
               - (at(second_result, "answered") - at(second_result, "invite"))) < 0.5, body
    assert abs(seconds_of(body, "talk", "agent2")
               - (at(second_result, "local-bye") - at(second_result, "answered"))) < 0.5, body
    assert sum(s["seconds"] for s in body["segments"]) == pytest.approx(body["seconds"],
                                                                        abs=0.01)
    lived = at(caller_result, "remote-bye") - at(caller_result, "answered")
    assert record.answered_at is not None and record.ended_at is not None
    assert abs((record.ended_at - record.answered_at) - lived) < TO_THE_SECOND, (record, lived)
    assert body["wrap_ups"] == []  # neither queue has a wrap-up


async def test_an_attended_transfer_is_a_consult_between_the_two_agents_talks(tmp_path):
    port1, port2 = free_port(), free_port()
    agents = [phone_agent("agent1", port1, queues=["support"]),
              phone_agent("agent2", port2, queues=["sales"])]
    async with call_center(tmp_path, agents, queues=QUEUES) as center:
        # agent1 talks, consults agent2 and hangs up 10 s after answering: the handover.
        first = agent_phone("agent1", port1, AgentPlan(answer_after_ms=500,
                                                       hangup_after_ms=10_000))
        second = agent_phone("agent2", port2, AgentPlan(answer_after_ms=1_000))
        call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),),
                                         hangup_after_ms=MENU_DIGIT_MS + 20_000))
        call_id = await until(lambda: on_call_with(center, "agent1"), "agent1 answered", 40)
        await asyncio.sleep(3)
        await center.transfers.transfer(call_id, TransferTarget(agent="agent2"), "attended")
        first_result, second_result, caller_result = await asyncio.gather(
            finished(first), finished(second), finished(call))
        record = await the_only_closed_call(center)
        await until(lambda: center.acd.acd.agent("agent1").state is AgentState.READY,
                    "agent1's wrap-up ended", timeout=WRAP_UP_S + 10)
        await center.desk.flush()
        body = await timeline_of(center, call_id)

    assert lasting(body) == [("ivr", None), ("ringing", "agent1"), ("talk", "agent1"),
                             ("consult", "agent1"), ("talk", "agent2")], body
    consult = seconds_of(body, "consult", "agent1")
    # agent1's phone: from its answer to its hang-up, it talked with the caller, then consulted.
    agent1_leg = at(first_result, "local-bye") - at(first_result, "answered")
    assert abs(seconds_of(body, "talk", "agent1") + consult - agent1_leg) < TO_THE_SECOND, body
    # agent2's phone: rang from the consult's start; from then to the caller's hang-up.
    agent2_leg = at(second_result, "remote-bye") - at(second_result, "invite")
    assert abs(consult + seconds_of(body, "talk", "agent2") - agent2_leg) < TO_THE_SECOND, body
    assert sum(s["seconds"] for s in body["segments"]) == pytest.approx(body["seconds"],
                                                                        abs=0.01)
    lived = at(caller_result, "local-bye") - at(caller_result, "answered")
    assert record.answered_at is not None and record.ended_at is not None
    assert abs((record.ended_at - record.answered_at) - lived) < TO_THE_SECOND, (record, lived)
    # agent1's wrap-up (support's) follows their leg, which ended at the handover; agent2
    # took the call as a sales agent, and sales has no wrap-up.
    [wrapped] = body["wrap_ups"]
    assert wrapped["agent"] == "agent1" and abs(wrapped["seconds"] - WRAP_UP_S) < 0.5, body


async def test_the_survey_after_the_talk_is_its_own_segment_to_the_end_of_the_call(tmp_path):
    """dialplans/selfservice.yaml: English (2), order tracking (2), "talk to a person" (2);
    the agent talks 2 s and hangs up; csat.yaml asks two questions, the caller answers 4 and
    1 (yes), is thanked and hung up on (as tests/integration/test_ivr_selfservice.py)."""
    port = free_port()
    agents = [phone_agent("agent2", port, queues=["support"])]
    talk_ms = 2000
    survey_starts = 1.0 + 2.5 + 2.5 + 0.3 + talk_ms / 1000
    rate_at = survey_starts + prompt_seconds("survey-rate-1-5") + 1.0
    plan = CallerPlan(dtmf=((1000, "2"), (2500, "2"), (2500, "2"),
                            (int((rate_at - 6.0) * 1000), "4"), (2500, "1")),
                      max_call_ms=60_000)
    async with call_center(tmp_path, agents, service_ivr={"flow": "selfservice"}) as center:
        phone = agent_phone("agent2", port, AgentPlan(answer_after_ms=300,
                                                      hangup_after_ms=talk_ms))
        caller_result, agent_result = await asyncio.gather(finished(caller(center, plan)),
                                                           finished(phone))
        record = await the_only_closed_call(center)
        body = await timeline_of(center, record.call_id)

    assert [(a.question, a.answer) for a in record.survey_answers] == [
        ("agent-rating", "4"), ("problem-solved", "yes")]
    assert lasting(body) == [("ivr", None), ("ringing", "agent2"), ("talk", "agent2"),
                             ("survey", None)], body
    talk, survey = body["segments"][-2], body["segments"][-1]
    assert (talk["kind"], survey["kind"]) == ("talk", "survey") and talk["end"] == survey["start"]
    assert survey["end"] == body["ended_at"]  # the questions, then the thanks and goodbye
    assert abs(talk["seconds"] - (at(agent_result, "local-bye")
                                  - at(agent_result, "answered"))) < 0.5, body
    # The caller's phone: the survey's questions came after the talk; its last key pressed
    # inside the survey, which lasted until the caller was hung up on.
    pressed_yes = at(caller_result, "remote-bye") - at(caller_result, "dtmf 1")
    assert pressed_yes < survey["seconds"] < pressed_yes + prompt_seconds(
        "survey-rate-1-5") + prompt_seconds("survey-solved") + 6 + 2 * TO_THE_SECOND, body
    lived = at(caller_result, "remote-bye") - at(caller_result, "answered")
    assert record.answered_at is not None and record.ended_at is not None
    assert abs((record.ended_at - record.answered_at) - lived) < TO_THE_SECOND, (record, lived)
    assert sum(s["seconds"] for s in body["segments"]) == pytest.approx(body["seconds"],
                                                                        abs=0.01)


async def test_the_callers_own_hold_is_a_hold_of_the_talk_by_the_caller(tmp_path):
    """The caller's phone holds the call 3 s while talking with agent1 (who answers at once
    and hangs up 12 s later): a hold with no agent, as long as the caller's phone made it."""
    port = free_port()
    agents = [phone_agent("agent1", port, queues=["support"])]
    hold_at_ms = MENU_DIGIT_MS + 5_000  # agent1 answers about 1 s after the key
    async with call_center(tmp_path, agents) as center:
        phone = agent_phone("agent1", port, AgentPlan(answer_after_ms=500,
                                                      hangup_after_ms=12_000))
        call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),), max_call_ms=60_000,
                                         hold=(hold_at_ms, 3_000)))
        caller_result, agent_result = await asyncio.gather(finished(call), finished(phone))
        record = await the_only_closed_call(center)
        body = await timeline_of(center, record.call_id)

    assert lasting(body) == [("ivr", None), ("ringing", "agent1"), ("talk", "agent1"),
                             ("hold", None), ("talk", "agent1")], body
    held = at(caller_result, "unheld") - at(caller_result, "held")
    assert abs(held - 3) < 0.5, caller_result.describe()
    assert abs(seconds_of(body, "hold") - held) < TO_THE_SECOND, (body, held)
    [hold] = record.holds
    assert (hold.held_by, hold.agent_id) == (HoldBy.CALLER, None)
    talked = at(agent_result, "local-bye") - at(agent_result, "answered")
    talks = sum(s["seconds"] for s in body["segments"] if s["kind"] == "talk")
    assert abs(talks + seconds_of(body, "hold") - talked) < TO_THE_SECOND, (body, talked)
    assert sum(s["seconds"] for s in body["segments"]) == pytest.approx(body["seconds"],
                                                                        abs=0.01)
