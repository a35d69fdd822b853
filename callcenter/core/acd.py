"""ACD v2: the one engine that routes every call needing an agent. Pure and sans-I/O.

Methods take ``now`` (POSIX seconds from a Clock) and return a list of actions. Every method
that takes ``now`` first applies what fell due by then (wrap-ups ending, tiers opening, skill
requirements relaxing, max_wait, announcements), dated when it fell due; ``tick(now)`` does
only that, and costs one heap peek when nothing is due. If a request is refused (an error),
the actions that fell due come with the next call's actions instead of being lost.

Routing rules
- An agent is eligible for a call when READY, reachable, not tried for it in this round,
  serving its queue at an open tier (tier 0: the agent's own queues; tier k opens once the call
  has waited tiers[k-1].after seconds in the queue) and holding every required skill at the
  required level (lowered by each relaxation step passed; a level <= 0 is dropped).
- Callers are served in line order: priority (higher first), then waiting_since, then arrival.
  When agents become free, the waiting callers of the queues they serve are offered in that
  order, each one to the agent its queue's strategy picks among the eligible:
  longest_idle (idle since login, ready, or the end of wrap-up; a failed ring does not reset
  it), round_robin (next member after the last one offered; members: tier 0 in agent order,
  then each tier's list), fewest_calls (answered from this queue since login), least_talk_time
  (since login), random (uniform, from the engine's seeded Random), skills (highest sum of the
  agent's levels in the skills the call asked for). Ties: longest idle, then agent id.
- A call rings one agent at a time and an agent is offered one call at a time. A failed offer
  marks the agent tried and the caller keeps its place. When everyone who could take the call
  (logged in, not paused, reachable, in an open tier, skilled) has been tried, its tried set
  clears at once: a new round.
- Virtual (callback) entries are offered like callers (OfferCall.virtual): the adapter rings
  the agent, then the customer. CUSTOMER_NO_ANSWER removes the entry (CallbackUnanswered).
- A queue's times (tiers, relaxation, max_wait, announcements) count from when the call joined
  that queue; waiting_since only orders the line. It is kept on overflow and virtual hold;
  move() starts a new wait (waiting_since = now).
- max_wait: a waiting caller overflows to overflow_to, or is removed (QueueTimedOut). A ringing
  caller is not interrupted: if that ring fails, the caller expires then. Virtual (callback)
  entries have no max_wait: they keep their place until served or removed.
- A new entry into a queue holding max_length unanswered calls overflows at once (or QueueFull);
  into a queue no agent serves at all, NoAgentAvailable. Neither keeps the call.
- Expected wait for the caller at position p (1 = next, counting every unanswered call ahead)
  with n tier-0 members logged in and not paused: p * aht / max(n, 1). aht: exponentially
  weighted (0.2) talk + wrap-up of the queue's calls, from default_handle_time. Non-virtual
  callers not ringing hear it every announce_every seconds after joining.

Agent states (TRANSITIONS below; one AgentStateChanged per real change, in order)

    request  LOGGED_OUT  READY       RINGING / ON_CALL         WRAP_UP     PAUSED
    login    READY       error       error                     error       error
    logout   error       LOGGED_OUT  deferred                  LOGGED_OUT  LOGGED_OUT
    pause    error       PAUSED      deferred                  PAUSED      PAUSED (new reason)
    ready    error       no-op       cancels a deferred request READY      READY

    offer          READY -> RINGING
    answered       RINGING -> ON_CALL
    ring failed    RINGING -> PAUSED("RONA") (no answer, rona_pause) | READY; idle time kept
    caller left    RINGING -> READY (idle time kept)
    call ended     ON_CALL -> WRAP_UP (timed or manual) | READY (wrap_up 0)
    wrap-up ended  WRAP_UP -> READY (timer, or the agent's ready)
    busy elsewhere READY | WRAP_UP | PAUSED -> ON_CALL (a pause becomes a deferred pause)
    elsewhere over ON_CALL -> as "call ended", by the call's queue's wrap-up if known, else READY

  A deferred pause/logout replaces the READY (or RONA) that ends a ring, a call or a timed
  wrap-up; after a call with manual wrap-up it applies when the call ends (the agent already
  said what comes next).
  An unreachable agent keeps their state but gets no offers. Agents are assumed reachable until
  ``set_reachable(.., False)``; reachability is the phone's and survives logout.
  A call "elsewhere" is one Asterisk carries that the ACD did not route (put through by the
  fallback ``Queue()`` while the service was down, or in progress when it stopped): the agent
  is ON_CALL with it until ``elsewhere_ended``. It does not count in the agent's calls, talk
  time or the queue's handle time: the ACD saw only part of it.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Mapping
from heapq import heapify, heappop, heappush
from typing import Any

from callcenter.core.acd_actions import (
    AcdAction,
    AgentRequestDeferred,
    AgentState,
    AgentStateChanged,
    AgentStateError,
    AgentView,
    Announce,
    CallbackUnanswered,
    CallState,
    ConnectMode,
    NoAgentAvailable,
    OfferCall,
    OfferFailure,
    Overflowed,
    QueueFull,
    QueueTimedOut,
    QueueView,
    UnknownAgent,
)
from callcenter.core.acd_config import (
    AgentSpec,
    OverflowTier,
    QueueRules,
    SkillRelaxation,
    Strategy,
    skill_levels,
)
from callcenter.core.acd_routing import IN_ROUND, AgentRecord, CallEntry, QueueIndex
from callcenter.core.identifiers import DEFAULT_PAUSE_REASONS, RONA

__all__ = [
    "Acd",
    "AcdAction",
    "AgentRequestDeferred",
    "AgentSpec",
    "AgentState",
    "AgentStateChanged",
    "AgentStateError",
    "AgentView",
    "Announce",
    "CallState",
    "CallbackUnanswered",
    "ConnectMode",
    "NoAgentAvailable",
    "OfferCall",
    "OfferFailure",
    "OverflowTier",
    "Overflowed",
    "QueueFull",
    "QueueRules",
    "QueueTimedOut",
    "QueueView",
    "SkillRelaxation",
    "Strategy",
    "UnknownAgent",
]

S = AgentState
TRANSITIONS: dict[AgentState, frozenset[AgentState]] = {
    S.LOGGED_OUT: frozenset({S.READY}),  # login
    # offer, pause, logout; busy elsewhere (a call the ACD did not route)
    S.READY: frozenset({S.RINGING, S.PAUSED, S.LOGGED_OUT, S.ON_CALL}),
    # answered; ring ended (READY, RONA or a deferred pause/logout)
    S.RINGING: frozenset({S.ON_CALL, S.READY, S.PAUSED, S.LOGGED_OUT}),
    # call ended: wrap-up, READY when there is none, or a deferred pause/logout
    S.ON_CALL: frozenset({S.WRAP_UP, S.READY, S.PAUSED, S.LOGGED_OUT}),
    # wrap-up ended, pause, logout; busy elsewhere
    S.WRAP_UP: frozenset({S.READY, S.PAUSED, S.LOGGED_OUT, S.ON_CALL}),
    # ready, new reason, logout; busy elsewhere (the pause is deferred until after that call)
    S.PAUSED: frozenset({S.READY, S.PAUSED, S.LOGGED_OUT, S.ON_CALL}),
}

# The timer heap holds (due, seq, kind, agent or call, token): a wrap-up's end, or a call's next
# deadline. A call keeps its own deadlines in call.agenda, (due, deadline, step), and only the
# earliest is in the heap: an answered call leaves one stale entry behind, not five.
WRAP_UP_END, CALL_DEADLINE = range(2)
TIER_OPENS, SKILLS_RELAX, MAX_WAIT, ANNOUNCE = range(4)  # at the same time: in this order


class Acd:
    _keep_ready_index = True  # the reference engine (acd_reference.py) scans instead

    def __init__(
        self,
        queues: Mapping[str, QueueRules],
        agents: Iterable[AgentSpec],
        now: float,
        *,
        pause_reasons: Iterable[str] = DEFAULT_PAUSE_REASONS,
        rng: random.Random | None = None,
    ) -> None:
        _check_queues(queues)
        self._queues = {name: QueueIndex(rules, keep_ready=self._keep_ready_index)
                        for name, rules in queues.items()}
        self._agents: dict[str, AgentRecord] = {}
        for spec in agents:
            if spec.agent_id in self._agents:
                raise ValueError(f"agent {spec.agent_id!r} is defined twice")
            self._check_spec(spec)
            self._agents[spec.agent_id] = _new_record(spec, now)
        for name, rules in queues.items():
            for number, tier in enumerate(rules.tiers, start=1):
                unknown = [a for a in tier.agents if a not in self._agents]
                if unknown:
                    raise ValueError(f"queue {name!r}: overflow tier {number} names unknown "
                                     f"agent {unknown[0]!r}")
        reasons = list(pause_reasons)
        for reason in reasons:
            if not isinstance(reason, str) or not reason:
                raise ValueError(f"pause reasons must be non-empty strings, not {reason!r}")
        self._pause_reasons = tuple(dict.fromkeys([*reasons, RONA]))
        self._rng = rng if rng is not None else random.Random(0)
        self._calls: dict[str, CallEntry] = {}
        # agent -> (call, its queue or None) of a call the ACD did not route (module docstring)
        self._elsewhere: dict[str, tuple[str, str | None]] = {}
        self._arrivals = itertools.count()
        self._phones: dict[str, str] = {}  # phone -> the agent logged in on it
        self._timers: list[tuple[float, int, int, Any, int]] = []
        self._timer_seq = itertools.count()
        self._carried: list[AcdAction] = []  # due actions of a request that was refused
        self._fresh: list[AgentRecord] = []  # became available: may take a waiting call
        self._left: list[tuple[AgentRecord, tuple[str, ...]]] = []  # left rounds in queues
        for index in self._queues.values():
            index.rebuild(self._agents.values())

    # ======================================================================= agents' requests

    def login(self, agent_id: str, now: float, *, phone: str,
              mode: ConnectMode = ConnectMode.RING) -> list[AcdAction]:
        agent = self._agent(agent_id)
        if not isinstance(phone, str) or not phone:
            raise ValueError(f"agent {agent_id!r}: phone must be a non-empty string, not {phone!r}")
        try:
            mode = ConnectMode(mode)
        except ValueError:
            raise ValueError(f"agent {agent_id!r}: unknown connect mode {mode!r}") from None
        actions = self._begin(now)
        self._request(agent, "login", now, actions, phone=phone, mode=mode)
        return self._finish(now, actions)

    def logout(self, agent_id: str, now: float) -> list[AcdAction]:
        agent = self._agent(agent_id)
        actions = self._begin(now)
        self._request(agent, "logout", now, actions)
        return self._finish(now, actions)

    def pause(self, agent_id: str, reason: str, now: float) -> list[AcdAction]:
        agent = self._agent(agent_id)
        if reason not in self._pause_reasons:
            raise AgentStateError(f"agent {agent_id!r}: unknown pause reason {reason!r}; "
                                  f"use one of: {', '.join(self._pause_reasons)}")
        actions = self._begin(now)
        self._request(agent, "pause", now, actions, reason=reason)
        return self._finish(now, actions)

    def ready(self, agent_id: str, now: float) -> list[AcdAction]:
        agent = self._agent(agent_id)
        actions = self._begin(now)
        self._request(agent, "ready", now, actions)
        return self._finish(now, actions)

    def set_reachable(self, agent_id: str, reachable: bool, now: float) -> list[AcdAction]:
        """The agent's phone registered (True) or went away (False)."""
        agent = self._agent(agent_id)
        if not isinstance(reachable, bool):
            raise ValueError(f"agent {agent_id!r}: reachable must be true or false")
        actions = self._begin(now)
        self._set_reachable(agent, reachable)
        return self._finish(now, actions)

    def switch_mode(self, agent_id: str, mode: ConnectMode, now: float) -> list[AcdAction]:
        """The logged-in agent's phone is now connected another way (a nailed-up channel found
        after a restart that logged them in ringing): offers from now on use ``mode``. State,
        phone and counts are kept. Refused while an offer rings them (it used the old mode)."""
        agent = self._agent(agent_id)
        try:
            mode = ConnectMode(mode)
        except ValueError:
            raise ValueError(f"agent {agent_id!r}: unknown connect mode {mode!r}") from None
        if agent.state is S.LOGGED_OUT:
            raise AgentStateError(f"agent {agent_id!r} is logged out: log in first")
        if agent.state is S.RINGING:
            raise AgentStateError(f"agent {agent_id!r} is ringing for call "
                                  f"{_call_id(agent)!r}: change the mode after the ring")
        actions = self._begin(now)
        agent.mode = mode
        return self._finish(now, actions)

    def busy_elsewhere(self, agent_id: str, call_id: str, now: float, *,
                       queue: str | None = None) -> list[AcdAction]:
        """The agent is on ``call_id``, a call the ACD did not route (module docstring): ON_CALL,
        no offers, until ``elsewhere_ended``. ``queue``: where the call came from, if known (its
        wrap-up follows the call). A paused agent is paused again after it; a wrap-up ends now.
        The same call again is a no-op; refused while logged out, ringing, or on another call."""
        agent = self._agent(agent_id)
        if not isinstance(call_id, str) or not call_id:
            raise ValueError(f"agent {agent_id!r}: call id must be a non-empty string, "
                             f"not {call_id!r}")
        if queue is not None and queue not in self._queues:
            raise ValueError(f"agent {agent_id!r}: call {call_id!r}: unknown queue {queue!r}")
        held = self._elsewhere.get(agent_id)
        if held is not None and held[0] == call_id:
            return self._finish(now, self._begin(now))
        if agent.state is S.LOGGED_OUT:
            raise AgentStateError(f"agent {agent_id!r} is logged out: no offer to hold back")
        if agent.state in (S.RINGING, S.ON_CALL):
            current = _call_id(agent) or (held[0] if held is not None else None)
            raise AgentStateError(f"agent {agent_id!r} is {agent.state.value} with call "
                                  f"{current!r}")
        actions = self._begin(now)
        if agent.state is S.WRAP_UP:
            self._close_wrap_up(agent, now)
        elif agent.state is S.PAUSED:
            agent.deferred, agent.deferred_reason = "pause", agent.reason
        self._elsewhere[agent_id] = (call_id, queue)
        self._change(agent, S.ON_CALL, f"call {call_id} outside the ACD", now, actions)
        return self._finish(now, actions)

    def elsewhere_ended(self, agent_id: str, now: float) -> list[AcdAction]:
        """The agent's call outside the ACD is over: as a call ending (wrap-up by its queue's
        rules if known, else READY; or what was deferred meanwhile)."""
        agent = self._agent(agent_id)
        held = self._elsewhere.get(agent_id)
        if held is None:
            raise ValueError(f"agent {agent_id!r} is not on a call outside the ACD")
        actions = self._begin(now)
        del self._elsewhere[agent_id]
        queue = self._queues.get(held[1]) if held[1] is not None else None
        self._after_talk(agent, queue, None, now, actions)
        return self._finish(now, actions)

    def _request(self, agent: AgentRecord, request: str, now: float,
                 actions: list[AcdAction], *, reason: str | None = None,
                 phone: str | None = None, mode: ConnectMode | None = None) -> None:
        """The agents' request table (see the module docstring), in one place."""
        agent_id = agent.agent_id
        match request, agent.state:
            case "login", S.LOGGED_OUT:
                assert phone is not None
                holder = self._phones.get(phone)
                if holder is not None:
                    raise AgentStateError(f"agent {agent_id!r}: phone {phone!r} is in use by "
                                          f"agent {holder!r}")
                agent.phone, agent.mode = phone, mode
                self._phones[phone] = agent_id
                agent.calls_answered, agent.talk_time = 0, 0.0
                agent.answered_from.clear()
                self._change(agent, S.READY, "login", now, actions, idle=True)
            case "login", _:
                if agent.phone == phone:
                    raise AgentStateError(f"agent {agent_id!r} is already logged in")
                raise AgentStateError(f"agent {agent_id!r} is logged in on phone "
                                      f"{agent.phone!r}: log out there first")
            case "logout", S.READY | S.PAUSED | S.WRAP_UP:
                self._close_wrap_up(agent, now)
                self._log_out(agent, "logout", now, actions)
            case "logout" | "pause", S.RINGING | S.ON_CALL:
                agent.deferred, agent.deferred_reason = request, reason
                actions.append(AgentRequestDeferred(agent_id, request))
            case "logout", S.LOGGED_OUT:
                raise AgentStateError(f"agent {agent_id!r} is already logged out")
            case "pause", S.READY | S.WRAP_UP | S.PAUSED:
                if agent.state is S.PAUSED and agent.reason == reason:
                    return
                self._close_wrap_up(agent, now)
                agent.deferred = agent.deferred_reason = None
                self._change(agent, S.PAUSED, reason, now, actions)
            case "ready", S.PAUSED | S.WRAP_UP:
                self._close_wrap_up(agent, now)
                agent.deferred = agent.deferred_reason = None
                self._change(agent, S.READY, "ready", now, actions, idle=True)
            case "ready", S.READY:
                pass
            case "ready", S.RINGING | S.ON_CALL:
                agent.deferred = agent.deferred_reason = None
            case ("pause" | "ready"), S.LOGGED_OUT:
                raise AgentStateError(f"agent {agent_id!r} is logged out: log in first")
            case _:
                raise ValueError(f"unknown request {request!r}")

    # ======================================================================= agents at runtime

    def add_agent(self, spec: AgentSpec, now: float) -> list[AcdAction]:
        """A new agent, LOGGED_OUT. Overflow tiers naming them take them in."""
        if spec.agent_id in self._agents:
            raise ValueError(f"agent {spec.agent_id!r} already exists: use update_agent")
        self._check_spec(spec)
        actions = self._begin(now)
        self._agents[spec.agent_id] = _new_record(spec, now)
        self._rebuild(set(spec.queues) | self._tiers_naming(spec.agent_id))
        return self._finish(now, actions)

    def update_agent(self, spec: AgentSpec, now: float) -> list[AcdAction]:
        """New queues and skills, in effect from the next decision (a ringing offer stays)."""
        agent = self._agent(spec.agent_id)
        self._check_spec(spec)
        actions = self._begin(now)
        before = tuple(agent.serves)
        agent.spec, agent.skills = spec, dict(spec.skills)
        self._rebuild(set(before) | set(spec.queues))
        if agent.state in IN_ROUND and agent.reachable:
            self._left.append((agent, before))  # calls may have lost an untried agent
        if agent.available:
            self._fresh.append(agent)  # and may have gained one
        return self._finish(now, actions)

    def remove_agent(self, agent_id: str, now: float) -> list[AcdAction]:
        """Forget an agent (logged out first). Refused while they ring or talk."""
        agent = self._agent(agent_id)
        if agent.state in (S.RINGING, S.ON_CALL):
            raise AgentStateError(f"agent {agent_id!r} is on a call: remove them after the call")
        actions = self._begin(now)
        if agent.state is not S.LOGGED_OUT:
            self._close_wrap_up(agent, now)
            self._log_out(agent, "removed", now, actions)
        queues = tuple(agent.serves)
        del self._agents[agent_id]
        self._rebuild(set(queues))
        return self._finish(now, actions)

    # ======================================================================= calls

    def enqueue(self, call_id: str, queue: str, now: float, *, priority: int = 0,
                skills: Mapping[str, int] | None = None, virtual: bool = False,
                waiting_since: float | None = None,
                for_agent: str | None = None) -> list[AcdAction]:
        """``for_agent``: only that agent (a member of ``queue``) may take the call."""
        if not isinstance(call_id, str) or not call_id:
            raise ValueError(f"call id must be a non-empty string, not {call_id!r}")
        if queue not in self._queues:
            raise ValueError(f"call {call_id!r}: unknown queue {queue!r}")
        if call_id in self._calls:
            raise ValueError(f"call {call_id!r} is already in queue {self._calls[call_id].queue!r}")
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise ValueError(f"call {call_id!r}: priority must be an integer, not {priority!r}")
        required = skill_levels(f"call {call_id!r}", "skills", skills or {})
        if not isinstance(virtual, bool):
            raise ValueError(f"call {call_id!r}: virtual must be true or false")
        if waiting_since is not None and (not isinstance(waiting_since, int | float)
                                          or isinstance(waiting_since, bool)):
            raise ValueError(f"call {call_id!r}: waiting_since must be a time, "
                             f"not {waiting_since!r}")
        if for_agent is not None and for_agent not in self._queues[queue].members:
            raise ValueError(f"call {call_id!r}: agent {for_agent!r} does not serve queue "
                             f"{queue!r}")
        actions = self._begin(now)
        call = CallEntry(call_id, queue, priority, dict(required), virtual,
                         now if waiting_since is None else float(waiting_since),
                         next(self._arrivals), for_agent=for_agent)
        placed = self._place(call, queue, now, actions)
        return self._finish(now, actions, [call] if placed else ())

    def offer_answered(self, call_id: str, agent_id: str, now: float) -> list[AcdAction]:
        call, agent = self._ringing(call_id, agent_id)
        actions = self._begin(now)
        self._queues[call.queue].remove(call)
        call.state, call.answered_at = CallState.TALKING, now
        self._change(agent, S.ON_CALL, "answered", now, actions)
        return self._finish(now, actions)

    def offer_failed(self, call_id: str, agent_id: str, now: float,
                     failure: OfferFailure) -> list[AcdAction]:
        call, agent = self._ringing(call_id, agent_id)
        try:
            failure = OfferFailure(failure)
        except ValueError:
            known = ", ".join(f.value for f in OfferFailure)
            raise ValueError(f"call {call_id!r}: unknown offer failure {failure!r} "
                             f"(known: {known})") from None
        if failure is OfferFailure.CUSTOMER_NO_ANSWER and not call.virtual:
            raise ValueError(f"call {call_id!r} is not a callback: its customer is already "
                             f"on the line")
        actions = self._begin(now)
        queue = self._queues[call.queue]
        call.state, call.agent = CallState.WAITING, None
        call.last_failure = f"{agent_id}: {failure.value}"
        match failure:
            case OfferFailure.NO_ANSWER:
                call.tried.add(agent_id)
                if queue.rules.rona_pause:
                    self._end_ring(agent, now, actions, S.PAUSED, RONA)
                else:
                    self._end_ring(agent, now, actions, S.READY, "ring not answered")
            case OfferFailure.REJECTED:
                call.tried.add(agent_id)
                self._end_ring(agent, now, actions, S.READY, "offer rejected")
            case OfferFailure.UNREACHABLE:
                call.tried.add(agent_id)
                self._set_reachable(agent, False)
                self._end_ring(agent, now, actions, S.READY, "phone unreachable")
            case OfferFailure.CUSTOMER_NO_ANSWER:
                self._forget(call)
                self._end_ring(agent, now, actions, S.READY, "callback not answered")
                actions.append(CallbackUnanswered(call_id))
                return self._finish(now, actions)
        if call.overdue:
            return self._finish(now, actions, self._expire(call, now, actions))
        if queue.round_over(call):
            call.tried.clear()
        return self._finish(now, actions, [call])

    def call_ended(self, call_id: str, now: float) -> list[AcdAction]:
        """The talk is over (either side hung up)."""
        call = self._call(call_id)
        if call.state is not CallState.TALKING:
            raise ValueError(f"call {call_id!r} is {call.state.value}, not talking: "
                             f"use caller_left")
        actions = self._begin(now)
        self._end_talk(call, now, actions)
        del self._calls[call_id]
        return self._finish(now, actions)

    def caller_left(self, call_id: str, now: float) -> list[AcdAction]:
        """The caller hung up (waiting, ringing, or talking: then as call_ended)."""
        call = self._call(call_id)
        actions = self._begin(now)
        match call.state:
            case CallState.WAITING:
                self._forget(call)
            case CallState.RINGING:
                agent = call.agent
                assert agent is not None
                self._forget(call)
                self._end_ring(agent, now, actions, S.READY, "caller left")
            case CallState.TALKING:
                self._end_talk(call, now, actions)
                del self._calls[call_id]
        return self._finish(now, actions)

    def to_virtual_hold(self, call_id: str, now: float) -> list[AcdAction]:
        """A waiting caller chose to be called back: same place, no channel from now on."""
        call = self._call(call_id)
        if call.state is not CallState.WAITING:
            raise ValueError(f"call {call_id!r} is {call.state.value}, not waiting: "
                             f"only a waiting caller can take a callback")
        if call.virtual:
            raise ValueError(f"call {call_id!r} is already on virtual hold")
        actions = self._begin(now)
        call.virtual = True
        return self._finish(now, actions)

    def move(self, call_id: str, queue: str, now: float) -> list[AcdAction]:
        """Transfer a waiting or talking call to ``queue``: a new wait (waiting_since = now),
        same priority and skills. A talking call's agent is done with it (as call_ended)."""
        call = self._call(call_id)
        if queue not in self._queues:
            raise ValueError(f"call {call_id!r}: unknown queue {queue!r}")
        if call.state is CallState.RINGING:
            assert call.agent is not None
            raise ValueError(f"call {call_id!r} is ringing agent {call.agent.agent_id!r}: "
                             f"move it when the ring ends")
        actions = self._begin(now)
        if call.state is CallState.TALKING:
            self._end_talk(call, now, actions)
            call.virtual = False  # the customer is on the line now
        else:
            self._queues[call.queue].remove(call)
        call.waiting_since, call.arrival = now, next(self._arrivals)
        if not self._place(call, queue, now, actions):
            del self._calls[call_id]
            return self._finish(now, actions)
        return self._finish(now, actions, [call])

    def tick(self, now: float) -> list[AcdAction]:
        """Apply what fell due by ``now``."""
        return self._finish(now, self._begin(now))

    # ======================================================================= queries

    def waiting(self, queue: str) -> list[str]:
        """Unanswered calls of a queue in line order (ringing and virtual ones included)."""
        return [call.call_id for call in self._queue(queue).line]

    def position(self, call_id: str) -> int:
        """1 = next in line."""
        call = self._waiting_call(call_id)
        return self._queues[call.queue].position_of(call)

    def expected_wait(self, call_id: str, now: float) -> float:
        call = self._waiting_call(call_id)
        index = self._queues[call.queue]
        return index.expected_wait(index.position_of(call))

    def who_would_take(self, queue: str, now: float, *,
                       skills: Mapping[str, int] | None = None, skills_of: str | None = None,
                       exclude: Iterable[str] = ()) -> str | None:
        """The agent ``queue``'s strategy would offer a new call to right now, if any: among
        its READY, reachable tier-0 members not in ``exclude``, holding ``skills`` (or the
        skills asked by call ``skills_of``, if the ACD holds it; else none) as lowered by the
        relaxation steps a new call starts with. Changes nothing: timers that fell due are not
        applied (``tick`` first for that), and a random pick draws from a copy of the engine's
        Random, so later routing draws exactly what it would have. ``now`` is only checked."""
        index = self._queue(queue)
        if not isinstance(now, int | float) or isinstance(now, bool):
            raise ValueError(f"now must be a time, not {now!r}")
        if skills is not None and skills_of is not None:
            raise ValueError("give skills or skills_of, not both")
        if isinstance(exclude, str):
            raise ValueError(f"exclude must be a list of agent ids, not {exclude!r}")
        asked: Mapping[str, int] = skills or {}
        if skills_of is not None and skills_of in self._calls:
            asked = self._calls[skills_of].skills
        required = skill_levels(f"queue {queue!r}", "skills", asked)
        probe = CallEntry("", queue, 0, dict(required), False, float(now), -1)
        probe.open_tier = 0
        probe.relax(index.relax_steps_at_once, index)
        probe.tried = {agent_id for agent_id in exclude if isinstance(agent_id, str)}
        engine_rng = self._rng
        self._rng = random.Random()
        self._rng.setstate(engine_rng.getstate())
        try:
            chosen = self._select(probe)
        finally:
            self._rng = engine_rng
        return chosen.agent_id if chosen is not None else None

    def members(self, queue: str) -> tuple[str, ...]:
        """The agents who serve ``queue`` at any tier, tier 0 first (in member order)."""
        return tuple(self._queue(queue).members)

    def agent_state(self, agent_id: str) -> AgentState:
        return self._agent(agent_id).state

    def agent_ids(self) -> list[str]:
        return list(self._agents)

    def agent(self, agent_id: str) -> AgentView:
        a = self._agent(agent_id)
        return AgentView(
            agent_id=a.agent_id, state=a.state, reason=a.reason, since=a.since,
            idle_since=a.idle_since, phone=a.phone, mode=a.mode, reachable=a.reachable,
            call_id=_call_id(a) or self._elsewhere.get(agent_id, (None,))[0],
            queues=a.spec.queues,
            skills=a.spec.skills, calls_answered=a.calls_answered, talk_time=a.talk_time,
            deferred=a.deferred,
        )

    def queue_stats(self, queue: str, now: float) -> QueueView:
        index = self._queue(queue)
        states = [agent.state for agent in index.primary]
        oldest = min((call.waiting_since for call in index.line), default=now)
        return QueueView(
            name=queue, waiting=len(index.line), longest_wait=max(0.0, now - oldest),
            ready=states.count(S.READY), busy=states.count(S.RINGING) + states.count(S.ON_CALL),
            wrap_up=states.count(S.WRAP_UP), paused=states.count(S.PAUSED),
            logged_in=len(states) - states.count(S.LOGGED_OUT), aht=index.aht,
        )

    def snapshot(self, now: float) -> dict[str, Any]:
        """Plain data (JSON-ready) for /api/queues and /api/agents."""
        queues: dict[str, Any] = {}
        for name, index in self._queues.items():
            stats = self.queue_stats(name, now)
            queues[name] = {
                "strategy": index.strategy.value,
                **{key: getattr(stats, key) for key in (
                    "waiting", "longest_wait", "ready", "busy", "wrap_up", "paused",
                    "logged_in", "aht")},
                "calls": [{
                    "call_id": call.call_id,
                    "state": call.state.value,
                    "position": position,
                    "expected_wait": index.expected_wait(position),
                    "priority": call.priority,
                    "virtual": call.virtual,
                    "waiting_since": call.waiting_since,
                    "joined_at": call.joined_at,
                    "skills": dict(call.skills),  # as asked
                    "needed": dict(call.needed),  # after relaxation
                    "agent_id": call.agent.agent_id if call.agent else None,
                    "for_agent": call.for_agent,
                    "tried": sorted(call.tried),
                    "last_failure": call.last_failure,
                } for position, call in enumerate(index.line, start=1)],
            }
        agents = {}
        for agent_id in self._agents:
            view = self.agent(agent_id)
            agents[agent_id] = {
                "state": view.state.value, "reason": view.reason, "since": view.since,
                "idle_since": view.idle_since, "phone": view.phone,
                "mode": view.mode.value if view.mode else None, "reachable": view.reachable,
                "call_id": view.call_id, "queues": list(view.queues),
                "skills": dict(view.skills), "calls_answered": view.calls_answered,
                "talk_time": view.talk_time, "deferred": view.deferred,
            }
        return {"queues": queues, "agents": agents}

    @property
    def pause_reasons(self) -> tuple[str, ...]:
        return self._pause_reasons

    # ======================================================================= agent lifecycle

    def _change(self, agent: AgentRecord, state: AgentState, reason: str | None, at: float,
                actions: list[AcdAction], *, idle: bool = False) -> None:
        """The one place an agent's state changes: checked, indexed, reported."""
        previous = agent.state
        if state not in TRANSITIONS[previous]:
            raise RuntimeError(f"agent {agent.agent_id!r}: no transition {previous} -> {state}")
        was_available = agent.available
        if was_available:
            self._unindex_ready(agent)
        agent.state, agent.reason, agent.since = state, reason, at
        if idle:
            agent.idle_since = at
        if agent.available:
            self._index_ready(agent)
            self._fresh.append(agent)
        if (previous in IN_ROUND) != (state in IN_ROUND):
            staffed = 1 if state in IN_ROUND else -1
            for queue in agent.spec.queues:
                self._queues[queue].staffed += staffed
            if staffed < 0 and agent.reachable:
                self._left.append((agent, tuple(agent.serves)))
        actions.append(AgentStateChanged(agent.agent_id, state, reason, at, previous))

    def _set_reachable(self, agent: AgentRecord, reachable: bool) -> None:
        if agent.reachable == reachable:
            return
        if agent.available:
            self._unindex_ready(agent)
        agent.reachable = reachable
        if agent.available:
            self._index_ready(agent)
            self._fresh.append(agent)
        if not reachable and agent.state in IN_ROUND:
            self._left.append((agent, tuple(agent.serves)))

    def _log_out(self, agent: AgentRecord, reason: str, at: float,
                 actions: list[AcdAction]) -> None:
        self._change(agent, S.LOGGED_OUT, reason, at, actions)
        if agent.phone is not None:
            self._phones.pop(agent.phone, None)
        agent.phone = agent.mode = None
        agent.deferred = agent.deferred_reason = None

    def _end_ring(self, agent: AgentRecord, at: float, actions: list[AcdAction],
                  state: AgentState, reason: str) -> None:
        """A ring is over without a talk: ``state`` unless a pause/logout was deferred.
        The agent's idle time is not reset (they took no call)."""
        agent.call = None
        self._after_call(agent, at, actions, state, reason, idle=False,
                         logout_reason="logout deferred until ring ended")

    def _after_call(self, agent: AgentRecord, at: float, actions: list[AcdAction],
                    state: AgentState, reason: str, *, idle: bool,
                    logout_reason: str = "logout deferred until call ended") -> None:
        match agent.deferred:
            case "logout":
                self._log_out(agent, logout_reason, at, actions)
            case "pause":
                pause_reason = agent.deferred_reason
                agent.deferred = agent.deferred_reason = None
                self._change(agent, S.PAUSED, pause_reason, at, actions)
            case _:
                self._change(agent, state, reason, at, actions, idle=idle)

    def _end_talk(self, call: CallEntry, at: float, actions: list[AcdAction]) -> None:
        """The talk is over: stats, then wrap-up (timed or manual), READY, or what was
        deferred."""
        agent = call.agent
        assert agent is not None
        queue = self._queues[call.queue]
        talk = max(0.0, at - call.answered_at)
        agent.calls_answered += 1
        agent.answered_from[call.queue] = agent.answered_from.get(call.queue, 0) + 1
        agent.talk_time += talk
        agent.call = None
        call.agent = None
        self._after_talk(agent, queue, talk, at, actions)

    def _after_talk(self, agent: AgentRecord, queue: QueueIndex | None, talk: float | None,
                    at: float, actions: list[AcdAction]) -> None:
        """Wrap-up by ``queue``'s rules (none without a queue), READY, or what was deferred.
        ``talk`` goes into the queue's handle time; None: not measured (a call elsewhere)."""
        wrap_up = queue.rules.wrap_up if queue is not None else 0
        if wrap_up == 0 or (wrap_up is None and agent.deferred):
            if queue is not None and talk is not None:
                queue.record_handle_time(talk)
            self._after_call(agent, at, actions, S.READY, "call ended", idle=True)
            return
        assert queue is not None
        agent.wrap_queue = queue.name if talk is not None else None
        agent.wrap_talk, agent.wrap_started = talk or 0.0, at
        self._change(agent, S.WRAP_UP, "call ended", at, actions)
        if wrap_up is not None:
            self._schedule(at + wrap_up, WRAP_UP_END, agent, agent.wrap_token)

    def _close_wrap_up(self, agent: AgentRecord, at: float) -> None:
        """If in wrap-up, it ends now: its handle time is measured (unless it followed a call
        elsewhere), its timer goes stale."""
        if agent.state is not S.WRAP_UP:
            return
        queue = self._queues.get(agent.wrap_queue) if agent.wrap_queue is not None else None
        if queue is not None:
            queue.record_handle_time(agent.wrap_talk + max(0.0, at - agent.wrap_started))
        agent.wrap_queue = None
        agent.wrap_token += 1

    # ======================================================================= calls in line

    def _place(self, call: CallEntry, queue: str, at: float, actions: list[AcdAction]) -> bool:
        """Put ``call`` in ``queue``'s line (or overflow it on): False if it is not kept."""
        while True:
            index = self._queues[queue]
            rules = index.rules
            if not index.members:
                actions.append(NoAgentAvailable(call.call_id, reason="queue has no agents"))
                return False
            if rules.max_length is None or len(index.line) < rules.max_length:
                break
            if rules.overflow_to is None:
                actions.append(QueueFull(call.call_id, queue))
                return False
            actions.append(Overflowed(call.call_id, queue, rules.overflow_to))
            queue = rules.overflow_to
        call.place(index, at)
        self._calls[call.call_id] = call
        agenda = [(at + rules.max_wait, MAX_WAIT, 0)]
        agenda += [(at + tier.after, TIER_OPENS, number)
                   for number, tier in enumerate(rules.tiers, start=1) if tier.after > 0]
        agenda += [(at + step.after, SKILLS_RELAX, number)
                   for number, step in enumerate(rules.relax, start=1) if step.after > 0]
        if rules.announce_every is not None and not call.virtual:
            agenda.append((at + rules.announce_every, ANNOUNCE, 1))
        heapify(agenda)
        call.agenda = agenda
        self._schedule(agenda[0][0], CALL_DEADLINE, call, call.entry)
        return True

    def _expire(self, call: CallEntry, at: float,
                actions: list[AcdAction]) -> list[CallEntry]:
        """max_wait passed: overflow on, or time out. Returns the call if it still waits."""
        index = self._queues[call.queue]
        index.remove(call)
        target = index.rules.overflow_to
        if target is None:
            actions.append(QueueTimedOut(call.call_id, call.queue))
        else:
            actions.append(Overflowed(call.call_id, call.queue, target))
            if self._place(call, target, at, actions):
                return [call]
        del self._calls[call.call_id]
        return []

    def _forget(self, call: CallEntry) -> None:
        if call.in_line:
            self._queues[call.queue].remove(call)
        call.agent = None
        del self._calls[call.call_id]

    # ======================================================================= time

    def _schedule(self, due: float, kind: int, target: AgentRecord | CallEntry,
                  token: int) -> None:
        heappush(self._timers, (due, next(self._timer_seq), kind, target, token))

    def _begin(self, now: float) -> list[AcdAction]:
        """Apply every timer due by ``now``, each at its own time."""
        actions = self._carried
        timers = self._timers
        while timers and timers[0][0] <= now:
            due, _, kind, target, token = heappop(timers)
            if kind == WRAP_UP_END:
                self._wrap_up_ends(target, token, due, actions)
            else:
                self._deadline(target, token, due, actions)
        self._carried = actions  # kept for the next call if this request is refused
        return actions

    def _wrap_up_ends(self, agent: AgentRecord, token: int, due: float,
                      actions: list[AcdAction]) -> None:
        if (self._agents.get(agent.agent_id) is agent and agent.state is S.WRAP_UP
                and agent.wrap_token == token):
            self._close_wrap_up(agent, due)
            self._after_call(agent, due, actions, S.READY, "wrap-up ended", idle=True)
            self._dispatch(due, actions)

    def _deadline(self, call: CallEntry, token: int, due: float,
                  actions: list[AcdAction]) -> None:
        """The call's earliest deadline is due: apply it, then schedule the next one."""
        if not call.in_line or call.entry != token or self._calls.get(call.call_id) is not call:
            return  # answered, gone, or moved on since
        _, deadline, step = heappop(call.agenda)
        index = self._queues[call.queue]
        if deadline == MAX_WAIT:
            if call.agent is not None:
                call.overdue = True  # the ring goes on; if it fails, the caller expires then
            elif not call.virtual:  # a callback keeps its place: no max_wait
                self._dispatch(due, actions, self._expire(call, due, actions))
                return
        elif deadline == TIER_OPENS:
            call.open_tier = max(call.open_tier, step)
            self._dispatch(due, actions, [call])
        elif deadline == SKILLS_RELAX:
            call.relax(max(call.relax_steps, step), index)
            self._dispatch(due, actions, [call])
        elif not call.virtual:  # ANNOUNCE; a caller gone to virtual hold hears no more
            if call.agent is None:
                position = index.position_of(call)
                actions.append(Announce(call.call_id, position, index.expected_wait(position)))
            every = index.rules.announce_every
            assert every is not None
            heappush(call.agenda, (call.joined_at + (step + 1) * every, ANNOUNCE, step + 1))
        if call.agenda and call.in_line and call.entry == token:
            self._schedule(call.agenda[0][0], CALL_DEADLINE, call, token)

    def _finish(self, now: float, actions: list[AcdAction],
                calls: Iterable[CallEntry] = ()) -> list[AcdAction]:
        self._dispatch(now, actions, calls)
        self._carried = []
        return actions

    # ======================================================================= routing

    def _dispatch(self, at: float, actions: list[AcdAction],
                  calls: Iterable[CallEntry] = ()) -> None:
        """Offer what became possible: ``calls`` newly waiting, agents newly available
        (self._fresh), and calls whose round ended because an agent left (self._left).

        Invariant between events: no waiting call has an eligible agent. So only these can
        match, and the first of them in line order is served first, as a full scan would."""
        pending = list(calls)
        if self._left:
            pending += self._new_rounds()
        fresh, self._fresh = self._fresh, []
        if not fresh:
            if len(pending) == 1:  # the common case: one new caller, nobody new
                call = pending[0]
                if call.agent is None and call.in_line:
                    chosen = self._select(call)
                    if chosen is not None:
                        self._offer(call, chosen, at, actions)
                return
            if not pending:
                return
        done: set[CallEntry] = set()
        while True:
            best: CallEntry | None = None
            for call in pending:
                if (call not in done and call.agent is None and call.in_line
                        and (best is None or call.key < best.key)):
                    best = call
            for agent in fresh:
                if agent.state is not S.READY or not agent.reachable:
                    continue
                for queue, tier in agent.serves.items():
                    call = self._queues[queue].first_call_for(agent, tier, done)
                    if call is not None and (best is None or call.key < best.key):
                        best = call
            if best is None:
                return
            done.add(best)
            chosen = self._select(best)
            if chosen is not None:
                self._offer(best, chosen, at, actions)

    def _new_rounds(self) -> list[CallEntry]:
        """Agents left the rounds of calls in their queues: a call whose every remaining
        candidate has been tried starts a new round."""
        restarted: list[CallEntry] = []
        left, self._left = self._left, []
        for _agent, queues in left:
            for name in queues:
                index = self._queues[name]
                for call in index.line:
                    if call.tried and call.agent is None and index.round_over(call):
                        call.tried.clear()
                        restarted.append(call)
        return restarted

    def _select(self, call: CallEntry) -> AgentRecord | None:
        return self._queues[call.queue].select(call, self._rng)

    def _offer(self, call: CallEntry, agent: AgentRecord, at: float,
               actions: list[AcdAction]) -> None:
        index = self._queues[call.queue]
        call.state, call.agent = CallState.RINGING, agent
        agent.call = call
        if index.strategy is Strategy.ROUND_ROBIN:
            index.rr_last = index.position[agent.agent_id]
        assert agent.mode is not None
        actions.append(OfferCall(call.call_id, agent.agent_id, index.rules.ring_timeout,
                                 agent.mode, call.virtual, call.queue))
        self._change(agent, S.RINGING, f"call {call.call_id}", at, actions)

    def _index_ready(self, agent: AgentRecord) -> None:
        for queue in agent.serves:
            self._queues[queue].add_ready(agent)

    def _unindex_ready(self, agent: AgentRecord) -> None:
        for queue in agent.serves:
            self._queues[queue].remove_ready(agent)

    def _rebuild(self, queues: set[str]) -> None:
        for name in queues:
            self._queues[name].rebuild(self._agents.values())

    # ======================================================================= lookups

    def _check_spec(self, spec: AgentSpec) -> None:
        if not isinstance(spec, AgentSpec):
            raise ValueError(f"expected an AgentSpec, not {spec!r}")
        unknown = [q for q in spec.queues if q not in self._queues]
        if unknown:
            raise ValueError(f"agent {spec.agent_id!r}: unknown queue {unknown[0]!r}")

    def _tiers_naming(self, agent_id: str) -> set[str]:
        return {name for name, index in self._queues.items()
                if any(agent_id in tier.agents for tier in index.rules.tiers)}

    def _agent(self, agent_id: str) -> AgentRecord:
        try:
            return self._agents[agent_id]
        except (KeyError, TypeError):
            raise UnknownAgent(f"unknown agent {agent_id!r}") from None

    def _call(self, call_id: str) -> CallEntry:
        try:
            return self._calls[call_id]
        except (KeyError, TypeError):
            raise ValueError(f"unknown call {call_id!r}") from None

    def _queue(self, queue: str) -> QueueIndex:
        try:
            return self._queues[queue]
        except (KeyError, TypeError):
            raise ValueError(f"unknown queue {queue!r}") from None

    def _waiting_call(self, call_id: str) -> CallEntry:
        call = self._call(call_id)
        if not call.in_line:
            raise ValueError(f"call {call_id!r} is {call.state.value}, not waiting in line")
        return call

    def _ringing(self, call_id: str, agent_id: str) -> tuple[CallEntry, AgentRecord]:
        call, agent = self._call(call_id), self._agent(agent_id)
        if call.state is not CallState.RINGING or call.agent is not agent:
            raise ValueError(f"call {call_id!r} is not ringing agent {agent_id!r}")
        return call, agent


def _call_id(agent: AgentRecord) -> str | None:
    return agent.call.call_id if agent.call is not None else None


def _new_record(spec: AgentSpec, now: float) -> AgentRecord:
    return AgentRecord(spec.agent_id, spec, since=now, idle_since=now, skills=dict(spec.skills))


def _check_queues(queues: Mapping[str, QueueRules]) -> None:
    for name, rules in queues.items():
        if not isinstance(rules, QueueRules):
            raise ValueError(f"queue {name!r}: expected QueueRules, not {rules!r}")
        if rules.name != name:
            raise ValueError(f"queue {name!r}: its rules are named {rules.name!r}")
        if rules.overflow_to is not None and rules.overflow_to not in queues:
            raise ValueError(f"queue {name!r}: overflow_to names unknown queue "
                             f"{rules.overflow_to!r}")
    for name in queues:
        chain = [name]
        target = queues[name].overflow_to
        while target is not None:
            if target in chain:
                loop = " -> ".join([*chain[chain.index(target):], target])
                raise ValueError(f"queue {name!r}: overflow loops ({loop})")
            chain.append(target)
            target = queues[target].overflow_to
