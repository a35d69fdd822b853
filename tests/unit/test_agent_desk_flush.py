"""The agent desk's state log writes: a flush waits for the batch the background flusher is
writing, and stopping mid-write loses nothing (the real directory behind a gate)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from callcenter.features.agents.desk import AgentDesk
from callcenter.features.agents.store import AgentDirectory, StateChange
from tests.support.agent_floor import PAUSE_REASONS, Floor


class GatedDirectory:
    """The floor's directory, whose writes wait for ``gate``."""

    def __init__(self, directory: AgentDirectory) -> None:
        self.directory = directory
        self.gate = asyncio.Event()
        self.writing = asyncio.Event()

    async def record_state_changes(self, changes: Sequence[StateChange]) -> None:
        self.writing.set()
        await self.gate.wait()
        await self.directory.record_state_changes(changes)


def gated_desk(floor: Floor) -> tuple[AgentDesk, GatedDirectory]:
    gated = GatedDirectory(floor.directory)
    desk = AgentDesk(floor.driver, gated, pause_reasons=PAUSE_REASONS)  # type: ignore[arg-type]
    return desk, gated


async def logged(floor: Floor) -> list[tuple[str, str | None]]:
    return [(c.state, c.reason) for c in await floor.directory.state_history("alice")]


async def test_a_flush_waits_for_the_batch_being_written(floor: Floor) -> None:
    desk, gated = gated_desk(floor)
    desk.start()
    desk.request("alice", "login")
    await asyncio.wait_for(gated.writing.wait(), 5)  # the flusher took the batch
    flushed = asyncio.create_task(desk.flush())
    await asyncio.sleep(0.05)
    assert not flushed.done(), "flush returned while the change was still being written"
    gated.gate.set()
    await asyncio.wait_for(flushed, 5)
    assert await logged(floor) == [("ready", "login")]
    await desk.stop()


async def test_stopping_during_a_write_keeps_the_changes_and_writes_them(floor: Floor) -> None:
    desk, gated = gated_desk(floor)
    desk.start()
    desk.request("alice", "login")
    await asyncio.wait_for(gated.writing.wait(), 5)
    stopping = asyncio.create_task(desk.stop())  # cancels the flusher mid-write
    await asyncio.sleep(0.05)
    gated.gate.set()
    await asyncio.wait_for(stopping, 5)
    assert await logged(floor) == [("ready", "login")]
