"""FastAGI under load: our server running the IVR against a minimal asyncio AGI responder.

    .venv/bin/python bench/agi_sessions.py [--sessions 100 1000 2000] [--rounds 5] [--freeze]

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

For each N, ``--rounds`` rounds of each server run interleaved (baseline, ours, ours,
baseline, ...), each against a freshly started server process, so that the machine's load
drifting during the run weighs on both alike. It prints every round (sessions/s, p50/p99
command round trip from our answer to the server's next command as the generator sees it,
p99 of the set-up: connect + environment to the first command, errors, listen-queue
overflows counted by the kernel) and then, per server, the median and the spread of p99 over
the rounds, and the added p99 (median of ours minus median of the baseline).

The generator stands in for Asterisk, which has no garbage collector: it runs each round with
Python's collector off (it collects before and after), so that its own pauses do not land in
either server's round trips. Both servers listen with the same backlog.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
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


def ready() -> None:
    """Start-up is over: with ``--freeze`` (both servers alike) the objects made so far
    leave the garbage collector's scans, as a long-running service would do after start-up."""
    if os.environ.get("AGI_BENCH_FREEZE") == "1":
        gc.freeze()
    print("ready", flush=True)


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
    from callcenter.features.ivr.flows import FlowLibrary

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
    ready()
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

    from callcenter.asterisk.agi_server import LISTEN_BACKLOG  # the same queue as ours

    server = await asyncio.start_server(session, "127.0.0.1", port, backlog=LISTEN_BACKLOG)
    ready()
    async with server:
        await server.serve_forever()


# --------------------------------------------------------------------------- load


@dataclass
class Round:
    kind: str
    sessions: int
    seconds: float
    round_trips: list[float]
    setups: list[float]  # connect + environment until the first command
    errors: int
    peak_open: int = 0  # sessions open at the same moment, at most
    listen_overflows: int = 0  # the kernel's ListenOverflows + ListenDrops during the round

    @property
    def rate(self) -> float:
        return self.sessions / self.seconds

    def percentile(self, p: float, values: list[float] | None = None) -> float:
        values = self.round_trips if values is None else values
        if len(values) < 2:
            return float("nan")
        return statistics.quantiles(values, n=100)[int(p) - 1] * 1000


async def one_call(port: int, n: int, trips: Round, think: float,
                   rng: random.Random, start_delay: float) -> bool:
    await asyncio.sleep(start_delay)
    connecting = time.perf_counter()
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
                trips.round_trips.append(time.perf_counter() - answered_at)
            else:
                trips.setups.append(time.perf_counter() - connecting)
            if think:
                await asyncio.sleep(rng.uniform(0, 2 * think))
            writer.write(answer_for(command))
            answered_at = time.perf_counter()
        return True
    finally:
        _open[0] -= 1
        writer.close()


_open = [0, 0]  # sessions open now, the most open at once


async def load(kind: str, port: int, sessions: int, think: float, ramp: float) -> Round:
    result = Round(kind, sessions, 0.0, [], [], 0)
    _open[:] = [0, 0]
    rng = random.Random(sessions)
    started = time.perf_counter()
    outcomes = await asyncio.gather(
        *(one_call(port, n, result, think, rng, ramp * n / sessions) for n in range(sessions)),
        return_exceptions=True)
    result.seconds = time.perf_counter() - started
    result.errors = sum(1 for r in outcomes if r is not True)
    result.peak_open = _open[1]
    return result


def listen_overflows() -> int:
    """TcpExt ListenOverflows + ListenDrops: connections the accept queue could not take."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=True):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], map(int, values.split()[1:]), strict=True))
            return table["ListenOverflows"] + table["ListenDrops"]
    return 0


def start_server(kind: str, port: int, freeze: bool) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--port", str(port)],
                               stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "AGI_BENCH_FREEZE": "1" if freeze else "0"})
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


def measure(kind: str, sessions: int, think: float, ramp: float, freeze: bool = False) -> Round:
    """One round against a fresh server process."""
    port = free_port()
    server = start_server(kind, port, freeze)
    gc.collect()
    gc.disable()
    overflows = listen_overflows()
    try:
        result = asyncio.run(load(kind, port, sessions, think, ramp))
    finally:
        gc.enable()
        gc.collect()
        server.terminate()
        server.wait()
    result.listen_overflows = listen_overflows() - overflows
    return result


def print_round(result: Round) -> None:
    print(f"{result.sessions:>8} {result.kind:>9} {result.rate:>11,.0f} "
          f"{result.percentile(50):>8.3f} {result.percentile(99):>8.3f} "
          f"{result.percentile(99, result.setups):>9.2f} {result.errors:>6} "
          f"{result.peak_open:>9} {result.listen_overflows:>9}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[100, 1000, 2000])
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds of each server per N, interleaved")
    parser.add_argument("--think-ms", type=float, default=600.0,
                        help="mean prompt time between a command and its answer (0: burst)")
    parser.add_argument("--ramp-s", type=float, default=2.0,
                        help="calls arrive evenly over this many seconds (0: all at once)")
    parser.add_argument("--freeze", action="store_true",
                        help="both servers call gc.freeze() once started (as a service should)")
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
          f"{args.ramp_s:.1f} s; {args.rounds} rounds of each server, interleaved"
          + ("; both servers gc.freeze() after start-up" if args.freeze else ""))
    print(f"{'sessions':>8} {'server':>9} {'sessions/s':>11} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'setup p99':>9} {'errors':>6} {'peak open':>9} {'overflows':>9}")
    summary: list[str] = []
    for sessions in args.sessions:
        think = args.think_ms / 1000
        rounds: dict[str, list[Round]] = {"baseline": [], "ours": []}
        for index in range(args.rounds):
            order = ("baseline", "ours") if index % 2 == 0 else ("ours", "baseline")
            for kind in order:
                result = measure(kind, sessions, think, args.ramp_s, args.freeze)
                rounds[kind].append(result)
                print_round(result)
        medians = {}
        for kind, results in rounds.items():
            p50s = sorted(r.percentile(50) for r in results)
            p99s = sorted(r.percentile(99) for r in results)
            medians[kind] = (statistics.median(p50s), statistics.median(p99s))
            summary.append(
                f"{sessions:>8} {kind:>9} {statistics.median(r.rate for r in results):>11,.0f} "
                f"{medians[kind][0]:>8.3f} {medians[kind][1]:>8.3f} "
                f"{p99s[0]:>8.3f}-{p99s[-1]:<8.3f} {sum(r.errors for r in results):>6}")
        ratio = (statistics.median(r.rate for r in rounds["ours"])
                 / statistics.median(r.rate for r in rounds["baseline"]))
        summary.append(f"{'':>8} {'added':>9} {ratio:>10.2f}x "
                       f"{medians['ours'][0] - medians['baseline'][0]:>8.3f} "
                       f"{medians['ours'][1] - medians['baseline'][1]:>8.3f}")
    print()
    print("medians over the rounds (p99 spread: lowest-highest round)")
    print(f"{'sessions':>8} {'server':>9} {'sessions/s':>11} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'p99 spread':>17} {'errors':>6}")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
