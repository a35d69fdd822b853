"""The do-not-call list and the consent ledger: ``/api/do-not-call`` and ``/api/consents``,
and their file uploads (``UPLOAD_ENDPOINTS``: a CSV streamed to disk, imported in the
background in one transaction, each row checked as the API checks one entry).

Campaign managers and admins add to the do-not-call list (the global one, or a campaign's)
and record consents and revocations; supervisors read. A number is strict E.164 here. The
ledger only grows: a revocation is a new entry, honoured from its time on, and only a later
grant lifts it (core/consent.py). The dialer checks both again at dial time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import IO, Any, TypeVar

from aiohttp import web

from callcenter.core.call_lists import ListSummary
from callcenter.core.consent import ConsentKind, ConsentSource
from callcenter.features.campaigns.export import csv_chunks, escaped, stream_csv
from callcenter.features.campaigns.http import (
    UPLOAD_ANSWERS,
    UPLOADS,
    install_upload_routes,
    refuse_if_under_way,
    started,
)
from callcenter.features.campaigns.imports import (
    MAX_REJECTS_LISTED,
    ImportJob,
    ImportKind,
    UploadServices,
)
from callcenter.features.campaigns.list_files import count_csv_rows
from callcenter.features.campaigns.uploads import CSV_TYPE
from callcenter.features.compliance.schemas import (
    ConsentAnswer,
    ConsentHistory,
    ConsentUploadQuery,
    DoNotCallAnswer,
    DoNotCallList,
    DoNotCallQuery,
    DoNotCallUploadQuery,
    LedgerQuery,
    NewConsent,
    NewDoNotCall,
    NumberQuery,
)
from callcenter.features.compliance.store import ComplianceStore, Imported
from callcenter.features.compliance.uploads import (
    Reject,
    RowCounter,
    consent_rows,
    do_not_call_rows,
)
from callcenter.web.auth import CAMPAIGN_MANAGERS, CAMPAIGN_READERS, current_user
from callcenter.web.contract import Endpoint, Reply, failed, ok, register
from callcenter.web.params import bad_request, iso

COMPLIANCE = web.AppKey("compliance", ComplianceStore)
CSV_ONLY = {CSV_TYPE: "csv"}
T = TypeVar("T")


def install_compliance_routes(app: web.Application, store: ComplianceStore,
                              uploads: UploadServices | None = None) -> None:
    """The do-not-call and consent routes; with ``uploads``, their file uploads too."""
    app[COMPLIANCE] = store
    register(app, ENDPOINTS)
    if uploads is not None:
        install_upload_routes(app, uploads, UPLOAD_ENDPOINTS)


async def add_do_not_call(request: web.Request, body: NewDoNotCall) -> web.Response:
    user = current_user(request).username
    entry = await request.app[COMPLIANCE].add_do_not_call(
        body.number, body.campaign, source="api", reason=body.reason, added_by=user)
    return DoNotCallAnswer.of(entry).response(201)


async def list_do_not_call(request: web.Request, query: DoNotCallQuery) -> web.Response:
    entries = await request.app[COMPLIANCE].list_do_not_call(query.campaign, query.limit,
                                                             query.offset)
    return DoNotCallList(campaign=query.campaign, limit=query.limit, offset=query.offset,
                         entries=[DoNotCallAnswer.of(e) for e in entries]).response()


async def record_consent(request: web.Request, body: NewConsent) -> web.Response:
    entry = await request.app[COMPLIANCE].record_consent(
        body.number, body.campaign, ConsentKind(body.kind), source=ConsentSource(body.source),
        proof=body.proof, recorded_by=current_user(request).username)
    return ConsentAnswer.of(entry).response(201)


async def consent_history(request: web.Request, query: NumberQuery) -> web.Response:
    if query.number is None:
        raise bad_request("number: is required")
    entries = await request.app[COMPLIANCE].consent_entries(query.number)
    return ConsentHistory(number=query.number,
                          entries=[ConsentAnswer.of(e) for e in entries]).response()


LEDGER_COLUMNS = ("id", "at", "number", "campaign", "kind", "source", "proof", "recorded_by")


async def export_ledger(request: web.Request, query: LedgerQuery) -> web.StreamResponse:
    """The consent ledger as CSV, in the order it was written, for an audit."""
    async def rows() -> AsyncIterator[list[list[str]]]:
        async for batch in request.app[COMPLIANCE].ledger(query.campaign):
            yield [[str(e.id), iso(e.at) or "", e.number, e.campaign or "", e.kind.value,
                    e.source.value, escaped(e.proof), escaped(e.recorded_by or "")]
                   for e in batch]

    return await stream_csv(request, f"consents-{query.campaign or 'all'}.csv",
                            csv_chunks(LEDGER_COLUMNS, rows()))


async def upload_do_not_call(request: web.Request, query: DoNotCallUploadQuery
                             ) -> web.Response:
    target = f"do-not-call of {query.campaign}" if query.campaign else "global do-not-call"
    user = current_user(request).username
    store = request.app[COMPLIANCE]

    def rows(source: IO[bytes], counter: RowCounter) -> Iterator[Any]:
        return do_not_call_rows(source, number=query.number, reason_column=query.reason_column,
                                reason=query.reason, region=query.region,
                                encoding=query.encoding, counter=counter)

    async def store_rows(checked: Iterator[Any]) -> Imported:
        return await store.import_do_not_call(query.campaign, checked, source="import",
                                              added_by=user)

    return await _upload(request, ImportKind.DO_NOT_CALL, query.campaign, target, rows,
                         store_rows)


async def upload_consents(request: web.Request, query: ConsentUploadQuery) -> web.Response:
    target = f"consents for {query.campaign}" if query.campaign else "consents"
    user = current_user(request).username
    store = request.app[COMPLIANCE]
    now = request.app[UPLOADS].imports.now()

    def rows(source: IO[bytes], counter: RowCounter) -> Iterator[Any]:
        return consent_rows(source, number=query.number, proof=query.proof, kind=query.kind,
                            at=query.at, region=query.region, encoding=query.encoding,
                            now=now, counter=counter)

    async def store_rows(checked: Iterator[Any]) -> Imported:
        return await store.import_consents(query.campaign, checked,
                                           source=ConsentSource(query.source),
                                           recorded_by=user)

    return await _upload(request, ImportKind.CONSENTS, query.campaign, target, rows,
                         store_rows)


async def _upload(request: web.Request, kind: ImportKind, campaign: str | None, target: str,
                  rows: Any, store_rows: Any) -> web.Response:
    """Receive the CSV, then check its rows and store the good ones in the background, in
    one transaction; the rejects (with their lines) are in the import's answer."""
    services = request.app[UPLOADS]
    refuse_if_under_way(services, kind, campaign, target)
    upload = await services.folder.receive(request, CSV_ONLY)

    async def work(job: ImportJob, source: IO[bytes]) -> dict[str, Any]:
        job.rows_total = await asyncio.to_thread(count_csv_rows, source)
        counter = RowCounter()
        rejects: list[tuple[int, str]] = []

        def good(items: Iterator[T]) -> Iterator[T]:
            for item in items:
                job.rows_done = counter.rows_read
                if isinstance(item, Reject):
                    if len(rejects) < MAX_REJECTS_LISTED:
                        rejects.append((item.line, item.reason))
                    continue
                yield item
            job.rows_done = counter.rows_read

        imported = await store_rows(good(rows(source, counter)))
        return {"counts": ListSummary(counter.rows_read, imported.added, counter.rejected,
                                      imported.already, counter.blank_rows, 0),
                "rejects": rejects}

    return started(services, kind, campaign, target, current_user(request).username, upload,
                   work)


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("POST", "/api/do-not-call", add_do_not_call, CAMPAIGN_MANAGERS,
             "Put a number on the do-not-call list (global, or a campaign's)", "compliance",
             {201: ok(DoNotCallAnswer, "Listed (a number listed already keeps its first "
                                       "entry, which is answered).")},
             body=NewDoNotCall,
             body_example='{"number": "+5511999990000", "reason": "asked by phone"}'),
    Endpoint("GET", "/api/do-not-call", list_do_not_call, CAMPAIGN_READERS,
             "The global do-not-call list, or a campaign's, oldest first", "compliance",
             {200: ok(DoNotCallList)}, query=DoNotCallQuery),
    Endpoint("POST", "/api/consents", record_consent, CAMPAIGN_MANAGERS,
             "Record a consent or its revocation (append-only)", "compliance",
             {201: ok(ConsentAnswer, "Recorded, stamped now.")}, body=NewConsent,
             body_example='{"number": "+5511999990000", "campaign": "renewals", '
                          '"kind": "granted", "proof": "web form 2026-11-02 #8812"}',
             description="A revocation wins over every earlier grant; only a later grant "
                         "(a new consent, with its own proof) lifts it."),
    Endpoint("GET", "/api/consents/export", export_ledger, CAMPAIGN_READERS,
             "The consent ledger as CSV, for an audit", "compliance",
             {200: Reply("Every entry in the order it was written: id, at (UTC), number, "
                         "campaign (empty: every campaign), kind, source, proof, recorded_by.",
                         {"type": "string"}, media_type="text/csv")},
             query=LedgerQuery,
             description="Append-only: an entry once written is never changed, so two "
                         "exports agree on every row they share. Proofs that look like "
                         "spreadsheet formulas start with a ' so a spreadsheet shows them as "
                         "text."),
    Endpoint("GET", "/api/consents", consent_history, CAMPAIGN_READERS,
             "Every consent entry of one number, oldest first (the audit trail)",
             "compliance", {200: ok(ConsentHistory), 400: failed("No number, or not E.164.")},
             query=NumberQuery),
)

UPLOAD_ABOUT = (
    "Send the CSV itself as the body (`curl --data-binary @numbers.csv -H 'Content-Type: "
    "text/csv'`), the columns in the query. It is stored, then read in the background: the "
    "answer (202) is the import. Rows are checked as the API checks one entry; the good ones "
    "are stored in one transaction (a file found bad stores nothing), the others are "
    "listed in the import's `rejects` with their line.")

UPLOAD_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("POST", "/api/do-not-call/uploads", upload_do_not_call, CAMPAIGN_MANAGERS,
             "Upload numbers for the do-not-call list (global, or a campaign's)", "compliance",
             {**UPLOAD_ANSWERS, 409: failed("An upload to the same list is under way.")},
             query=DoNotCallUploadQuery, file_body=(CSV_TYPE,),
             description=UPLOAD_ABOUT + " A number listed already keeps its first entry "
                                        "(counted as a duplicate)."),
    Endpoint("POST", "/api/consents/uploads", upload_consents, CAMPAIGN_MANAGERS,
             "Upload consents and revocations into the ledger (append-only)", "compliance",
             {**UPLOAD_ANSWERS, 409: failed("An upload to the same ledger scope is under "
                                            "way.")},
             query=ConsentUploadQuery, file_body=(CSV_TYPE,),
             description=UPLOAD_ABOUT + " An entry the ledger holds already (same number, "
                                        "campaign, kind, time, source and proof: a file sent "
                                        "again) is not added twice."),
)
