"""A real call is priced when it ends: SIPp caller → Asterisk 22 → IVR → SIPp agent; the
caller's leg, from Asterisk's answer to its hangup, priced per second by the tariff for the
caller's number on the trunk it came in on, against what the caller's phone measured."""

from __future__ import annotations

import asyncio
import math
from decimal import Decimal

import pytest

from tests.support.asterisk import phone_agent
from tests.support.calls import (
    MENU_DIGIT_MS,
    agent_phone,
    call_center,
    caller,
    finished,
    the_only_closed_call,
)
from tests.support.sipp import AgentPlan, CallerPlan, free_port

pytestmark = pytest.mark.asterisk

# 0.60 a minute is 0.01 a second, per second (1/1), four places: the cost is the seconds.
TARIFF = ("prefix,direction,trunk,per_minute,increments,currency,decimals,effective_from\n"
          "555,inbound,anonymous,0.60,1/1,USD,4,2026-01-01\n"
          "555,inbound,,9.99,1/1,USD,4,2026-01-01\n")  # every other trunk: must not apply


async def test_a_real_callers_leg_is_priced_from_answer_to_hangup(tmp_path):
    port = free_port()
    agents = [phone_agent("agent2", port, queues=["support"])]
    async with call_center(tmp_path, agents) as center:
        await center.rating.tariffs.import_file("test.csv", TARIFF.encode(), "test")
        phone = agent_phone("agent2", port, AgentPlan(answer_after_ms=500))
        hangup_ms = MENU_DIGIT_MS + 4000
        call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),),
                                         hangup_after_ms=hangup_ms))
        caller_result, _ = await asyncio.gather(finished(call), finished(phone))
        record = await the_only_closed_call(center)
        cost = await center.rating.costs.call_cost(record.call_id)

    assert cost is not None, record
    [leg] = cost.legs
    assert (leg.kind, leg.direction.value, leg.trunk, leg.number) == (
        "caller", "inbound", "anonymous", "5551234"), leg
    assert record.answered_at is not None and record.ended_at is not None
    assert leg.billable_seconds == pytest.approx(record.ended_at - record.answered_at)
    heard = {event.name: event.at_ms for event in caller_result.events}
    measured = (heard["local-bye"] - heard["answered"]) / 1000
    assert abs(leg.billable_seconds - measured) < 1.0, (leg, caller_result.describe())
    billed = math.ceil(leg.billable_seconds)
    assert (leg.billed_seconds, leg.cost, leg.currency, leg.prefix) == (
        billed, Decimal(billed) / 100, "USD", "555"), leg
