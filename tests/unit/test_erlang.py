"""Erlang B, C and A against textbook tables, exact arithmetic and known limits."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest

from callcenter.core.erlang import (
    agents_for_service_level,
    erlang_a,
    erlang_b,
    erlang_c,
    erlang_c_asa,
    erlang_c_occupancy,
    erlang_c_service_level,
    offered_load,
    service_level,
    square_root_staffing,
)


def exact_erlang_b(servers: int, load: Fraction) -> Fraction:
    """The textbook sum (A^N/N!) / sum_k A^k/k!, in exact fractions: an independent oracle."""
    terms = [load**k / math.factorial(k) for k in range(servers + 1)]
    return terms[-1] / sum(terms)


def exact_erlang_c(servers: int, load: Fraction) -> Fraction:
    """(A^N/N! * N/(N-A)) / (sum_{k<N} A^k/k! + A^N/N! * N/(N-A)), exactly."""
    top = load**servers / math.factorial(servers) * servers / (servers - load)
    return top / (sum(load**k / math.factorial(k) for k in range(servers)) + top)


def poisson_tail(mean: float, at_least: int) -> float:
    return 1.0 - math.fsum(math.exp(-mean) * mean**k / math.factorial(k)
                           for k in range(at_least))


# --------------------------------------------------------------------------- Erlang B


@pytest.mark.parametrize(("servers", "load", "blocking"), [
    # The classic Erlang B table (e.g. the one printed in every teletraffic handbook):
    # 10 lines carry 4.461 E at 1 %, 5.084 E at 2 %, 6.216 E at 5 % blocking;
    # 20 lines 12.03 E, 50 lines 37.90 E, 100 lines 84.06 E at 1 %.
    (10, 4.461, 0.01), (10, 5.084, 0.02), (10, 6.216, 0.05),
    (20, 12.03, 0.01), (50, 37.90, 0.01), (100, 84.06, 0.01),
])
def test_erlang_b_matches_the_classic_table(servers: int, load: float, blocking: float) -> None:
    assert erlang_b(servers, load) == pytest.approx(blocking, abs=2e-5)


@pytest.mark.parametrize(("servers", "load"), [(1, "1"), (5, "2"), (14, "10"), (55, "48"),
                                               (30, "30"), (3, "1/2")])
def test_erlang_b_equals_the_exact_sum(servers: int, load: str) -> None:
    assert erlang_b(servers, float(Fraction(load))) == pytest.approx(
        float(exact_erlang_b(servers, Fraction(load))), rel=1e-12)


def test_erlang_b_stays_finite_for_hundreds_and_thousands_of_lines() -> None:
    # Compare with the sum done in logarithms (lgamma) rather than factorials.
    for servers, load in [(500, 480.0), (500, 1.0), (5000, 4900.0), (500, 2000.0)]:
        logs = [k * math.log(load) - math.lgamma(k + 1) for k in range(servers + 1)]
        top = max(logs)
        expected = math.exp(logs[-1] - top) / math.fsum(math.exp(x - top) for x in logs)
        assert erlang_b(servers, load) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_no_traffic_blocks_nothing_and_waits_nowhere() -> None:
    assert erlang_b(3, 0.0) == 0.0
    assert erlang_c(3, 0.0) == 0.0


# --------------------------------------------------------------------------- Erlang C


def test_erlang_c_at_ten_erlangs_matches_the_textbook_values() -> None:
    # 10 Erlangs (e.g. 200 calls/hour of 180 s): the usual worked example. With 11 agents
    # 68.2 % of callers wait, with 12 agents 44.9 %; 80 % within 20 s needs 14 agents
    # (88.8 %), 13 give only 79.6 %.
    assert erlang_c(11, 10.0) == pytest.approx(0.6821, abs=5e-5)
    assert erlang_c(12, 10.0) == pytest.approx(0.4494, abs=5e-5)
    assert erlang_c_service_level(14, 10.0, 180.0, 20.0) == pytest.approx(0.8884, abs=5e-5)
    assert erlang_c_service_level(13, 10.0, 180.0, 20.0) == pytest.approx(0.7956, abs=5e-5)
    assert agents_for_service_level(10.0, 180.0, 0.80, 20.0) == 14


def test_erlang_c_on_the_westbay_worked_example() -> None:
    # Westbay Engineers' Erlang-C walkthrough: 360 calls per half hour of 240 s (48 E),
    # 55 agents, answer target 15 s. The textbook formula, in exact fractions here, gives
    # P(wait) = 0.2387, ASA = 8.18 s, service level 84.6 %.
    load = offered_load(720.0, 240.0)
    assert load == 48.0
    assert erlang_c(55, load) == pytest.approx(float(exact_erlang_c(55, Fraction(48))),
                                               rel=1e-12)
    assert erlang_c(55, load) == pytest.approx(0.2387, abs=5e-5)
    assert erlang_c_asa(55, load, 240.0) == pytest.approx(8.18, abs=5e-3)
    assert erlang_c_service_level(55, load, 240.0, 15.0) == pytest.approx(0.8459, abs=5e-5)
    assert erlang_c_occupancy(55, load) == pytest.approx(48 / 55)


def test_erlang_c_overloaded_means_everyone_waits_for_ever() -> None:
    assert erlang_c(10, 10.0) == 1.0
    assert erlang_c_service_level(10, 12.0, 180.0, 20.0) == 0.0
    assert erlang_c_asa(10, 10.0, 180.0) == math.inf


def test_erlang_c_is_stable_for_five_hundred_agents() -> None:
    value = erlang_c(500, 490.0)
    assert 0.0 < value < 1.0
    assert value == pytest.approx(0.5467, abs=5e-4)
    # Halfin-Whitt: with N = A + beta sqrt(A), P(wait) tends to a fixed value as A grows;
    # for beta = 0.5 it is about 0.62 (1 / (1 + beta Phi(beta) / phi(beta))).
    beta = 0.5
    density = math.exp(-beta * beta / 2) / math.sqrt(2 * math.pi)
    cumulative = 0.5 * (1 + math.erf(beta / math.sqrt(2)))
    limit = 1 / (1 + beta * cumulative / density)
    load = 10_000.0
    assert erlang_c(int(load + beta * math.sqrt(load)), load) == pytest.approx(limit, abs=0.01)


# --------------------------------------------------------------------------- Erlang A


def test_erlang_a_becomes_erlang_c_as_patience_grows_without_end() -> None:
    for servers, load in [(12, 10.0), (55, 48.0), (3, 2.5)]:
        model = erlang_a(servers, load, 180.0, patience=1e9, threshold=20.0)
        assert model.p_wait == pytest.approx(erlang_c(servers, load), abs=1e-6)
        assert model.p_abandon == pytest.approx(0.0, abs=1e-5)
        assert model.service_level == pytest.approx(
            erlang_c_service_level(servers, load, 180.0, 20.0), abs=1e-6)
        assert model.asa == pytest.approx(erlang_c_asa(servers, load, 180.0), rel=1e-4)


def test_erlang_a_with_infinite_patience_is_erlang_c_exactly() -> None:
    model = erlang_a(12, 10.0, 180.0, patience=math.inf, threshold=20.0)
    assert model.p_wait == pytest.approx(erlang_c(12, 10.0), rel=1e-12)
    assert model.service_level == pytest.approx(erlang_c_service_level(12, 10.0, 180.0, 20.0),
                                                rel=1e-10)
    assert model.asa == pytest.approx(erlang_c_asa(12, 10.0, 180.0), rel=1e-10)


def test_erlang_a_when_patience_equals_handle_time_is_the_poisson_law() -> None:
    # With theta = mu every caller present leaves at the same rate whether waiting or
    # talking: the number present is that of M/M/infinity, Poisson(A). So P(wait) =
    # P(K >= N) and P(abandon) = E[(K - N)+] / A (abandons = theta E[queue] / lambda).
    servers, load = 12, 10.0
    model = erlang_a(servers, load, 180.0, patience=180.0, threshold=20.0)
    assert model.p_wait == pytest.approx(poisson_tail(load, servers), rel=1e-10)
    excess = math.fsum((k - servers) * math.exp(-load) * load**k / math.factorial(k)
                       for k in range(servers, 120))
    assert model.p_abandon == pytest.approx(excess / load, rel=1e-9)


def test_erlang_a_needs_no_stability_and_abandons_the_excess() -> None:
    # 600 E offered to 500 agents: in overload nearly all agents are busy and the excess
    # (100 of 600 E, a sixth) hangs up.
    model = erlang_a(500, 600.0, 180.0, patience=300.0, threshold=20.0)
    assert model.p_abandon == pytest.approx(1 / 6, abs=1e-3)
    assert model.occupancy == pytest.approx(1.0, abs=1e-3)
    assert 0.0 <= model.service_level <= 1.0


def test_erlang_a_service_level_follows_the_domain_definition() -> None:
    model = erlang_a(12, 10.0, 180.0, patience=120.0, threshold=20.0)
    assert model.service_level == pytest.approx(
        model.answered_within / (model.p_answered + model.abandoned_after))
    # T = 0: only callers answered at once are "within"; everyone abandons "after T".
    at_zero = erlang_a(12, 10.0, 180.0, patience=120.0, threshold=0.0)
    assert at_zero.answered_within == pytest.approx(1 - at_zero.p_wait)
    assert at_zero.abandoned_after == pytest.approx(at_zero.p_abandon)
    # T very long: nobody is still waiting, so every answer is within T.
    at_hour = erlang_a(12, 10.0, 180.0, patience=120.0, threshold=3600.0)
    assert at_hour.answered_within == pytest.approx(at_hour.p_answered, abs=1e-9)
    assert at_hour.abandoned_after == pytest.approx(0.0, abs=1e-9)


def test_erlang_a_improves_with_every_agent_added() -> None:
    models = [erlang_a(n, 10.0, 180.0, patience=120.0, threshold=20.0) for n in range(8, 16)]
    for fewer, more in itertools.pairwise(models):
        assert more.service_level > fewer.service_level
        assert more.p_abandon < fewer.p_abandon
        assert more.asa < fewer.asa


def test_erlang_a_is_fast_and_stable_for_five_hundred_agents() -> None:
    model = erlang_a(500, 490.0, 180.0, patience=120.0, threshold=20.0)
    for value in (model.p_wait, model.p_abandon, model.service_level, model.occupancy):
        assert 0.0 <= value <= 1.0
    assert model.p_wait < erlang_c(500, 490.0)  # impatient callers shorten the line


def test_staffing_with_impatient_callers_needs_fewer_agents() -> None:
    needed_c = agents_for_service_level(10.0, 180.0, 0.80, 20.0)
    needed_a = agents_for_service_level(10.0, 180.0, 0.80, 20.0, patience=120.0)
    assert needed_a < needed_c
    assert service_level(needed_a, 10.0, 180.0, 20.0, patience=120.0) >= 0.80
    assert service_level(needed_a - 1, 10.0, 180.0, 20.0, patience=120.0) < 0.80


def test_square_root_staffing_rounds_up() -> None:
    assert square_root_staffing(100.0, 1.0) == 110
    assert square_root_staffing(10.0, 0.0) == 10
    assert square_root_staffing(0.0, 2.0) == 1


@pytest.mark.parametrize(("call", "message"), [
    (lambda: erlang_b(0, 1.0), "servers must be a whole number >= 1"),
    (lambda: erlang_c(3, -1.0), "load must be a finite number >= 0"),
    (lambda: erlang_c_asa(3, 1.0, 0.0), "handle_time must be a finite number > 0"),
    (lambda: erlang_a(3, 1.0, 180.0, 0.0), "patience must be > 0"),
    (lambda: agents_for_service_level(10.0, 180.0, 80.0, 20.0), "between 0 and 1"),
])
def test_bad_arguments_are_named(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]
