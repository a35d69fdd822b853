"""``GET /healthz``: whether AMI, FastAGI and the database are up (503 when one is not)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from callcenter.web.auth import PUBLIC
from callcenter.web.contract import Endpoint, ok


@dataclass(frozen=True)
class HealthProbe:
    """What /healthz asks; each returns True when that part is up."""

    ami: Callable[[], bool]
    agi: Callable[[], bool]
    database: Callable[[], Awaitable[bool]]


HEALTH = web.AppKey("health", HealthProbe)


async def healthz(request: web.Request) -> web.Response:
    probe = request.app[HEALTH]
    parts = {"ami": probe.ami(), "fastagi": probe.agi(), "database": await probe.database()}
    healthy = all(parts.values())
    body = {"status": "ok" if healthy else "degraded",
            **{name: "up" if up else "down" for name, up in parts.items()}}
    return web.json_response(body, status=200 if healthy else 503)


HEALTH_ENDPOINT = Endpoint(
    "GET", "/healthz", healthz, PUBLIC, "Whether AMI, FastAGI and the database are up",
    "service", {200: ok("Health", "Every part is up."),
                503: ok("Health", "A part is down (the body says which).")})
