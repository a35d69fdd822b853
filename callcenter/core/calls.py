"""The one place that turns what Asterisk tells us into call records.

Two sources report on a call and either may be missing for a while:
- AMI events (typed in ``callcenter.asterisk.events``) carry Asterisk's own timestamps: when
  the caller's channel appeared, when an agent answered, when each leg hung up;
- the FastAGI call handler reports what only it knows: the IVR path, the queue chosen, each
  agent it rang and how that ended, and who ended the call.

The ledger merges both into a ``CallRecord`` per caller channel and says when a record must
be stored (``save`` in each result). It does no I/O; time comes in as values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from callcenter.core.caller_id import clean_name, clean_number, raw_caller_id
from callcenter.core.protocol import protocol_number
from callcenter.core.records import (
    AgentAttempt,
    AttemptOutcome,
    CallRecord,
    Disposition,
    FaqOutcome,
    HangupBy,
    HoldBy,
    IvrStep,
    SurveyAnswer,
    Transfer,
    TransferMode,
    TransferOutcome,
)
from callcenter.core.records import Hold as HoldInterval

if TYPE_CHECKING:  # the typed records the AMI adapter builds; only data crosses over
    from callcenter.asterisk.events import (
        CoreShowChannel,
        DialBegin,
        DialEnd,
        Hangup,
        Hold,
        NewCallerid,
        Newchannel,
        Newstate,
        SoftHangupRequest,
        Unhold,
    )

# Asterisk's DIALSTATUS values, as attempt outcomes.
DIAL_STATUS_OUTCOMES = {
    "ANSWER": AttemptOutcome.ANSWERED,
    "NOANSWER": AttemptOutcome.NO_ANSWER,
    "BUSY": AttemptOutcome.BUSY,
    "CHANUNAVAIL": AttemptOutcome.UNAVAILABLE,
    "CONGESTION": AttemptOutcome.UNAVAILABLE,
    "CANCEL": AttemptOutcome.CALLER_HUNG_UP,
}


# A record keeps this many transfers; requests refused beyond it are only logged by the service
# (each is a client's request: they must not grow a record without bound).
MAX_TRANSFERS = 32
# A record keeps this many holds; a phone flapping hold/unhold beyond it is not recorded (each
# is a SIP re-INVITE anyone's phone may send: they must not grow a record without bound).
MAX_HOLDS = 64
# A consult the second agent did not take: DIALSTATUS (or the service's own word) -> outcome.
CONSULT_DECLINED = frozenset({"BUSY", "NOANSWER", "DECLINED"})


# PJSIP endpoints that are never agents: unidentified callers, the transport, the outbound
# trunk (asterisk/confgen.py RESERVED_NAMES; a test keeps the two in step).
NOT_AGENTS = frozenset({"anonymous", "callcenter-udp", "callcenter-trunk"})


def agent_from_channel(channel: str) -> str | None:
    """``PJSIP/agent1-0000002a`` → ``agent1``; anything else (a caller, the trunk) → None."""
    if not channel.startswith("PJSIP/"):
        return None
    name, sep, _ = channel[len("PJSIP/") :].rpartition("-")
    return name if sep and name and name not in NOT_AGENTS else None


@dataclass
class _Tracked:
    record: CallRecord
    agi_active: bool = False
    caller_hung_up_at: float | None = None
    talk_ended_at: float | None = None
    no_agent: bool = False
    failure: str | None = None
    completed_in_ivr: bool = False
    callback_requested: bool = False
    agent_legs: dict[str, str] = field(default_factory=dict)  # leg uniqueid → agent id
    shutdown: bool = False  # Asterisk hung the caller up as it stopped
    handler_ended_at: float | None = None  # the handler finished; waiting for AMI's Hangup
    moved: bool = False  # a blind transfer moved the caller: ``queue`` stays the first one


@dataclass(frozen=True)
class LedgerResult:
    """What the adapter must do after feeding the ledger: store these records.

    ``closed`` records are final and have left the ledger.
    """

    save: tuple[CallRecord, ...] = ()
    closed: tuple[CallRecord, ...] = ()


class CallLedger:
    def __init__(self, inbound_contexts: Iterable[str] = ("callers",)) -> None:
        self._inbound_contexts = frozenset(inbound_contexts)
        self._calls: dict[str, _Tracked] = {}
        self._leg_owner: dict[str, str] = {}  # any leg's uniqueid → call_id

    # ------------------------------------------------------------------ queries

    def get(self, call_id: str) -> CallRecord | None:
        tracked = self._calls.get(call_id)
        return tracked.record if tracked else None

    def open_calls(self) -> list[CallRecord]:
        return [t.record for t in self._calls.values()]

    def __len__(self) -> int:
        return len(self._calls)

    # ------------------------------------------------------------------ AMI side

    def on_event(self, event: object, now: float) -> LedgerResult:
        """Feed one typed AMI event. Unknown event types are ignored quickly."""
        name = getattr(event, "name", "")
        handler = self._HANDLERS.get(name)
        if handler is None:
            return _NOTHING
        at = getattr(event, "timestamp", None) or now
        return handler(self, event, at)

    def _on_newchannel(self, ev: Newchannel | NewCallerid, at: float) -> LedgerResult:
        uniqueid, linkedid = ev.uniqueid, ev.linkedid
        owner = self._leg_owner.get(linkedid) if linkedid != uniqueid else None
        if owner is not None:
            self._leg_owner[uniqueid] = owner
            return _NOTHING
        if uniqueid != linkedid or ev.context not in self._inbound_contexts:
            return _NOTHING
        tracked, created = self._track(uniqueid, at)
        record = tracked.record
        record.started_at = min(record.started_at, at)
        record.linked_id = linkedid
        record.channel = record.channel or ev.channel
        # AMI reports the caller ID as the caller sent it, before the dialplan cleaned it.
        record.caller_number = record.caller_number or clean_number(ev.caller_number)
        record.caller_name = record.caller_name or clean_name(ev.caller_name)
        if ev.name == "Newchannel":  # a NewCallerid's ID is the dialplan's, not the caller's
            record.caller_id_raw = record.caller_id_raw or raw_caller_id(ev.caller_name,
                                                                         ev.caller_number)
        record.dialed_number = record.dialed_number or _blank(ev.exten)
        return LedgerResult(save=(record,)) if created else _NOTHING

    def _on_new_caller_id(self, ev: NewCallerid, at: float) -> LedgerResult:
        """A caller whose Newchannel we never saw (the framer dropped it: its caller ID broke
        its lines) is tracked from the dialplan's cleaning of that ID, a moment later."""
        if ev.uniqueid in self._calls or ev.uniqueid in self._leg_owner:
            return _NOTHING
        return self._on_newchannel(ev, at)

    def _on_newstate(self, ev: Newstate, at: float) -> LedgerResult:
        tracked = self._calls.get(ev.uniqueid)
        if tracked and ev.state == "Up" and tracked.record.answered_at is None:
            tracked.record.answered_at = at
        return _NOTHING

    def _on_dial_begin(self, ev: DialBegin, at: float) -> LedgerResult:
        tracked = self._calls.get(self._leg_owner.get(ev.uniqueid, ev.uniqueid))
        if tracked is None or not ev.dest_uniqueid:
            return _NOTHING
        self._leg_owner[ev.dest_uniqueid] = tracked.record.call_id
        agent = agent_from_channel(ev.dest_channel)
        if agent:
            tracked.agent_legs[ev.dest_uniqueid] = agent
        return _NOTHING

    def _on_dial_end(self, ev: DialEnd, at: float) -> LedgerResult:
        tracked = self._calls.get(self._leg_owner.get(ev.uniqueid, ev.uniqueid))
        if tracked is None or ev.dial_status != "ANSWER":
            return _NOTHING
        agent = tracked.agent_legs.get(ev.dest_uniqueid) or agent_from_channel(ev.dest_channel)
        if agent is None:
            return _NOTHING
        return self._agent_answered(tracked, agent, at)

    def _on_hangup(self, ev: Hangup, at: float) -> LedgerResult:
        uniqueid = ev.uniqueid
        call_id = self._leg_owner.get(uniqueid, uniqueid)
        tracked = self._calls.get(call_id)
        if tracked is None:
            return _NOTHING
        record = tracked.record
        if uniqueid != call_id:  # a leg; its hangup alone says nothing of who ended the call
            agent = tracked.agent_legs.get(uniqueid)
            # That agent's talk is over (a transfer, or the call's end); a call no handler
            # rang (the fallback's) has no attempts: its agent's talk ends all the same.
            if (agent is not None and not self._end_talk(tracked, agent, at)
                    and agent == record.agent_id and record.agent_answered_at is not None
                    and tracked.talk_ended_at is None):
                tracked.talk_ended_at = at
            return _NOTHING
        if record.agent_answered_at is not None and tracked.talk_ended_at is None:
            tracked.talk_ended_at = at
        tracked.caller_hung_up_at = at
        record.hangup_cause = _cause(ev)
        if tracked.agi_active:
            return _NOTHING  # the call handler reports the end, and knows who ended it
        if tracked.shutdown:
            record.hangup_by = HangupBy.SYSTEM
            tracked.failure = tracked.failure or "Asterisk stopped and hung up the call"
        elif record.hangup_by is None:
            # Without a handler, AMI cannot tell who ended a talk: Dial hangs up the agent's
            # leg before the caller's whichever side sent BYE.
            record.hangup_by = HangupBy.CALLER if record.agent_answered_at is None else None
        return self._close(tracked, at)

    def _on_soft_hangup_request(self, ev: SoftHangupRequest, at: float) -> LedgerResult:
        tracked = self._calls.get(ev.uniqueid)
        if tracked is not None and ev.asterisk_shutting_down:
            tracked.shutdown = True
        return _NOTHING

    def _on_hold(self, ev: Hold, at: float) -> LedgerResult:
        """A phone put the other party on hold: the caller's (their own channel) or an
        agent's (their leg of the call, or a nailed-up agent's channel joined to it)."""
        found = self._holder(ev.uniqueid, ev.channel)
        if found is None:
            return _NOTHING
        tracked, agent = found
        record = tracked.record
        if _open_hold(record, agent) is not None or len(record.holds) >= MAX_HOLDS:
            return _NOTHING  # already on hold by that phone (a repeated re-INVITE)
        record.holds.append(HoldInterval(
            HoldBy.CALLER if agent is None else HoldBy.AGENT, at, agent_id=agent))
        return LedgerResult(save=(record,))

    def _on_unhold(self, ev: Unhold, at: float) -> LedgerResult:
        found = self._holder(ev.uniqueid, ev.channel)
        if found is None:
            return _NOTHING
        tracked, agent = found
        hold = _open_hold(tracked.record, agent)
        if hold is None:
            return _NOTHING
        hold.ended_at = max(at, hold.started_at)
        return LedgerResult(save=(tracked.record,))

    def _holder(self, uniqueid: str, channel: str) -> tuple[_Tracked, str | None] | None:
        """The call a Hold/Unhold is about, and the agent whose phone sent it (None: the
        caller's phone)."""
        call_id = self._leg_owner.get(uniqueid, uniqueid)
        tracked = self._calls.get(call_id)
        if tracked is not None:
            if uniqueid == call_id:
                return tracked, None
            agent = tracked.agent_legs.get(uniqueid) or agent_from_channel(channel)
            return (tracked, agent) if agent is not None else None
        # A nailed-up agent's channel is its own call: find the call that agent talks in.
        agent = agent_from_channel(channel)
        if agent is None:
            return None
        for candidate in self._calls.values():
            if any(a.agent_id == agent and a.answered_at is not None and a.ended_at is None
                   for a in candidate.record.attempts):
                return candidate, agent
        return None

    _HANDLERS = {
        "Hold": _on_hold,
        "Unhold": _on_unhold,
        "SoftHangupRequest": _on_soft_hangup_request,
        "Newchannel": _on_newchannel,
        "NewCallerid": _on_new_caller_id,
        "Newstate": _on_newstate,
        "DialBegin": _on_dial_begin,
        "DialEnd": _on_dial_end,
        "Hangup": _on_hangup,
    }

    # ------------------------------------------------------------------ call handler side

    def handler_started(
        self,
        call_id: str,
        *,
        channel: str,
        caller_number: str | None,
        caller_name: str | None,
        dialed_number: str | None,
        now: float,
        caller_id_raw: str | None = None,
    ) -> LedgerResult:
        """The FastAGI handler took the call. Its channel and caller ID win over AMI's:
        Asterisk wrote them after the dialplan cleaned the caller ID, and a session's
        environment names its own channel. ``caller_id_raw``: the dialplan's escaped copy
        of the caller ID as sent (see core/caller_id.py)."""
        tracked, created = self._track(call_id, now)
        tracked.agi_active = True
        record = tracked.record
        record.channel = channel or record.channel
        record.caller_number = clean_number(caller_number) or record.caller_number
        record.caller_name = clean_name(caller_name) or record.caller_name
        record.caller_id_raw = caller_id_raw or record.caller_id_raw
        record.dialed_number = record.dialed_number or _blank(dialed_number)
        if record.answered_at is None:
            record.answered_at = now  # the dialplan answers before handing the call to us
        return LedgerResult(save=(record,)) if created else _NOTHING

    def ivr_path(self, call_id: str, path: Iterable[IvrStep]) -> None:
        tracked = self._require(call_id)
        tracked.record.ivr_path = list(path)

    def self_service(
        self,
        call_id: str,
        faq_outcomes: Iterable[FaqOutcome],
        survey_answers: Iterable[SurveyAnswer],
    ) -> None:
        """The FAQ answers the caller heard and the survey answers they gave, so far."""
        record = self._require(call_id).record
        record.faq_outcomes = [replace(outcome) for outcome in faq_outcomes]
        record.survey_answers = list(survey_answers)

    def queued(self, call_id: str, queue: str, now: float) -> LedgerResult:
        """The call joined ``queue`` (again, on overflow): the record names the last queue
        and ``overflowed_from`` the first, and the wait counts from the first, as the caller
        lived it. After a blind transfer the
        caller waits again, but the record keeps the queue they first waited in (per-queue
        figures count each call once, where it arrived); ``transfers`` says where it went."""
        tracked = self._require(call_id)
        record = tracked.record
        if not tracked.moved or record.queue is None:
            if record.queue is not None and record.queue != queue \
                    and record.overflowed_from is None:
                record.overflowed_from = record.queue  # the first queue, kept through more
            record.queue = queue
        if record.queued_at is None:
            record.queued_at = now
        return LedgerResult(save=(record,))

    def attempt_started(self, call_id: str, agent_id: str, now: float) -> None:
        record = self._require(call_id).record
        record.attempts.append(AgentAttempt(agent_id=agent_id, started_at=now))

    def attempt_answered(self, call_id: str, agent_id: str, now: float) -> LedgerResult:
        """``agent_id`` answered their ring for the call (AMI's DialEnd says so too; the first
        word counts)."""
        return self._agent_answered(self._require(call_id), agent_id, now)

    def agent_joined(self, call_id: str, agent_id: str, now: float) -> LedgerResult:
        """The caller joined a nailed-up agent's bridge: the talk starts now, without a ring
        (the attempt stays open until the caller leaves the bridge: ``attempt_ended``)."""
        return self._agent_answered(self._require(call_id), agent_id, now)

    def attempt_ended(
        self, call_id: str, agent_id: str, dial_status: str, now: float
    ) -> LedgerResult:
        """The handler's Dial returned. ANSWER means the talk is over too."""
        tracked = self._require(call_id)
        attempt = self._open_attempt(tracked, agent_id)
        outcome = DIAL_STATUS_OUTCOMES.get(dial_status, AttemptOutcome.FAILED)
        result = _NOTHING
        if outcome is AttemptOutcome.ANSWERED and (
                tracked.record.agent_answered_at is None
                or (attempt is not None and attempt.answered_at is None)):
            # AMI missed the answer: the best we know is "some time during this attempt".
            result = self._agent_answered(tracked, agent_id, attempt.started_at if attempt else now)
        if attempt is not None:
            if attempt.answered_at is None:  # an answered leg ends answered, however it ends
                attempt.outcome = outcome
            _end_leg(attempt, now)
        if outcome is AttemptOutcome.ANSWERED and tracked.talk_ended_at is None:
            tracked.talk_ended_at = now
        return result

    # ------------------------------------------------------------------ transfers

    def transfer_requested(self, call_id: str, mode: TransferMode, from_agent: str, now: float,
                           *, to_agent: str | None = None,
                           to_queue: str | None = None) -> LedgerResult:
        """A transfer was accepted and started (blind: the caller is being moved; attended:
        the consult rings ``to_agent``)."""
        tracked = self._require(call_id)
        tracked.record.transfers.append(Transfer(TransferMode(mode), from_agent, now,
                                                 to_agent=to_agent, to_queue=to_queue))
        if mode is TransferMode.BLIND:
            tracked.moved = True
        return LedgerResult(save=(tracked.record,))

    def transfer_refused(self, call_id: str, mode: TransferMode, from_agent: str, now: float,
                         reason: str, *, to_agent: str | None = None,
                         to_queue: str | None = None,
                         outcome: TransferOutcome = TransferOutcome.REFUSED) -> LedgerResult:
        """A transfer went nowhere: refused before anything moved, or FAILED when Asterisk
        would not start it. Not kept (nothing to save) once the record holds MAX_TRANSFERS,
        nor for a call the ledger does not hold."""
        tracked = self._calls.get(call_id)
        if tracked is None or len(tracked.record.transfers) >= MAX_TRANSFERS:
            return _NOTHING
        tracked.record.transfers.append(Transfer(
            TransferMode(mode), from_agent, now, to_agent=to_agent, to_queue=to_queue,
            outcome=outcome, ended_at=now, reason=reason))
        return LedgerResult(save=(tracked.record,))

    def transfer_ended(self, call_id: str, outcome: TransferOutcome, now: float,
                       reason: str | None = None) -> LedgerResult:
        """The pending transfer of the call ended with ``outcome``. COMPLETED for an attended
        one: the handover, so the transferring agent's talk ends now (if their leg's hangup
        did not already end it)."""
        tracked = self._calls.get(call_id)
        transfer = _pending_transfer(tracked.record) if tracked is not None else None
        if tracked is None or transfer is None:
            return _NOTHING
        transfer.outcome, transfer.ended_at, transfer.reason = outcome, now, reason
        if outcome is TransferOutcome.COMPLETED:
            self._end_talk(tracked, transfer.from_agent, now)
        return LedgerResult(save=(tracked.record,))

    def consult_ended(self, call_id: str, agent_id: str, status: str,
                      now: float) -> LedgerResult:
        """An attended transfer's consult of ``agent_id`` ended without a handover: their leg
        is over (``status``: DIALSTATUS, or DECLINED when they answered and hung up first),
        and the transfer was declined (busy, no answer, hung up) or failed."""
        tracked = self._calls.get(call_id)
        if tracked is None:
            return _NOTHING
        self.attempt_ended(call_id, agent_id, status, now)
        outcome = (TransferOutcome.DECLINED if status in CONSULT_DECLINED
                   else TransferOutcome.FAILED)
        self.transfer_ended(call_id, outcome, now, reason=status.lower())
        return LedgerResult(save=(tracked.record,))

    def talk_ended(self, call_id: str, agent_id: str, now: float) -> LedgerResult:
        """``agent_id``'s phone leg hung up (seen by the service; AMI's own hangup of a leg
        the ledger knows ends it first, with Asterisk's time)."""
        tracked = self._require(call_id)
        return (LedgerResult(save=(tracked.record,)) if self._end_talk(tracked, agent_id, now)
                else _NOTHING)

    def caller_moved(self, call_id: str, now: float) -> LedgerResult:
        """A blind transfer's caller arrived in the transfer script: every leg still talking
        with them is over (their hangups on AMI, earlier and exact, may have ended them)."""
        tracked = self._require(call_id)
        for attempt in tracked.record.attempts:
            if attempt.ended_at is None and attempt.answered_at is not None:
                _end_leg(attempt, now)
        if tracked.talk_ended_at is None and tracked.record.agent_answered_at is not None:
            tracked.talk_ended_at = now
        return LedgerResult(save=(tracked.record,))

    def handler_finished(
        self,
        call_id: str,
        now: float,
        *,
        hangup_by: HangupBy,
        no_agent: bool = False,
        completed_in_ivr: bool = False,
        callback_requested: bool = False,
        failure: str | None = None,
    ) -> LedgerResult:
        tracked = self._calls.get(call_id)
        if tracked is None:
            return _NOTHING  # already closed from AMI
        tracked.agi_active = False
        tracked.no_agent |= no_agent
        tracked.completed_in_ivr |= completed_in_ivr
        tracked.callback_requested |= callback_requested
        tracked.failure = tracked.failure or failure
        record = tracked.record
        # Asterisk's own hangup time is the more exact one when AMI saw it.
        ended = tracked.caller_hung_up_at or now
        # The handler knows who ended the call for sure: Dial returned with the caller still
        # there (the agent hung up), or the caller's hangup interrupted it.
        record.hangup_by = hangup_by
        if hangup_by is HangupBy.CALLER and tracked.caller_hung_up_at is None:
            # An AGI hangup may be the caller's or Asterisk's: AMI's Hangup tells.
            tracked.handler_ended_at = now
            return _NOTHING
        if tracked.shutdown:
            record.hangup_by = HangupBy.SYSTEM
            tracked.failure = tracked.failure or "Asterisk stopped and hung up the call"
        return self._close(tracked, ended)

    # ------------------------------------------------------------------ reconciliation

    def reconcile(self, live_uniqueids: set[str], now: float) -> LedgerResult:
        """After an AMI (re)connect: close calls whose caller channel is gone and no handler owns.

        Calls still handled by a FastAGI session are left to it: it will report the end.
        """
        closed: list[CallRecord] = []
        for call_id, tracked in list(self._calls.items()):
            if call_id in live_uniqueids or tracked.agi_active:
                continue
            if tracked.handler_ended_at is not None:
                closed += self._close(tracked, tracked.handler_ended_at).closed
                continue
            tracked.failure = tracked.failure or (
                "ended while the service could not see Asterisk; end time approximate"
            )
            closed += self._close(tracked, tracked.caller_hung_up_at or now).closed
        return LedgerResult(save=tuple(closed), closed=tuple(closed))

    def catch_up(self, channels: Iterable[CoreShowChannel], now: float) -> LedgerResult:
        """From a channel snapshot: the legs of calls no handler owns (an adopted record whose
        caller the fallback dialplan queued while the service was down), and an agent already
        bridged with the caller, answered ``duration`` seconds ago at the latest."""
        snapshot = list(channels)
        by_id = {channel.uniqueid: channel for channel in snapshot}
        saved: list[CallRecord] = []
        for call_id, tracked in self._calls.items():
            caller = by_id.get(call_id)
            if caller is None or tracked.agi_active:
                continue
            for leg in snapshot:
                if leg.linkedid != call_id or leg.uniqueid == call_id:
                    continue
                self._leg_owner[leg.uniqueid] = call_id
                agent = agent_from_channel(leg.channel)
                if agent is None:
                    continue
                tracked.agent_legs[leg.uniqueid] = agent
                if caller.bridge_id and leg.bridge_id == caller.bridge_id:
                    at = now - (leg.duration_seconds or 0)
                    saved += self._agent_answered(tracked, agent, at).save
        return LedgerResult(save=tuple(saved))

    def adopt(self, record: CallRecord) -> None:
        """Take over an open record stored by an earlier run of the service."""
        if record.call_id not in self._calls:
            self._calls[record.call_id] = _Tracked(record=record)

    def hand_over(self, call_id: str) -> CallRecord | None:
        """Give up an open call no handler owns, for Asterisk's log to complete it (it is over
        there); None if the ledger does not hold it or a handler still does."""
        tracked = self._calls.get(call_id)
        if tracked is None or tracked.agi_active:
            return None
        self._forget(call_id)
        return tracked.record

    def handled_calls(self) -> frozenset[str]:
        """Open calls a FastAGI handler owns now."""
        return frozenset(call_id for call_id, t in self._calls.items() if t.agi_active)

    # ------------------------------------------------------------------ internals

    def _track(self, call_id: str, at: float) -> tuple[_Tracked, bool]:
        tracked = self._calls.get(call_id)
        if tracked is not None:
            return tracked, False
        # Every call gets its protocol number the moment we first hear of it.
        tracked = _Tracked(record=CallRecord(call_id=call_id, started_at=at, linked_id=call_id,
                                             protocol=protocol_number(at, call_id)))
        self._calls[call_id] = tracked
        self._leg_owner[call_id] = call_id
        return tracked, True

    def _require(self, call_id: str) -> _Tracked:
        tracked = self._calls.get(call_id)
        if tracked is None:
            raise KeyError(f"call {call_id!r} is not open in the ledger")
        return tracked

    @staticmethod
    def _open_attempt(tracked: _Tracked, agent_id: str) -> AgentAttempt | None:
        for attempt in reversed(tracked.record.attempts):
            if attempt.agent_id == agent_id and attempt.ended_at is None:
                return attempt
        return None

    def _agent_answered(self, tracked: _Tracked, agent_id: str, at: float) -> LedgerResult:
        """``agent_id`` answered: their open leg is answered at ``at``; the call's first
        answer also names the call's agent and ends its wait; an answer after a pending blind
        transfer completes it."""
        record = tracked.record
        attempt = self._open_attempt(tracked, agent_id)
        changed = False
        if attempt is not None and attempt.answered_at is None:
            attempt.outcome, attempt.answered_at = AttemptOutcome.ANSWERED, at
            changed = True
            transfer = _pending_transfer(record)
            if (transfer is not None and transfer.mode is TransferMode.BLIND
                    and attempt.started_at >= transfer.requested_at):
                transfer.outcome, transfer.ended_at = TransferOutcome.COMPLETED, at
        if record.agent_answered_at is None:
            record.agent_id = agent_id
            record.agent_answered_at = at
            if record.queued_at is not None:
                record.wait_seconds = max(0.0, at - record.queued_at)
            changed = True
        return LedgerResult(save=(record,)) if changed else _NOTHING

    def _end_talk(self, tracked: _Tracked, agent_id: str, at: float) -> bool:
        """``agent_id``'s answered leg, if still open, ends at ``at``: whether there was one."""
        for attempt in reversed(tracked.record.attempts):
            if (attempt.agent_id == agent_id and attempt.ended_at is None
                    and attempt.answered_at is not None):
                _end_leg(attempt, at)
                hold = _open_hold(tracked.record, agent_id)
                if hold is not None:  # their phone left the call still holding it
                    hold.ended_at = max(attempt.ended_at or at, hold.started_at)
                if tracked.talk_ended_at is None and attempt.answered_at == (
                        tracked.record.agent_answered_at):
                    tracked.talk_ended_at = at  # the call's first agent's talk is over
                return True
        return False

    def _close(self, tracked: _Tracked, ended_at: float) -> LedgerResult:
        record = tracked.record
        record.ended_at = max(ended_at, record.started_at)
        for attempt in record.attempts:
            if attempt.ended_at is None and attempt.outcome is AttemptOutcome.RINGING:
                attempt.outcome = AttemptOutcome.CALLER_HUNG_UP
            # No leg outlives the call (a leg's time from AMI may be a little later).
            _end_leg(attempt, min(attempt.ended_at or record.ended_at, record.ended_at))
        for hold in record.holds:  # an open hold ends with the call; none outlives it
            hold.started_at = min(max(hold.started_at, record.started_at), record.ended_at)
            until = record.ended_at if hold.ended_at is None else hold.ended_at
            hold.ended_at = min(max(until, hold.started_at), record.ended_at)
        for transfer in record.transfers:
            if transfer.outcome is TransferOutcome.PENDING:
                transfer.outcome = (TransferOutcome.NO_AGENT if tracked.no_agent
                                    else TransferOutcome.FAILED if tracked.failure
                                    else TransferOutcome.ABANDONED)
                transfer.ended_at = record.ended_at
        if record.agent_answered_at is not None:
            talk_end = tracked.talk_ended_at or record.ended_at
            talk_end = min(talk_end, record.ended_at)
            record.talk_seconds = max(0.0, talk_end - record.agent_answered_at)
        elif record.queued_at is not None:
            record.wait_seconds = max(0.0, record.ended_at - record.queued_at)
        record.disposition = _disposition(tracked)
        if record.hangup_by is None:
            record.hangup_by = HangupBy.UNKNOWN
        if tracked.failure:
            record.note = tracked.failure
        self._forget(record.call_id)
        return LedgerResult(save=(record,), closed=(record,))

    def _forget(self, call_id: str) -> None:
        """The call and its legs leave the ledger (closed, or handed over)."""
        del self._calls[call_id]
        for leg in [leg for leg, owner in self._leg_owner.items() if owner == call_id]:
            del self._leg_owner[leg]


def _end_leg(attempt: AgentAttempt, at: float) -> None:
    """The leg ends at ``at`` (never before it began, nor before its answer); an answered
    leg's talk is measured."""
    attempt.ended_at = max(at, attempt.started_at, attempt.answered_at or attempt.started_at)
    if attempt.answered_at is not None:
        attempt.talk_seconds = max(0.0, attempt.ended_at - attempt.answered_at)


def _open_hold(record: CallRecord, agent_id: str | None) -> HoldInterval | None:
    """The hold that phone (an agent's, or the caller's for None) has not ended yet."""
    for hold in reversed(record.holds):
        if hold.ended_at is None and hold.agent_id == agent_id:
            return hold
    return None


def _pending_transfer(record: CallRecord) -> Transfer | None:
    """The call's transfer under way, if any (the last one: one at a time)."""
    if record.transfers and record.transfers[-1].outcome is TransferOutcome.PENDING:
        return record.transfers[-1]
    return None


def _disposition(tracked: _Tracked) -> Disposition:
    record = tracked.record
    if record.agent_answered_at is not None:
        return Disposition.ANSWERED
    if tracked.failure:
        return Disposition.FAILED
    if tracked.no_agent:
        return Disposition.NO_AGENT
    if tracked.callback_requested:  # not abandoned: the caller keeps their place
        return Disposition.CALLBACK_REQUESTED
    if record.queue is not None:
        return Disposition.ABANDONED_IN_QUEUE
    if tracked.completed_in_ivr:
        return Disposition.COMPLETED_IN_IVR
    return Disposition.ABANDONED_IN_IVR


def _blank(value: str | None) -> str | None:
    """AMI and AGI say "<unknown>" or "" for a missing caller ID."""
    if not value or value in ("<unknown>", "unknown"):
        return None
    return value


def _cause(ev: Hangup) -> str | None:
    cause, text = ev.cause, ev.cause_text
    if cause is None and not text:
        return None
    return f"{cause} {text}".strip() if cause is not None else text


_NOTHING = LedgerResult()
