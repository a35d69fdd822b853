"""The aiohttp application: thin handlers over the services the composition root gives it."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from callcenter.store.repositories import CallbackRepository, CallRepository
from callcenter.web.callbacks import change_callback, list_callbacks
from callcenter.web.calls import list_calls
from callcenter.web.demo import order_status
from callcenter.web.keys import CALLBACKS, CALLS, HEALTH, HealthProbe
from callcenter.web.reports import faq_report


async def healthz(request: web.Request) -> web.Response:
    probe = request.app[HEALTH]
    parts = {"ami": probe.ami(), "fastagi": probe.agi(), "database": await probe.database()}
    healthy = all(parts.values())
    body = {"status": "ok" if healthy else "degraded",
            **{name: "up" if up else "down" for name, up in parts.items()}}
    return web.json_response(body, status=200 if healthy else 503)


@web.middleware
async def json_errors(request: web.Request, handler: Callable) -> web.StreamResponse:
    """Every error leaves as JSON that says what is wrong, never as a stack trace."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json":
            raise
        return web.json_response({"error": exc.reason, "status": exc.status}, status=exc.status)


def make_app(
    calls: CallRepository,
    health: HealthProbe,
    *,
    callbacks: CallbackRepository | None = None,
) -> web.Application:
    """The application; the callback routes exist only when ``callbacks`` is given."""
    app = web.Application(middlewares=[json_errors], client_max_size=64 * 1024)
    app[CALLS] = calls
    app[HEALTH] = health
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/calls", list_calls)
    app.router.add_get("/api/reports/faq", faq_report)
    if callbacks is not None:
        app[CALLBACKS] = callbacks
        app.router.add_get("/api/callbacks", list_callbacks)
        app.router.add_post("/api/callbacks/{id}", change_callback)
    app.router.add_get("/demo/orders", order_status)  # for the data-dip example flow
    return app
