"""GET /api/calls: call records as JSON, filtered by time range and queue, paged."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from callcenter.core.clock import to_datetime
from callcenter.core.records import CallRecord
from callcenter.web.keys import CALLS

MAX_LIMIT = 500
QUEUE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
ALLOWED_PARAMS = {"since", "until", "queue", "protocol", "limit", "offset"}
PROTOCOL = re.compile(r"^[0-9]{1,32}$")


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message, "status": 400}),
                              content_type="application/json")


def _time_param(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise _bad_request(
            f"{name}: {raw[:40]!r} is not an ISO 8601 time (e.g. 2026-11-28T21:00:00Z)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"[0-9]{1,9}", raw):
        raise _bad_request(f"{name}: {raw[:40]!r} is not a whole number")
    value = int(raw)
    if not low <= value <= high:
        raise _bad_request(f"{name}: {value} is outside {low}..{high}")
    return value


def _iso(ts: float | None) -> str | None:
    when = to_datetime(ts)
    return when.isoformat().replace("+00:00", "Z") if when else None


def record_json(record: CallRecord) -> dict[str, Any]:
    data = asdict(record)
    for key in ("started_at", "answered_at", "ended_at", "queued_at", "agent_answered_at"):
        data[key] = _iso(data[key])
    data["ivr_path"] = [{**step, "at": _iso(step["at"])} for step in data["ivr_path"]]
    data["attempts"] = [
        {**a, "started_at": _iso(a["started_at"]), "ended_at": _iso(a["ended_at"])}
        for a in data["attempts"]
    ]
    for key in ("wait_seconds", "talk_seconds"):
        if data[key] is not None:
            data[key] = round(data[key], 3)
    data["open"] = record.is_open
    return data


async def list_calls(request: web.Request) -> web.Response:
    unknown = set(request.query) - ALLOWED_PARAMS
    if unknown:
        name = sorted(unknown)[0][:40]
        raise _bad_request(f"unknown parameter {name!r}; use {', '.join(sorted(ALLOWED_PARAMS))}")
    since = _time_param(request, "since")
    until = _time_param(request, "until")
    if since is not None and until is not None and since >= until:
        raise _bad_request("since must be before until")
    queue = request.query.get("queue") or None
    if queue is not None and not QUEUE_NAME.match(queue):
        raise _bad_request(f"queue: {queue[:40]!r} is not a queue name")
    protocol = request.query.get("protocol") or None
    if protocol is not None and not PROTOCOL.match(protocol):
        raise _bad_request(f"protocol: {protocol[:40]!r} is not a protocol number (digits)")
    limit = _int_param(request, "limit", 50, 1, MAX_LIMIT)
    offset = _int_param(request, "offset", 0, 0, 10**9)
    records, total = await request.app[CALLS].list(
        since=since, until=until, queue=queue, protocol=protocol, limit=limit, offset=offset
    )
    return web.json_response({
        "total": total,
        "limit": limit,
        "offset": offset,
        "calls": [record_json(r) for r in records],
    })
