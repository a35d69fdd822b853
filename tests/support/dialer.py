"""A campaign dialer over a real store and a real ACD, with AMI played by the test: every
Originate is kept in ``sent`` and answered as the test says (busy by default), so the
dialer's choices (whom, when, how many) are tested without Asterisk."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.asterisk.events import Hangup
from callcenter.core.acd import Acd, AgentSpec, QueueRules
from callcenter.core.call_lists import ColumnMapping
from callcenter.core.calls import LedgerResult
from callcenter.core.campaigns import Campaign, CampaignMode
from callcenter.core.clock import VirtualClock
from callcenter.core.records import CallRecord
from callcenter.features.campaigns.attempts import AttemptStore
from callcenter.features.campaigns.dialer import UTC_ZONE, CampaignDialer
from callcenter.features.campaigns.list_files import ListFormat, read_call_list
from callcenter.features.campaigns.lists import CallLists
from callcenter.features.campaigns.store import CampaignRepository
from callcenter.features.compliance.store import ComplianceStore
from callcenter.features.queues.driver import AcdDriver

OUR_NUMBER = "+12025550199"
BUSY_CAUSE = 17


@dataclass
class DialerFloor:
    clock: VirtualClock
    campaigns: CampaignRepository
    attempts: AttemptStore
    compliance: ComplianceStore
    acd: AcdDriver
    dialer: CampaignDialer
    sent: list[dict[str, Any]] = field(default_factory=list)  # the Originates, in order
    records: list[CallRecord] = field(default_factory=list)  # the call records written

    def dialled(self) -> list[str]:
        """The numbers the dialer placed calls to, in order."""
        return [action["Channel"].removeprefix("PJSIP/").split("@")[0] for action in self.sent]


async def dialer_floor(sessions: async_sessionmaker[AsyncSession], now: float,
                       numbers: Sequence[str], *, agents: Sequence[str] = ("agent1", "agent2"),
                       ready: Sequence[str] = ("agent1",),
                       answer: Callable[[dict[str, Any]], Awaitable[Any]] | None = None,
                       zone: ZoneInfo = UTC_ZONE, **settings: Any) -> DialerFloor:
    """Campaign ``renewals`` (progressive unless ``settings`` say otherwise; every hour of
    every day) with a list of ``numbers``; ``agents`` serve its queue, ``ready`` are logged
    in and reachable. Each Originate ends busy unless ``answer`` answers it."""
    clock = VirtualClock(now)
    campaigns = CampaignRepository(sessions, clock)
    chosen = {"name": "renewals", "mode": CampaignMode.PROGRESSIVE, "queue": "sales",
              "caller_id": OUR_NUMBER, "default_region": "US",
              "hours": {"mon-sun": ["00:00-23:59"]}, "skip_holidays": False, **settings}
    await campaigns.add(Campaign(**chosen))
    text = "phone,name\n" + "".join(f"{n},C{i}\n" for i, n in enumerate(numbers))
    upload = read_call_list(io.BytesIO(text.encode()), ListFormat.CSV,
                            ColumnMapping(phone="phone", name="name"), "US")
    await CallLists(sessions, clock).import_list("renewals", "first", upload.outcomes,
                                                 upload.summary)
    acd = AcdDriver(Acd({"sales": QueueRules("sales")},
                        [AgentSpec(agent, ("sales",)) for agent in agents], now), clock)
    for agent in ready:
        acd.login(agent, phone=agent)
        acd.set_reachable(agent, True)
    attempts = AttemptStore(sessions)
    compliance = ComplianceStore(sessions, clock)
    sent: list[dict[str, Any]] = []

    async def busy(action: dict[str, Any]) -> Any:
        dialer.channel_hung_up(Hangup(uniqueid=action["ChannelId"], linkedid="",
                                      channel="PJSIP/trunk", cause=BUSY_CAUSE,
                                      cause_text="User busy"))
        return [{"Response": "Success"}, {"Event": "OriginateResponse",
                                          "Response": "Failure", "Reason": "0"}]

    async def send(action: dict[str, Any], timeout: float | None = None) -> Any:
        sent.append(action)
        return await (answer or busy)(action)

    records: list[CallRecord] = []
    writer = KeptRecords(records)
    dialer = CampaignDialer(
        clock=clock, acd=acd, queues=None, campaigns=campaigns,  # type: ignore[arg-type]
        attempts=attempts, compliance=compliance, send=send,
        ledger=None, writer=writer, enabled=False, zone=zone)  # type: ignore[arg-type]
    return DialerFloor(clock, campaigns, attempts, compliance, acd, dialer, sent, records)


@dataclass
class KeptRecords:
    """The record writer's face, keeping what it is given."""

    records: list[CallRecord]

    def submit(self, records: Iterable[CallRecord]) -> None:
        self.records.extend(records)

    def apply(self, result: LedgerResult) -> None:
        self.submit(result.save)
