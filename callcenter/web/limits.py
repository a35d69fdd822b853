"""The HTTP face's limits: how many connections, and how long a client may take to ask.

- ``GuardedSite`` serves an ``AppRunner`` through a ``GuardedListener``: at most
  ``max_connections`` open connections (event streams included); one more gets a canned
  ``503`` in JSON and is closed at once, and running out of descriptors cannot spin.
- Headers: aiohttp (3.14) has no header-read timeout of its own, but its keep-alive timer
  starts when a connection opens and again after each response, and closes the connection
  if no complete request arrived by then, partial bytes or not. ``runner_options`` sets it
  to ``header_seconds``: a half-sent request (slowloris) is closed that long after the
  connection opened; an idle keep-alive connection too. tests/unit/test_http_limits.py
  proves it on this version of aiohttp.
- Body: ``body_deadline`` (a middleware) reads a request's body within ``body_seconds`` of
  its headers before any handler runs (handlers then read it from memory); late: 408.
  Routes declared with ``stream_body`` (file uploads) are the exception: their handler
  streams the body to disk itself, with its own size cap and pace
  (features/campaigns/uploads.py), after the route's roles and parameters were checked.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from callcenter.listener import GuardedListener
from callcenter.web.params import body_too_large

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _canned(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"error": message, "status": status}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\nRetry-After: 5\r\n\r\n")
    return head.encode() + body


LINGERING_SECONDS = 1.0
BUSY = _canned(503, "Service Unavailable", "too many open connections; try again shortly")


@dataclass(frozen=True)
class HttpLimits:
    max_connections: int = 500
    header_seconds: float = 10.0
    body_seconds: float = 30.0


def runner_options(limits: HttpLimits) -> dict[str, Any]:
    """Keyword arguments for ``web.AppRunner`` (passed on to each connection's handler).

    ``lingering_time``: after answering a request whose body was not read to the end (a
    408 above), aiohttp reads and drops the rest for this long before closing, so the
    client sees the answer rather than a reset; 10 s by default, a second is enough."""
    return {"keepalive_timeout": limits.header_seconds,
            "lingering_time": min(LINGERING_SECONDS, limits.body_seconds)}


BODY_SECONDS = web.AppKey("body_seconds", float)
# (method, canonical path) of the routes whose handler streams the body itself.
STREAMED_BODIES = web.AppKey("streamed_bodies", set)


def stream_body(app: web.Application, method: str, path: str) -> None:
    """Let the handler of ``method path`` read its (large) body itself, as a stream: the
    deadline and the application's ``client_max_size`` do not apply to it."""
    if STREAMED_BODIES not in app:
        app[STREAMED_BODIES] = set()
    app[STREAMED_BODIES].add((method.upper(), path))


def install_body_deadline(app: web.Application, limits: HttpLimits) -> None:
    """Put ``body_deadline`` first among ``app``'s middlewares (before it is frozen)."""
    app[BODY_SECONDS] = limits.body_seconds
    app.middlewares.insert(0, body_deadline)


@web.middleware
async def body_deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.body_exists and not _streamed(request):
        seconds = request.app[BODY_SECONDS]
        try:
            async with asyncio.timeout(seconds):
                await request.read()  # kept by aiohttp: the handler's read() gets it back
        except web.HTTPRequestEntityTooLarge:
            # Read here first, the size check fires here: the same JSON 413 as the handlers'.
            raise body_too_large(request.client_max_size) from None
        except TimeoutError:
            response = web.json_response(
                {"error": f"the request body did not arrive within {seconds:g} s",
                 "status": 408}, status=408)
            response.force_close()
            return response
    return await handler(request)


def _streamed(request: web.Request) -> bool:
    resource = request.match_info.route.resource
    return resource is not None and (request.method, resource.canonical) in request.app.get(
        STREAMED_BODIES, ())


class GuardedSite(web.BaseSite):
    """A TCP site of ``runner`` behind a ``GuardedListener`` (see the module doc)."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *,
                 max_connections: int, backlog: int = 1024) -> None:
        super().__init__(runner, backlog=backlog)
        self._host = host
        self._port = port
        self._max_connections = max_connections
        self.listener: GuardedListener | None = None

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def port(self) -> int:
        return self.listener.port if self.listener is not None else self._port

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        self.listener = GuardedListener(
            "HTTP", server, self._host, self._port, max_connections=self._max_connections,
            active=lambda: len(server.connections), refusal=BUSY, backlog=self._backlog)
        await self.listener.start()

    async def stop(self) -> None:
        if self.listener is not None:
            self.listener.close()
            await self.listener.wait_closed()
        await super().stop()
