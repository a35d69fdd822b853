"""The test carrier (tests/support/carrier.py) behind the outbound trunk of a real Asterisk 22.

Asterisk only (no CallCenter service): the test Originates ``PJSIP/<number>@callcenter-trunk``
into the campaign context ``callcenter-campaign`` exactly as the campaign dialer does, with
answering machine detection on, and plays the service's FastAGI step itself: it reads
``AMDSTATUS`` and hangs up. Each number must end as its behaviour says, in Asterisk's eyes
(the OriginateResponse and AMD()) and in the carrier's (its per-call records), with many
calls at once; AMD must tell every human from every machine, not most of them.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from callcenter.asterisk.agi_server import AgiServer, AgiSession
from callcenter.asterisk.ami import AmiClient
from callcenter.asterisk.confgen import TRUNK_ENDPOINT
from callcenter.asterisk.events import AmiEvent, DialEnd, Hangup
from callcenter.asterisk.sandbox import Sandbox
from callcenter.config import Settings
from callcenter.features.campaigns.dialplan import (
    ANSWERED_STEP,
    CAMPAIGN_CONTEXT,
    SCRIPT,
    dial_channel,
    originate_variables,
)
from tests.support.asterisk import running_asterisk, sandbox_settings
from tests.support.carrier import Behaviour, Carrier, CarrierCall, CarrierPlan, Persona
from tests.support.sipp import free_port

pytestmark = pytest.mark.asterisk

OUR_NUMBER = "+551130000000"
RING_MS = 8000  # the Originate's timeout: a NO_ANSWER number rings this long
AT_ONCE = 10  # calls in progress at the same time
# A person who rings longer, then talks (to nobody here) until they hang up.
TALKER = Persona(Behaviour.HUMAN, ring_ms=3000, hangup_after_ms=6000)


@dataclass
class Dialled:
    number: str
    token: str
    response: Mapping[str, Any]  # the OriginateResponse event
    amd: tuple[str, str] | None = None  # (AMDSTATUS, AMDCAUSE) when the FastAGI step ran
    hangup_cause: int | None = None  # the Q.850 cause of the call's Hangup event
    dial_status: str | None = None  # the DialEnd event's DialStatus (BUSY, CONGESTION...)

    @property
    def answered(self) -> bool:
        return self.response.get("Response") == "Success"

    @property
    def reason(self) -> str:
        return str(self.response.get("Reason", ""))


class Dialler:
    """Originates calls like the campaign dialer, and is the campaign's FastAGI step."""

    def __init__(self, settings: Settings, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        a = settings.asterisk
        self.ami = AmiClient(a.host, a.ami_port, a.ami_username, a.ami_secret,
                             on_event=self._event)
        self.hangups: dict[str, Hangup] = {}
        self.dial_ends: dict[str, DialEnd] = {}
        self.agi = AgiServer({SCRIPT: self._answered}, host="127.0.0.1",
                             port=settings.service.agi_port, secret=settings.service.agi_secret)
        self.amd: dict[str, tuple[str, str]] = {}
        self.steps_done: dict[str, asyncio.Event] = {}
        # Calls to these numbers stay up after AMD until the far end hangs up (at most 30 s)
        self.hold: set[str] = set()
        self._held_tokens: set[str] = set()

    def _event(self, event: AmiEvent) -> None:
        if isinstance(event, Hangup):
            self.hangups[event.uniqueid] = event
        elif isinstance(event, DialEnd):
            self.dial_ends[event.dest_uniqueid] = event

    async def _answered(self, session: AgiSession) -> None:
        step, token = session.env.args[:2]
        assert step == ANSWERED_STEP
        status = await session.get_variable("AMDSTATUS")
        cause = await session.get_variable("AMDCAUSE")
        self.amd[token] = (status or "", cause or "")
        self.steps_done.setdefault(token, asyncio.Event()).set()
        if token in self._held_tokens:
            await session.wait_hangup(30)
        await session.hangup()  # the far end (the carrier) gets our BYE

    async def dial(self, number: str, ring_ms: int = RING_MS) -> Dialled:
        token = f"cmp-test-{secrets.token_hex(6)}"
        if number in self.hold:
            self._held_tokens.add(token)
        action = {
            "Action": "Originate", "Channel": dial_channel(number, TRUNK_ENDPOINT),
            "Context": CAMPAIGN_CONTEXT, "Exten": ANSWERED_STEP, "Priority": 1,
            "Timeout": ring_ms, "CallerID": f"<{OUR_NUMBER}>", "Async": True,
            "ChannelId": token,
            "Variable": originate_variables(token, amd=True, safe_harbor_prompt="safe-harbor")}
        answer = await self.ami.send(action, timeout=ring_ms / 1000 + 10)
        messages = answer if isinstance(answer, list) else [answer]
        response = next((m for m in messages if m.get("Event") == "OriginateResponse"), None)
        assert response is not None, f"{number}: no OriginateResponse in {messages}"
        dialled = Dialled(number, token, dict(response))
        if dialled.answered:
            # The FastAGI step runs unless the carrier hung up first (then AMD said HANGUP and
            # the dialplan stopped): wait for it a while, as the call's audio takes.
            done = self.steps_done.setdefault(token, asyncio.Event())
            try:
                async with asyncio.timeout(15):
                    await done.wait()
            except TimeoutError:
                pass
            dialled.amd = self.amd.get(token)
        # Every call's channel (named by its ChannelId) hangs up in the end, with a cause.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while token not in self.hangups and loop.time() < deadline:
            await asyncio.sleep(0.1)
        if token in self.hangups:
            dialled.hangup_cause = self.hangups[token].cause
        if token in self.dial_ends:
            dialled.dial_status = self.dial_ends[token].dial_status
        return dialled

    async def dial_all(self, numbers: list[str], at_once: int = AT_ONCE) -> dict[str, Dialled]:
        """Dial every number, ``at_once`` calls in progress at a time."""
        slots = asyncio.Semaphore(at_once)

        async def one(number: str) -> Dialled:
            async with slots:
                return await self.dial(number)

        results = await asyncio.gather(*(one(n) for n in numbers))
        return {d.number: d for d in results}


@asynccontextmanager
async def asterisk_behind(tmp_path: Path, carrier_port: int) -> AsyncIterator[Dialler]:
    env = {
        "CALLCENTER_OUTBOUND__TRUNK_HOST": f"127.0.0.1:{carrier_port}",
        "CALLCENTER_OUTBOUND__TRUNK_MATCH": f"127.0.0.1:{carrier_port}",
        "CALLCENTER_OUTBOUND__CALLER_ID": OUR_NUMBER,
    }
    settings = sandbox_settings(tmp_path, env=env)
    with running_asterisk(settings) as sandbox:
        dialler = Dialler(settings, sandbox)
        await dialler.agi.start()
        await dialler.ami.start()
        try:
            await dialler.ami.wait_ready(30)
            yield dialler
        finally:
            await dialler.ami.stop()
            await dialler.agi.stop()


# What Asterisk 22 (chan_pjsip) says of a call not answered: the OriginateResponse's Reason,
# and the Q.850 cause of the Hangup event of the Originate's channel (its ChannelId). The
# Reason tells only "rang out" (3) from "anything else" (0): chan_pjsip ends a refused call
# with a hangup cause and never queues the BUSY or CONGESTION control frame that pbx.c's
# pbx_dial_reason() would turn into Reason 5 or 8. The cause tells them apart.
UNANSWERED = {  # behaviour: (Reason, hangup cause, the carrier's refusal)
    Behaviour.NO_ANSWER: ("3", 19, None),  # no answer: our CANCEL at the ring timeout
    Behaviour.BUSY: ("0", 17, 486),  # user busy
    Behaviour.FAILED: ("0", 34, 503),  # no circuit/channel available
    Behaviour.REFUSED: ("0", 21, 403),  # call rejected
}


def check_call(persona: Persona, dialled: Dialled, call: CarrierCall) -> list[str]:
    """What is wrong with one number's call, as Asterisk and the carrier saw it."""
    problems = []
    behaviour = persona.behaviour

    def expect(what: str, seen: object, wanted: object) -> None:
        if seen != wanted:
            problems.append(f"{dialled.number} ({behaviour.value}): {what} {seen!r}, "
                            f"expected {wanted!r}")

    expect("carrier behaviour", call.behaviour, behaviour)
    expect("carrier failures", call.failures, [])
    if behaviour in (Behaviour.HUMAN, Behaviour.MACHINE):
        expect("answered", dialled.answered, True)
        expect("AMD status", dialled.amd and dialled.amd[0], behaviour.name)
        # Our FastAGI step hung up, unless the person hung up first as planned.
        expect("ended by", call.ended_by,
               "carrier" if persona.hangup_after_ms is not None else "caller")
    elif behaviour is Behaviour.ANSWER_THEN_HANG_UP:
        expect("answered", dialled.answered, True)
        expect("AMD step ran", dialled.amd, None)  # AMD saw the hangup; the dialplan ended
        expect("ended by", call.ended_by, "carrier")
    else:
        expect("answered", dialled.answered, False)
        expect("answered by the carrier", call.answered_at_ms, None)
        reason, cause, refusal = UNANSWERED[behaviour]
        expect("Originate reason", dialled.reason, reason)
        expect("hangup cause", dialled.hangup_cause, cause)
        if behaviour is Behaviour.NO_ANSWER:
            expect("cancelled", call.cancelled, True)
        else:
            expect("refused with", call.refused, refusal)
    return problems


@dataclass
class Run:
    dialled: dict[str, Dialled]  # by number
    calls: list[CarrierCall]  # as the carrier saw them
    amd_log: str  # AMD()'s own account (Asterisk's verbose log), for a failure's message


async def run_plan(tmp_path: Path, plan: CarrierPlan) -> Run:
    """Dial every number of the plan, AT_ONCE at a time, through the carrier. A person who
    hangs up by themselves is left on the line after AMD until they do."""
    carrier_port = free_port()
    async with asterisk_behind(tmp_path, carrier_port) as dialler:
        dialler.hold = {n for n in plan.of(Behaviour.HUMAN)
                        if plan.persona(n).hangup_after_ms is not None}
        with Carrier(plan, port=carrier_port, calls=len(plan.numbers)) as carrier:
            dialled = await dialler.dial_all(list(plan.numbers))
            calls = await carrier.wait_for_calls(len(plan.numbers), timeout=30)
        log = dialler.sandbox.messages_log.read_text(errors="replace").splitlines()
    return Run(dialled, calls, "\n".join(line for line in log if "AMD: Channel" in line))


def problems_of(plan: CarrierPlan, run: Run) -> list[str]:
    """Every way in which a number's call did not end as its behaviour says."""
    dialled, calls = run.dialled, run.calls
    by_number = {call.number: call for call in calls}
    problems = [f"{len(calls)} calls reached the carrier for {len(plan.numbers)} numbers"
                ] if len(calls) != len(plan.numbers) else []
    for number in plan.numbers:
        if number not in by_number:
            problems.append(f"{number} ({plan.behaviour(number).value}) never reached the "
                            "carrier")
            continue
        problems += check_call(plan.persona(number), dialled[number], by_number[number])
    return problems


async def test_each_behaviour_ends_as_planned_and_amd_tells_humans_from_machines(tmp_path):
    plan = CarrierPlan.mix({Behaviour.HUMAN: 5, Behaviour.MACHINE: 5, Behaviour.NO_ANSWER: 1,
                            Behaviour.BUSY: 1, Behaviour.ANSWER_THEN_HANG_UP: 1,
                            Behaviour.FAILED: 1, Behaviour.REFUSED: 1, TALKER: 1})
    run = await run_plan(tmp_path, plan)
    assert problems_of(plan, run) == [], run.amd_log
    human_amd = {run.dialled[n].amd for n in plan.of(Behaviour.HUMAN)}
    machine_causes = {run.dialled[n].amd[1].split("-")[0]  # type: ignore[index]
                      for n in plan.of(Behaviour.MACHINE)}
    # With amd.conf's defaults: one word, then after_greeting_silence; more words than
    # maximum_number_of_words.
    assert human_amd == {("HUMAN", "HUMAN-800-800")}
    assert machine_causes == {"MAXWORDS"}
    # The carrier's own account: when it answered, how long the call lasted.
    calls = {call.number: call for call in run.calls}
    for number in plan.of(Behaviour.ANSWER_THEN_HANG_UP):
        assert calls[number].talk_ms in range(1200, 1500), calls[number]
    [talker] = [calls[n] for n in plan.numbers if plan.numbers[n] == TALKER]
    assert talker.answered_at_ms is not None and talker.talk_ms is not None
    assert talker.answered_at_ms - talker.invited_at_ms in range(3000, 3500), talker
    assert talker.talk_ms in range(6000, 6300), talker


async def test_sixty_numbers_ten_at_a_time_all_end_as_planned(tmp_path):
    """The mix the campaign dialer's test relies on."""
    plan = CarrierPlan.mix({Behaviour.HUMAN: 20, Behaviour.MACHINE: 10,
                            Behaviour.NO_ANSWER: 10, Behaviour.BUSY: 10,
                            Behaviour.ANSWER_THEN_HANG_UP: 5, Behaviour.FAILED: 5})
    run = await run_plan(tmp_path, plan)
    assert problems_of(plan, run) == [], run.amd_log
    assert sorted(call.number or "" for call in run.calls) == sorted(plan.numbers)
