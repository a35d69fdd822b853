"""The service killed and restarted while agents work: it rebuilds its agents from AMI.

Each test runs a sandboxed Asterisk 22, SIPp phones and the service as ``callcenter serve``
processes (SIGKILLed, then started again on the same settings and database). What the
restarted service thinks of an agent is read from ``GET /api/agents/<id>`` with a bearer
token made in its database, and from the agents' state log there.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from callcenter.asterisk.sandbox import Sandbox
from callcenter.config import Settings
from callcenter.core.clock import SystemClock
from callcenter.core.records import AttemptOutcome, CallRecord
from callcenter.features.accounts.store import Role
from callcenter.features.agents.store import AgentDirectory
from callcenter.features.calls.store import CallRepository
from callcenter.store.db import create_engine, session_factory
from tests.support.ami_watch import ami_events, music_on_hold
from tests.support.asterisk import phone_agent, running_asterisk, sandbox_settings
from tests.support.calls import MENU_DIGIT_MS, finished, prompt_seconds, until
from tests.support.service_process import ServiceProcess
from tests.support.sipp import (
    AgentPlan,
    CallerPlan,
    SippProcess,
    agent_scenario,
    caller_scenario,
    free_port,
)
from tests.support.web import accounts_for, bearer_headers

pytestmark = pytest.mark.asterisk

QUEUES = (
    {"name": "sales"},
    {"name": "support", "ring_timeout": 4},
    {"name": "operator", "wrap_up": 3},  # the fallback queue
)
# From the press of a menu digit until the caller waits in the queue with music.
QUEUE_ENTRY_MS = int(prompt_seconds("please-hold") * 1000) + 1000


@dataclass
class Scene:
    """Asterisk, the first service process (up), the second one (not started), the phones
    started so far, and the service's database as the test reads it."""

    settings: Settings
    sandbox: Sandbox
    first: ServiceProcess
    restarted: ServiceProcess
    calls: CallRepository
    directory: AgentDirectory
    headers: dict[str, str]
    agents: Sequence[Mapping[str, Any]]
    phones: list[SippProcess] = dataclasses.field(default_factory=list)

    def phone(self, agent_id: str, plan: AgentPlan) -> SippProcess:
        """The agent's softphone at its static contact, answering as ``plan`` says."""
        port = int(self._agent(agent_id)["contact"].rsplit(":", 1)[1])
        return self._started(SippProcess(agent_scenario(plan), port=port, name=agent_id))

    def caller(self, plan: CallerPlan) -> SippProcess:
        return self._started(SippProcess(
            caller_scenario(plan), remote=("127.0.0.1", self.settings.asterisk.sip_port),
            service=self.settings.ivr.number, name="caller"))

    def agent_dials(self, agent_id: str, extension: str, plan: CallerPlan) -> SippProcess:
        """The agent's phone dials ``extension`` as its endpoint (digest auth)."""
        agent = next(a for a in self.settings.agents if a.id == agent_id)
        assert agent.password, f"{agent_id} needs a SIP password in the settings"
        scenario = caller_scenario(dataclasses.replace(plan, auth=(agent_id, agent.password)))
        return self._started(SippProcess(
            scenario, remote=("127.0.0.1", self.settings.asterisk.sip_port),
            service=extension, name=f"{agent_id}-dials"))

    async def live(self, agent_id: str) -> dict[str, Any] | None:
        """The agent's live state from the running service's API (None: nobody answers)."""
        service = self.settings.service
        url = f"http://{service.http_host}:{service.http_port}/api/agents/{agent_id}"
        try:
            async with aiohttp.ClientSession(headers=self.headers,
                                             timeout=aiohttp.ClientTimeout(total=3)) as http, \
                    http.get(url) as response:
                assert response.status == 200, await response.text()
                body: dict[str, Any] = await response.json()
                return body["state"]
        except (aiohttp.ClientConnectionError, TimeoutError):
            return None

    async def live_is(self, agent_id: str, **wanted: Any) -> dict[str, Any] | None:
        state = await self.live(agent_id)
        if state is None or any(state.get(key) != value for key, value in wanted.items()):
            return None
        return state

    async def state_log(self, agent_id: str) -> list[tuple[str, str | None]]:
        return [(c.state, c.reason) for c in await self.directory.state_history(agent_id)]

    async def one_record(self, number: str, *, closed: bool = True) -> CallRecord | None:
        records, _ = await self.calls.list()
        found = [r for r in records if r.caller_number == number]
        assert len(found) <= 1, found
        if not found or (closed and found[0].is_open):
            return None
        return found[0]

    def logs(self) -> str:
        return (f"first service:\n{self.first.output()[-4000:]}\n"
                f"restarted service:\n{self.restarted.output()[-6000:]}")

    def _agent(self, agent_id: str) -> Mapping[str, Any]:
        return next(a for a in self.agents if a["id"] == agent_id)

    def _started(self, phone: SippProcess) -> SippProcess:
        self.phones.append(phone)
        return phone.start()


@asynccontextmanager
async def service_to_kill(tmp_path: Path, agents: Sequence[Mapping[str, Any]],
                          ) -> AsyncIterator[Scene]:
    """Asterisk and the first service process up, a supervisor's API token in its database.
    Every process is stopped by its pid at the end."""
    settings = sandbox_settings(tmp_path, agents=agents, queues=QUEUES)
    first, restarted = ServiceProcess(settings), ServiceProcess(settings)
    with running_asterisk(settings) as sandbox:
        async with AsyncExitStack() as stack:
            for process in (first, restarted):
                stack.callback(process.stop)
            await first.start().wait_up(30)
            engine = create_engine(settings.database_url)
            stack.push_async_callback(engine.dispose)
            sessions = session_factory(engine)
            headers = await bearer_headers(accounts_for(sessions, SystemClock()),
                                           [Role.SUPERVISOR], username="watcher")
            scene = Scene(settings, sandbox, first, restarted, CallRepository(sessions),
                          AgentDirectory(sessions, SystemClock(),
                                         queues=[q["name"] for q in QUEUES]),
                          headers, agents)

            def stop_phones() -> None:
                for phone in scene.phones:
                    phone.stop()
                    phone.cleanup()

            stack.callback(stop_phones)  # runs after the services' stops, before Asterisk's
            try:
                yield scene
            except BaseException:
                print(scene.logs())
                raise


# --------------------------------------------------------------------------- nailed-up


async def test_a_nailed_up_agent_stays_nailed_up_across_a_service_kill_and_restart(tmp_path):
    """agent1 dials *50 and stays on the line; the service is SIGKILLed and started again.
    The restarted service shows agent1 ready and nailed up (from their channel still in the
    bridge), joins a new caller to the bridge without ringing the phone, and logs agent1 out
    when that channel hangs up."""
    agents = [phone_agent("agent1", free_port(), queues=["sales"], logged_in=False,
                          password="agent1-secret")]
    async with service_to_kill(tmp_path, agents) as scene:
        line = scene.agent_dials("agent1", "*50", CallerPlan(hangup_after_ms=45_000,
                                                             max_call_ms=60_000))
        await until(lambda: scene.live_is("agent1", state="ready", mode="nailed"),
                    "the first service has agent1 nailed up")
        await until(lambda: _last_state_is(scene, "agent1", "ready"),
                    "the login is in the state log")
        scene.first.kill()

        await scene.restarted.start().wait_up(30)
        state = await until(lambda: scene.live_is("agent1", mode="nailed"),
                            "the restarted service has agent1 nailed up", timeout=10)
        assert (state["state"], state["phone"]) == ("ready", "agent1"), state
        ringing_phone = scene.phone("agent1", AgentPlan(answer_after_ms=0))
        hangup_ms = MENU_DIGIT_MS + QUEUE_ENTRY_MS + 4000
        call = scene.caller(CallerPlan(dtmf=((MENU_DIGIT_MS, "1"),), hangup_after_ms=hangup_ms,
                                       caller_number="5550001"))
        await finished(call)
        record = await until(lambda: scene.one_record("5550001"), "the call's record closes")
        line_result = await finished(line, timeout=60)
        await until(lambda: scene.live_is("agent1", state="logged_out"),
                    "agent1 logged out once the nailed-up line hung up", timeout=10)
        # The state log is written in batches after the live state changes: wait for it.
        await until(lambda: _last_state_is(scene, "agent1", "logged_out"),
                    "the logout is in the state log")
        rung = ringing_phone.events_so_far()
        log = await scene.state_log("agent1")

    assert rung == [], "the nailed-up agent's phone was rung"
    assert record.agent_id == "agent1" and record.queue == "sales", record
    assert [(a.agent_id, a.outcome) for a in record.attempts] == [
        ("agent1", AttemptOutcome.ANSWERED)]
    assert record.talk_seconds is not None and record.talk_seconds > 2, record
    assert line_result.names() == ["answered", "local-bye"], line_result.describe()
    # Restarted: logged in again from the state log, then taken for nailed up (no state
    # change: the mode is how calls reach them), then the caller, then the line's hang-up.
    after_restart = log[log.index(("ready", "login"), 1):]
    assert after_restart == [
        ("ready", "login"), ("ringing", f"call {record.call_id}"), ("on_call", "answered"),
        ("ready", "call ended"), ("logged_out", "logout")], log


async def _last_state_is(scene: Scene, agent_id: str, state: str) -> bool:
    log = await scene.state_log(agent_id)
    return bool(log) and log[-1][0] == state


# --------------------------------------------------------------------------- fallback calls


async def test_an_agent_on_a_fallback_call_is_busy_for_the_restarted_service_until_it_ends(
        tmp_path):
    """A caller waits in sales (nobody at work there) when the service is SIGKILLed: the
    fallback dialplan takes them to Asterisk's operator queue, where agent1 answers. The
    service restarts during that talk: it shows agent1 on that call, so the next caller (in
    support, where agent1 has been idle longest) goes to agent2; when agent1's call ends, the
    operator queue's wrap-up follows and agent1 is ready again."""
    agents = [phone_agent("agent1", free_port(), queues=["operator", "support"]),
              phone_agent("agent2", free_port(), queues=["support"]),
              phone_agent("agent3", free_port(), queues=["sales"], logged_in=False)]
    async with service_to_kill(tmp_path, agents) as scene, \
            ami_events(scene.settings) as events:
        waiting = scene.caller(CallerPlan(dtmf=((MENU_DIGIT_MS, "1"),), max_call_ms=150_000,
                                          caller_number="5550001"))
        await until(lambda: _waits_in(scene, "5550001", "sales"),
                    "the first caller waits in sales")
        queued = await scene.one_record("5550001", closed=False)
        assert queued is not None and queued.channel, queued
        await music_on_hold(events, queued.channel)  # on hold, music playing
        scene.first.kill()

        operator = scene.phone("agent1", AgentPlan(answer_after_ms=500, hangup_after_ms=40_000))
        await until(lambda: _talking(scene.sandbox, "agent1"),
                    "the fallback queue connects the caller to agent1", timeout=40)
        await scene.restarted.start().wait_up(30)
        busy = await until(lambda: scene.live_is("agent1", state="on_call"),
                           "the restarted service shows agent1 on the fallback call",
                           timeout=10)
        assert (await scene.live("agent2") or {}).get("state") == "ready"

        second_agent = scene.phone("agent2", AgentPlan(answer_after_ms=200))
        hangup_ms = MENU_DIGIT_MS + QUEUE_ENTRY_MS + 5000
        second = scene.caller(CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),),
                                         hangup_after_ms=hangup_ms, caller_number="5550002"))
        await finished(second)
        await finished(second_agent)
        record = await until(lambda: scene.one_record("5550002"),
                             "the second caller's record closes")
        assert waiting.running() and _talking(scene.sandbox, "agent1"), (
            "agent1's fallback call ended before the second caller was served")
        still_busy = await scene.live("agent1")

        first_result, operator_result = await asyncio.gather(
            finished(waiting, timeout=60), finished(operator, timeout=60))
        await until(lambda: scene.live_is("agent1", state="ready"),
                    "agent1 ready again after the fallback call and its wrap-up", timeout=15)
        first_record = await until(lambda: scene.one_record("5550001"),
                                   "the first caller's record closes")
        log = await scene.state_log("agent1")

    assert busy["reason"] == f"call {busy['call_id']} outside the ACD", busy
    assert still_busy is not None and still_busy["state"] == "on_call", still_busy
    assert record.queue == "support" and record.agent_id == "agent2", record
    assert [(a.agent_id, a.outcome) for a in record.attempts] == [
        ("agent2", AttemptOutcome.ANSWERED)], "agent1 was offered the second caller"
    assert operator_result.names() == ["invite", "answered", "local-bye"], (
        operator_result.describe())
    assert first_result.ended_by == "them"
    assert first_record.agent_id == "agent1", first_record
    after_restart = log[log.index(("ready", "login"), 1):]
    assert after_restart == [
        ("ready", "login"), ("on_call", busy["reason"]), ("wrap_up", "call ended"),
        ("ready", "wrap-up ended")], log


async def _waits_in(scene: Scene, number: str, queue: str) -> bool:
    record = await scene.one_record(number, closed=False)
    return record is not None and record.is_open and record.queue == queue


def _talking(sandbox: Sandbox, agent_id: str) -> bool:
    """Whether the agent's phone is up and bridged (``core show channels concise``: the 5th
    field is the state, the 13th the bridge)."""
    for line in sandbox.cli("core show channels concise").splitlines():
        fields = line.split("!")
        if fields[0].startswith(f"PJSIP/{agent_id}-") and len(fields) > 12:
            return fields[4] == "Up" and fields[12] != ""
    return False
