"""SIPp callers through the demo IVR into a queue, on the real sandboxed Asterisk.

    bench/ivr_sipp.sh [--rate 20] [--seconds 120] [--hold-ms 12000]

Starts a sandboxed Asterisk instance on free ports and the service as its own process
(`callcenter serve`), then a SIPp caller load: ``--rate`` new calls per second for
``--seconds``; each caller listens to the greeting, presses 2 during the menu (support),
waits on hold in the queue (no agent is logged in) and hangs up ``--hold-ms`` after the
answer. Reports SIPp's successful and failed calls (target: 0 failed), the service's CPU use
(user + system seconds from /proc, as a share of one core over the run), Asterisk's, and how
many call records the service stored and closed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from callcenter.features.calls.store import CallRepository
from callcenter.store.db import create_engine, session_factory
from tests.support.asterisk import phone_agent, running_asterisk, sandbox_settings
from tests.support.calls import MENU_DIGIT_MS
from tests.support.service_process import ServiceProcess
from tests.support.sipp import CallerPlan, SippProcess, caller_scenario, free_port


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def closed_records(settings) -> tuple[int, int]:
    engine = create_engine(settings.database_url)
    try:
        calls = CallRepository(session_factory(engine))
        _, total = await calls.list(limit=1)
        return total, total - len(await calls.open_calls())
    finally:
        await engine.dispose()


async def run(rate: float, seconds: int, hold_ms: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="ivr-sipp-"))
    agents = [phone_agent("agent3", free_port(), queues=["support"], logged_in=False)]
    # Each call takes two RTP ports (RTP and RTCP): give Asterisk room for every caller.
    rtp_start = 30000
    rtp_end = rtp_start + 4 * int(rate * hold_ms / 1000) + 400
    settings = sandbox_settings(folder, agents=agents, env={
        "CALLCENTER_SERVICE__LOG_LEVEL": "WARNING",
        "CALLCENTER_ASTERISK__RTP_START": str(rtp_start),
        "CALLCENTER_ASTERISK__RTP_END": str(rtp_end)})
    calls = int(rate * seconds)
    plan = CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),), hangup_after_ms=hold_ms)
    with running_asterisk(settings) as sandbox, ServiceProcess(settings) as service:
        await service.wait_up(60)  # the with-statement started it
        asterisk_pid = sandbox.pid()
        before = (cpu_seconds(service.pid), cpu_seconds(asterisk_pid), time.monotonic())
        load = SippProcess(caller_scenario(plan), remote=("127.0.0.1", settings.asterisk.sip_port),
                           service=settings.ivr.number, name="callers", calls=calls, rate=rate,
                           limit=int(rate * hold_ms / 1000 * 2) + 10,
                           timeout_s=seconds + hold_ms / 1000 + 120)
        with load:
            result = await asyncio.to_thread(load.wait, seconds + hold_ms / 1000 + 180)
        after = (cpu_seconds(service.pid), cpu_seconds(asterisk_pid), time.monotonic())
        await asyncio.sleep(3)  # the last hangups reach the records
        stored, closed = await closed_records(settings)
    wall = after[2] - before[2]
    print(f"calls offered: {calls} at {rate:g}/s over {seconds} s, each held {hold_ms} ms")
    print(f"sipp: {result.successful} successful, {result.failed} failed "
          f"(exit {result.exit_code})")
    print(f"service CPU: {after[0] - before[0]:.1f} s in {wall:.0f} s "
          f"= {100 * (after[0] - before[0]) / wall:.1f}% of one core")
    print(f"asterisk CPU: {after[1] - before[1]:.1f} s "
          f"= {100 * (after[1] - before[1]) / wall:.1f}% of one core")
    print(f"records stored: {stored}, closed: {closed}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--hold-ms", type=int, default=12_000)
    args = parser.parse_args()
    asyncio.run(run(args.rate, args.seconds, args.hold_ms))


if __name__ == "__main__":
    main()
