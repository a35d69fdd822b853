"""Ports and RTP blocks for parallel test processes (tests/support/ports.py): processes
running at once never get the same port or block, and an exited process's go back."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

from tests.support import ports

REPO = Path(__file__).resolve().parents[2]
# A process taking 60 ports from a window of 400 (below the ephemeral ports, where only
# free_port hands ports out): three at once collide at once unless they see each other's.
TAKE = """
import json, sys
from tests.support import ports
ports.FREE_PORT_RANGES = (range(int(sys.argv[1]), int(sys.argv[1]) + 400),)
taken = [start + i for start in [ports.free_port(4) for _ in range(5)] for i in range(4)]
taken += [ports.free_port() for _ in range(40)]
blocks = sorted({ports.rtp_block(number) for number in range(1, 10)})
print(json.dumps({"ports": taken, "blocks": blocks}))
sys.stdout.flush()
sys.stdin.read()  # keep the reservations until the test lets go
"""
WINDOW = str(random.Random().randrange(30000, 32768 - 400))


def test_processes_running_at_once_never_share_a_port_or_an_rtp_block() -> None:
    workers = [subprocess.Popen([sys.executable, "-c", TAKE, WINDOW], cwd=REPO, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
               for _ in range(3)]
    try:
        taken = [json.loads(worker.stdout.readline()) for worker in workers]  # type: ignore[union-attr]
    finally:
        for worker in workers:
            worker.communicate("", timeout=30)
    all_ports = [port for each in taken for port in each["ports"]]
    assert len(set(all_ports)) == len(all_ports) == 3 * 60
    all_blocks = [block for each in taken for block in each["blocks"]]
    assert len(set(all_blocks)) == len(all_blocks), all_blocks
    for each in taken:  # a process cycles through its own few blocks
        assert 1 <= len(each["blocks"]) <= ports.RTP_BLOCKS_PER_PROCESS
        for block in each["blocks"]:
            assert block in ports.RTP_RANGE
            assert (block - ports.RTP_RANGE.start) % ports.RTP_BLOCK == 0


def test_a_process_never_gets_a_port_twice_and_an_exited_ones_are_released() -> None:
    mine = [ports.free_port() for _ in range(200)]
    assert len(set(mine)) == len(mine)
    assert all(any(port in r for r in ports.FREE_PORT_RANGES) for port in mine)
    assert not any(port in ports.EPHEMERAL for port in mine)  # no self-connections
    exited = subprocess.run([sys.executable, "-c", TAKE, WINDOW], cwd=REPO, text=True, input="",
                            capture_output=True, check=True, timeout=60)
    gone = json.loads(exited.stdout)["ports"]
    ports.free_port()  # rewrites the reservations, dropping the exited process's
    lines = (ports.RESERVATIONS / "ports").read_text().splitlines()
    reserved = {int(line.split()[1]) for line in lines if line.startswith("port ")}
    assert set(mine) <= reserved
    assert not set(gone) & reserved
    assert f" {os.getpid()} " in "\n".join(lines)
