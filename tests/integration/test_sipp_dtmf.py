"""SIPp callers' DTMF on a real Asterisk 22: every key of long entries, of repeated keys and of
a second entry later in the same call reaches the IVR (RFC 4733 events from our own pcaps,
tests/support/rtp_dtmf.py, read by the service's collect nodes over FastAGI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.core.records import Disposition
from tests.support.calls import (
    call_center,
    caller,
    finished,
    ivr_inputs,
    the_only_closed_call,
)
from tests.support.sipp import DTMF_MIN_GAP_MS, CallerPlan

pytestmark = pytest.mark.asterisk

# A condition per entry tells in the call's path whether the whole entry arrived intact
# (the collect step itself only notes how many digits came).
ONE_ENTRY_FLOW = """
name: main
start: ask
nodes:
  ask:
    type: collect
    prompt: no-input
    variable: entry
    min_digits: 10
    max_digits: 10
    timeout: 4
    retries: 1
    next: {node: check}
    on_exhausted: {hangup: true}
  check:
    type: condition
    if: "entry == 'EXPECTED'"
    then: {hangup: true}
    else: {hangup: true}
"""

TWO_ENTRIES_FLOW = """
name: main
start: ask_pin
nodes:
  ask_pin:
    type: collect
    prompt: no-input
    variable: pin
    min_digits: 4
    max_digits: 4
    timeout: 5
    retries: 1
    next: {node: check_pin}
    on_exhausted: {hangup: true}
  check_pin:
    type: condition
    if: "pin == 'PIN'"
    then: {node: ask_account}
    else: {node: ask_account}
  ask_account:
    type: collect
    prompt: no-input
    variable: account
    min_digits: 4
    max_digits: 12
    timeout: 10
    retries: 1
    next: {node: check_account}
    on_exhausted: {hangup: true}
  check_account:
    type: condition
    if: "account == 'ACCOUNT'"
    then: {hangup: true}
    else: {hangup: true}
"""


def flows_with(tmp_path: Path, text: str) -> dict[str, str]:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "main.yaml").write_text(text)
    return {"dialplans_dir": str(folder)}


def keyed(digits: str, first_ms: int, gap_ms: int) -> tuple[tuple[int, str], ...]:
    return tuple((first_ms if i == 0 else gap_ms, d) for i, d in enumerate(digits))


@pytest.mark.parametrize(("entry", "gap_ms"), [
    ("9876543210", 300),  # each key "older" than the last in sip-tester's recordings
    ("5555500000", DTMF_MIN_GAP_MS),  # repeated keys, as fast as a plan allows
])
async def test_ten_keys_in_one_go_all_arrive(tmp_path, entry, gap_ms):
    flow = flows_with(tmp_path, ONE_ENTRY_FLOW.replace("EXPECTED", entry))
    async with call_center(tmp_path, [], service_ivr=flow) as center:
        call = await finished(caller(center, CallerPlan(dtmf=keyed(entry, 1000, gap_ms))))
        record = await the_only_closed_call(center)

    assert ivr_inputs(record) == [("ask", "10 digits"), ("check", "true")]
    assert [e.name for e in call.events if e.name.startswith("dtmf")] == [
        f"dtmf {d}" for d in entry]
    assert record.disposition is Disposition.COMPLETED_IN_IVR


async def test_a_second_entry_after_a_pause_in_the_same_call_arrives_whole(tmp_path):
    pin, account = "4321", "43214321"
    flow = flows_with(tmp_path, TWO_ENTRIES_FLOW.replace("PIN", pin)
                      .replace("ACCOUNT", account))
    # The PIN during the first prompt; then, 4 s later (the second prompt has ended and the
    # IVR waits), the same keys again and more, ended with '#'.
    plan = CallerPlan(dtmf=keyed(pin, 1000, 300) + keyed(account + "#", 4000, 300))
    async with call_center(tmp_path, [], service_ivr=flow) as center:
        call = await finished(caller(center, plan))
        record = await the_only_closed_call(center)

    assert ivr_inputs(record) == [("ask_pin", "4 digits"), ("check_pin", "true"),
                                  ("ask_account", "8 digits"), ("check_account", "true")]
    assert sum(e.name.startswith("dtmf") for e in call.events) == 13
    assert record.disposition is Disposition.COMPLETED_IN_IVR
