"""Transfers of a caller who is talking to an agent, to a queue or to another agent.

A blind transfer moves the caller's channel (AMI ``Redirect``) out of the agent's bridge into
the generated ``callcenter-transfer`` context, which hands it to the FastAGI script
``transfer`` (``handle`` here). Asterisk ends the first FastAGI session of the call when the
channel leaves: that session ends the agent's call in the ACD as any talk that is over (the
agent goes to wrap-up), and their phone leg is hung up (a nailed-up agent stays in their
bridge). ``handle`` then waits for that session to finish and queues the caller again,
through the same queue handling as an inbound caller (``QueueCalls.wait``): a new entry in
the ACD under the same call id, with the caller's priority (``QUEUE_PRIO``), for the target
queue or only for the target agent (under the rules of that agent's first queue). Like the
core's ``Acd.move``, the transfer starts a new wait in the target queue.

Before anything moves, the target is checked by the one rule of core/transfer_rules.py, the
same for both modes: a target agent must be one who could answer (logged in, not paused, phone
reachable, serving a queue), a target queue must have such an agent; an attended transfer
also needs them free now. Refused: NotTransferable (HTTP 409) with the reason, and the first
agent keeps the caller.

The call's record goes on (docs/records.md): the same call id lists the transfer (every
request, refused ones too, with how it ended) and each agent's leg with its answer and talk;
the first agent's leg ends when the transfer hangs up their phone. Its ``queue`` stays the one
the caller first waited in; ``agent_id`` and talk time stay those of the first agent who
answered.

An attended transfer (to an agent, from a ring-mode agent's call) is Asterisk's own: AMI
``Atxfer`` on the first agent's phone leg, to a consult extension (``callcenter-consult``,
a token registered as a global variable just before) that rings the second agent. The caller
is put on hold (music) while the two agents talk; when the first agent hangs up, Asterisk
hands the caller to the second one (AMI ``AttendedTransfer``, Result Success), in the same
bridge, so the call's FastAGI session stays in its ``Dial`` throughout. If the second agent
does not answer, is busy, or hangs up first, the consult ends and the first agent has the
caller back. For the ACD, the second agent is on the call "elsewhere" (``busy_elsewhere``)
from the request until their phone leg hangs up, so nothing else is offered to them; when
the transfer completes the first agent's call ends (wrap-up). AMI events reach ``on_event``.
A nailed-up agent cannot start one: their phone sits in a ConfBridge, which has no transfer
features (``AttendedNotSupported``).

What each transfer is doing is decided by the pure state machine ``AgentTransfers``
(core/agent_transfers.py): this class turns AMI events, the answers to the AMI actions it sent,
the transfer script's start and its timer into the machine's events, and performs the actions
the machine returns (AMI actions, the ACD's agents, the call's record).

An attended transfer to a queue is the same consult, with the agent the queue's routing would
give a new call right now (``Acd.who_would_take``: its strategy among its READY, reachable
tier-0 agents, with the skills the call asked for; not the first agent, not a nailed-up one).
Nobody free: refused (a blind transfer waits in line instead). The caller does not join the
queue's line: if the picked agent declines, the first agent has the caller back.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

from callcenter.asterisk.agi import AgiHangup
from callcenter.asterisk.agi_server import AgiSession
from callcenter.asterisk.ami import AmiActionError, AmiError
from callcenter.asterisk.events import DialBegin, DialEnd, Hangup, OtherEvent
from callcenter.asterisk.prompting import hang_up_quietly, play
from callcenter.config import Settings
from callcenter.core.acd import (
    AgentState,
    AgentStateError,
    AgentView,
    ConnectMode,
    UnknownAgent,
)
from callcenter.core.agent_transfers import (
    Action,
    AgentTransfers,
    AttendedTransferDone,
    CallerArrived,
    CallerRedirected,
    ChannelHungUp,
    ConsultNotStarted,
    ConsultRequested,
    ConsultStarted,
    DialBegan,
    DialEnded,
    Event,
    FirstAgentDone,
    RecordAttemptEnded,
    RecordAttemptStarted,
    RecordConsultAnswered,
    RecordConsultEnded,
    RecordTalkEnded,
    RecordTransferCompleted,
    RecordTransferRequested,
    ReleaseAgent,
    StartConsult,
    WakeAt,
)
from callcenter.core.calls import CallLedger
from callcenter.core.clock import Clock
from callcenter.core.records import HangupBy, TransferOutcome
from callcenter.core.transfer_rules import TransferMode, agent_refusal, queue_refusal
from callcenter.features.calls.recorder import RecordWriter
from callcenter.features.queues.driver import AcdDriver
from callcenter.features.queues.waiting import QueueRequest, WaitOutcome
from callcenter.features.supervision.dialplan import (
    CONSULT_CONTEXT,
    CONSULT_TOKEN_DIGITS,
    NAME_RE,
    TO_AGENT,
    TO_QUEUE,
    TRANSFER_CONTEXT,
    agent_transfer_extension,
    consult_target,
    consult_token,
    consult_variable,
    queue_transfer_extension,
)

log = logging.getLogger(__name__)

AmiSend = Callable[[Mapping[str, Any]], Awaitable[object]]
Sleep = Callable[[float], Awaitable[None]]
PRIORITY_VARIABLE = "QUEUE_PRIO"  # set by the queue handling before a caller waits
# How long the transferred caller's new session waits for the first one to finish (it ends
# as soon as Asterisk tells it the channel left; this only bounds a stuck one).
HANDOVER_SECONDS = 10.0
HANDOVER_POLL_SECONDS = 0.05
# Atxfer is only queued on the agent's leg: if the consult has not started dialling by then
# (a leg without transfer features, the call just ended) the second agent is let go.
CONSULT_START_SECONDS = 10.0


class TransferError(Exception):
    """A transfer that cannot be carried out; the message says why, for the requester."""


class CallNotFound(TransferError):
    """No open call has this id."""


class NotTransferable(TransferError):
    """The call, or the target, is not in a state to transfer (not talking, nobody to take
    it, the same agent...)."""


class AsteriskRefused(NotTransferable):
    """Asterisk refused the Redirect or the consult (the call may have just ended): 409, and
    the record says the transfer failed rather than that it was refused."""


class TargetNotFound(TransferError):
    """The queue or agent to transfer to does not exist."""


class AttendedNotSupported(TransferError):
    """This call cannot be transferred attended (a nailed-up agent's; module docstring)."""


class AsteriskUnavailable(TransferError):
    """AMI is down or Asterisk refused the action."""


NAILED_REFUSAL = (
    "attended transfers are not available from a nailed-up agent: their phone stays in their "
    "own conference bridge, which has no transfer features; use mode 'blind' (the caller "
    "waits for the target as a new entry)")
QUEUE_NOBODY_FREE = ("nobody in queue {queue!r} is free now; a blind transfer waits in line "
                     "(mode 'blind')")
# The AMI events ``CallTransfers.on_event`` follows (an AmiDispatcher's kinds).
TRANSFER_EVENTS = (DialBegin, DialEnd, Hangup, "AttendedTransfer")


@dataclass(frozen=True)
class TransferTarget:
    """Exactly one of ``queue`` and ``agent``."""

    queue: str | None = None
    agent: str | None = None

    def __post_init__(self) -> None:
        if (self.queue is None) == (self.agent is None):
            raise ValueError("a transfer target is one queue or one agent")

    def describe(self) -> str:
        return f"queue {self.queue!r}" if self.queue is not None else f"agent {self.agent!r}"


@dataclass(frozen=True)
class TransferStarted:
    call_id: str
    from_agent: str
    target: TransferTarget
    mode: TransferMode


class QueueWaiter(Protocol):
    """The queue handling of callers (``features.queues.waiting.QueueCalls``)."""

    async def wait(self, session: AgiSession, call_id: str,
                   request: QueueRequest) -> WaitOutcome: ...


class CallTransfers:
    """``active`` is the map of calls whose FastAGI handler runs (``InboundCalls.active``):
    AMI's agent answers reach the ACD through it, and a transferred call's new session waits
    until the first session has left it."""

    def __init__(self, *, settings: Settings, clock: Clock, acd: AcdDriver,
                 queues: QueueWaiter, ledger: CallLedger, writer: RecordWriter,
                 send: AmiSend, active: MutableMapping[str, AgiSession],
                 handover_seconds: float = HANDOVER_SECONDS,
                 sleep: Sleep = asyncio.sleep,
                 consult_start_seconds: float = CONSULT_START_SECONDS) -> None:
        self._settings = settings
        self._clock = clock
        self._acd = acd
        self._queues = queues
        self._ledger = ledger
        self._writer = writer
        self._send = send
        self._active = active
        self._handover_seconds = handover_seconds
        self._sleep = sleep
        self._machine = AgentTransfers(consult_context=CONSULT_CONTEXT,
                                       handover_seconds=handover_seconds,
                                       consult_start_seconds=consult_start_seconds)
        self._tokens = itertools.count(random.randrange(10**CONSULT_TOKEN_DIGITS))

    # ------------------------------------------------------------------ the request

    def agent_on(self, call_id: str) -> str:
        """The agent talking with the caller of ``call_id`` now; CallNotFound or
        NotTransferable otherwise."""
        if not isinstance(call_id, str) or self._ledger.get(call_id) is None:
            raise CallNotFound(f"call {str(call_id)[:40]!r}: no such call in progress")
        consulted = self.consulting(call_id)  # held for the call, not talking with the caller
        for agent in self._acd.talking_on(call_id):
            if agent.agent_id != consulted:
                return agent.agent_id
        raise NotTransferable(f"call {call_id!r} is not talking to an agent now "
                              "(still in the IVR, waiting or ringing): only a call an agent "
                              "answered can be transferred")

    async def transfer(self, call_id: str, target: TransferTarget,
                       mode: TransferMode | str = TransferMode.BLIND) -> TransferStarted:
        """Send the caller of ``call_id`` to ``target``. Raises ValueError for an unknown
        mode, AttendedNotSupported, CallNotFound, NotTransferable, TargetNotFound or
        AsteriskUnavailable."""
        mode = TransferMode(mode)
        from_agent = self.agent_on(call_id)
        try:
            if mode is TransferMode.ATTENDED:
                return await self._attended(call_id, target, from_agent)
            return await self._blind(call_id, target, from_agent)
        except TransferError as exc:
            # The record tells of the request and why it went nowhere.
            outcome = (TransferOutcome.FAILED
                       if isinstance(exc, AsteriskRefused | AsteriskUnavailable)
                       else TransferOutcome.REFUSED)
            self._writer.apply(self._ledger.transfer_refused(
                call_id, mode, from_agent, self._clock.now(), str(exc), to_agent=target.agent,
                to_queue=target.queue, outcome=outcome))
            raise

    async def _blind(self, call_id: str, target: TransferTarget,
                     from_agent: str) -> TransferStarted:
        mode = TransferMode.BLIND
        busy = self._machine.refusal(call_id, from_agent, mode, self._clock.now())
        if busy is not None:
            raise NotTransferable(busy)
        exten = self._checked_target(target, from_agent, mode)
        record = self._ledger.get(call_id)
        channel = record.channel if record is not None else None
        if not channel:
            raise NotTransferable(f"call {call_id!r}: the caller's channel is not known")
        action = {"Action": "Redirect", "Channel": channel, "Context": TRANSFER_CONTEXT,
                  "Exten": exten, "Priority": 1}
        try:
            await self._send(action)
        except AmiActionError as exc:
            raise AsteriskRefused(f"call {call_id!r}: Asterisk could not move the caller "
                                    f"({exc.message}); the call may have just ended") from None
        except AmiError as exc:
            raise AsteriskUnavailable(f"Asterisk cannot be reached: {exc}") from None
        self._apply(CallerRedirected(call_id, from_agent, to_agent=target.agent,
                                     to_queue=target.queue))
        log.info("call %s: agent %s transferred the caller (%s) to %s", call_id, from_agent,
                 channel, target.describe())
        return TransferStarted(call_id, from_agent, target, mode)

    def _checked_target(self, target: TransferTarget, from_agent: str,
                        mode: TransferMode) -> str:
        """The transfer extension for ``target``, after checking that someone there could
        answer the caller (core/transfer_rules.py, the same rule in both modes)."""
        if target.queue is not None:
            self._check_queue(target.queue, from_agent)
            return queue_transfer_extension(target.queue)
        agent_id = target.agent
        assert agent_id is not None
        self._check_agent(self._target_agent(agent_id), from_agent, mode)
        return agent_transfer_extension(agent_id)

    def _check_queue(self, queue: str, from_agent: str) -> None:
        if not NAME_RE.fullmatch(queue) or self._settings.queue(queue) is None:
            raise TargetNotFound(f"queue {queue[:40]!r}: no such queue")
        try:
            members = self._acd.queue_members(queue)
        except ValueError:  # configured, but not (yet) known to the ACD
            raise TargetNotFound(f"queue {queue!r}: no such queue") from None
        refusal = queue_refusal(queue, members, from_agent)
        if refusal is not None:
            raise NotTransferable(refusal)

    def _check_agent(self, agent: AgentView, from_agent: str, mode: TransferMode) -> None:
        if (refusal := agent_refusal(agent, from_agent, mode)) is not None:
            raise NotTransferable(refusal)
        # The caller waits under the rules of the agent's first queue the service knows.
        if not any(self._settings.queue(q) is not None for q in agent.queues):
            raise NotTransferable(f"agent {agent.agent_id!r} serves no queue whose rules the "
                                  "caller could wait under")

    def _target_agent(self, agent_id: str) -> AgentView:
        if not NAME_RE.fullmatch(agent_id):
            raise TargetNotFound(f"agent {agent_id[:40]!r}: no such agent")
        try:
            return self._acd.agent(agent_id)
        except UnknownAgent:
            raise TargetNotFound(f"agent {agent_id!r}: no such agent") from None

    # ------------------------------------------------------------------ attended

    async def _attended(self, call_id: str, target: TransferTarget,
                        from_agent: str) -> TransferStarted:
        """Consult ``target.agent`` (or the agent ``target.queue``'s routing picks now) with
        the caller on hold (module docstring)."""
        if target.queue is not None:
            self._check_queue(target.queue, from_agent)
        if self._acd.agent(from_agent).mode is ConnectMode.NAILED:
            raise AttendedNotSupported(NAILED_REFUSAL)
        busy = self._machine.refusal(call_id, from_agent, TransferMode.ATTENDED,
                                     self._clock.now())
        if busy is not None:
            raise NotTransferable(busy)
        to_agent = (target.agent if target.agent is not None
                    else self._queue_pick(target, call_id, from_agent))
        agent = self._target_agent(to_agent)
        self._check_agent(agent, from_agent, TransferMode.ATTENDED)
        queues = [q for q in agent.queues if self._settings.queue(q) is not None]
        try:  # nothing else is offered to them from now on
            self._acd.busy_elsewhere(to_agent, call_id, queue=queues[0] if queues else None)
        except AgentStateError as exc:
            raise NotTransferable(f"agent {to_agent!r} cannot take it now: {exc}") from None
        token = consult_token(next(self._tokens))
        first_queue = self._settings.queue(queues[0]) if queues else None
        ring = first_queue.ring_timeout if first_queue is not None else 15
        for action in self._machine.handle(
                ConsultRequested(call_id, from_agent, to_agent, token, ring,
                                 to_queue=target.queue), self._clock.now()):
            if isinstance(action, StartConsult):
                await self._start_consult(action)
            else:
                self._perform(action)
        log.info("call %s: agent %s consults agent %s (token %s) before handing the caller "
                 "on", call_id, from_agent, to_agent, token)
        return TransferStarted(call_id, from_agent, TransferTarget(agent=to_agent),
                               TransferMode.ATTENDED)

    async def _start_consult(self, action: StartConsult) -> None:
        """Ring the second agent through the consult extension (Setvar, then Atxfer)."""
        call_id = action.call_id
        try:
            await self._send({"Action": "Setvar", "Variable": consult_variable(action.token),
                              "Value": consult_target(action.to_agent, action.ring_seconds)})
            # Asterisk answers "Atxfer successfully queued"; Async: false tells the AMI
            # client that no event list follows (it would wait for one otherwise).
            await self._send({"Action": "Atxfer", "Channel": action.agent_channel,
                              "Context": CONSULT_CONTEXT, "Exten": action.token,
                              "Async": "false"})
        except (AmiActionError, AmiError) as exc:
            self._apply(ConsultNotStarted(call_id))
            if isinstance(exc, AmiActionError):
                raise AsteriskRefused(f"call {call_id!r}: Asterisk could not start the "
                                        f"consult ({exc.message}); the call may have just "
                                        "ended") from None
            raise AsteriskUnavailable(f"Asterisk cannot be reached: {exc}") from None
        self._apply(ConsultStarted(call_id))

    def _queue_pick(self, target: TransferTarget, call_id: str, from_agent: str) -> str:
        """The agent ``target.queue``'s routing would give a new call now (the call's own
        skills, tier 0), leaving out the first agent and nailed-up agents (a consult rings a
        phone; theirs sits in their bridge)."""
        queue = target.queue
        assert queue is not None
        nailed = [agent.agent_id for agent in self._acd.agents()
                  if agent.mode is ConnectMode.NAILED]
        try:
            picked = self._acd.who_would_take(queue, skills_of=call_id,
                                              exclude=[from_agent, *nailed])
        except ValueError:  # configured, but not (yet) known to the ACD
            raise TargetNotFound(f"queue {queue!r}: no such queue") from None
        if picked is None:
            raise NotTransferable(QUEUE_NOBODY_FREE.format(queue=queue))
        log.info("call %s: queue %s would give a new call to agent %s: consulting them",
                 call_id, queue, picked)
        return picked

    def consulting(self, call_id: str) -> str | None:
        """The agent being consulted about ``call_id`` now, if any."""
        return self._machine.consulting(call_id)

    def on_event(self, event: object) -> None:
        """AMI events (of ``TRANSFER_EVENTS``): agents' answers (their phone legs), consults'
        rings and ends, and completed attended transfers."""
        match event:
            case DialBegin():
                self._apply(DialBegan(event.channel))
            case DialEnd():
                self._apply(DialEnded(
                    event.uniqueid, event.channel, event.dest_uniqueid, event.dest_channel,
                    event.dial_status, call_known=self._ledger.get(event.uniqueid) is not None))
            case Hangup():
                self._apply(ChannelHungUp(event.uniqueid, event.channel))
            case OtherEvent(name="AttendedTransfer"):
                headers = event.headers
                result = headers.get("Result")
                if result != "Success":
                    log.warning("attended transfer of %s (transferer %s) failed (%s)",
                                headers.get("TransfereeUniqueid"),
                                headers.get("OrigTransfererChannel"), result)
                self._apply(AttendedTransferDone(
                    str(headers.get("OrigTransfererChannel") or ""),
                    str(headers.get("TransfereeUniqueid") or ""), success=result == "Success"))

    # ------------------------------------------------------------------ the machine's actions

    def _apply(self, event: Event) -> None:
        """Give ``event`` to the machine and perform what it asks (never a consult start:
        only a request starts one, and awaits it)."""
        for action in self._machine.handle(event, self._clock.now()):
            self._perform(action)

    def _perform(self, action: Action) -> None:
        match action:
            case ReleaseAgent(agent_id=agent_id, call_id=call_id):
                self._release(agent_id, call_id)
            case FirstAgentDone(agent_id=agent_id, call_id=call_id):
                # A routed call ends as any talk (wrap-up); one the agent had taken over
                # themselves by an earlier attended transfer, as a call elsewhere.
                if self._acd.holds(call_id):
                    self._acd.left(call_id)
                else:
                    self._release(agent_id, call_id)
                log.info("call %s: attended transfer done: agent %s's talk with the caller is "
                         "over", call_id, agent_id)
            case WakeAt(at=at, event=due):
                delay = max(0.0, at - self._clock.now())
                asyncio.get_running_loop().call_later(delay, self._apply, due)
            case StartConsult():
                raise AssertionError("a consult starts only from a request")
            case _:
                self._record(action)

    def _record(self, action: Action) -> None:
        """Write ``action`` to its call's record (if the call is still in the ledger)."""
        ledger, call_id = self._ledger, action.call_id
        if ledger.get(call_id) is None:
            return
        match action:
            case RecordTransferRequested():
                self._writer.apply(ledger.transfer_requested(
                    call_id, action.mode, action.from_agent, action.at,
                    to_agent=action.to_agent, to_queue=action.to_queue))
            case RecordAttemptStarted():
                ledger.attempt_started(call_id, action.agent_id, action.at)
            case RecordConsultAnswered():
                self._writer.apply(ledger.attempt_answered(call_id, action.agent_id,
                                                           action.at))
            case RecordConsultEnded():
                log.info("call %s: agent %s did not take the consult (%s); the first agent "
                         "has the caller back", call_id, action.agent_id, action.status)
                self._writer.apply(ledger.consult_ended(call_id, action.agent_id,
                                                        action.status, action.at))
            case RecordAttemptEnded():
                self._writer.apply(ledger.attempt_ended(call_id, action.agent_id,
                                                        action.status, action.at))
            case RecordTransferCompleted():
                self._writer.apply(ledger.transfer_ended(call_id, TransferOutcome.COMPLETED,
                                                         action.at))
            case RecordTalkEnded():
                log.info("call %s: agent %s's talk after the attended transfer is over",
                         call_id, action.agent_id)
                self._writer.apply(ledger.talk_ended(call_id, action.agent_id, action.at))

    def _release(self, agent_id: str, call_id: str) -> None:
        """``agent_id``'s part in ``call_id`` outside the ACD's routing is over."""
        try:
            view = self._acd.agent(agent_id)
        except UnknownAgent:
            return
        if view.call_id != call_id or view.state is not AgentState.ON_CALL:
            return
        try:
            self._acd.elsewhere_ended(agent_id)
        except ValueError as exc:  # a call the ACD routed to them: its handler ends it
            log.info("agent %s: %s", agent_id, exc)

    # ------------------------------------------------------------------ the transferred caller

    async def handle(self, session: AgiSession) -> None:
        """The FastAGI script ``transfer``: arguments ``queue,<name>`` or ``agent,<id>``."""
        env = session.env
        call_id = env.uniqueid
        self._apply(CallerArrived(call_id))  # the caller arrived: it may be transferred again
        request = self._queue_request(env.args)
        if request is None:
            log.error("call %s (%s): transfer script with unusable arguments %r", call_id,
                      env.channel, env.args)
            self._transfer_failed(call_id, "the transfer's target can no longer take calls")
            await _apologise(session)
            return
        if not await self._first_session_gone(call_id):
            log.error("call %s (%s): its first session did not end within %s s; the "
                      "transfer to %s is given up", call_id, env.channel,
                      self._handover_seconds, request.queue)
            self._transfer_failed(call_id, "the call's first session did not let it go")
            await _apologise(session)
            return
        self._active[call_id] = session
        self._writer.apply(self._ledger.handler_started(
            call_id, channel=env.channel, caller_number=env.callerid,
            caller_name=env.calleridname, dialed_number=env.extension,
            now=self._clock.now()))
        # The first agent's leg is over (AMI's hangup of it, if seen, said when exactly).
        self._writer.apply(self._ledger.caller_moved(call_id, self._clock.now()))
        hangup_by, no_agent, completed, failure = HangupBy.CALLER, False, False, None
        try:
            request = await self._with_priority(session, request)
            outcome = await self._queues.wait(session, call_id, request)
            match outcome:
                case WaitOutcome.TALKED:
                    hangup_by = HangupBy.AGENT
                case WaitOutcome.CALLBACK:
                    hangup_by, completed = HangupBy.SYSTEM, True
                case _:
                    hangup_by, no_agent = HangupBy.SYSTEM, True
            self._acd.left(call_id)  # the agent is free (wrap-up) before the caller hangs up
            await hang_up_quietly(session)
        except AgiHangup:
            hangup_by = HangupBy.CALLER
            self._caller_left_talk(call_id)
        except Exception as exc:
            failure = f"transferred call handling failed: {type(exc).__name__}: {exc}"
            log.exception("call %s (%s): %s", call_id, env.channel, failure)
            hangup_by = HangupBy.SYSTEM
            await _apologise(session)
        finally:
            self._active.pop(call_id, None)
            self._acd.left(call_id)
            self._writer.apply(self._ledger.handler_finished(
                call_id, self._clock.now(), hangup_by=hangup_by, no_agent=no_agent,
                completed_in_ivr=completed, failure=failure))

    def _transfer_failed(self, call_id: str, reason: str) -> None:
        if self._ledger.get(call_id) is not None:
            self._writer.apply(self._ledger.transfer_ended(call_id, TransferOutcome.FAILED,
                                                           self._clock.now(), reason))

    def _caller_left_talk(self, call_id: str) -> None:
        """The caller hung up while talking to the agent they were transferred to: that ring
        attempt was answered and its talk is over (if AMI's answer and hangup of the leg were
        missed; otherwise this changes nothing)."""
        try:
            agent_id = self.agent_on(call_id)
        except TransferError:
            return
        record = self._ledger.get(call_id)
        last = record.attempts[-1] if record is not None and record.attempts else None
        if last is not None and last.agent_id == agent_id and last.ended_at is None:
            self._writer.apply(self._ledger.attempt_ended(call_id, agent_id, "ANSWER",
                                                          self._clock.now()))

    def _queue_request(self, args: tuple[str, ...]) -> QueueRequest | None:
        """What the transfer extension asked for, if it still makes sense."""
        if len(args) < 2 or not NAME_RE.fullmatch(args[1]):
            return None
        kind, name = args[0], args[1]
        if kind == TO_QUEUE:
            return QueueRequest(name) if self._settings.queue(name) is not None else None
        if kind == TO_AGENT:
            try:
                queues = self._acd.agent(name).queues
            except UnknownAgent:
                return None
            known = [q for q in queues if self._settings.queue(q) is not None]
            return QueueRequest(known[0], for_agent=name) if known else None
        return None

    async def _first_session_gone(self, call_id: str) -> bool:
        """Wait until the call's first FastAGI session has finished with it."""
        waited = 0.0
        while call_id in self._active:
            if waited >= self._handover_seconds:
                return False
            await self._sleep(HANDOVER_POLL_SECONDS)
            waited += HANDOVER_POLL_SECONDS
        return True

    async def _with_priority(self, session: AgiSession, request: QueueRequest) -> QueueRequest:
        """The caller keeps the priority they waited with before."""
        raw = await session.get_variable(PRIORITY_VARIABLE)
        if raw and raw.isdigit():
            return QueueRequest(request.queue, priority=int(raw), skills=request.skills,
                                for_agent=request.for_agent)
        return request


async def _apologise(session: AgiSession) -> None:
    """Never silence: the caller hears why the call ends."""
    try:
        await play(session, "sorry-no-agent")
    except AgiHangup:
        return
    await hang_up_quietly(session)
