"""Live updates: an in-memory hub of events, and ``GET /api/events`` as server-sent events.

The composition root publishes what changed (an agent's state, a queue's waiting callers...)
to the ``EventHub``; each open page holds a ``Subscription`` and receives those events in
order. The hub never waits for a subscriber: one that falls ``max_pending`` events behind is
dropped with a final ``overflow`` event and must reconnect. The last events are kept, so a
browser reconnecting with ``Last-Event-ID`` gets what it missed; when that is no longer
possible it gets a ``resync`` event, which means "reload the full state".

Event ids sent to clients are ``<epoch>-<n>``: ``epoch`` names this run of the server, so an
id from before a restart is recognised as such (and answered with ``resync``) instead of
being mistaken for an id of this run.

Streams are capped (``StreamSettings``: in all and per user; beyond, 503 in JSON with
Retry-After), a client that reads nothing is cut off, and a stream ends with an ``ended``
event when its session or token ends (docs/security-exhaust.md).

The hub itself is plain asyncio (no aiohttp); ``stream_events`` is the aiohttp handler.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web

from callcenter.core.clock import Clock
from callcenter.web.auth import (
    REVOCATIONS,
    SIGNED_IN,
    Identity,
    current_identity,
    reauthenticate,
)
from callcenter.web.contract import Endpoint, Reply, failed, register
from callcenter.web.params import bad_request, check_params, iso, json_error

# What the composition root publishes; pages filter on these with ``?kinds=``.
EVENT_KINDS = frozenset({"agent", "queue", "call", "callback", "campaign",
                         "wallboard", "wallboard_alert"})  # the last two: docs/wallboard.md
# Kinds whose every event is the whole current state (the wallboard, up to once a second):
# the replay buffer keeps only the newest of each, so they never push out the events a
# reconnecting page needs.
SNAPSHOT_KINDS = frozenset({"wallboard"})
OVERFLOW = "overflow"  # the subscriber fell behind and was dropped; reconnect
RESYNC = "resync"  # missed events are not available; reload the full state
ENDED = "ended"  # the stream's session or token has ended; sign in again
CONTROL_KINDS = frozenset({OVERFLOW, RESYNC, ENDED})
REPLAY_SIZE = 500
MAX_PENDING = 1000
HEARTBEAT_SECONDS = 15.0

KIND_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
EPOCH_RE = re.compile(r"[0-9a-z]{1,16}")
CURSOR_RE = re.compile(r"(?P<epoch>[0-9a-z]{1,16})-(?P<id>[0-9]{1,19})")


@dataclass(frozen=True)
class LiveEvent:
    """One event as subscribers get it. ``data`` is the hub's own copy: read it, don't change
    it (every subscriber shares it)."""

    id: int  # published events: 1, 2, 3... per hub; control events: the id to resume after
    kind: str
    data: dict[str, Any]
    at: float  # POSIX seconds, from the hub's clock


class Interrupted(Exception):
    """``Subscription.get`` was interrupted before an event came (see ``interrupt``)."""


class Subscription:
    """The events of one subscriber, in order: ``async for event in subscription``.

    Iteration ends when the hub closes, when this subscription is closed, or after the
    ``overflow`` event that tells a slow subscriber it was dropped.
    """

    def __init__(
        self, hub: EventHub, kinds: frozenset[str] | None, max_pending: int, position: int
    ) -> None:
        self.kinds = kinds
        self.max_pending = max_pending
        self._hub = hub
        self._pending: deque[LiveEvent] = deque()
        self._arrived = asyncio.Event()
        self._ended = False  # nothing more will be added; what is pending is still delivered
        self._position = position  # the id of the last event queued (where to resume after)
        self._interrupted = False

    @property
    def ended(self) -> bool:
        """True once nothing more will arrive (events already pending are still delivered)."""
        return self._ended

    @property
    def pending(self) -> int:
        return len(self._pending)

    def wants(self, kind: str) -> bool:
        return self.kinds is None or kind in self.kinds

    async def get(self, timeout: float | None = None) -> LiveEvent | None:
        """The next event; None when the subscription has ended.

        Raises ``TimeoutError`` when nothing arrived within ``timeout`` seconds (asyncio's
        own time: the SSE handler's heartbeat), ``Interrupted`` after ``interrupt()``; no
        event is lost by either.
        """
        while not self._pending:
            if self._ended:
                return None
            if self._interrupted:
                self._interrupted = False
                raise Interrupted
            self._arrived.clear()
            async with asyncio.timeout(timeout):
                await self._arrived.wait()
        return self._pending.popleft()

    def interrupt(self) -> None:
        """Make a waiting ``get`` (or the next one that would wait) raise ``Interrupted``."""
        self._interrupted = True
        self._arrived.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> LiveEvent:
        event = await self.get()
        if event is None:
            raise StopAsyncIteration
        return event

    def close(self) -> None:
        """Stop now: leave the hub and drop what is still pending."""
        self._pending.clear()
        self._end()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- for the hub

    def _offer(self, event: LiveEvent) -> None:
        """Queue an event, or drop this subscriber when it is too far behind."""
        if len(self._pending) >= self.max_pending:
            self._pending.append(LiveEvent(
                id=self._position,
                kind=OVERFLOW,
                data={"reason": f"more than {self.max_pending} events were waiting to be "
                                "sent; reconnect with Last-Event-ID to continue"},
                at=event.at,
            ))
            self._end()
            return
        self._pending.append(event)
        self._position = event.id
        self._arrived.set()

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._hub._forget(self)
        self._arrived.set()


class EventHub:
    """Fan-out of live events to subscribers, with a replay buffer of the last ones."""

    def __init__(
        self,
        clock: Clock,
        *,
        kinds: Iterable[str] = EVENT_KINDS,
        replay: int = REPLAY_SIZE,
        epoch: str | None = None,
        snapshots: Iterable[str] = SNAPSHOT_KINDS,
    ) -> None:
        self.kinds = frozenset(kinds)
        self.snapshot_kinds = frozenset(snapshots) & self.kinds
        for kind in sorted(self.kinds):
            if not KIND_RE.fullmatch(kind) or kind in CONTROL_KINDS:
                raise ValueError(f"kinds: {kind!r} is not a usable event kind "
                                 f"(lowercase name, not {' or '.join(sorted(CONTROL_KINDS))})")
        if not self.kinds:
            raise ValueError("kinds: give at least one event kind")
        if replay < 0:
            raise ValueError(f"replay: {replay} must not be negative")
        if epoch is not None and not EPOCH_RE.fullmatch(epoch):
            raise ValueError(f"epoch: {epoch!r} must be 1-16 lowercase letters or digits")
        self.epoch = epoch if epoch is not None else secrets.token_hex(4)
        self._clock = clock
        self._replay = replay
        self._recent: deque[LiveEvent] = deque()
        self._forgotten_through = 0  # the newest id pushed out of the buffer (not superseded)
        self._subscriptions: set[Subscription] = set()
        self._last_id = 0
        self._closed = False

    @property
    def last_id(self) -> int:
        return self._last_id

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    def cursor(self, event: LiveEvent) -> str:
        """The id a client gets for ``event`` and may send back as ``Last-Event-ID``."""
        return f"{self.epoch}-{event.id}"

    def publish(self, kind: str, data: Mapping[str, Any]) -> None:
        """Send an event to every subscriber that wants its kind. Never waits; call it from
        the event loop's thread (``loop.call_soon_threadsafe`` from any other).

        Raises ``ValueError`` for an unknown kind or data that is not JSON: mistakes of the
        publisher, better caught there than in every page. After ``close()`` it does nothing.
        """
        if kind not in self.kinds:
            raise ValueError(f"kind: {kind!r} is not one of {', '.join(sorted(self.kinds))}")
        if not isinstance(data, Mapping):
            raise ValueError(f"data for a {kind!r} event: expected a mapping, "
                             f"got {type(data).__name__}")
        try:
            encoded = json.dumps(dict(data), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"data for a {kind!r} event is not JSON: {exc}") from None
        if self._closed:
            return
        self._last_id += 1
        # A copy of its own: the publisher may go on changing what it passed.
        event = LiveEvent(self._last_id, kind, json.loads(encoded), self._clock.now())
        self._keep(event)
        for subscription in list(self._subscriptions):
            if subscription.wants(kind):
                subscription._offer(event)

    def _keep(self, event: LiveEvent) -> None:
        """Buffer ``event`` for replay: a snapshot replaces the one before it; the oldest
        event goes when the buffer is full."""
        if event.kind in self.snapshot_kinds:
            older = next((e for e in self._recent if e.kind == event.kind), None)
            if older is not None:
                self._recent.remove(older)
        self._recent.append(event)
        while len(self._recent) > self._replay:
            self._forgotten_through = self._recent.popleft().id

    def subscribe(
        self,
        kinds: frozenset[str] | None = None,
        *,
        last_event_id: str | None = None,
        max_pending: int = MAX_PENDING,
    ) -> Subscription:
        """A new subscriber to the events of ``kinds`` (None: every kind).

        With ``last_event_id`` (a ``cursor``, as a reconnecting browser sends it) the events
        after it come first, if they are all still buffered; otherwise a ``resync`` event
        comes first. Raises ``ValueError`` naming an unknown kind. On a closed hub the
        subscription has already ended.
        """
        if kinds is not None:
            if not kinds:
                raise ValueError("kinds: give at least one kind, or none to get every kind")
            unknown = sorted(kinds - self.kinds)
            if unknown:
                raise ValueError(f"kinds: {unknown[0][:40]!r} is not an event kind; "
                                 f"use {', '.join(sorted(self.kinds))}")
        if max_pending < 1:
            raise ValueError(f"max_pending: {max_pending} must be at least 1")
        subscription = Subscription(self, kinds, max_pending, self._last_id)
        if self._closed:
            subscription._ended = True
            return subscription
        if last_event_id is not None:
            self._catch_up(subscription, last_event_id)
        self._subscriptions.add(subscription)
        return subscription

    def close(self) -> None:
        """End every subscription now (shutdown); later publishing does nothing."""
        self._closed = True
        for subscription in list(self._subscriptions):
            subscription.close()

    def _catch_up(self, subscription: Subscription, last_event_id: str) -> None:
        """Queue the events after ``last_event_id``, or a ``resync`` when that is not possible."""
        reason = self._cannot_replay(subscription, last_event_id)
        if reason is not None:
            subscription._pending.append(LiveEvent(
                self._last_id, RESYNC, {"reason": reason}, self._clock.now()
            ))
            return
        after = int(last_event_id.rpartition("-")[2])
        for event in self._recent:
            if event.id > after and subscription.wants(event.kind):
                subscription._pending.append(event)

    def _cannot_replay(self, subscription: Subscription, last_event_id: str) -> str | None:
        match = CURSOR_RE.fullmatch(last_event_id)
        if match is None or match["epoch"] != self.epoch or int(match["id"]) > self._last_id:
            return (f"Last-Event-ID {last_event_id[:40]!r} is not from this run of the server; "
                    "reload the full state")
        after = int(match["id"])
        if after < self._forgotten_through:
            return f"the events after {last_event_id} are no longer kept; reload the full state"
        missed = sum(1 for e in self._recent if e.id > after and subscription.wants(e.kind))
        if missed > subscription.max_pending:
            return (f"{missed} events were missed, more than the {subscription.max_pending} "
                    "a stream may hold; reload the full state")
        return None

    def _forget(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)


# ------------------------------------------------------------------------- HTTP (SSE)


@dataclass(frozen=True)
class StreamSettings:
    heartbeat_seconds: float = HEARTBEAT_SECONDS  # a comment line when idle this long
    max_pending: int = MAX_PENDING  # events a slow client may fall behind before it is dropped
    max_streams: int = 100  # open streams in all; one more is answered 503
    max_streams_per_user: int = 8  # per signed-in user (sessions and tokens together)
    write_seconds: float = 30.0  # a write the client does not take within this ends the stream


class OpenStreams:
    """The streams open now, counted per user against the caps, and told to check their
    credentials again when a session, a token or a user changed."""

    def __init__(self, settings: StreamSettings) -> None:
        self.settings = settings
        self._per_user: Counter[int | None] = Counter()
        self._subscriptions: set[Subscription] = set()
        self._recheck: set[Subscription] = set()

    @property
    def total(self) -> int:
        return sum(self._per_user.values())

    def admit(self, user_id: int | None) -> None:
        """Count one more stream of ``user_id``; 503 (JSON, Retry-After) beyond a cap."""
        if self.total >= self.settings.max_streams:
            raise _busy(f"{self.settings.max_streams} event streams are open, the most this "
                        "server allows; try again later")
        if user_id is not None and self._per_user[user_id] >= self.settings.max_streams_per_user:
            raise _busy(f"you have {self.settings.max_streams_per_user} event streams open, "
                        "the most one user may; close one (another tab?) first")
        self._per_user[user_id] += 1

    def release(self, user_id: int | None) -> None:
        self._per_user[user_id] -= 1
        if self._per_user[user_id] <= 0:
            del self._per_user[user_id]

    def watch(self, subscription: Subscription) -> None:
        self._subscriptions.add(subscription)

    def forget(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)
        self._recheck.discard(subscription)

    def recheck_all(self) -> None:
        """Every stream checks its session or token before it sends anything more."""
        for subscription in self._subscriptions:
            self._recheck.add(subscription)
            subscription.interrupt()

    def must_recheck(self, subscription: Subscription) -> bool:
        if subscription in self._recheck:
            self._recheck.discard(subscription)
            return True
        return False


def _busy(message: str) -> web.HTTPError:
    return web.HTTPServiceUnavailable(
        text=json.dumps({"error": message, "status": 503}), content_type="application/json",
        headers={"Retry-After": "5"})


EVENTS = web.AppKey("events", EventHub)
EVENT_STREAM = web.AppKey("event_stream", StreamSettings)
OPEN_STREAMS = web.AppKey("open_streams", OpenStreams)

STREAM_PARAMS = {"kinds"}
HEARTBEAT = b": ping\n\n"


def install_events(
    app: web.Application, hub: EventHub, settings: StreamSettings | None = None
) -> None:
    """``GET /api/events`` on ``app``, fed by ``hub``; its streams end when the app shuts down,
    and are checked again when web/auth.py's Revocations says credentials ended."""
    app[EVENTS] = hub
    app[EVENT_STREAM] = settings or StreamSettings()
    app[OPEN_STREAMS] = OpenStreams(app[EVENT_STREAM])
    if REVOCATIONS in app:  # an app without sign-in (tests) has no credentials to end
        app[REVOCATIONS].listeners.append(app[OPEN_STREAMS].recheck_all)
    register(app, [EVENTS_ENDPOINT])
    app.on_shutdown.append(_close_hub)


async def _close_hub(app: web.Application) -> None:
    app[EVENTS].close()


def sse_frame(hub: EventHub, event: LiveEvent) -> bytes:
    """One server-sent event. JSON never holds a raw line break, so ``data:`` is one line."""
    payload = json.dumps({"at": iso(event.at), "data": event.data}, separators=(",", ":"))
    return f"id: {hub.cursor(event)}\nevent: {event.kind}\ndata: {payload}\n\n".encode()


def ended_frame(reason: str) -> bytes:
    """The last frame of a stream whose session or token ended (no id: nothing to resume)."""
    return f"event: {ENDED}\ndata: {json.dumps({'reason': reason})}\n\n".encode()


def kinds_param(request: web.Request, hub: EventHub) -> frozenset[str] | None:
    raw = request.query.get("kinds")
    if raw is None:
        return None
    kinds = raw.split(",")
    for kind in kinds:
        if kind not in hub.kinds:
            shown = repr(kind[:40]) if kind else "an empty name"
            raise bad_request(f"kinds: {shown} is not an event kind; "
                              f"use a comma-separated list of {', '.join(sorted(hub.kinds))}")
    return frozenset(kinds)


async def stream_events(request: web.Request) -> web.StreamResponse:
    """``GET /api/events[?kinds=agent,queue]``: live events as ``text/event-stream``.

    A signed-in stream checks its session or token again (the same lookup as the auth
    middleware) at every heartbeat, before an event when the last check is older than a
    heartbeat, and at once when web/auth.py says credentials changed (logout, a revoked
    token, a user changed): a stream never outlives its sign-in.
    """
    check_params(request, STREAM_PARAMS)
    hub = request.app[EVENTS]
    settings = request.app[EVENT_STREAM]  # install_events always sets it
    kinds = kinds_param(request, hub)
    if hub.closed:
        raise json_error(web.HTTPServiceUnavailable, "the server is shutting down")
    identity = _identity(request)
    user_id = identity.user.id if identity is not None else None
    streams = request.app[OPEN_STREAMS]
    streams.admit(user_id)
    try:
        return await _stream(request, hub, settings, streams, kinds, identity)
    finally:
        streams.release(user_id)


async def _stream(request: web.Request, hub: EventHub, settings: StreamSettings,
                  streams: OpenStreams, kinds: frozenset[str] | None,
                  identity: Identity | None) -> web.StreamResponse:
    last_event_id = request.headers.get("Last-Event-ID")
    response = web.StreamResponse(headers={
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",  # nginx would otherwise hold events back
    })
    response.content_type = "text/event-stream"
    loop = asyncio.get_running_loop()
    checked_at = loop.time()
    with hub.subscribe(
        kinds, last_event_id=last_event_id or None, max_pending=settings.max_pending
    ) as subscription:
        streams.watch(subscription)
        try:
            await response.prepare(request)
            while True:
                wake: LiveEvent | str | None
                try:
                    wake = await subscription.get(timeout=settings.heartbeat_seconds)
                except TimeoutError:
                    wake = "heartbeat"
                except Interrupted:
                    wake = "recheck"
                if wake is None:
                    break
                if identity is not None and (streams.must_recheck(subscription)
                                             or wake == "heartbeat"
                                             or loop.time() - checked_at
                                             >= settings.heartbeat_seconds):
                    checked_at = loop.time()
                    ended = await _signed_out(request, identity)
                    if ended:
                        await _write(request, response, ended_frame(ended), settings)
                        break
                if wake == "heartbeat":
                    await _write(request, response, HEARTBEAT, settings)  # also how a gone
                elif isinstance(wake, LiveEvent):  # client is noticed
                    await _write(request, response, sse_frame(hub, wake), settings)
        except ConnectionResetError:  # the client went away: nothing more to do
            pass
        finally:
            streams.forget(subscription)
    return response


def _identity(request: web.Request) -> Identity | None:
    """Who opened the stream; None where the route is public (an app without sign-in)."""
    try:
        return current_identity(request)
    except RuntimeError:
        return None


async def _signed_out(request: web.Request, identity: Identity) -> str | None:
    """Why the stream must end now, or None while its session or token is still good."""
    try:
        now = await reauthenticate(request)
    except Exception as exc:  # cannot tell (database away): a stream fails closed
        return f"your sign-in could not be checked ({type(exc).__name__}); reconnect"
    if now is None or now.user.id != identity.user.id:
        return "your session or token has ended; sign in again"
    return None


async def _write(request: web.Request, response: web.StreamResponse, frame: bytes,
                 settings: StreamSettings) -> None:
    """Write a frame; a client that takes none of it within ``write_seconds`` is cut off
    (ConnectionResetError), so an unread stream cannot hold its buffers for ever."""
    try:
        async with asyncio.timeout(settings.write_seconds):
            await response.write(frame)
    except TimeoutError:
        if request.transport is not None:
            request.transport.abort()
        raise ConnectionResetError(
            f"the client read nothing for {settings.write_seconds:g} s") from None


_KIND = "|".join(sorted(EVENT_KINDS))
EVENTS_ENDPOINT = Endpoint(
    "GET", "/api/events", stream_events, SIGNED_IN, "Live events as server-sent events", "live",
    {200: Reply(
        "A `text/event-stream` that stays open. Each event is `id:`, `event:` (its kind) and one "
        "`data:` line holding a LiveEventData as JSON. `: ping` comments come every "
        f"{HEARTBEAT_SECONDS:g} s when idle. `overflow` ends the stream of a client that fell "
        f"behind (reconnect with Last-Event-ID); `{RESYNC}` means missed events are gone: "
        "reload the full state.", {"type": "string"}, media_type="text/event-stream"),
     503: failed("The server is shutting down.")},
    # The stream parses its own parameters (stream_events): described here as they are.
    parameters=(
        {"name": "kinds", "in": "query", "required": False,
         "description": "only these kinds, comma-separated (default: every kind)",
         "schema": {"type": "string", "pattern": f"^(?:{_KIND})(?:,(?:{_KIND}))*$"}},
        {"name": "Last-Event-ID", "in": "header", "required": False,
         "description": "the id of the last event received; what was missed comes first",
         "schema": {"type": "string"}}),
    description="Browsers reconnect by themselves (EventSource), sending Last-Event-ID.")
