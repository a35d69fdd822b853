"""GET /api/calls: call records as JSON, filtered by time range and queue, paged; and
GET /api/records/dead-letters: the versions of records the database refused for good."""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from aiohttp import web

from callcenter.core.records import CallRecord
from callcenter.web.keys import CALLS, DEAD_LETTERS
from callcenter.web.params import (
    MAX_LIMIT,
    PROTOCOL,
    QUEUE_NAME,
    bad_request,
    check_params,
    int_param,
    iso,
    name_param,
    time_range_params,
)

ALLOWED_PARAMS = {"since", "until", "queue", "protocol", "limit", "offset", "callback_request"}
CALLBACK_REQUEST = re.compile(r"[1-9][0-9]{0,17}")  # a callback request's id


def record_json(record: CallRecord) -> dict[str, Any]:
    data = asdict(record)
    for key in ("started_at", "answered_at", "ended_at", "queued_at", "agent_answered_at"):
        data[key] = iso(data[key])
    data["ivr_path"] = [{**step, "at": iso(step["at"])} for step in data["ivr_path"]]
    data["attempts"] = [
        {**a, "started_at": iso(a["started_at"]), "ended_at": iso(a["ended_at"]),
         "answered_at": iso(a["answered_at"]), "talk_seconds": _rounded(a["talk_seconds"])}
        for a in data["attempts"]
    ]
    data["faq_outcomes"] = [
        {**f, "heard_at": iso(f["heard_at"]), "answered_at": iso(f["answered_at"])}
        for f in data["faq_outcomes"]
    ]
    data["survey_answers"] = [
        {**a, "answered_at": iso(a["answered_at"])} for a in data["survey_answers"]
    ]
    data["transfers"] = [
        {**t, "requested_at": iso(t["requested_at"]), "ended_at": iso(t["ended_at"])}
        for t in data["transfers"]
    ]
    for key in ("wait_seconds", "talk_seconds"):
        data[key] = _rounded(data[key])
    data["open"] = record.is_open
    return data


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


async def list_calls(request: web.Request) -> web.Response:
    check_params(request, ALLOWED_PARAMS)
    since, until = time_range_params(request)
    queue = name_param(request, "queue", QUEUE_NAME, "a queue name")
    protocol = name_param(request, "protocol", PROTOCOL, "a protocol number (digits)")
    limit = int_param(request, "limit", 50, 1, MAX_LIMIT)
    offset = int_param(request, "offset", 0, 0, 10**9)
    callback_request = name_param(request, "callback_request", CALLBACK_REQUEST,
                                  "a callback request id (a whole number from 1)")
    try:
        records, total = await request.app[CALLS].list(
            since=since, until=until, queue=queue, protocol=protocol, limit=limit, offset=offset,
            callback_request=None if callback_request is None else int(callback_request),
        )
    except ValueError as exc:  # the store's own checks: still the client's mistake
        raise bad_request(str(exc)) from None
    return web.json_response({
        "total": total,
        "limit": limit,
        "offset": offset,
        "calls": [record_json(r) for r in records],
    })


async def list_dead_letters(request: web.Request) -> web.Response:
    """Newest first: what the record writer set aside (docs/configuration.md, "Call records
    when the database is away"), so an admin sees a refused record and why."""
    check_params(request, {"limit"})
    limit = int_param(request, "limit", 50, 1, MAX_LIMIT)
    letters = await request.app[DEAD_LETTERS].list(limit=limit)
    return web.json_response({"limit": limit, "dead_letters": [
        {"id": letter.id, "call_id": letter.call_id, "reason": letter.reason,
         "at": iso(letter.at), "record": letter.record} for letter in letters]})
