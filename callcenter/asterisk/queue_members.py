"""Keep Asterisk's own queues' members in step with our agents, for the fallback.

While the service runs, Asterisk's ``Queue()`` is never used: our ACD routes every call.
When the service is down, the dialplan falls back to ``Queue()``; its members should then
be the agents who are logged in, not paused, at their tier as penalty. So every agent state
change is mirrored into app_queue as dynamic members (QueueAdd / QueueRemove / QueuePause /
QueuePenalty), and after each AMI connect the members Asterisk reports are reconciled with
what they should be. Pure: this module computes AMI actions; the caller sends them.

Rules:
- A logged-in agent (any state but logged out) is a member of each of their queues, with
  penalty = tier. Paused in app_queue only when paused in our ACD: an agent on a call or in
  wrap-up when the service dies is free for Queue() after that call (Asterisk's own wrapup
  time applies then).
- A logged-out agent is a member of no queue.
- Members we did not add (other interfaces) are left alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

INTERFACE_PREFIX = "PJSIP/"


@dataclass(frozen=True)
class Membership:
    """One agent in one of Asterisk's queues."""

    penalty: int
    paused: bool


MemberKey = tuple[str, str]  # (queue, interface)


def interface(agent_id: str) -> str:
    return f"{INTERFACE_PREFIX}{agent_id}"


def desired_memberships(agent_id: str, state: str, tiers: Mapping[str, int],
                        ) -> dict[MemberKey, Membership]:
    """What app_queue should hold for one agent in ``state`` (an AgentState value)."""
    if state == "logged_out":
        return {}
    paused = state == "paused"
    return {(queue, interface(agent_id)): Membership(tier, paused)
            for queue, tier in tiers.items()}


def actions_for(agent_id: str, agent_name: str, current: Mapping[MemberKey, Membership],
                desired: Mapping[MemberKey, Membership]) -> list[dict[str, str]]:
    """AMI actions that turn ``current`` into ``desired`` for one agent's interface."""
    own = interface(agent_id)
    actions: list[dict[str, str]] = []
    for (queue, member), membership in sorted(desired.items()):
        had = current.get((queue, member))
        if had is None:
            actions.append({"Action": "QueueAdd", "Queue": queue, "Interface": member,
                            "Penalty": str(membership.penalty),
                            "Paused": "true" if membership.paused else "false",
                            "MemberName": agent_name})
            continue
        if had.paused != membership.paused:
            actions.append({"Action": "QueuePause", "Queue": queue, "Interface": member,
                            "Paused": "true" if membership.paused else "false",
                            "Reason": "callcenter"})
        if had.penalty != membership.penalty:
            actions.append({"Action": "QueuePenalty", "Queue": queue, "Interface": member,
                            "Penalty": str(membership.penalty)})
    for queue, member in sorted(current):
        if member == own and (queue, member) not in desired:
            actions.append({"Action": "QueueRemove", "Queue": queue, "Interface": member})
    return actions


def members_from_status(events: Iterable[Mapping[str, str]]) -> dict[MemberKey, Membership]:
    """Our agents' memberships from a QueueStatus answer's QueueMember events."""
    members: dict[MemberKey, Membership] = {}
    for event in events:
        if event.get("event", event.get("Event", "")).lower() != "queuemember":
            continue
        fields = {key.lower(): value for key, value in event.items()}
        # QueueStatus names the member's interface "Location"; member events "Interface".
        member = fields.get("location") or fields.get("interface") or ""
        if not member.startswith(INTERFACE_PREFIX):
            continue
        try:
            penalty = int(fields.get("penalty", "0"))
        except ValueError:
            penalty = 0
        members[(fields.get("queue", ""), member)] = Membership(
            penalty, fields.get("paused", "0") in ("1", "true", "yes"))
    return members
