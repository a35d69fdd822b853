"""Runs the pure ACD live: the clock's ticks, each call's inbox of decisions, and agents'
state changes to whoever listens (the database log, the live event stream, app_queue).

Every method takes what the adapters saw and hands the ACD's actions on: actions about a
call go to that call's inbox (its handler waits on it); actions about an agent go to the
listeners. Requests that are not allowed (pause while logged out, ...) raise the core's
``AgentStateError`` for the caller (feature code or HTTP) to explain.

This is the whole face of the ACD to the services: they ask it (typed queries returning the
core's views, ``AgentView`` and ``QueueView``, at the clock's now) and tell it (commands),
and never touch the core ``Acd`` itself. ``acd`` stays reachable for tests of the core.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from callcenter.core.acd import (
    Acd,
    AcdAction,
    AgentRequestDeferred,
    AgentSpec,
    AgentState,
    AgentStateChanged,
    AgentView,
    CallbackUnanswered,
    ConnectMode,
    NoAgentAvailable,
    OfferFailure,
    QueueFull,
    QueueTimedOut,
    QueueView,
)
from callcenter.core.clock import Clock

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class KeyPressed:
    """The caller pressed a key while waiting (seen on AMI): for the call's handler."""

    call_id: str
    digit: str


CallMessage = AcdAction | KeyPressed
AgentListener = Callable[[AgentStateChanged], None]


class AcdDriver:
    def __init__(self, acd: Acd, clock: Clock, *, tick_seconds: float = 1.0) -> None:
        self.acd = acd
        self._clock = clock
        self._inboxes: dict[str, asyncio.Queue[CallMessage]] = {}
        self._answered: set[str] = set()
        self._held: set[str] = set()  # calls the ACD still holds (waiting, ringing, talking)
        self._reachable: dict[str, bool] = {}
        self._listeners: list[AgentListener] = []
        self._tick_seconds = tick_seconds
        self._task: asyncio.Task[None] | None = None

    def on_agent_change(self, listener: AgentListener) -> None:
        self._listeners.append(listener)

    # ------------------------------------------------------------------ calls

    def enqueue(self, call_id: str, queue: str, *, priority: int = 0,
                skills: Mapping[str, int] | None = None, virtual: bool = False,
                waiting_since: float | None = None, for_agent: str | None = None,
                ) -> asyncio.Queue[CallMessage]:
        inbox: asyncio.Queue[CallMessage] = asyncio.Queue()
        self._inboxes[call_id] = inbox
        self._held.add(call_id)
        self._apply(self.acd.enqueue(call_id, queue, self._clock.now(), priority=priority,
                                     skills=dict(skills or {}), virtual=virtual,
                                     waiting_since=waiting_since, for_agent=for_agent))
        return inbox

    def answered(self, call_id: str, agent_id: str) -> None:
        """The offered agent picked up (seen on AMI, or when Dial returned). Idempotent."""
        if call_id in self._answered or call_id not in self._held:
            return
        self._answered.add(call_id)
        self._apply(self.acd.offer_answered(call_id, agent_id, self._clock.now()))

    def failed(self, call_id: str, agent_id: str, failure: OfferFailure) -> None:
        if call_id in self._held and call_id not in self._answered:
            self._apply(self.acd.offer_failed(call_id, agent_id, self._clock.now(), failure))

    def left(self, call_id: str) -> None:
        """The caller is gone, or the talk is over: whoever had the call is free (wrap-up)."""
        self._inboxes.pop(call_id, None)
        talked = call_id in self._answered
        self._answered.discard(call_id)
        if call_id not in self._held:
            return
        self._held.discard(call_id)
        now = self._clock.now()
        self._apply(self.acd.call_ended(call_id, now) if talked
                    else self.acd.caller_left(call_id, now))

    def move(self, call_id: str, queue: str) -> None:
        self._apply(self.acd.move(call_id, queue, self._clock.now()))

    def key_pressed(self, call_id: str, digit: str) -> None:
        inbox = self._inboxes.get(call_id)
        if inbox is not None:
            inbox.put_nowait(KeyPressed(call_id, digit))

    def who_would_take(self, queue: str, *, skills: Mapping[str, int] | None = None,
                       skills_of: str | None = None, exclude: Iterable[str] = (),
                       ) -> str | None:
        """The agent ``queue``'s routing would offer a new call to now (``Acd.who_would_take``),
        after applying what fell due (a wrap-up that just ended), as the next tick would."""
        self.tick()
        return self.acd.who_would_take(queue, self._clock.now(), skills=skills,
                                       skills_of=skills_of, exclude=exclude)

    def holds(self, call_id: str) -> bool:
        return call_id in self._held

    # ------------------------------------------------------------------ agents

    def login(self, agent_id: str, *, phone: str, mode: ConnectMode = ConnectMode.RING,
              ) -> list[AcdAction]:
        return self._apply(self.acd.login(agent_id, self._clock.now(), phone=phone, mode=mode))

    def logout(self, agent_id: str) -> list[AcdAction]:
        return self._apply(self.acd.logout(agent_id, self._clock.now()))

    def pause(self, agent_id: str, reason: str) -> list[AcdAction]:
        return self._apply(self.acd.pause(agent_id, reason, self._clock.now()))

    def ready(self, agent_id: str) -> list[AcdAction]:
        return self._apply(self.acd.ready(agent_id, self._clock.now()))

    def switch_mode(self, agent_id: str, mode: ConnectMode) -> list[AcdAction]:
        return self._apply(self.acd.switch_mode(agent_id, mode, self._clock.now()))

    def busy_elsewhere(self, agent_id: str, call_id: str, *, queue: str | None = None,
                       ) -> list[AcdAction]:
        """The agent is on a call the ACD did not route (seen in a channel snapshot)."""
        return self._apply(self.acd.busy_elsewhere(agent_id, call_id, self._clock.now(),
                                                   queue=queue))

    def elsewhere_ended(self, agent_id: str) -> list[AcdAction]:
        return self._apply(self.acd.elsewhere_ended(agent_id, self._clock.now()))

    def add_agent(self, spec: AgentSpec) -> list[AcdAction]:
        """A new agent (from the API): routing knows them from now on (logged out)."""
        return self._apply(self.acd.add_agent(spec, self._clock.now()))

    def update_agent(self, spec: AgentSpec) -> list[AcdAction]:
        """Changed queues or skills; a waiting call may now be offered to the agent."""
        return self._apply(self.acd.update_agent(spec, self._clock.now()))

    def remove_agent(self, agent_id: str) -> list[AcdAction]:
        return self._apply(self.acd.remove_agent(agent_id, self._clock.now()))

    def set_reachable(self, agent_id: str, reachable: bool) -> None:
        """Asterisk says the agent's phone can (registered, static contact) or cannot take
        calls. Unknown agents (the demo trunk, a removed agent) are ignored."""
        if self._reachable.get(agent_id) == reachable:
            return
        try:
            actions = self.acd.set_reachable(agent_id, reachable, self._clock.now())
        except ValueError:
            return
        self._reachable[agent_id] = reachable
        self._apply(actions)

    def reachable(self, agent_id: str) -> bool:
        return self._reachable.get(agent_id, False)

    # ------------------------------------------------------------------ queries

    @property
    def pause_reasons(self) -> tuple[str, ...]:
        return self.acd.pause_reasons

    def agent_ids(self) -> list[str]:
        return self.acd.agent_ids()

    def agent(self, agent_id: str) -> AgentView:
        """The agent as the ACD sees them now; ``UnknownAgent`` if routing does not know them."""
        return self.acd.agent(agent_id)

    def agent_state(self, agent_id: str) -> AgentState:
        return self.acd.agent_state(agent_id)

    def agents(self) -> list[AgentView]:
        """Every agent routing knows, in the order they became known."""
        return [self.acd.agent(agent_id) for agent_id in self.acd.agent_ids()]

    def talking_on(self, call_id: str) -> list[AgentView]:
        """The agents on call ``call_id`` now (routed to them or held for it elsewhere)."""
        return [view for view in self.agents()
                if view.call_id == call_id and view.state is AgentState.ON_CALL]

    def queue_members(self, queue: str) -> list[AgentView]:
        """The agents who serve ``queue`` at any tier, tier 0 first; ValueError for a queue
        the ACD does not know."""
        return [self.acd.agent(agent_id) for agent_id in self.acd.members(queue)]

    def queue_stats(self, queue: str) -> QueueView:
        return self.acd.queue_stats(queue, self._clock.now())

    def snapshot(self) -> dict[str, Any]:
        """The core's plain data (JSON-ready) of every queue's line and every agent, now."""
        return self.acd.snapshot(self._clock.now())

    # ------------------------------------------------------------------ time

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._ticks(), name="acd-ticks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def tick(self) -> None:
        self._apply(self.acd.tick(self._clock.now()))

    async def _ticks(self) -> None:
        while True:
            await asyncio.sleep(self._tick_seconds)
            try:
                self.tick()
            except Exception:
                log.exception("ACD tick failed")

    # ------------------------------------------------------------------ actions

    def _apply(self, actions: Iterable[AcdAction]) -> list[AcdAction]:
        applied = list(actions)
        for action in applied:
            match action:
                case AgentStateChanged():
                    for listener in self._listeners:
                        try:
                            listener(action)
                        except Exception:
                            log.exception("agent state listener failed on %r", action)
                case AgentRequestDeferred():
                    continue  # the requester reads it from the returned list
                case _:
                    self._to_call(action)
        return applied

    def _to_call(self, action: AcdAction) -> None:
        call_id: str = action.call_id  # type: ignore[union-attr]
        if isinstance(action, NoAgentAvailable | QueueTimedOut | QueueFull
                      | CallbackUnanswered):
            self._held.discard(call_id)  # the ACD let go of this call
        inbox = self._inboxes.get(call_id)
        if inbox is None:
            log.error("ACD decided %r for a call that has no handler any more", action)
            return
        inbox.put_nowait(action)
