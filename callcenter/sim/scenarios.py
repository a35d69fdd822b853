"""What to simulate: queues, agents and callers, from a TOML file or from command-line flags.

A scenario file (see docs/examples/simulate-inbound.toml):

    [simulation]
    duration = "8h"          # the measured period (after the warm-up); seconds or 90s/30m/8h
    warm_up = "30m"          # simulated first, excluded from the figures
    seed = 7
    ring_delay = 0           # seconds an agent's phone rings before they answer
    short_abandon = 5        # hang-ups before this many seconds of waiting are "short"

    [[queues]]
    name = "support"
    arrivals_per_hour = 200  # Poisson arrivals
    handle_time = 180        # mean handle time: exponential talk time + fixed wrap-up
    wrap_up = 15             # seconds, part of handle_time
    patience = 120           # mean seconds a caller waits before hanging up (omit: never)
    strategy = "longest_idle"
    service_level_seconds = 20
    max_wait = "10m"         # (omit: no limit) then overflow_to, or the caller is timed out
    [[queues.call_types]]    # optional mix of callers; share is a relative weight
    share = 3
    skills = { english = 1 }

    [[agents]]
    name = "tier1"           # agents are named tier1-001, tier1-002, ...
    count = 12
    queues = ["support"]
    skills = { english = 5 }

Every mistake raises ScenarioError naming the file and the key, e.g.
``scenario.toml: queues[1].arrivals_per_hour: must be > 0``.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from callcenter.core.acd import Strategy

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([hms])")
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0}
MAX_AGENTS = 5000  # per scenario: beyond this a pure-Python run takes too long to be useful


class ScenarioError(ValueError):
    """The scenario is wrong; the message says where (file and key) and what."""


def parse_duration(value: object) -> float:
    """Seconds from a number, or text such as "90", "45s", "30m", "8h", "1h30m"."""
    if isinstance(value, bool):
        raise ValueError(f"expected seconds or a duration like 30m or 8h, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION_RE.findall(text)
            if not parts or _DURATION_RE.sub("", text).strip():
                raise ValueError(f"expected seconds or a duration like 90s, 30m, 8h or "
                                 f"1h30m, got {value!r}") from None
            seconds = sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
    else:
        raise ValueError(f"expected seconds or a duration like 30m or 8h, got {value!r}")
    if not math.isfinite(seconds):
        raise ValueError(f"expected a finite duration, got {value!r}")
    return seconds


def _frozen(mapping: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class CallType:
    """A kind of caller of a queue: its share of the queue's arrivals and what it needs."""

    share: float = 1.0
    skills: Mapping[str, int] = field(default_factory=lambda: _frozen({}))
    priority: int = 0


@dataclass(frozen=True)
class QueueScenario:
    name: str
    arrivals_per_hour: float
    handle_time: float                  # mean seconds per handled call: talk + wrap-up
    wrap_up: float = 0.0                # fixed seconds after each call (the queue's rule)
    patience: float = math.inf          # mean seconds a caller waits; inf: never hangs up
    strategy: Strategy = Strategy.LONGEST_IDLE
    service_level_seconds: float = 20.0
    max_wait: float = math.inf
    max_length: int | None = None
    overflow_to: str | None = None
    ring_timeout: float = 15.0
    call_types: tuple[CallType, ...] = (CallType(),)

    @property
    def talk_time(self) -> float:
        """Mean talk seconds: the handle time less the wrap-up."""
        return self.handle_time - self.wrap_up


@dataclass(frozen=True)
class AgentGroup:
    name: str
    count: int
    queues: tuple[str, ...]
    skills: Mapping[str, int] = field(default_factory=lambda: _frozen({}))

    def agent_ids(self) -> list[str]:
        return [f"{self.name}-{number:03d}" for number in range(1, self.count + 1)]


@dataclass(frozen=True)
class Scenario:
    queues: tuple[QueueScenario, ...]
    agent_groups: tuple[AgentGroup, ...]
    duration: float = 8 * 3600.0        # measured seconds of arrivals, after the warm-up
    warm_up: float = 1800.0
    seed: int = 1
    ring_delay: float = 0.0
    short_abandon: float = 5.0
    source: str = "scenario"            # where it came from, for error messages

    def __post_init__(self) -> None:
        _check_scenario(self)

    def queue(self, name: str) -> QueueScenario:
        for queue in self.queues:
            if queue.name == name:
                return queue
        raise KeyError(name)

    @property
    def agent_count(self) -> int:
        return sum(group.count for group in self.agent_groups)


# --------------------------------------------------------------------------- checks


def _fail(source: str, where: str, problem: str) -> ScenarioError:
    return ScenarioError(f"{source}: {where}: {problem}")


def _check_scenario(scenario: Scenario) -> None:
    src = scenario.source
    if not scenario.queues:
        raise _fail(src, "queues", "at least one queue is needed")
    if not scenario.agent_groups:
        raise _fail(src, "agents", "at least one group of agents is needed")
    if not scenario.duration > 0:
        raise _fail(src, "simulation.duration", "must be > 0")
    if scenario.warm_up < 0:
        raise _fail(src, "simulation.warm_up", "must be >= 0")
    if scenario.ring_delay < 0:
        raise _fail(src, "simulation.ring_delay", "must be >= 0")
    if scenario.short_abandon < 0:
        raise _fail(src, "simulation.short_abandon", "must be >= 0")
    names = [queue.name for queue in scenario.queues]
    for index, queue in enumerate(scenario.queues):
        where = f"queues[{index}]"
        if names.count(queue.name) > 1:
            raise _fail(src, f"{where}.name", f"queue {queue.name!r} is defined twice")
        _check_queue(src, where, queue, names, scenario.ring_delay)
    agent_names = [group.name for group in scenario.agent_groups]
    for index, group in enumerate(scenario.agent_groups):
        where = f"agents[{index}]"
        if agent_names.count(group.name) > 1:
            raise _fail(src, f"{where}.name", f"agent group {group.name!r} is defined twice")
        if not NAME_RE.fullmatch(group.name):
            raise _fail(src, f"{where}.name", "a name of letters, digits, - and _ "
                        f"(starting with a letter) is needed, not {group.name!r}")
        if group.count < 0:
            raise _fail(src, f"{where}.count", "must be >= 0")
        if not group.queues:
            raise _fail(src, f"{where}.queues", "name at least one queue")
        for queue_name in group.queues:
            if queue_name not in names:
                raise _fail(src, f"{where}.queues", f"unknown queue {queue_name!r} "
                            f"(queues: {', '.join(names)})")
        _check_skills(src, f"{where}.skills", group.skills)
    if scenario.agent_count > MAX_AGENTS:
        raise _fail(src, "agents", f"{scenario.agent_count} agents in all; at most "
                    f"{MAX_AGENTS} are simulated")
    for index, queue in enumerate(scenario.queues):
        staff = [group for group in scenario.agent_groups
                 if group.count and queue.name in group.queues]
        if not staff:
            raise _fail(src, f"queues[{index}]", f"no agent serves queue {queue.name!r}: "
                        "every caller would be refused")
        for number, call_type in enumerate(queue.call_types):
            if not any(_qualified(group, call_type) for group in staff):
                needs = ", ".join(f"{skill} >= {level}"
                                  for skill, level in call_type.skills.items())
                raise _fail(src, f"queues[{index}].call_types[{number}].skills",
                            f"no agent serving {queue.name!r} has {needs}: these callers "
                            "could never be answered")


def _qualified(group: AgentGroup, call_type: CallType) -> bool:
    return all(group.skills.get(skill, 0) >= level
               for skill, level in call_type.skills.items())


def _check_queue(src: str, where: str, queue: QueueScenario, names: list[str],
                 ring_delay: float) -> None:
    if not NAME_RE.fullmatch(queue.name):
        raise _fail(src, f"{where}.name", "a name of letters, digits, - and _ (starting "
                    f"with a letter) is needed, not {queue.name!r}")
    if not queue.arrivals_per_hour > 0 or not math.isfinite(queue.arrivals_per_hour):
        raise _fail(src, f"{where}.arrivals_per_hour", "must be > 0")
    if not queue.handle_time > 0 or not math.isfinite(queue.handle_time):
        raise _fail(src, f"{where}.handle_time", "must be > 0 seconds")
    if not 0 <= queue.wrap_up < queue.handle_time:
        raise _fail(src, f"{where}.wrap_up", "must be >= 0 and less than handle_time "
                    f"({queue.handle_time:g} s): handle time is talk plus wrap-up")
    if not queue.patience > 0:
        raise _fail(src, f"{where}.patience", "must be > 0 seconds (omit it for callers "
                    "who never hang up)")
    if not queue.service_level_seconds >= 0:
        raise _fail(src, f"{where}.service_level_seconds", "must be >= 0")
    if not queue.max_wait > 0:
        raise _fail(src, f"{where}.max_wait", "must be > 0 seconds")
    if queue.max_length is not None and queue.max_length < 1:
        raise _fail(src, f"{where}.max_length", "must be >= 1")
    if queue.overflow_to is not None and queue.overflow_to not in names:
        raise _fail(src, f"{where}.overflow_to", f"unknown queue {queue.overflow_to!r}")
    if queue.overflow_to == queue.name:
        raise _fail(src, f"{where}.overflow_to", "a queue cannot overflow to itself")
    if not queue.ring_timeout > ring_delay:
        raise _fail(src, f"{where}.ring_timeout", f"must be longer than the ring delay "
                    f"({ring_delay:g} s): simulated agents always answer")
    if not queue.call_types:
        raise _fail(src, f"{where}.call_types", "at least one call type is needed")
    for index, call_type in enumerate(queue.call_types):
        if not call_type.share > 0 or not math.isfinite(call_type.share):
            raise _fail(src, f"{where}.call_types[{index}].share", "must be > 0")
        _check_skills(src, f"{where}.call_types[{index}].skills", call_type.skills)


def _check_skills(src: str, where: str, skills: Mapping[str, int]) -> None:
    for skill, level in skills.items():
        if not NAME_RE.fullmatch(skill):
            raise _fail(src, f"{where}.{skill}", "not a valid skill name")
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 10:
            raise _fail(src, f"{where}.{skill}", f"a level from 1 to 10 is needed, "
                        f"not {level!r}")


# --------------------------------------------------------------------------- file reading


class _Reader:
    """Typed access to one TOML table, every error naming ``source: path.key``."""

    def __init__(self, source: str, path: str, table: object) -> None:
        if not isinstance(table, dict):
            where = path or "the file"
            raise ScenarioError(f"{source}: {where}: expected a table, got {table!r}")
        self.source, self.path, self.table = source, path, table

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, problem: str) -> ScenarioError:
        return _fail(self.source, self.where(key), problem)

    def only(self, *known: str) -> None:
        for key in self.table:
            if key not in known:
                raise self.fail(key, f"unknown key (known: {', '.join(known)})")

    def number(self, key: str, default: float | None = None) -> float:
        value = self.table.get(key, default)
        if value is None:
            raise self.fail(key, "missing: a number is needed")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"expected a number, got {value!r}")
        return float(value)

    def integer(self, key: str, default: int | None = None) -> int | None:
        value = self.table.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected a whole number, got {value!r}")
        return value

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.table.get(key, default)
        if value is not None and not isinstance(value, str):
            raise self.fail(key, f"expected text, got {value!r}")
        return value

    def duration(self, key: str, default: float) -> float:
        if key not in self.table:
            return default
        try:
            return parse_duration(self.table[key])
        except ValueError as exc:
            raise self.fail(key, str(exc)) from None

    def names(self, key: str) -> tuple[str, ...]:
        value = self.table.get(key)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.fail(key, f"expected a list of queue names, got {value!r}")
        return tuple(value)

    def skills(self, key: str) -> Mapping[str, int]:
        value = self.table.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table of skill = level, got {value!r}")
        return _frozen(value)

    def tables(self, key: str) -> list[_Reader]:
        value = self.table.get(key, [])
        if not isinstance(value, list):
            raise self.fail(key, f"expected [[{key}]] tables, got {value!r}")
        return [_Reader(self.source, f"{self.where(key)}[{index}]", item)
                for index, item in enumerate(value)]


_QUEUE_KEYS = ("name", "arrivals_per_hour", "handle_time", "wrap_up", "patience", "strategy",
               "service_level_seconds", "max_wait", "max_length", "overflow_to",
               "ring_timeout", "call_types")


def _queue_from(table: _Reader) -> QueueScenario:
    table.only(*_QUEUE_KEYS)
    name = table.text("name")
    if name is None:
        raise table.fail("name", "missing: every queue needs a name")
    strategy_name = table.text("strategy", Strategy.LONGEST_IDLE.value)
    try:
        strategy = Strategy(strategy_name)
    except ValueError:
        raise table.fail("strategy", f"unknown strategy {strategy_name!r} (known: "
                         f"{', '.join(s.value for s in Strategy)})") from None
    if "handle_time" not in table.table:
        raise table.fail("handle_time", "missing: the mean handle time (talk + wrap-up)")
    call_types = []
    for reader in table.tables("call_types"):
        reader.only("share", "skills", "priority")
        call_types.append(CallType(share=reader.number("share", 1.0),
                                   skills=reader.skills("skills"),
                                   priority=reader.integer("priority", 0) or 0))
    return QueueScenario(
        name=name,
        arrivals_per_hour=table.number("arrivals_per_hour"),
        handle_time=table.duration("handle_time", math.nan),
        wrap_up=table.duration("wrap_up", 0.0),
        patience=table.duration("patience", math.inf),
        strategy=strategy,
        service_level_seconds=table.duration("service_level_seconds", 20.0),
        max_wait=table.duration("max_wait", math.inf),
        max_length=table.integer("max_length"),
        overflow_to=table.text("overflow_to"),
        ring_timeout=table.duration("ring_timeout", 15.0),
        call_types=tuple(call_types) or (CallType(),),
    )


def _group_from(table: _Reader) -> AgentGroup:
    table.only("name", "count", "queues", "skills")
    name = table.text("name")
    if name is None:
        raise table.fail("name", "missing: every agent group needs a name")
    count = table.integer("count")
    if count is None:
        raise table.fail("count", "missing: how many agents")
    return AgentGroup(name=name, count=count, queues=table.names("queues"),
                      skills=table.skills("skills"))


def scenario_from_toml(text: str, source: str = "scenario") -> Scenario:
    """Parse and validate a scenario; ScenarioError names ``source`` and the key."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from None
    root = _Reader(source, "", document)
    root.only("simulation", "queues", "agents")
    simulation = _Reader(source, "simulation", document.get("simulation", {}))
    simulation.only("duration", "warm_up", "seed", "ring_delay", "short_abandon")
    queue_tables = root.tables("queues")
    if not queue_tables:
        raise root.fail("queues", "missing: at least one [[queues]] table is needed")
    group_tables = root.tables("agents")
    if not group_tables:
        raise root.fail("agents", "missing: at least one [[agents]] table is needed")
    return Scenario(
        queues=tuple(_queue_from(table) for table in queue_tables),
        agent_groups=tuple(_group_from(table) for table in group_tables),
        duration=simulation.duration("duration", Scenario.duration),
        warm_up=simulation.duration("warm_up", Scenario.warm_up),
        seed=simulation.integer("seed", Scenario.seed) or 0,
        ring_delay=simulation.duration("ring_delay", Scenario.ring_delay),
        short_abandon=simulation.duration("short_abandon", Scenario.short_abandon),
        source=source,
    )


def read_scenario_text(path: Path) -> str:
    """A scenario file's text; ScenarioError naming the file when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read the scenario file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{path}: the scenario file is not UTF-8 text") from None


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario file (TOML); ScenarioError when it is missing or wrong."""
    path = Path(path)
    return scenario_from_toml(read_scenario_text(path), str(path))


# --------------------------------------------------------------------------- from flags


def single_queue_scenario(*, agents: int = 12, arrivals_per_hour: float = 200.0,
                          handle_time: float = 180.0, wrap_up: float = 15.0,
                          patience: float = 120.0, duration: float = 8 * 3600.0,
                          warm_up: float = 1800.0, seed: int = 1,
                          service_level_seconds: float = 20.0,
                          source: str = "command line") -> Scenario:
    """One queue, "inbound", answered by one group of ``agents`` agents (the flags' model)."""
    return Scenario(
        queues=(QueueScenario(name="inbound", arrivals_per_hour=arrivals_per_hour,
                              handle_time=handle_time, wrap_up=wrap_up, patience=patience,
                              service_level_seconds=service_level_seconds),),
        agent_groups=(AgentGroup(name="agent", count=agents, queues=("inbound",)),),
        duration=duration, warm_up=warm_up, seed=seed, source=source)


def with_overrides(scenario: Scenario, **changes: Any) -> Scenario:
    """The scenario with flags applied on top. Simulation-wide values (seed, duration,
    warm_up, service_level_seconds) apply to any scenario; per-queue or per-group values
    (arrivals_per_hour, handle_time, wrap_up, patience; agents) only to a scenario with
    exactly one queue (one agent group), since it would be unclear which one is meant."""
    changes = {key: value for key, value in changes.items() if value is not None}
    top = {key: changes.pop(key) for key in ("seed", "duration", "warm_up")
           if key in changes}
    queue_changes = {key: changes.pop(key) for key in ("arrivals_per_hour", "handle_time",
                                                       "wrap_up", "patience")
                     if key in changes}
    agents = changes.pop("agents", None)
    threshold = changes.pop("service_level_seconds", None)
    if changes:
        raise TypeError(f"unknown overrides: {', '.join(changes)}")
    queues = scenario.queues
    if queue_changes:
        if len(queues) != 1:
            raise _fail(scenario.source, "queues", f"--{next(iter(queue_changes))} "
                        "applies to a scenario with one queue; this one has "
                        f"{len(queues)}: edit the file instead".replace("_", "-"))
        queues = (replace(queues[0], **queue_changes),)
    if threshold is not None:
        queues = tuple(replace(queue, service_level_seconds=threshold) for queue in queues)
    groups = scenario.agent_groups
    if agents is not None:
        if len(groups) != 1:
            raise _fail(scenario.source, "agents", "--agents applies to a scenario with one "
                        f"agent group; this one has {len(groups)}: edit the file instead")
        groups = (replace(groups[0], count=agents),)
    return replace(scenario, queues=queues, agent_groups=groups, **top)
