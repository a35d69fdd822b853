"""The HTTP face over real sockets: a half-sent request is closed after the header time, a
slow body gets 408, one connection beyond the cap gets a canned 503, and running out of
file descriptors neither spins nor floods the log."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from callcenter.listener import MIN_HTTP_CONNECTIONS, plan_capacity, raise_open_file_limit
from callcenter.web.limits import GuardedSite, HttpLimits, install_body_deadline, runner_options

WAIT = 5.0  # a guard against a hung test, never a pause
REPO = Path(__file__).resolve().parents[2]


async def echo(request: web.Request) -> web.Response:
    return web.json_response({"got": len(await request.read())})


async def serve(limits: HttpLimits) -> AsyncIterator[tuple[GuardedSite, int]]:
    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    install_body_deadline(app, limits)
    runner = web.AppRunner(app, access_log=None, **runner_options(limits))
    await runner.setup()
    site = GuardedSite(runner, "127.0.0.1", 0, max_connections=limits.max_connections)
    await site.start()
    try:
        yield site, site.port
    finally:
        await runner.cleanup()


@pytest.fixture
async def quick() -> AsyncIterator[tuple[GuardedSite, int]]:
    async for served in serve(HttpLimits(max_connections=MIN_HTTP_CONNECTIONS,
                                         header_seconds=0.3, body_seconds=0.3)):
        yield served


async def read_all(reader: asyncio.StreamReader) -> bytes:
    try:
        return await asyncio.wait_for(reader.read(), WAIT)
    except ConnectionResetError:
        return b""


async def test_a_half_sent_request_is_closed_after_the_header_time(quick) -> None:
    _site, port = quick
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    opened = loop.time()
    writer.write(b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # and never the rest
    assert await read_all(reader) == b""
    assert 0.25 <= loop.time() - opened < 3, "closed by the header deadline, not before"
    writer.close()


async def test_a_connection_that_sends_nothing_is_closed_too_and_a_prompt_one_is_served(
        quick) -> None:
    _site, port = quick
    silent_reader, silent = await asyncio.open_connection("127.0.0.1", port)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = await read_all(reader)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'{"got": 0}')
    assert await read_all(silent_reader) == b""
    silent.close()
    writer.close()


async def test_a_body_that_does_not_arrive_in_time_gets_408(quick) -> None:
    _site, port = quick
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
    answer = await read_all(reader)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    body = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert body == {"error": "the request body did not arrive within 0.3 s", "status": 408}
    writer.close()


async def test_a_body_over_the_size_limit_gets_a_json_413_stating_it(quick) -> None:
    """The deadline reads the body before any handler: the size check fires there, and must
    answer as the handlers do (it answered aiohttp's plain text)."""
    _site, port = quick
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    size = 1024 ** 2 + 1  # aiohttp's default client_max_size is 1 MiB
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\nConnection: close\r\n\r\n" % size + b"a" * size)
    answer = await read_all(reader)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    body = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert body["status"] == 413 and body["limit_bytes"] == 1024 ** 2, body
    writer.close()


async def test_one_connection_beyond_the_cap_gets_a_503_at_once_and_room_comes_back() -> None:
    async for site, port in serve(HttpLimits(max_connections=MIN_HTTP_CONNECTIONS,
                                             header_seconds=60, body_seconds=60)):
        held = [await asyncio.open_connection("127.0.0.1", port)
                for _ in range(MIN_HTTP_CONNECTIONS)]
        async with asyncio.timeout(WAIT):  # every held connection is set up
            while site.listener is not None and site.listener.connections < len(held):
                await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        answer = await read_all(reader)
        assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["status"] == 503
        assert site.listener is not None and site.listener.refused == 1
        writer.close()
        for _reader, held_writer in held:
            held_writer.close()
        async with asyncio.timeout(WAIT):
            while site.listener.connections:
                await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (await read_all(reader)).startswith(b"HTTP/1.1 200")
        writer.close()


def test_calls_get_their_share_of_the_open_file_limit_first() -> None:
    roomy = plan_capacity(65536, reserved=256, agi_sessions=2000, http_connections=500,
                          sse_streams=100)
    assert (roomy.agi_sessions, roomy.http_connections, roomy.sse_streams) == (2000, 500, 100)
    tight = plan_capacity(1024, reserved=256, agi_sessions=2000, http_connections=500,
                          sse_streams=100)
    assert tight.agi_sessions + tight.http_connections <= 1024 - 256
    assert tight.http_connections == MIN_HTTP_CONNECTIONS
    assert tight.sse_streams < tight.http_connections, "ordinary requests keep some room"
    middle = plan_capacity(2600, reserved=256, agi_sessions=2000, http_connections=500,
                           sse_streams=400)
    assert (middle.agi_sessions, middle.http_connections) == (2000, 2600 - 256 - 2000)
    assert middle.sse_streams == 344 - 344 // 4


FLOODED_LISTENER = textwrap.dedent("""
    import asyncio, logging, os, resource, sys, time
    from callcenter.listener import GuardedListener

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    async def main():
        held = []
        class Hold(asyncio.Protocol):
            def connection_made(self, transport):
                held.append(transport)
        listener = GuardedListener("T", Hold, "127.0.0.1", 0, max_connections=10_000,
                                   active=lambda: len(held))
        await listener.start()
        filler = []
        while True:  # every descriptor this process may open, taken
            try:
                filler.append(os.open(os.devnull, os.O_RDONLY))
            except OSError:
                break
        stop = asyncio.Event()
        asyncio.get_running_loop().add_reader(0, stop.set)
        print(listener.port, flush=True)
        started = time.process_time()
        await stop.wait()
        print(f"{time.process_time() - started:.3f} {listener.dropped}", flush=True)

    asyncio.run(main())
""")


async def test_running_out_of_descriptors_backs_off_instead_of_spinning() -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", FLOODED_LISTENER, cwd=REPO, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    assert child.stdout is not None and child.stderr is not None and child.stdin is not None
    try:
        port = int(await asyncio.wait_for(child.stdout.readline(), WAIT))
        clients = [await asyncio.open_connection("127.0.0.1", port) for _ in range(100)]
        pauses = 0
        async with asyncio.timeout(WAIT):  # three pauses: 0.05 + 0.1 + 0.2 s at least
            while pauses < 4:
                line = await child.stderr.readline()
                assert line, "the listener process ended"
                if b"out of file descriptors" in line:
                    pauses += 1
        child.stdin.write(b"stop\n")
        await child.stdin.drain()
        cpu, dropped = (await asyncio.wait_for(child.stdout.readline(), WAIT)).split()
        rest = await asyncio.wait_for(child.stderr.read(), WAIT)
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()
    assert rest.count(b"out of file descriptors") <= 2, "one line per pause, no burst"
    assert 4 <= int(dropped) <= 6
    assert float(cpu) < 0.2, f"{cpu} s of CPU while refusing: a spin"
    for _reader, writer in clients:
        writer.close()


def test_the_open_file_limit_is_raised_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 256), hard))
    try:
        assert raise_open_file_limit() == hard
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
