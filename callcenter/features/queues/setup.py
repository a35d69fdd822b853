"""The ACD's configuration from what admins wrote: queue settings and the agent directory."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from callcenter.config import QueueSettings, Settings
from callcenter.core.acd import (
    Acd,
    AgentSpec,
    OverflowTier,
    QueueRules,
    SkillRelaxation,
    Strategy,
)
from callcenter.features.agents.store import AgentAccount

# Skill levels are 1-10: ten relaxation steps drop any requirement.
RELAXATION_STEPS = 10


def queue_rules(queue: QueueSettings, agents: Sequence[AgentAccount]) -> QueueRules:
    """One queue's rules; overflow tier k is made of the agents at tier k of this queue."""
    tiers = []
    for number, after in enumerate(queue.tier_delays, start=1):
        members = tuple(a.id for a in agents if a.queues.get(queue.name) == number)
        if members:
            tiers.append(OverflowTier(after=float(after), agents=members))
    relax = tuple(SkillRelaxation(after=float(queue.relax_every * step), lower_by=1)
                  for step in range(1, RELAXATION_STEPS + 1)) if queue.relax_every else ()
    return QueueRules(
        name=queue.name,
        strategy=Strategy(queue.strategy),
        ring_timeout=float(queue.ring_timeout),
        max_wait=float(queue.max_wait),
        max_length=queue.max_length or None,
        overflow_to=queue.overflow_to or None,
        tiers=tuple(tiers),
        relax=relax,
        wrap_up=None if queue.manual_wrap_up else float(queue.wrap_up),
        announce_every=float(queue.announce_every) if queue.announce_every else None,
        rona_pause=queue.rona_pause,
        default_handle_time=float(queue.handle_time),
    )


def agent_spec(agent: AgentAccount) -> AgentSpec:
    return AgentSpec(agent.id, agent.primary_queues, dict(agent.skills))


def build_acd(settings: Settings, agents: Iterable[AgentAccount], now: float) -> Acd:
    """The ACD for these settings and the directory's active agents (all logged out)."""
    active = [a for a in agents if a.active]
    known = {q.name for q in settings.queues}
    for agent in active:  # the directory may name a queue the settings no longer have
        unknown = sorted(set(agent.queues) - known)
        if unknown:
            raise ValueError(f"agent {agent.id!r} is in queue {unknown[0]!r}, which the "
                             "settings do not define")
    rules: Mapping[str, QueueRules] = {q.name: queue_rules(q, active) for q in settings.queues}
    return Acd(rules, [agent_spec(a) for a in active], now,
               pause_reasons=settings.acd.pause_reasons)
