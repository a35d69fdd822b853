"""How fast a waiting caller reaches an agent, on the real sandboxed Asterisk 22 with SIPp.

    .venv/bin/python bench/connect_latency.py [--calls 20] [--talk-ms 1500]

Two agents, each alone in a queue of a one-key menu:

- nailed-up: agent1's phone dialled *50 and sits in its ConfBridge; the caller is joined
  into that bridge without ringing anything;
- baseline, ring per call: agent2's SIPp phone is rung for each call and answers at once
  (``answer_after_ms=0``).

Per call the bench measures from the ACD's decision (the ``OfferCall`` action the service's
ACD driver hands to the call's handler, stamped with ``time.time()`` in this process) to the
moment Asterisk puts the caller in a bridge together with another channel (the ``Timestamp``
of the AMI ``BridgeEnter`` that makes it two, seen on a second AMI connection of the bench's
own). Both clocks are this machine's wall clock. Calls run one at a time, the two modes
alternating (nailed, ring, ring, nailed, ...), each with both agents ready before it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.latency_tools import summary, until
from callcenter.app import CallCenter
from callcenter.asterisk.ami import AmiClient
from callcenter.asterisk.events import AmiEvent, BridgeEnter, BridgeLeave
from callcenter.core.acd import AcdAction, AgentState, OfferCall
from tests.support.asterisk import phone_agent
from tests.support.calls import call_center, caller, prompt_seconds, sip_target
from tests.support.sipp import (
    AgentPlan,
    CallerPlan,
    SippProcess,
    agent_scenario,
    caller_scenario,
    free_port,
)

KEY_MS = 1500  # the menu prompt (no-input) is short: the key is pressed while it plays
HOLD_MS = int(prompt_seconds("please-hold") * 1000)  # slack: said only when nobody is free
FLOW = """
name: main
start: route
nodes:
  route:
    type: menu
    prompt: no-input
    timeout: 8
    retries: 1
    options:
      "1": {queue: sales}
      "2": {queue: support}
    on_exhausted: {hangup: true}
"""
QUEUES = ({"name": "sales"}, {"name": "support", "ring_timeout": 10})
MODES = {"nailed": ("1", "agent1"), "ring": ("2", "agent2")}  # key pressed, agent serving


class Observer:
    """When each call was offered (ACD) and when Asterisk bridged it with another channel."""

    def __init__(self) -> None:
        self.offered: dict[str, float] = {}
        self.offered_to: dict[str, str] = {}  # call -> agent
        self.bridged: dict[str, float] = {}
        self._members: dict[str, set[str]] = defaultdict(set)  # bridge -> channels' uniqueids
        self._waiting_in: dict[str, str] = {}  # offered call -> bridge it entered alone

    def watch_offers(self, to_call: Callable[[AcdAction], None]) -> Callable[[AcdAction], None]:
        def observed(action: AcdAction) -> None:
            if isinstance(action, OfferCall):
                self.offered.setdefault(action.call_id, time.time())
                self.offered_to.setdefault(action.call_id, action.agent_id)
            to_call(action)
        return observed

    def on_event(self, event: AmiEvent) -> None:
        if isinstance(event, BridgeLeave):
            self._members[event.bridge_uniqueid].discard(event.uniqueid)
            return
        if not isinstance(event, BridgeEnter) or event.timestamp is None:
            return
        members = self._members[event.bridge_uniqueid]
        members.add(event.uniqueid)
        if event.uniqueid in self.offered and event.uniqueid not in self.bridged:
            if len(members) >= 2:
                self.bridged[event.uniqueid] = event.timestamp
            else:
                self._waiting_in[event.uniqueid] = event.bridge_uniqueid
        if len(members) >= 2:  # the agent's leg may enter after the caller's
            for call_id, bridge in list(self._waiting_in.items()):
                if bridge == event.bridge_uniqueid:
                    self.bridged.setdefault(call_id, event.timestamp)
                    del self._waiting_in[call_id]

    def latency_ms(self, call_id: str) -> float | None:
        if call_id not in self.offered or call_id not in self.bridged:
            return None
        return (self.bridged[call_id] - self.offered[call_id]) * 1000



def ready(center: CallCenter, agent_id: str) -> bool:
    return center.acd.acd.agent_state(agent_id) is AgentState.READY


async def one_call(center: CallCenter, observer: Observer, mode: str, number: str,
                   talk_ms: int) -> float | None:
    key, agent_id = MODES[mode]
    await until(lambda: ready(center, "agent1") and ready(center, "agent2"), "agents ready")
    known = set(observer.offered)
    plan = CallerPlan(dtmf=((KEY_MS, key),), caller_number=number,
                      hangup_after_ms=KEY_MS + HOLD_MS + talk_ms)
    call = caller(center, plan)
    try:
        result = await asyncio.to_thread(call.wait, 60)
    finally:
        call.stop()
        call.cleanup()
    new = [c for c in observer.offered if c not in known]
    if (result.exit_code != 0 or result.failed or len(new) != 1
            or observer.offered_to[new[0]] != agent_id):
        print(f"  {mode} call {number}: sipp exit {result.exit_code}, failed {result.failed}, "
              f"offers {[observer.offered_to[c] for c in new]}: not counted")
        return None
    await until(lambda: new[0] in observer.bridged, "the bridge event", timeout=5)
    return observer.latency_ms(new[0])



async def run(calls: int, talk_ms: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="connect-latency-"))
    flows = folder / "flows"
    flows.mkdir()
    (flows / "main.yaml").write_text(FLOW)
    ring_port = free_port()
    agents = [phone_agent("agent1", free_port(), queues=["sales"], logged_in=False,
                          password="agent1-secret"),
              phone_agent("agent2", ring_port, queues=["support"])]
    env = {"CALLCENTER_SERVICE__LOG_LEVEL": "WARNING"}
    observer = Observer()
    phones: dict[str, SippProcess] = {}
    latencies: dict[str, list[float]] = {mode: [] for mode in MODES}
    async with call_center(folder, agents, env=env, queues=QUEUES,
                           service_ivr={"dialplans_dir": str(flows)}) as center:
        asterisk = center.settings.asterisk
        watcher = AmiClient(asterisk.host, asterisk.ami_port, asterisk.ami_username,
                            asterisk.ami_secret, on_event=observer.on_event)
        # The driver hands every decision about a call to _to_call: the offers are seen
        # there, at the moment the ACD makes them.
        center.acd._to_call = observer.watch_offers(center.acd._to_call)  # type: ignore[method-assign]
        await watcher.start()
        try:
            await watcher.wait_ready(30)
            # The agents' phones live for the whole run (the harness's helpers give sipp
            # 120 s): rung for each call, and nailed up (dialled *50, never hangs up).
            lifetime_s = calls * 2 * (KEY_MS + HOLD_MS + talk_ms + 5000) / 1000 + 120
            phones["ring"] = SippProcess(agent_scenario(AgentPlan(answer_after_ms=0)),
                                         port=ring_port, name="agent2", calls=calls,
                                         timeout_s=lifetime_s).start()
            nailed_plan = CallerPlan(max_call_ms=int(lifetime_s * 1000),
                                     auth=("agent1", "agent1-secret"))
            phones["nailed"] = SippProcess(caller_scenario(nailed_plan),
                                           remote=sip_target(center), service="*50",
                                           name="agent1-dials", timeout_s=lifetime_s).start()
            await until(lambda: center.desk.nailed_channel("agent1") is not None,
                        "agent1 nailed up")
            for round_index in range(calls):
                order = ["nailed", "ring"] if round_index % 2 == 0 else ["ring", "nailed"]
                for mode in order:
                    if not phones[mode].running():
                        raise RuntimeError(f"the {mode} agent's phone (sipp) has stopped")
                    number = f"555{round_index:03d}{1 if mode == 'nailed' else 2}"
                    value = await one_call(center, observer, mode, number, talk_ms)
                    if value is not None:
                        latencies[mode].append(value)
                        print(f"  round {round_index + 1:2d} {mode:6s} {value:7.1f} ms",
                              flush=True)
        finally:
            for phone in phones.values():
                phone.stop()
                phone.cleanup()
            await watcher.stop()

    print(f"\noffer (ACD) -> caller bridged with the agent (AMI BridgeEnter), {calls} rounds")
    for mode in MODES:
        if latencies[mode]:
            print(f"{mode:7s} {summary(latencies[mode])}")
    if latencies["nailed"] and latencies["ring"]:
        ratio = statistics.median(latencies["ring"]) / statistics.median(latencies["nailed"])
        print(f"ratio (ring p50 / nailed p50): {ratio:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, help="calls per mode")
    parser.add_argument("--talk-ms", type=int, default=1500,
                        help="how long each caller stays after the hold prompt")
    args = parser.parse_args()
    asyncio.run(run(args.calls, args.talk_ms))


if __name__ == "__main__":
    main()
