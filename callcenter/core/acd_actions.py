"""What goes in and out of the ACD: states, failures, actions, errors and read-only views."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class AgentState(StrEnum):
    LOGGED_OUT = "logged_out"
    READY = "ready"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


class ConnectMode(StrEnum):
    RING = "ring"  # each call rings the agent's phone
    NAILED = "nailed"  # the agent's phone stays connected; calls are joined without ringing


class CallState(StrEnum):
    WAITING = "waiting"
    RINGING = "ringing"
    TALKING = "talking"


class OfferFailure(StrEnum):
    NO_ANSWER = "no_answer"  # rang out: agent PAUSED("RONA") if the queue says so, else READY
    REJECTED = "rejected"  # agent declined or was busy: READY again, marked tried for the call
    UNREACHABLE = "unreachable"  # phone gone: agent set unreachable, keeps their state
    CUSTOMER_NO_ANSWER = "customer_no_answer"  # a callback's customer did not answer: removed


class AgentStateError(ValueError):
    """An agent's request does not fit their state; the message says what to do."""


class UnknownAgent(AgentStateError):
    pass


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class OfferCall:
    """Connect ``agent_id`` to ``call_id``: ring them for up to ``ring_timeout`` seconds (or
    join a nailed agent at once). For a virtual call, ring the agent, then call the customer."""

    call_id: str
    agent_id: str
    ring_timeout: float
    mode: ConnectMode
    virtual: bool
    queue: str


@dataclass(frozen=True)
class NoAgentAvailable:
    """The call cannot be queued at all; it is not kept."""

    call_id: str
    reason: str


@dataclass(frozen=True)
class QueueTimedOut:
    """The caller waited past the queue's max_wait and there is no overflow target: removed."""

    call_id: str
    queue: str


@dataclass(frozen=True)
class QueueFull:
    """The queue had max_length callers and there is no overflow target: not kept."""

    call_id: str
    queue: str


@dataclass(frozen=True)
class Overflowed:
    """The call now waits in ``to_queue`` (keeping its place by its original waiting time)."""

    call_id: str
    from_queue: str
    to_queue: str


@dataclass(frozen=True)
class Announce:
    """Tell a waiting caller their position (1 = next) and expected wait in seconds."""

    call_id: str
    position: int
    expected_wait: float


@dataclass(frozen=True)
class AgentStateChanged:
    """One real change of an agent's state (or of their pause reason), in order."""

    agent_id: str
    state: AgentState
    reason: str | None
    at: float
    previous: AgentState


@dataclass(frozen=True)
class AgentRequestDeferred:
    """The agent's "pause" or "logout" applies when their current call (and wrap-up) ends."""

    agent_id: str
    request: str


@dataclass(frozen=True)
class CallbackUnanswered:
    """The customer of a virtual-hold callback did not answer; removed (the adapter
    reschedules it)."""

    call_id: str


AcdAction = (
    OfferCall
    | NoAgentAvailable
    | QueueTimedOut
    | QueueFull
    | Overflowed
    | Announce
    | AgentStateChanged
    | AgentRequestDeferred
    | CallbackUnanswered
)


# --------------------------------------------------------------------------- views


@dataclass(frozen=True)
class AgentView:
    agent_id: str
    state: AgentState
    reason: str | None  # the pause reason, or what caused the last change
    since: float  # time of the last state change
    idle_since: float  # what LONGEST_IDLE compares
    phone: str | None  # None when logged out
    mode: ConnectMode | None  # None when logged out
    reachable: bool
    call_id: str | None  # the call ringing them or talking to them
    queues: tuple[str, ...]  # primary membership (tier 0)
    skills: Mapping[str, int]
    calls_answered: int  # since login
    talk_time: float  # seconds since login
    deferred: str | None  # "pause" or "logout" waiting for the call to end


@dataclass(frozen=True)
class QueueView:
    name: str
    waiting: int  # unanswered calls in line (waiting, ringing, virtual)
    longest_wait: float  # seconds since the longest-waiting one's waiting_since
    ready: int  # tier-0 members: READY
    busy: int  # tier-0 members: RINGING or ON_CALL
    wrap_up: int  # tier-0 members: WRAP_UP
    paused: int  # tier-0 members: PAUSED
    logged_in: int  # tier-0 members: not LOGGED_OUT
    aht: float  # average handle time (talk + wrap-up), exponentially weighted, seconds
