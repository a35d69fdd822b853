"""Least privilege toward Asterisk, on the real Asterisk 22 and the real service.

A forged FastAGI session (anyone who reaches the service's FastAGI port) changes no agent's
state without the secret the dialplan's AGI URLs carry; and a callback Originate whose AMI
connection is cut while the customer's phone rings rings them exactly once.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from callcenter.app import CallCenter
from callcenter.asterisk.sandbox import Sandbox
from callcenter.core.acd_actions import AgentState
from callcenter.core.records import CallbackRequest, CallbackStatus
from tests.integration.test_virtual_hold import CALLER_NUMBER, QUEUES, carrier, eventually
from tests.support.asterisk import phone_agent
from tests.support.calls import (
    agent_dials,
    call_center,
    finished,
    prompt_seconds,
)
from tests.support.sipp import AgentPlan, CallerPlan, free_port
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.asterisk

GUARD = 10.0  # seconds a step may take before the test fails: never a pause


async def forged_session(center: CallCenter, path: str, *args: str) -> list[str]:
    """Play Asterisk's side of a FastAGI session for agent1's phone, asking ``path``;
    answer every command with success. The commands the service sent, until it closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", center.agi.port)
    lines = ["agi_network: yes", f"agi_network_script: {path}",
             f"agi_request: agi://127.0.0.1:{center.agi.port}/{path}",
             "agi_channel: PJSIP/agent1-000000aa", "agi_uniqueid: 1790000000.77",
             "agi_callerid: agent1", "agi_context: agents", "agi_extension: *54",
             *(f"agi_arg_{i}: {arg}" for i, arg in enumerate(args, start=1))]
    writer.write(("\n".join(lines) + "\n\n").encode())
    await writer.drain()
    commands: list[str] = []
    try:
        while line := await asyncio.wait_for(reader.readline(), GUARD):
            commands.append(line.decode().strip())
            writer.write(b"200 result=0\n")
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()
    return commands


async def test_a_forged_fastagi_session_without_the_secret_logs_no_agent_out(tmp_path):
    agents = [phone_agent("agent1", free_port(), queues=["operator"], logged_in=True)]
    async with call_center(tmp_path, agents) as center:
        secret = center.settings.service.agi_secret
        assert center.acd.acd.agent_state("agent1") is AgentState.READY
        # The last character changed to one it is not (a secret may itself end in "x").
        wrong_last = "y" if secret.endswith("x") else "x"
        for path in ("agent", f"{secret[:-1]}{wrong_last}/agent", f"{secret}x/agent"):
            assert await forged_session(center, path, "logout") == [], path
        assert center.acd.acd.agent_state("agent1") is AgentState.READY
        # The same session with the dialplan's secret is served: the refusal above is the
        # secret's doing, nothing else.
        served = await forged_session(center, f"{secret}/agent", "logout")
        assert served, "the service sent no command to a session with the secret"
        assert center.acd.acd.agent_state("agent1") is AgentState.LOGGED_OUT


def originates_counted(center: CallCenter) -> list[dict[str, Any]]:
    """Every Originate the service sends from now on (the dialer calls ``center.ami.send``
    at each use, so wrapping the method sees them all)."""
    sent: list[dict[str, Any]] = []
    original = center.ami.send

    async def send(action: Any, **options: Any) -> Any:
        if action.get("Action") == "Originate":
            sent.append(dict(action))
        return await original(action, **options)

    center.ami.send = send  # type: ignore[method-assign]
    return sent


async def test_a_callback_whose_ami_is_cut_while_the_customer_rings_rings_them_once(tmp_path):
    carrier_port = free_port()
    env = {
        "CALLCENTER_OUTBOUND__TRUNK_HOST": f"127.0.0.1:{carrier_port}",
        "CALLCENTER_OUTBOUND__TRUNK_MATCH": f"127.0.0.1:{carrier_port}",
        "CALLCENTER_OUTBOUND__CALLER_ID": "+551130000000",
        "CALLCENTER_OUTBOUND__EXTENSION_PATTERNS": "555XXXX",
        "CALLCENTER_OUTBOUND__DIAL_TIMEOUT": "20",
    }
    agents = [phone_agent("agent1", free_port(), queues=["support"], logged_in=False,
                          password="agent1-secret")]
    proxy = TcpProxy("127.0.0.1", 0)
    async with call_center(tmp_path, agents, ami_via=proxy, env=env, queues=QUEUES) as center:
        nailed = agent_dials(center, "agent1", None, "*50",
                             CallerPlan(hangup_after_ms=40_000, max_call_ms=80_000))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while center.desk.nailed_channel("agent1") is None:
            assert loop.time() < deadline, "agent1 never got nailed up"
            await asyncio.sleep(0.1)
        originates = originates_counted(center)
        talk_ms = int(prompt_seconds("callback-connecting") * 1000) + 3000
        # The customer's phone rings 8 s: long enough for AMI to be cut and come back.
        customer = carrier(carrier_port, AgentPlan(answer_after_ms=8000,
                                                   hangup_after_ms=talk_ms))
        request = await center.callback_dialer.add(CallbackRequest(
            call_id="an-ivr-call", queue="support", number=CALLER_NUMBER,
            requested_at=center.clock.now(), flow="main"))

        async def ringing() -> bool:
            channels = await center.ami.core_show_channels()
            return any(c.uniqueid.endswith("-1") and c.uniqueid.startswith("cb")
                       for c in channels)

        await eventually(center, ringing, "the callback's Originate is under way", 15)
        proxy.cut()  # its OriginateResponse can no longer arrive
        customer_result = await finished(customer, 60)

        async def done() -> bool:
            stored = await center.callbacks.get(request.id)
            return stored is not None and stored.status is CallbackStatus.DONE

        await eventually(center, done, "the callback request is done", 30)
        assert center.ami.connected, "the AMI client did not reconnect"
        assert nailed.running()  # the nailed-up agent's line is ended by sipp_cleanup

    log = "".join(p.read_text(errors="replace")
                  for p in customer.workdir.glob("*_messages.log"))
    invites = set(re.findall(r"^INVITE sip:.*?^Call-ID: *([^\r\n]+)$", log,
                             re.MULTILINE | re.DOTALL))
    assert customer_result.names() == ["invite", "answered", "local-bye"], \
        customer_result.describe()
    assert len(invites) == 1, invites
    assert len(originates) == 1, originates


async def test_an_agent_added_while_running_reaches_asterisk_without_the_ami_system_right(
        tmp_path):
    agents = [phone_agent("agent1", free_port(), queues=["operator"])]
    async with call_center(tmp_path, agents) as center:
        sandbox = Sandbox(center.settings)
        assert "Unable to find object dave" in sandbox.cli("pjsip show endpoint dave")
        change = await center.agent_admin.create("dave", "Dave Roy", queues={"operator": 0})
        assert change.warnings == ()
        # res_pjsip.so and app_queue.so were reloaded through the sandbox's console.
        assert "Endpoint:  dave" in sandbox.cli("pjsip show endpoint dave")
        assert "PJSIP/dave" in sandbox.cli("queue show operator")
