"""What an admin configures for the ACD: queues and agents (frozen, validated on creation).

Every value is checked in ``__post_init__``; an error names the queue or agent and the field.
Collections given as lists are stored as tuples, skill mappings as read-only mappings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

SKILL_LEVELS = range(1, 11)  # a skill level is 1..10


class Strategy(StrEnum):
    LONGEST_IDLE = "longest_idle"  # ready agent idle longest (since login/ready/end of wrap-up)
    ROUND_ROBIN = "round_robin"  # next member after the last one offered, in member order
    FEWEST_CALLS = "fewest_calls"  # fewest calls from this queue since login; ties: longest idle
    LEAST_TALK_TIME = "least_talk_time"  # least talk seconds since login; ties: longest idle
    RANDOM = "random"  # uniform among eligible agents, from the engine's seeded Random
    SKILLS = "skills"  # highest sum of levels in the call's skills; ties: longest idle


@dataclass(frozen=True)
class OverflowTier:
    """After ``after`` seconds in the queue, ``agents`` also serve its callers."""

    after: float
    agents: tuple[str, ...]

    def __post_init__(self) -> None:
        _check_number("overflow tier", "after", self.after, minimum=0.0)
        agents = _as_tuple("overflow tier", "agents", self.agents)
        if not agents:
            raise ValueError("overflow tier: agents must name at least one agent")
        _check_names("overflow tier", "agents", agents)
        object.__setattr__(self, "agents", agents)


@dataclass(frozen=True)
class SkillRelaxation:
    """After ``after`` seconds in the queue, every required level is lowered by ``lower_by``
    (cumulative over the steps passed; a requirement at level <= 0 is dropped)."""

    after: float
    lower_by: int

    def __post_init__(self) -> None:
        _check_number("skill relaxation", "after", self.after, minimum=0.0)
        if not isinstance(self.lower_by, int) or isinstance(self.lower_by, bool):
            raise ValueError(
                f"skill relaxation: lower_by must be an integer, not {self.lower_by!r}")
        if self.lower_by < 1:
            raise ValueError(f"skill relaxation: lower_by must be at least 1, not {self.lower_by}")


@dataclass(frozen=True)
class QueueRules:
    name: str
    strategy: Strategy = Strategy.LONGEST_IDLE
    ring_timeout: float = 15.0  # seconds a phone rings before the offer fails (RONA)
    max_wait: float = 600.0  # then the caller overflows (or times out when no target)
    max_length: int | None = None  # unanswered callers at which a new caller overflows at once
    overflow_to: str | None = None  # another queue's name; None: QueueTimedOut / QueueFull
    tiers: tuple[OverflowTier, ...] = ()  # sorted by `after`
    relax: tuple[SkillRelaxation, ...] = ()  # sorted by `after`
    wrap_up: float | None = 0.0  # seconds of wrap-up after a call; None: until the agent is ready
    announce_every: float | None = None  # seconds between position/EWT announcements
    rona_pause: bool = True  # an unanswered ring pauses the agent with reason "RONA"
    default_handle_time: float = 180.0  # seconds, for the EWT until calls have been measured

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"queue name must be a non-empty string, not {self.name!r}")
        where = f"queue {self.name!r}"
        try:
            object.__setattr__(self, "strategy", Strategy(self.strategy))
        except ValueError:
            known = ", ".join(s.value for s in Strategy)
            raise ValueError(
                f"{where}: unknown strategy {self.strategy!r} (known: {known})"
            ) from None
        _check_number(where, "ring_timeout", self.ring_timeout, minimum=0.0, strict=True)
        _check_number(where, "max_wait", self.max_wait, minimum=0.0, strict=True)
        if self.max_length is not None and (
            not isinstance(self.max_length, int)
            or isinstance(self.max_length, bool)
            or self.max_length < 1
        ):
            raise ValueError(f"{where}: max_length must be None or an integer >= 1, "
                             f"not {self.max_length!r}")
        if self.overflow_to is not None:
            if not isinstance(self.overflow_to, str) or not self.overflow_to:
                raise ValueError(f"{where}: overflow_to must be a queue name, "
                                 f"not {self.overflow_to!r}")
            if self.overflow_to == self.name:
                raise ValueError(f"{where}: overflow_to names the queue itself")
        tiers = _as_tuple(where, "tiers", self.tiers)
        _check_steps(where, "tiers", tiers, OverflowTier)
        object.__setattr__(self, "tiers", tiers)
        relax = _as_tuple(where, "relax", self.relax)
        _check_steps(where, "relax", relax, SkillRelaxation)
        object.__setattr__(self, "relax", relax)
        if self.wrap_up is not None:
            _check_number(where, "wrap_up", self.wrap_up, minimum=0.0)
        if self.announce_every is not None:
            _check_number(where, "announce_every", self.announce_every, minimum=0.0, strict=True)
        if not isinstance(self.rona_pause, bool):
            raise ValueError(f"{where}: rona_pause must be true or false, not {self.rona_pause!r}")
        _check_number(where, "default_handle_time", self.default_handle_time,
                      minimum=0.0, strict=True)


@dataclass(frozen=True)
class AgentSpec:
    agent_id: str
    queues: tuple[str, ...]  # primary membership (tier 0), in no particular order
    # skill -> level 1..10; stored read-only (not part of the hash)
    skills: Mapping[str, int] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.agent_id, str) or not self.agent_id:
            raise ValueError(f"agent id must be a non-empty string, not {self.agent_id!r}")
        where = f"agent {self.agent_id!r}"
        queues = _as_tuple(where, "queues", self.queues)
        _check_names(where, "queues", queues)
        object.__setattr__(self, "queues", queues)
        object.__setattr__(self, "skills", skill_levels(where, "skills", self.skills))


def skill_levels(where: str, what: str, skills: Mapping[str, int]) -> Mapping[str, int]:
    """A read-only copy of ``skills`` after checking names and levels (1..10)."""
    if not isinstance(skills, Mapping):
        raise ValueError(f"{where}: {what} must map skill names to levels, not {skills!r}")
    for skill, level in skills.items():
        if not isinstance(skill, str) or not skill:
            raise ValueError(f"{where}: {what}: skill names must be non-empty strings, "
                             f"not {skill!r}")
        if not isinstance(level, int) or isinstance(level, bool) or level not in SKILL_LEVELS:
            raise ValueError(f"{where}: {what}: skill {skill!r} has level {level!r}, "
                             f"expected an integer 1..10")
    return MappingProxyType(dict(skills))


def _as_tuple(where: str, what: str, value: object) -> tuple:  # type: ignore[type-arg]
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        raise ValueError(f"{where}: {what} must be a list, not {value!r}")
    return tuple(value)  # type: ignore[call-overload]


def _check_names(where: str, what: str, names: tuple[object, ...]) -> None:
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}: {what} must be non-empty names, not {name!r}")
    duplicates = sorted({n for n in names if names.count(n) > 1})  # type: ignore[type-var]
    if duplicates:
        raise ValueError(f"{where}: {what} lists {duplicates[0]!r} twice")


def _check_number(where: str, what: str, value: object, *, minimum: float,
                  strict: bool = False) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or value != value:
        raise ValueError(f"{where}: {what} must be a number of seconds, not {value!r}")
    if value < minimum or (strict and value == minimum) or value == float("inf"):
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise ValueError(f"{where}: {what} must be finite and {bound}, not {value!r}")


def _check_steps(where: str, what: str, steps: tuple[object, ...], kind: type) -> None:
    for index, step in enumerate(steps):
        if not isinstance(step, kind):
            article = "an" if kind.__name__[0] in "AEIOU" else "a"
            raise ValueError(f"{where}: {what}[{index}] must be {article} {kind.__name__}, "
                             f"not {step!r}")
    afters = [step.after for step in steps]  # type: ignore[attr-defined]
    for index in range(1, len(afters)):
        if afters[index] <= afters[index - 1]:
            raise ValueError(f"{where}: {what}[{index}] opens after {afters[index]:g} s, not "
                             f"later than {what}[{index - 1}] ({afters[index - 1]:g} s): "
                             f"sort them by `after`, each later than the one before")
