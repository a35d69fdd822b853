"""A minimal ACD: FIFO queues of callers, longest-idle agent routing. Sans-I/O.

The adapter reports what happens (a caller queued, an agent's phone answered or not, a
caller gone, an agent logging in or out, the clock ticking) and gets back actions: offer
this call to that agent, tell this caller no agent can take the call, time this caller out.

Rules:
- A caller goes to the ready agent serving the queue who has been idle longest (idle since
  startup, login, or the end of their last call; ties by agent id).
- When an agent becomes free, they get the longest-waiting caller among the queues they
  serve. Callers of one queue are served first in, first out.
- A call rings one agent at a time, and an agent is offered one call at a time. A caller
  whose offer failed keeps their place and is offered to agents not yet tried for this
  call; once every logged-in agent of the queue has been tried, a new round begins.
- An agent who logs out while ringing or talking stays so until that call is over.
- A caller whose wait has passed the queue's ``max_wait`` gets no new offer; the next
  ``tick()`` times them out.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


@dataclass(frozen=True)
class QueueRules:
    name: str
    ring_timeout: float  # seconds an agent's phone rings before the offer fails
    max_wait: float  # seconds a caller may wait before being timed out


@dataclass(frozen=True)
class AgentSpec:
    agent_id: str
    queues: tuple[str, ...]
    logged_in: bool = True


class AgentState(StrEnum):
    IDLE = "idle"  # ready for a call
    RINGING = "ringing"  # offered a call
    BUSY = "busy"  # talking
    LOGGED_OUT = "logged_out"


class CallState(StrEnum):
    WAITING = "waiting"
    RINGING = "ringing"
    TALKING = "talking"


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class OfferCall:
    """Ring ``agent_id`` for ``call_id`` for up to ``ring_timeout`` seconds."""

    call_id: str
    agent_id: str
    ring_timeout: float


@dataclass(frozen=True)
class NoAgentAvailable:
    """The call cannot be queued at all; it is not kept."""

    call_id: str
    reason: str


@dataclass(frozen=True)
class QueueTimedOut:
    """The caller waited past the queue's max_wait and was removed."""

    call_id: str


AcdAction = OfferCall | NoAgentAvailable | QueueTimedOut


# --------------------------------------------------------------------------- state


@dataclass
class _Agent:
    spec: AgentSpec
    state: AgentState
    idle_since: float
    wants_logged_in: bool
    call_id: str | None = None


@dataclass
class _Call:
    call_id: str
    queue: str
    enqueued_at: float
    order: int  # arrival order, to break ties between equal enqueue times
    state: CallState = CallState.WAITING
    agent_id: str | None = None
    tried: set[str] = field(default_factory=set)  # agents offered this call in this round
    last_failure: str | None = None


class Acd:
    def __init__(
        self, queues: Mapping[str, QueueRules], agents: Iterable[AgentSpec], now: float
    ) -> None:
        for name, rules in queues.items():
            if rules.name != name:
                raise ValueError(f"queue {name!r}: its rules are named {rules.name!r}")
            if rules.ring_timeout <= 0 or rules.max_wait <= 0:
                raise ValueError(f"queue {name!r}: ring_timeout and max_wait must be positive")
        self._rules = dict(queues)
        self._agents: dict[str, _Agent] = {}
        for spec in agents:
            if spec.agent_id in self._agents:
                raise ValueError(f"agent {spec.agent_id!r} is defined twice")
            unknown = [q for q in spec.queues if q not in self._rules]
            if unknown:
                raise ValueError(f"agent {spec.agent_id!r}: unknown queue {unknown[0]!r}")
            state = AgentState.IDLE if spec.logged_in else AgentState.LOGGED_OUT
            self._agents[spec.agent_id] = _Agent(spec, state, now, spec.logged_in)
        self._serving = {
            name: [a for a in self._agents.values() if name in a.spec.queues] for name in queues
        }
        self._waiting: dict[str, list[_Call]] = {name: [] for name in queues}  # FIFO, unanswered
        self._calls: dict[str, _Call] = {}
        self._arrivals = itertools.count()

    # -- events

    def enqueue(self, call_id: str, queue: str, now: float) -> list[AcdAction]:
        if queue not in self._rules:
            raise ValueError(f"call {call_id!r}: unknown queue {queue!r}")
        if call_id in self._calls:
            raise ValueError(f"call {call_id!r} is already in queue {self._calls[call_id].queue!r}")
        if not self._serving[queue]:
            return [NoAgentAvailable(call_id, reason="queue has no agents")]
        call = _Call(call_id, queue, now, next(self._arrivals))
        self._calls[call_id] = call
        self._waiting[queue].append(call)
        return self._dispatch(now)

    def offer_answered(self, call_id: str, agent_id: str, now: float) -> list[AcdAction]:
        call, agent = self._offer(call_id, agent_id)
        call.state = CallState.TALKING
        self._waiting[call.queue].remove(call)
        agent.state = AgentState.BUSY
        return []

    def offer_failed(self, call_id: str, agent_id: str, now: float, reason: str) -> list[AcdAction]:
        call, agent = self._offer(call_id, agent_id)
        call.state = CallState.WAITING
        call.agent_id = None
        call.tried.add(agent_id)
        call.last_failure = f"{agent_id}: {reason}"
        self._release(agent, now, took_call=False)
        return self._dispatch(now)

    def caller_left(self, call_id: str, now: float) -> list[AcdAction]:
        call = self._call(call_id)
        del self._calls[call_id]
        if call.state is not CallState.TALKING:
            self._waiting[call.queue].remove(call)
        if call.agent_id is None:
            return []
        self._release(self._agents[call.agent_id], now, took_call=call.state is CallState.TALKING)
        return self._dispatch(now)

    def set_logged_in(self, agent_id: str, logged_in: bool, now: float) -> list[AcdAction]:
        agent = self._agent(agent_id)
        agent.wants_logged_in = logged_in  # if ringing or busy, applied when that call ends
        if logged_in and agent.state is AgentState.LOGGED_OUT:
            agent.state = AgentState.IDLE
            agent.idle_since = now
        elif not logged_in and agent.state is AgentState.IDLE:
            agent.state = AgentState.LOGGED_OUT
        # Even a logout can start a new round: the others may all have been tried already.
        return self._dispatch(now)

    def tick(self, now: float) -> list[AcdAction]:
        timed_out: list[AcdAction] = []
        for call in self._calls_by_age():
            if call.state is CallState.WAITING and self._expired(call, now):
                del self._calls[call.call_id]
                self._waiting[call.queue].remove(call)
                timed_out.append(QueueTimedOut(call.call_id))
        return timed_out

    # -- queries

    def waiting(self, queue: str) -> list[str]:
        """Unanswered callers of a queue, longest waiting first (including ringing ones)."""
        if queue not in self._rules:
            raise ValueError(f"unknown queue {queue!r}")
        return [call.call_id for call in self._waiting[queue]]

    def agent_state(self, agent_id: str) -> AgentState:
        return self._agent(agent_id).state

    def snapshot(self) -> dict[str, Any]:
        """Plain data (JSON-ready) for APIs and pages."""
        return {
            "queues": {
                name: {
                    "ring_timeout": rules.ring_timeout,
                    "max_wait": rules.max_wait,
                    "calls": [
                        {
                            "call_id": call.call_id,
                            "state": call.state.value,
                            "waiting_since": call.enqueued_at,
                            "agent_id": call.agent_id,
                            "tried": sorted(call.tried),
                            "last_failure": call.last_failure,
                        }
                        for call in self._waiting[name]
                    ],
                }
                for name, rules in self._rules.items()
            },
            "agents": {
                agent_id: {
                    "state": agent.state.value,
                    "queues": list(agent.spec.queues),
                    "idle_since": agent.idle_since,
                    "call_id": agent.call_id,
                    "logging_out": agent.state is not AgentState.LOGGED_OUT
                    and not agent.wants_logged_in,
                }
                for agent_id, agent in self._agents.items()
            },
        }

    # -- routing

    def _dispatch(self, now: float) -> list[AcdAction]:
        """Offer waiting callers, longest waiting first, to the longest-idle eligible agent."""
        offers: list[AcdAction] = []
        for call in self._calls_by_age():
            if call.state is not CallState.WAITING or self._expired(call, now):
                continue
            agent = self._pick_agent(call)
            if agent is None:
                continue
            call.state = CallState.RINGING
            call.agent_id = agent.spec.agent_id
            agent.state = AgentState.RINGING
            agent.call_id = call.call_id
            offers.append(
                OfferCall(call.call_id, agent.spec.agent_id, self._rules[call.queue].ring_timeout)
            )
        return offers

    def _pick_agent(self, call: _Call) -> _Agent | None:
        serving = self._serving[call.queue]
        logged_in = {a.spec.agent_id for a in serving if a.wants_logged_in}
        ready = [a for a in serving if a.state is AgentState.IDLE]
        if not ready:
            return None
        untried = [a for a in ready if a.spec.agent_id not in call.tried]
        if not untried and logged_in <= call.tried:
            call.tried.clear()  # everyone had their chance: a new round
            untried = ready
        return min(untried, key=lambda a: (a.idle_since, a.spec.agent_id), default=None)

    def _release(self, agent: _Agent, now: float, *, took_call: bool) -> None:
        agent.call_id = None
        if took_call:
            agent.idle_since = now  # a declined ring does not reset the idle time
        if agent.wants_logged_in:
            agent.state = AgentState.IDLE
        else:
            agent.state = AgentState.LOGGED_OUT

    def _calls_by_age(self) -> list[_Call]:
        waiting = [call for calls in self._waiting.values() for call in calls]
        return sorted(waiting, key=lambda c: (c.enqueued_at, c.order))

    def _expired(self, call: _Call, now: float) -> bool:
        return now - call.enqueued_at > self._rules[call.queue].max_wait

    def _offer(self, call_id: str, agent_id: str) -> tuple[_Call, _Agent]:
        call, agent = self._call(call_id), self._agent(agent_id)
        if call.state is not CallState.RINGING or call.agent_id != agent_id:
            raise ValueError(f"call {call_id!r} is not ringing agent {agent_id!r}")
        return call, agent

    def _call(self, call_id: str) -> _Call:
        try:
            return self._calls[call_id]
        except KeyError:
            raise ValueError(f"unknown call {call_id!r}") from None

    def _agent(self, agent_id: str) -> _Agent:
        try:
            return self._agents[agent_id]
        except KeyError:
            raise ValueError(f"unknown agent {agent_id!r}") from None
