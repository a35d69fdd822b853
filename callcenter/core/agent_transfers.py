"""Agent transfers as a pure state machine: what a blind or attended transfer an agent asked
for (POST /api/calls/{id}/transfer) is doing, for every call at once, keyed by call id.

Not the IVR's transfers out of the call center (features/ivr/transfer_out.py): these move a
caller who is talking with an agent to another agent or queue (docs/records.md "Agent legs and
transfers"; features/agent_transfers/service.py tells the whole story with Asterisk).

Sans-I/O, like ``Acd`` and ``IvrSession``: the service turns what happened (AMI events, the
outcome of the AMI actions it sent, the transfer script's start, a timer) into the events
below and gives them to ``handle(event, now)``; it gets back actions (start the consult in
Asterisk, release an agent in the ACD, write to the call's record, wake me later) and only
performs them. Time comes in as ``now``; nothing here awaits, reads a clock or talks to
Asterisk. The checks a request needs before anything moves ask ``refusal`` (a query: no state
changes); the checks of the target, which need the ACD's agents, are core/transfer_rules.py's.

One call's transfer goes through these phases (``Phase``)::

    IDLE --CallerRedirected--> REDIRECTED --CallerArrived--> IDLE              (blind)
    IDLE --ConsultRequested--> CONSULT_STARTING --DialBegan--> CONSULT_RINGING
         --DialEnded(ANSWER)--> CONSULTING --AttendedTransferDone(Success)--> IDLE (attended)

(or, when the first agent hangs up before the second answered, ``HANDED_OVER_RINGING`` until
the second agent's phone answers or not), and a consult that ends any other way (Asterisk
refused it, the second agent's dial failed or they hung up first, its Local channel ended
without ringing, it never began within ``consult_start_seconds``) goes back to IDLE with the
first agent keeping the caller and the second released. Every (phase, event) pair the machine
acts on is in ``TRANSITIONS``; any other pair (a duplicate, late or out-of-order event)
changes nothing and asks for nothing.

Orthogonal to the phase, the machine follows the phone leg of the agent talking with each
caller (the answered ``DialEnd`` of the caller's Dial to an agent, then the second agent's leg
after an attended handover): an attended transfer starts from it. After a handover the second
agent is on the call outside the ACD's routing until their leg hangs up (``ReleaseAgent``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum

from callcenter.core.calls import agent_from_channel
from callcenter.core.records import TransferMode

__all__ = [
    "DECLINED_STATUS", "NEVER_RANG_STATUS", "TRANSITIONS", "Action", "AgentTransfers",
    "AttendedTransferDone", "CallerArrived", "CallerRedirected", "ChannelHungUp",
    "ConsultNotStarted", "ConsultRequested", "ConsultStartDue", "ConsultStarted", "DialBegan",
    "DialEnded", "Event", "FirstAgentDone", "Phase", "RecordAttemptEnded",
    "RecordAttemptStarted", "RecordConsultAnswered", "RecordConsultEnded", "RecordTalkEnded",
    "RecordTransferCompleted", "RecordTransferRequested", "ReleaseAgent", "StartConsult",
    "WakeAt",
]

# What the record says of a consult the second agent answered but ended themselves.
DECLINED_STATUS = "DECLINED"
# ... and of one that never rang them (its Local channel ended, or it never began).
NEVER_RANG_STATUS = "CHANUNAVAIL"


class Phase(Enum):
    IDLE = "idle"  # no transfer under way (an agent leg may be known)
    REDIRECTED = "redirected"  # blind: the caller is on the way to the transfer script
    CONSULT_STARTING = "consult_starting"  # attended: asked of Asterisk, not ringing yet
    CONSULT_RINGING = "consult_ringing"  # the consult's Local channel rings the second agent
    CONSULTING = "consulting"  # the second agent answered: the two agents talk
    # The first agent hung up while the consult still rang (Asterisk's "blond" transfer): the
    # caller is handed to the second agent's ringing phone; their answer makes it theirs.
    HANDED_OVER_RINGING = "handed_over_ringing"


CONSULT_PHASES = (Phase.CONSULT_STARTING, Phase.CONSULT_RINGING, Phase.CONSULTING)

# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class CallerRedirected:
    """Asterisk accepted the Redirect of a blind transfer: the caller is on the way."""

    call_id: str
    from_agent: str
    to_agent: str | None = None
    to_queue: str | None = None


@dataclass(frozen=True)
class CallerArrived:
    """The transferred caller's new FastAGI session (the transfer script) began."""

    call_id: str


@dataclass(frozen=True)
class ConsultRequested:
    """An attended transfer passed its checks and the second agent is held for it (the
    service made them busy elsewhere): ring them through consult extension ``token``."""

    call_id: str
    from_agent: str
    to_agent: str
    token: str
    ring_seconds: int
    to_queue: str | None = None


@dataclass(frozen=True)
class ConsultStarted:
    """Asterisk accepted the consult (Setvar and Atxfer answered Success)."""

    call_id: str


@dataclass(frozen=True)
class ConsultNotStarted:
    """Asterisk refused the consult, or could not be reached."""

    call_id: str


@dataclass(frozen=True)
class ConsultStartDue:
    """The timer ``WakeAt`` asked for: the consult ``token`` should be ringing by now."""

    call_id: str
    token: str


@dataclass(frozen=True)
class DialBegan:
    """AMI DialBegin: ``channel`` began to dial."""

    channel: str


@dataclass(frozen=True)
class DialEnded:
    """AMI DialEnd of ``channel`` (its uniqueid ``uniqueid``) to ``dest_channel``.
    ``call_known``: the ledger has a call with id ``uniqueid`` (a caller's channel)."""

    uniqueid: str
    channel: str
    dest_uniqueid: str
    dest_channel: str
    status: str
    call_known: bool = False


@dataclass(frozen=True)
class ChannelHungUp:
    """AMI Hangup of a channel."""

    uniqueid: str
    channel: str


@dataclass(frozen=True)
class AttendedTransferDone:
    """AMI AttendedTransfer: Asterisk handed (``success``) or failed to hand the caller
    (``transferee_uniqueid``) of ``transferer_channel``'s attended transfer on."""

    transferer_channel: str
    transferee_uniqueid: str
    success: bool


Event = (CallerRedirected | CallerArrived | ConsultRequested | ConsultStarted
         | ConsultNotStarted | ConsultStartDue | DialBegan | DialEnded | ChannelHungUp
         | AttendedTransferDone)

# --------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class StartConsult:
    """Register ``token`` as ringing ``to_agent`` for ``ring_seconds`` (Setvar) and ask
    Asterisk for an attended transfer on ``agent_channel`` to it (Atxfer); answer with
    ``ConsultStarted`` or ``ConsultNotStarted``."""

    call_id: str
    agent_channel: str
    token: str
    to_agent: str
    ring_seconds: int


@dataclass(frozen=True)
class WakeAt:
    """Give ``event`` to the machine at time ``at``."""

    at: float
    event: ConsultStartDue


@dataclass(frozen=True)
class ReleaseAgent:
    """``agent_id``'s part in ``call_id`` outside the ACD's routing is over (if they are still
    on that call)."""

    agent_id: str
    call_id: str


@dataclass(frozen=True)
class FirstAgentDone:
    """The attended handover is done: ``agent_id``'s talk with the caller is over (a routed
    call ends as any talk; one they had taken over by an earlier transfer is released)."""

    agent_id: str
    call_id: str


@dataclass(frozen=True)
class RecordTransferRequested:
    call_id: str
    mode: TransferMode
    from_agent: str
    at: float
    to_agent: str | None = None
    to_queue: str | None = None


@dataclass(frozen=True)
class RecordAttemptStarted:
    """The consult rings ``agent_id``: a new ring attempt in the call's record."""

    call_id: str
    agent_id: str
    at: float


@dataclass(frozen=True)
class RecordConsultAnswered:
    call_id: str
    agent_id: str
    at: float


@dataclass(frozen=True)
class RecordConsultEnded:
    """The consult ended without a handover: ``status`` a DIALSTATUS or ``DECLINED``."""

    call_id: str
    agent_id: str
    status: str
    at: float


@dataclass(frozen=True)
class RecordAttemptEnded:
    """The ring of ``agent_id`` for the call ended with ``status`` (after the transfer had
    already been handed over: its outcome stays COMPLETED)."""

    call_id: str
    agent_id: str
    status: str
    at: float


@dataclass(frozen=True)
class RecordTransferCompleted:
    call_id: str
    at: float


@dataclass(frozen=True)
class RecordTalkEnded:
    """The second agent's talk after a handover is over (their leg hung up)."""

    call_id: str
    agent_id: str
    at: float


Action = (StartConsult | WakeAt | ReleaseAgent | FirstAgentDone | RecordTransferRequested
          | RecordAttemptStarted | RecordConsultAnswered | RecordConsultEnded
          | RecordAttemptEnded | RecordTransferCompleted | RecordTalkEnded)

# --------------------------------------------------------------------------- state


@dataclass(frozen=True)
class Leg:
    """The phone leg of the agent a caller is talking with."""

    agent_id: str
    channel: str
    uniqueid: str


@dataclass(frozen=True)
class Consult:
    """An attended transfer between its request and its end."""

    from_agent: str
    from_channel: str
    to_agent: str
    token: str
    to_queue: str | None = None  # the queue asked for, when its routing picked ``to_agent``
    started: bool = False  # Asterisk accepted it (``ConsultStarted``)
    target: Leg | None = None  # the second agent's phone leg, once they answered


@dataclass(frozen=True)
class CallTransferState:
    phase: Phase = Phase.IDLE
    leg: Leg | None = None
    moved_at: float | None = None  # when a blind transfer's caller was redirected
    consult: Consult | None = None

    @property
    def empty(self) -> bool:
        return self.phase is Phase.IDLE and self.leg is None


# Events about one call, found by the machine from the channel events above.
@dataclass(frozen=True)
class _LegAnswered:
    leg: Leg


@dataclass(frozen=True)
class _CallerHungUp:
    pass


@dataclass(frozen=True)
class _ConsultDialling:
    pass


@dataclass(frozen=True)
class _ConsultAnswered:
    target: Leg


@dataclass(frozen=True)
class _ConsultNotTaken:
    """It ended before the second agent answered: ``status`` says how."""

    status: str


@dataclass(frozen=True)
class _ConsultDeclined:
    """The second agent answered, then hung up before the first agent."""


@dataclass(frozen=True)
class _HandedOver:
    pass


@dataclass(frozen=True)
class _TakenOverLegHungUp:
    agent_id: str
    uniqueid: str


_CallEvent = (CallerRedirected | CallerArrived | ConsultRequested | ConsultStarted
              | ConsultNotStarted | ConsultStartDue | _LegAnswered | _CallerHungUp
              | _ConsultDialling | _ConsultAnswered | _ConsultNotTaken | _ConsultDeclined
              | _HandedOver | _TakenOverLegHungUp)
_Outcome = tuple[CallTransferState, list[Action]]
_Handler = Callable[["AgentTransfers", str, CallTransferState, _CallEvent, float], _Outcome]


class AgentTransfers:
    """The agent transfers of all calls. ``consult_context``: the dialplan context of the
    consult extensions (its Local channels are ``Local/<token>@<context>-…``);
    ``handover_seconds``: a redirected caller is "already being transferred" for twice that;
    ``consult_start_seconds``: a consult not ringing by then lets the second agent go."""

    def __init__(self, *, consult_context: str, handover_seconds: float,
                 consult_start_seconds: float) -> None:
        self._consult_context = consult_context
        self._handover_seconds = handover_seconds
        self._consult_start_seconds = consult_start_seconds
        self._calls: dict[str, CallTransferState] = {}
        # The second agent's phone leg after a handover -> (agent, call): they are on the call
        # outside the ACD's routing until that leg hangs up.
        self._taken_over: dict[str, tuple[str, str]] = {}

    # ------------------------------------------------------------------ queries

    def state(self, call_id: str) -> CallTransferState:
        return self._calls.get(call_id, CallTransferState())

    def consulting(self, call_id: str) -> str | None:
        """The agent being consulted about ``call_id`` now, if any."""
        consult = self.state(call_id).consult
        return consult.to_agent if consult is not None else None

    def refusal(self, call_id: str, from_agent: str, mode: TransferMode,
                now: float) -> str | None:
        """Why a transfer of ``call_id`` by ``from_agent`` in ``mode`` cannot start because of
        a transfer under way (or, attended, an unknown agent leg); None if it can."""
        state = self.state(call_id)
        moving = (state.phase is Phase.REDIRECTED and state.moved_at is not None
                  and now - state.moved_at < 2 * self._handover_seconds)
        if mode is TransferMode.BLIND:
            if state.consult is not None:
                return f"call {call_id!r} is being transferred (attended)"
            if moving:
                return f"call {call_id!r} is already being transferred"
            return None
        if state.consult is not None or moving:
            return f"call {call_id!r} is already being transferred"
        if state.leg is None or state.leg.agent_id != from_agent:
            return (f"call {call_id!r}: the phone leg of agent {from_agent!r} is not known "
                    "(its answer was not seen on AMI)")
        return None

    # ------------------------------------------------------------------ events

    def handle(self, event: Event, now: float) -> list[Action]:
        """Apply ``event`` (at time ``now``); the actions the service must perform, in
        order."""
        actions: list[Action] = []
        for call_id, call_event in self._route(event):
            state = self.state(call_id)
            handler = TRANSITIONS.get((state.phase, type(call_event)))
            if handler is None:
                continue  # not expected now: a duplicate, late or out-of-order event
            new_state, more = handler(self, call_id, state, call_event, now)
            if new_state.empty:
                self._calls.pop(call_id, None)
            else:
                self._calls[call_id] = new_state
            actions.extend(more)
        return actions

    def _route(self, event: Event) -> list[tuple[str, _CallEvent]]:
        """The call(s) ``event`` is about, and what it means for each."""
        match event:
            case DialBegan(channel=channel):
                call_id = self._consult_of_local(channel)
                return [(call_id, _ConsultDialling())] if call_id is not None else []
            case DialEnded():
                return self._dial_ended(event)
            case ChannelHungUp():
                return self._hung_up(event)
            case AttendedTransferDone():
                call_id = next(
                    (c for c, s in self._calls.items() if s.consult is not None and (
                        s.consult.from_channel == event.transferer_channel
                        or c == event.transferee_uniqueid)), None)
                if call_id is None or not event.success:
                    # A failed one: the consult's own end (a hangup) releases the agent.
                    return []
                return [(call_id, _HandedOver())]
            case _:
                return [(event.call_id, event)]

    def _dial_ended(self, event: DialEnded) -> list[tuple[str, _CallEvent]]:
        call_id = self._consult_of_local(event.channel)
        if call_id is not None:
            if event.status == "ANSWER":
                target = Leg(self.consulting(call_id) or "", event.dest_channel,
                             event.dest_uniqueid)
                return [(call_id, _ConsultAnswered(target))]
            return [(call_id, _ConsultNotTaken(event.status or "UNKNOWN"))]
        agent_id = agent_from_channel(event.dest_channel)
        if event.status == "ANSWER" and agent_id is not None and event.call_known:
            leg = Leg(agent_id, event.dest_channel, event.dest_uniqueid)
            return [(event.uniqueid, _LegAnswered(leg))]
        return []

    def _hung_up(self, event: ChannelHungUp) -> list[tuple[str, _CallEvent]]:
        uniqueid = event.uniqueid
        routed: list[tuple[str, _CallEvent]] = []
        if uniqueid in self._calls:
            routed.append((uniqueid, _CallerHungUp()))
        taken = self._taken_over.pop(uniqueid, None)
        if taken is not None:
            agent_id, call_id = taken
            return [*routed, (call_id, _TakenOverLegHungUp(agent_id, uniqueid))]
        for call_id, state in list(self._calls.items()):
            consult = state.consult
            if consult is None:
                continue
            if consult.target is not None and consult.target.uniqueid == uniqueid:
                routed.append((call_id, _ConsultDeclined()))
            elif consult.target is None and self._is_local_of(consult, event.channel):
                # It ended without ringing.
                routed.append((call_id, _ConsultNotTaken(NEVER_RANG_STATUS)))
        return routed

    def _consult_of_local(self, channel: str) -> str | None:
        """The call whose consult's Local channel (``Local/<token>@<context>-…``) this is."""
        for call_id, state in self._calls.items():
            if state.consult is not None and self._is_local_of(state.consult, channel):
                return call_id
        return None

    def _is_local_of(self, consult: Consult, channel: str) -> bool:
        return channel.startswith(f"Local/{consult.token}@{self._consult_context}")

    # ------------------------------------------------------------------ transitions

    def _leg_answered(self, call_id: str, state: CallTransferState, event: _LegAnswered,
                      now: float) -> _Outcome:
        return replace(state, leg=event.leg), []

    def _caller_hung_up(self, call_id: str, state: CallTransferState, event: _CallerHungUp,
                        now: float) -> _Outcome:
        if state.phase is Phase.REDIRECTED:  # a caller who left will not arrive: forget them
            return CallTransferState(), []
        return replace(state, leg=None), []  # a consult ends by its own channels' events

    def _redirected(self, call_id: str, state: CallTransferState, event: CallerRedirected,
                    now: float) -> _Outcome:
        return replace(state, phase=Phase.REDIRECTED, moved_at=now), [
            RecordTransferRequested(call_id, TransferMode.BLIND, event.from_agent, now,
                                    to_agent=event.to_agent, to_queue=event.to_queue)]

    def _arrived(self, call_id: str, state: CallTransferState, event: CallerArrived,
                 now: float) -> _Outcome:
        return replace(state, phase=Phase.IDLE, moved_at=None), []

    def _consult_requested(self, call_id: str, state: CallTransferState,
                           event: ConsultRequested, now: float) -> _Outcome:
        leg = state.leg
        if leg is None or leg.agent_id != event.from_agent:  # ``refusal`` said so
            return state, [ReleaseAgent(event.to_agent, call_id)]
        consult = Consult(event.from_agent, leg.channel, event.to_agent, event.token,
                          event.to_queue)
        return (replace(state, phase=Phase.CONSULT_STARTING, moved_at=None, consult=consult),
                [StartConsult(call_id, leg.channel, event.token, event.to_agent,
                              event.ring_seconds)])

    def _consult_started(self, call_id: str, state: CallTransferState, event: ConsultStarted,
                         now: float) -> _Outcome:
        consult = _consult(state)
        if consult.started:
            return state, []  # said twice
        return replace(state, consult=replace(consult, started=True)), [
            RecordAttemptStarted(call_id, consult.to_agent, now),
            RecordTransferRequested(call_id, TransferMode.ATTENDED, consult.from_agent, now,
                                    to_agent=consult.to_agent, to_queue=consult.to_queue),
            WakeAt(now + self._consult_start_seconds, ConsultStartDue(call_id, consult.token))]

    def _consult_not_started(self, call_id: str, state: CallTransferState,
                             event: ConsultNotStarted, now: float) -> _Outcome:
        return _back_to_first(state), [ReleaseAgent(_consult(state).to_agent, call_id)]

    def _consult_start_due(self, call_id: str, state: CallTransferState,
                           event: ConsultStartDue, now: float) -> _Outcome:
        if _consult(state).token != event.token:
            return state, []  # the timer of an earlier consult
        return _consult_failed(call_id, state, NEVER_RANG_STATUS, now)

    def _consult_dialling(self, call_id: str, state: CallTransferState,
                          event: _ConsultDialling, now: float) -> _Outcome:
        return replace(state, phase=Phase.CONSULT_RINGING), []

    def _consult_answered(self, call_id: str, state: CallTransferState,
                          event: _ConsultAnswered, now: float) -> _Outcome:
        consult = _consult(state)
        return (replace(state, phase=Phase.CONSULTING,
                        consult=replace(consult, target=event.target)),
                [RecordConsultAnswered(call_id, consult.to_agent, now)])

    def _consult_not_taken(self, call_id: str, state: CallTransferState,
                           event: _ConsultNotTaken, now: float) -> _Outcome:
        return _consult_failed(call_id, state, event.status, now)

    def _consult_declined(self, call_id: str, state: CallTransferState,
                          event: _ConsultDeclined, now: float) -> _Outcome:
        return _consult_failed(call_id, state, DECLINED_STATUS, now)

    def _handed_over(self, call_id: str, state: CallTransferState, event: _HandedOver,
                     now: float) -> _Outcome:
        consult = _consult(state)
        done: list[Action] = [RecordTransferCompleted(call_id, now),
                              FirstAgentDone(consult.from_agent, call_id)]
        if consult.target is None:  # their phone still rings: held for the call until it ends
            return replace(state, phase=Phase.HANDED_OVER_RINGING, leg=None), done
        self._taken_over[consult.target.uniqueid] = (consult.to_agent, call_id)
        return CallTransferState(leg=consult.target), done

    def _answered_after_handover(self, call_id: str, state: CallTransferState,
                                 event: _ConsultAnswered, now: float) -> _Outcome:
        consult = _consult(state)
        self._taken_over[event.target.uniqueid] = (consult.to_agent, call_id)
        return (CallTransferState(leg=event.target),
                [RecordConsultAnswered(call_id, consult.to_agent, now)])

    def _not_answered_after_handover(self, call_id: str, state: CallTransferState,
                                     event: _ConsultNotTaken, now: float) -> _Outcome:
        agent_id = _consult(state).to_agent
        return _back_to_first(state), [RecordAttemptEnded(call_id, agent_id, event.status, now),
                                       ReleaseAgent(agent_id, call_id)]

    def _taken_over_leg_hung_up(self, call_id: str, state: CallTransferState,
                                event: _TakenOverLegHungUp, now: float) -> _Outcome:
        leg = state.leg
        if leg is not None and leg.uniqueid == event.uniqueid:
            state = replace(state, leg=None)
        return state, [RecordTalkEnded(call_id, event.agent_id, now),
                       ReleaseAgent(event.agent_id, call_id)]


def _consult(state: CallTransferState) -> Consult:
    assert state.consult is not None, "a consult phase without its consult"
    return state.consult


def _back_to_first(state: CallTransferState) -> CallTransferState:
    return replace(state, phase=Phase.IDLE, consult=None)


def _consult_failed(call_id: str, state: CallTransferState, status: str,
                    now: float) -> _Outcome:
    """The second agent did not take the consult: the first one has the caller back."""
    consult = _consult(state)
    return _back_to_first(state), [RecordConsultEnded(call_id, consult.to_agent, status, now),
                                   ReleaseAgent(consult.to_agent, call_id)]


_ALL = tuple(Phase)
_NOT_CONSULTING = (Phase.IDLE, Phase.REDIRECTED)
_NOT_ANSWERED = (Phase.CONSULT_STARTING, Phase.CONSULT_RINGING)


def _table() -> dict[tuple[Phase, type], _Handler]:
    """(phase, event) -> transition: every move the machine makes, in one place."""
    rows: list[tuple[tuple[Phase, ...], type, _Handler]] = [
        (_ALL, _LegAnswered, AgentTransfers._leg_answered),
        (_ALL, _CallerHungUp, AgentTransfers._caller_hung_up),
        (_ALL, _TakenOverLegHungUp, AgentTransfers._taken_over_leg_hung_up),
        # blind
        (_NOT_CONSULTING, CallerRedirected, AgentTransfers._redirected),
        ((Phase.REDIRECTED,), CallerArrived, AgentTransfers._arrived),
        # attended
        (_NOT_CONSULTING, ConsultRequested, AgentTransfers._consult_requested),
        (CONSULT_PHASES, ConsultStarted, AgentTransfers._consult_started),
        (CONSULT_PHASES, ConsultNotStarted, AgentTransfers._consult_not_started),
        ((Phase.CONSULT_STARTING,), ConsultStartDue, AgentTransfers._consult_start_due),
        ((Phase.CONSULT_STARTING,), _ConsultDialling, AgentTransfers._consult_dialling),
        (_NOT_ANSWERED, _ConsultAnswered, AgentTransfers._consult_answered),
        (_NOT_ANSWERED, _ConsultNotTaken, AgentTransfers._consult_not_taken),
        ((Phase.CONSULTING,), _ConsultDeclined, AgentTransfers._consult_declined),
        (CONSULT_PHASES, _HandedOver, AgentTransfers._handed_over),
        ((Phase.HANDED_OVER_RINGING,), _ConsultAnswered,
         AgentTransfers._answered_after_handover),
        ((Phase.HANDED_OVER_RINGING,), _ConsultNotTaken,
         AgentTransfers._not_answered_after_handover),
    ]
    table: dict[tuple[Phase, type], _Handler] = {}
    for phases, event_type, handler in rows:
        for phase in phases:
            assert (phase, event_type) not in table, (phase, event_type)
            table[(phase, event_type)] = handler
    return table


TRANSITIONS: dict[tuple[Phase, type], _Handler] = _table()
