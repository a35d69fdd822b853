"""Callback requests: ``GET /api/callbacks`` lists them (pending first, oldest first);
``POST /api/callbacks/{id}`` with ``{"status": "done" | "cancelled" | "failed"}`` closes one.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from aiohttp import web

from callcenter.core.records import CallbackRequest, CallbackStatus
from callcenter.store.repositories import MAX_ROW_ID, CallbackNotFound
from callcenter.web.keys import CALLBACKS
from callcenter.web.params import (
    MAX_LIMIT,
    QUEUE_NAME,
    bad_request,
    check_params,
    int_param,
    iso,
    json_body,
    json_error,
    json_kind,
    name_param,
)

LIST_PARAMS = {"status", "queue", "limit", "offset"}
STATUSES = ", ".join(status.value for status in CallbackStatus)
STATUS_PARAM = re.compile("|".join(status.value for status in CallbackStatus))
CALLBACK_ID = re.compile(r"[0-9]{1,19}")
EXAMPLE_BODY = '{"status": "cancelled"}'


def callback_json(request: CallbackRequest) -> dict[str, Any]:
    return {**asdict(request), "requested_at": iso(request.requested_at),
            "queued_at": iso(request.queued_at)}


async def list_callbacks(request: web.Request) -> web.Response:
    check_params(request, LIST_PARAMS)
    status = name_param(request, "status", STATUS_PARAM, f"one of {STATUSES}")
    queue = name_param(request, "queue", QUEUE_NAME, "a queue name")
    limit = int_param(request, "limit", 50, 1, MAX_LIMIT)
    offset = int_param(request, "offset", 0, 0, 10**9)
    try:
        requests, total = await request.app[CALLBACKS].list(
            status=status, queue=queue, limit=limit, offset=offset
        )
    except ValueError as exc:  # the store's own checks: still the client's mistake
        raise bad_request(str(exc)) from None
    return web.json_response({
        "total": total,
        "limit": limit,
        "offset": offset,
        "callbacks": [callback_json(r) for r in requests],
    })


async def change_callback(request: web.Request) -> web.Response:
    callback_id = _callback_id(request.match_info["id"])
    status = await _status_from_body(request)
    try:
        changed = await request.app[CALLBACKS].set_status(callback_id, status)
    except CallbackNotFound as exc:
        raise json_error(web.HTTPNotFound, str(exc)) from None
    except ValueError as exc:  # a change the rules do not allow
        raise bad_request(str(exc)) from None
    return web.json_response(callback_json(changed))


def _callback_id(raw: str) -> int:
    if not CALLBACK_ID.fullmatch(raw) or not 1 <= int(raw) <= MAX_ROW_ID:
        raise bad_request(f"id: {raw[:40]!r} is not a callback request id (a whole number from 1)")
    return int(raw)


async def _status_from_body(request: web.Request) -> CallbackStatus:
    body = await json_body(request, {"status"}, EXAMPLE_BODY)
    status = body.get("status")
    if not isinstance(status, str):
        got = json_kind(status, none="nothing")
        raise bad_request(f"body: status: expected one of {STATUSES}, got {got}")
    try:
        return CallbackStatus(status)
    except ValueError:
        raise bad_request(f"body: status: {status[:40]!r} is not one of {STATUSES}") from None
