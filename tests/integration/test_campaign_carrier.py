"""A predictive campaign against a carrier that acts out 60 customers, on a real Asterisk 22.

The test carrier (tests/support/carrier.py) answers as people, answering machines, numbers
that ring out, busy and failing numbers, and people who answer and hang up at once; three
agents sit nailed up. The campaign detects machines and hangs up on them. When every number
has been called once, the stored outcome of each call must be what the carrier lived, call
for call: people reached an agent (or, abandoned, heard the whole safe-harbor message),
machines were hung up on, the rest ended as busy, no answer, failed or dropped; every number
ends final or with a retry time; the records and the campaign's figures agree with it all.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import pytest

from callcenter.core.campaigns import CampaignMode
from callcenter.core.dial_rules import Outcome
from callcenter.core.records import Direction
from tests.integration.test_campaign_dialer import (
    attempts_settle,
    dialing_center,
    nailed_up,
    running_campaign,
)
from tests.support.asterisk import phone_agent
from tests.support.calls import prompt_seconds
from tests.support.carrier import Behaviour, Carrier, CarrierPlan
from tests.support.sipp import free_port

pytestmark = pytest.mark.asterisk

AGENTS = ("agent1", "agent2", "agent3")
MIX = {Behaviour.HUMAN: 20, Behaviour.MACHINE: 10, Behaviour.NO_ANSWER: 10,
       Behaviour.BUSY: 10, Behaviour.ANSWER_THEN_HANG_UP: 5, Behaviour.FAILED: 5}
EXPECTED = {Behaviour.MACHINE: Outcome.MACHINE, Behaviour.NO_ANSWER: Outcome.NO_ANSWER,
            Behaviour.BUSY: Outcome.BUSY, Behaviour.ANSWER_THEN_HANG_UP: Outcome.DROPPED,
            Behaviour.FAILED: Outcome.FAILED}
TALK_MS = 4000  # a person talks this long with the agent, then hangs up


async def test_every_customer_ends_as_the_carrier_lived_it(tmp_path):
    plan = CarrierPlan.mix(MIX, first="+12025550101", human_hangup_after_ms=TALK_MS)
    carrier_port = free_port()
    agents = [phone_agent(a, free_port(), queues=["sales"], password=f"{a}-secret",
                          logged_in=False) for a in AGENTS]
    async with dialing_center(tmp_path, carrier_port, agents) as center:
        with Carrier(plan, port=carrier_port) as carrier:
            phones = [await nailed_up(center, agent, stay_ms=400_000) for agent in AGENTS]
            await running_campaign(center, list(plan.numbers), mode=CampaignMode.PREDICTIVE,
                                   amd=True, max_attempts=3)
            attempts = await attempts_settle(center, len(plan.numbers), timeout=300)
            calls = await carrier.wait_for_calls(len(plan.numbers), timeout=60)
            await center.writer.flush(10)
            records = [r for r in (await center.calls.list(limit=200))[0]
                       if r.direction is Direction.OUTBOUND]
            read_at = center.clock.now()
            figures = await center.dialer.figures("renewals")
            for phone in phones:
                phone.stop()

    lived = {call.number: call for call in calls}
    assert sorted(lived) == sorted(plan.numbers), "the carrier got every number once"
    stored = {a["number"]: a for a in attempts}
    assert sorted(stored) == sorted(plan.numbers) and len(attempts) == len(plan.numbers), \
        "one attempt per number, no number dialled twice"
    safe_harbor_ms = (2 + prompt_seconds("safe-harbor")) * 1000
    wrong = []
    for number, attempt in stored.items():
        behaviour, call = plan.behaviour(number), lived[number]
        outcome = Outcome(attempt["outcome"])
        if behaviour is Behaviour.HUMAN:
            talked = (outcome is Outcome.HUMAN and attempt["agent_id"] in AGENTS
                      and call.ended_by == "carrier")  # they hung up after talking
            abandoned = (outcome is Outcome.DROPPED and attempt["abandoned"]
                         and (call.talk_ms or 0) >= safe_harbor_ms - 500)
            if not (talked or abandoned):
                wrong.append((number, behaviour, attempt, call))
        elif outcome is not EXPECTED[behaviour] or attempt["abandoned"]:
            wrong.append((number, behaviour, attempt, call))
    assert not wrong, "\n".join(map(str, wrong))
    # Machines were hung up on by us, after AMD heard them; they never reached an agent.
    for number in plan.of(Behaviour.MACHINE):
        assert lived[number].ended_by == "caller" and stored[number]["amd_status"] == "MACHINE"
    # Every number is final or has a retry time: none is left open or forgotten.
    assert all(a["ended_at"] is not None for a in attempts)

    talked = {a["id"]: a for a in attempts if a["outcome"] == "human"}
    assert len(talked) >= len(plan.of(Behaviour.HUMAN)) - 2, "people reached the agents"
    by_attempt = {r.campaign_attempt_id: r for r in records}
    for attempt_id, attempt in talked.items():
        record = by_attempt[attempt_id]
        assert (record.agent_id, record.caller_number, record.campaign) == (
            attempt["agent_id"], attempt["number"], "renewals")
        # The agent talked to them for part of what the carrier's person lived after answering
        # (AMD listened first, for a time that grows with the machine's load).
        lived_talk = lived[attempt["number"]].talk_ms
        assert lived_talk is not None and record.talk_seconds is not None, record
        assert 0.5 < record.talk_seconds <= lived_talk / 1000 + 0.5, (record, lived_talk)

    # "Today" is the UTC day the figures were read in: a run across midnight splits them.
    day_start = read_at - read_at % 86_400
    placed_today = [a for a in attempts
                    if _posix(a["placed_at"]) >= day_start]
    counts: Counter[str] = Counter(a["outcome"] for a in placed_today)
    today: dict[str, Any] = figures["today"]
    assert {k: today[k] for k in counts} == dict(counts)
    assert today["placed"] == len(placed_today)
    assert today["abandoned"] == sum(a["abandoned"] for a in placed_today)
    assert figures["list"]["penetration_percent"] == 100.0


def _posix(value: float | datetime | str) -> float:
    """An attempt's time as POSIX seconds, however the store hands it out."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.timestamp() if isinstance(value, datetime) else float(value)
