"""The ACD on a real Asterisk 22: who gets which call, end to end.

Agents' phones are SIPp processes at static contacts (they answer what rings them); callers
are SIPp processes that dial the IVR and press a key in a one-menu flow that routes to the
queues below. The service is the real CallCenter in this process, so a test can look at its
ACD (``center.acd``) and ask its agent desk for state changes as the API would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from callcenter.app import CallCenter
from callcenter.asterisk.sandbox import Sandbox
from callcenter.core.acd import AgentState
from callcenter.core.records import AttemptOutcome, CallRecord, Disposition
from tests.support.asterisk import phone_agent
from tests.support.calls import (
    agent_dials,
    agent_phone,
    call_center,
    caller,
    finished,
    prompt_seconds,
    until,
)
from tests.support.sipp import AgentPlan, CallerPlan, free_port

pytestmark = pytest.mark.asterisk

KEY_MS = 1500  # the menu prompt (no-input) is short: the key is pressed while it plays
HOLD_MS = int(prompt_seconds("please-hold") * 1000)  # said when no agent is free at once
ROUTING_FLOW = """
name: main
start: route
nodes:
  route:
    type: menu
    prompt: no-input
    timeout: 8
    retries: 1
    options:
      "1": {queue: sales}
      "2": {queue: sales, priority: 10}
      "3": {queue: support, skills: {billing: 5}}
      "4": {queue: support}
    on_exhausted: {hangup: true}
"""


def routing_flow(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "main.yaml").write_text(ROUTING_FLOW)
    return {"dialplans_dir": str(folder)}


def presses(key: str, *, talk_ms: int | None = None, number: str,
            max_call_ms: int = 90_000) -> CallerPlan:
    """A caller who presses ``key`` and hangs up ``talk_ms`` after the please-hold prompt
    would end (time enough to reach a free agent and talk, whether the caller is rung through
    at once or hears the prompt first); None: waits for the other side."""
    hangup_ms = None if talk_ms is None else KEY_MS + HOLD_MS + talk_ms
    return CallerPlan(dtmf=((KEY_MS, key),), caller_number=number, max_call_ms=max_call_ms,
                      hangup_after_ms=hangup_ms)


def state_of(center: CallCenter, agent_id: str) -> AgentState:
    return center.acd.acd.agent_state(agent_id)


async def state_becomes(center: CallCenter, agent_id: str, state: AgentState,
                        timeout: float = 30) -> None:
    await until(lambda: state_of(center, agent_id) is state,
                f"{agent_id} {state.value} (is {state_of(center, agent_id).value})", timeout)


async def closed_records(center: CallCenter, *numbers: str, timeout: float = 30,
                         ) -> dict[str, CallRecord]:
    """The callers' stored calls, by caller number, once every stored call is closed (an
    agent's feature-code calls are stored too, under the agent's id)."""
    found: dict[str, CallRecord] = {}

    async def all_closed() -> bool:
        await center.writer.flush(timeout)
        records, _ = await center.calls.list()
        found.clear()
        found.update({r.caller_number or "": r for r in records if r.caller_number in numbers})
        return len(found) == len(numbers) and not any(r.is_open for r in records)

    await until(all_closed, f"closed calls from {numbers}", timeout)
    return found


def outcomes(record: CallRecord) -> list[tuple[str, AttemptOutcome]]:
    return [(a.agent_id, a.outcome) for a in record.attempts]


def phones(*agent_ids: str, **queues: Sequence[str]) -> tuple[list[dict[str, Any]],
                                                               dict[str, int]]:
    """Agents with static contacts on free ports; keyword queues per agent (default sales)."""
    ports = {agent_id: free_port() for agent_id in agent_ids}
    agents = [phone_agent(a, ports[a], queues=list(queues.get(a, ("sales",))))
              for a in agent_ids]
    return agents, ports


# ----------------------------------------------------------------------- strategies


async def test_longest_idle_agent_gets_the_next_call(tmp_path):
    """All three are idle from the start (ties by id): agent1, then agent2, then agent3, who
    has been idle longer than agent2 (whose call just ended); then agent2 again."""
    agents, ports = phones("agent1", "agent2", "agent3")
    async with call_center(tmp_path, agents, service_ivr=routing_flow(tmp_path)) as center:
        for agent_id, calls in (("agent1", 1), ("agent2", 2), ("agent3", 1)):
            agent_phone(agent_id, ports[agent_id], AgentPlan(answer_after_ms=200), calls)
        first = caller(center, presses("1", talk_ms=30_000, number="5550001"))
        await state_becomes(center, "agent1", AgentState.ON_CALL)
        await finished(caller(center, presses("1", talk_ms=2000, number="5550002")))
        await state_becomes(center, "agent2", AgentState.READY)
        await finished(caller(center, presses("1", talk_ms=2000, number="5550003")))
        await state_becomes(center, "agent3", AgentState.READY)
        await finished(caller(center, presses("1", talk_ms=2000, number="5550004")))
        assert first.running(), "the first call should outlast the others"
        await finished(first)
        records = await closed_records(center, "5550001", "5550002", "5550003", "5550004")

    assert {number: r.agent_id for number, r in records.items()} == {
        "5550001": "agent1", "5550002": "agent2", "5550003": "agent3", "5550004": "agent2"}


async def test_a_skills_queue_gives_the_call_to_the_agent_with_the_skill(tmp_path):
    """agent1 (billing 3) is idle longest and first by id, but the caller needs billing 5:
    agent2 (billing 8) gets the call and agent1 is never tried."""
    queues = ({"name": "sales"}, {"name": "support", "strategy": "skills"},
              {"name": "operator"})
    agents, ports = phones("agent1", "agent2", agent1=("support",), agent2=("support",))
    agents[0]["skills"] = ["billing:3"]
    agents[1]["skills"] = ["billing:8", "spanish:2"]
    async with call_center(tmp_path, agents, service_ivr=routing_flow(tmp_path),
                           queues=queues) as center:
        skilled = agent_phone("agent2", ports["agent2"], AgentPlan(answer_after_ms=200))
        unskilled = agent_phone("agent1", ports["agent1"], AgentPlan(answer_after_ms=200))
        await finished(caller(center, presses("3", talk_ms=2000, number="5550001")))
        records = await closed_records(center, "5550001")
        await finished(skilled)
        assert unskilled.events_so_far() == [], "agent1 was rung without the skill"

    record = records["5550001"]
    assert record.disposition is Disposition.ANSWERED, record
    assert outcomes(record) == [("agent2", AttemptOutcome.ANSWERED)]


# ----------------------------------------------------------------------- ring, no answer


async def test_an_agent_who_lets_it_ring_is_paused_rona_and_the_caller_goes_to_the_next(
        tmp_path):
    agents, ports = phones("agent1", "agent2", agent1=("support",), agent2=("support",))
    async with call_center(tmp_path, agents, service_ivr=routing_flow(tmp_path)) as center:
        agent_phone("agent1", ports["agent1"], AgentPlan(answer_after_ms=None))  # rings out
        agent_phone("agent2", ports["agent2"], AgentPlan(answer_after_ms=200))
        await finished(caller(center, presses("4", talk_ms=8000, number="5550001")))
        records = await closed_records(center, "5550001")
        paused = center.acd.acd.agent("agent1")
        await center.desk.flush()
        history = await center.directory.state_history("agent1")

    assert outcomes(records["5550001"]) == [("agent1", AttemptOutcome.NO_ANSWER),
                                            ("agent2", AttemptOutcome.ANSWERED)]
    assert (paused.state, paused.reason) == (AgentState.PAUSED, "RONA")
    assert [(c.state, c.reason) for c in history][-2:] == [
        ("ringing", f"call {records['5550001'].call_id}"), ("paused", "RONA")]


# ----------------------------------------------------------------------- priority


async def test_a_priority_caller_is_served_before_one_who_waited_longer(tmp_path):
    agents, ports = phones("agent1")
    agents[0]["logged_in"] = False
    async with call_center(tmp_path, agents, service_ivr=routing_flow(tmp_path)) as center:
        agent_phone("agent1", ports["agent1"], AgentPlan(answer_after_ms=200), calls=2)
        plain = caller(center, presses("1", talk_ms=25_000, number="5550001"))
        await until(lambda: len(center.acd.acd.waiting("sales")) == 1, "the first caller waits")
        # The live queue view and the record count the wait from the same instant.
        [live] = center.acd.acd.snapshot(center.clock.now())["queues"]["sales"]["calls"]
        open_record = center.ledger.get(live["call_id"])
        assert open_record is not None and open_record.queued_at == live["waiting_since"]
        vip = caller(center, presses("2", talk_ms=3000, number="5550002"))
        await until(lambda: len(center.acd.acd.waiting("sales")) == 2, "the VIP waits too")
        center.desk.request("agent1", "login")
        await finished(vip)
        await finished(plain)
        records = await closed_records(center, "5550001", "5550002")

    first, second = records["5550002"], records["5550001"]
    assert first.agent_id == second.agent_id == "agent1"
    assert first.agent_answered_at is not None and second.agent_answered_at is not None
    assert first.agent_answered_at < second.agent_answered_at, (first, second)
    assert first.queued_at is not None and second.queued_at is not None
    assert second.queued_at < first.queued_at  # the plain caller had waited longer


# ----------------------------------------------------------------------- overflow


async def test_a_caller_past_max_wait_overflows_to_the_next_queue(tmp_path):
    queues = ({"name": "sales", "max_wait": 6, "overflow_to": "operator"},
              {"name": "support"}, {"name": "operator"})
    agents, ports = phones("agent1", "agent2", agent2=("operator",))
    agents[0]["logged_in"] = False  # sales has a member, but nobody at work
    async with call_center(tmp_path, agents, service_ivr=routing_flow(tmp_path),
                           queues=queues) as center:
        operator = agent_phone("agent2", ports["agent2"], AgentPlan(answer_after_ms=200))
        result = await finished(caller(center, presses("1", talk_ms=12_000,
                                                       number="5550001")))
        records = await closed_records(center, "5550001")
        await finished(operator)

    record = records["5550001"]
    assert record.disposition is Disposition.ANSWERED, record
    assert outcomes(record) == [("agent2", AttemptOutcome.ANSWERED)]
    assert record.wait_seconds is not None and record.wait_seconds >= 6, record
    assert (record.queue, record.overflowed_from) == ("operator", "sales"), record
    assert result.ended_by == "us"


# ----------------------------------------------------------------------- announcements


async def test_waiting_callers_hear_their_position_and_expected_wait(tmp_path):
    queues = ({"name": "sales", "announce_every": 15, "handle_time": 240},
              {"name": "support"}, {"name": "operator"})
    agents, _ = phones("agent1")
    agents[0]["logged_in"] = False
    async with call_center(tmp_path, agents, service_ivr=routing_flow(tmp_path),
                           queues=queues) as center:
        await finished(caller(center, presses("1", talk_ms=22_000, number="5550001")))
        records = await closed_records(center, "5550001")
        log = Sandbox(center.settings).messages_log.read_text()

    assert records["5550001"].disposition is Disposition.ABANDONED_IN_QUEUE
    played = [line.split("Playing '")[1].split("'")[0] for line in log.splitlines()
              if "Playing '" in line]
    # Nobody could take the call at once: the caller was told to hold, then announced.
    assert played.index("callcenter/please-hold.slin") < played.index(
        "callcenter/queue-position.slin"), played
    at = played.index("callcenter/queue-position.slin")
    # "You are number 1 in line; your expected wait is 4 minutes": one agent in the queue,
    # 240 s per call assumed until calls are measured.
    assert played[at:at + 6] == ["callcenter/queue-position.slin", "digits/1.gsm",
                                 "callcenter/queue-in-line.slin",
                                 "callcenter/queue-expected-wait.slin", "digits/4.gsm",
                                 "callcenter/queue-minutes.slin"], played


# ----------------------------------------------------------------------- feature codes


async def test_an_agent_pauses_and_gets_ready_again_from_the_phone(tmp_path):
    agents, ports = phones("agent1")
    agents[0]["password"] = "agent1-secret"
    async with call_center(tmp_path, agents, service_ivr=routing_flow(tmp_path)) as center:
        pause = await finished(agent_dials(center, "agent1", None, "*521", CallerPlan()))
        assert (state_of(center, "agent1"), center.acd.acd.agent("agent1").reason) == (
            AgentState.PAUSED, "break")
        phone = agent_phone("agent1", ports["agent1"], AgentPlan(answer_after_ms=200))
        waiting = caller(center, presses("1", talk_ms=15_000, number="5550001"))
        await until(lambda: len(center.acd.acd.waiting("sales")) == 1, "the caller waits")
        await asyncio.sleep(2)  # a paused agent is not offered the call
        assert phone.events_so_far() == []
        await finished(agent_dials(center, "agent1", None, "*53", CallerPlan()))
        await finished(waiting)
        records = await closed_records(center, "5550001")
        # The caller's record may close before AMI tells of the agent's leg ending: the
        # agent is ready again only then.
        await state_becomes(center, "agent1", AgentState.READY)
        await center.desk.flush()
        history = await center.directory.state_history("agent1")

    assert pause.names() == ["answered", "remote-bye"], pause.describe()
    assert outcomes(records["5550001"]) == [("agent1", AttemptOutcome.ANSWERED)]
    states = [(c.state, c.reason) for c in history]
    assert states == [("ready", "login"), ("paused", "break"), ("ready", "ready"),
                      ("ringing", f"call {records['5550001'].call_id}"),
                      ("on_call", "answered"), ("ready", "call ended")], states


# ----------------------------------------------------------------------- nailed-up


async def test_a_nailed_up_agent_takes_two_calls_in_a_row_without_ringing(tmp_path):
    agents, ports = phones("agent1")
    agents[0]["password"] = "agent1-secret"
    agents[0]["logged_in"] = False
    async with call_center(tmp_path, agents, service_ivr=routing_flow(tmp_path)) as center:
        ringing_phone = agent_phone("agent1", ports["agent1"], AgentPlan(answer_after_ms=0))
        nailed = agent_dials(center, "agent1", None, "*50",
                             CallerPlan(hangup_after_ms=40_000, max_call_ms=60_000))
        await state_becomes(center, "agent1", AgentState.READY)
        await until(lambda: center.desk.nailed_channel("agent1") is not None,
                    "the nailed-up channel is known")
        await finished(caller(center, presses("1", talk_ms=4000, number="5550001")))
        await state_becomes(center, "agent1", AgentState.READY)
        await finished(caller(center, presses("1", talk_ms=4000, number="5550002")))
        nailed_result = await finished(nailed, timeout=60)
        records = await closed_records(center, "5550001", "5550002")
        await state_becomes(center, "agent1", AgentState.LOGGED_OUT)

    for number in ("5550001", "5550002"):
        record = records[number]
        assert record.disposition is Disposition.ANSWERED, record
        assert record.agent_id == "agent1"
        assert outcomes(record) == [("agent1", AttemptOutcome.ANSWERED)]
        assert record.talk_seconds is not None and record.talk_seconds > 2, record
    assert ringing_phone.events_so_far() == [], "the agent's phone was rung"
    assert nailed_result.names() == ["answered", "local-bye"], nailed_result.describe()
