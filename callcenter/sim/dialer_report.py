"""The four pacing policies compared on one scenario: figures, table, JSON and plot.

``compare(scenario)`` runs, on the same customers:
1. ours (callcenter/core/pacing.py's decide);
2. progressive (one call per ready agent);
3. the VICIdial-style adaptive level at max levels 3, 4 and 6, each with both of VICIdial's
   tallies (all logged-in agents, ready agents only), the best in hindsight (the highest
   occupancy among those within the cap on every day; if none is, the highest);
4. the best fixed dial level in hindsight: for each tally, bisection for the highest level
   whose every day stays within the cap, and the better of the two (it knows the whole
   scenario, so it is a strong bound).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from callcenter.sim.dialer import (
    BIN_SECONDS,
    DayFigures,
    FixedRatio,
    OurPacing,
    Policy,
    Progressive,
    VicidialAdaptive,
    run_policy,
)
from callcenter.sim.dialer_scenario import DialerScenario

VICIDIAL_MAX_LEVELS = (3.0, 4.0, 6.0)
FIXED_RATIO_LOW, FIXED_RATIO_HIGH = 0.5, 10.0
FIXED_RATIO_STEPS = 9  # bisection steps: (10 - 0.5) / 2**9, about 0.02


@dataclass
class PolicyResult:
    """One policy's figures over the scenario's days."""

    policy: str  # ours, progressive, vicidial, fixed
    label: str
    setting: float | None  # the VICIdial max level or the fixed level chosen
    days: list[DayFigures]
    ready_only: bool | None = None  # the level's tally: ready agents only, or all logged in
    candidates: list[dict[str, Any]] = field(default_factory=list)  # every setting tried

    @property
    def logged_in_hours(self) -> float:
        return sum(day.hours * day.agents for day in self.days)

    @property
    def occupancy(self) -> float:
        return sum(day.busy_seconds for day in self.days) / (self.logged_in_hours * 3600.0)

    @property
    def talk_minutes_per_agent_hour(self) -> float:
        return sum(day.talk_seconds for day in self.days) / 60.0 / self.logged_in_hours

    @property
    def abandon_rates(self) -> list[float]:
        return [day.abandon_rate for day in self.days]

    @property
    def worst_day_rate(self) -> float:
        return max(self.abandon_rates)

    @property
    def worst_hour_rate(self) -> float:
        return max(day.worst_hour_rate() for day in self.days)

    @property
    def contacts(self) -> int:
        return sum(day.contacts for day in self.days)

    @property
    def placed(self) -> int:
        return sum(day.placed for day in self.days)

    @property
    def contacts_per_hour(self) -> float:
        return self.contacts / sum(day.hours for day in self.days)

    @property
    def calls_per_contact(self) -> float | None:
        return self.placed / self.contacts if self.contacts else None

    @property
    def list_ran_out(self) -> bool:
        return any(day.list_ran_out for day in self.days)

    def within_cap(self, cap: float) -> bool:
        return all(day.abandoned <= cap * day.live_answers + 1e-9 for day in self.days)

    def timeline(self) -> tuple[list[float], list[float], list[float]]:
        """(hours since the first shift's start, occupancy, the day's abandon rate so far)
        per BIN_SECONDS, the days one after the other."""
        hours, occupancy, abandon = [], [], []
        for number, day in enumerate(self.days):
            per_bin_minutes = int(BIN_SECONDS // 60)
            live = abandoned = 0
            for index, busy in enumerate(day.busy_bins):
                start = index * per_bin_minutes
                live += sum(day.live_minutes[start:start + per_bin_minutes])
                abandoned += sum(day.abandoned_minutes[start:start + per_bin_minutes])
                hours.append(number * day.hours + (index + 1) * BIN_SECONDS / 3600.0)
                occupancy.append(busy / (BIN_SECONDS * day.agents))
                abandon.append(abandoned / live if live else 0.0)
        return hours, occupancy, abandon

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "label": self.label,
            "setting": self.setting,
            "ready_only": self.ready_only,
            "occupancy": round(self.occupancy, 4),
            "talk_minutes_per_agent_hour": round(self.talk_minutes_per_agent_hour, 2),
            "abandon_rate_per_day": [round(rate, 4) for rate in self.abandon_rates],
            "abandon_rate_worst_day": round(self.worst_day_rate, 4),
            "abandon_rate_worst_hour": round(self.worst_hour_rate, 4),
            "contacts_per_hour": round(self.contacts_per_hour, 1),
            "calls_per_contact": (round(self.calls_per_contact, 2)
                                  if self.calls_per_contact is not None else None),
            "calls_placed": self.placed,
            "contacts": self.contacts,
            "live_answers": sum(day.live_answers for day in self.days),
            "abandoned": sum(day.abandoned for day in self.days),
            "list_ran_out": self.list_ran_out,
            "candidates": self.candidates,
        }


def _result(scenario: DialerScenario, policy: Policy, setting: float | None = None
            ) -> PolicyResult:
    return PolicyResult(policy.name, policy.label, setting, run_policy(scenario, policy),
                        getattr(policy, "available_only", None))


def _candidate(run: PolicyResult, cap: float) -> dict[str, Any]:
    return {"label": run.label, "setting": run.setting, "ready_only": run.ready_only,
            "occupancy": round(run.occupancy, 4), "within_cap": run.within_cap(cap)}


def best_vicidial(scenario: DialerScenario,
                  levels: Sequence[float] = VICIDIAL_MAX_LEVELS) -> PolicyResult:
    """Each max level with both of VICIdial's tallies (all logged-in agents, or ready agents
    only): the best in hindsight."""
    runs = [_result(scenario, VicidialAdaptive(level, available_only=ready_only), level)
            for ready_only in (False, True) for level in levels]
    within = [run for run in runs if run.within_cap(scenario.abandon_cap)]
    best = max(within or runs, key=lambda run: run.occupancy)
    best.candidates = [_candidate(run, scenario.abandon_cap) for run in runs]
    return best


def best_fixed_ratio(scenario: DialerScenario, *, low: float = FIXED_RATIO_LOW,
                     high: float = FIXED_RATIO_HIGH, steps: int = FIXED_RATIO_STEPS
                     ) -> PolicyResult:
    """The highest fixed level (to (high - low) / 2**steps) whose every day is within the
    cap, by bisection, for both tallies (lines per logged-in agent, per ready agent); the
    one with the higher occupancy. It sees the whole scenario, as no real dialer could."""
    tried: list[dict[str, Any]] = []
    best_of_each = []
    for ready_only in (False, True):
        floor, top = low, high
        best: PolicyResult | None = None
        for _ in range(steps):
            middle = (floor + top) / 2.0
            run = _result(scenario, FixedRatio(middle, available_only=ready_only), middle)
            tried.append(_candidate(run, scenario.abandon_cap))
            if run.within_cap(scenario.abandon_cap):
                floor, best = middle, run
            else:
                top = middle
        if best is None:  # even the lowest tried breaks the cap: the floor itself
            best = _result(scenario, FixedRatio(floor, available_only=ready_only), floor)
            tried.append(_candidate(best, scenario.abandon_cap))
        best_of_each.append(best)
    chosen = max(best_of_each, key=lambda run: run.occupancy)
    chosen.candidates = tried
    return chosen


def compare(scenario: DialerScenario, *,
            progress: Callable[[str], None] | None = None) -> list[PolicyResult]:
    """The four policies on the same customers, in the issue's order."""
    steps: list[tuple[str, Callable[[], PolicyResult]]] = [
        ("ours", lambda: _result(scenario, OurPacing())),
        ("progressive", lambda: _result(scenario, Progressive())),
        ("vicidial", lambda: best_vicidial(scenario)),
        ("fixed", lambda: best_fixed_ratio(scenario)),
    ]
    results = []
    for name, step in steps:
        if progress is not None:
            progress(name)
        results.append(step())
    return results


def _percent(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100.0 * value:.{digits}f} %"


def format_comparison(scenario: DialerScenario, results: Sequence[PolicyResult]) -> str:
    """A readable table: one row per policy, and our occupancy as a ratio of the others'."""
    profile = ", ".join(f"{hour:g}h {probability:.2f}"
                        for hour, probability in scenario.answer_profile)
    lines = [
        f"{scenario.agents} agents, {scenario.days} day(s) of {scenario.hours:g} h, "
        f"abandon cap {100 * scenario.abandon_cap:g} %, seed {scenario.seed}",
        f"answer probability: {profile}; machines {100 * scenario.machine_share:g} % "
        f"(AMD {'on' if scenario.amd else 'off'}, right {100 * scenario.amd_accuracy:g} %)",
        "",
    ]
    header = ("policy", "occupancy", "talk min/agent h", "abandon worst day",
              "worst hour", "contacts/h", "calls/contact")
    rows = [header]
    for result in results:
        calls_per_contact = result.calls_per_contact
        rows.append((
            result.label,
            _percent(result.occupancy),
            f"{result.talk_minutes_per_agent_hour:.1f}",
            _percent(result.worst_day_rate, 2),
            _percent(result.worst_hour_rate, 2),
            f"{result.contacts_per_hour:.0f}",
            f"{calls_per_contact:.2f}" if calls_per_contact is not None else "-",
        ))
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    for number, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width)
                                              for cell, width in zip(row[1:], widths[1:],
                                                                     strict=True)]
        lines.append("  ".join(cells))
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    short = [result.label for result in results if result.list_ran_out]
    if short:
        lines.append("")
        lines.append(f"the call list ran out under: {', '.join(short)} (raise list_size: "
                     "their figures include days without calls)")
    ours = next((result for result in results if result.policy == "ours"), None)
    if ours is not None:
        lines.append("")
        days = ", ".join(_percent(rate, 2) for rate in ours.abandon_rates)
        lines.append(f"ours: abandon per day {days}")
        for other in results:
            if other is not ours and other.occupancy > 0:
                lines.append(f"ours / {other.label}: occupancy x"
                             f"{ours.occupancy / other.occupancy:.3f}")
    return "\n".join(lines)


def comparison_json(results: Sequence[PolicyResult]) -> list[dict[str, Any]]:
    return [result.to_dict() for result in results]


def plot_comparison(scenario: DialerScenario, results: Sequence[PolicyResult],
                    path: str) -> None:
    """Occupancy and the day's abandon rate over time, one line per policy (a PNG)."""
    import matplotlib  # only for --plot: the command runs without it otherwise

    matplotlib.use("Agg")  # no display: write the file
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 7))
    for result in results:
        hours, occupancy, abandon = result.timeline()
        top.plot(hours, [100 * value for value in occupancy], label=result.label)
        bottom.plot(hours, [100 * value for value in abandon], label=result.label)
    bottom.axhline(100 * scenario.abandon_cap, color="black", linestyle="--",
                   label="abandon cap")
    top.set_ylabel("occupancy, % (per 15 min)")
    bottom.set_ylabel("abandon, % of the day so far")
    bottom.set_xlabel("hours of shift (days one after the other)")
    top.set_title(f"{scenario.agents} agents, seed {scenario.seed}")
    top.legend(loc="lower right", fontsize="small")
    bottom.legend(loc="upper right", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
