"""Supervisors listen, whisper and barge: the AMI action sent, who may ask, what is refused,
and the dialplan that carries it out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.asterisk.ami import AmiConnectionLost, AmiNotConnected
from callcenter.asterisk.confgen import extensions
from callcenter.config import Settings
from callcenter.features.accounts.store import AccountRepository, Role
from callcenter.features.agent_transfers.http import install_transfer_routes
from callcenter.features.agent_transfers.service import CallTransfers
from callcenter.features.supervision.dialplan import (
    SUPERVISION_CONTEXT,
    SUPERVISOR_RING_CONTEXT,
    SpyMode,
    spy_extension,
    supervision_contexts,
    supervisor_ring_channel,
)
from callcenter.features.supervision.http import install_supervision_routes
from callcenter.features.supervision.service import (
    AsteriskUnavailable,
    NoSuchAgent,
    NotOnCall,
    Supervision,
    SupervisionRefused,
)
from callcenter.web.app import WebServices, make_app
from tests.support.call_floor import CallFloor, call_floor
from tests.support.web import accounts_for, client_signed_as

# --------------------------------------------------------------------------- the service


def supervision(floor: CallFloor) -> Supervision:
    return Supervision(acd=floor.acd, send=floor.ami.send)


@pytest.mark.parametrize(("mode", "exten"), [(SpyMode.LISTEN, "spy-q-agent1"),
                                             (SpyMode.WHISPER, "spy-w-agent1"),
                                             (SpyMode.BARGE, "spy-b-agent1")])
async def test_the_supervisors_phone_is_originated_into_the_spy_extension_of_the_mode(mode, exten):
    floor = call_floor()
    floor.caller_talks_to("call-1", "agent1")

    started = await supervision(floor).start("agent1", mode, "sup1")

    assert floor.ami.sent == [{
        "Action": "Originate",
        "Channel": "Local/to-sup1@callcenter-supervision-ring/n",
        "Context": "callcenter-supervision",
        "Exten": exten,
        "Priority": 1,
        "Timeout": 30_000,
        "CallerID": f'"{mode.value} agent1" <agent1>',
        "Async": True,
    }]
    assert (started.agent_id, started.mode, started.phone, started.call_id) == (
        "agent1", mode, "sup1", "call-1")


async def test_an_agent_who_is_not_on_a_call_cannot_be_listened_to():
    floor = call_floor()
    floor.caller_waits("call-1", "operator")  # nobody serves operator but sup1, logged out

    with pytest.raises(NotOnCall, match=r"agent 'agent1' is not on a call \(they are ready\)"):
        await supervision(floor).start("agent1", "listen", "sup1")
    assert floor.ami.sent == []


async def test_an_unknown_agent_or_phone_is_refused_before_asterisk_is_asked():
    floor = call_floor()
    floor.caller_talks_to("call-1", "agent1")
    service = supervision(floor)

    with pytest.raises(NoSuchAgent, match="agent 'nobody': no such agent"):
        await service.start("nobody", "listen", "sup1")
    with pytest.raises(NoSuchAgent, match="phone 'desk9': no such phone"):
        await service.start("agent1", "listen", "desk9")
    with pytest.raises(NoSuchAgent, match="no such agent"):
        await service.start("Agent1;x", "listen", "sup1")
    with pytest.raises(SupervisionRefused, match="own phone"):
        await service.start("agent1", "barge", "agent1")
    with pytest.raises(ValueError, match="'shout'"):
        await service.start("agent1", "shout", "sup1")
    assert floor.ami.sent == []


async def test_asterisk_down_or_refusing_is_said_as_such():
    floor = call_floor()
    floor.caller_talks_to("call-1", "agent1")
    floor.ami.error = AmiNotConnected("not connected to AMI at 127.0.0.1:5038")
    with pytest.raises(AsteriskUnavailable, match="cannot be reached"):
        await supervision(floor).start("agent1", "listen", "sup1")
    floor.ami.error, floor.ami.refuse = None, "Originate failed"
    with pytest.raises(AsteriskUnavailable, match="refused to call phone 'sup1': Originate"):
        await supervision(floor).start("agent1", "listen", "sup1")


async def test_a_lost_answer_warns_that_the_phone_may_ring_rather_than_invite_a_retry():
    floor = call_floor()
    floor.caller_talks_to("call-1", "agent1")
    floor.ami.error = AmiConnectionLost("AMI connection lost before Originate answered")
    with pytest.raises(AsteriskUnavailable, match="'sup1' may ring all the same"):
        await supervision(floor).start("agent1", "listen", "sup1")
    floor.ami.error = AmiNotConnected("not connected to AMI")  # surely not sent
    with pytest.raises(AsteriskUnavailable) as refused:
        await supervision(floor).start("agent1", "listen", "sup1")
    assert "may ring" not in str(refused.value)


# --------------------------------------------------------------------------- the dialplan


def test_the_dialplan_rings_the_phone_then_spies_with_the_options_of_each_mode():
    ring, spy, _ = supervision_contexts("agi://127.0.0.1:4573", "callcenter-fallback")

    assert ring.splitlines()[4:] == [
        f"[{SUPERVISOR_RING_CONTEXT}]",
        # g: the ring half carries on when the supervisor hangs up, to end the spying half
        r"exten => _to-.,1,Dial(PJSIP/${FILTER(a-z0-9_\-,${EXTEN:3})},,g)",
        ' same => n,GotoIf($["${DIALSTATUS}" != "ANSWER"]?done)',
        r" same => n,Set(SPYING=${CUT(CHANNEL,\;,1)}\;1)",
        " same => n,Set(SPIED=${IMPORT(${SPYING},SPIED)})",
        " same => n,SoftHangup(${SPYING})",
        " same => n,Wait(0.5)",
        # ChanSpy stuck on a silent agent's channel lets go once the bridge mixes audio
        " same => n,Set(TIMEOUT(absolute)=2)",
        ' same => n,ExecIf($["${SPIED}" != ""]?BridgeAdd(${SPIED}))',
        " same => n(done),Hangup()",
    ]
    assert spy.splitlines()[2:] == [
        f"[{SUPERVISION_CONTEXT}]",
        r"exten => _spy-q-.,1,Set(SPIED=PJSIP/${FILTER(a-z0-9_\-,${EXTEN:6})}-)",
        " same => n,ChanSpy(${SPIED},qES)",
        " same => n,Hangup()",
        r"exten => _spy-w-.,1,Set(SPIED=PJSIP/${FILTER(a-z0-9_\-,${EXTEN:6})}-)",
        " same => n,ChanSpy(${SPIED},qESw)",
        " same => n,Hangup()",
        r"exten => _spy-b-.,1,Set(SPIED=PJSIP/${FILTER(a-z0-9_\-,${EXTEN:6})}-)",
        " same => n,ChanSpy(${SPIED},qESB)",
        " same => n,Hangup()",
    ]


def test_the_generated_extensions_file_holds_the_supervision_contexts():
    text = extensions(Settings())
    assert f"[{SUPERVISOR_RING_CONTEXT}]" in text
    assert f"[{SUPERVISION_CONTEXT}]" in text


def test_names_that_could_break_out_of_a_dial_string_never_reach_one():
    assert spy_extension(SpyMode.WHISPER, "agent-7") == "spy-w-agent-7"
    assert supervisor_ring_channel("sup1") == "Local/to-sup1@callcenter-supervision-ring/n"
    # a phone named like a special extension is still only a phone: h (hang-up) and e
    # (exception) run when a channel ends or times out, and must not ring anyone
    assert supervisor_ring_channel("h") == "Local/to-h@callcenter-supervision-ring/n"
    for bad in ("agent1&PJSIP/x", "Agent1", "a,b", "", "1agent"):
        with pytest.raises(ValueError, match="is not a name"):
            spy_extension(SpyMode.LISTEN, bad)
        with pytest.raises(ValueError, match="is not a name"):
            supervisor_ring_channel(bad)


# --------------------------------------------------------------------------- over HTTP


@dataclass
class Site:
    floor: CallFloor
    accounts: AccountRepository
    server: TestServer

    async def client(self, roles: tuple[Role, ...], *, agent_id: str | None = None,
                     username: str | None = None) -> TestClient:
        return await client_signed_as(self.server, self.accounts, roles, agent_id=agent_id,
                                      username=username)


@pytest.fixture
async def site(sqlite_sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Site]:
    accounts = accounts_for(sqlite_sessions)
    floor = call_floor()
    app = make_app(WebServices(None, None, accounts, floor.clock))  # type: ignore[arg-type]
    transfers = CallTransfers(settings=floor.settings, clock=floor.clock, acd=floor.acd,
                              queues=None, ledger=floor.ledger,  # type: ignore[arg-type]
                              writer=floor.writer, send=floor.ami.send, active={})
    install_supervision_routes(app, supervision(floor))
    install_transfer_routes(app, transfers)
    server = TestServer(app)
    await server.start_server()
    yield Site(floor, accounts, server)
    await server.close()


async def test_a_supervisor_listens_from_their_own_phone_by_default(site: Site):
    site.floor.caller_talks_to("call-1", "agent1")
    client = await site.client((Role.SUPERVISOR,), agent_id="sup1")
    response = await client.post("/api/supervision", json={"agent_id": "agent1",
                                                           "mode": "listen"})
    assert response.status == 202, await response.text()
    assert await response.json() == {"agent_id": "agent1", "mode": "listen", "phone": "sup1",
                                     "call_id": "call-1"}
    assert [a["Exten"] for a in site.floor.ami.sent] == ["spy-q-agent1"]


async def test_an_admin_names_the_phone_to_barge_from(site: Site):
    site.floor.caller_talks_to("call-1", "agent1")
    client = await site.client((Role.ADMIN,))
    response = await client.post("/api/supervision", json={"agent_id": "agent1",
                                                           "mode": "barge", "phone": "sup1"})
    assert response.status == 202, await response.text()
    assert site.floor.ami.sent[0]["Channel"] == "Local/to-sup1@callcenter-supervision-ring/n"
    assert site.floor.ami.sent[0]["Exten"] == "spy-b-agent1"


@pytest.mark.parametrize("roles", [(Role.AGENT,), (Role.CAMPAIGN_MANAGER,)])
async def test_agents_and_campaign_managers_may_not_listen(site: Site, roles):
    site.floor.caller_talks_to("call-1", "agent1")
    client = await site.client(roles, agent_id="agent2" if Role.AGENT in roles else None)
    response = await client.post("/api/supervision", json={"agent_id": "agent1",
                                                           "mode": "listen"})
    assert response.status == 403
    assert site.floor.ami.sent == []


async def test_unknown_agents_are_404_and_agents_without_a_call_409(site: Site):
    client = await site.client((Role.SUPERVISOR,), agent_id="sup1")
    response = await client.post("/api/supervision", json={"agent_id": "agent9",
                                                           "mode": "listen"})
    assert response.status == 404
    assert (await response.json())["error"] == "agent 'agent9': no such agent"
    response = await client.post("/api/supervision", json={"agent_id": "agent1",
                                                           "mode": "whisper"})
    assert response.status == 409
    assert "agent 'agent1' is not on a call (they are ready)" in (await response.json())["error"]
    assert site.floor.ami.sent == []


@pytest.mark.parametrize(("body", "error"), [
    ({"mode": "listen"}, "agent_id: is required"),
    ({"agent_id": "agent1"}, "mode: is required"),
    ({"agent_id": "agent1", "mode": "spy"}, "mode: expected one of listen, whisper, barge, "
                                            "got 'spy'"),
    ({"agent_id": 7, "mode": "listen"}, "agent_id: expected an agent id, got a number"),
    ({"agent_id": "Agent 1", "mode": "listen"}, "agent_id: 'Agent 1' is not an agent id"),
    ({"agent_id": "agent1", "mode": "listen", "phone": "sip:x@y"},
     "phone: 'sip:x@y' is not a phone endpoint name"),
    ({"agent_id": "agent1", "mode": "listen", "volume": 3}, "body: unknown field 'volume'"),
    ([], "body: expected a JSON object"),
])
async def test_a_malformed_body_is_400_saying_what_is_wrong(site: Site, body, error):
    site.floor.caller_talks_to("call-1", "agent1")
    client = await site.client((Role.SUPERVISOR,), agent_id="sup1")
    response = await client.post("/api/supervision", json=body)
    assert response.status == 400
    assert error in (await response.json())["error"]
    assert site.floor.ami.sent == []


async def test_a_supervisor_without_a_phone_of_their_own_must_name_one(site: Site):
    site.floor.caller_talks_to("call-1", "agent1")
    client = await site.client((Role.SUPERVISOR,))
    response = await client.post("/api/supervision", json={"agent_id": "agent1",
                                                           "mode": "listen"})
    assert response.status == 400
    assert "phone: is required" in (await response.json())["error"]
    response = await client.post("/api/supervision", data="agent_id=agent1")
    assert response.status == 415


async def test_asterisk_unreachable_is_503(site: Site):
    site.floor.caller_talks_to("call-1", "agent1")
    site.floor.ami.error = AmiNotConnected("not connected to AMI")
    client = await site.client((Role.SUPERVISOR,), agent_id="sup1")
    response = await client.post("/api/supervision", json={"agent_id": "agent1",
                                                           "mode": "listen"})
    assert response.status == 503
    assert "Asterisk cannot be reached" in (await response.json())["error"]
