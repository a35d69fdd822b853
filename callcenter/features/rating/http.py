"""Tariffs and costs: ``/api/tariffs`` (admins import, staff read) and ``/api/costs`` (what
calls cost; admins re-rate a period).

A tariff file is sent as the raw body (``Content-Type: text/csv``), at most
``MAX_TARIFF_BYTES``, and taken whole or not at all: a file with problems is a 400 naming
every bad line (the first 50), and nothing of it is stored.
"""

from __future__ import annotations

import asyncio
from zoneinfo import ZoneInfo

from aiohttp import web

from callcenter.core.rating import TariffError
from callcenter.features.rating.schemas import (
    CallCostAnswer,
    CallPathArgs,
    CostQuery,
    CostTotalAnswer,
    CostTotals,
    PageQuery,
    RateAnswer,
    RateList,
    RerateAnswer,
    RerateRequest,
    TariffAnswer,
    TariffList,
    TariffPath,
    TariffUploadQuery,
    checked_zone,
    rerate_period,
)
from callcenter.features.rating.service import RatingServices
from callcenter.features.rating.store import CostGrouping
from callcenter.web.auth import ADMINS, STAFF, current_user
from callcenter.web.contract import Endpoint, Reply, failed, ok, register
from callcenter.web.limits import BODY_SECONDS, stream_body
from callcenter.web.params import bad_request, body_too_large, iso, json_error

RATING = web.AppKey("rating", RatingServices)
MAX_TARIFF_BYTES = 4 * 1024 * 1024  # tens of thousands of rates; a carrier's file is smaller
CSV_TYPE = "text/csv"
DEFAULT_NAME = "tariff.csv"


def install_rating_routes(app: web.Application, rating: RatingServices) -> None:
    app[RATING] = rating
    register(app, ENDPOINTS)
    stream_body(app, "POST", "/api/tariffs")  # read here, with its own size limit


async def _tariff_bytes(request: web.Request) -> bytes:
    """The body, at most MAX_TARIFF_BYTES, within the server's body deadline."""
    if request.content_type != CSV_TYPE:
        raise json_error(web.HTTPUnsupportedMediaType,
                         f"body: send the tariff file as Content-Type: {CSV_TYPE}, not "
                         f"{request.content_type[:40]!r}")
    if request.content_length is not None and request.content_length > MAX_TARIFF_BYTES:
        raise body_too_large(MAX_TARIFF_BYTES)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(request.app.get(BODY_SECONDS, 30.0)):
            while chunk := await request.content.read(64 * 1024):
                size += len(chunk)
                if size > MAX_TARIFF_BYTES:
                    raise body_too_large(MAX_TARIFF_BYTES)
                chunks.append(chunk)
    except TimeoutError:
        raise json_error(web.HTTPRequestTimeout, "body: the tariff file did not arrive in "
                                                 "time") from None
    return b"".join(chunks)


async def import_tariff(request: web.Request, query: TariffUploadQuery) -> web.Response:
    data = await _tariff_bytes(request)
    try:
        tariff = await request.app[RATING].tariffs.import_file(
            query.name or DEFAULT_NAME, data, current_user(request).username)
    except TariffError as exc:
        count = len(exc.problems)
        raise bad_request(f"tariff file: {count} problem{'s' if count != 1 else ''}, nothing "
                          f"imported: {'; '.join(str(p) for p in exc.problems[:50])}"
                          + (f"; and {count - 50} more" if count > 50 else "")) from None
    return TariffAnswer.of(tariff).response(201)


async def list_tariffs(request: web.Request) -> web.Response:
    tariffs = await request.app[RATING].tariffs.tariffs()
    return TariffList(tariffs=[TariffAnswer.of(t) for t in tariffs]).response()


async def list_rates(request: web.Request, path: TariffPath, query: PageQuery) -> web.Response:
    store = request.app[RATING].tariffs
    if not await store.exists(path.tariff_id):
        raise json_error(web.HTTPNotFound, f"tariff {path.tariff_id}: no such tariff")
    rates = await store.rates(path.tariff_id, query.limit, query.offset)
    return RateList(tariff_id=path.tariff_id, limit=query.limit, offset=query.offset,
                    rates=[RateAnswer.of(rate) for rate in rates]).response()


async def call_cost(request: web.Request, path: CallPathArgs) -> web.Response:
    cost = await request.app[RATING].costs.call_cost(path.call_id)
    if cost is None:
        raise json_error(web.HTTPNotFound, f"call {path.call_id!r}: no such call")
    return CallCostAnswer.of(cost).response()


async def cost_totals(request: web.Request, query: CostQuery) -> web.Response:
    assert query.since is not None and query.until is not None  # the query checked both
    zone = checked_zone(query.tz) if query.tz else request.app[RATING].zone
    try:
        totals = await request.app[RATING].costs.totals(
            CostGrouping(query.by), query.since, query.until, zone=zone,
            campaign=query.campaign, queue=query.queue, agent=query.agent)
    except ValueError as exc:  # the store's own checks (a period too long by the day)
        raise bad_request(str(exc)) from None
    return CostTotals(by=query.by, since=iso(query.since) or "", until=iso(query.until) or "",
                      time_zone=zone.key, totals=[CostTotalAnswer.of(t) for t in totals]).response()


async def rerate(request: web.Request, body: RerateRequest) -> web.Response:
    since, until = rerate_period(body)
    zone: ZoneInfo = checked_zone(body.tz) if body.tz else request.app[RATING].zone
    result = await request.app[RATING].pricer.rerate(since, until, apply=body.apply, zone=zone)
    return RerateAnswer.of(result).response()


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("POST", "/api/tariffs", import_tariff, ADMINS,
             "Import a tariff file (CSV): whole or not at all", "rating",
             {201: ok(TariffAnswer, "Imported: its rates price the legs answered from their "
                                    "dates on."),
              400: failed("The file has problems: every bad line is named (the first 50); "
                          "nothing was imported."),
              413: failed(f"Larger than {MAX_TARIFF_BYTES} bytes."),
              415: failed(f"Not sent as {CSV_TYPE}.")},
             query=TariffUploadQuery, file_body=(CSV_TYPE,),
             description="Send the file itself as the body (`curl --data-binary @rates.csv -H "
                         "'Content-Type: text/csv'`); its columns are in docs/rating.md. A "
                         "later file's rate for the same prefix, direction, trunk and date "
                         "replaces the earlier one (a correction: re-rate the period after "
                         "it); every other rate stays in force for its own period."),
    Endpoint("GET", "/api/tariffs", list_tariffs, STAFF, "The imported tariff files",
             "rating", {200: ok(TariffList)}, takes_no_query=True),
    Endpoint("GET", "/api/tariffs/{tariff_id}/rates", list_rates, STAFF,
             "The rates of one tariff file, in file order", "rating",
             {200: ok(RateList), 404: failed("No such tariff.")},
             path_args=TariffPath, query=PageQuery),
    Endpoint("GET", "/api/costs", cost_totals, STAFF,
             "What calls cost: totals per day, campaign, queue or agent, per currency",
             "rating", {200: ok(CostTotals), 400: failed("A bad or missing parameter, or "
                                                         "more than 400 days by the day.")},
             query=CostQuery,
             description="From the trunk legs answered in [since, until), priced when their "
                         "call ended. Each currency is summed apart; the legs no rate priced "
                         "are counted apart (currency and cost null), never as free."),
    Endpoint("GET", "/api/costs/calls/{call_id}", call_cost, STAFF,
             "What one call cost: its trunk legs and their prices", "rating",
             {200: ok(CallCostAnswer), 404: failed("No such call.")}, path_args=CallPathArgs),
    Endpoint("POST", "/api/costs/rerate", rerate, ADMINS,
             "Price a past period's calls again with the tariffs as they are now", "rating",
             {200: ok(RerateAnswer, "The old and new totals per day and currency, and how "
                                    "many calls changed."),
              400: Reply("A bad period or zone.")},
             body=RerateRequest,
             body_example='{"since": "2026-11-01T00:00:00Z", "until": '
                          '"2026-12-01T00:00:00Z", "apply": false}',
             description="A dry run unless `apply` is true; then only the calls whose price "
                         "changed are written. Running it again shows no difference."),
)
