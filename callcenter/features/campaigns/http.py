"""Outbound campaigns: ``/api/campaigns`` (``ENDPOINTS`` at the end), their call lists
(``LIST_ENDPOINTS``) and the imports of uploaded files (``/api/imports``).

Campaign managers and admins create campaigns, change their settings while they dial
nothing (created or paused), and start, pause and stop them; they upload, append, disable,
recycle, export and delete call lists. Supervisors may read them all.
Errors: 400 bad input (naming the field), 404 unknown campaign or list, 409 a name taken or a
change the campaign's state does not allow. An upload's body is streamed to disk
(uploads.py: its own size cap and pace), then imported in the background (imports.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from aiohttp import web

from callcenter.core.campaigns import Campaign, CampaignState
from callcenter.features.campaigns.export import export_csv, stream_csv
from callcenter.features.campaigns.imports import (
    ImportBusy,
    ImportJob,
    ImportKind,
    UploadServices,
)
from callcenter.features.campaigns.list_files import ListFormat, ListReading, read_call_list
from callcenter.features.campaigns.lists import CallListNotFound
from callcenter.features.campaigns.schemas import (
    CallListAnswer,
    CallListDetail,
    CallListsAnswer,
    CampaignAnswer,
    CampaignChanges,
    CampaignList,
    CampaignPath,
    ColumnsQuery,
    ImportAnswer,
    ImportPath,
    ListChange,
    ListPath,
    ListProblem,
    ListUploadQuery,
    NewCampaign,
    ProblemsQuery,
    StateRequest,
)
from callcenter.features.campaigns.store import (
    CampaignNotFound,
    CampaignRepository,
)
from callcenter.features.campaigns.uploads import CSV_TYPE, XLSX_TYPE
from callcenter.web.auth import CAMPAIGN_MANAGERS, CAMPAIGN_READERS, current_user
from callcenter.web.contract import Endpoint, Reply, failed, ok, register
from callcenter.web.limits import stream_body
from callcenter.web.params import bad_request, json_error

CAMPAIGNS = web.AppKey("campaigns", CampaignRepository)
KNOWN_QUEUES = web.AppKey("campaign_queues", tuple)  # the configured queues, by name
CAN_DIAL = web.AppKey("campaign_can_dial", bool)  # an outbound trunk is configured
UPLOADS = web.AppKey("uploads", UploadServices)
LIST_FORMATS = {CSV_TYPE: ListFormat.CSV, XLSX_TYPE: ListFormat.XLSX}


def install_campaign_routes(app: web.Application, campaigns: CampaignRepository,
                            queues: tuple[str, ...],
                            uploads: UploadServices | None = None, *,
                            can_dial: bool = True) -> None:
    """The campaign routes; with ``uploads``, the call-list and import routes too.
    ``can_dial``: an outbound trunk is configured (no campaign starts without one)."""
    app[CAMPAIGNS] = campaigns
    app[KNOWN_QUEUES] = queues
    app[CAN_DIAL] = can_dial
    register(app, ENDPOINTS)
    if uploads is not None:
        install_upload_routes(app, uploads, LIST_ENDPOINTS)


def install_upload_routes(app: web.Application, uploads: UploadServices,
                          endpoints: tuple[Endpoint, ...]) -> None:
    """Upload routes stream their body (web/limits.py's exception to the body rules)."""
    app[UPLOADS] = uploads
    register(app, endpoints)
    for endpoint in endpoints:
        if endpoint.file_body:
            stream_body(app, endpoint.method, endpoint.path)


def _check_queue(request: web.Request, queue: str | None) -> None:
    known = request.app[KNOWN_QUEUES]
    if queue is not None and queue not in known:
        raise bad_request(f"body: queue: {queue!r} is not a configured queue; use one of "
                          f"{', '.join(known)}")


async def list_campaigns(request: web.Request) -> web.Response:
    campaigns = await request.app[CAMPAIGNS].list()
    return CampaignList(campaigns=[CampaignAnswer.of(c) for c in campaigns]).response()


async def show_campaign(request: web.Request, path: CampaignPath) -> web.Response:
    with _errors():
        campaign = await request.app[CAMPAIGNS].get(path.name)
    return CampaignAnswer.of(campaign).response()


async def create_campaign(request: web.Request, body: NewCampaign) -> web.Response:
    _check_queue(request, body.queue)
    new = Campaign(name=body.name, created_by=current_user(request).username,
                   **body.settings())
    with _errors():
        created = await request.app[CAMPAIGNS].add(new)
    return CampaignAnswer.of(created).response(201)


async def change_campaign(request: web.Request, path: CampaignPath, body: CampaignChanges
                          ) -> web.Response:
    _check_queue(request, body.queue)
    with _errors():
        changed = await request.app[CAMPAIGNS].change(path.name, body.settings())
    return CampaignAnswer.of(changed).response()


async def change_state(request: web.Request, path: CampaignPath, body: StateRequest
                       ) -> web.Response:
    who = current_user(request).username
    reason = f"{who}: {body.reason}" if body.reason else who
    if body.state == CampaignState.RUNNING.value and not request.app[CAN_DIAL]:
        raise json_error(web.HTTPConflict, "no outbound trunk is configured (set [outbound] "
                                           "trunk_host): a running campaign could not dial")
    with _errors():
        changed = await request.app[CAMPAIGNS].set_state(
            path.name, CampaignState(body.state), reason)
    return CampaignAnswer.of(changed).response()


# ----------------------------------------------------------------------- call lists


async def upload_list(request: web.Request, path: CampaignPath, query: ListUploadQuery
                      ) -> web.Response:
    services = request.app[UPLOADS]
    with _errors():
        campaign = await request.app[CAMPAIGNS].get(path.name)
    # A retried upload is refused before its body is read: the list exists, or is coming.
    if any(stored.name == query.list for stored in await services.lists.lists(path.name)):
        raise json_error(web.HTTPConflict, f"campaign {path.name!r} has a list named "
                                           f"{query.list!r}; append to it or pick a new name")
    user = current_user(request).username

    async def store(reading: ListReading) -> dict[str, Any]:
        stored = await services.lists.import_list(path.name, query.list, reading.outcomes,
                                                  reading.summary, created_by=user)
        return {"list": stored, "counts": stored.summary}

    return await _upload_rows(request, campaign, query, ImportKind.CALL_LIST, query.list, store)


async def append_rows(request: web.Request, path: ListPath, query: ColumnsQuery
                      ) -> web.Response:
    services = request.app[UPLOADS]
    with _errors():
        campaign = await request.app[CAMPAIGNS].get(path.name)
        stored = await services.lists.get(path.name, path.list_id)

    async def store(reading: ListReading) -> dict[str, Any]:
        now, counted = await services.lists.append_rows(path.name, path.list_id,
                                                        reading.outcomes, reading.summary)
        return {"list": now, "counts": counted}

    return await _upload_rows(request, campaign, query, ImportKind.CALL_LIST_ROWS,
                              stored.name, store)


async def _upload_rows(request: web.Request, campaign: Campaign, query: ColumnsQuery,
                       kind: ImportKind, target: str,
                       store: Callable[[ListReading], Awaitable[dict[str, Any]]]
                       ) -> web.Response:
    """Receive the file, then read it in the background (the reader opened in a worker
    thread: for CSV a first pass counts the rows) and ``store`` what it reads."""
    services = request.app[UPLOADS]
    refuse_if_under_way(services, kind, campaign.name, target)
    upload = await services.folder.receive(request, LIST_FORMATS)

    async def work(job: ImportJob, source: IO[bytes]) -> dict[str, Any]:
        reading = await asyncio.to_thread(
            read_call_list, source, upload.file_format, query.mapping(),
            campaign.default_region, encoding=query.encoding, sheet=query.sheet,
            progress=job.progressed)
        job.rows_total = reading.rows_total
        return await store(reading)

    return started(services, kind, campaign.name, target, current_user(request).username,
                    upload, work)


def refuse_if_under_way(services: UploadServices, kind: ImportKind, campaign: str | None,
                         target: str) -> None:
    running = services.imports.under_way(kind, campaign, target)
    if running is not None:
        raise json_error(web.HTTPConflict, f"import {running.id} of {target!r} is under way; "
                                           f"see /api/imports/{running.id}")


def started(services: UploadServices, kind: ImportKind, campaign: str | None, target: str,
             user: str, upload: Any, work: Any) -> web.Response:
    try:
        job = services.imports.start(kind, campaign, target, user, upload, work)
    except ImportBusy as exc:
        raise json_error(web.HTTPConflict, str(exc)) from None
    response = ImportAnswer.of(job).response(202)
    response.headers["Location"] = f"/api/imports/{job.id}"
    return response


async def show_import(request: web.Request, path: ImportPath) -> web.Response:
    return ImportAnswer.of(_job(request, path.import_id)).response()


async def cancel_import(request: web.Request, path: ImportPath) -> web.Response:
    _job(request, path.import_id)
    job = await request.app[UPLOADS].imports.cancel(path.import_id)
    assert job is not None
    return ImportAnswer.of(job).response()


def _job(request: web.Request, import_id: str) -> ImportJob:
    job = request.app[UPLOADS].imports.get(import_id)
    if job is None:
        raise json_error(web.HTTPNotFound, f"import {import_id!r}: no such import (imports "
                                           "are forgotten when the service restarts)")
    return job


async def list_lists(request: web.Request, path: CampaignPath) -> web.Response:
    with _errors():
        await request.app[CAMPAIGNS].get(path.name)
    lists = await request.app[UPLOADS].lists.lists(path.name)
    return CallListsAnswer(campaign=path.name,
                           lists=[CallListAnswer.of(s) for s in lists]).response()


async def show_list(request: web.Request, path: ListPath, query: ProblemsQuery
                    ) -> web.Response:
    lists = request.app[UPLOADS].lists
    with _errors():
        stored = await lists.get(path.name, path.list_id)
    problems = await lists.problems(path.list_id, query.limit, query.offset)
    return CallListDetail(call_list=CallListAnswer.of(stored), limit=query.limit,
                          offset=query.offset,
                          problems=[ListProblem(**p) for p in problems]).response()


async def change_list(request: web.Request, path: ListPath, body: ListChange
                      ) -> web.Response:
    with _errors():
        stored = await request.app[UPLOADS].lists.set_active(path.name, path.list_id,
                                                             body.active)
    return CallListAnswer.of(stored).response()


async def recycle_list(request: web.Request, path: ListPath) -> web.Response:
    with _errors():
        stored = await request.app[UPLOADS].lists.recycle(path.name, path.list_id)
    return CallListAnswer.of(stored).response()


async def delete_list(request: web.Request, path: ListPath) -> web.Response:
    with _errors():
        await request.app[UPLOADS].lists.delete(path.name, path.list_id)
    return web.Response(status=204)


async def export_list(request: web.Request, path: ListPath) -> web.StreamResponse:
    lists = request.app[UPLOADS].lists
    with _errors():
        columns = await lists.extra_columns(path.name, path.list_id)
    return await stream_csv(request, f"{path.name}-list-{path.list_id}.csv",
                            export_csv(columns, lists.with_outcomes(path.name, path.list_id)))


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except (CampaignNotFound, CallListNotFound) as exc:
        raise json_error(web.HTTPNotFound, str(exc)) from None
    except ValueError as exc:  # a taken name, a state that forbids it, a change made meanwhile
        raise json_error(web.HTTPConflict, str(exc)) from None


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/campaigns", list_campaigns, CAMPAIGN_READERS,
             "Every outbound campaign, by name", "campaigns",
             {200: ok(CampaignList)}, takes_no_query=True),
    Endpoint("GET", "/api/campaigns/{name}", show_campaign, CAMPAIGN_READERS,
             "One campaign's settings and state", "campaigns",
             {200: ok(CampaignAnswer), 404: failed("No such campaign.")},
             path_args=CampaignPath, takes_no_query=True),
    Endpoint("POST", "/api/campaigns", create_campaign, CAMPAIGN_MANAGERS,
             "Create a campaign (state created: it dials nothing until started)",
             "campaigns",
             {201: ok(CampaignAnswer, "Created."), 409: failed("The name is taken.")},
             body=NewCampaign,
             body_example='{"name": "renewals", "mode": "predictive", "queue": "sales", '
                          '"caller_id": "+551130000000", "default_region": "BR", '
                          '"hours": {"mon-fri": ["09:00-20:00"], "sat": ["10:00-14:00"]}}',
             description="Calling hours apply in each callee's own time zone (from the "
                         "number), public holidays of the callee's country skipped unless "
                         "`skip_holidays` is false. The abandon cap is at most 3 %; the ring "
                         "time at least 15 s."),
    Endpoint("PATCH", "/api/campaigns/{name}", change_campaign, CAMPAIGN_MANAGERS,
             "Change a campaign's settings", "campaigns",
             {200: ok(CampaignAnswer, "Changed."), 404: failed("No such campaign."),
              409: failed("The campaign is running (pause it first) or stopped.")},
             path_args=CampaignPath, body=CampaignChanges,
             body_example='{"max_attempts": 5}'),
    Endpoint("POST", "/api/campaigns/{name}/state", change_state, CAMPAIGN_MANAGERS,
             "Start, pause or stop a campaign", "campaigns",
             {200: ok(CampaignAnswer, "Changed; the campaign as stored now."),
              404: failed("No such campaign."),
              409: failed("A change its state does not allow (already in that state, or "
                          "stopped for good), or a start with no outbound trunk configured.")},
             path_args=CampaignPath, body=StateRequest,
             body_example='{"state": "paused", "reason": "list to be checked"}',
             description="The reason is stored with the state, after the user's name."),
)

UPLOAD_ANSWERS: dict[int, Reply] = {
    202: Reply("Stored; the import runs in the background: GET the Location (the import) "
               "for its state and progress.", ImportAnswer,
               headers={"Location": "/api/imports/{id}"}),
    408: failed("The body came too slowly (after the first seconds it must keep up with the "
                "floor the error states)."),
    413: failed("The file is larger than the upload limit (limit_bytes)."),
    415: failed("The Content-Type is not one of the accepted file types."),
    503: failed("Too many uploads are being received at once; try again shortly."),
}
UPLOAD_ABOUT = (
    "Send the file itself as the body (`curl --data-binary @list.csv -H 'Content-Type: "
    "text/csv'`), the mapping in the query. The file is stored, then read in the background: "
    "the answer (202) is the import; a file found bad stores nothing, and the import says "
    "why and on which line.")

LIST_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/campaigns/{name}/lists", list_lists, CAMPAIGN_READERS,
             "A campaign's call lists, with their counts and whether they are dialled",
             "call lists", {200: ok(CallListsAnswer), 404: failed("No such campaign.")},
             path_args=CampaignPath, takes_no_query=True),
    Endpoint("POST", "/api/campaigns/{name}/lists", upload_list, CAMPAIGN_MANAGERS,
             "Upload a new call list (CSV or XLSX)", "call lists",
             {**UPLOAD_ANSWERS, 404: failed("No such campaign."),
              409: failed("The campaign has a list of that name, or its upload is under "
                          "way.")},
             path_args=CampaignPath, query=ListUploadQuery, file_body=(CSV_TYPE, XLSX_TYPE),
             description=UPLOAD_ABOUT),
    Endpoint("GET", "/api/campaigns/{name}/lists/{list_id}", show_list, CAMPAIGN_READERS,
             "One call list, with its rows not taken (rejected or duplicate), a page at a "
             "time", "call lists",
             {200: ok(CallListDetail), 404: failed("No such campaign or list.")},
             path_args=ListPath, query=ProblemsQuery),
    Endpoint("PATCH", "/api/campaigns/{name}/lists/{list_id}", change_list, CAMPAIGN_MANAGERS,
             "Disable or enable a call list", "call lists",
             {200: ok(CallListAnswer), 404: failed("No such campaign or list.")},
             path_args=ListPath, body=ListChange, body_example='{"active": false}'),
    Endpoint("DELETE", "/api/campaigns/{name}/lists/{list_id}", delete_list, CAMPAIGN_MANAGERS,
             "Delete a call list the campaign never dialled", "call lists",
             {204: Reply("Deleted, with its numbers.", None),
              404: failed("No such campaign or list."),
              409: failed("The list has been dialled: disable it instead.")},
             path_args=ListPath, takes_no_query=True),
    Endpoint("POST", "/api/campaigns/{name}/lists/{list_id}/rows", append_rows,
             CAMPAIGN_MANAGERS, "Append an upload's rows to a call list", "call lists",
             {**UPLOAD_ANSWERS, 404: failed("No such campaign or list."),
              409: failed("An upload to this list is under way.")},
             path_args=ListPath, query=ColumnsQuery, file_body=(CSV_TYPE, XLSX_TYPE),
             description=UPLOAD_ABOUT + " Numbers the list has already are reported as "
                                        "duplicates of the line (and upload) holding them."),
    Endpoint("POST", "/api/campaigns/{name}/lists/{list_id}/recycle", recycle_list,
             CAMPAIGN_MANAGERS, "Recycle a call list: dial its no-answers again",
             "call lists", {200: ok(CallListAnswer), 404: failed("No such campaign or list.")},
             path_args=ListPath, takes_no_query=True,
             description="Sets recycled_at to now: attempts placed before it no longer count "
                         "towards the campaign's max attempts. Final outcomes, do-not-call and "
                         "consent still count."),
    Endpoint("GET", "/api/campaigns/{name}/lists/{list_id}/export", export_list,
             CAMPAIGN_READERS, "A call list with its outcomes, as CSV", "call lists",
             {200: Reply("The list, one row per number, with its attempts.",
                         {"type": "string"}, media_type="text/csv"),
              404: failed("No such campaign or list.")},
             path_args=ListPath, takes_no_query=True,
             description="Cells from the upload that look like spreadsheet formulas start "
                         "with a ' so a spreadsheet shows them as text."),
    Endpoint("GET", "/api/imports/{import_id}", show_import, CAMPAIGN_READERS,
             "An upload's import: state, rows done of the total, and the outcome", "imports",
             {200: ok(ImportAnswer), 404: failed("No such import (or the service restarted).")},
             path_args=ImportPath, takes_no_query=True),
    Endpoint("DELETE", "/api/imports/{import_id}", cancel_import, CAMPAIGN_MANAGERS,
             "Cancel an import under way: nothing of it is stored", "imports",
             {200: ok(ImportAnswer, "The import as it ended (cancelled, or done/failed if it "
                                    "ended first)."),
              404: failed("No such import.")},
             path_args=ImportPath, takes_no_query=True),
)
