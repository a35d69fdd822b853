"""The dialer's pacing core: the abandon budget, the measured figures and the decision.

Hand-worked examples first, then hypothesis properties on virtual time (no clock is read:
every time is a value the test chooses)."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.core.campaigns import CampaignMode
from callcenter.core.pacing import (
    DAY_SECONDS,
    AbandonBudget,
    AgentPhase,
    BudgetStanding,
    BusyAgent,
    DialerStats,
    DialResult,
    Estimate,
    InFlight,
    PacingRules,
    Priors,
    WindowCounts,
    _matched_binomial,  # the model's one approximation
    decide,
    expected_shortfall,
)

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC).timestamp()
SAO_PAULO = ZoneInfo("America/Sao_Paulo")  # UTC-3 all year (no summer time since 2019)
WINDOW = 30 * DAY_SECONDS


def roomy_budget(cap: float = 0.03) -> BudgetStanding:
    """A budget with plenty left: 10,000 live answers, none abandoned."""
    counts = WindowCounts(10_000, 0)
    return BudgetStanding(cap=cap, today=counts, rolling=counts)


# --------------------------------------------------------------------------- budget: examples


def test_allowed_abandons_keep_the_rate_within_the_cap() -> None:
    # 100 live answers, 1 abandoned, cap 3%: k <= (3 - 1) / 0.97 = 2.06, so 2 more:
    # 3/102 = 2.94% is within, 4/103 = 3.88% is not.
    counts = WindowCounts(100, 1)
    assert counts.abandons_allowed(0.03) == pytest.approx(2 / 0.97)
    standing = BudgetStanding(cap=0.03, today=counts, rolling=WindowCounts(1000, 0))
    assert standing.abandons_allowed_now == 2
    assert not standing.spent


def test_the_first_abandon_of_a_day_waits_for_33_live_answers() -> None:
    # One abandon among L answers is within 3% only from L + 1 >= 34 (1/34 = 2.94%).
    ample = WindowCounts(5000, 0)
    assert BudgetStanding(0.03, WindowCounts(32, 0), ample).spent
    assert BudgetStanding(0.03, WindowCounts(0, 0), ample).spent
    assert BudgetStanding(0.03, WindowCounts(33, 0), ample).abandons_allowed_now == 1
    # The rolling window binds as well as the day.
    assert BudgetStanding(0.03, ample, WindowCounts(100, 3)).spent


def test_the_day_is_the_campaigns_day_in_its_time_zone() -> None:
    budget = AbandonBudget(zone=SAO_PAULO)
    before_midnight = datetime(2026, 12, 8, 2, 30, tzinfo=UTC).timestamp()  # 23:30 on the 7th
    after_midnight = datetime(2026, 12, 8, 3, 30, tzinfo=UTC).timestamp()  # 00:30 on the 8th
    budget.record(before_midnight, abandoned=True)
    budget.record(before_midnight + 60, abandoned=False)
    assert budget.standing(before_midnight + 120).today == WindowCounts(2, 1)
    budget.record(after_midnight, abandoned=False)
    standing = budget.standing(after_midnight + 1)
    assert standing.today == WindowCounts(1, 0)  # a new day in São Paulo
    assert standing.rolling == WindowCounts(3, 1)  # the 30 days go on
    # In UTC the same answers all fall on the 8th.
    utc_budget = AbandonBudget()
    for at in (before_midnight, before_midnight + 60, after_midnight):
        utc_budget.record(at, abandoned=at == before_midnight)
    assert utc_budget.standing(after_midnight + 1).today == WindowCounts(3, 1)


def test_the_rolling_window_forgets_after_30_days() -> None:
    budget = AbandonBudget(bucket_seconds=60)
    budget.record(T0, abandoned=True)  # T0 is on a minute
    budget.record(T0 + 10, abandoned=False)
    assert budget.standing(T0 + WINDOW - 1).rolling == WindowCounts(2, 1)
    # The bucket [T0, T0 + 60) is partly outside: its abandon still counts, its answers not.
    assert budget.standing(T0 + WINDOW + 30).rolling == WindowCounts(0, 1)
    assert budget.standing(T0 + WINDOW + 60).rolling == WindowCounts(0, 0)


def test_a_late_record_goes_to_its_own_bucket() -> None:
    budget = AbandonBudget(bucket_seconds=60)
    budget.record(T0 + 600, abandoned=False)
    budget.record(T0, abandoned=True)  # told late
    assert budget.standing(T0 + WINDOW + 300).rolling == WindowCounts(1, 0)


def test_bad_budget_settings_are_refused() -> None:
    for cap in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="abandon cap"):
            AbandonBudget(cap)


# --------------------------------------------------------------------------- statistics


def test_an_estimate_starts_from_its_prior_and_counts_it_as_samples() -> None:
    estimate = Estimate(0.3, prior_weight=20)
    assert estimate.mean == pytest.approx(0.3)
    estimate.add(T0, 1.0)
    # (20 x 0.3 + 1) / 21: the prior weighs as 20 samples.
    assert estimate.mean == pytest.approx(7 / 21)


def test_the_answer_rate_follows_a_drift() -> None:
    stats = DialerStats(window=400)
    at = T0
    for n in range(2000):  # 1 live in 5 calls: 0.20
        stats.call_ended(at, DialResult.LIVE if n % 5 == 0 else DialResult.UNANSWERED)
        at += 1
    assert stats.answer_rate.mean == pytest.approx(0.20, abs=0.01)
    for n in range(2000):  # 2 in 5: 0.40
        stats.call_ended(at, DialResult.LIVE if n % 5 < 2 else DialResult.UNANSWERED)
        at += 1
    assert stats.answer_rate.mean == pytest.approx(0.40, abs=0.01)
    assert stats.measured


def test_machine_share_is_of_answered_calls_and_times_are_measured() -> None:
    stats = DialerStats(Priors(machine_share=0.5, time_to_answer=10.0), window=50)
    for n in range(1000):
        outcome = (DialResult.MACHINE, DialResult.LIVE, DialResult.LIVE, DialResult.LIVE,
                   DialResult.UNANSWERED)[n % 5]
        ring = 6.0 if outcome is not DialResult.UNANSWERED else None
        stats.call_ended(T0 + n, outcome, ring_seconds=ring, amd_seconds=2.0)
    assert stats.machine_share.mean == pytest.approx(0.25, abs=0.02)
    assert stats.answer_rate.mean == pytest.approx(0.60, abs=0.02)
    assert stats.answered_rate.mean == pytest.approx(0.80, abs=0.02)
    assert stats.time_to_answer.mean == pytest.approx(6.0, abs=0.01)
    assert stats.amd_seconds.mean == pytest.approx(2.0, abs=0.01)


def test_a_quiet_hour_lets_new_samples_weigh_more_but_not_alone() -> None:
    estimate = Estimate(0.3, prior_weight=20, window=1000, half_life=600)
    for n in range(500):
        estimate.add(T0 + n, 0.3)
    estimate.add(T0 + 500 + 3600, 1.0)  # an hour later: old weight down to the floor of 20
    assert estimate.mean == pytest.approx((20 * 0.3 + 1.0) / 21)


# --------------------------------------------------------------------------- the model


def brute_shortfall(demand_probabilities: list[float], ready: int,
                    supply_probabilities: list[float]) -> float:
    """E[(X - M)+] by enumerating every outcome of every call and agent."""
    total = 0.0
    bernoullis = demand_probabilities + supply_probabilities
    for outcome in itertools.product((0, 1), repeat=len(bernoullis)):
        weight = math.prod(p if hit else 1 - p for p, hit in zip(bernoullis, outcome,
                                                                 strict=True))
        live = sum(outcome[:len(demand_probabilities)])
        agents = ready + sum(outcome[len(demand_probabilities):])
        total += weight * max(0, live - agents)
    return total


def test_shortfall_examples_by_hand() -> None:
    # One call, half a chance of a live answer, nobody free: half an abandon.
    assert expected_shortfall(1, 0.5, 0, 0, 0, 0.0) == pytest.approx(0.5)
    # Two sure live answers, one agent: one abandon.
    assert expected_shortfall(0, 0.0, 2, 1, 0, 0.0) == pytest.approx(1.0)
    # Two calls at 1/2, one agent: both answer with 1/4: 0.25.
    assert expected_shortfall(2, 1.0, 0, 1, 0, 0.0) == pytest.approx(0.25)
    # ...and a second agent free with 1/2: 0.25 x 0.5.
    assert expected_shortfall(2, 1.0, 0, 1, 1, 0.5) == pytest.approx(0.125)


@given(st.lists(st.floats(0, 1), max_size=6), st.integers(0, 4),
       st.lists(st.floats(0, 1), max_size=5))
def test_the_binomial_model_never_underestimates_the_shortfall(
        demand: list[float], ready: int, supply: list[float]) -> None:
    # Hoeffding: for a convex function, the binomial of the same count and mean gives at
    # least the expectation of the sum of unequal Bernoullis.
    exact = brute_shortfall(demand, ready, supply)
    model = expected_shortfall(len(demand), sum(demand), 0, ready, len(supply), sum(supply))
    assert model >= exact - 1e-9


# --------------------------------------------------------------------------- decisions


def even_stats(answered: float = 0.5, machine_share: float = 0.0) -> DialerStats:
    """Figures taken as measured from the priors alone (min_calls=0)."""
    return DialerStats(Priors(answer_rate=answered * (1 - machine_share),
                              answered_rate=answered, machine_share=machine_share),
                       min_calls=0)


def test_predictive_sized_by_hand() -> None:
    # Two agents ready, nobody busy, nothing in flight, each call a live answer with 1/2,
    # the cap 50% (planned at all of it): n calls fit while E[(Bin(n, 1/2) - 2)+] <= n/4.
    # n = 7: 3.5 - 2 + (2 x 1 + 1 x 7)/128 = 1.5703 <= 1.75; n = 8: 2.0391 > 2.
    rules = PacingRules(target_share=1.0)
    decision = decide(T0, rules, ready_agents=2, busy_agents=(), in_flight=InFlight(),
                      stats=even_stats(), budget=roomy_budget(cap=0.5))
    assert decision.mode is CampaignMode.PREDICTIVE
    assert decision.calls == 7
    assert decision.expected_abandons == pytest.approx(1.5 + 9 / 128)
    assert decision.progressive_calls == 2


def test_the_hard_limit_binds_near_the_cap() -> None:
    # 34 live answers, none abandoned: (0.03 x 34) / 0.97 = 1.05 abandons allowed at most.
    tight = BudgetStanding(0.03, WindowCounts(34, 0), WindowCounts(34, 0))
    rules = PacingRules(target_share=1.0, bank_share=1.0)
    decision = decide(T0, rules, ready_agents=2, busy_agents=(), in_flight=InFlight(),
                      stats=even_stats(), budget=tight)
    assert decision.abandon_limit <= tight.abandons_allowed
    assert decision.expected_abandons <= decision.abandon_limit


def test_the_breach_chance_keeps_two_abandons_from_landing_when_one_is_allowed() -> None:
    # Cap 50 %, 9 live answers, 4 abandoned: (4.5 - 4) / 0.5 = exactly 1 more allowed now.
    # Two agents ready, each call live with 1/2. The expectation alone admits 5 calls:
    # E[(Bin(5, 1/2) - 2)+] = 23/32 <= 1, 6 give 72/64 > 1. But with 4 calls, 4 live answers
    # (1 in 16) would be two abandons: only 3 calls keep that chance below 1e-5.
    one_left = BudgetStanding(0.5, WindowCounts(9, 4), WindowCounts(9, 4))
    assert one_left.abandons_allowed_now == 1
    arguments: dict[str, object] = dict(ready_agents=2, busy_agents=(), in_flight=InFlight(),
                                        stats=even_stats(), budget=one_left)
    careful = decide(T0, PacingRules(target_share=1.0, bank_share=1.0),
                     **arguments)  # type: ignore[arg-type]
    assert careful.calls == 3
    assert careful.breach_chance == 0.0
    reckless = decide(T0, PacingRules(target_share=1.0, bank_share=1.0, breach_risk=1.0),
                      **arguments)  # type: ignore[arg-type]
    assert reckless.calls == 5
    assert reckless.expected_abandons == pytest.approx(23 / 32)
    assert reckless.breach_chance == pytest.approx(6 / 32)  # P(Bin(5, 1/2) >= 4)


def test_the_agents_binomial_keeps_the_mean_and_the_spread() -> None:
    # Equal chances: the binomial itself.
    assert _matched_binomial(2.0, 1.0, 4) == (4, 0.5)
    # One agent sure to be free, three not at all: exactly one, no spread.
    assert _matched_binomial(1.0, 1.0, 4) == (1, 1.0)
    # One agent at 0.9 and nine at 0.1: mean 1.8, variance 1.8 - 0.9 = 0.9. Bin(4, 0.45)
    # has the mean and a variance of 0.99; Bin(10, 0.18), the same count, 1.48.
    n, p = _matched_binomial(1.8, 0.81 + 9 * 0.01, 10)
    assert (n, p) == (4, pytest.approx(0.45))
    assert _matched_binomial(0.0, 0.0, 5) == (0, 0.0)
    assert _matched_binomial(3.0, 0.9, 0) == (0, 0.0)


def test_a_rising_recent_answer_rate_holds_calls_back() -> None:
    # 20 agents ready, 3 abandons allowed now: the breach's chance binds (more than 23 live
    # answers at once). If the last minutes answered twice as often, it binds much sooner.
    budget = BudgetStanding(0.03, WindowCounts(200, 3), WindowCounts(200, 3))
    stats = even_stats(answered=0.3)
    rules = PacingRules(target_share=1.0, bank_share=1.0)
    arguments: dict[str, object] = dict(ready_agents=20, busy_agents=(),
                                        in_flight=InFlight(), budget=budget)
    steady = decide(T0, rules, stats=stats, **arguments)  # type: ignore[arg-type]
    stats.recent_answer_rate = Estimate(0.6)
    rising = decide(T0, rules, stats=stats, **arguments)  # type: ignore[arg-type]
    assert steady.calls > 35
    assert 20 <= rising.calls < 30
    assert rising.breach_chance <= rules.breach_risk


def test_the_recent_answer_rate_follows_the_last_calls() -> None:
    stats = DialerStats()
    for n in range(200):
        stats.call_ended(T0 + n, DialResult.UNANSWERED)
    for n in range(60):
        stats.call_ended(T0 + 200 + n, DialResult.LIVE)
    assert stats.recent_answer_rate.mean > 0.6 > stats.answer_rate.mean


def test_preview_progressive_and_the_fallbacks() -> None:
    stats, budget = even_stats(), roomy_budget()
    flying = InFlight(ringing_since=(T0 - 3,), in_amd=1)

    def calls(mode: CampaignMode, ready: int, **kw: object) -> tuple[int, CampaignMode, str]:
        arguments: dict[str, object] = dict(ready_agents=ready, busy_agents=(),
                                            in_flight=flying, stats=stats, budget=budget)
        arguments.update(kw)
        d = decide(T0, PacingRules(mode=mode), **arguments)  # type: ignore[arg-type]
        return d.calls, d.mode, d.reason

    assert calls(CampaignMode.PREVIEW, 5)[0] == 0
    # 5 free - 2 in flight
    assert calls(CampaignMode.PROGRESSIVE, 5)[:2] == (3, CampaignMode.PROGRESSIVE)
    assert calls(CampaignMode.PROGRESSIVE, 1)[0] == 0
    assert calls(CampaignMode.PREDICTIVE, 0, in_flight=InFlight())[2] == "no agent logged in"
    spent = BudgetStanding(0.03, WindowCounts(10, 0), WindowCounts(10, 0))
    assert calls(CampaignMode.PREDICTIVE, 5, budget=spent)[:2] == (3, CampaignMode.PROGRESSIVE)
    unmeasured = DialerStats(min_calls=50)
    assert calls(CampaignMode.PREDICTIVE, 5, stats=unmeasured)[:2] == (3, CampaignMode.PROGRESSIVE)
    assert calls(CampaignMode.PREDICTIVE, 5)[1] is CampaignMode.PREDICTIVE


def test_agents_about_to_be_free_raise_the_calls() -> None:
    stats = DialerStats(Priors(answer_rate=0.3, answered_rate=0.4, machine_share=0.25,
                               talk_seconds=60.0, wrap_up_seconds=5.0), min_calls=0)
    rules = PacingRules()
    fresh = [BusyAgent(AgentPhase.TALKING, T0 - 1) for _ in range(10)]
    ending = [BusyAgent(AgentPhase.WRAP_UP, T0 - 4.9) for _ in range(10)]
    base = dict(ready_agents=2, in_flight=InFlight(), stats=stats, budget=roomy_budget())
    few = decide(T0, rules, busy_agents=fresh, **base)  # type: ignore[arg-type]
    more = decide(T0, rules, busy_agents=ending, **base)  # type: ignore[arg-type]
    assert more.calls > few.calls >= few.progressive_calls


def test_ringing_calls_hold_back_new_ones() -> None:
    stats, rules = even_stats(), PacingRules()
    quiet = decide(T0, rules, ready_agents=10, busy_agents=(), in_flight=InFlight(),
                   stats=stats, budget=roomy_budget())
    ringing = InFlight(ringing_since=tuple(T0 - 1 for _ in range(10)))
    busy_lines = decide(T0, rules, ready_agents=10, busy_agents=(), in_flight=ringing,
                        stats=stats, budget=roomy_budget())
    assert busy_lines.calls < quiet.calls
    # A call that rang past the ring time will not be answered: it holds nothing back.
    stale = InFlight(ringing_since=tuple(T0 - 60 for _ in range(10)))
    gone = decide(T0, rules, ready_agents=10, busy_agents=(), in_flight=stale, stats=stats,
                  budget=roomy_budget())
    assert gone.calls == quiet.calls


# --------------------------------------------------------------------------- properties

busy_agents = st.lists(st.builds(BusyAgent, st.sampled_from(list(AgentPhase)),
                                 st.floats(T0 - 3600, T0)), max_size=30)
in_flights = st.builds(InFlight, st.lists(st.floats(T0 - 40, T0), max_size=40).map(tuple),
                       st.integers(0, 5), st.integers(0, 5))
window_counts = st.integers(0, 5000).flatmap(
    lambda live: st.builds(WindowCounts, st.just(live), st.integers(0, live)))
standings = st.builds(BudgetStanding, st.sampled_from([0.01, 0.03, 0.05, 0.2]),
                      window_counts, window_counts)
stats_strategy = st.builds(
    lambda answered, machines, talk, wrap, tta: DialerStats(
        Priors(answer_rate=answered * (1 - machines), answered_rate=answered,
               machine_share=machines, talk_seconds=talk, wrap_up_seconds=wrap,
               time_to_answer=tta), min_calls=0),
    st.floats(0.01, 1.0), st.floats(0.0, 1.0), st.floats(5, 900), st.floats(0, 120),
    st.floats(0.5, 25))
rules_strategy = st.builds(PacingRules, mode=st.sampled_from(list(CampaignMode)), amd=st.booleans(),
                           target_share=st.floats(0.1, 1.0), bank_share=st.floats(0, 1),
                           max_calls_per_agent=st.floats(1, 10),
                           max_lines=st.none() | st.integers(0, 200))


@settings(max_examples=300, deadline=None)
@given(rules_strategy, st.integers(0, 20), busy_agents, in_flights, stats_strategy, standings)
def test_decisions_keep_the_rules(rules: PacingRules, ready: int, busy: list[BusyAgent],
                                  in_flight: InFlight, stats: DialerStats,
                                  budget: BudgetStanding) -> None:
    decision = decide(T0, rules, ready_agents=ready, busy_agents=busy, in_flight=in_flight,
                      stats=stats, budget=budget)
    assert decision.calls >= 0
    if ready + len(busy) == 0:
        assert decision.calls == 0  # never a call with no agent logged in
        return
    free_now = max(0, ready - in_flight.total)
    if rules.mode is CampaignMode.PREVIEW:
        assert decision.calls == 0
    elif rules.mode is CampaignMode.PROGRESSIVE:
        assert decision.calls == decision.progressive_calls <= free_now <= ready
    else:
        assert decision.progressive_calls <= free_now
        assert decision.calls >= decision.progressive_calls
        if budget.spent:
            assert decision.calls == decision.progressive_calls
            assert decision.mode is CampaignMode.PROGRESSIVE
        if decision.calls > decision.progressive_calls:
            # Never more expected abandons than the budget allows, whatever else happens.
            assert decision.expected_abandons <= decision.abandon_limit + 1e-12
            assert decision.abandon_limit <= budget.abandons_allowed + 1e-12
    logged_in = ready + len(busy)
    most = math.floor(rules.max_calls_per_agent * logged_in)
    if rules.max_lines is not None:
        most = min(most, rules.max_lines)
    if decision.calls:
        assert in_flight.total + decision.calls <= most


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 20), busy_agents, in_flights, stats_strategy, standings)
def test_predictive_is_at_least_progressive(ready: int, busy: list[BusyAgent],
                                            in_flight: InFlight, stats: DialerStats,
                                            budget: BudgetStanding) -> None:
    common = dict(ready_agents=ready, busy_agents=busy, in_flight=in_flight, stats=stats,
                  budget=budget)
    progressive = decide(T0, PacingRules(mode=CampaignMode.PROGRESSIVE), **common)  # type: ignore[arg-type]
    predictive = decide(T0, PacingRules(mode=CampaignMode.PREDICTIVE), **common)  # type: ignore[arg-type]
    assert predictive.calls >= progressive.calls
    if budget.spent:
        assert predictive.calls == progressive.calls


answers = st.lists(st.tuples(st.floats(0, 40 * DAY_SECONDS), st.booleans()), max_size=60)


@settings(max_examples=200, deadline=None)
@given(answers, st.lists(st.floats(0, 40 * DAY_SECONDS), min_size=1, max_size=5),
       st.sampled_from([UTC, SAO_PAULO, ZoneInfo("Asia/Kolkata"), ZoneInfo("Europe/Berlin")]),
       st.sampled_from([1.0, 60.0, 3600.0]))
def test_the_budget_counts_as_a_list_of_every_answer_would(
        events: list[tuple[float, bool]], queries: list[float], zone: ZoneInfo,
        bucket: float) -> None:
    """Against a brute-force count: the day's counts exactly, the rolling window within one
    bucket, and never a lower rate than the exact one."""
    events = sorted((T0 + at, abandoned) for at, abandoned in events)
    budget = AbandonBudget(zone=zone, bucket_seconds=bucket)
    pending = list(events)
    for now in sorted(T0 + q for q in queries):
        while pending and pending[0][0] <= now:
            at, abandoned = pending.pop(0)
            budget.record(at, abandoned=abandoned)
        standing = budget.standing(now)
        seen = [(at, abandoned) for at, abandoned in events if at <= now]
        today = datetime.fromtimestamp(now, zone).date()
        in_day = [a for at, a in seen if datetime.fromtimestamp(at, zone).date() == today]
        assert standing.today == WindowCounts(len(in_day), sum(in_day))

        def live(since: float, seen: list[tuple[float, bool]] = seen) -> int:
            return sum(1 for at, _ in seen if at >= since)

        def abandoned(since: float, seen: list[tuple[float, bool]] = seen) -> int:
            return sum(1 for at, a in seen if at >= since and a)

        start = now - WINDOW
        assert live(start + bucket) <= standing.rolling.live_answers <= live(start)
        assert abandoned(start) <= standing.rolling.abandoned <= abandoned(start - bucket)
        if live(start):
            assert standing.rolling.rate >= abandoned(start) / live(start) - 1e-12 or (
                standing.rolling.live_answers == 0)


@settings(max_examples=100, deadline=None)
@given(answers, st.floats(0, 40 * DAY_SECONDS), st.integers(-400, 400))
def test_the_budget_depends_on_no_wall_time(events: list[tuple[float, bool]], query: float,
                                            days: int) -> None:
    """Shift every time by whole days: the same standing (UTC, whole-minute buckets)."""
    def standing(shift: float) -> BudgetStanding:
        budget = AbandonBudget()
        for at, abandoned in sorted(events):
            budget.record(T0 + at + shift, abandoned=abandoned)
        return budget.standing(T0 + max([query, *(at for at, _ in events)]) + shift)

    assert standing(0.0) == standing(days * DAY_SECONDS)
