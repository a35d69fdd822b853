"""GET /api/calls: call records as JSON, filtered by time range and queue, paged; and
GET /api/records/dead-letters: the versions of records the database refused for good."""

from __future__ import annotations

from aiohttp import web

from callcenter.features.calls.schemas import (
    Call,
    CallPage,
    CallsQuery,
    DeadLetter,
    DeadLetterPage,
    DeadLetterQuery,
)
from callcenter.features.calls.store import CallRepository, DeadLetterRepository
from callcenter.web.auth import ADMINS, STAFF
from callcenter.web.contract import (
    Endpoint,
    ok,
)
from callcenter.web.params import bad_request, iso

CALLS = web.AppKey("calls", CallRepository)
DEAD_LETTERS = web.AppKey("dead_letters", DeadLetterRepository)

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
    return CallPage(total=total, limit=query.limit, offset=query.offset,
                    calls=[Call.of(record) for record in records]).response()


async def list_dead_letters(request: web.Request, query: DeadLetterQuery) -> web.Response:
    """Newest first: what the record writer set aside (docs/configuration.md, "Call records
    when the database is away"), so an admin sees a refused record and why."""
    letters = await request.app[DEAD_LETTERS].list(limit=query.limit)
    return DeadLetterPage(limit=query.limit, dead_letters=[
        DeadLetter(id=letter.id, call_id=letter.call_id, reason=letter.reason,
                   at=iso(letter.at), record=letter.record) for letter in letters]).response()


CALLS_ENDPOINT = Endpoint(
    "GET", "/api/calls", list_calls, STAFF, "Call records, newest first, filtered and paged",
    "calls", {200: ok(CallPage)}, query=CallsQuery,
    description="`since` and `until` apply to when calls started. Unknown parameters and "
                "parameters given twice are refused.")
DEAD_LETTERS_ENDPOINT = Endpoint(
    "GET", "/api/records/dead-letters", list_dead_letters, ADMINS,
    "Call records the database refused for good", "calls", {200: ok(DeadLetterPage)},
    query=DeadLetterQuery,
    description="The record writer sets such a version aside with the reason, so the records "
                "after it are stored; newest first.")
