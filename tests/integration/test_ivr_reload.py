"""Hot reload of an IVR flow with real calls inside it (real Asterisk, SIPp, the service)."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from callcenter.config import REPO_ROOT
from callcenter.core.records import CallRecord
from tests.support.asterisk import phone_agent
from tests.support.calls import (
    MENU_DIGIT_MS,
    agent_phone,
    call_center,
    caller,
    finished,
)
from tests.support.sipp import AgentPlan, CallerPlan, free_port

pytestmark = pytest.mark.asterisk

DEMO = (REPO_ROOT / "dialplans" / "main.yaml").read_text()
TWO_TO_SALES = DEMO.replace('"2": {queue: support}', '"2": {queue: sales}')


def save(path: Path, text: str) -> None:
    """Write the file as an admin's editor would, a moment later than the last save."""
    path.write_text(text)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


async def closed_calls(center, count: int, timeout: float = 20) -> list[CallRecord]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        await center.writer.flush(timeout)
        records, _ = await center.calls.list()
        done = sorted((r for r in records if not r.is_open), key=lambda r: r.started_at)
        if len(done) >= count:
            return done
        assert loop.time() < deadline, f"only {len(done)} of {count} calls closed: {records}"
        await asyncio.sleep(0.2)


async def test_a_call_inside_the_flow_finishes_on_its_version_and_a_broken_edit_is_refused(
        tmp_path):
    flows = tmp_path / "flows"
    shutil.copytree(REPO_ROOT / "dialplans", flows)  # main and the flows it hands over to
    flow_file = flows / "main.yaml"
    flow_file.write_text(DEMO)
    port = free_port()
    agents = [phone_agent("agent2", port, queues=["support"]),
              phone_agent("agent3", free_port(), queues=["sales"], logged_in=False)]
    async with call_center(tmp_path, agents, service_ivr={"dialplans_dir": str(flows)}) as center:
        phone = agent_phone("agent2", port, AgentPlan(answer_after_ms=300, hangup_after_ms=1000))
        first = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),)))
        # While the first caller listens to the greeting, an admin sends 2 to sales.
        while not any(r.ivr_path for r in center.ledger.open_calls()):
            await asyncio.sleep(0.05)
        save(flow_file, TWO_TO_SALES)
        for _ in range(60):  # the service notices the change by itself
            if center.flows.get("main").nodes["main_menu"].options["2"].queue == "sales":
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the service did not pick up the edited flow within 6 s")
        in_menu = [r for r in center.ledger.open_calls() if r.queue is None]
        assert in_menu, "the reload must happen while the first caller is still in the menu"
        await asyncio.gather(finished(first), finished(phone))

        second = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),),
                                           hangup_after_ms=MENU_DIGIT_MS + 3000))
        await finished(second)

        save(flow_file, TWO_TO_SALES.replace("start: business_hours", "start: nowhere"))
        center.reload_flows()  # as `callcenter ivr reload` does: refused, logged
        third = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),),
                                          hangup_after_ms=MENU_DIGIT_MS + 3000))
        await finished(third)
        first_call, second_call, third_call = await closed_calls(center, 3)

    assert (first_call.queue, first_call.agent_id) == ("support", "agent2")  # old version
    assert second_call.queue == "sales"  # the new version, for a new call
    assert third_call.queue == "sales"  # the broken edit was refused; the last good one serves


async def test_a_flow_broken_across_a_restart_serves_its_last_good_version(tmp_path):
    flows = tmp_path / "flows"
    shutil.copytree(REPO_ROOT / "dialplans", flows)
    flow_file = flows / "main.yaml"
    port = free_port()
    agents = [phone_agent("agent2", port, queues=["support"])]
    ivr = {"dialplans_dir": str(flows)}
    async with call_center(tmp_path, agents, service_ivr=ivr) as center:
        assert not center.flows.status("main").from_last_good  # this run keeps a copy of it
    save(flow_file, DEMO.replace("start: business_hours", "start: nowhere"))

    async with call_center(tmp_path, agents, service_ivr=ivr) as center:  # it still starts
        status = center.flows.status("main")
        assert status.from_last_good, "the broken file must not serve"
        assert f"{flow_file}:" in str(status.problems) and "nowhere" in str(status.problems)
        phone = agent_phone("agent2", port, AgentPlan(answer_after_ms=300, hangup_after_ms=1000))
        call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),)))
        await asyncio.gather(finished(call), finished(phone))
        [record] = await closed_calls(center, 1)
    assert (record.queue, record.agent_id) == ("support", "agent2")
    assert [step.node for step in record.ivr_path][:3] == [
        "business_hours", "welcome", "main_menu"]
