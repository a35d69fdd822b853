"""The ACD driver: decisions reach the right call's inbox; unreachable phones are not rung."""

from __future__ import annotations

from callcenter.core.acd import Acd, AgentSpec, NoAgentAvailable, OfferCall, QueueRules
from callcenter.core.clock import VirtualClock
from callcenter.service.acd_driver import AcdDriver


def driver(clock: VirtualClock, *agents: AgentSpec, reachable: bool = True) -> AcdDriver:
    """A driver as the app builds it; ``reachable``: AMI already said every phone is."""
    acd = Acd({"support": QueueRules("support", 15.0, 600.0),
               "empty": QueueRules("empty", 15.0, 600.0)},
              [AgentSpec(a.agent_id, a.queues, logged_in=False) for a in agents], clock.now())
    driver = AcdDriver(acd, clock, logged_in={a.agent_id: a.logged_in for a in agents})
    for agent in agents if reachable else ():
        driver.device_state(agent.agent_id, "NOT_INUSE")
    return driver


async def test_nobody_is_rung_before_asterisk_says_which_phones_are_reachable():
    clock = VirtualClock()
    acd = driver(clock, AgentSpec("agent1", ("support",)), reachable=False)
    assert not acd.reachable("agent1")
    inbox = acd.enqueue("call-1", "support")
    assert inbox.empty()
    acd.device_state("agent1", "NOT_INUSE")
    assert inbox.get_nowait() == OfferCall("call-1", "agent1", 15.0)


async def test_an_agent_whose_phone_is_unregistered_is_not_offered_calls_until_it_registers():
    clock = VirtualClock()
    acd = driver(clock, AgentSpec("agent1", ("support",)))
    acd.device_state("agent1", "UNAVAILABLE")
    inbox = acd.enqueue("call-1", "support")
    assert inbox.empty()
    clock.advance(3)
    acd.device_state("agent1", "NOT_INUSE")
    assert inbox.get_nowait() == OfferCall("call-1", "agent1", 15.0)


async def test_a_logged_out_agent_stays_out_when_the_phone_comes_back():
    clock = VirtualClock()
    acd = driver(clock, AgentSpec("agent1", ("support",), logged_in=False))
    acd.device_state("agent1", "UNAVAILABLE")
    acd.device_state("agent1", "NOT_INUSE")
    inbox = acd.enqueue("call-1", "support")
    assert inbox.empty()


async def test_a_queue_without_agents_answers_at_once_and_leaving_after_it_is_harmless():
    clock = VirtualClock()
    acd = driver(clock, AgentSpec("agent1", ("support",)))
    inbox = acd.enqueue("call-1", "empty")
    assert isinstance(inbox.get_nowait(), NoAgentAvailable)
    acd.left("call-1")  # the ACD already let go of it: no error
    acd.left("call-1")


async def test_answered_then_left_frees_the_agent_for_the_next_caller():
    clock = VirtualClock()
    acd = driver(clock, AgentSpec("agent1", ("support",)))
    first = acd.enqueue("call-1", "support")
    second = acd.enqueue("call-2", "support")
    assert first.get_nowait().agent_id == "agent1"
    assert second.empty()
    acd.answered("call-1", "agent1")
    acd.answered("call-1", "agent1")  # AMI and the handler may both report it
    clock.advance(30)
    acd.left("call-1")
    assert second.get_nowait() == OfferCall("call-2", "agent1", 15.0)


async def test_unknown_devices_are_ignored():
    clock = VirtualClock()
    acd = driver(clock, AgentSpec("agent1", ("support",)))
    acd.device_state("anonymous", "UNAVAILABLE")
    assert acd.reachable("agent1")
