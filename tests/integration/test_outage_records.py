"""Calls while the service is down get a record, once: on real Asterisk and SIPp, with the
service as a process that is SIGKILLed, restarted, stopped and killed again.

Asterisk logs every channel's events into its own SQLite file meanwhile (cel.conf,
cel_sqlite3_custom.conf); each start of the service imports what it missed. The calls are
counted against SIPp's own counts: every caller SIPp placed has exactly one record, and
every call an agent's phone answered is a record answered by that agent.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack

import aiohttp
import pytest

from callcenter.core.records import CallRecord, Disposition, HangupBy, RecordSource
from callcenter.features.accounts.store import ADMIN_PASSWORD_FILE
from callcenter.features.calls.store import CallRepository
from callcenter.store.db import create_engine, session_factory
from tests.support.asterisk import phone_agent, running_asterisk, sandbox_settings
from tests.support.calls import QUEUES, finished, prompt_seconds, until
from tests.support.service_process import ServiceProcess
from tests.support.sipp import (
    AgentPlan,
    CallerPlan,
    SippProcess,
    agent_scenario,
    caller_scenario,
    free_port,
)

pytestmark = pytest.mark.asterisk

APOLOGY_S = prompt_seconds("sorry-fallback")


async def stored_calls(calls: CallRepository) -> dict[str, CallRecord]:
    records, total = await calls.list(limit=500)
    # The page and the count are two reads: a call stored between them is counted, not shown.
    assert total >= len(records)
    return {record.call_id: record for record in records}


async def calls_over_http(settings, password: str) -> list[dict]:
    """``GET /api/calls`` as the admin sees it."""
    base = f"http://{settings.service.http_host}:{settings.service.http_port}"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(f"{base}/api/login",
                             json={"username": "admin", "password": password}) as answer:
            assert answer.status == 200, await answer.text()
        async with http.get(f"{base}/api/calls", params={"limit": "500"}) as answer:
            assert answer.status == 200, await answer.text()
            return (await answer.json())["calls"]


async def test_calls_during_an_outage_are_recorded_once_each_counted_against_sipp(tmp_path):
    """A starts in the IVR before the kill and ends in the fallback; B (hangs up during the
    apology) and C (talks to an operator) start and end during the outage; D starts during
    it and is still talking when the service comes back. Then the service is stopped and
    started, killed and started: the records stay exactly as they were."""
    phone_ports = free_port(), free_port()
    agents = [phone_agent(f"agent{n}", port, queues=["operator"])
              for n, port in enumerate(phone_ports, start=1)]
    settings = sandbox_settings(tmp_path, agents=agents, queues=QUEUES)
    sip = ("127.0.0.1", settings.asterisk.sip_port)

    def caller(name: str, hangup_after_s: float) -> SippProcess:
        plan = CallerPlan(hangup_after_ms=int(hangup_after_s * 1000), max_call_ms=90_000)
        return SippProcess(caller_scenario(plan), remote=sip, service=settings.ivr.number,
                           name=name)

    # The agents' phones answer every call after 0.5 s; the callers hang up.
    phones = [SippProcess(agent_scenario(AgentPlan(answer_after_ms=500)), port=port,
                          calls=4, name=f"agent{n}")
              for n, port in enumerate(phone_ports, start=1)]
    a = caller("a", 3 + APOLOGY_S + 10)
    b = caller("b", 2.5)
    c = caller("c", APOLOGY_S + 6)
    d = caller("d", APOLOGY_S + 30)
    services = [ServiceProcess(settings) for _ in range(4)]

    with running_asterisk(settings) as sandbox:
        async with AsyncExitStack() as stop_by_pid:
            for process in (*phones, a, b, c, d):
                stop_by_pid.callback(process.cleanup)
            for process in (*phones, a, b, c, d, *services):
                stop_by_pid.callback(process.stop)
            engine = create_engine(settings.database_url)
            stop_by_pid.push_async_callback(engine.dispose)
            for phone in phones:
                phone.start()
            first, second, third, fourth = services
            await first.start().wait_up(30)
            calls = CallRepository(session_factory(engine))

            a.start()
            left_open = await until(lambda: _one_open_call(calls),
                                    "the service stored A's open record")
            first.kill()
            killed_at = time.time()

            b.start()
            c.start()
            await finished(b)
            d.start()
            await asyncio.gather(finished(a), finished(c))
            assert d.running(), "D should still be on the line when the service comes back"
            assert sandbox.pid() is not None
            restarted_at = time.time()
            await second.start().wait_up(30)
            still_open = await until(lambda: _open_asterisk_record(calls),
                                     "D's record, open, imported from Asterisk's log")
            assert d.running(), "D hung up before the restarted service was checked"

            await finished(d)
            d_ended_at = time.time()
            records = await until(lambda: _all_closed(calls, 4), "four closed records")
            password = (settings.data_path / ADMIN_PASSWORD_FILE).read_text().strip()
            over_http = await calls_over_http(settings, password)

            second.stop()  # a clean stop, then a crash: the records stay as they were
            await third.start().wait_up(30)
            after_restart = await stored_calls(calls)
            third.kill()
            await fourth.start().wait_up(30)
            after_crash = await stored_calls(calls)
            phone_results = [phone.stop() for phone in phones]
            service_log = second.output()

    callers = {name: process.result() for name, process in zip("abcd", (a, b, c, d),
                                                                   strict=True)}
    # SIPp's own count: every call it placed succeeded, and each has one record.
    assert all((r.successful, r.failed) == (1, 0) for r in callers.values()), callers
    assert len(records) == sum(r.successful for r in callers.values()) == 4
    assert sorted(call["call_id"] for call in over_http) == sorted(records)
    answered_by_phones = sum(r.names().count("answered") for r in phone_results if r)
    answered = [r for r in records.values() if r.disposition is Disposition.ANSWERED]
    assert len(answered) == answered_by_phones == 3, (answered, phone_results)
    # Restarting twice recorded nothing again and changed nothing.
    assert after_restart == after_crash == records, service_log[-3000:]

    by_start = sorted(records.values(), key=lambda r: r.started_at)
    rec_a, *during = by_start
    [rec_b] = [r for r in during if r.disposition is Disposition.ABANDONED_IN_IVR]
    rec_c, rec_d = sorted((r for r in during if r is not rec_b), key=lambda r: r.ended_at)

    # A: the service's record (the protocol number the caller was told), completed from the
    # log, not recorded a second time.
    assert rec_a.started_at < killed_at < rec_a.ended_at < restarted_at
    assert rec_a.source is RecordSource.SERVICE_AND_ASTERISK, rec_a
    assert (rec_a.call_id, rec_a.protocol) == (left_open.call_id, left_open.protocol)
    assert rec_a.queue == "operator" and rec_a.agent_id in ("agent1", "agent2")
    assert rec_a.disposition is Disposition.ANSWERED and rec_a.hangup_by is HangupBy.CALLER
    assert rec_a.talk_seconds and rec_a.talk_seconds > 5

    # B and C: only Asterisk saw them.
    for record in (rec_b, rec_c):
        assert killed_at < record.started_at < record.ended_at < restarted_at
        assert record.source is RecordSource.ASTERISK and record.note, record
        assert record.protocol and record.caller_number == "5551234"
    assert rec_b.hangup_by is HangupBy.CALLER and rec_b.queue is None
    assert abs((rec_b.ended_at - rec_b.started_at) - 2.5) < 1.0
    assert rec_c.disposition is Disposition.ANSWERED and rec_c.queue == "operator"
    assert rec_c.hangup_by is HangupBy.CALLER and rec_c.agent_answered_at is not None
    assert abs(rec_c.talk_seconds - (rec_c.ended_at - rec_c.agent_answered_at)) < 0.01

    # D: begun from the log, followed live by the restarted service until it ended.
    assert still_open.call_id == rec_d.call_id and still_open.is_open
    assert killed_at < rec_d.started_at < restarted_at < rec_d.ended_at <= d_ended_at
    assert rec_d.source is RecordSource.ASTERISK
    assert rec_d.disposition is Disposition.ANSWERED and rec_d.agent_id in ("agent1", "agent2")


async def _one_open_call(calls: CallRepository) -> CallRecord | None:
    records = list((await stored_calls(calls)).values())
    return records[0] if len(records) == 1 and records[0].is_open else None


async def _open_asterisk_record(calls: CallRepository) -> CallRecord | None:
    records = await stored_calls(calls)
    return next((r for r in records.values()
                 if r.is_open and r.source is RecordSource.ASTERISK), None)


async def _all_closed(calls: CallRepository, count: int) -> dict[str, CallRecord] | None:
    records = await stored_calls(calls)
    if len(records) == count and not any(r.is_open for r in records.values()):
        return records
    return None

