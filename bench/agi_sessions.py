"""FastAGI under load: our server running the IVR against a minimal asyncio AGI responder.

    .venv/bin/python bench/agi_sessions.py [--sessions 100 1000 2000] [--rounds 3]

A load generator (this process) plays Asterisk: it opens N FastAGI connections at once,
sends each an AGI environment and answers every command the way Asterisk would (the caller
presses 2 at the menu). The server runs in a separate process, so the two do not share a
core's time slices in one event loop:

- ours: ``AgiServer`` + ``AgiSession`` driving the real ``IvrSession`` over the demo flow —
  ANSWER, STREAM FILE welcome, STREAM FILE main-menu, WAIT FOR DIGIT, STREAM FILE
  please-hold, HANGUP: six commands, a 5-step menu and the hangup;
- baseline: a bare asyncio server that reads the environment and writes the same six
  commands, reading one line back after each, with no parsing, no state machine.

Between a command and its answer the generator waits a random "prompt time" (uniform, mean
``--think-ms``), as a real caller's call spends its time listening, and the N calls arrive
evenly over ``--ramp-s`` seconds: all N sessions are open together while the round trips
measure the server's work per command rather than a queue of N simultaneous bursts.
``--think-ms 0 --ramp-s 0`` is the burst (saturation) case.

For each N it prints sessions/s, the p50/p99 command round trip (from our answer to the
server's next command, as the generator sees it), errors, and the p99 added over the
baseline. Best of ``--rounds`` by sessions/s.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

COMMANDS = 6
ENVIRONMENT = (
    "agi_network: yes\nagi_network_script: ivr\nagi_request: agi://127.0.0.1/ivr\n"
    "agi_channel: PJSIP/anonymous-{n:08x}\nagi_language: en\nagi_type: PJSIP\n"
    "agi_uniqueid: 1795900000.{n}\nagi_version: 22.10.1\nagi_callerid: 5551234\n"
    "agi_calleridname: Bench\nagi_callingpres: 0\nagi_dnid: 100\nagi_rdnis: unknown\n"
    "agi_context: callers\nagi_extension: 100\nagi_priority: 2\nagi_enhanced: 0.0\n"
    "agi_accountcode: \nagi_threadid: 1\n\n"
)


def answer_for(command: bytes) -> bytes:
    """What Asterisk answers: the caller presses 2 when asked for a digit."""
    if command.startswith(b"WAIT FOR DIGIT"):
        return b"200 result=50\n"
    if command.startswith(b"STREAM FILE"):
        return b"200 result=0 endpos=16000\n"
    return b"200 result=1\n"


# --------------------------------------------------------------------------- servers


async def serve_ours(port: int) -> None:
    from callcenter.asterisk.agi_server import AgiHangup, AgiServer, AgiSession
    from callcenter.config import REPO_ROOT
    from callcenter.core.clock import SystemClock
    from callcenter.core.ivr import (
        DigitReceived,
        InputTimedOut,
        IvrSession,
        PlayPrompt,
        PromptFinished,
        WaitForDigit,
    )
    from callcenter.service.flows import FlowLibrary

    flow = FlowLibrary(REPO_ROOT / "dialplans", REPO_ROOT / "ivr_prompts", language="en",
                       known_queues=["sales", "support", "operator"]).load("main")
    clock = SystemClock()

    async def ivr(session: AgiSession) -> None:
        try:
            await session.answer()
            ivr = IvrSession(flow, clock.now())
            action = ivr.start()
            while not ivr.finished:
                match action:
                    case PlayPrompt(prompt=prompt, interruptible=interruptible):
                        digit = await session.stream_file(
                            f"callcenter/{prompt}", "0123456789*#" if interruptible else "")
                        action = ivr.handle(PromptFinished(digit), clock.now())
                    case WaitForDigit(timeout=timeout):
                        digit = await session.wait_for_digit(int(timeout * 1000))
                        event = DigitReceived(digit) if digit else InputTimedOut()
                        action = ivr.handle(event, clock.now())
            await session.stream_file("callcenter/please-hold")
            await session.hangup()
        except AgiHangup:
            pass

    server = AgiServer({"ivr": ivr}, "127.0.0.1", port)
    await server.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


async def serve_baseline(port: int) -> None:
    script = [b'ANSWER\n', b'STREAM FILE "callcenter/welcome" ""\n',
              b'STREAM FILE "callcenter/main-menu" "0123456789*#"\n', b'WAIT FOR DIGIT 5000\n',
              b'STREAM FILE "callcenter/please-hold" ""\n', b'HANGUP\n']

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()).strip():
            pass
        for command in script:
            writer.write(command)
            await reader.readline()
        writer.close()

    server = await asyncio.start_server(session, "127.0.0.1", port, backlog=4096)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


# --------------------------------------------------------------------------- load


@dataclass
class Round:
    sessions: int
    seconds: float
    round_trips: list[float]
    errors: int
    peak_open: int = 0  # sessions open at the same moment, at most

    @property
    def rate(self) -> float:
        return self.sessions / self.seconds

    def percentile(self, p: float) -> float:
        if not self.round_trips:
            return float("nan")
        return statistics.quantiles(self.round_trips, n=100)[int(p) - 1] * 1000


async def one_call(port: int, n: int, round_trips: list[float], think: float,
                   rng: random.Random, start_delay: float) -> bool:
    await asyncio.sleep(start_delay)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    _open[0] += 1
    _open[1] = max(_open[1], _open[0])
    try:
        writer.write(ENVIRONMENT.format(n=n).encode())
        answered_at = time.perf_counter()
        for index in range(COMMANDS):
            command = await asyncio.wait_for(reader.readline(), 30)
            if not command:
                return False
            if index:  # the first command follows the environment, not an answer
                round_trips.append(time.perf_counter() - answered_at)
            if think:
                await asyncio.sleep(rng.uniform(0, 2 * think))
            writer.write(answer_for(command))
            answered_at = time.perf_counter()
        return True
    finally:
        _open[0] -= 1
        writer.close()


_open = [0, 0]  # sessions open now, the most open at once


async def load(port: int, sessions: int, think: float, ramp: float) -> Round:
    round_trips: list[float] = []
    _open[:] = [0, 0]
    rng = random.Random(sessions)
    started = time.perf_counter()
    results = await asyncio.gather(
        *(one_call(port, n, round_trips, think, rng, ramp * n / sessions)
          for n in range(sessions)),
        return_exceptions=True)
    seconds = time.perf_counter() - started
    errors = sum(1 for r in results if r is not True)
    return Round(sessions, seconds, round_trips, errors, _open[1])


def start_server(kind: str, port: int) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--port", str(port)],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        process.kill()
        raise RuntimeError(f"the {kind} server did not start")
    return process


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def measure(kind: str, sessions: int, rounds: int, think: float, ramp: float) -> Round:
    port = free_port()
    server = start_server(kind, port)
    try:
        results = [asyncio.run(load(port, sessions, think, ramp)) for _ in range(rounds)]
    finally:
        server.terminate()
        server.wait()
    return max(results, key=lambda r: (r.errors == 0, r.rate))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[100, 1000, 2000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--think-ms", type=float, default=600.0,
                        help="mean prompt time between a command and its answer (0: burst)")
    parser.add_argument("--ramp-s", type=float, default=2.0,
                        help="calls arrive evenly over this many seconds (0: all at once)")
    parser.add_argument("--serve", choices=["ours", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve = serve_ours if args.serve == "ours" else serve_baseline
        asyncio.run(serve(args.port))
        return
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    print(f"think time: {args.think_ms:.0f} ms mean per command; calls arrive over "
          f"{args.ramp_s:.1f} s")
    print(f"{'sessions':>8} {'server':>9} {'sessions/s':>11} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'errors':>6} {'peak open':>9}")
    for sessions in args.sessions:
        think = args.think_ms / 1000
        base = measure("baseline", sessions, args.rounds, think, args.ramp_s)
        ours = measure("ours", sessions, args.rounds, think, args.ramp_s)
        for kind, result in (("baseline", base), ("ours", ours)):
            print(f"{sessions:>8} {kind:>9} {result.rate:>11,.0f} {result.percentile(50):>8.3f} "
                  f"{result.percentile(99):>8.3f} {result.errors:>6} {result.peak_open:>9}")
        print(f"{'':>8} {'added':>9} {ours.rate / base.rate:>10.2f}x "
              f"{ours.percentile(50) - base.percentile(50):>8.3f} "
              f"{ours.percentile(99) - base.percentile(99):>8.3f}")


if __name__ == "__main__":
    main()
