"""A test's own AMI connection to its Asterisk, to await what Asterisk reports instead of
sleeping for as long as it usually takes.

    async with ami_events(settings) as events:  # before the call starts
        call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "1"),)))
        ...
        await music_on_hold(events, record.channel)  # the caller hears hold music now
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from callcenter.asterisk.ami import AmiClient
from callcenter.asterisk.events import AmiEvent, MusicOnHoldStart
from callcenter.config import Settings


@asynccontextmanager
async def ami_events(settings: Settings) -> AsyncIterator[list[AmiEvent]]:
    """The events Asterisk sends while the block runs, in order (the list grows)."""
    a = settings.asterisk
    events: list[AmiEvent] = []
    watcher = AmiClient(a.host, a.ami_port, a.ami_username, a.ami_secret,
                        on_event=events.append)
    await watcher.start()
    try:
        await watcher.wait_ready(30)
        yield events
    finally:
        await watcher.stop()


async def music_on_hold(events: list[AmiEvent], channel: str,
                        timeout: float = 30) -> MusicOnHoldStart:
    """Wait until Asterisk starts music on hold for ``channel`` (e.g. a record's channel)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        started = [e for e in events if isinstance(e, MusicOnHoldStart) and e.channel == channel]
        if started:
            return started[0]
        assert asyncio.get_running_loop().time() < deadline, (
            f"no music on hold for {channel} within {timeout} s")
        await asyncio.sleep(0.1)
