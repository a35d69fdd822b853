"""The FastAGI server: one ``AgiSession`` per TCP connection (per call), many at once.

Thin asyncio around ``agi.AgiConnection``. A reader task feeds the parser for the whole
session, so a ``HANGUP`` is noticed at once, even while no command is running: then
``session.hung_up`` is True, ``session.hangup_event`` is set and every waiting or later
command raises ``AgiHangup``.

Routing is by the path of ``AGI(agi://host:port/PATH)``. An unknown path is logged and the
connection closed without a word: Asterisk sets AGISTATUS=FAILURE and the dialplan goes on.
A handler's exception is logged with the channel and path and never reaches the server;
the connection is closed when the handler returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping

from callcenter.asterisk.agi import (
    AgiCommandError,
    AgiConnection,
    AgiEnvironment,
    AgiError,
    AgiHangup,
    AgiHangupNotice,
    AgiItem,
    AgiProtocolError,
    AgiResponse,
)

logger = logging.getLogger(__name__)

AgiHandler = Callable[["AgiSession"], Awaitable[None]]

READ_CHUNK = 64 * 1024


class AgiSession:
    """The AGI side of one call. Commands run one at a time, in the order they are called.

    ``env`` is the call's AgiEnvironment. A result of -1 from ANSWER, STREAM FILE, GET DATA,
    WAIT FOR DIGIT or EXEC raises AgiHangup when the channel is gone; when it is still up
    (STREAM FILE of a missing prompt also answers -1) it raises AgiCommandError instead, so a
    broken prompt never passes for a caller who hung up.
    """

    def __init__(
        self,
        environment: AgiEnvironment,
        connection: AgiConnection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.env = environment
        self.hung_up = False
        self.hangup_event = asyncio.Event()
        self.hangup_reason = ""
        self._connection = connection
        self._reader = reader
        self._writer = writer
        self._lock = asyncio.Lock()
        # One future per command sent, answered in order; a cancelled caller's future stays
        # in the queue so that its late response is matched and dropped, not misdelivered.
        self._waiting: deque[asyncio.Future[AgiResponse]] = deque()
        self._reader_task: asyncio.Task[None] | None = None

    @property
    def label(self) -> str:
        """How log lines name this call: channel, uniqueid and path."""
        env = self.env
        return f"{env.channel or '?'} ({env.uniqueid or '?'}) /{env.path}"

    # ------------------------------------------------------------------ commands

    async def command(self, name: str, *args: str | int) -> AgiResponse:
        """Send one command and return its response (code 200).

        Raises AgiHangup when the channel is gone (before or during the command, or on 511),
        AgiCommandError on 510/520 or any other non-200 code, AgiArgumentError for an unsafe
        argument (nothing is sent then).
        """
        async with self._lock:
            if self.hung_up:
                raise AgiHangup(f"{name}: the channel has hung up ({self.hangup_reason})")
            line = self._connection.command(name, *args)
            future: asyncio.Future[AgiResponse] = asyncio.get_running_loop().create_future()
            self._waiting.append(future)
            try:
                self._writer.write(line)
                await self._writer.drain()
            except (ConnectionError, OSError) as exc:
                self._mark_hung_up(f"connection lost while sending: {exc}")
            response = await future
        return self._checked(name, response)

    def _checked(self, name: str, response: AgiResponse) -> AgiResponse:
        if response.code == 200:
            return response
        if response.code == 511:
            self._mark_hung_up("511 dead channel")
            raise AgiHangup(f"{name}: {response.text or 'command not permitted on a dead channel'}")
        reason = {510: "unknown command", 520: "invalid syntax"}.get(response.code, "failed")
        raise AgiCommandError(name, response, f"{reason} ({response.code} {response.text})")

    async def _result_minus_one(self, name: str, response: AgiResponse) -> AgiHangup:
        """Result -1 means hangup, or a failure on a live channel (STREAM FILE of a missing
        file answers -1 too). Asterisk notices the hangup before it reads another command, so
        asking for the channel status tells the two apart."""
        if not self.hung_up:
            try:
                status = await self.command("CHANNEL STATUS")
            except AgiHangup:
                pass
            else:
                if status.result is not None and status.result >= 0:
                    raise AgiCommandError(
                        name, response, "failed with result -1 while the channel is up"
                    )
        self._mark_hung_up(f"{name} returned -1")
        return AgiHangup(f"{name}: the channel hung up")

    async def _run(self, name: str, *args: str | int) -> AgiResponse:
        response = await self.command(name, *args)
        if response.result == -1:
            raise await self._result_minus_one(name, response)
        return response

    async def answer(self) -> None:
        await self._run("ANSWER")

    async def stream_file(self, name: str, escape_digits: str = "") -> str | None:
        """Play a prompt; the digit that interrupted it, or None if it played to the end."""
        response = await self._run("STREAM FILE", name, escape_digits)
        return _digit("STREAM FILE", response)

    async def say_number(self, number: int, escape_digits: str = "") -> str | None:
        """Speak a number in the channel's language; the digit that interrupted it, if any."""
        return _digit("SAY NUMBER", await self._run("SAY NUMBER", number, escape_digits))

    async def say_digits(self, digits: str, escape_digits: str = "") -> str | None:
        return _digit("SAY DIGITS", await self._run("SAY DIGITS", digits, escape_digits))

    async def say_datetime(self, epoch: int, timezone: str, escape_digits: str = "",
                           format: str = "ABdY 'digits/at' IMp") -> str | None:
        """Speak a moment as a date and time, in ``timezone`` (an IANA name)."""
        response = await self._run("SAY DATETIME", epoch, escape_digits, format, timezone)
        return _digit("SAY DATETIME", response)

    async def get_data(self, name: str, timeout_ms: int, max_digits: int) -> str:
        """Play a prompt and collect up to max_digits; "" when the caller pressed nothing."""
        response = await self.command("GET DATA", name, timeout_ms, max_digits)
        if response.result_text == "-1":
            raise await self._result_minus_one("GET DATA", response)
        return response.result_text

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        response = await self._run("WAIT FOR DIGIT", timeout_ms)
        return _digit("WAIT FOR DIGIT", response)

    async def exec(self, app: str, args: str = "") -> int:
        """Run a dialplan application; its return value. -2 (no such application) raises."""
        response = await self._run("EXEC", app, args)
        if response.result == -2:
            raise AgiCommandError("EXEC", response, f"no dialplan application {app!r}")
        return response.result if response.result is not None else 0

    async def get_variable(self, name: str) -> str | None:
        response = await self.command("GET VARIABLE", name)
        if response.result != 1:
            return None
        return response.data if response.data is not None else ""

    async def set_variable(self, name: str, value: str) -> None:
        await self.command("SET VARIABLE", name, value)

    async def set_music(self, on: bool, moh_class: str = "default") -> None:
        await self.command("SET MUSIC", "on" if on else "off", moh_class)

    async def verbose(self, message: str, level: int = 1) -> None:
        await self.command("VERBOSE", message, level)

    async def hangup(self) -> None:
        """Hang the channel up; does nothing if it is already gone."""
        if self.hung_up:
            return
        with contextlib.suppress(AgiHangup):
            await self.command("HANGUP")

    async def wait_hangup(self, timeout: float | None = None) -> bool:
        """Wait until the channel hangs up; False if the timeout came first."""
        try:
            async with asyncio.timeout(timeout):
                await self.hangup_event.wait()
        except TimeoutError:
            return False
        return True

    # ------------------------------------------------------------------ reading

    def _start_reading(self, leftover: list[AgiItem]) -> None:
        for item in leftover:
            self._dispatch(item)
        self._reader_task = asyncio.create_task(self._read_loop(), name=f"agi-read {self.label}")

    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self._reader.read(READ_CHUNK)
                if not data:
                    self._mark_hung_up("Asterisk closed the connection")
                    return
                for item in self._connection.feed(data):
                    self._dispatch(item)
        except AgiProtocolError as exc:
            logger.error("AGI %s: protocol error, closing: %s", self.label, exc)
            self._mark_hung_up(f"protocol error: {exc}")
            self._writer.close()
        except (ConnectionError, OSError) as exc:
            self._mark_hung_up(f"connection error: {exc}")

    def _dispatch(self, item: AgiItem) -> None:
        if isinstance(item, AgiHangupNotice):
            self._mark_hung_up("HANGUP from Asterisk")
        elif isinstance(item, AgiResponse) and item.code != 100:
            future = self._waiting.popleft()
            if not future.done():
                future.set_result(item)

    def _mark_hung_up(self, reason: str) -> None:
        if self.hung_up:
            return
        logger.info("AGI %s: hung up (%s)", self.label, reason)
        self.hung_up = True
        self.hangup_reason = reason
        self.hangup_event.set()
        for future in self._waiting:
            if not future.done():
                future.set_exception(AgiHangup(f"the channel hung up ({reason})"))

    async def _close(self) -> None:
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
        for future in self._waiting:
            if not future.done():
                future.cancel()
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()


def _digit(command: str, response: AgiResponse) -> str | None:
    """STREAM FILE and WAIT FOR DIGIT answer the ASCII code of the digit, 0 for none."""
    if not response.result:
        return None
    if not 0 < response.result < 128:
        raise AgiCommandError(command, response, f"{response.result} is not a key code")
    return chr(response.result)


class AgiServer:
    """Accepts FastAGI connections and runs a handler per call, routed by the URL path.

    ``handler`` is either one coroutine function for every path or a mapping
    ``{"ivr": handle_ivr, ...}`` (paths without slashes). Port 0 binds a free port; read the
    real one from ``port`` after ``start()``.
    """

    def __init__(
        self,
        handler: AgiHandler | Mapping[str, AgiHandler],
        host: str = "127.0.0.1",
        port: int = 4573,
        *,
        environment_timeout: float = 10.0,
    ) -> None:
        if isinstance(handler, Mapping):
            self._routes: Mapping[str, AgiHandler] | None = dict(handler)
            self._default: AgiHandler | None = None
        else:
            self._routes = None
            self._default = handler
        self._host = host
        self._port = port
        self._environment_timeout = environment_timeout
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    @property
    def is_serving(self) -> bool:
        return self._server is not None and self._server.is_serving()

    @property
    def sessions_active(self) -> int:
        """Open FastAGI connections (calls being served)."""
        return len(self._connections)

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the FastAGI server is already started")
        # A deep backlog: a burst of calls must not see SYNs dropped and retried a second later.
        self._server = await asyncio.start_server(
            self._on_connection, self._host, self._port, backlog=1024
        )
        logger.info("FastAGI server listening on %s:%d", self._host, self.port)

    async def stop(self) -> None:
        """Stop listening, cancel the sessions still running and wait for them to end."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()
        logger.info("FastAGI server stopped")

    def _route(self, path: str) -> AgiHandler | None:
        if self._routes is None:
            return self._default
        return self._routes.get(path)

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        peer = writer.get_extra_info("peername")
        try:
            await self._serve(reader, writer, peer)
        except asyncio.CancelledError:
            # Only stop() cancels this task, and awaits it. Ending it normally spares asyncio's
            # stream callback from logging the cancellation as an error.
            writer.close()
        except Exception:  # a bug of ours must not take the server down
            logger.exception("FastAGI connection from %s failed", peer)
            writer.close()
        finally:
            self._connections.discard(task)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: object
    ) -> None:
        connection = AgiConnection()
        try:
            async with asyncio.timeout(self._environment_timeout):
                leftover = await _read_environment(reader, connection)
        except (TimeoutError, AgiProtocolError, ConnectionError, OSError) as exc:
            logger.warning("FastAGI connection from %s: no valid environment (%s)", peer, exc)
            writer.close()
            return
        environment = connection.environment
        assert environment is not None
        handler = self._route(environment.path)
        if handler is None:
            logger.warning(
                "FastAGI: no route for path %r (channel %s, uniqueid %s; known: %s); closing",
                environment.path,
                environment.channel,
                environment.uniqueid,
                ", ".join(sorted(self._routes or ())) or "none",
            )
            writer.close()
            return
        session = AgiSession(environment, connection, reader, writer)
        session._start_reading(leftover)
        logger.info("AGI %s: session started", session.label)
        try:
            await handler(session)
        except AgiHangup as exc:
            logger.info("AGI %s: handler ended by hangup: %s", session.label, exc)
        except AgiError as exc:
            logger.error("AGI %s: handler failed: %s", session.label, exc)
        except Exception:
            logger.exception("AGI %s: handler raised", session.label)
        finally:
            await session._close()
        logger.info("AGI %s: session closed", session.label)


async def _read_environment(
    reader: asyncio.StreamReader, connection: AgiConnection
) -> list[AgiItem]:
    """Read until the environment block is parsed; the items that came after it."""
    while True:
        data = await reader.read(READ_CHUNK)
        if not data:
            raise AgiProtocolError("the connection closed before the AGI environment ended")
        items = connection.feed(data)
        if connection.environment is not None:
            return [item for item in items if not isinstance(item, AgiEnvironment)]
