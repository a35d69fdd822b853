"""An Originate whose AMI answer was lost is settled from the channel snapshot, not re-sent.

The connection drops after the Originate went out: Asterisk may be ringing the customer.
Dialling again at once would ring them twice; the dialer looks for the Originate's named
channels in the snapshot of the reconnected AMI first. Virtual time: nothing sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from test_callback_dialer import (
    CUSTOMER,
    RULES,
    SETTINGS,
    Ami,
    Originate,
    Records,
    Requests,
    Timers,
    World,
    settle,
    until,
)

from callcenter.asterisk.ami import AmiConnectionLost, AmiNotConnected
from callcenter.asterisk.events import CoreShowChannel
from callcenter.asterisk.originate_fate import OriginateFate, channel_ids, fate_in
from callcenter.core.acd import Acd, AgentSpec, AgentState, ConnectMode
from callcenter.core.calls import CallLedger
from callcenter.core.clock import VirtualClock
from callcenter.core.records import CallbackStatus
from callcenter.features.callbacks.dialer import CallbackDialer
from callcenter.features.queues.driver import AcdDriver


class LosingAmi(Ami):
    """Sends like Asterisk, but the next ``lose`` Originates lose their answer: the
    connection drops after the action went out."""

    def __init__(self) -> None:
        super().__init__()
        self.lose = 0

    async def send(self, action: Mapping[str, Any], *, timeout: float | None = None) -> Any:
        if self.lose:
            self.lose -= 1
            originate = Originate(action)
            self.sent.append(originate)
            self._new.put_nowait(originate)
            raise AmiConnectionLost("AMI connection lost before Originate answered")
        return await super().send(action, timeout=timeout)


class Snapshot:
    """CoreShowChannels of the reconnected AMI: the channels Asterisk has, or not connected."""

    def __init__(self) -> None:
        self.uniqueids: list[str] | None = None  # None: AMI is not back yet
        self.asked = 0

    async def __call__(self) -> list[CoreShowChannel]:
        self.asked += 1
        if self.uniqueids is None:
            raise AmiNotConnected("not connected to AMI")
        return [channel(uniqueid) for uniqueid in self.uniqueids]


def channel(uniqueid: str) -> CoreShowChannel:
    return CoreShowChannel(uniqueid=uniqueid, linkedid=uniqueid, channel=f"Local/x-{uniqueid}",
                           context="callcenter-callback", exten="customer", state="Ring",
                           application="AppDial", application_data="", duration_seconds=3,
                           bridge_id="")


@pytest.fixture
async def world() -> Iterator[tuple[World, Snapshot]]:
    clock = VirtualClock()
    timers = Timers(clock)
    acd = AcdDriver(Acd(RULES, [AgentSpec("agent1", ("support", "operator"))], clock.now()),
                    clock)
    requests, ami, records, ledger = Requests(), LosingAmi(), Records(), CallLedger()
    snapshot = Snapshot()
    dialer = CallbackDialer(settings=SETTINGS, clock=clock, acd=acd, store=requests,
                            send=ami.send, ledger=ledger, writer=records,  # type: ignore[arg-type]
                            sleep=timers.sleep, max_attempts=2, retry_after=300.0,
                            rescan_every=60.0, agi_start_timeout=10.0, channels=snapshot)
    the_world = World(clock, timers, acd, requests, ami, records, ledger, dialer)
    acd.on_agent_change(the_world.changes.append)
    yield the_world, snapshot  # type: ignore[misc]
    await dialer.stop()
    for task in the_world.steps:
        task.cancel()
    await asyncio.gather(*the_world.steps, return_exceptions=True)


def test_every_originate_names_its_channels_after_its_attempt() -> None:
    first, second = channel_ids("cb0123456789abcdef")
    assert (first, second) == ("cb0123456789abcdef-1", "cb0123456789abcdef-2")
    assert fate_in([channel(second)], "cb0123456789abcdef") is OriginateFate.LIVE
    assert fate_in([channel("1700000000.5")], "cb0123456789abcdef") is OriginateFate.ABSENT


async def test_a_customer_ringing_when_ami_dropped_is_not_dialled_again_and_can_answer(world):
    the, snapshot = world
    request = await the.request()
    the.login("agent1", ConnectMode.NAILED)
    the.ami.lose = 1
    await the.dialer.start()
    dial = await the.ami.next()
    assert (dial.action["ChannelId"], dial.action["OtherChannelId"]) == channel_ids(dial.token)

    await the.timers.advance(3)  # AMI is still away: no snapshot, no new Originate
    assert the.ami.nothing_sent()
    snapshot.uniqueids = [dial.action["ChannelId"], "1700000000.9"]  # back: it rings
    await the.timers.advance(5)
    assert the.ami.nothing_sent() and snapshot.asked >= 2

    customer = the.step("customer", dial.token, channel="Local/+55@out-0003;1")
    await customer.until_blocked()  # the customer answered the one call: joined the agent
    assert the.state("agent1") is AgentState.ON_CALL
    assert the.requests.status(request.id) is CallbackStatus.DONE
    await the.timers.advance(600)
    assert len(the.ami.sent) == 1


async def test_a_lost_ring_that_ends_unanswered_counts_as_not_answered(world):
    the, snapshot = world
    request = await the.request()
    the.login("agent1", ConnectMode.NAILED)
    the.ami.lose = 1
    await the.dialer.start()
    dial = await the.ami.next()
    snapshot.uniqueids = [dial.action["OtherChannelId"]]
    await the.timers.advance(10)
    snapshot.uniqueids = []  # it rang out
    await the.timers.advance(2)
    await until(lambda: the.reason("agent1") == "callback not answered", "agent1 free")
    assert the.requests.status(request.id) is CallbackStatus.PENDING
    # Back only after retry_after, like any unanswered call: no second ring right away.
    await the.timers.advance(290)
    assert the.ami.nothing_sent()
    await the.timers.advance(20)
    await the.ami.next()


async def test_an_originate_not_in_the_snapshot_is_dialled_again_after_the_pause(world):
    the, snapshot = world
    await the.request()
    the.login("agent1", ConnectMode.NAILED)
    the.ami.lose = 1
    await the.dialer.start()
    await the.ami.next()
    snapshot.uniqueids = []  # AMI is back and Asterisk has no channel of it: never placed
    await the.timers.advance(1)
    await settle()
    assert the.ami.nothing_sent()
    await the.timers.advance(6)  # RETRY_PAUSE_SECONDS
    again = await the.ami.next()
    assert again.action["Channel"] == f"Local/{CUSTOMER}@callcenter-outbound/n"


async def test_an_agent_ringing_when_ami_dropped_answers_the_same_ring(world):
    the, snapshot = world
    await the.request()
    the.login("agent1")
    the.ami.lose = 1
    await the.dialer.start()
    ring = await the.ami.next()
    snapshot.uniqueids = [ring.action["ChannelId"]]
    await the.timers.advance(4)
    agent = the.step("agent", ring.token)
    assert (await agent.until_blocked())[0] == "Dial"  # now the customer is dialled
    assert len(the.ami.sent) == 1


async def test_a_ring_seen_before_ami_went_away_again_is_waited_for_until_its_timeout(world):
    the, snapshot = world
    await the.request()
    the.login("agent1", ConnectMode.NAILED)
    the.ami.lose = 1
    await the.dialer.start()
    dial = await the.ami.next()
    snapshot.uniqueids = [dial.action["ChannelId"]]
    await the.timers.advance(2)
    snapshot.uniqueids = None  # AMI drops again while the customer's phone rings
    await the.timers.advance(10)
    customer = the.step("customer", dial.token, channel="Local/+55@out-0003;1")
    await customer.until_blocked()  # the one call, answered: nobody dialled again
    assert the.state("agent1") is AgentState.ON_CALL
    assert len(the.ami.sent) == 1
