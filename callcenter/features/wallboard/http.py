"""``GET /api/wallboard``: the board as it is now, for a wallboard that just connected (it
then follows the ``wallboard`` and ``wallboard_alert`` events of ``/api/events``).
Admins and supervisors, like the other supervision routes."""

from __future__ import annotations

from aiohttp import web

from callcenter.features.wallboard.schemas import WallboardSnapshot
from callcenter.features.wallboard.service import WallboardService
from callcenter.web.auth import STAFF
from callcenter.web.contract import Endpoint, ok, register

WALLBOARD = web.AppKey("wallboard", WallboardService)


def install_wallboard_routes(app: web.Application, wallboard: WallboardService) -> None:
    app[WALLBOARD] = wallboard
    register(app, ENDPOINTS)


async def show_wallboard(request: web.Request) -> web.Response:
    return request.app[WALLBOARD].snapshot().response()


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/wallboard", show_wallboard, STAFF,
             "The wallboard now: queues, agents, today's figures and alerts", "supervision",
             {200: ok(WallboardSnapshot, "The board at the server's now.")},
             takes_no_query=True,
             description="The same document the `wallboard` live events carry (docs/"
                         "wallboard.md). Figures are of the center's day ([center] "
                         "time_zone), rebuilt from stored calls at start."),
)
