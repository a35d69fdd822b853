"""Calls the service missed, rebuilt from Asterisk's own channel event log (CEL).

While the service is down (killed, restarting, cut from AMI), the fallback dialplan still
answers callers, queues them and connects them to agents. Asterisk logs every channel's
events meanwhile; on start and after every AMI reconnect the service reads what was logged
since the last import and turns it into call records here.

Two rules keep one call from being recorded twice, by the service and by the import:
- a call is Asterisk's to describe only if the service does not hold it: calls the ledger
  tracks are left to the ledger (it sees them live), except those no handler owns that
  Asterisk shows over; those are *completed* from the log (``complete``), never duplicated;
- the import is a pure function of the log from a position on (``plan_import``): importing
  the same rows twice gives the same records, and the adapter inserts a new record only if
  no record of that call exists (the service's version wins any race).

Pure: events in, records and a new position out; no I/O, no clock.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from callcenter.core.caller_id import clean_name, clean_number, raw_caller_id
from callcenter.core.calls import agent_from_channel
from callcenter.core.protocol import protocol_number
from callcenter.core.records import (
    AgentAttempt,
    AttemptOutcome,
    CallRecord,
    Disposition,
    HangupBy,
    RecordSource,
)

# The CEL event types the import reads (cel.conf's ``events`` must include them).
CHAN_START = "CHAN_START"
ANSWER = "ANSWER"
APP_START = "APP_START"
HANGUP = "HANGUP"
CHAN_END = "CHAN_END"
BRIDGE_ENTER = "BRIDGE_ENTER"
LINKEDID_END = "LINKEDID_END"
BUSY_CAUSE = 17  # Q.850 "user busy"
# The service's ring of an agent and Asterisk's channel for it start within milliseconds.
SAME_RING_SECONDS = 0.5

IMPORTED_NOTE = ("recorded by Asterisk while the service could not see it "
                 "(imported from its channel event log)")
COMPLETED_NOTE = ("completed from Asterisk's channel event log: the service stopped "
                  "seeing this call before it ended")


@dataclass(frozen=True)
class ChannelEvent:
    """One row of Asterisk's channel event log, parsed and typed by the reader.

    ``row`` is the log's own ascending row number: the import's position.
    """

    row: int
    kind: str  # CHAN_START, ANSWER, APP_START, HANGUP, ...
    at: float  # POSIX seconds, Asterisk's clock
    uniqueid: str
    linkedid: str
    channel: str
    context: str = ""
    exten: str = ""
    caller_number: str = ""
    caller_name: str = ""
    app: str = ""
    app_data: str = ""
    hangup_cause: int | None = None  # HANGUP only
    hangup_source: str = ""  # HANGUP only: the channel whose side hung up


@dataclass
class _Leg:
    """An agent's channel of one call: one ring of their phone."""

    agent_id: str
    started_at: float
    answered_at: float | None = None
    ended_at: float | None = None
    cause: int | None = None


@dataclass
class _Call:
    """What the log says of one call (one linkedid) so far."""

    start: ChannelEvent
    answered_at: float | None = None
    queues: list[tuple[float, str]] = field(default_factory=list)  # (when, queue) per Queue()
    legs: dict[str, _Leg] = field(default_factory=dict)  # leg uniqueid → leg
    hangup: ChannelEvent | None = None  # the caller's channel's HANGUP
    ended_at: float | None = None  # the caller's channel is gone (HANGUP or CHAN_END)

    @property
    def finished(self) -> bool:
        return self.ended_at is not None


def _caller_calls(events: Iterable[ChannelEvent], inbound_contexts: frozenset[str],
                  ) -> dict[str, _Call]:
    """Calls by call id, in the order they started; only calls whose caller channel's start is
    among the events (one that started before the position was finished back then)."""
    calls: dict[str, _Call] = {}
    for event in sorted(events, key=lambda e: e.row):
        call = calls.get(event.linkedid)
        if call is None:
            if (event.kind == CHAN_START and event.uniqueid == event.linkedid
                    and event.context in inbound_contexts):
                calls[event.linkedid] = _Call(start=event)
            continue
        if event.uniqueid == call.start.uniqueid:
            _caller_event(call, event)
        else:
            _leg_event(call, event)
    return calls


def _caller_event(call: _Call, event: ChannelEvent) -> None:
    match event.kind:
        case "ANSWER" if call.answered_at is None:
            call.answered_at = event.at
        case "APP_START" if event.app.lower() == "queue":
            queue = event.app_data.split(",", 1)[0].strip()
            if queue:
                call.queues.append((event.at, queue))
        case "HANGUP":
            call.hangup = event
            call.ended_at = event.at
        case "CHAN_END" if call.ended_at is None:
            call.ended_at = event.at


def _leg_event(call: _Call, event: ChannelEvent) -> None:
    leg = call.legs.get(event.uniqueid)
    if leg is None:
        agent = agent_from_channel(event.channel)
        if event.kind != CHAN_START or agent is None:
            return  # not an agent's phone (a local channel, a spy, the trunk)
        call.legs[event.uniqueid] = _Leg(agent_id=agent, started_at=event.at)
        return
    match event.kind:
        case "ANSWER" if leg.answered_at is None:
            leg.answered_at = event.at
        case "HANGUP":
            leg.ended_at = event.at
            leg.cause = event.hangup_cause
        case "CHAN_END" if leg.ended_at is None:
            leg.ended_at = event.at


def _talking_leg(call: _Call) -> tuple[str, _Leg] | None:
    """The first agent leg that answered: the agent the caller talked to."""
    answered = [(uid, leg) for uid, leg in call.legs.items() if leg.answered_at is not None]
    return min(answered, key=lambda item: item[1].answered_at or 0.0, default=None)


def _attempt(leg: _Leg, call: _Call) -> AgentAttempt:
    ended = leg.ended_at if leg.ended_at is not None else call.ended_at
    if leg.answered_at is not None:
        outcome = AttemptOutcome.ANSWERED
    elif ended is None:
        outcome = AttemptOutcome.RINGING
    elif call.ended_at is not None and ended >= call.ended_at:
        outcome = AttemptOutcome.CALLER_HUNG_UP
    elif leg.cause == BUSY_CAUSE:
        outcome = AttemptOutcome.BUSY
    else:
        outcome = AttemptOutcome.NO_ANSWER
    talk = (max(0.0, ended - leg.answered_at)
            if leg.answered_at is not None and ended is not None else None)
    return AgentAttempt(agent_id=leg.agent_id, started_at=leg.started_at, ended_at=ended,
                        outcome=outcome, answered_at=leg.answered_at, talk_seconds=talk)


def _hangup_by(call: _Call) -> HangupBy:
    source = call.hangup.hangup_source if call.hangup is not None else ""
    if source and source == call.start.channel:
        return HangupBy.CALLER
    if source and agent_from_channel(source) is not None:
        return HangupBy.AGENT
    return HangupBy.UNKNOWN


def _fill(record: CallRecord, call: _Call) -> None:
    """Add what the log says to ``record`` without overwriting what it already knows."""
    record.answered_at = record.answered_at if record.answered_at is not None \
        else call.answered_at
    if call.queues:
        record.queue = call.queues[-1][1]  # the last queue, as the ledger does on overflow
        if record.queued_at is None:
            record.queued_at = call.queues[0][0]
    attempts = list(record.attempts)
    for leg in call.legs.values():
        # A ring the record knows (the service rang, or an earlier import saw it ringing) is
        # the same leg: same agent, started within SAME_RING_SECONDS.
        known = next((i for i, a in enumerate(attempts) if a.agent_id == leg.agent_id
                      and abs(a.started_at - leg.started_at) < SAME_RING_SECONDS), None)
        if known is None:
            attempts.append(_attempt(leg, call))
        elif attempts[known].ended_at is None:
            attempts[known] = _attempt(leg, call)
    for attempt in attempts:  # rings the log does not show (before its position) end here
        if attempt.ended_at is None and call.ended_at is not None:
            attempt.ended_at = call.ended_at
            if attempt.outcome is AttemptOutcome.RINGING:
                attempt.outcome = AttemptOutcome.CALLER_HUNG_UP
    record.attempts = sorted(attempts, key=lambda a: a.started_at)
    talking = _talking_leg(call)
    if record.agent_answered_at is None and talking is not None:
        record.agent_id = talking[1].agent_id
        record.agent_answered_at = talking[1].answered_at
    if call.finished:
        _close(record, call, talking[1] if talking else None)


def _close(record: CallRecord, call: _Call, talking: _Leg | None) -> None:
    ended = max(call.ended_at or record.started_at, record.started_at)
    record.ended_at = ended
    if call.hangup is not None and call.hangup.hangup_cause is not None:
        record.hangup_cause = str(call.hangup.hangup_cause)
    record.hangup_by = _hangup_by(call)
    if record.agent_answered_at is not None:
        talk_end = min(talking.ended_at or ended, ended) if talking else ended
        record.talk_seconds = max(0.0, talk_end - record.agent_answered_at)
        if record.queued_at is not None:
            record.wait_seconds = max(0.0, record.agent_answered_at - record.queued_at)
        record.disposition = Disposition.ANSWERED
    elif record.queue is not None:
        if record.queued_at is not None:
            record.wait_seconds = max(0.0, ended - record.queued_at)
        # Queue() gave up on the caller (no agent, too long a wait) or the caller left.
        record.disposition = (Disposition.ABANDONED_IN_QUEUE
                              if record.hangup_by is HangupBy.CALLER else Disposition.NO_AGENT)
    else:
        record.disposition = Disposition.ABANDONED_IN_IVR


def record_from_log(call: _Call) -> CallRecord:
    """A new record of a call only Asterisk saw (open if it is still going on)."""
    start = call.start
    record = CallRecord(
        call_id=start.uniqueid, started_at=start.at, linked_id=start.linkedid,
        protocol=protocol_number(start.at, start.uniqueid), channel=start.channel or None,
        # Logged at the channel's start, before the dialplan cleaned it: the same cleaning
        # the service applies, and the bytes as sent kept escaped (core/caller_id.py).
        caller_number=clean_number(start.caller_number), caller_name=clean_name(start.caller_name),
        caller_id_raw=raw_caller_id(start.caller_name, start.caller_number),
        dialed_number=clean_number(start.exten), source=RecordSource.ASTERISK,
        note=IMPORTED_NOTE)
    _fill(record, call)
    return record


def complete(record: CallRecord, call: _Call) -> CallRecord:
    """An open record of a call, completed from the log (a new object). One the service began
    says so; one an earlier import began stays Asterisk's."""
    completed = copy.deepcopy(record)
    _fill(completed, call)
    if completed.source is not RecordSource.ASTERISK:
        completed.source = RecordSource.SERVICE_AND_ASTERISK
        completed.note = COMPLETED_NOTE
    return completed


@dataclass(frozen=True)
class ImportPlan:
    """What one import does: insert ``new`` records unless the call is stored already (open
    ones are live calls the ledger adopts), store ``completed`` records (taken back from the
    ledger), and remember ``next_row``: the log is read again from there next time."""

    new: tuple[CallRecord, ...] = ()
    completed: tuple[CallRecord, ...] = ()
    next_row: int = 0

    @property
    def adopt(self) -> tuple[CallRecord, ...]:
        """New records of calls still going on: the ledger follows them from now."""
        return tuple(r for r in self.new if r.is_open)


def plan_import(events: Iterable[ChannelEvent], *, after_row: int,
                tracked: Mapping[str, CallRecord], handled: frozenset[str] = frozenset(),
                stored: frozenset[str] = frozenset(),
                inbound_contexts: Iterable[str] = ("callers",),
                last_row: int | None = None) -> ImportPlan:
    """Turn the log's rows after ``after_row`` into records of the calls the service missed.

    ``tracked``: the ledger's open calls (by call id); ``handled``: those a call handler owns
    (they are live: left alone). ``stored``: ids of calls the database holds, open or
    closed: never imported again (an open one the ledger no longer tracks was just closed by
    it, and its write is on the way).
    The next position stops before the first row of any call still going on, so its rows are
    read again next time and the call is judged again then; else it is ``last_row`` (the
    log's last row when it was read, events of other kinds included) or the last event's.
    """
    rows = [e for e in events if e.row > after_row]
    calls = _caller_calls(rows, frozenset(inbound_contexts))
    new: list[CallRecord] = []
    completed: list[CallRecord] = []
    for call_id, call in calls.items():
        if call_id in handled:
            continue
        if call_id in tracked:
            if call.finished:  # the ledger would close it with a guessed end time
                completed.append(complete(tracked[call_id], call))
            continue
        if call_id in stored:
            continue
        new.append(record_from_log(call))
    unfinished = [c.start.row for c in calls.values() if not c.finished]
    last = max((e.row for e in rows), default=after_row)
    if last_row is not None:
        last = max(last, last_row)
    next_row = min(unfinished) - 1 if unfinished else last
    return ImportPlan(new=tuple(new), completed=tuple(completed),
                      next_row=max(next_row, after_row))
