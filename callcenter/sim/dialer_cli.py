"""``callcenter simulate dialer``: four pacing policies on the same simulated customers.

Added beside ``simulate inbound`` by callcenter/sim/cli.py; the parsed arguments carry
``func=run_simulate_dialer``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from callcenter.sim.cli import _count, _positive, _seed
from callcenter.sim.dialer_report import (
    compare,
    comparison_json,
    format_comparison,
    plot_comparison,
)
from callcenter.sim.dialer_scenario import (
    DialerScenario,
    Shape,
    load_dialer_scenario,
    with_dialer_overrides,
)
from callcenter.sim.scenarios import ScenarioError


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text!r}")
    return value


def _profile(text: str) -> list[tuple[float, float]]:
    """``0:0.42,2:0.20,4:0.42``: hour:probability pairs."""
    points = []
    for part in text.split(","):
        hour, _, probability = part.partition(":")
        try:
            points.append((float(hour), float(probability)))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected hour:probability pairs separated by commas (0:0.42,4:0.20), "
                f"got {part!r}") from None
    return points


_SHAPES = [shape.value for shape in Shape]


def add_dialer_parser(kinds: Any) -> None:
    """Add ``simulate dialer`` to the ``simulate`` subcommand's subparsers."""
    dialer = kinds.add_parser(
        "dialer", help="outbound pacing: ours vs progressive, VICIdial-style, fixed level",
        description="Simulate an outbound campaign on a virtual clock and compare, on the same "
        "customers, our predictive pacing (callcenter/core/pacing.py), progressive, a "
        "VICIdial-style adaptive dial level (max levels 3, 4, 6; the best in hindsight) and "
        "the best fixed dial level in hindsight. Flags override the scenario file. See "
        "docs/simulation.md.")
    dialer.add_argument("--scenario", metavar="FILE", help="a dialer scenario file (TOML)")
    dialer.add_argument("--agents", type=_count, metavar="N", help="agents (default 50)")
    dialer.add_argument("--hours", type=_positive, metavar="H", help="shift hours (default 8)")
    dialer.add_argument("--days", type=_count, metavar="N", help="days (default 1)")
    dialer.add_argument("--list-size", type=_count, metavar="ROWS",
                        help="call list rows, each dialed once (default 1,000,000)")
    dialer.add_argument("--abandon-cap-percent", type=_positive, metavar="PERCENT",
                        help="abandoned live answers per day, at most (default 3)")
    dialer.add_argument("--seed", type=_seed, help="random seed (default 1)")
    amd = dialer.add_mutually_exclusive_group()
    amd.add_argument("--amd", dest="amd", action="store_true", default=None,
                     help="answering machine detection on (the default)")
    amd.add_argument("--no-amd", dest="amd", action="store_false",
                     help="no AMD: every answer goes to an agent")
    dialer.add_argument("--ring-time", type=_positive, metavar="SECONDS",
                        help="ring time before no answer, >= 15 (default 20)")
    dialer.add_argument("--answer-profile", type=_profile, metavar="H:P,...",
                        help="answer probability over the day, e.g. 0:0.42,2:0.20,4:0.42 "
                        "(default: 0.42 and 0.20 alternating every 2 h)")
    dialer.add_argument("--machine-share", type=_share, metavar="SHARE",
                        help="machines among answers (default 0.25)")
    dialer.add_argument("--amd-accuracy", type=_share, metavar="SHARE",
                        help="AMD right, on people and machines alike (default 0.9)")
    dialer.add_argument("--hangup-share", type=_share, metavar="SHARE",
                        help="live answers who hang up at once on the agent (default 0.1)")
    for name, what, default in (("time-to-answer", "placed to answered", "8"),
                                ("amd-time", "the AMD's decision", "2.5"),
                                ("talk", "talk", "90"), ("wrap-up", "wrap-up", "15")):
        dialer.add_argument(f"--{name}-mean", type=_positive, metavar="SECONDS",
                            help=f"mean seconds of {what} (default {default})")
        dialer.add_argument(f"--{name}-shape", choices=_SHAPES,
                            help=f"distribution of {what} (default lognormal)")
        dialer.add_argument(f"--{name}-cv", type=_positive, metavar="CV",
                            help=f"sd / mean of a lognormal {what}")
    dialer.add_argument("--json", action="store_true",
                        help="print the policies' figures as JSON (a list)")
    dialer.add_argument("--plot", metavar="FILE.png",
                        help="draw occupancy and abandon %% over the day per policy")
    dialer.set_defaults(func=run_simulate_dialer)


_OVERRIDES = ("agents", "hours", "days", "list_size", "seed", "amd", "ring_time",
              "answer_profile", "machine_share", "amd_accuracy", "hangup_share")


def build_dialer_scenario(args: argparse.Namespace) -> DialerScenario:
    """The scenario from --scenario (or the defaults) and the flags; ScenarioError if bad."""
    base = (load_dialer_scenario(args.scenario) if args.scenario
            else DialerScenario(source="command line"))
    changes: dict[str, Any] = {key: getattr(args, key) for key in _OVERRIDES}
    if args.abandon_cap_percent is not None:
        changes["abandon_cap"] = args.abandon_cap_percent / 100.0
    for name in ("time_to_answer", "amd_time", "talk", "wrap_up"):
        for part in ("mean", "shape", "cv"):
            changes[f"{name}_{part}"] = getattr(args, f"{name}_{part}")
    return with_dialer_overrides(base, **changes)


def run_simulate_dialer(args: argparse.Namespace) -> int:
    """Run the four policies, print the comparison. 0 when done; 2 on bad input."""
    try:
        scenario = build_dialer_scenario(args)
    except ScenarioError as exc:
        print(f"callcenter simulate: {exc}", file=sys.stderr)
        return 2
    results = compare(scenario)
    if args.json:
        print(json.dumps(comparison_json(results), indent=2))
    else:
        print(format_comparison(scenario, results))
    if args.plot:
        plot_comparison(scenario, results, args.plot)
        if not args.json:
            print(f"plot: {args.plot}")
    return 0
