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
    CALLBACK_REQUESTED = "callback_requested"  # left the queue to be called back (virtual hold)
    FAILED = "failed"


class HangupBy(StrEnum):
    CALLER = "caller"
    AGENT = "agent"
    SYSTEM = "system"
    UNKNOWN = "unknown"


class Direction(StrEnum):
    """Who called whom: a caller dialled in, or the dialer called a campaign's number."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


class RecordSource(StrEnum):
    """Who wrote a call's record: the service, or Asterisk's own log while the service could
    not see the call (core/missed_calls.py), or both (the service lost sight of it)."""

    SERVICE = "service"
    ASTERISK = "asterisk"
    SERVICE_AND_ASTERISK = "service+asterisk"


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
    """One agent's leg of this call: their phone rang from ``started_at`` (or the caller was
    joined to a nailed-up agent), they answered at ``answered_at`` (None: never), and the leg
    ended at ``ended_at``: the ring's end, or for an answered leg the end of that agent's talk
    (a transfer, or the end of the call). ``talk_seconds`` = ended_at - answered_at."""

    agent_id: str
    started_at: float
    ended_at: float | None = None
    outcome: AttemptOutcome = AttemptOutcome.RINGING
    answered_at: float | None = None
    talk_seconds: float | None = None


class TransferMode(StrEnum):
    BLIND = "blind"
    ATTENDED = "attended"


class TransferOutcome(StrEnum):
    """How a transfer of a talking caller (to an agent or a queue) ended."""

    PENDING = "pending"  # on its way: the caller waits in the target, or the consult rings
    COMPLETED = "completed"  # the target has the caller (blind: an agent there answered)
    REFUSED = "refused"  # not accepted (nobody there could answer...): nothing moved
    DECLINED = "declined"  # attended: the consulted agent was busy, did not answer or hung up
    FAILED = "failed"  # Asterisk could not do it (the consult never rang, a Redirect failed)
    ABANDONED = "abandoned"  # the caller hung up before the target had them
    NO_AGENT = "no_agent"  # blind: the caller's wait in the target ended with nobody


@dataclass
class Transfer:
    """One transfer of the call by an agent (or a supervisor for them): ``to_agent`` or
    ``to_queue`` (attended to a queue: both, the agent being the one consulted)."""

    mode: TransferMode
    from_agent: str
    requested_at: float
    to_agent: str | None = None
    to_queue: str | None = None
    outcome: TransferOutcome = TransferOutcome.PENDING
    ended_at: float | None = None  # when the outcome was known
    reason: str | None = None  # why it was refused, declined or failed


class HoldBy(StrEnum):
    """Whose phone put the call on hold (a SIP re-INVITE with sendonly/inactive)."""

    AGENT = "agent"
    CALLER = "caller"


@dataclass
class Hold:
    """The call was on hold from ``started_at`` to ``ended_at`` (None: still on hold; the
    call's end closes it): an agent's phone held the caller (``agent_id``), or the caller's
    phone held the agent (``held_by`` CALLER, ``agent_id`` None). Times are Asterisk's."""

    held_by: HoldBy
    started_at: float
    ended_at: float | None = None
    agent_id: str | None = None

    @property
    def seconds(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started_at


class FaqResult(StrEnum):
    """How a caller answered "did this solve it?" after hearing one FAQ answer."""

    SOLVED = "solved"
    NOT_SOLVED = "not_solved"  # they asked for a person
    NO_ANSWER = "no_answer"  # no valid key after the retries
    HUNG_UP = "hung_up"  # left before answering (still unknown when the call ends)


@dataclass
class FaqOutcome:
    """One FAQ answer a caller heard in the IVR, and whether it solved their problem."""

    flow: str
    topic: str  # the FAQ's id, as reported (the node's ``topic``)
    heard_at: float
    result: FaqResult = FaqResult.HUNG_UP
    answered_at: float | None = None


@dataclass
class SurveyAnswer:
    """One answer to one question of a survey flow (after the agent hung up, or in the IVR)."""

    survey: str  # the flow that asked
    question: str  # the question's id
    answer: str  # the value the flow maps the key to, e.g. "4" or "yes"
    answered_at: float


class CallbackStatus(StrEnum):
    PENDING = "pending"  # waiting for an agent to call back
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


@dataclass
class CallbackRequest:
    """A caller asked to be called back instead of waiting (left from the IVR)."""

    call_id: str  # the call that asked
    queue: str  # whose agents call back
    number: str  # confirmed by the caller: digits, as they keyed or confirmed them
    requested_at: float
    flow: str
    protocol: str | None = None
    caller_name: str | None = None  # caller ID name, if any
    name_recording: str | None = None  # Asterisk's path of the recorded name (no extension)
    status: CallbackStatus = CallbackStatus.PENDING
    id: int | None = None  # given by the store
    # When the customer joined the line they keep (virtual hold: when their call first
    # queued); None: ``requested_at``. A callback waits from then, and its record's wait too.
    queued_at: float | None = None


@dataclass
class CallRecord:
    """Everything we keep about one inbound call. Times are POSIX seconds (UTC)."""

    call_id: str  # the caller channel's Asterisk Uniqueid
    started_at: float
    protocol: str | None = None  # the number the caller is told (core/protocol.py)
    linked_id: str | None = None
    channel: str | None = None
    caller_number: str | None = None
    caller_name: str | None = None  # cleaned (core/caller_id.py), as the caller meant it
    # The caller ID exactly as the caller sent it, URI-encoded: '<name> <<number>>'.
    caller_id_raw: str | None = None
    dialed_number: str | None = None
    answered_at: float | None = None  # the IVR answered the caller
    ended_at: float | None = None
    ivr_path: list[IvrStep] = field(default_factory=list)
    queue: str | None = None  # the queue the caller first waited in (a transfer keeps it)
    queued_at: float | None = None
    # The queue the caller entered first when max_wait or a full line moved them on
    # (``queue`` is then the one they waited in last): where the reports count the call.
    overflowed_from: str | None = None
    wait_seconds: float | None = None
    agent_id: str | None = None
    agent_answered_at: float | None = None
    talk_seconds: float | None = None
    hangup_by: HangupBy | None = None
    hangup_cause: str | None = None
    disposition: Disposition | None = None
    attempts: list[AgentAttempt] = field(default_factory=list)
    faq_outcomes: list[FaqOutcome] = field(default_factory=list)
    survey_answers: list[SurveyAnswer] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)  # in time order
    note: str | None = None  # why a record was closed unusually (e.g. reconciled)
    source: RecordSource = RecordSource.SERVICE
    # Callbacks (docs/records.md, "Callbacks"): the call that asked to be called back names
    # its request; each call of that callback names the request and the call that asked.
    callback_request_id: int | None = None
    callback_of: str | None = None  # on a callback's record: the call_id that asked for it
    # Outbound campaigns: the caller fields hold the customer dialled (docs/records.md).
    direction: Direction = Direction.INBOUND
    campaign: str | None = None
    campaign_attempt_id: int | None = None  # the dialer's attempt (campaign_attempts.id)

    @property
    def is_open(self) -> bool:
        return self.ended_at is None

    @property
    def entered_queue(self) -> str | None:
        """The queue the caller entered (before any overflow): where the queue figures count
        the call, once, as the simulator does (docs/reports.md)."""
        return self.overflowed_from or self.queue
