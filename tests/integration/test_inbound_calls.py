"""Real calls, end to end: SIPp caller → Asterisk 22 → our IVR and ACD → SIPp agent → record.

Each test starts its own sandboxed Asterisk instance on free ports and the whole service
in-process; the SIP phones are real SIPp processes. Times are checked against what the SIPp
phones themselves measured.
"""

from __future__ import annotations

import asyncio
import shutil

import pytest

from callcenter.asterisk.ami import AmiClient
from callcenter.asterisk.events import AmiEvent, MusicOnHoldStart
from callcenter.asterisk.sandbox import Sandbox
from callcenter.config import REPO_ROOT
from callcenter.core.records import AttemptOutcome, Disposition, HangupBy
from tests.support.asterisk import phone_agent
from tests.support.calls import (
    DEMO_HOURS_OPEN,
    MENU_DIGIT_MS,
    agent_phone,
    call_center,
    caller,
    finished,
    ivr_inputs,
    prompt_seconds,
    talk_seconds_measured_by,
    the_only_closed_call,
)
from tests.support.sipp import AgentPlan, CallerPlan, free_port
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.asterisk

HOLD_SECONDS = prompt_seconds("please-hold")  # said only when no agent is free at once


async def test_an_idle_agent_is_rung_at_once_and_the_caller_is_not_told_to_hold(tmp_path):
    """Measured by the phones: the agent picks up at once and hangs up after ``talk_ms``; the
    caller's own clock hears that hang-up, less the talk, sooner after the key than the
    please-hold prompt alone lasts. (Before, every caller heard it before any agent rang.)"""
    port = free_port()
    agents = [phone_agent("agent2", port, queues=["support"])]
    async with call_center(tmp_path, agents) as center:
        talk_ms = 500
        phone = agent_phone("agent2", port, AgentPlan(answer_after_ms=0, hangup_after_ms=talk_ms))
        call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),), max_call_ms=20_000))
        caller_result, agent_result = await asyncio.gather(finished(call), finished(phone))
        record = await the_only_closed_call(center)
        log = Sandbox(center.settings).messages_log.read_text()

    heard = {event.name: event.at_ms for event in caller_result.events}
    assert "dtmf 2" in heard and "remote-bye" in heard, caller_result.describe()
    agent_talk_ms = talk_seconds_measured_by(agent_result) * 1000
    key_to_agent_ms = heard["remote-bye"] - heard["dtmf 2"] - agent_talk_ms
    assert key_to_agent_ms < HOLD_SECONDS * 1000, (key_to_agent_ms, caller_result.describe(),
                                                   agent_result.describe())
    assert "callcenter/please-hold" not in log
    assert (record.agent_id, record.hangup_by) == ("agent2", HangupBy.AGENT)
    assert record.wait_seconds is not None and record.wait_seconds < HOLD_SECONDS, record


async def test_caller_presses_2_talks_to_a_support_agent_and_the_record_says_so(
        tmp_path, empty_db_url):
    """On SQLite and on a real PostgreSQL (``empty_db_url`` runs this test on both)."""
    port = free_port()
    agents = [phone_agent("agent2", port, queues=["support"])]
    env = {"CALLCENTER_DATABASE__URL": empty_db_url}
    async with call_center(tmp_path, agents, env=env) as center:
        phone = agent_phone("agent2", port, AgentPlan(answer_after_ms=1000))
        talk_ms = 3000
        hangup_ms = MENU_DIGIT_MS + 1000 + 1500 + talk_ms  # rung at once, answers after 1 s
        call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),),
                                         hangup_after_ms=hangup_ms))
        caller_result, agent_result = await asyncio.gather(finished(call), finished(phone))
        record = await the_only_closed_call(center)

    assert caller_result.ended_by == "us"
    assert record.disposition is Disposition.ANSWERED
    assert record.queue == "support"
    assert record.agent_id == "agent2"
    assert record.hangup_by is HangupBy.CALLER
    assert record.caller_number == "5551234"
    assert record.dialed_number == center.settings.ivr.number
    assert record.protocol is not None and len(record.protocol) == 20 and record.protocol.isdigit()
    assert ivr_inputs(record) == [DEMO_HOURS_OPEN, ("welcome", None), ("main_menu", "2")]
    real_talk = talk_seconds_measured_by(agent_result)
    assert real_talk > 2
    assert abs(record.talk_seconds - real_talk) < 1.0, (record.talk_seconds, real_talk)
    assert [(a.agent_id, a.outcome) for a in record.attempts] == [
        ("agent2", AttemptOutcome.ANSWERED)]
    # The agent was rung at once and answered after ringing 1 s: no "please hold" first.
    assert record.wait_seconds is not None and 0.5 < record.wait_seconds < HOLD_SECONDS, record
    assert record.started_at <= record.answered_at <= record.agent_answered_at < record.ended_at


async def test_a_caller_who_presses_nothing_hears_the_menu_three_times_then_reaches_the_operator(
        tmp_path):
    port = free_port()
    agents = [phone_agent("agent1", port, queues=["operator"])]
    async with call_center(tmp_path, agents) as center:
        retries = center.flows.get("main").nodes["main_menu"].retries
        phone = agent_phone("agent1", port, AgentPlan(answer_after_ms=500, hangup_after_ms=1500))
        call = caller(center, CallerPlan(max_call_ms=120_000))
        caller_result, _ = await asyncio.gather(finished(call, 150), finished(phone, 150))
        record = await the_only_closed_call(center)

    assert caller_result.ended_by == "them"
    assert ivr_inputs(record) == ([DEMO_HOURS_OPEN, ("welcome", None)]
                                  + [("main_menu", "timeout")] * retries)
    assert record.queue == "operator"
    assert record.agent_id == "agent1"
    assert record.disposition is Disposition.ANSWERED
    assert record.hangup_by is HangupBy.AGENT


async def test_a_caller_waiting_with_no_agent_ready_who_hangs_up_is_abandoned_in_queue(
        tmp_path, empty_db_url):
    agents = [phone_agent("agent3", free_port(), queues=["sales"], logged_in=False)]
    env = {"CALLCENTER_DATABASE__URL": empty_db_url}
    async with call_center(tmp_path, agents, env=env) as center:
        events: list[AmiEvent] = []
        a = center.settings.asterisk
        watcher = AmiClient(a.host, a.ami_port, a.ami_username, a.ami_secret,
                            on_event=events.append)
        await watcher.start()
        await watcher.wait_ready(30)
        wait_ms = 5000
        call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "1"),),
                                         hangup_after_ms=MENU_DIGIT_MS + wait_ms))
        caller_result = await finished(call)
        record = await the_only_closed_call(center)
        await watcher.stop()

    music = [e for e in events if isinstance(e, MusicOnHoldStart)]
    assert [e.channel for e in music] == [record.channel], "the caller heard no music on hold"

    at = {event.name: event.at_ms for event in caller_result.events}
    real_wait = (at["local-bye"] - at["dtmf 1"]) / 1000
    assert record.disposition is Disposition.ABANDONED_IN_QUEUE
    assert record.queue == "sales"
    assert record.hangup_by is HangupBy.CALLER
    assert record.agent_id is None and record.attempts == []
    assert abs(record.wait_seconds - real_wait) < 1.0, (record.wait_seconds, real_wait)


async def test_when_the_first_agent_does_not_answer_the_second_one_gets_the_call(tmp_path):
    port1, port2 = free_port(), free_port()
    agents = [phone_agent("agent1", port1, queues=["support"]),
              phone_agent("agent2", port2, queues=["support"])]
    async with call_center(tmp_path, agents) as center:
        silent = agent_phone("agent1", port1, AgentPlan(answer_after_ms=None))
        answering = agent_phone("agent2", port2,
                                AgentPlan(answer_after_ms=500, hangup_after_ms=2000))
        call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),)))
        await asyncio.gather(finished(call), finished(silent), finished(answering))
        record = await the_only_closed_call(center)

    assert [(a.agent_id, a.outcome) for a in record.attempts] == [
        ("agent1", AttemptOutcome.NO_ANSWER), ("agent2", AttemptOutcome.ANSWERED)]
    first = record.attempts[0]
    assert 3 <= first.ended_at - first.started_at <= 6  # the queue's 4 s ring timeout
    assert record.agent_id == "agent2"
    assert record.disposition is Disposition.ANSWERED
    assert record.hangup_by is HangupBy.AGENT


async def test_ami_cut_mid_call_the_service_reconnects_and_the_record_is_complete(tmp_path):
    port = free_port()
    agents = [phone_agent("agent2", port, queues=["support"])]
    proxy = TcpProxy("127.0.0.1", 0)
    async with call_center(tmp_path, agents, ami_via=proxy) as center:
        phone = agent_phone("agent2", port, AgentPlan(answer_after_ms=500))
        hangup_ms = MENU_DIGIT_MS + 8000
        call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),), hangup_after_ms=hangup_ms))
        # Cut AMI once the agent has answered, while the two are talking.
        while not any(r.agent_answered_at for r in center.ledger.open_calls()):
            assert call.running(), "the call ended before the agent answered"
            await asyncio.sleep(0.1)
        connections_before = proxy.connections
        proxy.cut()
        caller_result, agent_result = await asyncio.gather(finished(call), finished(phone))
        record = await the_only_closed_call(center)
        for _ in range(100):
            if center.ami.connected and proxy.connections > connections_before:
                break
            await asyncio.sleep(0.1)
        assert center.ami.connected, "the AMI client did not reconnect"

    assert caller_result.ended_by == "us"
    assert record.disposition is Disposition.ANSWERED
    assert record.agent_id == "agent2"
    assert record.hangup_by is HangupBy.CALLER
    real_talk = talk_seconds_measured_by(agent_result)
    assert abs(record.talk_seconds - real_talk) < 1.0, (record.talk_seconds, real_talk)


async def test_a_caller_who_hangs_up_during_the_greeting_leaves_a_closed_record(tmp_path,
                                                                               caplog):
    agents = [phone_agent("agent1", free_port(), queues=["operator"])]
    async with call_center(tmp_path, agents) as center:
        call = caller(center, CallerPlan(hangup_after_ms=1200))
        await finished(call)
        record = await the_only_closed_call(center)

    assert record.disposition is Disposition.ABANDONED_IN_IVR
    assert record.hangup_by is HangupBy.CALLER
    assert ivr_inputs(record) == [DEMO_HOURS_OPEN, ("welcome", None)]
    assert record.queue is None and record.ended_at is not None
    assert 0.5 < record.ended_at - record.answered_at < 3
    problems = [r for r in caplog.records
                if r.levelname in ("ERROR", "CRITICAL") and r.name.startswith("callcenter")]
    assert problems == [], [r.getMessage() for r in problems]


async def test_a_prompt_asterisk_cannot_play_is_logged_and_skipped_and_the_call_goes_on(
        tmp_path, caplog):
    # The service's prompts and flow know a greeting that Asterisk does not have.
    prompts, flows = tmp_path / "prompts", tmp_path / "flows"
    shutil.copytree(REPO_ROOT / "ivr_prompts", prompts)
    shutil.copy(prompts / "en" / "welcome.wav", prompts / "en" / "not-in-asterisk.wav")
    shutil.copytree(REPO_ROOT / "dialplans", flows)  # main and the flows it hands over to
    demo = (REPO_ROOT / "dialplans" / "main.yaml").read_text()
    (flows / "main.yaml").write_text(demo.replace("prompt: welcome ", "prompt: not-in-asterisk "))
    port = free_port()
    agents = [phone_agent("agent2", port, queues=["support"])]
    service_ivr = {"prompts_dir": str(prompts), "dialplans_dir": str(flows)}
    async with call_center(tmp_path, agents, service_ivr=service_ivr) as center:
        # The sounds folder is shared by test instances: make sure nobody left the file there.
        for leftover in Sandbox(center.settings).prompt_folder().glob("not-in-asterisk.*"):
            leftover.unlink()
        phone = agent_phone("agent2", port, AgentPlan(answer_after_ms=500, hangup_after_ms=1500))
        call = caller(center, CallerPlan(dtmf=((1500, "2"),)))
        await asyncio.gather(finished(call), finished(phone))
        record = await the_only_closed_call(center)

    assert record.disposition is Disposition.ANSWERED
    assert record.agent_id == "agent2"
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("prompt callcenter/not-in-asterisk could not be played" in m
               and record.channel in m for m in errors), errors
