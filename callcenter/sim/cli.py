"""``callcenter simulate inbound``: "what if I add five agents?" on the real ACD;
``callcenter simulate dialer``: our predictive pacing against progressive, a VICIdial-style
adaptive level and the best fixed dial level, on the same simulated customers.

Wired into the main parser by callcenter/cli.py with ``add_simulate_parser(sub)``; the
parsed arguments carry ``func=run_simulate``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from callcenter.sim.report import build_report, format_report
from callcenter.sim.scenarios import (
    ScenarioError,
    load_scenario,
    parse_duration,
    single_queue_scenario,
    with_overrides,
)
from callcenter.sim.simulator import simulate

_NEVER = {"never", "inf", "infinite", "none"}


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def _duration(text: str) -> float:
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def _patience(text: str) -> float:
    if text.strip().lower() in _NEVER:
        return math.inf
    return _duration(text)


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def add_simulate_parser(subparsers: Any) -> None:
    """Add ``simulate inbound`` to an argparse subparsers object (from add_subparsers)."""
    simulate_parser = subparsers.add_parser(
        "simulate", help="simulate calls on the real ACD (staffing what-ifs)")
    kinds = simulate_parser.add_subparsers(dest="simulation", required=True)
    inbound = kinds.add_parser(
        "inbound", help="inbound queues: service level, ASA, abandons, occupancy",
        description="Simulate inbound callers and agents on the real ACD with a virtual "
        "clock and compare with Erlang C / Erlang A. Without --scenario: one queue "
        "answered by --agents agents. With --scenario, flags override the file "
        "(queue and agent flags only for a file with one queue / one agent group). "
        "Durations take seconds or 90s, 30m, 8h, 1h30m. See docs/simulation.md.")
    inbound.add_argument("--scenario", metavar="FILE",
                         help="a scenario file (TOML): queues, agent groups, skills")
    inbound.add_argument("--agents", type=_count, metavar="N",
                         help="agents answering the queue (default 12)")
    inbound.add_argument("--arrivals-per-hour", type=_positive, metavar="CALLS",
                         help="Poisson arrival rate (default 200)")
    inbound.add_argument("--handle-time", type=_duration, metavar="SECONDS",
                         help="mean handle time: exponential talk + wrap-up (default 180)")
    inbound.add_argument("--wrap-up", type=_duration, metavar="SECONDS",
                         help="fixed wrap-up after each call, part of the handle time "
                         "(default 15)")
    inbound.add_argument("--patience", type=_patience, metavar="SECONDS",
                         help="mean exponential patience of waiting callers, or 'never' "
                         "(default 120)")
    inbound.add_argument("--duration", type=_duration, metavar="TIME",
                         help="measured period after the warm-up (default 8h)")
    inbound.add_argument("--warm-up", type=_duration, metavar="TIME",
                         help="simulated first, left out of the figures (default 30m)")
    inbound.add_argument("--seed", type=_seed, help="random seed (default 1)")
    inbound.add_argument("--service-level-seconds", type=_duration, metavar="T",
                         help="the T of 'answered within T seconds' (default 20)")
    inbound.add_argument("--json", action="store_true",
                         help="print the figures as JSON instead of a table")
    inbound.set_defaults(func=run_simulate)
    from callcenter.sim.dialer_cli import add_dialer_parser  # it uses this module's types

    add_dialer_parser(kinds)


def run_simulate(args: argparse.Namespace) -> int:
    """Build the scenario, run it, print the report. 0 when done; 2 on bad input."""
    overrides = {
        "agents": args.agents,
        "arrivals_per_hour": args.arrivals_per_hour,
        "handle_time": args.handle_time,
        "wrap_up": args.wrap_up,
        "patience": args.patience,
        "duration": args.duration,
        "warm_up": args.warm_up,
        "seed": args.seed,
        "service_level_seconds": args.service_level_seconds,
    }
    try:
        if args.scenario:
            scenario = with_overrides(load_scenario(args.scenario), **overrides)
        else:
            given = {key: value for key, value in overrides.items() if value is not None}
            scenario = single_queue_scenario(**given)
    except ScenarioError as exc:
        print(f"callcenter simulate: {exc}", file=sys.stderr)
        return 2
    report = build_report(simulate(scenario))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(format_report(report))
    return 0
