"""The FastAGI server: one ``AgiSession`` per TCP connection (per call), many at once.

Thin asyncio around ``agi.AgiConnection``. Each connection is an ``asyncio.Protocol`` that
feeds the parser as bytes arrive, so a ``HANGUP`` is noticed at once, even while no command
is running: then ``session.hung_up`` is True, ``session.hangup_event`` is set and every
waiting or later command raises ``AgiHangup``. Only the handler runs as a task.

Why a protocol and not streams with a reader task: under load (2,000 calls at once, 1,000
new a second) the tail of command latency is CPython's full garbage collections, whose
pause grows with the objects alive. A stream reader, a stream writer and a reader task per
call doubled the objects a call keeps alive; see docs/PERFORMANCE.md.

Routing is by the path of ``AGI(agi://host:port/PATH)``. An unknown path is logged and the
connection closed without a word: Asterisk sets AGISTATUS=FAILURE and the dialplan goes on.
A handler's exception is logged with the channel and path and never reaches the server;
the connection is closed when the handler returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from callcenter.asterisk.agi import (
    AgiCommandError,
    AgiConnection,
    AgiEnvironment,
    AgiError,
    AgiHangup,
    AgiHangupNotice,
    AgiItem,
    AgiProtocolError,
    AgiRecordingHangup,
    AgiResponse,
    RecordOutcome,
    record_file_arguments,
    record_outcome,
)
from callcenter.listener import GuardedListener
from callcenter.logfilter import ThrottledWarning
from callcenter.netaddr import address_in, parse_address, parse_networks

logger = logging.getLogger(__name__)

AgiHandler = Callable[["AgiSession"], Awaitable[None]]

# A burst of calls must not see SYNs dropped and retried a second later (asyncio's default
# is 100; the kernel caps it at net.core.somaxconn).
LISTEN_BACKLOG = 1024
# Refused sessions (a stranger's peer address, a wrong secret) are logged at most this often.
REFUSAL_LOG_EVERY_SECONDS = 60.0

class AgiGate:
    """Who may open a FastAGI session: Asterisk's peer addresses and the URL's secret.

    FastAGI has no login: whoever connects chooses the channel, the caller and the script
    (``agent`` logs an agent out). So a connection is served only from ``allowed_peers``
    (loopback when none are given) and only if the URL path starts with ``secret``
    (``agi://host:port/<secret>/<script>``, confgen.agi_url); the secret is stripped before
    routing and never logged. Refusals are logged once per ``REFUSAL_LOG_EVERY_SECONDS``.
    """

    def __init__(self, allowed_peers: Iterable[str] = (), secret: str = "") -> None:
        self._networks = parse_networks(list(allowed_peers) or ["127.0.0.0/8", "::1/128"],
                                        "allowed_peers")
        self._secret = secret.encode()
        self._refusals = ThrottledWarning(logger, REFUSAL_LOG_EVERY_SECONDS,
                                          more=" (%d more refused since the last warning)")

    def peer_allowed(self, peer: object) -> bool:
        """Whether a connection from ``peer`` (a socket's peername) may be served."""
        host = peer[0] if isinstance(peer, tuple) and peer and isinstance(peer[0], str) else None
        address = parse_address(host)
        return address is not None and address_in(address, self._networks)

    def admitted(self, environment: AgiEnvironment) -> AgiEnvironment | None:
        """The environment with the secret taken off its path; None if it is wrong."""
        if not self._secret:
            return environment
        given, _, script = environment.path.partition("/")
        if not hmac.compare_digest(given.encode(), self._secret):
            return None
        request = environment.request.replace(f"/{given}/", "/<secret>/", 1)
        return dataclasses.replace(environment, path=script, request=request)

    def refused(self, what: str, now: float) -> None:
        """Log a refusal, at most once per REFUSAL_LOG_EVERY_SECONDS (a flood stays quiet)."""
        self._refusals.warn("FastAGI: refused %s", what, now=now)

# Commands whose answer comes when a prompt has played (its length is Asterisk's to know).
MEDIA_COMMANDS = frozenset({"STREAM FILE", "GET DATA", "RECORD FILE", "SAY NUMBER",
                            "SAY DIGITS", "SAY DATETIME", "SAY ALPHA", "CONTROL STREAM FILE"})
# Where a command's own time limit (ms) is among its arguments.
TIMEOUT_ARGUMENT = {"WAIT FOR DIGIT": 0, "GET DATA": 1, "RECORD FILE": 3}


@dataclass(frozen=True)
class CommandTimeouts:
    """How long Asterisk may take to answer a command before the session is given up.

    A peer that stops answering (a hung Asterisk thread, a half-open connection, a forged
    session) would otherwise hold its session and descriptor for ever. ``control``: commands
    answered at once (ANSWER, SET VARIABLE...); ``media``: a prompt's length is unknown here,
    so this generous bound, plus the command's own time limit. EXEC (Dial, ConfBridge) lasts
    the conversation and has no bound: Asterisk closes the connection when the call ends.
    """

    control: float = 30.0
    media: float = 900.0

    def for_command(self, name: str, args: tuple[str | int, ...]) -> float | None:
        if name == "EXEC":
            return None
        index = TIMEOUT_ARGUMENT.get(name)
        own = args[index] if index is not None and index < len(args) else None
        own_seconds = own / 1000 if isinstance(own, int) and own > 0 else 0.0
        if name in MEDIA_COMMANDS:
            return self.media + own_seconds
        if name == "WAIT FOR DIGIT" and own_seconds == 0.0:  # -1: until a key, like a prompt
            return self.media
        return self.control + own_seconds


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
        transport: asyncio.WriteTransport,
        timeouts: CommandTimeouts = CommandTimeouts(),
    ) -> None:
        self.env = environment
        self.timeouts = timeouts
        self.hung_up = False
        self.hangup_event = asyncio.Event()
        self.hangup_reason = ""
        self._connection = connection
        self._transport = transport
        self._lock = asyncio.Lock()
        # One future per command sent, answered in order; a cancelled caller's future stays
        # in the queue so that its late response is matched and dropped, not misdelivered.
        self._waiting: deque[asyncio.Future[AgiResponse]] = deque()
        # RECORD FILE's answer tells how much was recorded: a HANGUP notice must not cut it off.
        self._recording: asyncio.Future[AgiResponse] | None = None
        self._closed = False
        # Asked once: asyncio.get_running_loop() costs a getpid() system call each time.
        self._loop = asyncio.get_running_loop()

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
        # The commands below await this coroutine directly, never through another layer: a
        # call waiting for Asterisk keeps as few objects alive as it can (see the module doc).
        async with self._lock:
            future = self._send(name, args)
            deadline = self._deadline(name, args)
            try:
                response = await future
            finally:
                if deadline is not None:
                    deadline.cancel()
                del future  # a raised AgiHangup must not keep this frame alive in a cycle
        return self._checked(name, response)

    def _deadline(self, name: str, args: tuple[str | int, ...]) -> asyncio.TimerHandle | None:
        """Give the session up if Asterisk does not answer ``name`` in time (a timer handle,
        cheaper than a timeout context: see the module doc on objects per call)."""
        seconds = self.timeouts.for_command(name, args)
        if seconds is None or self.hung_up:
            return None
        return self._loop.call_later(seconds, self._no_answer, name, seconds)

    def _no_answer(self, name: str, seconds: float) -> None:
        logger.warning("AGI %s: no answer to %s within %g s; giving the session up",
                       self.label, name, seconds)
        self._mark_hung_up(f"no answer to {name} within {seconds:g} s")
        self._transport.close()  # Asterisk's AGI() returns and the dialplan goes on

    def _send(self, name: str, args: tuple[str | int, ...]) -> asyncio.Future[AgiResponse]:
        """Write one command line (under the lock); the future of its answer."""
        if self.hung_up:
            raise AgiHangup(f"{name}: the channel has hung up ({self.hangup_reason})")
        line = self._connection.command(name, *args)
        future: asyncio.Future[AgiResponse] = self._loop.create_future()
        self._waiting.append(future)
        # No flow control is needed: a command waits for its answer before the next one,
        # so at most a line or two of ours is ever buffered.
        if self._transport.is_closing():
            self._mark_hung_up("connection lost while sending")
        else:
            self._transport.write(line)
        return future

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

    async def _digit_or_hangup(self, name: str, response: AgiResponse) -> str | None:
        """The key of a prompt's answer: its ASCII code, 0 for none, -1 for hangup/failure."""
        if response.result == -1:
            raise await self._result_minus_one(name, response)
        return _digit(name, response)

    async def answer(self) -> None:
        response = await self.command("ANSWER")
        if response.result == -1:
            raise await self._result_minus_one("ANSWER", response)

    async def stream_file(self, name: str, escape_digits: str = "") -> str | None:
        """Play a prompt; the digit that interrupted it, or None if it played to the end."""
        response = await self.command("STREAM FILE", name, escape_digits)
        return await self._digit_or_hangup("STREAM FILE", response)

    async def say_number(self, number: int, escape_digits: str = "") -> str | None:
        """Speak a number in the channel's language; the digit that interrupted it, if any."""
        response = await self.command("SAY NUMBER", number, escape_digits)
        return await self._digit_or_hangup("SAY NUMBER", response)

    async def say_digits(self, digits: str, escape_digits: str = "") -> str | None:
        response = await self.command("SAY DIGITS", digits, escape_digits)
        return await self._digit_or_hangup("SAY DIGITS", response)

    async def say_datetime(self, epoch: int, timezone: str, escape_digits: str = "",
                           format: str = "ABdY 'digits/at' IMp") -> str | None:
        """Speak a moment as a date and time, in ``timezone`` (an IANA name)."""
        response = await self.command("SAY DATETIME", epoch, escape_digits, format, timezone)
        return await self._digit_or_hangup("SAY DATETIME", response)

    async def get_data(self, name: str, timeout_ms: int, max_digits: int) -> str:
        """Play a prompt and collect up to max_digits; "" when the caller pressed nothing."""
        response = await self.command("GET DATA", name, timeout_ms, max_digits)
        if response.result_text == "-1":
            raise await self._result_minus_one("GET DATA", response)
        return response.result_text

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        response = await self.command("WAIT FOR DIGIT", timeout_ms)
        return await self._digit_or_hangup("WAIT FOR DIGIT", response)

    async def record_file(
        self,
        path: str,
        *,
        fmt: str = "wav",
        escape_digits: str = "#",
        timeout_ms: int,
        beep: bool = True,
        silence_seconds: int | None = None,
    ) -> RecordOutcome:
        """Record the caller into ``path``.``fmt`` (a path on Asterisk's machine, relative
        to its sounds folder unless absolute) until a key of ``escape_digits``, ``timeout_ms``
        (-1: no limit) or, if given, ``silence_seconds`` of silence.

        Returns how it ended: RecordOutcome(ended_by "key" | "timeout" | "silence", digit,
        endpos in samples). Raises ValueError (AgiArgumentError) for an unsafe path or a bad
        argument, before anything is sent; AgiRecordingHangup (an AgiHangup) when the caller
        hangs up, its ``outcome`` telling how much was recorded; AgiCommandError when
        Asterisk cannot record (the file cannot be created, the beep fails on a live channel).
        """
        arguments = record_file_arguments(
            path, fmt, escape_digits, timeout_ms, beep, silence_seconds
        )
        async with self._lock:
            future = self._send("RECORD FILE", arguments)
            deadline = self._deadline("RECORD FILE", arguments)
            self._recording = future
            try:
                response = await future
            finally:
                if deadline is not None:
                    deadline.cancel()
                self._recording = None
                del future
        response = self._checked("RECORD FILE", response)
        outcome = record_outcome(
            response, timeout_ms=timeout_ms, silence_detection=silence_seconds is not None
        )
        if outcome.ended_by != "hangup":
            return outcome
        if response.data != "hangup":  # "waitfor" or "randomerror": a failure, or the hangup
            await self._result_minus_one("RECORD FILE", response)
        self._mark_hung_up("hung up during RECORD FILE")
        raise AgiRecordingHangup(
            f"RECORD FILE: the channel hung up after {outcome.endpos} samples", outcome
        )

    async def exec(self, app: str, args: str = "") -> int:
        """Run a dialplan application; its return value. -2 (no such application) raises."""
        response = await self.command("EXEC", app, args)
        if response.result == -1:
            raise await self._result_minus_one("EXEC", response)
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

    # ------------------------------------------------------------------ from the protocol

    def _dispatch(self, item: AgiItem) -> None:
        if isinstance(item, AgiHangupNotice):
            self._mark_hung_up("HANGUP from Asterisk", notice=True)
        elif isinstance(item, AgiResponse) and item.code != 100 and self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_result(item)

    def _mark_hung_up(self, reason: str, *, notice: bool = False) -> None:
        """Fail what waits for an answer. After a HANGUP notice Asterisk still answers the
        command it is running, so a RECORD FILE keeps waiting for its answer."""
        if self.hung_up:
            return
        logger.debug("AGI %s: hung up (%s)", self.label, reason)
        self.hung_up = True
        self.hangup_reason = reason
        self.hangup_event.set()
        kept = self._recording if notice else None
        for future in self._waiting:
            if future is not kept and not future.done():
                future.set_exception(AgiHangup(f"the channel hung up ({reason})"))
        if kept is None:
            # Nothing is sent after a hangup, so late answers need no future to be matched to.
            self._waiting.clear()

    def _connection_lost(self, exc: Exception | None) -> None:
        if self._closed:
            return
        reason = "Asterisk closed the connection" if exc is None else f"connection error: {exc}"
        self._mark_hung_up(reason)
        for future in self._waiting:  # a RECORD FILE still waiting after a HANGUP notice
            if not future.done():
                future.set_exception(AgiHangup(f"the channel hung up ({reason})"))
        self._waiting.clear()

    def _close(self) -> None:
        """The handler is done: drop what still waits and close the connection."""
        self._closed = True
        for future in self._waiting:
            if not future.done():
                future.cancel()
        self._waiting.clear()
        self._transport.close()


def _digit(command: str, response: AgiResponse) -> str | None:
    """STREAM FILE and WAIT FOR DIGIT answer the ASCII code of the digit, 0 for none."""
    if not response.result:
        return None
    if not 0 < response.result < 128:
        raise AgiCommandError(command, response, f"{response.result} is not a key code")
    return chr(response.result)


class _AgiProtocol(asyncio.Protocol):
    """One FastAGI connection: the environment first, then bytes straight to its session."""

    def __init__(self, server: AgiServer) -> None:
        self._server = server
        self._connection = AgiConnection()
        self._transport: asyncio.Transport | None = None
        self._peer: object = None
        self._timer: asyncio.TimerHandle | None = None
        self._session: AgiSession | None = None
        self._closing = False
        self._lost: asyncio.Future[None] | None = None  # made only when stop() waits

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._peer = transport.get_extra_info("peername")
        self._server._protocols.add(self)
        loop = self._server._loop
        assert loop is not None  # connections come only while the server is started
        if not self._server._gate.peer_allowed(self._peer):
            self._server._gate.refused(f"a connection from {self._peer}: not an allowed "
                                       "peer (service.agi_allowed_peers)", loop.time())
            self.close()
            return
        self._timer = loop.call_later(self._server._environment_timeout,
                                      self._environment_timed_out)

    def data_received(self, data: bytes) -> None:
        try:
            items = self._connection.feed(data)
        except AgiProtocolError as exc:
            self._protocol_error(exc)
            return
        session = self._session
        if session is None:
            if self._connection.environment is None:
                return
            session = self._start_session()
            if session is None:
                return
            items = [item for item in items if not isinstance(item, AgiEnvironment)]
        for item in items:
            session._dispatch(item)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._server._protocols.discard(self)
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        if self._session is not None:
            self._session._connection_lost(exc)
        elif not self._closing:
            reason = exc or "the connection closed before the AGI environment ended"
            logger.warning("FastAGI connection from %s: no valid environment (%s)",
                           self._peer, reason)

    def close(self) -> None:
        self._closing = True
        if self._transport is not None:
            self._transport.close()

    async def wait_closed(self) -> None:
        if self in self._server._protocols:
            if self._lost is None:
                self._lost = asyncio.get_running_loop().create_future()
            await self._lost

    def _environment_timed_out(self) -> None:
        if self._connection.environment is None:
            logger.warning("FastAGI connection from %s: no valid environment (none within %g s)",
                           self._peer, self._server._environment_timeout)
            self.close()

    def _protocol_error(self, exc: AgiProtocolError) -> None:
        if self._session is not None:
            logger.error("AGI %s: protocol error, closing: %s", self._session.label, exc)
            self._session._mark_hung_up(f"protocol error: {exc}")
        else:
            logger.warning("FastAGI connection from %s: no valid environment (%s)",
                           self._peer, exc)
        self.close()

    def _start_session(self) -> AgiSession | None:
        assert self._timer is not None and self._transport is not None
        self._timer.cancel()
        self._timer = None
        offered = self._connection.environment
        assert offered is not None and self._server._loop is not None
        environment = self._server._gate.admitted(offered)
        if environment is None:
            self._server._gate.refused(
                f"a session from {self._peer} (channel {offered.channel or '?'}): wrong or "
                "missing secret in the AGI URL", self._server._loop.time())
            self.close()
            return None
        handler = self._server._route(environment.path)
        if handler is None:
            logger.warning(
                "FastAGI: no route for path %r (channel %s, uniqueid %s; known: %s); closing",
                environment.path,
                environment.channel,
                environment.uniqueid,
                ", ".join(sorted(self._server._routes or ())) or "none",
            )
            self.close()
            return None
        session = AgiSession(environment, self._connection, self._transport,
                             self._server._timeouts)
        self._session = session
        self._server._start_handler(session, handler)
        return session


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
        allowed_peers: Iterable[str] = (),
        secret: str = "",
        max_sessions: int = 2000,
        timeouts: CommandTimeouts = CommandTimeouts(),
    ) -> None:
        self._gate = AgiGate(allowed_peers, secret)
        if isinstance(handler, Mapping):
            self._routes: Mapping[str, AgiHandler] | None = dict(handler)
            self._default: AgiHandler | None = None
        else:
            self._routes = None
            self._default = handler
        self._host = host
        self._port = port
        self._environment_timeout = environment_timeout
        self.max_sessions = max_sessions
        self._timeouts = timeouts
        self._server: GuardedListener | None = None
        self._protocols: set[_AgiProtocol] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def port(self) -> int:
        return self._server.port if self._server is not None else self._port

    @property
    def is_serving(self) -> bool:
        return self._server is not None and self._server.is_serving

    @property
    def sessions_refused(self) -> int:
        """Connections closed at once because ``max_sessions`` were open."""
        return self._server.refused if self._server is not None else 0

    @property
    def sessions_active(self) -> int:
        """Open FastAGI connections (calls being served)."""
        return len(self._protocols)

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the FastAGI server is already started")
        self._loop = asyncio.get_running_loop()
        # Beyond max_sessions a connection is closed at once: Asterisk's AGI() fails and the
        # dialplan's fallback takes the call (its record comes from AMI like any other).
        server = GuardedListener("FastAGI", lambda: _AgiProtocol(self), self._host, self._port,
                                 max_connections=self.max_sessions,
                                 active=lambda: len(self._protocols), backlog=LISTEN_BACKLOG)
        await server.start()
        self._server = server
        logger.info("FastAGI server listening on %s:%d (at most %d sessions)", self._host,
                    self.port, self.max_sessions)

    async def stop(self) -> None:
        """Stop listening, cancel the sessions still running and wait for them to end."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        await server.wait_closed()  # connections being set up join the lists below first
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        protocols = list(self._protocols)
        for protocol in protocols:  # those still waiting for their environment
            protocol.close()
        await asyncio.gather(*(protocol.wait_closed() for protocol in protocols))
        logger.info("FastAGI server stopped")

    def _route(self, path: str) -> AgiHandler | None:
        if self._routes is None:
            return self._default
        return self._routes.get(path)

    def _start_handler(self, session: AgiSession, handler: AgiHandler) -> None:
        assert self._loop is not None
        task = self._loop.create_task(
            self._run_handler(session, handler), name=f"agi {session.label}"
        )
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _run_handler(self, session: AgiSession, handler: AgiHandler) -> None:
        logger.debug("AGI %s: session started", session.label)
        try:
            await handler(session)
        except AgiHangup as exc:
            logger.debug("AGI %s: handler ended by hangup: %s", session.label, exc)
        except AgiError as exc:
            logger.error("AGI %s: handler failed: %s", session.label, exc)
        except Exception:  # a bug of ours must not take the server down
            logger.exception("AGI %s: handler raised", session.label)
        finally:
            session._close()
        logger.info("AGI %s: session closed (%s)", session.label,
                    session.hangup_reason or "handler finished")
