"""Whom a talking caller may be transferred to: one rule for blind and attended transfers.

A transfer never accepts a caller it cannot deliver: the first agent keeps the caller, and the
requester is told why. The rule has two parts.

Deliverable (both modes). An agent *could answer* a transferred caller when they are logged in,
not paused, their phone is reachable (registered, or a static contact Asterisk can reach), no
pause or logout waits for the end of their current call, and they serve at least one queue (the
ACD offers calls under a queue's rules). A target agent must be one who could answer, and not
the agent who has the call; a target queue must have at least one member (any tier) other than
the transferring agent who could answer. A supervisor expects exactly that: a paused agent is
on a break, a logged-out or unregistered one is not there, and a queue staffed only by such
agents would keep the caller on hold music until ``max_wait``.

Now (attended only). An attended transfer rings the second agent at once while the caller is
on hold, so the target must be free now: an agent in READY or WRAP_UP whose phone can ring
(not nailed up), or, for a queue, the agent its routing would give a new call now (the service
asks ``Acd.who_would_take``). A blind transfer instead waits in line: to an agent busy on
another call, or to a queue whose agents are all busy, the caller waits for them as any caller
would (they will be free, unlike a paused or unreachable agent).

Pure: the service passes the ACD's ``AgentView``s in; nothing here reads the clock.
"""

from __future__ import annotations

from collections.abc import Iterable

from callcenter.core.acd_actions import AgentState, AgentView, ConnectMode
from callcenter.core.records import TransferMode

__all__ = ["TransferMode", "agent_refusal", "queue_refusal", "why_could_not_answer"]

# Reasons per agent are listed up to this many in a queue's refusal (the rest are counted).
LISTED_AGENTS = 5


def why_could_not_answer(agent: AgentView) -> str | None:
    """Why ``agent`` could never answer a transferred caller (the sentence's predicate, e.g.
    "is paused (lunch)"); None when they could, now or once their current call ends."""
    if agent.state is AgentState.LOGGED_OUT:
        return "is logged out"
    if agent.state is AgentState.PAUSED:
        return f"is paused ({agent.reason})" if agent.reason else "is paused"
    if not agent.reachable:
        return "has no reachable phone (not registered)"
    if agent.deferred is not None:
        return f"asked to {agent.deferred} once their current call ends"
    if not agent.queues:
        return "serves no queue, so no call can be offered to them"
    return None


def agent_refusal(agent: AgentView, from_agent: str, mode: TransferMode) -> str | None:
    """Why a transfer of ``from_agent``'s caller to ``agent`` in ``mode`` is refused; None
    when it is accepted."""
    agent_id = agent.agent_id
    if agent_id == from_agent:
        return f"agent {agent_id!r} already has this call"
    why = why_could_not_answer(agent)
    if why is not None:
        return f"agent {agent_id!r} {why}: nobody would answer the caller"
    if mode is TransferMode.ATTENDED:
        if agent.mode is ConnectMode.NAILED:
            return (f"agent {agent_id!r} is nailed up: their phone is busy in their own "
                    "bridge; use mode 'blind'")
        if agent.state not in (AgentState.READY, AgentState.WRAP_UP):
            return (f"agent {agent_id!r} cannot take it now: they are {agent.state.value}; "
                    "an attended transfer rings them at once (mode 'blind' waits for them)")
    return None


def queue_refusal(queue: str, members: Iterable[AgentView], from_agent: str) -> str | None:
    """Why a transfer of ``from_agent``'s caller to ``queue`` is refused whatever the mode
    (``members``: the agents who serve it, at any tier); None when someone could answer.
    An attended transfer also needs one of them free now (module docstring)."""
    others = [agent for agent in members if agent.agent_id != from_agent]
    if not others:
        return f"queue {queue!r} has no agent other than {from_agent!r}: nobody would answer"
    reasons = []
    for agent in others:
        why = why_could_not_answer(agent)
        if why is None:
            return None
        reasons.append(f"{agent.agent_id} {why}")
    shown = "; ".join(reasons[:LISTED_AGENTS])
    if len(reasons) > LISTED_AGENTS:
        shown += f"; and {len(reasons) - LISTED_AGENTS} more"
    return f"queue {queue!r}: no agent there could answer the caller ({shown})"
