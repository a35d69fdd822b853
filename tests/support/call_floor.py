"""Calls in progress as the service sees them, without Asterisk: for unit tests of what acts
on live calls (supervision, transfers).

    floor = call_floor()                      # agent1 (support), agent2 (sales), agent3 (sales)
    floor.caller_talks_to("call-1", "agent1")  # in the ledger, and ON_CALL in the ACD

The ACD and the ledger are the real ones on a virtual clock; AMI is ``FakeAmi``, which
records each action; ``writer.records`` holds the newest version of each call record.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from callcenter.asterisk.ami import AmiActionError
from callcenter.asterisk.events import DialEnd
from callcenter.config import QueueSettings, Settings
from callcenter.core.acd import Acd, AgentSpec, OfferCall, QueueRules
from callcenter.core.calls import CallLedger, LedgerResult
from callcenter.core.clock import VirtualClock
from callcenter.core.records import CallRecord
from callcenter.features.queues.driver import AcdDriver

T0 = 1_795_000_000.0
QUEUES = ("support", "sales", "operator")
AGENTS: Mapping[str, tuple[str, ...]] = {
    "agent1": ("support",), "agent2": ("sales",), "agent3": ("sales",),
    "sup1": ("operator",),
}


class KeptRecords:
    """Stands for the RecordWriter: keeps the newest version of each record handed over."""

    def __init__(self) -> None:
        self.records: dict[str, CallRecord] = {}

    def apply(self, result: LedgerResult) -> None:
        for record in result.save:
            self.records[record.call_id] = copy.deepcopy(record)


@dataclass
class FakeAmi:
    """Records actions; ``refuse`` answers them with Response: Error, ``error`` raises."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    refuse: str | None = None
    error: Exception | None = None

    async def send(self, action: Mapping[str, Any]) -> object:
        self.sent.append(dict(action))
        if self.error is not None:
            raise self.error
        if self.refuse is not None:
            raise AmiActionError(str(action.get("Action")), self.refuse, [])
        return {"Response": "Success"}


@dataclass
class CallFloor:
    clock: VirtualClock
    settings: Settings
    acd: AcdDriver
    ledger: CallLedger
    writer: KeptRecords
    ami: FakeAmi

    def caller_arrives(self, call_id: str, *, channel: str | None = None) -> None:
        """A caller the IVR is serving (in the ledger, not in a queue)."""
        self.writer.apply(self.ledger.handler_started(
            call_id, channel=channel or f"PJSIP/anonymous-{call_id}", caller_number="5551234",
            caller_name=None, dialed_number="100", now=self.clock.now()))

    def caller_waits(self, call_id: str, queue: str = "support") -> None:
        self.caller_arrives(call_id)
        self.writer.apply(self.ledger.queued(call_id, queue, self.clock.now()))
        self.acd.enqueue(call_id, queue)

    def caller_talks_to(self, call_id: str, agent_id: str, queue: str = "support") -> None:
        """The caller waited in ``queue``, ``agent_id`` was offered the call and answered."""
        self.caller_arrives(call_id)
        self.writer.apply(self.ledger.queued(call_id, queue, self.clock.now()))
        inbox = self.acd.enqueue(call_id, queue)
        offer = inbox.get_nowait()
        assert isinstance(offer, OfferCall) and offer.agent_id == agent_id, offer
        self.ledger.attempt_started(call_id, agent_id, self.clock.now())
        self.clock.advance(2)
        self.writer.apply(self.ledger.on_event(DialEnd(
            uniqueid=call_id, linkedid=call_id, channel=f"PJSIP/anonymous-{call_id}",
            dest_uniqueid=f"{call_id}-{agent_id}", dest_channel=f"PJSIP/{agent_id}-00000001",
            dial_status="ANSWER"), self.clock.now()))
        self.acd.answered(call_id, agent_id)


def call_floor(*, logged_in: Sequence[str] = ("agent1", "agent2", "agent3")) -> CallFloor:
    clock = VirtualClock(T0)
    settings = Settings(queues=tuple(QueueSettings(name) for name in QUEUES))
    rules = {name: QueueRules(name) for name in QUEUES}
    acd = AcdDriver(Acd(rules, [AgentSpec(a, q) for a, q in AGENTS.items()], clock.now()),
                    clock)
    for agent_id in logged_in:
        acd.login(agent_id, phone=agent_id)
    return CallFloor(clock, settings, acd, CallLedger(), KeptRecords(), FakeAmi())
