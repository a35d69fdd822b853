"""One callback request's life, as a pure state machine: events in, actions out.

``CallbackMachine`` decides everything the callback dialer (``features/callbacks/dialer.py``) does
for one request that waits in the ACD's line; the dialer only turns what happens (the ACD's
messages, AMI answers, FastAGI steps, the store's answers, timers) into events and carries
out the actions. No I/O, no asyncio: time comes in as ``now``, timers go out as
``ScheduleTimer(at)`` and come back as ``TimerDue(at)``.

Phases (``TRANSITIONS`` is the one table of which event does what in which phase)::

    IN_LINE ──Offered──> PAUSING (a fast failure's pause) ──TimerDue──> CHECKING
       │                                   └─────────────(no pause)───> CHECKING
       │    CHECKING ──StatusRead(pending)──> RINGING (Originate: agent leg, or the
       │        │                             customer's for a nailed-up agent)
       │        └──StatusRead(not pending)──> DONE (out of line)
       │    RINGING ──Originated(answered)──> AWAITING_STEP ──TimerDue──> IN_LINE (rejected)
       │    RINGING ──Originated(lost)──> FINDING_FATE (poll the channel snapshot, timers)
       │    RINGING / FINDING_FATE ──not answered──> IN_LINE (offer given back)
       │    RINGING / FINDING_FATE / AWAITING_STEP ──StepStarted──> ON_STEP
       │    ON_STEP ──step ended: talked──> DONE; agent left──> IN_LINE;
       │                customer did not answer──> IN_LINE (the ACD takes it out of line)
       ├──CustomerUnanswered──> AWAY (due back after retry_after) or DONE (failed: max_attempts)
       └──LineLost──> AWAY (due back after rescan_every)
    AWAY ──TimerDue──> RETURNING ──StatusRead(pending)──> IN_LINE (EnterLine) | DONE

An attempt is one offer carried out (its ``token`` names the Originate's channels and the
FastAGI steps). It ends with exactly one outcome for the ACD: ``GiveOfferBack`` (the offer
failed, why) or ``LeaveLine`` (the customer talked with the agent, or the request was
settled elsewhere meanwhile: the entry leaves the line). Events of another attempt than the
current one (late, duplicated, out of order) are ignored; a FastAGI step that belongs to no
current attempt is refused (``RefuseStep``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from callcenter.core.acd_actions import ConnectMode, OfferFailure
from callcenter.core.records import CallbackStatus, HangupBy

FAST_FAILURE_SECONDS = 2.0  # a ring that fails this fast did not ring at all
RETRY_PAUSE_SECONDS = 5.0  # after a fast failure the next call waits this long
FATE_POLL_SECONDS = 1.0  # how often the channel snapshot is asked after a lost answer
ORIGINATE_GRACE_SECONDS = 5  # the Originate waits this much beyond its own ring time
# The Originate's Reason (Asterisk's control frame) when the agent's ring failed.
RING_FAILURES = {"5": OfferFailure.REJECTED, "8": OfferFailure.UNREACHABLE}


@dataclass(frozen=True)
class CallbackRules:
    """What the machine needs to know of the settings."""

    max_attempts: int  # calls to a customer who does not answer before the request fails
    retry_after: float  # an unanswered customer is back in line this much later
    rescan_every: float  # a request the ACD could not keep is tried again this much later
    agi_start_timeout: float  # an answered Originate whose step did not start is given up
    customer_dial_seconds: int  # how long a nailed-up agent's customer is dialled

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts: {self.max_attempts} must be 1 or more")


class Phase(StrEnum):
    IN_LINE = "in_line"  # in the ACD's line (or just given an offer back)
    PAUSING = "pausing"  # offered an agent, waiting out the pause after a fast failure
    CHECKING = "checking"  # offered an agent, asking the store if still pending
    RINGING = "ringing"  # the Originate is out: the agent's ring, or the customer's
    FINDING_FATE = "finding_fate"  # the Originate's answer was lost: is its call under way?
    AWAITING_STEP = "awaiting_step"  # answered: the FastAGI step should start now
    ON_STEP = "on_step"  # a FastAGI step runs the call
    AWAY = "away"  # out of the ACD's line, due back at a time
    RETURNING = "returning"  # due back: asking the store if still pending
    DONE = "done"  # the dialer no longer holds the request


class Leg(StrEnum):
    AGENT = "agent"  # ring the agent (ring mode): their step dials the customer
    CUSTOMER = "customer"  # dial the customer, who joins a nailed-up agent's bridge


class StepKind(StrEnum):
    """The FastAGI ``callback`` script's steps (``callcenter.features.callbacks.dialplan``)."""

    AGENT = "agent"  # the agent answered their ring
    CUSTOMER = "customer"  # a nailed-up agent's customer answered
    ANSWERED = "answered"  # the agent's Dial to the customer was answered (Dial's U())


class OriginateOutcome(StrEnum):
    ANSWERED = "answered"
    NOT_ANSWERED = "not_answered"  # OriginateResponse Failure: reason is Asterisk's Reason
    FAILED = "failed"  # AMI refused or was away, or no OriginateResponse: surely not placed
    LOST = "lost"  # the connection dropped after sending: it may be ringing


class Sighting(StrEnum):
    """The channel snapshot about an Originate's named channels."""

    LIVE = "live"
    ABSENT = "absent"
    UNKNOWN = "unknown"  # AMI could not answer


class LineLoss(StrEnum):
    NO_AGENT = "no_agent"  # NoAgentAvailable
    FULL = "full"  # QueueFull
    TIMED_OUT = "timed_out"  # QueueTimedOut


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class Offered:
    """The ACD offers the request to an agent (``OfferCall(virtual=True)``); ``token`` names
    the attempt this offer becomes (fresh and random: the service makes it)."""

    token: str
    agent_id: str
    mode: ConnectMode
    ring_timeout: float


@dataclass(frozen=True)
class StatusRead:
    """The store's answer to ``ReadStatus``: still pending (True also when the store could
    not answer: calling back is still what was asked)."""

    pending: bool


@dataclass(frozen=True)
class TimerDue:
    at: float


@dataclass(frozen=True)
class Originated:
    token: str
    outcome: OriginateOutcome
    reason: str = ""  # Asterisk's Reason, or what failed


@dataclass(frozen=True)
class FateSeen:
    token: str
    sighting: Sighting


@dataclass(frozen=True)
class StepStarted:
    """A FastAGI step of ``token`` began, on channel ``channel`` (its uniqueid ``record_id``
    keys the call record)."""

    token: str
    kind: StepKind
    record_id: str
    channel: str


@dataclass(frozen=True)
class AgentStepEnded:
    """The agent's Dial to the customer returned (``dial_status``), or the agent hung up."""

    token: str
    dial_status: str
    agent_left: bool


@dataclass(frozen=True)
class CustomerStepEnded:
    """The nailed-up agent's customer left the bridge (or was put out of it by the agent)."""

    token: str
    customer_left: bool


@dataclass(frozen=True)
class StepFinished:
    """A step (agent or customer) is over, however it ended: one that broke before saying
    how the call went still gives the offer back."""

    token: str


@dataclass(frozen=True)
class CustomerUnanswered:
    """The ACD took the entry out of line after a customer did not answer."""


@dataclass(frozen=True)
class LineLost:
    """The ACD could not keep the entry in line."""

    why: LineLoss


CallbackEvent = (Offered | StatusRead | TimerDue | Originated | FateSeen | StepStarted
                 | AgentStepEnded | CustomerStepEnded | StepFinished | CustomerUnanswered
                 | LineLost)


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class ReadStatus:
    """Ask the store whether the request is still pending; answer with ``StatusRead``."""


@dataclass(frozen=True)
class SetStatus:
    status: CallbackStatus


@dataclass(frozen=True)
class ScheduleTimer:
    """Send ``TimerDue(at)`` then (replaces any timer scheduled before)."""

    at: float


@dataclass(frozen=True)
class Originate:
    """Send an async Originate named after ``token``; answer with ``Originated``. The agent
    leg rings ``agent_id`` for ``ring_seconds``; the action waits ``timeout`` seconds."""

    token: str
    leg: Leg
    agent_id: str
    ring_seconds: int
    timeout: float


@dataclass(frozen=True)
class LookForOriginate:
    """Look for ``token``'s channels in the channel snapshot; answer with ``FateSeen``."""

    token: str


@dataclass(frozen=True)
class GiveOfferBack:
    """Tell the ACD the offer failed (``acd.failed``)."""

    agent_id: str
    failure: OfferFailure


@dataclass(frozen=True)
class TalkStarted:
    """The customer is on the line with the agent (``acd.answered``)."""

    agent_id: str


@dataclass(frozen=True)
class LeaveLine:
    """Out of the ACD (``acd.left``): the talk is over, or the request needs no call."""


@dataclass(frozen=True)
class EnterLine:
    """Back into the ACD's line, in the entry's old place."""


@dataclass(frozen=True)
class Forget:
    """The dialer no longer holds the request (a scan may pick it up if still pending)."""


@dataclass(frozen=True)
class StartRecord:
    """Open the call record of this call, keyed by the step's channel."""

    record_id: str
    channel: str


@dataclass(frozen=True)
class RecordTalkStarted:
    record_id: str
    agent_id: str


@dataclass(frozen=True)
class RecordTalked:
    """Close the record: the agent talked with the customer; ``hangup_by`` ended it."""

    record_id: str
    agent_id: str
    hangup_by: HangupBy


@dataclass(frozen=True)
class RecordNotReached:
    """Close the record as failed: the agent left first, or the customer did not answer."""

    record_id: str
    hangup_by: HangupBy
    agent_left: bool
    dial_status: str


@dataclass(frozen=True)
class DialCustomer:
    """On the agent's step: dial the customer (Dial's U() runs the ``answered`` step)."""

    token: str


@dataclass(frozen=True)
class PlayConnecting:
    """On the customer's leg: tell them who calls before the agent is bridged."""


@dataclass(frozen=True)
class JoinAgent:
    """On a nailed-up agent's customer's step: into the agent's bridge."""

    token: str
    agent_id: str


@dataclass(frozen=True)
class HangUpStep:
    """End the step's channel."""


@dataclass(frozen=True)
class RefuseStep:
    """A step of no current attempt: hang it up (not a customer's ``answered`` leg, which is
    the agent's to end)."""

    hang_up: bool


@dataclass(frozen=True)
class Log:
    level: int
    message: str


CallbackAction = (ReadStatus | SetStatus | ScheduleTimer | Originate | LookForOriginate
                  | GiveOfferBack | TalkStarted | LeaveLine | EnterLine | Forget | StartRecord
                  | RecordTalkStarted | RecordTalked | RecordNotReached | DialCustomer
                  | PlayConnecting | JoinAgent | HangUpStep | RefuseStep | Log)

# Actions a FastAGI step carries out on its own channel.
SESSION_ACTIONS = (DialCustomer, PlayConnecting, JoinAgent, HangUpStep, RefuseStep)


# --------------------------------------------------------------------------- the machine


@dataclass
class Attempt:
    """One offer being carried out."""

    token: str
    agent_id: str
    mode: ConnectMode
    ring_timeout: float
    leg: Leg = Leg.AGENT
    sent_at: float = 0.0  # when the Originate went out
    timeout: float = 0.0  # how long the Originate waits
    started: bool = False  # a step (agent or customer) began
    customer_answered: bool = False
    record_id: str | None = None
    rang: bool = False  # after a lost answer: its call was seen under way
    lost_error: str = ""


# A transition: (machine, event of the type its table row names, now) -> actions.
Handler = Callable[..., list[CallbackAction]]


class CallbackMachine:
    """One request held by the dialer: created in line (``Phase.IN_LINE``)."""

    def __init__(self, rules: CallbackRules) -> None:
        self.rules = rules
        self.phase = Phase.IN_LINE
        self.unanswered = 0  # calls the customer did not answer
        self.not_before = 0.0  # after a fast failure, the next call waits until then
        self.due: float | None = None  # the timer's time, if one is scheduled
        self.attempt: Attempt | None = None
        self.attempts = 0  # offers carried out (Originates sent)

    @property
    def done(self) -> bool:
        return self.phase is Phase.DONE

    @property
    def token(self) -> str | None:
        return None if self.attempt is None else self.attempt.token

    def handle(self, event: CallbackEvent, now: float) -> list[CallbackAction]:
        """The actions ``event`` calls for at ``now``; late or foreign events do nothing."""
        if isinstance(event, TimerDue):
            if event.at != self.due:
                return []  # replaced or stale
            self.due = None
        token = getattr(event, "token", None)
        if token is not None and not isinstance(event, Offered) and token != self.token:
            return _refuse(event) if isinstance(event, StepStarted) else []
        handler = TRANSITIONS.get((self.phase, type(event)))
        if handler is None:
            return _refuse(event) if isinstance(event, StepStarted) else []
        return handler(self, event, now)

    # ------------------------------------------------------------------ helpers

    def _timer(self, at: float) -> ScheduleTimer:
        self.due = at
        return ScheduleTimer(at)

    def _current(self) -> Attempt:
        assert self.attempt is not None
        return self.attempt

    def _give_back(self, failure: OfferFailure, now: float, *,
                   pause: bool = False) -> list[CallbackAction]:
        """The attempt ends: the offer failed (the entry is still in line, or the ACD takes
        it out when the customer did not answer)."""
        attempt = self._current()
        self.attempt = None
        self.phase = Phase.IN_LINE
        if pause:  # not straight back: nobody holds the line, and a broken call must not loop
            self.not_before = now + RETRY_PAUSE_SECONDS
        return [GiveOfferBack(attempt.agent_id, failure)]

    def _talk_over(self) -> list[CallbackAction]:
        self.attempt = None
        self.phase = Phase.DONE
        return [Forget(), LeaveLine()]

    def _customer_answered(self) -> list[CallbackAction]:
        attempt = self._current()
        if attempt.customer_answered:
            return []
        attempt.customer_answered = True
        actions: list[CallbackAction] = [TalkStarted(attempt.agent_id)]
        if attempt.record_id is not None:
            # The record's one attempt is the agent's talk with the customer.
            actions.append(RecordTalkStarted(attempt.record_id, attempt.agent_id))
        actions.append(Log(logging.INFO, f"the customer answered; agent {attempt.agent_id}"))
        actions.append(SetStatus(CallbackStatus.DONE))
        return actions

    def _dial(self, now: float) -> list[CallbackAction]:
        attempt = self._current()
        self.attempts += 1
        self.phase = Phase.RINGING
        attempt.sent_at = now
        if attempt.mode is ConnectMode.NAILED:
            attempt.leg = Leg.CUSTOMER
            seconds = self.rules.customer_dial_seconds
        else:
            seconds = max(1, round(attempt.ring_timeout))
        attempt.timeout = seconds + ORIGINATE_GRACE_SECONDS
        return [Originate(attempt.token, attempt.leg, attempt.agent_id, seconds,
                          attempt.timeout)]

    def _come_back_after(self, seconds: float, now: float) -> list[CallbackAction]:
        self.phase = Phase.AWAY
        return [self._timer(now + seconds)]

    def _not_answered(self, outcome: OriginateOutcome, reason: str,
                      now: float) -> list[CallbackAction]:
        """The Originate ended without its call being answered."""
        attempt = self._current()
        failed = outcome is OriginateOutcome.FAILED
        if attempt.leg is Leg.CUSTOMER:
            if failed:
                return self._give_back(OfferFailure.REJECTED, now, pause=True)
            return [Log(logging.INFO, f"the customer did not answer (reason {reason})"),
                    *self._give_back(OfferFailure.CUSTOMER_NO_ANSWER, now)]
        fast = now - attempt.sent_at < FAST_FAILURE_SECONDS
        if failed:
            failure = OfferFailure.REJECTED
        else:
            failure = RING_FAILURES.get(reason, OfferFailure.NO_ANSWER)
            if failure is OfferFailure.NO_ANSWER and fast:
                failure = OfferFailure.REJECTED  # no ring at all: not the agent's fault
        return [Log(logging.INFO, f"agent {attempt.agent_id} did not take it "
                                  f"({failure.value}: reason {reason})"),
                *self._give_back(failure, now, pause=fast or failed)]

    def _look(self) -> list[CallbackAction]:
        return [LookForOriginate(self._current().token)]

    def _fate_concluded(self, now: float) -> list[CallbackAction]:
        attempt = self._current()
        if attempt.rang:
            return [Log(logging.INFO, "its call rang and ended unanswered"),
                    *self._not_answered(OriginateOutcome.NOT_ANSWERED,
                                        "rang while the AMI answer was lost", now)]
        return self._not_answered(OriginateOutcome.FAILED, attempt.lost_error, now)

    # ------------------------------------------------------------------ transitions

    def _offered(self, event: Offered, now: float) -> list[CallbackAction]:
        self.attempt = Attempt(event.token, event.agent_id, event.mode, event.ring_timeout)
        if self.not_before > now:
            self.phase = Phase.PAUSING
            return [self._timer(self.not_before)]
        self.phase = Phase.CHECKING
        return [ReadStatus()]

    def _pause_over(self, event: TimerDue, now: float) -> list[CallbackAction]:
        self.phase = Phase.CHECKING
        return [ReadStatus()]

    def _checked(self, event: StatusRead, now: float) -> list[CallbackAction]:
        if not event.pending:  # cancelled or done by someone else
            self.attempt = None
            self.phase = Phase.DONE
            return [Log(logging.INFO, "no longer pending; out of line"), Forget(), LeaveLine()]
        return self._dial(now)

    def _originated(self, event: Originated, now: float) -> list[CallbackAction]:
        attempt = self._current()
        if event.outcome is OriginateOutcome.ANSWERED:
            self.phase = Phase.AWAITING_STEP
            return [self._timer(now + self.rules.agi_start_timeout)]
        if event.outcome is OriginateOutcome.LOST:
            # It may have reached Asterisk: find out before anyone dials again.
            self.phase = Phase.FINDING_FATE
            attempt.lost_error = event.reason
            return [Log(logging.WARNING, f"the Originate's answer was lost ({event.reason}); "
                                         "looking for its call before dialling again"),
                    *self._look()]
        return self._not_answered(event.outcome, event.reason, now)

    def _fate_seen(self, event: FateSeen, now: float) -> list[CallbackAction]:
        """Its step starting means the call was answered. While the snapshot shows its
        channels, it is ringing: wait. Once the snapshot lacks them, nothing rings now. Should
        AMI stay away, no ring outlives the Originate's own Timeout."""
        attempt = self._current()
        deadline = attempt.sent_at + attempt.timeout
        if event.sighting is Sighting.ABSENT:
            return self._fate_concluded(now)
        if event.sighting is Sighting.LIVE:
            attempt.rang = True
        elif now >= deadline:
            return self._fate_concluded(now)  # AMI still away past the Originate's Timeout
        return [self._timer(now + FATE_POLL_SECONDS)]

    def _fate_poll_due(self, event: TimerDue, now: float) -> list[CallbackAction]:
        attempt = self._current()
        if now < attempt.sent_at + attempt.timeout + self.rules.agi_start_timeout:
            return self._look()
        return self._fate_concluded(now)

    def _step_never_came(self, event: TimerDue, now: float) -> list[CallbackAction]:
        return [Log(logging.ERROR, "the call was answered but the FastAGI step never came"),
                *self._give_back(OfferFailure.REJECTED, now, pause=True)]

    def _step_started(self, event: StepStarted, now: float) -> list[CallbackAction]:
        attempt = self._current()
        if event.kind is StepKind.ANSWERED:
            return [*self._customer_answered(), PlayConnecting()]
        if attempt.started:
            return _refuse(event)
        attempt.started = True
        attempt.record_id = event.record_id
        self.phase = Phase.ON_STEP
        self.due = None  # no step deadline, no fate poll: the step runs the call now
        actions: list[CallbackAction] = [StartRecord(event.record_id, event.channel)]
        if event.kind is StepKind.AGENT:
            return [*actions, DialCustomer(attempt.token)]
        return [*actions, *self._customer_answered(), PlayConnecting(),
                JoinAgent(attempt.token, attempt.agent_id)]

    def _agent_step_ended(self, event: AgentStepEnded, now: float) -> list[CallbackAction]:
        attempt = self._current()
        record_id = attempt.record_id
        assert record_id is not None
        if attempt.customer_answered or event.dial_status == "ANSWER":
            return [*self._customer_answered(), *self._talk_over(),
                    RecordTalked(record_id, attempt.agent_id,
                                 HangupBy.AGENT if event.agent_left else HangupBy.CALLER),
                    Log(logging.INFO, f"done (agent {attempt.agent_id})"), HangUpStep()]
        if event.agent_left:
            return [*self._give_back(OfferFailure.REJECTED, now, pause=True),
                    RecordNotReached(record_id, HangupBy.AGENT, True, event.dial_status),
                    HangUpStep()]
        return [*self._give_back(OfferFailure.CUSTOMER_NO_ANSWER, now),
                RecordNotReached(record_id, HangupBy.SYSTEM, False, event.dial_status),
                HangUpStep()]

    def _customer_step_ended(self, event: CustomerStepEnded,
                             now: float) -> list[CallbackAction]:
        attempt = self._current()
        assert attempt.record_id is not None
        return [*self._talk_over(),
                RecordTalked(attempt.record_id, attempt.agent_id,
                             HangupBy.CALLER if event.customer_left else HangupBy.AGENT),
                Log(logging.INFO, f"done (nailed-up agent {attempt.agent_id})"), HangUpStep()]

    def _step_broke(self, event: StepFinished, now: float) -> list[CallbackAction]:
        """The step ended without saying how the call went (it failed, and logged why)."""
        log = Log(logging.ERROR, "the call ended without an outcome; the offer goes back to "
                                 "the ACD")
        if self._current().customer_answered:
            self.not_before = now + RETRY_PAUSE_SECONDS
            return [log, *self._talk_over()]
        return [log, *self._give_back(OfferFailure.REJECTED, now, pause=True)]

    def _unanswered(self, event: CustomerUnanswered, now: float) -> list[CallbackAction]:
        self.unanswered += 1
        if self.unanswered >= self.rules.max_attempts:
            self.phase = Phase.DONE
            return [Log(logging.WARNING, f"the customer did not answer {self.unanswered} "
                                         "times; failed"),
                    Forget(), SetStatus(CallbackStatus.FAILED)]
        return [Log(logging.INFO, f"the customer did not answer ({self.unanswered} of "
                                  f"{self.rules.max_attempts}); back in line in "
                                  f"{self.rules.retry_after:.0f} s"),
                *self._come_back_after(self.rules.retry_after, now)]

    def _line_lost(self, event: LineLost, now: float) -> list[CallbackAction]:
        return [Log(logging.WARNING, f"the ACD could not keep it in line ({event.why.value}); "
                                     f"trying again in {self.rules.rescan_every:.0f} s"),
                *self._come_back_after(self.rules.rescan_every, now)]

    def _due_back(self, event: TimerDue, now: float) -> list[CallbackAction]:
        self.phase = Phase.RETURNING
        return [ReadStatus()]

    def _returned(self, event: StatusRead, now: float) -> list[CallbackAction]:
        if not event.pending:
            self.phase = Phase.DONE
            return [Forget()]
        self.phase = Phase.IN_LINE
        return [EnterLine()]


def _refuse(event: CallbackEvent) -> list[CallbackAction]:
    assert isinstance(event, StepStarted)
    return [RefuseStep(hang_up=event.kind is not StepKind.ANSWERED)]


_M = CallbackMachine
_STEP_PHASES = (Phase.RINGING, Phase.FINDING_FATE, Phase.AWAITING_STEP, Phase.ON_STEP)

# The one table: (phase, event type) -> what it does. Pairs not listed are ignored (a late,
# duplicated or foreign event), except a FastAGI step, which is refused.
TRANSITIONS: dict[tuple[Phase, type], Handler] = {
    (Phase.IN_LINE, Offered): _M._offered,
    (Phase.IN_LINE, CustomerUnanswered): _M._unanswered,
    (Phase.IN_LINE, LineLost): _M._line_lost,
    (Phase.PAUSING, TimerDue): _M._pause_over,
    (Phase.CHECKING, StatusRead): _M._checked,
    (Phase.RINGING, Originated): _M._originated,
    (Phase.FINDING_FATE, FateSeen): _M._fate_seen,
    (Phase.FINDING_FATE, TimerDue): _M._fate_poll_due,
    (Phase.AWAITING_STEP, TimerDue): _M._step_never_came,
    **{(phase, StepStarted): _M._step_started for phase in _STEP_PHASES},
    (Phase.ON_STEP, AgentStepEnded): _M._agent_step_ended,
    (Phase.ON_STEP, CustomerStepEnded): _M._customer_step_ended,
    (Phase.ON_STEP, StepFinished): _M._step_broke,
    (Phase.AWAY, TimerDue): _M._due_back,
    (Phase.RETURNING, StatusRead): _M._returned,
}
