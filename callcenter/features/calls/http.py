"""GET /api/calls: call records as JSON, filtered by time range and queue, paged;
GET /api/calls/{call_id}/timeline: a closed call's segments and its agents' wrap-ups; and
GET /api/records/dead-letters: the versions of records the database refused for good."""

from __future__ import annotations

from aiohttp import web

from callcenter.core.timeline import TimelineError
from callcenter.features.calls.schemas import (
    Call,
    CallPage,
    CallPath,
    CallsQuery,
    CallTimeline,
    DeadLetter,
    DeadLetterPage,
    DeadLetterQuery,
    TimelineSegment,
    TrunkLegAnswer,
)
from callcenter.features.calls.store import CallRepository, DeadLetterRepository
from callcenter.features.calls.timelines import CallNotFound, CallStillOpen, CallTimelines
from callcenter.web.auth import ADMINS, STAFF
from callcenter.web.contract import (
    Endpoint,
    failed,
    ok,
)
from callcenter.web.params import bad_request, iso, json_error

CALLS = web.AppKey("calls", CallRepository)
DEAD_LETTERS = web.AppKey("dead_letters", DeadLetterRepository)
TIMELINES = web.AppKey("call_timelines", CallTimelines)

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


async def call_timeline(request: web.Request, path: CallPath) -> web.Response:
    try:
        found = await request.app[TIMELINES].of(path.call_id)
    except CallNotFound as exc:
        raise json_error(web.HTTPNotFound, str(exc)) from None
    except (CallStillOpen, TimelineError) as exc:  # open, or its times out of order
        raise json_error(web.HTTPConflict, str(exc)) from None
    record = found.record
    assert record.ended_at is not None  # a closed record: CallStillOpen otherwise
    return CallTimeline(
        call_id=record.call_id, started_at=iso(record.started_at),  # type: ignore[arg-type]
        ended_at=iso(record.ended_at),  # type: ignore[arg-type]
        seconds=round(record.ended_at - record.started_at, 3),
        segments=[TimelineSegment.of(s) for s in found.segments],
        wrap_ups=[TimelineSegment.of(s) for s in found.wrap_ups],
        trunk_legs=[TrunkLegAnswer.of(leg) for leg in found.trunk_legs]).response()


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
TIMELINE_ENDPOINT = Endpoint(
    "GET", "/api/calls/{call_id}/timeline", call_timeline, STAFF,
    "A closed call's timeline: its segments, then its agents' wrap-ups", "calls",
    {200: ok(CallTimeline),
     404: failed("No call with this id."),
     409: failed("The call has not ended yet: its timeline comes when it ends (or its "
                 "record ends before it starts: the error says which).")},
    path_args=CallPath, takes_no_query=True,
    description="Segments (setup, ivr, waiting, transfer, ringing, talk, hold, consult, "
                "survey, after) cover the call without gaps or overlap; each answered agent "
                "leg's wrap-up follows, from the agents' logged states (docs/metering.md).")
DEAD_LETTERS_ENDPOINT = Endpoint(
    "GET", "/api/records/dead-letters", list_dead_letters, ADMINS,
    "Call records the database refused for good", "calls", {200: ok(DeadLetterPage)},
    query=DeadLetterQuery,
    description="The record writer sets such a version aside with the reason, so the records "
                "after it are stored; newest first.")
