"""The inbound simulator: the real ACD on a virtual clock, checked against Erlang C and A.

Accuracy tests use fixed seeds and enough callers that the tolerances below are about four
standard deviations of the run-to-run spread, measured over 16 seeds (docs/simulation.md).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from callcenter.core.erlang import erlang_a, erlang_c, erlang_c_asa, erlang_c_service_level
from callcenter.sim import (
    Report,
    ScenarioError,
    build_report,
    format_report,
    load_scenario,
    scenario_from_toml,
    simulate,
    single_queue_scenario,
)
from callcenter.sim.cli import add_simulate_parser, run_simulate
from callcenter.sim.scenarios import parse_duration, with_overrides
from callcenter.sim.simulator import Outcome

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "simulate-inbound.toml"
HOUR = 3600.0


def erlang_run(*, agents: int, patience: float, hours: float, seed: int) -> Report:
    """200 calls/hour of 180 s (10 Erlangs) with no wrap-up: the textbook's M/M/N(+M)."""
    scenario = single_queue_scenario(agents=agents, arrivals_per_hour=200.0,
                                     handle_time=180.0, wrap_up=0.0, patience=patience,
                                     duration=hours * HOUR, warm_up=HOUR, seed=seed)
    return build_report(simulate(scenario))


# --------------------------------------------------------------------------- against Erlang


def test_without_abandonment_the_acd_matches_erlang_c() -> None:
    # 14 agents, 10 Erlangs, callers who never hang up: about 40,000 simulated callers.
    # One run's spread (1 sd, measured): waited 0.0075, SL 0.0071, ASA 0.74 s, occupancy 0.004.
    report = erlang_run(agents=14, patience=math.inf, hours=200, seed=11)
    figures = report.overall
    assert figures.offered > 38_000
    assert figures.abandoned == 0
    assert figures.waited == pytest.approx(erlang_c(14, 10.0), abs=0.03)           # 0.174
    assert figures.service_level == pytest.approx(
        erlang_c_service_level(14, 10.0, 180.0, 20.0), abs=0.03)                     # 0.888
    assert figures.asa == pytest.approx(erlang_c_asa(14, 10.0, 180.0), abs=3.0)      # 7.8 s
    assert report.agents_overall.occupancy == pytest.approx(10 / 14, abs=0.015)
    assert figures.aht == pytest.approx(180.0, rel=0.02)


def test_with_impatient_callers_the_acd_matches_erlang_a() -> None:
    # 12 agents, 10 Erlangs, mean patience 2 minutes: about 30,000 simulated callers.
    # One run's spread (1 sd, measured): abandoned 0.003, waited 0.009, SL 0.0073, ASA 0.34 s.
    report = erlang_run(agents=12, patience=120.0, hours=150, seed=12)
    figures = report.overall
    model = erlang_a(12, 10.0, 180.0, 120.0, 20.0)
    assert figures.offered > 28_000
    assert figures.abandon_rate == pytest.approx(model.p_abandon, abs=0.012)        # 0.062
    assert figures.waited == pytest.approx(model.p_wait, abs=0.035)                  # 0.280
    assert figures.service_level == pytest.approx(model.service_level, abs=0.03)    # 0.855
    assert figures.asa == pytest.approx(model.asa, abs=1.4)                          # 6.3 s
    assert report.agents_overall.occupancy == pytest.approx(model.occupancy, abs=0.016)


def test_the_report_carries_the_models_prediction_for_one_queue() -> None:
    report = erlang_run(agents=12, patience=120.0, hours=2, seed=1)
    assert report.model is not None
    assert report.model.model == "Erlang A"
    assert report.model.service_level == pytest.approx(
        erlang_a(12, 10.0, 180.0, 120.0, 20.0).service_level)
    assert "Erlang A for 12 agents" in format_report(report)


# --------------------------------------------------------------------------- behaviour


def test_the_same_seed_gives_the_same_report_and_another_seed_another() -> None:
    scenario = single_queue_scenario(duration=2 * HOUR, warm_up=600, seed=5)
    first = build_report(simulate(scenario)).to_dict()
    again = build_report(simulate(scenario)).to_dict()
    other = build_report(simulate(replace(scenario, seed=6))).to_dict()
    assert first == again
    assert first != other


def test_five_more_agents_meet_the_same_callers_and_serve_them_better() -> None:
    base = single_queue_scenario(agents=10, duration=4 * HOUR, warm_up=1800, seed=3)
    before = build_report(simulate(base)).overall
    after = build_report(simulate(with_overrides(base, agents=15))).overall
    assert after.offered == before.offered  # common random numbers: the same callers
    assert after.service_level > before.service_level  # type: ignore[operator]
    assert after.abandoned < before.abandoned
    assert after.asa < before.asa  # type: ignore[operator]


def test_warm_up_callers_are_simulated_but_not_counted() -> None:
    scenario = single_queue_scenario(arrivals_per_hour=360.0, duration=2 * HOUR,
                                     warm_up=HOUR, seed=4)
    result = simulate(scenario)
    assert all(call.arrived >= HOUR for call in result.calls)
    assert len(result.calls) == pytest.approx(720, rel=0.15)
    assert all(call.outcome is not None for call in result.calls)


def test_every_answered_call_wraps_up_for_the_queues_wrap_up_time() -> None:
    scenario = single_queue_scenario(handle_time=200.0, wrap_up=30.0, duration=3 * HOUR,
                                     warm_up=600, seed=8)
    result = simulate(scenario)
    answered = [call for call in result.calls if call.outcome is Outcome.ANSWERED]
    assert answered
    assert all(call.wrap_up == pytest.approx(30.0) for call in answered)
    report = build_report(result)
    assert report.overall.aht == pytest.approx(
        30.0 + sum(call.talk_time for call in answered) / len(answered))
    assert report.overall.acw == pytest.approx(30.0)


def test_a_ring_delay_is_part_of_every_answered_callers_wait() -> None:
    scenario = single_queue_scenario(agents=20, patience=math.inf, duration=HOUR,
                                     warm_up=0, seed=9)
    scenario = replace(scenario, ring_delay=4.0)
    result = simulate(scenario)
    answered = [call for call in result.calls if call.outcome is Outcome.ANSWERED]
    assert min(call.wait for call in answered) == pytest.approx(4.0)
    assert build_report(result).overall.asa >= 4.0  # type: ignore[operator]


def test_callers_past_max_wait_without_overflow_are_timed_out() -> None:
    scenario = scenario_from_toml("""
        [simulation]
        duration = "2h"
        warm_up = 0
        seed = 2
        [[queues]]
        name = "busy"
        arrivals_per_hour = 100
        handle_time = 180
        max_wait = 60
        [[agents]]
        name = "a"
        count = 4
        queues = ["busy"]
    """)
    result = simulate(scenario)
    figures = build_report(result).overall
    assert figures.timed_out > 0
    assert figures.abandoned == 0  # no patience given: nobody hangs up
    assert max(call.wait for call in result.calls) == pytest.approx(60.0, abs=1e-6)


def test_a_skills_scenario_routes_by_skill_and_overflows() -> None:
    scenario = with_overrides(load_scenario(EXAMPLE), duration=4 * HOUR, warm_up=1800)
    result = simulate(scenario)
    report = build_report(result)
    support, sales = report.queues
    assert support.offered > 0 and sales.offered > 0
    spanish = [call for call in result.calls if call.queue == "support" and call.call_type == 1
               and call.outcome is Outcome.ANSWERED]
    assert spanish
    # Only the bilingual agents speak Spanish.
    assert {result.agent_groups[call.agent_id] for call in spanish} == {"bilingual"}
    english = [call for call in result.calls if call.queue == "support" and call.call_type == 0
               and call.outcome is Outcome.ANSWERED]
    assert {result.agent_groups[call.agent_id] for call in english} >= {"support"}
    assert not any(result.agent_groups[call.agent_id] == "sales" for call in english)
    # Sales callers waiting over a minute go on waiting in support, counted in sales.
    assert sales.overflowed > 0
    assert report.model is None  # two queues: no textbook model applies
    assert report.overall.offered == support.offered + sales.offered


# --------------------------------------------------------------------------- scenarios


def test_a_bad_value_is_named_by_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "scenario.toml"
    path.write_text(EXAMPLE.read_text().replace("arrivals_per_hour = 60",
                                                "arrivals_per_hour = 0"))
    with pytest.raises(ScenarioError) as error:
        load_scenario(path)
    assert str(error.value) == f"{path}: queues[1].arrivals_per_hour: must be > 0"


@pytest.mark.parametrize(("change", "message"), [
    (('strategy = "skills"', 'strategy = "best"'),
     "queues[0].strategy: unknown strategy 'best' (known: longest_idle"),
    (('queues = ["sales"]', 'queues = ["salez"]'),
     "agents[2].queues: unknown queue 'salez' (queues: support, sales)"),
    (('duration = "8h"', 'duration = "8 hours"'),
     "simulation.duration: expected seconds or a duration like 90s"),
    (("wrap_up = 30", "wrap_up = 300"), "queues[1].wrap_up: must be >= 0 and less than"),
    (("count = 6", "count = 6\nteam = 1"), "agents[2].team: unknown key"),
    (("skills = { spanish = 1 }", "skills = { spanish = 11 }"),
     "queues[0].call_types[1].skills.spanish: a level from 1 to 10"),
    (('handle_time = "5m"', ""), "queues[1].handle_time: missing"),
    (("count = 3", "count = 0"),
     "queues[0].call_types[1].skills: no agent serving 'support' has spanish >= 1"),
])
def test_scenario_mistakes_say_where_and_what(change: tuple[str, str], message: str) -> None:
    text = EXAMPLE.read_text()
    assert change[0] in text
    with pytest.raises(ScenarioError) as error:
        scenario_from_toml(text.replace(change[0], change[1], 1), "s.toml")
    assert str(error.value).startswith(f"s.toml: {message}")


def test_the_example_scenario_loads() -> None:
    scenario = load_scenario(EXAMPLE)
    assert [queue.name for queue in scenario.queues] == ["support", "sales"]
    assert scenario.agent_count == 18
    assert scenario.queue("sales").handle_time == 300.0
    assert scenario.queue("sales").max_wait == 60.0


def test_durations_read_like_people_write_them() -> None:
    assert parse_duration("1h30m") == 5400.0
    assert parse_duration("45s") == 45.0
    assert parse_duration(90) == 90.0
    assert parse_duration("2.5m") == 150.0
    with pytest.raises(ValueError, match="like 90s"):
        parse_duration("soon")


def test_single_queue_flags_do_not_apply_to_several_queues() -> None:
    with pytest.raises(ScenarioError, match="--arrivals-per-hour applies to a scenario with "
                       "one queue"):
        with_overrides(load_scenario(EXAMPLE), arrivals_per_hour=100.0)
    with pytest.raises(ScenarioError, match="--agents applies to a scenario with one agent"):
        with_overrides(load_scenario(EXAMPLE), agents=3)


# --------------------------------------------------------------------------- command line


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="callcenter")
    add_simulate_parser(parser.add_subparsers(dest="cmd", required=True))
    return parser.parse_args(argv)


def test_the_command_prints_json_with_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(["simulate", "inbound", "--agents", "11", "--arrivals-per-hour", "180",
                  "--handle-time", "3m", "--wrap-up", "10", "--patience", "90",
                  "--duration", "2h", "--warm-up", "15m", "--seed", "4",
                  "--service-level-seconds", "30", "--json"])
    assert args.func is run_simulate
    assert run_simulate(args) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["agents"] == 11
    assert figures["duration_seconds"] == 7200.0
    (queue,) = figures["queues"]
    assert queue["queue"] == "inbound"
    assert queue["service_level_seconds"] == 30.0
    assert queue["offered"] == queue["answered"] + queue["abandoned"]
    assert 0 < queue["service_level"] <= 1
    assert queue["asa"] >= 0 and queue["aht"] > 0
    assert 0 < figures["agents_overall"]["occupancy"] < 1
    assert figures["model"]["model"] == "Erlang A"


def test_the_command_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(["simulate", "inbound", "--scenario", str(EXAMPLE), "--duration", "1h",
                  "--seed", "3"])
    assert run_simulate(args) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("queue"))
    assert "service level %" in header and "ASA s" in header
    support = next(line for line in lines if line.startswith("support "))
    assert header.index("offered") < len(support)
    assert any(line.startswith("bilingual") for line in lines)


def test_a_missing_scenario_file_is_exit_code_2(capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    args = parse(["simulate", "inbound", "--scenario", str(tmp_path / "none.toml")])
    assert run_simulate(args) == 2
    assert "none.toml: cannot read the scenario file" in capsys.readouterr().err


def test_a_wrap_up_longer_than_the_handle_time_is_exit_code_2(
        capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(["simulate", "inbound", "--handle-time", "60", "--wrap-up", "90"])
    assert run_simulate(args) == 2
    assert "wrap_up: must be >= 0 and less than handle_time" in capsys.readouterr().err


def test_a_bad_flag_value_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse(["simulate", "inbound", "--arrivals-per-hour", "-5"])
    assert exit_.value.code == 2
    assert "--arrivals-per-hour: must be a number > 0" in capsys.readouterr().err
