"""Transfers out of the IVR: which destinations the settings allow, what is dialled over a real
FastAGI session (the test plays Asterisk's side), and what each DIALSTATUS means. Then the one
rule that decides whom a talking caller may be transferred to, blind or attended."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from callcenter.asterisk.agi import AgiHangup
from callcenter.asterisk.agi_server import AgiServer, AgiSession
from callcenter.config import OutboundSettings, Settings
from callcenter.core.acd import AgentState, AgentView, ConnectMode
from callcenter.core.records import HangupBy
from callcenter.core.transfer_rules import TransferMode, agent_refusal, queue_refusal
from callcenter.features.ivr.transfer_out import (
    TransferOutcome,
    TransferResult,
    dial_arguments,
    outcome_of,
    refusal,
    transfer,
)

WAIT = 5.0  # a guard against a hung test, never a pause

OUTBOUND = OutboundSettings(trunk_host="203.0.113.5", caller_id="+551130000000",
                            dial_timeout=20, extension_patterns=("2XXX", "3[0-4]."),
                            allowed_prefixes=("+55", "+1212"))


@pytest.mark.parametrize(("kind", "destination"), [
    ("extension", "2001"), ("extension", "2999"), ("extension", "3012345"),
    ("external", "+5511999990000"), ("external", "+12125550100"),
])
def test_destinations_the_settings_allow(kind: str, destination: str) -> None:
    assert refusal(kind, destination, OUTBOUND) is None


@pytest.mark.parametrize(("kind", "destination", "why"), [
    ("extension", "1001", "extension 1001 matches none of outbound.extension_patterns "
     "(2XXX, 3[0-4].)"),
    ("extension", "20011", "matches none"),
    ("extension", "2001&PJSIP/x", "extension '2001&PJSIP/x' is not 1-20 digits"),
    ("extension", "+5511999990000", "is not 1-20 digits"),
    ("external", "+13105550100", "outside number +13105550100 starts with none of "
     "outbound.allowed_prefixes (+55, +1212)"),
    ("external", "5511999990000", "outside number '5511999990000' is not strict E.164"),
    ("external", "+55119999,1", "is not strict E.164"),
    ("external", "+5511999990000\n", "is not strict E.164"),
    ("queue", "sales", "unknown transfer kind 'queue'"),
])
def test_destinations_the_settings_refuse_say_why(kind: str, destination: str,
                                                   why: str) -> None:
    assert why in (refusal(kind, destination, OUTBOUND) or "allowed")


def test_empty_rules_allow_nothing() -> None:
    closed = replace(OUTBOUND, extension_patterns=(), allowed_prefixes=())
    assert refusal("extension", "2001", closed) == (
        "no extension may be dialled: outbound.extension_patterns is empty")
    assert refusal("external", "+5511999990000", closed) == (
        "no outside number may be dialled: outbound.allowed_prefixes is empty")


def test_the_dial_goes_through_the_outbound_context_and_waits_longer_than_it() -> None:
    assert dial_arguments("+5511999990000", OUTBOUND) == (
        "Local/+5511999990000@callcenter-outbound/n,25,g")
    for junk in ("2001&PJSIP/evil", "2001,,G(x)", "", "+55 11"):
        with pytest.raises(ValueError, match="is not a number to dial"):
            dial_arguments(junk, OUTBOUND)


@pytest.mark.parametrize(("status", "result"), [
    ("ANSWER", TransferResult.ANSWERED),
    ("BUSY", TransferResult.BUSY),
    ("NOANSWER", TransferResult.NO_ANSWER),
    ("CANCEL", TransferResult.NO_ANSWER),
    ("CONGESTION", TransferResult.UNAVAILABLE),
    ("CHANUNAVAIL", TransferResult.UNAVAILABLE),
    ("UNKNOWN", TransferResult.UNAVAILABLE),
])
def test_each_dial_status_has_its_outcome(status: str, result: TransferResult) -> None:
    outcome = outcome_of("external", "+5511999990000", status)
    assert (outcome.result, outcome.dial_status) == (result, status)
    assert outcome.reason.endswith(f"({status})")
    assert outcome.hangup_by is (HangupBy.AGENT if status == "ANSWER" else HangupBy.SYSTEM)


# --------------------------------------------------------------------------- over FastAGI


class ScriptedAsterisk:
    """Asterisk's end of one FastAGI call: it reads our commands and answers as told."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def call(cls, port: int) -> ScriptedAsterisk:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"agi_network: yes\nagi_network_script: ivr\n"
                     b"agi_channel: PJSIP/anonymous-00000001\nagi_uniqueid: 1732822000.7\n"
                     b"agi_callerid: 5551234\nagi_extension: 100\n\n")
        await writer.drain()
        return cls(reader, writer)

    async def expect(self, *command: str, reply: str) -> None:
        line = await asyncio.wait_for(self.reader.readline(), WAIT)
        assert shlex.split(line.decode()) == list(command)
        self.writer.write(reply.encode() + b"\n")
        await self.writer.drain()

    async def nothing_more(self) -> bool:
        """True when the service closed the call without sending another command."""
        return await asyncio.wait_for(self.reader.read(), WAIT) == b""


class Transfers:
    """A FastAGI server whose every call is one ``transfer()`` to the destination set here."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.kind, self.destination = "external", "+5511999990000"
        self.results: asyncio.Queue[TransferOutcome | BaseException] = asyncio.Queue()
        self.server = AgiServer({"ivr": self._handle}, "127.0.0.1", 0)

    async def _handle(self, session: AgiSession) -> None:
        try:
            self.results.put_nowait(
                await transfer(session, self.kind, self.destination, self.settings))
        except BaseException as exc:
            self.results.put_nowait(exc)

    async def result(self) -> TransferOutcome | BaseException:
        return await asyncio.wait_for(self.results.get(), WAIT)


@pytest.fixture
async def transfers() -> AsyncIterator[Transfers]:
    service = Transfers(Settings(outbound=OUTBOUND))
    await service.server.start()
    yield service
    await service.server.stop()


async def test_an_answered_transfer_dials_through_the_outbound_context(
        transfers: Transfers) -> None:
    asterisk = await ScriptedAsterisk.call(transfers.server.port)
    await asterisk.expect("SET", "VARIABLE", "__CALLCENTER_TRANSFER_OUT", "1",  # rated
                          reply="200 result=1")
    await asterisk.expect("EXEC", "Dial", "Local/+5511999990000@callcenter-outbound/n,25,g",
                          reply="200 result=0")
    await asterisk.expect("GET", "VARIABLE", "DIALSTATUS", reply="200 result=1 (ANSWER)")
    outcome = await transfers.result()
    assert outcome == TransferOutcome(TransferResult.ANSWERED, "external", "+5511999990000",
                                      "answered; the far end hung up (ANSWER)", "ANSWER")
    assert outcome.hangup_by is HangupBy.AGENT
    assert await asterisk.nothing_more()  # the caller is left to the handler


async def test_a_busy_extension_is_reported_busy(transfers: Transfers) -> None:
    transfers.kind, transfers.destination = "extension", "2001"
    asterisk = await ScriptedAsterisk.call(transfers.server.port)
    await asterisk.expect("SET", "VARIABLE", "__CALLCENTER_TRANSFER_OUT", "1",  # rated
                          reply="200 result=1")
    await asterisk.expect("EXEC", "Dial", "Local/2001@callcenter-outbound/n,25,g",
                          reply="200 result=0")
    await asterisk.expect("GET", "VARIABLE", "DIALSTATUS", reply="200 result=1 (BUSY)")
    outcome = await transfers.result()
    assert isinstance(outcome, TransferOutcome)
    assert (outcome.result, outcome.kind, outcome.hangup_by) == (
        TransferResult.BUSY, "extension", HangupBy.SYSTEM)


async def test_a_refused_destination_is_never_dialled(transfers: Transfers) -> None:
    transfers.destination = "+13105550100"
    asterisk = await ScriptedAsterisk.call(transfers.server.port)
    assert await asterisk.nothing_more()
    outcome = await transfers.result()
    assert isinstance(outcome, TransferOutcome)
    assert outcome.result is TransferResult.REFUSED and outcome.dial_status is None
    assert "starts with none of outbound.allowed_prefixes" in outcome.reason


async def test_without_a_trunk_the_transfer_is_unavailable_and_nothing_is_dialled(
        transfers: Transfers) -> None:
    transfers.settings = Settings(outbound=replace(OUTBOUND, trunk_host=""))
    asterisk = await ScriptedAsterisk.call(transfers.server.port)
    assert await asterisk.nothing_more()
    outcome = await transfers.result()
    assert isinstance(outcome, TransferOutcome)
    assert outcome.result is TransferResult.UNAVAILABLE
    assert outcome.reason == "no outbound trunk is configured (outbound.trunk_host)"


async def test_a_caller_who_hangs_up_during_the_transfer_ends_it_as_a_hangup(
        transfers: Transfers) -> None:
    asterisk = await ScriptedAsterisk.call(transfers.server.port)
    await asterisk.expect("SET", "VARIABLE", "__CALLCENTER_TRANSFER_OUT", "1",  # rated
                          reply="200 result=1")
    await asterisk.expect("EXEC", "Dial", "Local/+5511999990000@callcenter-outbound/n,25,g",
                          reply="HANGUP\n200 result=-1")
    assert isinstance(await transfers.result(), AgiHangup)


async def test_a_dial_that_asterisk_cannot_run_is_unavailable_not_an_error(
        transfers: Transfers) -> None:
    asterisk = await ScriptedAsterisk.call(transfers.server.port)
    await asterisk.expect("SET", "VARIABLE", "__CALLCENTER_TRANSFER_OUT", "1",  # rated
                          reply="200 result=1")
    await asterisk.expect("EXEC", "Dial", "Local/+5511999990000@callcenter-outbound/n,25,g",
                          reply="200 result=-2")
    outcome = await transfers.result()
    assert isinstance(outcome, TransferOutcome)
    assert outcome.result is TransferResult.UNAVAILABLE
    assert "Dial failed" in outcome.reason and "no dialplan application 'Dial'" in outcome.reason


# --------------------------------------------------------------------------- transfers of a
# talking caller to an agent or a queue: one rule for both modes (core/transfer_rules.py)


def agent(agent_id: str, state: AgentState = AgentState.READY, *, reachable: bool = True,
          reason: str | None = None, deferred: str | None = None,
          mode: ConnectMode = ConnectMode.RING,
          queues: tuple[str, ...] = ("sales",)) -> AgentView:
    return AgentView(agent_id=agent_id, state=state, reason=reason, since=0.0, idle_since=0.0,
                     phone=agent_id, mode=mode, reachable=reachable, call_id=None,
                     queues=queues, skills={}, calls_answered=0, talk_time=0.0,
                     deferred=deferred)


@pytest.mark.parametrize(("view", "why"), [
    (agent("agent3", reachable=False), "agent 'agent3' has no reachable phone (not registered)"),
    (agent("agent3", AgentState.LOGGED_OUT), "agent 'agent3' is logged out"),
    (agent("agent3", AgentState.PAUSED, reason="lunch"), "agent 'agent3' is paused (lunch)"),
    (agent("agent3", AgentState.ON_CALL, deferred="logout"),
     "agent 'agent3' asked to logout once their current call ends"),
    (agent("agent3", queues=()), "agent 'agent3' serves no queue"),
    (agent("agent1"), "agent 'agent1' already has this call"),
])
@pytest.mark.parametrize("mode", list(TransferMode))
def test_an_agent_who_could_never_answer_is_refused_in_both_modes(
        view: AgentView, why: str, mode: TransferMode) -> None:
    refusal = agent_refusal(view, "agent1", mode)
    assert refusal is not None and refusal.startswith(why), refusal


@pytest.mark.parametrize("state", [AgentState.READY, AgentState.WRAP_UP, AgentState.RINGING,
                                   AgentState.ON_CALL])
def test_a_blind_transfer_accepts_an_agent_who_will_be_free_attended_only_one_free_now(
        state: AgentState) -> None:
    view = agent("agent2", state)
    assert agent_refusal(view, "agent1", TransferMode.BLIND) is None
    attended = agent_refusal(view, "agent1", TransferMode.ATTENDED)
    if state in (AgentState.READY, AgentState.WRAP_UP):
        assert attended is None
    else:
        assert attended is not None and "mode 'blind' waits for them" in attended
    nailed = agent("agent2", state, mode=ConnectMode.NAILED)
    assert agent_refusal(nailed, "agent1", TransferMode.BLIND) is None
    assert "nailed up" in (agent_refusal(nailed, "agent1", TransferMode.ATTENDED) or "")


def test_a_queue_needs_one_agent_other_than_the_transferring_one_who_could_answer() -> None:
    assert queue_refusal("sales", [agent("agent1")], "agent1") == (
        "queue 'sales' has no agent other than 'agent1': nobody would answer")
    assert queue_refusal("sales", [], "agent1") is not None
    nobody = [agent("agent2", AgentState.PAUSED, reason="lunch"),
              agent("agent3", reachable=False)]
    assert queue_refusal("sales", nobody, "agent1") == (
        "queue 'sales': no agent there could answer the caller (agent2 is paused (lunch); "
        "agent3 has no reachable phone (not registered))")
    busy = agent("agent4", AgentState.ON_CALL)  # will be free: the caller waits for them
    assert queue_refusal("sales", [*nobody, busy], "agent1") is None
    many = [agent(f"agent{n}", AgentState.LOGGED_OUT) for n in range(2, 10)]
    assert (queue_refusal("sales", many, "agent1") or "").endswith(
        "agent6 is logged out; and 3 more)")
