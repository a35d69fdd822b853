"""Mirrors agents' states into Asterisk's own queues as members' pause flags (see
fallback_members.py), so the fallback ``Queue()`` rings who is at work if the service
goes down."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from callcenter.core.acd import AgentStateChanged
from callcenter.features.queues.fallback_members import members_from_status, pause_actions

log = logging.getLogger(__name__)

Send = Callable[[dict[str, str]], Awaitable[Any]]


class QueueMirror:
    def __init__(self, send: Send, *, queues: Mapping[str, Mapping[str, int]]) -> None:
        self._send = send
        self._queues = {agent: tuple(tiers) for agent, tiers in queues.items()}
        self._states: dict[str, str] = {}
        self._flags: dict[str, dict[str, bool]] = {}  # agent -> queue -> paused, as Asterisk has
        self._lock = asyncio.Lock()  # one change's actions are sent before the next one's
        self._tasks: set[asyncio.Task[None]] = set()

    def set_queues(self, queues: Mapping[str, Mapping[str, int]]) -> None:
        """Agents' memberships changed (the API): the next reconcile mirrors the new ones."""
        self._queues = {agent: tuple(tiers) for agent, tiers in queues.items()}

    def changed(self, change: AgentStateChanged) -> None:
        """An ACD listener: bring this agent's pause flags in line, in the background."""
        self._states[change.agent_id] = change.state.value
        task = asyncio.create_task(self._sync(change.agent_id), name="queue-mirror")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reconcile(self, status_events: list[Mapping[str, str]]) -> None:
        """After an AMI connect: the flags Asterisk holds now, made right for every agent."""
        self._flags = members_from_status(status_events)
        for agent_id in self._queues:
            await self._sync(agent_id)

    async def _sync(self, agent_id: str) -> None:
        async with self._lock:
            flags = self._flags.get(agent_id, {})
            state = self._states.get(agent_id, "logged_out")
            for action in pause_actions(agent_id, state, self._queues.get(agent_id, ()), flags):
                try:
                    await self._send(action)
                except Exception as exc:  # AMI down: the reconcile after reconnecting fixes it
                    log.info("fallback queues: %s of %s failed: %s", action["Action"],
                             agent_id, exc)
                    return
                flags[action["Queue"]] = action["Paused"] == "true"

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
