"""``callcenter simulate dialer``: the policies' definitions, the same customers for every
policy, our pacing within the cap, the scenario file and the command's outputs.

Short scenarios only (minutes of a few agents): the full 10/50/200-agent comparison is
bench/dialer_sim.py, its figures in docs/PERFORMANCE.md."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from callcenter.sim.cli import add_simulate_parser
from callcenter.sim.dialer import (
    CallList,
    CampaignRun,
    FixedRatio,
    OurPacing,
    Progressive,
    VicidialAdaptive,
    calls_for_level,
    run_policy,
)
from callcenter.sim.dialer_cli import run_simulate_dialer
from callcenter.sim.dialer_report import (
    best_fixed_ratio,
    compare,
    comparison_json,
    format_comparison,
)
from callcenter.sim.dialer_scenario import (
    DialerScenario,
    Distribution,
    Shape,
    dialer_scenario_from_toml,
    load_dialer_scenario,
)
from callcenter.sim.scenarios import ScenarioError

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "simulate-dialer.toml"


def tiny(**changes: object) -> DialerScenario:
    """A quarter of an hour of 3 agents: enough calls for every path, a fraction of a second."""
    values: dict[str, object] = {"agents": 3, "hours": 0.25, "days": 1, "seed": 5}
    values.update(changes)
    return DialerScenario(**values)  # type: ignore[arg-type]


@dataclass
class FakeView:
    """The part of DialerView the level rules read."""

    logged_in: int
    ready: int
    talking: int
    calls_in_flight: int


# --------------------------------------------------------------------------- the policies


def test_the_vicidial_level_step_by_step() -> None:
    # 10 agents, max level 4, cap 3 %, intensity 1.
    rule = VicidialAdaptive(max_level=4.0)
    rule.start(tiny())
    assert rule.level == 1.0

    def step(ready: int, waiting: int, minute: tuple[int, int] = (20, 0),
             day_rate: float = 0.01) -> float:
        return rule.next_level(ready=ready, waiting=waiting, agents=10, minute_live=minute[0],
                               minute_dropped=minute[1], day_rate=day_rate)

    assert step(ready=5, waiting=1) == pytest.approx(1.4)  # 1 x (1 + (5 - 1) / 10)
    assert step(ready=3, waiting=0) == pytest.approx(1.82)  # 1.4 x 1.3
    assert step(ready=10, waiting=0) == pytest.approx(3.64)  # 1.82 x 2
    assert step(ready=10, waiting=0) == 4.0  # 7.28, clamped to the max level
    # 6 drops of 10 answers in the last minute: more than half, the level halves.
    assert step(ready=0, waiting=0, minute=(10, 6)) == 2.0
    assert step(ready=0, waiting=0, minute=(10, 5)) == 2.0  # exactly half: kept
    assert step(ready=0, waiting=5) == 1.0  # 2 x (1 - 5/10) = 1: the floor
    assert step(ready=0, waiting=8) == 1.0  # 0.2, clamped up to 1
    assert step(ready=5, waiting=0) == pytest.approx(1.5)
    # The day's drop rate above the cap: forced to 1 whatever the agents.
    assert step(ready=10, waiting=0, day_rate=0.031) == 1.0
    assert step(ready=10, waiting=0, day_rate=0.03) == 2.0  # at the cap: not above it


def test_a_level_becomes_calls_as_vicidial_counts_them() -> None:
    # Lines = level x logged-in agents, less every call in progress (in flight or talking).
    view = FakeView(logged_in=10, ready=1, talking=4, calls_in_flight=5)
    assert calls_for_level(1.82, view) == 9  # floor(18.2) - 5 - 4
    assert calls_for_level(1.0, view) == 1  # 10 - 9: the agents in wrap-up or ready
    assert calls_for_level(1.0, FakeView(10, 0, 8, 4)) == 0  # never negative
    # VICIdial's "available only tally": level x ready agents, less the calls in flight.
    assert calls_for_level(3.0, FakeView(10, 4, 5, 5), available_only=True) == 7
    assert calls_for_level(3.0, FakeView(10, 1, 5, 5), available_only=True) == 0
    assert FixedRatio(1.5).calls(FakeView(10, 2, 7, 6)) == 2  # type: ignore[arg-type]
    # A fixed level never places fewer calls than progressive: 8 ready, 2 in flight.
    assert FixedRatio(0.5).calls(FakeView(10, 8, 0, 2)) == 6  # type: ignore[arg-type]


def test_progressive_places_one_call_per_ready_agent() -> None:
    assert Progressive().calls(FakeView(10, 4, 5, 3)) == 1  # type: ignore[arg-type]
    assert Progressive().calls(FakeView(10, 2, 5, 5)) == 0  # type: ignore[arg-type]


def test_progressive_never_abandons_and_predictive_places_more() -> None:
    scenario = tiny(agents=4, hours=0.5)
    (progressive,) = run_policy(scenario, Progressive())
    (ours,) = run_policy(scenario, OurPacing())
    assert progressive.abandoned == 0 and progressive.live_answers > 40
    assert ours.placed > progressive.placed
    assert ours.abandoned <= scenario.abandon_cap * ours.live_answers


def test_a_list_that_runs_out_is_said() -> None:
    scenario = tiny(list_size=40)
    (day,) = run_policy(scenario, OurPacing())
    assert day.placed == 40 and day.list_ran_out
    short = tiny(list_size=40, hours=0.1)
    results = compare(short)
    assert any(result.list_ran_out for result in results)
    assert "the call list ran out under: " in format_comparison(short, results)


def test_the_best_fixed_ratio_stays_within_the_cap() -> None:
    scenario = tiny(agents=4, hours=0.5)
    best = best_fixed_ratio(scenario, steps=5)
    assert best.within_cap(scenario.abandon_cap)
    assert len(best.candidates) == 10  # 5 steps for each tally
    assert best.setting is not None and 0.5 <= best.setting < 10.0
    assert best.ready_only in (False, True)
    # Every level tried above the chosen one (of its tally) broke the cap.
    for tried in best.candidates:
        if tried["ready_only"] == best.ready_only and tried["setting"] > best.setting:
            assert not tried["within_cap"]


# --------------------------------------------------------------------------- same customers


def test_a_customers_draws_depend_on_the_seed_and_row_only() -> None:
    forwards = CallList(7, 5000)
    first = [forwards.draws(row) for row in range(0, 3000, 7)]
    backwards = CallList(7, 5000)
    last = [backwards.draws(row) for row in reversed(range(0, 3000, 7))]
    assert first == last[::-1]
    assert CallList(8, 5000).draws(0) != forwards.draws(0)


def test_every_policy_meets_the_same_customers() -> None:
    # A flat answer rate: whether a row answers does not depend on when it is called.
    scenario = tiny(answer_profile=((0.0, 0.35),), hours=0.5)
    seen = []
    for policy in (Progressive(), OurPacing(), VicidialAdaptive(3.0), FixedRatio(1.4)):
        run = CampaignRun(scenario, policy, trace=True)
        run.run()
        assert run.customers
        seen.append(run.customers)
    for other in seen[1:]:
        common = seen[0].keys() & other.keys()
        assert len(common) > 100
        for row in common:
            assert seen[0][row]["answered"] == other[row]["answered"]
            assert seen[0][row]["person"] == other[row]["person"]
            if "talk" in seen[0][row] and "talk" in other[row]:
                assert seen[0][row]["talk"] == other[row]["talk"]


# Two days that broke the cap before decide() bounded the chance of more abandons than
# allowed landing at once (two abandons when one was allowed, late in a short day).
@example(agents=4, seed=4010, low=0.1875, high=0.46875, machines=0.3125, amd=False,
         accuracy=1.0)
@example(agents=6, seed=2816, low=0.1623, high=0.3141, machines=0.0576, amd=True,
         accuracy=0.7123)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(agents=st.integers(1, 8), seed=st.integers(0, 10_000),
       low=st.floats(0.05, 0.5), high=st.floats(0.3, 0.9), machines=st.floats(0.0, 0.5),
       amd=st.booleans(), accuracy=st.floats(0.7, 1.0))
def test_our_pacing_never_exceeds_the_cap_on_any_day(agents: int, seed: int, low: float,
                                                     high: float, machines: float, amd: bool,
                                                     accuracy: float) -> None:
    scenario = DialerScenario(agents=agents, hours=0.5, days=2, seed=seed,
                              answer_profile=((0.0, high), (0.25, low), (0.5, high)),
                              machine_share=machines, amd=amd, amd_accuracy=accuracy)
    for day in run_policy(scenario, OurPacing()):
        assert day.abandoned <= scenario.abandon_cap * day.live_answers + 1e-9


# --------------------------------------------------------------------------- the scenario


def test_the_example_scenario_loads() -> None:
    scenario = load_dialer_scenario(EXAMPLE)
    assert scenario.agents == 50 and scenario.days == 3 and scenario.hours == 8
    assert scenario.abandon_cap == pytest.approx(0.03)
    assert scenario.answer_profile[0] == (0.0, 0.42)
    assert scenario.answer_probability(1.0) == pytest.approx(0.31)  # halfway to 0.20
    assert scenario.answer_probability(9.0) == pytest.approx(0.42)  # flat after the last
    assert scenario.talk == Distribution(90.0, Shape.LOGNORMAL, 1.0)
    assert scenario.source == str(EXAMPLE)


@pytest.mark.parametrize(("text", "where"), [
    ("[dialer]\nagent = 5", "dialer.agent: unknown key"),
    ("[dialer]\nagents = 'five'", "dialer.agents: expected a whole number"),
    ("[dialer]\nagents = 0", "dialer.agents: must be between 1"),
    ("[dialer]\nhours = 16", "dialer.hours: must be more than 0 and at most 15"),
    ("[dialer]\nring_time = 10", "dialer.ring_time: must be between 15"),
    ("[dialer]\nabandon_cap_percent = 120", "dialer.abandon_cap_percent"),
    ("[dialer]\namd = 'yes'", "dialer.amd: expected true or false"),
    ("[customers]\nmachine_share = 2", "customers.machine_share: must be between 0 and 1"),
    ("[customers]\nanswer_profile = [[0, 0.3], [0, 0.4]]",
     "customers.answer_profile[1]: hours must be >= 0 and increasing"),
    ("[customers]\nanswer_profile = [[0, 1.3]]", "customers.answer_profile[0]: probability"),
    ("[customers]\nanswer_profile = [0.3]", "customers.answer_profile[0]: expected [hour"),
    ("[agents]\ntalk = { mean = 90, shape = 'normal' }", "agents.talk.shape: unknown shape"),
    ("[agents]\nwrap_up = { mean = -1 }", "agents.wrap_up.mean: must be a number"),
    ("[agents]\ntalk = { average = 90 }", "agents.talk.average: unknown key"),
    ("[queues]\nname = 'x'", "queues: unknown key"),
    ("[dialer\n", "not valid TOML"),
])
def test_a_bad_scenario_names_the_file_and_the_key(text: str, where: str) -> None:
    with pytest.raises(ScenarioError) as error:
        dialer_scenario_from_toml(text, "campaign.toml")
    assert str(error.value).startswith("campaign.toml: ")
    assert where in str(error.value)


# --------------------------------------------------------------------------- the command


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="callcenter")
    add_simulate_parser(parser.add_subparsers(dest="cmd", required=True))
    return parser.parse_args(argv)


POLICY_KEYS = {"policy", "label", "setting", "ready_only", "occupancy",
               "talk_minutes_per_agent_hour",
               "abandon_rate_per_day", "abandon_rate_worst_day", "abandon_rate_worst_hour",
               "contacts_per_hour", "calls_per_contact", "calls_placed", "contacts",
               "live_answers", "abandoned", "list_ran_out", "candidates"}


def test_json_is_a_list_of_policies_with_stable_keys() -> None:
    results = comparison_json(compare(tiny(agents=2, hours=0.2, days=2)))
    assert [entry["policy"] for entry in results] == ["ours", "progressive", "vicidial",
                                                      "fixed"]
    for entry in results:
        assert set(entry) == POLICY_KEYS
        assert len(entry["abandon_rate_per_day"]) == 2
        assert 0 <= entry["occupancy"] <= 1
    tried = {(entry["setting"], entry["ready_only"]) for entry in results[2]["candidates"]}
    assert tried == {(level, ready_only) for level in (3.0, 4.0, 6.0)
                     for ready_only in (False, True)}
    assert results[2]["setting"] in (3.0, 4.0, 6.0)
    assert len(results[3]["candidates"]) == 18  # 9 bisection steps for each tally


def test_the_command_prints_json_and_draws_the_plot(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    plot = tmp_path / "day.png"
    args = parse(["simulate", "dialer", "--scenario", str(EXAMPLE), "--agents", "2",
                  "--hours", "0.15", "--days", "1", "--talk-mean", "60", "--talk-shape",
                  "exponential", "--json", "--plot", str(plot)])
    assert run_simulate_dialer(args) == 0
    results = json.loads(capsys.readouterr().out)
    assert len(results) == 4 and all(set(entry) == POLICY_KEYS for entry in results)
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_the_command_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(["simulate", "dialer", "--agents", "2", "--hours", "0.1",
                  "--answer-profile", "0:0.3,0.1:0.4", "--no-amd"])
    assert run_simulate_dialer(args) == 0
    out = capsys.readouterr().out
    assert "occupancy" in out and "abandon worst day" in out
    for label in ("ours (predictive)", "progressive", "VICIdial-style", "fixed level"):
        assert label in out


def test_the_help_prints(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse(["simulate", "dialer", "--help"])
    assert exit_.value.code == 0
    assert "--answer-profile" in capsys.readouterr().out


def test_a_bad_scenario_is_exit_code_2(capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[customers]\nmachine_share = 1.5\n", encoding="utf-8")
    assert run_simulate_dialer(parse(["simulate", "dialer", "--scenario", str(bad)])) == 2
    assert f"{bad}: customers.machine_share: must be between 0 and 1" in (
        capsys.readouterr().err)
    assert run_simulate_dialer(parse(["simulate", "dialer", "--ring-time", "10"])) == 2
    assert "command line: dialer.ring_time" in capsys.readouterr().err
