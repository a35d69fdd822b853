"""Which legs of a call crossed a trunk, and for how long: hand-worked records."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.core.rating import (
    Rate,
    TariffError,
    amount_text,
    in_effect,
    is_currency,
    parse_tariff,
)
from callcenter.core.records import CallRecord, Direction, OutsideLeg
from callcenter.core.trunk_legs import LegKind, TrunkLeg, channel_endpoint, trunk_legs

T0 = 1_780_000_000.0
TRUNKS = frozenset({"callcenter-trunk", "anonymous"})


def legs(record: CallRecord) -> list[TrunkLeg]:
    return trunk_legs(record, trunks=TRUNKS, outbound_trunk="callcenter-trunk")


def inbound(**fields: object) -> CallRecord:
    values: dict[str, object] = {
        "call_id": "c1", "started_at": T0, "channel": "PJSIP/anonymous-0000002a",
        "caller_number": "+12125550100", "answered_at": T0 + 2.5, "ended_at": T0 + 65.0}
    return CallRecord(**{**values, **fields})  # type: ignore[arg-type]


def test_an_inbound_callers_leg_runs_from_our_answer_to_the_hangup_on_its_trunk() -> None:
    [leg] = legs(inbound())
    assert leg == TrunkLeg(LegKind.CALLER, Direction.INBOUND, "+12125550100", "anonymous",
                           T0 + 2.5, T0 + 65.0)
    assert leg.billable_seconds == 62.5


def test_a_caller_on_an_agents_phone_or_a_local_channel_crossed_no_trunk() -> None:
    assert legs(inbound(channel="PJSIP/agent1-00000003")) == []
    assert legs(inbound(channel="Local/100@callcenter-inbound-00000001;2")) == []


def test_a_record_without_a_channel_came_over_some_trunk() -> None:
    [leg] = legs(inbound(channel=None))
    assert leg.trunk is None and leg.direction is Direction.INBOUND


def test_an_open_or_never_answered_call_has_no_leg_yet() -> None:
    assert legs(inbound(ended_at=None)) == []
    assert legs(inbound(answered_at=None)) == []


def test_a_campaign_call_is_the_customers_leg_on_the_outbound_trunk() -> None:
    record = inbound(direction=Direction.OUTBOUND, campaign="renewals",
                     channel="PJSIP/callcenter-trunk-00000010", caller_number="+5511999990000",
                     answered_at=T0 + 12.0, ended_at=T0 + 100.0)
    [leg] = legs(record)
    assert leg == TrunkLeg(LegKind.CUSTOMER, Direction.OUTBOUND, "+5511999990000",
                           "callcenter-trunk", T0 + 12.0, T0 + 100.0)
    assert leg.billable_seconds == 88.0


def test_a_callbacks_call_is_an_outbound_leg_to_the_customer() -> None:
    record = inbound(callback_of="c0", channel="Local/+5511988887777@callcenter-outbound-1;2",
                     caller_number="+5511988887777")
    [leg] = legs(record)
    assert (leg.kind, leg.direction, leg.trunk) == (LegKind.CUSTOMER, Direction.OUTBOUND,
                                                    "callcenter-trunk")


def test_channel_names_give_their_endpoint() -> None:
    assert channel_endpoint("PJSIP/callcenter-trunk-0000002a") == "callcenter-trunk"
    assert channel_endpoint("PJSIP/anonymous-00000001") == "anonymous"
    assert channel_endpoint("Local/100@x-00000001;1") is None
    assert channel_endpoint("garbage") is None
    assert channel_endpoint(None) is None


def test_a_later_file_corrects_a_rate_of_the_same_date_and_keeps_the_others() -> None:
    header = "prefix,direction,per_minute,currency,effective_from\n"
    first = parse_tariff((header + "55,outbound,0.10,BRL,2026-01-01\n"
                          "44,outbound,0.30,GBP,2026-01-01\n").splitlines(keepends=True))
    second = parse_tariff((header + "55,outbound,0.15,BRL,2026-01-01\n"
                           "55,outbound,0.20,BRL,2027-01-01\n").splitlines(keepends=True))
    rates = {(r.prefix, r.effective_from.year): r.per_minute for r in in_effect([first, second])}
    assert rates == {("55", 2026): Decimal("0.15"), ("44", 2026): Decimal("0.30"),
                     ("55", 2027): Decimal("0.20")}


def test_currencies_are_checked_against_iso_4217() -> None:
    assert is_currency("BRL") and is_currency("EUR") and not is_currency("XYZ")
    with pytest.raises(TariffError) as error:
        parse_tariff(["prefix,direction,per_minute,currency,effective_from\n",
                      "55,outbound,0.10,XYZ,2026-01-01\n",
                      "56,outbound,0.1234567,BRL,2026-01-01\n",
                      "57,outbound,1000000000000,BRL,2026-01-01\n"])
    assert [str(p) for p in error.value.problems] == [
        "line 2: currency 'XYZ': not an ISO 4217 currency code",
        "line 3: per_minute 0.1234567: at most 6 decimal places",
        "line 4: per_minute 1000000000000: at most 12 digits before the point"]


def test_six_decimal_places_are_kept() -> None:
    [rate] = parse_tariff(["prefix,direction,per_minute,currency,effective_from\n",
                           "55,outbound,0.123456,BRL,2026-01-01\n"])
    assert isinstance(rate, Rate) and rate.per_minute == Decimal("0.123456")


@pytest.mark.parametrize(("value", "text"), [
    ("0.250000", "0.25"), ("0.072000", "0.072"), ("1", "1.00"), ("1.000000", "1.00"),
    ("-0.100000", "-0.10"), ("1E+2", "100.00"), ("0.123456", "0.123456"), ("0", "0.00")])
def test_amounts_are_shown_without_the_stores_trailing_zeros(value: str, text: str) -> None:
    assert amount_text(Decimal(value)) == text


@given(direction=st.sampled_from(list(Direction)), callback=st.booleans(),
       channel=st.sampled_from([None, "PJSIP/anonymous-00000001", "PJSIP/agent1-00000002",
                                "PJSIP/callcenter-trunk-0000000a", "Local/1@x-00000001;2"]),
       answered=st.one_of(st.none(), st.floats(0, 3600)),
       length=st.one_of(st.none(), st.floats(-5, 7200)))
def test_a_closed_answered_call_has_at_most_one_leg_inside_it(
        direction: Direction, callback: bool, channel: str | None, answered: float | None,
        length: float | None) -> None:
    ended = None if answered is None or length is None else T0 + answered + length
    record = inbound(direction=direction, callback_of="c0" if callback else None,
                     channel=channel, answered_at=None if answered is None else T0 + answered,
                     ended_at=ended)
    found = legs(record)
    assert len(found) <= 1
    if record.answered_at is None or record.ended_at is None:
        assert found == []
    for leg in found:
        assert leg.answered_at == record.answered_at
        assert leg.billable_seconds == max(0.0, record.ended_at - record.answered_at)
        outward = direction is Direction.OUTBOUND or callback
        assert leg.direction is (Direction.OUTBOUND if outward else Direction.INBOUND)
        assert outward or channel is None or channel_endpoint(channel) in TRUNKS


def test_an_ivr_transfer_out_is_an_outbound_leg_from_the_far_ends_answer() -> None:
    record = inbound(outside_legs=[
        OutsideLeg("+5511999990000", "BUSY", T0 + 10.0),
        OutsideLeg("+5511999990000", "ANSWER", T0 + 60.0, answered_at=T0 + 17.5)])
    caller, transfer = legs(record)
    assert caller.kind is LegKind.CALLER
    assert transfer == TrunkLeg(LegKind.TRANSFER_OUT, Direction.OUTBOUND, "+5511999990000",
                                "callcenter-trunk", T0 + 17.5, T0 + 60.0)
    assert transfer.billable_seconds == 42.5
    # From an agent's phone the caller's leg crossed no trunk; the transfer out did.
    [only] = legs(dataclasses.replace(record, channel="PJSIP/agent1-00000003"))
    assert only.kind is LegKind.TRANSFER_OUT
