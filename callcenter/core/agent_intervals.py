"""Agents' states as intervals (issue 14's metering): the logged state changes of agents
(``agent_state_changes``: at, state, reason, previous) become consecutive intervals (state,
reason, start, end) per agent over a period, clipped to it; the last one, if the agent is
still in it, ends at ``now`` and is marked ``ongoing``.

Pure: the changes and the clock's ``now`` come in as values. What to feed it: each agent's
changes inside the period **and their last change before it** (that one says what state the
period began in). Without an earlier change, the state before the agent's first change in the
period is that change's ``previous`` (its reason unknown: None). An agent with no change at
all gets no interval: nothing is known about them.

Consecutive changes to the same state and reason (a repeated log line) make one interval; a
pause with a new reason is a new interval. Changes at the same instant keep their given order
(the log's order): the last one holds from then.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


class StateChangeLike(Protocol):
    """What a logged state change carries (the store's ``StateChange``, the ACD's
    ``AgentStateChanged``)."""

    @property
    def agent_id(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def at(self) -> float: ...
    @property
    def previous(self) -> str: ...


@dataclass(frozen=True)
class StateInterval:
    agent_id: str
    state: str  # an AgentState value: logged_out, ready, ringing, on_call, wrap_up, paused
    reason: str | None  # the pause reason ("lunch", "RONA"...), "login", "call ended"...
    start: float
    end: float
    ongoing: bool = False  # the agent is still in it: it ends at ``now``, not at a change

    @property
    def seconds(self) -> float:
        return self.end - self.start


class IntervalError(ValueError):
    """The period cannot be laid out (it ends before it starts)."""


def agent_intervals(changes: Iterable[StateChangeLike], since: float, until: float,
                    now: float) -> list[StateInterval]:
    """Every agent's intervals in [since, min(until, now)), per agent (agents sorted by id),
    each agent's in time order. Changes may come in any order across agents; an agent's
    changes are ordered by ``at`` (stable: equal times keep their given order)."""
    if until < since:
        raise IntervalError(f"period ends ({until}) before it starts ({since})")
    per_agent: dict[str, list[StateChangeLike]] = {}
    for change in changes:
        per_agent.setdefault(change.agent_id, []).append(change)
    intervals: list[StateInterval] = []
    for agent_id in sorted(per_agent):
        intervals.extend(_one_agent(agent_id, sorted(per_agent[agent_id], key=lambda c: c.at),
                                    since, until, now))
    return intervals


def _one_agent(agent_id: str, changes: list[StateChangeLike], since: float, until: float,
               now: float) -> list[StateInterval]:
    end = min(until, now)
    # (from, state, reason): what holds from each instant on; the first from the first
    # change's "previous" (it held before any change we were given).
    steps: list[tuple[float, str, str | None]] = [(float("-inf"), changes[0].previous, None)]
    steps += [(c.at, c.state, c.reason) for c in changes]
    intervals: list[StateInterval] = []
    for index, (began, state, reason) in enumerate(steps):
        following = steps[index + 1][0] if index + 1 < len(steps) else float("inf")
        start, stop = max(began, since), min(following, end)
        if stop <= start:
            continue
        last = intervals[-1] if intervals else None
        if last is not None and (last.state, last.reason) == (state, reason) \
                and last.end == start:
            intervals[-1] = StateInterval(agent_id, state, reason, last.start, stop)
        else:
            intervals.append(StateInterval(agent_id, state, reason, start, stop))
    if intervals and intervals[-1].end == now:
        last = intervals[-1]
        holding = [(state, reason) for began, state, reason in steps if began <= now][-1]
        # Still in it now (no change ended it at ``now``): the interval is open, not finished.
        if (last.state, last.reason) == holding:
            intervals[-1] = StateInterval(agent_id, last.state, last.reason, last.start,
                                          last.end, ongoing=True)
    return intervals
