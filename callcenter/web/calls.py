"""GET /api/calls: call records as JSON, filtered by time range and queue, paged.

Also the query-parameter checks and JSON errors the other API handlers share.
"""

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


def json_error(error: type[web.HTTPError], message: str) -> web.HTTPError:
    """An HTTP error whose JSON body says what is wrong."""
    return error(text=json.dumps({"error": message, "status": error.status_code}),
                 content_type="application/json")


def bad_request(message: str) -> web.HTTPError:
    return json_error(web.HTTPBadRequest, message)


def check_params(request: web.Request, allowed: set[str]) -> None:
    """Refuse unknown query parameters and parameters given twice (which one would count?)."""
    unknown = set(request.query) - allowed
    if unknown:
        name = sorted(unknown)[0][:40]
        raise bad_request(f"unknown parameter {name!r}; use {', '.join(sorted(allowed))}")
    for name in request.query:
        if len(request.query.getall(name)) > 1:
            raise bad_request(f"parameter {name!r} is given more than once")


def time_param(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(
            f"{name}: {raw[:40]!r} is not an ISO 8601 time (e.g. 2026-11-28T21:00:00Z)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        to_datetime(when.timestamp())  # a zone offset can push year 9999 out of range
    except (OverflowError, OSError, ValueError):
        raise bad_request(f"{name}: {raw[:40]!r} is out of range") from None
    return when.timestamp()


def time_range_params(request: web.Request) -> tuple[float | None, float | None]:
    """``since`` and ``until`` as POSIX seconds; since must come before until."""
    since = time_param(request, "since")
    until = time_param(request, "until")
    if since is not None and until is not None and since >= until:
        raise bad_request("since must be before until")
    return since, until


def int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"[0-9]{1,9}", raw):
        raise bad_request(f"{name}: {raw[:40]!r} is not a whole number")
    value = int(raw)
    if not low <= value <= high:
        raise bad_request(f"{name}: {value} is outside {low}..{high}")
    return value


def name_param(request: web.Request, name: str, pattern: re.Pattern[str], what: str) -> str | None:
    value = request.query.get(name) or None
    if value is not None and not pattern.fullmatch(value):  # match() lets "x\n" through
        raise bad_request(f"{name}: {value[:40]!r} is not {what}")
    return value


def iso(ts: float | None) -> str | None:
    when = to_datetime(ts)
    return when.isoformat().replace("+00:00", "Z") if when else None


def record_json(record: CallRecord) -> dict[str, Any]:
    data = asdict(record)
    for key in ("started_at", "answered_at", "ended_at", "queued_at", "agent_answered_at"):
        data[key] = iso(data[key])
    data["ivr_path"] = [{**step, "at": iso(step["at"])} for step in data["ivr_path"]]
    data["attempts"] = [
        {**a, "started_at": iso(a["started_at"]), "ended_at": iso(a["ended_at"])}
        for a in data["attempts"]
    ]
    data["faq_outcomes"] = [
        {**f, "heard_at": iso(f["heard_at"]), "answered_at": iso(f["answered_at"])}
        for f in data["faq_outcomes"]
    ]
    data["survey_answers"] = [
        {**a, "answered_at": iso(a["answered_at"])} for a in data["survey_answers"]
    ]
    for key in ("wait_seconds", "talk_seconds"):
        if data[key] is not None:
            data[key] = round(data[key], 3)
    data["open"] = record.is_open
    return data


async def list_calls(request: web.Request) -> web.Response:
    check_params(request, ALLOWED_PARAMS)
    since, until = time_range_params(request)
    queue = name_param(request, "queue", QUEUE_NAME, "a queue name")
    protocol = name_param(request, "protocol", PROTOCOL, "a protocol number (digits)")
    limit = int_param(request, "limit", 50, 1, MAX_LIMIT)
    offset = int_param(request, "offset", 0, 0, 10**9)
    try:
        records, total = await request.app[CALLS].list(
            since=since, until=until, queue=queue, protocol=protocol, limit=limit, offset=offset
        )
    except ValueError as exc:  # the store's own checks: still the client's mistake
        raise bad_request(str(exc)) from None
    return web.json_response({
        "total": total,
        "limit": limit,
        "offset": offset,
        "calls": [record_json(r) for r in records],
    })
