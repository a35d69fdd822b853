"""Virtual hold on a real Asterisk 22: a caller waiting in a queue with no agent presses 1 and
hangs up; when an agent logs in, the service rings the agent (a SIPp phone), then calls the
caller's number through the outbound trunk (a SIPp carrier playing the customer) and
connects them. The callback request ends done and the call is on record, linked to the call
that asked and carrying the customer's whole wait. A caller whose number the [outbound]
rules refuse is not offered the callback: the log says why, and the queue's live view
counts them."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from callcenter.app import CallCenter
from callcenter.core.records import (
    CallbackRequest,
    CallbackStatus,
    CallRecord,
    Disposition,
    HangupBy,
)
from callcenter.features.accounts.store import Role
from tests.support.asterisk import phone_agent, running_asterisk, sandbox_settings
from tests.support.calls import (
    MENU_DIGIT_MS,
    agent_dials,
    agent_phone,
    caller,
    finished,
    prompt_seconds,
    the_only_closed_call,
    until,
)
from tests.support.sipp import AgentPlan, CallerPlan, SippProcess, agent_scenario, free_port
from tests.support.web import bearer_headers

pytestmark = pytest.mark.asterisk

OUR_NUMBER = "+551130000000"
CALLER_NUMBER = "5551234"  # the SIPp caller's own number: an extension the rules allow
QUEUES = ({"name": "sales"}, {"name": "support", "ring_timeout": 10, "offer_callback": True},
          {"name": "operator"})


@asynccontextmanager
async def call_center_with_trunk(tmp_path: Path, carrier_port: int,
                                 agents: list[dict[str, Any]]) -> AsyncIterator[CallCenter]:
    env = {
        "CALLCENTER_OUTBOUND__TRUNK_HOST": f"127.0.0.1:{carrier_port}",
        "CALLCENTER_OUTBOUND__TRUNK_MATCH": f"127.0.0.1:{carrier_port}",
        "CALLCENTER_OUTBOUND__CALLER_ID": OUR_NUMBER,
        "CALLCENTER_OUTBOUND__EXTENSION_PATTERNS": "555XXXX",
        "CALLCENTER_OUTBOUND__DIAL_TIMEOUT": "10",
    }
    settings = sandbox_settings(tmp_path, agents=agents, queues=QUEUES, env=env)
    with running_asterisk(settings):
        center = CallCenter(settings)
        await center.start()
        try:
            await center.ami.wait_ready(30)
            yield center
        finally:
            await center.stop()


def carrier(port: int, plan: AgentPlan) -> SippProcess:
    """The carrier behind the trunk; ``-trace_msg`` keeps the SIP messages it saw."""
    return SippProcess(agent_scenario(plan), port=port, name="carrier",
                       extra_args=["-trace_msg"]).start()


def invite_received(process: SippProcess) -> tuple[str, str]:
    """(user of the Request-URI, From header) of the first INVITE the carrier got."""
    log = "".join(p.read_text(errors="replace") for p in process.workdir.glob("*_messages.log"))
    found = re.search(r"^INVITE sip:([^@ ]+)@\S+ SIP/2\.0$.*?^From: ([^\r\n]*)$", log,
                      re.MULTILINE | re.DOTALL)
    assert found, f"the carrier got no INVITE:\n{log[-3000:]}"
    return found.group(1), found.group(2)


async def eventually(center: CallCenter, check, what: str, timeout: float = 20):  # type: ignore[no-untyped-def]
    """Poll ``await check()`` until it returns something true; return it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        await center.writer.flush(timeout)
        found = await check()
        if found:
            return found
        assert loop.time() < deadline, f"never happened within {timeout} s: {what}"
        await asyncio.sleep(0.2)


def ringing_agent(port: int) -> list[dict[str, Any]]:
    return [phone_agent("agent2", port, queues=["support"], logged_in=False)]


async def test_a_caller_who_presses_1_is_called_back_when_an_agent_is_free(tmp_path):
    agent_port, carrier_port = free_port(), free_port()
    async with call_center_with_trunk(tmp_path, carrier_port,
                                      ringing_agent(agent_port)) as center:
        # Nobody serves support yet: the caller waits, presses 1, hears it is registered and
        # is hung up by us.
        wait_ms = int(prompt_seconds("please-hold") * 1000) + 2000
        loop = asyncio.get_running_loop()
        caller_started = loop.time()
        call = caller(center, CallerPlan(dtmf=((MENU_DIGIT_MS, "2"), (wait_ms, "1")),
                                         max_call_ms=60_000))
        caller_result = await finished(call)
        assert caller_result.ended_by == "them"
        ([request], total) = await center.callbacks.list()
        assert total == 1
        assert (request.flow, request.queue, request.number, request.status) == (
            "virtual-hold", "support", CALLER_NUMBER, CallbackStatus.PENDING)
        assert center.callback_dialer.holding() == [request.id]
        assert center.acd.acd.waiting("support") == [f"callback-{request.id}"]

        # The agent logs in: the service rings the agent first, then the customer.
        talk_ms = int(prompt_seconds("callback-connecting") * 1000) + 3000
        phone = agent_phone("agent2", agent_port, AgentPlan(answer_after_ms=1000))
        phone_started = loop.time()
        customer = carrier(carrier_port, AgentPlan(answer_after_ms=500,
                                                   hangup_after_ms=talk_ms))
        customer_started = loop.time()
        center.desk.request("agent2", "login")
        customer_result, phone_result = await asyncio.gather(finished(customer),
                                                             finished(phone))
        user, from_header = invite_received(customer)

        async def request_done():  # type: ignore[no-untyped-def]
            stored = await center.callbacks.get(request.id)
            return stored if stored.status is not CallbackStatus.PENDING else None

        settled = await eventually(center, request_done, "the request settled")

        async def callback_record() -> CallRecord | None:
            records, _ = await center.calls.list()
            return next((r for r in records if (r.note or "").startswith("callback request")
                         and not r.is_open), None)

        record = await eventually(center, callback_record, "the callback's record closed")
        original = next(r for r in (await center.calls.list())[0]
                        if r.call_id == request.call_id)
        linked, _ = await center.calls.list(callback_request=request.id)

    assert settled.status is CallbackStatus.DONE
    assert phone_result.names() == ["invite", "answered", "remote-bye"], phone_result.describe()
    assert customer_result.names() == ["invite", "answered", "local-bye"]
    at = {e.name: e.at_ms / 1000 for e in phone_result.events}
    customer_at = {e.name: e.at_ms / 1000 for e in customer_result.events}
    # The customer's phone rang only after the agent had answered (they ring 1 s first).
    assert customer_started + customer_at["invite"] > phone_started + at["answered"] - 0.5
    assert user == CALLER_NUMBER
    assert f"<sip:{OUR_NUMBER}@" in from_header  # the customer sees the call center's number
    assert record.disposition is Disposition.ANSWERED
    assert (record.queue, record.agent_id, record.caller_number) == (
        "support", "agent2", CALLER_NUMBER)
    assert record.hangup_by is HangupBy.CALLER  # the customer hung up first
    real_talk = (customer_at["local-bye"] - customer_at["answered"])
    assert abs(record.talk_seconds - real_talk) < 1.0, (record.talk_seconds, real_talk)
    assert record.note == f"callback request {request.id} of call {request.call_id}"
    assert center.acd.acd.waiting("support") == []
    # The caller who asked to be called back did not abandon: their first call says so.
    assert original.disposition is Disposition.CALLBACK_REQUESTED, original

    # The two records are linked both ways through the request.
    assert (record.callback_of, record.callback_request_id) == (original.call_id, request.id)
    assert original.callback_request_id == request.id and original.callback_of is None
    assert {r.call_id for r in linked} == {original.call_id, record.call_id}
    # The callback's wait is the customer's whole wait: from when they first queued on their
    # own call to when the callback put them through, as SIPp lived it (the caller's key 2,
    # on its clock, to the carrier's answer, on its own), not the callback's few seconds.
    caller_at = {e.name: e.at_ms / 1000 for e in caller_result.events}
    lived = ((customer_started + customer_at["answered"])
             - (caller_started + caller_at["dtmf 2"]))
    assert -0.5 < lived - record.wait_seconds < 2.0, (record.wait_seconds, lived)
    assert request.queued_at == original.queued_at
    assert record.queued_at == original.queued_at
    assert abs(record.wait_seconds - (record.agent_answered_at - original.queued_at)) < 0.01
    # Counted once: the first call's part of it is inside the callback's wait.
    assert original.wait_seconds < record.wait_seconds


async def test_an_ivr_request_whose_customer_is_busy_frees_the_agent_and_stays_pending(
        tmp_path):
    agent_port, carrier_port = free_port(), free_port()
    async with call_center_with_trunk(tmp_path, carrier_port,
                                      ringing_agent(agent_port)) as center:
        phone = agent_phone("agent2", agent_port, AgentPlan(answer_after_ms=500))
        customer = carrier(carrier_port, AgentPlan(busy=True))
        center.desk.request("agent2", "login")
        # The IVR's callback step stores its requests through the dialer: in line at once.
        request = await center.callback_dialer.add(CallbackRequest(
            call_id="an-ivr-call", queue="support", number=CALLER_NUMBER,
            requested_at=center.clock.now(), flow="main"))
        customer_result, phone_result = await asyncio.gather(finished(customer),
                                                             finished(phone))

        async def failed_record() -> CallRecord | None:
            records, _ = await center.calls.list()
            return next((r for r in records if not r.is_open), None)

        record = await eventually(center, failed_record, "the callback's record closed")
        stored = await center.callbacks.get(request.id)
        state = center.acd.acd.agent("agent2")

    assert phone_result.names() == ["invite", "answered", "remote-bye"], phone_result.describe()
    assert customer_result.names() == ["invite", "busy"], customer_result.describe()
    # The agent answered, so no RONA: ready for the next call; the customer is out of line
    # until the retry, and the request still waits to be called back.
    assert (state.state.value, state.reason) == ("ready", "callback not answered")
    assert stored is not None and stored.status is CallbackStatus.PENDING
    assert center.callback_dialer.holding() == [request.id]
    assert center.acd.acd.waiting("support") == []
    assert record.disposition is Disposition.FAILED
    assert record.note == (f"callback request {request.id}: {CALLER_NUMBER} did not answer "
                           "(BUSY)")


async def test_a_nailed_up_agent_gets_the_customer_joined_without_ringing(tmp_path):
    carrier_port = free_port()
    # A static contact, so the ACD sees the phone reachable; nothing listens there: the
    # phone logs in nailed-up by dialling *50 and is never rung.
    agents = [phone_agent("agent1", free_port(), queues=["support"], logged_in=False,
                          password="agent1-secret")]
    async with call_center_with_trunk(tmp_path, carrier_port, agents) as center:
        nailed = agent_dials(center, "agent1", None, "*50",
                             CallerPlan(hangup_after_ms=25_000, max_call_ms=60_000))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while center.desk.nailed_channel("agent1") is None:
            assert loop.time() < deadline, "agent1 never got nailed up"
            await asyncio.sleep(0.1)
        talk_ms = int(prompt_seconds("callback-connecting") * 1000) + 3000
        customer = carrier(carrier_port, AgentPlan(answer_after_ms=500,
                                                   hangup_after_ms=talk_ms))
        request = await center.callback_dialer.add(CallbackRequest(
            call_id="an-ivr-call", queue="support", number=CALLER_NUMBER,
            requested_at=center.clock.now(), flow="main"))
        customer_result = await finished(customer)

        async def answered_record() -> CallRecord | None:
            records, _ = await center.calls.list()
            return next((r for r in records if not r.is_open), None)

        record = await eventually(center, answered_record, "the callback's record closed")
        stored = await center.callbacks.get(request.id)
        nailed_result = await finished(nailed, 60)

    assert customer_result.names() == ["invite", "answered", "local-bye"]
    assert nailed_result.names() == ["answered", "local-bye"], nailed_result.describe()
    assert stored is not None and stored.status is CallbackStatus.DONE
    assert record.disposition is Disposition.ANSWERED
    assert (record.agent_id, record.caller_number, record.hangup_by) == (
        "agent1", CALLER_NUMBER, HangupBy.CALLER)
    customer_at = {e.name: e.at_ms / 1000 for e in customer_result.events}
    real_talk = customer_at["local-bye"] - customer_at["answered"]
    assert abs(record.talk_seconds - real_talk) < 1.0, (record.talk_seconds, real_talk)


REFUSED_NUMBER = "4441234"  # neither an extension the rules allow (555XXXX) nor E.164


async def queue_view(center: CallCenter, headers: dict[str, str], name: str) -> dict[str, Any]:
    """``GET /api/queues/{name}`` as a supervisor sees it."""
    service = center.settings.service
    url = f"http://{service.http_host}:{service.http_port}/api/queues/{name}"
    async with aiohttp.ClientSession(headers=headers) as http, http.get(url) as response:
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body


async def test_a_caller_whose_number_the_rules_refuse_gets_no_offer_and_is_counted(
        tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="callcenter.features.queues.waiting")
    agent_port, carrier_port = free_port(), free_port()
    async with call_center_with_trunk(tmp_path, carrier_port,
                                      ringing_agent(agent_port)) as center:
        events = center.events.subscribe(frozenset({"queue"}))
        headers = await bearer_headers(center.accounts, [Role.SUPERVISOR])
        # Nobody serves support: the caller waits, presses 1 (which does nothing for them),
        # waits on and hangs up.
        wait_ms = int(prompt_seconds("please-hold") * 1000) + 2000
        call = caller(center, CallerPlan(
            dtmf=((MENU_DIGIT_MS, "2"), (wait_ms, "1")),
            hangup_after_ms=MENU_DIGIT_MS + wait_ms + 3000, caller_number=REFUSED_NUMBER))

        async def counted_waiting() -> dict[str, Any] | None:
            view = await queue_view(center, headers, "support")
            return view if view["callbacks_not_offered"]["waiting"] == 1 else None

        while_waiting = await until(counted_waiting, "the waiting caller counted")
        caller_result = await finished(call)
        record = await the_only_closed_call(center)
        after = await queue_view(center, headers, "support")
        requests, total = await center.callbacks.list()
        published = []
        while events.pending:
            event = await events.get(0)
            assert event is not None
            published.append(event.data)
        events.close()

    assert caller_result.ended_by == "us"  # their 1 left them waiting; nobody hung up on them
    assert (requests, total) == ([], 0)
    assert record.disposition is Disposition.ABANDONED_IN_QUEUE
    assert record.callback_request_id is None
    reason = {"reason": "number_not_allowed", "text": "number not allowed by the outbound rules"}
    assert while_waiting["callbacks_not_offered"] == {
        "waiting": 1, "last_day": 1, "reasons": [{**reason, "waiting": 1, "last_day": 1}]}
    assert after["callbacks_not_offered"] == {
        "waiting": 0, "last_day": 1, "reasons": [{**reason, "waiting": 0, "last_day": 1}]}
    # The live events: counted as they joined, no longer waiting once they hung up.
    assert [(e["queue"], e["change"], e["call_id"], e["reason"],
             e["callbacks_not_offered"]["waiting"]) for e in published] == [
        ("support", "callbacks_not_offered", record.call_id, "number_not_allowed", 1),
        ("support", "callbacks_not_offered", record.call_id, None, 0)]
    # Said once, naming the queue, the reason and the rule.
    said = [r for r in caplog.records if "offers callbacks, but not" in r.getMessage()]
    assert [r.getMessage() for r in said] == [
        f"call {record.call_id}: queue support offers callbacks, but not to this caller: "
        f"number not allowed by the outbound rules (extension {REFUSED_NUMBER} matches none "
        "of outbound.extension_patterns (555XXXX))"]
    assert said[0].levelno == logging.INFO
