"""Rating a trunk leg (core/rating.py): hand-worked examples of increments, minimums,
rounding, prefixes and a tariff change at midnight; properties of the billed seconds; the
tariff file with every bad line named."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.core.rating import (
    Increments,
    Rate,
    Rounding,
    Tariff,
    TariffError,
    parse_tariff,
)
from callcenter.core.records import Direction

OUT = Direction.OUTBOUND
SINCE = datetime(2026, 1, 1, tzinfo=UTC)


def rate(per_minute: str, increments: str = "60/60", **fields: object) -> Rate:
    values: dict[str, object] = {"prefix": "55", "direction": OUT, "currency": "BRL",
                                 "effective_from": SINCE, **fields}
    return Rate(per_minute=Decimal(per_minute), increments=Increments.parse(increments),
                **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("increments", "seconds", "billed"), [
    ("30/6", 1, 30), ("30/6", 30, 30), ("30/6", 31, 36), ("30/6", 36, 36), ("30/6", 61, 66),
    ("60/60", 1, 60), ("60/60", 61, 120), ("1/1", 59, 59), ("1/1", 59.2, 60),
    ("30/6", 0, 0), ("60/60", 0, 0),
])
def test_increments_bill_the_first_block_then_whole_blocks(increments: str, seconds: float,
                                                           billed: int):
    assert Increments.parse(increments).billed(seconds) == billed


@pytest.mark.parametrize(("the_rate", "seconds", "cost"), [
    # 30/6 at 0.12 a minute: 31 s bills 36 s = 0.072, rounded half up to 0.07
    (rate("0.12", "30/6"), 31, "0.07"),
    (rate("0.12", "30/6"), 61, "0.13"),  # 66 s = 0.132
    (rate("0.12", "30/6"), 1, "0.06"),  # the first block whatever the length
    # 60/60 at 0.10 plus a 0.05 connection fee: 61 s bills two minutes = 0.25
    (rate("0.10", connection_fee=Decimal("0.05")), 61, "0.25"),
    # 1/1 at 0.06: 10 s is 0.01, under the 0.10 minimum
    (rate("0.06", "1/1", minimum=Decimal("0.10")), 10, "0.10"),
    # Never answered: nothing, not even the connection fee or the minimum
    (rate("0.10", connection_fee=Decimal("0.05"), minimum=Decimal("0.10")), 0, "0.00"),
    # 4 decimal places: 31 s on 30/6 at 0.12 is 0.0720
    (rate("0.12", "30/6", decimals=4), 31, "0.0720"),
])
def test_hand_worked_prices(the_rate: Rate, seconds: float, cost: str):
    assert the_rate.cost(seconds) == Decimal(cost)
    assert str(the_rate.cost(seconds)) == cost  # to the rate's decimal places


@pytest.mark.parametrize(("rounding", "cost"), [
    (Rounding.HALF_UP, "0.13"), (Rounding.HALF_EVEN, "0.12"), (Rounding.UP, "0.13"),
    (Rounding.DOWN, "0.12"),
])
def test_the_rate_s_rounding_mode_decides_the_last_cent(rounding: Rounding, cost: str):
    # 75 s on 1/1 at 0.10 a minute = 0.125 exactly
    assert rate("0.10", "1/1", rounding=rounding).cost(75) == Decimal(cost)


def test_the_longest_prefix_the_trunk_and_the_direction_choose_the_rate():
    brazil, sao_paulo = rate("0.30"), rate("0.10", prefix="5511")
    on_trunk = rate("0.08", prefix="5511", trunk="carrier-b")
    inbound = rate("0.01", direction=Direction.INBOUND)
    tariff = Tariff([brazil, sao_paulo, on_trunk, inbound])
    at = SINCE + timedelta(days=3)
    assert tariff.rate_for("+5511987654321", OUT, at) is sao_paulo
    assert tariff.rate_for("+5521987654321", OUT, at) is brazil
    assert tariff.rate_for("+5511987654321", OUT, at, trunk="carrier-b") is on_trunk
    assert tariff.rate_for("+5511987654321", OUT, at, trunk="carrier-c") is sao_paulo
    assert tariff.rate_for("+5521987654321", Direction.INBOUND, at) is inbound
    assert tariff.rate_for("+12025550100", OUT, at) is None
    assert tariff.rate_for("+5511987654321", OUT, SINCE - timedelta(seconds=1)) is None
    unpriced = tariff.price("+12025550100", OUT, at, 60)
    assert (unpriced.rate, unpriced.cost) == (None, None)  # reported unpriced, not free


def test_a_call_across_midnight_when_a_new_tariff_starts_is_priced_at_the_old_one():
    new_year = datetime(2027, 1, 1, tzinfo=UTC)
    old, new = rate("0.12", "30/6"), rate("0.20", "30/6", effective_from=new_year)
    tariff = Tariff([new, old])
    # Answered at 23:59:30, 120 s long: it ends in the new year, and costs the old price.
    before = tariff.price("+5511987654321", OUT, new_year - timedelta(seconds=30), 120)
    assert (before.rate, before.billed_seconds, before.cost) == (old, 120, Decimal("0.24"))
    after = tariff.price("+5511987654321", OUT, new_year, 120)
    assert (after.rate, after.cost) == (new, Decimal("0.40"))


@given(first=st.integers(1, 120), then=st.integers(1, 120),
       seconds=st.floats(0, 20_000, allow_nan=False), more=st.floats(0, 500))
def test_billed_seconds_cover_the_leg_by_at_most_one_block(first: int, then: int,
                                                          seconds: float, more: float):
    increments = Increments(first, then)
    billed = increments.billed(seconds)
    if seconds < 0.001:  # under a millisecond: not a leg anyone talked on
        assert billed == 0
        return
    assert billed >= seconds
    assert billed < max(seconds, first) + then
    assert billed == first or (billed - first) % then == 0
    assert increments.billed(seconds + more) >= billed  # longer never costs less
    the_rate = Rate("55", OUT, Decimal("0.1234"), "BRL", SINCE, increments=increments)
    assert the_rate.cost(seconds + more) >= the_rate.cost(seconds)


HEADER = ("prefix,direction,trunk,per_minute,connection_fee,increments,minimum,currency,"
          "decimals,rounding,effective_from,description")
TARIFF = HEADER + """
55,outbound,,0.30,0,30/6,0,BRL,2,half_up,2026-01-01,Brazil
+5511,outbound,carrier-b,0.08,0.02,1/1,0.05,BRL,4,up,2026-06-01T00:00:00-03:00,São Paulo
1,inbound,,0,0,60/60,0,USD,2,half_even,2026-01-01,
"""


def test_a_tariff_file_becomes_its_rates():
    brazil, sao_paulo, toll_free = parse_tariff(TARIFF.splitlines())
    assert (brazil.prefix, brazil.per_minute, str(brazil.increments), brazil.effective_from) \
        == ("55", Decimal("0.30"), "30/6", SINCE)
    assert (sao_paulo.prefix, sao_paulo.trunk, sao_paulo.minimum, sao_paulo.decimals,
            sao_paulo.rounding) == ("5511", "carrier-b", Decimal("0.05"), 4, Rounding.UP)
    assert sao_paulo.effective_from == datetime(2026, 6, 1, 3, tzinfo=UTC)
    assert toll_free.direction is Direction.INBOUND and toll_free.description == ""


def test_every_bad_line_is_named_and_nothing_is_taken():
    text = TARIFF + "\n".join([
        "55x,outbound,,0.30,0,30/6,0,BRL,2,half_up,2026-01-01,",
        "56,sideways,,0.30,0,30/6,0,BRL,2,half_up,2026-01-01,",
        "57,outbound,,-1,0,30/6,0,BRL,2,half_up,2026-01-01,",
        "58,outbound,,0.30,0,30-6,0,BRL,2,half_up,2026-01-01,",
        "59,outbound,,0.30,0,30/6,0,brl,2,half_up,2026-01-01,",
        "60,outbound,,0.30,0,30/6,0,BRL,2,half_up,2026-13-01,",
        "61,outbound,,0.30,0,30/6,0,BRL,2,sideways,2026-01-01,",
        "62,outbound,,0.30,0,30/6,0,BRL,2,half_up,2026-01-01T00:00:00,",
        "55,outbound,,0.31,0,30/6,0,BRL,2,half_up,2026-01-01,again",
        "63,outbound,,0.30",
        "6x4,sideways,,abc,0,30/6,0,Real,9,half_up,2026-01-01,all at once",
    ])
    with pytest.raises(TariffError) as caught:
        parse_tariff(text.splitlines())
    said = [str(p) for p in caught.value.problems]
    assert said == [
        "line 5: prefix '55x': 1 to 15 digits (E.164 without +)",
        "line 6: direction 'sideways': one of inbound, outbound",
        "line 7: per_minute '-1': an amount, 0 or more",
        "line 8: '30-6' is not increments such as 30/6, 60/60 or 1/1",
        "line 9: currency 'brl': three capital letters (ISO 4217)",
        "line 10: effective_from '2026-13-01': a date (2027-01-01) or a time with its offset "
        "(2027-01-01T00:00:00-03:00)",
        "line 11: rounding 'sideways': one of half_up, half_even, up, down",
        "line 12: effective_from '2026-01-01T00:00:00': give the offset (Z, -03:00, ...)",
        "line 13: the same prefix, direction, trunk and date as line 2",
        "line 14: 4 cells, the header has 12",
        # Every bad cell of a line at once: one pass over the file shows all to fix.
        "line 15: prefix '6x4': 1 to 15 digits (E.164 without +); direction 'sideways': one "
        "of inbound, outbound; currency 'Real': three capital letters (ISO 4217); decimals "
        "'9': a whole number 0 to 6; per_minute 'abc': an amount such as 0.12",
    ]


@pytest.mark.parametrize(("header", "says"), [
    ("prefix,direction,per_minute,currency", "missing column(s) effective_from"),
    ("prefix,direction,per_minute,currency,effective_from,colour", "unknown column(s) 'colour'"),
    ("prefix,prefix,direction,per_minute,currency,effective_from", "a column is named twice"),
])
def test_a_header_that_is_not_a_tariff_s_is_refused_on_line_1(header: str, says: str):
    with pytest.raises(TariffError, match=re.escape(f"line 1: {says}")):
        parse_tariff([header])
    with pytest.raises(TariffError, match="line 1: the file is empty"):
        parse_tariff([])
