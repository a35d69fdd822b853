"""The do-not-call list and the consent ledger: ``/api/do-not-call`` and ``/api/consents``.

Campaign managers and admins add to the do-not-call list (the global one, or a campaign's)
and record consents and revocations; supervisors read. A number is strict E.164 here. The
ledger only grows: a revocation is a new entry, honoured from its time on, and only a later
grant lifts it (core/consent.py). The dialer checks both again at dial time.
"""

from __future__ import annotations

from aiohttp import web

from callcenter.core.consent import ConsentKind, ConsentSource
from callcenter.features.campaigns.http import install_upload_routes
from callcenter.features.campaigns.imports import UploadServices
from callcenter.features.compliance.schemas import (
    ConsentAnswer,
    ConsentHistory,
    DoNotCallAnswer,
    DoNotCallList,
    DoNotCallQuery,
    NewConsent,
    NewDoNotCall,
    NumberQuery,
)
from callcenter.features.compliance.store import ComplianceStore
from callcenter.web.auth import CAMPAIGN_MANAGERS, CAMPAIGN_READERS, current_user
from callcenter.web.contract import Endpoint, failed, ok, register
from callcenter.web.params import bad_request

COMPLIANCE = web.AppKey("compliance", ComplianceStore)


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
    Endpoint("GET", "/api/consents", consent_history, CAMPAIGN_READERS,
             "Every consent entry of one number, oldest first (the audit trail)",
             "compliance", {200: ok(ConsentHistory), 400: failed("No number, or not E.164.")},
             query=NumberQuery),
)

UPLOAD_ENDPOINTS: tuple[Endpoint, ...] = ()
