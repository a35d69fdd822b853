"""Failure modes against the real parts: Asterisk restarted, the database down, the service
killed. Each test runs a sandboxed Asterisk 22, real SIPp phones and the whole service (in
this process, or as a ``callcenter serve`` process where it must die), and checks what
callers, ``/healthz`` and the stored call records show.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from callcenter.app import CallCenter
from callcenter.asterisk.sandbox import Sandbox
from callcenter.config import Settings
from callcenter.core.records import (
    AttemptOutcome,
    CallRecord,
    Disposition,
    HangupBy,
    RecordSource,
)
from callcenter.features.calls.spool import SPOOL_FILE, SpoolBook, decode, record_from_json
from callcenter.features.calls.store import CallRepository
from callcenter.store.db import create_engine, session_factory
from tests.support.ami_watch import ami_events, music_on_hold
from tests.support.asterisk import phone_agent, running_asterisk, sandbox_settings
from tests.support.calls import (
    DEMO_HOURS_OPEN,
    MENU_DIGIT_MS,
    QUEUES,
    agent_phone,
    call_center,
    caller,
    finished,
    talk_seconds_measured_by,
    the_only_closed_call,
)
from tests.support.postgres import SERVER_USER, SUPERUSER, PostgresServer, running_postgres
from tests.support.service_process import Health, ServiceProcess, wait_for_health
from tests.support.sipp import (
    AgentPlan,
    CallerPlan,
    SippProcess,
    agent_scenario,
    caller_scenario,
    free_port,
)

pytestmark = pytest.mark.asterisk

# From the press of a menu digit until an idle agent's phone rings: the caller joins the
# queue at once (no "please hold" when an agent is free); a few AGI commands and a margin.
QUEUE_ENTRY_MS = 1000


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


def part_is(part: str, state: str) -> Callable[[Health], bool]:
    return lambda health: health[part] == state


class StoppablePostgres:
    """Stops and starts a ``running_postgres()`` server in place, as ``pg_ctl`` does there:
    same data folder, binaries, server user and command-line options (so the same port)."""

    def __init__(self, server: PostgresServer, data_dir: Path, options: list[str]) -> None:
        self.server = server
        self.data_dir = data_dir
        self.options = options
        self.running = True

    @classmethod
    async def of(cls, server: PostgresServer) -> StoppablePostgres:
        connection = await asyncpg.connect(host=server.host, port=server.port, user=SUPERUSER,
                                           password=server.password, database="postgres")
        try:
            data_dir = Path(await connection.fetchval("SHOW data_directory"))
            rows = await connection.fetch(
                "SELECT name, setting FROM pg_settings WHERE source = 'command line'")
        finally:
            await connection.close()
        assert any(row["name"] == "port" for row in rows), rows
        return cls(server, data_dir, [f"-c {row['name']}={row['setting']}" for row in rows])

    def stop(self) -> None:
        self._pg_ctl("stop", "--mode", "fast", "--wait")
        self.running = False

    def start(self) -> None:
        self._pg_ctl("start", "--log", str(self.data_dir.parent / "server.log"),
                     "--options", " ".join(self.options), "--wait", "--timeout", "60")
        self.running = True

    def _pg_ctl(self, *args: str) -> None:
        run_as = ["runuser", "-u", SERVER_USER, "--"] if os.geteuid() == 0 else []
        command = [*run_as, str(self.server.bin_dir / "pg_ctl"), args[0],
                   "--pgdata", str(self.data_dir), *args[1:]]
        result = subprocess.run(command, capture_output=True, text=True, timeout=90)
        assert result.returncode == 0, f"pg_ctl {args[0]} failed: {result.stderr or result.stdout}"


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
        down = await wait_for_health(settings, part_is("ami", "down"), timeout=10,
                                     what='ami "down" while Asterisk is stopped')
        assert down["http_status"] == 503 and down["status"] == "degraded"
        assert down["fastagi"] == "up" and down["database"] == "up"

        await asyncio.to_thread(sandbox.start)
        up = await wait_for_health(settings, part_is("ami", "up"), timeout=40,
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


async def test_caller_on_hold_when_asterisk_stops_gets_a_record_closed_as_ended_by_the_system(
        tmp_path):
    agents = [phone_agent("agent3", free_port(), queues=["sales"], logged_in=False)]
    async with call_center_and_asterisk(tmp_path, agents) as (center, sandbox):
        async with ami_events(center.settings) as events:  # stopped before Asterisk is
            call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "1"),), max_call_ms=60_000))
            await wait_until(lambda: any(r.queue == "sales" for r in center.ledger.open_calls()),
                             timeout=20, what="the caller waits in the sales queue")
            [waiting] = center.ledger.open_calls()
            assert waiting.channel, waiting
            await music_on_hold(events, waiting.channel)  # on hold, music playing

        stopping_at = center.clock.now()
        await asyncio.to_thread(sandbox.stop)
        stopped_at = center.clock.now()
        caller_result = await finished(call, timeout=10)
        await wait_for_health(center.settings, part_is("ami", "down"), timeout=10,
                              what='ami "down" while Asterisk is stopped')
        await asyncio.to_thread(sandbox.start)
        await wait_for_health(center.settings, part_is("ami", "up"), timeout=40,
                              what='ami "up" again after the restart')
        [record] = await closed_calls(center.calls, 1)

    assert caller_result.ended_by == "them", "Asterisk hung up on the caller as it stopped"
    assert record.call_id == waiting.call_id
    assert stopping_at <= record.ended_at <= stopped_at
    assert record.queue == "sales" and record.agent_id is None
    # The caller did not give up: Asterisk's shutdown cut them off (AMI says so with a
    # SoftHangupRequest of cause 4, "shutdown", before the Hangup of cause 0).
    assert (record.hangup_by, record.disposition) == (HangupBy.SYSTEM, Disposition.FAILED), record
    assert record.note, "the record should say why the call failed"


# --------------------------------------------------------------------------- database down


async def test_database_down_during_a_call_every_record_is_stored_once_it_is_back(tmp_path):
    port = free_port()
    agents = [phone_agent("agent2", port, queues=["support"])]
    with running_postgres() as server, server.fresh_database() as url:
        database = await StoppablePostgres.of(server)
        try:
            async with call_center(tmp_path, agents,
                                   env={"CALLCENTER_DATABASE__URL": url}) as center:
                settings = center.settings
                phone = agent_phone("agent2", port, AgentPlan(answer_after_ms=1000))
                hangup_ms = MENU_DIGIT_MS + QUEUE_ENTRY_MS + 1000 + 6000
                call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"),),
                                                 hangup_after_ms=hangup_ms))
                await wait_until(
                    lambda: any(r.agent_answered_at for r in center.ledger.open_calls()),
                    timeout=30, what="the agent answers")
                await center.writer.flush(10)

                await asyncio.to_thread(database.stop)
                down = await wait_for_health(settings, part_is("database", "down"), timeout=10,
                                             what='database "down" while PostgreSQL is stopped')
                assert (down["ami"], down["fastagi"], down["http_status"]) == ("up", "up", 503)
                caller_result, agent_result = await asyncio.gather(finished(call),
                                                                   finished(phone))
                # A whole call while the database is down: hung up during the greeting.
                await finished(caller(center, CallerPlan(hangup_after_ms=1200)))
                await wait_until(lambda: len(center.ledger) == 0, timeout=10,
                                 what="both calls closed in the ledger")
                await wait_until(lambda: center.writer.last_error is not None, timeout=10,
                                 what="the record writer fails to store and retries")
                assert center.writer.backlog == 2

                await asyncio.to_thread(database.start)
                await center.writer.flush(30)
                assert center.writer.backlog == 0 and center.writer.last_error is None
                await wait_for_health(settings, part_is("database", "up"), timeout=10,
                                      what='database "up" again')
            # Read back through a new engine: what is stored, not what the service holds.
            engine = create_engine(url)
            try:
                talk, greeting = await closed_calls(CallRepository(session_factory(engine)), 2)
            finally:
                await engine.dispose()
        finally:
            if not database.running:
                database.start()

    assert caller_result.ended_by == "us"
    assert talk.disposition is Disposition.ANSWERED
    assert talk.queue == "support" and talk.agent_id == "agent2"
    assert talk.hangup_by is HangupBy.CALLER
    assert [(a.agent_id, a.outcome) for a in talk.attempts] == [
        ("agent2", AttemptOutcome.ANSWERED)]
    real_talk = talk_seconds_measured_by(agent_result)
    assert abs(talk.talk_seconds - real_talk) < 1.0, (talk.talk_seconds, real_talk)
    assert [(s.node, s.input) for s in talk.ivr_path] == [
        DEMO_HOURS_OPEN, ("welcome", None), ("main_menu", "2")]
    assert greeting.disposition is Disposition.ABANDONED_IN_IVR
    assert greeting.hangup_by is HangupBy.CALLER
    assert greeting.started_at > talk.ended_at


# --------------------------------------------------------------------------- service killed


def operator_talking(sandbox: Sandbox) -> bool:
    """Whether agent1's phone is up and bridged (``core show channels concise``: the 5th
    field is the state, the 13th the bridge)."""
    for line in sandbox.cli("core show channels concise").splitlines():
        fields = line.split("!")
        if fields[0].startswith("PJSIP/agent1-") and len(fields) > 12:
            return fields[4] == "Up" and fields[12] != ""
    return False


async def stored_call(calls: CallRepository) -> CallRecord | None:
    records, _ = await calls.list()
    assert len(records) <= 1, records
    return records[0] if records else None


async def _waits_in_sales(calls: CallRepository) -> bool:
    record = await stored_call(calls)
    return record is not None and record.is_open and record.queue == "sales"


@dataclass
class KilledWhileOnHold:
    """A caller on hold in sales when the first service process was SIGKILLed."""

    sandbox: Sandbox
    calls: CallRepository  # the service's database, read by the test
    call: SippProcess
    operator: SippProcess  # agent1's phone (the fallback queue's member), not started yet
    restarted: ServiceProcess  # not started yet
    killed_at: float

    def operator_answered(self) -> bool:
        assert self.call.running(), ("the caller was hung up when the service died, instead "
                                     "of reaching the fallback queue")
        return operator_talking(self.sandbox)

    async def fallback_connects_the_operator(self) -> None:
        self.operator.start()
        await wait_until(self.operator_answered, timeout=30,
                         what="the fallback queue connects the caller to the operator")


@asynccontextmanager
async def service_killed_while_a_caller_is_on_hold(tmp_path: Path, *, talk_ms: int,
                                                   ) -> AsyncIterator[KilledWhileOnHold]:
    """The caller presses 1 (sales, whose only agent is logged out: they wait on hold); the
    service dies; once the fallback queue connects them, the operator talks for ``talk_ms``
    and hangs up (the operator ends it, so a slow restart never cuts the test short)."""
    operator_port = free_port()
    agents = [phone_agent("agent1", operator_port, queues=["operator"]),
              phone_agent("agent3", free_port(), queues=["sales"], logged_in=False)]
    settings = sandbox_settings(tmp_path, agents=agents, queues=QUEUES)
    call = SippProcess(caller_scenario(CallerPlan(dtmf=((MENU_DIGIT_MS, "1"),),
                                                  max_call_ms=150_000)),
                       remote=("127.0.0.1", settings.asterisk.sip_port),
                       service=settings.ivr.number, name="caller")
    operator = SippProcess(agent_scenario(AgentPlan(answer_after_ms=500,
                                                    hangup_after_ms=talk_ms)),
                           port=operator_port, name="agent1")
    first, restarted = ServiceProcess(settings), ServiceProcess(settings)
    with running_asterisk(settings) as sandbox:
        async with AsyncExitStack() as stop_by_pid:
            for phone in (call, operator):
                stop_by_pid.callback(phone.cleanup)  # runs last: after the stops below
            for process in (call, operator, first, restarted):
                stop_by_pid.callback(process.stop)
            await first.start().wait_up(30)
            engine = create_engine(settings.database_url)
            stop_by_pid.push_async_callback(engine.dispose)
            calls = CallRepository(session_factory(engine))
            events = await stop_by_pid.enter_async_context(ami_events(settings))
            call.start()
            await wait_until(lambda: _waits_in_sales(calls), timeout=30,
                             what="the stored record shows the caller waiting in sales")
            waiting = await stored_call(calls)
            assert waiting is not None and waiting.channel, waiting
            await music_on_hold(events, waiting.channel)  # on hold, music playing
            first.kill()
            yield KilledWhileOnHold(sandbox, calls, call, operator, restarted, time.time())


@pytest.mark.parametrize("restart", ["before the operator answers",
                                     "while the caller talks to the operator"])
async def test_service_killed_caller_on_hold_reaches_the_fallback_operator_and_the_record_closes(
        tmp_path, restart):
    """The dialplan's fallback queue takes the caller to the operator; the restarted service
    adopts the open record, keeps it open while the caller is on the line, and closes it,
    answered by the operator, when the caller hangs up."""
    async with service_killed_while_a_caller_is_on_hold(tmp_path, talk_ms=20_000) as scene:
        if restart == "before the operator answers":
            await scene.restarted.start().wait_up(30)
            await scene.fallback_connects_the_operator()
        else:
            await scene.fallback_connects_the_operator()
            await scene.restarted.start().wait_up(30)
        assert scene.call.running(), "the caller left before the restarted service was checked"
        await asyncio.sleep(1)  # the restarted service has reconciled with its snapshot by now
        still_open = await stored_call(scene.calls)
        assert still_open is not None and still_open.is_open, (
            f"the caller is still on the line, yet the record was closed: {still_open}")

        caller_result, agent_result = await asyncio.gather(finished(scene.call),
                                                           finished(scene.operator))
        hung_up_at = time.time()
        [record] = await closed_calls(scene.calls, 1)
        log = scene.sandbox.messages_log.read_text()
        service_log = scene.restarted.output()

    assert "Playing 'callcenter/sorry-fallback." in log, "the fallback dialplan did not run"
    assert caller_result.ended_by == "them"
    assert agent_result.names() == ["invite", "answered", "local-bye"]
    assert [(s.node, s.input) for s in record.ivr_path] == [
        DEMO_HOURS_OPEN, ("welcome", None), ("main_menu", "1")]
    assert scene.killed_at < record.ended_at <= hung_up_at
    assert record.disposition is Disposition.ANSWERED, (record, service_log[-3000:])
    assert record.agent_id == "agent1"
    # Without the call handler, AMI alone cannot tell who ended a talk.
    assert record.hangup_by in (HangupBy.CALLER, HangupBy.UNKNOWN)
    real_talk = talk_seconds_measured_by(agent_result)
    assert abs(record.talk_seconds - real_talk) < 1.5, (record.talk_seconds, real_talk)


async def test_service_killed_and_restarted_after_the_call_ended_completes_the_record_it_left_open(
        tmp_path):
    """The caller talks to the operator through the fallback and hangs up while the service is
    still down: the restarted service completes the adopted record from Asterisk's own
    channel event log (exact times, the operator's answer), not as a second record."""
    async with service_killed_while_a_caller_is_on_hold(tmp_path, talk_ms=3000) as scene:
        await scene.fallback_connects_the_operator()
        caller_result, agent_result = await asyncio.gather(finished(scene.call),
                                                           finished(scene.operator))
        hung_up_at = time.time()
        left_open = await stored_call(scene.calls)
        assert left_open is not None and left_open.is_open, left_open
        await scene.restarted.start().wait_up(30)
        [record] = await closed_calls(scene.calls, 1, timeout=10)

    assert caller_result.ended_by == "them"
    assert (record.call_id, record.protocol) == (left_open.call_id, left_open.protocol)
    assert scene.killed_at < record.ended_at <= hung_up_at
    assert record.source is RecordSource.SERVICE_AND_ASTERISK and record.note
    assert record.disposition is Disposition.ANSWERED and record.agent_id == "agent1"
    assert record.hangup_by is HangupBy.AGENT  # the operator's phone sent the BYE
    real_talk = talk_seconds_measured_by(agent_result)
    assert abs(record.talk_seconds - real_talk) < 1.0, (record.talk_seconds, real_talk)
    # Sales had nobody at work: the fallback sent the caller on to the operator queue.
    assert record.queue == "operator" and record.queued_at == left_open.queued_at


# --------------------------------------------------------------------------- killed in an outage


def spooled_records(settings: Settings) -> list[CallRecord]:
    """The records the service's spool holds and the database has not acknowledged."""
    path = settings.data_path / SPOOL_FILE
    book = SpoolBook()
    book.load(decode(path.read_bytes()).entries if path.exists() else [])
    return [record_from_json(entry.record) for entry in book.live()]


async def test_service_killed_during_a_database_outage_stores_every_call_once_after_restart(
        tmp_path):
    """Calls end while PostgreSQL is stopped; the service is SIGKILLed; PostgreSQL and then
    the service start again: every call SIPp made is stored, each exactly once."""
    outage_calls = 4
    with running_postgres() as server, server.fresh_database() as url:
        database = await StoppablePostgres.of(server)
        settings = sandbox_settings(tmp_path, queues=QUEUES,
                                    env={"CALLCENTER_DATABASE__URL": url})
        first, restarted = ServiceProcess(settings), ServiceProcess(settings)

        def callers(count: int) -> SippProcess:
            # Each hangs up during the greeting: a whole call in about a second.
            return SippProcess(caller_scenario(CallerPlan(hangup_after_ms=1200)),
                               remote=("127.0.0.1", settings.asterisk.sip_port),
                               service=settings.ivr.number, calls=count, rate=2, limit=count,
                               name="callers")

        before, during = callers(1), callers(outage_calls)
        engine = create_engine(url)
        calls = CallRepository(session_factory(engine))
        try:
            with running_asterisk(settings):
                async with AsyncExitStack() as stop_by_pid:
                    stop_by_pid.push_async_callback(engine.dispose)
                    for process in (before, during, first, restarted):
                        stop_by_pid.callback(process.stop)
                    stop_by_pid.callback(before.cleanup)
                    stop_by_pid.callback(during.cleanup)
                    await first.start().wait_up(30)
                    before_result = await finished(before.start())
                    await closed_calls(calls, 1)  # stored the ordinary way, acknowledged

                    await asyncio.to_thread(database.stop)
                    await wait_for_health(settings, part_is("database", "down"), timeout=10,
                                          what='database "down" while PostgreSQL is stopped')
                    during_result = await finished(during.start())
                    await wait_until(
                        lambda: len(spooled_records(settings)) == outage_calls
                        and all(not r.is_open for r in spooled_records(settings)),
                        timeout=15, what="the closed records of the outage's calls spooled")
                    first.kill()
                    assert not first.running()

                    await asyncio.to_thread(database.start)
                    await restarted.start().wait_up(60)
                    stored = await closed_calls(calls, 1 + outage_calls)
                    await wait_until(lambda: spooled_records(settings) == [], timeout=10,
                                     what="the restarted service acknowledges the replay")
                    _, total = await calls.list()
                    service_log = restarted.output()
        finally:
            if not database.running:
                database.start()

    made = before_result.successful + during_result.successful
    assert made == 1 + outage_calls, (before_result.describe(), during_result.describe())
    assert total == made, stored
    assert len({record.call_id for record in stored}) == made
    assert all(record.disposition is Disposition.ABANDONED_IN_IVR for record in stored), stored
    assert all(record.hangup_by is HangupBy.CALLER for record in stored), stored
    assert f"{outage_calls} call records from an earlier run to store" in service_log
