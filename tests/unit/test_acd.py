"""The ACD, behaviour by behaviour: who gets which caller, when, and what agents go through."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from callcenter.core.acd import (
    Acd,
    AcdAction,
    AgentRequestDeferred,
    AgentSpec,
    AgentState,
    AgentStateChanged,
    AgentStateError,
    Announce,
    CallbackUnanswered,
    ConnectMode,
    NoAgentAvailable,
    OfferCall,
    OfferFailure,
    Overflowed,
    OverflowTier,
    QueueFull,
    QueueRules,
    QueueTimedOut,
    SkillRelaxation,
    Strategy,
    UnknownAgent,
)
from callcenter.core.acd_reference import ScanAcd

T0 = 1_700_000_000.0
READY, RINGING, ON_CALL = AgentState.READY, AgentState.RINGING, AgentState.ON_CALL
WRAP_UP, PAUSED, LOGGED_OUT = AgentState.WRAP_UP, AgentState.PAUSED, AgentState.LOGGED_OUT


def queues(*rules: QueueRules) -> dict[str, QueueRules]:
    return {rule.name: rule for rule in rules}


def sales(**settings: object) -> dict[str, QueueRules]:
    return queues(QueueRules("sales", **settings))  # type: ignore[arg-type]


def agent(agent_id: str, *queue_names: str, **skills: int) -> AgentSpec:
    return AgentSpec(agent_id, queue_names or ("sales",), skills)


def center(rules: dict[str, QueueRules], *specs: AgentSpec, login: bool = True,
           rng: random.Random | None = None) -> Acd:
    """Agents logged in one second apart, in the order given (the first idle longest)."""
    acd = Acd(rules, specs, T0, rng=rng)
    if login:
        for n, spec in enumerate(specs):
            acd.login(spec.agent_id, T0 + n, phone=f"phone-{spec.agent_id}")
    return acd


def offers(actions: list[AcdAction]) -> list[tuple[str, str]]:
    return [(a.call_id, a.agent_id) for a in actions if isinstance(a, OfferCall)]


def changes(actions: list[AcdAction]) -> list[tuple[str, AgentState, str | None]]:
    return [(a.agent_id, a.state, a.reason) for a in actions if isinstance(a, AgentStateChanged)]


def offer(call_id: str, agent_id: str, queue: str = "sales", *, ring_timeout: float = 15.0,
          mode: ConnectMode = ConnectMode.RING, virtual: bool = False) -> OfferCall:
    return OfferCall(call_id, agent_id, ring_timeout, mode, virtual, queue)


def serve(acd: Acd, call_id: str, agent_id: str, answered: float, ended: float) -> None:
    acd.offer_answered(call_id, agent_id, answered)
    acd.call_ended(call_id, ended)


# --------------------------------------------------------------------------- strategies


def test_longest_idle_offers_the_agent_idle_longest_ties_by_agent_id() -> None:
    acd = center(sales(), agent("carol"), agent("bob"))  # carol logged in first
    assert acd.enqueue("c1", "sales", T0 + 10) == [
        offer("c1", "carol"),
        AgentStateChanged("carol", RINGING, "call c1", T0 + 10, READY),
    ]
    serve(acd, "c1", "carol", T0 + 11, T0 + 20)  # carol idle since T0 + 20, bob since T0 + 1
    assert offers(acd.enqueue("c2", "sales", T0 + 21)) == [("c2", "bob")]
    tied = center(sales(), agent("bob"), agent("alice"), login=False)
    tied.login("bob", T0, phone="p1")
    tied.login("alice", T0, phone="p2")
    assert offers(tied.enqueue("c1", "sales", T0 + 1)) == [("c1", "alice")]


def test_round_robin_offers_the_next_member_after_the_last_one_offered() -> None:
    acd = center(sales(strategy=Strategy.ROUND_ROBIN), agent("x"), agent("b"), agent("m"))
    assert offers(acd.enqueue("c1", "sales", T0 + 10)) == [("c1", "x")]  # member order
    serve(acd, "c1", "x", T0 + 11, T0 + 12)
    assert offers(acd.enqueue("c2", "sales", T0 + 13)) == [("c2", "b")]
    acd.pause("m", "lunch", T0 + 14)
    serve(acd, "c2", "b", T0 + 15, T0 + 16)
    assert offers(acd.enqueue("c3", "sales", T0 + 17)) == [("c3", "x")]  # m paused: wraps


def test_fewest_calls_offers_the_agent_with_fewest_calls_from_this_queue() -> None:
    rules = queues(QueueRules("sales", strategy=Strategy.FEWEST_CALLS), QueueRules("support"))
    acd = center(rules, agent("ann", "sales", "support"), agent("ben", "sales"), login=False)
    acd.login("ann", T0, phone="1")
    acd.enqueue("p1", "support", T0 + 1)
    serve(acd, "p1", "ann", T0 + 2, T0 + 3)  # a support call: it does not count for sales
    acd.login("ben", T0 + 5, phone="2")
    assert offers(acd.enqueue("c1", "sales", T0 + 10)) == [("c1", "ann")]  # 0 each: idle longest
    serve(acd, "c1", "ann", T0 + 11, T0 + 12)
    assert offers(acd.enqueue("c2", "sales", T0 + 13)) == [("c2", "ben")]  # 0 sales calls
    serve(acd, "c2", "ben", T0 + 14, T0 + 15)
    assert offers(acd.enqueue("c3", "sales", T0 + 16)) == [("c3", "ann")]  # 1 each: idle longest
    serve(acd, "c3", "ann", T0 + 17, T0 + 18)
    acd.logout("ann", T0 + 19)
    acd.login("ann", T0 + 20, phone="1")  # her count restarts at login: 0 against ben's 1
    assert offers(acd.enqueue("c4", "sales", T0 + 21)) == [("c4", "ann")]


def test_least_talk_time_offers_the_agent_who_talked_least_since_login() -> None:
    acd = center(sales(strategy=Strategy.LEAST_TALK_TIME), agent("ann"), agent("ben"))
    acd.enqueue("c1", "sales", T0 + 10)  # ann (0 s each: longest idle)
    acd.enqueue("c2", "sales", T0 + 10)  # ben
    serve(acd, "c1", "ann", T0 + 11, T0 + 100)  # 89 s
    serve(acd, "c2", "ben", T0 + 11, T0 + 50)  # 39 s
    assert acd.agent("ann").talk_time == 89 and acd.agent("ben").talk_time == 39
    assert offers(acd.enqueue("c3", "sales", T0 + 200)) == [("c3", "ben")]


def test_random_picks_uniformly_among_the_eligible_from_the_seeded_generator() -> None:
    def picks(seed: int) -> Counter[str]:
        acd = center(sales(strategy=Strategy.RANDOM), agent("a"), agent("b"), agent("c"),
                     agent("d", fr=1), rng=random.Random(seed))
        chosen: Counter[str] = Counter()
        for n in range(900):
            now = T0 + 10 + n
            [(call_id, agent_id)] = offers(acd.enqueue(f"c{n}", "sales", now, skills={"fr": 1}
                                                       if n % 2 else {}))
            chosen[agent_id if n % 2 == 0 else "fr:" + agent_id] += 1
            acd.caller_left(call_id, now)
        return chosen

    chosen = picks(7)
    assert chosen == picks(7)  # the same seed, the same choices
    assert chosen["fr:d"] == 450  # only d has the skill
    for agent_id in "abcd":  # 450 calls among 4: about 112 each
        assert 70 < chosen[agent_id] < 160, chosen


def test_skills_offers_the_best_match_ties_by_longest_idle() -> None:
    acd = center(sales(strategy=Strategy.SKILLS), agent("ann", fr=3, de=9), agent("ben", fr=6),
                 agent("cat", fr=9), agent("dan", fr=6, de=1))
    assert offers(acd.enqueue("c1", "sales", T0 + 10, skills={"fr": 5})) == [("c1", "cat")]
    # ann 3+9 = 12 beats dan 6+1: over-qualified in de counts, fr just needs 1
    assert offers(acd.enqueue("c2", "sales", T0 + 11, skills={"fr": 1, "de": 1})) == [
        ("c2", "ann")]
    # ben and dan both have fr 6: ben idle longer
    assert offers(acd.enqueue("c3", "sales", T0 + 12, skills={"fr": 6})) == [("c3", "ben")]
    assert offers(acd.enqueue("c4", "sales", T0 + 13)) == [("c4", "dan")]  # no skills: idle


# --------------------------------------------------------------------------- the line


def test_a_higher_priority_caller_goes_first_then_the_longest_waiting() -> None:
    acd = center(sales(), agent("ann"))
    acd.enqueue("c0", "sales", T0 + 5)  # ann is busy with it
    acd.enqueue("low-old", "sales", T0 + 10)
    acd.enqueue("high", "sales", T0 + 20, priority=2)
    acd.enqueue("low-new", "sales", T0 + 30)
    acd.enqueue("callback", "sales", T0 + 40, waiting_since=T0 + 1)  # asked for at T0 + 1
    assert acd.waiting("sales") == ["high", "callback", "c0", "low-old", "low-new"]
    assert acd.position("high") == 1 and acd.position("c0") == 3
    assert offers(acd.caller_left("c0", T0 + 50)) == [("high", "ann")]


def test_a_call_rings_one_agent_at_a_time_and_an_agent_gets_one_call_at_a_time() -> None:
    acd = center(sales(), agent("ann"), agent("ben"))
    assert offers(acd.enqueue("c1", "sales", T0 + 10)) == [("c1", "ann")]
    assert offers(acd.enqueue("c2", "sales", T0 + 10)) == [("c2", "ben")]
    assert acd.enqueue("c3", "sales", T0 + 10) == []
    assert offers(acd.offer_failed("c1", "ann", T0 + 25, OfferFailure.REJECTED)) == [
        ("c3", "ann")]  # c1 waits for ben, who has not been tried


def test_a_failed_offer_goes_to_the_next_agent_then_a_new_round_starts() -> None:
    acd = center(sales(rona_pause=False), agent("ann"), agent("ben"), agent("cat"))
    acd.enqueue("c1", "sales", T0 + 10)
    assert offers(acd.offer_failed("c1", "ann", T0 + 25, OfferFailure.NO_ANSWER)) == [
        ("c1", "ben")]
    assert acd.agent_state("ann") is READY
    assert offers(acd.offer_failed("c1", "ben", T0 + 40, OfferFailure.REJECTED)) == [
        ("c1", "cat")]
    # Everybody had their chance: a new round, longest idle first (a failed ring kept it).
    assert offers(acd.offer_failed("c1", "cat", T0 + 55, OfferFailure.NO_ANSWER)) == [
        ("c1", "ann")]
    assert acd.snapshot(T0 + 55)["queues"]["sales"]["calls"][0]["tried"] == []


def test_when_the_last_untried_agent_leaves_a_new_round_starts() -> None:
    acd = center(sales(wrap_up=None), agent("ann"), agent("ben"))
    acd.enqueue("c0", "sales", T0 + 5)  # ann
    acd.enqueue("c1", "sales", T0 + 6)  # ben
    serve(acd, "c0", "ann", T0 + 7, T0 + 8)  # ann in manual wrap-up
    assert offers(acd.offer_failed("c1", "ben", T0 + 21, OfferFailure.REJECTED)) == []
    assert acd.pause("ann", "break", T0 + 30) == [
        AgentStateChanged("ann", PAUSED, "break", T0 + 30, WRAP_UP),
        offer("c1", "ben"),
        AgentStateChanged("ben", RINGING, "call c1", T0 + 30, READY),
    ]


def test_a_caller_behind_one_whose_offer_failed_may_get_that_agent() -> None:
    acd = center(sales(rona_pause=False), agent("ann"), agent("ben"))
    acd.enqueue("c0", "sales", T0 + 5)  # ann
    acd.enqueue("c1", "sales", T0 + 6)  # ben
    acd.offer_answered("c1", "ben", T0 + 7)
    acd.enqueue("c2", "sales", T0 + 8)
    assert offers(acd.offer_failed("c0", "ann", T0 + 20, OfferFailure.NO_ANSWER)) == [
        ("c2", "ann")]  # c0 waits for ben, its next untried agent
    assert acd.waiting("sales") == ["c0", "c2"]


def test_a_caller_who_hangs_up_while_ringing_frees_the_agent_with_idle_time_kept() -> None:
    acd = center(sales(), agent("ann"))
    acd.enqueue("c1", "sales", T0 + 10)
    acd.enqueue("c2", "sales", T0 + 11)
    actions = acd.caller_left("c1", T0 + 12)
    assert changes(actions)[0] == ("ann", READY, "caller left")
    assert offers(actions) == [("c2", "ann")]
    assert acd.agent("ann").idle_since == T0
    assert acd.waiting("sales") == ["c2"]
    with pytest.raises(ValueError, match="unknown call 'c1'"):
        acd.caller_left("c1", T0 + 13)


def test_a_caller_who_hangs_up_while_talking_ends_the_call() -> None:
    acd = center(sales(wrap_up=30), agent("ann"))
    acd.enqueue("c1", "sales", T0 + 10)
    acd.offer_answered("c1", "ann", T0 + 11)
    assert changes(acd.caller_left("c1", T0 + 41)) == [("ann", WRAP_UP, "call ended")]
    assert acd.agent("ann").calls_answered == 1 and acd.agent("ann").talk_time == 30


# --------------------------------------------------------------------------- tiers and skills


def test_overflow_tier_agents_serve_a_caller_only_once_the_tier_opens() -> None:
    rules = queues(QueueRules("sales", tiers=(OverflowTier(30, ("sam",)),
                                              OverflowTier(60, ("tom",)))),
                   QueueRules("support"))
    acd = center(rules, agent("ann"), agent("sam", "support"), agent("tom", "support"))
    acd.enqueue("c0", "sales", T0 + 10)  # ann
    acd.enqueue("c1", "sales", T0 + 10)
    assert acd.tick(T0 + 39.9) == []
    # The tick comes late: the offer is dated when the tier opened.
    assert acd.tick(T0 + 45) == [
        offer("c1", "sam"), AgentStateChanged("sam", RINGING, "call c1", T0 + 40, READY)]
    assert offers(acd.enqueue("c2", "sales", T0 + 46)) == []  # its own tiers start closed
    assert offers(acd.tick(T0 + 106)) == [("c2", "tom")]  # tier 1 (sam: busy), then tier 2


def test_a_call_needing_a_skill_waits_for_an_agent_at_that_level() -> None:
    acd = center(sales(), agent("ann", fr=3), agent("ben", de=8))
    assert acd.enqueue("c1", "sales", T0 + 10, skills={"fr": 4}) == []
    assert offers(acd.enqueue("c2", "sales", T0 + 11, skills={"fr": 3})) == [("c2", "ann")]
    assert offers(acd.update_agent(agent("ben", de=8, fr=5), T0 + 12)) == [("c1", "ben")]


def test_skill_requirements_relax_as_the_wait_grows_and_drop_at_zero() -> None:
    rules = sales(relax=(SkillRelaxation(30, 2), SkillRelaxation(60, 5)))
    acd = center(rules, agent("ben"), agent("ann", fr=5))
    acd.enqueue("c1", "sales", T0 + 10, skills={"fr": 7, "de": 5})
    assert acd.tick(T0 + 39) == []
    assert acd.tick(T0 + 40) == []  # fr 5 and de 3 needed now: nobody has de
    assert offers(acd.tick(T0 + 70)) == [("c1", "ben")]  # both dropped: ben, idle longest


# --------------------------------------------------------------------------- agents


def test_an_unanswered_ring_pauses_the_agent_with_reason_rona() -> None:
    acd = center(sales(), agent("ann"), agent("ben"))
    acd.enqueue("c1", "sales", T0 + 10)
    assert acd.offer_failed("c1", "ann", T0 + 25, OfferFailure.NO_ANSWER) == [
        AgentStateChanged("ann", PAUSED, "RONA", T0 + 25, RINGING),
        offer("c1", "ben"),
        AgentStateChanged("ben", RINGING, "call c1", T0 + 25, READY),
    ]
    assert acd.agent("ann").reason == "RONA"
    assert changes(acd.ready("ann", T0 + 60)) == [("ann", READY, "ready")]
    assert acd.agent("ann").idle_since == T0 + 60


def test_an_unreachable_phone_gets_no_offers_until_it_is_back() -> None:
    acd = center(sales(), agent("ann"), agent("ben"))
    acd.set_reachable("ann", False, T0 + 5)
    assert offers(acd.enqueue("c1", "sales", T0 + 10)) == [("c1", "ben")]
    assert acd.offer_failed("c1", "ben", T0 + 11, OfferFailure.UNREACHABLE) == [
        AgentStateChanged("ben", READY, "phone unreachable", T0 + 11, RINGING)]
    view = acd.agent("ben")
    assert (view.state, view.reachable) == (READY, False)
    assert offers(acd.set_reachable("ann", True, T0 + 20)) == [("c1", "ann")]
    assert acd.agent_state("ann") is RINGING


def test_timed_wrap_up_ends_by_itself_and_the_agent_takes_the_next_caller() -> None:
    acd = center(sales(wrap_up=30), agent("ann"))
    acd.enqueue("c1", "sales", T0 + 10)
    acd.offer_answered("c1", "ann", T0 + 11)
    acd.enqueue("c2", "sales", T0 + 20)
    assert changes(acd.call_ended("c1", T0 + 71)) == [("ann", WRAP_UP, "call ended")]
    assert acd.tick(T0 + 100) == []
    assert acd.tick(T0 + 101) == [
        AgentStateChanged("ann", READY, "wrap-up ended", T0 + 101, WRAP_UP),
        offer("c2", "ann"),
        AgentStateChanged("ann", RINGING, "call c2", T0 + 101, READY),
    ]
    assert acd.queue_stats("sales", T0 + 101).aht == pytest.approx(0.8 * 180 + 0.2 * 90)


def test_manual_wrap_up_lasts_until_the_agent_says_ready() -> None:
    acd = center(sales(wrap_up=None), agent("ann"))
    acd.enqueue("c1", "sales", T0 + 10)
    serve(acd, "c1", "ann", T0 + 11, T0 + 21)
    acd.enqueue("c2", "sales", T0 + 30)
    assert acd.tick(T0 + 500) == []
    assert acd.agent_state("ann") is WRAP_UP
    actions = acd.ready("ann", T0 + 501)
    assert changes(actions)[0] == ("ann", READY, "ready")
    assert offers(actions) == [("c2", "ann")]


def test_without_wrap_up_the_agent_is_ready_at_once_with_no_wrap_up_state() -> None:
    acd = center(sales(wrap_up=0), agent("ann"))
    acd.enqueue("c1", "sales", T0 + 10)
    acd.offer_answered("c1", "ann", T0 + 11)
    assert acd.call_ended("c1", T0 + 50) == [
        AgentStateChanged("ann", READY, "call ended", T0 + 50, ON_CALL)]
    assert acd.agent("ann").idle_since == T0 + 50


def test_a_pause_during_a_call_applies_when_the_call_and_its_wrap_up_end() -> None:
    acd = center(sales(wrap_up=10), agent("ann"))
    acd.enqueue("c1", "sales", T0 + 10)
    acd.offer_answered("c1", "ann", T0 + 11)
    assert acd.pause("ann", "lunch", T0 + 12) == [AgentRequestDeferred("ann", "pause")]
    assert acd.agent("ann").deferred == "pause"
    acd.call_ended("c1", T0 + 20)
    acd.enqueue("c2", "sales", T0 + 25)
    assert acd.tick(T0 + 30) == [AgentStateChanged("ann", PAUSED, "lunch", T0 + 30, WRAP_UP)]


def test_a_logout_while_ringing_applies_when_the_ring_ends() -> None:
    acd = center(sales(), agent("ann"), agent("ben"))
    acd.enqueue("c1", "sales", T0 + 10)
    assert acd.logout("ann", T0 + 11) == [AgentRequestDeferred("ann", "logout")]
    actions = acd.offer_failed("c1", "ann", T0 + 25, OfferFailure.NO_ANSWER)
    assert changes(actions)[0] == ("ann", LOGGED_OUT, "logout deferred until ring ended")
    assert offers(actions) == [("c1", "ben")]
    assert acd.agent("ann").phone is None


def test_a_pause_asked_while_ringing_wins_over_rona_when_the_ring_goes_unanswered() -> None:
    acd = center(sales(), agent("ann"))
    acd.enqueue("c1", "sales", T0 + 10)
    acd.pause("ann", "meeting", T0 + 11)
    assert changes(acd.offer_failed("c1", "ann", T0 + 25, OfferFailure.NO_ANSWER)) == [
        ("ann", PAUSED, "meeting")]
    assert acd.agent("ann").deferred is None


def test_a_logout_during_a_call_applies_when_it_ends_even_with_manual_wrap_up() -> None:
    acd = center(sales(wrap_up=None), agent("ann"))
    acd.enqueue("c1", "sales", T0 + 10)
    acd.offer_answered("c1", "ann", T0 + 11)
    acd.logout("ann", T0 + 12)
    assert changes(acd.call_ended("c1", T0 + 20)) == [
        ("ann", LOGGED_OUT, "logout deferred until call ended")]


def test_ready_cancels_a_deferred_request() -> None:
    acd = center(sales(), agent("ann"))
    acd.enqueue("c1", "sales", T0 + 10)
    acd.offer_answered("c1", "ann", T0 + 11)
    acd.pause("ann", "break", T0 + 12)
    assert acd.ready("ann", T0 + 13) == []
    assert acd.agent("ann").deferred is None
    assert changes(acd.call_ended("c1", T0 + 20)) == [("ann", READY, "call ended")]


def test_a_paused_agent_may_change_the_reason_and_ready_when_ready_does_nothing() -> None:
    acd = center(sales(), agent("ann"))
    assert acd.ready("ann", T0 + 5) == []
    acd.pause("ann", "break", T0 + 10)
    assert acd.pause("ann", "break", T0 + 11) == []  # no change, nothing to report
    assert acd.pause("ann", "lunch", T0 + 12) == [
        AgentStateChanged("ann", PAUSED, "lunch", T0 + 12, PAUSED)]


def test_login_twice_is_refused_naming_the_phone_or_the_agent() -> None:
    acd = center(sales(), agent("ann"), agent("ben"), login=False)
    acd.login("ann", T0, phone="1001", mode=ConnectMode.NAILED)
    with pytest.raises(AgentStateError, match="agent 'ann' is already logged in"):
        acd.login("ann", T0 + 1, phone="1001")
    with pytest.raises(AgentStateError, match="agent 'ann' is logged in on phone '1001'"):
        acd.login("ann", T0 + 1, phone="1002")
    with pytest.raises(AgentStateError, match="phone '1001' is in use by agent 'ann'"):
        acd.login("ben", T0 + 1, phone="1001")
    assert acd.enqueue("c1", "sales", T0 + 2)[0] == offer("c1", "ann", mode=ConnectMode.NAILED)
    acd.caller_left("c1", T0 + 3)
    acd.logout("ann", T0 + 4)
    assert changes(acd.login("ben", T0 + 5, phone="1001")) == [("ben", READY, "login")]


def test_requests_that_do_not_fit_the_state_are_refused_saying_what_to_do() -> None:
    acd = center(sales(), agent("ann"), agent("ben"), login=False)
    with pytest.raises(AgentStateError, match="agent 'ann' is already logged out"):
        acd.logout("ann", T0)
    with pytest.raises(AgentStateError, match="agent 'ann' is logged out: log in first"):
        acd.pause("ann", "lunch", T0)
    with pytest.raises(AgentStateError, match="agent 'ann' is logged out: log in first"):
        acd.ready("ann", T0)
    with pytest.raises(AgentStateError, match="unknown pause reason 'nap'; use one of: break, "
                                              "lunch, training, meeting, coaching, RONA"):
        acd.pause("ann", "nap", T0)
    with pytest.raises(UnknownAgent, match="unknown agent 'zed'"):
        acd.login("zed", T0, phone="1")
    with pytest.raises(ValueError, match="phone must be a non-empty string"):
        acd.login("ann", T0, phone="")
    acd.login("ann", T0, phone="1")
    acd.enqueue("c1", "sales", T0 + 1)
    with pytest.raises(AgentStateError, match="agent 'ann' is on a call: remove them after"):
        acd.remove_agent("ann", T0 + 2)
    with pytest.raises(ValueError, match="call 'c1' is not ringing agent 'ben'"):
        acd.offer_answered("c1", "ben", T0 + 2)
    with pytest.raises(ValueError, match="call 'c1' is ringing, not talking: use caller_left"):
        acd.call_ended("c1", T0 + 2)
    with pytest.raises(ValueError, match="call 'c1' is not a callback"):
        acd.offer_failed("c1", "ann", T0 + 2, OfferFailure.CUSTOMER_NO_ANSWER)
    with pytest.raises(ValueError, match="unknown offer failure 'busy'"):
        acd.offer_failed("c1", "ann", T0 + 2, "busy")  # type: ignore[arg-type]


def test_agents_can_be_added_updated_and_removed_at_runtime() -> None:
    rules = queues(QueueRules("sales", tiers=(OverflowTier(0, ("tim",)),)), QueueRules("support"))
    acd = center(rules, agent("ann", "support"), agent("tim", "support"))
    assert changes(acd.remove_agent("tim", T0 + 4)) == [("tim", LOGGED_OUT, "removed")]
    assert acd.enqueue("c1", "sales", T0 + 5) == [
        NoAgentAvailable("c1", reason="queue has no agents")]
    assert acd.add_agent(agent("tim", "support"), T0 + 6) == []  # named in the tier: serves sales
    assert acd.agent_state("tim") is LOGGED_OUT
    acd.enqueue("c2", "sales", T0 + 7)
    assert offers(acd.login("tim", T0 + 8, phone="9")) == [("c2", "tim")]
    assert offers(acd.update_agent(agent("ann", "support", "sales"), T0 + 9)) == []
    acd.enqueue("c3", "sales", T0 + 10)
    assert acd.agent_state("ann") is RINGING  # the new membership took effect
    acd.caller_left("c3", T0 + 11)
    assert changes(acd.remove_agent("ann", T0 + 12)) == [("ann", LOGGED_OUT, "removed")]
    with pytest.raises(UnknownAgent):
        acd.agent("ann")
    with pytest.raises(ValueError, match="agent 'tim' already exists: use update_agent"):
        acd.add_agent(agent("tim"), T0 + 13)
    with pytest.raises(ValueError, match="agent 'x': unknown queue 'nope'"):
        acd.add_agent(agent("x", "nope"), T0 + 13)


# --------------------------------------------------------------------------- queue limits


def test_a_full_queue_overflows_new_callers_keeping_their_waiting_time() -> None:
    rules = queues(QueueRules("sales", max_length=2, overflow_to="support"),
                   QueueRules("support"))
    acd = center(rules, agent("ann", "sales"), agent("bob", "support"))
    acd.enqueue("c1", "sales", T0 + 10)  # ann, ringing: still counts
    acd.enqueue("c2", "sales", T0 + 11)
    acd.enqueue("s1", "support", T0 + 12)  # bob
    acd.enqueue("s2", "support", T0 + 13)
    assert acd.enqueue("c3", "sales", T0 + 14, waiting_since=T0 + 2) == [
        Overflowed("c3", "sales", "support")]
    assert acd.waiting("support") == ["c3", "s1", "s2"]  # its place by waiting_since


def test_a_full_queue_without_overflow_target_refuses_the_caller() -> None:
    acd = center(sales(max_length=1), agent("ann"))
    acd.enqueue("c1", "sales", T0 + 10)  # ringing: still in line
    assert acd.enqueue("c2", "sales", T0 + 11) == [QueueFull("c2", "sales")]
    assert acd.waiting("sales") == ["c1"]
    acd.offer_answered("c1", "ann", T0 + 12)  # answered: out of the line
    assert acd.enqueue("c2", "sales", T0 + 13) == []


def test_a_caller_past_max_wait_overflows_or_times_out() -> None:
    rules = queues(QueueRules("sales", max_wait=60, overflow_to="support"),
                   QueueRules("support", max_wait=100))
    acd = center(rules, agent("ann", "sales", "support"))
    acd.enqueue("c0", "sales", T0 + 1)  # ann is busy with it
    acd.enqueue("c1", "sales", T0 + 10)
    assert acd.tick(T0 + 69) == []
    assert acd.tick(T0 + 70) == [Overflowed("c1", "sales", "support")]
    assert acd.waiting("support") == ["c1"]
    assert acd.tick(T0 + 169) == []  # support's max_wait counts from joining it
    assert acd.tick(T0 + 170) == [QueueTimedOut("c1", "support")]
    assert acd.waiting("support") == []


def test_a_ringing_caller_past_max_wait_expires_only_if_that_ring_fails() -> None:
    acd = center(sales(max_wait=30, rona_pause=False), agent("ann"))
    acd.enqueue("c1", "sales", T0 + 10)
    acd.enqueue("c2", "sales", T0 + 10)
    assert acd.tick(T0 + 40) == [QueueTimedOut("c2", "sales")]  # c1 rings on
    assert acd.offer_failed("c1", "ann", T0 + 41, OfferFailure.NO_ANSWER) == [
        AgentStateChanged("ann", READY, "ring not answered", T0 + 41, RINGING),
        QueueTimedOut("c1", "sales"),
    ]


def test_a_queue_nobody_serves_refuses_calls_but_one_with_agents_logged_out_keeps_them() -> None:
    acd = center(queues(QueueRules("sales"), QueueRules("empty")), agent("ann"), login=False)
    assert acd.enqueue("c1", "empty", T0) == [NoAgentAvailable("c1", "queue has no agents")]
    assert acd.enqueue("c1", "sales", T0) == []  # the id was not kept
    assert offers(acd.login("ann", T0 + 5, phone="1")) == [("c1", "ann")]
    with pytest.raises(ValueError, match="call 'c2': unknown queue 'billing'"):
        acd.enqueue("c2", "billing", T0)
    with pytest.raises(ValueError, match="call 'c1' is already in queue 'sales'"):
        acd.enqueue("c1", "sales", T0 + 6)


# --------------------------------------------------------------------------- virtual hold


def test_a_caller_on_virtual_hold_keeps_their_place_and_gets_a_callback_offer() -> None:
    acd = center(sales(max_wait=60, announce_every=20), agent("ann"))
    acd.enqueue("c0", "sales", T0 + 1)
    acd.offer_answered("c0", "ann", T0 + 2)
    acd.enqueue("c1", "sales", T0 + 10)
    acd.enqueue("c2", "sales", T0 + 11)
    assert acd.to_virtual_hold("c1", T0 + 15) == []
    assert acd.waiting("sales") == ["c1", "c2"]
    assert acd.tick(T0 + 100) == [  # c1 is not on the line: no announcement, no max_wait
        Announce("c2", 2, 360.0), Announce("c2", 2, 360.0), QueueTimedOut("c2", "sales")]
    assert acd.call_ended("c0", T0 + 120) == [
        AgentStateChanged("ann", READY, "call ended", T0 + 120, ON_CALL),
        offer("c1", "ann", virtual=True),
        AgentStateChanged("ann", RINGING, "call c1", T0 + 120, READY),
    ]
    with pytest.raises(ValueError, match="call 'c1' is ringing, not waiting"):
        acd.to_virtual_hold("c1", T0 + 121)


def test_an_unanswered_callback_is_removed_and_the_agent_keeps_their_idle_time() -> None:
    acd = center(sales(), agent("ann"))
    acd.enqueue("cb", "sales", T0 + 10, virtual=True, waiting_since=T0 - 600)
    assert acd.offer_failed("cb", "ann", T0 + 30, OfferFailure.CUSTOMER_NO_ANSWER) == [
        AgentStateChanged("ann", READY, "callback not answered", T0 + 30, RINGING),
        CallbackUnanswered("cb"),
    ]
    assert acd.waiting("sales") == [] and acd.agent("ann").idle_since == T0


# --------------------------------------------------------------------------- waiting callers


def test_waiting_callers_hear_their_position_and_expected_wait() -> None:
    acd = center(sales(announce_every=30, default_handle_time=120), agent("ann"), agent("ben"),
                 agent("cat"))
    acd.pause("cat", "lunch", T0 + 2)  # paused agents do not count
    acd.enqueue("c1", "sales", T0 + 10)  # ann
    acd.enqueue("c2", "sales", T0 + 10)  # ben
    acd.enqueue("c3", "sales", T0 + 10)
    acd.enqueue("c4", "sales", T0 + 25)
    # c1 and c2 are ringing: no announcement, but they count ahead of c3 and c4.
    assert acd.tick(T0 + 40) == [Announce("c3", 3, 3 * 120 / 2)]
    assert acd.tick(T0 + 55) == [Announce("c4", 4, 4 * 120 / 2)]
    assert acd.expected_wait("c4", T0 + 55) == 240
    acd.logout("cat", T0 + 56)
    acd.offer_failed("c1", "ann", T0 + 57, OfferFailure.NO_ANSWER)  # RONA: paused
    acd.offer_failed("c2", "ben", T0 + 57, OfferFailure.NO_ANSWER)
    assert acd.expected_wait("c4", T0 + 58) == 4 * 120  # nobody: one handle time each


def test_expected_wait_follows_the_measured_handle_time() -> None:
    acd = center(sales(wrap_up=None, default_handle_time=100), agent("ann"))
    acd.enqueue("c1", "sales", T0 + 10)
    serve(acd, "c1", "ann", T0 + 10, T0 + 210)  # 200 s talk
    acd.ready("ann", T0 + 260)  # + 50 s wrap-up
    assert acd.queue_stats("sales", T0 + 260).aht == pytest.approx(100 + 0.2 * (250 - 100))
    acd.enqueue("c2", "sales", T0 + 300)  # ann
    acd.enqueue("c3", "sales", T0 + 300)
    assert acd.position("c3") == 2
    assert acd.expected_wait("c3", T0 + 300) == pytest.approx(2 * 130)


def test_move_transfers_a_call_to_another_queue_as_a_new_wait() -> None:
    rules = queues(QueueRules("sales", wrap_up=10), QueueRules("support"))
    acd = center(rules, agent("ann", "sales"), agent("bob", "support"))
    acd.enqueue("s0", "support", T0 + 1)  # bob is busy with it
    acd.enqueue("c1", "sales", T0 + 5, priority=3, skills={"fr": 1})  # ann: no fr, waits
    assert acd.move("c1", "support", T0 + 20) == []
    assert acd.waiting("sales") == [] and acd.waiting("support") == ["c1", "s0"]  # priority 3
    assert acd.snapshot(T0 + 20)["queues"]["support"]["calls"][0]["waiting_since"] == T0 + 20
    acd.update_agent(agent("bob", "support", fr=2), T0 + 21)
    assert offers(acd.caller_left("s0", T0 + 30)) == [("c1", "bob")]
    with pytest.raises(ValueError, match="call 'c1' is ringing agent 'bob': move it when"):
        acd.move("c1", "sales", T0 + 31)
    acd.offer_answered("c1", "bob", T0 + 32)
    acd.enqueue("c2", "support", T0 + 33)
    # bob transfers c1 back to sales: his call is over (no wrap-up in support), c2 is his.
    actions = acd.move("c1", "sales", T0 + 40)
    assert changes(actions)[0] == ("bob", READY, "call ended")
    assert offers(actions) == [("c2", "bob")]
    assert acd.waiting("sales") == ["c1"] and acd.agent("bob").calls_answered == 1


# --------------------------------------------------------------------------- time and state


def test_timers_fire_at_their_own_time_whatever_the_tick_rate() -> None:
    acd = center(sales(wrap_up=5), agent("ann"))
    acd.enqueue("c1", "sales", T0 + 10)
    serve(acd, "c1", "ann", T0 + 11, T0 + 20)
    acd.enqueue("c2", "sales", T0 + 21)
    # Any call applies what fell due first: here ann's wrap-up ended at T0 + 25.
    assert acd.enqueue("c3", "sales", T0 + 90) == [
        AgentStateChanged("ann", READY, "wrap-up ended", T0 + 25, WRAP_UP),
        offer("c2", "ann"),
        AgentStateChanged("ann", RINGING, "call c2", T0 + 25, READY),
    ]
    assert acd.tick(T0 + 90) == []


def test_actions_due_before_a_refused_request_come_with_the_next_call() -> None:
    acd = center(sales(wrap_up=5), agent("ann"))
    acd.enqueue("c1", "sales", T0 + 10)
    serve(acd, "c1", "ann", T0 + 11, T0 + 20)  # wrap-up until T0 + 25
    acd.enqueue("c2", "sales", T0 + 21)
    with pytest.raises(AgentStateError, match="agent 'ann' is already logged in"):
        acd.login("ann", T0 + 30, phone="phone-ann")  # the wrap-up ended first
    assert acd.tick(T0 + 30) == [
        AgentStateChanged("ann", READY, "wrap-up ended", T0 + 25, WRAP_UP),
        offer("c2", "ann"),
        AgentStateChanged("ann", RINGING, "call c2", T0 + 25, READY),
    ]


def test_the_snapshot_and_views_are_plain_data() -> None:
    rules = queues(QueueRules("sales", strategy=Strategy.SKILLS, wrap_up=None))
    acd = center(rules, agent("ann", fr=4), agent("ben"))
    acd.enqueue("c1", "sales", T0 + 10, skills={"fr": 2})
    acd.offer_answered("c1", "ann", T0 + 11)
    acd.enqueue("c2", "sales", T0 + 12, priority=1)  # ben
    acd.enqueue("c3", "sales", T0 + 13, skills={"fr": 9})
    acd.pause("ben", "lunch", T0 + 14)
    snapshot = acd.snapshot(T0 + 20)
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert snapshot["queues"]["sales"]["calls"] == [
        {"call_id": "c2", "state": "ringing", "position": 1, "expected_wait": 90.0,
         "priority": 1, "virtual": False, "waiting_since": T0 + 12, "joined_at": T0 + 12,
         "skills": {}, "needed": {}, "agent_id": "ben", "for_agent": None, "tried": [],
             "last_failure": None},
        {"call_id": "c3", "state": "waiting", "position": 2, "expected_wait": 180.0,
         "priority": 0, "virtual": False, "waiting_since": T0 + 13, "joined_at": T0 + 13,
         "skills": {"fr": 9}, "needed": {"fr": 9}, "agent_id": None, "for_agent": None,
             "tried": [],
         "last_failure": None},
    ]
    assert snapshot["agents"]["ann"] == {
        "state": "on_call", "reason": "answered", "since": T0 + 11, "idle_since": T0,
        "phone": "phone-ann", "mode": "ring", "reachable": True, "call_id": "c1",
        "queues": ["sales"], "skills": {"fr": 4}, "calls_answered": 0, "talk_time": 0.0,
        "deferred": None}
    assert snapshot["agents"]["ben"]["deferred"] == "pause"
    stats = acd.queue_stats("sales", T0 + 20)
    assert (stats.waiting, stats.longest_wait, stats.ready, stats.busy, stats.wrap_up,
            stats.paused, stats.logged_in, stats.aht) == (2, 8, 0, 2, 0, 0, 2, 180)
    with pytest.raises(ValueError, match="unknown queue 'x'"):
        acd.queue_stats("x", T0)
    with pytest.raises(ValueError, match="call 'c1' is talking, not waiting in line"):
        acd.position("c1")


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(("make", "message"), [
    (lambda: QueueRules(""), "queue name must be a non-empty string"),
    (lambda: QueueRules("q", strategy="fastest"), "queue 'q': unknown strategy 'fastest'"),
    (lambda: QueueRules("q", ring_timeout=0), "queue 'q': ring_timeout must be finite and > 0"),
    (lambda: QueueRules("q", max_wait=float("nan")), "queue 'q': max_wait must be a number"),
    (lambda: QueueRules("q", max_length=0), "queue 'q': max_length must be None or an integer"),
    (lambda: QueueRules("q", overflow_to="q"), "queue 'q': overflow_to names the queue itself"),
    (lambda: QueueRules("q", wrap_up=-1), "queue 'q': wrap_up must be finite and >= 0"),
    (lambda: QueueRules("q", announce_every=0), "queue 'q': announce_every must be finite"),
    (lambda: QueueRules("q", tiers=(OverflowTier(30, ("a",)), OverflowTier(10, ("b",)))),
     r"queue 'q': tiers\[1\] opens after 10 s, not later than tiers\[0\] \(30 s\)"),
    (lambda: QueueRules("q", relax=(SkillRelaxation(5, 1), SkillRelaxation(5, 1))),
     r"queue 'q': relax\[1\] opens after 5 s"),
    (lambda: QueueRules("q", tiers=("a",)), r"queue 'q': tiers\[0\] must be an OverflowTier"),
    (lambda: OverflowTier(5, ()), "overflow tier: agents must name at least one agent"),
    (lambda: SkillRelaxation(5, 0), "skill relaxation: lower_by must be at least 1"),
    (lambda: AgentSpec("a", "sales"), "agent 'a': queues must be a list"),
    (lambda: AgentSpec("a", ("s", "s")), "agent 'a': queues lists 's' twice"),
    (lambda: AgentSpec("a", ("s",), {"fr": 11}), "agent 'a': skills: skill 'fr' has level 11"),
    (lambda: Acd(sales(), [agent("a"), agent("a")], T0), "agent 'a' is defined twice"),
    (lambda: Acd(sales(), [agent("a", "billing")], T0), "agent 'a': unknown queue 'billing'"),
    (lambda: Acd({"x": QueueRules("y")}, [], T0), "queue 'x': its rules are named 'y'"),
    (lambda: Acd(sales(overflow_to="nope"), [], T0), "overflow_to names unknown queue 'nope'"),
    (lambda: Acd(queues(QueueRules("a", overflow_to="b"), QueueRules("b", overflow_to="c"),
                        QueueRules("c", overflow_to="a")), [], T0),
     "queue 'a': overflow loops \\(a -> b -> c -> a\\)"),
    (lambda: Acd(sales(tiers=(OverflowTier(5, ("zed",)),)), [], T0),
     "queue 'sales': overflow tier 1 names unknown agent 'zed'"),
    (lambda: Acd(sales(), [], T0, pause_reasons=["", "x"]), "pause reasons must be non-empty"),
    (lambda: Acd(sales(), [agent("a")], T0).enqueue("c", "sales", T0, skills={"fr": 0}),
     "call 'c': skills: skill 'fr' has level 0"),
])
def test_bad_configuration_and_input_are_refused_naming_the_place(
    make: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]


# --------------------------------------------------------------------------- personal calls


def test_a_call_for_one_agent_waits_for_that_agent_while_others_take_the_rest() -> None:
    acd = center(sales(), agent("ana"), agent("bia"))
    assert offers(acd.enqueue("c1", "sales", T0 + 5, for_agent="bia")) == [("c1", "bia")]
    acd.offer_answered("c1", "bia", T0 + 6)
    # bia is busy: a second call for her waits although ana is ready; a plain call goes to ana.
    assert offers(acd.enqueue("c2", "sales", T0 + 7, for_agent="bia")) == []
    assert offers(acd.enqueue("c3", "sales", T0 + 8)) == [("c3", "ana")]
    assert offers(acd.call_ended("c1", T0 + 60)) == [("c2", "bia")]


def test_a_personal_call_rings_its_agent_again_after_a_declined_ring() -> None:
    acd = center(sales(rona_pause=False), agent("ana"), agent("bia"))
    acd.enqueue("c1", "sales", T0 + 5, for_agent="bia")
    # Only bia counts for the round: when she declines, a new round offers her again.
    assert offers(acd.offer_failed("c1", "bia", T0 + 6, OfferFailure.REJECTED)) == [("c1", "bia")]


def test_a_call_for_an_agent_who_does_not_serve_the_queue_is_refused() -> None:
    acd = center(queues(QueueRules("sales"), QueueRules("support")), agent("ana"),
                 agent("bia", "support"))
    with pytest.raises(ValueError, match="agent 'bia' does not serve queue 'sales'"):
        acd.enqueue("c1", "sales", T0 + 5, for_agent="bia")
    assert acd.waiting("sales") == []


# --------------------------------------------------------------------------- calls elsewhere


def test_an_agent_busy_elsewhere_is_on_call_and_offered_nothing_until_that_call_ends() -> None:
    acd = center(sales(wrap_up=0), agent("ann"), agent("ben"))  # ann idle longest
    assert acd.busy_elsewhere("ann", "1700.5", T0 + 5) == [
        AgentStateChanged("ann", ON_CALL, "call 1700.5 outside the ACD", T0 + 5, READY)]
    assert acd.busy_elsewhere("ann", "1700.5", T0 + 6) == []  # the next snapshot: no change
    view = acd.agent("ann")
    assert (view.state, view.call_id, view.calls_answered) == (ON_CALL, "1700.5", 0)
    assert acd.snapshot(T0 + 6)["agents"]["ann"]["call_id"] == "1700.5"
    assert offers(acd.enqueue("c1", "sales", T0 + 10)) == [("c1", "ben")]
    acd.enqueue("c2", "sales", T0 + 11)  # waits: ann is busy, ben is ringing
    actions = acd.elsewhere_ended("ann", T0 + 20)
    assert changes(actions) == [("ann", READY, "call ended"), ("ann", RINGING, "call c2")]
    assert offers(actions) == [("c2", "ann")]
    view = acd.agent("ann")
    assert (view.idle_since, view.calls_answered, view.talk_time) == (T0 + 20, 0, 0.0)
    assert acd.queue_stats("sales", T0 + 20).aht == 180  # the partial call is not measured


def test_a_call_elsewhere_from_a_known_queue_ends_in_that_queues_wrap_up() -> None:
    rules = queues(QueueRules("sales", wrap_up=30), QueueRules("support", wrap_up=None))
    acd = center(rules, agent("ann", "sales", "support"), agent("ben", "sales"))
    acd.busy_elsewhere("ann", "u1", T0 + 5, queue="sales")
    assert changes(acd.elsewhere_ended("ann", T0 + 40)) == [("ann", WRAP_UP, "call ended")]
    assert acd.tick(T0 + 70) == [
        AgentStateChanged("ann", READY, "wrap-up ended", T0 + 70, WRAP_UP)]
    acd.busy_elsewhere("ben", "u2", T0 + 71, queue="support")  # manual wrap-up
    acd.elsewhere_ended("ben", T0 + 80)
    assert acd.tick(T0 + 500) == [] and acd.agent_state("ben") is WRAP_UP
    assert changes(acd.ready("ben", T0 + 501)) == [("ben", READY, "ready")]
    assert acd.queue_stats("sales", T0 + 501).aht == 180  # nothing measured from either


def test_a_paused_agent_busy_elsewhere_is_paused_again_after_the_call() -> None:
    acd = center(sales(wrap_up=0), agent("ann"))
    acd.pause("ann", "lunch", T0 + 5)
    assert changes(acd.busy_elsewhere("ann", "u1", T0 + 6)) == [
        ("ann", ON_CALL, "call u1 outside the ACD")]
    assert acd.agent("ann").deferred == "pause"
    acd.enqueue("c1", "sales", T0 + 7)
    assert acd.elsewhere_ended("ann", T0 + 20) == [
        AgentStateChanged("ann", PAUSED, "lunch", T0 + 20, ON_CALL)]
    # The agent's requests during the call work as during any call.
    acd.busy_elsewhere("ann", "u2", T0 + 21)
    assert acd.ready("ann", T0 + 22) == []  # cancels the pause that was there
    actions = acd.elsewhere_ended("ann", T0 + 30)
    assert changes(actions)[0] == ("ann", READY, "call ended")
    assert offers(actions) == [("c1", "ann")]
    acd.offer_answered("c1", "ann", T0 + 31)
    acd.call_ended("c1", T0 + 32)
    acd.busy_elsewhere("ann", "u3", T0 + 33)
    assert acd.logout("ann", T0 + 34) == [AgentRequestDeferred("ann", "logout")]
    assert changes(acd.elsewhere_ended("ann", T0 + 40)) == [
        ("ann", LOGGED_OUT, "logout deferred until call ended")]


def test_a_call_elsewhere_ends_a_wrap_up_whose_timer_then_does_nothing() -> None:
    acd = center(sales(wrap_up=30), agent("ann"))
    acd.enqueue("c1", "sales", T0 + 10)
    serve(acd, "c1", "ann", T0 + 11, T0 + 20)  # wrap-up until T0 + 50
    acd.busy_elsewhere("ann", "u1", T0 + 25)
    assert acd.queue_stats("sales", T0 + 25).aht == pytest.approx(0.8 * 180 + 0.2 * 14)
    assert acd.tick(T0 + 60) == [] and acd.agent_state("ann") is ON_CALL
    acd.elsewhere_ended("ann", T0 + 70)  # no queue: no wrap-up
    assert acd.agent_state("ann") is READY


def test_busy_elsewhere_is_refused_when_it_does_not_fit() -> None:
    acd = center(sales(), agent("ann"), agent("ben"), agent("cy"), login=False)
    acd.login("ann", T0, phone="1")
    acd.login("ben", T0, phone="2")
    with pytest.raises(AgentStateError, match="agent 'cy' is logged out"):
        acd.busy_elsewhere("cy", "u1", T0 + 1)
    acd.enqueue("c1", "sales", T0 + 2)  # rings ann
    with pytest.raises(AgentStateError, match="agent 'ann' is ringing with call 'c1'"):
        acd.busy_elsewhere("ann", "u1", T0 + 3)
    acd.busy_elsewhere("ben", "u2", T0 + 4)
    with pytest.raises(AgentStateError, match="agent 'ben' is on_call with call 'u2'"):
        acd.busy_elsewhere("ben", "u3", T0 + 5)
    with pytest.raises(ValueError, match="call 'u4': unknown queue 'nope'"):
        acd.busy_elsewhere("ann", "u4", T0 + 5, queue="nope")
    with pytest.raises(ValueError, match="call id must be a non-empty string"):
        acd.busy_elsewhere("ann", "", T0 + 5)
    with pytest.raises(ValueError, match="agent 'ann' is not on a call outside the ACD"):
        acd.elsewhere_ended("ann", T0 + 6)
    with pytest.raises(UnknownAgent):
        acd.busy_elsewhere("zed", "u5", T0 + 6)
    with pytest.raises(AgentStateError, match="agent 'ben' is on a call"):
        acd.remove_agent("ben", T0 + 7)
    assert acd.agent_state("ben") is ON_CALL and acd.agent("ben").call_id == "u2"


def test_switch_mode_changes_how_offers_connect_and_keeps_the_state() -> None:
    acd = center(sales(), agent("ann"), agent("ben"), login=False)
    acd.login("ann", T0, phone="1")
    acd.pause("ann", "break", T0 + 1)
    assert acd.switch_mode("ann", ConnectMode.NAILED, T0 + 2) == []
    view = acd.agent("ann")
    assert (view.state, view.reason, view.mode, view.phone) == (PAUSED, "break",
                                                                ConnectMode.NAILED, "1")
    acd.ready("ann", T0 + 3)
    assert acd.enqueue("c1", "sales", T0 + 4)[0] == offer("c1", "ann", mode=ConnectMode.NAILED)
    with pytest.raises(AgentStateError, match="agent 'ann' is ringing for call 'c1'"):
        acd.switch_mode("ann", ConnectMode.RING, T0 + 5)
    with pytest.raises(AgentStateError, match="agent 'ben' is logged out"):
        acd.switch_mode("ben", ConnectMode.NAILED, T0 + 5)
    with pytest.raises(ValueError, match="unknown connect mode 'carrier-pigeon'"):
        acd.switch_mode("ann", "carrier-pigeon", T0 + 5)  # type: ignore[arg-type]
    assert acd.agent_ids() == ["ann", "ben"]


# --------------------------------------------------------------------------- who_would_take


def busy_center(strategy: Strategy, engine: type[Acd] = Acd, seed: int = 7) -> Acd:
    """Four agents with different histories, so that every strategy has its own favourite."""
    specs = (agent("ann", lang=2), agent("ben", lang=5), agent("cid", lang=1), agent("dee"))
    acd = engine(sales(strategy=strategy), specs, T0, rng=random.Random(seed))
    for n, spec in enumerate(specs):
        acd.login(spec.agent_id, T0 + n, phone=f"phone-{spec.agent_id}")
    for n, talk in enumerate((30.0, 5.0)):
        start = T0 + 10 + 100 * n
        (_, taker), = offers(acd.enqueue(f"w{n}", "sales", start))
        serve(acd, f"w{n}", taker, start + 1, start + 1 + talk)
    acd.tick(T0 + 500)
    return acd


@pytest.mark.parametrize("engine", [Acd, ScanAcd], ids=["acd", "scan"])
@pytest.mark.parametrize("strategy", list(Strategy))
@pytest.mark.parametrize("skills", [None, {"lang": 2}], ids=["any", "lang2"])
def test_who_would_take_names_the_agent_a_new_call_would_be_offered_to(
        engine: type[Acd], strategy: Strategy, skills: dict[str, int] | None) -> None:
    acd = busy_center(strategy, engine)
    pick = acd.who_would_take("sales", T0 + 600, skills=skills)
    assert pick is not None
    assert offers(acd.enqueue("new", "sales", T0 + 600, skills=skills)) == [("new", pick)]


@pytest.mark.parametrize("strategy", list(Strategy))
def test_who_would_take_changes_nothing_not_even_the_random_draws(strategy: Strategy) -> None:
    asked, twin = busy_center(strategy), busy_center(strategy)
    before = json.dumps(asked.snapshot(T0 + 600), sort_keys=True)
    for _ in range(5):
        asked.who_would_take("sales", T0 + 600, exclude=["ann"])
    assert json.dumps(asked.snapshot(T0 + 600), sort_keys=True) == before
    for n in range(4):  # later routing is what it would have been without the questions
        assert (offers(asked.enqueue(f"n{n}", "sales", T0 + 601 + n))
                == offers(twin.enqueue(f"n{n}", "sales", T0 + 601 + n)))


def test_who_would_take_leaves_out_the_excluded_the_unskilled_and_the_unavailable() -> None:
    rules = queues(QueueRules("sales", tiers=(OverflowTier(0, ("zoe",)),)),
                   QueueRules("support"))
    acd = center(rules, agent("ann"), agent("ben", lang=4), agent("cid"),
                 agent("zoe", "support"))
    assert acd.who_would_take("sales", T0 + 10) == "ann"
    assert acd.who_would_take("sales", T0 + 10, exclude=("ann",)) == "ben"
    assert acd.who_would_take("sales", T0 + 10, skills={"lang": 3}) == "ben"
    assert acd.who_would_take("sales", T0 + 10, skills={"lang": 5}) is None
    acd.set_reachable("ben", False, T0 + 11)
    acd.pause("cid", "break", T0 + 11)
    # zoe serves sales only in an overflow tier (open at once for real calls): not tier 0
    assert acd.who_would_take("sales", T0 + 12, exclude=("ann",)) is None
    assert acd.who_would_take("support", T0 + 12) == "zoe"


def test_who_would_take_uses_the_skills_of_a_call_the_acd_holds() -> None:
    acd = center(sales(), agent("ann"), agent("ben", lang=4), agent("cid", lang=4))
    acd.enqueue("c1", "sales", T0 + 10, skills={"lang": 3})
    assert offers(acd.offer_answered("c1", "ben", T0 + 11)) == []
    assert acd.who_would_take("sales", T0 + 12, skills_of="c1", exclude=("ben",)) == "cid"
    assert acd.who_would_take("sales", T0 + 12, skills_of="gone") == "ann"


def test_who_would_take_says_none_when_nobody_is_ready() -> None:
    acd = center(sales(), agent("ann"), agent("ben"), login=False)
    assert acd.who_would_take("sales", T0) is None
    acd.login("ann", T0 + 1, phone="1")
    acd.enqueue("c1", "sales", T0 + 2)  # ann rings
    assert acd.who_would_take("sales", T0 + 3) is None


def test_who_would_take_refuses_bad_questions() -> None:
    acd = center(sales(), agent("ann"))
    with pytest.raises(ValueError, match="unknown queue 'nope'"):
        acd.who_would_take("nope", T0)
    with pytest.raises(ValueError, match="skill 'lang' has level 0"):
        acd.who_would_take("sales", T0, skills={"lang": 0})
    with pytest.raises(ValueError, match="not both"):
        acd.who_would_take("sales", T0, skills={"lang": 1}, skills_of="c1")
    with pytest.raises(ValueError, match="exclude must be a list of agent ids"):
        acd.who_would_take("sales", T0, exclude="ann")
