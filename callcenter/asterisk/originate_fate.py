"""Did an Originate whose AMI answer was lost place its call? Ask the channel snapshot.

An Originate written just before the AMI connection dropped may or may not have reached
Asterisk: the service cannot tell from the error. Sending it again at once can ring a
customer twice (the first call rings on, and its FastAGI step then finds no attempt and
hangs up on them). So every Originate names its channels (``ChannelId`` and
``OtherChannelId``: the uniqueids of a Local channel's two halves), and after a lost answer
the ``CoreShowChannels`` snapshot of the reconnected AMI says whether they exist.

No FastAGI step needs AMI: a call answered meanwhile is known by its step starting, whatever
the snapshot says. A call still ringing is in the snapshot. A call not in it was either
never placed or has ended unanswered: either way nothing rings now, and redialling cannot
ring twice at once.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from callcenter.asterisk.ami import AmiConnectionLost, AmiError, AmiTimeout
from callcenter.asterisk.events import CoreShowChannel

ChannelSnapshot = Callable[[], Awaitable[list[CoreShowChannel]]]


class OriginateFate(enum.Enum):
    LIVE = "live"  # a channel of the Originate is in the snapshot: the call is under way
    ABSENT = "absent"  # none is: never placed, or already over
    UNKNOWN = "unknown"  # AMI did not answer a snapshot in time


def answer_lost(error: AmiError) -> bool:
    """Whether an Originate that failed with ``error`` may have reached Asterisk (the
    connection dropped or the answer never came), rather than surely not (not connected,
    refused by Asterisk, an unsafe value)."""
    return isinstance(error, AmiConnectionLost | AmiTimeout)


def channel_ids(token: str) -> tuple[str, str]:
    """The uniqueids an Originate gives its Local channel's halves (;1 and ;2)."""
    return f"{token}-1", f"{token}-2"


def named_channels(action: Mapping[str, Any], token: str) -> dict[str, Any]:
    """``action`` (an Originate) with its channels named after ``token``."""
    first, second = channel_ids(token)
    return {**action, "ChannelId": first, "OtherChannelId": second}


def fate_in(snapshot: Iterable[CoreShowChannel], token: str) -> OriginateFate:
    ids = set(channel_ids(token))
    live = any(channel.uniqueid in ids for channel in snapshot)
    return OriginateFate.LIVE if live else OriginateFate.ABSENT


async def originate_fate(channels: ChannelSnapshot | None, token: str) -> OriginateFate:
    """One look at the snapshot; UNKNOWN while AMI cannot answer it."""
    if channels is None:
        return OriginateFate.UNKNOWN
    try:
        return fate_in(await channels(), token)
    except AmiError:
        return OriginateFate.UNKNOWN
