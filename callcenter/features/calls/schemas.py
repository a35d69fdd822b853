"""What the calls API takes and answers: the query, the call record as JSON (``Call.of``,
the one place a record becomes JSON, also for the event stream), dead letters."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field
from pydantic.json_schema import WithJsonSchema

from callcenter.core import records as core
from callcenter.core.records import (
    AttemptOutcome,
    CallRecord,
    Direction,
    Disposition,
    FaqResult,
    HangupBy,
    HoldBy,
    RecordSource,
    TransferMode,
    TransferOutcome,
)
from callcenter.core.timeline import Segment, SegmentKind
from callcenter.store.values import MAX_ROW_ID
from callcenter.web.contract import (
    Answer,
    PathArgs,
    Query,
    Time,
    TimeRange,
    name_param,
    pattern_text,
    whole_param,
)
from callcenter.web.params import MAX_LIMIT, PROTOCOL, QUEUE_NAME, iso

CALL_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # an Asterisk uniqueid, as the transfers take it
CALLBACK_REQUEST = re.compile(r"[1-9][0-9]{0,17}")  # a callback request's id
PAGE_SIZE = 50
MAX_OFFSET = 10**9


class CallsQuery(TimeRange):
    queue: Annotated[name_param(QUEUE_NAME, "a queue name"),
                     Field(description="only this queue")] = None
    protocol: Annotated[name_param(PROTOCOL, "a protocol number (digits)"),
                        Field(description="only this protocol number")] = None
    limit: Annotated[whole_param(1, MAX_LIMIT), Field(description="page size")] = PAGE_SIZE
    offset: Annotated[whole_param(0, MAX_OFFSET), Field(description="rows to skip")] = 0
    callback_request: Annotated[
        name_param(CALLBACK_REQUEST, "a callback request id (a whole number from 1)",
                   json_schema={"type": "integer", "minimum": 1}),
        Field(description="only the call that asked for this callback and the callback's "
                          "calls")] = None


class DeadLetterQuery(Query):
    limit: Annotated[whole_param(1, MAX_LIMIT), Field(description="page size")] = PAGE_SIZE


# What a call record's answer shows: the core's values as they are (an int stays an int,
# an enum its value), times as ISO text (``iso``), seconds rounded to the millisecond.
# Described, not checked: a record the store holds is shown even if a clock stepped back.
MeasuredSeconds = Annotated[int | float, WithJsonSchema({"type": "number", "minimum": 0})]
RowId = Annotated[int, WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_ROW_ID})]


def named(values: type[StrEnum], **schema: Any) -> Any:
    """One of an enum's values (the answer writes the value)."""
    return Annotated[str, WithJsonSchema({"type": "string", "enum": [v.value for v in values],
                                          **schema})]


class IvrStep(Answer):
    node: str
    at: Time
    input: str | None = Field(description="digits pressed, 'timeout', 'invalid:<digits>', "
                                          "or null")

    @classmethod
    def of(cls, step: core.IvrStep) -> IvrStep:
        return cls(node=step.node, at=iso(step.at), input=step.input)  # type: ignore[arg-type]


class AgentAttempt(Answer):
    """One agent's leg of the call: their phone rang from `started_at` (or the caller joined a
    nailed-up agent), they answered at `answered_at` (null: never), and the leg ended at
    `ended_at`: the ring's end, or for an answered leg the end of that agent's talk (a
    transfer, or the call's end). `talk_seconds`: `ended_at` - `answered_at`. Legs stored
    before transfers were recorded have null `answered_at` and `talk_seconds`."""

    agent_id: str
    started_at: Time
    ended_at: Time | None
    outcome: named(AttemptOutcome)
    answered_at: Time | None
    talk_seconds: MeasuredSeconds | None

    @classmethod
    def of(cls, attempt: core.AgentAttempt) -> AgentAttempt:
        return cls(agent_id=attempt.agent_id, started_at=iso(attempt.started_at),
                   ended_at=iso(attempt.ended_at), outcome=attempt.outcome,
                   answered_at=iso(attempt.answered_at),
                   talk_seconds=rounded(attempt.talk_seconds))


class Transfer(Answer):
    """`completed`: the target has the caller (blind: an agent there answered; attended: the
    first agent hung up after the consult). `refused`: nothing moved (the 409's reason).
    `declined`: the consulted agent was busy, did not answer or hung up. `failed`: Asterisk
    could not do it. `abandoned`: the caller hung up first. `no_agent`: the caller's wait in
    the target ended with nobody. `pending`: under way."""

    mode: named(TransferMode)
    from_agent: str = Field(description="the agent who had the caller")
    requested_at: Time
    to_agent: str | None = Field(description="the target agent; attended to a queue: the "
                                             "agent consulted")
    to_queue: str | None = Field(description="the target queue")
    outcome: named(TransferOutcome)
    ended_at: Time | None
    reason: str | None = Field(description="why it was refused, declined or failed")

    @classmethod
    def of(cls, transfer: core.Transfer) -> Transfer:
        return cls(mode=transfer.mode, from_agent=transfer.from_agent,
                   requested_at=iso(transfer.requested_at), to_agent=transfer.to_agent,
                   to_queue=transfer.to_queue, outcome=transfer.outcome,
                   ended_at=iso(transfer.ended_at), reason=transfer.reason)


class Hold(Answer):
    """The call was on hold (a phone's SIP re-INVITE: sendonly or inactive): put there by an
    agent's phone (`held_by` agent, `agent_id`) or the caller's (`agent_id` null). `ended_at`
    null: still on hold (the call's end closes it)."""

    held_by: named(HoldBy)
    agent_id: str | None
    started_at: Time
    ended_at: Time | None

    @classmethod
    def of(cls, hold: core.Hold) -> Hold:
        return cls(held_by=hold.held_by, agent_id=hold.agent_id,
                   started_at=iso(hold.started_at), ended_at=iso(hold.ended_at))


class FaqOutcome(Answer):
    flow: str
    topic: str
    heard_at: Time
    result: named(FaqResult)
    answered_at: Time | None

    @classmethod
    def of(cls, outcome: core.FaqOutcome) -> FaqOutcome:
        return cls(flow=outcome.flow, topic=outcome.topic, heard_at=iso(outcome.heard_at),
                   result=outcome.result, answered_at=iso(outcome.answered_at))


class SurveyAnswer(Answer):
    survey: str
    question: str
    answer: str
    answered_at: Time

    @classmethod
    def of(cls, answer: core.SurveyAnswer) -> SurveyAnswer:
        return cls(survey=answer.survey, question=answer.question, answer=answer.answer,
                   answered_at=iso(answer.answered_at))


class Call(Answer):
    """One call's record. Its fields in the order the record keeps them, then `open`."""

    call_id: str = Field(description="the caller channel's Asterisk Uniqueid")
    started_at: Time
    protocol: str | None = Field(description="the number the caller was told")
    linked_id: str | None
    channel: str | None
    caller_number: str | None
    caller_name: str | None
    caller_id_raw: str | None = Field(description="the caller ID as sent, URI-encoded: "
                                                  "<name> <<number>>")
    dialed_number: str | None
    answered_at: Time | None
    ended_at: Time | None
    ivr_path: list[IvrStep]
    queue: str | None = Field(description="the queue the caller first waited in (after an "
                                          "overflow, the queue overflowed to; a transfer does "
                                          "not change it)")
    queued_at: Time | None
    overflowed_from: str | None = Field(description=(
        "the queue the caller entered first, when its max_wait or a full line moved them on "
        "to queue (null: no overflow); the queue reports count the call there"))
    wait_seconds: MeasuredSeconds | None
    agent_id: str | None = Field(description="the first agent who answered")
    agent_answered_at: Time | None
    talk_seconds: MeasuredSeconds | None = Field(
        description="the first agent's talk; each leg's is in attempts")
    hangup_by: named(HangupBy) | None
    hangup_cause: str | None
    disposition: named(Disposition) | None
    attempts: list[AgentAttempt]
    faq_outcomes: list[FaqOutcome]
    survey_answers: list[SurveyAnswer]
    transfers: list[Transfer]
    holds: list[Hold]
    note: str | None = Field(description="why the record was closed unusually")
    source: named(RecordSource) = Field(description=(
        "who recorded the call: the service; Asterisk's own log while the service was down "
        "(imported when it came back); or the service, completed from that log"))
    callback_request_id: RowId | None = Field(description=(
        "the callback this call asked for, or (with callback_of) served"))
    callback_of: str | None = Field(description=(
        "a callback's call: the call_id that asked for it. Its queued_at and wait_seconds "
        "are the customer's whole wait, from their first queueing"))
    direction: named(Direction) = Field(description=(
        "inbound: a caller dialled in; outbound: the dialer called a campaign's number (the "
        "caller fields hold the customer dialled)"))
    campaign: str | None = Field(description="an outbound call's campaign")
    campaign_attempt_id: RowId | None = Field(description=(
        "an outbound call's attempt in its campaign (outcome, disposition, notes)"))
    open: bool = Field(description="the call has not ended yet")

    @classmethod
    def of(cls, record: CallRecord) -> Call:
        return cls(
            call_id=record.call_id, started_at=iso(record.started_at),  # type: ignore[arg-type]
            protocol=record.protocol, linked_id=record.linked_id, channel=record.channel,
            caller_number=record.caller_number, caller_name=record.caller_name,
            caller_id_raw=record.caller_id_raw, dialed_number=record.dialed_number,
            answered_at=iso(record.answered_at), ended_at=iso(record.ended_at),
            ivr_path=[IvrStep.of(step) for step in record.ivr_path],
            queue=record.queue, queued_at=iso(record.queued_at),
            overflowed_from=record.overflowed_from,
            wait_seconds=rounded(record.wait_seconds), agent_id=record.agent_id,
            agent_answered_at=iso(record.agent_answered_at),
            talk_seconds=rounded(record.talk_seconds), hangup_by=record.hangup_by,
            hangup_cause=record.hangup_cause, disposition=record.disposition,
            attempts=[AgentAttempt.of(attempt) for attempt in record.attempts],
            faq_outcomes=[FaqOutcome.of(outcome) for outcome in record.faq_outcomes],
            survey_answers=[SurveyAnswer.of(answer) for answer in record.survey_answers],
            transfers=[Transfer.of(transfer) for transfer in record.transfers],
            holds=[Hold.of(hold) for hold in record.holds],
            note=record.note, source=record.source,
            callback_request_id=record.callback_request_id, callback_of=record.callback_of,
            direction=record.direction, campaign=record.campaign,
            campaign_attempt_id=record.campaign_attempt_id, open=record.is_open)


def record_json(record: CallRecord) -> dict[str, Any]:
    """A call record as the API answers it."""
    return Call.of(record).model_dump(mode="json")


def rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


class CallPath(PathArgs):
    call_id: Annotated[pattern_text(CALL_ID, "a call id (an Asterisk uniqueid such as "
                                    "1764745200.42)"),
                       Field(description="the call's id (its caller channel's Asterisk "
                                         "Uniqueid)")]


class TimelineSegment(Answer):
    kind: named(SegmentKind)
    start: Time
    end: Time
    seconds: MeasuredSeconds = Field(description="end - start, to the millisecond")
    agent: str | None = Field(description=(
        "ringing: whose phone; talk: who talked; hold: whose phone held (null: the "
        "caller's); consult: the agent consulting; transfer: the target agent, if one; "
        "wrap_up: whose"))
    ongoing: bool = Field(description="a wrap-up still going on: `end` is now")

    @classmethod
    def of(cls, segment: Segment) -> TimelineSegment:
        return cls(kind=segment.kind, start=iso(segment.start),  # type: ignore[arg-type]
                   end=iso(segment.end), seconds=rounded(segment.seconds),
                   agent=segment.agent_id, ongoing=segment.ongoing)


class CallTimeline(Answer):
    """A closed call's timeline (docs/metering.md). `segments` cover the call from
    `started_at` to `ended_at` without gaps or overlap (their seconds add up to `seconds`);
    `wrap_ups` are the agents' after-call work, after their legs, outside that sum."""

    call_id: str
    started_at: Time
    ended_at: Time
    seconds: MeasuredSeconds
    segments: list[TimelineSegment]
    wrap_ups: list[TimelineSegment]


class CallPage(Answer):
    """Newest first."""

    total: int = Field(ge=0)
    limit: int = Field(ge=1, le=MAX_LIMIT)
    offset: int = Field(ge=0)
    calls: list[Call]


class DeadLetter(Answer):
    """A version of a call record the database refused for good."""

    id: int = Field(ge=1)
    call_id: str = Field(description="control characters shown escaped")
    reason: str = Field(description="why the database refused it")
    at: Time
    record: str = Field(description="the refused version of the record, as a JSON document")


class DeadLetterPage(Answer):
    """Newest first."""

    limit: int = Field(ge=1, le=MAX_LIMIT)
    dead_letters: list[DeadLetter]
