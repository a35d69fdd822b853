"""Business hours on real calls, with the service's clock set for each scene: open, closed
after hours, closed on a public holiday, and forced closed by the admin switch (real
Asterisk 22, a SIPp caller, the service in-process)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from callcenter.app import CallCenter
from callcenter.core.clock import ShiftedClock
from callcenter.core.hours import Override
from callcenter.core.records import CallRecord, Disposition
from callcenter.service.switches import FlowSwitches
from tests.support.calls import (
    call_center,
    caller,
    finished,
    sipp_cleanup,  # noqa: F401 - autouse fixture
)
from tests.support.sipp import CallerPlan

pytestmark = pytest.mark.asterisk

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
HOURS_FLOW = """
name: main
start: office
nodes:
  office:
    type: time
    hours:
      timezone: America/Sao_Paulo
      weekly: {mon-fri: ["08:00-18:00"]}
      holidays: {country: BR}
    open: {hangup: true, prompt: welcome}
    closed: {hangup: true, prompt: goodbye}
"""


def at(text: str) -> float:
    """A São Paulo wall-clock time as POSIX seconds."""
    return datetime.fromisoformat(text).replace(tzinfo=SAO_PAULO).timestamp()


async def closed_calls(center: CallCenter, count: int, timeout: float = 20) -> list[CallRecord]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        await center.writer.flush(timeout)
        records, _ = await center.calls.list()
        done = [r for r in records if not r.is_open]
        if len(done) >= count:
            return sorted(done, key=lambda r: r.started_at)
        assert asyncio.get_running_loop().time() < deadline, f"{len(done)} of {count}: {records}"
        await asyncio.sleep(0.2)


async def test_the_service_clock_decides_open_closed_holiday_and_the_admin_switch(
        tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "main.yaml").write_text(HOURS_FLOW)
    clock = ShiftedClock(at("2026-12-01T10:00"))  # a Tuesday morning
    scenes = [
        ("2026-12-01T10:00", None, "open: "),
        ("2026-12-01T20:30", None, "closed: "),  # after hours
        ("2026-12-25T10:00", None, "closed: holiday: "),  # Christmas, a Friday
        ("2026-12-02T10:00", Override.FORCE_CLOSED, "closed: forced closed by an admin"),
    ]
    async with call_center(tmp_path, [], service_ivr={"dialplans_dir": str(flows)},
                           clock=clock) as center:
        switches = FlowSwitches(center.settings.data_path)
        for number, (when, switch, _) in enumerate(scenes, start=1):
            clock.jump_to(at(when))
            switches.set("main", switch or Override.NONE)
            await finished(caller(center, CallerPlan(max_call_ms=30_000)))
            await closed_calls(center, number)  # one scene at a time
        # Ordered as they happened (the records' times are Asterisk's, from AMI).
        records = await closed_calls(center, len(scenes))

    for record, (when, _, decision) in zip(records, scenes, strict=True):
        [step] = record.ivr_path
        assert step.node == "office" and step.input is not None
        assert step.input.startswith(decision), (when, step.input)
        assert record.disposition is Disposition.COMPLETED_IN_IVR
    assert "Christmas" in records[2].ivr_path[0].input
