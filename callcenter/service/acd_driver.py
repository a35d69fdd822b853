"""Runs the pure ACD for live calls: each waiting call gets an inbox of ACD decisions."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from callcenter.core.acd import Acd, AcdAction, NoAgentAvailable, QueueTimedOut
from callcenter.core.clock import Clock

log = logging.getLogger(__name__)


# Device states in which an agent's phone cannot take a call: no registered contact, or none.
UNREACHABLE_DEVICE_STATES = frozenset({"UNAVAILABLE", "INVALID"})


class AcdDriver:
    def __init__(self, acd: Acd, clock: Clock, *, logged_in: dict[str, bool],
                 tick_seconds: float = 1.0) -> None:
        self.acd = acd
        self._clock = clock
        # An agent takes calls when logged in (settings) and their phone is reachable. Until
        # Asterisk's device states arrive (at each AMI connect) no phone is known reachable,
        # so the ACD must start with every agent logged out.
        self._logged_in = dict(logged_in)
        self._reachable = dict.fromkeys(logged_in, False)
        self._inboxes: dict[str, asyncio.Queue[AcdAction]] = {}
        self._answered: set[str] = set()
        self._held: set[str] = set()  # calls the ACD still holds (waiting, ringing or talking)
        self._tick_seconds = tick_seconds
        self._task: asyncio.Task[None] | None = None

    def enqueue(self, call_id: str, queue: str) -> asyncio.Queue[AcdAction]:
        inbox: asyncio.Queue[AcdAction] = asyncio.Queue()
        self._inboxes[call_id] = inbox
        self._held.add(call_id)
        self._dispatch(self.acd.enqueue(call_id, queue, self._clock.now()))
        return inbox

    def answered(self, call_id: str, agent_id: str) -> None:
        """The offered agent picked up (seen on AMI, or when Dial returned). Idempotent."""
        if call_id in self._answered or call_id not in self._held:
            return
        self._answered.add(call_id)
        self._dispatch(self.acd.offer_answered(call_id, agent_id, self._clock.now()))

    def failed(self, call_id: str, agent_id: str, reason: str) -> None:
        if call_id in self._held:
            self._dispatch(self.acd.offer_failed(call_id, agent_id, self._clock.now(), reason))

    def left(self, call_id: str) -> None:
        """The caller is gone or the talk is over: free whoever had the call."""
        self._inboxes.pop(call_id, None)
        self._answered.discard(call_id)
        if call_id not in self._held:
            return
        self._held.discard(call_id)
        self._dispatch(self.acd.caller_left(call_id, self._clock.now()))

    def device_state(self, agent_id: str, state: str) -> None:
        """Asterisk says the agent's phone changed state (only reachability matters here)."""
        if agent_id not in self._reachable:
            return
        reachable = state not in UNREACHABLE_DEVICE_STATES
        if reachable == self._reachable[agent_id]:
            return
        self._reachable[agent_id] = reachable
        log.info("agent %s: phone %s (%s)", agent_id,
                 "reachable" if reachable else "unreachable", state)
        available = reachable and self._logged_in[agent_id]
        self._dispatch(self.acd.set_logged_in(agent_id, available, self._clock.now()))

    def reachable(self, agent_id: str) -> bool:
        return self._reachable.get(agent_id, False)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._ticks(), name="acd-ticks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _ticks(self) -> None:
        while True:
            await asyncio.sleep(self._tick_seconds)
            try:
                self._dispatch(self.acd.tick(self._clock.now()))
            except Exception:
                log.exception("ACD tick failed")

    def _dispatch(self, actions: Iterable[AcdAction]) -> None:
        for action in actions:
            if isinstance(action, NoAgentAvailable | QueueTimedOut):
                self._held.discard(action.call_id)  # the ACD let go of this call
            inbox = self._inboxes.get(action.call_id)
            if inbox is None:
                log.error("ACD decided %r for a call that has no handler any more", action)
                continue
            inbox.put_nowait(action)
