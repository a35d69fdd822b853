"""Supervisors and transfers on a real Asterisk 22, with SIPp phones.

A caller presses 2 (support) and agent1's phone answers. Then either a supervisor's phone
(an agent endpoint of its own, logged out of the ACD) is called to listen in, or the call is
transferred blind to agent2 or to the sales queue, whose phone rings and answers while
agent1's leg is hung up. The services are wired as ``callcenter/app.py`` wires them; if the
composition root does not route the ``transfer`` FastAGI script yet, the test adds the route.
"""

from __future__ import annotations

import asyncio

import pytest

from callcenter.app import CallCenter
from callcenter.asterisk.ami import AmiClient
from callcenter.asterisk.events import AmiEvent, CoreShowChannel, OtherEvent
from callcenter.core.acd import AgentState
from callcenter.core.records import AttemptOutcome, CallRecord, Disposition, HangupBy
from callcenter.features.agent_transfers.service import CallTransfers, TransferTarget
from callcenter.features.supervision.dialplan import SpyMode
from callcenter.features.supervision.service import Supervision
from tests.support.ami_watch import ami_events
from tests.support.asterisk import phone_agent
from tests.support.calls import (
    MENU_DIGIT_MS,
    agent_dials,
    agent_phone,
    call_center,
    caller,
    finished,
    the_only_closed_call,
    until,
)
from tests.support.sipp import AgentPlan, CallerPlan, SippProcess, SippResult, free_port

pytestmark = pytest.mark.asterisk

ANSWER_MS = 500
CALLER_NUMBER = CallerPlan().caller_number
# The caller presses 2, hears "please hold", talks with agent1, is moved on, talks again and
# hangs up this long after the IVR answered.
CALLER_HANGS_UP_MS = MENU_DIGIT_MS + 22_000


def services(center: CallCenter) -> tuple[Supervision, CallTransfers]:
    """The two services as the composition root built them."""
    return center.supervision, center.transfers


async def agent_on_call(center: CallCenter, agent_id: str, call: SippProcess,
                        timeout: float = 30) -> str:
    """Wait until the ACD has ``agent_id`` talking; the call's id."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        view = center.acd.acd.agent(agent_id)
        if view.state is AgentState.ON_CALL and view.call_id is not None:
            return view.call_id
        assert call.running(), "the caller's call ended before the agent answered"
        assert asyncio.get_running_loop().time() < deadline, (
            f"{agent_id} is still {view.state.value} after {timeout} s")
        await asyncio.sleep(0.1)


async def ami_watcher(center: CallCenter, events: list[AmiEvent]) -> AmiClient:
    a = center.settings.asterisk
    watcher = AmiClient(a.host, a.ami_port, a.ami_username, a.ami_secret,
                        on_event=events.append)
    await watcher.start()
    await watcher.wait_ready(30)
    return watcher


async def closed_call_of(center: CallCenter, caller_number: str,
                         timeout: float = 15) -> CallRecord:
    """The stored, closed record of the call from ``caller_number``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        await center.writer.flush(timeout)
        records, _ = await center.calls.list()
        mine = [r for r in records if r.caller_number == caller_number and not r.is_open]
        if mine:
            return mine[0]
        assert asyncio.get_running_loop().time() < deadline, f"no closed record: {records}"
        await asyncio.sleep(0.2)


def other_events(events: list[AmiEvent], name: str) -> list[OtherEvent]:
    return [e for e in events if isinstance(e, OtherEvent) and e.name == name]


async def test_a_supervisor_phone_is_called_and_listens_to_the_agents_call(tmp_path):
    agent_port, supervisor_port = free_port(), free_port()
    agents = [phone_agent("agent1", agent_port, queues=["support"]),
              phone_agent("sup1", supervisor_port, queues=["operator"], logged_in=False)]
    async with call_center(tmp_path, agents) as center:
        supervision, _ = services(center)
        events: list[AmiEvent] = []
        watcher = await ami_watcher(center, events)
        agent = agent_phone("agent1", agent_port, AgentPlan(answer_after_ms=ANSWER_MS))
        supervisor = agent_phone("sup1", supervisor_port, AgentPlan(answer_after_ms=ANSWER_MS))
        call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),),
                                         hangup_after_ms=MENU_DIGIT_MS + 16_000))
        call_id = await agent_on_call(center, "agent1", call)
        started = await supervision.start("agent1", SpyMode.LISTEN, "sup1")
        caller_result, agent_result, supervisor_result = await asyncio.gather(
            finished(call), finished(agent), finished(supervisor))
        record = await the_only_closed_call(center)
        await watcher.stop()

    assert started.call_id == call_id
    assert supervisor_result.names() == ["invite", "answered", "remote-bye"], (
        supervisor_result.describe())  # the spy call ended with the agent's channel
    assert agent_result.names() == ["invite", "answered", "remote-bye"]
    assert caller_result.ended_by == "us"
    spying = other_events(events, "ChanSpyStart")
    assert spying, "ChanSpy never started"
    assert spying[0].headers["SpyeeChannel"].startswith("PJSIP/agent1-"), spying[0].headers
    # The spy is the Local channel that rang sup1's phone (so the ring leaves no call record).
    assert spying[0].headers["SpyerChannel"].startswith("Local/to-sup1@"), spying[0].headers
    assert record.agent_id == "agent1" and record.disposition is Disposition.ANSWERED


async def test_a_blind_transfer_to_another_agent_rings_and_connects_them(tmp_path):
    port1, port2 = free_port(), free_port()
    agents = [phone_agent("agent1", port1, queues=["support"]),
              phone_agent("agent2", port2, queues=["sales"])]
    async with call_center(tmp_path, agents) as center:
        _, transfers = services(center)
        first = agent_phone("agent1", port1, AgentPlan(answer_after_ms=ANSWER_MS))
        second = agent_phone("agent2", port2, AgentPlan(answer_after_ms=ANSWER_MS))
        call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),),
                                         hangup_after_ms=CALLER_HANGS_UP_MS))
        call_id = await agent_on_call(center, "agent1", call)
        await asyncio.sleep(1.5)  # a little talk first
        started = await transfers.transfer(call_id, TransferTarget(agent="agent2"))
        first_result = await finished(first)  # agent1's leg is hung up by the transfer
        assert await agent_on_call(center, "agent2", call) == call_id
        assert center.acd.acd.agent("agent1").state is not AgentState.ON_CALL
        caller_result, second_result = await asyncio.gather(finished(call), finished(second))
        record = await the_only_closed_call(center)

    assert started.from_agent == "agent1"
    assert first_result.names() == ["invite", "answered", "remote-bye"]
    assert second_result.names() == ["invite", "answered", "remote-bye"]
    assert caller_result.ended_by == "us"  # the caller talked to agent2 until hanging up
    assert [(a.agent_id, a.outcome) for a in record.attempts] == [
        ("agent1", AttemptOutcome.ANSWERED), ("agent2", AttemptOutcome.ANSWERED)]
    assert record.queue == "support"  # where the caller first waited (transfers: record.transfers)
    assert record.disposition is Disposition.ANSWERED
    assert record.hangup_by is HangupBy.CALLER


async def test_a_blind_transfer_to_a_queue_reaches_an_agent_of_that_queue(tmp_path):
    port1, port3 = free_port(), free_port()
    agents = [phone_agent("agent1", port1, queues=["support"]),
              phone_agent("agent3", port3, queues=["sales"])]
    async with call_center(tmp_path, agents) as center:
        _, transfers = services(center)
        first = agent_phone("agent1", port1, AgentPlan(answer_after_ms=ANSWER_MS))
        third = agent_phone("agent3", port3, AgentPlan(answer_after_ms=ANSWER_MS))
        call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),),
                                         hangup_after_ms=CALLER_HANGS_UP_MS))
        call_id = await agent_on_call(center, "agent1", call)
        await transfers.transfer(call_id, TransferTarget(queue="sales"))
        assert await agent_on_call(center, "agent3", call) == call_id
        caller_result, first_result, third_result = await asyncio.gather(
            finished(call), finished(first), finished(third))
        record = await the_only_closed_call(center)
        # agent1 went through wrap-up (0 s here) and is ready for the next caller.
        assert center.acd.acd.agent("agent1").state is AgentState.READY

    assert first_result.names() == ["invite", "answered", "remote-bye"]
    assert third_result.names() == ["invite", "answered", "remote-bye"]
    assert caller_result.ended_by == "us"
    assert [(a.agent_id, a.outcome) for a in record.attempts] == [
        ("agent1", AttemptOutcome.ANSWERED), ("agent3", AttemptOutcome.ANSWERED)]
    assert record.queue == "support"  # where the caller first waited
    assert record.disposition is Disposition.ANSWERED


async def test_a_nailed_up_agent_is_listened_to_and_hands_the_caller_on_staying_connected(
        tmp_path):
    port1, port2, supervisor_port = free_port(), free_port(), free_port()
    # agent1's phone has a static contact (so the ACD sees it reachable) and logs in nailed-up
    # by dialling *50 with its password; nothing listens on port1: it is never rung.
    agents = [phone_agent("agent1", port1, queues=["support"], logged_in=False,
                          password="agent1-secret"),
              phone_agent("agent2", port2, queues=["sales"]),
              phone_agent("sup1", supervisor_port, queues=["operator"], logged_in=False)]
    async with call_center(tmp_path, agents) as center:
        supervision, transfers = services(center)
        events: list[AmiEvent] = []
        watcher = await ami_watcher(center, events)
        nailed = agent_dials(center, "agent1", None, "*50",
                             CallerPlan(hangup_after_ms=45_000, max_call_ms=60_000))
        second = agent_phone("agent2", port2, AgentPlan(answer_after_ms=ANSWER_MS))
        supervisor = agent_phone("sup1", supervisor_port, AgentPlan(answer_after_ms=ANSWER_MS))
        deadline = asyncio.get_running_loop().time() + 30
        while center.desk.nailed_channel("agent1") is None:
            assert asyncio.get_running_loop().time() < deadline, "agent1 never got nailed up"
            await asyncio.sleep(0.1)
        call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),),
                                         hangup_after_ms=CALLER_HANGS_UP_MS))
        call_id = await agent_on_call(center, "agent1", call)
        await supervision.start("agent1", SpyMode.BARGE, "sup1")
        await until(lambda: other_events(events, "ChanSpyStart"),
                    "the supervisor's phone rings, answers and listens in")
        await transfers.transfer(call_id, TransferTarget(agent="agent2"))
        assert await agent_on_call(center, "agent2", call) == call_id
        caller_result, second_result = await asyncio.gather(finished(call), finished(second))
        record = await closed_call_of(center, CALLER_NUMBER)  # agent1's *50 is a call too
        assert nailed.running(), "the nailed-up agent's line dropped with the transfer"
        nailed_result, supervisor_result = await asyncio.gather(
            finished(nailed, 60), finished(supervisor, 60))
        await watcher.stop()

    assert nailed_result.names() == ["answered", "local-bye"], nailed_result.describe()
    # The supervisor stayed on agent1's line, which outlived the transferred call.
    assert supervisor_result.names() == ["invite", "answered", "remote-bye"]
    spying = other_events(events, "ChanSpyStart")
    assert spying and spying[0].headers["SpyeeChannel"].startswith("PJSIP/agent1-"), spying
    assert second_result.names() == ["invite", "answered", "remote-bye"]
    assert caller_result.ended_by == "us"
    assert [(a.agent_id, a.outcome) for a in record.attempts] == [
        ("agent1", AttemptOutcome.ANSWERED), ("agent2", AttemptOutcome.ANSWERED)]


# ------------------------------------------------------------------ no spying leg outlives it

SUPERVISOR_TALKS_MS = 4_000  # the supervisor answers, listens this long and hangs up
LEGS_GONE_S = 5  # how long Asterisk may take to tear down a session's legs


def supervision_leg(channel: CoreShowChannel, phone: str) -> bool:
    """A channel of a supervision session: the Local pair that rang ``phone`` (either half,
    wherever it runs), anything in the supervision contexts or running ChanSpy, or the
    supervisor's phone leg itself."""
    return ("@callcenter-supervision" in channel.channel
            or channel.context.startswith("callcenter-supervision")
            or channel.application == "ChanSpy"
            or channel.channel.startswith(f"PJSIP/{phone}-"))


async def supervision_legs(center: CallCenter, phone: str) -> list[str]:
    return [f"{c.channel} in {c.context}/{c.exten} running {c.application}({c.application_data})"
            for c in await center.ami.core_show_channels() if supervision_leg(c, phone)]


async def no_supervision_legs(center: CallCenter, phone: str, after: str) -> None:
    """Within LEGS_GONE_S, Asterisk has no channel left of ``phone``'s sessions."""
    deadline = asyncio.get_running_loop().time() + LEGS_GONE_S
    while legs := await supervision_legs(center, phone):
        assert asyncio.get_running_loop().time() < deadline, (
            f"{after}, {LEGS_GONE_S} s later these supervision legs are still up: {legs}")
        await asyncio.sleep(0.2)


async def supervisor_calls_done(supervisor: SippProcess, count: int, timeout: float = 30) -> None:
    """Wait until ``supervisor``'s phone has hung up ``count`` calls of its own."""
    await until(lambda: sum(e.name == "local-bye" for e in supervisor.events_so_far()) >= count,
                f"the supervisor's phone hangs up call {count}", timeout)


def each_call(result: SippResult) -> list[list[str]]:
    calls: dict[str, list[str]] = {}
    for event in result.events:
        calls.setdefault(event.call, []).append(event.name)
    return list(calls.values())


async def test_a_supervisor_who_hangs_up_leaves_no_leg_behind_and_the_call_goes_on(tmp_path):
    """Three sessions in a row on one call (listen, whisper, barge): each time the
    supervisor hangs up, every leg of that session goes while the caller and agent talk on."""
    agent_port, supervisor_port = free_port(), free_port()
    agents = [phone_agent("agent1", agent_port, queues=["support"]),
              phone_agent("sup1", supervisor_port, queues=["operator"], logged_in=False)]
    async with call_center(tmp_path, agents) as center, ami_events(center.settings) as events:
        agent = agent_phone("agent1", agent_port, AgentPlan(answer_after_ms=ANSWER_MS))
        supervisor = agent_phone("sup1", supervisor_port, AgentPlan(
            answer_after_ms=ANSWER_MS, hangup_after_ms=SUPERVISOR_TALKS_MS), calls=3)
        call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),),
                                         hangup_after_ms=MENU_DIGIT_MS + 50_000,
                                         max_call_ms=90_000))
        call_id = await agent_on_call(center, "agent1", call)
        for number, mode in enumerate(SpyMode, start=1):
            await center.supervision.start("agent1", mode, "sup1")
            await until(lambda n=number: len(other_events(events, "ChanSpyStart")) >= n,
                        f"{mode.value}: the supervisor's phone answers and ChanSpy starts")
            await supervisor_calls_done(supervisor, number)
            await no_supervision_legs(center, "sup1", f"{mode.value}: the supervisor hung up")
            assert call.running() and agent.running(), "the agent's call ended with the spy"
            view = center.acd.acd.agent("agent1")
            assert (view.state, view.call_id) == (AgentState.ON_CALL, call_id)
        caller_result, agent_result, supervisor_result = await asyncio.gather(
            finished(call, 120), finished(agent, 120), finished(supervisor))
        record = await the_only_closed_call(center)

    assert each_call(supervisor_result) == [["invite", "answered", "local-bye"]] * 3
    assert agent_result.names() == ["invite", "answered", "remote-bye"]
    assert caller_result.ended_by == "us"  # the caller talked on until hanging up
    assert record.agent_id == "agent1" and record.disposition is Disposition.ANSWERED
    assert record.hangup_by is HangupBy.CALLER


async def test_a_nailed_up_agents_line_keeps_no_spying_leg_of_a_supervisor_who_hung_up(tmp_path):
    """A nailed-up agent's line outlives every call: a leg left behind there would never go."""
    port1, supervisor_port = free_port(), free_port()
    agents = [phone_agent("agent1", port1, queues=["support"], logged_in=False,
                          password="agent1-secret"),
              phone_agent("sup1", supervisor_port, queues=["operator"], logged_in=False)]
    async with call_center(tmp_path, agents) as center, ami_events(center.settings) as events:
        nailed = agent_dials(center, "agent1", None, "*50",
                             CallerPlan(hangup_after_ms=60_000, max_call_ms=80_000))
        supervisor = agent_phone("sup1", supervisor_port, AgentPlan(
            answer_after_ms=ANSWER_MS, hangup_after_ms=SUPERVISOR_TALKS_MS), calls=2)
        await until(lambda: center.desk.nailed_channel("agent1"), "agent1 is nailed up")
        call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),),
                                         hangup_after_ms=MENU_DIGIT_MS + 30_000))
        call_id = await agent_on_call(center, "agent1", call)
        for number, mode in enumerate((SpyMode.LISTEN, SpyMode.WHISPER), start=1):
            await center.supervision.start("agent1", mode, "sup1")
            await until(lambda n=number: len(other_events(events, "ChanSpyStart")) >= n,
                        f"{mode.value}: the supervisor's phone answers and ChanSpy starts")
            await supervisor_calls_done(supervisor, number)
            await no_supervision_legs(center, "sup1", f"{mode.value}: the supervisor hung up")
            assert call.running() and nailed.running(), "the agent's call ended with the spy"
            assert center.acd.acd.agent("agent1").call_id == call_id
        caller_result = await finished(call)
        await no_supervision_legs(center, "sup1", "the caller hung up")
        assert nailed.running(), "the nailed-up line dropped"
        nailed_result, supervisor_result = await asyncio.gather(
            finished(nailed, 90), finished(supervisor))

    spied = {e.headers["SpyeeChannel"] for e in other_events(events, "ChanSpyStart")}
    assert len(spied) == 1 and spied.pop().startswith("PJSIP/agent1-"), spied
    assert each_call(supervisor_result) == [["invite", "answered", "local-bye"]] * 2
    assert caller_result.ended_by == "us"
    assert nailed_result.names() == ["answered", "local-bye"], nailed_result.describe()


async def test_a_supervisor_phone_that_rejects_or_never_answers_leaves_nothing_behind(tmp_path):
    agent_port, busy_port, silent_port = free_port(), free_port(), free_port()
    agents = [phone_agent("agent1", agent_port, queues=["support"]),
              phone_agent("sup1", busy_port, queues=["operator"], logged_in=False),
              phone_agent("sup2", silent_port, queues=["operator"], logged_in=False)]
    async with call_center(tmp_path, agents) as center, ami_events(center.settings) as events:
        agent = agent_phone("agent1", agent_port, AgentPlan(answer_after_ms=ANSWER_MS))
        busy = agent_phone("sup1", busy_port, AgentPlan(busy=True))
        silent = agent_phone("sup2", silent_port, AgentPlan(answer_after_ms=None))
        call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),),
                                         hangup_after_ms=MENU_DIGIT_MS + 25_000))
        await agent_on_call(center, "agent1", call)
        await center.supervision.start("agent1", SpyMode.LISTEN, "sup1")
        assert (await finished(busy)).names() == ["invite", "busy"]
        await no_supervision_legs(center, "sup1", "the supervisor's phone was busy")
        # The composition root rings for 30 s; a supervisor who does not answer in 3 s here.
        short_ring = Supervision(acd=center.acd, send=lambda action: center.ami.send(action),
                                 ring_seconds=3)
        await short_ring.start("agent1", SpyMode.BARGE, "sup2")
        assert (await finished(silent)).names() == ["invite", "cancelled"]
        await no_supervision_legs(center, "sup2", "the supervisor's phone rang out")
        assert call.running() and agent.running(), "the agent's call ended with the ring"
        caller_result, agent_result = await asyncio.gather(finished(call), finished(agent))
        record = await the_only_closed_call(center)

    assert not other_events(events, "ChanSpyStart"), "nobody answered, yet ChanSpy started"
    assert agent_result.names() == ["invite", "answered", "remote-bye"]
    assert caller_result.ended_by == "us"
    assert record.agent_id == "agent1" and record.disposition is Disposition.ANSWERED
