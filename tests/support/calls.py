"""The whole service in-process against a real sandboxed Asterisk, with SIPp phones.

    async with call_center(tmp_path, [phone_agent("agent2", port, queues=["support"])]) as center:
        phone = agent_phone("agent2", port, AgentPlan(answer_after_ms=1000))
        call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),), hangup_after_ms=15000))
        await asyncio.gather(finished(call), finished(phone))
        record = await the_only_closed_call(center)

Every SIPp process started through ``agent_phone``/``caller`` is stopped at the end of the
test by the ``sipp_cleanup`` fixture (import it into the test module, or use it autouse).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import wave
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from callcenter.app import CallCenter
from callcenter.config import REPO_ROOT
from callcenter.core.clock import Clock
from callcenter.core.records import CallRecord
from tests.support.asterisk import running_asterisk, sandbox_settings
from tests.support.sipp import (
    AgentPlan,
    CallerPlan,
    SippProcess,
    SippResult,
    agent_scenario,
    caller_scenario,
)
from tests.support.tcp_proxy import TcpProxy

QUEUES = (
    {"name": "sales"},
    {"name": "support", "ring_timeout": 4},
    {"name": "operator"},
)


def prompt_seconds(name: str, language: str = "en") -> float:
    """How long one of the repository's prompts plays."""
    with wave.open(str(REPO_ROOT / "ivr_prompts" / language / f"{name}.wav")) as audio:
        return audio.getnframes() / audio.getframerate()


# When a digit pressed during the main menu prompt arrives (ms after the IVR answers).
MENU_DIGIT_MS = int((prompt_seconds("welcome") + 1.5) * 1000)


@asynccontextmanager
async def call_center(tmp_path: Path, agents: Sequence[Mapping[str, Any]], *,
                      ami_via: TcpProxy | None = None, env: Mapping[str, str] | None = None,
                      service_ivr: Mapping[str, str] | None = None,
                      clock: Clock | None = None,
                      queues: Sequence[Mapping[str, Any]] = QUEUES,
                      ) -> AsyncIterator[CallCenter]:
    """``service_ivr`` changes the service's [ivr] settings only, not Asterisk's (e.g. to
    give the service prompts Asterisk does not have). ``clock``: the service's time.
    ``queues``: the [[queues]] tables."""
    settings = sandbox_settings(tmp_path, agents=agents, queues=queues, env=env)
    with running_asterisk(settings):
        service_settings = settings
        if service_ivr:
            ivr = dataclasses.replace(settings.ivr, **service_ivr)
            service_settings = dataclasses.replace(service_settings, ivr=ivr)
        if ami_via is not None:
            ami_via.retarget("127.0.0.1", settings.asterisk.ami_port)
            await ami_via.start()
            ami_via_settings = dataclasses.replace(
                settings.asterisk, ami_port=ami_via.port)
            service_settings = dataclasses.replace(service_settings, asterisk=ami_via_settings)
        center = (CallCenter(service_settings) if clock is None
                  else CallCenter(service_settings, clock=clock))
        await center.start()
        try:
            await center.ami.wait_ready(30)
            yield center
        finally:
            await center.stop()
            if ami_via is not None:
                await ami_via.stop()


def sip_target(center: CallCenter) -> tuple[str, int]:
    return ("127.0.0.1", center.settings.asterisk.sip_port)


_started: list[SippProcess] = []


@pytest.fixture(autouse=True)
def sipp_cleanup() -> Iterator[None]:
    yield
    while _started:
        phone = _started.pop()
        phone.stop()
        phone.cleanup()  # a failing test already printed what sipp said (SippResult.describe)


def agent_phone(agent_id: str, port: int, plan: AgentPlan, calls: int = 1) -> SippProcess:
    phone = SippProcess(agent_scenario(plan), port=port, name=agent_id, calls=calls)
    _started.append(phone)
    return phone.start()


def caller(center: CallCenter, plan: CallerPlan) -> SippProcess:
    phone = SippProcess(caller_scenario(plan), remote=sip_target(center),
                        service=center.settings.ivr.number, name="caller")
    _started.append(phone)
    return phone.start()


DIALABLE = re.compile(r"[0-9A-Za-z*+_.~-]+")  # an extension as a SIP URI's user part


def agent_dials(center: CallCenter, agent_id: str, password: str | None, extension: str,
                plan: CallerPlan) -> SippProcess:
    """The agent's phone dials ``extension`` (a feature code, the IVR number...) as endpoint
    ``agent_id``, answering Asterisk's digest challenge, then follows ``plan`` (started).

    ``password``: None for the agent's SIP password from the settings (given or generated,
    as ``./run.sh`` prints it); a string to try another (e.g. a wrong one, with
    ``CallerPlan(expect_refused=True)``). The plan's own ``auth`` must be unset.
    """
    if plan.auth is not None:
        raise ValueError(f"agent_dials: the plan already has auth {plan.auth!r}; "
                         "the credentials come from agent_id and password")
    agent = next((a for a in center.settings.agents if a.id == agent_id), None)
    if agent is None:
        known = [a.id for a in center.settings.agents]
        raise ValueError(f"agent_dials: no agent {agent_id!r} in the settings (agents: {known})")
    secret = agent.password if password is None else password
    if not secret:
        raise ValueError(f"agent_dials: agent {agent_id!r} has no SIP password in the settings")
    if not DIALABLE.fullmatch(extension):
        raise ValueError(f"agent_dials: extension {extension!r}: use digits, letters and *+_.~- "
                         "(it is the user part of the request URI; '#' would need escaping)")
    scenario = caller_scenario(dataclasses.replace(plan, auth=(agent_id, secret)))
    phone = SippProcess(scenario, remote=sip_target(center), service=extension,
                        name=f"{agent_id}-dials")
    _started.append(phone)
    return phone.start()


async def finished(process: SippProcess, timeout: float = 90) -> SippResult:
    result = await asyncio.to_thread(process.wait, timeout)
    assert result.exit_code == 0 and result.failed == 0, result.describe()
    return result


async def the_only_closed_call(center: CallCenter, timeout: float = 15) -> CallRecord:
    """Wait for the service to store the call's final record, and return it."""
    [record] = await closed_calls(center, 1, timeout)
    return record


async def closed_calls(center: CallCenter, count: int, timeout: float = 15) -> list[CallRecord]:
    """Wait until the service has stored exactly ``count`` records, all final; return them.
    More records than calls fails at once: every call gets exactly one."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        await center.writer.flush(timeout)
        records, total = await center.calls.list(limit=max(count, 1) + 10)
        assert total <= count, f"{total} records for {count} calls: {records}"
        if total == count and not any(record.is_open for record in records):
            return records
        assert asyncio.get_running_loop().time() < deadline, (
            f"not {count} closed records within {timeout} s: {records}")
        await asyncio.sleep(0.2)


def talk_seconds_measured_by(agent: SippResult) -> float:
    """The agent phone's own measure of the talk: from its answer to the end of the call."""
    at = {event.name: event.at_ms for event in agent.events}
    end = at.get("remote-bye", at.get("local-bye"))
    assert "answered" in at and end is not None, agent.describe()
    return (end - at["answered"]) / 1000


# The demo flow's first step (dialplans/main.yaml): its business hours, open day and night.
DEMO_HOURS_OPEN = ("business_hours", "open: open 24x7 by an admin")


def ivr_inputs(record: CallRecord) -> list[tuple[str, str | None]]:
    return [(step.node, step.input) for step in record.ivr_path]


async def until(condition: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """Poll ``condition`` (sync or async) every 0.1 s until it gives a true value, and
    return it; AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.1)
