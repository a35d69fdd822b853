"""The AMI event dispatcher, and the composition root's subscriptions: who hears an event
first matters (the ledger before every feature; the agents' transfers last)."""

from __future__ import annotations

import logging
from types import MappingProxyType, SimpleNamespace
from typing import Any, cast

import pytest

from callcenter.app import CallCenter
from callcenter.asterisk.dispatch import AmiDispatcher
from callcenter.asterisk.events import (
    AmiEvent,
    ContactStatus,
    DialBegin,
    DialEnd,
    DTMFEnd,
    Hangup,
    Newchannel,
    OtherEvent,
)
from callcenter.config import Settings
from callcenter.core.clock import VirtualClock


def hangup(uniqueid: str = "1.1") -> Hangup:
    return Hangup(uniqueid=uniqueid, linkedid=uniqueid, channel="PJSIP/trunk-01", cause=16,
                  cause_text="Normal Clearing")


def dial_end(status: str = "ANSWER", dest: str = "PJSIP/agent1-0000002a") -> DialEnd:
    return DialEnd(uniqueid="1.1", linkedid="1.1", channel="PJSIP/trunk-01",
                   dest_uniqueid="1.2", dest_channel=dest, dial_status=status)


def other(name: str) -> OtherEvent:
    return OtherEvent(name=name, headers=MappingProxyType({"Event": name}))


def test_an_event_reaches_its_subscribers_in_the_order_they_subscribed():
    heard: list[str] = []
    events = AmiDispatcher()
    events.subscribe(lambda e: heard.append("hangups"), Hangup)
    events.subscribe_all(lambda e: heard.append("all"))
    events.subscribe(lambda e: heard.append("dials and hangups"), DialEnd, Hangup)
    events.subscribe(lambda e: heard.append("transfers"), "AttendedTransfer")
    events.dispatch(hangup())
    assert heard == ["hangups", "all", "dials and hangups"]
    heard.clear()
    events.dispatch(dial_end())
    assert heard == ["all", "dials and hangups"]
    heard.clear()
    events.dispatch(other("AttendedTransfer"))
    events.dispatch(other("BlindTransfer"))  # a name nobody asked for: the all-subscriber
    assert heard == ["all", "transfers", "all"]


def test_a_failing_subscriber_is_logged_and_the_others_still_hear_the_event(caplog):
    heard: list[str] = []

    def broken(event: AmiEvent) -> None:
        raise RuntimeError("a feature's bug")

    events = AmiDispatcher()
    events.subscribe_all(broken)
    events.subscribe(lambda e: heard.append("desk"), Hangup)
    with caplog.at_level(logging.ERROR, logger="callcenter.asterisk.dispatch"):
        events.dispatch(hangup())
    assert heard == ["desk"]
    assert "broken" in caplog.text and "a feature's bug" in caplog.text


@pytest.mark.parametrize("kind", ["Hangup", "hangup", OtherEvent, "not a class", 3])
def test_a_kind_that_would_never_arrive_is_refused(kind: Any):
    events = AmiDispatcher()
    with pytest.raises(ValueError):
        events.subscribe(lambda e: None, kind if kind != "not a class" else object())
    with pytest.raises(ValueError):
        events.subscribe(lambda e: None)


class _Heard:
    """Stands in for the parts app.py subscribes; each notes its name when it hears."""

    def __init__(self) -> None:
        self.order: list[str] = []

    def part(self, name: str, **methods: str) -> SimpleNamespace:
        return SimpleNamespace(**{
            method: (lambda *args, _n=f"{name}.{method}", **kw: self.order.append(_n))
            for method in methods})


def wired_center() -> tuple[CallCenter, _Heard]:
    heard = _Heard()
    center = CallCenter(cast(Settings, None), clock=VirtualClock(10.0))
    c = cast(Any, center)
    ledger = SimpleNamespace(on_event=lambda event, now: heard.order.append("ledger"))
    c.ledger = ledger
    c.writer = SimpleNamespace(apply=lambda result: None)
    c.inbound = heard.part("inbound", agent_answered="")
    c.acd = heard.part("acd", key_pressed="", set_reachable="")
    c.desk = heard.part("desk", channel_gone="")
    c.transfers = heard.part("transfers", on_event="")
    c.registrations = SimpleNamespace(
        on_event=lambda event, now: heard.order.append("registrations") or [])
    return center, heard


@pytest.mark.parametrize(("event", "expected"), [
    (hangup(), ["ledger", "desk.channel_gone", "transfers.on_event"]),
    (dial_end(), ["ledger", "inbound.agent_answered", "transfers.on_event"]),
    (dial_end("NOANSWER"), ["ledger", "transfers.on_event"]),
    (dial_end(dest="PJSIP/callcenter-trunk-03"), ["ledger", "transfers.on_event"]),
    (DialBegin(uniqueid="1.1", linkedid="1.1", channel="Local/1@x-1;1", dest_uniqueid="1.2",
               dest_channel="PJSIP/agent1-01", dial_string="agent1"),
     ["ledger", "transfers.on_event"]),
    (DTMFEnd(uniqueid="1.1", channel="PJSIP/trunk-01", digit="5", direction="Received"),
     ["ledger", "acd.key_pressed"]),
    (DTMFEnd(uniqueid="1.1", channel="PJSIP/trunk-01", digit="5", direction="Sent"),
     ["ledger"]),
    (ContactStatus(aor="agent1", uri="sip:agent1@192.0.2.7", status="Reachable",
                   endpoint="agent1", roundtrip_usec=None), ["ledger", "registrations"]),
    (other("AttendedTransfer"), ["ledger", "transfers.on_event"]),
    (Newchannel(uniqueid="1.1", linkedid="1.1", channel="PJSIP/trunk-01", state="Ring",
                context="callers", exten="100", caller_number="1", caller_name=""),
     ["ledger"]),
])
def test_the_ledger_hears_every_event_first_and_the_transfers_last(event, expected):
    center, heard = wired_center()
    center._subscribe_to_ami().dispatch(event)
    assert heard.order == expected
