"""The flow language on real calls: collect with a check digit, say, conditions, hours and
the admin switch (real Asterisk 22, SIPp sending RFC 2833 digits, the service in-process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.config import REPO_ROOT
from callcenter.core.hours import Override
from callcenter.core.records import CallRecord, Disposition
from callcenter.features.ivr.switches import FlowSwitches
from tests.support.asterisk import phone_agent
from tests.support.calls import (
    DEMO_HOURS_OPEN,
    agent_phone,
    call_center,
    caller,
    finished,
    the_only_closed_call,
)
from tests.support.sipp import AgentPlan, CallerPlan, free_port

pytestmark = pytest.mark.asterisk

CARD_FLOW = """
name: main
start: hours
nodes:
  hours:
    type: time
    hours: {timezone: UTC, weekly: {mon-sun: ["00:00-24:00"]}}
    open: {node: ask}
    closed: {hangup: true, prompt: goodbye}
  ask:
    type: collect
    prompt: no-input
    variable: card
    min_digits: 13
    max_digits: 19
    timeout: 3
    retries: 2
    check: luhn
    invalid_prompt: invalid
    next: {node: read_back}
    on_exhausted: {queue: operator}
  read_back:
    type: say
    kind: digits
    value: card
    next: {node: route}
  route:
    type: condition
    if: "card == 'CARD'"
    then: {queue: support}
    else: {queue: sales}
""".replace("CARD", "4539148803436467")  # Luhn-valid, ended by '#' when keyed


def flows_with(tmp_path: Path, text: str) -> dict[str, str]:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "main.yaml").write_text(text)
    return {"dialplans_dir": str(folder)}


def keyed(digits: str, first_ms: int = 1000, gap_ms: int = 300) -> tuple[tuple[int, str], ...]:
    return tuple((first_ms if i == 0 else gap_ms, d) for i, d in enumerate(digits))


def inputs(record: CallRecord) -> list[tuple[str, str | None]]:
    return [(step.node, step.input) for step in record.ivr_path]


async def test_a_valid_card_number_is_read_back_and_the_condition_routes_the_call(tmp_path):
    port = free_port()
    agents = [phone_agent("agent2", port, queues=["support"])]
    async with call_center(tmp_path, agents, service_ivr=flows_with(tmp_path, CARD_FLOW)) as center:
        phone = agent_phone("agent2", port, AgentPlan(answer_after_ms=300, hangup_after_ms=1000))
        await finished(caller(center, CallerPlan(dtmf=keyed("4539148803436467#"))))
        record = await the_only_closed_call(center)
        assert record.agent_id == "agent2", inputs(record)
        await finished(phone)

    assert record.disposition is Disposition.ANSWERED
    assert record.queue == "support"
    steps = inputs(record)
    assert steps[0][0] == "hours" and steps[0][1].startswith("open")
    assert steps[1:] == [("ask", "16 digits"), ("read_back", None), ("route", "true")]


async def test_a_card_number_failing_its_check_digit_is_refused_and_asked_again(tmp_path):
    port = free_port()
    agents = [phone_agent("agent1", port, queues=["operator"])]
    async with call_center(tmp_path, agents, service_ivr=flows_with(tmp_path, CARD_FLOW)) as center:
        phone = agent_phone("agent1", port, AgentPlan(answer_after_ms=300, hangup_after_ms=1000))
        # The last digit is wrong: the Luhn check fails; asked again, the caller keys
        # nothing: the operator.
        await finished(caller(center, CallerPlan(dtmf=keyed("4539148803436468#"))))
        record = await the_only_closed_call(center)
        await finished(phone)

    assert inputs(record)[1:] == [("ask", "invalid: luhn check failed"), ("ask", "timeout")]
    assert record.queue == "operator" and record.agent_id == "agent1"


async def test_an_admin_switch_closes_the_flow_for_the_next_caller_at_once(tmp_path):
    agents = [phone_agent("agent2", free_port(), queues=["support"])]
    async with call_center(tmp_path, agents, service_ivr=flows_with(tmp_path, CARD_FLOW)) as center:
        FlowSwitches(center.settings.data_path).set("main", Override.FORCE_CLOSED)
        await finished(caller(center, CallerPlan(max_call_ms=30_000)))
        record = await the_only_closed_call(center)

    assert record.disposition is Disposition.COMPLETED_IN_IVR
    assert record.queue is None
    [(node, decision)] = inputs(record)
    assert node == "hours" and decision.startswith("closed")
    assert "forced closed by an admin" in decision


async def test_a_key_pressed_during_the_greeting_chooses_in_the_menu_that_follows(tmp_path):
    port = free_port()
    agents = [phone_agent("agent2", port, queues=["support"])]
    async with call_center(tmp_path, agents) as center:  # the demo flow
        phone = agent_phone("agent2", port, AgentPlan(answer_after_ms=300, hangup_after_ms=1000))
        await finished(caller(center, CallerPlan(dtmf=((1200, "2"),))))  # during the welcome
        record = await the_only_closed_call(center)
        await finished(phone)

    assert inputs(record) == [DEMO_HOURS_OPEN, ("welcome", None), ("main_menu", "2")]
    assert record.queue == "support" and record.agent_id == "agent2"
    # The menu's own prompt (about 10 s) was skipped: the caller was queued within seconds.
    assert record.queued_at - record.answered_at < 4


async def test_sac_flow_tells_the_protocol_and_the_attendant_key_works_during_it(tmp_path):
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "sac.yaml").write_text((REPO_ROOT / "dialplans" / "examples" / "sac.yaml")
                                     .read_text())
    port = free_port()
    agents = [phone_agent("agent1", port, queues=["operator"])]
    service_ivr = {"dialplans_dir": str(folder), "flow": "sac"}
    async with call_center(tmp_path, agents, service_ivr=service_ivr) as center:
        phone = agent_phone("agent1", port, AgentPlan(answer_after_ms=300, hangup_after_ms=1000))
        # The welcome and "your protocol number is" last about 4.5 s; then the 20 digits.
        await finished(caller(center, CallerPlan(dtmf=((6000, "0"),))))
        record = await the_only_closed_call(center)
        await finished(phone)

    assert inputs(record) == [("welcome", None), ("protocol_intro", None),
                              ("protocol", "attendant")]
    assert record.queue == "operator" and record.agent_id == "agent1"
    assert record.protocol is not None and len(record.protocol) == 20


DIP_FLOW = """
name: main
start: ask
nodes:
  ask:
    type: collect
    prompt: no-input
    variable: order
    min_digits: 4
    max_digits: 7
    timeout: 3
    retries: 1
    check: luhn
    next: {node: lookup}
    on_exhausted: {hangup: true}
  lookup:
    type: fetch
    url: "http://127.0.0.1:PORT/demo/orders"
    params: {order: "order"}
    timeout: 1
    retries: 0
    result: {order_status: "status", days: "delivery.days"}
    next: {node: tell}
    on_failure: {queue: support}
  tell:
    type: say
    kind: number
    value: days
    next: {node: route}
  route:
    type: condition
    if: "order_status == 'shipped'"
    then: {queue: sales}
    else: {queue: operator}
"""


@pytest.mark.parametrize("service", ["up", "down"])
async def test_a_data_dip_answers_from_the_order_service_or_falls_back_to_a_person(
        tmp_path, service):
    port = free_port()
    queue = "sales" if service == "up" else "support"
    agents = [phone_agent("agent2", port, queues=[queue])]
    http_port = free_port()
    dip_port = http_port if service == "up" else free_port()  # "down": nothing listens
    ivr = flows_with(tmp_path, DIP_FLOW.replace("PORT", str(dip_port)))
    env = {"CALLCENTER_SERVICE__HTTP_PORT": str(http_port)}
    async with call_center(tmp_path, agents, service_ivr=ivr, env=env) as center:
        phone = agent_phone("agent2", port, AgentPlan(answer_after_ms=300, hangup_after_ms=1000))
        # A whole order number: seven keys, the entry ends at max_digits.
        await finished(caller(center, CallerPlan(dtmf=keyed("1245687"))))
        record = await the_only_closed_call(center)
        assert record.agent_id == "agent2", inputs(record)
        await finished(phone)

    steps = inputs(record)
    if service == "up":
        assert steps == [("ask", "7 digits"), ("lookup", "ok"), ("tell", None), ("route", "true")]
    else:
        assert steps[:1] == [("ask", "7 digits")]
        assert steps[1][0] == "lookup" and steps[1][1].startswith("failed: ")
    assert record.queue == queue
