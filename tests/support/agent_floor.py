"""A call-center floor for tests of the agent API: a real directory, a real ACD behind its
driver, the agent desk, a registration book, and an ``apply_agents`` that records its runs
(or fails on demand) instead of touching Asterisk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.config import AcdSettings, QueueSettings, Settings
from callcenter.core.callback_offers import NotOfferedTally
from callcenter.core.clock import VirtualClock
from callcenter.core.registrations import RegistrationBook
from callcenter.features.agents.admin import AgentAdmin
from callcenter.features.agents.desk import AgentDesk
from callcenter.features.agents.store import AgentDirectory, NewAgent
from callcenter.features.queues.driver import AcdDriver
from callcenter.features.queues.setup import build_acd

FLOOR_T0 = 1_795_000_000.0  # 2026-11-18T11:06:40Z: the clock of the `floor` fixture

QUEUES = (
    QueueSettings("sales", tier_delays=(30,), wrap_up=10, max_length=5, overflow_to="support"),
    QueueSettings("support", strategy="round_robin", announce_every=30),
)
PAUSE_REASONS = ("break", "lunch")
SETTINGS = Settings(acd=AcdSettings(pause_reasons=PAUSE_REASONS), queues=QUEUES)
TEAM = (
    NewAgent(id="alice", name="Alice Moreau", queues={"sales": 0}, skills={"french": 9}),
    NewAgent(id="bob", name="Bob Stone", queues={"support": 0, "sales": 1}),
    NewAgent(id="carol", name="Carol Diaz", queues={"support": 0}, active=False),
)


class ApplyFailed(RuntimeError):
    pass


@dataclass
class Outside:
    """What the floor tells the world: live events, and runs of apply_agents."""

    clock: VirtualClock
    applied: list[float] = field(default_factory=list)  # when apply_agents ran
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail_apply: bool = False

    async def apply_agents(self) -> None:
        if self.fail_apply:
            raise ApplyFailed("AMI is not connected")
        self.applied.append(self.clock.now())

    def publish(self, kind: str, data: Any) -> None:
        self.events.append((kind, dict(data)))


@dataclass
class Floor:
    clock: VirtualClock
    directory: AgentDirectory
    driver: AcdDriver
    desk: AgentDesk
    registrations: RegistrationBook
    admin: AgentAdmin
    outside: Outside
    not_offered: NotOfferedTally = field(default_factory=NotOfferedTally)  # no callback offer


async def build_floor(sessions: async_sessionmaker[AsyncSession], clock: VirtualClock,
                      team: Sequence[NewAgent] = TEAM) -> Floor:
    directory = AgentDirectory(sessions, clock, queues=[q.name for q in QUEUES])
    for agent in team:
        await directory.create(agent)
    outside = Outside(clock)
    driver = AcdDriver(build_acd(SETTINGS, await directory.list(), clock.now()), clock)
    desk = AgentDesk(driver, directory, pause_reasons=PAUSE_REASONS, publish=outside.publish)
    registrations = RegistrationBook()
    not_offered = NotOfferedTally()
    admin = AgentAdmin(acd=driver, desk=desk, directory=directory, clock=clock,
                       registrations=registrations, queues=QUEUES,
                       apply_agents=outside.apply_agents, publish=outside.publish,
                       callbacks_not_offered=lambda queue: not_offered.figures(queue,
                                                                               clock.now()))
    return Floor(clock, directory, driver, desk, registrations, admin, outside, not_offered)
