"""The driver is the whole face of the ACD to the services: typed queries answer with the
core's views at the clock's now, and no service reaches through to the core ``Acd``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from callcenter.core.acd import (
    Acd,
    AgentSpec,
    AgentState,
    ConnectMode,
    QueueRules,
    UnknownAgent,
)
from callcenter.core.clock import VirtualClock
from callcenter.features.queues.driver import AcdDriver

PACKAGE = Path(__file__).resolve().parents[2] / "callcenter"
RULES = {"support": QueueRules("support", ring_timeout=15.0, wrap_up=10.0),
         "sales": QueueRules("sales")}


def floor(clock: VirtualClock) -> AcdDriver:
    specs = [AgentSpec("ann", ("support",)), AgentSpec("bob", ("support", "sales")),
             AgentSpec("cat", ("sales",))]
    driver = AcdDriver(Acd(RULES, specs, clock.now(), pause_reasons=("lunch",)), clock)
    for agent_id in ("ann", "bob"):
        driver.login(agent_id, phone=agent_id)
        driver.set_reachable(agent_id, True)
    return driver


def test_agents_are_answered_as_typed_views_in_the_order_routing_knows_them():
    driver = floor(VirtualClock(100.0))
    assert driver.agent_ids() == ["ann", "bob", "cat"]
    assert [view.agent_id for view in driver.agents()] == ["ann", "bob", "cat"]
    assert driver.agent("ann").state is AgentState.READY
    assert driver.agent_state("cat") is AgentState.LOGGED_OUT
    assert driver.pause_reasons[0] == "lunch"  # and the ACD's own (RONA)
    with pytest.raises(UnknownAgent):
        driver.agent("nobody")


def test_who_talks_on_a_call_is_found_by_state_not_by_its_json_spelling():
    clock = VirtualClock(100.0)
    driver = floor(clock)
    inbox = driver.enqueue("call-1", "support")
    offered = inbox.get_nowait()
    assert driver.talking_on("call-1") == []  # ringing is not talking
    driver.answered("call-1", offered.agent_id)
    assert [view.agent_id for view in driver.talking_on("call-1")] == [offered.agent_id]
    assert driver.talking_on("call-2") == []
    driver.left("call-1")
    assert driver.talking_on("call-1") == []


def test_queue_queries_use_the_clock_of_the_driver():
    clock = VirtualClock(100.0)
    driver = floor(clock)
    driver.pause("bob", "lunch")
    driver.enqueue("call-1", "sales")  # nobody ready in sales: it waits
    clock.advance(7.0)
    stats = driver.queue_stats("sales")
    assert (stats.waiting, stats.longest_wait, stats.paused) == (1, 7.0, 1)
    assert [call["call_id"] for call in driver.snapshot()["queues"]["sales"]["calls"]] == [
        "call-1"]
    assert [view.agent_id for view in driver.queue_members("sales")] == ["bob", "cat"]
    assert [view.mode for view in driver.queue_members("support")] == [ConnectMode.RING] * 2
    with pytest.raises(ValueError):
        driver.queue_members("nowhere")


REACH_THROUGH = re.compile(r"\.acd\.acd\b|_acd\.acd\b")
STATE_SPELLING = re.compile(r"[!=]=\s*AgentState\.\w+\.value|AgentState\.\w+\.value\s*[!=]=")


def test_no_service_reaches_through_the_driver_or_compares_state_spellings():
    offending = [
        f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if REACH_THROUGH.search(line) or STATE_SPELLING.search(line)
    ]
    assert offending == []
