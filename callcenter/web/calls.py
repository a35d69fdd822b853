"""GET /api/calls: call records as JSON, filtered by time range and queue, paged; and
GET /api/records/dead-letters: the versions of records the database refused for good."""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Annotated, Any

from aiohttp import web
from pydantic import Field

from callcenter.core.records import CallRecord
from callcenter.web.auth import ADMINS, STAFF
from callcenter.web.contract import (
    Answer,
    Endpoint,
    Query,
    Time,
    TimeRange,
    name_param,
    ok,
    whole_param,
)
from callcenter.web.keys import CALLS, DEAD_LETTERS
from callcenter.web.params import MAX_LIMIT, PROTOCOL, QUEUE_NAME, bad_request, iso

CALLBACK_REQUEST = re.compile(r"[1-9][0-9]{0,17}")  # a callback request's id
PAGE_SIZE = 50
MAX_OFFSET = 10**9


class CallsQuery(TimeRange):
    queue: Annotated[name_param(QUEUE_NAME, "a queue name"),
                     Field(description="only this queue")] = None
    protocol: Annotated[name_param(PROTOCOL, "a protocol number (digits)"),
                        Field(description="only this protocol number")] = None
    limit: Annotated[whole_param(1, MAX_LIMIT), Field(description="page size")] = PAGE_SIZE
    offset: Annotated[whole_param(0, MAX_OFFSET), Field(description="rows to skip")] = 0
    callback_request: Annotated[
        name_param(CALLBACK_REQUEST, "a callback request id (a whole number from 1)",
                   json_schema={"type": "integer", "minimum": 1}),
        Field(description="only the call that asked for this callback and the callback's "
                          "calls")] = None


class DeadLetterQuery(Query):
    limit: Annotated[whole_param(1, MAX_LIMIT), Field(description="page size")] = PAGE_SIZE


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


class DeadLetter(Answer):
    """A version of a call record the database refused for good."""

    id: int = Field(ge=1)
    call_id: str = Field(description="control characters shown escaped")
    reason: str = Field(description="why the database refused it")
    at: Time
    record: str = Field(description="the refused version of the record, as a JSON document")


class DeadLetterPage(Answer):
    """Newest first."""

    limit: int = Field(ge=1, le=MAX_LIMIT)
    dead_letters: list[DeadLetter]


async def list_calls(request: web.Request, query: CallsQuery) -> web.Response:
    try:
        records, total = await request.app[CALLS].list(
            since=query.since, until=query.until, queue=query.queue, protocol=query.protocol,
            limit=query.limit, offset=query.offset,
            callback_request=None if query.callback_request is None
            else int(query.callback_request),
        )
    except ValueError as exc:  # the store's own checks: still the client's mistake
        raise bad_request(str(exc)) from None
    return web.json_response({
        "total": total,
        "limit": query.limit,
        "offset": query.offset,
        "calls": [record_json(r) for r in records],
    })


async def list_dead_letters(request: web.Request, query: DeadLetterQuery) -> web.Response:
    """Newest first: what the record writer set aside (docs/configuration.md, "Call records
    when the database is away"), so an admin sees a refused record and why."""
    letters = await request.app[DEAD_LETTERS].list(limit=query.limit)
    return DeadLetterPage(limit=query.limit, dead_letters=[
        DeadLetter(id=letter.id, call_id=letter.call_id, reason=letter.reason,
                   at=iso(letter.at), record=letter.record) for letter in letters]).response()


CALLS_ENDPOINT = Endpoint(
    "GET", "/api/calls", list_calls, STAFF, "Call records, newest first, filtered and paged",
    "calls", {200: ok("CallPage")}, query=CallsQuery,
    description="`since` and `until` apply to when calls started. Unknown parameters and "
                "parameters given twice are refused.")
DEAD_LETTERS_ENDPOINT = Endpoint(
    "GET", "/api/records/dead-letters", list_dead_letters, ADMINS,
    "Call records the database refused for good", "calls", {200: ok(DeadLetterPage)},
    query=DeadLetterQuery,
    description="The record writer sets such a version aside with the reason, so the records "
                "after it are stored; newest first.")
