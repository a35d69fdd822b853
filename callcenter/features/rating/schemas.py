"""What the tariff and cost routes take and answer (see web/contract.py).

Money is sent as text ("0.25"): a JSON number would pass through a float on its way and
could come out as 0.24999999999999998 on the other side.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator
from pydantic.json_schema import WithJsonSchema

from callcenter.core.identifiers import AGENT_ID_RE, CAMPAIGN_NAME_RE, QUEUE_NAME_RE
from callcenter.core.rating import amount_text
from callcenter.core.report_periods import PeriodError, time_zone
from callcenter.features.rating.store import (
    CallCost,
    CostGrouping,
    CostTotal,
    PricedLeg,
    RerateLine,
    Rerating,
    StoredRate,
    TariffFile,
)
from callcenter.web.contract import (
    Answer,
    Body,
    PathArgs,
    Query,
    Time,
    TimeParam,
    fail,
    name_param,
    one_of,
    pattern_text,
    whole_param,
)
from callcenter.web.params import iso

MONEY_SCHEMA = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
                "description": "an exact amount, as text (e.g. \"0.25\")"}
Money = Annotated[str, WithJsonSchema(MONEY_SCHEMA)]
MaybeMoney = Annotated[str | None, WithJsonSchema({"anyOf": [MONEY_SCHEMA, {"type": "null"}]})]
CALL_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")  # an Asterisk Uniqueid, e.g. 1732812345.17
NAME_RE = re.compile(r"^[^\x00-\x1f/\\]{1,200}$")  # a file name as shown, no path
ZONE_RE = re.compile(r"^[A-Za-z0-9_+/-]{1,64}$")


def money(value: Decimal | None) -> str | None:
    return None if value is None else amount_text(value)


def checked_zone(key: str | None) -> ZoneInfo:
    """The IANA zone ``key`` (None: UTC), or a 400 naming it: the reports' own check."""
    if key is None:
        return ZoneInfo("UTC")
    try:
        return time_zone(key)
    except PeriodError as exc:
        fail(str(exc), where="tz")


ZoneParam = Annotated[name_param(ZONE_RE, "an IANA time zone key (e.g. America/Sao_Paulo)"),
                      Field(description="the center's time zone, which makes the days; "
                                        "left out: the center's ([center] time_zone)")]


class TariffUploadQuery(Query):
    name: Annotated[name_param(NAME_RE, "a file name (1-200 characters, no slash)"),
                    Field(description="the name the tariff is listed under; left out: "
                                      "\"tariff.csv\"")] = None


class TariffAnswer(Answer):
    id: int
    name: str
    currencies: list[str]
    rate_count: int
    sha256: str = Field(description="of the file as sent")
    imported_by: str
    imported_at: Time

    @classmethod
    def of(cls, tariff: TariffFile) -> TariffAnswer:
        return cls(id=tariff.id, name=tariff.name, currencies=list(tariff.currencies),
                   rate_count=tariff.rate_count, sha256=tariff.sha256,
                   imported_by=tariff.imported_by, imported_at=iso(tariff.imported_at) or "")


class TariffList(Answer):
    tariffs: list[TariffAnswer] = Field(description="newest first")


class TariffPath(PathArgs):
    tariff_id: Annotated[whole_param(1, 2**62), Field(description="the tariff's id")]


class PageQuery(Query):
    limit: Annotated[whole_param(1, 500), Field(description="page size")] = 100
    offset: Annotated[whole_param(0, 10**9), Field(description="rows to skip")] = 0


class RateAnswer(Answer):
    id: int
    tariff_id: int
    line: int = Field(description="its line in the file")
    prefix: str
    direction: str
    trunk: str | None = Field(description="null: every trunk")
    per_minute: Money
    connection_fee: Money
    increments: str
    minimum: Money
    currency: str
    decimals: int
    rounding: str
    effective_from: Time
    description: str

    @classmethod
    def of(cls, stored: StoredRate) -> RateAnswer:
        rate = stored.rate
        return cls(id=stored.id, tariff_id=stored.tariff_id, line=stored.line,
                   prefix=rate.prefix, direction=rate.direction.value, trunk=rate.trunk,
                   per_minute=amount_text(rate.per_minute),
                   connection_fee=amount_text(rate.connection_fee),
                   increments=str(rate.increments), minimum=amount_text(rate.minimum),
                   currency=rate.currency, decimals=rate.decimals,
                   rounding=rate.rounding.value,
                   effective_from=iso(rate.effective_from.timestamp()) or "",
                   description=rate.description)


class RateList(Answer):
    tariff_id: int
    limit: int
    offset: int
    rates: list[RateAnswer] = Field(description="in file order")


class CallPathArgs(PathArgs):
    call_id: Annotated[pattern_text(CALL_ID_RE, "a call id (an Asterisk Uniqueid)"),
                       Field(description="the call's id")]


class LegAnswer(Answer):
    leg: int
    kind: str = Field(description="caller (an inbound caller's channel) or customer (the "
                                  "customer a campaign or a callback called)")
    direction: str
    trunk: str | None
    number: str | None
    answered_at: Time
    billable_seconds: float = Field(description="answer to hangup of the leg")
    billed_seconds: int = Field(description="after the rate's increments; 0 when unpriced")
    cost: MaybeMoney = Field(description="null: unpriced")
    currency: str | None
    rate_id: int | None
    prefix: str | None = Field(description="the rate's prefix")
    tariff_id: int | None
    unpriced: str | None = Field(description="why no rate applied (no rate, no number); "
                                             "null: priced")

    @classmethod
    def of(cls, leg: PricedLeg) -> LegAnswer:
        return cls(leg=leg.leg, kind=leg.kind, direction=leg.direction.value, trunk=leg.trunk,
                   number=leg.number, answered_at=iso(leg.answered_at) or "",
                   billable_seconds=leg.billable_seconds, billed_seconds=leg.billed_seconds,
                   cost=money(leg.cost), currency=leg.currency, rate_id=leg.rate_id,
                   prefix=leg.prefix, tariff_id=leg.tariff_id, unpriced=leg.unpriced)


class CallCostAnswer(Answer):
    call_id: str
    totals: dict[str, Money] = Field(description="the priced legs' cost per currency")
    unpriced_legs: int
    legs: list[LegAnswer]

    @classmethod
    def of(cls, cost: CallCost) -> CallCostAnswer:
        return cls(call_id=cost.call_id,
                   totals={currency: amount_text(value) for currency, value in
                           cost.totals.items()},
                   unpriced_legs=cost.unpriced_legs, legs=[LegAnswer.of(leg) for leg in cost.legs])


class _Period(Query):
    since: Annotated[TimeParam, Field(description="legs answered at or after this time "
                                                  "(required)")] = None
    until: Annotated[TimeParam, Field(description="legs answered before this time "
                                                  "(required)")] = None
    tz: ZoneParam = None  # the reports' name for it too

    @model_validator(mode="after")
    def _period(self) -> Any:
        if self.since is None or self.until is None:
            fail("since and until are both required")
        if self.since >= self.until:
            fail("since must be before until")
        checked_zone(self.tz)
        return self


class CostQuery(_Period):
    by: Annotated[one_of(CostGrouping, description="what the totals are per: the day the "
                                                   "leg was answered (in zone), the call's "
                                                   "campaign, queue or agent"),
                  Field()] = CostGrouping.DAY.value
    campaign: Annotated[name_param(CAMPAIGN_NAME_RE, "a campaign name"),
                        Field(description="only this campaign's calls")] = None
    queue: Annotated[name_param(QUEUE_NAME_RE, "a queue name"),
                     Field(description="only this queue's calls")] = None
    agent: Annotated[name_param(AGENT_ID_RE, "an agent id"),
                     Field(description="only the calls this agent answered")] = None


class CostTotalAnswer(Answer):
    key: str | None = Field(description="the day (YYYY-MM-DD), campaign, queue or agent; "
                                        "null: calls without one")
    currency: str | None = Field(description="null: the unpriced legs, counted apart")
    calls: int
    legs: int
    billable_seconds: float
    billed_seconds: int
    cost: MaybeMoney = Field(description="null for the unpriced legs (not zero)")

    @classmethod
    def of(cls, total: CostTotal) -> CostTotalAnswer:
        return cls(key=total.key, currency=total.currency, calls=total.calls, legs=total.legs,
                   billable_seconds=total.billable_seconds,
                   billed_seconds=total.billed_seconds, cost=money(total.cost))


class CostTotals(Answer):
    by: str
    since: Time
    until: Time
    time_zone: str = Field(description="the zone of the days (the reports' name for it)")
    totals: list[CostTotalAnswer] = Field(description="by key, then currency (unpriced last)")


class RerateRequest(Body):
    since: Annotated[str, Field(description="calls that started at or after this time "
                                            "(ISO 8601)")]
    until: Annotated[str, Field(description="calls that started before this time")]
    apply: Annotated[bool, Field(description="store the new prices; false: only show the "
                                             "difference")] = False
    tz: Annotated[str | None, Field(description="the days' time zone; left out: the "
                                                  "center's")] = None

    @model_validator(mode="after")
    def _period(self) -> Any:
        since, until = _time("since", self.since), _time("until", self.until)
        if since >= until:
            fail("since must be before until")
        if self.tz is not None and not ZONE_RE.fullmatch(self.tz):
            fail(f"{self.tz[:40]!r} is not an IANA time zone key", where="tz")
        checked_zone(self.tz)
        return self


def _time(name: str, text: str) -> float:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{text[:40]!r} is not an ISO 8601 time (e.g. 2026-11-01T00:00:00Z)", where=name)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def rerate_period(body: RerateRequest) -> tuple[float, float]:
    return _time("since", body.since), _time("until", body.until)


class RerateLineAnswer(Answer):
    day: str
    currency: str | None = Field(description="null: the unpriced legs")
    old_total: MaybeMoney
    new_total: MaybeMoney
    difference: MaybeMoney = Field(description="new - old; may be negative (\"-0.10\")")
    old_legs: int
    new_legs: int

    @classmethod
    def of(cls, line: RerateLine) -> RerateLineAnswer:
        return cls(day=line.day, currency=line.currency, old_total=money(line.old_total),
                   new_total=money(line.new_total), difference=money(line.difference),
                   old_legs=line.old_legs, new_legs=line.new_legs)


class RerateAnswer(Answer):
    since: Time
    until: Time
    applied: bool
    calls_checked: int
    calls_changed: int
    lines: list[RerateLineAnswer]

    @classmethod
    def of(cls, result: Rerating) -> RerateAnswer:
        return cls(since=iso(result.since) or "", until=iso(result.until) or "",
                   applied=result.applied, calls_checked=result.calls_checked,
                   calls_changed=result.calls_changed,
                   lines=[RerateLineAnswer.of(line) for line in result.lines])
