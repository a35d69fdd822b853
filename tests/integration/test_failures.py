"""Failure modes against the real parts: Asterisk restarted, the database down, the service
killed. Each test runs a sandboxed Asterisk 22, real SIPp phones and the whole service (in
this process, or as a ``callcenter serve`` process where it must die), and checks what
callers, ``/healthz`` and the stored call records show.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from callcenter.app import CallCenter
from callcenter.asterisk.sandbox import Sandbox
from callcenter.config import Settings
from callcenter.core.records import AttemptOutcome, CallRecord, Disposition, HangupBy
from callcenter.store.db import create_engine, session_factory
from callcenter.store.repositories import CallRepository
from tests.support.asterisk import phone_agent, running_asterisk, sandbox_settings
from tests.support.calls import (
    MENU_DIGIT_MS,
    QUEUES,
    agent_phone,
    call_center,
    caller,
    finished,
    prompt_seconds,
    sipp_cleanup,  # noqa: F401 - autouse fixture
    talk_seconds_measured_by,
    the_only_closed_call,
)
from tests.support.postgres import SERVER_USER, SUPERUSER, PostgresServer, running_postgres
from tests.support.service_process import Health, ServiceProcess, wait_for_health
from tests.support.sipp import AgentPlan, CallerPlan, SippProcess, caller_scenario, free_port

pytestmark = pytest.mark.asterisk

# From the press of a menu digit until the caller waits in the queue with music.
QUEUE_ENTRY_MS = int(prompt_seconds("please-hold") * 1000) + 1000


# --------------------------------------------------------------------------- helpers


async def wait_until(condition: Callable[[], bool | Awaitable[bool]], *, timeout: float,
                     what: str) -> None:
    """Poll ``condition`` every 0.1 s; AssertionError naming ``what`` after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        assert loop.time() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.1)


async def closed_calls(calls: CallRepository, count: int, timeout: float = 20) -> list[CallRecord]:
    """Wait until the database holds ``count`` calls, all closed; oldest first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        records, total = await calls.list()
        if total == count and all(not r.is_open for r in records):
            return sorted(records, key=lambda r: r.started_at)
        assert loop.time() < deadline, f"not {count} closed calls within {timeout} s: {records}"
        await asyncio.sleep(0.2)


@asynccontextmanager
async def call_center_and_asterisk(tmp_path: Path, agents: Sequence[Mapping[str, Any]],
                                   ) -> AsyncIterator[tuple[CallCenter, Sandbox]]:
    """Like ``tests.support.calls.call_center``, and hands over the Asterisk sandbox too."""
    settings = sandbox_settings(tmp_path, agents=agents, queues=QUEUES)
    with running_asterisk(settings) as sandbox:
        center = CallCenter(settings)
        await center.start()
        try:
            await center.ami.wait_ready(30)
            yield center, sandbox
        finally:
            await center.stop()


def ami_is(state: str) -> Callable[[Health], bool]:
    return lambda health: health["ami"] == state


# --------------------------------------------------------------------------- Asterisk restarted


async def test_asterisk_restarted_healthz_shows_ami_down_then_up_and_new_calls_are_handled(
        tmp_path):
    port = free_port()
    agents = [phone_agent("agent2", port, queues=["support"])]
    async with call_center_and_asterisk(tmp_path, agents) as (center, sandbox):
        settings = center.settings
        await wait_for_health(settings, lambda h: h["status"] == "ok", timeout=10,
                              what="everything up before the restart")

        await asyncio.to_thread(sandbox.stop)
        down = await wait_for_health(settings, ami_is("down"), timeout=10,
                                     what='ami "down" while Asterisk is stopped')
        assert down["http_status"] == 503 and down["status"] == "degraded"
        assert down["fastagi"] == "up" and down["database"] == "up"

        await asyncio.to_thread(sandbox.start)
        up = await wait_for_health(settings, ami_is("up"), timeout=40,
                                   what='ami "up" again after the restart')
        assert up["status"] == "ok" and up["http_status"] == 200

        phone = agent_phone("agent2", port, AgentPlan(answer_after_ms=1000))
        hangup_ms = MENU_DIGIT_MS + QUEUE_ENTRY_MS + 1000 + 3000
        call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),), hangup_after_ms=hangup_ms))
        caller_result, agent_result = await asyncio.gather(finished(call), finished(phone))
        record = await the_only_closed_call(center)

    assert caller_result.ended_by == "us"
    assert record.disposition is Disposition.ANSWERED
    assert record.queue == "support" and record.agent_id == "agent2"
    assert record.hangup_by is HangupBy.CALLER
    assert [(a.agent_id, a.outcome) for a in record.attempts] == [
        ("agent2", AttemptOutcome.ANSWERED)]
    real_talk = talk_seconds_measured_by(agent_result)
    assert abs(record.talk_seconds - real_talk) < 1.0, (record.talk_seconds, real_talk)
    assert record.note is None


async def test_a_caller_waiting_in_queue_when_asterisk_stops_leaves_a_closed_record(tmp_path):
    agents = [phone_agent("agent3", free_port(), queues=["sales"], logged_in=False)]
    async with call_center_and_asterisk(tmp_path, agents) as (center, sandbox):
        call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "1"),), max_call_ms=60_000))
        await wait_until(lambda: any(r.queue == "sales" for r in center.ledger.open_calls()),
                         timeout=20, what="the caller waits in the sales queue")
        await asyncio.sleep(1.5)
        await center.writer.flush(10)
        [waiting] = center.ledger.open_calls()

        await asyncio.to_thread(sandbox.stop)
        stopped_at = center.clock.now()
        await wait_for_health(center.settings, ami_is("down"), timeout=10,
                              what='ami "down" while Asterisk is stopped')
        await asyncio.to_thread(sandbox.start)
        await wait_for_health(center.settings, ami_is("up"), timeout=40,
                              what='ami "up" again after the restart')
        [record] = await closed_calls(center.calls, 1)
        caller_result = call.stop()

    print("caller:", caller_result.describe() if caller_result else None)
    print("record:", record)
    assert record.call_id == waiting.call_id
    assert record.ended_at is not None and abs(record.ended_at - stopped_at) < 3
    assert record.queue == "sales" and record.agent_id is None
