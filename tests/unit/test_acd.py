"""The ACD: who gets which caller, and what happens when phones are not answered."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.core.acd import (
    Acd,
    AcdAction,
    AgentSpec,
    AgentState,
    NoAgentAvailable,
    OfferCall,
    QueueRules,
    QueueTimedOut,
)

T0 = 1_700_000_000.0
RULES = {
    "sales": QueueRules("sales", ring_timeout=15, max_wait=600),
    "support": QueueRules("support", ring_timeout=20, max_wait=300),
    "empty": QueueRules("empty", ring_timeout=15, max_wait=600),
}


def acd(*agents: AgentSpec, now: float = T0) -> Acd:
    return Acd(RULES, agents, now)


def agent(agent_id: str, *queues: str, logged_in: bool = True) -> AgentSpec:
    return AgentSpec(agent_id, queues, logged_in)


def offer(call_id: str, agent_id: str, queue: str = "sales") -> OfferCall:
    return OfferCall(call_id, agent_id, RULES[queue].ring_timeout)


def test_a_caller_goes_to_the_agent_idle_longest_ties_by_agent_id() -> None:
    center = acd(agent("bob", "sales"), agent("alice", "sales"))
    assert center.enqueue("c1", "sales", T0 + 1) == [offer("c1", "alice")]
    assert center.agent_state("alice") is AgentState.RINGING
    center.offer_answered("c1", "alice", T0 + 2)
    assert center.agent_state("alice") is AgentState.BUSY
    center.caller_left("c1", T0 + 60)  # alice idle since T0+60, bob since T0
    center.enqueue("c2", "sales", T0 + 61)  # bob idle longest now
    assert center.agent_state("bob") is AgentState.RINGING


def test_an_agent_who_becomes_free_gets_the_caller_who_waited_longest() -> None:
    center = acd(agent("alice", "sales", "support"))
    center.enqueue("c1", "sales", T0 + 1)
    center.offer_answered("c1", "alice", T0 + 2)
    assert center.enqueue("c2", "sales", T0 + 10) == []
    assert center.enqueue("c3", "support", T0 + 5 + 3) == []  # waits longer than c2
    assert center.enqueue("c4", "sales", T0 + 12) == []
    assert center.waiting("sales") == ["c2", "c4"]
    assert center.caller_left("c1", T0 + 30) == [offer("c3", "alice", "support")]
    center.offer_answered("c3", "alice", T0 + 31)
    assert center.caller_left("c3", T0 + 40) == [offer("c2", "alice")]
    assert center.waiting("sales") == ["c2", "c4"]  # c2 ringing still counts as waiting


def test_unknown_queue_is_an_error_and_a_queue_without_agents_refuses_at_once() -> None:
    center = acd(agent("alice", "sales"))
    with pytest.raises(ValueError, match="unknown queue 'billing'"):
        center.enqueue("c1", "billing", T0)
    assert center.enqueue("c1", "empty", T0) == [
        NoAgentAvailable("c1", reason="queue has no agents")
    ]
    assert center.waiting("empty") == []
    assert center.enqueue("c1", "sales", T0) == [offer("c1", "alice")]  # the id was not kept


def test_callers_wait_when_all_agents_of_the_queue_are_logged_out() -> None:
    center = acd(agent("alice", "sales", logged_in=False))
    assert center.enqueue("c1", "sales", T0 + 1) == []
    assert center.set_logged_in("alice", True, T0 + 5) == [offer("c1", "alice")]


def test_a_failed_offer_goes_to_another_agent_then_a_new_round_starts() -> None:
    center = acd(agent("alice", "sales"), agent("bob", "sales"), agent("carol", "sales"))
    assert center.enqueue("c1", "sales", T0 + 1) == [offer("c1", "alice")]
    assert center.offer_failed("c1", "alice", T0 + 16, "no answer") == [offer("c1", "bob")]
    assert center.agent_state("alice") is AgentState.IDLE
    assert center.offer_failed("c1", "bob", T0 + 31, "busy") == [offer("c1", "carol")]
    # Everybody had their chance: a new round, longest idle first again.
    assert center.offer_failed("c1", "carol", T0 + 46, "no answer") == [offer("c1", "alice")]
    assert center.waiting("sales") == ["c1"]


def test_an_agent_who_did_not_answer_is_not_rung_again_while_others_remain_untried() -> None:
    center = acd(agent("alice", "sales"), agent("bob", "sales"))
    center.enqueue("c0", "sales", T0)  # alice
    center.enqueue("c1", "sales", T0 + 1)  # bob
    center.offer_answered("c1", "bob", T0 + 2)
    assert center.offer_failed("c0", "alice", T0 + 15, "no answer") == []
    assert center.agent_state("alice") is AgentState.IDLE  # free, but c0 waits for bob
    assert center.caller_left("c1", T0 + 100) == [offer("c0", "bob")]


def test_a_caller_behind_one_whose_offer_failed_may_get_that_agent() -> None:
    center = acd(agent("alice", "sales"), agent("bob", "sales"))
    center.enqueue("c0", "sales", T0)  # alice
    center.enqueue("c1", "sales", T0 + 1)  # bob
    center.offer_answered("c1", "bob", T0 + 2)
    center.enqueue("c2", "sales", T0 + 3)  # nobody free
    assert center.offer_failed("c0", "alice", T0 + 15, "no answer") == [offer("c2", "alice")]
    assert center.waiting("sales") == ["c0", "c2"]


def test_when_the_last_untried_agent_logs_out_a_new_round_starts() -> None:
    center = acd(agent("alice", "sales"), agent("bob", "sales"))
    center.enqueue("c0", "sales", T0)  # alice
    center.enqueue("c1", "sales", T0 + 1)  # bob
    assert center.offer_failed("c0", "alice", T0 + 15, "no answer") == []  # bob untried
    assert center.set_logged_in("bob", False, T0 + 16) == [offer("c0", "alice")]


def test_the_only_agent_is_rung_again_in_a_new_round() -> None:
    center = acd(agent("alice", "sales"))
    center.enqueue("c1", "sales", T0)
    assert center.offer_failed("c1", "alice", T0 + 15, "no answer") == [offer("c1", "alice")]


def test_a_declined_ring_does_not_count_as_a_finished_call() -> None:
    center = acd(agent("alice", "sales"), agent("bob", "sales"))
    center.enqueue("c1", "sales", T0 + 1)  # alice
    center.offer_failed("c1", "alice", T0 + 16, "no answer")  # bob rings
    center.offer_answered("c1", "bob", T0 + 17)
    center.caller_left("c1", T0 + 50)
    # alice is still idle since T0, so she is longest idle.
    assert center.enqueue("c2", "sales", T0 + 60) == [offer("c2", "alice")]
    assert center.snapshot()["agents"]["alice"]["idle_since"] == T0
    assert center.snapshot()["agents"]["bob"]["idle_since"] == T0 + 50


def test_a_caller_who_hangs_up_while_ringing_frees_the_agent_for_the_next() -> None:
    center = acd(agent("alice", "sales"))
    center.enqueue("c1", "sales", T0)
    center.enqueue("c2", "sales", T0 + 1)
    assert center.caller_left("c1", T0 + 5) == [offer("c2", "alice")]
    assert center.waiting("sales") == ["c2"]


def test_a_caller_who_hangs_up_while_waiting_leaves_the_queue() -> None:
    center = acd(agent("alice", "sales"))
    center.enqueue("c1", "sales", T0)
    center.enqueue("c2", "sales", T0 + 1)
    assert center.caller_left("c2", T0 + 5) == []
    assert center.waiting("sales") == ["c1"]
    with pytest.raises(ValueError, match="unknown call 'c2'"):
        center.caller_left("c2", T0 + 6)


def test_logging_out_takes_effect_when_the_current_call_is_over() -> None:
    center = acd(agent("alice", "sales"), agent("bob", "sales"))
    center.enqueue("c1", "sales", T0 + 1)  # alice
    center.offer_answered("c1", "alice", T0 + 2)
    assert center.set_logged_in("alice", False, T0 + 3) == []
    assert center.agent_state("alice") is AgentState.BUSY
    assert center.snapshot()["agents"]["alice"]["logging_out"] is True
    center.caller_left("c1", T0 + 30)
    assert center.agent_state("alice") is AgentState.LOGGED_OUT
    assert center.set_logged_in("bob", False, T0 + 31) == []
    assert center.agent_state("bob") is AgentState.LOGGED_OUT
    assert center.enqueue("c2", "sales", T0 + 32) == []
    assert center.set_logged_in("alice", True, T0 + 40) == [offer("c2", "alice")]


def test_an_agent_logging_out_while_ringing_is_logged_out_when_the_ring_ends() -> None:
    center = acd(agent("alice", "sales"), agent("bob", "sales"))
    center.enqueue("c1", "sales", T0 + 1)  # alice
    center.set_logged_in("alice", False, T0 + 2)
    assert center.offer_failed("c1", "alice", T0 + 16, "no answer") == [offer("c1", "bob")]
    assert center.agent_state("alice") is AgentState.LOGGED_OUT


def test_callers_waiting_longer_than_max_wait_time_out_on_tick() -> None:
    center = acd(agent("alice", "support"))
    center.enqueue("c1", "support", T0)  # alice
    center.offer_answered("c1", "alice", T0 + 1)
    center.enqueue("c2", "support", T0 + 10)
    center.enqueue("c3", "support", T0 + 20)
    assert center.tick(T0 + 310) == []  # c2 has waited exactly max_wait
    assert center.tick(T0 + 310.5) == [QueueTimedOut("c2")]
    assert center.waiting("support") == ["c3"]
    assert center.tick(T0 + 400) == [QueueTimedOut("c3")]
    assert center.caller_left("c1", T0 + 401) == []  # nobody left to offer
    with pytest.raises(ValueError, match="unknown call 'c3'"):
        center.caller_left("c3", T0 + 402)


def test_a_caller_past_max_wait_gets_no_offer_even_before_the_tick() -> None:
    center = acd(agent("alice", "support"))
    center.enqueue("c1", "support", T0)
    center.offer_answered("c1", "alice", T0 + 1)
    center.enqueue("c2", "support", T0 + 10)
    assert center.caller_left("c1", T0 + 400) == []
    assert center.tick(T0 + 400) == [QueueTimedOut("c2")]


def test_a_ringing_caller_is_not_timed_out_while_the_phone_rings() -> None:
    center = acd(agent("alice", "support"))
    center.enqueue("c1", "support", T0)
    assert center.tick(T0 + 1000) == []
    center.offer_answered("c1", "alice", T0 + 1001)
    assert center.agent_state("alice") is AgentState.BUSY


def test_unknown_ids_and_offers_that_do_not_exist_are_errors_naming_the_id() -> None:
    center = acd(agent("alice", "sales"), agent("bob", "sales"))
    center.enqueue("c1", "sales", T0)  # alice
    with pytest.raises(ValueError, match="unknown agent 'zed'"):
        center.agent_state("zed")
    with pytest.raises(ValueError, match="unknown agent 'zed'"):
        center.set_logged_in("zed", True, T0)
    with pytest.raises(ValueError, match="unknown call 'nope'"):
        center.offer_answered("nope", "alice", T0)
    with pytest.raises(ValueError, match="call 'c1' is not ringing agent 'bob'"):
        center.offer_answered("c1", "bob", T0)
    with pytest.raises(ValueError, match="call 'c1' is already in queue 'sales'"):
        center.enqueue("c1", "support", T0)
    with pytest.raises(ValueError, match="unknown queue 'nope'"):
        center.waiting("nope")
    center.offer_answered("c1", "alice", T0 + 1)
    with pytest.raises(ValueError, match="call 'c1' is not ringing agent 'alice'"):
        center.offer_failed("c1", "alice", T0 + 2, "no answer")


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="agent 'a' is defined twice"):
        acd(agent("a", "sales"), agent("a", "support"))
    with pytest.raises(ValueError, match="agent 'a': unknown queue 'billing'"):
        acd(agent("a", "billing"))
    with pytest.raises(ValueError, match="queue 'x': its rules are named 'y'"):
        Acd({"x": QueueRules("y", 15, 600)}, [], T0)
    with pytest.raises(ValueError, match="queue 'x': ring_timeout and max_wait must be positive"):
        Acd({"x": QueueRules("x", 0, 600)}, [], T0)


def test_the_snapshot_is_plain_data() -> None:
    center = acd(agent("alice", "sales"), agent("bob", "support", logged_in=False))
    center.enqueue("c1", "sales", T0 + 1)
    center.enqueue("c2", "sales", T0 + 2)
    assert center.snapshot() == {
        "queues": {
            "sales": {
                "ring_timeout": 15,
                "max_wait": 600,
                "calls": [
                    {
                        "call_id": "c1",
                        "state": "ringing",
                        "waiting_since": T0 + 1,
                        "agent_id": "alice",
                        "tried": [],
                        "last_failure": None,
                    },
                    {
                        "call_id": "c2",
                        "state": "waiting",
                        "waiting_since": T0 + 2,
                        "agent_id": None,
                        "tried": [],
                        "last_failure": None,
                    },
                ],
            },
            "support": {"ring_timeout": 20, "max_wait": 300, "calls": []},
            "empty": {"ring_timeout": 15, "max_wait": 600, "calls": []},
        },
        "agents": {
            "alice": {
                "state": "ringing",
                "queues": ["sales"],
                "idle_since": T0,
                "call_id": "c1",
                "logging_out": False,
            },
            "bob": {
                "state": "logged_out",
                "queues": ["support"],
                "idle_since": T0,
                "call_id": None,
                "logging_out": False,
            },
        },
    }


# --------------------------------------------------------------------------- properties

AGENT_IDS = ("a1", "a2", "a3", "a4")
QUEUE_NAMES = tuple(RULES)


class Observer:
    """Checks every action the ACD returns against what the outside world has seen."""

    def __init__(self, center: Acd, agents: dict[str, AgentSpec]) -> None:
        self.center = center
        self.agents = agents
        self.queue_of: dict[str, str] = {}  # live calls
        self.enqueued_at: dict[str, float] = {}
        self.ringing: dict[str, str] = {}  # call -> agent with an open offer
        self.talking: dict[str, str] = {}  # call -> agent
        self.gone: set[str] = set()
        self.tried: dict[str, set[str]] = {}  # call -> agents whose offer failed this round
        self.logged_in = {agent_id: spec.logged_in for agent_id, spec in agents.items()}

    def agent_on(self, agent_id: str) -> bool:
        return agent_id in self.ringing.values() or agent_id in self.talking.values()

    def apply(self, actions: Iterable[AcdAction], now: float) -> None:
        for action in actions:
            match action:
                case OfferCall(call_id=call_id, agent_id=agent_id, ring_timeout=ring_timeout):
                    assert call_id in self.queue_of and call_id not in self.gone
                    assert call_id not in self.ringing and call_id not in self.talking
                    assert not self.agent_on(agent_id), f"{agent_id} offered two calls"
                    assert self.queue_of[call_id] in self.agents[agent_id].queues
                    assert ring_timeout == RULES[self.queue_of[call_id]].ring_timeout
                    assert now - self.enqueued_at[call_id] <= RULES[self.queue_of[call_id]].max_wait
                    if agent_id in self.tried[call_id]:
                        # The same agent again only in a new round: every one was tried.
                        serving = self.serving_logged_in(self.queue_of[call_id])
                        assert serving <= self.tried[call_id], (call_id, agent_id, serving)
                        self.tried[call_id] = set()
                    self.ringing[call_id] = agent_id
                case QueueTimedOut(call_id=call_id):
                    assert call_id in self.queue_of and call_id not in self.talking
                    assert call_id not in self.ringing
                    assert now - self.enqueued_at[call_id] > RULES[self.queue_of[call_id]].max_wait
                    self.forget(call_id)
                case NoAgentAvailable(call_id=call_id):
                    self.forget(call_id)

    def serving_logged_in(self, queue: str) -> set[str]:
        return {a for a, spec in self.agents.items() if queue in spec.queues and self.logged_in[a]}

    def forget(self, call_id: str) -> None:
        self.queue_of.pop(call_id, None)
        self.ringing.pop(call_id, None)
        self.talking.pop(call_id, None)
        self.gone.add(call_id)

    def check_state(self, now: float) -> None:
        snapshot = self.center.snapshot()
        for agent_id in self.agents:
            state = self.center.agent_state(agent_id)
            assert (state is AgentState.RINGING) == (agent_id in self.ringing.values())
            assert (state is AgentState.BUSY) == (agent_id in self.talking.values())
            if not self.agent_on(agent_id):
                free = AgentState.IDLE if self.logged_in[agent_id] else AgentState.LOGGED_OUT
                assert state is free
        for queue in QUEUE_NAMES:
            waiting = self.center.waiting(queue)
            expected = [
                c
                for c, q in self.queue_of.items()
                if q == queue and c not in self.talking  # in arrival order
            ]
            assert waiting == expected
            for call in snapshot["queues"][queue]["calls"]:
                assert set(call["tried"]) == self.tried[call["call_id"]]
                if call["state"] != "waiting":
                    continue
                if now - call["waiting_since"] > RULES[queue].max_wait:
                    continue  # the next tick removes it
                # No agent who could take this caller sits idle, unless this round tried them.
                serving = [a for a, spec in self.agents.items() if queue in spec.queues]
                idle = [a for a in serving if snapshot["agents"][a]["state"] == "idle"]
                assert set(idle) <= set(call["tried"]), (call, idle)
                assert not idle or not self.serving_logged_in(queue) <= set(call["tried"])


@settings(max_examples=200, deadline=None)
@given(
    specs=st.lists(
        st.sets(st.sampled_from(QUEUE_NAMES[:2])).map(tuple), min_size=0, max_size=4
    ).map(
        lambda queues: {
            AGENT_IDS[i]: AgentSpec(AGENT_IDS[i], q, i % 3 != 2) for i, q in enumerate(queues)
        }
    ),
    data=st.data(),
)
def test_random_operations_keep_the_invariants(
    specs: dict[str, AgentSpec], data: st.DataObject
) -> None:
    now = T0
    center = Acd(RULES, specs.values(), now)
    seen = Observer(center, specs)
    next_call = 0
    for _ in range(data.draw(st.integers(1, 60), label="operations")):
        now += data.draw(st.sampled_from([0.0, 1.0, 10.0, 100.0]), label="time passes")
        choices = ["enqueue", "tick", "unknown"]
        if specs:
            choices.append("login")
        if seen.ringing:
            choices += ["answer", "fail"]
        if seen.queue_of:
            choices.append("leave")
        match data.draw(st.sampled_from(choices), label="operation"):
            case "enqueue":
                call_id = f"c{next_call}"
                next_call += 1
                queue = data.draw(st.sampled_from(QUEUE_NAMES))
                seen.queue_of[call_id] = queue
                seen.enqueued_at[call_id] = now
                seen.tried[call_id] = set()
                seen.apply(center.enqueue(call_id, queue, now), now)
            case "answer":
                call_id = data.draw(st.sampled_from(sorted(seen.ringing)))
                agent_id = seen.ringing.pop(call_id)
                seen.talking[call_id] = agent_id
                seen.apply(center.offer_answered(call_id, agent_id, now), now)
            case "fail":
                call_id = data.draw(st.sampled_from(sorted(seen.ringing)))
                agent_id = seen.ringing.pop(call_id)
                seen.tried[call_id].add(agent_id)
                seen.apply(center.offer_failed(call_id, agent_id, now, "no answer"), now)
            case "leave":
                call_id = data.draw(st.sampled_from(sorted(seen.queue_of)))
                seen.forget(call_id)
                seen.apply(center.caller_left(call_id, now), now)
            case "login":
                agent_id = data.draw(st.sampled_from(sorted(specs)))
                logged_in = data.draw(st.booleans())
                seen.logged_in[agent_id] = logged_in
                seen.apply(center.set_logged_in(agent_id, logged_in, now), now)
            case "tick":
                seen.apply(center.tick(now), now)
            case "unknown":
                with pytest.raises(ValueError, match="unknown call 'ghost'"):
                    center.caller_left("ghost", now)
                gone = sorted(seen.gone)
                if gone:
                    with pytest.raises(ValueError, match=gone[0]):
                        center.caller_left(gone[0], now)
        seen.check_state(now)
