"""What a channel snapshot says about agents: who is nailed up, who is on a call. Pure.

The service keeps in memory which channel is a nailed-up agent's session and which calls it
routed. After a restart (or when AMI comes back after missing events) Asterisk's channels are
the truth, read from a ``CoreShowChannels`` snapshot:

- An agent's phone channel (``PJSIP/<agent id>-…``) running ``ConfBridge`` in the agent's own
  bridge (``<bridge_prefix><agent id>,…``) is their nailed-up session.
- Any other channel in that bridge is a caller talking to them: the call lasts as long as
  that channel.
- Any other channel of the agent's phone is a call they are on, ringing or talking: one
  Asterisk's fallback ``Queue()`` put through while the service was down, or one in progress
  when it stopped. Its queue is known when its caller (the channel whose uniqueid is the
  leg's linkedid) runs ``Queue(<name>,…)``. Not a call: the phone dialling a feature code (the
  channel's extension starts with the code), which the FastAGI script handles.

Channels of phones that are not known agents are ignored. When an agent has several calls,
the one that is up and has lasted longest is theirs (one call is held per agent).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from callcenter.core.calls import agent_from_channel

if TYPE_CHECKING:
    from callcenter.asterisk.events import CoreShowChannel

CONFBRIDGE = "confbridge"
QUEUE = "queue"
UP = "up"


@dataclass(frozen=True)
class CallElsewhere:
    """A call an agent is on that the snapshot shows; it ends when ``channel`` hangs up."""

    channel: str  # uniqueid
    queue: str | None  # the queue it came from, when the snapshot says so


@dataclass(frozen=True)
class AgentsOnChannels:
    nailed: Mapping[str, str]  # agent id -> uniqueid of their nailed-up channel
    busy: Mapping[str, CallElsewhere]  # agent id -> the call they are on
    live: frozenset[str]  # every channel (uniqueid) the snapshot holds


def agents_on_channels(channels: Iterable[CoreShowChannel], agent_ids: Collection[str], *,
                       bridge_prefix: str, feature_codes: Iterable[str],
                       queues: Collection[str] = ()) -> AgentsOnChannels:
    """Read the snapshot (see the module docstring). ``queues``: the known queue names (a
    ``Queue()`` naming another is no queue of ours)."""
    snapshot = list(channels)
    by_id = {channel.uniqueid: channel for channel in snapshot}
    codes = tuple(code for code in feature_codes if code)
    nailed: dict[str, CoreShowChannel] = {}
    busy: dict[str, tuple[CoreShowChannel, CallElsewhere]] = {}

    def on_call(agent_id: str, channel: CoreShowChannel, queue: str | None) -> None:
        held = busy.get(agent_id)
        if held is None or _rank(channel) > _rank(held[0]):
            busy[agent_id] = (channel, CallElsewhere(channel.uniqueid, queue))

    for channel in snapshot:
        agent = agent_from_channel(channel.channel)
        if agent not in agent_ids:
            agent = None
        owner = _bridge_owner(channel, bridge_prefix)
        if owner is not None and owner in agent_ids:
            if owner == agent:
                if owner not in nailed or _rank(channel) > _rank(nailed[owner]):
                    nailed[owner] = channel
                continue
            on_call(owner, channel, None)  # a caller in the agent's bridge
        if agent is None or channel.exten.startswith(codes):
            continue
        on_call(agent, channel, _queue_of(by_id.get(channel.linkedid), queues))
    return AgentsOnChannels(
        nailed={agent: channel.uniqueid for agent, channel in nailed.items()},
        busy={agent: call for agent, (_, call) in busy.items()},
        live=frozenset(by_id),
    )


def _bridge_owner(channel: CoreShowChannel, prefix: str) -> str | None:
    """The agent whose nailed-up bridge the channel is in, if any."""
    if channel.application.lower() != CONFBRIDGE:
        return None
    bridge = channel.application_data.split(",", 1)[0].strip()
    if not prefix or not bridge.startswith(prefix) or len(bridge) == len(prefix):
        return None
    return bridge[len(prefix):]


def _queue_of(caller: CoreShowChannel | None, queues: Collection[str]) -> str | None:
    if caller is None or caller.application.lower() != QUEUE:
        return None
    name = caller.application_data.split(",", 1)[0].strip()
    return name if name in queues else None


def _rank(channel: CoreShowChannel) -> tuple[bool, int, str]:
    """Up before ringing, then the longest-lasting; the uniqueid breaks ties."""
    return (channel.state.lower() == UP, channel.duration_seconds or 0, channel.uniqueid)
