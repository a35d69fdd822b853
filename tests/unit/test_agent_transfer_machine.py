"""The agent transfer machine (core/agent_transfers.py) on its own: events in, actions out, no
Asterisk, ACD or ledger (the service that performs the actions: test_call_transfer.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.core.agent_transfers import (
    DECLINED_STATUS,
    NEVER_RANG_STATUS,
    TRANSITIONS,
    Action,
    AgentTransfers,
    AttendedTransferDone,
    CallerArrived,
    CallerRedirected,
    ChannelHungUp,
    ConsultNotStarted,
    ConsultRequested,
    ConsultStartDue,
    ConsultStarted,
    DialBegan,
    DialEnded,
    Event,
    FirstAgentDone,
    Phase,
    RecordAttemptEnded,
    RecordAttemptStarted,
    RecordConsultAnswered,
    RecordConsultEnded,
    RecordTalkEnded,
    RecordTransferCompleted,
    RecordTransferRequested,
    ReleaseAgent,
    StartConsult,
    WakeAt,
)
from callcenter.core.records import TransferMode

T0 = 1_795_000_000.0
CALL = "call-1"
CALLER = "PJSIP/anonymous-00000001"
AGENT1_LEG = "PJSIP/agent1-00000002"
AGENT2_LEG = "PJSIP/agent2-00000004"
TOKEN = "000042"
LOCAL = f"Local/{TOKEN}@callcenter-consult-00000000;2"
HANDOVER = 10.0
CONSULT_START = 10.0

BLIND, ATTENDED = TransferMode.BLIND, TransferMode.ATTENDED


def machine() -> AgentTransfers:
    return AgentTransfers(consult_context="callcenter-consult", handover_seconds=HANDOVER,
                          consult_start_seconds=CONSULT_START)


def leg_answered(call_id: str = CALL, agent_leg: str = AGENT1_LEG,
                 leg_uniqueid: str = "agent1-leg", call_known: bool = True) -> DialEnded:
    """The caller's Dial to an agent's phone was answered."""
    return DialEnded(call_id, CALLER, leg_uniqueid, agent_leg, "ANSWER", call_known=call_known)


def consult_dial_ended(status: str, local: str = LOCAL) -> DialEnded:
    return DialEnded("local-2", local, "agent2-leg", AGENT2_LEG, status)


def handed_over(transferer: str = AGENT1_LEG, success: bool = True) -> AttendedTransferDone:
    return AttendedTransferDone(transferer, CALL, success=success)


def requested(to_agent: str = "agent2", token: str = TOKEN, from_agent: str = "agent1",
              call_id: str = CALL, to_queue: str | None = None) -> ConsultRequested:
    return ConsultRequested(call_id, from_agent, to_agent, token, 15, to_queue=to_queue)


def consulting_machine() -> AgentTransfers:
    """agent1 talks with CALL's caller and asked to consult agent2, which Asterisk accepted."""
    transfers = machine()
    transfers.handle(leg_answered(), T0)
    transfers.handle(requested(), T0)
    transfers.handle(ConsultStarted(CALL), T0)
    return transfers


def answered_consult() -> AgentTransfers:
    transfers = consulting_machine()
    transfers.handle(DialBegan(LOCAL), T0 + 1)
    transfers.handle(consult_dial_ended("ANSWER"), T0 + 5)
    return transfers


# --------------------------------------------------------------------------- the table


def test_every_transition_is_in_one_table_of_phase_and_event():
    assert all(isinstance(phase, Phase) and isinstance(event, type)
               for phase, event in TRANSITIONS)
    # A new consult is only asked for while none is under way.
    assert {phase for phase, event in TRANSITIONS if event is ConsultRequested} == {
        Phase.IDLE, Phase.REDIRECTED}


# --------------------------------------------------------------------------- agent legs


def test_the_answered_dial_of_a_known_call_to_an_agent_is_the_leg_a_consult_starts_from():
    transfers = machine()
    assert transfers.handle(leg_answered(), T0) == []
    leg = transfers.state(CALL).leg
    assert leg is not None and (leg.agent_id, leg.channel) == ("agent1", AGENT1_LEG)
    assert transfers.refusal(CALL, "agent1", ATTENDED, T0) is None
    # Another agent's request does not start from agent1's phone.
    assert "phone leg of agent 'agent3' is not known" in str(
        transfers.refusal(CALL, "agent3", ATTENDED, T0))


@pytest.mark.parametrize("event", [
    leg_answered(call_known=False),  # not a call of the ledger (an outbound one...)
    leg_answered(agent_leg="PJSIP/callcenter-trunk-00000002"),  # not an agent's phone
    DialEnded(CALL, CALLER, "agent1-leg", AGENT1_LEG, "BUSY"),
])
def test_dials_that_are_no_agent_answering_a_caller_are_not_legs(event: DialEnded):
    transfers = machine()
    assert transfers.handle(event, T0) == []
    assert transfers.state(CALL).leg is None
    assert "phone leg of agent 'agent1' is not known (its answer was not seen on AMI)" in str(
        transfers.refusal(CALL, "agent1", ATTENDED, T0))


def test_the_callers_hangup_forgets_the_leg():
    transfers = machine()
    transfers.handle(leg_answered(), T0)
    assert transfers.handle(ChannelHungUp(CALL, CALLER), T0 + 9) == []
    assert transfers.state(CALL).leg is None


# --------------------------------------------------------------------------- blind


def test_a_redirected_caller_is_recorded_and_not_moved_again_until_it_arrives():
    transfers = machine()
    assert transfers.refusal(CALL, "agent1", BLIND, T0) is None
    assert transfers.handle(CallerRedirected(CALL, "agent1", to_queue="sales"), T0) == [
        RecordTransferRequested(CALL, BLIND, "agent1", T0, to_queue="sales")]
    assert transfers.state(CALL).phase is Phase.REDIRECTED
    for mode in (BLIND, ATTENDED):
        assert transfers.refusal(CALL, "agent1", mode, T0 + 1) == (
            "call 'call-1' is already being transferred")
    assert transfers.handle(CallerArrived(CALL), T0 + 2) == []
    assert transfers.refusal(CALL, "agent2", BLIND, T0 + 2) is None
    assert transfers.handle(CallerArrived(CALL), T0 + 3) == []  # a duplicate: nothing


def test_a_caller_that_never_arrives_may_be_transferred_again_after_twice_the_handover():
    transfers = machine()
    transfers.handle(CallerRedirected(CALL, "agent1", to_agent="agent3"), T0)
    assert transfers.refusal(CALL, "agent1", BLIND, T0 + 2 * HANDOVER - 0.1) is not None
    assert transfers.refusal(CALL, "agent1", BLIND, T0 + 2 * HANDOVER) is None
    assert transfers.handle(CallerRedirected(CALL, "agent1", to_queue="sales"), T0 + 30) == [
        RecordTransferRequested(CALL, BLIND, "agent1", T0 + 30, to_queue="sales")]
    # A caller who hangs up on the way is forgotten.
    assert transfers.handle(ChannelHungUp(CALL, CALLER), T0 + 31) == []
    assert transfers.state(CALL).phase is Phase.IDLE


# --------------------------------------------------------------------------- attended


def test_a_consult_is_asked_of_asterisk_then_recorded_with_a_timer_for_its_start():
    transfers = machine()
    transfers.handle(leg_answered(), T0)
    assert transfers.handle(requested(to_queue="sales"), T0) == [
        StartConsult(CALL, AGENT1_LEG, TOKEN, "agent2", 15)]
    assert transfers.state(CALL).phase is Phase.CONSULT_STARTING
    assert transfers.consulting(CALL) == "agent2"
    assert transfers.handle(ConsultStarted(CALL), T0 + 0.5) == [
        RecordAttemptStarted(CALL, "agent2", T0 + 0.5),
        RecordTransferRequested(CALL, ATTENDED, "agent1", T0 + 0.5, to_agent="agent2",
                                to_queue="sales"),
        WakeAt(T0 + 0.5 + CONSULT_START, ConsultStartDue(CALL, TOKEN))]
    assert transfers.refusal(CALL, "agent1", BLIND, T0 + 1) == (
        "call 'call-1' is being transferred (attended)")
    assert transfers.refusal(CALL, "agent1", ATTENDED, T0 + 1) == (
        "call 'call-1' is already being transferred")
    # A second request while one is under way is not in the table: nothing happens.
    assert transfers.handle(requested(to_agent="agent3", token="000043"), T0 + 1) == []
    assert transfers.consulting(CALL) == "agent2"


def test_a_consult_asterisk_refuses_releases_the_second_agent_and_records_nothing():
    transfers = machine()
    transfers.handle(leg_answered(), T0)
    transfers.handle(requested(), T0)
    assert transfers.handle(ConsultNotStarted(CALL), T0) == [ReleaseAgent("agent2", CALL)]
    assert transfers.consulting(CALL) is None
    assert transfers.refusal(CALL, "agent1", ATTENDED, T0) is None  # the leg is still known


def test_a_request_without_the_first_agents_leg_lets_the_held_agent_go():
    transfers = machine()
    assert transfers.handle(requested(), T0) == [ReleaseAgent("agent2", CALL)]
    assert transfers.consulting(CALL) is None


def test_a_consult_answered_then_completed_hands_the_caller_to_the_second_agent():
    transfers = consulting_machine()
    assert transfers.handle(DialBegan(LOCAL), T0 + 1) == []
    assert transfers.state(CALL).phase is Phase.CONSULT_RINGING
    assert transfers.handle(consult_dial_ended("ANSWER"), T0 + 5) == [
        RecordConsultAnswered(CALL, "agent2", T0 + 5)]
    assert transfers.state(CALL).phase is Phase.CONSULTING
    assert transfers.handle(handed_over(), T0 + 20) == [
        RecordTransferCompleted(CALL, T0 + 20), FirstAgentDone("agent1", CALL)]
    assert transfers.consulting(CALL) is None
    leg = transfers.state(CALL).leg
    assert leg is not None and (leg.agent_id, leg.channel) == ("agent2", AGENT2_LEG)
    # agent2 is on the call outside the ACD's routing until their phone hangs up.
    assert transfers.handle(ChannelHungUp("agent2-leg", AGENT2_LEG), T0 + 60) == [
        RecordTalkEnded(CALL, "agent2", T0 + 60), ReleaseAgent("agent2", CALL)]
    assert transfers.state(CALL).leg is None
    assert transfers.handle(ChannelHungUp("agent2-leg", AGENT2_LEG), T0 + 61) == []


def test_the_transfer_is_found_by_the_transferee_too():
    transfers = answered_consult()
    assert transfers.handle(AttendedTransferDone("PJSIP/elsewhere", CALL, True), T0) == [
        RecordTransferCompleted(CALL, T0), FirstAgentDone("agent1", CALL)]


def test_the_second_agent_can_consult_a_third_from_their_own_leg():
    transfers = answered_consult()
    transfers.handle(handed_over(), T0 + 20)
    assert transfers.refusal(CALL, "agent2", ATTENDED, T0 + 21) is None
    assert transfers.handle(requested("agent3", "000043", from_agent="agent2"), T0 + 21) == [
        StartConsult(CALL, AGENT2_LEG, "000043", "agent3", 15)]
    assert transfers.handle(handed_over(AGENT2_LEG), T0 + 30) == [
        RecordTransferCompleted(CALL, T0 + 30), FirstAgentDone("agent2", CALL)]
    # agent2's leg hangs up after the handover: their talk ends (the ACD has let them go).
    assert transfers.handle(ChannelHungUp("agent2-leg", AGENT2_LEG), T0 + 31) == [
        RecordTalkEnded(CALL, "agent2", T0 + 31), ReleaseAgent("agent2", CALL)]


@pytest.mark.parametrize("status", ["BUSY", "NOANSWER", "CHANUNAVAIL", "CONGESTION"])
def test_a_refused_busy_or_unanswered_consult_gives_the_caller_back_to_the_first_agent(
        status: str):
    transfers = consulting_machine()
    transfers.handle(DialBegan(LOCAL), T0 + 1)
    assert transfers.handle(consult_dial_ended(status), T0 + 15) == [
        RecordConsultEnded(CALL, "agent2", status, T0 + 15), ReleaseAgent("agent2", CALL)]
    assert transfers.consulting(CALL) is None
    assert transfers.state(CALL).phase is Phase.IDLE
    leg = transfers.state(CALL).leg
    assert leg is not None and leg.agent_id == "agent1"
    # Late events of that consult change nothing.
    for late in (handed_over(), ChannelHungUp("local-2", LOCAL),
                 ConsultStartDue(CALL, TOKEN), consult_dial_ended("ANSWER")):
        assert transfers.handle(late, T0 + 16) == []


def test_a_consult_the_second_agent_ends_themselves_is_declined():
    transfers = answered_consult()
    assert transfers.handle(ChannelHungUp("agent2-leg", AGENT2_LEG), T0 + 9) == [
        RecordConsultEnded(CALL, "agent2", DECLINED_STATUS, T0 + 9),
        ReleaseAgent("agent2", CALL)]
    assert transfers.state(CALL).leg is not None  # agent1 has the caller back


def test_a_consult_whose_local_channel_ends_without_ringing_frees_the_second_agent():
    transfers = consulting_machine()
    assert transfers.handle(ChannelHungUp("local-2", LOCAL), T0 + 1) == [
        RecordConsultEnded(CALL, "agent2", NEVER_RANG_STATUS, T0 + 1),
        ReleaseAgent("agent2", CALL)]
    assert transfers.consulting(CALL) is None


def test_the_local_channel_ending_after_the_answer_is_no_refusal():
    transfers = answered_consult()
    assert transfers.handle(ChannelHungUp("local-2", LOCAL), T0 + 9) == []
    assert transfers.consulting(CALL) == "agent2"


def test_a_consult_that_never_starts_ringing_lets_the_second_agent_go_when_due():
    transfers = consulting_machine()
    assert transfers.handle(ConsultStartDue(CALL, TOKEN), T0 + CONSULT_START) == [
        RecordConsultEnded(CALL, "agent2", NEVER_RANG_STATUS, T0 + CONSULT_START),
        ReleaseAgent("agent2", CALL)]
    # One that rings by then goes on.
    transfers = consulting_machine()
    transfers.handle(DialBegan(LOCAL), T0 + 1)
    assert transfers.handle(ConsultStartDue(CALL, TOKEN), T0 + CONSULT_START) == []
    assert transfers.consulting(CALL) == "agent2"


def test_the_timer_of_an_earlier_consult_does_not_end_the_next_one():
    transfers = consulting_machine()
    transfers.handle(consult_dial_ended("BUSY"), T0 + 2)
    transfers.handle(requested("agent3", "000043"), T0 + 3)
    assert transfers.handle(ConsultStartDue(CALL, TOKEN), T0 + CONSULT_START) == []
    assert transfers.consulting(CALL) == "agent3"


def test_the_caller_hanging_up_during_the_consult_leaves_it_to_its_own_end():
    transfers = answered_consult()
    assert transfers.handle(ChannelHungUp(CALL, CALLER), T0 + 8) == []
    assert transfers.consulting(CALL) == "agent2"
    # Asterisk cannot hand over a caller who left; the agents hang up.
    assert transfers.handle(handed_over(success=False), T0 + 9) == []
    assert transfers.handle(ChannelHungUp("agent1-leg", AGENT1_LEG), T0 + 9) == []
    assert transfers.handle(ChannelHungUp("agent2-leg", AGENT2_LEG), T0 + 10) == [
        RecordConsultEnded(CALL, "agent2", DECLINED_STATUS, T0 + 10),
        ReleaseAgent("agent2", CALL)]
    assert transfers.state(CALL).phase is Phase.IDLE and transfers.state(CALL).leg is None


def test_the_first_agent_hanging_up_while_the_consult_rings_hands_over_on_the_answer():
    transfers = consulting_machine()
    transfers.handle(DialBegan(LOCAL), T0 + 1)
    # Asterisk's blond transfer: the caller goes to the ringing phone.
    assert transfers.handle(handed_over(), T0 + 3) == [
        RecordTransferCompleted(CALL, T0 + 3), FirstAgentDone("agent1", CALL)]
    assert transfers.state(CALL).phase is Phase.HANDED_OVER_RINGING
    assert transfers.consulting(CALL) == "agent2"  # held for the call, not talking yet
    assert transfers.handle(consult_dial_ended("ANSWER"), T0 + 6) == [
        RecordConsultAnswered(CALL, "agent2", T0 + 6)]
    assert transfers.consulting(CALL) is None
    assert transfers.handle(ChannelHungUp("agent2-leg", AGENT2_LEG), T0 + 40) == [
        RecordTalkEnded(CALL, "agent2", T0 + 40), ReleaseAgent("agent2", CALL)]


def test_a_blond_transfer_nobody_answers_releases_the_second_agent():
    transfers = consulting_machine()
    transfers.handle(handed_over(), T0 + 3)
    assert transfers.handle(consult_dial_ended("NOANSWER"), T0 + 18) == [
        RecordAttemptEnded(CALL, "agent2", "NOANSWER", T0 + 18), ReleaseAgent("agent2", CALL)]
    assert transfers.consulting(CALL) is None


def test_duplicate_answers_and_handovers_act_once():
    transfers = consulting_machine()
    first = transfers.handle(consult_dial_ended("ANSWER"), T0 + 5)
    assert first == [RecordConsultAnswered(CALL, "agent2", T0 + 5)]
    assert transfers.handle(consult_dial_ended("ANSWER"), T0 + 5) == []
    assert transfers.handle(DialBegan(LOCAL), T0 + 5) == []  # out of order: already answered
    assert len(transfers.handle(handed_over(), T0 + 9)) == 2
    assert transfers.handle(handed_over(), T0 + 9) == []


@pytest.mark.parametrize("event", [
    DialBegan("Local/999999@callcenter-consult-00000009;2"),
    DialEnded("x", "Local/999999@callcenter-consult-00000009;2", "y", AGENT2_LEG, "ANSWER"),
    ChannelHungUp("nobody", "PJSIP/agent3-00000009"),
    AttendedTransferDone("PJSIP/agent3-00000009", "call-9", True),
    CallerArrived("call-9"),
    ConsultStarted("call-9"),
    ConsultNotStarted("call-9"),
    ConsultStartDue("call-9", TOKEN),
])
def test_events_of_unknown_channels_and_calls_change_nothing(event: Event):
    transfers = answered_consult()
    before = transfers.state(CALL)
    assert transfers.handle(event, T0 + 7) == []
    assert transfers.state(CALL) == before
    assert transfers.state("call-9").phase is Phase.IDLE


def test_consults_of_two_calls_are_told_apart_by_their_tokens():
    transfers = consulting_machine()
    transfers.handle(leg_answered("call-2", "PJSIP/agent3-00000007", "agent3-leg"), T0)
    transfers.handle(requested("sup1", "000043", "agent3", "call-2"), T0)
    other_local = "Local/000043@callcenter-consult-00000001;2"
    assert transfers.handle(consult_dial_ended("BUSY", other_local), T0 + 2) == [
        RecordConsultEnded("call-2", "sup1", "BUSY", T0 + 2), ReleaseAgent("sup1", "call-2")]
    assert transfers.consulting(CALL) == "agent2"


# --------------------------------------------------------------------------- any order

# Everything Asterisk might say about one consult, in any order and any number of times.
ASTERISK_SAYS: list[Event] = [
    ConsultStarted(CALL), ConsultNotStarted(CALL), ConsultStartDue(CALL, TOKEN),
    DialBegan(LOCAL), consult_dial_ended("ANSWER"), consult_dial_ended("BUSY"),
    consult_dial_ended("NOANSWER"), ChannelHungUp("local-2", LOCAL),
    ChannelHungUp("agent2-leg", AGENT2_LEG), ChannelHungUp("agent1-leg", AGENT1_LEG),
    ChannelHungUp(CALL, CALLER), handed_over(), handed_over(success=False),
    handed_over(AGENT2_LEG), leg_answered(), CallerArrived(CALL),
]
# ... and what happens in the end: every channel is gone, the timer is due.
ALL_GONE: list[Event] = [
    ConsultStartDue(CALL, TOKEN), ChannelHungUp("local-2", LOCAL),
    ChannelHungUp("agent2-leg", AGENT2_LEG), ChannelHungUp(CALL, CALLER),
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(ASTERISK_SAYS), max_size=12))
def test_any_order_of_events_ends_each_consult_once_and_lets_the_second_agent_go(
        events: list[Event]):
    transfers = machine()
    transfers.handle(leg_answered(), T0)
    actions: list[Action] = list(transfers.handle(requested(), T0))
    for at, event in enumerate([*events, *ALL_GONE], start=1):
        actions += transfers.handle(event, T0 + at)

    # The consult is over, with exactly one outcome: handed over, or ended (declined,
    # failed) or not started at all.
    assert transfers.consulting(CALL) is None
    ended = [a for a in actions if isinstance(a, RecordConsultEnded)]
    completed = [a for a in actions if isinstance(a, RecordTransferCompleted)]
    not_started = ConsultNotStarted(CALL) in events and not ended and not completed
    assert len(ended) + len(completed) + not_started == 1, actions
    # The second agent, held for the consult, is let go exactly once (after a handover, when
    # their talk with the caller ends), and the first agent's call ends only on a handover.
    assert actions.count(ReleaseAgent("agent2", CALL)) == 1, actions
    assert actions.count(FirstAgentDone("agent1", CALL)) == len(completed)
    # Nothing is recorded of a consult Asterisk did not start.
    started = [a for a in actions if isinstance(a, RecordTransferRequested)]
    assert len(started) <= 1
    assert not any(isinstance(a, StartConsult) for a in actions[1:])
