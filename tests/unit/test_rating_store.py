"""Rating end to end through the database (SQLite and PostgreSQL): a tariff imported, calls
stored through the record follower, each trunk leg priced as hand-worked here; bad tariff
files store nothing; re-rating after a correction shows the exact difference, then none."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from callcenter.core.clock import VirtualClock
from callcenter.core.rating import TariffError
from callcenter.core.records import CallRecord, Direction
from callcenter.core.trunk_legs import TrunkLeg, Trunks
from callcenter.features.calls.store import CallRepository
from callcenter.features.rating.models import CallCostRow, TariffRateRow, TariffRow
from callcenter.features.rating.store import (
    NO_NUMBER,
    NO_RATE,
    CallPricer,
    CostGrouping,
    CostQueries,
    TariffBook,
    TariffStore,
    local_days,
)
from tests.support.store import count_rows

HEADER = ("prefix,direction,trunk,per_minute,connection_fee,increments,minimum,currency,"
          "decimals,rounding,effective_from,description\n")
TARIFF = HEADER + (
    "55,outbound,,0.12,0,30/6,0,BRL,2,half_up,2026-01-01,Brazil\n"
    "5511,outbound,,0.10,0.05,60/60,0,BRL,2,half_up,2026-01-01,Sao Paulo\n"
    "5511,outbound,,0.20,0.05,60/60,0,BRL,2,half_up,2027-01-01,Sao Paulo from 2027\n"
    "5531,outbound,,0.06,0,1/1,0.10,BRL,2,half_up,2026-01-01,Belo Horizonte (minimum)\n"
    "5521,outbound,,0.06,0,1/1,0,BRL,2,half_up,2026-01-01,Rio\n"
    "5521,outbound,callcenter-trunk,0.03,0,1/1,0,BRL,2,half_up,2026-01-01,Rio on our trunk\n"
    "1,inbound,anonymous,0.02,0,60/60,0,USD,2,half_up,2026-01-01,US callers (toll-free)\n")


def at(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class Rating:
    clock: VirtualClock
    tariffs: TariffStore
    pricer: CallPricer
    calls: CallRepository
    costs: CostQueries


@pytest.fixture
def rating(sessions: async_sessionmaker[AsyncSession]) -> Rating:
    clock = VirtualClock(at("2026-12-01T00:00:00Z"))
    tariffs = TariffStore(sessions, clock)
    pricer = CallPricer(sessions, tariffs, Trunks(frozenset({"callcenter-trunk", "anonymous"}),
                                                  "callcenter-trunk"))
    return Rating(clock, tariffs, pricer, CallRepository(sessions, clock, followers=[pricer]),
                  CostQueries(sessions))


def campaign_call(call_id: str, number: str, answered: str, seconds: float,
                  campaign: str = "renewals", agent: str = "agent1") -> CallRecord:
    answered_at = at(answered)
    return CallRecord(call_id=call_id, started_at=answered_at - 20, answered_at=answered_at,
                      ended_at=answered_at + seconds, caller_number=number,
                      channel=f"PJSIP/callcenter-trunk-{call_id}", direction=Direction.OUTBOUND,
                      campaign=campaign, queue="sales", agent_id=agent)


def inbound_call(call_id: str, number: str, answered: str, seconds: float,
                 channel: str = "PJSIP/anonymous-00000001") -> CallRecord:
    answered_at = at(answered)
    return CallRecord(call_id=call_id, started_at=answered_at - 1, answered_at=answered_at,
                      ended_at=answered_at + seconds, caller_number=number, channel=channel,
                      queue="support", agent_id="agent2")


Leg = tuple[Decimal | None, str | None, int, str | None]  # cost, currency, billed, unpriced


async def cost_of(rating: Rating, call_id: str) -> Leg:
    cost = await rating.costs.call_cost(call_id)
    assert cost is not None
    [leg] = cost.legs
    return leg.cost, leg.currency, leg.billed_seconds, leg.unpriced


HAND_WORKED = [
    # 10 s to Belo Horizonte on 1/1 at 0.06: 0.01, under the 0.10 minimum
    ("minimum", campaign_call("m", "+5531988887777", "2026-06-01T10:00:00Z", 10),
     (Decimal("0.10"), "BRL", 10, None)),
    # 61 s to São Paulo on 60/60 at 0.10 with a 0.05 connection fee: two minutes, 0.25
    ("connection fee", campaign_call("f", "+5511999990000", "2026-06-01T10:05:00Z", 61),
     (Decimal("0.25"), "BRL", 120, None)),
    # 31 s to Curitiba (Brazil's 55) on 30/6 at 0.12: 36 s, 0.072, half up 0.07
    ("increments", campaign_call("i", "+5541999990000", "2026-06-01T10:10:00Z", 31),
     (Decimal("0.07"), "BRL", 36, None)),
    # answered at 23:59:30 the night São Paulo goes to 0.20: the whole 90 s at 0.10
    ("across midnight", campaign_call("x", "+5511988880000", "2026-12-31T23:59:30Z", 90),
     (Decimal("0.25"), "BRL", 120, None)),
    # the same 90 s answered 30 s after midnight: the new rate, 0.40 + 0.05
    ("after midnight", campaign_call("y", "+5511988880001", "2027-01-01T00:00:30Z", 90),
     (Decimal("0.45"), "BRL", 120, None)),
    # Rio on our trunk: its own rate, 0.03 a minute on 1/1: 100 s is 0.05 (not 0.10)
    ("trunk rate", campaign_call("r", "+5521999990000", "2026-06-01T10:15:00Z", 100),
     (Decimal("0.05"), "BRL", 100, None)),
    # Germany: no rate, unpriced (not free)
    ("unpriced", campaign_call("u", "+4930123456", "2026-06-01T10:20:00Z", 60),
     (None, None, 0, NO_RATE)),
    # a US caller to our toll-free line over the anonymous trunk: 61 s, 2 min at 0.02 USD
    ("inbound", inbound_call("in", "+12125550100", "2026-06-01T11:00:00Z", 61),
     (Decimal("0.04"), "USD", 120, None)),
    # an anonymous caller: no number to price by
    ("no number", inbound_call("anon", "anonymous", "2026-06-01T11:05:00Z", 30),
     (None, None, 0, NO_NUMBER)),
]


@pytest.mark.parametrize(("case", "record", "expected"), HAND_WORKED,
                         ids=[case for case, _, _ in HAND_WORKED])
async def test_each_trunk_leg_is_priced_as_worked_by_hand(
        rating: Rating, case: str, record: CallRecord,
        expected: Leg) -> None:
    await rating.tariffs.import_file("carrier.csv", TARIFF.encode(), "admin")
    await rating.calls.save(record)
    assert await cost_of(rating, record.call_id) == expected


async def test_an_open_call_has_no_price_and_storing_it_again_replaces_its_legs(
        rating: Rating, engine: AsyncEngine) -> None:
    await rating.tariffs.import_file("carrier.csv", TARIFF.encode(), "admin")
    closed = campaign_call("c", "+5511999990000", "2026-06-01T10:05:00Z", 61)
    await rating.calls.save(dataclasses.replace(closed, ended_at=None))
    assert (await rating.costs.call_cost("c")).legs == []  # type: ignore[union-attr]
    await rating.calls.save(closed)
    await rating.calls.save(closed)
    await rating.calls.save(dataclasses.replace(closed, ended_at=closed.ended_at + 60))
    assert await cost_of(rating, "c") == (Decimal("0.35"), "BRL", 180, None)
    assert await count_rows(engine, CallCostRow) == 1
    assert await rating.costs.call_cost("nobody") is None


async def test_calls_stored_together_are_priced_as_one_by_one(
        rating: Rating, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    await rating.tariffs.import_file("carrier.csv", TARIFF.encode(), "admin")
    records = [record for _, record, _ in HAND_WORKED]
    await rating.calls.save(dataclasses.replace(records[0], ended_at=records[0].ended_at + 600))
    await rating.calls.save_many([dataclasses.replace(records[1], ended_at=None), *records])
    for _, record, expected in HAND_WORKED:
        assert await cost_of(rating, record.call_id) == expected
    assert await count_rows(engine, CallCostRow) == len(HAND_WORKED)
    real_price = TariffBook.price

    def broken_for_rio(book: TariffBook, call_pk: int, index: int, leg: TrunkLeg) -> object:
        if "5521" in (leg.number or ""):
            raise ArithmeticError("a bug in pricing")
        return real_price(book, call_pk, index, leg)

    monkeypatch.setattr("callcenter.features.rating.store.TariffBook.price", broken_for_rio)
    await rating.calls.save_many([dataclasses.replace(record, ended_at=None)
                                  for record in records])
    await rating.calls.save_many(records)  # one call unpriced: the others are priced
    assert (await rating.costs.call_cost("r")).legs == []  # type: ignore[union-attr]
    assert await cost_of(rating, "m") == HAND_WORKED[0][2]
    assert await count_rows(engine, CallCostRow) == len(HAND_WORKED) - 1


async def test_a_call_from_an_agents_phone_crossed_no_trunk(rating: Rating) -> None:
    await rating.tariffs.import_file("carrier.csv", TARIFF.encode(), "admin")
    await rating.calls.save(inbound_call("int", "+12125550100", "2026-06-01T11:00:00Z", 61,
                                         channel="PJSIP/agent1-00000004"))
    assert (await rating.costs.call_cost("int")).legs == []  # type: ignore[union-attr]


async def test_calls_before_any_tariff_are_unpriced_until_re_rated(rating: Rating) -> None:
    await rating.calls.save(campaign_call("early", "+5511999990000", "2026-06-01T10:05:00Z", 61))
    assert await cost_of(rating, "early") == (None, None, 0, NO_RATE)
    await rating.tariffs.import_file("carrier.csv", TARIFF.encode(), "admin")
    result = await rating.pricer.rerate(at("2026-06-01T00:00:00Z"), at("2026-06-02T00:00:00Z"),
                                        apply=True)
    assert (result.calls_checked, result.calls_changed) == (1, 1)
    assert [(line.day, line.currency, line.old_legs, line.new_legs, line.difference)
            for line in result.lines] == [("2026-06-01", "BRL", 0, 1, Decimal("0.25")),
                                          ("2026-06-01", None, 1, 0, None)]
    assert await cost_of(rating, "early") == (Decimal("0.25"), "BRL", 120, None)


async def test_re_rating_after_a_corrected_tariff_shows_the_difference_then_none(
        rating: Rating) -> None:
    await rating.tariffs.import_file("carrier.csv", TARIFF.encode(), "admin")
    for record in (campaign_call("a", "+5511999990000", "2026-06-01T10:05:00Z", 61),
                   campaign_call("b", "+5511999990001", "2026-06-02T10:05:00Z", 30),
                   campaign_call("c", "+5531988887777", "2026-06-02T10:05:00Z", 10)):
        await rating.calls.save(record)
    # the carrier's correction: São Paulo was 0.15, not 0.10, from the same date
    corrected = HEADER + "5511,outbound,,0.15,0.05,60/60,0,BRL,2,half_up,2026-01-01,fixed\n"
    await rating.tariffs.import_file("carrier-fix.csv", corrected.encode(), "admin")
    since, until = at("2026-06-01T00:00:00Z"), at("2026-06-03T00:00:00Z")

    dry = await rating.pricer.rerate(since, until, apply=False)
    # a: 2 min, 0.20 + 0.05 -> 0.30 + 0.05; b: 1 min, 0.10 + 0.05 -> 0.15 + 0.05; c unchanged
    assert [(line.day, line.currency, line.old_total, line.new_total, line.difference)
            for line in dry.lines] == [
        ("2026-06-01", "BRL", Decimal("0.25"), Decimal("0.35"), Decimal("0.10")),
        ("2026-06-02", "BRL", Decimal("0.25"), Decimal("0.30"), Decimal("0.05"))]
    assert (dry.calls_checked, dry.calls_changed, dry.applied) == (3, 2, False)
    assert await cost_of(rating, "a") == (Decimal("0.25"), "BRL", 120, None)  # untouched

    applied = await rating.pricer.rerate(since, until, apply=True)
    assert applied.lines == dry.lines and applied.calls_changed == 2
    assert await cost_of(rating, "a") == (Decimal("0.35"), "BRL", 120, None)

    again = await rating.pricer.rerate(since, until, apply=False)
    assert again.calls_changed == 0
    assert all(line.difference == 0 for line in again.lines)


async def test_costs_add_up_per_day_campaign_queue_and_agent_with_unpriced_apart(
        rating: Rating) -> None:
    await rating.tariffs.import_file("carrier.csv", TARIFF.encode(), "admin")
    for record in (
            campaign_call("a", "+5511999990000", "2026-06-01T10:05:00Z", 61),  # 0.25
            campaign_call("b", "+5531988887777", "2026-06-01T23:30:00Z", 10,  # 0.10
                          campaign="winback", agent="agent3"),
            campaign_call("u", "+4930123456", "2026-06-02T01:00:00Z", 60),  # unpriced
            inbound_call("in", "+12125550100", "2026-06-02T11:00:00Z", 61)):  # 0.04 USD
        await rating.calls.save(record)
    since, until = at("2026-06-01T00:00:00Z"), at("2026-06-03T00:00:00Z")

    def shown(totals: list) -> list[tuple]:  # type: ignore[type-arg]
        return [(t.key, t.currency, t.calls, t.legs, t.billed_seconds, t.cost) for t in totals]

    assert shown(await rating.costs.totals(CostGrouping.DAY, since, until)) == [
        ("2026-06-01", "BRL", 2, 2, 130, Decimal("0.35")),
        ("2026-06-02", "USD", 1, 1, 120, Decimal("0.04")),
        ("2026-06-02", None, 1, 1, 0, None)]
    # in São Paulo (UTC-3) b (23:30 UTC) and u (01:00 UTC) fall on the 1st, local time
    assert shown(await rating.costs.totals(CostGrouping.DAY, since, until,
                                           zone=ZoneInfo("America/Sao_Paulo"))) == [
        ("2026-06-01", "BRL", 2, 2, 130, Decimal("0.35")),
        ("2026-06-01", None, 1, 1, 0, None),
        ("2026-06-02", "USD", 1, 1, 120, Decimal("0.04"))]
    assert shown(await rating.costs.totals(CostGrouping.CAMPAIGN, since, until)) == [
        ("renewals", "BRL", 1, 1, 120, Decimal("0.25")),
        ("renewals", None, 1, 1, 0, None),
        ("winback", "BRL", 1, 1, 10, Decimal("0.10")),
        (None, "USD", 1, 1, 120, Decimal("0.04"))]
    # The campaign report's cost: the priced legs only (the unpriced one is not a zero).
    assert await rating.costs.campaign_cost("renewals", since, until) == [
        ("BRL", Decimal("0.25"))]
    assert await rating.costs.campaign_cost("nobody", since, until) == []
    assert shown(await rating.costs.totals(CostGrouping.QUEUE, since, until)) == [
        ("sales", "BRL", 2, 2, 130, Decimal("0.35")),
        ("sales", None, 1, 1, 0, None),
        ("support", "USD", 1, 1, 120, Decimal("0.04"))]
    assert shown(await rating.costs.totals(CostGrouping.AGENT, since, until,
                                           campaign="renewals")) == [
        ("agent1", "BRL", 1, 1, 120, Decimal("0.25")),
        ("agent1", None, 1, 1, 0, None)]
    assert await rating.costs.totals(CostGrouping.DAY, at("2025-01-01T00:00:00Z"),
                                     at("2025-01-02T00:00:00Z")) == []


def test_local_days_start_at_local_midnight_and_are_bounded() -> None:
    days = local_days(at("2026-06-01T00:00:00Z"), at("2026-06-02T12:00:00Z"),
                      ZoneInfo("America/Sao_Paulo"))
    assert [(name, start.isoformat()) for name, start in days] == [
        ("2026-05-31", "2026-06-01T00:00:00+00:00"),
        ("2026-06-01", "2026-06-01T03:00:00+00:00"),
        ("2026-06-02", "2026-06-02T03:00:00+00:00")]
    with pytest.raises(ValueError, match="at most 400"):
        local_days(at("2025-01-01T00:00:00Z"), at("2027-01-01T00:00:00Z"), ZoneInfo("UTC"))


async def test_a_bad_tariff_file_names_every_bad_line_and_stores_nothing(
        rating: Rating, engine: AsyncEngine) -> None:
    bad = HEADER + (
        "55,outbound,,0.12,0,30/6,0,BRL,2,half_up,2026-01-01,fine\n"
        "5511,outbound,,0,12,0,60/60,0,BRL,2,half_up,2026-01-01,comma as decimal point\n"
        "5521,outbound,,abc,0,1/1,0,BRL,2,half_up,2026-01-01,not a number\n"
        "5531,outbound,,0.06,0,1/1,0,XYZ,2,half_up,2026-01-01,unknown currency\n"
        "+55,outbound,,0.13,0,30/6,0,BRL,2,half_up,2026-01-01,the first line again\n"
        "5541,outbound,,0.0000001,0,1/1,0,BRL,2,half_up,2026-01-01,too precise\n")
    with pytest.raises(TariffError) as error:
        await rating.tariffs.import_file("bad.csv", bad.encode(), "admin")
    assert [str(p) for p in error.value.problems] == [
        "line 3: 13 cells, the header has 12",
        "line 4: per_minute 'abc': an amount such as 0.12",
        "line 5: currency 'XYZ': not an ISO 4217 currency code",
        "line 6: the same prefix, direction, trunk and date as line 2",
        "line 7: per_minute 1E-7: at most 6 decimal places"]
    latin1 = HEADER + ("55,outbound,,0.1,0,1/1,0,BRL,2,up,2026-01-01,ok\n"
                       "5511,outbound,,0.1,0,1/1,0,BRL,2,up,2026-01-01,S\xe3o Paulo\n")
    with pytest.raises(TariffError, match=r"line 3: not UTF-8 text"):
        await rating.tariffs.import_file("latin1.csv", latin1.encode("latin-1"), "admin")
    with pytest.raises(TariffError, match="line 1: the file has no rates"):
        await rating.tariffs.import_file("empty.csv", HEADER.encode(), "admin")
    assert await count_rows(engine, TariffRow) == 0
    assert await count_rows(engine, TariffRateRow) == 0


async def test_imported_files_and_their_rates_are_listed(rating: Rating) -> None:
    first = await rating.tariffs.import_file("carrier.csv", TARIFF.encode(), "admin")
    rating.clock.advance(60)
    second = await rating.tariffs.import_file(
        "fix.csv", (HEADER + "44,outbound,,0.3,0,60/60,0,GBP,2,up,2027-01-01,UK\n").encode(),
        "ops")
    files = await rating.tariffs.tariffs()
    assert [(f.id, f.name, f.currencies, f.rate_count, f.imported_by) for f in files] == [
        (second.id, "fix.csv", ("GBP",), 1, "ops"),
        (first.id, "carrier.csv", ("BRL", "USD"), 7, "admin")]
    assert files[1].imported_at == at("2026-12-01T00:00:00Z")
    rates = await rating.tariffs.rates(first.id)
    assert [(r.line, r.rate.prefix, r.rate.trunk, r.rate.per_minute) for r in rates[4:6]] == [
        (6, "5521", None, Decimal("0.06")), (7, "5521", "callcenter-trunk", Decimal("0.03"))]
    assert [r.tariff_id for r in await rating.tariffs.rates()] == [first.id] * 7 + [second.id]


async def test_an_import_by_another_process_is_seen_after_the_refresh(
        rating: Rating, sessions: async_sessionmaker[AsyncSession]) -> None:
    await rating.calls.save(campaign_call("a", "+5511999990000", "2026-06-01T10:05:00Z", 61))
    other_process = TariffStore(sessions, rating.clock)
    await other_process.import_file("carrier.csv", TARIFF.encode(), "cli")
    await rating.calls.save(campaign_call("b", "+5511999990000", "2026-06-01T10:05:00Z", 61))
    assert (await cost_of(rating, "b"))[3] == NO_RATE  # the book is still the one it had
    rating.clock.advance(31)
    await rating.calls.save(campaign_call("c", "+5511999990000", "2026-06-01T10:05:00Z", 61))
    assert await cost_of(rating, "c") == (Decimal("0.25"), "BRL", 120, None)


@pytest.mark.parametrize("zone", ["America/Sao_Paulo", "Asia/Kolkata"])
async def test_totals_equal_a_brute_force_sum_of_every_calls_cost(rating: Rating,
                                                                  zone: str) -> None:
    """Random calls over three days: each grouping's totals are the sum, done here by hand,
    of the per-call costs, in every zone (Kolkata's half hour included)."""
    import random
    from collections import defaultdict

    await rating.tariffs.import_file("carrier.csv", TARIFF.encode(), "admin")
    chance = random.Random(14)
    numbers = ["+5511999990000", "+5531988887777", "+5541999990000", "+5521999990000",
               "+4930123456"]
    records: list[CallRecord] = []
    for i in range(60):
        answered = at("2026-06-01T00:00:00Z") + chance.uniform(0, 3 * 86400)
        iso_answered = datetime.fromtimestamp(answered, ZoneInfo("UTC")).isoformat()
        if chance.random() < 0.2:
            record = inbound_call(f"in{i}", "+12125550100", iso_answered,
                                  chance.uniform(0, 300))
        else:
            record = campaign_call(f"out{i}", chance.choice(numbers), iso_answered,
                                   chance.uniform(0, 900),
                                   campaign=chance.choice(["renewals", "winback"]),
                                   agent=chance.choice(["agent1", "agent2", "agent3"]))
        records.append(record)
        await rating.calls.save(record)
    since, until = at("2026-06-01T12:00:00Z"), at("2026-06-03T12:00:00Z")
    zone_info = ZoneInfo(zone)

    for grouping, key_of in (
            (CostGrouping.DAY, None), (CostGrouping.CAMPAIGN, lambda r: r.campaign),
            (CostGrouping.QUEUE, lambda r: r.queue), (CostGrouping.AGENT, lambda r: r.agent_id)):
        expected: dict[tuple[str | None, str | None], list[object]] = defaultdict(
            lambda: [set(), 0, 0, Decimal(0)])
        for record in records:
            cost = await rating.costs.call_cost(record.call_id)
            assert cost is not None
            for leg in cost.legs:
                if not since <= leg.answered_at < until:
                    continue
                key = (datetime.fromtimestamp(leg.answered_at, zone_info).date().isoformat()
                       if key_of is None else key_of(record))
                entry = expected[(key, leg.currency)]
                entry[0].add(record.call_id)  # type: ignore[attr-defined]
                entry[1] += 1  # type: ignore[operator]
                entry[2] += leg.billed_seconds  # type: ignore[operator]
                if leg.cost is not None:
                    entry[3] += leg.cost  # type: ignore[operator]
        totals = await rating.costs.totals(grouping, since, until, zone=zone_info)
        assert {(t.key, t.currency): (t.calls, t.legs, t.billed_seconds,
                                      t.cost if t.currency else Decimal(0))
                for t in totals} == {
            key: (len(calls), legs, billed, cost)  # type: ignore[arg-type]
            for key, (calls, legs, billed, cost) in expected.items()}, grouping


async def test_a_stored_rate_whose_currency_was_withdrawn_still_prices_its_period(
        rating: Rating, sessions: async_sessionmaker[AsyncSession]) -> None:
    """Croatia's kuna left ISO 4217 in 2023: a file in HRK is refused today, but rates
    stored before must not stop every call from being stored (the pricing reads them)."""
    with pytest.raises(TariffError, match="'HRK': not an ISO 4217"):
        await rating.tariffs.import_file("hr.csv", (
            HEADER + "385,outbound,,0.5,0,60/60,0,HRK,2,up,2022-01-01,Croatia\n").encode(),
            "admin")
    imported = await rating.tariffs.import_file("carrier.csv", TARIFF.encode(), "admin")
    async with sessions.begin() as session:  # as an import from before 2023 left it
        await session.execute(update(TariffRateRow).where(
            TariffRateRow.tariff_id == imported.id, TariffRateRow.prefix == "5531"
        ).values(currency="HRK"))
    await rating.calls.save(campaign_call("m", "+5531988887777", "2026-06-01T10:00:00Z", 10))
    assert await cost_of(rating, "m") == (Decimal("0.10"), "HRK", 10, None)


async def test_a_pricing_failure_never_costs_the_record(
        rating: Rating, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    await rating.tariffs.import_file("carrier.csv", TARIFF.encode(), "admin")

    def broken(*args: object) -> object:
        raise ArithmeticError("a bug in pricing")

    monkeypatch.setattr("callcenter.features.rating.store.TariffBook.price", broken)
    record = campaign_call("a", "+5511999990000", "2026-06-01T10:05:00Z", 61)
    await rating.calls.save(record)
    assert await rating.calls.get("a") == record
    assert (await rating.costs.call_cost("a")).legs == []  # type: ignore[union-attr]
    assert "call a: its trunk legs could not be priced" in caplog.text
    monkeypatch.undo()
    result = await rating.pricer.rerate(at("2026-06-01T00:00:00Z"), at("2026-06-02T00:00:00Z"),
                                        apply=True)
    assert result.calls_changed == 1
    assert await cost_of(rating, "a") == (Decimal("0.25"), "BRL", 120, None)
