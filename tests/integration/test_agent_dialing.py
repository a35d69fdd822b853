"""Agents' phones that dial, on a real Asterisk 22: the agent's endpoint challenges every
INVITE (digest auth, user = agent id, the agent's password from the settings), and only a
phone that answers the challenge with the right password gets through.

The phone is a real SIPp caller with the agent's credentials (``agent_dials``); it dials the
IVR number, which the ``agents`` context sends to the IVR, and presses keys there, heard by
the service's collect nodes over FastAGI (the RTP key presses of ``tests/support/rtp_dtmf.py``
work on the authenticated call as on any other).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from callcenter.app import CallCenter
from callcenter.core.records import Disposition, HangupBy
from tests.support.calls import (
    agent_dials,
    call_center,
    finished,
    ivr_inputs,
    the_only_closed_call,
)
from tests.support.sipp import CallerPlan

pytestmark = pytest.mark.asterisk

AGENT = "agent2"
FIRST_KEY_MS = 1500  # after the IVR answers; the collect prompt is short (no-input)

# The agent presses 7 (checked), then waits in a second collect: a second key ends the call
# from the IVR's side; hanging up there ends it from the phone's side.
AGENT_KEYS_FLOW = """
name: main
start: first_key
nodes:
  first_key:
    type: collect
    prompt: no-input
    variable: first
    min_digits: 1
    max_digits: 1
    timeout: 6
    retries: 1
    next: {node: check_first}
    on_exhausted: {hangup: true}
  check_first:
    type: condition
    if: "first == '7'"
    then: {node: second_key}
    else: {hangup: true}
  second_key:
    type: collect
    prompt: no-input
    variable: second
    min_digits: 1
    max_digits: 1
    timeout: 20
    retries: 1
    next: {node: check_second}
    on_exhausted: {hangup: true}
  check_second:
    type: condition
    if: "second == '1'"
    then: {hangup: true}
    else: {hangup: true}
"""


def agent_without_contact(agent_id: str) -> dict[str, Any]:
    """An [[agents]] table with no static contact and no password: one is generated."""
    return {"id": agent_id, "name": agent_id.capitalize(), "queues": ["support"]}


def agent_keys_flow(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "main.yaml").write_text(AGENT_KEYS_FLOW)
    return {"dialplans_dir": str(folder)}


def sip_password(center: CallCenter, agent_id: str) -> str:
    agent = next(a for a in center.settings.agents if a.id == agent_id)
    assert agent.password, f"{agent_id} has no SIP password"
    return agent.password


async def test_an_agent_phone_with_its_password_reaches_the_ivr_and_its_keys_are_heard(
        tmp_path):
    plan = CallerPlan(dtmf=((FIRST_KEY_MS, "7"), (3000, "1")))
    async with call_center(tmp_path, [agent_without_contact(AGENT)],
                           service_ivr=agent_keys_flow(tmp_path)) as center:
        ivr_number = center.settings.ivr.number
        phone = await finished(agent_dials(center, AGENT, None, ivr_number, plan))
        record = await the_only_closed_call(center)

    assert phone.names() == ["answered", "dtmf 7", "dtmf 1", "remote-bye"], phone.describe()
    assert ivr_inputs(record) == [("first_key", "1 digits"), ("check_first", "true"),
                                  ("second_key", "1 digits"), ("check_second", "true")]
    assert record.disposition is Disposition.COMPLETED_IN_IVR
    # The call came in as the agent's endpoint (its caller ID is the endpoint's setting, not
    # the From header the phone wrote), not as an anonymous caller.
    assert (record.caller_number, record.caller_name) == (AGENT, AGENT.capitalize()), record


async def test_an_authenticated_agent_phone_hangs_up_itself(tmp_path):
    # After the first key the phone hangs up while the IVR waits for the second: its BYE
    # (CSeq 3, after the challenged INVITE's 1 and 2) is accepted and ends the call.
    hangup_ms = FIRST_KEY_MS + 4000
    plan = CallerPlan(dtmf=((FIRST_KEY_MS, "7"),), hangup_after_ms=hangup_ms)
    async with call_center(tmp_path, [agent_without_contact(AGENT)],
                           service_ivr=agent_keys_flow(tmp_path)) as center:
        phone = await finished(agent_dials(center, AGENT, None, center.settings.ivr.number,
                                           plan))
        record = await the_only_closed_call(center)

    assert phone.names() == ["answered", "dtmf 7", "local-bye"], phone.describe()
    assert phone.ended_by == "us"
    assert ivr_inputs(record) == [("first_key", "1 digits"), ("check_first", "true"),
                                  ("second_key", None)]
    assert record.disposition is Disposition.ABANDONED_IN_IVR
    assert record.hangup_by is HangupBy.CALLER


async def test_an_agent_phone_with_a_wrong_password_is_refused(tmp_path):
    async with call_center(tmp_path, [agent_without_contact(AGENT)],
                           service_ivr=agent_keys_flow(tmp_path)) as center:
        wrong = f"wrong-{sip_password(center, AGENT)}"
        phone = await finished(agent_dials(center, AGENT, wrong, center.settings.ivr.number,
                                           CallerPlan(expect_refused=True)))
        await center.writer.flush(15)
        records, total = await center.calls.list()

    assert phone.names() in (["invite-refused 401"], ["invite-refused 403"]), phone.describe()
    assert total == 0, records  # the IVR never saw the call
