"""Calls back the callers who asked for it, when their turn in the ACD comes.

Two kinds of callback request end up here, both ``CallbackRequest`` rows:

- virtual hold: a caller waiting in a queue pressed 1 (``QueueCalls``); ``hold()`` puts the
  callback in the caller's place in line at once (same queue, priority, skills and
  ``waiting_since``);
- the IVR's callback step (any other ``flow``): ``add()`` stores it and puts it in line.
  Pending requests no entry holds yet (stored by an earlier run, or while the dialer could
  not take them) are picked up at ``start()`` and every ``rescan_every`` seconds. They wait
  in the queue the request names, in line by ``requested_at``; a queue that no longer exists
  in the settings is replaced by the fallback dialplan's queue (``operator``, else the first).

Each request is one virtual entry of the ACD (call id ``callback-<request id>``), offered
like a caller. When its turn comes (``OfferCall(virtual=True)``):

- a ring-mode agent is rung first: an Originate of ``Local/s@callcenter-callback-ring``,
  which dials the agent's phone; when the agent answers, Asterisk runs our FastAGI step
  ``agent`` (``callcenter.features.callbacks.dialplan``), which dials the customer through
  the outbound context. Dial's ``U()`` runs the ``answered`` step on the customer's leg when
  they answer: the ACD counts the talk from then, the request is done, and the customer
  hears ``callback-connecting`` before the agent is bridged. The agent's ring goes through a
  Local channel so that an unanswered ring leaves no call record (the agent's own channel
  would look like a call from the agent's phone to the call records).
- a nailed-up agent is already on the line: the customer is dialled (an Originate of
  ``Local/<number>@callcenter-outbound``) and, once they answer, joined to the agent's bridge.

Outcomes for the ACD: the agent not answering is ``NO_ANSWER`` (RONA, the entry keeps its
place), busy ``REJECTED``, unreachable ``UNREACHABLE``; the customer not answering (busy,
no answer, the trunk failing) is ``CUSTOMER_NO_ANSWER``, which takes the entry out of line.
It comes back ``retry_after`` seconds later, in its old place, up to ``max_attempts`` calls
in all; then the request is marked failed. Attempts are counted in memory: a restart gives a
pending request its full count again.

Each call that reached an agent is a call record (the ledger's, keyed by the channel that
ran the FastAGI step): the customer's number as caller, the queue, the agent and the talk,
or a failure note when the customer was not reached. It names the request
(``callback_request_id``) and the call that asked (``callback_of``, whose own record names
the request too), and its wait is the customer's whole wait: ``queued_at`` is when they
joined the line the callback kept (their first call's queueing for virtual hold, the
request's time for the IVR's), so ``wait_seconds`` runs to the moment the customer was put
through to the agent (docs/records.md, "Callbacks"). The customer sees the call center's
number: ``outbound.caller_id``, else the IVR number.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from callcenter.asterisk.agi import AgiCommandError, AgiHangup
from callcenter.asterisk.agi_server import AgiSession
from callcenter.asterisk.ami import AmiError
from callcenter.asterisk.confgen import fallback_queue
from callcenter.asterisk.originate_fate import (
    ChannelSnapshot,
    OriginateFate,
    answer_lost,
    named_channels,
    originate_fate,
)
from callcenter.asterisk.prompting import play
from callcenter.config import NAME_RE, Settings
from callcenter.core.acd import (
    CallbackUnanswered,
    ConnectMode,
    NoAgentAvailable,
    OfferCall,
    OfferFailure,
    Overflowed,
    QueueFull,
    QueueTimedOut,
)
from callcenter.core.calls import CallLedger
from callcenter.core.clock import Clock
from callcenter.core.records import CallbackRequest, CallbackStatus, HangupBy
from callcenter.features.agents.dialplan import caller_join_arguments
from callcenter.features.callbacks.dialplan import (
    AGENT_STEP,
    AGENT_VARIABLE,
    ANSWERED_STEP,
    CALLBACK_CONTEXT,
    CUSTOMER_STEP,
    RING_CONTEXT,
    RING_VARIABLE,
    TOKEN_RE,
    TOKEN_VARIABLE,
    answered_option,
)
from callcenter.features.calls.recorder import RecordWriter
from callcenter.features.ivr.transfer_out import LOCAL_DIAL_GRACE_SECONDS, dial_arguments
from callcenter.features.queues.driver import AcdDriver, CallMessage
from callcenter.features.queues.waiting import QueuePlace, callback_number

log = logging.getLogger(__name__)

ENTRY_PREFIX = "callback-"  # the ACD's call id of a request: callback-<request id>
MAX_ATTEMPTS = 3  # calls to a customer who does not answer before the request fails
RETRY_AFTER_SECONDS = 300.0  # an unanswered customer is back in line this much later
RESCAN_EVERY_SECONDS = 60.0  # how often pending requests nobody holds are looked for
# An Originate whose FastAGI step did not start this long after it answered is given up.
AGI_START_SECONDS = 10.0
# The Originate waits this much beyond the ring (or dial) time its dialplan applies itself.
ORIGINATE_GRACE_SECONDS = 5
# A ring that fails this fast (or an AMI error) is not retried at once: nobody holds the line
# for a callback, and a broken dialplan must not originate in a tight loop.
FAST_FAILURE_SECONDS = 2.0
RETRY_PAUSE_SECONDS = 5.0
# After an Originate's answer was lost with the AMI connection, how often the channel
# snapshot is asked whether its call is under way (originate_fate).
FATE_POLL_SECONDS = 1.0
CONNECTING_PROMPT = "callback-connecting"
CALLER_ID_LABEL = "Callback"  # what the agent's phone shows beside the customer's number
PAGE = 200
# The Originate's Reason (Asterisk's control frame) when the agent's ring failed.
RING_FAILURES = {"5": OfferFailure.REJECTED, "8": OfferFailure.UNREACHABLE}


class AmiSender(Protocol):
    def __call__(self, action: Mapping[str, Any], *,
                 timeout: float | None = None) -> Awaitable[Any]: ...


class CallbackRequests(Protocol):
    async def add(self, request: CallbackRequest) -> CallbackRequest: ...

    async def get(self, callback_id: int) -> CallbackRequest | None: ...

    async def list(self, *, status: CallbackStatus | str | None = None, queue: str | None = None,
                   limit: int = 50, offset: int = 0,
                   ) -> tuple[builtins.list[CallbackRequest], int]: ...

    async def set_status(self, callback_id: int,
                         status: CallbackStatus | str) -> CallbackRequest: ...


Sleep = Callable[[float], Awaitable[object]]  # asyncio.sleep, or a test's virtual timers


@dataclass
class _Entry:
    """One request in line (or waiting to come back into line)."""

    request: CallbackRequest
    queue: str
    waiting_since: float
    priority: int = 0
    skills: Mapping[str, int] | None = None
    for_agent: str | None = None
    unanswered: int = 0  # calls the customer did not answer
    inbox: asyncio.Queue[CallMessage] | None = None
    not_before: float = 0.0  # after a fast failure, the next call waits until then

    @property
    def id(self) -> int:
        assert self.request.id is not None
        return self.request.id

    @property
    def call_id(self) -> str:
        return f"{ENTRY_PREFIX}{self.id}"


@dataclass
class _Attempt:
    """One offer being carried out: the Originate, then the FastAGI steps it leads to."""

    token: str
    entry: _Entry
    agent_id: str
    started: asyncio.Event = field(default_factory=asyncio.Event)  # a FastAGI step began
    finished: asyncio.Event = field(default_factory=asyncio.Event)  # ... and is over
    customer_answered: bool = False
    settled: bool = False  # the ACD was told how the offer ended
    record_id: str | None = None  # the call record's id (the channel running the step)


@dataclass(frozen=True)
class _Originated:
    answered: bool
    reason: str  # Asterisk's Reason, or why the action failed
    ami_failed: bool = False


class CallbackDialer:
    """The virtual-hold sink of ``QueueCalls``, the IVR's callback store and the FastAGI
    ``callback`` script, in one: it owns every callback from request to talk."""

    def __init__(self, *, settings: Settings, clock: Clock, acd: AcdDriver,
                 store: CallbackRequests, send: AmiSender, ledger: CallLedger,
                 writer: RecordWriter, sleep: Sleep = asyncio.sleep,
                 max_attempts: int = MAX_ATTEMPTS,
                 retry_after: float = RETRY_AFTER_SECONDS,
                 rescan_every: float = RESCAN_EVERY_SECONDS,
                 agi_start_timeout: float = AGI_START_SECONDS,
                 channels: ChannelSnapshot | None = None) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts: {max_attempts} must be 1 or more")
        self._settings = settings
        self._clock = clock
        self._acd = acd
        self._store = store
        self._send = send
        self._ledger = ledger
        self._writer = writer
        self._sleep = sleep
        self._max_attempts = max_attempts
        self._retry_after = retry_after
        self._rescan_every = rescan_every
        self._agi_start_timeout = agi_start_timeout
        self._channels = channels  # AMI's channel snapshot, for Originates whose answer is lost
        self._entries: dict[int, _Entry] = {}
        self._undialable: set[int] = set()  # pending requests left to people, said once
        self._attempts: dict[str, _Attempt] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = False

    @property
    def enabled(self) -> bool:
        """Callbacks need a way out: without an outbound trunk nothing can be dialled."""
        return self._settings.outbound.has_trunk

    def holding(self) -> list[int]:
        """Ids of the requests the dialer holds (in line, being called, or due back)."""
        return sorted(self._entries)

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        if not self.enabled:
            log.info("callbacks are not dialled: no outbound trunk (outbound.trunk_host)")
            return
        self._started = True
        await self._pick_up_safely()
        self._spawn(self._rescan_periodically(), "callback rescan")

    async def stop(self) -> None:
        self._started = False
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def pick_up_pending(self) -> int:
        """Put in line every pending request no entry holds; how many were taken."""
        if not self.enabled:
            return 0
        taken, offset = 0, 0
        while True:
            page, total = await self._store.list(status=CallbackStatus.PENDING, limit=PAGE,
                                                 offset=offset)
            for request in page:
                if request.id is not None and request.id not in self._entries:
                    taken += self._adopt(request)
            offset += len(page)
            if not page or offset >= total:
                return taken

    # ------------------------------------------------------------------ requests in

    def hold(self, request: CallbackRequest, place: QueuePlace) -> None:
        """A waiting caller chose to be called back: the callback takes their place now.
        ValueError if it cannot (the request then stays pending for the next scan)."""
        if not self.enabled:
            raise ValueError("callbacks cannot be dialled: no outbound trunk")
        if request.id is None:
            raise ValueError("the callback request has no id: store it first")
        if request.id in self._entries:
            log.info("callback request %s: already in line (picked up by a scan)", request.id)
            return
        self._track(_Entry(request, place.queue, place.waiting_since, place.priority,
                           dict(place.skills or {}), place.for_agent))

    async def add(self, request: CallbackRequest) -> CallbackRequest:
        """Store a request (the IVR's callback step) and put it in line at once."""
        stored = await self._store.add(request)
        asking = self._ledger.get(stored.call_id)
        if asking is not None:  # the asking call's record names its callback
            asking.callback_request_id = stored.id
        if self._started and stored.status is CallbackStatus.PENDING:
            try:
                self._adopt(stored)
            except Exception:  # stored is what matters to the caller; the scan retries
                log.exception("callback request %s: could not be put in line", stored.id)
        return stored

    def _adopt(self, request: CallbackRequest) -> int:
        assert request.id is not None
        if callback_number(request.number, self._settings) is None:
            # Left pending: an agent can still call back by hand what we may not dial.
            if request.id not in self._undialable:
                self._undialable.add(request.id)
                log.warning("callback request %s: %r cannot be dialled under the [outbound] "
                            "rules; left pending for an agent", request.id, request.number)
            return 0
        queue = request.queue
        if self._settings.queue(queue) is None:
            fallback = fallback_queue(self._settings)
            if fallback is None:
                log.error("callback request %s: no queue to wait in", request.id)
                return 0
            log.warning("callback request %s: queue %r is gone; it waits in %r", request.id,
                        queue, fallback.name)
            queue = fallback.name
        # In line where the customer first stood (virtual hold), else from their request.
        waiting_since = request.queued_at if request.queued_at is not None else request.requested_at
        try:
            self._track(_Entry(request, queue, waiting_since))
        except ValueError as exc:
            log.error("callback request %s: the ACD refused it: %s", request.id, exc)
            return 0
        return 1

    def _track(self, entry: _Entry) -> None:
        self._enter_line(entry)
        self._entries[entry.id] = entry
        log.info("callback request %s (%s): in line in %s", entry.id, entry.request.flow,
                 entry.queue)
        self._spawn(self._follow(entry), f"callback {entry.id}")

    def _enter_line(self, entry: _Entry) -> None:
        try:
            entry.inbox = self._acd.enqueue(
                entry.call_id, entry.queue, priority=entry.priority, skills=entry.skills,
                virtual=True, waiting_since=entry.waiting_since, for_agent=entry.for_agent)
        except ValueError:
            if entry.for_agent is None:
                raise
            # The agent no longer serves this queue (it overflowed): anyone may call back.
            log.info("callback request %s: agent %s does not serve %s; any agent will call",
                     entry.id, entry.for_agent, entry.queue)
            entry.for_agent = None
            self._enter_line(entry)

    def _forget(self, entry: _Entry) -> None:
        self._entries.pop(entry.id, None)

    # ------------------------------------------------------------------ the ACD's decisions

    async def _follow(self, entry: _Entry) -> None:
        """Carry out the ACD's decisions for one entry until the request is settled."""
        try:
            while entry.id in self._entries:
                assert entry.inbox is not None
                message = await entry.inbox.get()
                match message:
                    case OfferCall(virtual=True):
                        await self._connect(entry, message)
                    case CallbackUnanswered():
                        await self._after_unanswered(entry)
                    case Overflowed(to_queue=queue):
                        entry.queue = queue
                    case NoAgentAvailable() | QueueFull() | QueueTimedOut():
                        log.warning("callback request %s: the ACD could not keep it in %s "
                                    "(%s); trying again in %.0f s", entry.id, entry.queue,
                                    type(message).__name__, self._rescan_every)
                        await self._sleep(self._rescan_every)
                        await self._come_back(entry)
                    case _:
                        continue  # keys and announcements mean nothing without a caller
        except asyncio.CancelledError:
            raise
        except Exception:
            # The request stays pending in the store: a later scan puts it in line again.
            log.exception("callback request %s: dialling failed", entry.id)
            self._forget(entry)
            with contextlib.suppress(ValueError):
                self._acd.left(entry.call_id)

    async def _after_unanswered(self, entry: _Entry) -> None:
        entry.unanswered += 1
        if entry.unanswered >= self._max_attempts:
            log.warning("callback request %s: %s did not answer %d times; failed", entry.id,
                        entry.request.number, entry.unanswered)
            self._forget(entry)
            await self._set_status(entry.request, CallbackStatus.FAILED)
            return
        log.info("callback request %s: %s did not answer (%d of %d); back in line in %.0f s",
                 entry.id, entry.request.number, entry.unanswered, self._max_attempts,
                 self._retry_after)
        await self._sleep(self._retry_after)
        await self._come_back(entry)

    async def _come_back(self, entry: _Entry) -> None:
        """Back into line after a pause, in the old place, unless settled meanwhile."""
        if entry.id not in self._entries or not await self._still_pending(entry):
            self._forget(entry)
            return
        self._enter_line(entry)

    async def _connect(self, entry: _Entry, offer: OfferCall) -> None:
        """One offer: returns when the agent did not answer, or when the call is over."""
        wait = entry.not_before - self._clock.now()
        if wait > 0:
            await self._sleep(wait)
        if not await self._still_pending(entry):  # cancelled or done by someone else
            log.info("callback request %s: no longer pending; out of line", entry.id)
            self._forget(entry)
            self._acd.left(entry.call_id)
            return
        attempt = _Attempt(f"cb{secrets.token_hex(8)}", entry, offer.agent_id)
        self._attempts[attempt.token] = attempt
        try:
            if offer.mode is ConnectMode.NAILED:
                await self._call_customer(attempt)
            else:
                await self._ring_agent(attempt, offer.ring_timeout)
        finally:
            self._attempts.pop(attempt.token, None)

    async def _ring_agent(self, attempt: _Attempt, ring_timeout: float) -> None:
        entry, agent_id = attempt.entry, attempt.agent_id
        if not NAME_RE.fullmatch(agent_id):  # it goes into a dial string
            raise ValueError(f"agent id {agent_id!r} is not a name")
        seconds = max(1, round(ring_timeout))
        started = self._clock.now()
        log.info("callback request %s: ringing agent %s", entry.id, agent_id)
        originated = await self._originate(attempt, {
            "Action": "Originate",
            "Channel": f"Local/s@{RING_CONTEXT}/n",
            "Context": CALLBACK_CONTEXT,
            "Exten": AGENT_STEP,
            "Priority": 1,
            "Timeout": (seconds + ORIGINATE_GRACE_SECONDS) * 1000,
            "CallerID": f'"{CALLER_ID_LABEL}" <{entry.request.number}>',
            "Async": True,
            "Variable": [f"{TOKEN_VARIABLE}={attempt.token}", f"{AGENT_VARIABLE}={agent_id}",
                         f"{RING_VARIABLE}={seconds}"],
        }, seconds + ORIGINATE_GRACE_SECONDS)
        if originated.answered or attempt.started.is_set():
            await self._until_finished(attempt)
            return
        fast = self._clock.now() - started < FAST_FAILURE_SECONDS
        if originated.ami_failed:
            failure = OfferFailure.REJECTED
        else:
            failure = RING_FAILURES.get(originated.reason, OfferFailure.NO_ANSWER)
            if failure is OfferFailure.NO_ANSWER and fast:
                failure = OfferFailure.REJECTED  # no ring at all: not the agent's fault
        log.info("callback request %s: agent %s did not take it (%s: reason %s)", entry.id,
                 agent_id, failure.value, originated.reason)
        self._settle(attempt, failure)
        if fast or originated.ami_failed:
            entry.not_before = self._clock.now() + RETRY_PAUSE_SECONDS

    async def _call_customer(self, attempt: _Attempt) -> None:
        """A nailed-up agent waits in their bridge: dial the customer, who joins it."""
        entry = attempt.entry
        outbound = self._settings.outbound
        seconds = outbound.dial_timeout + LOCAL_DIAL_GRACE_SECONDS
        log.info("callback request %s: calling %s for nailed-up agent %s", entry.id,
                 entry.request.number, attempt.agent_id)
        originated = await self._originate(attempt, {
            "Action": "Originate",
            "Channel": dial_arguments(entry.request.number, outbound).split(",")[0],
            "Context": CALLBACK_CONTEXT,
            "Exten": CUSTOMER_STEP,
            "Priority": 1,
            "Timeout": (seconds + ORIGINATE_GRACE_SECONDS) * 1000,
            "CallerID": f"<{self._center_number}>",
            "Async": True,
            "Variable": [f"{TOKEN_VARIABLE}={attempt.token}"],
        }, seconds + ORIGINATE_GRACE_SECONDS)
        if originated.answered or attempt.started.is_set():
            await self._until_finished(attempt)
            return
        if originated.ami_failed:
            self._settle(attempt, OfferFailure.REJECTED)
            entry.not_before = self._clock.now() + RETRY_PAUSE_SECONDS
            return
        log.info("callback request %s: %s did not answer (reason %s)", entry.id,
                 entry.request.number, originated.reason)
        self._settle(attempt, OfferFailure.CUSTOMER_NO_ANSWER)

    async def _originate(self, attempt: _Attempt, action: Mapping[str, Any],
                         seconds: float) -> _Originated:
        """Send an async Originate; its OriginateResponse (answered, or the Reason). Its
        channels are named after the attempt, so that a lost answer can be settled from the
        channel snapshot instead of dialling again blindly."""
        sent_at = self._clock.now()
        try:
            answer = await self._send(named_channels(action, attempt.token),
                                      timeout=seconds + ORIGINATE_GRACE_SECONDS)
        except AmiError as exc:
            log.error("callback Originate failed: %s", exc)
            if answer_lost(exc):
                return await self._after_lost_answer(attempt, str(exc), sent_at + seconds)
            return _Originated(False, str(exc), ami_failed=True)
        messages = answer if isinstance(answer, list) else [answer]
        for message in messages:
            if message.get("Event") == "OriginateResponse":
                return _Originated(message.get("Response") == "Success",
                                   str(message.get("Reason", "")))
        log.error("callback Originate: no OriginateResponse in %r", answer)
        return _Originated(False, "no OriginateResponse", ami_failed=True)

    async def _after_lost_answer(self, attempt: _Attempt, error: str,
                                 deadline: float) -> _Originated:
        """The Originate may have reached Asterisk: find out before anyone dials again.

        Its FastAGI step starting means the call was answered. While the snapshot shows its
        channels, it is ringing: wait. Once the snapshot lacks them, nothing rings now: it
        never started or it ended unanswered. Should AMI stay away, no ring outlives the
        Originate's own ``deadline`` (its Timeout), only an answered call, whose step starts.
        """
        entry = attempt.entry
        log.warning("callback request %s: the Originate's answer was lost (%s); looking for "
                    "its call before dialling again", entry.id, error)
        rang = False
        give_up = deadline + self._agi_start_timeout
        while not attempt.started.is_set() and self._clock.now() < give_up:
            fate = await originate_fate(self._channels, attempt.token)
            if fate is OriginateFate.ABSENT:
                break
            if fate is OriginateFate.LIVE:
                rang = True
            elif self._clock.now() >= deadline:
                break  # AMI still away past the Originate's Timeout: nothing rings now
            if await self._within(attempt.started, FATE_POLL_SECONDS):
                break
        if attempt.started.is_set():
            log.info("callback request %s: its call was answered meanwhile", entry.id)
            return _Originated(True, "answered while the AMI answer was lost")
        if rang:
            log.info("callback request %s: its call rang and ended unanswered", entry.id)
            return _Originated(False, "rang while the AMI answer was lost")
        return _Originated(False, error, ami_failed=True)

    async def _until_finished(self, attempt: _Attempt) -> None:
        if not await self._within(attempt.started, self._agi_start_timeout):
            entry = attempt.entry
            log.error("callback request %s: the call was answered but the FastAGI step "
                      "never came (is %s in Asterisk's dialplan?)", entry.id, CALLBACK_CONTEXT)
            self._attempts.pop(attempt.token, None)  # a late step finds nothing and hangs up
            self._settle(attempt, OfferFailure.REJECTED)
            entry.not_before = self._clock.now() + RETRY_PAUSE_SECONDS
            return
        await attempt.finished.wait()
        if not attempt.settled:  # the step failed (and logged why) before it could say
            log.error("callback request %s: the call ended without an outcome; the offer "
                      "goes back to the ACD", attempt.entry.id)
            self._settle(attempt, None if attempt.customer_answered else OfferFailure.REJECTED)
            attempt.entry.not_before = self._clock.now() + RETRY_PAUSE_SECONDS

    async def _within(self, event: asyncio.Event, seconds: float) -> bool:
        """Whether ``event`` is set within ``seconds`` (of the injected sleep's time)."""
        if event.is_set():
            return True
        waiter = asyncio.ensure_future(event.wait())
        timer = asyncio.ensure_future(self._sleep(seconds))
        try:
            await asyncio.wait({waiter, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            timer.cancel()
        return event.is_set()

    # ------------------------------------------------------------------ FastAGI steps

    async def handle(self, session: AgiSession) -> None:
        """The ``callback`` script: ``agent``, ``customer`` or ``answered``, and the token."""
        args = session.env.args
        step, token = (args[0], args[1]) if len(args) >= 2 else ("", "")
        attempt = self._attempts.get(token) if TOKEN_RE.fullmatch(token) else None
        if attempt is None or (attempt.started.is_set() and step != ANSWERED_STEP):
            log.warning("callback step %r for unknown or finished attempt %r (%s): hung up",
                        step, token, session.env.channel)
            if step != ANSWERED_STEP:  # a customer's leg is the agent's to end
                await session.hangup()
            return
        match step:
            case "agent":
                await self._agent_step(session, attempt)
            case "customer":
                await self._customer_step(session, attempt)
            case "answered":
                await self._customer_answered(attempt)
                await play(session, CONNECTING_PROMPT)
            case _:
                log.warning("callback: unknown step %r", step)
                await session.hangup()

    async def _agent_step(self, session: AgiSession, attempt: _Attempt) -> None:
        """The agent answered: dial the customer from the agent's call and wait for the end."""
        attempt.started.set()
        entry = attempt.entry
        status, agent_left = "UNKNOWN", False
        try:
            record_id = self._record_start(attempt, session)
            try:
                await session.set_variable("CALLERID(all)", f"<{self._center_number}>")
                await session.exec("Dial", dial_arguments(entry.request.number,
                                                          self._settings.outbound)
                                   + answered_option(attempt.token))
                status = await session.get_variable("DIALSTATUS") or "UNKNOWN"
            except AgiHangup:
                agent_left = True
            except AgiCommandError as exc:
                log.error("callback request %s: Dial failed: %s", entry.id, exc)
                status = "FAILED"
            now = self._clock.now()
            if attempt.customer_answered or status == "ANSWER":
                await self._customer_answered(attempt)
                self._settle(attempt, None)
                self._talked_with(record_id, attempt.agent_id)
                self._writer.apply(self._ledger.attempt_ended(record_id, attempt.agent_id,
                                                              "ANSWER", now))
                self._writer.apply(self._ledger.handler_finished(
                    record_id, now, hangup_by=HangupBy.AGENT if agent_left else HangupBy.CALLER))
                log.info("callback request %s: done (agent %s)", entry.id, attempt.agent_id)
            elif agent_left:
                self._settle(attempt, OfferFailure.REJECTED)
                entry.not_before = now + RETRY_PAUSE_SECONDS  # not straight back to them
                self._writer.apply(self._ledger.handler_finished(
                    record_id, now, hangup_by=HangupBy.AGENT,
                    failure=f"callback request {entry.id}: the agent hung up before "
                            f"{entry.request.number} answered"))
            else:
                self._settle(attempt, OfferFailure.CUSTOMER_NO_ANSWER)
                self._writer.apply(self._ledger.handler_finished(
                    record_id, now, hangup_by=HangupBy.SYSTEM,
                    failure=f"callback request {entry.id}: {entry.request.number} did not "
                            f"answer ({status})"))
        finally:
            attempt.finished.set()
        await session.hangup()

    async def _customer_step(self, session: AgiSession, attempt: _Attempt) -> None:
        """The customer of a nailed-up agent answered: into the agent's bridge."""
        attempt.started.set()
        entry = attempt.entry
        customer_left = True
        try:
            record_id = self._record_start(attempt, session)
            try:
                await self._customer_answered(attempt)
                await play(session, CONNECTING_PROMPT)
                await session.exec("ConfBridge", caller_join_arguments(attempt.agent_id))
                result = await session.get_variable("CONFBRIDGE_RESULT")
                customer_left = result == "HANGUP" or session.hung_up
            except AgiHangup:
                pass
            now = self._clock.now()
            self._settle(attempt, None)
            self._talked_with(record_id, attempt.agent_id)
            self._writer.apply(self._ledger.attempt_ended(record_id, attempt.agent_id,
                                                          "ANSWER", now))
            self._writer.apply(self._ledger.handler_finished(
                record_id, now, hangup_by=HangupBy.CALLER if customer_left else HangupBy.AGENT))
        finally:
            attempt.finished.set()
        log.info("callback request %s: done (nailed-up agent %s)", entry.id, attempt.agent_id)
        await session.hangup()

    def _settle(self, attempt: _Attempt, failure: OfferFailure | None) -> None:
        """Tell the ACD how the offer ended: the talk is over (None), or why it failed."""
        attempt.settled = True
        entry = attempt.entry
        if failure is None:
            self._forget(entry)
            self._acd.left(entry.call_id)
        else:
            self._acd.failed(entry.call_id, attempt.agent_id, failure)

    async def _customer_answered(self, attempt: _Attempt) -> None:
        """The customer is on the line: the talk starts, the request is done."""
        if attempt.customer_answered:
            return
        attempt.customer_answered = True
        entry = attempt.entry
        self._acd.answered(entry.call_id, attempt.agent_id)
        if attempt.record_id is not None:
            # The record's one attempt is the agent's talk with the customer.
            self._ledger.attempt_started(attempt.record_id, attempt.agent_id,
                                         self._clock.now())
        log.info("callback request %s: %s answered; agent %s", entry.id, entry.request.number,
                 attempt.agent_id)
        await self._set_status(entry.request, CallbackStatus.DONE)

    # ------------------------------------------------------------------ records and store

    def _record_start(self, attempt: _Attempt, session: AgiSession) -> str:
        """Open the call record of this callback (keyed by the step's channel)."""
        record_id = attempt.record_id = session.env.uniqueid
        entry, request = attempt.entry, attempt.entry.request
        now = self._clock.now()
        self._writer.apply(self._ledger.handler_started(
            record_id, channel=session.env.channel, caller_number=request.number,
            caller_name=request.caller_name, dialed_number=request.number, now=now))
        record = self._ledger.get(record_id)
        if record is not None:
            record.note = f"callback request {entry.id} of call {request.call_id}"
            record.callback_request_id = entry.id
            record.callback_of = request.call_id
        # The customer has been in line since waiting_since (their place, which the callback
        # kept): the record's wait is theirs, not this call's few seconds.
        self._writer.apply(self._ledger.queued(record_id, entry.queue, entry.waiting_since))
        return record_id

    def _talked_with(self, record_id: str, agent_id: str) -> None:
        """The record's agent is the one we connected. The ledger takes any PJSIP leg that
        answers for an agent's (agent_from_channel), and here the trunk's leg answers, with
        the customer's answer time, which is kept."""
        record = self._ledger.get(record_id)
        if record is not None:
            record.agent_id = agent_id

    @property
    def _center_number(self) -> str:
        return self._settings.outbound.caller_id or self._settings.ivr.number

    async def _still_pending(self, entry: _Entry) -> bool:
        try:
            current = await self._store.get(entry.id)
        except Exception:  # the store is down: calling back is still what was asked
            log.exception("callback request %s: status unknown; calling anyway", entry.id)
            return True
        return current is not None and current.status is CallbackStatus.PENDING

    async def _set_status(self, request: CallbackRequest, status: CallbackStatus) -> None:
        if request.id is None:
            return
        try:
            await self._store.set_status(request.id, status)
        except (ValueError, LookupError) as exc:  # changed meanwhile (cancelled by a person)
            log.info("callback request %s: not marked %s: %s", request.id, status.value, exc)
        except Exception:
            log.exception("callback request %s: could not be marked %s", request.id,
                          status.value)

    # ------------------------------------------------------------------ tasks

    async def _pick_up_safely(self) -> None:
        try:
            taken = await self.pick_up_pending()
        except Exception:
            log.exception("pending callback requests could not be read")
            return
        if taken:
            log.info("%d pending callback request(s) put in line", taken)

    async def _rescan_periodically(self) -> None:
        while True:
            await self._sleep(self._rescan_every)
            await self._pick_up_safely()

    def _spawn(self, work: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(work)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
