"""The callback machine (core/callbacks.py) driven directly: events in, actions out, time as
values. No AMI, no FastAGI, no store, no event loop: the service's part (carrying the actions
out) is tested in test_callback_dialer.py."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.core.acd_actions import ConnectMode, OfferFailure
from callcenter.core.callbacks import (
    FAST_FAILURE_SECONDS,
    FATE_POLL_SECONDS,
    ORIGINATE_GRACE_SECONDS,
    RETRY_PAUSE_SECONDS,
    TRANSITIONS,
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
    Phase,
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
from callcenter.core.records import CallbackStatus, HangupBy

RULES = CallbackRules(max_attempts=2, retry_after=300.0, rescan_every=60.0,
                      agi_start_timeout=10.0, customer_dial_seconds=25)
AGENT = "agent1"
RING_TIMEOUT = 15.0
RING_ORIGINATE_TIMEOUT = 15 + ORIGINATE_GRACE_SECONDS  # the ring, and the grace beyond it


class Run:
    """One machine, its clock, and the actions it returned (without its log lines)."""

    def __init__(self, rules: CallbackRules = RULES) -> None:
        self.machine = CallbackMachine(rules)
        self.now = 1000.0
        self._tokens = (f"cb{n:016x}" for n in itertools.count(1))
        self.uniqueids = (f"1700000000.{n}" for n in itertools.count(1))

    def feed(self, event: CallbackEvent, *, after: float = 0.0) -> list[CallbackAction]:
        self.now += after
        return [a for a in self.machine.handle(event, self.now) if not isinstance(a, Log)]

    def due(self) -> list[CallbackAction]:
        """The scheduled timer falls due (time moves to it)."""
        due = self.machine.due
        assert due is not None, "no timer scheduled"
        self.now = max(self.now, due)
        return self.feed(TimerDue(due))

    def offer(self, mode: ConnectMode = ConnectMode.RING, agent: str = AGENT,
              ) -> tuple[str, list[CallbackAction]]:
        token = next(self._tokens)
        return token, self.feed(Offered(token, agent, mode, RING_TIMEOUT))

    def dial(self, mode: ConnectMode = ConnectMode.RING, agent: str = AGENT) -> str:
        """Offered, still pending: the Originate goes out. Its token."""
        token, actions = self.offer(mode, agent)
        assert actions == [ReadStatus()]
        [originate] = self.feed(StatusRead(pending=True))
        assert isinstance(originate, Originate) and originate.token == token
        return token

    def step(self, token: str, kind: StepKind) -> tuple[str, list[CallbackAction]]:
        record_id = next(self.uniqueids)
        return record_id, self.feed(StepStarted(token, kind, record_id, "Local/s@x-1;1"))

    def agent_on_line(self) -> tuple[str, str]:
        """Rung and answered: the agent's step dials the customer. (token, record id)"""
        token = self.dial()
        record_id, actions = self.step(token, StepKind.AGENT)
        assert actions == [StartRecord(record_id, "Local/s@x-1;1"), DialCustomer(token)]
        assert self.feed(Originated(token, OriginateOutcome.ANSWERED)) == []  # after the step
        return token, record_id

    def customer_not_answering(self) -> None:
        token, record_id = self.agent_on_line()
        assert self.feed(AgentStepEnded(token, "NOANSWER", agent_left=False), after=25) == [
            GiveOfferBack(AGENT, OfferFailure.CUSTOMER_NO_ANSWER),
            RecordNotReached(record_id, HangupBy.SYSTEM, False, "NOANSWER"),
            HangUpStep()]


# --------------------------------------------------------------------------- paths


def test_the_agent_answers_then_the_customer_and_the_request_is_done():
    run = Run()
    token, actions = run.offer()
    assert actions == [ReadStatus()] and run.machine.phase is Phase.CHECKING
    assert run.feed(StatusRead(pending=True)) == [
        Originate(token, Leg.AGENT, AGENT, 15, RING_ORIGINATE_TIMEOUT)]
    assert run.machine.phase is Phase.RINGING

    record_id, actions = run.step(token, StepKind.AGENT)
    assert actions == [StartRecord(record_id, "Local/s@x-1;1"), DialCustomer(token)]
    assert run.machine.phase is Phase.ON_STEP
    assert run.feed(Originated(token, OriginateOutcome.ANSWERED)) == []  # no step deadline

    _, answered = run.step(token, StepKind.ANSWERED)  # Dial's U() on the customer's leg
    assert answered == [TalkStarted(AGENT), RecordTalkStarted(record_id, AGENT),
                        SetStatus(CallbackStatus.DONE), PlayConnecting()]
    assert run.feed(AgentStepEnded(token, "ANSWER", agent_left=False), after=120) == [
        Forget(), LeaveLine(), RecordTalked(record_id, AGENT, HangupBy.CALLER), HangUpStep()]
    assert run.machine.done and run.machine.token is None


def test_dial_answered_without_the_answered_step_still_counts_the_talk():
    run = Run()
    token, record_id = run.agent_on_line()
    assert run.feed(AgentStepEnded(token, "ANSWER", agent_left=True)) == [
        TalkStarted(AGENT), RecordTalkStarted(record_id, AGENT), SetStatus(CallbackStatus.DONE),
        Forget(), LeaveLine(), RecordTalked(record_id, AGENT, HangupBy.AGENT), HangUpStep()]


def test_an_agent_who_does_not_answer_is_a_no_answer_and_the_entry_keeps_its_place():
    run = Run()
    token = run.dial()
    assert run.feed(Originated(token, OriginateOutcome.NOT_ANSWERED, "0"), after=20) == [
        GiveOfferBack(AGENT, OfferFailure.NO_ANSWER)]
    assert run.machine.phase is Phase.IN_LINE and run.machine.not_before < run.now
    again, actions = run.offer(agent="agent2")  # the next agent: at once, no pause
    assert actions == [ReadStatus()] and again != token


@pytest.mark.parametrize(("reason", "failure"), [("5", OfferFailure.REJECTED),
                                                 ("8", OfferFailure.UNREACHABLE),
                                                 ("0", OfferFailure.REJECTED)])
def test_a_ring_that_fails_at_once_is_not_the_agents_no_answer_and_pauses_the_next(
        reason, failure):
    run = Run()
    token = run.dial()
    after = FAST_FAILURE_SECONDS - 0.5
    assert run.feed(Originated(token, OriginateOutcome.NOT_ANSWERED, reason), after=after) == [
        GiveOfferBack(AGENT, failure)]
    # Offered again at once (the only agent): the dialer waits before ringing.
    _, actions = run.offer()
    assert actions == [ScheduleTimer(run.now + RETRY_PAUSE_SECONDS)]
    assert run.machine.phase is Phase.PAUSING
    assert run.due() == [ReadStatus()]


@pytest.mark.parametrize(("reason", "failure"), [("5", OfferFailure.REJECTED),
                                                 ("8", OfferFailure.UNREACHABLE)])
def test_busy_or_unreachable_after_a_ring_pause_nothing(reason, failure):
    run = Run()
    token = run.dial()
    assert run.feed(Originated(token, OriginateOutcome.NOT_ANSWERED, reason), after=5) == [
        GiveOfferBack(AGENT, failure)]
    assert run.offer()[1] == [ReadStatus()]


def test_without_ami_the_offer_is_given_back_and_the_next_ring_waits():
    run = Run()
    token = run.dial()
    assert run.feed(Originated(token, OriginateOutcome.FAILED, "not connected")) == [
        GiveOfferBack(AGENT, OfferFailure.REJECTED)]
    assert run.machine.not_before == run.now + RETRY_PAUSE_SECONDS


def test_a_customer_who_does_not_answer_comes_back_after_retry_after_then_fails():
    run = Run()
    run.customer_not_answering()
    assert run.machine.phase is Phase.IN_LINE  # until the ACD takes it out of line
    assert run.feed(CustomerUnanswered()) == [ScheduleTimer(run.now + 300.0)]
    assert run.machine.phase is Phase.AWAY
    assert run.due() == [ReadStatus()]
    assert run.feed(StatusRead(pending=True)) == [EnterLine()]
    assert run.machine.phase is Phase.IN_LINE

    run.customer_not_answering()
    assert run.feed(CustomerUnanswered()) == [Forget(), SetStatus(CallbackStatus.FAILED)]
    assert run.machine.done and run.machine.unanswered == RULES.max_attempts
    assert run.offer()[1] == []  # nothing more, ever
    assert run.feed(CustomerUnanswered()) == []


def test_a_request_done_elsewhere_while_away_is_not_put_back_in_line():
    run = Run()
    run.customer_not_answering()
    run.feed(CustomerUnanswered())
    run.due()
    assert run.feed(StatusRead(pending=False)) == [Forget()]
    assert run.machine.done


def test_a_request_cancelled_while_in_line_is_not_called_and_frees_the_agent():
    run = Run()
    run.offer()
    assert run.feed(StatusRead(pending=False)) == [Forget(), LeaveLine()]
    assert run.machine.done and run.machine.attempts == 0


def test_a_request_the_acd_cannot_keep_comes_back_after_rescan_every():
    run = Run()
    assert run.feed(LineLost(LineLoss.FULL)) == [ScheduleTimer(run.now + 60.0)]
    assert run.due() == [ReadStatus()]
    assert run.feed(StatusRead(pending=True)) == [EnterLine()]


def test_an_agent_who_hangs_up_before_the_customer_answers_gives_it_back_with_a_pause():
    run = Run()
    token, record_id = run.agent_on_line()
    assert run.feed(AgentStepEnded(token, "UNKNOWN", agent_left=True)) == [
        GiveOfferBack(AGENT, OfferFailure.REJECTED),
        RecordNotReached(record_id, HangupBy.AGENT, True, "UNKNOWN"), HangUpStep()]
    assert run.machine.not_before == run.now + RETRY_PAUSE_SECONDS


def test_a_nailed_up_agent_gets_the_customer_joined_to_their_bridge():
    run = Run()
    token = run.dial(ConnectMode.NAILED)
    assert run.machine.attempt is not None
    assert run.machine.attempt.leg is Leg.CUSTOMER
    assert run.machine.attempt.timeout == 25 + ORIGINATE_GRACE_SECONDS
    record_id, actions = run.step(token, StepKind.CUSTOMER)
    assert actions == [StartRecord(record_id, "Local/s@x-1;1"), TalkStarted(AGENT),
                       RecordTalkStarted(record_id, AGENT), SetStatus(CallbackStatus.DONE),
                       PlayConnecting(), JoinAgent(token, AGENT)]
    assert run.feed(CustomerStepEnded(token, customer_left=False), after=60) == [
        Forget(), LeaveLine(), RecordTalked(record_id, AGENT, HangupBy.AGENT), HangUpStep()]


def test_a_nailed_up_agents_customer_who_does_not_answer():
    run = Run()
    token = run.dial(ConnectMode.NAILED)
    assert run.feed(Originated(token, OriginateOutcome.NOT_ANSWERED, "0"), after=25) == [
        GiveOfferBack(AGENT, OfferFailure.CUSTOMER_NO_ANSWER)]
    failed = Run()
    token = failed.dial(ConnectMode.NAILED)
    assert failed.feed(Originated(token, OriginateOutcome.FAILED, "no OriginateResponse")) == [
        GiveOfferBack(AGENT, OfferFailure.REJECTED)]
    assert failed.machine.not_before == failed.now + RETRY_PAUSE_SECONDS


def test_an_answered_originate_whose_step_never_comes_is_given_back_and_a_late_step_refused():
    run = Run()
    token = run.dial()
    assert run.feed(Originated(token, OriginateOutcome.ANSWERED)) == [
        ScheduleTimer(run.now + 10.0)]
    assert run.feed(TimerDue(run.now + 9)) == []  # not the scheduled time: stale
    assert run.due() == [GiveOfferBack(AGENT, OfferFailure.REJECTED)]
    assert run.step(token, StepKind.AGENT)[1] == [RefuseStep(hang_up=True)]
    assert run.step(token, StepKind.ANSWERED)[1] == [RefuseStep(hang_up=False)]


def test_a_step_that_breaks_still_gives_the_offer_back():
    run = Run()
    token = run.dial()
    run.step(token, StepKind.AGENT)
    assert run.feed(StepFinished(token)) == [GiveOfferBack(AGENT, OfferFailure.REJECTED)]
    assert run.machine.not_before == run.now + RETRY_PAUSE_SECONDS
    assert run.feed(StepFinished(token)) == []  # said twice: once


def test_a_step_that_breaks_after_the_customer_answered_ends_the_talk():
    run = Run()
    token, _ = run.agent_on_line()
    run.step(token, StepKind.ANSWERED)
    assert run.feed(StepFinished(token)) == [Forget(), LeaveLine()]


def test_a_step_that_ended_normally_is_not_settled_again_when_it_finishes():
    run = Run()
    token, _ = run.agent_on_line()
    run.feed(AgentStepEnded(token, "BUSY", agent_left=False))
    assert run.feed(StepFinished(token)) == []


# --------------------------------------------------------------------------- lost answers


def lost(run: Run, mode: ConnectMode = ConnectMode.NAILED) -> str:
    token = run.dial(mode)
    assert run.feed(Originated(token, OriginateOutcome.LOST, "AMI connection lost")) == [
        LookForOriginate(token)]
    assert run.machine.phase is Phase.FINDING_FATE
    return token


def test_a_lost_answer_waits_while_ami_is_away_and_the_call_rings():
    run = Run()
    token = lost(run)
    assert run.feed(FateSeen(token, Sighting.UNKNOWN)) == [
        ScheduleTimer(run.now + FATE_POLL_SECONDS)]
    assert run.due() == [LookForOriginate(token)]
    assert run.feed(FateSeen(token, Sighting.LIVE)) == [
        ScheduleTimer(run.now + FATE_POLL_SECONDS)]
    record_id, actions = run.step(token, StepKind.CUSTOMER)  # answered: the one call
    assert actions[0] == StartRecord(record_id, "Local/s@x-1;1")
    assert run.machine.due is None
    assert run.feed(FateSeen(token, Sighting.ABSENT)) == []  # a look that was under way


def test_a_lost_ring_that_ends_unanswered_counts_as_not_answered():
    run = Run()
    token = lost(run)
    run.feed(FateSeen(token, Sighting.LIVE))
    run.due()
    assert run.feed(FateSeen(token, Sighting.ABSENT)) == [
        GiveOfferBack(AGENT, OfferFailure.CUSTOMER_NO_ANSWER)]


def test_a_lost_agent_ring_that_ends_unanswered_is_the_agents_no_answer():
    run = Run()
    token = lost(run, ConnectMode.RING)
    run.feed(FateSeen(token, Sighting.LIVE), after=3)
    run.due()
    assert run.feed(FateSeen(token, Sighting.ABSENT), after=10) == [
        GiveOfferBack(AGENT, OfferFailure.NO_ANSWER)]


def test_an_originate_not_in_the_snapshot_was_never_placed_and_waits_the_pause():
    run = Run()
    token = lost(run)
    assert run.feed(FateSeen(token, Sighting.ABSENT), after=1) == [
        GiveOfferBack(AGENT, OfferFailure.REJECTED)]
    assert run.machine.not_before == run.now + RETRY_PAUSE_SECONDS


def test_ami_away_past_the_originates_timeout_means_nothing_rings_now():
    run = Run()
    token = lost(run)
    sent = run.now
    timeout = 25 + ORIGINATE_GRACE_SECONDS
    run.now = sent + timeout - 1
    assert run.feed(FateSeen(token, Sighting.UNKNOWN)) == [ScheduleTimer(run.now + 1)]
    run.due()
    assert run.feed(FateSeen(token, Sighting.UNKNOWN)) == [
        GiveOfferBack(AGENT, OfferFailure.REJECTED)]


def test_a_ring_seen_before_ami_went_away_ends_with_the_originates_timeout():
    run = Run()
    token = lost(run)
    deadline = run.now + 25 + ORIGINATE_GRACE_SECONDS
    run.feed(FateSeen(token, Sighting.LIVE))
    run.now = deadline - 0.5
    assert run.feed(FateSeen(token, Sighting.UNKNOWN)) == [ScheduleTimer(deadline + 0.5)]
    assert run.due() == [LookForOriginate(token)]
    assert run.feed(FateSeen(token, Sighting.UNKNOWN)) == [
        GiveOfferBack(AGENT, OfferFailure.CUSTOMER_NO_ANSWER)]  # it rang: not answered


def test_a_ring_still_seen_is_waited_for_until_its_step_could_have_started():
    run = Run()
    token = lost(run)
    give_up = run.now + 25 + ORIGINATE_GRACE_SECONDS + RULES.agi_start_timeout
    run.now = give_up - 0.5
    assert run.feed(FateSeen(token, Sighting.LIVE)) == [ScheduleTimer(give_up + 0.5)]
    assert run.due() == [GiveOfferBack(AGENT, OfferFailure.CUSTOMER_NO_ANSWER)]


# --------------------------------------------------------------------------- out of order


def test_events_of_another_attempt_or_phase_do_nothing():
    run = Run()
    old = run.dial()
    run.feed(Originated(old, OriginateOutcome.NOT_ANSWERED, "0"), after=20)
    new = run.dial(agent="agent2")
    assert run.feed(Originated(old, OriginateOutcome.ANSWERED)) == []  # a late duplicate
    assert run.feed(AgentStepEnded(old, "ANSWER", agent_left=False)) == []
    assert run.feed(FateSeen(new, Sighting.ABSENT)) == []  # no answer was lost
    assert run.offer(agent="agent3")[1] == []  # the ACD offers one agent at a time
    assert run.feed(StatusRead(pending=False)) == []  # nobody asked
    assert run.feed(CustomerUnanswered()) == []  # only once the offer was given back
    assert run.step(old, StepKind.AGENT)[1] == [RefuseStep(hang_up=True)]
    assert run.step(new, StepKind.CUSTOMER)[0]  # accepted: the current attempt
    assert run.step(new, StepKind.AGENT)[1] == [RefuseStep(hang_up=True)]  # a second step


def test_a_request_picked_up_after_a_restart_starts_in_line_with_every_call_left():
    run = Run()
    assert run.machine.phase is Phase.IN_LINE and run.machine.unanswered == 0
    for _ in range(RULES.max_attempts - 1):
        run.customer_not_answering()
        run.feed(CustomerUnanswered())
        run.due()
        run.feed(StatusRead(pending=True))
    restarted = Run()  # attempts are counted in memory: a restart counts again
    restarted.customer_not_answering()
    assert restarted.feed(CustomerUnanswered()) == [ScheduleTimer(restarted.now + 300.0)]


def test_max_attempts_is_one_or_more():
    with pytest.raises(ValueError, match="max_attempts"):
        CallbackRules(max_attempts=0, retry_after=1, rescan_every=1, agi_start_timeout=1,
                      customer_dial_seconds=1)


def test_every_phase_but_done_has_a_way_out_in_the_table():
    phases = {phase for phase, _ in TRANSITIONS}
    assert phases == set(Phase) - {Phase.DONE}


# --------------------------------------------------------------------------- properties

OUTCOMES = (GiveOfferBack, LeaveLine)


EVENT_TYPES: list[type] = [Offered, StatusRead, TimerDue, Originated, FateSeen, StepStarted,
                           AgentStepEnded, CustomerStepEnded, StepFinished, CustomerUnanswered,
                           LineLost]


def event_of(template: tuple[int, int], machine: CallbackMachine) -> CallbackEvent:
    """A random event for the machine as it is. ``pick`` chooses mostly an event its phase
    expects (so that runs go deep: rung, answered, talked, back in line...), sometimes any
    (late, duplicated, out of order), and mostly for the current attempt, sometimes a stale
    one; ``kind`` and ``pick`` choose its values."""
    kind, pick = template
    expected = [event for phase, event in TRANSITIONS if phase is machine.phase]
    event_type = (expected[kind % len(expected)] if expected and pick % 4 != 3
                  else EVENT_TYPES[kind % len(EVENT_TYPES)])
    token = machine.token if pick % 7 != 6 and machine.token else "cb-stale"

    def one_of(values: list[Any]) -> Any:
        return values[pick % len(values)]

    if event_type is Offered:
        return Offered(f"cb{pick:016x}", one_of([AGENT, "agent2"]), one_of(list(ConnectMode)),
                       RING_TIMEOUT)
    if event_type is StatusRead:
        return StatusRead(pending=pick % 5 != 4)
    if event_type is TimerDue:
        return TimerDue(machine.due if machine.due is not None and pick % 9 != 8 else 0.0)
    if event_type is Originated:
        return Originated(token, one_of(list(OriginateOutcome)), one_of(["0", "5", "8"]))
    if event_type is FateSeen:
        return FateSeen(token, one_of(list(Sighting)))
    if event_type is StepStarted:
        return StepStarted(token, one_of(list(StepKind)), f"1700000000.{pick}", "Local/x")
    if event_type is AgentStepEnded:
        return AgentStepEnded(token, one_of(["ANSWER", "NOANSWER"]), pick % 3 == 0)
    if event_type is CustomerStepEnded:
        return CustomerStepEnded(token, pick % 2 == 0)
    if event_type is StepFinished:
        return StepFinished(token)
    if event_type is CustomerUnanswered:
        return CustomerUnanswered()
    return LineLost(one_of(list(LineLoss)))


EVENTS = st.lists(st.tuples(st.tuples(st.integers(0, 10), st.integers(0, 1000)),
                            st.sampled_from([0.0, 0.5, 1.0, 3.0, 30.0, 400.0])),
                  min_size=1, max_size=40)


def drain(machine: CallbackMachine, now: float) -> list[CallbackAction]:
    """Whatever is left of the attempt ends: the steps finish, rings fail, timers fall due."""
    actions: list[CallbackAction] = []
    for _ in range(10):
        token = machine.token
        if token is None:
            break
        event: CallbackEvent = {
            Phase.PAUSING: TimerDue(machine.due or 0.0),
            Phase.CHECKING: StatusRead(pending=False),
            Phase.RINGING: Originated(token, OriginateOutcome.FAILED),
            Phase.FINDING_FATE: FateSeen(token, Sighting.ABSENT),
            Phase.AWAITING_STEP: TimerDue(machine.due or 0.0),
            Phase.ON_STEP: StepFinished(token),
        }[machine.phase]
        now = max(now, machine.due or now)
        actions += machine.handle(event, now)
    return actions


@settings(max_examples=500, deadline=None)
@given(st.integers(1, 3), EVENTS)
def test_every_attempt_ends_once_releases_its_agent_and_calls_stay_within_max(
        max_attempts, events):
    rules = CallbackRules(max_attempts=max_attempts, retry_after=300.0, rescan_every=60.0,
                          agi_start_timeout=10.0, customer_dial_seconds=25)
    machine = CallbackMachine(rules)
    now = 0.0
    failed_status = 0
    for template, elapsed in events:
        now += elapsed
        before = machine.attempt
        was_done = machine.done
        actions = machine.handle(event_of(template, machine), now)
        outcomes = [a for a in actions if isinstance(a, OUTCOMES)]
        if was_done:  # a forgotten request does nothing but refuse steps
            assert all(isinstance(a, RefuseStep) for a in actions)
        if before is not None and machine.attempt is not before:
            assert len(outcomes) == 1  # the attempt ended: one outcome, the agent released
            if isinstance(outcomes[0], GiveOfferBack):
                assert outcomes[0].agent_id == before.agent_id
        else:
            assert outcomes == []  # an attempt still under way, or none at all
        failed_status += actions.count(SetStatus(CallbackStatus.FAILED))
        assert machine.unanswered <= rules.max_attempts
        if machine.unanswered == rules.max_attempts:
            assert machine.done
        for action in actions:
            if isinstance(action, (TalkStarted, RecordTalkStarted)):
                assert before is not None and action.agent_id == before.agent_id
    assert failed_status == (1 if machine.unanswered == rules.max_attempts else 0)
    before = machine.attempt
    rest = drain(machine, now)
    assert machine.attempt is None  # nothing hangs on: the agent is always released
    if before is not None:
        assert len([a for a in rest if isinstance(a, OUTCOMES)]) == 1
