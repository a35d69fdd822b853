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

What to do when is decided by one ``CallbackMachine`` per request (``core/callbacks``, pure):
this module turns the ACD's messages, AMI's answers, the FastAGI steps, the store's answers
and timers into its events, and carries out the actions it returns.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from callcenter.asterisk.agi import AgiCommandError, AgiHangup
from callcenter.asterisk.agi_server import AgiSession
from callcenter.asterisk.ami import AmiError
from callcenter.asterisk.confgen import fallback_queue
from callcenter.asterisk.originate_fate import (
    ChannelSnapshot,
    answer_lost,
    named_channels,
    originate_fate,
)
from callcenter.asterisk.prompting import play
from callcenter.config import Settings
from callcenter.core.acd import (
    CallbackUnanswered,
    NoAgentAvailable,
    OfferCall,
    Overflowed,
    QueueFull,
    QueueTimedOut,
)
from callcenter.core.callbacks import (
    ORIGINATE_GRACE_SECONDS,
    AgentStepEnded,
    CallbackAction,
    CallbackEvent,
    CallbackMachine,
    CallbackRules,
    CustomerStepEnded,
    CustomerUnanswered,
    DialCustomer,
    EnterLine,
    FateSeen,
    Forget,
    GiveOfferBack,
    HangUpStep,
    JoinAgent,
    LeaveLine,
    Leg,
    LineLoss,
    LineLost,
    Log,
    LookForOriginate,
    Offered,
    Originate,
    Originated,
    OriginateOutcome,
    PlayConnecting,
    ReadStatus,
    RecordNotReached,
    RecordTalked,
    RecordTalkStarted,
    RefuseStep,
    ScheduleTimer,
    SetStatus,
    Sighting,
    StartRecord,
    StatusRead,
    StepFinished,
    StepKind,
    StepStarted,
    TalkStarted,
    TimerDue,
)
from callcenter.core.calls import CallLedger
from callcenter.core.clock import Clock
from callcenter.core.identifiers import AGENT_ID_RE
from callcenter.core.records import CallbackRequest, CallbackStatus
from callcenter.features.agents.dialplan import caller_join_arguments
from callcenter.features.callbacks.dialplan import (
    AGENT_STEP,
    AGENT_VARIABLE,
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
CONNECTING_PROMPT = "callback-connecting"
CALLER_ID_LABEL = "Callback"  # what the agent's phone shows beside the customer's number
PAGE = 200
LINE_LOSSES = {NoAgentAvailable: LineLoss.NO_AGENT, QueueFull: LineLoss.FULL,
               QueueTimedOut: LineLoss.TIMED_OUT}


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
    """One request the dialer holds: where it waits, and the machine that decides for it."""

    request: CallbackRequest
    queue: str
    waiting_since: float
    machine: CallbackMachine
    priority: int = 0
    skills: Mapping[str, int] | None = None
    for_agent: str | None = None
    inbox: asyncio.Queue[CallMessage] | None = None
    timer_at: float | None = None  # the machine's timer (ScheduleTimer)
    token: str | None = None  # the current attempt's, which FastAGI steps name
    runner: asyncio.Task[None] | None = None
    idle: bool = False  # the runner waits for the ACD or the timer (nothing half done)

    @property
    def id(self) -> int:
        assert self.request.id is not None
        return self.request.id

    @property
    def call_id(self) -> str:
        return f"{ENTRY_PREFIX}{self.id}"


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
        self._rules = CallbackRules(
            max_attempts=max_attempts, retry_after=retry_after, rescan_every=rescan_every,
            agi_start_timeout=agi_start_timeout,
            customer_dial_seconds=settings.outbound.dial_timeout + LOCAL_DIAL_GRACE_SECONDS)
        self._settings = settings
        self._clock = clock
        self._acd = acd
        self._store = store
        self._send = send
        self._ledger = ledger
        self._writer = writer
        self._sleep = sleep
        self._rescan_every = rescan_every
        self._channels = channels  # AMI's channel snapshot, for Originates whose answer is lost
        self._entries: dict[int, _Entry] = {}
        self._undialable: set[int] = set()  # pending requests left to people, said once
        self._attempts: dict[str, _Entry] = {}  # attempt token -> its entry
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
        self._track(_Entry(request, place.queue, place.waiting_since,
                           CallbackMachine(self._rules), place.priority,
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
            self._track(_Entry(request, queue, waiting_since, CallbackMachine(self._rules)))
        except ValueError as exc:
            log.error("callback request %s: the ACD refused it: %s", request.id, exc)
            return 0
        return 1

    def _track(self, entry: _Entry) -> None:
        self._enter_line(entry)
        self._entries[entry.id] = entry
        log.info("callback request %s (%s): in line in %s", entry.id, entry.request.flow,
                 entry.queue)
        entry.runner = self._spawn(self._follow(entry), f"callback {entry.id}")

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
        if entry.token is not None:
            self._attempts.pop(entry.token, None)
        # Its runner waits for messages that will not come now: end it (unless it is what
        # forgets, or is half way through something; it then ends by itself).
        if (entry.idle and entry.runner is not None
                and entry.runner is not asyncio.current_task()):
            entry.runner.cancel()

    # ------------------------------------------------------------------ events in

    async def _follow(self, entry: _Entry) -> None:
        """Feed the machine the ACD's messages and its timers until the request is settled."""
        try:
            while not entry.machine.done and entry.id in self._entries:
                event = await self._next_event(entry)
                if event is not None:
                    await self._feed(entry, event)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The request stays pending in the store: a later scan puts it in line again.
            log.exception("callback request %s: dialling failed", entry.id)
            self._forget(entry)
            with contextlib.suppress(ValueError):
                self._acd.left(entry.call_id)

    async def _next_event(self, entry: _Entry) -> CallbackEvent | None:
        """The ACD's next message for the entry, as an event, or the timer falling due."""
        due = entry.timer_at
        if due is not None and due <= self._clock.now():
            entry.timer_at = None
            return TimerDue(due)
        assert entry.inbox is not None
        getter = asyncio.ensure_future(entry.inbox.get())
        timer = (asyncio.ensure_future(self._sleep(due - self._clock.now()))
                 if due is not None else None)
        entry.idle = True
        try:
            await asyncio.wait({getter} if timer is None else {getter, timer},
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            entry.idle = False
            if timer is not None:
                timer.cancel()
            if not getter.done():
                getter.cancel()
        if getter.done() and not getter.cancelled():
            return self._event_of(entry, getter.result())
        if entry.timer_at == due:
            entry.timer_at = None
        return TimerDue(due) if due is not None else None

    def _event_of(self, entry: _Entry, message: CallMessage) -> CallbackEvent | None:
        match message:
            case OfferCall(virtual=True):
                return Offered(f"cb{secrets.token_hex(8)}", message.agent_id, message.mode,
                               message.ring_timeout)
            case CallbackUnanswered():
                return CustomerUnanswered()
            case Overflowed(to_queue=queue):
                entry.queue = queue  # where it waits now; nothing to decide
                return None
            case NoAgentAvailable() | QueueFull() | QueueTimedOut():
                return LineLost(LINE_LOSSES[type(message)])
            case _:
                return None  # keys and announcements mean nothing without a caller

    async def _feed(self, entry: _Entry, event: CallbackEvent,
                    session: AgiSession | None = None) -> None:
        await self._carry_out(entry, entry.machine.handle(event, self._clock.now()), session)

    async def _carry_out(self, entry: _Entry, actions: list[CallbackAction],
                         session: AgiSession | None) -> None:
        """Perform ``actions`` in order; what an action learns goes back to the machine."""
        answers: list[CallbackEvent] = []
        for action in actions:
            answer = await self._perform(entry, action, session)
            if answer is not None:
                answers.append(answer)
        for answer in answers:
            await self._feed(entry, answer, session)

    # ------------------------------------------------------------------ actions out

    async def _perform(self, entry: _Entry, action: CallbackAction,
                       session: AgiSession | None) -> CallbackEvent | None:
        match action:
            case Log(level=level, message=message):
                log.log(level, "callback request %s: %s", entry.id, message)
            case ScheduleTimer(at=at):
                entry.timer_at = at  # the runner waits for it (with the injected sleep)
            case ReadStatus():
                return StatusRead(await self._still_pending(entry))
            case SetStatus(status=status):
                await self._set_status(entry.request, status)
            case Originate():
                return await self._originate(entry, action)
            case LookForOriginate(token=token):
                fate = await originate_fate(self._channels, token)
                return FateSeen(token, Sighting(fate.value))
            case GiveOfferBack(agent_id=agent_id, failure=failure):
                self._acd.failed(entry.call_id, agent_id, failure)
            case TalkStarted(agent_id=agent_id):
                self._acd.answered(entry.call_id, agent_id)
            case LeaveLine():
                self._acd.left(entry.call_id)
            case EnterLine():
                self._enter_line(entry)
            case Forget():
                self._forget(entry)
            case StartRecord(record_id=record_id, channel=channel):
                self._record_start(entry, record_id, channel)
            case RecordTalkStarted(record_id=record_id, agent_id=agent_id):
                self._ledger.attempt_started(record_id, agent_id, self._clock.now())
            case RecordTalked(record_id=record_id, agent_id=agent_id, hangup_by=hangup_by):
                now = self._clock.now()
                self._talked_with(record_id, agent_id)
                self._writer.apply(self._ledger.attempt_ended(record_id, agent_id, "ANSWER",
                                                              now))
                self._writer.apply(self._ledger.handler_finished(record_id, now,
                                                                 hangup_by=hangup_by))
            case RecordNotReached():
                number = entry.request.number
                failure = (f"callback request {entry.id}: the agent hung up before {number} "
                           "answered" if action.agent_left else
                           f"callback request {entry.id}: {number} did not answer "
                           f"({action.dial_status})")
                self._writer.apply(self._ledger.handler_finished(
                    action.record_id, self._clock.now(), hangup_by=action.hangup_by,
                    failure=failure))
            case _:
                assert session is not None, f"{action!r} needs the step's channel"
                return await self._perform_on_channel(entry, action, session)
        return None

    async def _perform_on_channel(self, entry: _Entry, action: CallbackAction,
                                  session: AgiSession) -> CallbackEvent | None:
        match action:
            case DialCustomer(token=token):
                return await self._dial_customer(entry, token, session)
            case PlayConnecting():
                await play(session, CONNECTING_PROMPT)
            case JoinAgent(token=token, agent_id=agent_id):
                await session.exec("ConfBridge", caller_join_arguments(agent_id))
                result = await session.get_variable("CONFBRIDGE_RESULT")
                return CustomerStepEnded(token, result == "HANGUP" or session.hung_up)
            case HangUpStep():
                await session.hangup()
            case RefuseStep(hang_up=hang_up):
                await self._refuse(session, hang_up=hang_up)
        return None

    async def _dial_customer(self, entry: _Entry, token: str,
                             session: AgiSession) -> AgentStepEnded:
        """The agent answered: dial the customer from the agent's call, until it ends."""
        status, agent_left = "UNKNOWN", False
        try:
            await session.set_variable("CALLERID(all)", f"<{self._center_number}>")
            await session.exec("Dial", dial_arguments(entry.request.number,
                                                      self._settings.outbound)
                               + answered_option(token))
            status = await session.get_variable("DIALSTATUS") or "UNKNOWN"
        except AgiHangup:
            agent_left = True
        except AgiCommandError as exc:
            log.error("callback request %s: Dial failed: %s", entry.id, exc)
            status = "FAILED"
        return AgentStepEnded(token, status, agent_left)

    async def _originate(self, entry: _Entry, action: Originate) -> Originated:
        """Send an async Originate; its OriginateResponse (answered, or the Reason). Its
        channels are named after the attempt, so that a lost answer can be settled from the
        channel snapshot instead of dialling again blindly."""
        if entry.token is not None:
            self._attempts.pop(entry.token, None)
        entry.token = action.token
        self._attempts[action.token] = entry  # its step may start before the answer comes
        number = entry.request.number
        if action.leg is Leg.AGENT:
            if not AGENT_ID_RE.fullmatch(action.agent_id):  # it goes into a dial string
                raise ValueError(f"agent id {action.agent_id!r} is not a name")
            log.info("callback request %s: ringing agent %s", entry.id, action.agent_id)
            fields: dict[str, Any] = {
                "Channel": f"Local/s@{RING_CONTEXT}/n", "Exten": AGENT_STEP,
                "CallerID": f'"{CALLER_ID_LABEL}" <{number}>',
                "Variable": [f"{TOKEN_VARIABLE}={action.token}",
                             f"{AGENT_VARIABLE}={action.agent_id}",
                             f"{RING_VARIABLE}={action.ring_seconds}"]}
        else:
            log.info("callback request %s: calling %s for nailed-up agent %s", entry.id,
                     number, action.agent_id)
            fields = {
                "Channel": dial_arguments(number, self._settings.outbound).split(",")[0],
                "Exten": CUSTOMER_STEP, "CallerID": f"<{self._center_number}>",
                "Variable": [f"{TOKEN_VARIABLE}={action.token}"]}
        originate = {"Action": "Originate", "Channel": fields["Channel"],
                     "Context": CALLBACK_CONTEXT, "Exten": fields["Exten"], "Priority": 1,
                     "Timeout": round(action.timeout * 1000), "CallerID": fields["CallerID"],
                     "Async": True, "Variable": fields["Variable"]}
        try:
            answer = await self._send(named_channels(originate, action.token),
                                      timeout=action.timeout + ORIGINATE_GRACE_SECONDS)
        except AmiError as exc:
            log.error("callback Originate failed: %s", exc)
            lost = answer_lost(exc)
            return Originated(action.token, OriginateOutcome.LOST if lost
                              else OriginateOutcome.FAILED, str(exc))
        messages = answer if isinstance(answer, list) else [answer]
        for message in messages:
            if message.get("Event") == "OriginateResponse":
                answered = message.get("Response") == "Success"
                return Originated(action.token, OriginateOutcome.ANSWERED if answered
                                  else OriginateOutcome.NOT_ANSWERED,
                                  str(message.get("Reason", "")))
        log.error("callback Originate: no OriginateResponse in %r", answer)
        return Originated(action.token, OriginateOutcome.FAILED, "no OriginateResponse")

    # ------------------------------------------------------------------ FastAGI steps

    async def handle(self, session: AgiSession) -> None:
        """The ``callback`` script: ``agent``, ``customer`` or ``answered``, and the token."""
        args = session.env.args
        step, token = (args[0], args[1]) if len(args) >= 2 else ("", "")
        entry = self._attempts.get(token) if TOKEN_RE.fullmatch(token) else None
        if entry is None:
            await self._refuse(session, hang_up=step != StepKind.ANSWERED)
            return
        if step not in {kind.value for kind in StepKind}:
            log.warning("callback: unknown step %r", step)
            await session.hangup()
            return
        kind = StepKind(step)
        actions = entry.machine.handle(StepStarted(token, kind, session.env.uniqueid,
                                                   session.env.channel), self._clock.now())
        if kind is StepKind.ANSWERED or any(isinstance(a, RefuseStep) for a in actions):
            await self._carry_out(entry, actions, session)
            return
        try:
            try:
                await self._carry_out(entry, actions, session)
            except AgiHangup:
                if kind is not StepKind.CUSTOMER:
                    raise
                # The customer left before or while being joined: the talk is over.
                await self._feed(entry, CustomerStepEnded(token, customer_left=True), session)
        finally:
            # However the step ended: one that broke before saying how the call went still
            # gives the offer back (the machine ignores this after an outcome).
            await self._feed(entry, StepFinished(token), session)

    async def _refuse(self, session: AgiSession, *, hang_up: bool) -> None:
        step, token = [*session.env.args, "", ""][:2]
        log.warning("callback step %r for unknown or finished attempt %r (%s): hung up",
                    step, token, session.env.channel)
        if hang_up:  # a customer's leg is the agent's to end
            await session.hangup()

    # ------------------------------------------------------------------ records and store

    def _record_start(self, entry: _Entry, record_id: str, channel: str) -> None:
        """Open the call record of this callback (keyed by the step's channel)."""
        request = entry.request
        now = self._clock.now()
        self._writer.apply(self._ledger.handler_started(
            record_id, channel=channel, caller_number=request.number,
            caller_name=request.caller_name, dialed_number=request.number, now=now))
        record = self._ledger.get(record_id)
        if record is not None:
            record.note = f"callback request {entry.id} of call {request.call_id}"
            record.callback_request_id = entry.id
            record.callback_of = request.call_id
        # The customer has been in line since waiting_since (their place, which the callback
        # kept): the record's wait is theirs, not this call's few seconds.
        self._writer.apply(self._ledger.queued(record_id, entry.queue, entry.waiting_since))

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

    def _spawn(self, work: Awaitable[None], name: str) -> asyncio.Task[None]:
        task = asyncio.ensure_future(work)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
