"""The call detail record as the core knows it: plain data, no database types."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Disposition(StrEnum):
    ANSWERED = "answered"
    ABANDONED_IN_IVR = "abandoned_in_ivr"
    ABANDONED_IN_QUEUE = "abandoned_in_queue"
    NO_AGENT = "no_agent"
    COMPLETED_IN_IVR = "completed_in_ivr"  # the flow itself ended the call (self-service)
    FAILED = "failed"


class HangupBy(StrEnum):
    CALLER = "caller"
    AGENT = "agent"
    SYSTEM = "system"
    UNKNOWN = "unknown"


class AttemptOutcome(StrEnum):
    RINGING = "ringing"  # still open
    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    UNAVAILABLE = "unavailable"
    CALLER_HUNG_UP = "caller_hung_up"
    FAILED = "failed"


@dataclass
class IvrStep:
    """One node a caller passed through, with what they pressed there."""

    node: str
    at: float
    input: str | None = None  # digits pressed, "timeout", "invalid:<d>" or None


@dataclass
class AgentAttempt:
    """One ring of one agent's phone for this call."""

    agent_id: str
    started_at: float
    ended_at: float | None = None
    outcome: AttemptOutcome = AttemptOutcome.RINGING


@dataclass
class CallRecord:
    """Everything we keep about one inbound call. Times are POSIX seconds (UTC)."""

    call_id: str  # the caller channel's Asterisk Uniqueid
    started_at: float
    protocol: str | None = None  # the number the caller is told (core/protocol.py)
    linked_id: str | None = None
    channel: str | None = None
    caller_number: str | None = None
    caller_name: str | None = None
    dialed_number: str | None = None
    answered_at: float | None = None  # the IVR answered the caller
    ended_at: float | None = None
    ivr_path: list[IvrStep] = field(default_factory=list)
    queue: str | None = None
    queued_at: float | None = None
    wait_seconds: float | None = None
    agent_id: str | None = None
    agent_answered_at: float | None = None
    talk_seconds: float | None = None
    hangup_by: HangupBy | None = None
    hangup_cause: str | None = None
    disposition: Disposition | None = None
    attempts: list[AgentAttempt] = field(default_factory=list)
    note: str | None = None  # why a record was closed unusually (e.g. reconciled)

    @property
    def is_open(self) -> bool:
        return self.ended_at is None
