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

The call's record goes on: the same call id gains the new queue and the new agent's ring
attempts; its ``agent_id`` and talk time stay those of the first agent who answered.

Attended transfers are not offered (``AttendedNotSupported``): Asterisk's own (``Atxfer``)
needs an ``atxfer`` feature code and transfer-enabled bridges, which the agents' calls do not
have, and it keeps the caller in the first agent's bridge, so the first agent's call would not
end in the ACD when they hand the caller over.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from callcenter.asterisk.agi import AgiHangup
from callcenter.asterisk.agi_server import AgiSession
from callcenter.asterisk.ami import AmiActionError, AmiError
from callcenter.asterisk.supervision_dialplan import (
    NAME_RE,
    TO_AGENT,
    TO_QUEUE,
    TRANSFER_CONTEXT,
    agent_transfer_extension,
    queue_transfer_extension,
)
from callcenter.config import Settings
from callcenter.core.acd import AgentState, AgentView, UnknownAgent
from callcenter.core.calls import CallLedger
from callcenter.core.clock import Clock
from callcenter.core.records import HangupBy
from callcenter.service.acd_driver import AcdDriver
from callcenter.service.prompting import play
from callcenter.service.queue_wait import QueueRequest, WaitOutcome
from callcenter.service.recorder import RecordWriter

log = logging.getLogger(__name__)

AmiSend = Callable[[Mapping[str, Any]], Awaitable[object]]
Sleep = Callable[[float], Awaitable[None]]
PRIORITY_VARIABLE = "QUEUE_PRIO"  # set by the queue handling before a caller waits
# How long the transferred caller's new session waits for the first one to finish (it ends
# as soon as Asterisk tells it the channel left; this only bounds a stuck one).
HANDOVER_SECONDS = 10.0
HANDOVER_POLL_SECONDS = 0.05


class TransferMode(StrEnum):
    BLIND = "blind"
    ATTENDED = "attended"


class TransferError(Exception):
    """A transfer that cannot be carried out; the message says why, for the requester."""


class CallNotFound(TransferError):
    """No open call has this id."""


class NotTransferable(TransferError):
    """The call, or the target, is not in a state to transfer (not talking, nobody to take
    it, the same agent...)."""


class TargetNotFound(TransferError):
    """The queue or agent to transfer to does not exist."""


class AttendedNotSupported(TransferError):
    """Attended transfers are not offered (see the module docstring)."""


class AsteriskUnavailable(TransferError):
    """AMI is down or Asterisk refused the action."""


ATTENDED_REFUSAL = (
    "attended transfers are not available: Asterisk's attended transfer (Atxfer) needs an "
    "atxfer feature code and transfer-enabled agent bridges, which this call center does not "
    "set up, and it would keep the first agent on the call in the ACD; use mode 'blind' "
    "(the caller waits for the target queue or agent as a new entry)")


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
    """The queue handling of callers (``service.queue_wait.QueueCalls``)."""

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
                 sleep: Sleep = asyncio.sleep) -> None:
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
        self._moving: dict[str, float] = {}  # call id -> when its caller was redirected

    # ------------------------------------------------------------------ the request

    def agent_on(self, call_id: str) -> str:
        """The agent talking with the caller of ``call_id`` now; CallNotFound or
        NotTransferable otherwise."""
        if not isinstance(call_id, str) or self._ledger.get(call_id) is None:
            raise CallNotFound(f"call {str(call_id)[:40]!r}: no such call in progress")
        agents = self._acd.acd.snapshot(self._clock.now())["agents"]
        for agent_id, agent in agents.items():
            if agent["call_id"] == call_id and agent["state"] == AgentState.ON_CALL.value:
                return str(agent_id)
        raise NotTransferable(f"call {call_id!r} is not talking to an agent now "
                              "(still in the IVR, waiting or ringing): only a call an agent "
                              "answered can be transferred")

    async def transfer(self, call_id: str, target: TransferTarget,
                       mode: TransferMode | str = TransferMode.BLIND) -> TransferStarted:
        """Send the caller of ``call_id`` to ``target``. Raises ValueError for an unknown
        mode, AttendedNotSupported, CallNotFound, NotTransferable, TargetNotFound or
        AsteriskUnavailable."""
        mode = TransferMode(mode)
        if mode is TransferMode.ATTENDED:
            raise AttendedNotSupported(ATTENDED_REFUSAL)
        from_agent = self.agent_on(call_id)
        moved_at = self._moving.get(call_id)
        if moved_at is not None and self._clock.now() - moved_at < 2 * self._handover_seconds:
            raise NotTransferable(f"call {call_id!r} is already being transferred")
        exten = self._checked_target(target, from_agent)
        record = self._ledger.get(call_id)
        channel = record.channel if record is not None else None
        if not channel:
            raise NotTransferable(f"call {call_id!r}: the caller's channel is not known")
        action = {"Action": "Redirect", "Channel": channel, "Context": TRANSFER_CONTEXT,
                  "Exten": exten, "Priority": 1}
        try:
            await self._send(action)
        except AmiActionError as exc:
            raise NotTransferable(f"call {call_id!r}: Asterisk could not move the caller "
                                  f"({exc.message}); the call may have just ended") from None
        except AmiError as exc:
            raise AsteriskUnavailable(f"Asterisk cannot be reached: {exc}") from None
        self._moving[call_id] = self._clock.now()
        log.info("call %s: agent %s transferred the caller (%s) to %s", call_id, from_agent,
                 channel, target.describe())
        return TransferStarted(call_id, from_agent, target, mode)

    def _checked_target(self, target: TransferTarget, from_agent: str) -> str:
        """The transfer extension for ``target``, after checking someone can take the call."""
        if target.queue is not None:
            queue = target.queue
            if not NAME_RE.fullmatch(queue) or self._settings.queue(queue) is None:
                raise TargetNotFound(f"queue {queue[:40]!r}: no such queue")
            if self._acd.acd.queue_stats(queue, self._clock.now()).logged_in == 0:
                raise NotTransferable(f"queue {queue!r}: no agent is logged in there; the "
                                      "caller would wait for nobody")
            return queue_transfer_extension(queue)
        agent_id = target.agent
        assert agent_id is not None
        agent = self._target_agent(agent_id)
        if agent_id == from_agent:
            raise NotTransferable(f"agent {agent_id!r} already has this call")
        if agent.state is AgentState.LOGGED_OUT:
            raise NotTransferable(f"agent {agent_id!r} is logged out: the caller would wait "
                                  "for nobody")
        if not agent.queues:
            raise NotTransferable(f"agent {agent_id!r} serves no queue whose rules the "
                                  "caller could wait under")
        return agent_transfer_extension(agent_id)

    def _target_agent(self, agent_id: str) -> AgentView:
        if not NAME_RE.fullmatch(agent_id):
            raise TargetNotFound(f"agent {agent_id[:40]!r}: no such agent")
        try:
            return self._acd.acd.agent(agent_id)
        except UnknownAgent:
            raise TargetNotFound(f"agent {agent_id!r}: no such agent") from None

    # ------------------------------------------------------------------ the transferred caller

    async def handle(self, session: AgiSession) -> None:
        """The FastAGI script ``transfer``: arguments ``queue,<name>`` or ``agent,<id>``."""
        env = session.env
        call_id = env.uniqueid
        self._moving.pop(call_id, None)  # the caller arrived: it may be transferred again
        request = self._queue_request(env.args)
        if request is None:
            log.error("call %s (%s): transfer script with unusable arguments %r", call_id,
                      env.channel, env.args)
            await _apologise(session)
            return
        if not await self._first_session_gone(call_id):
            log.error("call %s (%s): its first session did not end within %s s; the "
                      "transfer to %s is given up", call_id, env.channel,
                      self._handover_seconds, request.queue)
            await _apologise(session)
            return
        self._active[call_id] = session
        self._writer.apply(self._ledger.handler_started(
            call_id, channel=env.channel, caller_number=env.callerid,
            caller_name=env.calleridname, dialed_number=env.extension,
            now=self._clock.now()))
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
            await _hang_up_quietly(session)
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

    def _caller_left_talk(self, call_id: str) -> None:
        """The caller hung up while talking to the agent they were transferred to: that ring
        attempt was answered. (AMI's answer marks only a call's first agent in the ledger.)"""
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
                queues = self._acd.acd.agent(name).queues
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
    await _hang_up_quietly(session)


async def _hang_up_quietly(session: AgiSession) -> None:
    if session.hung_up:
        return
    try:
        await session.hangup()
    except Exception:  # already gone: nothing left to do for this call
        log.debug("hangup of %s failed", session.env.channel, exc_info=True)
