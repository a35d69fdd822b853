"""Ports and RTP port blocks for tests, never handed to two live processes at once.

Several test processes run at once on one machine: the pytest-xdist workers of one run, and
other runs beside it. A port one process has picked but not bound yet (an agent's phone that
starts later, a service that restarts) must not be picked by another. Every process records
what it hands out in one reservation file under the temporary folder, under an exclusive
``flock``: one line ``<kind> <number> <pid> <process start time>`` per port or RTP block.
A line stays until its process exits (the start time tells a reused pid from its owner), so
a reservation lasts the whole test session of the process that made it.

    port = free_port()          # free on TCP and UDP, reserved for this process
    base = free_port(4)         # four consecutive ports
    start = rtp_block(number)   # the first of RTP_BLOCK ports for an Asterisk instance
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def _ephemeral_ports() -> range:
    """The kernel's range for clients' source ports (32768-60999 by default on Linux)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)


# Ports tests listen on: above the sandbox's RTP blocks and never among the ephemeral ports.
# A client connecting to a local port nobody listens on (a service being restarted) can be
# given that very port as its own source and connect to itself: it then reads back its own
# request ("Bad status line: GET /healthz"), as CI saw once.
EPHEMERAL = _ephemeral_ports()
FREE_PORT_RANGES = tuple(r for r in (range(30000, EPHEMERAL.start), range(EPHEMERAL.stop, 65536))
                         if len(r) >= 100)
RTP_RANGE = range(20000, 30000)  # below the ephemeral ports too
RTP_BLOCK = 200  # RTP ports per Asterisk test instance: 100 calls' RTP and RTCP
RTP_BLOCKS = len(RTP_RANGE) // RTP_BLOCK
# Blocks one process holds and cycles through; a process runs one instance at a time, or a
# few side by side (two in test_sandbox), so three leave blocks for 16 processes at once.
RTP_BLOCKS_PER_PROCESS = 3
RESERVATIONS = Path(tempfile.gettempdir()) / "callcenter-test-reservations"

_random = random.Random(os.getpid() ^ time.time_ns())
_thread_lock = threading.Lock()
_handed_out: set[int] = set()  # ports this process gave out: never twice
_own_blocks: list[int] = []  # the RTP blocks this process holds (first port of each)


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, None if it has exited."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    if fields[0] in ("Z", "X"):  # exited, not yet reaped
        return None
    return fields[19]  # field 22 of stat; the fields after the name start at field 3


@contextlib.contextmanager
def _reservations() -> Iterator[tuple[set[tuple[str, int]], list[str]]]:
    """The live reservations of every process, and a list to add this process's lines to.

    Holds the file's exclusive lock (and this process's thread lock) meanwhile; lines of
    exited processes are dropped when it is written back.
    """
    with _thread_lock, open(_reservation_file(), "a+", encoding="ascii") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        try:
            file.seek(0)
            alive: dict[str, bool] = {}
            kept: list[str] = []
            taken: set[tuple[str, int]] = set()
            for line in file.read().splitlines():
                parts = line.split()
                if len(parts) != 4 or not parts[1].isdigit() or not parts[2].isdigit():
                    continue
                kind, number, pid, started = parts
                if pid not in alive:
                    alive[pid] = _start_time(int(pid)) == started
                if alive[pid]:
                    kept.append(line)
                    taken.add((kind, int(number)))
            added: list[str] = []
            yield taken, added
            _rewrite(file, kept + added)
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


def _reservation_file() -> Path:
    RESERVATIONS.mkdir(mode=0o755, exist_ok=True)
    return RESERVATIONS / "ports"


def _rewrite(file: IO[str], lines: list[str]) -> None:
    file.seek(0)
    file.truncate()
    file.write("".join(f"{line}\n" for line in lines))
    file.flush()


def _line(kind: str, number: int) -> str:
    pid = os.getpid()  # read each time: a forked child reserves under its own pid
    return f"{kind} {number} {pid} {_start_time(pid)}"


def _bindable(port: int, host: str = "127.0.0.1") -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                return False
    return True


def _random_start(count: int) -> int:
    """A first port, uniformly over FREE_PORT_RANGES, with ``count`` ports in its range."""
    spans = [range(r.start, r.stop - count + 1) for r in FREE_PORT_RANGES]
    pick = _random.randrange(sum(len(span) for span in spans))
    for span in spans:
        if pick < len(span):
            return span[pick]
        pick -= len(span)
    raise AssertionError("unreachable")


def free_port(count: int = 1) -> int:
    """A port free on TCP and UDP (with the ``count - 1`` ports after it), reserved for this
    process: never handed out twice, nor to another live process, so tests can give several
    services their own ports, in parallel."""
    with _reservations() as (taken, added):
        for _ in range(500):
            start = _random_start(count)
            block = range(start, start + count)
            if any(p in _handed_out or ("port", p) in taken for p in block):
                continue
            if all(_bindable(p) for p in block):
                _handed_out.update(block)
                added.extend(_line("port", p) for p in block)
                return start
    raise RuntimeError("no free port block found")


def rtp_block(number: int) -> int:
    """The first port of an RTP block for this process's ``number``-th Asterisk instance.

    The process reserves up to RTP_BLOCKS_PER_PROCESS blocks no other live process holds and
    gives them to its instances in turn. When every block is held (many processes at once) it
    shares one: Asterisk skips an RTP port that is in use, so calls still work.
    """
    if len(_own_blocks) < RTP_BLOCKS_PER_PROCESS:
        with _reservations() as (taken, added):
            first = _random.randrange(RTP_BLOCKS)
            for offset in range(RTP_BLOCKS):
                start = RTP_RANGE.start + ((first + offset) % RTP_BLOCKS) * RTP_BLOCK
                if ("rtp", start) not in taken and start not in _own_blocks:
                    _own_blocks.append(start)
                    added.append(_line("rtp", start))
                    break
    if _own_blocks:
        return _own_blocks[(number - 1) % len(_own_blocks)]
    return RTP_RANGE.start + ((os.getpid() * 7 + number) % RTP_BLOCKS) * RTP_BLOCK
