"""The ACD driver: decisions reach the right call's inbox, agents' changes reach listeners,
unreachable phones are not rung."""

from __future__ import annotations

import pytest

from callcenter.core.acd import (
    Acd,
    AgentSpec,
    AgentState,
    AgentStateChanged,
    AgentStateError,
    ConnectMode,
    NoAgentAvailable,
    OfferCall,
    OfferFailure,
    QueueRules,
)
from callcenter.core.clock import VirtualClock
from callcenter.features.queues.driver import AcdDriver, KeyPressed

RULES = {"support": QueueRules("support", ring_timeout=15.0, wrap_up=10.0),
         "empty": QueueRules("empty")}


def driver(clock: VirtualClock, *agents: str, logged_in: bool = True) -> AcdDriver:
    acd = Acd(RULES, [AgentSpec(a, ("support",)) for a in agents], clock.now())
    driver = AcdDriver(acd, clock)
    for agent in agents if logged_in else ():
        driver.login(agent, phone=agent)
    return driver


def offer(call_id: str, agent_id: str) -> OfferCall:
    return OfferCall(call_id, agent_id, 15.0, ConnectMode.RING, False, "support")


async def test_an_unreachable_phone_is_not_rung_until_it_comes_back():
    clock = VirtualClock()
    acd = driver(clock, "agent1")
    acd.set_reachable("agent1", False)
    assert not acd.reachable("agent1")
    inbox = acd.enqueue("call-1", "support")
    assert inbox.empty()
    clock.advance(3)
    acd.set_reachable("agent1", True)
    assert inbox.get_nowait() == offer("call-1", "agent1")


async def test_a_queue_without_agents_answers_at_once_and_leaving_after_it_is_harmless():
    clock = VirtualClock()
    acd = driver(clock, "agent1")
    inbox = acd.enqueue("call-1", "empty")
    assert isinstance(inbox.get_nowait(), NoAgentAvailable)
    acd.left("call-1")  # the ACD already let go of it: no error
    acd.left("call-1")


async def test_the_talk_ending_puts_the_agent_in_wrap_up_then_the_next_caller_rings():
    clock = VirtualClock()
    acd = driver(clock, "agent1")
    first = acd.enqueue("call-1", "support")
    second = acd.enqueue("call-2", "support")
    assert first.get_nowait() == offer("call-1", "agent1")
    assert second.empty()
    acd.answered("call-1", "agent1")
    acd.answered("call-1", "agent1")  # AMI and the handler may both report it
    clock.advance(30)
    acd.left("call-1")
    assert acd.acd.agent_state("agent1") is AgentState.WRAP_UP
    assert second.empty()
    clock.advance(10)
    acd.tick()
    assert second.get_nowait() == offer("call-2", "agent1")


async def test_a_ring_with_no_answer_pauses_the_agent_and_the_caller_keeps_waiting():
    clock = VirtualClock()
    acd = driver(clock, "agent1")
    inbox = acd.enqueue("call-1", "support")
    inbox.get_nowait()
    acd.failed("call-1", "agent1", OfferFailure.NO_ANSWER)
    assert acd.acd.agent("agent1").reason == "RONA"
    assert inbox.empty()
    acd.ready("agent1")
    assert inbox.get_nowait() == offer("call-1", "agent1")


async def test_every_state_change_reaches_the_listeners_in_order():
    clock = VirtualClock()
    acd = driver(clock, "agent1", logged_in=False)
    seen: list[AgentStateChanged] = []
    acd.on_agent_change(seen.append)
    acd.login("agent1", phone="agent1")
    acd.pause("agent1", "lunch")
    acd.ready("agent1")
    acd.logout("agent1")
    assert [(c.previous, c.state, c.reason) for c in seen] == [
        (AgentState.LOGGED_OUT, AgentState.READY, "login"),
        (AgentState.READY, AgentState.PAUSED, "lunch"),
        (AgentState.PAUSED, AgentState.READY, "ready"),
        (AgentState.READY, AgentState.LOGGED_OUT, "logout"),
    ][: len(seen)]
    assert [c.state for c in seen] == [AgentState.READY, AgentState.PAUSED, AgentState.READY,
                                       AgentState.LOGGED_OUT]


async def test_a_failing_listener_does_not_stop_the_others():
    clock = VirtualClock()
    acd = driver(clock, "agent1", logged_in=False)
    seen: list[AgentStateChanged] = []

    def broken(change: AgentStateChanged) -> None:
        raise RuntimeError("database down")

    acd.on_agent_change(broken)
    acd.on_agent_change(seen.append)
    acd.login("agent1", phone="agent1")
    assert len(seen) == 1


async def test_a_refused_request_raises_and_changes_nothing():
    clock = VirtualClock()
    acd = driver(clock, "agent1", logged_in=False)
    with pytest.raises(AgentStateError, match="log"):
        acd.pause("agent1", "lunch")
    assert acd.acd.agent_state("agent1") is AgentState.LOGGED_OUT


async def test_a_key_pressed_while_waiting_reaches_that_callers_inbox_only():
    clock = VirtualClock()
    acd = driver(clock, "agent1", logged_in=False)
    inbox = acd.enqueue("call-1", "support")
    acd.key_pressed("call-1", "1")
    acd.key_pressed("call-9", "1")  # nobody waits under that id: ignored
    assert inbox.get_nowait() == KeyPressed("call-1", "1")


async def test_unknown_phones_are_ignored():
    clock = VirtualClock()
    acd = driver(clock, "agent1")
    acd.set_reachable("anonymous", False)
    assert acd.reachable("agent1") is False  # not reported yet: not known reachable
    acd.set_reachable("agent1", True)
    assert acd.reachable("agent1")
