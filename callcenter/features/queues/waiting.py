"""A caller's time in an ACD queue, on their own FastAGI session.

The caller joins the ACD's line the moment the flow routes them: an idle agent is rung at
once, and "please hold" is said only when no agent was offered the call right away. Music
while waiting; position and expected wait at the queue's interval (with the offer to
be called back); each offer the ACD makes rings one agent (``Dial``) or joins a nailed-up
agent's bridge (``ConfBridge``); overflow to another queue; the apology when no agent can
take the call.

The key 1 hands the caller's place in line to a virtual-hold callback: the caller's entry
leaves the ACD and the callback dialer's entry takes the same place at once (same queue,
priority, skills and waiting_since, which is what orders the line). Only the queue's own
timers (overflow tiers, skill relaxation) start again for it.

Before waiting, the channel gets ``CALLCENTER_QUEUE`` (and ``QUEUE_PRIO``): if the service
dies, the dialplan's fallback puts the caller in Asterisk's own queue of the same name.
While the caller talks to an agent ``CALLCENTER_STAGE`` is ``talking``, so a caller whose
talk ends while the service is down is hung up rather than queued again.

A caller a queue with ``offer_callback`` cannot call back (no number, a number the
``[outbound]`` rules refuse, no trunk) hears no offer: said once in the log as they join,
and counted on the queue's live view (``NotOfferedTally``, a ``queue`` live event).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from callcenter.asterisk.agi import AgiHangup
from callcenter.asterisk.agi_server import AgiSession
from callcenter.asterisk.prompting import play as _play
from callcenter.config import QueueSettings, Settings
from callcenter.core.acd import (
    Announce,
    ConnectMode,
    NoAgentAvailable,
    OfferCall,
    OfferFailure,
    Overflowed,
    QueueFull,
    QueueTimedOut,
)
from callcenter.core.callback_offers import NoOfferReason, NotOffered, NotOfferedTally
from callcenter.core.calls import CallLedger
from callcenter.core.clock import Clock
from callcenter.core.records import CallbackRequest, CallbackStatus
from callcenter.features.agents.dialplan import caller_join_arguments
from callcenter.features.calls.recorder import RecordWriter
from callcenter.features.ivr.transfer_out import EXTENSION, EXTERNAL, refusal
from callcenter.features.queues.driver import AcdDriver, CallMessage, KeyPressed
from callcenter.features.queues.schemas import CallbacksNotOffered
from callcenter.features.supervision.dialplan import AGENT_LEG_DIAL_OPTIONS

Publish = Callable[[str, Mapping[str, Any]], None]  # the live event hub's publish

log = logging.getLogger(__name__)

QUEUE_VARIABLE = "CALLCENTER_QUEUE"
STAGE_VARIABLE = "CALLCENTER_STAGE"
CALLBACK_KEY = "1"
# A ring that fails this fast (phone gone, busy) would be retried in a tight loop if every
# agent's phone is down: the caller waits this long before the next offer.
FAST_FAILURE_SECONDS = 1.0
DIAL_FAILURES = {
    "NOANSWER": OfferFailure.NO_ANSWER,
    "BUSY": OfferFailure.REJECTED,
    "CONGESTION": OfferFailure.UNREACHABLE,
    "CHANUNAVAIL": OfferFailure.UNREACHABLE,
}


class WaitOutcome(StrEnum):
    TALKED = "talked"  # an agent took the call and the talk is over
    NO_AGENT = "no_agent"  # timed out, queue full, or nobody serves the queue: apology said
    CALLBACK = "callback"  # left the line for a virtual-hold callback


class CallbackStore(Protocol):
    async def add(self, request: CallbackRequest) -> CallbackRequest: ...

    async def set_status(self, callback_id: int,
                         status: CallbackStatus | str) -> CallbackRequest: ...


@dataclass(frozen=True)
class QueueRequest:
    queue: str  # whose rules apply (ring time, max wait, music, announcements)
    priority: int = 0
    skills: Mapping[str, int] | None = None
    for_agent: str | None = None  # only this agent may take the call (a flow's {agent: X})


class CallRecorder(Protocol):
    """Call recording (features/recordings/service.py): told when a caller joins a queue and
    when an agent is about to take the call. Neither ever fails the call (only AgiHangup
    comes through)."""

    async def caller_joined(self, session: AgiSession, call_id: str, queue: str) -> None: ...

    async def connecting(self, session: AgiSession, call_id: str, queue: str | None,
                         agent_id: str) -> None: ...


class QueueCalls:
    def __init__(self, *, settings: Settings, clock: Clock, acd: AcdDriver, ledger: CallLedger,
                 writer: RecordWriter, callbacks: CallbackStore | None = None,
                 virtual_hold: VirtualHoldSink | None = None,
                 publish: Publish | None = None,
                 recorder: CallRecorder | None = None) -> None:
        self._settings = settings
        self._clock = clock
        self._acd = acd
        self._ledger = ledger
        self._writer = writer
        self._callbacks = callbacks
        self._virtual_hold = virtual_hold
        self._publish = publish
        self._recorder = recorder
        self.not_offered = NotOfferedTally()  # callers a queue could not offer a callback

    def callbacks_not_offered(self, queue: str) -> NotOffered:
        """The queue's callers not offered a callback: waiting now, and over the last day."""
        return self.not_offered.figures(queue, self._clock.now())

    async def wait(self, session: AgiSession, call_id: str, request: QueueRequest,
                   ) -> WaitOutcome:
        """Until an agent took the call and the talk is over, or no agent can; AgiHangup
        when the caller hangs up first."""
        queue = self.queue_settings(request.queue)
        # In line at once, so an idle agent rings now; one instant for the record's wait
        # (queued_at) and the live queue's waiting_since. A callback keeps this place.
        joined = self._clock.now()
        self._writer.apply(self._ledger.queued(call_id, queue.name, joined))
        if self._recorder is not None:
            # "This call may be recorded" comes first, before any agent is offered the call;
            # its time counts as waiting (the caller is in the queue).
            await self._recorder.caller_joined(session, call_id, queue.name)
        inbox = self._acd.enqueue(call_id, queue.name, priority=request.priority,
                                  skills=request.skills, for_agent=request.for_agent,
                                  waiting_since=joined)
        try:
            return await self._wait_in_line(session, call_id, request, queue, joined, inbox)
        finally:
            self._no_longer_waiting(call_id)

    async def _wait_in_line(self, session: AgiSession, call_id: str, request: QueueRequest,
                            queue: QueueSettings, joined: float,
                            inbox: asyncio.Queue[CallMessage]) -> WaitOutcome:
        self._check_offer(session, call_id, queue)
        await session.set_variable(QUEUE_VARIABLE, queue.name)
        await session.set_variable("QUEUE_PRIO", str(max(0, request.priority)))
        if not _decision_pending(inbox):
            # Nobody could take the call at once: the caller hears they are in line. An
            # agent freed meanwhile is rung as soon as the sentence ends (AGI plays one
            # thing at a time); with an agent free at once the caller hears only the ring.
            await _play(session, "please-hold")
        await session.set_music(True, queue.moh_class)
        while True:
            message = await next_message(inbox, session)
            match message:
                case NoAgentAvailable() | QueueTimedOut() | QueueFull():
                    await session.set_music(False, queue.moh_class)
                    await _play(session, "sorry-no-agent")
                    await session.hangup()
                    return WaitOutcome.NO_AGENT
                case Overflowed(to_queue=target):
                    log.info("call %s: overflowed from %s to %s", call_id, queue.name, target)
                    queue = self.queue_settings(target)
                    self._writer.apply(self._ledger.queued(call_id, queue.name,
                                                           self._clock.now()))
                    self._check_offer(session, call_id, queue)
                    await session.set_variable(QUEUE_VARIABLE, queue.name)
                    await session.set_music(True, queue.moh_class)
                case Announce(position=position, expected_wait=expected):
                    await session.set_music(False, queue.moh_class)
                    digit = await self._announce(session, queue, position, expected)
                    if digit == CALLBACK_KEY and await self._leave_for_callback(
                            session, call_id, queue, _place(queue, joined, request), inbox):
                        return WaitOutcome.CALLBACK
                    await session.set_music(True, queue.moh_class)
                case KeyPressed(digit=digit) if (digit == CALLBACK_KEY
                                                 and self._can_call_back(session, queue)):
                    await session.set_music(False, queue.moh_class)
                    if await self._leave_for_callback(
                            session, call_id, queue, _place(queue, joined, request), inbox):
                        return WaitOutcome.CALLBACK
                    await session.set_music(True, queue.moh_class)
                case KeyPressed():
                    continue
                case OfferCall(agent_id=agent_id, mode=ConnectMode.NAILED):
                    await self.join_nailed(session, call_id, agent_id, queue)
                    return WaitOutcome.TALKED
                case OfferCall(agent_id=agent_id, ring_timeout=ring_timeout):
                    if await self.ring(session, call_id, agent_id, ring_timeout,
                                        queue.moh_class, queue=queue.name):
                        return WaitOutcome.TALKED
                    await session.set_music(True, queue.moh_class)
                case _:
                    raise RuntimeError(f"the ACD decided something unknown: {message!r}")

    # ------------------------------------------------------------------ agents

    async def ring(self, session: AgiSession, call_id: str, agent_id: str,
                    ring_timeout: float, moh_class: str, *, queue: str | None = None) -> bool:
        """Ring one agent; True when they answered and the talk is over (agent hung up).
        ``queue``: whose recording policy applies (a campaign's own policy wins anyway)."""
        if self._recorder is not None:
            await self._recorder.connecting(session, call_id, queue, agent_id)
        started = self._clock.now()
        self._ledger.attempt_started(call_id, agent_id, started)
        await session.set_variable(STAGE_VARIABLE, "ringing")
        # m(): the caller keeps hearing music while the phone rings; g: when the agent hangs
        # up, control returns here with the caller still on the line, so we know who ended it;
        # AGENT_LEG_DIAL_OPTIONS: the agent's leg can start an attended transfer (AMI Atxfer).
        seconds = max(1, round(ring_timeout))
        await session.exec("Dial", f"PJSIP/{agent_id},{seconds},m({moh_class})g"
                                   f"{AGENT_LEG_DIAL_OPTIONS}")
        status = await session.get_variable("DIALSTATUS") or "UNKNOWN"
        self._writer.apply(self._ledger.attempt_ended(call_id, agent_id, status,
                                                      self._clock.now()))
        if status == "ANSWER":
            await session.set_variable(STAGE_VARIABLE, "talked")
            self._acd.answered(call_id, agent_id)
            return True
        await session.set_variable(STAGE_VARIABLE, "waiting")
        log.info("call %s: agent %s did not take the call (%s)", call_id, agent_id, status)
        self._acd.failed(call_id, agent_id, DIAL_FAILURES.get(status, OfferFailure.UNREACHABLE))
        if self._clock.now() - started < FAST_FAILURE_SECONDS:
            await _wait_or_hangup(session, FAST_FAILURE_SECONDS)
        return False

    async def join_nailed(self, session: AgiSession, call_id: str, agent_id: str,
                           queue: QueueSettings) -> None:
        """A nailed-up agent is already on the line: the caller joins their bridge at once."""
        if self._recorder is not None:
            await self._recorder.connecting(session, call_id, queue.name, agent_id)
        now = self._clock.now()
        self._ledger.attempt_started(call_id, agent_id, now)
        self._writer.apply(self._ledger.agent_joined(call_id, agent_id, now))
        self._acd.answered(call_id, agent_id)
        try:
            await session.set_music(False, queue.moh_class)
            await session.set_variable(STAGE_VARIABLE, "talking")
            await session.exec("ConfBridge", caller_join_arguments(agent_id))
            result = await session.get_variable("CONFBRIDGE_RESULT")
        finally:  # the talk is over when the caller leaves the bridge, or hangs up
            self._writer.apply(self._ledger.attempt_ended(call_id, agent_id, "ANSWER",
                                                          self._clock.now()))
        await session.set_variable(STAGE_VARIABLE, "talked")
        log.info("call %s: left agent %s's bridge (%s)", call_id, agent_id, result)
        if result == "HANGUP" or session.hung_up:
            raise AgiHangup("caller hung up while talking to a nailed-up agent")

    # ------------------------------------------------------------------ waiting

    async def _announce(self, session: AgiSession, queue: QueueSettings, position: int,
                        expected_wait: float) -> str | None:
        """Position, expected wait and (if offered) the callback key; the key pressed."""
        keys = CALLBACK_KEY if self._can_call_back(session, queue) else ""
        digit = await _play(session, "queue-position", keys)
        digit = digit or await session.say_number(position, keys)
        digit = digit or await _play(session, "queue-in-line", keys)
        minutes = round(expected_wait / 60)
        if minutes < 1:
            digit = digit or await _play(session, "queue-less-than-a-minute", keys)
        else:
            digit = digit or await _play(session, "queue-expected-wait", keys)
            digit = digit or await session.say_number(minutes, keys)
            digit = digit or await _play(session, "queue-minutes", keys)
        if keys:
            digit = digit or await _play(session, "queue-callback-offer", keys)
        return digit

    def _can_call_back(self, session: AgiSession, queue: QueueSettings) -> bool:
        return queue.offer_callback and self._why_not_offered(session) is None

    def _why_not_offered(self, session: AgiSession) -> tuple[NoOfferReason, str] | None:
        """Why this caller cannot be called back (and the details, for the log); None: they
        can."""
        if self._callbacks is None or self._virtual_hold is None:
            return NoOfferReason.CALLBACKS_DISABLED, "outbound.trunk_host is not set"
        return callback_refusal(session.env.callerid, self._settings)

    def _check_offer(self, session: AgiSession, call_id: str, queue: QueueSettings) -> None:
        """A caller joining a queue that offers callbacks but cannot offer them one: said
        once per call (with the reason and the rule), counted on the queue's live view."""
        refused = self._why_not_offered(session) if queue.offer_callback else None
        counted_in = self.not_offered.counted_in(call_id)
        if refused is None:
            if counted_in is not None:  # overflowed to a queue that offers none to anyone
                self._no_longer_waiting(call_id)
            return
        reason, details = refused
        if self.not_offered.not_offered(call_id, queue.name, reason, self._clock.now()):
            level = logging.WARNING if reason is NoOfferReason.CALLBACKS_DISABLED else logging.INFO
            log.log(level, "call %s: queue %s offers callbacks, but not to this caller: %s (%s)",
                    call_id, queue.name, reason.text, details)
        if counted_in != queue.name:
            if counted_in is not None:  # overflowed: no longer waiting there
                self._announce_not_offered(counted_in, call_id, None)
            self._announce_not_offered(queue.name, call_id, reason)

    def _no_longer_waiting(self, call_id: str) -> None:
        queue = self.not_offered.left(call_id)
        if queue is not None:
            self._announce_not_offered(queue, call_id, None)

    def _announce_not_offered(self, queue: str, call_id: str,
                              reason: NoOfferReason | None) -> None:
        """Live screens: the queue's count of callers not offered a callback changed."""
        if self._publish is None:
            return
        try:
            self._publish("queue", {
                "queue": queue, "change": "callbacks_not_offered", "call_id": call_id,
                "reason": None if reason is None else reason.value,
                "callbacks_not_offered": CallbacksNotOffered.of(
                    self.callbacks_not_offered(queue)).model_dump(mode="json")})
        except Exception:  # live screens are a nicety: the caller waits all the same
            log.exception("queue %s: live event not published", queue)

    async def _leave_for_callback(self, session: AgiSession, call_id: str,
                                  queue: QueueSettings, place: QueuePlace,
                                  inbox: asyncio.Queue[CallMessage]) -> bool:
        """Store the request, hand the place in line to the callback, say goodbye. False if
        it could not be stored or an agent was offered the call meanwhile (the caller keeps
        waiting)."""
        number = callback_number(session.env.callerid, self._settings)
        if number is None or self._callbacks is None or self._virtual_hold is None:
            return False
        record = self._ledger.get(call_id)
        request = CallbackRequest(
            call_id=call_id, queue=queue.name, number=number,
            requested_at=self._clock.now(), flow="virtual-hold",
            protocol=record.protocol if record else None,
            caller_name=_known(session.env.calleridname), queued_at=place.waiting_since)
        try:
            stored = await self._callbacks.add(request)
        except Exception:
            log.exception("call %s: the virtual-hold callback could not be stored", call_id)
            return False
        if not self._acd.holds(call_id) or _decision_pending(inbox):
            # An offer, an overflow or a time-out came while the request was stored: the
            # caller goes on with it, and the request must not call them back as well.
            await self._cancel(stored)
            return False
        # The caller's own entry leaves the line (so the handler's end cannot take the
        # callback's out with it) and the callback's takes the same place at once.
        self._acd.left(call_id)
        if record is not None:  # the caller's record names the callback that serves them
            record.callback_request_id = stored.id
        try:
            self._virtual_hold.hold(stored, place)
        except Exception:
            log.exception("call %s: the callback could not take the caller's place; request "
                          "%s stays pending for the dialer's next scan", call_id, stored.id)
        log.info("call %s: left queue %s for a callback to %s (request %s)", call_id,
                 queue.name, number, stored.id)
        await _play(session, "queue-callback-registered")
        await session.hangup()
        return True

    async def _cancel(self, request: CallbackRequest) -> None:
        if self._callbacks is None or request.id is None:
            return
        try:
            await self._callbacks.set_status(request.id, CallbackStatus.CANCELLED)
        except Exception:
            log.exception("callback request %s: could not be cancelled", request.id)

    def queue_settings(self, name: str) -> QueueSettings:
        queue = self._settings.queue(name)
        if queue is None:  # the flow validator makes this impossible; say so if it happens
            raise RuntimeError(f"the flow routed to unknown queue {name!r}")
        return queue


@dataclass(frozen=True)
class QueuePlace:
    """Where a caller stood in line: a callback that takes it is served as they would be."""

    queue: str
    waiting_since: float
    priority: int = 0
    skills: Mapping[str, int] | None = None
    for_agent: str | None = None


class VirtualHoldSink(Protocol):
    """Who dials callers back when their turn comes (the callback dialer)."""

    def hold(self, request: CallbackRequest, place: QueuePlace) -> None:
        """Put the callback in line at ``place`` now; ValueError if it cannot."""
        ...


def _place(queue: QueueSettings, joined: float, request: QueueRequest) -> QueuePlace:
    return QueuePlace(queue.name, joined, request.priority, request.skills, request.for_agent)


def _decision_pending(inbox: asyncio.Queue[CallMessage]) -> bool:
    """Whether the ACD decided something for the call that its handler has not read yet
    (an offer, an overflow, a time-out); the inbox is left as it was."""
    unread = []
    while not inbox.empty():
        unread.append(inbox.get_nowait())
    for message in unread:
        inbox.put_nowait(message)
    return any(not isinstance(message, KeyPressed | Announce) for message in unread)


def callback_number(caller_id: str, settings: Settings) -> str | None:
    """The caller's own number when the outbound rules allow calling it back."""
    return caller_id if callback_refusal(caller_id, settings) is None else None


ANONYMOUS = frozenset({"", "unknown", "<unknown>", "anonymous"})


def callback_refusal(caller_id: str, settings: Settings) -> tuple[NoOfferReason, str] | None:
    """Why the caller's number may not be called back, with the rule that says so; None when
    it may (as an outside number or as an extension)."""
    if caller_id.strip().lower() in ANONYMOUS:
        return NoOfferReason.NO_NUMBER, f"caller ID {caller_id or '(empty)'!r}"
    refusals = {kind: refusal(kind, caller_id, settings.outbound)
                for kind in (EXTERNAL, EXTENSION)}
    if None in refusals.values():
        return None
    # The rule the number comes closest to: an outside number's when it looks like one.
    kind = EXTERNAL if caller_id.startswith("+") else EXTENSION
    return NoOfferReason.NUMBER_NOT_ALLOWED, str(refusals[kind])


def _known(value: str) -> str | None:
    return None if not value or value == "unknown" else value


async def next_message(inbox: asyncio.Queue[CallMessage], session: AgiSession,
                        ) -> CallMessage:
    """The ACD's next decision (or a key) for this call, or AgiHangup when the caller left."""
    if not inbox.empty():
        return inbox.get_nowait()
    getter = asyncio.ensure_future(inbox.get())
    hangup = asyncio.ensure_future(session.hangup_event.wait())
    try:
        await asyncio.wait({getter, hangup}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        hangup.cancel()
        if not getter.done():
            getter.cancel()
    if getter.done() and not getter.cancelled():
        if session.hung_up:  # the caller left at the same moment: hand the decision back
            inbox.put_nowait(getter.result())
            raise AgiHangup("caller hung up while waiting in queue")
        return getter.result()
    raise AgiHangup("caller hung up while waiting in queue")


async def _wait_or_hangup(session: AgiSession, seconds: float) -> None:
    try:
        await asyncio.wait_for(session.hangup_event.wait(), seconds)
    except TimeoutError:
        return
    raise AgiHangup("caller hung up")
