"""TCP listeners that a flood of connections can neither spin nor use to starve call handling.

asyncio's own accept loop (``loop.create_server``) has two failure modes under a flood:
- it takes every connection, so one face (HTTP) can hold every file descriptor the process
  may open, and then the other (FastAGI, the calls) cannot accept anything;
- when ``accept()`` fails with EMFILE it logs a traceback and goes on trying the rest of its
  backlog in the same tick (CPython 3.11), then retries every second: a gigabyte of log in
  minutes at 100% CPU.

``GuardedListener`` accepts with its own reader callback instead:
- at most ``max_connections`` at once (``active()`` counts what the owner holds, plus what
  is being set up); one more is answered ``refusal`` (e.g. a canned 503) and closed at once,
  so it costs a descriptor for microseconds;
- on EMFILE/ENFILE it frees a reserved descriptor to accept and close the connection at the
  head of the queue (the client sees a close, not a hang), then stops reading the listening
  socket for a pause that doubles up to a second: no spin, one warning per pause.

``raise_open_file_limit`` and ``plan_capacity`` size the caps from the process's open-file
limit so that FastAGI keeps its share whatever the web face holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import resource
import socket
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
ACCEPTS_PER_WAKEUP = 64  # then other callbacks get their turn
FIRST_PAUSE = 0.05  # seconds without accepting after running out of descriptors
LONGEST_PAUSE = 1.0
MIN_HTTP_CONNECTIONS = 16  # health checks and an admin must still get in


class GuardedListener:
    """Accepts connections for ``protocol_factory`` on ``host:port``, within limits.

    ``active()`` says how many connections the owner holds now (those closed by the peer
    must have left it). Port 0 binds a free port: read it from ``port`` after ``start()``.
    """

    def __init__(
        self,
        name: str,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: str,
        port: int,
        *,
        max_connections: int,
        active: Callable[[], int],
        refusal: bytes = b"",
        backlog: int = 128,
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections: {max_connections} must be at least 1")
        self.name = name
        self.max_connections = max_connections
        self.refused = 0  # connections answered ``refusal`` because the cap was reached
        self.dropped = 0  # connections closed because the process had no descriptor left
        self._factory = protocol_factory
        self._host = host
        self._port = port
        self._active = active
        self._refusal = refusal
        self._backlog = backlog
        self._setting_up = 0
        self._socket: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reserve: int | None = None  # a descriptor kept to be freed on EMFILE
        self._pause = FIRST_PAUSE
        self._paused: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        if self._socket is not None:
            return int(self._socket.getsockname()[1])
        return self._port

    @property
    def is_serving(self) -> bool:
        return self._socket is not None

    @property
    def connections(self) -> int:
        return self._active() + self._setting_up

    async def start(self) -> None:
        if self._socket is not None:
            raise RuntimeError(f"{self.name}: already listening")
        self._loop = asyncio.get_running_loop()
        self._socket = _listening_socket(self._host, self._port, self._backlog)
        self._reserve = _reserve_descriptor()
        self._loop.add_reader(self._socket.fileno(), self._accept_some)

    def close(self) -> None:
        """Stop accepting (connections already made are their owner's to close)."""
        sock, self._socket = self._socket, None
        if sock is None:
            return
        if self._paused is not None:
            self._paused.cancel()
            self._paused = None
        else:
            assert self._loop is not None
            self._loop.remove_reader(sock.fileno())
        sock.close()
        if self._reserve is not None:
            os.close(self._reserve)
            self._reserve = None

    async def wait_closed(self) -> None:
        """Wait for the connections being set up when ``close()`` was called."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ------------------------------------------------------------------ accepting

    def _accept_some(self) -> None:
        sock = self._socket
        if sock is None:
            return
        for _ in range(ACCEPTS_PER_WAKEUP):
            try:
                connection, _address = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno in OUT_OF_DESCRIPTORS:
                    self._out_of_descriptors(sock, exc)
                else:
                    logger.warning("%s: accept() failed: %s", self.name, exc)
                return
            self._pause = FIRST_PAUSE
            if self.connections >= self.max_connections:
                self.refused += 1
                logger.warning("%s: %d connections open, the most allowed; refused one",
                               self.name, self.max_connections)
                _refuse(connection, self._refusal)
                continue
            self._setting_up += 1
            assert self._loop is not None
            task = self._loop.create_task(self._connect(connection))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _connect(self, connection: socket.socket) -> None:
        assert self._loop is not None
        try:
            connection.setblocking(False)
            await self._loop.connect_accepted_socket(self._factory, connection)
        except Exception as exc:  # the peer went away meanwhile, most likely
            logger.info("%s: a connection could not be set up: %s", self.name, exc)
            connection.close()
        finally:
            self._setting_up -= 1

    def _out_of_descriptors(self, sock: socket.socket, exc: OSError) -> None:
        """No descriptor left in the process: turn the oldest waiting connection away
        with the reserved one, then stop reading the listening socket for a while."""
        self.dropped += 1
        if self._reserve is not None:
            os.close(self._reserve)
            self._reserve = None
            with contextlib.suppress(OSError):
                connection, _address = sock.accept()
                connection.close()
            self._reserve = _reserve_descriptor()
        logger.error("%s: out of file descriptors (%s); not accepting for %g s",
                     self.name, exc.strerror, self._pause)
        assert self._loop is not None
        self._loop.remove_reader(sock.fileno())
        self._paused = self._loop.call_later(self._pause, self._resume)
        self._pause = min(self._pause * 2, LONGEST_PAUSE)

    def _resume(self) -> None:
        self._paused = None
        if self._socket is not None and self._loop is not None:
            self._loop.add_reader(self._socket.fileno(), self._accept_some)
            if self._reserve is None:
                self._reserve = _reserve_descriptor()


def _listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    family, kind, proto, _name, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _reserve_descriptor() -> int | None:
    try:
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None  # none left now: the next resume tries again


def _refuse(connection: socket.socket, refusal: bytes) -> None:
    with contextlib.suppress(OSError):
        connection.setblocking(False)
        if refusal:
            connection.send(refusal)
    connection.close()


# ------------------------------------------------------------------ the open-file budget


def raise_open_file_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft if soft != resource.RLIM_INFINITY else wanted
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError) as exc:
        logger.warning("the open-file limit stays at %d (raising it to %d failed: %s)",
                       soft, wanted, exc)
        return soft
    return wanted


@dataclass(frozen=True)
class Capacity:
    """How many connections each face may hold within the open-file limit."""

    open_files: int
    agi_sessions: int
    http_connections: int
    sse_streams: int


def plan_capacity(open_files: int, *, reserved: int, agi_sessions: int,
                  http_connections: int, sse_streams: int) -> Capacity:
    """Calls first: FastAGI gets its sessions out of what ``reserved`` leaves, HTTP what is
    left after that (at least MIN_HTTP_CONNECTIONS), and event streams leave a quarter of
    the HTTP connections to ordinary requests. The sum never exceeds the limit, so the web
    face cannot take the descriptors a call needs."""
    usable = max(open_files - reserved, 2 * MIN_HTTP_CONNECTIONS)
    agi = max(1, min(agi_sessions, usable - MIN_HTTP_CONNECTIONS))
    http = max(MIN_HTTP_CONNECTIONS, min(http_connections, usable - agi))
    sse = max(1, min(sse_streams, http - max(MIN_HTTP_CONNECTIONS // 2, http // 4)))
    return Capacity(open_files=open_files, agi_sessions=agi, http_connections=http,
                    sse_streams=sse)
