"""Business hours on real calls, with the service's clock set for each scene: open, closed
after hours, closed on a public holiday, and forced closed by the admin switch; and the
`callcenter ivr switch` command closing and reopening the demo's own flow (real Asterisk 22,
a SIPp caller, the service in-process)."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from callcenter import cli
from callcenter.app import CallCenter
from callcenter.core.clock import ShiftedClock
from callcenter.core.hours import Override
from callcenter.core.records import CallRecord, Disposition
from callcenter.features.calls.store import CallRepository
from callcenter.features.ivr.switches import FlowSwitches
from callcenter.store.db import create_engine, session_factory
from tests.support.asterisk import running_asterisk, sandbox_settings
from tests.support.calls import (
    call_center,
    caller,
    finished,
    ivr_inputs,
)
from tests.support.service_process import ServiceProcess
from tests.support.sipp import CallerPlan, SippProcess, caller_scenario

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


async def test_ivr_switch_closes_the_demo_flow_for_the_next_caller_and_opens_it_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The demo flow (dialplans/main.yaml, what ./run.sh serves), switched by the command an
    # admin types, given the service's data folder as an admin gives it.
    hangs_up = CallerPlan(max_call_ms=30_000)  # the closed branch hangs up on them
    ends_the_call = CallerPlan(dtmf=((1200, "9"),), max_call_ms=30_000)  # 9: end this call
    scenes = [("closed", hangs_up), ("open", ends_the_call), ("closed", hangs_up),
              ("auto", ends_the_call)]
    async with call_center(tmp_path, []) as center:
        await cli.note_served_flows(center.settings, center)  # as `callcenter serve` does
        monkeypatch.setenv("CALLCENTER_DATA_DIR", str(center.settings.data_path))
        for number, (word, plan) in enumerate(scenes, start=1):
            assert cli.main(["ivr", "switch", "main", word]) == 0
            await finished(caller(center, plan))
            await closed_calls(center, number)  # one scene at a time
        records = await closed_calls(center, len(scenes))

    closed = [("business_hours", "closed: forced closed by an admin"), ("closed_now", None)]
    assert [ivr_inputs(record) for record in records] == [
        closed,
        [("business_hours", "open: forced open by an admin"), ("welcome", None),
         ("main_menu", "9")],
        closed,
        # auto: what the file says again; the demo's own override keeps it open day and night
        [("business_hours", "open: open 24x7 by an admin"), ("welcome", None),
         ("main_menu", "9")],
    ]
    assert all(r.disposition is Disposition.COMPLETED_IN_IVR for r in records)
    assert all(r.queue is None for r in records)


OFFICE_FLOW = """
name: office
start: hours
nodes:
  hours:
    type: time
    hours: {timezone: UTC, weekly: {mon-sun: ["00:00-24:00"]}}
    open: {hangup: true, prompt: welcome}
    closed: {hangup: true, prompt: goodbye}
"""


async def stored_closed_calls(calls: CallRepository, count: int,
                              timeout: float = 20) -> list[CallRecord]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        records, _ = await calls.list()
        done = [r for r in records if not r.is_open]
        if len(done) >= count:
            return sorted(done, key=lambda r: r.started_at)
        assert asyncio.get_running_loop().time() < deadline, f"{len(done)} of {count}: {records}"
        await asyncio.sleep(0.2)


async def test_ivr_switch_finds_the_flows_of_the_service_running_on_the_data_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    # `callcenter serve` runs with its own flows folder (CALLCENTER_IVR__DIALPLANS_DIR); the
    # admin's shell gives the command only the data folder: the flow is found where the
    # service serves it, and the next caller hears it closed.
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "office.yaml").write_text(OFFICE_FLOW)
    settings = sandbox_settings(tmp_path / "center", env={
        "CALLCENTER_IVR__DIALPLANS_DIR": str(flows), "CALLCENTER_IVR__FLOW": "office"})
    for name in ("CALLCENTER_CONFIG", "CALLCENTER_IVR__DIALPLANS_DIR", "CALLCENTER_IVR__FLOW"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CALLCENTER_DATA_DIR", settings.data_dir)
    service = ServiceProcess(settings)
    with running_asterisk(settings):
        async with AsyncExitStack() as stop_by_pid:
            stop_by_pid.callback(service.stop)
            await service.start().wait_up(30)
            engine = create_engine(settings.database_url)
            stop_by_pid.push_async_callback(engine.dispose)
            calls = CallRepository(session_factory(engine))
            for number, word in enumerate(("closed", "auto"), start=1):
                assert cli.main(["ivr", "switch", "office", word]) == 0, capsys.readouterr()
                out = capsys.readouterr().out
                assert f"serves the flows in {flows}" in out, out
                assert f"pid {service.pid}" in out
                caller = SippProcess(caller_scenario(CallerPlan(max_call_ms=30_000)),
                                     remote=("127.0.0.1", settings.asterisk.sip_port),
                                     service=settings.ivr.number, name="caller")
                stop_by_pid.callback(caller.cleanup)
                stop_by_pid.callback(caller.stop)
                await finished(caller.start())
                await stored_closed_calls(calls, number)
            records = await stored_closed_calls(calls, 2)
    assert not (settings.data_path / "ivr-service.json").exists()  # gone with the service

    closed, reopened = (ivr_inputs(record) for record in records)
    assert closed == [("hours", "closed: forced closed by an admin")]
    [(node, decision)] = reopened
    assert node == "hours" and decision.startswith("open: weekly hours "), decision  # + today
