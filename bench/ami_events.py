"""AMI event throughput: our whole path against panoramisk's parser alone, in the same run.

    .venv/bin/python bench/ami_events.py [--calls 1500] [--concurrent 60] [--repeat 5]

The stream is generated to look like Asterisk 22 with timestampevents=yes: inbound calls
that are answered, run an IVR, dial an agent and bridge, interleaved ``--concurrent`` at a
time, with the chatter a real server sends (Newexten, VarSet, RTCP, DeviceStateChange...).

- baseline: panoramisk's ``AMIProtocol.data_received`` (split, ``Message.from_line``,
  dispatch to a no-op) over the same bytes;
- ours: bytes → ``AmiFramer`` → ``parse_event`` (typed records) → ``AmiDispatcher`` →
  ``CallLedger.on_event`` (call state), which is what the live AMI client does for every
  event; the dispatcher holds the same subscriptions as app.py (the ledger for every event,
  then the features' kinds, here doing nothing, so only the routing is measured);
- direct: the same without the dispatcher (the ledger called straight away), to show what
  the routing costs in the same run.

Prints the rates (events/s, best of ``--repeat``, the three taking turns) and ours ÷ baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from panoramisk.ami_protocol import AMIProtocol

from callcenter.asterisk.ami import AmiFramer
from callcenter.asterisk.dispatch import AmiDispatcher
from callcenter.asterisk.events import ContactStatus, DialEnd, DTMFEnd, Hangup, parse_event
from callcenter.core.calls import CallLedger
from callcenter.features.agent_transfers.service import TRANSFER_EVENTS

CHUNK = 16 * 1024  # what one socket read typically brings on a busy server


def _block(name: str, ts: float, **headers: str) -> str:
    lines = [f"Event: {name}", "Privilege: call,all", f"Timestamp: {ts:.6f}"]
    lines += [f"{key}: {value}" for key, value in headers.items()]
    return "\r\n".join(lines) + "\r\n\r\n"


def _channel(uid: str, chan: str, linked: str, state: str, context: str, exten: str,
             number: str) -> dict[str, str]:
    return {"Channel": chan, "ChannelState": "6" if state == "Up" else "4",
            "ChannelStateDesc": state, "CallerIDNum": number, "CallerIDName": "Caller",
            "ConnectedLineNum": "<unknown>", "ConnectedLineName": "<unknown>",
            "Language": "en", "AccountCode": "", "Context": context, "Exten": exten,
            "Priority": "1", "Uniqueid": uid, "Linkedid": linked}


def one_call(n: int, t0: float, rng: random.Random) -> Iterator[tuple[float, str]]:
    """The events of one answered inbound call, as (time, text) pairs."""
    uid, agent_uid = f"1795900000.{2 * n}", f"1795900000.{2 * n + 1}"
    chan, agent = f"PJSIP/anonymous-{2 * n:08x}", f"PJSIP/agent{n % 50}-{2 * n + 1:08x}"
    number = f"55119{rng.randrange(10**7, 10**8)}"
    caller = _channel(uid, chan, uid, "Ring", "callers", "100", number)
    t = t0
    yield t, _block("Newchannel", t, **caller)
    yield t, _block("Newexten", t, **caller, Extension="100", Application="Answer",
                    AppData="")
    t += 0.01
    yield t, _block("Newstate", t, **{**caller, "ChannelStateDesc": "Up"})
    for app in ("AGI", "GotoIf"):
        yield t, _block("Newexten", t, **caller, Extension="100", Application=app,
                        AppData="agi://127.0.0.1:4573/ivr")
    yield t, _block("AGIExecStart", t, **caller, CommandId="1", Command="STREAM FILE")
    for step in range(rng.randrange(4, 9)):
        t += rng.uniform(0.5, 3)
        yield t, _block("VarSet", t, **caller, Variable=f"IVR_STEP_{step}", Value="1")
        yield t, _block("AGIExecEnd", t, **caller, CommandId=str(step), ResultCode="200",
                        Result="Success")
    t += rng.uniform(1, 20)
    dest = _channel(agent_uid, agent, uid, "Down", "agents", "s", "agent")
    yield t, _block("Newchannel", t, **dest)
    yield t, _block("DialBegin", t, **caller, **{f"Dest{k}": v for k, v in dest.items()},
                    DialString=agent.split("-")[0][6:])
    yield t, _block("DeviceStateChange", t, Device=agent.split("-")[0], State="RINGING")
    t += rng.uniform(0.5, 5)
    yield t, _block("Newstate", t, **{**dest, "ChannelStateDesc": "Up"})
    yield t, _block("DialEnd", t, **caller, **{f"Dest{k}": v for k, v in dest.items()},
                    DialStatus="ANSWER")
    bridge = {"BridgeUniqueid": f"b{n}", "BridgeType": "basic", "BridgeTechnology":
              "simple_bridge", "BridgeCreator": "<unknown>", "BridgeName": "<unknown>",
              "BridgeNumChannels": "1", "BridgeVideoSourceMode": "none"}
    yield t, _block("BridgeCreate", t, **bridge)
    yield t, _block("BridgeEnter", t, **bridge, **caller)
    yield t, _block("BridgeEnter", t, **bridge, **dest)
    talk_end = t + rng.uniform(20, 300)
    while t + 5 < talk_end:  # RTCP reports every 5 s per leg
        t += 5
        yield t, _block("RTCPSent", t, **caller, SSRC="1", PT="200(SR)", ReportCount="1")
        yield t, _block("RTCPReceived", t, **dest, SSRC="2", PT="200(SR)", ReportCount="1")
    t = talk_end
    yield t, _block("BridgeLeave", t, **bridge, **dest)
    yield t, _block("HangupRequest", t, **dest)
    yield t, _block("Hangup", t, **dest, Cause="16", **{"Cause-txt": "Normal Clearing"})
    yield t, _block("BridgeLeave", t, **bridge, **caller)
    yield t, _block("BridgeDestroy", t, **bridge)
    yield t, _block("Hangup", t, **caller, Cause="16", **{"Cause-txt": "Normal Clearing"})


def generate(calls: int, concurrent: int, seed: int = 7) -> tuple[bytes, int]:
    rng = random.Random(seed)
    timeline: list[tuple[float, int, str]] = []
    spacing = 200.0 / concurrent  # about `concurrent` calls up at any time
    for n in range(calls):
        timeline += [(t, n, text) for t, text in one_call(n, n * spacing, rng)]
    timeline.sort(key=lambda item: (item[0], item[1]))
    banner = "Asterisk Call Manager/9.0.0\r\n"
    return (banner + "".join(text for _, _, text in timeline)).encode(), len(timeline)


class _NullTransport:
    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


class _NullFactory:
    def dispatch(self, message: object) -> None:
        pass


def baseline(stream: bytes) -> int:
    """panoramisk alone: its protocol's framing and Message parsing, dispatch to nothing."""
    protocol = AMIProtocol()
    protocol.connection_made(_NullTransport())
    protocol.factory = _NullFactory()
    protocol.encoding = "utf-8"
    protocol.log.disabled = True
    for start in range(0, len(stream), CHUNK):
        protocol.data_received(stream[start:start + CHUNK])
    return 0


def ours(stream: bytes) -> int:
    """Our live path: framing, typed events, routed to their subscribers, call state."""
    framer = AmiFramer()
    ledger = CallLedger()
    closed = 0

    def ledger_saw(event: object) -> None:
        nonlocal closed
        closed += len(ledger.on_event(event, 0.0).closed)

    def feature(event: object) -> None:
        pass

    events = AmiDispatcher()  # the shape of app.py's CallCenter._subscribe_to_ami
    events.subscribe_all(ledger_saw)
    for kind in (DialEnd, ContactStatus, DTMFEnd, Hangup):
        events.subscribe(feature, kind)
    events.subscribe(feature, *TRANSFER_EVENTS)
    dispatch = events.dispatch
    for start in range(0, len(stream), CHUNK):
        for message in framer.feed(stream[start:start + CHUNK]):
            dispatch(parse_event(message))
    return closed


def direct(stream: bytes) -> int:
    """The same without the dispatcher: the ledger straight after parsing."""
    framer = AmiFramer()
    ledger = CallLedger()
    closed = 0
    for start in range(0, len(stream), CHUNK):
        for message in framer.feed(stream[start:start + CHUNK]):
            event = parse_event(message)
            result = ledger.on_event(event, 0.0)
            closed += len(result.closed)
    return closed


def best_rates(runs: list[Callable[[bytes], int]], stream: bytes, events: int,
               repeat: int) -> list[float]:
    """Events/s of each run, best of ``repeat``; the runs take turns, so the shared machine's
    drifting load weighs on all of them alike."""
    best = [float("inf")] * len(runs)
    for _ in range(repeat):
        for i, run in enumerate(runs):
            started = time.perf_counter()
            run(stream)
            best[i] = min(best[i], time.perf_counter() - started)
    return [events / seconds for seconds in best]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1500)
    parser.add_argument("--concurrent", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    stream, events = generate(args.calls, args.concurrent)
    for path in (ours, direct):
        closed = path(stream)
        assert closed == args.calls, f"the ledger closed {closed} of {args.calls} calls"
    asyncio.set_event_loop(asyncio.new_event_loop())  # panoramisk's protocol wants a loop
    base, mine, straight = best_rates([baseline, ours, direct], stream, events, args.repeat)
    print(f"stream: {events} events, {len(stream) / 1e6:.1f} MB, {args.calls} calls")
    print(f"baseline (panoramisk parse only):         {base:12,.0f} events/s")
    print(f"ours (bytes -> typed -> routed -> state): {mine:12,.0f} events/s")
    print(f"direct (bytes -> typed -> state):         {straight:12,.0f} events/s")
    print(f"ratio ours / baseline:                    {mine / base:12.2f}")
    print(f"ratio direct / baseline:                  {straight / base:12.2f}")


if __name__ == "__main__":
    main()
