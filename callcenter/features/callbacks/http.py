"""Callback requests: ``GET /api/callbacks`` lists them (pending first, oldest first);
``POST /api/callbacks/{id}`` with ``{"status": "done" | "cancelled" | "failed"}`` closes one.
"""

from __future__ import annotations

from aiohttp import web

from callcenter.features.callbacks.schemas import (
    Callback,
    CallbackClosing,
    CallbackList,
    CallbackPage,
    CallbackPath,
)
from callcenter.features.callbacks.store import CallbackNotFound, CallbackRepository
from callcenter.web.auth import FLOOR
from callcenter.web.contract import (
    Endpoint,
    failed,
    ok,
)
from callcenter.web.params import bad_request, json_error

CALLBACKS = web.AppKey("callbacks", CallbackRepository)

async def list_callbacks(request: web.Request, query: CallbackList) -> web.Response:
    try:
        requests, total = await request.app[CALLBACKS].list(
            status=query.status, queue=query.queue, limit=query.limit, offset=query.offset
        )
    except ValueError as exc:  # the store's own checks: still the client's mistake
        raise bad_request(str(exc)) from None
    return CallbackPage(total=total, limit=query.limit, offset=query.offset,
                        callbacks=[Callback.of(r) for r in requests]).response()


async def change_callback(request: web.Request, path: CallbackPath, body: CallbackClosing
                          ) -> web.Response:
    try:
        changed = await request.app[CALLBACKS].set_status(path.id, body.status)
    except CallbackNotFound as exc:
        raise json_error(web.HTTPNotFound, str(exc)) from None
    except ValueError as exc:  # a change the rules do not allow
        raise bad_request(str(exc)) from None
    return Callback.of(changed).response()


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/callbacks", list_callbacks, FLOOR,
             "Callback requests, pending first, oldest first", "callbacks",
             {200: ok(CallbackPage)}, query=CallbackList),
    Endpoint("POST", "/api/callbacks/{id}", change_callback, FLOOR,
             "Close a pending callback request", "callbacks",
             {200: ok(Callback, "Closed; the request as stored now."),
              400: failed("A bad body, or a change the rules do not allow (it is not "
                          "pending)."),
              404: failed("No such callback request.")},
             path_args=CallbackPath, body=CallbackClosing,
             body_example='{"status": "cancelled"}'),
)
