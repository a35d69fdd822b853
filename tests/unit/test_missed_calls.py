"""Calls rebuilt from Asterisk's channel event log (core/missed_calls.py): what each kind of
call becomes, which calls are left to the service, and that importing is idempotent."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.core.missed_calls import (
    COMPLETED_NOTE,
    IMPORTED_NOTE,
    ChannelEvent,
    plan_import,
)
from callcenter.core.records import (
    AgentAttempt,
    AttemptOutcome,
    CallRecord,
    Disposition,
    HangupBy,
    IvrStep,
    RecordSource,
)

T0 = 1_796_640_000.0


class Log:
    """Asterisk's channel event log as the reader hands it over: rows in order."""

    def __init__(self) -> None:
        self.events: list[ChannelEvent] = []

    def add(self, kind: str, at: float, uniqueid: str, linkedid: str, channel: str,
            **fields: object) -> None:
        self.events.append(ChannelEvent(row=len(self.events) + 1, kind=kind, at=at,
                                        uniqueid=uniqueid, linkedid=linkedid, channel=channel,
                                        **fields))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Ring:
    agent: str
    after: float  # seconds after the caller joined the queue
    answers_after: float | None  # None: rings until it stops
    rings_for: float = 15.0
    talks_for: float = 5.0


@dataclass(frozen=True)
class Call:
    """One caller, as the fallback dialplan treats them while the service is down."""

    number: int
    start: float
    apology: float = 6.0  # the apology plays, then Queue()
    queue: str | None = "operator"
    rings: tuple[Ring, ...] = ()
    caller_leaves_after: float = 30.0  # from the start, unless an agent answered
    hangup: str = "caller"  # or "agent", for an answered call

    @property
    def call_id(self) -> str:
        return f"{int(self.start)}.{self.number}"

    @property
    def channel(self) -> str:
        return f"PJSIP/anonymous-{self.number:08x}"

    def events(self) -> list[tuple[float, str, str, str, dict[str, object]]]:
        """(at, kind, uniqueid, channel, fields) of every channel of the call."""
        me, chan, start = self.call_id, self.channel, self.start
        out: list[tuple[float, str, str, str, dict[str, object]]] = [
            (start, "CHAN_START", me, chan, {"context": "callers", "exten": "100",
                                            "caller_number": "5551234"}),
            (start, "ANSWER", me, chan, {"app": "Answer"}),
        ]
        end = start + self.caller_leaves_after
        source = chan
        queued = start + self.apology
        if self.queue is not None and queued < end:
            out.append((queued, "APP_START", me, chan,
                        {"app": "Queue", "app_data": f"{self.queue},,,,600"}))
            answered = None
            for index, ring in enumerate(self.rings):
                leg, leg_chan = f"{me}-{index}", f"PJSIP/{ring.agent}-{self.number:04x}{index}"
                ring_at = queued + ring.after
                if ring_at >= end or answered is not None:
                    continue
                out.append((ring_at, "CHAN_START", leg, leg_chan, {"context": "agents"}))
                if ring.answers_after is not None and ring.answers_after < ring.rings_for \
                        and ring_at + ring.answers_after < end:
                    answered = ring_at + ring.answers_after
                    out.append((answered, "ANSWER", leg, leg_chan, {}))
                    end = answered + ring.talks_for
                    if self.hangup == "agent":
                        source = leg_chan
                    leg_end = end
                else:
                    leg_end = min(ring_at + ring.rings_for, end)
                out.append((leg_end, "HANGUP", leg, leg_chan,
                            {"hangup_cause": 16 if answered else 19, "hangup_source": source}))
                out.append((leg_end, "CHAN_END", leg, leg_chan, {}))
        out.append((end, "HANGUP", me, chan, {"hangup_cause": 16, "hangup_source": source}))
        out.append((end, "CHAN_END", me, chan, {}))
        return out


def log_of(*calls: Call) -> Log:
    log = Log()
    everything = [(at, order, call, event) for call in calls
                  for order, event in enumerate(call.events()) for at in [event[0]]]
    for at, _, call, (_, kind, uniqueid, channel, fields) in sorted(
            everything, key=lambda item: (item[0], item[2].number, item[1])):
        log.add(kind, at, uniqueid, call.call_id, channel, **fields)
    return log


def only_new(log: Log, **kwargs: object) -> CallRecord:
    plan = plan_import(log.events, after_row=0, tracked={}, **kwargs)  # type: ignore[arg-type]
    [record] = plan.new
    return record


# --------------------------------------------------------------------------- what calls become


def test_a_caller_the_fallback_connects_to_an_agent_is_recorded_answered_with_its_times():
    call = Call(1, T0, rings=(Ring("agent1", after=0.01, answers_after=1.0, talks_for=2.0),),
                hangup="agent")
    record = only_new(log_of(call))

    assert record.call_id == record.linked_id == call.call_id
    assert record.source is RecordSource.ASTERISK and record.note == IMPORTED_NOTE
    assert record.protocol and record.caller_number == "5551234" and record.dialed_number == "100"
    assert record.started_at == record.answered_at == T0
    assert (record.queue, record.queued_at) == ("operator", T0 + 6)
    assert (record.agent_id, record.agent_answered_at) == ("agent1", T0 + 6.01 + 1.0)
    assert abs(record.wait_seconds - 1.01) < 1e-6 and abs(record.talk_seconds - 2.0) < 1e-6
    assert record.ended_at == T0 + 6.01 + 1.0 + 2.0
    assert (record.disposition, record.hangup_by) == (Disposition.ANSWERED, HangupBy.AGENT)
    assert record.hangup_cause == "16"
    assert [(a.agent_id, a.outcome) for a in record.attempts] == [
        ("agent1", AttemptOutcome.ANSWERED)]


def test_a_hostile_caller_id_from_the_log_is_cleaned_as_the_dialplan_does_and_kept_raw():
    """The log holds the caller ID from before the dialplan cleaned it: the import applies
    the same cleaning (core/caller_id.py) and keeps the bytes as sent, escaped."""
    log = Log()
    me, chan = "1796640000.9", "PJSIP/anonymous-00000009"
    log.add("CHAN_START", T0, me, me, chan, context="callers", exten="100",
            caller_number="556\r\n200 result=0", caller_name='O\\"Brien\r\nUniqueid: 1.1')
    log.add("HANGUP", T0 + 2, me, me, chan, hangup_cause=16, hangup_source=chan)
    log.add("CHAN_END", T0 + 2, me, me, chan)
    record = only_new(log)
    assert record.caller_number == "556200result0"
    assert record.caller_name == 'O"BrienUniqueid: 1.1'  # quoted-pair undone, no CR/LF
    assert record.caller_id_raw is not None and "\r" not in record.caller_id_raw
    assert "%0D%0A200" in record.caller_id_raw
    assert record.call_id == me and record.disposition is Disposition.ABANDONED_IN_IVR


def test_a_caller_who_hangs_up_during_the_apology_abandoned_in_the_ivr():
    record = only_new(log_of(Call(2, T0, caller_leaves_after=2.0)))
    assert record.queue is None and record.ended_at == T0 + 2
    assert (record.disposition, record.hangup_by) == (Disposition.ABANDONED_IN_IVR,
                                                      HangupBy.CALLER)


def test_a_caller_who_gives_up_in_the_queue_after_a_ring_nobody_answered():
    call = Call(3, T0, rings=(Ring("agent2", after=0.0, answers_after=None, rings_for=4.0),),
                caller_leaves_after=20.0)
    record = only_new(log_of(call))
    assert record.disposition is Disposition.ABANDONED_IN_QUEUE
    assert record.wait_seconds == 14.0 and record.agent_id is None
    assert [(a.agent_id, a.outcome, a.ended_at) for a in record.attempts] == [
        ("agent2", AttemptOutcome.NO_ANSWER, T0 + 10)]


def test_channels_outside_the_callers_context_are_not_calls():
    log = Log()
    log.add("CHAN_START", T0, "9.1", "9.1", "PJSIP/callcenter-trunk-01", context="outbound")
    log.add("HANGUP", T0 + 1, "9.1", "9.1", "PJSIP/callcenter-trunk-01")
    assert plan_import(log.events, after_row=0, tracked={}).new == ()


# --------------------------------------------------------------------------- calls still going on


def test_a_call_still_going_on_is_adopted_open_and_read_again_next_time():
    call = Call(4, T0, rings=(Ring("agent1", after=0.0, answers_after=1.0, talks_for=60),))
    everything = log_of(call).events
    so_far = [e for e in everything if e.at <= T0 + 10]
    plan = plan_import(so_far, after_row=0, tracked={})
    [open_record] = plan.adopt
    assert open_record.is_open and open_record.agent_id == "agent1"
    assert plan.next_row == 0, "the call's rows are read again until it ends"

    later = plan_import(everything, after_row=plan.next_row,
                        tracked={open_record.call_id: open_record})
    [completed] = later.completed
    assert later.new == () and completed.ended_at == T0 + 6 + 1 + 60
    assert completed.talk_seconds == 60 and completed.disposition is Disposition.ANSWERED
    assert completed.source is RecordSource.ASTERISK, "begun by an import: Asterisk's still"
    assert later.next_row == len(everything)


# --------------------------------------------------------------------------- the service's own


def test_calls_the_service_stored_or_handles_are_left_alone():
    first, second = Call(5, T0), Call(6, T0 + 1)
    log = log_of(first, second)
    assert plan_import(log.events, after_row=0, tracked={},
                       stored=frozenset({first.call_id, second.call_id})).new == ()
    handled = CallRecord(call_id=first.call_id, started_at=T0)
    plan = plan_import(log.events, after_row=0, tracked={first.call_id: handled},
                       handled=frozenset({first.call_id}), stored=frozenset({second.call_id}))
    assert (plan.new, plan.completed) == ((), ())


def test_an_open_record_the_service_left_is_completed_keeping_what_only_the_service_knew():
    """The service answered, ran the IVR, queued the caller and rang agent2; then it died.
    The fallback queue connected agent1."""
    call = Call(7, T0, apology=8.0, rings=(
        Ring("agent2", after=-5.0, answers_after=None, rings_for=3.0),  # the service's ring
        Ring("agent1", after=0.5, answers_after=1.0, talks_for=4.0)))
    service_ring = AgentAttempt(agent_id="agent2", started_at=T0 + 3.0)
    left_open = CallRecord(call_id=call.call_id, started_at=T0, answered_at=T0,
                           protocol="20261207000000000007", queue="sales", queued_at=T0 + 2.5,
                           ivr_path=[IvrStep("welcome", T0), IvrStep("main_menu", T0 + 2, "1")],
                           attempts=[service_ring])
    tracked = {call.call_id: copy.deepcopy(left_open)}
    plan = plan_import(log_of(call).events, after_row=0, tracked=tracked)

    [record] = plan.completed
    assert plan.new == ()
    assert tracked[call.call_id] == left_open, "the ledger's object is not changed"
    assert record.source is RecordSource.SERVICE_AND_ASTERISK and record.note == COMPLETED_NOTE
    assert (record.protocol, record.ivr_path) == (left_open.protocol, left_open.ivr_path)
    assert (record.queue, record.queued_at) == ("operator", T0 + 2.5)
    assert (record.agent_id, record.agent_answered_at) == ("agent1", T0 + 8 + 0.5 + 1)
    assert record.wait_seconds == 7.0 and record.talk_seconds == 4.0
    assert [(a.agent_id, a.outcome) for a in record.attempts] == [
        ("agent2", AttemptOutcome.NO_ANSWER), ("agent1", AttemptOutcome.ANSWERED)]


def test_an_open_record_of_a_call_still_going_on_stays_with_the_ledger():
    call = Call(8, T0, caller_leaves_after=100)
    events = [e for e in log_of(call).events if e.at < T0 + 50]
    left_open = CallRecord(call_id=call.call_id, started_at=T0)
    plan = plan_import(events, after_row=0, tracked={call.call_id: left_open})
    assert (plan.new, plan.completed, plan.next_row) == ((), (), 0)


# --------------------------------------------------------------------------- idempotence


@dataclass
class Service:
    """What the adapter does with a plan, on a dictionary for a database: new records only
    where none exists, completed ones replace, open new ones are adopted by the ledger; a
    restart adopts every open record stored."""

    position: int = 0
    stored: dict[str, CallRecord] = field(default_factory=dict)
    ledger: dict[str, CallRecord] = field(default_factory=dict)

    def import_from(self, events: list[ChannelEvent]) -> None:
        plan = plan_import(events, after_row=self.position, tracked=dict(self.ledger),
                           stored=frozenset(self.stored))
        for record in plan.completed:
            del self.ledger[record.call_id]
            self.stored[record.call_id] = record
        for record in plan.new:
            self.stored.setdefault(record.call_id, record)
        for record in plan.adopt:
            self.ledger[record.call_id] = copy.deepcopy(record)
        assert plan.next_row >= self.position
        self.position = plan.next_row

    def restart(self) -> None:
        self.ledger = {i: copy.deepcopy(r) for i, r in self.stored.items() if r.is_open}


FACTS = ("started_at", "answered_at", "ended_at", "queue", "queued_at", "wait_seconds",
         "agent_id", "agent_answered_at", "talk_seconds", "hangup_by", "disposition",
         "protocol", "source", "note")


def facts(record: CallRecord) -> tuple[object, ...]:
    return (*(getattr(record, name) for name in FACTS),
            tuple((a.agent_id, a.started_at, a.ended_at, a.outcome) for a in record.attempts))


rings = st.builds(Ring, agent=st.sampled_from(["agent1", "agent2", "agent3"]),
                  after=st.floats(0, 30), answers_after=st.none() | st.floats(0.1, 20),
                  rings_for=st.floats(1, 20), talks_for=st.floats(0.5, 60))
calls = st.lists(
    st.builds(Call, number=st.just(0), start=st.floats(0, 120).map(lambda s: T0 + s),
              apology=st.floats(1, 8), queue=st.none() | st.sampled_from(["operator", "sales"]),
              rings=st.lists(rings, max_size=3).map(tuple),
              caller_leaves_after=st.floats(0.5, 90), hangup=st.sampled_from(["caller", "agent"])),
    max_size=6,
).map(lambda cs: [Call(**{**c.__dict__, "number": i + 1}) for i, c in enumerate(cs)])


@settings(max_examples=150, deadline=None)
@given(calls=calls, cut=st.integers(0, 400), restart=st.booleans())
def test_importing_any_prefix_twice_is_importing_it_once(calls, cut, restart):
    events = log_of(*calls).events[:cut]
    once = Service()
    once.import_from(events)
    twice = copy.deepcopy(once)
    if restart:
        twice.restart()
    twice.import_from(events)
    assert twice.stored == once.stored and twice.position == once.position


@settings(max_examples=150, deadline=None)
@given(calls=calls, cuts=st.lists(st.integers(0, 400), max_size=3), restarts=st.booleans())
def test_importing_in_pieces_records_every_call_once_with_the_same_facts(calls, cuts, restarts):
    events = log_of(*calls).events
    at_once = Service()
    at_once.import_from(events)
    in_pieces = Service()
    for cut in sorted(cuts):
        in_pieces.import_from(events[:cut])
        if restarts:
            in_pieces.restart()
    in_pieces.import_from(events)

    assert sorted(in_pieces.stored) == sorted(at_once.stored) == sorted(c.call_id for c in calls)
    for call_id, record in at_once.stored.items():
        assert not record.is_open
        assert facts(in_pieces.stored[call_id]) == facts(record), call_id
    assert in_pieces.position == at_once.position == len(events)
