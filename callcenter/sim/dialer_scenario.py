"""What to simulate for the outbound dialer: customers, agents and the day, from TOML or flags.

A scenario file (see docs/examples/simulate-dialer.toml):

    [dialer]
    agents = 50
    hours = 8                 # each day's shift; the dialer stops placing calls at its end
    days = 3                  # each day a new abandon day (the budget's day is the date)
    list_size = 1000000       # rows of the call list, each dialed once, in order
    abandon_cap_percent = 3   # of live answers, per day (and rolling 30 days)
    seed = 1
    amd = true
    ring_time = 20            # seconds a call rings before it counts as no answer

    [customers]
    answer_profile = [[0, 0.42], [2, 0.20], [4, 0.42], [6, 0.20], [8, 0.42]]
    machine_share = 0.25      # of answered calls
    amd_accuracy = 0.9        # AMD right on humans and machines alike
    hangup_share = 0.1        # live answers who hang up at once on hearing the agent
    time_to_answer = { mean = 8, shape = "lognormal", cv = 0.5 }
    amd_time = { mean = 2.5, shape = "lognormal", cv = 0.3 }

    [agents]
    talk = { mean = 90, shape = "lognormal", cv = 1.0 }
    wrap_up = { mean = 15, shape = "lognormal", cv = 0.5 }

Every mistake raises ScenarioError naming the file and the key, e.g.
``dialer.toml: customers.machine_share: must be between 0 and 1``.
"""

from __future__ import annotations

import bisect
import math
import tomllib
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from statistics import NormalDist
from typing import Any

from callcenter.core.dial_rules import MIN_RING_TIME
from callcenter.core.pacing import DEFAULT_ABANDON_CAP
from callcenter.sim.scenarios import ScenarioError, _Reader, read_scenario_text

MAX_DIALER_AGENTS = 2000  # beyond this a pure-Python day takes minutes per policy
MAX_SHIFT_HOURS = 15.0  # shifts start at 09:00 (callcenter/sim/dialer.py): one date each
_STANDARD_NORMAL = NormalDist()

# The drifting day: the answer rate swings between 0.42 and 0.20 twice in 8 hours.
DRIFTING_PROFILE: tuple[tuple[float, float], ...] = (
    (0.0, 0.42), (2.0, 0.20), (4.0, 0.42), (6.0, 0.20), (8.0, 0.42))


class Shape(StrEnum):
    FIXED = "fixed"
    EXPONENTIAL = "exponential"
    LOGNORMAL = "lognormal"


@dataclass(frozen=True)
class Distribution:
    """A positive duration: its mean (seconds), shape, and for a lognormal its coefficient of
    variation (sd / mean). Sampled by inverse CDF from one uniform draw, so a customer's
    draw gives the same duration whichever policy meets them."""

    mean: float
    shape: Shape = Shape.LOGNORMAL
    cv: float = 1.0

    def quantile(self, u: float) -> float:
        """The duration at probability ``u`` in (0, 1)."""
        u = min(max(u, 1e-12), 1.0 - 1e-12)
        if self.shape is Shape.FIXED:
            return self.mean
        if self.shape is Shape.EXPONENTIAL:
            return -self.mean * math.log1p(-u)
        sigma_sq = math.log1p(self.cv * self.cv)
        mu = math.log(self.mean) - sigma_sq / 2.0
        return math.exp(mu + math.sqrt(sigma_sq) * _STANDARD_NORMAL.inv_cdf(u))

    def cdf(self, x: float) -> float:
        if x <= 0.0:
            return 0.0
        if self.shape is Shape.FIXED:
            return 1.0 if x >= self.mean else 0.0
        if self.shape is Shape.EXPONENTIAL:
            return -math.expm1(-x / self.mean)
        sigma_sq = math.log1p(self.cv * self.cv)
        mu = math.log(self.mean) - sigma_sq / 2.0
        return _STANDARD_NORMAL.cdf((math.log(x) - mu) / math.sqrt(sigma_sq))


@dataclass(frozen=True)
class DialerScenario:
    agents: int = 50
    hours: float = 8.0
    days: int = 1
    list_size: int = 1_000_000
    abandon_cap: float = DEFAULT_ABANDON_CAP
    seed: int = 1
    amd: bool = True
    ring_time: float = 20.0
    answer_profile: tuple[tuple[float, float], ...] = DRIFTING_PROFILE
    machine_share: float = 0.25
    amd_accuracy: float = 0.9
    hangup_share: float = 0.1
    time_to_answer: Distribution = field(default_factory=lambda: Distribution(8.0, cv=0.5))
    amd_time: Distribution = field(default_factory=lambda: Distribution(2.5, cv=0.3))
    talk: Distribution = field(default_factory=lambda: Distribution(90.0, cv=1.0))
    wrap_up: Distribution = field(default_factory=lambda: Distribution(15.0, cv=0.5))
    source: str = "scenario"

    def __post_init__(self) -> None:
        _check(self)

    def answer_probability(self, hour: float) -> float:
        """P(answered, by a person or a machine) of a call placed ``hour`` hours into the
        day: linear between the profile's points, flat before the first and after the last."""
        hours = [point[0] for point in self.answer_profile]
        index = bisect.bisect_right(hours, hour)
        if index == 0:
            return self.answer_profile[0][1]
        if index == len(hours):
            return self.answer_profile[-1][1]
        (h0, p0), (h1, p1) = self.answer_profile[index - 1], self.answer_profile[index]
        return p0 + (p1 - p0) * (hour - h0) / (h1 - h0)


def _fail(source: str, where: str, problem: str) -> ScenarioError:
    return ScenarioError(f"{source}: {where}: {problem}")


def _check(s: DialerScenario) -> None:
    src = s.source
    if not 1 <= s.agents <= MAX_DIALER_AGENTS:
        raise _fail(src, "dialer.agents", f"must be between 1 and {MAX_DIALER_AGENTS}")
    if not 0 < s.hours <= MAX_SHIFT_HOURS:
        raise _fail(src, "dialer.hours", f"must be more than 0 and at most {MAX_SHIFT_HOURS} "
                    "(a shift starts at 09:00 and ends by midnight: one abandon day)")
    if not 1 <= s.days <= 366:
        raise _fail(src, "dialer.days", "must be between 1 and 366")
    if s.list_size < 1:
        raise _fail(src, "dialer.list_size", "must be >= 1")
    if not 0 < s.abandon_cap < 1:
        raise _fail(src, "dialer.abandon_cap_percent", "must be more than 0 and less "
                    "than 100")
    if not MIN_RING_TIME <= s.ring_time <= 120:
        raise _fail(src, "dialer.ring_time", f"must be between {MIN_RING_TIME:g} and 120 "
                    "seconds (at least 4 rings)")
    if len(s.answer_profile) < 1:
        raise _fail(src, "customers.answer_profile", "at least one [hour, probability]")
    previous = -math.inf
    for index, (hour, probability) in enumerate(s.answer_profile):
        where = f"customers.answer_profile[{index}]"
        if not math.isfinite(hour) or hour < 0 or hour <= previous:
            raise _fail(src, where, "hours must be >= 0 and increasing")
        if not 0 <= probability <= 1:
            raise _fail(src, where, f"probability must be between 0 and 1, not {probability}")
        previous = hour
    for key in ("machine_share", "amd_accuracy", "hangup_share"):
        if not 0 <= getattr(s, key) <= 1:
            raise _fail(src, f"customers.{key}", "must be between 0 and 1")
    for where, distribution in (("customers.time_to_answer", s.time_to_answer),
                                ("customers.amd_time", s.amd_time),
                                ("agents.talk", s.talk), ("agents.wrap_up", s.wrap_up)):
        if not 0 < distribution.mean < 86_400 or not math.isfinite(distribution.mean):
            raise _fail(src, f"{where}.mean", "must be a number of seconds > 0")
        if not 0 < distribution.cv <= 10:
            raise _fail(src, f"{where}.cv", "must be more than 0 and at most 10")


# --------------------------------------------------------------------------- from TOML


def _distribution(table: _Reader, key: str, default: Distribution) -> Distribution:
    if key not in table.table:
        return default
    inner = _Reader(table.source, table.where(key), table.table[key])
    inner.only("mean", "shape", "cv")
    shape_name = inner.text("shape", default.shape.value)
    try:
        shape = Shape(shape_name)
    except ValueError:
        raise inner.fail("shape", f"unknown shape {shape_name!r} (known: "
                         f"{', '.join(item.value for item in Shape)})") from None
    return Distribution(mean=inner.number("mean", default.mean), shape=shape,
                        cv=inner.number("cv", default.cv))


def _profile(table: _Reader, key: str) -> tuple[tuple[float, float], ...]:
    value = table.table.get(key)
    if value is None:
        return DRIFTING_PROFILE
    if not isinstance(value, list) or not value:
        raise table.fail(key, f"expected a list of [hour, probability], got {value!r}")
    points = []
    for index, item in enumerate(value):
        if (not isinstance(item, list) or len(item) != 2
                or not all(isinstance(x, int | float) and not isinstance(x, bool)
                           for x in item)):
            raise table.fail(f"{key}[{index}]", f"expected [hour, probability], got {item!r}")
        points.append((float(item[0]), float(item[1])))
    return tuple(points)


def _boolean(table: _Reader, key: str, default: bool) -> bool:
    value = table.table.get(key, default)
    if not isinstance(value, bool):
        raise table.fail(key, f"expected true or false, got {value!r}")
    return value


def dialer_scenario_from_toml(text: str, source: str = "scenario") -> DialerScenario:
    """Parse and validate a dialer scenario; ScenarioError names ``source`` and the key."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from None
    root = _Reader(source, "", document)
    root.only("dialer", "customers", "agents")
    dialer = _Reader(source, "dialer", document.get("dialer", {}))
    dialer.only("agents", "hours", "days", "list_size", "abandon_cap_percent", "seed", "amd",
                "ring_time")
    customers = _Reader(source, "customers", document.get("customers", {}))
    customers.only("answer_profile", "machine_share", "amd_accuracy", "hangup_share",
                   "time_to_answer", "amd_time")
    agents = _Reader(source, "agents", document.get("agents", {}))
    agents.only("talk", "wrap_up")
    d = DialerScenario
    defaults = DialerScenario(source=source)
    return DialerScenario(
        agents=dialer.integer("agents", d.agents) or 0,
        hours=dialer.number("hours", d.hours),
        days=dialer.integer("days", d.days) or 0,
        list_size=dialer.integer("list_size", d.list_size) or 0,
        abandon_cap=dialer.number("abandon_cap_percent", 100.0 * d.abandon_cap) / 100.0,
        seed=dialer.integer("seed", d.seed) or 0,
        amd=_boolean(dialer, "amd", d.amd),
        ring_time=dialer.duration("ring_time", d.ring_time),
        answer_profile=_profile(customers, "answer_profile"),
        machine_share=customers.number("machine_share", d.machine_share),
        amd_accuracy=customers.number("amd_accuracy", d.amd_accuracy),
        hangup_share=customers.number("hangup_share", d.hangup_share),
        time_to_answer=_distribution(customers, "time_to_answer", defaults.time_to_answer),
        amd_time=_distribution(customers, "amd_time", defaults.amd_time),
        talk=_distribution(agents, "talk", defaults.talk),
        wrap_up=_distribution(agents, "wrap_up", defaults.wrap_up),
        source=source,
    )


def load_dialer_scenario(path: str | Path) -> DialerScenario:
    """Read a dialer scenario file (TOML); ScenarioError when it is missing or wrong."""
    path = Path(path)
    return dialer_scenario_from_toml(read_scenario_text(path), str(path))


def with_dialer_overrides(scenario: DialerScenario, **changes: Any) -> DialerScenario:
    """The scenario with the command line's flags on top (None: not given). Flags for a
    distribution (``talk_mean``, ``talk_shape``, ...) change that part of it only."""
    changes = {key: value for key, value in changes.items() if value is not None}
    for name in ("talk", "wrap_up", "time_to_answer", "amd_time"):
        parts = {part: changes.pop(f"{name}_{part}")
                 for part in ("mean", "shape", "cv") if f"{name}_{part}" in changes}
        if parts:
            if "shape" in parts:
                parts["shape"] = Shape(parts["shape"])
            changes[name] = replace(getattr(scenario, name), **parts)
    if "answer_profile" in changes:
        changes["answer_profile"] = tuple(tuple(point) for point in changes["answer_profile"])
    unknown = set(changes) - set(DialerScenario.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown overrides: {', '.join(sorted(unknown))}")
    source = scenario.source if scenario.source != "scenario" else "command line"
    return replace(scenario, source=source, **changes)
