"""A stored call's timeline (core/timeline.py) with its agents' wrap-ups and the legs it put
on a trunk (core/trunk_legs.py: what rating prices), for the API.

The wrap-ups come from the agents' logged states (``agent_state_changes``): the ACD's
wrap-up that began as an agent's leg ended. They are looked for up to ``WRAP_UP_HORIZON``
after the call's last leg ended (a wrap-up still going on then is shown ending there).
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from callcenter.core.agent_intervals import StateChangeLike
from callcenter.core.clock import Clock
from callcenter.core.records import CallRecord
from callcenter.core.timeline import WRAP_UP_MATCH_SECONDS, Segment, timeline, wrap_ups
from callcenter.core.trunk_legs import TrunkLeg, Trunks
from callcenter.features.calls.store import CallRepository

WRAP_UP_HORIZON = 86_400.0  # seconds after the last leg's end


class StateHistory(Protocol):
    """The agents' logged state changes (features/agents/store.py ``AgentDirectory``)."""

    async def state_history(self, agent_id: str, since: float | None = None,
                            until: float | None = None) -> Sequence[StateChangeLike]: ...


class CallNotFound(LookupError):
    pass


class CallStillOpen(Exception):
    pass


@dataclass(frozen=True)
class CallTimeline:
    record: CallRecord
    segments: list[Segment]  # the caller's: they cover the call, start to end
    wrap_ups: list[Segment]  # the agents', after their legs: outside the call's length
    trunk_legs: list[TrunkLeg]  # with their billable seconds


class CallTimelines:
    """``agents`` None: no agent states to read (the service without agents): no wrap-ups.
    ``trunks`` None: which endpoints are trunks is not known: no trunk legs."""

    def __init__(self, calls: CallRepository, agents: StateHistory | None,
                 clock: Clock, trunks: Trunks | None = None) -> None:
        self._calls = calls
        self._agents = agents
        self._clock = clock
        self._trunks = trunks

    async def of(self, call_id: str) -> CallTimeline:
        record = await self._calls.get(call_id)
        if record is None:
            raise CallNotFound(f"no call {call_id!r}")
        if record.is_open:
            raise CallStillOpen(f"call {call_id!r} has not ended yet: its timeline comes "
                                "when it ends")
        return CallTimeline(record, timeline(record), await self._wrap_ups(record),
                            [] if self._trunks is None else self._trunks.legs_of(record))

    async def _wrap_ups(self, record: CallRecord) -> builtins.list[Segment]:
        ends = {a.agent_id: a.ended_at for a in record.attempts
                if a.answered_at is not None and a.ended_at is not None}
        if self._agents is None or not ends:
            return []
        since = min(ends.values()) - 2 * WRAP_UP_MATCH_SECONDS  # type: ignore[type-var]
        horizon = max(ends.values()) + WRAP_UP_HORIZON  # type: ignore[type-var, operator]
        now = min(self._clock.now(), horizon)
        changes: builtins.list[StateChangeLike] = []
        for agent_id in sorted(ends):
            try:
                changes.extend(await self._agents.state_history(agent_id, since=since,
                                                                until=now))
            except ValueError:  # not an agent id the directory could hold: no wrap-up
                continue
        return wrap_ups(record, changes, now)
