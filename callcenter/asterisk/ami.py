"""The AMI client: login, resync, live events, actions; reconnects with backoff.

Built on panoramisk's ``AMIProtocol`` (one TCP connection), ``Action`` (ActionID, the future,
gathering list responses) and ``Message`` (case-insensitive headers). Its ``Manager`` is not
used: its fixed 2 s reconnect, re-sending of unanswered actions after a reconnect (an
Originate could dial twice) and fire-and-forget callbacks are what this module replaces.

After every (re)connect: log in (events on), wait for FullyBooted (Asterisk sends it right
after the login response when it is already up), take a CoreShowChannels snapshot, await
``on_ready(snapshot)`` so the owner can reconcile, and only then deliver events to
``on_event``. Events that arrive meanwhile are buffered and delivered, in order, right after
``on_ready`` returns. A failed connection or login is retried after an exponential backoff
with jitter (``backoff_delay``), reset by a successful login.

An event that carries the ActionID of an action nobody waits for any more (an
OriginateResponse after the action's answer was taken, a list item after a timeout) is
delivered to ``on_event`` like any other event.

Framing (bytes → ``Message``) is sans-I/O in ``AmiFramer``: the banner, ``Key: value`` lines,
a blank line ending each message, bounded lines and messages, and UTF-8 decoded
incrementally (panoramisk decodes each TCP chunk alone and drops a character cut in two).
Caller IDs reach AMI unescaped: the framer drops any message a caller's line break could
have split or forged (see ``AmiFramer`` and docs/security-callerid.md).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import inspect
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from callcenter.asterisk.events import AmiEvent, CoreShowChannel, FullyBooted, parse_event
from callcenter.logfilter import ThrottledWarning

logger = logging.getLogger(__name__)

MAX_LINE_CHARS = 64 * 1024
MAX_MESSAGE_CHARS = 1024 * 1024
BANNER_PREFIX = "Asterisk Call Manager/"

OnEvent = Callable[[AmiEvent], None]
OnReady = Callable[[list[CoreShowChannel]], Awaitable[None] | None]
Sleep = Callable[[float], Awaitable[None]]


class AmiError(Exception):
    """Base class of every AMI client error."""


class AmiValueError(AmiError, ValueError):
    """An action header or value is unsafe (CR, LF, NUL) or malformed; nothing was sent."""


class AmiProtocolError(AmiError):
    """The peer does not speak AMI, or sent an oversized line or message."""


class AmiNotConnected(AmiError):
    """No logged-in, booted AMI connection right now."""


class AmiConnectionLost(AmiError):
    """The connection closed while an action was waiting for its response."""


class AmiTimeout(AmiError, TimeoutError):
    """No response (or no readiness) within the time allowed."""


class AmiLoginError(AmiError):
    """Asterisk refused the username or secret."""


class AmiActionError(AmiError):
    """Asterisk answered an action with Response: Error."""

    def __init__(self, action: str, message: str, response: Message | list[Message]) -> None:
        super().__init__(f"AMI {action} failed: {message or 'no message'}")
        self.action = action
        self.message = message
        self.response = response


# --------------------------------------------------------------------------- pure parts


# Asterisk writes a channel snapshot as these headers, in this order, each once (with a
# prefix such as "Dest" for the second channel of a Dial event): manager.c,
# ast_manager_build_channel_state_string_prefix. CallerIDNum and ConnectedLineNum are copied
# unescaped, so they are where a caller's bytes can break a line.
SNAPSHOT_HEADERS = (
    "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
    "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten",
    "Priority", "Uniqueid", "Linkedid",
)
# What Asterisk writes after the last unescaped field of a snapshot: seeing it again is how
# the framer knows where a message cut in two resumes (a caller ID holds at most 79 bytes in
# PJSIP, too few to forge these eight headers as well as a message).
SNAPSHOT_TAIL = SNAPSHOT_HEADERS[SNAPSHOT_HEADERS.index("ConnectedLineName") :]
# A message cut in two resumes within the length of one header value; past this many
# characters of quarantine, give up waiting for its tail.
MAX_QUARANTINE_CHARS = 64 * 1024
# Headers that say which call, action or message this is: never legitimately repeated.
_IDENTITY_SUFFIXES = ("uniqueid", "linkedid", "channel")
_IDENTITY_NAMES = frozenset({"event", "response", "actionid"})
UNTRUSTED_WARNING_INTERVAL = 10.0


class AmiFramer:
    """Bytes from Asterisk → panoramisk ``Message`` objects, without I/O.

    The first line must be the banner ``Asterisk Call Manager/<version>``. A line or message
    over its bound raises AmiProtocolError; the connection must then be dropped.

    A caller's ID reaches AMI unescaped: a CR LF in it starts a new header, two of them a new
    message. So a message is *untrusted*, and dropped whole, when it cannot be what Asterisk
    wrote: its first header is not Event or Response (the tail of a message cut in two), it
    holds a line that is not ``Key: value``, a header naming a call (any ``*Uniqueid``,
    ``*Linkedid``, ``*Channel``, or Event, Response, ActionID) appears twice, or a channel
    snapshot is not whole and in Asterisk's order (a line added to it, or the message cut
    short after the caller ID). Dropping, not
    taking the first occurrence: a message cut in two carries the identity of one call and
    the tail of another's, and no part of it can be told apart. Untrusted messages are
    counted in ``untrusted_messages`` (their junk lines in ``garbage_lines``) and reported in
    one warning every ``warning_interval`` seconds at most, so a hostile caller cannot flood
    the log.

    A snapshot cut short (no ConnectedLineName ... Linkedid after its caller ID) means a blank
    line was injected: every following message up to and including the one that holds the
    cut snapshot's tail is the caller's text, or the tail of Asterisk's message, and is dropped
    too (the quarantine). Asterisk writes each event whole, so no other event comes between.
    """

    def __init__(
        self, *, max_line_chars: int = MAX_LINE_CHARS, max_message_chars: int = MAX_MESSAGE_CHARS,
        warning_interval: float = UNTRUSTED_WARNING_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.version: str | None = None
        self.garbage_lines = 0
        self.untrusted_messages = 0
        self._max_line = max_line_chars
        self._max_message = max_message_chars
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""
        self._headers: dict[str, Any] = {}
        self._message_chars = 0
        self._untrusted: str | None = None  # why the message being read is untrusted
        self._quarantine: str | None = None  # the prefix of the snapshot cut in two
        self._quarantine_chars = 0
        self._warning = ThrottledWarning(logger, warning_interval, clock)

    def feed(self, data: bytes) -> list[Message]:
        lines = (self._partial + self._decoder.decode(data)).split("\n")
        self._partial = lines.pop()
        max_line, max_message = self._max_line, self._max_message
        if len(self._partial) > max_line:
            raise AmiProtocolError(f"an AMI line longer than {max_line} characters")
        if self.version is None and lines:
            banner = lines.pop(0).rstrip("\r")
            if not banner.startswith(BANNER_PREFIX):
                raise AmiProtocolError(f"not an Asterisk manager; it said {banner[:80]!r}")
            self.version = banner[len(BANNER_PREFIX) :].strip()
        messages: list[Message] = []
        headers, size, untrusted = self._headers, self._message_chars, self._untrusted
        # The hot loop of the AMI client: kept inline, one pass per line.
        for line in lines:
            if line[-1:] == "\r":
                line = line[:-1]
            if not line:
                if headers or untrusted:
                    message = self._message(headers, untrusted, size)
                    if message is not None:
                        messages.append(message)
                    headers, size, untrusted = {}, 0, None
                continue
            size += len(line) + 2
            if len(line) > max_line:
                raise AmiProtocolError(f"an AMI line longer than {max_line} characters")
            if size > max_message:
                raise AmiProtocolError(f"an AMI message longer than {max_message} characters")
            key, colon, value = line.partition(":")
            if not colon or not key:
                self.garbage_lines += 1
                untrusted = untrusted or f"a line that is not 'Key: value': {line[:80]!r}"
                continue
            if value[:1] == " ":
                value = value[1:]
            if key in headers:  # a repeated header becomes a list, as panoramisk does
                existing = headers[key]
                if isinstance(existing, list):
                    existing.append(value)
                else:
                    headers[key] = [existing, value]
                lowered = key.lower()
                if lowered in _IDENTITY_NAMES or lowered.endswith(_IDENTITY_SUFFIXES):
                    untrusted = untrusted or f"header {key} given twice"
            else:
                headers[key] = value
        self._headers, self._message_chars, self._untrusted = headers, size, untrusted
        return messages

    def _message(self, headers: dict[str, Any], untrusted: str | None,
                 size: int) -> Message | None:
        if self._quarantine is not None:
            untrusted = self._quarantined(headers, size)
        elif headers:  # even a message already untrusted may have been cut short
            problem, self._quarantine = _structure_problem(headers)
            self._quarantine_chars = 0
            untrusted = untrusted or problem
        if untrusted is not None:
            self.untrusted_messages += 1
            self._warning.warn("AMI: dropped an untrusted message (%s): %s; %d dropped so far",
                               untrusted, _describe(headers), self.untrusted_messages)
            return None
        return _message(headers)

    def _quarantined(self, headers: dict[str, Any], size: int) -> str:
        prefix = self._quarantine
        assert prefix is not None
        self._quarantine_chars += size
        # Present, in any order: the caller's text may have put one of them first.
        if _has_tail(headers, prefix):
            self._quarantine = None
            return "the tail of a message cut in two by a caller ID"
        if self._quarantine_chars > MAX_QUARANTINE_CHARS:
            self._quarantine = None
            logger.warning("AMI: no tail of the message cut in two within %d characters; "
                           "trusting messages again", MAX_QUARANTINE_CHARS)
        return "it follows a message cut in two by a caller ID"


def _has_tail(headers: dict[str, Any], prefix: str) -> bool:
    """Whether the message holds every header of a snapshot's tail (SNAPSHOT_TAIL)."""
    return all(prefix + name in headers for name in SNAPSHOT_TAIL)


_SNAPSHOTS: dict[str, list[str]] = {"": list(SNAPSHOT_HEADERS)}  # by prefix, made once


def _snapshot(prefix: str) -> list[str]:
    expected = _SNAPSHOTS.get(prefix)
    if expected is None:
        expected = [prefix + name for name in SNAPSHOT_HEADERS]
        if len(_SNAPSHOTS) < 64:  # prefixes come from Asterisk's code; bound it anyway
            _SNAPSHOTS[prefix] = expected
    return expected


def _structure_problem(headers: dict[str, Any]) -> tuple[str | None, str | None]:
    """Why a message cannot be as Asterisk wrote it (or None), and the snapshot prefix when
    it was cut short: the messages that follow are then quarantined (see AmiFramer)."""
    keys = list(headers)
    first = keys[0]
    if first != "Event" and first != "Response" and first.lower() not in ("event", "response"):
        return "its first header is neither Event nor Response", None
    # The hot path: most events hold one snapshot, without a prefix (checked in one slice).
    joined = "\n".join(keys)
    snapshots = joined.count("ChannelState\n")
    if not snapshots:
        return None, None
    if snapshots == 1 and "ChannelState" in headers:
        prefixes = [""]
    else:
        prefixes = [key[:-12] for key in keys if key[-12:] == "ChannelState"]
    for prefix in prefixes:
        expected = _snapshot(prefix)
        start = keys.index(expected[0]) if expected[0] in headers else -1
        if start >= 0 and keys[start : start + len(expected)] == expected:
            continue
        # Cut short, or only a line added? A blank line ends the message before the
        # snapshot's tail, which no caller ID is long enough to forge whole.
        cut = not _has_tail(headers, prefix)
        return (f"the channel snapshot {prefix or 'of the channel'} is not whole",
                prefix if cut else None)
    return None, None


def _describe(headers: dict[str, Any]) -> str:
    """Enough of a message to find it again, never its caller-controlled values."""
    shown = {key: headers[key] for key in ("Event", "Response", "Channel", "Uniqueid")
             if key in headers}
    return repr({key: str(value)[:60] for key, value in shown.items()}) if shown else "{}"


def _panoramisk_keeps_a_plain_store() -> bool:
    probe = Message({"Event": "Probe"})
    expected = {"event": ("Event", "Probe"), "content": ("content", "")}
    return getattr(probe, "_store", None) == expected


# Message(headers) goes through MutableMapping.update one key at a time; filling the
# case-insensitive store directly halves the cost of framing. Checked once against the
# installed panoramisk, with the public constructor as the fallback.
_FAST_MESSAGES = _panoramisk_keeps_a_plain_store()


def _message(headers: dict[str, Any]) -> Message:
    if not _FAST_MESSAGES:
        return Message(headers)
    message: Message = Message.__new__(Message)
    store = {key.lower(): (key, value) for key, value in headers.items()}
    store["content"] = ("content", "")
    message._store = store
    message.manager = None
    return message


def backoff_delay(attempt: int, minimum: float, maximum: float, rng: random.Random) -> float:
    """Seconds to wait before reconnect attempt ``attempt`` (0 after the first failure).

    Exponential backoff with full jitter above a floor: uniform between ``minimum`` and
    ``min(maximum, minimum * 2 ** (attempt + 1))``. The floor keeps a dead Asterisk from
    being hammered; the jitter keeps restarts from synchronising.
    """
    ceiling = min(maximum, minimum * 2.0 ** min(attempt + 1, 64))
    return rng.uniform(minimum, ceiling)


_HEADER_NAME_RE = re.compile(r"[A-Za-z0-9_-]+\Z")
_FORBIDDEN_IN_VALUE = ("\r", "\n", "\0")


def check_action(action: Mapping[str, Any]) -> dict[str, str | list[str]]:
    """Validate an action before it can reach the wire; its headers with text values.

    Header names are letters, digits, '-' and '_'; values are text, whole numbers, booleans
    (sent as true/false) or lists of those (a repeated header, e.g. Variable). Any CR, LF or
    NUL raises AmiValueError: no header can be injected. ActionID is the client's to set.
    """
    if not isinstance(action, Mapping):
        raise AmiValueError(f"an AMI action is a mapping of headers, got {type(action).__name__}")
    name = next((v for k, v in action.items() if isinstance(k, str) and k.lower() == "action"), "")
    label = name if isinstance(name, str) and _HEADER_NAME_RE.match(name) else "action"
    fields: dict[str, str | list[str]] = {}
    seen: set[str] = set()
    for key, value in action.items():
        if not isinstance(key, str) or not _HEADER_NAME_RE.match(key):
            raise AmiValueError(f"AMI {label}: header name {key!r} is not letters, digits, - or _")
        lowered = key.lower()
        if lowered == "actionid":
            raise AmiValueError(f"AMI {label}: ActionID is set by the client, not by callers")
        if lowered in seen:
            raise AmiValueError(f"AMI {label}: header {key!r} is given twice")
        seen.add(lowered)
        if isinstance(value, (list, tuple)):
            fields[key] = [_check_value(label, key, item) for item in value]
        else:
            fields[key] = _check_value(label, key, value)
    action_name = next((v for k, v in fields.items() if k.lower() == "action"), "")
    if not action_name or not isinstance(action_name, str):
        raise AmiValueError(f"AMI {label}: an action needs one 'Action' header with a name")
    return fields


def _check_value(label: str, key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise AmiValueError(
            f"AMI {label}: header {key!r} must be text or a number, got {type(value).__name__}"
        )
    if any(bad in value for bad in _FORBIDDEN_IN_VALUE):
        raise AmiValueError(f"AMI {label}: header {key!r} contains a line break or NUL")
    return value


# --------------------------------------------------------------------------- the connection


class _AmiProtocol(AMIProtocol):  # type: ignore[misc]
    """One TCP connection: framing, ActionID correlation, events handed to the client."""

    def __init__(self, client: AmiClient) -> None:
        super().__init__()
        self._client = client
        self.framer = AmiFramer()
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.booted = asyncio.Event()
        self.logged_in = False
        self.failure: str | None = None  # why we dropped the connection ourselves

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.encoding = "utf-8"
        self.log = logger

    def send_action(self, action: Action) -> asyncio.Future[Any]:
        # Not AMIProtocol.send: it overwrites Action.as_list and logs whole actions (secrets).
        if self.closed or self.transport.is_closing():
            raise AmiConnectionLost(f"AMI {self.failure or 'connection closed'}; "
                                    f"{action.get('Action')} not sent")
        self.responses[action.action_id] = action
        self.transport.write(str(action).encode("utf-8"))
        return action.future  # type: ignore[no-any-return]

    def forget(self, action: Action) -> None:
        self.responses.pop(action.action_id, None)

    def data_received(self, data: bytes) -> None:
        try:
            messages = self.framer.feed(data)
        except AmiProtocolError as exc:
            self.failure = f"protocol error: {exc}"
            self._client._protocol_failed(self, exc)
            self.abort()
            return
        for message in messages:
            self.handle_message(message)

    def handle_message(self, message: Message) -> None:
        action_id = message.action_id
        action = self.responses.get(action_id) if isinstance(action_id, str) else None
        if action is not None:
            if not action.responses and message.get("Response") in ("Error", "Failure"):
                # An error ends the action at once, even one expected to list events
                # (panoramisk would wait forever for the list when as_list=True).
                self.responses.pop(action_id, None)
                if not action.future.done():
                    action.future.set_result(message)
                return
            try:
                if action.add_message(message):
                    self.responses.pop(action_id, None)
            except Exception as exc:  # panoramisk's list detection can trip on odd replies
                self.responses.pop(action_id, None)
                if not action.future.done():
                    action.future.set_exception(
                        AmiProtocolError(f"unreadable answer to {action.get('Action')}: {exc!r}")
                    )
            return
        if "event" in message:
            self._client._event_received(self, message)
        else:
            logger.debug("AMI: dropped a response nobody waits for: %r", message)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        reason = self.failure or "connection lost"
        for action in self.responses.values():
            if not action.future.done():
                action.future.set_exception(
                    AmiConnectionLost(f"AMI {reason} before {action.get('Action')} answered")
                )
        self.responses.clear()
        if not self.lost.done():
            self.lost.set_result(None)
        self._client._connection_lost(self, exc)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()

    def abort(self, reason: str | None = None) -> None:
        if reason is not None and self.failure is None:
            self.failure = reason
        self.closed = True
        self.transport.abort()


# --------------------------------------------------------------------------- the client


class AmiClient:
    """A resilient AMI connection that delivers typed events and sends checked actions."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        on_event: OnEvent,
        on_ready: OnReady | None = None,
        reconnect_min: float = 0.5,
        reconnect_max: float = 30.0,
        rng: random.Random | None = None,
        *,
        action_timeout: float = 10.0,
        boot_timeout: float = 120.0,
        ping_interval: float | None = 20.0,
        max_buffered_events: int = 100_000,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not 0 < reconnect_min <= reconnect_max:
            raise ValueError("need 0 < reconnect_min <= reconnect_max")
        self._host = host
        self._port = port
        self._username = username
        self._secret = secret
        self._on_event = on_event
        self._on_ready = on_ready
        self._reconnect_min = reconnect_min
        self._reconnect_max = reconnect_max
        self._rng = rng if rng is not None else random.Random()
        self._action_timeout = action_timeout
        self._boot_timeout = boot_timeout
        self._ping_interval = ping_interval
        self._max_buffered = max_buffered_events
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._protocol: _AmiProtocol | None = None
        self._ready = asyncio.Event()
        self._live = False
        self._buffer: list[AmiEvent] = []
        self._attempt = 0
        self.last_error: str | None = None
        self.logins = 0  # successful logins since start: the first, then each reconnect

    # ------------------------------------------------------------------ state

    @property
    def connected(self) -> bool:
        """Logged in and Asterisk fully booted (actions may be sent)."""
        protocol = self._protocol
        return (
            protocol is not None
            and protocol.logged_in
            and protocol.booted.is_set()
            and not protocol.lost.done()
        )

    @property
    def ready(self) -> bool:
        """Connected, snapshot handed to on_ready, live events flowing."""
        return self._ready.is_set()

    @property
    def protocol_version(self) -> str | None:
        return self._protocol.framer.version if self._protocol is not None else None

    async def start(self) -> None:
        """Begin connecting in the background; returns at once."""
        if self._task is not None:
            raise RuntimeError("the AMI client is already started")
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="ami-client")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True  # also ends the loop should a cancellation be swallowed
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        logger.info("AMI: client stopped")

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until live events flow; AmiTimeout (naming the last error) if not in time."""
        try:
            async with asyncio.timeout(timeout):
                await self._ready.wait()
        except TimeoutError:
            raise AmiTimeout(
                f"AMI at {self._host}:{self._port} not ready within {timeout} s"
                f" (last error: {self.last_error or 'none'})"
            ) from None

    # ------------------------------------------------------------------ actions

    async def send(
        self,
        action: Mapping[str, Any],
        *,
        as_list: bool | None = None,
        timeout: float | None = None,
    ) -> Message | list[Message]:
        """Send one action; its response, or the list [response, events..., complete] for
        list actions (panoramisk's detection; ``as_list`` forces it either way).

        Raises AmiValueError before sending anything unsafe, AmiNotConnected, AmiTimeout,
        AmiConnectionLost, or AmiActionError when Asterisk answers Response: Error.
        """
        fields = check_action(action)
        protocol = self._protocol
        if protocol is None or not self.connected:
            raise AmiNotConnected(
                f"not connected to AMI at {self._host}:{self._port}"
                f" (last error: {self.last_error or 'none'})"
            )
        return await self._exchange(protocol, fields, as_list, timeout)

    async def core_show_channels(self) -> list[CoreShowChannel]:
        result = await self.send({"Action": "CoreShowChannels"})
        messages = result if isinstance(result, list) else [result]
        return [
            event
            for event in (parse_event(m) for m in messages[1:] if "event" in m)
            if isinstance(event, CoreShowChannel)
        ]

    async def _exchange(
        self,
        protocol: _AmiProtocol,
        fields: dict[str, str | list[str]],
        as_list: bool | None,
        timeout: float | None,
    ) -> Message | list[Message]:
        action = Action(fields, as_list=as_list)
        name = str(action.get("Action"))
        limit = timeout if timeout is not None else self._action_timeout
        future = protocol.send_action(action)
        try:
            async with asyncio.timeout(limit):
                result: Message | list[Message] = await future
        except TimeoutError:
            protocol.forget(action)
            raise AmiTimeout(f"AMI {name}: no response within {limit} s") from None
        first = result[0] if isinstance(result, list) else result
        if not first.success:
            raise AmiActionError(name, str(first.get("Message", "")), result)
        return result

    # ------------------------------------------------------------------ connection loop

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self._session()
            except asyncio.CancelledError:
                self._teardown()
                raise
            except (AmiLoginError, AmiActionError) as exc:  # a configuration problem
                self._failed(str(exc), logging.ERROR)
            except (OSError, AmiError) as exc:
                self._failed(f"{type(exc).__name__}: {exc}", logging.WARNING)
            except Exception as exc:  # a bug must not end reconnection
                logger.exception("AMI: unexpected failure")
                self._failed(f"{type(exc).__name__}: {exc}", logging.ERROR)
            self._teardown()
            if self._stopping:
                return
            delay = backoff_delay(self._attempt, self._reconnect_min, self._reconnect_max,
                                  self._rng)
            self._attempt += 1
            logger.info("AMI: reconnecting in %.2f s (attempt %d)", delay, self._attempt)
            await self._sleep(delay)

    async def _session(self) -> None:
        loop = asyncio.get_running_loop()
        logger.info("AMI: connecting to %s:%d", self._host, self._port)
        try:
            async with asyncio.timeout(self._action_timeout):
                _, protocol = await loop.create_connection(
                    lambda: _AmiProtocol(self), self._host, self._port
                )
        except TimeoutError:
            raise AmiTimeout(f"no TCP connection within {self._action_timeout} s") from None
        self._protocol = protocol
        login = check_action({
            "Action": "Login", "Username": self._username, "Secret": self._secret, "Events": "on",
        })
        try:
            await self._exchange(protocol, login, False, None)
        except AmiActionError as exc:
            raise AmiLoginError(
                f"AMI login as {self._username!r} refused: {exc.message or 'no reason given'}"
            ) from None
        protocol.logged_in = True
        self.logins += 1
        self._attempt = 0
        self.last_error = None
        logger.info("AMI: logged in as %s (protocol %s)", self._username, protocol.framer.version)
        await self._until_booted(protocol)
        snapshot = await self.core_show_channels()
        logger.info("AMI: snapshot of %d channel(s)", len(snapshot))
        await self._call_on_ready(snapshot)
        self._go_live(protocol)
        keepalive = (
            asyncio.create_task(self._keepalive(protocol)) if self._ping_interval else None
        )
        try:
            await asyncio.shield(protocol.lost)
        finally:
            if keepalive is not None:
                keepalive.cancel()
        raise AmiConnectionLost(f"AMI {protocol.failure or 'connection lost'}")

    async def _until_booted(self, protocol: _AmiProtocol) -> None:
        booted = asyncio.ensure_future(protocol.booted.wait())
        try:
            await asyncio.wait(
                {booted, protocol.lost}, timeout=self._boot_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            booted.cancel()
        if protocol.lost.done():
            raise AmiConnectionLost("AMI connection lost while waiting for FullyBooted")
        if not protocol.booted.is_set():
            raise AmiTimeout(f"Asterisk not fully booted within {self._boot_timeout} s")

    async def _call_on_ready(self, snapshot: list[CoreShowChannel]) -> None:
        if self._on_ready is None:
            return
        try:
            result = self._on_ready(snapshot)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            logger.exception("AMI: on_ready failed; following live events anyway")
            self.last_error = f"on_ready failed: {exc!r}"

    def _go_live(self, protocol: _AmiProtocol) -> None:
        buffered, self._buffer = self._buffer, []
        if buffered:
            logger.info("AMI: delivering %d event(s) received during the snapshot", len(buffered))
        for event in buffered:  # synchronous: nothing can arrive in between
            self._deliver(event)
        if protocol.lost.done():
            return
        self._live = True
        self._ready.set()
        logger.info("AMI: ready, following live events")

    async def _keepalive(self, protocol: _AmiProtocol) -> None:
        """A Ping now and then, so a silently dead TCP connection is noticed and replaced."""
        assert self._ping_interval is not None
        while not protocol.lost.done():
            await asyncio.sleep(self._ping_interval)
            try:
                await self._exchange(protocol, {"Action": "Ping"}, False, None)
            except AmiTimeout:
                logger.warning("AMI: no answer to Ping; dropping the connection")
                protocol.abort("no answer to Ping")
                return
            except AmiError:
                return

    def _failed(self, reason: str, level: int) -> None:
        self.last_error = reason
        logger.log(level, "AMI %s:%d: %s", self._host, self._port, reason)

    def _teardown(self) -> None:
        self._ready.clear()
        self._live = False
        if self._buffer:
            logger.info("AMI: discarded %d event(s) of an unfinished resync", len(self._buffer))
            self._buffer = []
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.close()

    # ------------------------------------------------------------------ called by the protocol

    def _event_received(self, protocol: _AmiProtocol, message: Message) -> None:
        if protocol is not self._protocol:
            return  # a late event of a replaced connection
        try:
            event = parse_event(message)
        except Exception:  # parse_event is total by design; this is a last resort
            logger.exception("AMI: could not parse event %r", message)
            return
        if isinstance(event, FullyBooted):
            protocol.booted.set()
        if self._live:
            self._deliver(event)
            return
        self._buffer.append(event)
        if len(self._buffer) > self._max_buffered:
            logger.error("AMI: more than %d events during the snapshot; resyncing",
                         self._max_buffered)
            self._buffer = []
            protocol.abort("too many events during the snapshot")

    def _deliver(self, event: AmiEvent) -> None:
        try:
            result: object = self._on_event(event)
        except Exception:
            logger.exception("AMI: on_event failed for %r", event)
            return
        if inspect.isawaitable(result):  # a coroutine would silently never run
            if inspect.iscoroutine(result):
                result.close()
            logger.error("AMI: on_event must be a plain function; %r was not handled", event)

    def _protocol_failed(self, protocol: _AmiProtocol, exc: AmiProtocolError) -> None:
        if protocol is self._protocol:
            self._failed(f"protocol error: {exc}", logging.ERROR)

    def _connection_lost(self, protocol: _AmiProtocol, exc: Exception | None) -> None:
        if protocol is not self._protocol:
            return
        if self._ready.is_set():
            logger.warning("AMI: connection lost%s", f" ({exc})" if exc else "")
        self._ready.clear()
        self._live = False
