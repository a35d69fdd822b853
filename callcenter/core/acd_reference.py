"""The routing rules written as plainly as possible: every decision scans every waiting call
and every agent. Same engine, same state machine; only the choice of who gets which call is
computed from scratch, with no per-queue ready lists and no "only what the event touched".

It is the oracle the property tests compare ``Acd`` against (same events, same actions) and
the benchmark's baseline (bench/routing.py). Not for production: it is slow on purpose.
"""

from __future__ import annotations

from collections.abc import Iterable

from callcenter.core.acd import Acd
from callcenter.core.acd_actions import AcdAction, AgentState
from callcenter.core.acd_config import Strategy
from callcenter.core.acd_routing import AgentRecord, CallEntry, has_skills, skill_score


class ScanAcd(Acd):
    _keep_ready_index = False

    def _dispatch(self, at: float, actions: list[AcdAction],
                  calls: Iterable[CallEntry] = ()) -> None:
        """Every waiting call of every queue, in line order, gets the agent its strategy picks
        among all the agents."""
        self._new_rounds()
        self._fresh = []
        waiting = sorted((call for queue in self._queues.values() for call in queue.line
                          if call.agent is None), key=lambda call: call.key)
        for call in waiting:
            chosen = self._select(call)
            if chosen is not None:
                self._offer(call, chosen, at, actions)

    def _select(self, call: CallEntry) -> AgentRecord | None:
        queue = self._queues[call.queue]
        eligible = [
            agent for agent in self._agents.values()
            if agent.state is AgentState.READY and agent.reachable
            and call.queue in agent.serves and agent.serves[call.queue] <= call.open_tier
            and agent.agent_id not in call.tried and has_skills(agent, call.needed)
            and (call.for_agent is None or call.for_agent == agent.agent_id)
        ]
        if not eligible:
            return None
        match queue.strategy:
            case Strategy.LONGEST_IDLE:
                return min(eligible, key=lambda a: (a.idle_since, a.agent_id))
            case Strategy.SKILLS:
                return min(eligible,
                           key=lambda a: (-skill_score(a, call), a.idle_since, a.agent_id))
            case Strategy.FEWEST_CALLS:
                return min(eligible, key=lambda a: (a.answered_from.get(call.queue, 0),
                                                    a.idle_since, a.agent_id))
            case Strategy.LEAST_TALK_TIME:
                return min(eligible, key=lambda a: (a.talk_time, a.idle_since, a.agent_id))
            case Strategy.ROUND_ROBIN:
                size, start = len(queue.position), queue.rr_last + 1
                return min(eligible, key=lambda a: (queue.position[a.agent_id] - start) % size)
            case Strategy.RANDOM:
                eligible.sort(key=lambda a: queue.position[a.agent_id])
                return eligible[self._rng.randrange(len(eligible))]
        raise AssertionError(queue.strategy)
