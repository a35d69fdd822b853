"""The life of an inbound call on our side: IVR, queue, ringing agents, until it ends.

Runs in one FastAGI session per call. The decisions come from the pure core (``IvrSession``
for the menu, the ACD for who to ring); this module only carries them out over AGI and
tells the ledger what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from callcenter.asterisk.agi import AgiCommandError
from callcenter.asterisk.agi_server import AgiHangup, AgiSession
from callcenter.asterisk.prompting import PROMPT_FOLDER, hang_up_quietly
from callcenter.asterisk.prompting import play as _play
from callcenter.config import Settings
from callcenter.core.caller_id import clean_name, clean_number
from callcenter.core.calls import CallLedger
from callcenter.core.clock import Clock
from callcenter.core.flows import Flow
from callcenter.core.hours import Override
from callcenter.core.ivr import (
    CallbackRegistered,
    CollectDigits,
    DataFetched,
    DigitReceived,
    DigitsCollected,
    FetchData,
    Hangup,
    InputTimedOut,
    IvrAction,
    IvrEvent,
    IvrSession,
    NameRecorded,
    PlayPrompt,
    PromptFinished,
    RecordName,
    RegisterCallback,
    RouteToAgent,
    RouteToQueue,
    SayDateTime,
    SayDigits,
    SayFinished,
    SayMoney,
    SayNumber,
    SwitchFlow,
    TransferTo,
    WaitForDigit,
)
from callcenter.core.records import (
    CallbackRequest,
    FaqOutcome,
    HangupBy,
    IvrStep,
    OutsideLeg,
    SurveyAnswer,
)
from callcenter.features.calls.recorder import RecordWriter
from callcenter.features.ivr.datadip import DataDips
from callcenter.features.ivr.flows import FlowLibrary
from callcenter.features.ivr.transfer_out import TransferOutcome, transfer
from callcenter.features.queues.driver import AcdDriver
from callcenter.features.queues.waiting import QueueCalls, QueueRequest, WaitOutcome

log = logging.getLogger(__name__)

ALL_DIGITS = "0123456789*#"
# Prompts the service plays itself, in the caller's language (flows name their own).
SERVICE_PROMPTS = ("please-hold", "sorry-no-agent", "and", "currency-usd", "currency-brl",
                   "currency-eur", "currency-cents", "queue-position", "queue-in-line",
                   "queue-expected-wait", "queue-minutes", "queue-less-than-a-minute",
                   "queue-callback-offer", "queue-callback-registered")
MAX_FLOW_SWITCHES = 10  # a flow handing over to another: more than this is a loop
# How long a transfer out waits for Asterisk's report of its leg (it comes within
# milliseconds; missing it leaves the leg unpriced).
OUTSIDE_LEG_WAIT_SECONDS = 2.0
# Where Asterisk writes callers' recorded names, in its spool folder (ASTSPOOLDIR); the
# sandbox creates it, an external Asterisk needs it created and writable by asterisk.
RECORDINGS_SUBFOLDER = "recording"
NAME_SILENCE_SECONDS = 2  # silence that ends a recorded name early
MIN_NAME_SAMPLES = 4000  # half a second at 8 kHz: less is taken as nothing said


class CallbackStore(Protocol):
    async def add(self, request: CallbackRequest) -> CallbackRequest: ...


@dataclass
class _Ending:
    hangup_by: HangupBy
    no_agent: bool = False
    completed_in_ivr: bool = False
    callback_requested: bool = False


class InboundCalls:
    def __init__(self, *, settings: Settings, clock: Clock, flows: FlowLibrary,
                 acd: AcdDriver, queues: QueueCalls, ledger: CallLedger,
                 writer: RecordWriter,
                 switches: Callable[[str], Override] | None = None,
                 dips: DataDips | None = None,
                 callbacks: CallbackStore | None = None) -> None:
        self._settings = settings
        self._clock = clock
        self._flows = flows
        self._acd = acd
        self._queues = queues
        self._ledger = ledger
        self._writer = writer
        self._switches = switches
        self._dips = dips or DataDips()
        self._callbacks = callbacks
        self.active: dict[str, AgiSession] = {}

    async def handle(self, session: AgiSession) -> None:
        env = session.env
        call_id = env.uniqueid
        now = self._clock.now()
        self.active[call_id] = session
        self._writer.apply(self._ledger.handler_started(
            call_id, channel=env.channel, caller_number=env.callerid,
            caller_name=env.calleridname, dialed_number=env.extension, now=now,
            caller_id_raw=env.args[0] if env.args else None))  # the dialplan's escaped copy
        record = self._ledger.get(call_id)
        protocol = record.protocol if record else None
        walk = _Walk(language=env.language, variables={
            # What the record says: the caller's own bytes, cleaned once (core/caller_id.py).
            "caller.number": clean_number(env.callerid),
            "caller.name": clean_name(env.calleridname),
            "call.dialed": _known(env.extension), "call.id": call_id,
            "call.language": env.language or self._settings.ivr.language,
            "call.protocol": protocol,
        })
        ending = _Ending(HangupBy.CALLER)
        failure: str | None = None
        try:
            ending = await self._run(session, call_id, walk, self._settings.ivr.flow)
        except AgiHangup:
            ending = _Ending(HangupBy.CALLER)
        except Exception as exc:
            failure = f"call handling failed: {type(exc).__name__}: {exc}"
            log.exception("call %s (%s): %s", call_id, env.channel, failure)
            ending = _Ending(HangupBy.SYSTEM)
            await hang_up_quietly(session)
        finally:
            self.active.pop(call_id, None)
            self._record_walk(call_id, walk)
            self._release_agent(call_id)
            self._writer.apply(self._ledger.handler_finished(
                call_id, self._clock.now(), hangup_by=ending.hangup_by,
                no_agent=ending.no_agent, completed_in_ivr=ending.completed_in_ivr,
                callback_requested=ending.callback_requested,
                failure=failure))

    async def _run(self, session: AgiSession, call_id: str, walk: _Walk, flow: str) -> _Ending:
        """Carry out the IVR's actions until it hands the call on; flows may chain."""
        for _ in range(MAX_FLOW_SWITCHES):
            ivr = walk.enter(self._flows.get(flow), self._clock.now(), self._switches)
            action = ivr.start()
            while not ivr.finished:
                await walk.speak_language(session, ivr.language)
                event = await self._perform(session, call_id, walk, ivr, action)
                action = ivr.handle(event, self._clock.now())
                self._record_walk(call_id, walk)
            self._record_walk(call_id, walk)
            match action:
                case SwitchFlow(name=name):
                    flow = name
                case RouteToQueue(queue=queue, survey=survey, priority=priority,
                                  skills=skills):
                    ending = await self._wait_in_queue(
                        session, call_id, QueueRequest(queue, priority, skills),
                        stay=survey is not None)
                    return await self._then_survey(session, call_id, walk, ending, survey)
                case RouteToAgent(agent_id=agent_id, survey=survey):
                    ending = await self._wait_in_queue(
                        session, call_id, self._personal_request(agent_id),
                        stay=survey is not None)
                    return await self._then_survey(session, call_id, walk, ending, survey)
                case Hangup():
                    await session.hangup()
                    return _Ending(HangupBy.SYSTEM, completed_in_ivr=True)
                case TransferTo(kind=kind, destination=destination):
                    outcome = await self._transfer_out(session, call_id, kind, destination)
                    if not outcome.answered:  # refused, busy, no answer: never silence
                        await _play(session, "sorry-no-agent")
                    await hang_up_quietly(session)
                    return _Ending(outcome.hangup_by, no_agent=not outcome.answered)
                case _:
                    raise RuntimeError(f"the IVR ended with something unknown: {action!r}")
        raise RuntimeError(f"more than {MAX_FLOW_SWITCHES} flow switches: a loop between flows?")

    async def _transfer_out(self, session: AgiSession, call_id: str, kind: str,
                            destination: str) -> TransferOutcome:
        """Dial out for the caller; then wait (briefly) for Asterisk's report of the leg
        (the outbound context's UserEvent, docs/rating.md), which the record must hold
        before it closes: when the caller hangs up on the transfer it may come after the
        caller's own hangup."""
        legs_before = len(self._outside_legs(call_id))
        try:
            outcome = await transfer(session, kind, destination, self._settings)
        except AgiHangup:
            await self._outside_leg_reported(call_id, legs_before)
            raise
        if outcome.dial_status is not None:  # dialled: a leg is reported
            await self._outside_leg_reported(call_id, legs_before)
        return outcome

    def _outside_legs(self, call_id: str) -> list[OutsideLeg]:
        record = self._ledger.get(call_id)
        return [] if record is None else record.outside_legs

    async def _outside_leg_reported(self, call_id: str, legs_before: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + OUTSIDE_LEG_WAIT_SECONDS
        while len(self._outside_legs(call_id)) == legs_before:
            if loop.time() >= deadline:
                log.warning("call %s: Asterisk did not report its transfer out's leg within "
                            "%g s: it will not be priced", call_id, OUTSIDE_LEG_WAIT_SECONDS)
                return
            await asyncio.sleep(0.02)

    async def _then_survey(self, session: AgiSession, call_id: str, walk: _Walk,
                           ending: _Ending, survey: str | None) -> _Ending:
        """After the agent hung up, the caller still on the line answers the survey flow.
        The call stays one the agent ended, whatever happens in the survey."""
        if survey is None or ending.hangup_by is not HangupBy.AGENT or session.hung_up:
            return ending
        with contextlib.suppress(AgiHangup):  # a caller leaving keeps the answers given
            await self._run(session, call_id, walk, survey)
        await hang_up_quietly(session)
        return ending

    def _record_walk(self, call_id: str, walk: _Walk) -> None:
        self._ledger.ivr_path(call_id, walk.path)
        self._ledger.self_service(call_id, walk.faq_outcomes, walk.survey_answers)

    async def _perform(self, session: AgiSession, call_id: str, walk: _Walk, ivr: IvrSession,
                       action: IvrAction) -> IvrEvent:
        """One non-terminal IVR action over AGI; returns what happened as an IVR event."""
        match action:
            case PlayPrompt(prompt=prompt, interruptible=interruptible):
                return PromptFinished(
                    await _play(session, prompt, ALL_DIGITS if interruptible else ""))
            case WaitForDigit(timeout=timeout):
                digit = await session.wait_for_digit(int(timeout * 1000))
                return DigitReceived(digit) if digit else InputTimedOut()
            case CollectDigits(prompt=prompt, max_digits=max_digits, timeout=timeout):
                # GET DATA always stops at '#', and never returns it: the terminator is free.
                digits = await session.get_data(f"{PROMPT_FOLDER}/{prompt}",
                                                int(timeout * 1000), max_digits)
                return DigitsCollected("".join(d for d in digits if d in ALL_DIGITS))
            case SayNumber(value=value):
                return SayFinished(await session.say_number(value, ALL_DIGITS))
            case SayDigits(digits=digits):
                return SayFinished(await session.say_digits(digits, ALL_DIGITS))
            case SayDateTime(epoch=epoch, timezone=timezone):
                return SayFinished(await session.say_datetime(int(epoch), timezone, ALL_DIGITS))
            case SayMoney(amount=amount, currency=currency):
                return SayFinished(await _say_money(session, amount, currency))
            case FetchData(url=url, params=params, timeout=timeout, retries=retries):
                # The caller hears silence meanwhile; the flow's timeout keeps it short.
                reply, error = await self._dips.fetch(url, params, timeout=timeout,
                                                      retries=retries)
                return DataFetched(reply, error)
            case RecordName(max_seconds=max_seconds):
                return NameRecorded(await _record_name(session, call_id, walk, max_seconds))
            case RegisterCallback(queue=queue, number=number, name_recorded=recorded):
                return await self._register_callback(session, call_id, walk, ivr, queue,
                                                     number, recorded)
            case _:
                raise RuntimeError(f"the IVR asked for something unknown: {action!r}")

    async def _register_callback(self, session: AgiSession, call_id: str, walk: _Walk,
                                 ivr: IvrSession,
                                 queue: str, number: str, name_recorded: bool,
                                 ) -> CallbackRegistered:
        """Store the request before the caller hears it is registered: nothing is lost."""
        if self._callbacks is None:
            return CallbackRegistered("callback requests are not stored by this service")
        record = self._ledger.get(call_id)
        request = CallbackRequest(
            call_id=call_id, queue=queue, number=number, requested_at=self._clock.now(),
            flow=ivr.flow.name, protocol=record.protocol if record else None,
            caller_name=clean_name(session.env.calleridname),
            name_recording=walk.name_recording if name_recorded else None,
        )
        try:
            stored = await self._callbacks.add(request)
        except Exception as exc:
            log.exception("call %s: the callback request could not be stored", call_id)
            return CallbackRegistered(f"{type(exc).__name__}: {exc}")
        log.info("call %s: callback request %s for queue %s registered", call_id, stored.id,
                 queue)
        return CallbackRegistered()

    def _personal_request(self, agent_id: str) -> QueueRequest:
        """A flow sends the caller to one agent by name: the ACD keeps the call for that
        agent only, under the rules of the agent's first queue."""
        agent = next((a for a in self._settings.agents if a.id == agent_id), None)
        queues = [q for q, tier in agent.memberships.items() if tier == 0] if agent else []
        if not queues:
            raise RuntimeError(f"agent {agent_id!r} serves no queue: no rules to wait under")
        return QueueRequest(queues[0], for_agent=agent_id)

    async def _wait_in_queue(self, session: AgiSession, call_id: str, request: QueueRequest,
                             *, stay: bool) -> _Ending:
        """``stay``: keep the caller on the line after the talk (for a survey)."""
        outcome = await self._queues.wait(session, call_id, request)
        if outcome is WaitOutcome.TALKED:
            self._acd.left(call_id)  # the agent is free (wrap-up) even if the caller stays
            if not stay:
                await hang_up_quietly(session)
            return _Ending(HangupBy.AGENT)
        if outcome is WaitOutcome.CALLBACK:
            return _Ending(HangupBy.SYSTEM, callback_requested=True)
        return _Ending(HangupBy.SYSTEM, no_agent=True)

    def agent_answered(self, call_id: str, agent_id: str) -> None:
        """AMI saw the agent pick up: the ACD marks them busy at once, not after the talk."""
        if call_id in self.active:
            self._acd.answered(call_id, agent_id)

    def _release_agent(self, call_id: str) -> None:
        record = self._ledger.get(call_id)
        if record is not None and record.agent_id is not None:
            self._acd.answered(call_id, record.agent_id)
        self._acd.left(call_id)


async def _say_money(session: AgiSession, amount: Decimal, currency: str) -> str | None:
    """"12 reais and 50 cents": whole units, the currency's word, then the cents if any."""
    whole = int(amount)
    cents = int((amount - whole) * 100)
    digit = await session.say_number(whole, ALL_DIGITS)
    digit = digit or await _play(session, f"currency-{currency.lower()}", ALL_DIGITS)
    if cents and not digit:
        digit = await _play(session, "and", ALL_DIGITS)
        digit = digit or await session.say_number(cents, ALL_DIGITS)
        digit = digit or await _play(session, "currency-cents", ALL_DIGITS)
    return digit


def _known(value: str | None) -> str | None:
    """AGI says "unknown" for a caller ID or number it does not have."""
    return None if not value or value == "unknown" else value


class _Walk:
    """The IVR sessions one call went through (a flow may hand over to another)."""

    def __init__(self, variables: dict[str, str | None], language: str | None) -> None:
        self._variables: dict[str, object] = dict(variables)
        self._done: list[IvrStep] = []
        self._faqs: list[FaqOutcome] = []
        self._answers: list[SurveyAnswer] = []
        self._current: IvrSession | None = None
        self._channel_language = language  # what Asterisk speaks on this channel now
        self.name_recording: str | None = None  # Asterisk's path of the name recorded last

    async def speak_language(self, session: AgiSession, language: str) -> None:
        """Make Asterisk play prompts and say values in the IVR's language."""
        if language != self._channel_language:
            await session.set_variable("CHANNEL(language)", language)
            self._channel_language = language

    def enter(self, flow: Flow, now: float,
              switches: Callable[[str], Override] | None) -> IvrSession:
        if self._current is not None:
            self._done += self._current.path
            self._faqs += self._current.faq_outcomes
            self._answers += self._current.survey_answers
            self._variables = dict(self._current.variables)  # carried into the next flow
        self._current = IvrSession(flow, now, variables=self._variables,  # type: ignore[arg-type]
                                   overrides=switches)
        return self._current

    @property
    def path(self) -> list[IvrStep]:
        return self._done + (self._current.path if self._current else [])

    @property
    def faq_outcomes(self) -> list[FaqOutcome]:
        return self._faqs + (self._current.faq_outcomes if self._current else [])

    @property
    def survey_answers(self) -> list[SurveyAnswer]:
        return self._answers + (self._current.survey_answers if self._current else [])


async def _record_name(session: AgiSession, call_id: str, walk: _Walk, max_seconds: int,
                       ) -> bool:
    """Record the caller's name after a beep into Asterisk's spool; False when nothing
    usable was recorded (the request is still taken, without a name)."""
    spool = await session.get_variable("ASTSPOOLDIR")
    if not spool or not spool.startswith("/"):
        log.error("call %s: Asterisk did not tell its spool folder; no name recorded", call_id)
        return False
    name = f"callcenter-name-{re.sub(r'[^0-9A-Za-z-]', '-', call_id)}"
    path = f"{spool.rstrip('/')}/{RECORDINGS_SUBFOLDER}/{name}"
    try:
        outcome = await session.record_file(
            path, fmt="wav", escape_digits="#", timeout_ms=max_seconds * 1000, beep=True,
            silence_seconds=NAME_SILENCE_SECONDS)
    except (AgiCommandError, ValueError) as exc:
        log.error("call %s (%s): the name could not be recorded: %s", call_id,
                  session.env.channel, exc)
        return False
    walk.name_recording = path
    return outcome.endpos >= MIN_NAME_SAMPLES
